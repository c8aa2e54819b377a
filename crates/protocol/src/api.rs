//! The relay's HTTP/JSON API types, shared by the relay and its clients so
//! both sides agree on every field. `docs/protocol.md` describes each one.
//!
//! Ids are lowercase hex, keys, signatures and ciphertexts are base64
//! (standard alphabet, no padding), times are milliseconds since the Unix
//! epoch.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::envelope::{Envelope, OlmType};
use crate::error::DecodeError;
use crate::identity::{IdentityKeys, SignedKey};
use crate::ids::{ChannelId, Handle, MessageId};

/// Every non-2xx answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a message for people.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    /// Stable code (see docs/protocol.md, "Errors").
    pub code: String,
    /// What went wrong and what to do, in English.
    pub message: String,
    /// With `429 rate_limited`: seconds until the request may be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// `POST /v1/principals`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The handle to take.
    pub handle: String,
    /// Curve25519 identity key, base64.
    pub curve25519: String,
    /// Ed25519 identity key, base64.
    pub ed25519: String,
    /// A single-use invitation code from the relay's operator (required
    /// when the relay's registration is `invite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}

/// A principal's public record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrincipalResponse {
    /// Its handle.
    pub handle: String,
    /// Curve25519 identity key, base64.
    pub curve25519: String,
    /// Ed25519 identity key, base64.
    pub ed25519: String,
    /// Grows with every change to the principal's published keys.
    pub key_version: u64,
}

/// `POST /v1/login/challenge`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// Who wants to log in.
    pub handle: String,
}

/// A single-use login challenge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// 32 random bytes, base64.
    pub challenge: String,
    /// When it stops being accepted.
    pub expires_at_ms: i64,
}

/// `POST /v1/login`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Who logs in.
    pub handle: String,
    /// The challenge as received, base64.
    pub challenge: String,
    /// Ed25519 signature over `LOGIN_PREFIX ‖ challenge`, base64.
    pub signature: String,
}

/// A bearer token for `Authorization: Bearer <token>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The token (secret: never log it).
    pub token: String,
    /// When it expires.
    pub expires_at_ms: i64,
    /// How long it lives from now, in ms (the client's clock may differ
    /// from the relay's; absent from older relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<i64>,
}

/// A signed one-time or fallback key in JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyJson {
    /// Curve25519 public key, base64.
    pub key: String,
    /// Ed25519 signature, base64.
    pub signature: String,
}

impl KeyJson {
    /// From a signed key.
    pub fn from_signed(k: &SignedKey) -> Self {
        KeyJson {
            key: b64::encode(k.key),
            signature: b64::encode(k.signature),
        }
    }

    /// To a signed key (the signature is not checked here).
    pub fn to_signed(&self, fallback: bool) -> Result<SignedKey, DecodeError> {
        Ok(SignedKey {
            key: fixed(&self.key, "key")?,
            fallback,
            signature: fixed(&self.signature, "signature")?,
        })
    }
}

/// `POST /v1/keys`
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UploadKeysRequest {
    /// New one-time keys.
    #[serde(default)]
    pub one_time_keys: Vec<KeyJson>,
    /// A new fallback key, replacing the old one.
    #[serde(default)]
    pub fallback_key: Option<KeyJson>,
    /// Forget the unclaimed one-time keys held before adding these (a
    /// store restored from a backup lacks keys published after it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
}

/// What the relay holds of the caller's keys after an upload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadKeysResponse {
    /// Unclaimed one-time keys.
    pub one_time_key_count: u64,
    /// Whether a fallback key is held.
    pub has_fallback_key: bool,
    /// The principal's key version.
    pub key_version: u64,
}

/// `POST /v1/keys/claim`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Whose key to claim.
    pub handle: String,
}

/// A claimed key with its owner's identity keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClaimResponse {
    /// The owner's handle.
    pub handle: String,
    /// Owner's Curve25519 identity key, base64.
    pub curve25519: String,
    /// Owner's Ed25519 identity key, base64.
    pub ed25519: String,
    /// The claimed key.
    pub one_time_key: KeyJson,
    /// True when no one-time key was left and this is the fallback key.
    pub fallback: bool,
    /// The owner's key version after this claim.
    pub key_version: u64,
}

impl ClaimResponse {
    /// The owner's identity keys and the signed key, decoded.
    pub fn decode(&self) -> Result<(IdentityKeys, SignedKey), DecodeError> {
        Ok((
            IdentityKeys {
                curve25519: fixed(&self.curve25519, "curve25519")?,
                ed25519: fixed(&self.ed25519, "ed25519")?,
            },
            self.one_time_key.to_signed(self.fallback)?,
        ))
    }
}

/// `POST /v1/channels`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// The new channel's id, chosen at random by the creator, hex.
    pub channel_id: String,
    /// Every member's handle, the creator included.
    pub members: Vec<String>,
}

/// `PUT /v1/channels/{channel_id}/members`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMembersRequest {
    /// Every member's handle, the creator included.
    pub members: Vec<String>,
}

/// A channel's routing record. Routing only: clients trust membership and
/// policy from the end-to-end creation payload, never from this.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelResponse {
    /// Channel id, hex.
    pub channel_id: String,
    /// Member handles, sorted.
    pub members: Vec<String>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at_ms: i64,
}

/// One envelope in JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeJson {
    /// Channel id, hex.
    pub channel_id: String,
    /// Message id, hex.
    pub message_id: String,
    /// Sender's handle.
    pub sender: String,
    /// Recipient's handle.
    pub recipient: String,
    /// Unauthenticated sequence-number hint.
    pub seq_hint: u64,
    /// 0 pre-key, 1 normal.
    pub olm_type: u8,
    /// Olm ciphertext, base64.
    pub ciphertext: String,
}

impl From<&Envelope> for EnvelopeJson {
    fn from(e: &Envelope) -> Self {
        EnvelopeJson {
            channel_id: e.channel_id.to_hex(),
            message_id: e.message_id.to_hex(),
            sender: e.sender.to_string(),
            recipient: e.recipient.to_string(),
            seq_hint: e.seq_hint,
            olm_type: e.olm_type.number(),
            ciphertext: b64::encode(&e.ciphertext),
        }
    }
}

impl TryFrom<&EnvelopeJson> for Envelope {
    type Error = DecodeError;

    fn try_from(j: &EnvelopeJson) -> Result<Self, DecodeError> {
        let ciphertext = b64::decode(&j.ciphertext, "ciphertext")?;
        if ciphertext.len() > crate::envelope::CIPHERTEXT_MAX_BYTES {
            return Err(DecodeError::TooLong {
                field: "ciphertext",
                len: ciphertext.len(),
                max: crate::envelope::CIPHERTEXT_MAX_BYTES,
            });
        }
        Ok(Envelope {
            channel_id: ChannelId::from_hex(&j.channel_id)?,
            message_id: MessageId::from_hex(&j.message_id)?,
            sender: Handle::new(j.sender.as_str())?,
            recipient: Handle::new(j.recipient.as_str())?,
            seq_hint: j.seq_hint,
            olm_type: OlmType::from_number(j.olm_type)?,
            ciphertext,
        })
    }
}

/// `POST /v1/channels/{channel_id}/messages`: the copies of one message.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostRequest {
    /// One envelope per recipient, all with the same message id.
    pub envelopes: Vec<EnvelopeJson>,
}

/// The answer to a post; byte-identical when the same post is repeated.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PostResponse {
    /// The message id, hex.
    pub message_id: String,
    /// The recipients stored, sorted.
    pub recipients: Vec<String>,
}

/// An envelope in a mailbox, at its cursor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delivery {
    /// Position in the recipient's mailbox; only grows.
    pub cursor: u64,
    /// When the relay stored it.
    pub received_at_ms: i64,
    /// The envelope.
    pub envelope: EnvelopeJson,
}

/// `GET /v1/mailbox?after=C&limit=N`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxResponse {
    /// Envelopes with cursor > `after`, in cursor order.
    pub deliveries: Vec<Delivery>,
    /// The cursor to pass as `after` next time.
    pub next_cursor: u64,
    /// True if more envelopes wait beyond this page.
    pub more: bool,
    /// The caller's key stock as the relay reports it (unauthenticated:
    /// a client only paces its uploads by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_stock: Option<KeyStockJson>,
}

/// A principal's keys held by the relay.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyStockJson {
    /// Unclaimed one-time keys.
    pub one_time_keys: u64,
    /// Whether a fallback key is held.
    pub has_fallback_key: bool,
    /// Whether the fallback key was handed out since its upload.
    pub fallback_claimed: bool,
}

/// `POST /v1/mailbox/ack`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Delete every envelope in the caller's mailbox up to this cursor.
    pub through: u64,
}

/// How many envelopes an ack deleted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AckResponse {
    /// Envelopes deleted.
    pub deleted: u64,
}

/// What the relay records of the calling principal (`GET /v1/me`): a
/// client compares it with its store before posting anything, to notice a
/// store restored from an older copy. Unauthenticated evidence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MeResponse {
    /// The caller's handle.
    pub handle: String,
    /// The highest mailbox position the caller acknowledged (0: none).
    pub acked_through: u64,
    /// The latest message the caller posted in each channel.
    pub last_posts: Vec<LastPost>,
}

/// The latest message a principal posted in one channel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastPost {
    /// Channel id, hex.
    pub channel_id: String,
    /// Message id, hex.
    pub message_id: String,
    /// Its envelope's (unauthenticated) sequence hint.
    pub seq_hint: u64,
}

/// A frame the relay pushes over `GET /v1/ws`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PushFrame {
    /// A new envelope in the caller's mailbox.
    Delivery(Delivery),
}

/// Decodes base64 into exactly `N` bytes.
pub fn fixed<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], DecodeError> {
    let v = b64::decode(text, field)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| DecodeError::Invalid {
        field,
        reason: "wrong length",
    })
}

/// `POST /v1/exchanges`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateExchangeRequest {
    /// The new exchange's id, random, hex.
    pub exchange_id: String,
    /// The channel it belongs to, hex.
    pub channel_id: String,
    /// Every participant's handle, the creator included.
    pub participants: Vec<String>,
    /// SHA-256 of the terms, hex.
    pub terms_digest: String,
    /// After this, unreleased offers are destroyed.
    pub deadline_ms: i64,
}

/// One sealed copy of an offer, for one other participant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SealedCopy {
    /// For whom (on submit), or from whom (on release).
    pub participant: String,
    /// 0 (a one-message pre-key session).
    pub olm_type: u8,
    /// The sealed offer, base64.
    pub ciphertext: String,
}

/// `PUT /v1/exchanges/{exchange_id}/offer`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitOfferRequest {
    /// One copy per other participant.
    pub copies: Vec<SealedCopy>,
}

/// What a participant may see of an exchange. Before release it says
/// nothing about the others: the same bytes whether or not they submitted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExchangeStatus {
    /// Exchange id, hex.
    pub exchange_id: String,
    /// Channel id, hex.
    pub channel_id: String,
    /// Participants, sorted.
    pub participants: Vec<String>,
    /// Digest of the terms, hex.
    pub terms_digest: String,
    /// Deadline.
    pub deadline_ms: i64,
    /// `open`, `released` or `destroyed`.
    pub state: String,
    /// Whether the caller's own offer is in.
    pub you_submitted: bool,
    /// When released.
    pub released_at_ms: Option<i64>,
    /// Once released: the copies sealed for the caller (`participant` is the submitter).
    pub offers: Vec<SealedCopy>,
}
