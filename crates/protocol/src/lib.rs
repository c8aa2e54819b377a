//! The sans-IO core of Backchannel: identities and Olm sessions, the
//! envelope the relay sees, the payload inside it, and the per-sender hash
//! chains that make a relay's tampering visible.
//!
//! No sockets, no files, no clock: time (`Timestamp`) and randomness for
//! salts and ids come in as arguments, so everything here is deterministic
//! and testable with fixed inputs. vodozemac draws its own key randomness.
//!
//! ```text
//!  sender                                   relay                  recipient
//!  Header+Body ─seal→ padded plaintext ─Olm→ Envelope ──store/forward──→ Olm ─→ Payload
//!                  (full copy / stub)                                       verify chain
//! ```
//!
//! # Example: two principals exchange one message
//!
//! ```
//! use backchannel_protocol::{
//!     payload::{seal, Body, BodyKind, BodyVersion, Header, Payload},
//!     transcript::{Chain, Epoch, HeadVector},
//!     ChannelId, Handle, Identity, MessageId, Timestamp,
//! };
//!
//! let blue = Identity::new();
//! let mut red = Identity::new();
//! let red_key = red.generate_one_time_keys(1).remove(0);
//! let mut to_red = blue.outbound_session(&red.keys(), &red_key).unwrap();
//!
//! let channel = ChannelId::random();
//! let epoch = Epoch::genesis(channel);
//! let chain = Chain::new(epoch);
//! let header = Header {
//!     version: BodyVersion::V2,
//!     channel_id: channel,
//!     message_id: MessageId::random(),
//!     epoch,
//!     sender: Handle::new("blue").unwrap(),
//!     seq: chain.next_seq().unwrap(),
//!     prev: chain.head().digest,
//!     sent_at: Timestamp(1_750_000_000_000),
//!     in_reply_to: None,
//!     body_kind: BodyKind::Text,
//!     heads: HeadVector::default(),
//! };
//! let sealed = seal(header, [9; 16], Body::Text("hello".into())).unwrap();
//! let (olm_type, ciphertext) = to_red.encrypt(&sealed.full).unwrap();
//!
//! let (_session, plaintext) = red.inbound_session(&blue.keys(), olm_type, &ciphertext).unwrap();
//! let payload = Payload::from_plaintext(&plaintext).unwrap();
//! assert_eq!(payload.digest(), sealed.digest);
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub mod b64;
pub mod channel;
pub mod commitments;
pub mod envelope;
pub mod error;
pub mod escrow;
pub mod fingerprint;
pub mod identity;
pub mod ids;
pub mod member;
pub mod payload;
pub mod session;
pub mod transcript;
pub mod vectors;
mod wire;

pub use envelope::{Envelope, OlmType};
pub use error::{CryptoError, DecodeError};
pub use identity::{Identity, IdentityKeys, SignedKey};
pub use ids::{
    duration_words, ChannelId, Digest, EpochNumber, ExchangeId, Handle, MessageId, Seq, Timestamp,
};
pub use session::PeerSession;
