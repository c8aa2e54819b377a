//! The member machine: one principal's whole view of all its channels, as
//! a sans-IO state machine in the style of `quinn-proto`'s `Connection`.
//!
//! It holds the Olm account and sessions, the pinned keys, every payload,
//! what was processed, the failures still to classify, the alerts and the
//! outbox. It never touches a socket, a file or a clock: the driver (the
//! client, or the simulation) feeds it what arrived and the time, persists
//! what it changed, and posts what it asks to post.
//!
//! # Call order
//!
//! 1. Feed an input: [`Member::handle_delivery`] (one mailbox entry, in
//!    order), [`Member::handle_caught_up`] (the mailbox was read to its end),
//!    [`Member::handle_served_keys`], [`Member::handle_claimed_key`],
//!    [`Member::handle_routing`], [`Member::handle_own_record`],
//!    [`Member::handle_posted`], [`Member::handle_timeout`], or
//!    [`Member::send`].
//! 2. Take [`Member::poll_changes`] and persist it **in one transaction**
//!    before acting on anything else: the advanced ratchets, the messages,
//!    the outbox and the alerts go together, so a crash never re-uses a
//!    message key or a sequence number.
//! 3. Post every [`Member::poll_transmit`] in order, each after the previous
//!    one was answered, and report each with [`Member::handle_posted`].
//! 4. Show [`Member::poll_alert`] to the user.
//! 5. Sleep until the next push or [`Member::poll_timeout`], whichever
//!    comes first, then call [`Member::handle_timeout`].
//!
//! # Example
//!
//! ```
//! use backchannel_protocol::member::{Member, Snapshot};
//! use backchannel_protocol::{Handle, Identity, Timestamp};
//!
//! let mut blue = Member::restore(Snapshot::new(Handle::new("blue").unwrap(), Identity::new())).unwrap();
//! // Nothing was fed yet: nothing to persist, post, show or wait for.
//! let changes = blue.poll_changes();
//! assert!(changes.is_empty());
//! assert!(blue.poll_transmit().is_none());
//! assert!(blue.poll_alert().is_none());
//! // Until the relay's record of this member was checked, the outbox stays shut.
//! assert!(!blue.outbox_open());
//! blue.handle_own_record(Timestamp(1_000), &Default::default());
//! assert!(blue.outbox_open());
//! assert_eq!(blue.poll_timeout(), None);
//! ```

mod alert;
mod audit;
mod breaks;
mod keys;
mod receive;
mod send;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use vodozemac::olm::{AccountPickle, SessionPickle};

pub use alert::{describe_positions, Alert, AlertId, AlertKind, Unreadable};
pub use breaks::Rule;
pub use keys::{KeyError, OwnRecord};
pub use send::SendError;

use crate::channel::ChannelState;
use crate::envelope::Envelope;
use crate::identity::{Identity, IdentityKeys};
use crate::ids::{ChannelId, Digest, EpochNumber, Handle, MessageId, Seq, Timestamp};
use crate::payload::Payload;
use crate::session::PeerSession;

/// How a pinned identity key was learnt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trust {
    /// Introduced by the mediator in a proposal: not verified.
    Introduced {
        /// The introducer.
        by: String,
    },
    /// First seen from the relay (trust on first use).
    Tofu,
    /// Its safety number was compared over an independent path.
    Verified,
}

impl Trust {
    /// How it reads to people.
    pub fn label(&self) -> String {
        match self {
            Trust::Introduced { by } => format!("introduced by {by}, unverified"),
            Trust::Tofu => "first seen from the relay, unverified".into(),
            Trust::Verified => "verified".into(),
        }
    }
}

/// A pinned principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its identity keys.
    pub keys: IdentityKeys,
    /// How they were learnt.
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// The payload (full copy or stub).
    pub payload: Payload,
    /// Its digest.
    pub digest: Digest,
    /// Sent or received.
    pub direction: Direction,
    /// When this member stored it (its own clock): deadlines run from here.
    pub stored_at: Timestamp,
    /// Its place in the folding order; `None` while held back.
    pub applied: Option<u64>,
    /// The body could not be read here (a newer kind or schema): it is
    /// kept as a stub in its place.
    pub unsupported: bool,
}

impl StoredMessage {
    /// Its channel.
    pub fn channel(&self) -> ChannelId {
        self.payload.header().channel_id
    }
}

/// A ciphertext that did not decrypt, not yet classified: a later genuine
/// message of its claimed sender decides between `modified` and `forged`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Its message id.
    pub message_id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// The claimed sender.
    pub sender: Handle,
    /// The unauthenticated position hint.
    pub seq_hint: u64,
    /// The channel's open epoch when it arrived: the hint's epoch.
    pub epoch: EpochNumber,
    /// When it arrived (this member's clock).
    pub learned_at: Timestamp,
}

/// A post's number in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TransmitId(pub u64);

/// One post to make: every recipient's copy of one message, in one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Its number in the outbox.
    pub id: TransmitId,
    /// The channel posted to.
    pub channel: ChannelId,
    /// The envelopes, one per recipient.
    pub envelopes: Vec<Envelope>,
    /// Prepared after `stale_store`, from a resumed position (the
    /// acceptance of a rekey): the one post a stale channel lets through.
    pub resumed: bool,
}

/// An Olm session to save.
pub struct SessionSave {
    /// The peer.
    pub peer: Handle,
    /// The session id (public).
    pub id: String,
    /// The pickle (ratchet secrets).
    pub pickle: SessionPickle,
    /// When it was last used, for ordering.
    pub used_at: Timestamp,
}

/// What the driver must persist, in one transaction, before acting on the
/// rest (as matrix-sdk-crypto's `Changes`).
#[must_use]
#[derive(Default)]
pub struct Changes {
    /// The Olm account changed (one-time keys used or made).
    pub account: Option<AccountPickle>,
    /// Sessions created or advanced.
    pub sessions: Vec<SessionSave>,
    /// Peers whose every session is to be forgotten (before `sessions`).
    pub forget_sessions: Vec<Handle>,
    /// Peers pinned or re-pinned.
    pub peers: Vec<(Handle, Peer)>,
    /// Key versions seen (the highest per principal).
    pub key_versions: Vec<(Handle, u64)>,
    /// Messages stored or newly applied (keyed by message id and sender).
    pub messages: Vec<StoredMessage>,
    /// Message ids processed, with the hash of their envelope.
    pub processed: Vec<(MessageId, [u8; 32])>,
    /// Ciphertext digests processed.
    pub ciphertexts: Vec<[u8; 32]>,
    /// Failures to keep.
    pub failures: Vec<Failure>,
    /// Failures classified since.
    pub resolved_failures: Vec<MessageId>,
    /// Alerts raised or updated (keyed by id).
    pub alerts: Vec<Alert>,
    /// Posts to add to the outbox.
    pub outbox: Vec<Transmit>,
    /// Posts answered, or never to be sent.
    pub outbox_done: Vec<TransmitId>,
    /// Envelopes set aside until the user decides on a changed key.
    pub deferred: Vec<Envelope>,
    /// Set-aside envelopes handled since (by message id).
    pub deferred_done: Vec<MessageId>,
    /// The mailbox cursor reached.
    pub cursor: Option<u64>,
}

impl std::fmt::Debug for SessionSave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the pickle: it holds ratchet secrets.
        f.debug_struct("SessionSave")
            .field("peer", &self.peer)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("account", &self.account.is_some())
            .field("sessions", &self.sessions)
            .field("messages", &self.messages.len())
            .field("alerts", &self.alerts)
            .field("outbox", &self.outbox.len())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Changes {
    /// True when there is nothing to persist.
    pub fn is_empty(&self) -> bool {
        self.account.is_none()
            && self.sessions.is_empty()
            && self.forget_sessions.is_empty()
            && self.peers.is_empty()
            && self.key_versions.is_empty()
            && self.messages.is_empty()
            && self.processed.is_empty()
            && self.ciphertexts.is_empty()
            && self.failures.is_empty()
            && self.resolved_failures.is_empty()
            && self.alerts.is_empty()
            && self.outbox.is_empty()
            && self.outbox_done.is_empty()
            && self.deferred.is_empty()
            && self.deferred_done.is_empty()
            && self.cursor.is_none()
    }
}

/// Everything a member persisted, to restore it from.
#[derive(Debug)]
pub struct Snapshot {
    /// This principal.
    pub me: Handle,
    /// Its Olm account.
    pub identity: Identity,
    /// Its sessions, most recently used first per peer.
    pub sessions: Vec<(Handle, PeerSession)>,
    /// Pinned peers.
    pub peers: Vec<(Handle, Peer)>,
    /// Highest key version seen per principal (its own included).
    pub key_versions: Vec<(Handle, u64)>,
    /// Every payload, in arrival order.
    pub messages: Vec<StoredMessage>,
    /// Processed message ids and envelope hashes.
    pub processed: Vec<(MessageId, [u8; 32])>,
    /// Processed ciphertext digests.
    pub ciphertexts: Vec<[u8; 32]>,
    /// Unclassified failures.
    pub failures: Vec<Failure>,
    /// Every alert.
    pub alerts: Vec<Alert>,
    /// Posts committed and not yet answered, oldest first.
    pub outbox: Vec<Transmit>,
    /// Envelopes set aside until the user decides on a changed key.
    pub deferred: Vec<Envelope>,
    /// The mailbox cursor.
    pub cursor: u64,
}

impl Snapshot {
    /// A fresh member with nothing stored yet.
    pub fn new(me: Handle, identity: Identity) -> Snapshot {
        Snapshot {
            me,
            identity,
            sessions: Vec::new(),
            peers: Vec::new(),
            key_versions: Vec::new(),
            messages: Vec::new(),
            processed: Vec::new(),
            ciphertexts: Vec::new(),
            failures: Vec::new(),
            alerts: Vec::new(),
            outbox: Vec::new(),
            deferred: Vec::new(),
            cursor: 0,
        }
    }
}

/// An open `stale_store` alert about `channel`.
fn is_open_stale_in(a: &Alert, channel: &ChannelId) -> bool {
    a.kind == AlertKind::StaleStore && a.is_open() && a.channel == Some(*channel)
}

/// One principal's view of every channel it is in.
pub struct Member {
    me: Handle,
    identity: Identity,
    /// Sessions per peer, most recently used first.
    sessions: BTreeMap<Handle, Vec<PeerSession>>,
    peers: BTreeMap<Handle, Peer>,
    key_versions: BTreeMap<Handle, u64>,
    channels: BTreeMap<ChannelId, ChannelState>,
    msgs: Vec<StoredMessage>,
    next_applied: u64,
    processed: BTreeMap<MessageId, [u8; 32]>,
    ciphertexts: BTreeSet<[u8; 32]>,
    failures: Vec<Failure>,
    alerts: Vec<Alert>,
    next_alert: u64,
    outbox: VecDeque<Transmit>,
    /// First messages under the key a pending proposal introduces for a
    /// member whose pinned key differs (a reinstalled device): kept unread
    /// until the user accepts or refuses the new key, never called forged.
    deferred: Vec<Envelope>,
    next_transmit: u64,
    /// Posts handed out by `poll_transmit` and not yet answered.
    in_flight: usize,
    cursor: u64,
    /// The mailbox was read to its end since the store opened: deadlines
    /// may be judged.
    caught_up: bool,
    /// The relay's record of this member was checked since the store
    /// opened (and showed nothing ahead of it).
    own_checked: bool,
    /// Channels where something other than a receipt arrived since the
    /// last receipt this member sent there.
    to_receipt: BTreeSet<ChannelId>,
    /// Channels whose typed acts are to be judged (once per batch, not
    /// per message: judging reads the channel's whole transcript), with
    /// the time they were applied.
    authority_due: BTreeMap<ChannelId, Timestamp>,
    /// Inbound sessions opened since the last key top-up.
    inbound_sessions: usize,
    /// Per channel, the last position the relay says this member posted:
    /// after a restore, its chain resumes only beyond it.
    stale_targets: BTreeMap<ChannelId, Seq>,
    /// Rules this member was told to break (conformance tests only).
    breaks: BTreeSet<Rule>,
    /// Peers whose front session was just opened from a claimed key and
    /// has carried nothing yet: amendments and acceptances go only on such
    /// sessions, so a new epoch never depends on a session a peer may have
    /// lost (a restored or reinstalled store).
    fresh_sessions: BTreeSet<Handle>,
    changes: Changes,
    new_alerts: VecDeque<Alert>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("me", &self.me)
            .field("channels", &self.channels.len())
            .field("messages", &self.msgs.len())
            .finish_non_exhaustive()
    }
}

/// A channel could not be rebuilt from the stored payloads.
#[derive(Debug, thiserror::Error)]
#[error("channel {channel} does not rebuild from the store: {source}")]
pub struct RestoreError {
    /// The channel.
    pub channel: ChannelId,
    /// Why.
    #[source]
    pub source: crate::channel::ChannelError,
}

impl Member {
    /// Rebuilds a member from what it persisted: channels are refolded from
    /// the applied payloads, in the order they were applied.
    pub fn restore(s: Snapshot) -> Result<Member, RestoreError> {
        let mut sessions: BTreeMap<Handle, Vec<PeerSession>> = BTreeMap::new();
        for (peer, session) in s.sessions {
            sessions.entry(peer).or_default().push(session);
        }
        let next_applied = s
            .messages
            .iter()
            .filter_map(|m| m.applied)
            .max()
            .unwrap_or(0)
            + 1;
        let next_alert = s.alerts.iter().map(|a| a.id.0).max().unwrap_or(0) + 1;
        let next_transmit = s.outbox.iter().map(|t| t.id.0).max().unwrap_or(0) + 1;
        let mut m = Member {
            me: s.me,
            identity: s.identity,
            sessions,
            peers: s.peers.into_iter().collect(),
            key_versions: s.key_versions.into_iter().collect(),
            channels: BTreeMap::new(),
            msgs: s.messages,
            next_applied,
            processed: s.processed.into_iter().collect(),
            ciphertexts: s.ciphertexts.into_iter().collect(),
            failures: s.failures,
            alerts: s.alerts,
            next_alert,
            outbox: s.outbox.into_iter().collect(),
            deferred: s.deferred,
            next_transmit,
            in_flight: 0,
            cursor: s.cursor,
            caught_up: false,
            own_checked: false,
            to_receipt: BTreeSet::new(),
            authority_due: BTreeMap::new(),
            inbound_sessions: 0,
            fresh_sessions: BTreeSet::new(),
            stale_targets: BTreeMap::new(),
            breaks: BTreeSet::new(),
            changes: Changes::default(),
            new_alerts: VecDeque::new(),
        };
        let mut applied: Vec<usize> = (0..m.msgs.len())
            .filter(|i| m.msgs[*i].applied.is_some())
            .collect();
        applied.sort_by_key(|i| m.msgs[*i].applied);
        for i in applied {
            let msg = &m.msgs[i];
            let channel = msg.channel();
            let state = m
                .channels
                .entry(channel)
                .or_insert_with(|| ChannelState::new(channel, m.me.clone()));
            if let Err(source) = state.handle_payload(&msg.payload, msg.digest) {
                return Err(RestoreError { channel, source });
            }
        }
        Ok(m)
    }

    /// This principal.
    pub fn me(&self) -> &Handle {
        &self.me
    }

    /// Its identity keys.
    pub fn keys(&self) -> IdentityKeys {
        self.identity.keys()
    }

    /// The Olm account, for the driver's own one-message sessions (escrow)
    /// and login signatures. Report a change with [`Member::account_changed`].
    pub fn identity_mut(&mut self) -> &mut Identity {
        &mut self.identity
    }

    /// The account changed outside the machine (keys generated or used).
    pub fn account_changed(&mut self) {
        self.changes.account = Some(self.identity.pickle());
    }

    /// The Olm account.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// A pinned peer.
    pub fn peer(&self, handle: &Handle) -> Option<&Peer> {
        self.peers.get(handle)
    }

    /// Every pinned peer.
    pub fn peers(&self) -> &BTreeMap<Handle, Peer> {
        &self.peers
    }

    /// Every channel.
    pub fn channels(&self) -> &BTreeMap<ChannelId, ChannelState> {
        &self.channels
    }

    /// One channel.
    pub fn channel(&self, id: &ChannelId) -> Option<&ChannelState> {
        self.channels.get(id)
    }

    /// Every stored payload, in arrival order.
    pub fn messages(&self) -> &[StoredMessage] {
        &self.msgs
    }

    /// One channel's payloads in folding order, held-back ones last.
    pub fn ordered(&self, channel: ChannelId) -> Vec<&StoredMessage> {
        let mut msgs: Vec<(usize, &StoredMessage)> = self
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.channel() == channel)
            .collect();
        msgs.sort_by_key(|(i, m)| (m.applied.is_none(), m.applied, *i));
        msgs.into_iter().map(|(_, m)| m).collect()
    }

    /// Every alert and notice.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// Alerts (not notices) neither dismissed nor cleared.
    pub fn open_alerts(&self) -> Vec<&Alert> {
        self.alerts
            .iter()
            .filter(|a| a.is_open() && !a.kind.is_notice())
            .collect()
    }

    /// The mailbox cursor.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Posts committed and not answered yet.
    pub fn outbox(&self) -> impl Iterator<Item = &Transmit> {
        self.outbox.iter()
    }

    /// True when the next queued post may go: the relay's record of this
    /// member was checked since the store opened, and the post is not held
    /// by `stale_store` (only a resumed acceptance passes that).
    pub fn outbox_open(&self) -> bool {
        self.own_checked
            && self
                .outbox
                .front()
                .is_none_or(|t| t.resumed || !self.is_stale_in(&t.channel))
    }

    /// True once the relay's record of this member was checked since the
    /// store opened.
    pub fn own_checked(&self) -> bool {
        self.own_checked
    }

    /// True while `channel` has an open `stale_store` alert (its old
    /// sessions and positions are not used; a rekey answers it).
    pub fn is_stale_in(&self, channel: &ChannelId) -> bool {
        self.alerts.iter().any(|a| is_open_stale_in(a, channel))
    }

    /// Inbound sessions opened since the last call: the driver publishes as
    /// many fresh one-time keys.
    pub fn take_inbound_sessions(&mut self) -> usize {
        std::mem::take(&mut self.inbound_sessions)
    }

    /// What to persist before acting on anything else.
    #[must_use = "persist the changes in one transaction before acting on anything else"]
    pub fn poll_changes(&mut self) -> Changes {
        for (channel, at) in std::mem::take(&mut self.authority_due) {
            self.judge_authority(at, channel);
        }
        std::mem::take(&mut self.changes)
    }

    /// The next post to make, once its changes were persisted; `None` while
    /// one is in flight (posts go one after the other), before the relay's
    /// record of this member was checked, or after `stale_store`.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.in_flight > 0 || !self.outbox_open() {
            return None;
        }
        let t = self.outbox.front().cloned()?;
        self.in_flight = 1;
        Some(t)
    }

    /// The next alert or notice raised.
    #[must_use]
    pub fn poll_alert(&mut self) -> Option<Alert> {
        self.new_alerts.pop_front()
    }

    /// A post was answered 2xx (`Ok`), or failed and will be retried
    /// (`Err`): in both cases the next `poll_transmit` may go on.
    pub fn handle_posted(&mut self, id: TransmitId, ok: bool) {
        self.in_flight = 0;
        if ok && self.outbox.front().is_some_and(|t| t.id == id) {
            self.outbox.pop_front();
            self.changes.outbox_done.push(id);
        }
    }

    /// Dismisses an alert after the user read it; false if no such id.
    pub fn dismiss(&mut self, now: Timestamp, id: AlertId) -> bool {
        let Some(a) = self.alerts.iter_mut().find(|a| a.id == id) else {
            return false;
        };
        a.dismissed = true;
        let (kind, peer) = (a.kind, a.principal.clone());
        self.changes.alerts.push(a.clone());
        // Dismissing a changed key without accepting it refuses the key:
        // what waited for that decision is judged under the pinned one.
        if let (AlertKind::KeyChanged, Some(peer)) = (kind, peer) {
            self.judge_deferred(now, &peer);
        }
        true
    }

    /// Keeps an alert raised by the driver (escrow checks).
    pub fn raise(&mut self, alert: Alert) -> AlertId {
        self.push_alert(alert)
    }

    pub(crate) fn push_alert(&mut self, mut alert: Alert) -> AlertId {
        alert.id = AlertId(self.next_alert);
        self.next_alert += 1;
        self.changes.alerts.push(alert.clone());
        self.new_alerts.push_back(alert.clone());
        let id = alert.id;
        self.alerts.push(alert);
        id
    }

    /// Clears an alert with `why` (evidence answered).
    pub(crate) fn clear_alert(&mut self, id: AlertId, why: String) {
        if let Some(a) = self.alerts.iter_mut().find(|a| a.id == id) {
            a.cleared = Some(why);
            self.changes.alerts.push(a.clone());
        }
    }

    /// An open alert that blocks sending in `channel`: a changed key of
    /// one of its members, a member the relay added, or a stale store not
    /// yet answered by a new epoch.
    pub fn blocking_alert(&self, channel: &ChannelId) -> Option<&Alert> {
        self.blocking_alerts(*channel).next()
    }

    /// Every open alert that blocks sending in `channel`.
    pub fn blocking_alerts(&self, channel: ChannelId) -> impl Iterator<Item = &Alert> + '_ {
        let members: Vec<&Handle> = self
            .channels
            .get(&channel)
            .map(|s| s.members().iter().map(|m| &m.handle).collect())
            .unwrap_or_default();
        self.alerts
            .iter()
            .filter(|a| a.is_open())
            .filter(move |a| match a.kind {
                AlertKind::KeyChanged => {
                    a.principal.as_ref().is_some_and(|p| members.contains(&p))
                        || a.channel == Some(channel)
                }
                AlertKind::MembershipMismatch => a.channel == Some(channel),
                AlertKind::StaleStore => a.channel.is_none() || a.channel == Some(channel),
                _ => false,
            })
    }

    /// Judges every typed act of every channel held (old transcripts
    /// included) and raises `unauthorized_act` for each its sender could
    /// not make and no alert names yet. The client runs it when a store
    /// opens for writing.
    pub fn judge_all_authority(&mut self, now: Timestamp) {
        let channels: Vec<ChannelId> = self.channels.keys().copied().collect();
        for c in channels {
            self.judge_authority(now, c);
        }
    }

    /// Active channels where this member has sent nothing for at least the
    /// heartbeat interval.
    pub fn heartbeats_due(&self, now: Timestamp) -> Vec<ChannelId> {
        self.channels
            .values()
            .filter(|s| s.status() == crate::channel::ChannelStatus::Active)
            .filter(|s| self.next_heartbeat(s).is_some_and(|t| now >= t))
            .map(ChannelState::id)
            .filter(|c| self.blocking_alert(c).is_none())
            .collect()
    }

    /// Channels where a receipt is owed (something other than a receipt
    /// arrived since this member last sent there).
    pub fn receipts_due(&self) -> Vec<ChannelId> {
        self.to_receipt
            .iter()
            .copied()
            .filter(|c| {
                self.channels
                    .get(c)
                    .is_some_and(|s| s.status() == crate::channel::ChannelStatus::Active)
                    && self.blocking_alert(c).is_none()
                    && !self.breaks(Rule::Receipts)
            })
            .collect()
    }

    /// The next position this member would use in `channel`.
    pub fn next_seq(&self, channel: &ChannelId) -> Option<Seq> {
        let s = self.channels.get(channel)?;
        Some(Seq(s.head(s.epoch().number, &self.me).seq.0 + 1))
    }

    /// The epoch of `channel` that `seq_hint` positions refer to.
    fn epoch_of(&self, channel: &ChannelId) -> EpochNumber {
        self.channels
            .get(channel)
            .map_or(EpochNumber(0), |s| s.epoch().number)
    }

    fn store_message(&mut self, msg: StoredMessage) {
        self.changes.messages.push(msg.clone());
        self.msgs.push(msg);
    }
}
