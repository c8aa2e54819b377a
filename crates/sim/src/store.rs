//! A member's store in memory: exactly what the driver persisted from the
//! machine's [`Changes`], so a crash restarts from that and nothing more.

use std::collections::{BTreeMap, BTreeSet};

use backchannel_protocol::member::{
    Alert, AlertId, Changes, Failure, Peer, Snapshot, StoredMessage, Transmit, TransmitId,
};
use backchannel_protocol::{Envelope, Handle, Identity, MessageId, PeerSession, Timestamp};

/// What one member persisted.
#[derive(Clone, Default)]
pub struct MemStore {
    account: String,
    /// Session id → (peer, pickle JSON, last use).
    sessions: BTreeMap<String, (Handle, String, Timestamp)>,
    peers: BTreeMap<Handle, Peer>,
    key_versions: BTreeMap<Handle, u64>,
    messages: Vec<StoredMessage>,
    processed: BTreeMap<MessageId, [u8; 32]>,
    ciphertexts: BTreeSet<[u8; 32]>,
    failures: BTreeMap<MessageId, Failure>,
    alerts: BTreeMap<AlertId, Alert>,
    outbox: BTreeMap<TransmitId, Transmit>,
    deferred: BTreeMap<MessageId, Envelope>,
    cursor: u64,
}

impl MemStore {
    /// A store holding a fresh account.
    pub fn new(identity: &Identity) -> MemStore {
        MemStore {
            account: serde_json::to_string(&identity.pickle()).unwrap_or_default(),
            ..MemStore::default()
        }
    }

    /// Persists one batch of changes, as the client's vault does in one
    /// transaction.
    pub fn apply(&mut self, c: Changes) {
        if let Some(a) = c.account {
            self.account = serde_json::to_string(&a).unwrap_or_default();
        }
        for peer in &c.forget_sessions {
            self.sessions.retain(|_, (p, _, _)| p != peer);
        }
        for s in c.sessions {
            let pickle = serde_json::to_string(&s.pickle).unwrap_or_default();
            self.sessions.insert(s.id, (s.peer, pickle, s.used_at));
        }
        self.peers.extend(c.peers);
        for (h, v) in c.key_versions {
            let e = self.key_versions.entry(h).or_insert(0);
            *e = (*e).max(v);
        }
        for m in c.messages {
            let key = |x: &StoredMessage| {
                (
                    x.payload.header().message_id,
                    x.payload.header().sender.clone(),
                )
            };
            match self.messages.iter_mut().find(|x| key(x) == key(&m)) {
                Some(slot) => *slot = m,
                None => self.messages.push(m),
            }
        }
        self.processed.extend(c.processed);
        self.ciphertexts.extend(c.ciphertexts);
        for f in c.failures {
            self.failures.insert(f.message_id, f);
        }
        for id in c.resolved_failures {
            self.failures.remove(&id);
        }
        for a in c.alerts {
            self.alerts.insert(a.id, a);
        }
        for t in c.outbox {
            self.outbox.insert(t.id, t);
        }
        for id in c.outbox_done {
            self.outbox.remove(&id);
        }
        for e in c.deferred {
            self.deferred.insert(e.message_id, e);
        }
        for id in c.deferred_done {
            self.deferred.remove(&id);
        }
        if let Some(cursor) = c.cursor {
            self.cursor = self.cursor.max(cursor);
        }
    }

    /// Every alert persisted.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// What the member restarts from.
    pub fn snapshot(&self, me: &Handle) -> Option<Snapshot> {
        let identity = Identity::from_pickle(serde_json::from_str(&self.account).ok()?);
        let mut s = Snapshot::new(me.clone(), identity);
        let mut sessions: Vec<_> = self.sessions.values().collect();
        sessions.sort_by_key(|(_, _, used)| std::cmp::Reverse(*used));
        for (peer, pickle, _) in sessions {
            s.sessions.push((
                peer.clone(),
                PeerSession::from_pickle(serde_json::from_str(pickle).ok()?),
            ));
        }
        s.peers = self
            .peers
            .iter()
            .map(|(h, p)| (h.clone(), p.clone()))
            .collect();
        s.key_versions = self
            .key_versions
            .iter()
            .map(|(h, v)| (h.clone(), *v))
            .collect();
        s.messages = self.messages.clone();
        s.processed = self.processed.iter().map(|(k, v)| (*k, *v)).collect();
        s.ciphertexts = self.ciphertexts.iter().copied().collect();
        s.failures = self.failures.values().cloned().collect();
        s.alerts = self.alerts.values().cloned().collect();
        s.outbox = self.outbox.values().cloned().collect();
        s.deferred = self.deferred.values().cloned().collect();
        s.cursor = self.cursor;
        Some(s)
    }
}
