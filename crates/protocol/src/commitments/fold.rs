//! The board: every assurance's state and flags, derived by folding the
//! transcript, never stored. Times are transcript times (`sent_at`; a
//! receipt's time is the `sent_at` of the message that carried it), windows
//! are half-open `[from, until)`, and the evaluation time is an argument, so
//! the same transcript always folds to the same board.

use std::collections::BTreeMap;

use serde::Serialize;

use super::authority::{self, Roster};
use super::provisos::{self, ProvisoView};
pub use super::readings::Reading;
use super::readings::{canonical, contradicts, meets, struck_first};
use super::structured::{
    Action, Actor, Assurance, Combine, LapseCondition, RedLine, RelationKind, Structured,
};
use crate::ids::{Handle, MessageId, Timestamp};
use crate::payload::{Body, Payload};

/// One message of the transcript as the fold sees it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The payload (a stub carries no structured body).
    pub payload: Payload,
}

/// A declared relation, attributed to its declarer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Declared {
    /// Subject.
    pub subject: Actor,
    /// Relation.
    pub relation: RelationKind,
    /// Object.
    pub object: Actor,
    /// Who declared it.
    pub by: String,
    /// Who disputes it (members who sent a `dispute` of it).
    pub disputed_by: Vec<String>,
}

/// The main state of an assurance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In force.
    Active,
    /// Its valid-until time passed.
    Expired,
    /// The issuer confirmed a lapse, or the mediator found one.
    Lapsed,
    /// Sent; not yet valid, or not yet received by every member beneficiary.
    Proposed,
    /// Revoked by its issuer.
    Revoked,
    /// Suspended by its issuer.
    Suspended,
}

impl State {
    /// In words, as every interface shows it.
    pub fn words(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Expired => "expired",
            State::Lapsed => "lapsed",
            State::Proposed => "proposed",
            State::Revoked => "revoked",
            State::Suspended => "suspended",
        }
    }

    /// Over for good (revoked, expired or lapsed): nothing left to revoke
    /// or suspend.
    pub fn is_over(self) -> bool {
        matches!(self, State::Revoked | State::Expired | State::Lapsed)
    }
}

/// A lapse claimed by an event report, not yet confirmed or found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LapseClaim {
    /// The event report, hex.
    pub event: String,
    /// Who reported it.
    pub reported_by: String,
    /// Which condition (index into `unless`).
    pub condition: usize,
    /// The readings under which it breaks the condition.
    pub readings: Vec<Reading>,
    /// True if other readings say it does not: the wording leaves it open.
    pub readings_diverge: bool,
}

/// An event report in which the issuer does what it undertook to refrain
/// from: a breach, as reported (a claim, not a finding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreachReport {
    /// The event report, hex.
    pub event: String,
    /// Who reported it.
    pub reported_by: String,
}

/// A finding of the mediator on an assurance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ruling {
    /// The finding, hex.
    pub id: String,
    /// Who made it (the mediator).
    pub by: String,
    /// When.
    pub sent_at_ms: i64,
    /// The allegation it answers, hex.
    pub allegation: Option<String>,
    /// Whether it found a breach.
    pub breached: bool,
    /// Whether it found a lapse.
    pub lapsed: bool,
    /// Its reasons.
    pub text: String,
}

/// A revocation or suspension that has yet to take effect (or to end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scheduled {
    /// The revocation or suspension, hex.
    pub id: String,
    /// `revocation` or `suspension`.
    pub act: &'static str,
    /// From when.
    pub from_ms: i64,
    /// Until when (a suspension's end), if set.
    pub until_ms: Option<i64>,
    /// Its words.
    pub text: String,
}

impl Scheduled {
    /// The revocation or suspension `x` if it is still to come at `at` (a
    /// suspension in force, if its end is still to come), whatever it names.
    pub(crate) fn of(x: &Msg<'_>, at: i64) -> Option<Scheduled> {
        let (act, from, until_ms, text) = match x.body? {
            Structured::Revoke {
                effective_ms, text, ..
            } => ("revocation", *effective_ms, None, text),
            Structured::Suspend {
                from_ms,
                until_ms,
                text,
                ..
            } => ("suspension", *from_ms, *until_ms, text),
            _ => return None,
        };
        let from_ms = from.max(x.sent_at);
        (from_ms > at || until_ms.is_some_and(|u| u > at)).then(|| Scheduled {
            id: x.id.to_hex(),
            act,
            from_ms,
            until_ms,
            text: text.clone(),
        })
    }
}

/// One assurance on the board.
#[derive(Clone, Debug, Serialize)]
pub struct AssuranceView {
    /// Its message id, hex.
    pub id: String,
    /// When its issuer sent it.
    pub sent_at_ms: i64,
    /// Issuer.
    pub issuer: String,
    /// Beneficiaries.
    pub beneficiaries: Vec<Actor>,
    /// The wording.
    pub wording: String,
    /// Every typed term (conditions, validity, formality, authority...).
    pub assurance: Assurance,
    /// Main state at the evaluation time.
    pub state: State,
    /// Since when (transcript time), if known.
    pub since_ms: Option<i64>,
    /// Valid until, if set.
    pub valid_until_ms: Option<i64>,
    /// Assurances linked as reciprocal (either direction), hex.
    pub reciprocated_by: Vec<String>,
    /// Open lapse claims.
    pub lapse_claims: Vec<LapseClaim>,
    /// Event reports of the issuer doing what it undertook not to.
    pub breach_reports: Vec<BreachReport>,
    /// The mediator's findings on it, with what each said.
    pub rulings: Vec<Ruling>,
    /// Allegations a finding answered, hex (no longer awaiting a reply).
    pub ruled: Vec<String>,
    /// Revocations and suspensions by its issuer still to take effect or
    /// to end.
    pub schedule: Vec<Scheduled>,
    /// Allegations of breach, hex.
    pub allegations: Vec<String>,
    /// Allegations answered by the issuer, hex.
    pub answered: Vec<String>,
    /// Findings made, hex.
    pub findings: Vec<String>,
    /// Its provisos, each decided or not.
    pub provisos: Vec<ProvisoView>,
    /// Third parties' guarantees of it.
    pub guarantees: Vec<GuaranteeView>,
}

/// A third party's undertaking to act if an assurance is breached.
#[derive(Clone, Debug, Serialize)]
pub struct GuaranteeView {
    /// The guarantee, hex.
    pub id: String,
    /// The guarantor.
    pub guarantor: String,
    /// What it will do on a breach.
    pub response: Action,
    /// Its wording.
    pub wording: String,
}

/// One red line on the board.
#[derive(Clone, Debug, Serialize)]
pub struct RedLineView {
    /// Its message id, hex.
    pub id: String,
    /// When its issuer sent it.
    pub sent_at_ms: i64,
    /// Issuer.
    pub issuer: String,
    /// The red line.
    pub red_line: RedLine,
    /// In force, not yet valid (`proposed`), expired, revoked, suspended.
    pub state: State,
    /// Since when, if known.
    pub since_ms: Option<i64>,
    /// Revocations and suspensions still to take effect or to end.
    pub schedule: Vec<Scheduled>,
}

/// Something awaiting an answer.
#[derive(Clone, Debug, Serialize)]
pub struct Awaiting {
    /// What (an allegation or a request), hex.
    pub id: String,
    /// From whom an answer is due.
    pub from: String,
    /// By when.
    pub due_ms: i64,
    /// True if past due at the evaluation time.
    pub overdue: bool,
    /// Kind: `allegation`, `request` or `proviso` (a decision on an
    /// assurance's proviso whose time passed).
    pub kind: &'static str,
}

/// The state of every commitment at one instant.
#[derive(Clone, Debug, Serialize)]
pub struct Board {
    /// The evaluation time.
    pub at_ms: i64,
    /// Assurances, by send time.
    pub assurances: Vec<AssuranceView>,
    /// Red lines, by send time.
    pub red_lines: Vec<RedLineView>,
    /// Declared relations.
    pub relations: Vec<Declared>,
    /// Answers awaited.
    pub awaiting: Vec<Awaiting>,
    /// Messages held only as stubs (digests): whatever commitments they
    /// carry are not on this board.
    pub stubs: usize,
    /// Acts their senders could not make (a party's finding, another's
    /// lapse confirmation): ignored, with the rule each broke.
    pub unauthorized: Vec<authority::Ignored>,
}

/// A commitment a revocation or suspension would touch: its id (hex),
/// state and wording.
pub type Touched<'a> = (&'a str, State, &'a str);

impl Board {
    /// What `issuer`'s revocation or suspension naming the red line
    /// `red_line`, or the assurance `assurance`, or neither (every one of
    /// its assurances still in force) would touch, listed for its issuer
    /// before it is sent.
    pub fn touched(
        &self,
        issuer: &str,
        assurance: Option<&str>,
        red_line: Option<&str>,
    ) -> Vec<Touched<'_>> {
        match red_line {
            Some(r) => self
                .red_lines
                .iter()
                .filter(|x| x.id == r && x.issuer == issuer)
                .map(|x| (x.id.as_str(), x.state, x.red_line.wording.as_str()))
                .collect(),
            None => self
                .assurances
                .iter()
                .filter(|a| a.issuer == issuer)
                .filter(|a| match assurance {
                    Some(t) => t == a.id,
                    None => !a.state.is_over(),
                })
                .map(|a| (a.id.as_str(), a.state, a.wording.as_str()))
                .collect(),
        }
    }
}

pub(crate) struct Msg<'a> {
    pub(crate) id: MessageId,
    /// Its place in its sender's chain (epoch, seq).
    place: (u32, u64),
    pub(crate) sender: Handle,
    pub(crate) sent_at: i64,
    pub(crate) body: Option<&'a Structured>,
}

/// Folds a transcript (in any order consistent per sender: the result does
/// not depend on how senders interleave) into the board at `at`.
/// `members` are the channel's members with their roles (receipts from
/// member beneficiaries activate an assurance; only the mediator finds).
pub fn fold(entries: &[Entry], roster: &Roster, at: Timestamp) -> Board {
    let members = &roster.members;
    let payloads: Vec<&Payload> = entries.iter().map(|e| &e.payload).collect();
    // Acts their senders could not make are listed, never folded.
    let unauthorized = authority::audit(&payloads, roster);
    let msgs: Vec<Msg<'_>> = entries
        .iter()
        .map(|e| {
            let h = e.payload.header();
            Msg {
                id: h.message_id,
                place: (h.epoch.number.0, h.seq.0),
                sender: h.sender.clone(),
                sent_at: h.sent_at.0,
                body: match &e.payload {
                    Payload::Full {
                        body: Body::Structured(s),
                        ..
                    } if !unauthorized.iter().any(|u| u.id == h.message_id) => Some(s.value()),
                    _ => None,
                },
            }
        })
        .collect();
    // When each member's receipts first covered each (sender, epoch, seq):
    // keyed (receiver, epoch, seq, sender).
    let mut covered_at: BTreeMap<(crate::ChannelId, Handle, u32, u64, Handle), i64> =
        BTreeMap::new();
    for e in entries {
        let h = e.payload.header();
        // The sender of this message has received `member`'s messages up to
        // head.seq: its receipt for them, timed at this message.
        for (member, head) in &h.heads.0 {
            for seq in 1..=head.seq.0.min(10_000) {
                let key = (
                    h.channel_id,
                    h.sender.clone(),
                    h.epoch.number.0,
                    seq,
                    member.clone(),
                );
                let t = covered_at.entry(key).or_insert(h.sent_at.0);
                *t = (*t).min(h.sent_at.0);
            }
        }
    }
    let is_member = |a: &Actor| match a {
        Actor::Member(n) => members.iter().any(|(h, _)| h.as_str() == n),
        Actor::Outside(_) => false,
    };
    let canon = |a: &Actor| canonical(a, |n| members.iter().any(|(h, _)| h.as_str() == n));
    let mut relations: Vec<Declared> = msgs
        .iter()
        .filter(|m| m.sent_at <= at.0)
        .filter_map(|m| match m.body {
            Some(Structured::Relate {
                subject,
                relation,
                object,
            }) => Some(Declared {
                subject: canon(subject),
                relation: *relation,
                object: canon(object),
                by: m.sender.to_string(),
                disputed_by: Vec::new(),
            }),
            _ => None,
        })
        .collect();
    relations.sort();
    relations.dedup();
    disputes(&mut relations, &msgs, &canon, at.0);
    // Reported events in the order they happened (window start, then as
    // sent): "first" is judged against the events before each.
    let mut reported: Vec<(&Msg<'_>, i64, Actor, Action)> = msgs
        .iter()
        .filter(|m| m.sent_at <= at.0)
        .filter_map(|m| match m.body {
            Some(Structured::Event {
                actor,
                action,
                from_ms,
                ..
            }) => {
                let mut action = action.clone();
                action.target = action.target.as_ref().map(canon);
                Some((m, *from_ms, canon(actor), action))
            }
            _ => None,
        })
        .collect();
    reported.sort_by_key(|(m, from, _, _)| (*from, m.sent_at, m.id));

    let find = |id: &str| msgs.iter().find(|m| m.id.to_hex() == id);
    let mut assurances = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let Some(Structured::Assurance(a)) = m.body else {
            continue;
        };
        if m.sent_at > at.0 {
            continue;
        }
        let id = m.id.to_hex();
        let h = &entries[i].payload.header();
        // Active once valid and received by every member beneficiary.
        let mut activation = Some(a.valid_from_ms.max(m.sent_at));
        for b in a.beneficiaries.iter().filter(|b| is_member(b)) {
            let key = (
                h.channel_id,
                Handle::new(b.name()).unwrap_or_else(|_| m.sender.clone()),
                h.epoch.number.0,
                h.seq.0,
                m.sender.clone(),
            );
            activation = match (activation, covered_at.get(&key)) {
                (Some(t), Some(c)) => Some(t.max(*c)),
                _ => None,
            };
        }
        let by_issuer = |x: &&Msg<'_>| x.sender == m.sender && x.sent_at <= at.0;
        // One assurance by its id, or (none named) every assurance its
        // issuer sent before: never one sent after.
        let targets = |x: &Msg<'_>, t: &Option<String>| match t.as_deref() {
            Some(t) => t == id,
            None => x.place > m.place,
        };
        let revoked = msgs
            .iter()
            .filter(by_issuer)
            .filter_map(|x| match x.body {
                Some(Structured::Revoke {
                    assurance,
                    effective_ms,
                    red_line: None,
                    ..
                }) if targets(x, assurance) => Some((*effective_ms).max(x.sent_at)),
                _ => None,
            })
            .min();
        let lapsed = msgs
            .iter()
            .filter(|x| x.sent_at <= at.0)
            .filter_map(|x| match x.body {
                Some(Structured::ConfirmLapse { assurance, .. })
                    if *assurance == id && x.sender == m.sender =>
                {
                    Some(x.sent_at)
                }
                Some(Structured::Finding {
                    assurance,
                    lapsed: true,
                    ..
                }) if *assurance == id => Some(x.sent_at),
                _ => None,
            })
            .min();
        let provisos = provisos::provisos(m, a, &msgs, &reported, &canon, roster.mediator(), at.0);
        let lapsed = match (lapsed, provisos::failed_at(a, &provisos, &msgs)) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let suspended = msgs.iter().filter(by_issuer).find_map(|x| match x.body {
            Some(Structured::Suspend {
                assurance,
                from_ms,
                until_ms,
                red_line: None,
                ..
            }) if targets(x, assurance) => {
                let from = (*from_ms).max(x.sent_at);
                (from <= at.0 && until_ms.is_none_or(|u| at.0 < u)).then_some(from)
            }
            _ => None,
        });
        let schedule: Vec<Scheduled> = msgs
            .iter()
            .filter(by_issuer)
            .filter(|x| match x.body {
                Some(
                    Structured::Revoke {
                        assurance,
                        red_line: None,
                        ..
                    }
                    | Structured::Suspend {
                        assurance,
                        red_line: None,
                        ..
                    },
                ) => targets(x, assurance),
                _ => false,
            })
            .filter_map(|x| Scheduled::of(x, at.0))
            .collect();
        let terminal = [
            lapsed.filter(|t| *t <= at.0).map(|t| (t, State::Lapsed)),
            revoked.filter(|t| *t <= at.0).map(|t| (t, State::Revoked)),
            a.valid_until_ms
                .filter(|t| *t <= at.0)
                .map(|t| (t, State::Expired)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(t, _)| *t);
        let (state, since) = match (terminal, suspended, activation) {
            (Some((t, s)), _, _) => (s, Some(t)),
            (None, Some(t), _) => (State::Suspended, Some(t)),
            (None, None, Some(t)) if t <= at.0 => (State::Active, Some(t)),
            _ => (State::Proposed, Some(m.sent_at)),
        };
        let issuer = Actor::Member(m.sender.to_string());
        let decided = lapsed.is_some_and(|t| t <= at.0) || msgs.iter().any(|x| {
            x.sent_at <= at.0
                && matches!(x.body, Some(Structured::Finding { assurance, .. }) if *assurance == id)
        });
        let mut lapse_claims = Vec::new();
        let mut breach_reports = Vec::new();
        let unless: Vec<LapseCondition> = a
            .unless
            .iter()
            .map(|c| LapseCondition {
                attacked_first_by: canon(&c.attacked_first_by),
                scope: c.scope,
            })
            .collect();
        // Only what happened in the assurance's life counts: from when it
        // was given until it ended.
        let start = a.valid_from_ms.max(m.sent_at);
        let end = terminal.map_or(i64::MAX, |(t, _)| t);
        let life: Vec<&(&Msg<'_>, i64, Actor, Action)> = reported
            .iter()
            .filter(|(_, from, _, _)| (start..end).contains(from))
            .collect();
        let mut held = a.clone();
        held.commitment.action.target = held.commitment.action.target.as_ref().map(canon);
        for (k, (x, _, actor, action)) in life.iter().enumerate() {
            let earlier = life[..k].iter().map(|(_, _, a, b)| (a, b));
            for (ci, cond) in unless.iter().enumerate() {
                if decided {
                    break;
                }
                let all = Reading::all(&cond.scope);
                let yes: Vec<Reading> = all
                    .iter()
                    .copied()
                    .filter(|r| {
                        meets(&issuer, cond, actor, action, r, &relations).is_some()
                            && struck_first(&issuer, cond, r, &relations, earlier.clone()).is_none()
                    })
                    .collect();
                if !yes.is_empty() {
                    lapse_claims.push(LapseClaim {
                        event: x.id.to_hex(),
                        reported_by: x.sender.to_string(),
                        condition: ci,
                        readings_diverge: yes.len() != all.len(),
                        readings: yes,
                    });
                }
            }
            if contradicts(&held, &issuer, actor, action) {
                breach_reports.push(BreachReport {
                    event: x.id.to_hex(),
                    reported_by: x.sender.to_string(),
                });
            }
        }
        // Conditions that must all be met lapse it only once each is.
        if a.unless_combine == Some(Combine::All)
            && !(0..unless.len()).all(|ci| lapse_claims.iter().any(|c| c.condition == ci))
        {
            lapse_claims.clear();
        }
        let allegations: Vec<&Msg<'_>> = msgs
            .iter()
            .filter(|x| x.sent_at <= at.0 && matches!(x.body, Some(Structured::Allegation { assurance, .. }) if *assurance == id))
            .collect();
        let rulings: Vec<Ruling> = msgs
            .iter()
            .filter(|x| x.sent_at <= at.0)
            .filter_map(|x| match x.body {
                Some(Structured::Finding {
                    assurance,
                    allegation,
                    breached,
                    lapsed,
                    text,
                }) if *assurance == id => Some(Ruling {
                    id: x.id.to_hex(),
                    by: x.sender.to_string(),
                    sent_at_ms: x.sent_at,
                    // Only an allegation this transcript holds (a hex id).
                    allegation: allegation.clone().filter(|al| find(al).is_some()),
                    breached: *breached,
                    lapsed: *lapsed,
                    text: text.clone(),
                }),
                _ => None,
            })
            .collect();
        let ruled: Vec<String> = allegations
            .iter()
            .map(|al| al.id.to_hex())
            .filter(|al| {
                rulings
                    .iter()
                    .any(|r| r.allegation.as_deref() == Some(al.as_str()))
            })
            .collect();
        let answered = allegations
            .iter()
            .filter(|al| {
                msgs.iter().any(|x| {
                    x.sent_at <= at.0
                        && x.sender == m.sender
                        && matches!(x.body, Some(Structured::Reply { allegation, .. }) if *allegation == al.id.to_hex())
                })
            })
            .map(|al| al.id.to_hex())
            .collect();
        let mut reciprocated_by: Vec<String> = msgs
            .iter()
            .filter(|x| x.sent_at <= at.0)
            .filter_map(|x| match x.body {
                Some(Structured::Assurance(b))
                    if b.reciprocates.as_deref() == Some(id.as_str()) =>
                {
                    Some(x.id.to_hex())
                }
                _ => None,
            })
            .collect();
        if let Some(r) = a.reciprocates.as_deref().filter(|r| find(r).is_some()) {
            reciprocated_by.push(r.to_string());
        }
        assurances.push(AssuranceView {
            id: id.clone(),
            sent_at_ms: m.sent_at,
            issuer: m.sender.to_string(),
            beneficiaries: a.beneficiaries.clone(),
            wording: a.wording.clone(),
            assurance: a.clone(),
            state,
            since_ms: since,
            valid_until_ms: a.valid_until_ms,
            reciprocated_by,
            lapse_claims,
            breach_reports,
            rulings,
            ruled,
            schedule,
            allegations: allegations.iter().map(|x| x.id.to_hex()).collect(),
            answered,
            provisos,
            guarantees: guarantees(&id, &msgs, at.0),
            findings: msgs
                .iter()
                .filter(|x| x.sent_at <= at.0 && matches!(x.body, Some(Structured::Finding { assurance, .. }) if *assurance == id))
                .map(|x| x.id.to_hex())
                .collect(),
        });
    }
    let red_lines = msgs
        .iter()
        .filter(|m| m.sent_at <= at.0)
        .filter_map(|m| match m.body {
            Some(Structured::RedLine(r)) => {
                let (state, since_ms, schedule) =
                    provisos::red_line_state(m, (r.valid_from_ms, r.valid_until_ms), &msgs, at.0);
                Some(RedLineView {
                    id: m.id.to_hex(),
                    sent_at_ms: m.sent_at,
                    issuer: m.sender.to_string(),
                    red_line: r.clone(),
                    state,
                    since_ms,
                    schedule,
                })
            }
            _ => None,
        })
        .collect();
    let mut awaiting = Vec::new();
    for a in &assurances {
        for p in a.provisos.iter().filter(|p| p.overdue) {
            awaiting.push(Awaiting {
                id: a.id.clone(),
                from: format!("the mediator or {}", a.issuer),
                due_ms: p.proviso.by_ms,
                overdue: true,
                kind: "proviso",
            });
        }
    }
    for m in msgs.iter().filter(|m| m.sent_at <= at.0) {
        match m.body {
            Some(Structured::Allegation {
                assurance,
                reply_by_ms,
                ..
            }) => {
                let Some(issuer) = find(assurance).map(|a| a.sender.clone()) else {
                    continue;
                };
                let me = m.id.to_hex();
                let replied = msgs.iter().any(|x| {
                    x.sent_at <= at.0
                        && match x.body {
                            Some(Structured::Reply { allegation, .. }) => *allegation == me,
                            Some(Structured::Finding { allegation, .. }) => {
                                allegation.as_deref() == Some(me.as_str())
                            }
                            _ => false,
                        }
                });
                if !replied {
                    awaiting.push(Awaiting {
                        id: m.id.to_hex(),
                        from: issuer.to_string(),
                        due_ms: *reply_by_ms,
                        overdue: at.0 >= *reply_by_ms,
                        kind: "allegation",
                    });
                }
            }
            Some(Structured::Request { reply_by_ms, .. }) => {
                let answered = entries.iter().any(|e| {
                    let h = e.payload.header();
                    h.in_reply_to == Some(m.id) && h.sent_at.0 <= at.0
                });
                if !answered {
                    awaiting.push(Awaiting {
                        id: m.id.to_hex(),
                        from: "the addressees".into(),
                        due_ms: *reply_by_ms,
                        overdue: at.0 >= *reply_by_ms,
                        kind: "request",
                    });
                }
            }
            _ => {}
        }
    }
    // Sender interleaving must not change the board: order by send time, then id.
    assurances.sort_by(|a, b| (a.sent_at_ms, &a.id).cmp(&(b.sent_at_ms, &b.id)));
    let mut red_lines: Vec<RedLineView> = red_lines;
    red_lines.sort_by(|a, b| (a.sent_at_ms, &a.id).cmp(&(b.sent_at_ms, &b.id)));
    awaiting.sort_by(|a, b| (a.due_ms, &a.id).cmp(&(b.due_ms, &b.id)));
    Board {
        at_ms: at.0,
        assurances,
        red_lines,
        relations,
        awaiting,
        stubs: entries
            .iter()
            .filter(|e| matches!(e.payload, Payload::Stub { .. }))
            .count(),
        unauthorized,
    }
}

/// Marks each relation disputed by a `dispute` sent by `at`.
fn disputes(
    relations: &mut [Declared],
    msgs: &[Msg<'_>],
    canon: &dyn Fn(&Actor) -> Actor,
    at: i64,
) {
    for m in msgs.iter().filter(|m| m.sent_at <= at) {
        if let Some(Structured::Dispute {
            subject,
            relation,
            object,
            ..
        }) = m.body
        {
            let (s, o) = (canon(subject), canon(object));
            for d in relations
                .iter_mut()
                .filter(|d| d.relation == *relation && d.subject == s && d.object == o)
            {
                if !d.disputed_by.contains(&m.sender.to_string()) {
                    d.disputed_by.push(m.sender.to_string());
                    d.disputed_by.sort();
                }
            }
        }
    }
}

/// The guarantees of assurance `id` sent by `at`.
fn guarantees(id: &str, msgs: &[Msg<'_>], at: i64) -> Vec<GuaranteeView> {
    msgs.iter()
        .filter(|m| m.sent_at <= at)
        .filter_map(|m| match m.body {
            Some(Structured::Guarantee {
                assurance,
                response,
                wording,
            }) if assurance == id => Some(GuaranteeView {
                id: m.id.to_hex(),
                guarantor: m.sender.to_string(),
                response: response.clone(),
                wording: wording.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The assurance body of a message, if it is one.
pub fn assurance_of(payload: &Payload) -> Option<&Assurance> {
    match payload {
        Payload::Full {
            body: Body::Structured(s),
            ..
        } => match s.value() {
            Structured::Assurance(a) => Some(a),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::commitments::plover::EventType;
    use crate::commitments::structured::{Action, Commitment, Formality, Scope};
    use crate::payload::{Header, Role};
    use crate::transcript::{Epoch, Head, HeadVector};
    use crate::{ChannelId, Digest, Seq};

    fn h(s: &str) -> Handle {
        Handle::new(s).unwrap()
    }

    fn members() -> Vec<(Handle, Role)> {
        vec![
            (h("blue"), Role::Party),
            (h("mediator"), Role::Mediator),
            (h("red"), Role::Party),
        ]
    }

    fn roster() -> Roster {
        Roster::new(members(), true)
    }

    /// A transcript builder: every member sees every earlier message.
    struct T {
        entries: Vec<Entry>,
        heads: BTreeMap<Handle, Head>,
        epoch: Epoch,
    }

    impl T {
        fn new() -> Self {
            let epoch = Epoch::genesis(ChannelId([1; 16]))
                .successor(Digest([2; 32]))
                .unwrap();
            let heads = members()
                .into_iter()
                .map(|(m, _)| {
                    (
                        m,
                        Head {
                            seq: Seq(0),
                            digest: epoch.opening,
                        },
                    )
                })
                .collect();
            T {
                entries: Vec::new(),
                heads,
                epoch,
            }
        }

        fn push(&mut self, sender: &str, at: i64, body: Body) -> MessageId {
            let sender = h(sender);
            let prev = self.heads[&sender];
            let id = MessageId([self.entries.len() as u8 + 1; 16]);
            let header = Header {
                version: crate::payload::BodyVersion::V2,
                channel_id: ChannelId([1; 16]),
                message_id: id,
                epoch: self.epoch,
                sender: sender.clone(),
                seq: Seq(prev.seq.0 + 1),
                prev: prev.digest,
                sent_at: Timestamp(at),
                in_reply_to: None,
                body_kind: body.kind(),
                heads: HeadVector(self.heads.clone()),
            };
            let payload = Payload::Full {
                header,
                salt: [0; 16],
                body,
            };
            self.heads.insert(
                sender,
                Head {
                    seq: Seq(prev.seq.0 + 1),
                    digest: payload.digest(),
                },
            );
            self.entries.push(Entry { payload });
            id
        }

        fn s(&mut self, sender: &str, at: i64, s: Structured) -> MessageId {
            self.push(sender, at, Body::structured(s).unwrap())
        }
    }

    fn assurance(until: Option<i64>) -> Structured {
        Structured::Assurance(Assurance {
            beneficiaries: vec![Actor::Member("red".into())],
            commitment: Commitment {
                refrain: true,
                action: Action {
                    kind: EventType::Assault,
                    modes: vec![],
                    target: Some(Actor::Member("red".into())),
                },
            },
            unless: vec![LapseCondition {
                attacked_first_by: Actor::Member("red".into()),
                scope: Scope {
                    attacker_allies: Some(false),
                    attacker_proxies: Some(false),
                    attacked_allies: Some(false),
                    attacked_proxies: Some(false),
                },
            }],
            unless_combine: None,
            provided: None,
            provided_combine: None,
            reservation: String::new(),
            valid_from_ms: 1_000,
            valid_until_ms: until,
            until_revoked: until.is_none(),
            formality: Formality::NonPaper,
            authorized_by: "the cabinet".into(),
            language: "en".into(),
            translation_of: None,
            reciprocates: None,
            wording: "no first strike".into(),
        })
    }

    fn state(t: &T, at: i64) -> State {
        fold(&t.entries, &roster(), Timestamp(at)).assurances[0].state
    }

    #[test]
    fn a_fulfilment_of_proviso_u32_max_is_refused_in_words_without_overflow() {
        let mut t = T::new();
        let a = t.s("blue", 500, assurance(None));
        let hostile = Structured::Fulfilment {
            assurance: a.to_hex(),
            proviso: u32::MAX,
            fulfilled: false,
            event: None,
            text: String::new(),
        };
        assert!(hostile.summary().starts_with("[proviso 4294967296 of "));
        let shown = crate::commitments::terms::terms(&hostile);
        assert!(shown
            .iter()
            .any(|t| t.value.starts_with("proviso 4294967296 ")));
        t.s("blue", 600, hostile);
        let board = fold(&t.entries, &roster(), Timestamp(1_000));
        let refused = &board.unauthorized[0];
        assert_eq!(refused.refusal.rule, authority::Rule::WrongKind);
        assert!(
            refused.words.contains("not a proviso 4294967296"),
            "{}",
            refused.words
        );
    }

    #[test]
    fn activation_needs_the_beneficiarys_receipt_and_the_start_of_validity() {
        let mut t = T::new();
        t.s("blue", 500, assurance(Some(5_000)));
        assert_eq!(
            state(&t, 2_000),
            State::Proposed,
            "red has not receipted it"
        );
        t.push("red", 1_500, Body::Receipt);
        assert_eq!(state(&t, 999), State::Proposed, "not yet valid");
        assert_eq!(
            state(&t, 1_499),
            State::Proposed,
            "red's receipt is timed at its sent_at"
        );
        assert_eq!(state(&t, 1_500), State::Active);
        assert_eq!(state(&t, 4_999), State::Active);
        assert_eq!(state(&t, 5_000), State::Expired, "windows are half-open");
    }

    #[test]
    fn revocation_and_suspension_take_effect_exactly_never_before_sent() {
        let mut t = T::new();
        let a = t.s("blue", 500, assurance(None));
        t.push("red", 600, Body::Receipt);
        t.s(
            "blue",
            3_000,
            Structured::Suspend {
                assurance: Some(a.to_hex()),
                red_line: None,
                from_ms: 2_000,
                until_ms: Some(4_000),
                text: String::new(),
            },
        );
        assert_eq!(
            state(&t, 2_999),
            State::Active,
            "a suspension never takes effect before it was sent"
        );
        assert_eq!(state(&t, 3_000), State::Suspended);
        assert_eq!(state(&t, 3_999), State::Suspended);
        assert_eq!(state(&t, 4_000), State::Active);
        // Red cannot revoke blue's assurance; blue can.
        t.s(
            "red",
            5_000,
            Structured::Revoke {
                assurance: Some(a.to_hex()),
                red_line: None,
                effective_ms: 5_000,
                text: String::new(),
            },
        );
        assert_eq!(state(&t, 6_000), State::Active);
        t.s(
            "blue",
            7_000,
            Structured::Revoke {
                assurance: None,
                red_line: None,
                effective_ms: 8_000,
                text: "all withdrawn".into(),
            },
        );
        assert_eq!(state(&t, 7_999), State::Active);
        assert_eq!(state(&t, 8_000), State::Revoked);
    }

    #[test]
    fn revoking_or_suspending_all_leaves_the_assurances_given_after() {
        let mut t = T::new();
        t.s("blue", 500, assurance(None));
        for body in [
            Structured::Revoke {
                assurance: None,
                red_line: None,
                effective_ms: 700,
                text: "all withdrawn".into(),
            },
            Structured::Suspend {
                assurance: None,
                red_line: None,
                from_ms: 700,
                until_ms: None,
                text: "all paused".into(),
            },
        ] {
            t.s("blue", 700, body);
        }
        t.s("blue", 800, assurance(None));
        t.push("red", 900, Body::Receipt);
        let board = fold(&t.entries, &roster(), Timestamp(2_000));
        let states: Vec<State> = board.assurances.iter().map(|a| a.state).collect();
        assert_eq!(states, [State::Revoked, State::Active]);
    }

    #[test]
    fn a_lapse_claim_never_lapses_until_confirmed_or_found() {
        let mut t = T::new();
        let a = t.s("blue", 500, assurance(None));
        t.push("red", 1_000, Body::Receipt);
        let attack = Action {
            kind: EventType::Assault,
            modes: vec!["aerial".into()],
            target: Some(Actor::Member("blue".into())),
        };
        let ev = t.s(
            "mediator",
            2_000,
            Structured::Event {
                actor: Actor::Member("red".into()),
                action: attack,
                from_ms: 1_900,
                until_ms: 1_950,
                place: None,
                text: String::new(),
            },
        );
        let board = fold(&t.entries, &roster(), Timestamp(2_500));
        assert_eq!(board.assurances[0].state, State::Active);
        assert_eq!(board.assurances[0].lapse_claims.len(), 1);
        assert_eq!(board.assurances[0].lapse_claims[0].event, ev.to_hex());
        // Red confirming blue's assurance lapsed changes nothing; a party's "finding" neither.
        t.s(
            "red",
            3_000,
            Structured::ConfirmLapse {
                assurance: a.to_hex(),
                event: Some(ev.to_hex()),
                text: String::new(),
            },
        );
        t.s(
            "red",
            3_100,
            Structured::Finding {
                assurance: a.to_hex(),
                allegation: None,
                breached: false,
                lapsed: true,
                text: String::new(),
            },
        );
        assert_eq!(state(&t, 3_500), State::Active);
        t.s(
            "mediator",
            4_000,
            Structured::Finding {
                assurance: a.to_hex(),
                allegation: None,
                breached: false,
                lapsed: true,
                text: "found".into(),
            },
        );
        assert_eq!(state(&t, 3_999), State::Active);
        assert_eq!(state(&t, 4_000), State::Lapsed);
        assert!(
            fold(&t.entries, &roster(), Timestamp(4_000)).assurances[0]
                .lapse_claims
                .is_empty(),
            "decided: no longer a claim"
        );
    }

    #[test]
    fn allegations_await_the_issuers_reply() {
        let mut t = T::new();
        let a = t.s("blue", 500, assurance(None));
        let al = t.s(
            "red",
            1_000,
            Structured::Allegation {
                assurance: a.to_hex(),
                evidence: "a drone over the border".into(),
                reply_by_ms: 2_000,
            },
        );
        let board = fold(&t.entries, &roster(), Timestamp(1_999));
        assert_eq!(board.awaiting.len(), 1);
        assert!(!board.awaiting[0].overdue);
        assert!(fold(&t.entries, &roster(), Timestamp(2_000)).awaiting[0].overdue);
        t.s(
            "blue",
            2_100,
            Structured::Reply {
                allegation: al.to_hex(),
                text: "a weather balloon".into(),
            },
        );
        let board = fold(&t.entries, &roster(), Timestamp(2_200));
        assert!(board.awaiting.is_empty());
        assert_eq!(board.assurances[0].answered, vec![al.to_hex()]);
    }

    proptest! {
        /// Members' messages interleaved in any order (each sender's own in
        /// its order) fold to the same board.
        #[test]
        fn the_board_does_not_depend_on_how_senders_interleave(picks in proptest::collection::vec(0usize..3, 12), at in 0i64..12_000) {
            let mut t = T::new();
            let a = t.s("blue", 500, assurance(Some(9_000)));
            t.push("red", 1_200, Body::Receipt);
            t.s("blue", 4_000, Structured::Suspend { assurance: Some(a.to_hex()), red_line: None, from_ms: 4_000, until_ms: Some(5_000), text: String::new() });
            t.s("red", 6_000, Structured::Allegation { assurance: a.to_hex(), evidence: "e".into(), reply_by_ms: 7_000 });
            t.s("mediator", 8_000, Structured::Note { text: "n".into() });
            // Per-sender queues, then interleave by the random picks.
            let mut queues: Vec<Vec<Entry>> = vec![Vec::new(); 3];
            for e in &t.entries {
                let i = ["blue", "red", "mediator"].iter().position(|n| e.payload.header().sender.as_str() == *n).unwrap();
                queues[i].push(e.clone());
            }
            let mut mixed = Vec::new();
            let mut qs: Vec<std::collections::VecDeque<Entry>> = queues.into_iter().map(Into::into).collect();
            for p in picks.iter().cycle().take(100) {
                if let Some(e) = qs[*p].pop_front() { mixed.push(e); }
            }
            for q in &mut qs { mixed.extend(q.drain(..)); }
            let one = serde_json::to_string(&fold(&t.entries, &roster(), Timestamp(at))).unwrap();
            let two = serde_json::to_string(&fold(&mixed, &roster(), Timestamp(at))).unwrap();
            prop_assert_eq!(one, two);
        }
    }
}
