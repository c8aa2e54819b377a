//! Errors of the client library, each with a stable `code()` that the CLI
//! shows and scripts can match.

use backchannel_protocol::channel::ChannelError;
use backchannel_protocol::{ChannelId, CryptoError, DecodeError, Handle};
use thiserror::Error;

use crate::client::{Candidate, IdKind, MIN_PREFIX_DIGITS};

/// One indented line per candidate: `id (description)`.
fn listed(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(|c| format!("\n  {} ({})", c.id, c.description))
        .collect()
}

/// The local store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The store's contents do not decode or open.
    #[error("the store is damaged: {0}")]
    Corrupt(&'static str),
    /// A store already exists at this path.
    #[error("a store already exists at {0}")]
    Exists(String),
    /// No store at this path.
    #[error("no store at {0}: run `backchannel init` first")]
    Missing(String),
    /// SQLite failed.
    #[error("store database: {0}")]
    Sqlite(String),
    /// The passphrase does not open the store.
    #[error("wrong passphrase: the store was not opened and nothing was changed")]
    WrongPassphrase,
}

impl From<rusqlite::Error> for VaultError {
    fn from(e: rusqlite::Error) -> Self {
        VaultError::Sqlite(e.to_string())
    }
}

/// Talking to the relay.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The relay answered with an error.
    #[error("relay refused ({status} {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The relay's stable code.
        code: String,
        /// The relay's message.
        message: String,
    },
    /// The answer did not decode.
    #[error("relay answer does not decode: {0}")]
    Decode(String),
    /// The relay's TLS certificate was not accepted.
    #[error("the relay at {url} failed the TLS check ({detail}): if it uses a private CA, give its certificate with --ca-file; to accept one certificate only, pin it with --pin-sha256 (`relay serve` prints it)")]
    Tls {
        /// The relay URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The relay could not be reached.
    #[error("cannot reach the relay at {url}: {detail}")]
    Unreachable {
        /// The relay URL.
        url: String,
        /// What failed.
        detail: String,
    },
}

impl TransportError {
    /// The relay's error code, if it answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            TransportError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Anything a client operation can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A local actor alias that would join nothing.
    #[error(transparent)]
    Alias(#[from] backchannel_protocol::commitments::actors::AliasError),
    /// A typed id matches more than one thing.
    #[error("{prefix} matches {} {kind}s; give more digits of the one you mean:{}", candidates.len(), listed(candidates))]
    Ambiguous {
        /// What the id names.
        kind: IdKind,
        /// The digits given.
        prefix: String,
        /// Everything it matches.
        candidates: Vec<Candidate>,
    },
    /// A typed id that is too short or not hex.
    #[error("{given:?} is not a {kind} id: give at least {MIN_PREFIX_DIGITS} of its hex digits (0-9, a-f)")]
    BadId {
        /// What the id names.
        kind: IdKind,
        /// What was given.
        given: String,
    },
    /// A channel refused the operation.
    #[error("channel {channel}: {reason}")]
    Channel {
        /// The channel.
        channel: ChannelId,
        /// Why.
        reason: ChannelError,
    },
    /// The act is not this member's to make: nothing was sent.
    #[error("not sent: {}", .0.refused())]
    Unauthorized(backchannel_protocol::commitments::authority::Refusal),
    /// An open alert blocks sending in this channel until the user acts.
    #[error("sending in this channel is blocked by a `{kind}` alert: {detail}. Run `backchannel verify` to read it")]
    Blocked {
        /// The alert's kind.
        kind: backchannel_protocol::member::AlertKind,
        /// Its detail.
        detail: String,
    },
    /// Another process holds the store as its writer.
    #[error("another process (a `watch`?) already uses the store {0}")]
    Busy(String),
    /// A store opened for reading only cannot record changes.
    #[error("the store was opened for reading only")]
    ReadOnly,
    /// Key or Olm failure.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Bytes that do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Invalid input from the user.
    #[error("{0}")]
    Input(String),
    /// A pinned identity key changed: sending to that principal is blocked.
    #[error("the identity key of {0} changed since it was pinned: sending to it is blocked until you verify it again")]
    KeyChanged(Handle),
    /// No id this member holds starts with the digits given.
    #[error("no {kind} {prefix} (no {kind} you hold has an id starting with these digits)")]
    NotFound {
        /// What the id names.
        kind: IdKind,
        /// The digits given.
        prefix: String,
    },
    /// The relay.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Nothing was committed to the outbox: the message will never go.
    #[error("not sent and not queued: {0}. Send it again once the relay is reachable")]
    NotQueued(String),
    /// Nothing in the channel awaits an answer.
    #[error("channel {0} has no proposal awaiting an answer: `backchannel sync` fetches new ones, `backchannel channel show` shows what it holds")]
    NothingToAccept(String),
    /// The proposal awaiting an answer is not the one the user was shown.
    #[error("the proposal changed: you were shown {shown}, the channel now awaits an answer to {now}; nothing was accepted. Read it with `backchannel channel show`, then accept that one")]
    ProposalChanged {
        /// The digest prefix the user accepted.
        shown: String,
        /// The digest prefix of the proposal awaiting an answer.
        now: String,
    },
    /// No such channel in this store.
    #[error("unknown channel {0}: run `backchannel sync`, or check the id with `backchannel channel list`")]
    UnknownChannel(String),
    /// The local store.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl ClientError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Alias(_) => "alias_refused",
            ClientError::Ambiguous { .. } => "ambiguous_id",
            ClientError::BadId { .. } => "bad_id",
            ClientError::Blocked { .. } => "blocked",
            ClientError::Busy(_) => "store_busy",
            ClientError::ReadOnly => "read_only",
            ClientError::Channel { .. } => "channel_refused",
            ClientError::Unauthorized(_) => "unauthorized",
            ClientError::Crypto(CryptoError::BadKey(_)) => "bad_key",
            ClientError::Crypto(_) => "crypto",
            ClientError::Decode(_) => "decode",
            ClientError::Input(_) => "invalid_input",
            ClientError::KeyChanged(_) => "key_changed",
            ClientError::NotFound { .. } => "not_found",
            ClientError::Transport(TransportError::Api { .. }) => "relay_refused",
            ClientError::Transport(_) => "relay_unreachable",
            ClientError::UnknownChannel(_) => "unknown_channel",
            ClientError::NothingToAccept(_) => "nothing_to_accept",
            ClientError::NotQueued(_) => "not_queued",
            ClientError::ProposalChanged { .. } => "proposal_changed",
            ClientError::Vault(VaultError::WrongPassphrase) => "wrong_passphrase",
            ClientError::Vault(VaultError::Missing(_)) => "no_store",
            ClientError::Vault(_) => "store",
        }
    }
}

impl From<backchannel_protocol::member::KeyError> for ClientError {
    fn from(e: backchannel_protocol::member::KeyError) -> Self {
        use backchannel_protocol::member::KeyError;
        match e {
            KeyError::Changed(h) | KeyError::Substituted(h) => ClientError::KeyChanged(h),
            KeyError::Bad { .. } => {
                ClientError::Crypto(CryptoError::BadKey("the relay served a bad key"))
            }
            KeyError::Crypto(c) => ClientError::Crypto(c),
            e @ KeyError::RolledBack { .. } => ClientError::Input(e.to_string()),
        }
    }
}

impl ClientError {
    /// From a refusal of the member machine to send in `channel`.
    pub(crate) fn from_send(
        channel: ChannelId,
        e: backchannel_protocol::member::SendError,
    ) -> Self {
        use backchannel_protocol::member::SendError;
        match e {
            SendError::Blocked { kind, detail } => ClientError::Blocked { kind, detail },
            SendError::UnknownChannel(c) => ClientError::UnknownChannel(c.to_hex()),
            SendError::Channel(reason) => ClientError::Channel { channel, reason },
            SendError::Decode(d) => ClientError::Decode(d),
            SendError::Crypto(c) => ClientError::Crypto(c),
            e @ SendError::NoSession(_) => ClientError::Input(e.to_string()),
        }
    }
}
