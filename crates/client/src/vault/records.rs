//! What the store keeps, as sealed JSON records.

use serde::{Deserialize, Serialize};

pub use backchannel_protocol::member::{Direction, Trust};

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
    /// Its body could not be read here (kept as a stub in its place).
    #[serde(default)]
    pub unsupported: bool,
}

/// A post committed before it is sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// The channel, hex.
    pub channel_id: String,
    /// The envelopes, JSON form.
    pub envelopes: Vec<backchannel_protocol::api::EnvelopeJson>,
    /// Prepared from a resumed position after `stale_store`.
    #[serde(default)]
    pub resumed: bool,
}

impl ExchangeLocal {
    /// The offers a confirmation may name, the possibly released one last.
    pub fn candidates(&self) -> Vec<backchannel_protocol::Digest> {
        self.sealed.iter().copied().chain(self.pending).collect()
    }
}

/// What this member saw of an exchange.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExchangeLocal {
    /// It saw the exchange still unreleased after its deadline.
    pub saw_open_past_deadline: bool,
    /// Once released: each copy's submitter and what it decrypted to.
    pub opened: Option<Vec<(String, Option<backchannel_protocol::escrow::SealedOffer>)>>,
    /// For each entry of `opened`: SHA-256 of the exact plaintext opened
    /// (empty in records from before protocol v1).
    #[serde(default)]
    pub opened_digests: Vec<Option<backchannel_protocol::Digest>>,
    /// The digest of every offer of this member the relay took, oldest first.
    #[serde(default)]
    pub sealed: Vec<backchannel_protocol::Digest>,
    /// An offer submitted whose answer did not arrive (it may have been taken).
    #[serde(default)]
    pub pending: Option<backchannel_protocol::Digest>,
    /// The exchange's channel and participants, as this member sealed for them.
    #[serde(default)]
    pub channel: Option<backchannel_protocol::ChannelId>,
    /// See `channel`.
    #[serde(default)]
    pub participants: Vec<backchannel_protocol::Handle>,
    /// The participants whose confirmations were judged.
    #[serde(default)]
    pub judged: Vec<backchannel_protocol::Handle>,
}
