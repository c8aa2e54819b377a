//! The client: one principal's store, Olm sessions (kept in memory, never
//! unpickled per message), channels rebuilt from verified payloads, and the
//! relay connection.
//!
//! Inputs are commands (`send_text`, `accept`...) and `sync`; every change
//! commits to the store before anything leaves the machine (outbox) and
//! ratchet state commits together with the message it decrypted.

mod audit;
mod escrow;
mod receive;
mod send;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use backchannel_protocol::channel::{ChannelState, ChannelStatus, Response};
use backchannel_protocol::fingerprint::SafetyNumber;
use backchannel_protocol::payload::{Body, BodyKind, Payload, Policy, Role};
use backchannel_protocol::{
    b64, ChannelId, Digest, Handle, Identity, IdentityKeys, MessageId, PeerSession, Seq, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, VaultError};
use crate::transport::RelayClient;
use crate::vault::records::{AlertRecord, Direction, PeerRecord, Trust};
use crate::vault::{KdfParams, Vault};

pub use escrow::{ExchangeView, ReceivedOffer};
pub use receive::SyncReport;

/// A token is renewed after this long (the relay's tokens live one hour).
pub const TOKEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(45 * 60);

/// One-time keys published at first and kept on the relay.
pub const ONE_TIME_KEYS_TARGET: usize = 50;

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

/// A payload held in memory, decoded once when the store opens.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub(crate) row: i64,
    pub(crate) channel: ChannelId,
    pub(crate) applied: Option<i64>,
    pub(crate) payload: Payload,
    pub(crate) digest: Digest,
    pub(crate) direction: Direction,
    pub(crate) stored_at: i64,
}

impl Msg {
    fn entry(&self) -> LogEntry {
        entry_of(
            &self.payload,
            &self.digest.to_hex(),
            self.direction,
            self.applied.is_none(),
            self.stored_at,
        )
    }
}

/// A principal's client.
pub struct Client {
    vault: Vault,
    /// Every payload, in arrival order (the store's `messages`, decoded).
    msgs: Vec<Msg>,
    /// The folding order the next applied payload takes.
    next_applied: i64,
    /// Every alert with its id and whether it was dismissed.
    alert_list: Vec<(i64, bool, AlertRecord)>,
    clock: Clock,
    me: Handle,
    identity: Identity,
    /// Sessions per peer, most recently used first.
    sessions: BTreeMap<Handle, Vec<PeerSession>>,
    peers: BTreeMap<Handle, PeerRecord>,
    channels: BTreeMap<ChannelId, ChannelState>,
    relay: RelayClient,
    /// When the current token was obtained (tokens live one hour).
    logged_in_at: Option<std::time::Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("me", &self.me)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

fn peer_keys(p: &PeerRecord) -> Result<IdentityKeys, ClientError> {
    Ok(IdentityKeys {
        curve25519: backchannel_protocol::api::fixed(&p.curve25519, "curve25519")?,
        ed25519: backchannel_protocol::api::fixed(&p.ed25519, "ed25519")?,
    })
}

pub(crate) fn kind_name(kind: BodyKind) -> &'static str {
    match kind {
        BodyKind::Acceptance => "acceptance",
        BodyKind::Amendment => "amendment",
        BodyKind::Creation => "creation",
        BodyKind::Decline => "decline",
        BodyKind::Heartbeat => "heartbeat",
        BodyKind::Receipt => "receipt",
        BodyKind::Structured => "structured",
        BodyKind::Text => "text",
    }
}

/// How one payload shows in a log.
pub(crate) fn entry_of(
    payload: &Payload,
    digest: &str,
    direction: Direction,
    held_back: bool,
    stored_at_ms: i64,
) -> LogEntry {
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
        Payload::Stub { .. } => (None, true),
    };
    LogEntry {
        channel_id: h.channel_id.to_hex(),
        message_id: h.message_id.to_hex(),
        epoch: h.epoch.number.0,
        seq: h.seq.0,
        sender: h.sender.to_string(),
        sent_at_ms: h.sent_at.0,
        in_reply_to: h.in_reply_to.map(|m| m.to_hex()),
        kind: kind_name(h.body_kind).to_string(),
        text,
        stub,
        digest: digest.to_string(),
        direction,
        held_back,
        stored_at_ms,
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
        if path.exists() {
            return Err(VaultError::Exists(path.display().to_string()).into());
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let _ = std::fs::remove_file(&partial);
        let identity = Identity::new();
        let vault = Vault::create(&partial, passphrase, kdf, handle, relay_url, &identity)?;
        let relay = RelayClient::new(relay_url)?;
        if let Err(e) = relay.register(handle, &identity).await {
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

    /// Opens an existing store (no network).
    pub fn open(path: &Path, passphrase: &str) -> Result<Client, ClientError> {
        let vault = Vault::open(path, passphrase)?;
        let me = vault.handle()?;
        let identity = vault.account()?;
        let mut sessions: BTreeMap<Handle, Vec<PeerSession>> = BTreeMap::new();
        for (peer, s) in vault.sessions()? {
            sessions.entry(peer).or_default().push(s);
        }
        let mut peers = BTreeMap::new();
        for p in vault.peers()? {
            let h =
                Handle::new(p.handle.as_str()).map_err(|_| VaultError::Corrupt("peer handle"))?;
            peers.insert(h, p);
        }
        let relay = RelayClient::new(&vault.relay_url()?)?;
        let mut msgs = Vec::new();
        for m in vault.messages()? {
            msgs.push(Msg {
                row: m.row,
                channel: m.channel_id,
                applied: m.applied,
                payload: Payload::decode(&b64::decode(&m.record.payload, "payload")?)?,
                digest: Digest::from_hex(&m.record.digest)?,
                direction: m.record.direction,
                stored_at: m.record.stored_at_ms,
            });
        }
        let next_applied = msgs.iter().filter_map(|m| m.applied).max().unwrap_or(0) + 1;
        let alert_list = vault.alerts()?;
        let mut client = Client {
            vault,
            msgs,
            next_applied,
            alert_list,
            clock: std::sync::Arc::new(now),
            me,
            identity,
            sessions,
            peers,
            channels: BTreeMap::new(),
            relay,
            logged_in_at: None,
        };
        client.rebuild_channels()?;
        Ok(client)
    }

    /// Refolds every applied payload, in the order it was applied: the
    /// channels are derived, never stored as mutable state.
    fn rebuild_channels(&mut self) -> Result<(), ClientError> {
        let mut applied: Vec<&Msg> = self.msgs.iter().filter(|m| m.applied.is_some()).collect();
        applied.sort_by_key(|m| m.applied);
        for m in applied {
            let me = self.me.clone();
            let state = self
                .channels
                .entry(m.channel)
                .or_insert_with(|| ChannelState::new(m.channel, me));
            state
                .handle_payload(&m.payload, m.digest)
                .map_err(|source| ClientError::Channel {
                    channel: m.channel,
                    source,
                })?;
        }
        Ok(())
    }

    /// Replaces the clock (tests run on a virtual one).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The time on this client's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Stores a payload in `tx` (applied as number `order`, or held);
    /// call [`Client::commit_message`] with the result after the commit.
    pub(crate) fn stage_message(
        tx: &mut crate::vault::Tx<'_>,
        payload: &Payload,
        digest: Digest,
        direction: Direction,
        order: Option<i64>,
        stored_at: i64,
    ) -> Result<Msg, ClientError> {
        let h = payload.header();
        let record = crate::vault::records::MessageRecord {
            payload: b64::encode(payload.encode()),
            digest: digest.to_hex(),
            direction,
            stored_at_ms: stored_at,
        };
        let row = tx.put_message(&h.channel_id, &h.message_id, &h.sender, &record)?;
        if let Some(n) = order {
            tx.set_applied(row, n)?;
        }
        Ok(Msg {
            row,
            channel: h.channel_id,
            applied: order,
            payload: payload.clone(),
            digest,
            direction,
            stored_at,
        })
    }

    /// Keeps a committed message in memory.
    pub(crate) fn commit_message(&mut self, msg: Msg) {
        if msg.applied.is_some() {
            self.next_applied += 1;
        }
        self.msgs.push(msg);
    }

    /// This principal's handle.
    pub fn me(&self) -> &Handle {
        &self.me
    }

    /// This principal's identity keys.
    pub fn keys(&self) -> IdentityKeys {
        self.identity.keys()
    }

    /// The relay URL.
    pub fn relay_url(&self) -> &str {
        self.relay.url()
    }

    /// The store file.
    pub fn store_path(&self) -> &Path {
        self.vault.path()
    }

    /// Logs in if not logged in, or if the token is near its end.
    pub async fn connect(&mut self) -> Result<(), ClientError> {
        if self
            .logged_in_at
            .is_none_or(|t| t.elapsed() > TOKEN_REFRESH)
        {
            self.relay.login(&self.me, &self.identity).await?;
            self.logged_in_at = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// The relay's push stream from this member's cursor.
    pub async fn push_stream(&mut self) -> Result<crate::transport::PushStream, ClientError> {
        self.connect().await?;
        Ok(self.relay.push_stream(self.vault.cursor()?).await?)
    }

    /// Generates, saves and publishes `n` one-time keys and a fresh fallback key.
    pub async fn replenish_keys(&mut self, n: usize) -> Result<(), ClientError> {
        let one_time = self.identity.generate_one_time_keys(n);
        let fallback = self.identity.generate_fallback_key();
        let mut tx = self.vault.tx()?;
        tx.put_account(&self.identity)?;
        tx.commit()?;
        self.connect().await?;
        self.relay.upload_keys(&one_time, fallback.as_ref()).await?;
        Ok(())
    }

    /// The pairwise safety number with `peer` and how its key is trusted.
    pub fn safety_number(&self, peer: &Handle) -> Result<(SafetyNumber, Trust), ClientError> {
        let Some(record) = self.peers.get(peer) else {
            return Err(ClientError::Input(format!(
                "no key pinned for {peer} yet: it is learnt from a channel proposal or a first message"
            )));
        };
        let keys = peer_keys(record)?;
        Ok((
            SafetyNumber::of((&self.me, &self.keys()), (peer, &keys)),
            record.trust.clone(),
        ))
    }

    /// Marks `peer`'s pinned key as verified: call it only after comparing
    /// the safety number over a path the intermediary does not control.
    pub fn mark_verified(&mut self, peer: &Handle) -> Result<(), ClientError> {
        let Some(mut record) = self.peers.get(peer).cloned() else {
            return Err(ClientError::Input(format!("no key pinned for {peer}")));
        };
        record.trust = Trust::Verified;
        let mut tx = self.vault.tx()?;
        tx.put_peer(&record)?;
        tx.commit()?;
        self.peers.insert(peer.clone(), record);
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
        let keys = self.served_keys(peer).await?;
        let record = PeerRecord {
            handle: peer.to_string(),
            curve25519: b64::encode(keys.curve25519),
            ed25519: b64::encode(keys.ed25519),
            trust: Trust::Tofu,
        };
        let cleared: Vec<(i64, bool, AlertRecord)> = self
            .alert_list
            .iter()
            .filter(|(_, _, a)| {
                a.kind == "key_changed" && a.sender == peer.as_str() && a.cleared.is_none()
            })
            .map(|(id, d, a)| {
                let mut a = a.clone();
                a.cleared = Some("the user accepted the new key".into());
                (*id, *d, a)
            })
            .collect();
        let mut tx = self.vault.tx()?;
        tx.put_peer(&record)?;
        tx.delete_sessions(peer)?;
        for (id, d, a) in &cleared {
            tx.update_alert(*id, a, *d)?;
        }
        tx.commit()?;
        self.peers.insert(peer.clone(), record);
        self.sessions.remove(peer);
        for (id, d, a) in cleared {
            if let Some(slot) = self.alert_list.iter_mut().find(|(i, _, _)| *i == id) {
                *slot = (id, d, a);
            }
        }
        Ok(SafetyNumber::of((&self.me, &self.keys()), (peer, &keys)))
    }

    /// Fetches `peer`'s keys from the relay and pins them on first use (a
    /// key already pinned is kept; a different one is refused).
    pub async fn pin_from_relay(&mut self, peer: &Handle) -> Result<IdentityKeys, ClientError> {
        let keys = self.served_keys(peer).await?;
        self.pin(peer, keys, Trust::Tofu)?;
        Ok(keys)
    }

    /// `peer`'s identity keys as the relay serves them now, checked.
    async fn served_keys(&mut self, peer: &Handle) -> Result<IdentityKeys, ClientError> {
        self.connect().await?;
        let p = self.relay.principal(peer).await?;
        let keys = IdentityKeys {
            curve25519: backchannel_protocol::api::fixed(&p.curve25519, "curve25519")?,
            ed25519: backchannel_protocol::api::fixed(&p.ed25519, "ed25519")?,
        };
        self.check_served_keys(peer, &keys, p.key_version)?;
        Ok(keys)
    }

    /// Checks identity keys the relay served for `peer`: no low-order or
    /// identity-point key, no key of one type passed as the other, no key
    /// of another principal, no key version older than one seen before.
    pub(crate) fn check_served_keys(
        &mut self,
        peer: &Handle,
        keys: &IdentityKeys,
        version: u64,
    ) -> Result<(), ClientError> {
        let bad = if let Err(e) = backchannel_protocol::identity::check_curve25519(&keys.curve25519)
        {
            Some(e.to_string())
        } else if let Err(e) = backchannel_protocol::identity::check_ed25519(&keys.ed25519) {
            Some(e.to_string())
        } else if keys.curve25519 == keys.ed25519 {
            Some("the same bytes served as both the Curve25519 and the Ed25519 key".into())
        } else {
            self.peers
                .iter()
                .filter(|(h, _)| *h != peer)
                .find(|(_, r)| {
                    peer_keys(r).is_ok_and(|k| {
                        k.curve25519 == keys.curve25519
                            || k.ed25519 == keys.ed25519
                            || k.curve25519 == keys.ed25519
                            || k.ed25519 == keys.curve25519
                    })
                })
                .map(|(h, _)| format!("a key of {h} served as {peer}'s"))
                .or_else(|| {
                    (keys.curve25519 == self.keys().curve25519
                        || keys.ed25519 == self.keys().ed25519)
                        .then(|| format!("your own key served as {peer}'s"))
                })
        };
        if let Some(why) = bad {
            let alert = AlertRecord::new(
                "bad_key",
                String::new(),
                peer.to_string(),
                Vec::new(),
                format!("the relay served a bad key for {peer}: {why}"),
                self.now().0,
            );
            self.raise(vec![alert])?;
            return Err(ClientError::Crypto(
                backchannel_protocol::CryptoError::BadKey("the relay served a bad key"),
            ));
        }
        if let Some(seen) = self.vault.key_version(peer)? {
            if version < seen {
                let alert = AlertRecord::new(
                    "rollback",
                    String::new(),
                    peer.to_string(),
                    Vec::new(),
                    format!(
                        "the relay served {peer}'s keys at version {version} after version {seen}"
                    ),
                    self.now().0,
                );
                self.raise(vec![alert])?;
                return Err(ClientError::Input(format!(
                    "the relay rolled {peer}'s keys back to version {version}"
                )));
            }
        }
        let mut tx = self.vault.tx()?;
        tx.put_key_version(peer, version)?;
        tx.commit()?;
        Ok(())
    }

    /// Pins `keys` for `peer` unless a key is pinned already; a different
    /// pinned key is an error (and an alert), never a silent switch.
    fn pin(&mut self, peer: &Handle, keys: IdentityKeys, trust: Trust) -> Result<(), ClientError> {
        if let Some(existing) = self.peers.get(peer) {
            if peer_keys(existing)? != keys {
                let alert = AlertRecord::new(
                    "key_changed",
                    String::new(),
                    peer.to_string(),
                    Vec::new(),
                    format!("{peer} now presents another identity key than the one pinned; sending to it is blocked"),
                    self.now().0,
                );
                self.raise(vec![alert])?;
                return Err(ClientError::KeyChanged(peer.clone()));
            }
            return Ok(());
        }
        let record = PeerRecord {
            handle: peer.to_string(),
            curve25519: b64::encode(keys.curve25519),
            ed25519: b64::encode(keys.ed25519),
            trust,
        };
        let mut tx = self.vault.tx()?;
        tx.put_peer(&record)?;
        tx.commit()?;
        self.peers.insert(peer.clone(), record);
        Ok(())
    }

    fn channel_state(&self, id: &ChannelId) -> Result<&ChannelState, ClientError> {
        self.channels
            .get(id)
            .ok_or_else(|| ClientError::UnknownChannel(id.to_hex()))
    }

    /// Finds a channel by a unique prefix of its hex id.
    pub fn resolve_channel(&self, prefix: &str) -> Result<ChannelId, ClientError> {
        let prefix = prefix.to_ascii_lowercase();
        let matches: Vec<_> = self
            .channels
            .keys()
            .filter(|id| id.to_hex().starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [one] if !prefix.is_empty() => Ok(**one),
            [] | [_] => Err(ClientError::UnknownChannel(prefix)),
            _ => Err(ClientError::Input(format!(
                "{prefix} matches {} channels: give more digits",
                matches.len()
            ))),
        }
    }

    /// Every channel this member knows.
    pub fn channels(&self) -> Result<Vec<ChannelView>, ClientError> {
        let messages = self.vault.messages()?;
        self.channels
            .values()
            .map(|s| self.view(s, &messages))
            .collect()
    }

    fn view(
        &self,
        s: &ChannelState,
        messages: &[crate::vault::StoredMessage],
    ) -> Result<ChannelView, ClientError> {
        let policy = s.policy().unwrap_or(Policy {
            mediator_reads: false,
            receipt_deadline_s: 0,
            heartbeat_interval_s: 0,
        });
        let setup = s.setup();
        let members = s
            .members()
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
                key: if m.handle == self.me {
                    "self".into()
                } else {
                    self.peers
                        .get(&m.handle)
                        .map_or("not pinned".into(), |p| p.trust.label())
                },
            })
            .collect();
        Ok(ChannelView {
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
            messages: messages.iter().filter(|m| m.channel_id == s.id()).count(),
        })
    }

    /// The transcript of one channel (or all), in the order this member
    /// folded it; held-back messages last.
    pub fn log(&self, channel: Option<ChannelId>) -> Result<Vec<LogEntry>, ClientError> {
        let mut msgs: Vec<&Msg> = self
            .msgs
            .iter()
            .filter(|m| channel.is_none_or(|c| c == m.channel))
            .collect();
        msgs.sort_by_key(|m| (m.applied.is_none(), m.applied, m.row));
        Ok(msgs.iter().map(|m| m.entry()).collect())
    }

    /// One channel's payloads in folding order, held-back ones last.
    pub(crate) fn ordered_msgs(&self, channel: ChannelId) -> Vec<&Msg> {
        let mut msgs: Vec<&Msg> = self.msgs.iter().filter(|m| m.channel == channel).collect();
        msgs.sort_by_key(|m| (m.applied.is_none(), m.applied, m.row));
        msgs
    }

    /// Alerts, with their ids and whether they were dismissed.
    pub fn alerts(&self) -> Result<Vec<(i64, bool, AlertRecord)>, ClientError> {
        Ok(self.alert_list.clone())
    }

    /// Alerts (not notices) neither dismissed nor cleared.
    pub fn open_alerts(&self) -> Vec<(i64, AlertRecord)> {
        self.alert_list
            .iter()
            .filter(|(_, dismissed, a)| !dismissed && a.cleared.is_none() && !a.notice)
            .map(|(id, _, a)| (*id, a.clone()))
            .collect()
    }

    /// Dismisses an alert after the user read it. Returns false if no such id.
    pub fn dismiss_alert(&mut self, id: i64) -> Result<bool, ClientError> {
        let mut tx = self.vault.tx()?;
        let found = tx.dismiss_alert(id)?;
        tx.commit()?;
        for (aid, dismissed, _) in &mut self.alert_list {
            if *aid == id {
                *dismissed = true;
            }
        }
        Ok(found)
    }

    /// Records alerts in `tx`; returns them with their ids, to be kept with
    /// [`Client::commit_alerts`] after the commit.
    pub(crate) fn stage_alerts(
        tx: &mut crate::vault::Tx<'_>,
        alerts: Vec<AlertRecord>,
    ) -> Result<Vec<(i64, AlertRecord)>, ClientError> {
        alerts
            .into_iter()
            .map(|a| Ok((tx.put_alert(&a)?, a)))
            .collect()
    }

    /// Records and keeps alerts in a transaction of their own.
    pub(crate) fn raise(&mut self, alerts: Vec<AlertRecord>) -> Result<(), ClientError> {
        let mut tx = self.vault.tx()?;
        let staged = Self::stage_alerts(&mut tx, alerts)?;
        tx.commit()?;
        self.commit_alerts(staged);
        Ok(())
    }

    /// Keeps committed alerts in memory.
    pub(crate) fn commit_alerts(&mut self, staged: Vec<(i64, AlertRecord)>) {
        self.alert_list
            .extend(staged.into_iter().map(|(id, a)| (id, false, a)));
    }

    /// An open alert that blocks sending in `channel`: a changed key of one
    /// of its members, or a member the relay added.
    pub fn blocking_alert(&self, channel: &ChannelId) -> Option<AlertRecord> {
        let members: Vec<String> = self
            .channels
            .get(channel)
            .map(|s| s.members().iter().map(|m| m.handle.to_string()).collect())
            .unwrap_or_default();
        self.open_alerts().into_iter().map(|(_, a)| a).find(|a| {
            (a.kind == "key_changed"
                && (members.contains(&a.sender) || a.channel_id == channel.to_hex()))
                || (a.kind == "membership_mismatch" && a.channel_id == channel.to_hex())
        })
    }

    /// Tries to decrypt a copy with this member's keys and sessions without
    /// changing anything: what a curious mediator (or anyone holding this
    /// store) could read of a ciphertext.
    pub fn try_decrypt_copy(&self, envelope: &backchannel_protocol::Envelope) -> Option<Vec<u8>> {
        for sessions in self.sessions.values() {
            for s in sessions {
                let mut probe = PeerSession::from_pickle(s.pickle());
                if let Ok(p) = probe.decrypt(envelope.olm_type, &envelope.ciphertext) {
                    return Some(p);
                }
            }
        }
        let mut account = Identity::from_pickle(self.identity.pickle());
        let sender = self
            .peers
            .get(&envelope.sender)
            .and_then(|p| peer_keys(p).ok())?;
        account
            .inbound_session(&sender, envelope.olm_type, &envelope.ciphertext)
            .ok()
            .map(|(_, plaintext)| plaintext)
    }

    /// The account pickle, private keys included. For tests that search
    /// files for key material; never print it.
    pub fn dangerous_account_pickle(&self) -> vodozemac::olm::AccountPickle {
        self.identity.pickle()
    }

    /// Active channels where this member has sent nothing for at least the
    /// heartbeat interval: a heartbeat proves the channel alive.
    pub fn heartbeats_due(&self, at: Timestamp) -> Result<Vec<ChannelId>, ClientError> {
        let log = self.log(None)?;
        Ok(self
            .channels
            .values()
            .filter(|s| s.status() == ChannelStatus::Active)
            .filter(|s| {
                let interval_ms =
                    i64::from(s.policy().map_or(0, |p| p.heartbeat_interval_s)) * 1000;
                let last = log
                    .iter()
                    .filter(|e| e.direction == Direction::Out && e.channel_id == s.id().to_hex())
                    .map(|e| e.sent_at_ms)
                    .max()
                    .unwrap_or(i64::MIN / 2);
                interval_ms > 0 && at.0 - last >= interval_ms
            })
            .map(ChannelState::id)
            .collect())
    }

    /// The next sequence number this member would use in `channel`.
    pub fn next_seq(&self, channel: &ChannelId) -> Result<Seq, ClientError> {
        let s = self.channel_state(channel)?;
        Ok(Seq(s.head(s.epoch().number, &self.me).seq.0 + 1))
    }

    /// The board of `channel` at `at`: every assurance's state and flags,
    /// folded from the transcript this member holds.
    pub fn board(
        &self,
        channel: ChannelId,
        at: Timestamp,
    ) -> Result<backchannel_protocol::commitments::fold::Board, ClientError> {
        let (entries, members) = self.fold_inputs(channel)?;
        Ok(backchannel_protocol::commitments::fold::fold(
            &entries, &members, at,
        ))
    }

    /// The channel's event reports as PLOVER-style records (JSON lines).
    pub fn event_records(&self, channel: ChannelId) -> Result<Vec<serde_json::Value>, ClientError> {
        Ok(self
            .ordered_msgs(channel)
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

    /// Runs a hypothetical event through `channel`'s commitments at `at`.
    pub fn what_if(
        &self,
        channel: ChannelId,
        at: Timestamp,
        actor: backchannel_protocol::commitments::Actor,
        action: backchannel_protocol::commitments::Action,
    ) -> Result<backchannel_protocol::commitments::whatif::Cascade, ClientError> {
        let (entries, members) = self.fold_inputs(channel)?;
        Ok(backchannel_protocol::commitments::whatif::what_if(
            &entries, &members, at, actor, action,
        ))
    }

    /// Runs a hypothetical event through the commitments of every channel
    /// this member knows: a red line in one may lapse an assurance in another.
    pub fn what_if_all(
        &self,
        at: Timestamp,
        actor: backchannel_protocol::commitments::Actor,
        action: backchannel_protocol::commitments::Action,
    ) -> Result<backchannel_protocol::commitments::whatif::Cascade, ClientError> {
        let mut entries = Vec::new();
        let mut members: Vec<(Handle, Role)> = Vec::new();
        for id in self.channels.keys() {
            let (e, m) = self.fold_inputs(*id)?;
            entries.extend(e);
            for (h, r) in m {
                if !members.iter().any(|(x, _)| *x == h) {
                    members.push((h, r));
                }
            }
        }
        Ok(backchannel_protocol::commitments::whatif::what_if(
            &entries, &members, at, actor, action,
        ))
    }

    #[allow(clippy::type_complexity)]
    fn fold_inputs(
        &self,
        channel: ChannelId,
    ) -> Result<
        (
            Vec<backchannel_protocol::commitments::fold::Entry>,
            Vec<(Handle, Role)>,
        ),
        ClientError,
    > {
        let state = self.channel_state(&channel)?;
        let members = state
            .members()
            .iter()
            .map(|m| (m.handle.clone(), m.role))
            .collect();
        let entries = self
            .ordered_msgs(channel)
            .into_iter()
            .filter(|m| m.applied.is_some())
            .map(|m| backchannel_protocol::commitments::fold::Entry {
                payload: m.payload.clone(),
            })
            .collect();
        Ok((entries, members))
    }

    /// Ids of messages this member holds for `channel`.
    pub fn message_ids(&self, channel: &ChannelId) -> Result<Vec<MessageId>, ClientError> {
        self.log(Some(*channel))?
            .iter()
            .map(|e| MessageId::from_hex(&e.message_id).map_err(ClientError::from))
            .collect()
    }
}
