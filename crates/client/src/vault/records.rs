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

/// Evidence of tampering or loss.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Stable kind (`gap`, `replay`, `forged`...).
    pub kind: String,
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
