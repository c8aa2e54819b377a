//! What-if: run a hypothetical event through the commitments in force and
//! follow the cascade, in order. Each event has its place (step 1 is the
//! hypothetical, each later step a red line's declared response to an
//! earlier one), and every condition is judged against what happened
//! *before* the act in question: an issuer that struck first is not
//! released by the retaliation it drew.
//!
//! Four things are told apart: a **lapse** (a condition released the
//! issuer), a **breach** (an act contradicts its actor's own assurance still
//! in force), a **red line fired**, and the **declared response** it sets
//! off (a new step, itself checked for breaches). Each assurance's state is
//! kept per reading of its open scopes, so a lapse under some readings
//! never hides a later lapse under the rest. Every effect names the rule,
//! the fact, the reading, the relation (and who declared it) and the
//! channel; a step where nothing follows says why.
//!
//! Each red line fires at most once and each reading lapses at most once,
//! so every cascade ends; everything is visited in a fixed order, so the
//! result is deterministic.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use super::authority::Roster;
use super::fold::{fold, Declared, Entry, State};
use super::provisos::{fulfils, ProvisoState, ProvisoView};
use super::readings::{
    canonical, contradicts, counts_as_attacker, excluded, meets, related, struck_first, Reading,
    Readings,
};
use super::structured::{
    relation_words as kind_words, Action, Actor, Assurance, Combine, LapseCondition, Place,
    RedLine, RelationKind, Scope, Structured,
};
use super::terms;
use crate::ids::{ChannelId, Timestamp};
use crate::payload::{Body, Payload};

/// One channel's transcript and roster, as the what-if reads them.
#[derive(Clone, Copy, Debug)]
pub struct ChannelInput<'a> {
    /// The channel.
    pub channel: ChannelId,
    /// Its transcript, as folded.
    pub entries: &'a [Entry],
    /// Its members and policy.
    pub roster: &'a Roster,
}

/// One effect of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// A red line fires: its issuer's declared response follows as a step.
    Fires {
        /// The red line, hex.
        red_line: String,
        /// Its channel, hex.
        channel: String,
        /// Its issuer.
        issuer: String,
        /// Its wording.
        wording: String,
        /// Its trigger, in words.
        trigger: String,
        /// The declared response, as an event.
        response: String,
        /// The step the response is.
        response_step: usize,
        /// Assurances the response would breach, hex.
        response_breaches: Vec<String>,
        /// The readings of its scope under which it fires, in words.
        reading_words: String,
        /// True if it fires under some readings only.
        readings_diverge: bool,
        /// The declared relations the act went through.
        relations: Vec<Declared>,
    },
    /// A breach sets off a third party's guarantee: its undertaking
    /// follows as a step.
    Guarantee {
        /// The guarantee, hex.
        guarantee: String,
        /// Its channel, hex.
        channel: String,
        /// The guarantor.
        guarantor: String,
        /// Its wording.
        wording: String,
        /// The assurance breached, hex.
        assurance: String,
        /// The undertaking, as an event.
        response: String,
        /// The step it is.
        response_step: usize,
    },
    /// The act would fulfil a proviso of an assurance: a claim until the
    /// mediator finds it or the issuer confirms it.
    Fulfils {
        /// The assurance, hex.
        assurance: String,
        /// Its channel, hex.
        channel: String,
        /// Its issuer.
        issuer: String,
        /// Its wording.
        wording: String,
        /// Which proviso (from 1).
        proviso: usize,
        /// The proviso, in words.
        proviso_words: String,
    },
    /// A condition releases an assurance's issuer, under some readings.
    Lapses {
        /// The assurance, hex.
        assurance: String,
        /// Its channel, hex.
        channel: String,
        /// Its issuer.
        issuer: String,
        /// Its wording.
        wording: String,
        /// Which condition (index into `unless`).
        condition: usize,
        /// The condition, in words.
        condition_words: String,
        /// The readings of that condition under which it lapses here.
        readings: Vec<Reading>,
        /// True if it lapses here under some readings only.
        readings_diverge: bool,
        /// The readings, in words: "under all readings" or "only if …".
        reading_words: String,
        /// The declared relations the act went through.
        relations: Vec<Declared>,
        /// Earlier steps where it lapsed under other readings.
        earlier: Vec<usize>,
        /// True once it has lapsed under every reading.
        now_all: bool,
    },
    /// The act contradicts its actor's own assurance, still in force.
    Breach {
        /// The assurance, hex.
        assurance: String,
        /// Its channel, hex.
        channel: String,
        /// Its issuer (the actor).
        issuer: String,
        /// Its wording.
        wording: String,
        /// What it undertook, in words.
        undertaking: String,
        /// The readings under which it still held, in words.
        reading_words: String,
        /// True if it held under every reading.
        under_all: bool,
        /// The red line whose declared response this act is, hex: the
        /// response is itself a breach.
        in_response_to: Option<String>,
    },
}

/// Why something did not follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// No commitment names this act.
    NoCommitmentMatches,
    /// A commitment would apply but is not in force (expired, suspended,
    /// revoked, lapsed, not yet active).
    NotInForce,
    /// It already lapsed earlier in the cascade under every reading.
    AlreadyLapsed,
    /// The issuer struck first: the attack from that side is no first one.
    NotFirst,
    /// A red line already fired: the cycle is cut here.
    CycleCut,
    /// The act would meet a condition, but the issuer's wording excludes
    /// the allies or proxies it goes through.
    OutOfScope,
    /// A red line limited to a place: the event is elsewhere, or gives no
    /// place.
    Elsewhere,
    /// Conditions that must all be met: this one is, others are not yet.
    AwaitsOtherConditions,
    /// The act goes through a disputed relation, and the what-if uses only
    /// undisputed ones.
    Disputed,
}

/// How a what-if reads the transcript.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Use only relations no member disputes.
    pub undisputed_only: bool,
}

/// Why a step set off less than it might have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The reason, as a code.
    pub why: Why,
    /// The commitment concerned, hex.
    pub commitment: Option<String>,
    /// Its channel, hex.
    pub channel: Option<String>,
    /// In words.
    pub words: String,
}

/// How a step came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// An event asked about.
    Hypothetical,
    /// An event already reported in the channel, asked about.
    Reported,
    /// A red line's declared response to an earlier step.
    DeclaredResponse,
    /// A guarantor's undertaking, set off by a breach at an earlier step.
    Guarantee,
}

/// One event a what-if starts from; several run in sequence, each
/// cascade to its end before the next event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hypothesis {
    /// Who acts.
    pub actor: Actor,
    /// What, against whom.
    pub action: Action,
    /// When, if given.
    pub at_ms: Option<i64>,
    /// Where, if given (a red line limited to a place needs it).
    pub place: Option<Place>,
    /// The event report it is, hex: what was reported before it is its
    /// history, the rest is not.
    pub report: Option<String>,
}

impl Hypothesis {
    /// `actor` doing `action`, untimed.
    pub fn new(actor: Actor, action: Action) -> Hypothesis {
        Hypothesis {
            actor,
            action,
            at_ms: None,
            place: None,
            report: None,
        }
    }

    /// The event report `id` (hex) of one of `channels`, as a hypothesis.
    pub fn reported(channels: &[ChannelInput<'_>], id: &str) -> Option<Hypothesis> {
        channels
            .iter()
            .flat_map(|c| c.entries.iter().map(move |e| (c, e)))
            .find_map(|(c, e)| match &e.payload {
                Payload::Full {
                    header,
                    body: Body::Structured(s),
                    ..
                } if header.message_id.to_hex() == id => match s.value() {
                    Structured::Event {
                        actor,
                        action,
                        from_ms,
                        place,
                        ..
                    } => Some(Hypothesis {
                        actor: canonical(actor, |n| {
                            c.roster.members.iter().any(|(h, _)| h.as_str() == n)
                        }),
                        action: Action {
                            target: action.target.as_ref().map(|t| {
                                canonical(t, |n| {
                                    c.roster.members.iter().any(|(h, _)| h.as_str() == n)
                                })
                            }),
                            ..action.clone()
                        },
                        at_ms: Some(*from_ms),
                        place: place.clone(),
                        report: Some(id.to_string()),
                    }),
                    _ => None,
                },
                _ => None,
            })
    }
}

/// One event of the cascade and what it set off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Its place in the order: 1 for the hypothetical event.
    pub n: usize,
    /// The event, e.g. `green ASSAULT against red`.
    pub event: String,
    /// Who acts.
    pub actor: Actor,
    /// What, against whom.
    pub action: Action,
    /// When, where one is given (the hypothetical's evaluation time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
    /// Where, where one is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    /// Hypothetical or a declared response.
    pub origin: Origin,
    /// The step whose red line produced it (none for the first).
    pub caused_by: Option<usize>,
    /// The red line it responds to, hex.
    pub response_of: Option<String>,
    /// The event report it is, hex (a what-if from a reported event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Its effects.
    pub effects: Vec<Effect>,
    /// Why some commitments did not act (always said when nothing follows).
    pub notes: Vec<Note>,
}

/// The whole cascade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cascade {
    /// The evaluation time.
    pub at_ms: i64,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Messages held only as stubs (digests): their commitments are not
    /// in the cascade.
    pub stubs: usize,
    /// What the reader should know about the actors (names that may mean
    /// one actor in two channels).
    pub warnings: Vec<String>,
}

/// `actor KIND[/modes] against target`.
pub fn describe(actor: &Actor, action: &Action) -> String {
    let modes = if action.modes.is_empty() {
        String::new()
    } else {
        format!("/{}", action.modes.join("+"))
    };
    match &action.target {
        Some(t) => format!("{actor} {}{modes} against {t}", action.kind),
        None => format!("{actor} {}{modes}", action.kind),
    }
}

/// As [`describe`], outside actors marked.
fn describe_marked(actor: &Actor, action: &Action) -> String {
    format!("{} {}", terms::actor(actor), terms::action(action))
}

/// The readings of a red line's scope: its trigger actor's allies and
/// proxies, acts against its targets' allies and proxies.
fn line_readings(line: &RedLine) -> Readings {
    let by = line
        .trigger_actor
        .clone()
        .unwrap_or(Actor::Outside("anyone".into()));
    Readings::of(&[LapseCondition {
        attacked_first_by: by,
        scope: line.scope.unwrap_or(Scope::fixed(false)),
    }])
}

/// Under which readings `actor` doing `action` triggers `line`, and
/// through which relations: none if the type or modes differ.
fn triggers(
    line: &RedLine,
    readings: &Readings,
    actor: &Actor,
    action: &Action,
    relations: &[Declared],
) -> Option<(BTreeSet<u32>, Vec<Declared>)> {
    if !line.trigger.kind_covers(action) {
        return None;
    }
    let targets = line.target_list();
    let mut masks = BTreeSet::new();
    let mut via = Vec::new();
    for mask in readings.masks() {
        let r = readings.reading(mask)[0];
        let by = match &line.trigger_actor {
            None => Some(None),
            Some(a) => counts_as_attacker(relations, actor, a, &r),
        };
        let Some(by) = by else { continue };
        let against = if targets.is_empty() {
            Some(None)
        } else {
            action.target.as_ref().and_then(|x| {
                targets.iter().find_map(|t| {
                    if x == t {
                        return Some(None);
                    }
                    let ally = r
                        .attacked_allies
                        .then(|| related(relations, x, RelationKind::AllyOf, t));
                    let proxy = r
                        .attacked_proxies
                        .then(|| related(relations, x, RelationKind::ProxyOf, t));
                    ally.flatten().or(proxy.flatten()).map(|d| Some(d.clone()))
                })
            })
        };
        let Some(against) = against else { continue };
        masks.insert(mask);
        via.extend(by.into_iter().chain(against));
    }
    via.sort();
    via.dedup();
    (!masks.is_empty()).then_some((masks, via))
}

/// Is the event at `at` within `line`'s place? Same GeoNames id, or
/// coordinates within both radii (great-circle distance).
fn within(place: &Place, at: &Place) -> bool {
    if let (Some(a), Some(b)) = (place.geonames_id, at.geonames_id) {
        if a == b {
            return true;
        }
    }
    let (Some(la), Some(lo), Some(lb), Some(ob)) =
        (place.lat_e6, place.lon_e6, at.lat_e6, at.lon_e6)
    else {
        return false;
    };
    let rad = |e6: i32| (f64::from(e6) / 1e6).to_radians();
    let (p1, p2) = (rad(la), rad(lb));
    let dp = p2 - p1;
    let dl = rad(ob) - rad(lo);
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    let metres = 2.0 * 6_371_000.0 * h.sqrt().min(1.0).asin();
    metres <= f64::from(place.radius_m) + f64::from(at.radius_m)
}

/// A commitment the cascade can cite.
#[derive(Clone, Debug)]
struct Cited {
    id: String,
    channel: String,
    issuer: Actor,
    wording: String,
}

impl Cited {
    fn words(&self, kind: &str) -> String {
        format!(
            "{}'s {kind} {} in channel {}, \"{}\"",
            self.issuer,
            &self.id[..8.min(self.id.len())],
            &self.channel[..8.min(self.channel.len())],
            terms::first_words(&self.wording, 16)
        )
    }
}

struct Known {
    cited: Cited,
    a: Assurance,
    state: State,
    since: Option<i64>,
    readings: Readings,
    /// When it was given (valid from, or sent if later): acts before
    /// that are not its history.
    start: i64,
    /// Reading mask -> the step where it lapsed.
    lapsed: BTreeMap<u32, usize>,
    /// Its provisos, and the step that would fulfil each.
    provisos: Vec<(ProvisoView, Option<usize>)>,
}

struct Line {
    cited: Cited,
    r: RedLine,
    readings: Readings,
    state: State,
    since: Option<i64>,
    fired: Option<usize>,
}

/// A third party's guarantee of an assurance.
struct Guarantee {
    cited: Cited,
    assurance: String,
    response: Action,
    acted: Option<usize>,
}

/// An act before the one judged: a step, or a reported event.
#[derive(Clone, Debug)]
enum Before {
    Step(usize),
    Reported(String),
}

impl Before {
    fn words(&self) -> String {
        match self {
            Before::Step(n) => format!("at step {n}"),
            Before::Reported(id) => format!("in the reported event {}", &id[..8.min(id.len())]),
        }
    }
}

/// Everything the cascade reads, gathered from every channel.
struct Model {
    assurances: Vec<Known>,
    lines: Vec<Line>,
    guarantees: Vec<Guarantee>,
    /// The relations the what-if uses.
    relations: Vec<Declared>,
    /// Relations left out as disputed (with `undisputed_only`).
    disputed: Vec<Declared>,
    /// Acts before the hypothetical, in the order they happened.
    history: Vec<(Before, Option<i64>, Actor, Action)>,
    stubs: usize,
}

impl Model {
    fn gather(
        channels: &[ChannelInput<'_>],
        at: Timestamp,
        aliases: &dyn Fn(ChannelId, &Actor) -> Actor,
        undisputed_only: bool,
    ) -> Model {
        let mut m = Model {
            assurances: Vec::new(),
            lines: Vec::new(),
            guarantees: Vec::new(),
            relations: Vec::new(),
            disputed: Vec::new(),
            history: Vec::new(),
            stubs: 0,
        };
        let mut reported = Vec::new();
        for ch in channels {
            let board = fold(ch.entries, ch.roster, at);
            let members = &ch.roster.members;
            let canon = |a: &Actor| {
                aliases(
                    ch.channel,
                    &canonical(a, |n| members.iter().any(|(h, _)| h.as_str() == n)),
                )
            };
            let canon_action = |x: &Action| Action {
                target: x.target.as_ref().map(canon),
                ..x.clone()
            };
            let channel = ch.channel.to_hex();
            for v in &board.assurances {
                let mut a = v.assurance.clone();
                a.beneficiaries = a.beneficiaries.iter().map(canon).collect();
                a.commitment.action = canon_action(&a.commitment.action);
                for c in &mut a.unless {
                    c.attacked_first_by = canon(&c.attacked_first_by);
                }
                let provisos = v
                    .provisos
                    .iter()
                    .map(|p| {
                        let mut p = p.clone();
                        p.proviso.actor = canon(&p.proviso.actor);
                        p.proviso.action = canon_action(&p.proviso.action);
                        (p, None)
                    })
                    .collect();
                for g in &v.guarantees {
                    m.guarantees.push(Guarantee {
                        cited: Cited {
                            id: g.id.clone(),
                            channel: channel.clone(),
                            issuer: Actor::Member(g.guarantor.clone()),
                            wording: g.wording.clone(),
                        },
                        assurance: v.id.clone(),
                        response: canon_action(&g.response),
                        acted: None,
                    });
                }
                m.assurances.push(Known {
                    cited: Cited {
                        id: v.id.clone(),
                        channel: channel.clone(),
                        issuer: Actor::Member(v.issuer.clone()),
                        wording: v.wording.clone(),
                    },
                    readings: Readings::of(&a.unless),
                    start: a.valid_from_ms.max(v.sent_at_ms),
                    a,
                    state: v.state,
                    since: v.since_ms,
                    lapsed: BTreeMap::new(),
                    provisos,
                });
            }
            for v in &board.red_lines {
                let r = &v.red_line;
                m.lines.push(Line {
                    cited: Cited {
                        id: v.id.clone(),
                        channel: channel.clone(),
                        issuer: Actor::Member(v.issuer.clone()),
                        wording: r.wording.clone(),
                    },
                    r: {
                        let r = RedLine {
                            trigger_actor: r.trigger_actor.as_ref().map(canon),
                            trigger: canon_action(&r.trigger),
                            response: canon_action(&r.response),
                            targets: r.targets.as_ref().map(|t| t.iter().map(canon).collect()),
                            ..r.clone()
                        };
                        r
                    },
                    readings: line_readings(r),
                    state: v.state,
                    since: v.since_ms,
                    fired: None,
                });
            }
            for d in &board.relations {
                m.relations.push(Declared {
                    subject: canon(&d.subject),
                    object: canon(&d.object),
                    ..d.clone()
                });
            }
            for e in ch.entries {
                if let Payload::Full {
                    header,
                    body: Body::Structured(s),
                    ..
                } = &e.payload
                {
                    if let Structured::Event {
                        actor,
                        action,
                        from_ms,
                        ..
                    } = s.value()
                    {
                        if header.sent_at.0 <= at.0 && *from_ms <= at.0 {
                            let key = (*from_ms, header.sent_at.0, header.message_id);
                            let before = Before::Reported(header.message_id.to_hex());
                            reported.push((key, before, canon(actor), canon_action(action)));
                        }
                    }
                }
            }
            m.stubs += board.stubs;
        }
        m.relations.sort();
        m.relations.dedup();
        if undisputed_only {
            let (kept, left): (Vec<Declared>, Vec<Declared>) = m
                .relations
                .drain(..)
                .partition(|d| d.disputed_by.is_empty());
            m.relations = kept;
            m.disputed = left;
        }
        reported.sort_by_key(|r| r.0);
        m.history = reported
            .into_iter()
            .map(|(key, b, a, x)| (b, Some(key.0), a, x))
            .collect();
        m
    }
}

/// Runs `actor` doing `action` through the commitments of `channels` in
/// force at `at`. `aliases` maps an actor of a channel to the one it is
/// declared the same as (locally, across channels); pass [`same`] for none.
pub fn what_if(
    channels: &[ChannelInput<'_>],
    at: Timestamp,
    events: &[Hypothesis],
    aliases: &dyn Fn(ChannelId, &Actor) -> Actor,
    options: Options,
) -> Cascade {
    let mut m = Model::gather(channels, at, aliases, options.undisputed_only);
    // Asked from a reported event: only what was reported before it is
    // history.
    if let Some(first) = events.iter().find_map(|h| h.report.as_deref()) {
        if let Some(i) = m
            .history
            .iter()
            .position(|(b, _, _, _)| matches!(b, Before::Reported(id) if id == first))
        {
            m.history.truncate(i);
        }
    }
    let mut steps: Vec<Step> = Vec::new();
    for (k, h) in events.iter().enumerate() {
        let step = Step {
            n: steps.len() + 1,
            event: describe(&h.actor, &h.action),
            actor: h.actor.clone(),
            action: h.action.clone(),
            at_ms: h.at_ms.or((k == 0).then_some(at.0)),
            place: h.place.clone(),
            origin: if h.report.is_some() {
                Origin::Reported
            } else {
                Origin::Hypothetical
            },
            caused_by: None,
            response_of: None,
            report: h.report.clone(),
            effects: Vec::new(),
            notes: Vec::new(),
        };
        cascade_from(&mut m, &mut steps, step);
    }
    link_responses(&mut steps);
    Cascade {
        at_ms: at.0,
        steps,
        stubs: m.stubs,
        warnings: Vec::new(),
    }
}

/// A step that follows from an earlier one: how it came about.
fn follows(actor: Actor, action: Action, origin: Origin, of: &str) -> Step {
    Step {
        n: 0,
        event: describe(&actor, &action),
        actor,
        action,
        at_ms: None,
        place: None,
        origin,
        caused_by: None,
        response_of: Some(of.to_string()),
        report: None,
        effects: Vec::new(),
        notes: Vec::new(),
    }
}

/// Runs `first` and every declared response and guarantee it sets off,
/// breadth first.
fn cascade_from(m: &mut Model, steps: &mut Vec<Step>, first: Step) {
    let mut queue = VecDeque::from([(first, None::<usize>)]);
    while let Some((mut step, cause)) = queue.pop_front() {
        let n = steps.len() + 1;
        step.n = n;
        step.caused_by = cause;
        let (actor, action) = (step.actor.clone(), step.action.clone());
        judge_assurances(m, &mut step);
        let next = n + queue.len() + 1;
        let mut follow = fire_lines(m, &mut step, next);
        follow.extend(guarantees_act(m, &mut step, next + follow.len()));
        queue.extend(follow.into_iter().map(|s| (s, Some(n))));
        if step.effects.is_empty() && step.notes.is_empty() {
            step.notes.push(Note {
                why: Why::NoCommitmentMatches,
                commitment: None,
                channel: None,
                words: format!(
                    "no commitment names this act: no assurance's condition, proviso or undertaking, and no red line's trigger, matches {}",
                    describe_marked(&actor, &action)
                ),
            });
        }
        m.history.push((Before::Step(n), None, actor, action));
        steps.push(step);
    }
}

/// The red lines `step` triggers: each in force fires once (its response
/// is the step numbered `next`, `next + 1`, ...); a second trigger cuts the
/// cycle; one not in force, or limited to another place, says why.
fn fire_lines(m: &mut Model, step: &mut Step, next: usize) -> Vec<Step> {
    let mut out = Vec::new();
    let every: Vec<Declared> = m.relations.iter().chain(&m.disputed).cloned().collect();
    for line in &mut m.lines {
        let note = |why: Why, words: String| Note {
            why,
            commitment: Some(line.cited.id.clone()),
            channel: Some(line.cited.channel.clone()),
            words,
        };
        let meets = |relations: &[Declared]| {
            triggers(
                &line.r,
                &line.readings,
                &step.actor,
                &step.action,
                relations,
            )
        };
        let Some((masks, via)) = meets(&m.relations) else {
            // Left out as disputed, it would have fired: say so.
            if let Some((_, via)) = meets(&every).filter(|_| !m.disputed.is_empty()) {
                let words = format!(
                    "{} does not fire here: the act would go through the relation {}, and this what-if uses only undisputed relations",
                    line.cited.words("red line"),
                    disputed_words(&via)
                );
                step.notes.push(note(Why::Disputed, words));
            }
            continue;
        };
        if line.state != State::Active {
            let words = format!(
                "{} would fire, but it is {}",
                line.cited.words("red line"),
                state_words(line.state, line.since)
            );
            step.notes.push(note(Why::NotInForce, words));
            continue;
        }
        if let Some(place) = &line.r.place {
            if !step.place.as_ref().is_some_and(|at| within(place, at)) {
                let words = format!(
                    "{} applies only at {}; {}",
                    line.cited.words("red line"),
                    terms::place(place),
                    if step.place.is_some() {
                        "this event is elsewhere"
                    } else {
                        "this event gives no place"
                    }
                );
                step.notes.push(note(Why::Elsewhere, words));
                continue;
            }
        }
        if let Some(k) = line.fired {
            let words = format!(
                "{} already fired at step {k}: the cycle is cut here, and its response is not repeated",
                line.cited.words("red line")
            );
            step.notes.push(note(Why::CycleCut, words));
            continue;
        }
        line.fired = Some(step.n);
        let responder = line.cited.issuer.clone();
        let response = line.r.response.clone();
        let first_target = line
            .r
            .target_list()
            .first()
            .cloned()
            .unwrap_or(Actor::Outside("the target".into()));
        step.effects.push(Effect::Fires {
            red_line: line.cited.id.clone(),
            channel: line.cited.channel.clone(),
            issuer: line.cited.issuer.to_string(),
            wording: line.cited.wording.clone(),
            trigger: trigger_words(&line.r),
            response: describe(&responder, &response),
            response_step: next + out.len(),
            response_breaches: Vec::new(),
            reading_words: line.readings.words(&masks, &first_target),
            readings_diverge: (masks.len() as u32) < line.readings.count(),
            relations: via,
        });
        out.push(follows(
            responder,
            response,
            Origin::DeclaredResponse,
            &line.cited.id,
        ));
    }
    out
}

/// The guarantees of the assurances `step` breaches: each guarantor's
/// undertaking follows once, as the step numbered `next`, `next + 1`, ...
fn guarantees_act(m: &mut Model, step: &mut Step, next: usize) -> Vec<Step> {
    let breached: Vec<String> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Breach { assurance, .. } => Some(assurance.clone()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for g in m
        .guarantees
        .iter_mut()
        .filter(|g| breached.contains(&g.assurance))
    {
        if let Some(k) = g.acted {
            step.notes.push(Note {
                why: Why::CycleCut,
                commitment: Some(g.cited.id.clone()),
                channel: Some(g.cited.channel.clone()),
                words: format!(
                    "{} already acted at step {k}: it is not repeated",
                    g.cited.words("guarantee")
                ),
            });
            continue;
        }
        g.acted = Some(step.n);
        let who = g.cited.issuer.clone();
        step.effects.push(Effect::Guarantee {
            guarantee: g.cited.id.clone(),
            channel: g.cited.channel.clone(),
            guarantor: who.to_string(),
            wording: g.cited.wording.clone(),
            assurance: g.assurance.clone(),
            response: describe(&who, &g.response),
            response_step: next + out.len(),
        });
        out.push(follows(
            who,
            g.response.clone(),
            Origin::Guarantee,
            &g.cited.id,
        ));
    }
    out
}

/// No aliases: every actor is itself.
pub fn same(_: ChannelId, a: &Actor) -> Actor {
    a.clone()
}

/// Lapses and breaches of one step, and why others did not follow.
fn judge_assurances(m: &mut Model, step: &mut Step) {
    let (actor, action, n) = (&step.actor, &step.action, step.n);
    for k in &mut m.assurances {
        let issuer = k.cited.issuer.clone();
        let in_force = k.state == State::Active;
        let breach = contradicts(&k.a, &issuer, actor, action);
        // Which readings this act meets a condition under, and whether first.
        let mut meets_some = false;
        let mut not_first: Option<Before> = None;
        let mut awaits_others = false;
        let all = k.a.unless_combine == Some(Combine::All);
        let mut fresh: BTreeMap<usize, (BTreeSet<u32>, Vec<Declared>)> = BTreeMap::new();
        for mask in k.readings.masks() {
            let reading = k.readings.reading(mask);
            for (ci, cond) in k.a.unless.iter().enumerate() {
                let Some(via) = meets(&issuer, cond, actor, action, &reading[ci], &m.relations)
                else {
                    continue;
                };
                meets_some = true;
                // Only what happened since the assurance was given counts.
                let earlier: Vec<&(Before, Option<i64>, Actor, Action)> = m
                    .history
                    .iter()
                    .filter(|(_, t, _, _)| t.is_none_or(|t| t >= k.start))
                    .collect();
                let acts = earlier.iter().map(|(_, _, a, x)| (a, x));
                if let Some(i) = struck_first(&issuer, cond, &reading[ci], &m.relations, acts) {
                    not_first.get_or_insert(earlier[i].0.clone());
                    continue;
                }
                // All must be met: the others by earlier acts in its life.
                let others_met = k.a.unless.iter().enumerate().all(|(cj, other)| {
                    cj == ci
                        || earlier.iter().any(|(_, _, a, x)| {
                            meets(&issuer, other, a, x, &reading[cj], &m.relations).is_some()
                        })
                });
                if all && !others_met {
                    awaits_others = true;
                    continue;
                }
                if in_force && !k.lapsed.contains_key(&mask) {
                    let e = fresh.entry(ci).or_default();
                    e.0.insert(mask);
                    e.1.extend(via.attacker.into_iter().chain(via.attacked));
                }
                break;
            }
        }
        if all && awaits_others && fresh.is_empty() && in_force {
            step.notes.push(Note {
                why: Why::AwaitsOtherConditions,
                commitment: Some(k.cited.id.clone()),
                channel: Some(k.cited.channel.clone()),
                words: format!(
                    "{} does not lapse yet: this act meets one of its conditions, but it lapses only once all of them are met",
                    k.cited.words("assurance")
                ),
            });
        }
        if !meets_some && !m.disputed.is_empty() {
            if let Some(words) = disputed(k, actor, action, &m.relations, &m.disputed) {
                step.notes.push(Note {
                    why: Why::Disputed,
                    commitment: Some(k.cited.id.clone()),
                    channel: Some(k.cited.channel.clone()),
                    words,
                });
                meets_some = true;
            }
        }
        if !meets_some {
            // The wording excludes it whatever the relations: disputed too.
            let every: Vec<Declared> = m.relations.iter().chain(&m.disputed).cloned().collect();
            if let Some(words) = out_of_scope(k, actor, action, &every) {
                step.notes.push(Note {
                    why: Why::OutOfScope,
                    commitment: Some(k.cited.id.clone()),
                    channel: Some(k.cited.channel.clone()),
                    words,
                });
            }
        }
        if !in_force {
            if meets_some || breach {
                step.notes.push(Note {
                    why: Why::NotInForce,
                    commitment: Some(k.cited.id.clone()),
                    channel: Some(k.cited.channel.clone()),
                    words: format!(
                        "{} would {}, but it is {}",
                        k.cited.words("assurance"),
                        if breach { "be breached" } else { "lapse" },
                        state_words(k.state, k.since)
                    ),
                });
            }
            continue;
        }
        // A breach is judged on the readings that held before this act.
        if breach {
            let held: BTreeSet<u32> = k
                .readings
                .masks()
                .filter(|x| !k.lapsed.contains_key(x))
                .collect();
            if held.is_empty() {
                step.notes
                    .push(already_lapsed(k, "its act breaches nothing"));
            } else {
                step.effects.push(Effect::Breach {
                    assurance: k.cited.id.clone(),
                    channel: k.cited.channel.clone(),
                    issuer: issuer.to_string(),
                    wording: k.cited.wording.clone(),
                    undertaking: format!(
                        "to refrain from {}",
                        terms::action(&k.a.commitment.action)
                    ),
                    reading_words: k.readings.words(&held, &issuer),
                    under_all: held.len() as u32 == k.readings.count(),
                    in_response_to: step
                        .response_of
                        .clone()
                        .filter(|_| step.origin == Origin::DeclaredResponse),
                });
            }
        }
        if meets_some && fresh.is_empty() {
            match &not_first {
                Some(before) => step.notes.push(Note {
                    why: Why::NotFirst,
                    commitment: Some(k.cited.id.clone()),
                    channel: Some(k.cited.channel.clone()),
                    words: format!(
                        "{} does not lapse: {issuer} struck that side first ({}), so this is no first attack on it",
                        k.cited.words("assurance"),
                        before.words()
                    ),
                }),
                None if !k.lapsed.is_empty() => {
                    step.notes.push(already_lapsed(k, "nothing more lapses"));
                }
                None => {}
            }
        }
        let earlier: Vec<usize> = k
            .lapsed
            .values()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for (ci, (masks, mut via)) in fresh {
            for x in &masks {
                k.lapsed.insert(*x, n);
            }
            via.sort();
            via.dedup();
            let mut readings: Vec<Reading> =
                masks.iter().map(|x| k.readings.reading(*x)[ci]).collect();
            readings.sort();
            readings.dedup();
            let cond = &k.a.unless[ci];
            step.effects.push(Effect::Lapses {
                assurance: k.cited.id.clone(),
                channel: k.cited.channel.clone(),
                issuer: issuer.to_string(),
                wording: k.cited.wording.clone(),
                condition: ci,
                condition_words: format!("unless attacked first by {}", cond.attacked_first_by),
                readings_diverge: (masks.len() as u32) < k.readings.count(),
                reading_words: k.readings.words(&masks, &issuer),
                readings,
                relations: via,
                earlier: earlier.clone(),
                now_all: k.lapsed.len() as u32 == k.readings.count(),
            });
        }
        if matches!(k.state, State::Active | State::Proposed) {
            let met = provisos_met(k, step);
            step.effects.extend(met);
        }
    }
}

/// The provisos of `k` that `actor` doing `action` (at `at`, if given)
/// would fulfil, before their time: each at most once in a cascade.
fn provisos_met(k: &mut Known, step: &Step) -> Vec<Effect> {
    let mut out = Vec::new();
    for (p, done) in &mut k.provisos {
        let in_time = step.at_ms.is_none_or(|t| t < p.proviso.by_ms);
        if p.state != ProvisoState::Open
            || done.is_some()
            || !in_time
            || !fulfils(&p.proviso, &step.actor, &step.action)
        {
            continue;
        }
        *done = Some(step.n);
        out.push(Effect::Fulfils {
            assurance: k.cited.id.clone(),
            channel: k.cited.channel.clone(),
            issuer: k.cited.issuer.to_string(),
            wording: k.cited.wording.clone(),
            proviso: p.index + 1,
            proviso_words: format!(
                "provided {} does {} by {}",
                terms::actor(&p.proviso.actor),
                terms::action(&p.proviso.action),
                terms::utc(p.proviso.by_ms)
            ),
        });
    }
    out
}

/// Would the act meet a condition of `k`, under a reading its wording
/// allows, through a relation left out as disputed? Then say which.
fn disputed(
    k: &Known,
    actor: &Actor,
    action: &Action,
    used: &[Declared],
    left: &[Declared],
) -> Option<String> {
    let every: Vec<Declared> = used.iter().chain(left).cloned().collect();
    let mut under = k
        .readings
        .masks()
        .flat_map(|mask| k.a.unless.iter().zip(k.readings.reading(mask)));
    under.find_map(|(cond, reading)| {
        let via = meets(&k.cited.issuer, cond, actor, action, &reading, &every)?;
        let through = disputed_words(via.attacker.iter().chain(&via.attacked));
        (!through.is_empty()).then(|| {
            format!(
                "{} does not lapse here: the act would go through the relation {through}, and this what-if uses only undisputed relations",
                k.cited.words("assurance"),
            )
        })
    })
}

/// The disputed relations an act goes through, in words.
fn disputed_words<'a>(via: impl IntoIterator<Item = &'a Declared>) -> String {
    let through: Vec<String> = via
        .into_iter()
        .filter(|d| !d.disputed_by.is_empty())
        .map(relation_words)
        .collect();
    through.join(" and ")
}

/// Would the act meet a condition of `k` if every ally and proxy counted?
/// Then the wording, not the facts, excludes it: say which answer does.
fn out_of_scope(
    k: &Known,
    actor: &Actor,
    action: &Action,
    relations: &[Declared],
) -> Option<String> {
    let everyone = Reading {
        attacker_allies: true,
        attacker_proxies: true,
        attacked_allies: true,
        attacked_proxies: true,
    };
    k.a.unless.iter().find_map(|cond| {
        let via = meets(&k.cited.issuer, cond, actor, action, &everyone, relations)?;
        let through: Vec<String> = via
            .attacker
            .iter()
            .chain(via.attacked.iter())
            .map(relation_words)
            .collect();
        let said = excluded(&via, cond, &k.cited.issuer);
        Some(format!(
            "{} does not lapse: the act goes through the relation {}, but the wording of its condition \"unless attacked first by {}\" says {}",
            k.cited.words("assurance"),
            through.join(" and "),
            cond.attacked_first_by,
            said.join(" and ")
        ))
    })
}

fn already_lapsed(k: &Known, what: &str) -> Note {
    let at: BTreeSet<usize> = k.lapsed.values().copied().collect();
    let steps: Vec<String> = at.iter().map(|s| format!("step {s}")).collect();
    let all = k.lapsed.len() as u32 == k.readings.count();
    Note {
        why: Why::AlreadyLapsed,
        commitment: Some(k.cited.id.clone()),
        channel: Some(k.cited.channel.clone()),
        words: format!(
            "{} already lapsed at {}{}: {what}",
            k.cited.words("assurance"),
            steps.join(" and "),
            if all {
                " under all readings"
            } else {
                " under the readings this act meets"
            }
        ),
    }
}

/// "expired since …", "not yet active": a board state in words.
pub fn state_words(s: State, since: Option<i64>) -> String {
    let when = since.map_or(String::new(), |t| format!(" since {}", terms::utc(t)));
    match s {
        State::Active => format!("in force{when}"),
        State::Expired => format!("expired{when}"),
        State::Lapsed => format!("lapsed (confirmed by its issuer or found by the mediator){when}"),
        State::Proposed => {
            "not yet active (not yet valid, or not yet received by every member it assures)".into()
        }
        State::Revoked => format!("revoked{when}"),
        State::Suspended => format!("suspended{when}"),
    }
}

fn trigger_words(r: &RedLine) -> String {
    let by = r
        .trigger_actor
        .as_ref()
        .map_or("by anyone".to_string(), |a| {
            format!("by {}", terms::actor(a))
        });
    let against = match r.targets.as_deref() {
        Some(t) => format!(
            " against any of {}",
            t.iter().map(terms::actor).collect::<Vec<_>>().join(", ")
        ),
        None => String::new(),
    };
    format!("{}{against} {by}", terms::action(&r.trigger))
}

/// Marks each declared response that is itself a breach, both ways.
fn link_responses(steps: &mut [Step]) {
    let breaches: Vec<(usize, Vec<String>)> = steps
        .iter()
        .map(|s| {
            let ids = s
                .effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Breach { assurance, .. } => Some(assurance.clone()),
                    _ => None,
                })
                .collect();
            (s.n, ids)
        })
        .collect();
    for s in steps.iter_mut() {
        for e in &mut s.effects {
            if let Effect::Fires {
                response_step,
                response_breaches,
                ..
            } = e
            {
                if let Some((_, ids)) = breaches.iter().find(|(n, _)| n == response_step) {
                    response_breaches.clone_from(ids);
                }
            }
        }
    }
}

fn relation_words(d: &Declared) -> String {
    let disputed = if d.disputed_by.is_empty() {
        String::new()
    } else {
        format!(", disputed by {}", d.disputed_by.join(" and "))
    };
    format!(
        "{} {} {} (declared by {}{disputed})",
        terms::actor(&d.subject),
        kind_words(d.relation),
        terms::actor(&d.object),
        d.by
    )
}

impl Cascade {
    /// Step by step, for a terminal: every effect with its rule, fact,
    /// reading, relation and channel; every "nothing follows" with why.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for w in &self.warnings {
            out.push_str(&format!("note: {w}\n"));
        }
        for s in &self.steps {
            let event = describe_marked(&s.actor, &s.action);
            let when = s
                .at_ms
                .map_or(String::new(), |t| format!(", at {}", terms::utc(t)));
            let how = match (s.caused_by, &s.response_of, &s.report) {
                (Some(c), Some(g), _) if s.origin == Origin::Guarantee => format!(
                    ", the guarantor's undertaking after the breach at step {c} (guarantee {})",
                    &g[..8.min(g.len())]
                ),
                (Some(c), Some(rl), _) => format!(
                    ", the declared response to step {c} (red line {})",
                    &rl[..8.min(rl.len())]
                ),
                (_, _, Some(r)) => format!(", the reported event {}{when}", &r[..8.min(r.len())]),
                _ => format!(", hypothetical{when}"),
            };
            out.push_str(&format!("step {}: {event}{how}\n", s.n));
            for e in &s.effects {
                out.push_str(&effect_text(e));
            }
            if s.effects.is_empty() {
                if self.stubs > 0 {
                    out.push_str(&format!("  {}\n", terms::stubs_notice(self.stubs)));
                }
                // Where stubs hide commitments, "none matches" is unknown.
                let said = s
                    .notes
                    .iter()
                    .filter(|n| self.stubs == 0 || n.why != Why::NoCommitmentMatches);
                for note in said {
                    out.push_str(&format!("  nothing follows: {}\n", note.words));
                }
            } else {
                for note in &s.notes {
                    out.push_str(&format!("  note: {}\n", note.words));
                }
            }
        }
        out
    }
}

fn effect_text(e: &Effect) -> String {
    let cite = |id: &str, channel: &str, issuer: &str, wording: &str| Cited {
        id: id.to_string(),
        channel: channel.to_string(),
        issuer: Actor::Member(issuer.to_string()),
        wording: wording.to_string(),
    };
    match e {
        Effect::Guarantee {
            guarantee,
            channel,
            guarantor,
            wording,
            assurance,
            response,
            response_step,
        } => {
            format!(
                "  guarantee acts: {}\n    it guarantees assurance {}, breached here\n    undertaking: step {response_step} ({response})\n",
                Cited {
                    id: guarantee.clone(),
                    channel: channel.clone(),
                    issuer: Actor::Member(guarantor.clone()),
                    wording: wording.clone(),
                }
                .words("guarantee"),
                &assurance[..8.min(assurance.len())]
            )
        }
        Effect::Fulfils {
            assurance,
            channel,
            issuer,
            wording,
            proviso,
            proviso_words,
        } => {
            format!(
                "  fulfils a proviso: {}\n    its proviso {proviso}: {proviso_words}\n    a claim until the mediator finds it or {issuer} confirms it\n",
                Cited {
                    id: assurance.clone(),
                    channel: channel.clone(),
                    issuer: Actor::Member(issuer.clone()),
                    wording: wording.clone(),
                }
                .words("assurance")
            )
        }
        Effect::Lapses {
            assurance,
            channel,
            issuer,
            wording,
            condition_words,
            reading_words,
            relations,
            earlier,
            now_all,
            ..
        } => {
            let mut t = format!(
                "  lapses: {}\n    its condition \"{condition_words}\" is met by this act: {} had not struck that side before\n    {reading_words}\n",
                cite(assurance, channel, issuer, wording).words("assurance"),
                issuer
            );
            for d in relations {
                t.push_str(&format!(
                    "    through the relation: {}\n",
                    relation_words(d)
                ));
            }
            if !earlier.is_empty() {
                let at: Vec<String> = earlier.iter().map(|x| format!("step {x}")).collect();
                t.push_str(&format!(
                    "    (under other readings it lapsed at {}{})\n",
                    at.join(" and "),
                    if *now_all {
                        "; it has now lapsed under all readings"
                    } else {
                        ""
                    }
                ));
            }
            t
        }
        Effect::Breach {
            assurance,
            channel,
            issuer,
            wording,
            undertaking,
            reading_words,
            in_response_to,
            ..
        } => {
            let mut t = format!(
                "  breach: {issuer} would be in breach of {}\n    it undertook {undertaking}\n    {reading_words}\n",
                cite(assurance, channel, issuer, wording)
                    .words("assurance")
                    .replacen(&format!("{issuer}'s "), "its ", 1),
            );
            if let Some(rl) = in_response_to {
                t.push_str(&format!(
                    "    this declared response (red line {}) is itself a breach\n",
                    &rl[..8.min(rl.len())]
                ));
            }
            t
        }
        Effect::Fires {
            red_line,
            channel,
            issuer,
            wording,
            trigger,
            response_step,
            response_breaches,
            reading_words,
            readings_diverge,
            relations,
            ..
        } => {
            let mut t = format!(
                "  red line fires: {}\n    its trigger: {trigger}\n    declared response: step {response_step}\n",
                cite(red_line, channel, issuer, wording).words("red line")
            );
            if *readings_diverge {
                t.push_str(&format!("    {reading_words}\n"));
            }
            for d in relations {
                t.push_str(&format!(
                    "    through the relation: {}\n",
                    relation_words(d)
                ));
            }
            for b in response_breaches {
                t.push_str(&format!(
                    "    that response would breach {issuer}'s own assurance {}\n",
                    &b[..8.min(b.len())]
                ));
            }
            t
        }
    }
}
