//! Keys: what a proposal introduces, what the relay serves (checked before
//! it is pinned), one-time keys claimed for new sessions, and the relay's
//! record of this member's own state (a store restored from an older copy).

use std::collections::{BTreeMap, VecDeque};

use crate::channel::ChannelState;
use crate::envelope::Envelope;
use crate::identity::{check_identity_keys, shares_a_key, IdentityKeys, SignedKey};
use crate::ids::{ChannelId, Handle, MessageId, Seq, Timestamp};
use crate::CryptoError;

use super::{Alert, AlertKind, Member, Peer, SessionSave, Transmit, Trust};

/// Why keys the relay served were not used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a usable key (identity point, low order, type confusion, another
    /// principal's key): `bad_key` was raised.
    #[error("the relay served a bad key for {peer}: {why}")]
    Bad {
        /// The principal.
        peer: Handle,
        /// What was wrong.
        why: String,
    },
    /// An older key version than one seen before: `rollback` was raised.
    #[error("the relay rolled {peer}'s keys back to version {version}")]
    RolledBack {
        /// The principal.
        peer: Handle,
        /// The version served.
        version: u64,
    },
    /// Another key than the one pinned: `key_changed` was raised.
    #[error("{0} presents another identity key than the one pinned; sending to it is blocked")]
    Changed(Handle),
    /// The one-time key is not signed by the pinned key: `key_changed`.
    #[error("the one-time key served for {0} is not signed by its pinned key")]
    Substituted(Handle),
    /// Olm refused to open a session.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl KeyError {
    /// The alert kind raised for it.
    pub fn alert_kind(&self) -> Option<AlertKind> {
        match self {
            KeyError::Bad { .. } => Some(AlertKind::BadKey),
            KeyError::RolledBack { .. } => Some(AlertKind::Rollback),
            KeyError::Changed(_) | KeyError::Substituted(_) => Some(AlertKind::KeyChanged),
            KeyError::Crypto(_) => None,
        }
    }
}

/// What the relay records of this member, fetched when the store opens.
/// Unauthenticated: it can only make this member stop, never send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnRecord {
    /// The mailbox position the relay says this member acknowledged.
    pub acked_through: u64,
    /// The latest message this member posted in each channel, with the
    /// position its envelope named.
    pub last_posts: Vec<(ChannelId, MessageId, Seq)>,
}

impl Member {
    /// Keys the relay served for `peer` (at `version`): checked, then
    /// pinned on first use. A different pinned key is `key_changed`.
    pub fn handle_served_keys(
        &mut self,
        now: Timestamp,
        peer: &Handle,
        keys: IdentityKeys,
        version: u64,
    ) -> Result<(), KeyError> {
        self.check_served(now, peer, &keys, version)?;
        self.pin(now, None, peer, keys, Trust::Tofu)
    }

    /// A one-time key claimed for `peer`: checked against the pinned key
    /// (pinning on first use), then a new outbound session is opened.
    pub fn handle_claimed_key(
        &mut self,
        now: Timestamp,
        peer: &Handle,
        keys: IdentityKeys,
        version: u64,
        one_time: &SignedKey,
    ) -> Result<(), KeyError> {
        match self.peers.get(peer).map(|p| p.keys) {
            Some(pinned) if pinned != keys => {
                return self.pin(now, None, peer, keys, Trust::Tofu);
            }
            Some(_) => self.check_served(now, peer, &keys, version)?,
            None => {
                self.check_served(now, peer, &keys, version)?;
                self.pin(now, None, peer, keys, Trust::Tofu)?;
            }
        }
        match one_time.verify(&keys) {
            Ok(()) => {}
            Err(CryptoError::BadSignature { .. }) => {
                let why = format!("the one-time key served for {peer} is not signed by {peer}'s pinned key: substituted; sending to {peer} is blocked");
                self.push_alert(Alert::key_changed(now, None, peer, why));
                return Err(KeyError::Substituted(peer.clone()));
            }
            Err(e) => {
                let why = format!("the one-time key served for {peer}: {e}");
                self.push_alert(Alert::bad_key(now, None, peer, why.clone()));
                return Err(KeyError::Bad {
                    peer: peer.clone(),
                    why,
                });
            }
        }
        let session = self.identity.outbound_session(&keys, one_time)?;
        self.changes.account = Some(self.identity.pickle());
        self.sessions
            .entry(peer.clone())
            .or_default()
            .insert(0, session);
        self.fresh_sessions.insert(peer.clone());
        self.save_session(peer, now);
        Ok(())
    }

    /// Checks identity keys the relay served for `peer`: no low-order or
    /// identity-point key, no key of one type passed as the other, no key
    /// of another principal, no key version older than one seen before.
    fn check_served(
        &mut self,
        now: Timestamp,
        peer: &Handle,
        keys: &IdentityKeys,
        version: u64,
    ) -> Result<(), KeyError> {
        let mine = self.identity.keys();
        let bad = if let Err(e) = check_identity_keys(keys) {
            Some(e.to_string())
        } else {
            self.peers
                .iter()
                .filter(|(h, _)| *h != peer)
                .find(|(_, p)| shares_a_key(&p.keys, keys))
                .map(|(h, _)| format!("a key of {h} served as {peer}'s"))
                .or_else(|| {
                    shares_a_key(&mine, keys).then(|| format!("your own key served as {peer}'s"))
                })
        };
        if let Some(why) = bad {
            let detail = format!("the relay served a bad key for {peer}: {why}");
            self.push_alert(Alert::bad_key(now, None, peer, detail));
            return Err(KeyError::Bad {
                peer: peer.clone(),
                why,
            });
        }
        if let Some(seen) = self.key_versions.get(peer).copied() {
            if version < seen {
                let why = format!(
                    "the relay served {peer}'s keys at version {version} after version {seen}"
                );
                self.push_alert(Alert::rollback(now, None, peer, Vec::new(), why));
                return Err(KeyError::RolledBack {
                    peer: peer.clone(),
                    version,
                });
            }
        }
        self.note_key_version(peer, version);
        Ok(())
    }

    /// Remembers the highest key version seen for `who`.
    pub fn note_key_version(&mut self, who: &Handle, version: u64) {
        let seen = self.key_versions.entry(who.clone()).or_insert(0);
        if version > *seen {
            *seen = version;
            self.changes.key_versions.push((who.clone(), version));
        }
    }

    /// Pins `keys` for `peer` unless a key is pinned already; a different
    /// pinned key is `key_changed`, never a silent switch.
    fn pin(
        &mut self,
        now: Timestamp,
        channel: Option<ChannelId>,
        peer: &Handle,
        keys: IdentityKeys,
        trust: Trust,
    ) -> Result<(), KeyError> {
        if let Some(existing) = self.peers.get(peer) {
            if existing.keys != keys {
                let why = format!("{peer} now presents another identity key than the one pinned; sending to it is blocked");
                self.push_alert(Alert::key_changed(now, channel, peer, why));
                return Err(KeyError::Changed(peer.clone()));
            }
            return Ok(());
        }
        let p = Peer { keys, trust };
        self.changes.peers.push((peer.clone(), p.clone()));
        self.peers.insert(peer.clone(), p);
        Ok(())
    }

    /// Pins the keys a proposal introduces, and checks that it introduces
    /// this member with its own keys.
    pub(crate) fn introduce(&mut self, now: Timestamp, state: &ChannelState, proposer: &Handle) {
        let mine = self.identity.keys();
        // The proposal just made: a pending amendment, else the creation.
        let members = state
            .pending()
            .map_or(state.members(), |p| p.proposal.members.as_slice())
            .to_vec();
        for m in members {
            let keys = IdentityKeys {
                curve25519: m.curve25519,
                ed25519: m.ed25519,
            };
            if m.handle == self.me {
                if keys != mine {
                    let why = format!("{proposer} introduced you to the channel with keys that are not yours: others would encrypt to someone else");
                    self.push_alert(Alert::key_changed(now, Some(state.id()), proposer, why));
                }
                continue;
            }
            if let Err(e) = check_identity_keys(&keys) {
                // Not pinned: no session can be made with it.
                let why = format!(
                    "{proposer} introduced {} with a key no client accepts: {e}",
                    m.handle
                );
                self.push_alert(Alert::bad_key(now, Some(state.id()), &m.handle, why));
                continue;
            }
            let trust = Trust::Introduced {
                by: proposer.to_string(),
            };
            // A changed key is raised inside; nothing else to do here.
            let _ = self.pin(now, Some(state.id()), &m.handle, keys, trust);
        }
    }

    /// Marks `peer`'s pinned key as verified (after comparing the safety
    /// number over a path the intermediary does not control).
    pub fn mark_verified(&mut self, peer: &Handle) -> bool {
        let Some(p) = self.peers.get_mut(peer) else {
            return false;
        };
        p.trust = Trust::Verified;
        self.changes.peers.push((peer.clone(), p.clone()));
        true
    }

    /// Replaces `peer`'s pinned key with `keys`, forgets the sessions made
    /// with the old one and clears its `key_changed` alerts. Dangerous:
    /// only after comparing the new safety number out of band.
    pub fn dangerous_accept_new_key(&mut self, now: Timestamp, peer: &Handle, keys: IdentityKeys) {
        let p = Peer {
            keys,
            trust: Trust::Tofu,
        };
        self.changes.peers.push((peer.clone(), p.clone()));
        self.peers.insert(peer.clone(), p);
        self.sessions.remove(peer);
        self.fresh_sessions.remove(peer);
        self.changes.forget_sessions.push(peer.clone());
        let ids: Vec<_> = self
            .alerts
            .iter()
            .filter(|a| {
                a.kind == AlertKind::KeyChanged
                    && a.principal.as_ref() == Some(peer)
                    && a.cleared.is_none()
            })
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.clear_alert(id, "the user accepted the new key".into());
        }
        // What waited for this decision is read now (or, under yet another
        // key, judged as any first message is).
        self.judge_deferred(now, peer);
    }

    /// Hands `peer`'s deferred envelopes back to `receive` once the user
    /// decided on its key (accepted, or dismissed the alert).
    pub(crate) fn judge_deferred(&mut self, now: Timestamp, peer: &Handle) {
        let (waiting, rest): (Vec<Envelope>, Vec<Envelope>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|e| &e.sender == peer);
        self.deferred = rest;
        for env in waiting {
            self.changes.deferred_done.push(env.message_id);
            self.receive(now, env);
        }
    }

    /// Saves the most recently used session with `peer`.
    pub(crate) fn save_session(&mut self, peer: &Handle, now: Timestamp) {
        if let Some(s) = self.sessions.get(peer).and_then(|s| s.first()) {
            self.changes
                .sessions
                .retain(|x| !(x.peer == *peer && x.id == s.id()));
            self.changes.sessions.push(SessionSave {
                peer: peer.clone(),
                id: s.id(),
                pickle: s.pickle(),
                used_at: now,
            });
        }
    }

    /// Sessions exist to encrypt to every one of `peers`.
    pub fn has_session(&self, peer: &Handle) -> bool {
        self.sessions.get(peer).is_some_and(|s| !s.is_empty())
    }

    /// A peer this member should fetch keys for before handing it
    /// `envelope`: a first message from someone no channel introduced.
    pub fn keys_needed(&self, envelope: &crate::api::EnvelopeJson) -> Option<Handle> {
        let sender = Handle::new(envelope.sender.as_str()).ok()?;
        (envelope.olm_type == crate::envelope::OlmType::PreKey.number()
            && sender != self.me
            && !self.peers.contains_key(&sender))
        .then_some(sender)
    }

    /// The relay's record of this member, checked once after the store
    /// opens and before anything queued is posted: if it is ahead of the
    /// store (restored from an older copy, or the relay lies), `stale_store`
    /// is raised, queued posts are never sent, and the old sessions are
    /// never used again.
    pub fn handle_own_record(&mut self, now: Timestamp, record: &OwnRecord) {
        let mut ahead = Vec::new();
        if record.acked_through > self.cursor {
            ahead.push((None, Vec::new(), format!(
                "the relay acknowledged your mailbox through position {}, but this store read only to {}",
                record.acked_through, self.cursor
            )));
        }
        for (channel, last, seq) in &record.last_posts {
            self.stale_targets.insert(*channel, *seq);
            let held = self
                .msgs
                .iter()
                .any(|m| m.payload.header().message_id == *last)
                || self
                    .outbox
                    .iter()
                    .any(|t| t.envelopes.iter().any(|e| e.message_id == *last));
            if !held {
                ahead.push((Some(*channel), vec![*last], format!(
                    "the relay holds your message {last} in channel {channel}, which this store never sent"
                )));
            }
        }
        self.own_checked = true;
        if ahead.is_empty() {
            return;
        }
        self.go_stale(now, ahead);
    }

    /// Another member's authenticated head vector covers `seq` of this
    /// member's own chain, beyond what the store holds.
    pub(crate) fn own_chain_ahead(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        claimed_by: &Handle,
        seq: u64,
        held: u64,
    ) {
        let target = self.stale_targets.entry(channel).or_default();
        target.0 = target.0.max(seq);
        let what = format!("{claimed_by} has received your message #{seq} in channel {channel}, but this store sent only up to #{held}");
        self.go_stale(now, vec![(Some(channel), Vec::new(), what)]);
    }

    fn is_stale_in_opt(&self, channel: &Option<ChannelId>) -> bool {
        channel.as_ref().is_some_and(|c| self.is_stale_in(c))
    }

    fn go_stale(
        &mut self,
        now: Timestamp,
        ahead: Vec<(Option<ChannelId>, Vec<MessageId>, String)>,
    ) {
        // The store as a whole is older (its sessions span channels): every
        // channel stops, each answered by its own rekey, with the evidence
        // that names it if any.
        let mut per_channel: BTreeMap<Option<ChannelId>, (Vec<MessageId>, String)> =
            BTreeMap::new();
        for (c, ids, what) in ahead {
            if let Some(c) = c {
                per_channel.insert(Some(c), (ids.clone(), what.clone()));
            }
            for other in self.channels.keys() {
                per_channel
                    .entry(Some(*other))
                    .or_insert_with(|| (Vec::new(), what.clone()));
            }
            if per_channel.is_empty() {
                per_channel.insert(None, (ids, what));
            }
        }
        let ahead: Vec<_> = per_channel
            .into_iter()
            .filter(|(c, _)| !self.is_stale_in_opt(c))
            .map(|(c, (ids, what))| (c, ids, what))
            .collect();
        if ahead.is_empty() {
            // Known already: sessions opened since (for the rekey) stay.
            return;
        }
        // What was queued before the restore never goes out; a rekey's
        // acceptance queued from a resumed position (an earlier open of
        // this stale store) is kept.
        let (resumed, stale): (Vec<Transmit>, Vec<Transmit>) = std::mem::take(&mut self.outbox)
            .into_iter()
            .partition(|t| t.resumed);
        self.outbox = VecDeque::from(resumed);
        let queued: Vec<MessageId> = stale
            .iter()
            .filter_map(|t| t.envelopes.first().map(|e| e.message_id))
            .collect();
        for (channel, mut ids, what) in ahead {
            let what = if queued.is_empty() {
                what
            } else {
                ids.extend(queued.iter().copied());
                format!("{what}; {} queued message(s) were not sent", queued.len())
            };
            let me = self.me.clone();
            let mut alert = Alert::stale_store(now, channel, &me, ids, what);
            // A channel this store never heard of (a new device) has no
            // epoch yet: the rekey's epoch clears it.
            alert.epoch = channel
                .filter(|c| self.channels.contains_key(c))
                .map(|c| self.epoch_of(&c));
            self.push_alert(alert);
        }
        for t in stale {
            self.changes.outbox_done.push(t.id);
        }
        self.in_flight = 0;
        for peer in std::mem::take(&mut self.sessions).into_keys() {
            self.changes.forget_sessions.push(peer);
        }
        self.fresh_sessions.clear();
        self.changes.sessions.clear();
    }
}
