//! What the store keeps, as sealed JSON records.

use serde::{Deserialize, Serialize};

/// How a pinned identity key was learnt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trust {
    /// Introduced by the mediator in a creation payload: not verified.
    Introduced {
        /// The introducer.
        by: String,
    },
    /// First seen from the relay (trust on first use): compare the safety
    /// number in person before relying on it.
    Tofu,
    /// Its safety number was compared over an independent path.
    Verified,
}

impl Trust {
    /// How the CLI shows it.
    pub fn label(&self) -> String {
        match self {
            Trust::Introduced { by } => format!("introduced by {by}, unverified"),
            Trust::Tofu => "first seen from the relay, unverified".into(),
            Trust::Verified => "verified".into(),
        }
    }
}

/// A pinned principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Its handle.
    pub handle: String,
    /// Curve25519 identity key, base64.
    pub curve25519: String,
    /// Ed25519 identity key, base64.
    pub ed25519: String,
    /// How it was learnt.
    pub trust: Trust,
}

/// Sent or received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Received.
    In,
    /// Sent by this member.
    Out,
}

/// A payload this member sent or received.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The unpadded payload bytes, base64.
    pub payload: String,
    /// Its digest, hex.
    pub digest: String,
    /// Sent or received.
    pub direction: Direction,
    /// When this member stored it (its own clock).
    pub stored_at_ms: i64,
}

/// A post committed before it is sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// The channel, hex.
    pub channel_id: String,
    /// The envelopes, JSON form.
    pub envelopes: Vec<backchannel_protocol::api::EnvelopeJson>,
}

/// Evidence of tampering or loss (or, when `notice`, something that honest
/// delays also cause).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Stable kind (`gap`, `replay`, `forged`...).
    pub kind: String,
    /// True for a notice, which is not evidence (e.g. `crossed_messages`).
    #[serde(default)]
    pub notice: bool,
    /// The member concerned, for `ack_overdue` and `membership_mismatch`.
    #[serde(default)]
    pub member: String,
    /// Positions involved (gap positions, the position of a late message).
    #[serde(default)]
    pub positions: Vec<u64>,
    /// Epoch of those positions.
    #[serde(default)]
    pub epoch: u32,
    /// What to do about it.
    #[serde(default)]
    pub advice: String,
    /// Set when the evidence was answered (a late receipt, a gap filled).
    #[serde(default)]
    pub cleared: Option<String>,
    /// The channel, hex (empty if unknown).
    pub channel_id: String,
    /// The principal involved.
    pub sender: String,
    /// Message ids involved, hex.
    pub message_ids: Vec<String>,
    /// What was seen and what to do.
    pub detail: String,
    /// When it was raised (this member's clock).
    pub raised_at_ms: i64,
}

impl AlertRecord {
    /// An alert of `kind` with what was seen (`detail`) and what to do.
    pub fn new(
        kind: &str,
        channel_id: String,
        sender: String,
        message_ids: Vec<String>,
        detail: String,
        at_ms: i64,
    ) -> Self {
        AlertRecord {
            advice: advice(kind).to_string(),
            notice: kind == "crossed_messages",
            kind: kind.to_string(),
            member: String::new(),
            positions: Vec::new(),
            epoch: 0,
            cleared: None,
            channel_id,
            sender,
            message_ids,
            detail,
            raised_at_ms: at_ms,
        }
    }
}

/// What a user should do about each kind of alert.
pub fn advice(kind: &str) -> &'static str {
    match kind {
        "ack_overdue" => "the member has not confirmed receipt in time: reach it by another path, and do not read silence as assent",
        "bad_key" => "the relay served a key that cannot be right: do not use this relay for this principal until checked",
        "escrow_foreign_offer" => "an offer sealed for another exchange was released in this one: the intermediary moved it; treat the exchange as failed",
        "escrow_late_release" => "the release came after the deadline (or an offer was sealed after it): the intermediary was not fair; treat the exchange as failed",
        "escrow_partial_release" => "not every offer was released together: the intermediary was not fair; treat the exchange as failed",
        "crossed_messages" => "not evidence: the reply was written before its author saw your later messages; read it in that light",
        "fork" => "two members hold different versions of one message: compare the transcripts with the mediator and the other members",
        "forged" => "a ciphertext its claimed sender never sent: the relay (or someone in front of it) injected it; nothing was shown",
        "gap" => "messages were withheld or lost: ask the sender to resend, and tell the mediator",
        "key_changed" => "sending to this principal is blocked: compare the safety number again in person, then re-verify with `backchannel trust verify`",
        "late_undecryptable" => "a withheld message arrived too late to decrypt: ask the sender to resend it",
        "membership_mismatch" => "the relay lists a member nobody agreed to: sending in this channel is blocked; tell the mediator",
        "modified" => "a message was altered in transit and could not be read: ask the sender to resend it",
        "reorder" => "a message arrived after later ones: it is shown in its place; the relay delayed it",
        "replay" => "the relay delivered an old message again or in the wrong place: it was not shown twice",
        "rollback" => "the relay served older state than you had: it may have been restored from backup, or is lying",
        _ => "read the detail, then dismiss it with `backchannel verify --dismiss ID`",
    }
}

/// What this member saw of an exchange.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExchangeLocal {
    /// It saw the exchange still unreleased after its deadline.
    pub saw_open_past_deadline: bool,
    /// Once released: each copy's submitter and what it decrypted to.
    pub opened: Option<Vec<(String, Option<backchannel_protocol::escrow::SealedOffer>)>>,
}
