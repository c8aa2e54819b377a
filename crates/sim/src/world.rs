//! The world: members (each a [`Member`] machine with its in-memory store),
//! the relay, and a virtual clock. The drivers here do what the client
//! does over HTTP: feed the machine, persist its changes, post its
//! transmits, ack, and wake it at its timeouts.

use std::collections::BTreeMap;

use backchannel_protocol::channel::ChannelStatus;
use backchannel_protocol::member::{Member, OwnRecord, SendError};
use backchannel_protocol::payload::{
    Body, BodyVersion, Member as ProposalMember, Policy, Proposal, Role,
};
use backchannel_protocol::{ChannelId, Envelope, Handle, Identity, MessageId, Timestamp};
use rand::rngs::StdRng;
use rand::Rng;

use crate::relay::MemRelay;
use crate::store::MemStore;

/// One-time keys each member keeps published.
const KEYS: usize = 12;

/// One simulated member: the machine and what it persisted.
pub struct Node {
    /// The machine (rebuilt from `store` after a crash).
    pub member: Member,
    /// What it persisted.
    pub store: MemStore,
    /// While false the member does nothing (its device is off).
    pub online: bool,
}

/// A seeded world on a virtual clock.
pub struct World {
    /// Every random choice of the harness.
    pub rng: StdRng,
    /// The virtual clock, ms.
    pub now: Timestamp,
    /// The relay.
    pub relay: MemRelay,
    /// The members.
    pub nodes: BTreeMap<Handle, Node>,
    /// The channel under test.
    pub channel: ChannelId,
    /// The mediator.
    pub mediator: Handle,
    /// Step trace (kept short), printed for a failing seed.
    pub trace: Vec<String>,
    /// The attack under way, if any.
    pub attack: Option<crate::attack::Active>,
}

/// A rng that is also a CryptoRng for the machine's ids and salts; seeded,
/// so ids are the same on a replay (vodozemac's own keys are not).
pub struct SimRng<'a>(pub &'a mut StdRng);

impl rand::RngCore for SimRng<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.try_fill_bytes(dest)
    }
}
impl rand::CryptoRng for SimRng<'_> {}

/// A handle from a literal the harness chose.
pub fn h(s: &str) -> Handle {
    match Handle::new(s) {
        Ok(h) => h,
        Err(e) => panic!("the harness chose a bad handle {s}: {e}"),
    }
}

impl World {
    /// Registers `who` with fresh keys.
    pub fn add_node(&mut self, who: &Handle) {
        let mut identity = Identity::new();
        let one_time = identity.generate_one_time_keys(KEYS);
        let fallback = identity.generate_fallback_key();
        let version = self.relay.upload(who, identity.keys(), one_time, fallback);
        let store = MemStore::new(&identity);
        let mut member = match Member::restore(backchannel_protocol::member::Snapshot::new(
            who.clone(),
            identity,
        )) {
            Ok(m) => m,
            Err(_) => return,
        };
        member.note_key_version(who, version);
        let mut node = Node {
            member,
            store,
            online: true,
        };
        node.store.apply(node.member.poll_changes());
        self.nodes.insert(who.clone(), node);
    }

    fn node(&mut self, who: &Handle) -> Option<&mut Node> {
        self.nodes.get_mut(who)
    }

    /// Persists what `who`'s machine changed (one transaction).
    pub fn persist(&mut self, who: &Handle) {
        if let Some(n) = self.node(who) {
            let changes = n.member.poll_changes();
            n.store.apply(changes);
        }
    }

    /// The relay's record of `who`, as `GET /v1/me` serves it.
    fn own_record(&self, who: &Handle) -> OwnRecord {
        OwnRecord {
            acked_through: self.relay.acked.get(who).copied().unwrap_or(0),
            last_posts: self
                .relay
                .last_posts
                .iter()
                .filter(|((s, _), _)| s == who)
                .map(|((_, c), (m, seq))| (*c, *m, backchannel_protocol::Seq(*seq)))
                .collect(),
        }
    }

    fn check_own(&mut self, who: &Handle) {
        let record = self.own_record(who);
        let now = self.now;
        if let Some(n) = self.node(who) {
            if !n.member.own_checked() {
                n.member.handle_own_record(now, &record);
            }
        }
        self.persist(who);
    }

    /// Posts what the outbox holds, in order.
    pub fn flush(&mut self, who: &Handle) {
        self.check_own(who);
        loop {
            let Some(t) = self.node(who).and_then(|n| n.member.poll_transmit()) else {
                return;
            };
            let envelopes = crate::attack::on_post(self, t.envelopes.clone());
            let ok = self.relay.post(&envelopes).is_ok();
            if let Some(n) = self.node(who) {
                n.member.handle_posted(t.id, ok);
            }
            self.persist(who);
            if !ok {
                return;
            }
        }
    }

    /// Opens a session to each of `peers` with a claimed one-time key.
    fn claim(&mut self, who: &Handle, peers: &[Handle]) {
        for p in peers {
            let Some((keys, key, version)) = crate::attack::on_claim(self, who, p) else {
                continue;
            };
            let now = self.now;
            if let Some(n) = self.node(who) {
                let _ = n.member.handle_claimed_key(now, p, keys, version, &key);
            }
            self.persist(who);
        }
    }

    /// Sends `body` as `who` (claiming keys first if needed), then posts.
    pub fn send(
        &mut self,
        who: &Handle,
        body: Body,
        in_reply_to: Option<MessageId>,
    ) -> Option<MessageId> {
        let channel = self.channel;
        // As the client does: the relay's record first, then the send.
        if self.nodes.get(who).is_some_and(|n| n.online) {
            self.check_own(who);
        }
        let mut claimed = false;
        loop {
            let now = self.now;
            let (rng, nodes) = (&mut self.rng, &mut self.nodes);
            let n = nodes.get_mut(who)?;
            let sent = n
                .member
                .send(now, channel, body.clone(), in_reply_to, &mut SimRng(rng));
            match sent {
                Ok(id) => {
                    if !matches!(body, Body::Receipt) {
                        let kind = format!("{:?}", body.kind());
                        self.note(format!("{who} sends {kind} {id}"));
                    }
                    self.persist(who);
                    self.flush(who);
                    return Some(id);
                }
                Err(SendError::NoSession(peers)) if !claimed => {
                    self.claim(who, &peers);
                    claimed = true;
                }
                Err(e) => {
                    self.persist(who);
                    self.note(format!("{who} could not send: {e}"));
                    return None;
                }
            }
        }
    }

    /// Sends with a tampering sender (adversarial rows).
    pub fn send_tampered(
        &mut self,
        who: &Handle,
        f: impl Fn(&mut Member, Timestamp, ChannelId, &mut SimRng<'_>) -> Result<MessageId, SendError>,
    ) -> Option<MessageId> {
        let channel = self.channel;
        for _ in 0..2 {
            let now = self.now;
            let (rng, nodes) = (&mut self.rng, &mut self.nodes);
            let n = nodes.get_mut(who)?;
            match f(&mut n.member, now, channel, &mut SimRng(rng)) {
                Ok(id) => {
                    self.persist(who);
                    self.flush(who);
                    return Some(id);
                }
                Err(SendError::NoSession(peers)) => self.claim(who, &peers),
                Err(_) => return None,
            }
        }
        None
    }

    /// Reads `who`'s mailbox to its end, as `Client::sync` does.
    pub fn sync(&mut self, who: &Handle) {
        if !self.nodes.get(who).is_some_and(|n| n.online) {
            return;
        }
        self.flush(who);
        let after = self.nodes.get(who).map_or(0, |n| n.member.cursor());
        let page = crate::attack::on_fetch(self, who, self.relay.mailbox(who, after));
        let mut reached = after;
        for (cursor, env) in page {
            reached = reached.max(cursor);
            if let Some(peer) = self.nodes.get(who).and_then(|n| n.member.keys_needed(&env)) {
                if let Some((keys, version)) = crate::attack::on_lookup(self, &peer) {
                    let now = self.now;
                    if let Some(n) = self.node(who) {
                        let _ = n.member.handle_served_keys(now, &peer, keys, version);
                    }
                }
            }
            let now = self.now;
            if let Some(n) = self.node(who) {
                n.member.handle_delivery(now, cursor, &env);
            }
            self.persist(who);
        }
        if reached > after {
            self.relay.ack(who, reached);
        }
        let now = self.now;
        let routing = self
            .relay
            .routing
            .get(&self.channel)
            .cloned()
            .unwrap_or_default();
        let channel = self.channel;
        if let Some(n) = self.node(who) {
            n.member.handle_caught_up(now);
            if n.member.channel(&channel).is_some() {
                n.member.handle_routing(now, channel, &routing);
            }
        }
        self.persist(who);
        self.answer_proposals(who);
        let due = self
            .nodes
            .get(who)
            .map(|n| n.member.receipts_due())
            .unwrap_or_default();
        for _ in due {
            self.send(who, Body::Receipt, None);
        }
        self.top_up(who);
    }

    /// Publishes as many one-time keys as inbound sessions used.
    fn top_up(&mut self, who: &Handle) {
        let Some(n) = self.node(who) else { return };
        let used = n.member.take_inbound_sessions();
        if used == 0 {
            return;
        }
        let identity = n.member.identity_mut();
        let one_time = identity.generate_one_time_keys(used);
        let fallback = identity.generate_fallback_key();
        let keys = identity.keys();
        n.member.account_changed();
        self.persist(who);
        let version = self.relay.upload(who, keys, one_time, fallback);
        if let Some(n) = self.node(who) {
            n.member.note_key_version(who, version);
        }
        self.persist(who);
    }

    /// The party's user accepts what awaits its answer (the simulation's
    /// parties always agree).
    fn answer_proposals(&mut self, who: &Handle) {
        let channel = self.channel;
        let Some(state) = self.nodes.get(who).and_then(|n| n.member.channel(&channel)) else {
            return;
        };
        let target = state.pending().or_else(|| match state.status() {
            ChannelStatus::Pending { .. } => state.setup(),
            _ => None,
        });
        let Some(target) = target else { return };
        let is_party = target
            .proposal
            .members
            .iter()
            .any(|m| &m.handle == who && m.role == Role::Party);
        if !is_party || target.responses.contains_key(who) {
            return;
        }
        let digest = target.digest;
        self.send(who, Body::accept(digest), None);
    }

    /// Wakes `who` at its machine's timeout, if it has come.
    pub fn timeout(&mut self, who: &Handle) {
        let now = self.now;
        let Some(n) = self.node(who) else { return };
        if !n.online || n.member.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        n.member.handle_timeout(now);
        let beats = n.member.heartbeats_due(now);
        self.persist(who);
        for _ in beats {
            self.send(who, Body::Heartbeat, None);
        }
    }

    /// `who` crashes and restarts from exactly what it persisted.
    pub fn crash(&mut self, who: &Handle) {
        let Some(n) = self.node(who) else { return };
        let Some(snapshot) = n.store.snapshot(who) else {
            return;
        };
        if let Ok(m) = Member::restore(snapshot) {
            n.member = m;
        }
    }

    /// The mediator opens the channel with `parties`.
    pub fn create_channel(&mut self, parties: &[Handle], policy: Policy) {
        let mut members = Vec::new();
        let med = self.mediator.clone();
        for p in std::iter::once(&med).chain(parties) {
            let Some((keys, version)) = crate::attack::on_lookup(self, p) else {
                continue;
            };
            if *p != med {
                let now = self.now;
                let ok = self
                    .node(&med)
                    .map(|n| n.member.handle_served_keys(now, p, keys, version).is_ok())
                    .unwrap_or(false);
                self.persist(&med);
                if !ok {
                    continue;
                }
            }
            let role = if *p == med {
                Role::Mediator
            } else {
                Role::Party
            };
            members.push(ProposalMember {
                handle: p.clone(),
                role,
                curve25519: keys.curve25519,
                ed25519: keys.ed25519,
            });
        }
        members.sort_by(|a, b| a.handle.cmp(&b.handle));
        if !members.iter().any(|m| m.role == Role::Party) {
            return;
        }
        self.relay.routing.insert(
            self.channel,
            members.iter().map(|m| m.handle.clone()).collect(),
        );
        let proposal = Proposal {
            title: "simulated talks".into(),
            members,
            policy,
            reads: BodyVersion::SUPPORTED.to_vec(),
        };
        self.send(&med, Body::Creation(proposal), None);
    }

    /// The mediator proposes a new epoch: `add` joins, `remove` leaves,
    /// `policy` takes effect.
    pub fn amend(&mut self, add: Option<&Handle>, remove: Option<&Handle>, policy: Policy) {
        let med = self.mediator.clone();
        let channel = self.channel;
        if self
            .nodes
            .get(&med)
            .is_some_and(|n| n.member.blocking_alert(&channel).is_some())
        {
            // As the client does: no routing change while sending is blocked.
            return;
        }
        let Some(setup) = self
            .nodes
            .get(&med)
            .and_then(|n| n.member.channel(&channel))
            .and_then(|s| s.setup())
        else {
            return;
        };
        let mut proposal = setup.proposal.clone();
        let mut routing: Vec<Handle> = proposal.members.iter().map(|m| m.handle.clone()).collect();
        if let Some(r) = remove {
            proposal.members.retain(|m| &m.handle != r);
        }
        if let Some(a) = add {
            let Some((keys, version)) = crate::attack::on_lookup(self, a) else {
                return;
            };
            let now = self.now;
            if let Some(n) = self.node(&med) {
                let _ = n.member.handle_served_keys(now, a, keys, version);
            }
            self.persist(&med);
            proposal.members.push(ProposalMember {
                handle: a.clone(),
                role: Role::Party,
                curve25519: keys.curve25519,
                ed25519: keys.ed25519,
            });
            routing.push(a.clone());
        }
        proposal.members.sort_by(|a, b| a.handle.cmp(&b.handle));
        proposal.policy = policy;
        proposal.reads = BodyVersion::SUPPORTED.to_vec();
        routing.sort();
        routing.dedup();
        self.relay.routing.insert(channel, routing);
        self.send(&med, Body::Amendment(proposal), None);
    }

    /// Members of the channel's open epoch as the mediator holds it.
    pub fn members(&self) -> Vec<Handle> {
        self.nodes
            .get(&self.mediator)
            .and_then(|n| n.member.channel(&self.channel))
            .map(|s| s.members().iter().map(|m| m.handle.clone()).collect())
            .unwrap_or_default()
    }

    /// Members that see themselves in the channel's open epoch.
    pub fn active_members(&self) -> Vec<Handle> {
        self.nodes
            .iter()
            .filter(|(who, n)| {
                n.member.channel(&self.channel).is_some_and(|s| {
                    s.status() == ChannelStatus::Active
                        && s.members().iter().any(|m| &m.handle == *who)
                })
            })
            .map(|(who, _)| who.clone())
            .collect()
    }

    /// True once every member sees the channel active.
    pub fn all_active(&self) -> bool {
        let members = self.members();
        !members.is_empty()
            && members.iter().all(|m| {
                self.nodes
                    .get(m)
                    .and_then(|n| n.member.channel(&self.channel))
                    .is_some_and(|s| s.status() == ChannelStatus::Active)
            })
    }

    /// Advances the clock by `dt_ms`, then every member syncs and wakes at
    /// its timeout, in a fixed order.
    pub fn settle_step(&mut self, dt_ms: i64) {
        self.now.0 += dt_ms;
        let all: Vec<_> = self.nodes.keys().cloned().collect();
        for who in all {
            self.sync(&who);
            self.timeout(&who);
        }
    }

    /// Keeps a line of the trace.
    pub fn note(&mut self, line: String) {
        if self.trace.len() < 400 {
            self.trace.push(format!("{:>9} ms  {line}", self.now.0));
        }
    }

    /// A random element.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            return None;
        }
        let i = self.rng.gen_range(0..items.len());
        Some(items[i].clone())
    }

    /// Every envelope the relay stored, with its cursor.
    pub fn history(&self) -> &[(u64, Envelope)] {
        &self.relay.history
    }
}
