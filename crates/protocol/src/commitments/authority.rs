//! Who may make which act. A finding rules only from the channel's mediator,
//! and only where the policy lets it read what it rules on; a lapse is
//! confirmed, and a commitment revoked or suspended, only by its issuer; an
//! allegation is answered only by the accused; only the mediator conveys.
//!
//! The same rules serve twice: the client refuses to send an act its user
//! may not make, and every board ignores such an act from anyone else's
//! client (listing it, and the member machine raising `unauthorized_act`),
//! so a party's "finding" can never look like the mediator's ruling.
//!
//! ```
//! use backchannel_protocol::commitments::authority::{check, Named, Rule, Sender};
//! use backchannel_protocol::commitments::Structured;
//! use backchannel_protocol::payload::Role;
//! use backchannel_protocol::Handle;
//!
//! let blue = Handle::new("blue").unwrap();
//! let finding = Structured::Finding {
//!     assurance: "ab".repeat(16),
//!     allegation: None,
//!     breached: true,
//!     lapsed: false,
//!     text: "blue fired first".into(),
//! };
//! let party = Sender { handle: &blue, role: Some(Role::Party), mediator_reads: true };
//! let refused = check(&finding, &party, |_| Named::Unknown).unwrap_err();
//! assert_eq!(refused.rule, Rule::MediatorFinds);
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::structured::{short, Structured};
use crate::ids::{Digest, Handle, MessageId};
use crate::payload::{Body, Payload, Role};

/// A rule an act broke. The `code` of each is stable (JSON, alerts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Only the channel's mediator makes findings.
    MediatorFinds,
    /// The mediator rules only where the policy lets it read
    /// (`mediator_reads`): it cannot rule on what it cannot read.
    FindingNeedsMediatorReads,
    /// Only the issuer confirms that its own assurance lapsed.
    IssuerConfirmsLapse,
    /// Only the issuer revokes or suspends its own commitment.
    IssuerRevokes,
    /// Only the issuer of the assurance answers an allegation against it.
    AccusedReplies,
    /// Only the mediator conveys a principal's message in its own words.
    MediatorConveys,
    /// The act names a message of another kind than it acts on (a red
    /// line where an assurance is meant, a text where an allegation is).
    WrongKind,
    /// Only the issuer (confirming) or the mediator (finding, where it
    /// reads) decides whether a proviso was fulfilled.
    ProvisoDecided,
    /// A guarantee is a third party's: the issuer cannot guarantee itself.
    GuarantorIsThirdParty,
}

impl Rule {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Rule::MediatorFinds => "mediator_finds",
            Rule::FindingNeedsMediatorReads => "finding_needs_mediator_reads",
            Rule::IssuerConfirmsLapse => "issuer_confirms_lapse",
            Rule::IssuerRevokes => "issuer_revokes",
            Rule::AccusedReplies => "accused_replies",
            Rule::MediatorConveys => "mediator_conveys",
            Rule::WrongKind => "wrong_kind",
            Rule::ProvisoDecided => "proviso_decided",
            Rule::GuarantorIsThirdParty => "guarantor_is_third_party",
        }
    }

    /// The rule in words.
    pub fn words(self) -> &'static str {
        match self {
            Rule::MediatorFinds => "only the mediator's finding rules",
            Rule::FindingNeedsMediatorReads => {
                "the mediator rules only in a channel whose policy lets it read the content (mediator_reads); in this one it holds only stubs"
            }
            Rule::IssuerConfirmsLapse => "only the issuer of an assurance confirms that it lapsed",
            Rule::IssuerRevokes => "only the issuer of a commitment revokes or suspends it",
            Rule::AccusedReplies => "only the issuer of the assurance answers an allegation against it",
            Rule::MediatorConveys => "only the mediator conveys a message in its own words",
            Rule::WrongKind => "an act must name a message of the kind it acts on",
            Rule::ProvisoDecided => {
                "only the issuer of an assurance (confirming) or the mediator (finding, where it reads) decides whether a proviso was fulfilled; another member's report is a claim"
            }
            Rule::GuarantorIsThirdParty => {
                "a guarantee is a third party's undertaking: the issuer of an assurance cannot guarantee it"
            }
        }
    }
}

/// Who sends an act, as the message's epoch knew it.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    /// Its handle.
    pub handle: &'a Handle,
    /// Its role (none if not a member of that epoch).
    pub role: Option<Role>,
    /// Whether the epoch's policy let the mediator read.
    pub mediator_reads: bool,
}

/// What a referenced message is, as far as the reader holds it.
#[derive(Clone, Copy, Debug)]
pub enum Named<'a> {
    /// A typed payload, read in full.
    Structured {
        /// Its sender.
        sender: &'a Handle,
        /// Its body.
        body: &'a Structured,
    },
    /// Held, but not a typed payload here (a text, a stub): its sender is
    /// known, its kind may not be.
    Other {
        /// Its sender.
        sender: &'a Handle,
        /// True for a stub (digest only): the kind is unknown.
        stub: bool,
    },
    /// Not held: nothing can be judged from it.
    Unknown,
}

/// An act its sender may not make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The rule broken.
    pub rule: Rule,
    /// The act, in words ("a finding").
    pub act: &'static str,
    /// Who sent (or would send) it.
    pub sender: Handle,
    /// The message it names (hex), if any.
    pub names: Option<String>,
    /// Who may make it (the issuer, the mediator), when known.
    pub may: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = self
            .names
            .as_deref()
            .map_or(String::new(), |n| format!(" on {}", short(n)));
        write!(
            f,
            "{} sent {}{on}: {}",
            self.sender,
            self.act,
            self.rule.words()
        )?;
        if let Some(may) = &self.may {
            write!(f, " ({may})")?;
        }
        Ok(())
    }
}

impl Refusal {
    /// The refusal as its would-be sender reads it: "a finding on
    /// 0a0a0a0a is not yours to make: only the mediator's finding rules".
    pub fn refused(&self) -> String {
        let on = self
            .names
            .as_deref()
            .map_or(String::new(), |n| format!(" on {}", short(n)));
        let may = self
            .may
            .as_deref()
            .map_or(String::new(), |m| format!(" ({m})"));
        if self.rule == Rule::WrongKind {
            return format!(
                "{}{on} cannot be made{may}: {}",
                self.act,
                self.rule.words()
            );
        }
        format!(
            "{}{on} is not yours to make: {}{may}",
            self.act,
            self.rule.words()
        )
    }
}

/// The act's name in words, for refusals.
fn act_words(s: &Structured) -> &'static str {
    match s {
        Structured::Finding { .. } => "a finding",
        Structured::ConfirmLapse { .. } => "a lapse confirmation",
        Structured::Revoke { .. } => "a revocation",
        Structured::Suspend { .. } => "a suspension",
        Structured::Reply { .. } => "a reply to an allegation",
        Structured::Conveyed { .. } => "a conveyed message",
        Structured::Allegation { .. } => "an allegation",
        Structured::Assurance(_) => "a reciprocal assurance",
        Structured::Fulfilment { .. } => "a decision on a proviso",
        Structured::Guarantee { .. } => "a guarantee",
        _ => "an act",
    }
}

/// Checks one act against the rules. `lookup` says what a referenced
/// message (hex id) is; acts naming messages not held are judged on what
/// is known (a stub's sender, never its kind).
pub fn check<'a>(
    body: &Structured,
    sender: &Sender<'_>,
    lookup: impl Fn(&str) -> Named<'a>,
) -> Result<(), Refusal> {
    let refuse = |rule: Rule, names: Option<&str>, may: Option<String>| Refusal {
        rule,
        act: act_words(body),
        sender: sender.handle.clone(),
        names: names.map(str::to_string),
        may,
    };
    let is_mediator = sender.role == Some(Role::Mediator);
    // The message of the wanted kind an act names: wrong kind, or its
    // sender (the assurance's or red line's issuer).
    let named = |id: &str,
                 wanted: fn(&Structured) -> bool,
                 kind: &str|
     -> Result<Option<&'a Handle>, Refusal> {
        match lookup(id) {
            Named::Structured { sender, body } if wanted(body) => Ok(Some(sender)),
            Named::Structured { body, .. } => Err(refuse(
                Rule::WrongKind,
                Some(id),
                Some(format!("{} is {}, not {kind}", short(id), kind_words(body))),
            )),
            Named::Other { stub: false, .. } => Err(refuse(
                Rule::WrongKind,
                Some(id),
                Some(format!("{} is not {kind}", short(id))),
            )),
            Named::Other { sender, stub: true } => Ok(Some(sender)),
            Named::Unknown => Ok(None),
        }
    };
    let assurance = |id: &str| {
        named(
            id,
            |b| matches!(b, Structured::Assurance(_)),
            "an assurance",
        )
    };
    let red_line = |id: &str| named(id, |b| matches!(b, Structured::RedLine(_)), "a red line");
    let issuer_only = |rule: Rule, id: &str| -> Result<(), Refusal> {
        match assurance(id)? {
            Some(issuer) if issuer != sender.handle => Err(refuse(
                rule,
                Some(id),
                Some(format!("its issuer is {issuer}")),
            )),
            _ => Ok(()),
        }
    };
    match body {
        Structured::Revoke {
            red_line: Some(r), ..
        }
        | Structured::Suspend {
            red_line: Some(r), ..
        } => match red_line(r)? {
            Some(issuer) if issuer != sender.handle => Err(refuse(
                Rule::IssuerRevokes,
                Some(r),
                Some(format!("its issuer is {issuer}")),
            )),
            _ => Ok(()),
        },
        Structured::Fulfilment {
            assurance: a,
            proviso,
            ..
        } => {
            let issuer = assurance(a)?;
            let finds = is_mediator
                && sender.mediator_reads
                && !matches!(lookup(a), Named::Other { stub: true, .. });
            if issuer.is_some_and(|i| i != sender.handle) && !finds {
                return Err(refuse(
                    Rule::ProvisoDecided,
                    Some(a),
                    Some(format!(
                        "its issuer is {}",
                        issuer.map_or("", |i| i.as_str())
                    )),
                ));
            }
            if let Named::Structured {
                body: Structured::Assurance(x),
                ..
            } = lookup(a)
            {
                let n = x.provided.as_ref().map_or(0, Vec::len);
                if *proviso as usize >= n {
                    return Err(refuse(
                        Rule::WrongKind,
                        Some(a),
                        Some(format!(
                            "{} has {n} provisos, not a proviso {}",
                            short(a),
                            u64::from(*proviso) + 1
                        )),
                    ));
                }
            }
            Ok(())
        }
        Structured::Guarantee { assurance: a, .. } => match assurance(a)? {
            Some(issuer) if issuer == sender.handle => Err(refuse(
                Rule::GuarantorIsThirdParty,
                Some(a),
                Some(format!("{issuer} issued it")),
            )),
            _ => Ok(()),
        },
        Structured::Finding {
            assurance: a,
            allegation,
            ..
        } => {
            if !is_mediator {
                return Err(refuse(
                    Rule::MediatorFinds,
                    Some(a),
                    Some(format!("{} is not the mediator here", sender.handle)),
                ));
            }
            // It cannot rule on what it cannot read: in such an epoch, or
            // on an assurance it holds only as a stub (from an epoch before
            // the policy let it read).
            if !sender.mediator_reads || matches!(lookup(a), Named::Other { stub: true, .. }) {
                return Err(refuse(Rule::FindingNeedsMediatorReads, Some(a), None));
            }
            assurance(a)?;
            if let Some(al) = allegation {
                alleged(al, a, &lookup)
                    .map_err(|may| refuse(Rule::WrongKind, Some(al), Some(may)))?;
            }
            Ok(())
        }
        Structured::ConfirmLapse { assurance: a, .. } => issuer_only(Rule::IssuerConfirmsLapse, a),
        Structured::Revoke { assurance, .. } | Structured::Suspend { assurance, .. } => assurance
            .as_deref()
            .map_or(Ok(()), |a| issuer_only(Rule::IssuerRevokes, a)),
        Structured::Allegation { assurance: a, .. } => assurance(a).map(drop),
        Structured::Assurance(x) => x
            .reciprocates
            .as_deref()
            .map_or(Ok(()), |r| assurance(r).map(drop)),
        Structured::Reply { allegation, .. } => match lookup(allegation) {
            Named::Structured {
                body: Structured::Allegation { assurance: a, .. },
                ..
            } => match assurance(a) {
                Ok(Some(issuer)) if issuer != sender.handle => Err(refuse(
                    Rule::AccusedReplies,
                    Some(allegation),
                    Some(format!("the accused is {issuer}")),
                )),
                _ => Ok(()),
            },
            Named::Structured { body, .. } => Err(refuse(
                Rule::WrongKind,
                Some(allegation),
                Some(format!(
                    "{} is {}, not an allegation",
                    short(allegation),
                    kind_words(body)
                )),
            )),
            Named::Other { stub: false, .. } => Err(refuse(
                Rule::WrongKind,
                Some(allegation),
                Some(format!("{} is not an allegation", short(allegation))),
            )),
            _ => Ok(()),
        },
        Structured::Conveyed { .. } if !is_mediator => Err(refuse(
            Rule::MediatorConveys,
            None,
            Some(format!("{} is not the mediator here", sender.handle)),
        )),
        _ => Ok(()),
    }
}

/// Is `allegation` an allegation about `assurance`? `Err` says why not.
fn alleged<'a>(
    allegation: &str,
    assurance: &str,
    lookup: &impl Fn(&str) -> Named<'a>,
) -> Result<(), String> {
    match lookup(allegation) {
        Named::Structured {
            body: Structured::Allegation { assurance: a, .. },
            ..
        } if a != assurance => Err(format!(
            "allegation {} is about {}, not {}",
            short(allegation),
            short(a),
            short(assurance)
        )),
        Named::Structured {
            body: Structured::Allegation { .. },
            ..
        }
        | Named::Unknown
        | Named::Other { stub: true, .. } => Ok(()),
        Named::Structured { body, .. } => Err(format!(
            "{} is {}, not an allegation",
            short(allegation),
            kind_words(body)
        )),
        Named::Other { stub: false, .. } => {
            Err(format!("{} is not an allegation", short(allegation)))
        }
    }
}

/// "a red line", "an event report": a kind in words.
pub fn kind_words(s: &Structured) -> &'static str {
    match s {
        Structured::Acknowledgement { .. } => "an acknowledgement",
        Structured::Allegation { .. } => "an allegation",
        Structured::Assurance(_) => "an assurance",
        Structured::ConfirmLapse { .. } => "a lapse confirmation",
        Structured::Conveyed { .. } => "a conveyed message",
        Structured::EscrowConfirmation { .. } => "an escrow confirmation",
        Structured::EscrowExchange { .. } => "an escrowed exchange",
        Structured::Event { .. } => "an event report",
        Structured::Finding { .. } => "a finding",
        Structured::Note { .. } => "a note",
        Structured::RedLine(_) => "a red line",
        Structured::Dispute { .. } => "a disputed relation",
        Structured::Fulfilment { .. } => "a proviso's fulfilment",
        Structured::Guarantee { .. } => "a guarantee",
        Structured::Relate { .. } => "a declared relation",
        Structured::Reply { .. } => "a reply",
        Structured::Request { .. } => "a request for explanation",
        Structured::Revoke { .. } => "a revocation",
        Structured::Suspend { .. } => "a suspension",
    }
}

/// The members and policy of a channel, per epoch where the transcript
/// holds the proposal that opened it, else the current ones.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    /// The current members and roles.
    pub members: Vec<(Handle, Role)>,
    /// Whether the current policy lets the mediator read.
    pub mediator_reads: bool,
    /// Per epoch (its opening digest): members and `mediator_reads`.
    epochs: BTreeMap<Digest, (Vec<(Handle, Role)>, bool)>,
}

impl Roster {
    /// The current members and policy; epochs are learnt from the
    /// transcript by [`Roster::learn`].
    pub fn new(members: Vec<(Handle, Role)>, mediator_reads: bool) -> Roster {
        Roster {
            members,
            mediator_reads,
            epochs: BTreeMap::new(),
        }
    }

    /// Records the epochs whose opening proposals `payloads` hold.
    pub fn learn<'p>(mut self, payloads: impl IntoIterator<Item = &'p Payload>) -> Roster {
        for p in payloads {
            if let Payload::Full {
                body: Body::Creation(x) | Body::Amendment(x),
                ..
            } = p
            {
                let members = x
                    .members
                    .iter()
                    .map(|m| (m.handle.clone(), m.role))
                    .collect();
                self.epochs
                    .insert(p.digest(), (members, x.policy.mediator_reads));
            }
        }
        self
    }

    /// The sender of a message of the epoch opened by `opening`.
    pub fn sender<'a>(&'a self, handle: &'a Handle, opening: &Digest) -> Sender<'a> {
        let (members, reads) = self
            .epochs
            .get(opening)
            .map_or((&self.members, self.mediator_reads), |(m, r)| (m, *r));
        Sender {
            handle,
            role: members.iter().find(|(h, _)| h == handle).map(|(_, r)| *r),
            mediator_reads: reads,
        }
    }

    /// The current mediator.
    pub fn mediator(&self) -> Option<&Handle> {
        self.members
            .iter()
            .find(|(_, r)| *r == Role::Mediator)
            .map(|(h, _)| h)
    }
}

/// An act a board ignores, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// The message, hex.
    pub message: String,
    /// Its message id.
    #[serde(skip)]
    pub id: MessageId,
    /// When its sender sent it.
    pub sent_at_ms: i64,
    /// What was refused.
    #[serde(flatten)]
    pub refusal: Refusal,
    /// The whole reason, in words.
    pub words: String,
}

/// Every act of a channel's transcript its sender could not make, in
/// transcript order.
pub fn audit<'p>(payloads: &[&'p Payload], roster: &Roster) -> Vec<Ignored> {
    let by_id: BTreeMap<MessageId, &Payload> = payloads
        .iter()
        .map(|p| (p.header().message_id, *p))
        .collect();
    let lookup = |id: &str| -> Named<'p> {
        let Some(p) = MessageId::from_hex(id).ok().and_then(|m| by_id.get(&m)) else {
            return Named::Unknown;
        };
        match p {
            Payload::Full {
                header,
                body: Body::Structured(s),
                ..
            } => Named::Structured {
                sender: &header.sender,
                body: s.value(),
            },
            Payload::Full { header, .. } => Named::Other {
                sender: &header.sender,
                stub: false,
            },
            Payload::Stub { header, .. } => Named::Other {
                sender: &header.sender,
                stub: true,
            },
        }
    };
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Full {
                header,
                body: Body::Structured(s),
                ..
            } => {
                let sender = roster.sender(&header.sender, &header.epoch.opening);
                check(s.value(), &sender, lookup)
                    .err()
                    .map(|refusal| Ignored {
                        message: header.message_id.to_hex(),
                        id: header.message_id,
                        sent_at_ms: header.sent_at.0,
                        words: refusal.to_string(),
                        refusal,
                    })
            }
            _ => None,
        })
        .collect()
}
