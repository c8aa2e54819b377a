//! The client: a thin driver of the protocol's [`Member`] machine. It
//! fetches, persists and posts; every decision (what is an alert, what to
//! post, when a deadline falls) is the machine's.
//!
//! Each input goes to the machine, then its [`Changes`] commit to the store
//! in one transaction, then its posts go out in order: nothing leaves the
//! machine before the advanced ratchets and the outbox are on disk.

mod actors;
mod backup;
mod consent;
mod escrow;
pub mod lock;
mod outbox;
mod receive;
mod resolve;
mod send;
mod show;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use backchannel_protocol::channel::{ChannelState, ChannelStatus, Response};
use backchannel_protocol::commitments::authority::Roster;
use backchannel_protocol::commitments::whatif::Hypothesis;
use backchannel_protocol::fingerprint::SafetyNumber;
use backchannel_protocol::member::{Alert, AlertId, Changes, Member, StoredMessage};
use backchannel_protocol::payload::{Body, Payload, Policy, Role};
use backchannel_protocol::{ChannelId, Handle, Identity, IdentityKeys, MessageId, Seq, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, TransportError, VaultError};
use crate::tls::RelayTrust;
use crate::transport::RelayClient;
use crate::vault::records::{Direction, Trust};
use crate::vault::{KdfParams, Vault};

pub use backchannel_protocol::commitments::actors::Collision;
pub use backup::RestoreReport;
pub use consent::{
    Answer, AnswerState, ConsentStatement, KeyState, PolicyView, ProposalKind, ProposedMember,
    RoleChange, MEDIATOR_READS_GRANTED, MEDIATOR_READS_WITHDRAWN,
};
pub use escrow::{Confirmation, ExchangeView, ReceivedOffer};
pub use outbox::{Delivery, QueuedPost};
pub use receive::SyncReport;
pub use resolve::{
    unique_prefix, Candidate, ExchangeState, ExchangeSummary, IdKind, MIN_PREFIX_DIGITS,
};
pub use show::MessageView;

/// A token is renewed after this long (the relay's tokens live one hour).
pub const TOKEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(45 * 60);

/// One-time keys published at first and kept on the relay.
pub const ONE_TIME_KEYS_TARGET: usize = 50;

/// Most one-time keys a client uploads in one hour, however few the relay
/// says it holds (see [`Client::sync`]).
pub const ONE_TIME_KEYS_UPLOAD_PER_HOUR: usize = 100;

const HOUR_MS: i64 = 3_600_000;

/// Where a new store's relay is, how its certificate is trusted, and the
/// operator's invitation code if registration needs one.
#[derive(Clone, Debug, Default)]
pub struct RelayEndpoint {
    /// `https://…` (or `http://` on loopback).
    pub url: String,
    /// The certificate trust for https.
    pub trust: RelayTrust,
    /// A single-use invitation code.
    pub invite: Option<String>,
}

/// The system clock in milliseconds (the client is where time is read).
pub fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    )
}

/// Stops here when `BACKCHANNEL_CRASH_POINT` names this point, so a test can
/// SIGKILL the process at an exact instant. Debug builds only.
pub(crate) fn crash_point(name: &str) {
    if cfg!(debug_assertions) && std::env::var("BACKCHANNEL_CRASH_POINT").is_ok_and(|v| v == name) {
        eprintln!("crash point {name} reached");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

/// In debug builds only, for tests (private): when
/// `__BACKCHANNEL_TEST_ID_PREFIX` holds hex digits, the channel and exchange
/// ids this client makes start with them, so a test can make two ids share
/// a prefix. Release builds ignore the variable.
pub(crate) fn test_id_prefix(id: &mut [u8; 16]) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Ok(hex) = std::env::var("__BACKCHANNEL_TEST_ID_PREFIX") else {
        return;
    };
    for (i, pair) in hex.as_bytes().chunks(2).take(16).enumerate() {
        if let Some(b) = std::str::from_utf8(pair)
            .ok()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
        {
            id[i] = b;
        }
    }
}

/// What one message looks like to this member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Channel id, hex.
    pub channel_id: String,
    /// Message id, hex.
    pub message_id: String,
    /// Epoch number.
    pub epoch: u32,
    /// Position in the sender's chain.
    pub seq: u64,
    /// Sender.
    pub sender: String,
    /// Sender's clock, ms.
    pub sent_at_ms: i64,
    /// The message it answers, hex.
    pub in_reply_to: Option<String>,
    /// Body kind (`text`, `receipt`, `creation`...).
    pub kind: String,
    /// The text for content this member may read; `None` for a stub.
    pub text: Option<String>,
    /// True when this member holds only a stub (header and body hash).
    pub stub: bool,
    /// What a set-up message (proposal, answer) says, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Message digest, hex.
    pub digest: String,
    /// Sent or received.
    pub direction: Direction,
    /// True if held back (its epoch is not open here yet).
    pub held_back: bool,
    /// When this member stored it (its own clock): receipt deadlines run
    /// from here.
    pub stored_at_ms: i64,
}

impl LogEntry {
    /// A receipt or a heartbeat: bookkeeping a reader of the transcript
    /// may leave out (what it confirms shows under each message).
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self.kind.as_str(), "receipt" | "heartbeat")
    }
}

/// A member of a channel as this member knows it.
#[derive(Clone, Debug, Serialize)]
pub struct MemberView {
    /// Handle.
    pub handle: String,
    /// `party`, `mediator` or `observer`.
    pub role: &'static str,
    /// `accepted`, `declined: <reason>`, `proposer` or `waiting`.
    pub answer: String,
    /// How this member trusts the key (`self` for itself).
    pub key: String,
}

/// Whether one member's receipts cover a message.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptView {
    /// The member.
    pub member: Handle,
    /// True once its receipts cover the message.
    pub received: bool,
}

/// A channel as this member knows it.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelView {
    /// Channel id, hex.
    pub channel_id: String,
    /// Title.
    pub title: String,
    /// `active`, `pending`, `declined` or `unknown`.
    pub status: String,
    /// Open epoch.
    pub epoch: u32,
    /// Members.
    pub members: Vec<MemberView>,
    /// Whether the mediator reads content.
    pub mediator_reads: bool,
    /// Receipt deadline, seconds.
    pub receipt_deadline_s: u32,
    /// Heartbeat interval, seconds.
    pub heartbeat_interval_s: u32,
    /// Messages stored for this channel.
    pub messages: usize,
}

/// Where the client reads the time (the system clock, or a test's).
pub type Clock = std::sync::Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// A principal's client.
pub struct Client {
    vault: Vault,
    member: Member,
    clock: Clock,
    relay: RelayClient,
    /// When the current token was obtained (tokens live one hour).
    /// When the token was taken, and when to take a new one.
    logged_in_at: Option<(std::time::Instant, std::time::Duration)>,
    /// Why the last post of this process did not go (until one goes).
    last_post_error: Option<outbox::PostFailure>,
    /// Held for as long as this client is open: one writer per store
    /// (`None`: opened for reading only, and nothing is ever written).
    lock: Option<lock::StoreLock>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("me", self.member.me())
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

/// How one stored payload shows in a log.
pub(crate) fn entry_of(m: &StoredMessage) -> LogEntry {
    let payload = &m.payload;
    let h = payload.header();
    let (text, stub) = match payload {
        Payload::Full {
            body: Body::Text(t),
            ..
        } => (Some(t.clone()), false),
        Payload::Full {
            body: Body::Structured(s),
            ..
        } => (Some(s.summary()), false),
        Payload::Full { .. } => (None, false),
        Payload::Stub { .. } => (None, !m.unsupported),
    };
    // Set-up bodies carry no text; what they say is summarised.
    let summary = match payload {
        Payload::Full {
            body: Body::Creation(p) | Body::Amendment(p),
            ..
        } => Some(consent::proposal_summary(m.digest, p)),
        Payload::Full {
            body: Body::Acceptance { proposal, .. },
            ..
        } => Some(format!("accepts proposal {}", consent::short(proposal))),
        Payload::Full {
            body: Body::Decline { proposal, reason },
            ..
        } => Some(format!(
            "declines proposal {}: {reason}",
            consent::short(proposal)
        )),
        _ => None,
    };
    LogEntry {
        summary,
        channel_id: h.channel_id.to_hex(),
        message_id: h.message_id.to_hex(),
        epoch: h.epoch.number.0,
        seq: h.seq.0,
        sender: h.sender.to_string(),
        sent_at_ms: h.sent_at.0,
        in_reply_to: h.in_reply_to.map(|m| m.to_hex()),
        kind: h.body_kind.name(),
        text,
        stub,
        digest: m.digest.to_hex(),
        direction: m.direction,
        held_back: m.applied.is_none(),
        stored_at_ms: m.stored_at.0,
    }
}

/// In debug builds only: the protocol rules named (comma-separated) in
/// `BACKCHANNEL_TEST_BREAK`, broken on purpose, so the conformance harness
/// can be shown to catch each one. Release builds ignore the variable.
#[cfg(debug_assertions)]
fn break_rules_for_tests(member: &mut Member) {
    let Ok(rules) = std::env::var("BACKCHANNEL_TEST_BREAK") else {
        return;
    };
    for rule in rules.split(',').filter_map(|r| r.trim().parse().ok()) {
        member.dangerous_break(rule);
    }
}

impl Client {
    /// Creates a store at `path`, registers `handle` on the relay and
    /// publishes one-time keys. If the relay refuses, no store is left.
    pub async fn create(
        path: &Path,
        passphrase: &str,
        kdf: KdfParams,
        relay_url: &str,
        handle: &Handle,
    ) -> Result<Client, ClientError> {
        let relay = RelayEndpoint {
            url: relay_url.to_string(),
            trust: RelayTrust::default(),
            invite: None,
        };
        Self::create_at(path, passphrase, kdf, &relay, handle).await
    }

    /// [`Client::create`] with the relay's certificate trust and an
    /// invitation code.
    pub async fn create_at(
        path: &Path,
        passphrase: &str,
        kdf: KdfParams,
        endpoint: &RelayEndpoint,
        handle: &Handle,
    ) -> Result<Client, ClientError> {
        let relay_url = endpoint.url.as_str();
        if path.exists() {
            return Err(VaultError::Exists(path.display().to_string()).into());
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let _ = std::fs::remove_file(&partial);
        let identity = Identity::new();
        let mut vault = Vault::create(&partial, passphrase, kdf, handle, relay_url, &identity)?;
        vault.set_relay_trust(&endpoint.trust)?;
        let relay = match RelayClient::with_trust(relay_url, &endpoint.trust) {
            Ok(r) => r,
            Err(e) => {
                drop(vault);
                let _ = std::fs::remove_file(&partial);
                return Err(e.into());
            }
        };
        if let Err(e) = relay
            .register(handle, &identity, endpoint.invite.as_deref())
            .await
        {
            drop(vault);
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        drop(vault);
        std::fs::rename(&partial, path).map_err(|e| {
            ClientError::Input(format!("cannot place the store at {}: {e}", path.display()))
        })?;
        let mut client = Client::open(path, passphrase)?;
        client.connect().await?;
        client.replenish_keys(ONE_TIME_KEYS_TARGET).await?;
        Ok(client)
    }

    /// Opens an existing store (no network), as its one writer: while this
    /// client is open, another `open` of the same store fails with
    /// [`ClientError::Busy`] (hand the work to the running one instead).
    pub fn open(path: &Path, passphrase: &str) -> Result<Client, ClientError> {
        if !path.exists() {
            return Err(VaultError::Missing(path.display().to_string()).into());
        }
        let lock = lock::StoreLock::acquire(path)?;
        Self::open_with(path, passphrase, Some(lock))
    }

    /// Opens a store while its writer waits or runs elsewhere: reads only,
    /// and any change is refused with [`ClientError::ReadOnly`].
    pub fn open_read_only(path: &Path, passphrase: &str) -> Result<Client, ClientError> {
        Self::open_with(path, passphrase, None)
    }

    /// Opens a store with a lock already held (see [`lock::StoreLock::wait`]).
    pub fn open_locked(
        path: &Path,
        passphrase: &str,
        lock: lock::StoreLock,
    ) -> Result<Client, ClientError> {
        Self::open_with(path, passphrase, Some(lock))
    }

    fn open_with(
        path: &Path,
        passphrase: &str,
        lock: Option<lock::StoreLock>,
    ) -> Result<Client, ClientError> {
        let vault = Vault::open(path, passphrase)?;
        let relay = RelayClient::with_trust(&vault.relay_url()?, &vault.relay_trust()?)?;
        let mut member = Member::restore(vault.snapshot()?).map_err(|e| ClientError::Channel {
            channel: e.channel,
            reason: e.source,
        })?;
        #[cfg(debug_assertions)]
        break_rules_for_tests(&mut member);
        let writer = lock.is_some();
        if writer {
            // Acts of old transcripts are judged too.
            member.judge_all_authority(now());
        }
        let mut client = Client {
            vault,
            member,
            clock: std::sync::Arc::new(now),
            relay,
            logged_in_at: None,
            last_post_error: None,
            lock,
        };
        if writer {
            client.persist()?;
        }
        Ok(client)
    }

    /// Replaces the clock (tests run on a virtual one).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The time on this client's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The member machine (read only: every change goes through the client).
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// Commits what the machine changed, in one transaction.
    pub(crate) fn persist(&mut self) -> Result<(), ClientError> {
        self.persist_changes().map(drop)
    }

    /// Commits what the machine changed, in one transaction; returns it.
    pub(crate) fn persist_changes(&mut self) -> Result<Changes, ClientError> {
        let changes = self.member.poll_changes();
        if !changes.is_empty() {
            if self.lock.is_none() {
                return Err(ClientError::ReadOnly);
            }
            let mut tx = self.vault.tx()?;
            tx.apply(&changes)?;
            tx.commit()?;
        }
        Ok(changes)
    }

    /// Transactions this client committed to its store since it was
    /// opened: what its work cost the disk (each is two fsyncs or more).
    pub fn store_commits(&self) -> u64 {
        self.vault.commits()
    }

    /// This principal's handle.
    pub fn me(&self) -> &Handle {
        self.member.me()
    }

    /// This principal's identity keys.
    pub fn keys(&self) -> IdentityKeys {
        self.member.keys()
    }

    /// The relay URL.
    pub fn relay_url(&self) -> &str {
        self.relay.url()
    }

    /// The store file.
    pub fn store_path(&self) -> &Path {
        self.vault.path()
    }

    /// Seals the store under the passphrase `new` (see
    /// [`Vault::change_passphrase`]); only its one writer may.
    pub fn change_passphrase(&mut self, old: &str, new: &str) -> Result<(), ClientError> {
        if self.lock.is_none() {
            return Err(ClientError::ReadOnly);
        }
        Ok(self.vault.change_passphrase(old, new)?)
    }

    /// Logs in if not logged in, or if the token is near its end (at 3/4
    /// of the lifetime the relay gives it, and at most `TOKEN_REFRESH`).
    pub async fn connect(&mut self) -> Result<(), ClientError> {
        if self
            .logged_in_at
            .is_none_or(|(t, refresh)| t.elapsed() > refresh)
        {
            let me = self.me().clone();
            let lifetime = self.relay.login(&me, self.member.identity()).await?;
            let refresh = lifetime.map_or(TOKEN_REFRESH, |l| (l * 3 / 4).min(TOKEN_REFRESH));
            self.logged_in_at = Some((std::time::Instant::now(), refresh));
        }
        Ok(())
    }

    /// Forgets the token, so the next call logs in again (after the relay
    /// answered that it expired).
    pub fn forget_login(&mut self) {
        self.logged_in_at = None;
    }

    /// The relay's push stream from this member's cursor; a token the
    /// relay calls expired is replaced once.
    pub async fn push_stream(&mut self) -> Result<crate::transport::PushStream, ClientError> {
        self.connect().await?;
        match self.relay.push_stream(self.member.cursor()).await {
            Err(TransportError::Api { status: 401, .. }) => {
                self.forget_login();
                self.connect().await?;
                Ok(self.relay.push_stream(self.member.cursor()).await?)
            }
            other => Ok(other?),
        }
    }

    /// Generates, saves and publishes `n` one-time keys and a fresh fallback key.
    pub async fn replenish_keys(&mut self, n: usize) -> Result<(), ClientError> {
        self.publish_keys(n, false).await
    }

    /// Keeps [`ONE_TIME_KEYS_TARGET`] keys published: tops up when the
    /// relay reports fewer than half, by at most
    /// [`ONE_TIME_KEYS_UPLOAD_PER_HOUR`] an hour, and rotates a fallback key
    /// that was handed out (at most once an hour). The stock is the relay's
    /// unauthenticated word, so it sets only the pace: vodozemac keeps 5,000
    /// private one-time keys and drops the oldest beyond, and an unbounded
    /// top-up under draining would drop keys honest peers had claimed.
    /// Without a stock (an older relay), replaces the keys inbound sessions used.
    pub(crate) async fn tend_keys(
        &mut self,
        stock: Option<backchannel_protocol::api::KeyStockJson>,
        inbound: usize,
    ) -> Result<(), ClientError> {
        let Some(stock) = stock else {
            if inbound > 0 {
                self.replenish_keys(inbound).await?;
            }
            return Ok(());
        };
        let now = self.now().0;
        let mut pacing = self.vault.key_pacing()?;
        if now.saturating_sub(pacing.window_start_ms) >= HOUR_MS || now < pacing.window_start_ms {
            pacing.window_start_ms = now;
            pacing.uploaded = 0;
        }
        let held = usize::try_from(stock.one_time_keys).unwrap_or(usize::MAX);
        let wanted = if held < ONE_TIME_KEYS_TARGET / 2 {
            ONE_TIME_KEYS_TARGET - held
        } else {
            0
        };
        let budget = (ONE_TIME_KEYS_UPLOAD_PER_HOUR as u64).saturating_sub(pacing.uploaded);
        let n = wanted.min(budget as usize);
        let rotate = (stock.fallback_claimed || !stock.has_fallback_key)
            && now.saturating_sub(pacing.fallback_rotated_ms) >= HOUR_MS;
        if n == 0 && !rotate {
            return Ok(());
        }
        self.publish(n, false, rotate).await?;
        pacing.uploaded += n as u64;
        if rotate {
            pacing.fallback_rotated_ms = now;
        }
        self.vault.set_key_pacing(&pacing)?;
        Ok(())
    }

    /// Like [`Client::replenish_keys`], and the relay forgets every
    /// unclaimed one-time key it held before: after a restore, so that no
    /// new session starts on a key this store lacks.
    pub async fn replace_keys(&mut self, n: usize) -> Result<(), ClientError> {
        self.publish_keys(n, true).await
    }

    async fn publish_keys(&mut self, n: usize, replace: bool) -> Result<(), ClientError> {
        self.publish(n, replace, true).await
    }

    async fn publish(
        &mut self,
        n: usize,
        replace: bool,
        rotate_fallback: bool,
    ) -> Result<(), ClientError> {
        let identity = self.member.identity_mut();
        let one_time = identity.generate_one_time_keys(n);
        let fallback = if rotate_fallback {
            identity.generate_fallback_key()
        } else {
            None
        };
        self.member.account_changed();
        self.persist()?;
        self.connect().await?;
        let answer = self
            .relay
            .upload_keys(&one_time, fallback.as_ref(), replace)
            .await?;
        let me = self.me().clone();
        self.member.note_key_version(&me, answer.key_version);
        self.persist()?;
        Ok(())
    }

    /// The pairwise safety number with `peer` and how its key is trusted.
    pub fn safety_number(&self, peer: &Handle) -> Result<(SafetyNumber, Trust), ClientError> {
        let Some(p) = self.member.peer(peer) else {
            return Err(ClientError::Input(format!(
                "no key pinned for {peer} yet: it is learnt from a channel proposal or a first message"
            )));
        };
        Ok((
            SafetyNumber::of((self.me(), &self.keys()), (peer, &p.keys)),
            p.trust.clone(),
        ))
    }

    /// Marks `peer`'s pinned key as verified: call it only after comparing
    /// the safety number over a path the intermediary does not control.
    pub fn mark_verified(&mut self, peer: &Handle) -> Result<(), ClientError> {
        if !self.member.mark_verified(peer) {
            return Err(ClientError::Input(format!("no key pinned for {peer}")));
        }
        self.persist()?;
        Ok(())
    }

    /// Replaces `peer`'s pinned key with the one the relay serves now, forgets
    /// the sessions made with the old one and clears its `key_changed`
    /// alerts. Dangerous: whoever controls the relay could be the one
    /// presenting the new key; do it only after comparing the new safety
    /// number over a path the intermediary does not control.
    pub async fn dangerous_accept_new_key(
        &mut self,
        peer: &Handle,
    ) -> Result<SafetyNumber, ClientError> {
        self.connect().await?;
        let p = self.relay.principal(peer).await?;
        let keys = IdentityKeys {
            curve25519: backchannel_protocol::api::fixed(&p.curve25519, "curve25519")?,
            ed25519: backchannel_protocol::api::fixed(&p.ed25519, "ed25519")?,
        };
        let now = self.now();
        self.member.dangerous_accept_new_key(now, peer, keys);
        self.persist()?;
        Ok(SafetyNumber::of((self.me(), &self.keys()), (peer, &keys)))
    }

    /// Fetches `peer`'s keys from the relay and pins them on first use (a
    /// key already pinned is kept; a different one is refused).
    pub async fn pin_from_relay(&mut self, peer: &Handle) -> Result<IdentityKeys, ClientError> {
        self.connect().await?;
        let p = self.relay.principal(peer).await?;
        let keys = IdentityKeys {
            curve25519: backchannel_protocol::api::fixed(&p.curve25519, "curve25519")?,
            ed25519: backchannel_protocol::api::fixed(&p.ed25519, "ed25519")?,
        };
        let now = self.now();
        let result = self
            .member
            .handle_served_keys(now, peer, keys, p.key_version);
        self.persist()?;
        result?;
        Ok(keys)
    }

    fn channel_state(&self, id: &ChannelId) -> Result<&ChannelState, ClientError> {
        self.member
            .channel(id)
            .ok_or_else(|| ClientError::UnknownChannel(id.to_hex()))
    }

    /// Every principal this member shares a channel with, once each.
    pub fn peers(&self) -> Vec<Handle> {
        let me = self.me();
        self.member
            .channels()
            .values()
            .filter_map(|s| s.setup().or(s.pending()))
            .flat_map(|st| st.proposal.members.iter().map(|m| m.handle.clone()))
            .filter(|h| h != me)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Every channel this member knows.
    pub fn channels(&self) -> Result<Vec<ChannelView>, ClientError> {
        Ok(self
            .member
            .channels()
            .values()
            .map(|s| self.view(s))
            .collect())
    }

    fn view(&self, s: &ChannelState) -> ChannelView {
        // A joiner knows the channel only through the amendment inviting it.
        let setup = s.setup().or(s.pending());
        let policy = setup.map_or(
            Policy {
                mediator_reads: false,
                receipt_deadline_s: 0,
                heartbeat_interval_s: 0,
            },
            |st| st.proposal.policy,
        );
        let members = setup
            .map_or(&[][..], |st| &st.proposal.members[..])
            .iter()
            .map(|m| MemberView {
                handle: m.handle.to_string(),
                role: match m.role {
                    Role::Mediator => "mediator",
                    Role::Observer => "observer",
                    Role::Party => "party",
                },
                answer: match setup.and_then(|st| st.responses.get(&m.handle)) {
                    Some(Response::Accepted) => "accepted".into(),
                    Some(Response::Declined { reason }) => format!("declined: {reason}"),
                    None if setup.is_some_and(|st| st.proposer == m.handle) => "proposer".into(),
                    None if m.role == Role::Party => "waiting".into(),
                    None => "-".into(),
                },
                key: if m.handle == *self.me() {
                    "self".into()
                } else {
                    self.member
                        .peer(&m.handle)
                        .map_or("not pinned".into(), |p| p.trust.label())
                },
            })
            .collect();
        ChannelView {
            channel_id: s.id().to_hex(),
            title: setup.map_or(String::new(), |st| st.proposal.title.clone()),
            status: match s.status() {
                ChannelStatus::Active => "active".into(),
                ChannelStatus::Declined { by } => format!("declined by {by}"),
                ChannelStatus::Pending { waiting_for } => format!(
                    "pending: waiting for {}",
                    waiting_for
                        .iter()
                        .map(Handle::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ChannelStatus::Left => "left: an amendment removed you".into(),
                ChannelStatus::Unknown => "unknown".into(),
            },
            epoch: s.epoch().number.0,
            members,
            mediator_reads: policy.mediator_reads,
            receipt_deadline_s: policy.receipt_deadline_s,
            heartbeat_interval_s: policy.heartbeat_interval_s,
            messages: self
                .member
                .messages()
                .iter()
                .filter(|m| m.channel() == s.id())
                .count(),
        }
    }

    /// Which other members' receipts cover `message` (its sender and this
    /// member left out): empty for a receipt, a message not held, or one
    /// of an earlier epoch (receipts are owed in the open epoch only).
    ///
    /// ```no_run
    /// # fn f(c: &backchannel_client::Client, id: backchannel_protocol::MessageId) {
    /// for r in c.receipts(id) {
    ///     println!("{}: {}", r.member, if r.received { "received" } else { "awaited" });
    /// }
    /// # }
    /// ```
    pub fn receipts(&self, message: MessageId) -> Vec<ReceiptView> {
        let Some(m) = self
            .member
            .messages()
            .iter()
            .find(|m| m.payload.header().message_id == message)
        else {
            return Vec::new();
        };
        let h = m.payload.header();
        let Some(state) = self.member.channel(&h.channel_id) else {
            return Vec::new();
        };
        if h.body_kind == backchannel_protocol::payload::BodyKind::Receipt
            || h.epoch.number != state.epoch().number
        {
            return Vec::new();
        }
        state
            .members()
            .iter()
            .map(|p| &p.handle)
            .filter(|p| **p != h.sender && *p != self.me())
            .map(|p| ReceiptView {
                member: p.clone(),
                received: state.covered(h.epoch.number, p, &h.sender) >= h.seq.0,
            })
            .collect()
    }

    /// The transcript of one channel (or all), in the order this member
    /// folded it; held-back messages last.
    pub fn log(&self, channel: Option<ChannelId>) -> Result<Vec<LogEntry>, ClientError> {
        let mut msgs: Vec<(usize, &StoredMessage)> = self
            .member
            .messages()
            .iter()
            .enumerate()
            .filter(|(_, m)| channel.is_none_or(|c| c == m.channel()))
            .collect();
        msgs.sort_by_key(|(i, m)| (m.applied.is_none(), m.applied, *i));
        Ok(msgs.into_iter().map(|(_, m)| entry_of(m)).collect())
    }

    /// Every alert and notice, dismissed and cleared ones included.
    pub fn alerts(&self) -> Result<Vec<Alert>, ClientError> {
        Ok(self.member.alerts().to_vec())
    }

    /// Alerts (not notices) neither dismissed nor cleared.
    pub fn open_alerts(&self) -> Vec<Alert> {
        self.member.open_alerts().into_iter().cloned().collect()
    }

    /// Dismisses an alert after the user read it. Returns false if no such id.
    pub fn dismiss_alert(&mut self, id: AlertId) -> Result<bool, ClientError> {
        let now = self.now();
        let found = self.member.dismiss(now, id);
        self.persist()?;
        Ok(found)
    }

    /// An open alert that blocks sending in `channel`: a changed key of one
    /// of its members, a member the relay added, or a stale store.
    pub fn blocking_alert(&self, channel: &ChannelId) -> Option<Alert> {
        self.member.blocking_alert(channel).cloned()
    }

    /// Tries to decrypt a copy with this member's keys and sessions without
    /// changing anything: what a curious mediator (or anyone holding this
    /// store) could read of a ciphertext.
    pub fn try_decrypt_copy(&self, envelope: &backchannel_protocol::Envelope) -> Option<Vec<u8>> {
        for (_, s) in self.vault.sessions().ok()? {
            let mut probe = s;
            if let Ok(p) = probe.decrypt(envelope.olm_type, &envelope.ciphertext) {
                return Some(p);
            }
        }
        let mut account = Identity::from_pickle(self.member.identity().pickle());
        let sender = self.member.peer(&envelope.sender)?.keys;
        account
            .inbound_session(&sender, envelope.olm_type, &envelope.ciphertext)
            .ok()
            .map(|(_, plaintext)| plaintext)
    }

    /// The account pickle, private keys included. For tests that search
    /// files for key material; never print it.
    pub fn dangerous_account_pickle(&self) -> vodozemac::olm::AccountPickle {
        self.member.identity().pickle()
    }

    /// Active channels where this member has sent nothing for at least the
    /// heartbeat interval: a heartbeat proves the channel alive.
    pub fn heartbeats_due(&self, at: Timestamp) -> Result<Vec<ChannelId>, ClientError> {
        Ok(self.member.heartbeats_due(at))
    }

    /// The next instant the machine needs the time: a receipt deadline or a
    /// heartbeat. `watch` sleeps until then or the next push.
    pub fn next_timeout(&self) -> Option<Timestamp> {
        self.member.poll_timeout()
    }

    /// The time named by [`Client::next_timeout`] has come: judges the
    /// deadlines and sends the heartbeats due, with no mailbox read.
    pub async fn handle_timeout(&mut self) -> Result<SyncReport, ClientError> {
        let now = self.now();
        self.member.handle_timeout(now);
        let mut report = SyncReport::default();
        self.collect(&mut report)?;
        for channel in self.member.heartbeats_due(now) {
            self.send_heartbeat(channel).await?;
        }
        Ok(report)
    }

    /// The next position this member would use in `channel`.
    pub fn next_seq(&self, channel: &ChannelId) -> Result<Seq, ClientError> {
        self.member
            .next_seq(channel)
            .ok_or_else(|| ClientError::UnknownChannel(channel.to_hex()))
    }
    /// The board of `channel` at `at`: every assurance's state and flags,
    /// folded from the transcript this member holds.
    pub fn board(
        &self,
        channel: ChannelId,
        at: Timestamp,
    ) -> Result<backchannel_protocol::commitments::fold::Board, ClientError> {
        let (entries, roster) = self.fold_inputs(channel)?;
        Ok(backchannel_protocol::commitments::fold::fold(
            &entries, &roster, at,
        ))
    }

    /// The channel's event reports as PLOVER-style records (JSON lines).
    pub fn event_records(&self, channel: ChannelId) -> Result<Vec<serde_json::Value>, ClientError> {
        Ok(self
            .member
            .ordered(channel)
            .into_iter()
            .filter_map(|m| match &m.payload {
                Payload::Full {
                    header,
                    body: Body::Structured(s),
                    ..
                } => backchannel_protocol::commitments::plover::records::to_record(
                    &header.message_id.to_hex(),
                    header.sender.as_str(),
                    s,
                ),
                _ => None,
            })
            .collect())
    }

    /// Runs hypothetical events, in sequence, through `channel`'s
    /// commitments at `at`.
    pub fn what_if(
        &self,
        channel: ChannelId,
        at: Timestamp,
        events: &[Hypothesis],
        options: backchannel_protocol::commitments::whatif::Options,
    ) -> Result<backchannel_protocol::commitments::whatif::Cascade, ClientError> {
        self.what_if_in(&[channel], at, events, options)
    }

    /// Runs hypothetical events through the commitments of every channel
    /// this member knows: a red line in one may lapse an assurance in another.
    pub fn what_if_all(
        &self,
        at: Timestamp,
        events: &[Hypothesis],
        options: backchannel_protocol::commitments::whatif::Options,
    ) -> Result<backchannel_protocol::commitments::whatif::Cascade, ClientError> {
        let channels: Vec<ChannelId> = self.member.channels().keys().copied().collect();
        let mut cascade = self.what_if_in(&channels, at, events, options)?;
        cascade.warnings.extend(self.actor_collision_notes()?);
        Ok(cascade)
    }

    /// The event report `prefix` names (in `channel`, or any), as the
    /// start of a what-if.
    pub fn reported_event(
        &self,
        channel: Option<ChannelId>,
        prefix: &str,
    ) -> Result<Hypothesis, ClientError> {
        let (c, id) = self.resolve_message(channel, prefix)?;
        let (entries, roster) = self.fold_inputs(c)?;
        let input = [backchannel_protocol::commitments::whatif::ChannelInput {
            channel: c,
            entries: &entries,
            roster: &roster,
        }];
        Hypothesis::reported(&input, &id.to_hex()).ok_or_else(|| {
            ClientError::Input(format!(
                "{} is not an event report: a what-if starts from an event (`backchannel report`)",
                &id.to_hex()[..8]
            ))
        })
    }

    fn what_if_in(
        &self,
        channels: &[ChannelId],
        at: Timestamp,
        events: &[Hypothesis],
        options: backchannel_protocol::commitments::whatif::Options,
    ) -> Result<backchannel_protocol::commitments::whatif::Cascade, ClientError> {
        use backchannel_protocol::commitments::whatif::{self, ChannelInput};
        let inputs = channels
            .iter()
            .map(|c| self.fold_inputs(*c).map(|(e, r)| (*c, e, r)))
            .collect::<Result<Vec<_>, _>>()?;
        let views: Vec<ChannelInput<'_>> = inputs
            .iter()
            .map(|(channel, entries, roster)| ChannelInput {
                channel: *channel,
                entries,
                roster,
            })
            .collect();
        let aliases = self.actor_aliases()?;
        Ok(whatif::what_if(
            &views,
            at,
            events,
            &|c, a| aliases.canonical(c, a),
            options,
        ))
    }

    /// The channel's transcript as the fold reads it, and its roster
    /// (members and policy, per epoch where the transcript shows it).
    pub(crate) fn fold_inputs(
        &self,
        channel: ChannelId,
    ) -> Result<(Vec<backchannel_protocol::commitments::fold::Entry>, Roster), ClientError> {
        let state = self.channel_state(&channel)?;
        let members = state
            .members()
            .iter()
            .map(|m| (m.handle.clone(), m.role))
            .collect();
        let reads = state.policy().is_some_and(|p| p.mediator_reads);
        let entries: Vec<_> = self
            .member
            .ordered(channel)
            .into_iter()
            .filter(|m| m.applied.is_some())
            .map(|m| backchannel_protocol::commitments::fold::Entry {
                payload: m.payload.clone(),
            })
            .collect();
        let roster = Roster::new(members, reads).learn(entries.iter().map(|e| &e.payload));
        Ok((entries, roster))
    }

    /// Ids of messages this member holds for `channel`.
    pub fn message_ids(&self, channel: &ChannelId) -> Result<Vec<MessageId>, ClientError> {
        self.log(Some(*channel))?
            .iter()
            .map(|e| MessageId::from_hex(&e.message_id).map_err(ClientError::from))
            .collect()
    }
}
