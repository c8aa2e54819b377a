//! Assurances, red lines and the rest of the typed payloads; `status` (the
//! board) and `whatif` (the cascade).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use backchannel_protocol::commitments::actors::{check_modes, ActorError, Namespace};
use backchannel_protocol::commitments::plover::EventType;
use backchannel_protocol::commitments::structured::{
    Action, Actor, Assurance, Combine, Commitment, Formality, LapseCondition, Place, Proviso,
    RedLine, RelationKind, Scope, Structured,
};
use backchannel_protocol::commitments::whatif::{Hypothesis, Options};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};

use crate::store::{run_or_preview, DryRun, Work};
use crate::time::Time;
use crate::{render, store};

fn kind(s: &str) -> Result<EventType, String> {
    EventType::parse(s).ok_or_else(|| {
        format!(
            "{s:?} is not a PLOVER event type: one of {}",
            EventType::ALL
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// `outside:NAME` for an actor outside the channel; a plain name stays
/// plain (`{"member": name}`) until the channel's namespace resolves it:
/// a member, or an outside actor its commitments already name.
fn actor(s: &str) -> Actor {
    match s.strip_prefix("outside:") {
        Some(n) => Actor::Outside(n.to_string()),
        None => Actor::Member(s.to_string()),
    }
}

fn yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{s:?}: say yes or no")),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormalityArg {
    AideMemoire,
    NonPaper,
    NoteVerbale,
    Oral,
}

/// What the assurance commits to and when it lapses.
#[derive(Debug, Args)]
pub struct AssuranceArgs {
    /// Channel id, or a unique prefix of it (6 hex digits or more).
    channel: String,
    /// The human wording (the authoritative text).
    wording: String,
    /// A beneficiary (repeat for each).
    #[arg(long = "to", value_name = "ACTOR", required = true)]
    to: Vec<String>,
    /// The action refrained from (a PLOVER type, e.g. ASSAULT).
    #[arg(long, value_name = "TYPE", value_parser = kind, conflicts_with = "undertake")]
    refrain_from: Option<EventType>,
    /// The action undertaken instead.
    #[arg(long, value_name = "TYPE", value_parser = kind)]
    undertake: Option<EventType>,
    /// A PLOVER mode of that action (repeat).
    #[arg(long = "mode")]
    modes: Vec<String>,
    /// Against whom (default: the first beneficiary).
    #[arg(long, value_name = "ACTOR")]
    against: Option<String>,
    /// Lapses if attacked first by this actor (repeat: any one lapses it,
    /// or with --unless-all only all of them).
    #[arg(long, value_name = "ACTOR")]
    unless_attacked_by: Vec<String>,
    /// Lapses only once every --unless-attacked-by condition is met.
    #[arg(long, requires = "unless_attacked_by")]
    unless_all: bool,
    /// Holds provided another side does this by a time:
    /// "ACTOR TYPE[/MODE+MODE] [TARGET] @TIME" (repeat: all must be
    /// fulfilled, or with --provided-any one suffices). Only the mediator's
    /// finding or your confirmation decides one (`backchannel proviso`).
    #[arg(long, value_name = "PROVISO")]
    provided: Vec<String>,
    /// One fulfilled --provided suffices.
    #[arg(long, requires = "provided")]
    provided_any: bool,
    /// Do the attacker's allies count? (unset: both readings are evaluated)
    #[arg(long, value_parser = yes_no)]
    attacker_allies: Option<bool>,
    /// Do the attacker's proxies count?
    #[arg(long, value_parser = yes_no)]
    attacker_proxies: Option<bool>,
    /// Does an attack on your allies count?
    #[arg(long, value_parser = yes_no)]
    attacked_allies: Option<bool>,
    /// Does an attack on your proxies count?
    #[arg(long, value_parser = yes_no)]
    attacked_proxies: Option<bool>,
    /// Valid from (default now). Times: see `backchannel --help`.
    #[arg(long, value_parser = Time, allow_hyphen_values = true, default_value = "now")]
    from: i64,
    /// Valid until (exclusive).
    #[arg(long, value_parser = Time, allow_hyphen_values = true, required_unless_present = "until_revoked")]
    until: Option<i64>,
    /// Valid until revoked (say so explicitly: no silent forever).
    #[arg(long)]
    until_revoked: bool,
    /// Formality.
    #[arg(long, value_enum, default_value = "non-paper")]
    formality: FormalityArg,
    /// Who authorized it.
    #[arg(long, required = true)]
    authorized_by: String,
    /// Authoritative language (BCP 47).
    #[arg(long, default_value = "en")]
    language: String,
    /// For a translation: the digest of the authoritative text's message.
    #[arg(long, value_name = "DIGEST")]
    translation_of: Option<String>,
    /// A reservation clause.
    #[arg(long, default_value = "")]
    reservation: String,
    #[command(flatten)]
    out: SendFlags,
}

impl AssuranceArgs {
    fn build(&self, reciprocates: Option<String>) -> anyhow::Result<Structured> {
        let kind = self
            .refrain_from
            .or(self.undertake)
            .context("say --refrain-from TYPE or --undertake TYPE")?;
        let beneficiaries: Vec<Actor> = self.to.iter().map(|a| actor(a)).collect();
        let target = self
            .against
            .as_deref()
            .map(actor)
            .or_else(|| beneficiaries.first().cloned());
        Ok(Structured::Assurance(Assurance {
            beneficiaries,
            commitment: Commitment {
                refrain: self.refrain_from.is_some(),
                action: Action {
                    kind,
                    modes: self.modes.clone(),
                    target,
                },
            },
            unless: self
                .unless_attacked_by
                .iter()
                .map(|by| LapseCondition {
                    attacked_first_by: actor(by),
                    scope: Scope {
                        attacker_allies: self.attacker_allies,
                        attacker_proxies: self.attacker_proxies,
                        attacked_allies: self.attacked_allies,
                        attacked_proxies: self.attacked_proxies,
                    },
                })
                .collect(),
            unless_combine: self.unless_all.then_some(Combine::All),
            provided: (!self.provided.is_empty())
                .then(|| self.provided.iter().map(|p| proviso(p)).collect())
                .transpose()?,
            provided_combine: self.provided_any.then_some(Combine::Any),
            reservation: self.reservation.clone(),
            valid_from_ms: self.from,
            valid_until_ms: self.until,
            until_revoked: self.until_revoked,
            formality: match self.formality {
                FormalityArg::AideMemoire => Formality::AideMemoire,
                FormalityArg::NonPaper => Formality::NonPaper,
                FormalityArg::NoteVerbale => Formality::NoteVerbale,
                FormalityArg::Oral => Formality::Oral,
            },
            authorized_by: self.authorized_by.clone(),
            language: self.language.clone(),
            translation_of: self.translation_of.clone(),
            reciprocates,
            wording: self.wording.clone(),
        }))
    }
}

/// `--dry-run` and `--json`, on every command that sends a commitment.
#[derive(Debug, Clone, Copy, Args)]
pub struct SendFlags {
    #[command(flatten)]
    dry: DryRun,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// An action given as flags.
#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Who acts.
    #[arg(long, value_name = "ACTOR")]
    actor: String,
    /// The PLOVER type (ASSAULT, COERCE, MOBILIZE, ...).
    #[arg(long, value_name = "TYPE", value_parser = kind)]
    action: EventType,
    /// A PLOVER mode (repeat).
    #[arg(long = "mode")]
    modes: Vec<String>,
    /// Against whom.
    #[arg(long, value_name = "ACTOR")]
    target: Option<String>,
}

impl ActionArgs {
    fn action(&self) -> Action {
        Action {
            kind: self.action,
            modes: self.modes.clone(),
            target: self.target.as_deref().map(actor),
        }
    }
}

/// Assurances, red lines, breach handling and event reports.
#[derive(Debug, Subcommand)]
pub enum CommitCommand {
    /// Give a conditional assurance.
    ///
    /// Example:
    ///
    ///   backchannel assure 3f2a9c1e "Blue will not strike Red first, as long as it is not attacked first." \
    ///     --to red --refrain-from ASSAULT --unless-attacked-by red --until-revoked --authorized-by "the cabinet"
    #[command(verbatim_doc_comment)]
    Assure(AssuranceArgs),
    /// Give an assurance in return for another.
    ///
    /// Example:
    ///
    ///   backchannel reciprocate 3f2a9c1e --of 9c1e0d5a "Red will not strike Blue first." --to blue --refrain-from ASSAULT \
    ///     --unless-attacked-by blue --until-revoked --authorized-by "the council"
    #[command(verbatim_doc_comment)]
    Reciprocate {
        /// The assurance reciprocated (message id or prefix).
        #[arg(long = "of", value_name = "ASSURANCE")]
        assurance: String,
        #[command(flatten)]
        args: AssuranceArgs,
    },
    /// Declare a red line: if someone does this, you will respond so.
    ///
    /// Example:
    ///
    ///   backchannel redline 3f2a9c1e "If Red is attacked, the bases of Green are not secure." \
    ///     --if ASSAULT --if-against red --then ASSAULT --then-against outside:green
    ///   backchannel redline 3f2a9c1e "Any strike on Red or its ally, by Blue or its proxies, this month." \
    ///     --if ASSAULT --if-by blue --if-against red --if-against outside:ally --by-proxies yes \
    ///     --from now --until +30d --then ASSAULT --then-against blue
    ///   backchannel redline 3f2a9c1e "A landing on the island." --if ASSAULT --lat 21.5 --lon -80.0 --radius-m 50000 \
    ///     --then MOBILIZE
    ///
    /// The --by-* and --against-* questions left unset, once one is set,
    /// stay open: both readings are evaluated and the what-if says where
    /// they differ. Several targets, readings, validity and a place need
    /// body version 4 (every member's client must read it).
    #[command(verbatim_doc_comment)]
    Redline {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The human wording.
        wording: String,
        /// The triggering action (PLOVER type).
        #[arg(long = "if", value_name = "TYPE", value_parser = kind)]
        trigger: EventType,
        /// Its mode (repeat; any if none).
        #[arg(long = "if-mode")]
        trigger_modes: Vec<String>,
        /// Who must act (any actor if absent).
        #[arg(long = "if-by", value_name = "ACTOR")]
        by: Option<String>,
        /// Against whom (repeat: against any of them).
        #[arg(long = "if-against", value_name = "ACTOR")]
        against: Vec<String>,
        /// Do the acting side's allies count? (yes/no)
        #[arg(long, value_parser = yes_no)]
        by_allies: Option<bool>,
        /// Do the acting side's proxies count?
        #[arg(long, value_parser = yes_no)]
        by_proxies: Option<bool>,
        /// Does an act against a target's allies count?
        #[arg(long, value_parser = yes_no)]
        against_allies: Option<bool>,
        /// Does an act against a target's proxies count?
        #[arg(long, value_parser = yes_no)]
        against_proxies: Option<bool>,
        /// Holds from (default: when sent).
        #[arg(long, value_parser = Time, allow_hyphen_values = true)]
        from: Option<i64>,
        /// Holds until (exclusive; default: until revoked).
        #[arg(long, value_parser = Time, allow_hyphen_values = true)]
        until: Option<i64>,
        /// Only a trigger at this place: latitude, degrees.
        #[arg(long, allow_negative_numbers = true)]
        lat: Option<f64>,
        /// Longitude, degrees.
        #[arg(long, allow_negative_numbers = true)]
        lon: Option<f64>,
        /// GeoNames id.
        #[arg(long)]
        geonames: Option<u64>,
        /// Radius, metres.
        #[arg(long, default_value_t = 1000)]
        radius_m: u32,
        /// The declared response (PLOVER type).
        #[arg(long = "then", value_name = "TYPE", value_parser = kind)]
        response: EventType,
        /// Its mode (repeat).
        #[arg(long = "then-mode")]
        response_modes: Vec<String>,
        /// Against whom you would respond.
        #[arg(long = "then-against", value_name = "ACTOR")]
        response_target: Option<String>,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Revoke one of your assurances (--assurance ID), all of them (--all), or a red line (--red-line ID).
    ///
    /// Prints what will change and asks on a terminal; --yes sends without
    /// asking (without a terminal, nothing is sent unless --yes is given).
    /// A revocation cannot be taken back.
    ///
    /// Examples:
    ///
    ///   backchannel revoke 3f2a9c1e --assurance 9c1e0d5a --effective +1h "Withdrawn after the incident of 3 May."
    ///   backchannel revoke 3f2a9c1e --all --yes "Every assurance of ours is withdrawn."
    ///   backchannel revoke 3f2a9c1e --red-line 4b7e21aa --yes "The red line on the strait is withdrawn."
    #[command(verbatim_doc_comment, group(ArgGroup::new("which").required(true).args(["assurance", "all", "red_line"])))]
    Revoke {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// Why, in words.
        text: String,
        /// The assurance: its id, or a unique prefix of it.
        #[arg(long)]
        assurance: Option<String>,
        /// Every assurance of yours in the channel, at once.
        #[arg(long)]
        all: bool,
        /// One of your red lines instead: its id, or a unique prefix of it
        /// (body version 4).
        #[arg(long, value_name = "RED_LINE")]
        red_line: Option<String>,
        /// Send without asking (what changes is still printed).
        #[arg(long)]
        yes: bool,
        /// When it takes effect (never before it is sent).
        #[arg(long, value_parser = Time, allow_hyphen_values = true, default_value = "now")]
        effective: i64,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Suspend one of your assurances (--assurance ID), all of them (--all), or a red line (--red-line ID).
    ///
    /// Prints what will change and asks on a terminal; --yes sends without
    /// asking (without a terminal, nothing is sent unless --yes is given).
    ///
    /// Example:
    ///
    ///   backchannel suspend 3f2a9c1e --assurance 9c1e0d5a --from now --until +48h "Suspended pending the mediator's finding."
    ///   backchannel suspend 3f2a9c1e --red-line 4b7e21aa --until +72h --yes "Paused for the ceasefire talks."
    #[command(verbatim_doc_comment, group(ArgGroup::new("which").required(true).args(["assurance", "all", "red_line"])))]
    Suspend {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// Why.
        text: String,
        /// The assurance: its id, or a unique prefix of it.
        #[arg(long)]
        assurance: Option<String>,
        /// Every assurance of yours in the channel, at once.
        #[arg(long)]
        all: bool,
        /// One of your red lines instead: its id, or a unique prefix of it
        /// (body version 4).
        #[arg(long, value_name = "RED_LINE")]
        red_line: Option<String>,
        /// Send without asking (what changes is still printed).
        #[arg(long)]
        yes: bool,
        /// From.
        #[arg(long, value_parser = Time, allow_hyphen_values = true, default_value = "now")]
        from: i64,
        /// Until (open if absent).
        #[arg(long, value_parser = Time, allow_hyphen_values = true)]
        until: Option<i64>,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Report an event (actor, action, target, UTC window, place).
    ///
    /// Example:
    ///
    ///   backchannel report 3f2a9c1e --actor outside:militia --action ASSAULT --mode drone --target blue \
    ///     --from 2026-11-24T02:10Z --until 2026-11-24T02:40Z --lat 33.312 --lon 44.361 --radius-m 2000 "Two drones over the depot."
    #[command(verbatim_doc_comment)]
    Report {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// What was seen, in words.
        text: String,
        #[command(flatten)]
        what: ActionArgs,
        /// Window start.
        #[arg(long, value_parser = Time, allow_hyphen_values = true)]
        from: i64,
        /// Window end.
        #[arg(long, value_parser = Time, allow_hyphen_values = true)]
        until: i64,
        /// Latitude, degrees.
        #[arg(long, allow_negative_numbers = true)]
        lat: Option<f64>,
        /// Longitude, degrees.
        #[arg(long, allow_negative_numbers = true)]
        lon: Option<f64>,
        /// GeoNames id.
        #[arg(long)]
        geonames: Option<u64>,
        /// Radius, metres.
        #[arg(long, default_value_t = 1000)]
        radius_m: u32,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Confirm that one of your assurances lapsed.
    ///
    /// Example:
    ///
    ///   backchannel confirm-lapse 3f2a9c1e 9c1e0d5a --event 77ab01c2 "The strike on our base ends it."
    #[command(verbatim_doc_comment)]
    ConfirmLapse {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The assurance: its id, or a unique prefix of it.
        assurance: String,
        /// Why.
        text: String,
        /// The event report that lapsed it (id or unique prefix).
        #[arg(long)]
        event: Option<String>,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Allege a breach of an assurance, with a reply-by time.
    ///
    /// Example:
    ///
    ///   backchannel allege 3f2a9c1e 9c1e0d5a --reply-by +48h "Artillery fire on the ridge at 02:10 UTC."
    #[command(verbatim_doc_comment)]
    Allege {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The assurance: its id, or a unique prefix of it.
        assurance: String,
        /// The evidence, in words.
        evidence: String,
        /// Reply due by.
        #[arg(long, value_parser = Time, allow_hyphen_values = true)]
        reply_by: i64,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Answer an allegation against your assurance.
    ///
    /// Example:
    ///
    ///   backchannel reply 3f2a9c1e 5d92e0f1 "No unit of ours fired; see the log of sector 4."
    #[command(verbatim_doc_comment)]
    Reply {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The allegation: its id, or a unique prefix of it.
        allegation: String,
        /// The answer.
        text: String,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Record the mediator's finding on an assurance (or an allegation).
    ///
    /// Example:
    ///
    ///   backchannel find 3f2a9c1e 9c1e0d5a --allegation 5d92e0f1 --breached "The evidence shows fire from positions held by blue."
    #[command(verbatim_doc_comment)]
    Find {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The assurance: its id, or a unique prefix of it.
        assurance: String,
        /// Reasons.
        text: String,
        /// The allegation answered (id or unique prefix).
        #[arg(long)]
        allegation: Option<String>,
        /// It was breached.
        #[arg(long)]
        breached: bool,
        /// It lapsed.
        #[arg(long)]
        lapsed: bool,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Request an explanation, with a reply-by time.
    ///
    /// Example:
    ///
    ///   backchannel ask 3f2a9c1e --reply-by +48h "Explain the movement of armour near the border on 3 May."
    #[command(verbatim_doc_comment)]
    Ask {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The question.
        question: String,
        /// The message it is about (id or unique prefix).
        #[arg(long)]
        about: Option<String>,
        /// Reply due by.
        #[arg(long, value_parser = Time, allow_hyphen_values = true)]
        reply_by: i64,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Acknowledge a message: a deliberate "received and understood".
    ///
    /// Example:
    ///
    ///   backchannel acknowledge 3f2a9c1e 9c1e0d5a "Received and understood."
    #[command(verbatim_doc_comment)]
    Acknowledge {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The message: its id, or a unique prefix of it.
        message: String,
        /// Words.
        #[arg(default_value = "Received and understood.")]
        text: String,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Convey a principal's message in the mediator's own words.
    ///
    /// The paraphrase is marked as the mediator's words and linked to the
    /// original, which it never replaces.
    ///
    /// Example:
    ///
    ///   backchannel convey 3f2a9c1e 9c1e0d5a "Blue assures you it will not strike first."
    #[command(verbatim_doc_comment)]
    Convey {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The original message: its id, or a unique prefix of it.
        original: String,
        /// The paraphrase.
        text: String,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Declare a relation between actors (attributed to you).
    ///
    /// Example:
    ///
    ///   backchannel relate 3f2a9c1e outside:militia proxy-of red
    #[command(verbatim_doc_comment)]
    Relate {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// Subject.
        subject: String,
        /// `ally-of` or `proxy-of`.
        #[arg(value_parser = ["ally-of", "proxy-of"])]
        relation: String,
        /// Object.
        object: String,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Dispute a relation another member declared (body version 4).
    ///
    /// The relation stays on the board, marked as disputed by you; a
    /// what-if with --undisputed-only leaves it out.
    ///
    /// Example:
    ///
    ///   backchannel dispute 3f2a9c1e outside:militia ally-of red "It is a proxy: it takes orders and arms from red."
    #[command(verbatim_doc_comment)]
    Dispute {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// Subject.
        subject: String,
        /// `ally-of` or `proxy-of`.
        #[arg(value_parser = ["ally-of", "proxy-of"])]
        relation: String,
        /// Object.
        object: String,
        /// Why, in words.
        #[arg(default_value = "")]
        text: String,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Decide whether a proviso of an assurance was fulfilled (body version 4).
    ///
    /// Only the assurance's issuer (confirming) or the mediator (finding,
    /// where it reads the channel) decides; anyone else reports an event,
    /// which is a claim. A proviso decided not fulfilled lapses the
    /// assurance (with --provided-any, once every proviso is).
    ///
    /// Example:
    ///
    ///   backchannel proviso 3f2a9c1e 9c1e0d5a 1 --fulfilled --event 77ab01c2 "The inspectors saw the sites empty."
    ///   backchannel proviso 3f2a9c1e 9c1e0d5a 1 --failed "The missiles were still there on the 30th."
    #[command(verbatim_doc_comment, group(ArgGroup::new("verdict").required(true).args(["fulfilled", "failed"])))]
    Proviso {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The assurance: its id, or a unique prefix of it.
        assurance: String,
        /// Which proviso, from 1 (as `show` lists them).
        number: u32,
        /// Reasons.
        text: String,
        /// It was done.
        #[arg(long)]
        fulfilled: bool,
        /// It was not done by its time.
        #[arg(long)]
        failed: bool,
        /// The event report it rests on (id or unique prefix).
        #[arg(long)]
        event: Option<String>,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Guarantee another's assurance: undertake to act if it is breached (body version 4).
    ///
    /// Example:
    ///
    ///   backchannel guarantee 3f2a9c1e 9c1e0d5a "Should Blue strike first, we will impose sanctions on it." \
    ///     --then SANCTION --then-against blue
    #[command(verbatim_doc_comment)]
    Guarantee {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The assurance guaranteed: its id, or a unique prefix of it.
        assurance: String,
        /// The human wording of your undertaking.
        wording: String,
        /// What you will do on a breach (PLOVER type).
        #[arg(long = "then", value_name = "TYPE", value_parser = kind)]
        response: EventType,
        /// Its mode (repeat).
        #[arg(long = "then-mode")]
        response_modes: Vec<String>,
        /// Against whom.
        #[arg(long = "then-against", value_name = "ACTOR")]
        response_target: Option<String>,
        #[command(flatten)]
        out: SendFlags,
    },
    /// Show a message or commitment: every typed term, its state and what followed.
    ///
    /// For an assurance: conditions with their scopes, authority, formality,
    /// validity, language, reciprocation, and the revocations, suspensions,
    /// allegations and findings that name it.
    ///
    /// Example:
    ///
    ///   backchannel show 9c1e0d5a
    ///   backchannel show 9c1e0d5a --json
    #[command(verbatim_doc_comment)]
    Show {
        /// The message id, or a unique prefix of it (6 hex digits or more).
        id: String,
        /// Evaluate the board at this time (default now).
        #[arg(long, value_parser = Time, allow_hyphen_values = true, default_value = "now")]
        at: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The board: assurances and red lines with their states and terms, and what awaits an answer.
    ///
    /// Example:
    ///
    ///   backchannel status 3f2a9c1e
    ///   backchannel status 3f2a9c1e --at +7d --json
    #[command(verbatim_doc_comment)]
    Status {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// Evaluate at this time (default now).
        #[arg(long, value_parser = Time, allow_hyphen_values = true, default_value = "now")]
        at: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run hypothetical events (in sequence) through the commitments and show the cascade.
    ///
    /// Example:
    ///
    ///   backchannel whatif 3f2a9c1e --actor outside:green --action ASSAULT --target red
    ///   backchannel whatif 3f2a9c1e --actor outside:green --action ASSAULT --target red --svg cascade.svg
    ///   backchannel whatif 3f2a9c1e --actor outside:green --action ASSAULT --target red --dot | dot -Tpng > cascade.png
    ///   backchannel whatif --all-channels --actor outside:green --action ASSAULT --target red
    ///   backchannel whatif 3f2a9c1e --actor militia --action ASSAULT --target blue --then "red ASSAULT blue @+2h"
    ///   backchannel whatif 3f2a9c1e --from-report 77ab01c2 --then "blue ASSAULT/aerial militia"
    ///   backchannel whatif 3f2a9c1e --actor militia --action ASSAULT --target blue --undisputed-only
    #[command(verbatim_doc_comment)]
    Whatif {
        /// Channel id, or a unique prefix of it (or --all-channels).
        #[arg(required_unless_present = "all_channels")]
        channel: Option<String>,
        /// Run it through every channel you are in at once.
        #[arg(long, conflicts_with = "channel")]
        all_channels: bool,
        /// Start from an event already reported in the channel (its id or
        /// a unique prefix): what was reported before it is its history.
        #[arg(long, value_name = "EVENT")]
        from_report: Option<String>,
        /// Who acts (with --action).
        #[arg(long, value_name = "ACTOR", requires = "action")]
        actor: Option<String>,
        /// The PLOVER type (ASSAULT, COERCE, MOBILIZE, ...).
        #[arg(long, value_name = "TYPE", value_parser = kind, requires = "actor")]
        action: Option<EventType>,
        /// A PLOVER mode (repeat).
        #[arg(long = "mode")]
        modes: Vec<String>,
        /// Against whom.
        #[arg(long, value_name = "ACTOR")]
        target: Option<String>,
        /// A further event, after the cascade of the ones before it ends:
        /// "ACTOR TYPE[/MODE+MODE] [TARGET] [@TIME]" (repeat, in order).
        #[arg(long = "then", value_name = "EVENT")]
        then: Vec<String>,
        /// Evaluate at this time (default now).
        #[arg(long, value_parser = Time, allow_hyphen_values = true, default_value = "now")]
        at: i64,
        /// Print JSON.
        #[arg(long, conflicts_with_all = ["dot", "svg"])]
        json: bool,
        /// Print a Graphviz DOT graph (top to bottom, one cluster per
        /// channel, with a legend).
        #[arg(long, conflicts_with = "svg")]
        dot: bool,
        /// Use only the relations no member disputes.
        #[arg(long)]
        undisputed_only: bool,
        /// Where the first event happens: latitude, degrees (a red line
        /// limited to a place fires only on an event there).
        #[arg(long, allow_negative_numbers = true, requires = "lon")]
        lat: Option<f64>,
        /// Longitude, degrees.
        #[arg(long, allow_negative_numbers = true, requires = "lat")]
        lon: Option<f64>,
        /// GeoNames id of the place.
        #[arg(long)]
        geonames: Option<u64>,
        /// Radius of the place, metres.
        #[arg(long, default_value_t = 1000)]
        radius_m: u32,
        /// Write the graph as an SVG to FILE, laid out here: no Graphviz
        /// needed (docs/commitments.md: reading the graph).
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
}

/// `ally-of` or `proxy-of` (clap allows no other).
fn relation_kind(words: &str) -> RelationKind {
    if words == "ally-of" {
        RelationKind::AllyOf
    } else {
        RelationKind::ProxyOf
    }
}

/// `--provided "red RETREAT/withdraw @2026-12-01T00:00Z"`: who must do
/// what (against whom) by when; names are resolved when sent.
fn proviso(spec: &str) -> anyhow::Result<Proviso> {
    let usage =
        "write \"ACTOR TYPE[/MODE+MODE] [TARGET] @TIME\", e.g. \"red RETREAT/withdraw @+30d\"";
    let (who, action, at) =
        event_words(spec).map_err(|e| anyhow::anyhow!("--provided {spec:?}: {e}; {usage}"))?;
    let by_ms = at.ok_or_else(|| anyhow::anyhow!("--provided {spec:?}: say by when, {usage}"))?;
    check_modes(action.kind, &action.modes)
        .map_err(|e| anyhow::anyhow!("--provided {spec:?}: {e}"))?;
    Ok(Proviso {
        actor: actor(who),
        action: Action {
            target: action.target.as_ref().map(|t| actor(t.name())),
            ..action
        },
        by_ms,
    })
}

/// "ACTOR TYPE[/MODE+MODE] [TARGET] [@TIME]" in words: the actor as
/// written, the action (target as written, a member until resolved), and
/// the time if given.
fn event_words(spec: &str) -> Result<(&str, Action, Option<i64>), String> {
    let mut words: Vec<&str> = spec.split_whitespace().collect();
    let at_ms = match words.last().and_then(|w| w.strip_prefix('@')) {
        Some(t) => {
            let t = crate::time::parse_time(t).map_err(|e| e.to_string())?;
            words.pop();
            Some(t)
        }
        None => None,
    };
    let (who, what, target) = match words.as_slice() {
        [who, what] => (*who, *what, None),
        [who, what, target] => (*who, *what, Some(*target)),
        _ => return Err("not an event".into()),
    };
    let (kind_name, modes) = what.split_once('/').unwrap_or((what, ""));
    let kind = kind(kind_name)?;
    let modes: Vec<String> = modes
        .split('+')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    Ok((
        who,
        Action {
            kind,
            modes,
            target: target.map(|t| Actor::Member(t.to_string())),
        },
        at_ms,
    ))
}

/// `--then "outside:usa ASSAULT/aerial red @+2h"`: who, what (modes after
/// `/`, joined by `+`), against whom, and when, resolved in `ns`.
fn event_spec(
    spec: &str,
    ns: &Namespace,
    refused: &dyn Fn(ActorError) -> anyhow::Error,
) -> anyhow::Result<Hypothesis> {
    let usage = "write \"ACTOR TYPE[/MODE+MODE] [TARGET] [@TIME]\", e.g. \"outside:usa ASSAULT/aerial red @+2h\"";
    let (who, action, at_ms) =
        event_words(spec).map_err(|e| anyhow::anyhow!("--then {spec:?}: {e}; {usage}"))?;
    check_modes(action.kind, &action.modes).map_err(refused)?;
    let target = action
        .target
        .as_ref()
        .map(|t| ns.resolve(t.name()))
        .transpose()
        .map_err(refused)?;
    let mut h = Hypothesis::new(
        ns.resolve(who).map_err(refused)?,
        Action { target, ..action },
    );
    h.at_ms = at_ms;
    Ok(h)
}

/// `--lat`, `--lon`, `--geonames`, `--radius-m` as a place.
fn place(
    lat: Option<f64>,
    lon: Option<f64>,
    geonames: Option<u64>,
    radius_m: u32,
) -> anyhow::Result<Option<Place>> {
    Place::from_degrees(lat, lon, geonames, radius_m).map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.replace("the latitude and the longitude", "--lat and --lon")
                .replace("a GeoNames id", "--geonames")
        )
    })
}

pub async fn run(store_path: &Path, cmd: CommitCommand) -> anyhow::Result<()> {
    let (channel, body, out) = match cmd {
        CommitCommand::Status { channel, at, json } => {
            let client = store::open_reader(store_path)?;
            let id = client.resolve_channel(&channel)?;
            let board = client.board(id, backchannel_protocol::Timestamp(at))?;
            if json {
                return render::json(&board);
            }
            out!("{}", render::board(&board));
            return Ok(());
        }
        CommitCommand::Show { id, at, json } => {
            let client = store::open_reader(store_path)?;
            let view = client
                .message_view(&id, backchannel_protocol::Timestamp(at))
                .map_err(store::explain)?;
            if json {
                return render::json(&view);
            }
            out!("{}", render::message_view(&view));
            return Ok(());
        }
        CommitCommand::Whatif {
            channel,
            all_channels,
            from_report,
            actor,
            action,
            modes,
            target,
            then,
            at,
            json,
            dot,
            undisputed_only,
            lat,
            lon,
            geonames,
            radius_m,
            svg,
        } => {
            let client = store::open_reader(store_path)?;
            let id = channel
                .as_deref()
                .map(|c| client.resolve_channel(c))
                .transpose()?;
            let one = id.filter(|_| !all_channels);
            // Names are resolved where the what-if looks: one channel, or all.
            let (ns, scope) = match one {
                Some(id) => (client.namespace(id)?, channel.as_deref()),
                None => (client.namespace_all()?, None),
            };
            let mut events = Vec::new();
            if let Some(r) = &from_report {
                events.push(client.reported_event(one, r).map_err(store::explain)?);
            }
            let refused = |e| store::explain_actor(e, scope, false);
            if let (Some(actor), Some(kind)) = (&actor, action) {
                check_modes(kind, &modes).map_err(refused)?;
                let mut h = Hypothesis::new(
                    ns.resolve(actor).map_err(refused)?,
                    Action {
                        kind,
                        modes: modes.clone(),
                        target: target
                            .as_deref()
                            .map(|t| ns.resolve(t))
                            .transpose()
                            .map_err(refused)?,
                    },
                );
                h.place = place(lat, lon, geonames, radius_m)?;
                events.push(h);
            }
            for spec in &then {
                events.push(event_spec(spec, &ns, &refused)?);
            }
            if events.is_empty() {
                bail!("say what happens: --actor ACTOR --action TYPE [--target ACTOR], or --from-report EVENT");
            }
            let at = backchannel_protocol::Timestamp(at);
            let options = Options { undisputed_only };
            let cascade = match one {
                Some(id) => client.what_if(id, at, &events, options)?,
                None => client.what_if_all(at, &events, options)?,
            };
            if json {
                return render::json(&cascade);
            }
            if let Some(path) = &svg {
                // The cascade names the channel's commitments: the file is
                // its owner's alone, like every file the CLI writes.
                crate::out::write_private(path, &cascade.to_svg())?;
                let n = cascade.steps.len();
                let steps = if n == 1 { "step" } else { "steps" };
                eprintln!("wrote the graph of {n} {steps} to {}", path.display());
            } else if dot {
                out!("{}", cascade.to_dot());
            } else {
                out!("{}", cascade.to_text());
            }
            return Ok(());
        }
        CommitCommand::Assure(a) => (a.channel.clone(), a.build(None)?, a.out),
        CommitCommand::Reciprocate { assurance, args } => {
            (args.channel.clone(), args.build(Some(assurance))?, args.out)
        }
        CommitCommand::Redline {
            channel,
            wording,
            trigger,
            trigger_modes,
            by,
            against,
            by_allies,
            by_proxies,
            against_allies,
            against_proxies,
            from,
            until,
            lat,
            lon,
            geonames,
            radius_m,
            response,
            response_modes,
            response_target,
            out,
        } => {
            let scope = Scope {
                attacker_allies: by_allies,
                attacker_proxies: by_proxies,
                attacked_allies: against_allies,
                attacked_proxies: against_proxies,
            };
            let several = against.len() > 1;
            let mut r = RedLine::new(
                by.as_deref().map(actor),
                Action {
                    kind: trigger,
                    modes: trigger_modes,
                    target: against.first().filter(|_| !several).map(|a| actor(a)),
                },
                Action {
                    kind: response,
                    modes: response_modes,
                    target: response_target.as_deref().map(actor),
                },
                wording,
            );
            r.targets = several.then(|| against.iter().map(|a| actor(a)).collect());
            r.scope = (scope != Scope::default()).then_some(scope);
            r.valid_from_ms = from;
            r.valid_until_ms = until;
            r.place = place(lat, lon, geonames, radius_m)?;
            (channel, Structured::RedLine(r), out)
        }
        CommitCommand::Revoke {
            channel,
            text,
            assurance,
            all: _,
            red_line,
            yes,
            effective,
            out,
        } => {
            let change = Change::Revoke(effective);
            let named = Named::of(assurance.as_deref(), red_line.as_deref());
            let (assurance, red_line) = deliberate(store_path, &channel, named, change, yes, out)?;
            (
                channel,
                Structured::Revoke {
                    assurance,
                    red_line,
                    effective_ms: effective,
                    text,
                },
                out,
            )
        }
        CommitCommand::Suspend {
            channel,
            text,
            assurance,
            all: _,
            red_line,
            yes,
            from,
            until,
            out,
        } => {
            let change = Change::Suspend { from, until };
            let named = Named::of(assurance.as_deref(), red_line.as_deref());
            let (assurance, red_line) = deliberate(store_path, &channel, named, change, yes, out)?;
            (
                channel,
                Structured::Suspend {
                    assurance,
                    red_line,
                    from_ms: from,
                    until_ms: until,
                    text,
                },
                out,
            )
        }
        CommitCommand::Report {
            channel,
            text,
            what,
            from,
            until,
            lat,
            lon,
            geonames,
            radius_m,
            out,
        } => (
            channel,
            Structured::Event {
                actor: actor(&what.actor),
                action: what.action(),
                from_ms: from,
                until_ms: until,
                place: place(lat, lon, geonames, radius_m)?,
                text,
            },
            out,
        ),
        CommitCommand::ConfirmLapse {
            channel,
            assurance,
            text,
            event,
            out,
        } => (
            channel,
            Structured::ConfirmLapse {
                assurance,
                event,
                text,
            },
            out,
        ),
        CommitCommand::Allege {
            channel,
            assurance,
            evidence,
            reply_by,
            out,
        } => (
            channel,
            Structured::Allegation {
                assurance,
                evidence,
                reply_by_ms: reply_by,
            },
            out,
        ),
        CommitCommand::Reply {
            channel,
            allegation,
            text,
            out,
        } => (channel, Structured::Reply { allegation, text }, out),
        CommitCommand::Find {
            channel,
            assurance,
            text,
            allegation,
            breached,
            lapsed,
            out,
        } => (
            channel,
            Structured::Finding {
                assurance,
                allegation,
                breached,
                lapsed,
                text,
            },
            out,
        ),
        CommitCommand::Ask {
            channel,
            question,
            about,
            reply_by,
            out,
        } => (
            channel,
            Structured::Request {
                about,
                question,
                reply_by_ms: reply_by,
            },
            out,
        ),
        CommitCommand::Acknowledge {
            channel,
            message,
            text,
            out,
        } => (
            channel,
            Structured::Acknowledgement { of: message, text },
            out,
        ),
        CommitCommand::Convey {
            channel,
            original,
            text,
            out,
        } => (channel, Structured::Conveyed { original, text }, out),
        CommitCommand::Relate {
            channel,
            subject,
            relation,
            object,
            out,
        } => (
            channel,
            Structured::Relate {
                subject: actor(&subject),
                relation: relation_kind(&relation),
                object: actor(&object),
            },
            out,
        ),
        CommitCommand::Dispute {
            channel,
            subject,
            relation,
            object,
            text,
            out,
        } => (
            channel,
            Structured::Dispute {
                subject: actor(&subject),
                relation: relation_kind(&relation),
                object: actor(&object),
                text,
            },
            out,
        ),
        CommitCommand::Proviso {
            channel,
            assurance,
            number,
            text,
            fulfilled,
            failed: _,
            event,
            out,
        } => {
            if number == 0 {
                bail!("provisos are numbered from 1, as `backchannel show` lists them");
            }
            (
                channel,
                Structured::Fulfilment {
                    assurance,
                    proviso: number - 1,
                    fulfilled,
                    event,
                    text,
                },
                out,
            )
        }
        CommitCommand::Guarantee {
            channel,
            assurance,
            wording,
            response,
            response_modes,
            response_target,
            out,
        } => (
            channel,
            Structured::Guarantee {
                assurance,
                response: Action {
                    kind: response,
                    modes: response_modes,
                    target: response_target.as_deref().map(actor),
                },
                wording,
            },
            out,
        ),
    };
    let work = Work::Structured {
        channel,
        body: serde_json::to_value(&body)?,
    };
    let Some(sent) = run_or_preview(store_path, work, out.dry, out.json).await? else {
        return Ok(());
    };
    if out.json {
        return render::json(&sent);
    }
    outln!("{}", render::delivery(&sent));
    Ok(())
}

/// What a revocation or suspension does, for the list printed before it.
#[derive(Clone, Copy)]
enum Change {
    Revoke(i64),
    Suspend { from: i64, until: Option<i64> },
}

/// What a revocation or suspension names.
#[derive(Clone, Copy)]
enum Named<'a> {
    Assurance(&'a str),
    All,
    RedLine(&'a str),
}

impl<'a> Named<'a> {
    fn of(assurance: Option<&'a str>, red_line: Option<&'a str>) -> Named<'a> {
        match (assurance, red_line) {
            (_, Some(r)) => Named::RedLine(r),
            (Some(a), None) => Named::Assurance(a),
            (None, None) => Named::All,
        }
    }
}

/// Irreversible acts are deliberate: prints which of your commitments
/// `change` will touch (one assurance, all of them, or one red line), then
/// asks on a terminal. Refuses, having sent nothing, without `--yes` or a
/// terminal's yes. A dry run only prints. Returns the whole ids to send.
fn deliberate(
    store_path: &Path,
    channel: &str,
    named: Named<'_>,
    change: Change,
    yes: bool,
    out: SendFlags,
) -> anyhow::Result<(Option<String>, Option<String>)> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    let client = store::open_reader(store_path)?;
    let id = client.resolve_channel(channel)?;
    let board = client.board(id, backchannel_client::now())?;
    let me = client.me().to_string();
    let whole = |p: &str| {
        client
            .resolve_message(Some(id), p)
            .map_err(store::explain)
            .map(|(_, m)| m.to_hex())
    };
    let (target, line) = match named {
        Named::Assurance(a) => (Some(whole(a)?), None),
        Named::RedLine(r) => (None, Some(whole(r)?)),
        Named::All => (None, None),
    };
    if let Some(l) = &line {
        let Some(v) = board.red_lines.iter().find(|r| r.id == *l) else {
            bail!("{} is not a red line in this channel: --red-line names one of your red lines; nothing was sent", &l[..8]);
        };
        if v.issuer != me {
            bail!(
                "{} is {}'s red line: only its issuer can revoke or suspend it; nothing was sent",
                &l[..8],
                v.issuer
            );
        }
    }
    let touched = board.touched(&me, target.as_deref(), line.as_deref());
    let (verb, when) = match change {
        Change::Revoke(at) => ("revoke", format!("effective {}", crate::time::show(at))),
        Change::Suspend { from, until } => (
            "suspend",
            format!(
                "from {} until {}",
                crate::time::show(from),
                until.map_or("further notice".into(), crate::time::show)
            ),
        ),
    };
    if let Some(line) = target
        .as_ref()
        .and_then(|t| board.red_lines.iter().find(|r| r.id == *t))
    {
        bail!(
            "{} is a red line, not an assurance: name it with --red-line; nothing was sent",
            &line.id[..8]
        );
    }
    if touched.is_empty() {
        match target {
            Some(t) => bail!("{} is not one of your assurances in this channel: only its issuer can {verb} it; nothing was sent", &t[..8]),
            None => bail!("you have no assurance in force in this channel: nothing to {verb}; nothing was sent"),
        }
    }
    let what = if line.is_some() {
        "red line"
    } else {
        "of your assurances"
    };
    let mut said = format!(
        "This will {verb} {} {what} in channel {}, {when}:\n",
        touched.len(),
        &id.to_hex()[..8]
    );
    for (a, state, wording) in &touched {
        said.push_str(&format!(
            "  {} ({}) \"{}\"\n",
            &a[..8],
            state.words(),
            backchannel_protocol::commitments::terms::first_words(wording, 12)
        ));
    }
    eprint!("{said}");
    if out.dry.dry_run || yes {
        return Ok((target, line));
    }
    if !std::io::stdin().is_terminal() {
        bail!("not confirmed: to {verb} without a terminal, pass --yes; nothing was sent");
    }
    eprint!("Type yes to {verb} them: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "yes" | "y") {
        bail!("not confirmed: nothing was sent");
    }
    Ok((target, line))
}
