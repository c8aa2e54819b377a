//! The client: one principal's store, Olm sessions (kept in memory, never
//! unpickled per message), channels rebuilt from verified payloads, and the
//! relay connection.
//!
//! Inputs are commands (`send_text`, `accept`...) and `sync`; every change
//! commits to the store before anything leaves the machine (outbox) and
//! ratchet state commits together with the message it decrypted.

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
    /// True if held back (an earlier message or the epoch is missing).
    pub held_back: bool,
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

/// A principal's client.
pub struct Client {
    vault: Vault,
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

fn kind_name(kind: BodyKind) -> &'static str {
    match kind {
        BodyKind::Acceptance => "acceptance",
        BodyKind::Amendment => "amendment",
        BodyKind::Creation => "creation",
        BodyKind::Decline => "decline",
        BodyKind::Heartbeat => "heartbeat",
        BodyKind::Receipt => "receipt",
        BodyKind::Text => "text",
    }
}

/// How one payload shows in a log.
pub(crate) fn entry_of(
    payload: &Payload,
    digest: &str,
    direction: Direction,
    held_back: bool,
) -> LogEntry {
    let h = payload.header();
    let (text, stub) = match payload {
        Payload::Full {
            body: Body::Text(t),
            ..
        } => (Some(t.clone()), false),
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
        let mut client = Client {
            vault,
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
        let mut applied: Vec<_> = self
            .vault
            .messages()?
            .into_iter()
            .filter(|m| m.applied.is_some())
            .collect();
        applied.sort_by_key(|m| m.applied);
        for m in applied {
            let payload = Payload::decode(&b64::decode(&m.record.payload, "payload")?)?;
            let digest = Digest::from_hex(&m.record.digest)?;
            let me = self.me.clone();
            let state = self
                .channels
                .entry(m.channel_id)
                .or_insert_with(|| ChannelState::new(m.channel_id, me));
            state
                .handle_payload(&payload, digest)
                .map_err(|source| ClientError::Channel {
                    channel: m.channel_id,
                    source,
                })?;
        }
        Ok(())
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

    /// Fetches `peer`'s keys from the relay and pins them on first use (a
    /// key already pinned is kept; a different one is refused).
    pub async fn pin_from_relay(&mut self, peer: &Handle) -> Result<IdentityKeys, ClientError> {
        self.connect().await?;
        let p = self.relay.principal(peer).await?;
        let keys = IdentityKeys {
            curve25519: backchannel_protocol::api::fixed(&p.curve25519, "curve25519")?,
            ed25519: backchannel_protocol::api::fixed(&p.ed25519, "ed25519")?,
        };
        self.pin(peer, keys, Trust::Tofu)?;
        Ok(keys)
    }

    /// Pins `keys` for `peer` unless a key is pinned already; a different
    /// pinned key is an error (and an alert), never a silent switch.
    fn pin(&mut self, peer: &Handle, keys: IdentityKeys, trust: Trust) -> Result<(), ClientError> {
        if let Some(existing) = self.peers.get(peer) {
            if peer_keys(existing)? != keys {
                let alert = AlertRecord {
                    kind: "key_changed".into(),
                    channel_id: String::new(),
                    sender: peer.to_string(),
                    message_ids: Vec::new(),
                    detail: format!("{peer} now presents another identity key than the one pinned; sending to it is blocked"),
                    raised_at_ms: now().0,
                };
                let mut tx = self.vault.tx()?;
                tx.put_alert(&alert)?;
                tx.commit()?;
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
        let mut stored: Vec<_> = self
            .vault
            .messages()?
            .into_iter()
            .filter(|m| channel.is_none_or(|c| c == m.channel_id))
            .collect();
        stored.sort_by_key(|m| (m.applied.is_none(), m.applied, m.row));
        stored
            .iter()
            .map(|m| {
                let payload = Payload::decode(&b64::decode(&m.record.payload, "payload")?)?;
                Ok(entry_of(
                    &payload,
                    &m.record.digest,
                    m.record.direction,
                    m.applied.is_none(),
                ))
            })
            .collect()
    }

    /// Alerts, with their ids and whether they were dismissed.
    pub fn alerts(&self) -> Result<Vec<(i64, bool, AlertRecord)>, ClientError> {
        Ok(self.vault.alerts()?)
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

    /// Ids of messages this member holds for `channel`.
    pub fn message_ids(&self, channel: &ChannelId) -> Result<Vec<MessageId>, ClientError> {
        self.log(Some(*channel))?
            .iter()
            .map(|e| MessageId::from_hex(&e.message_id).map_err(ClientError::from))
            .collect()
    }
}
