//! The envelope: everything the relay sees of a message copy.
//!
//! Nothing in it is trusted by a recipient. The `seq_hint` only helps place a
//! copy that fails to decrypt; gaps are counted from decrypted payloads alone.

use crate::error::DecodeError;
use crate::ids::{ChannelId, Handle, MessageId};
use crate::wire::{Reader, Writer};

/// Version byte that opens an encoded envelope.
pub const ENVELOPE_VERSION: u8 = 1;

/// The largest ciphertext a relay accepts, in bytes: the largest padding
/// bucket plus Olm's framing, rounded up generously.
pub const CIPHERTEXT_MAX_BYTES: usize = 160 * 1024;

/// The two Olm message types, numbered as libolm numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OlmType {
    /// Type 1: a message on an established session.
    Normal,
    /// Type 0: a pre-key message, which also sets the session up.
    PreKey,
}

impl OlmType {
    /// The libolm number: 0 for pre-key, 1 for normal.
    pub fn number(self) -> u8 {
        match self {
            OlmType::Normal => 1,
            OlmType::PreKey => 0,
        }
    }

    /// From the libolm number.
    pub fn from_number(n: u8) -> Result<Self, DecodeError> {
        match n {
            0 => Ok(OlmType::PreKey),
            1 => Ok(OlmType::Normal),
            tag => Err(DecodeError::UnknownTag {
                field: "olm_type",
                tag,
            }),
        }
    }
}

/// One recipient's copy of one message, as stored and forwarded by the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The channel the sender says it belongs to (checked against the payload).
    pub channel_id: ChannelId,
    /// The message, the same in every recipient's copy.
    pub message_id: MessageId,
    /// Who sent it (the relay checks this against the poster's login).
    pub sender: Handle,
    /// Whose mailbox it goes to.
    pub recipient: Handle,
    /// Unauthenticated hint of the sender's sequence number.
    pub seq_hint: u64,
    /// Olm message type.
    pub olm_type: OlmType,
    /// The Olm ciphertext of the padded payload.
    pub ciphertext: Vec<u8>,
}

impl Envelope {
    /// The canonical bytes: what "the same envelope" means for idempotent
    /// posts, and what clients keep in their outbox.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(ENVELOPE_VERSION)
            .raw(&self.channel_id.0)
            .raw(&self.message_id.0)
            .handle(&self.sender)
            .handle(&self.recipient)
            .u64(self.seq_hint)
            .u8(self.olm_type.number())
            .bytes32(&self.ciphertext);
        w.buf
    }

    /// Decodes canonical bytes; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::Version {
                expected: ENVELOPE_VERSION,
                found: version,
            });
        }
        let env = Envelope {
            channel_id: r.channel_id()?,
            message_id: r.message_id("message_id")?,
            sender: r.handle("sender")?,
            recipient: r.handle("recipient")?,
            seq_hint: r.u64("seq_hint")?,
            olm_type: OlmType::from_number(r.u8("olm_type")?)?,
            ciphertext: r.bytes32("ciphertext", CIPHERTEXT_MAX_BYTES)?.to_vec(),
        };
        r.finish()?;
        Ok(env)
    }
}
