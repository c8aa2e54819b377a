//! Storage behind one trait, so SQLite (embedded, the default) and
//! PostgreSQL (several relay instances) pass the same conformance suite.
//!
//! The trait is synchronous: the HTTP layer calls it on the blocking pool.
//! Every method that changes state is atomic and durable when it returns.
//! A post is the hot path: a store with a writer of its own runs a post's
//! reads and write there and answers the async caller directly
//! ([`RelayStore::on_writer`]), with no blocking thread in between.

use std::any::Any;

use backchannel_protocol::{
    ChannelId, Digest, Envelope, ExchangeId, Handle, IdentityKeys, MessageId, SignedKey, Timestamp,
};
use thiserror::Error;

pub use crate::config::Rate;

pub mod conformance;
mod postgres;
mod rows;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Most unclaimed one-time keys held per principal.
pub const ONE_TIME_KEYS_HELD_MAX: u64 = 1000;

/// A registered principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalRecord {
    /// Its handle.
    pub handle: Handle,
    /// Its identity keys.
    pub keys: IdentityKeys,
    /// Grows with every change to its published keys.
    pub key_version: u64,
}

/// A channel's routing record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRecord {
    /// The id.
    pub id: ChannelId,
    /// Members, sorted.
    pub members: Vec<Handle>,
    /// Creator.
    pub created_by: Handle,
    /// Creation time.
    pub created_at: Timestamp,
}

/// An envelope in a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// Its cursor.
    pub cursor: u64,
    /// When the relay stored it.
    pub received_at: Timestamp,
    /// The envelope.
    pub envelope: Envelope,
}

/// A principal's key stock after an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCounts {
    /// Unclaimed one-time keys.
    pub one_time_keys: u64,
    /// Whether a fallback key is held.
    pub has_fallback: bool,
    /// Key version after the upload.
    pub key_version: u64,
}

/// What the relay holds of a principal's keys, as its mailbox reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyStock {
    /// Unclaimed one-time keys.
    pub one_time_keys: u64,
    /// Whether a fallback key is held.
    pub has_fallback: bool,
    /// Whether the fallback key was handed out since it was uploaded (the
    /// client then rotates it).
    pub fallback_claimed: bool,
}

/// The stock limits a post must stay within, checked in its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Envelopes waiting in one mailbox.
    pub mailbox_envelopes: u64,
    /// Ciphertext bytes waiting in one mailbox.
    pub mailbox_bytes: u64,
    /// One sender's share of a mailbox, in percent.
    pub sender_share_percent: u64,
    /// Bytes one sender may have stored (its waiting envelopes and offers).
    pub sender_storage_bytes: u64,
}

impl Quota {
    /// No limit at all (tools and tests that are not about quotas).
    pub const NONE: Quota = Quota {
        mailbox_envelopes: u64::MAX,
        mailbox_bytes: u64::MAX,
        sender_share_percent: 100,
        sender_storage_bytes: u64::MAX,
    };

    /// The most one sender may fill of a limit of `total`.
    pub fn share(&self, total: u64) -> u64 {
        if total == u64::MAX {
            return total;
        }
        (total as u128 * self.sender_share_percent as u128 / 100) as u64
    }
}

/// A rate window's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted, within the limit.
    Allowed,
    /// The window is full until then.
    Limited {
        /// When the window reopens.
        until: Timestamp,
    },
}

/// What the relay stores, in sum (for metrics and health).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Envelopes waiting in all mailboxes.
    pub envelopes: u64,
    /// Their ciphertext bytes.
    pub bytes: u64,
    /// Envelopes in the deepest mailbox.
    pub deepest_mailbox: u64,
}

/// Writes made durable since the store was opened, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Transactions committed. With `synchronous=FULL` in WAL mode each
    /// waits for one fsync of the WAL, except rate-window counts, which
    /// commit without waiting (the next durable commit carries them).
    pub commits: u64,
    /// Truncating checkpoints (each syncs the WAL and the main file).
    pub checkpoints: u64,
    /// Writes committed (posts, acks, logins, counts...): several share a
    /// commit when they arrive while the previous one is being synced.
    pub writes: u64,
    /// Writes waiting for the writer now.
    pub queued: u64,
}

/// A claimed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The key (its `fallback` flag says which kind).
    pub key: SignedKey,
    /// Key version after the claim.
    pub key_version: u64,
}

/// Where an exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeState {
    /// The deadline passed first: every sealed offer was destroyed.
    Destroyed,
    /// Accepting offers.
    Open,
    /// Every participant submitted: all offers released together.
    Released,
}

impl ExchangeState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeState::Destroyed => "destroyed",
            ExchangeState::Open => "open",
            ExchangeState::Released => "released",
        }
    }
}

/// An escrowed simultaneous exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeRecord {
    /// Its id.
    pub id: ExchangeId,
    /// The channel it belongs to.
    pub channel_id: ChannelId,
    /// Who created it.
    pub created_by: Handle,
    /// Participants, sorted.
    pub participants: Vec<Handle>,
    /// Digest of the terms.
    pub terms_digest: Digest,
    /// The deadline.
    pub deadline: Timestamp,
    /// State.
    pub state: ExchangeState,
    /// When released.
    pub released_at: Option<Timestamp>,
}

/// One sealed copy of an offer, for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferCopy {
    /// Who submitted it.
    pub submitter: Handle,
    /// For whom it is sealed.
    pub recipient: Handle,
    /// Olm type (a one-message pre-key session).
    pub olm_type: backchannel_protocol::OlmType,
    /// The sealed bytes.
    pub ciphertext: Vec<u8>,
}

/// What the relay records of one principal's own activity, so that its
/// client can notice a store restored from an older copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnRecord {
    /// The highest mailbox position it acknowledged (0: none).
    pub acked_through: u64,
    /// The latest message it posted in each channel, with its sequence hint.
    pub last_posts: Vec<(ChannelId, MessageId, u64)>,
}

/// Row counts per table, for tests that check a refused request changed
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RowCounts {
    /// principals
    pub principals: u64,
    /// one_time_keys
    pub one_time_keys: u64,
    /// fallback_keys
    pub fallback_keys: u64,
    /// challenges
    pub challenges: u64,
    /// tokens
    pub tokens: u64,
    /// channels
    pub channels: u64,
    /// channel_members
    pub channel_members: u64,
    /// envelopes
    pub envelopes: u64,
    /// posted
    pub posted: u64,
}

/// What a store refuses, or how it fails.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Ack beyond the highest cursor ever assigned to the recipient.
    #[error("ack through {through} is beyond the mailbox's highest cursor {highest}")]
    AckBeyondMailbox {
        /// Requested.
        through: u64,
        /// Highest assigned.
        highest: u64,
    },
    /// The database failed.
    #[error("storage backend: {0}")]
    Backend(String),
    /// A channel with this id exists.
    #[error("channel {0} exists")]
    ChannelExists(ChannelId),
    /// Different bytes under a message id and recipient already stored.
    #[error("message {message_id} to {recipient} was already posted with different bytes")]
    Conflict {
        /// Message id, hex.
        message_id: String,
        /// Recipient.
        recipient: Handle,
    },
    /// Stored data does not decode (a damaged database).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The handle is registered.
    #[error("handle {0} is taken")]
    HandleTaken(Handle),
    /// A key of the registration is another principal's identity key.
    #[error("a key of this registration belongs to another principal")]
    KeyTaken,
    /// The exchange is not open, or its deadline passed.
    #[error("exchange {0}")]
    ExchangeClosed(&'static str),
    /// A stock limit would be passed.
    #[error("limit exceeded: {0}")]
    LimitExceeded(&'static str),
    /// A mailbox or sender quota would be passed.
    #[error("{0}")]
    Quota(String),
    /// The database or its disk is full.
    #[error("the relay's storage is full")]
    Full,
    /// The invitation code is unknown, used or expired.
    #[error("the invitation code is unknown, already used or expired")]
    InviteInvalid,
    /// A referenced principal does not exist.
    #[error("unknown principal {0}")]
    UnknownPrincipal(Handle),
    /// A rate window counted with a write is full: nothing was written.
    #[error("rate window {bucket} is full until {} ms", until.0)]
    RateLimited {
        /// The window's bucket.
        bucket: String,
        /// When it reopens.
        until: Timestamp,
    },
}

impl StoreError {
    /// The SQLite writer thread is gone (the store is shutting down or
    /// the thread failed): nothing more can be written.
    pub(crate) fn writer_stopped() -> Self {
        StoreError::Backend("the database writer has stopped".into())
    }
}

/// What a post reads and writes: the caller's token, the channel's
/// routing, then the post with its rate counts (or a refused post's
/// counts). Apart from [`RelayStore`] so that a store can offer these
/// where its writes are made ([`RelayStore::on_writer`]).
pub trait Posting {
    /// Looks a token hash up.
    fn token(&self, token_hash: &Digest) -> Result<Option<(Handle, Timestamp)>, StoreError>;
    /// Looks a channel up.
    fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>, StoreError>;
    /// [`RelayStore::post`], counting first one use of each rate window
    /// of `counts` (as [`Posting::hit`]) in the same transaction, so a
    /// post and its rate checks are one commit. A full window refuses the
    /// post with `RateLimited`: nothing is stored.
    fn post_counted(
        &self,
        envelopes: &[Envelope],
        now: Timestamp,
        quota: &Quota,
        counts: &[(String, Rate)],
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// Counts one use of `bucket` in its fixed window of `rate`.
    fn hit(&self, bucket: &str, rate: Rate, now: Timestamp) -> Result<RateDecision, StoreError>;
}

/// A post's work on a [`Posting`], its result boxed (the trait stays
/// object-safe; `Relay` gives it its type back).
pub type PostingWork =
    Box<dyn FnOnce(&dyn Posting) -> Result<Box<dyn Any + Send>, StoreError> + Send>;

/// The answer to [`PostingWork`] queued by [`RelayStore::on_writer`]:
/// closed unanswered if the writer stopped.
pub type PostingAnswer = tokio::sync::oneshot::Receiver<Result<Box<dyn Any + Send>, StoreError>>;

/// The relay's storage. Implementations must make every state change
/// durable before returning `Ok` (a crash after it loses nothing).
pub trait RelayStore: Posting + Send + Sync + 'static {
    /// Queues `work` where this store makes its writes, its reads seeing
    /// every write before it, answered once what it wrote is durable;
    /// gives `work` back (the default) where there is no such place, and
    /// the caller runs it on the blocking pool instead.
    fn on_writer(&self, work: PostingWork) -> Result<PostingAnswer, PostingWork> {
        Err(work)
    }
    /// Registers a principal with key version 1, or a released handle
    /// again with new keys and the next key version. Refuses keys another
    /// principal holds (either key, either way round): `KeyTaken`.
    /// With `invite`, the code (by its hash) is consumed in the same
    /// transaction, and the registration is refused if it is not valid.
    fn register(
        &self,
        handle: &Handle,
        keys: &IdentityKeys,
        now: Timestamp,
        invite: Option<&Digest>,
    ) -> Result<PrincipalRecord, StoreError>;
    /// Stores a single-use invitation code's hash.
    fn create_invite(&self, code_hash: &Digest, expires: Timestamp) -> Result<(), StoreError>;
    /// The operator's answer to a lost device: the handle's keys, logins
    /// and mailbox are deleted, its acknowledgement reset (its last posts
    /// are kept), and its next registration takes new keys. False if no
    /// such principal.
    fn release_principal(&self, handle: &Handle) -> Result<bool, StoreError>;
    /// Looks a principal up (a released one is nobody until it registers
    /// again: it can neither log in nor be claimed).
    fn principal(&self, handle: &Handle) -> Result<Option<PrincipalRecord>, StoreError>;

    /// Stores a single-use login challenge.
    fn put_challenge(
        &self,
        challenge: &[u8; 32],
        handle: &Handle,
        expires: Timestamp,
    ) -> Result<(), StoreError>;
    /// Removes and returns a challenge (so it can be used once only).
    fn take_challenge(
        &self,
        challenge: &[u8; 32],
    ) -> Result<Option<(Handle, Timestamp)>, StoreError>;
    /// Stores a token hash.
    fn put_token(
        &self,
        token_hash: &Digest,
        handle: &Handle,
        expires: Timestamp,
    ) -> Result<(), StoreError>;

    /// Adds one-time keys and replaces the fallback key; bumps the key
    /// version. With `replace`, the unclaimed one-time keys held are
    /// forgotten first, in the same transaction (a store restored from a
    /// backup lacks the secret halves of keys published after it).
    fn upload_keys(
        &self,
        handle: &Handle,
        one_time: &[SignedKey],
        fallback: Option<&SignedKey>,
        replace: bool,
    ) -> Result<KeyCounts, StoreError>;
    /// Hands out (and deletes) the oldest one-time key, else (or when
    /// `one_time` is false) the fallback key; bumps the key version. `None`
    /// when there is neither.
    fn claim_key(&self, handle: &Handle, one_time: bool) -> Result<Option<Claimed>, StoreError>;
    /// The principal's key stock.
    fn key_stock(&self, handle: &Handle) -> Result<KeyStock, StoreError>;

    /// Creates a channel's routing record.
    fn create_channel(&self, channel: &ChannelRecord) -> Result<(), StoreError>;
    /// Replaces a channel's routing members (every one registered).
    fn set_channel_members(&self, id: &ChannelId, members: &[Handle]) -> Result<(), StoreError>;

    /// Creates an exchange (state open).
    fn create_exchange(&self, e: &ExchangeRecord, now: Timestamp) -> Result<(), StoreError>;
    /// Looks an exchange up.
    fn exchange(&self, id: &ExchangeId) -> Result<Option<ExchangeRecord>, StoreError>;
    /// Replaces `submitter`'s sealed copies; if every participant has now
    /// submitted, releases the exchange in the same transaction. Refused
    /// unless open and before the deadline.
    fn submit_offer(
        &self,
        id: &ExchangeId,
        copies: &[OfferCopy],
        now: Timestamp,
    ) -> Result<ExchangeRecord, StoreError>;
    /// Removes `submitter`'s copies while the exchange is open.
    fn withdraw_offer(
        &self,
        id: &ExchangeId,
        submitter: &Handle,
    ) -> Result<ExchangeRecord, StoreError>;
    /// Whether `who` has an offer in.
    fn has_offer(&self, id: &ExchangeId, who: &Handle) -> Result<bool, StoreError>;
    /// The copies sealed for `recipient` (only meaningful once released).
    fn offers_for(&self, id: &ExchangeId, recipient: &Handle)
        -> Result<Vec<OfferCopy>, StoreError>;
    /// Destroys every open exchange past its deadline (its offers deleted);
    /// returns how many.
    fn destroy_expired(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Stores the copies of one message atomically. Copies already posted
    /// with the same bytes are skipped; different bytes refuse the whole
    /// post, as does a copy that would pass `quota` (`Quota`). Returns the
    /// newly stored copies.
    fn post(
        &self,
        envelopes: &[Envelope],
        now: Timestamp,
        quota: &Quota,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        self.post_counted(envelopes, now, quota, &[])
    }
    /// A page of a mailbox after `after`, in cursor order.
    fn mailbox(
        &self,
        recipient: &Handle,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// Deletes the recipient's envelopes up to `through` (and records the
    /// highest position acknowledged); returns how many.
    fn ack(&self, recipient: &Handle, through: u64) -> Result<u64, StoreError>;
    /// What the relay records of `who`'s own activity.
    fn own_record(&self, who: &Handle) -> Result<OwnRecord, StoreError>;

    /// Deletes expired challenges, tokens, invitations and rate windows,
    /// and envelopes received before `unfetched_before`; returns how many.
    fn purge_expired(&self, now: Timestamp, unfetched_before: Timestamp)
        -> Result<u64, StoreError>;
    /// Bytes `who` has stored: its waiting envelopes and its offers.
    fn stored_bytes(&self, who: &Handle) -> Result<u64, StoreError>;
    /// What is stored, in sum.
    fn usage(&self) -> Result<Usage, StoreError>;
    /// Bytes that can still be written (the file system's free space, or
    /// the room left under a size cap); `None` if unknown.
    fn free_space(&self) -> Result<Option<u64>, StoreError>;
    /// Makes deleted data unrecoverable from the files (off the commit path).
    fn checkpoint(&self) -> Result<(), StoreError>;
    /// Commits and checkpoints so far.
    fn write_counts(&self) -> WriteCounts;
    /// Row counts per table.
    fn row_counts(&self) -> Result<RowCounts, StoreError>;
    /// Calls `wake` with the recipient of each envelope another relay
    /// instance on the same database stores, so this one pushes it to its
    /// WebSocket clients (a hint: the mailbox's cursors are the record).
    /// A store no other instance can share has nothing to follow.
    fn follow_other_instances(&self, wake: Box<dyn Fn(Handle) + Send + Sync>) {
        drop(wake);
    }
}
