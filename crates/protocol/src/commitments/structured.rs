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
    /// Revocation of one assurance, or (absent) of all the issuer's.
    Revoke {
        /// The assurance, or none for all.
        #[serde(default)]
        assurance: Option<String>,
        /// From when (never before it was sent).
        effective_ms: i64,
        /// Words.
        #[serde(default)]
        text: String,
    },
    /// Suspension of one assurance, or (absent) of all the issuer's.
    Suspend {
        /// The assurance, or none for all.
        #[serde(default)]
        assurance: Option<String>,
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
            Structured::Revoke { assurance, .. } | Structured::Suspend { assurance, .. } => {
                vec![assurance.as_deref()]
            }
            Structured::EscrowConfirmation { .. }
            | Structured::EscrowExchange { .. }
            | Structured::Event { .. }
            | Structured::Note { .. }
            | Structured::RedLine(_)
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
            Structured::Relate {
                subject,
                relation,
                object,
            } => format!(
                "[declares] {subject} {} {object}",
                match relation {
                    RelationKind::AllyOf => "is an ally of",
                    RelationKind::ProxyOf => "is a proxy of",
                }
            ),
            Structured::Reply { allegation, text } => {
                format!("[replies to {}] {text}", short(allegation))
            }
            Structured::Request { question, .. } => format!("[request for explanation] {question}"),
            Structured::Revoke {
                assurance, text, ..
            } => {
                format!(
                    "[revokes {}] {text}",
                    assurance.as_deref().map_or("every assurance".into(), short)
                )
            }
            Structured::Suspend {
                assurance, text, ..
            } => {
                format!(
                    "[suspends {}] {text}",
                    assurance.as_deref().map_or("every assurance".into(), short)
                )
            }
        }
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

fn check_window(from: i64, until: i64) -> Result<(), CommitmentError> {
    if until <= from {
        Err(CommitmentError::Window { from, until })
    } else {
        Ok(())
    }
}

impl Structured {
    /// The fields that name another message of the channel (hex ids).
    pub const REFERENCE_FIELDS: [&'static str; 7] = [
        "assurance",
        "allegation",
        "original",
        "of",
        "about",
        "reciprocates",
        "event",
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
                Ok(())
            }
            Structured::RedLine(r) => {
                check_action(&r.trigger)?;
                check_action(&r.response)
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
            Structured::Revoke { assurance, .. } => assurance
                .as_deref()
                .map_or(Ok(()), |a| check_ref("assurance", a)),
            Structured::Suspend {
                assurance,
                from_ms,
                until_ms,
                ..
            } => {
                if let Some(u) = until_ms {
                    check_window(*from_ms, *u)?;
                }
                assurance
                    .as_deref()
                    .map_or(Ok(()), |a| check_ref("assurance", a))
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
            | Structured::EscrowConfirmation { .. } => Ok(()),
        }
    }
}
