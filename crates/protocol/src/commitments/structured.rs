//! The typed payloads that make Backchannel more than a messenger:
//! assurances, red lines, revocations, suspensions, breach allegations and
//! their answers, event reports, requests for explanation, the mediator's
//! conveyed paraphrases, acknowledgements, notes and declared relations.
//!
//! On the wire they are body kind 8: the JSON of one [`Structured`] value,
//! tagged by `type`. The digest covers the exact bytes sent, so JSON needs no
//! canonical form. Each carries its human wording beside the data.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::plover::EventType;
use crate::ids::{Digest, ExchangeId, Handle};

/// Who acts or is acted upon: a member (by handle) or an outside actor
/// named by the members (a proxy militia, a great power).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// A channel member.
    Member(String),
    /// Someone outside the channel.
    Outside(String),
}

impl Actor {
    /// The name, either way.
    pub fn name(&self) -> &str {
        match self {
            Actor::Member(n) | Actor::Outside(n) => n,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An action: a PLOVER type, optional modes, and whom it is against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The event type.
    pub kind: EventType,
    /// PLOVER modes of that type.
    #[serde(default)]
    pub modes: Vec<String>,
    /// Against (or towards) whom.
    #[serde(default)]
    pub target: Option<Actor>,
}

impl Action {
    /// Is `act` of this type, and of one of its modes if it names any?
    pub fn kind_covers(&self, act: &Action) -> bool {
        self.kind == act.kind
            && (self.modes.is_empty() || self.modes.iter().any(|m| act.modes.contains(m)))
    }

    /// Is `act` what this action describes: [`Action::kind_covers`], and
    /// against its target if it names one?
    pub fn covers(&self, act: &Action) -> bool {
        self.kind_covers(act)
            && self
                .target
                .as_ref()
                .is_none_or(|t| act.target.as_ref() == Some(t))
    }
}

/// How formal an assurance is; all are deniable by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formality {
    /// An aide-mémoire.
    AideMemoire,
    /// A non-paper: no letterhead, no signature, disownable.
    NonPaper,
    /// A note verbale.
    NoteVerbale,
    /// Spoken.
    Oral,
}

/// Which actors count. `None` leaves the wording open: the engine then
/// evaluates both readings and says where they diverge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Does an attack by the attacker's allies count?
    #[serde(default)]
    pub attacker_allies: Option<bool>,
    /// Does an attack by the attacker's proxies count?
    #[serde(default)]
    pub attacker_proxies: Option<bool>,
    /// Does an attack on the issuer's allies count as the issuer attacked?
    #[serde(default)]
    pub attacked_allies: Option<bool>,
    /// Does an attack on the issuer's proxies count?
    #[serde(default)]
    pub attacked_proxies: Option<bool>,
}

/// "Unless attacked first by …": the commitment lapses if the named actor
/// (and, per the scope, its allies or proxies) attacks the issuer (and, per
/// the scope, its allies or proxies) first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LapseCondition {
    /// Whose first attack lapses it.
    pub attacked_first_by: Actor,
    /// Which actors count.
    #[serde(default)]
    pub scope: Scope,
}

/// How several conditions combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Every one of them.
    All,
    /// Any one of them.
    Any,
}

/// "Provided Y does Z by T": an act of another side the assurance depends
/// on. Whether it was done is decided only by the mediator's finding or the
/// issuer's confirmation (a `fulfilment`); a member's event report of it is
/// a claim, and so is its deadline passing undecided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proviso {
    /// Who must act.
    pub actor: Actor,
    /// What it must do.
    pub action: Action,
    /// By when (ms since the Unix epoch, UTC).
    pub by_ms: i64,
}

/// What the issuer commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// True: to refrain from the action; false: to undertake it.
    pub refrain: bool,
    /// The action.
    pub action: Action,
}

/// A formal, conditional assurance from its sender (the issuer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assurance {
    /// Whom it assures.
    pub beneficiaries: Vec<Actor>,
    /// What the issuer commits to.
    pub commitment: Commitment,
    /// Conditions under which it lapses.
    #[serde(default)]
    pub unless: Vec<LapseCondition>,
    /// How the `unless` conditions combine (version 4): absent, any one
    /// lapses it (the old rule); `all`, only every one of them.
    #[serde(default)]
    pub unless_combine: Option<Combine>,
    /// What the other side must do for it to hold (version 4): "provided
    /// red withdraws by T". Only a finding or the issuer decides one.
    #[serde(default)]
    pub provided: Option<Vec<Proviso>>,
    /// How the provisos combine (version 4): absent, all must be
    /// fulfilled; `any`, one suffices.
    #[serde(default)]
    pub provided_combine: Option<Combine>,
    /// A reservation clause, in words.
    #[serde(default)]
    pub reservation: String,
    /// Start of validity (ms since the Unix epoch, UTC).
    pub valid_from_ms: i64,
    /// End of validity (exclusive), or `None` with `until_revoked`.
    #[serde(default)]
    pub valid_until_ms: Option<i64>,
    /// Explicitly valid until revoked: no silent forever.
    #[serde(default)]
    pub until_revoked: bool,
    /// Its formality.
    pub formality: Formality,
    /// Who authorized it.
    pub authorized_by: String,
    /// Its authoritative language (BCP 47 tag).
    pub language: String,
    /// For a translation: the digest (hex) of the authoritative text's message.
    #[serde(default)]
    pub translation_of: Option<String>,
    /// The assurance (message id, hex) it reciprocates.
    #[serde(default)]
    pub reciprocates: Option<String>,
    /// The human wording.
    pub wording: String,
}

/// If someone does this, the issuer declares it will respond so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedLine {
    /// Who must act (any actor if absent).
    #[serde(default)]
    pub trigger_actor: Option<Actor>,
    /// What action triggers it.
    pub trigger: Action,
    /// The declared response (the issuer acts).
    pub response: Action,
    /// The human wording.
    pub wording: String,
    /// Several targets (version 4): an act against any of them triggers
    /// it; `trigger.target` is then absent.
    #[serde(default)]
    pub targets: Option<Vec<Actor>>,
    /// Whose acts count (version 4): the trigger actor's allies or proxies
    /// (`attacker_*`), acts against the targets' allies or proxies
    /// (`attacked_*`); an open question is evaluated both ways. Absent:
    /// only the actors named.
    #[serde(default)]
    pub scope: Option<Scope>,
    /// From when it holds (version 4).
    #[serde(default)]
    pub valid_from_ms: Option<i64>,
    /// Until when (exclusive; version 4).
    #[serde(default)]
    pub valid_until_ms: Option<i64>,
    /// Where a trigger must happen (version 4).
    #[serde(default)]
    pub place: Option<Place>,
}

impl RedLine {
    /// A red line with none of the version 4 terms.
    pub fn new(
        trigger_actor: Option<Actor>,
        trigger: Action,
        response: Action,
        wording: String,
    ) -> RedLine {
        RedLine {
            trigger_actor,
            trigger,
            response,
            wording,
            targets: None,
            scope: None,
            valid_from_ms: None,
            valid_until_ms: None,
            place: None,
        }
    }

    /// The actors an act must be against, if any are named.
    pub fn target_list(&self) -> Vec<Actor> {
        match (&self.targets, &self.trigger.target) {
            (Some(t), _) => t.clone(),
            (None, Some(t)) => vec![t.clone()],
            (None, None) => Vec::new(),
        }
    }

    fn uses_v4(&self) -> bool {
        self.targets.is_some()
            || self.scope.is_some()
            || self.valid_from_ms.is_some()
            || self.valid_until_ms.is_some()
            || self.place.is_some()
    }
}

/// A relation one member declares between actors; attributed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// Subject is an ally of object.
    AllyOf,
    /// Subject is a proxy of object.
    ProxyOf,
}

/// A place: coordinates or a GeoNames id, with a radius. Coordinates are in
/// millionths of a degree (integers, so a place has one exact encoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Latitude, millionths of a degree.
    #[serde(default)]
    pub lat_e6: Option<i32>,
    /// Longitude, millionths of a degree.
    #[serde(default)]
    pub lon_e6: Option<i32>,
    /// GeoNames id.
    #[serde(default)]
    pub geonames_id: Option<u64>,
    /// Radius, metres.
    pub radius_m: u32,
}

impl Place {
    /// A place from degrees as a person gives them: both latitude and
    /// longitude (a GeoNames id beside them optional), or a GeoNames id
    /// alone, or nothing.
    ///
    /// ```
    /// use backchannel_protocol::commitments::structured::Place;
    ///
    /// let p = Place::from_degrees(Some(33.312), Some(44.361), None, 2000).unwrap().unwrap();
    /// assert_eq!(p.lat_e6, Some(33_312_000));
    /// assert!(Place::from_degrees(Some(91.0), Some(0.0), None, 1).is_err());
    /// assert!(Place::from_degrees(Some(1.0), None, None, 1).is_err());
    /// ```
    pub fn from_degrees(
        lat: Option<f64>,
        lon: Option<f64>,
        geonames: Option<u64>,
        radius_m: u32,
    ) -> Result<Option<Place>, String> {
        let e6 = |d: f64, max: f64| -> Result<i32, String> {
            if !(-max..=max).contains(&d) {
                return Err(format!("{d} is out of range (±{max})"));
            }
            Ok((d * 1e6).round() as i32)
        };
        Ok(match (lat, lon, geonames) {
            (None, None, None) => None,
            (Some(a), Some(o), g) => Some(Place {
                lat_e6: Some(e6(a, 90.0)?),
                lon_e6: Some(e6(o, 180.0)?),
                geonames_id: g,
                radius_m,
            }),
            (None, None, Some(g)) => Some(Place {
                lat_e6: None,
                lon_e6: None,
                geonames_id: Some(g),
                radius_m,
            }),
            _ => return Err("give both the latitude and the longitude, or a GeoNames id".into()),
        })
    }
}

/// One offer as a participant received it at release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmedOffer {
    /// Who submitted it.
    pub from: Handle,
    /// SHA-256 of the exact sealed plaintext opened; absent when nothing
    /// readable came from `from`.
    #[serde(default)]
    pub digest: Option<Digest>,
}

/// Every typed payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Structured {
    /// A person's deliberate "received and understood".
    Acknowledgement {
        /// The message acknowledged, hex.
        of: String,
        /// Words.
        #[serde(default)]
        text: String,
    },
    /// A breach of an assurance is alleged.
    Allegation {
        /// The assurance, hex message id.
        assurance: String,
        /// The evidence, in words.
        evidence: String,
        /// Reply due by.
        reply_by_ms: i64,
    },
    /// An assurance.
    Assurance(Assurance),
    /// The issuer confirms its assurance lapsed.
    ConfirmLapse {
        /// The assurance.
        assurance: String,
        /// The event report that lapsed it, if any.
        #[serde(default)]
        event: Option<String>,
        /// Words.
        #[serde(default)]
        text: String,
    },
    /// The mediator's own paraphrase of a principal's message: its words,
    /// linked to the original and never replacing it.
    Conveyed {
        /// The original, hex message id.
        original: String,
        /// The paraphrase.
        text: String,
    },
    /// What a participant received when an escrowed exchange was released:
    /// for each other participant, the digest of the exact sealed plaintext
    /// it opened (see [`crate::escrow::offer_digest`]).
    EscrowConfirmation {
        /// The exchange.
        exchange: ExchangeId,
        /// One entry per other participant.
        offers: Vec<ConfirmedOffer>,
    },
    /// An escrowed exchange, announced end to end by its creator: the terms
    /// travel here (the relay holds only their digest).
    EscrowExchange {
        /// The exchange.
        exchange: ExchangeId,
        /// Every participant, sorted, the creator included.
        participants: Vec<Handle>,
        /// The terms, in words.
        terms: String,
        /// SHA-256 of the UTF-8 terms.
        terms_digest: Digest,
        /// Offers are destroyed unless all are in by then.
        deadline_ms: i64,
    },
    /// Something happened (or, for what-if, might).
    Event {
        /// Who acted.
        actor: Actor,
        /// What, against whom.
        action: Action,
        /// Window start.
        from_ms: i64,
        /// Window end.
        until_ms: i64,
        /// Where.
        #[serde(default)]
        place: Option<Place>,
        /// Words.
        #[serde(default)]
        text: String,
    },
    /// The mediator's finding on an allegation.
    Finding {
        /// The assurance.
        assurance: String,
        /// The allegation answered, if any.
        #[serde(default)]
        allegation: Option<String>,
        /// Whether it was breached.
        breached: bool,
        /// Whether it lapsed.
        lapsed: bool,
        /// Reasons.
        text: String,
    },
    /// Free text with no force.
    Note {
        /// Words.
        text: String,
    },
    /// A red line.
    RedLine(RedLine),
    /// A member disputes a relation another declared (version 4): one
    /// calls a militia an ally, the other a proxy.
    Dispute {
        /// Subject.
        subject: Actor,
        /// Relation.
        relation: RelationKind,
        /// Object.
        object: Actor,
        /// Why, in words.
        #[serde(default)]
        text: String,
    },
    /// Whether a proviso of an assurance was fulfilled (version 4): counts
    /// from the assurance's issuer (a confirmation) or the mediator (a
    /// finding, where the policy lets it read).
    Fulfilment {
        /// The assurance.
        assurance: String,
        /// Which proviso (index into `provided`).
        proviso: u32,
        /// Done, or not done by its time.
        fulfilled: bool,
        /// The event report it rests on, if any.
        #[serde(default)]
        event: Option<String>,
        /// Reasons.
        #[serde(default)]
        text: String,
    },
    /// A third party undertakes to act if an assurance is breached
    /// (version 4); counts from a member other than its issuer.
    Guarantee {
        /// The assurance guaranteed.
        assurance: String,
        /// What the guarantor will do on a breach.
        response: Action,
        /// The human wording.
        wording: String,
    },
    /// A relation between actors, declared by the sender.
    Relate {
        /// Subject.
        subject: Actor,
        /// Relation.
        relation: RelationKind,
        /// Object.
        object: Actor,
    },
    /// The accused answers an allegation.
    Reply {
        /// The allegation, hex message id.
        allegation: String,
        /// Words.
        text: String,
    },
    /// A request for explanation, with a reply-by time.
    Request {
        /// What it is about, if a message.
        #[serde(default)]
        about: Option<String>,
        /// The question.
        question: String,
        /// Reply due by.
        reply_by_ms: i64,
    },
    /// Revocation of one assurance, or (absent) of all the issuer's; or,
    /// with `red_line` (version 4), of that red line only.
    Revoke {
        /// The assurance, or none for all.
        #[serde(default)]
        assurance: Option<String>,
        /// The red line revoked instead (version 4).
        #[serde(default)]
        red_line: Option<String>,
        /// From when (never before it was sent).
        effective_ms: i64,
        /// Words.
        #[serde(default)]
        text: String,
    },
    /// Suspension of one assurance, or (absent) of all the issuer's; or,
    /// with `red_line` (version 4), of that red line only.
    Suspend {
        /// The assurance, or none for all.
        #[serde(default)]
        assurance: Option<String>,
        /// The red line suspended instead (version 4).
        #[serde(default)]
        red_line: Option<String>,
        /// From.
        from_ms: i64,
        /// Until (exclusive), or open.
        #[serde(default)]
        until_ms: Option<i64>,
        /// Words.
        #[serde(default)]
        text: String,
    },
}

impl Structured {
    /// The kind, as its `type` tag names it on the wire (`assurance`,
    /// `red_line`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Structured::Acknowledgement { .. } => "acknowledgement",
            Structured::Allegation { .. } => "allegation",
            Structured::Assurance(_) => "assurance",
            Structured::ConfirmLapse { .. } => "confirm_lapse",
            Structured::Conveyed { .. } => "conveyed",
            Structured::EscrowConfirmation { .. } => "escrow_confirmation",
            Structured::EscrowExchange { .. } => "escrow_exchange",
            Structured::Event { .. } => "event",
            Structured::Finding { .. } => "finding",
            Structured::Note { .. } => "note",
            Structured::RedLine(_) => "red_line",
            Structured::Dispute { .. } => "dispute",
            Structured::Fulfilment { .. } => "fulfilment",
            Structured::Guarantee { .. } => "guarantee",
            Structured::Relate { .. } => "relate",
            Structured::Reply { .. } => "reply",
            Structured::Request { .. } => "request",
            Structured::Revoke { .. } => "revoke",
            Structured::Suspend { .. } => "suspend",
        }
    }

    /// The other messages this one names (hex message ids), in the order of
    /// [`Structured::REFERENCE_FIELDS`].
    pub fn references(&self) -> Vec<&str> {
        let refs: Vec<Option<&str>> = match self {
            Structured::Acknowledgement { of, .. } => vec![Some(of.as_str())],
            Structured::Allegation { assurance, .. } => vec![Some(assurance.as_str())],
            Structured::Assurance(a) => vec![a.reciprocates.as_deref()],
            Structured::ConfirmLapse {
                assurance, event, ..
            } => vec![Some(assurance.as_str()), event.as_deref()],
            Structured::Conveyed { original, .. } => vec![Some(original.as_str())],
            Structured::Finding {
                assurance,
                allegation,
                ..
            } => vec![Some(assurance.as_str()), allegation.as_deref()],
            Structured::Reply { allegation, .. } => vec![Some(allegation.as_str())],
            Structured::Request { about, .. } => vec![about.as_deref()],
            Structured::Revoke {
                assurance,
                red_line,
                ..
            }
            | Structured::Suspend {
                assurance,
                red_line,
                ..
            } => {
                vec![assurance.as_deref(), red_line.as_deref()]
            }
            Structured::Fulfilment {
                assurance, event, ..
            } => vec![Some(assurance.as_str()), event.as_deref()],
            Structured::Guarantee { assurance, .. } => vec![Some(assurance.as_str())],
            Structured::EscrowConfirmation { .. }
            | Structured::EscrowExchange { .. }
            | Structured::Event { .. }
            | Structured::Note { .. }
            | Structured::RedLine(_)
            | Structured::Dispute { .. }
            | Structured::Relate { .. } => vec![],
        };
        refs.into_iter().flatten().collect()
    }
}

impl Structured {
    /// One line for a transcript: the kind and the human wording.
    pub fn summary(&self) -> String {
        use super::whatif::describe;
        match self {
            Structured::Acknowledgement { of, text } => {
                format!("[acknowledges {}] {text}", short(of))
            }
            Structured::Allegation {
                assurance,
                evidence,
                ..
            } => format!("[alleges a breach of {}] {evidence}", short(assurance)),
            Structured::Assurance(a) => format!(
                "[assurance, {}{}] {}",
                super::terms::formality(a.formality),
                a.reciprocates
                    .as_deref()
                    .map_or(String::new(), |r| format!(", reciprocating {}", short(r)))
                    + &a.translation_of
                        .as_deref()
                        .map_or(String::new(), |d| format!(
                            ", TRANSLATION ({}) of {}",
                            a.language,
                            short(d)
                        )),
                a.wording
            ),
            Structured::ConfirmLapse {
                assurance, text, ..
            } => format!("[confirms {} lapsed] {text}", short(assurance)),
            Structured::Conveyed { original, text } => format!(
                "[the mediator's words, conveying {}] {text}",
                short(original)
            ),
            Structured::EscrowConfirmation { exchange, offers } => format!(
                "[escrow {exchange} released; received {}]",
                offers
                    .iter()
                    .map(|o| match &o.digest {
                        Some(d) => format!("{}: offer {}", o.from, short(&d.to_hex())),
                        None => format!("{}: nothing readable", o.from),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Structured::EscrowExchange {
                exchange,
                participants,
                terms,
                deadline_ms,
                ..
            } => format!(
                "[escrowed exchange {exchange} among {}, offers due by {}] Terms: {terms}",
                participants
                    .iter()
                    .map(Handle::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                crate::Timestamp(*deadline_ms).utc_text()
            ),
            Structured::Event {
                actor,
                action,
                text,
                ..
            } => format!("[event report: {}] {text}", describe(actor, action)),
            Structured::Finding {
                assurance,
                breached,
                lapsed,
                text,
                ..
            } => {
                format!(
                    "[finding on {}: breached {breached}, lapsed {lapsed}] {text}",
                    short(assurance)
                )
            }
            Structured::Note { text } => format!("[note] {text}"),
            Structured::RedLine(r) => format!("[red line] {}", r.wording),
            Structured::Dispute {
                subject,
                relation,
                object,
                text,
            } => format!(
                "[disputes that] {subject} {} {object}: {text}",
                relation_words(*relation)
            ),
            Structured::Fulfilment {
                assurance,
                proviso,
                fulfilled,
                text,
                ..
            } => format!(
                "[proviso {} of {} {}] {text}",
                u64::from(*proviso) + 1,
                short(assurance),
                if *fulfilled {
                    "fulfilled"
                } else {
                    "not fulfilled"
                }
            ),
            Structured::Guarantee {
                assurance, wording, ..
            } => format!("[guarantees {}] {wording}", short(assurance)),
            Structured::Relate {
                subject,
                relation,
                object,
            } => format!(
                "[declares] {subject} {} {object}",
                relation_words(*relation)
            ),
            Structured::Reply { allegation, text } => {
                format!("[replies to {}] {text}", short(allegation))
            }
            Structured::Request { question, .. } => format!("[request for explanation] {question}"),
            Structured::Revoke {
                assurance,
                red_line,
                text,
                ..
            } => format!("[revokes {}] {text}", named(assurance, red_line)),
            Structured::Suspend {
                assurance,
                red_line,
                text,
                ..
            } => format!("[suspends {}] {text}", named(assurance, red_line)),
        }
    }
}

/// "is an ally of", "is a proxy of".
pub fn relation_words(r: RelationKind) -> &'static str {
    match r {
        RelationKind::AllyOf => "is an ally of",
        RelationKind::ProxyOf => "is a proxy of",
    }
}

/// What a revocation or suspension names, in words.
fn named(assurance: &Option<String>, red_line: &Option<String>) -> String {
    match (assurance, red_line) {
        (_, Some(r)) => format!("red line {}", short(r)),
        (Some(a), None) => short(a),
        (None, None) => "every assurance".into(),
    }
}

/// A time in an error message.
fn utc(ms: &i64) -> String {
    crate::Timestamp(*ms).utc_text()
}

pub(crate) fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// A typed payload that does not make sense.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum CommitmentError {
    /// A mode not defined for the action's PLOVER type.
    #[error("{mode:?} is not a mode of {kind}{near} (its modes: {allowed})")]
    Mode {
        /// The type.
        kind: EventType,
        /// The mode.
        mode: String,
        /// " (did you mean …?)", or nothing.
        near: String,
        /// Allowed modes.
        allowed: String,
    },
    /// A window that ends before it starts.
    #[error("the window ends ({}) before it starts ({})", utc(.until), utc(.from))]
    Window {
        /// Start.
        from: i64,
        /// End.
        until: i64,
    },
    /// Neither an end nor an explicit "until revoked", or both.
    #[error("an assurance needs a valid-until time or an explicit until-revoked, not {0}")]
    Validity(&'static str),
    /// A reference that is not a message id.
    #[error("{field}: {value:?} is not a message id (32 hex digits)")]
    Reference {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// An escrowed exchange whose terms digest is not SHA-256 of its terms.
    #[error("the terms digest is not SHA-256 of the terms")]
    TermsDigest,
    /// A required text is empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// Terms that contradict each other.
    #[error("{0}")]
    Terms(&'static str),
}

fn check_action(a: &Action) -> Result<(), CommitmentError> {
    for m in &a.modes {
        if !a.kind.modes().contains(&m.as_str()) {
            let near = super::actors::near(m, a.kind.modes().iter().copied());
            return Err(CommitmentError::Mode {
                kind: a.kind,
                mode: m.clone(),
                near: super::actors::suggest(&near),
                allowed: if a.kind.modes().is_empty() {
                    "none".into()
                } else {
                    a.kind.modes().join(", ")
                },
            });
        }
    }
    Ok(())
}

fn check_ref(field: &'static str, value: &str) -> Result<(), CommitmentError> {
    if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(CommitmentError::Reference {
            field,
            value: value.chars().take(40).collect(),
        })
    }
}

fn check_named(
    assurance: &Option<String>,
    red_line: &Option<String>,
) -> Result<(), CommitmentError> {
    if let Some(a) = assurance {
        check_ref("assurance", a)?;
    }
    match red_line {
        Some(_) if assurance.is_some() => Err(CommitmentError::Terms(
            "name an assurance or a red line, not both",
        )),
        Some(r) => check_ref("red_line", r),
        None => Ok(()),
    }
}

fn check_window(from: i64, until: i64) -> Result<(), CommitmentError> {
    if until <= from {
        Err(CommitmentError::Window { from, until })
    } else {
        Ok(())
    }
}

impl Structured {
    /// The lowest body version that may carry this value: version 4 for
    /// the terms an older client would fold wrongly (a revoked red line it
    /// would keep firing) and everything else of that version, version 1
    /// otherwise. A decoder refuses it in an earlier version.
    pub fn min_version(&self) -> crate::payload::BodyVersion {
        use crate::payload::BodyVersion;
        let v4 = match self {
            Structured::RedLine(r) => r.uses_v4(),
            Structured::Assurance(a) => {
                a.unless_combine.is_some() || a.provided.is_some() || a.provided_combine.is_some()
            }
            Structured::Revoke { red_line, .. } | Structured::Suspend { red_line, .. } => {
                red_line.is_some()
            }
            Structured::Dispute { .. }
            | Structured::Fulfilment { .. }
            | Structured::Guarantee { .. } => true,
            _ => false,
        };
        if v4 {
            BodyVersion::V4
        } else {
            BodyVersion::V1
        }
    }

    /// The fields that name another message of the channel (hex ids).
    pub const REFERENCE_FIELDS: [&'static str; 8] = [
        "assurance",
        "allegation",
        "original",
        "of",
        "about",
        "reciprocates",
        "event",
        "red_line",
    ];

    /// Checks what a sender must get right before sending.
    pub fn validate(&self) -> Result<(), CommitmentError> {
        match self {
            Structured::Assurance(a) => {
                check_action(&a.commitment.action)?;
                match (a.valid_until_ms, a.until_revoked) {
                    (Some(u), false) => check_window(a.valid_from_ms, u)?,
                    (None, true) => {}
                    (Some(_), true) => return Err(CommitmentError::Validity("both")),
                    (None, false) => return Err(CommitmentError::Validity("neither")),
                }
                if a.wording.trim().is_empty() {
                    return Err(CommitmentError::Empty("the wording"));
                }
                if let Some(r) = &a.reciprocates {
                    check_ref("reciprocates", r)?;
                }
                for p in a.provided.iter().flatten() {
                    check_action(&p.action)?;
                }
                if a.provided.as_ref().is_some_and(Vec::is_empty) {
                    return Err(CommitmentError::Terms(
                        "a list of provisos is absent or not empty",
                    ));
                }
                Ok(())
            }
            Structured::RedLine(r) => {
                check_action(&r.trigger)?;
                check_action(&r.response)?;
                if r.targets.is_some() && r.trigger.target.is_some() {
                    return Err(CommitmentError::Terms(
                        "a red line names its targets in `targets` or in its trigger, not both",
                    ));
                }
                if r.targets.as_ref().is_some_and(|t| t.len() < 2) {
                    return Err(CommitmentError::Terms(
                        "`targets` lists two or more (one goes in the trigger)",
                    ));
                }
                if let (Some(f), Some(u)) = (r.valid_from_ms, r.valid_until_ms) {
                    check_window(f, u)?;
                }
                Ok(())
            }
            Structured::Guarantee {
                assurance,
                response,
                wording,
            } => {
                check_ref("assurance", assurance)?;
                check_action(response)?;
                if wording.trim().is_empty() {
                    return Err(CommitmentError::Empty("the wording"));
                }
                Ok(())
            }
            Structured::Fulfilment {
                assurance, event, ..
            } => {
                check_ref("assurance", assurance)?;
                event.as_deref().map_or(Ok(()), |e| check_ref("event", e))
            }
            Structured::Event {
                action,
                from_ms,
                until_ms,
                ..
            } => {
                check_action(action)?;
                if until_ms < from_ms {
                    return Err(CommitmentError::Window {
                        from: *from_ms,
                        until: *until_ms,
                    });
                }
                Ok(())
            }
            Structured::Allegation { assurance, .. }
            | Structured::ConfirmLapse { assurance, .. } => check_ref("assurance", assurance),
            Structured::Finding {
                assurance,
                allegation,
                ..
            } => {
                check_ref("assurance", assurance)?;
                allegation
                    .as_deref()
                    .map_or(Ok(()), |a| check_ref("allegation", a))
            }
            Structured::Reply { allegation, .. } => check_ref("allegation", allegation),
            Structured::Conveyed { original, .. } => check_ref("original", original),
            Structured::Acknowledgement { of, .. } => check_ref("of", of),
            Structured::Revoke {
                assurance,
                red_line,
                ..
            } => check_named(assurance, red_line),
            Structured::Suspend {
                assurance,
                red_line,
                from_ms,
                until_ms,
                ..
            } => {
                if let Some(u) = until_ms {
                    check_window(*from_ms, *u)?;
                }
                check_named(assurance, red_line)
            }
            Structured::Request { about, .. } => {
                about.as_deref().map_or(Ok(()), |a| check_ref("about", a))
            }
            Structured::EscrowExchange {
                terms,
                terms_digest,
                ..
            } => {
                if *terms_digest != Digest::of(&[terms.as_bytes()]) {
                    return Err(CommitmentError::TermsDigest);
                }
                Ok(())
            }
            Structured::Note { .. }
            | Structured::Relate { .. }
            | Structured::Dispute { .. }
            | Structured::EscrowConfirmation { .. } => Ok(()),
        }
    }
}
