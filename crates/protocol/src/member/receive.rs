//! Receiving: classify every delivery with what this member stored
//! (ATTACKS.md, "Telling the alerts apart"), verify each payload against
//! its channel, and fold it. Positions are counted only from decrypted
//! payloads; the envelope's sequence hint only places failures.

use crate::api::EnvelopeJson;
use crate::channel::{ChannelError, ChannelEvent, ChannelState};
use crate::envelope::{Envelope, OlmType};
use crate::ids::{ChannelId, Digest, EpochNumber, Handle, MessageId, Seq, Timestamp};
use crate::payload::{BodyKind, Payload, Role};
use crate::transcript::ChainError;

use super::{Alert, AlertKind, Direction, Failure, Member, StoredMessage, Unreadable};
use crate::DecodeError;

/// Most first messages kept per sender while the user decides on its new
/// key (a rekey needs one or two; a relay must not fill the store).
const DEFERRED_PER_SENDER_MAX: usize = 16;

/// Where a payload went.
enum Placement {
    Applied(Vec<ChannelEvent>),
    Held,
    Rejected,
}

impl Member {
    /// One mailbox entry, in mailbox order. `cursor` is its mailbox
    /// position; a position not beyond the last one read is a rollback.
    pub fn handle_delivery(&mut self, now: Timestamp, cursor: u64, json: &EnvelopeJson) {
        if cursor <= self.cursor {
            let ids = MessageId::from_hex(&json.message_id).into_iter().collect();
            let channel = ChannelId::from_hex(&json.channel_id).ok();
            let who = Handle::new(json.sender.as_str()).unwrap_or_else(|_| self.me.clone());
            let why = format!(
                "the relay served mailbox position {cursor} after position {} was read",
                self.cursor
            );
            self.push_alert(Alert::rollback(now, channel, &who, ids, why));
            return;
        }
        self.cursor = cursor;
        self.changes.cursor = Some(cursor);
        match Envelope::try_from(json) {
            Ok(env) => self.receive(now, env),
            Err(e) => {
                let who = Handle::new(json.sender.as_str()).unwrap_or_else(|_| self.me.clone());
                let id = MessageId::from_hex(&json.message_id).unwrap_or(MessageId([0; 16]));
                let why = format!("an envelope that does not decode: {e}");
                self.push_alert(Alert::forged(now, None, &who, None, id, why));
            }
        }
    }

    /// Where a failure's hint points: the channel's open epoch.
    fn hinted(&self, env: &Envelope) -> Option<(EpochNumber, Seq)> {
        (env.seq_hint > 0).then(|| (self.epoch_of(&env.channel_id), Seq(env.seq_hint)))
    }

    pub(crate) fn receive(&mut self, now: Timestamp, env: Envelope) {
        if self.awaits_key_decision(&env) {
            match self
                .deferred
                .iter()
                .find(|d| d.message_id == env.message_id)
            {
                // An identical redelivery of what already waits.
                Some(d) if *d == env => return,
                // Another copy under the id (judged as usual: replay) or
                // more than a rekey needs from one sender: not kept.
                Some(_) => {}
                None if self
                    .deferred
                    .iter()
                    .filter(|d| d.sender == env.sender)
                    .count()
                    < DEFERRED_PER_SENDER_MAX =>
                {
                    self.changes.deferred.push(env.clone());
                    self.deferred.push(env);
                    return;
                }
                None => {}
            }
        }
        let hash = Digest::of(&[&env.encode()]).0;
        let ct_digest = Digest::of(&[&env.ciphertext]).0;
        let id = env.message_id;
        if let Some(seen) = self.processed.get(&id) {
            if *seen != hash {
                let why = "a message id already processed came again with different bytes; the new copy was not shown".into();
                let place = self.hinted(&env);
                self.push_alert(Alert::replay(
                    now,
                    env.channel_id,
                    &env.sender,
                    place,
                    vec![id],
                    why,
                ));
            }
            // An identical redelivery is dropped silently: Olm would refuse
            // its message key a second time anyway.
            return;
        }
        self.processed.insert(id, hash);
        self.changes.processed.push((id, hash));
        if !self.ciphertexts.insert(ct_digest) {
            let why =
                "a ciphertext already processed came again under another message id or channel"
                    .into();
            let place = self.hinted(&env);
            self.push_alert(Alert::replay(
                now,
                env.channel_id,
                &env.sender,
                place,
                vec![id],
                why,
            ));
            return;
        }
        self.changes.ciphertexts.push(ct_digest);
        if env.recipient != self.me {
            let why = format!(
                "a copy addressed to {} was put in this mailbox",
                env.recipient
            );
            let place = self.hinted(&env);
            self.push_alert(Alert::forged(
                now,
                Some(env.channel_id),
                &env.sender,
                place,
                id,
                why,
            ));
            return;
        }
        if let Some(why) = self.foreign_pre_key(&env) {
            let place = self.hinted(&env);
            self.push_alert(Alert::forged(
                now,
                Some(env.channel_id),
                &env.sender,
                place,
                id,
                why,
            ));
            return;
        }
        let plaintext = match self.decrypt(&env) {
            Ok(p) => p,
            Err(why) => {
                self.classify_failure(now, &env, &why);
                return;
            }
        };
        self.save_session(&env.sender, now);
        let payload = match Payload::from_plaintext(&plaintext) {
            Ok(p) => p,
            Err(e) => return self.unreadable(now, &env, &plaintext, &e),
        };
        let h = payload.header().clone();
        if h.channel_id != env.channel_id
            || h.message_id != env.message_id
            || (h.sender != env.sender && !self.breaks(super::Rule::SenderIsPeer))
        {
            let why = format!(
                "a payload of channel {} message {} arrived under another envelope (moved)",
                h.channel_id, h.message_id
            );
            let place = Some((h.epoch.number, h.seq));
            self.push_alert(Alert::replay(
                now,
                env.channel_id,
                &env.sender,
                place,
                vec![id, h.message_id],
                why,
            ));
            return;
        }
        self.place(now, payload, false);
    }

    /// A first message made under the key that the channel's pending
    /// proposal introduces for its sender, where another key is pinned and
    /// `key_changed` is open for it: a reinstalled member answering a
    /// rekey. It waits for the user's decision on the new key.
    fn awaits_key_decision(&self, env: &Envelope) -> bool {
        if env.olm_type != OlmType::PreKey || env.recipient != self.me {
            return false;
        }
        let Some(pinned) = self.peers.get(&env.sender) else {
            return false;
        };
        let Some(used) = crate::identity::pre_key_identity(&env.ciphertext) else {
            return false;
        };
        let introduced = self
            .channels
            .get(&env.channel_id)
            .and_then(|s| s.pending())
            .is_some_and(|p| {
                p.proposal
                    .members
                    .iter()
                    .any(|m| m.handle == env.sender && m.curve25519 == used)
            });
        let undecided = self.alerts.iter().any(|a| {
            a.kind == AlertKind::KeyChanged
                && a.is_open()
                && a.principal.as_ref() == Some(&env.sender)
        });
        used != pinned.keys.curve25519 && introduced && undecided
    }

    /// A pre-key message made under another identity key than the one
    /// pinned for its claimed sender: the relay (or someone in front of
    /// it) made it. Said at once, so no genuine message is needed.
    fn foreign_pre_key(&self, env: &Envelope) -> Option<String> {
        if env.olm_type != OlmType::PreKey {
            return None;
        }
        let Some(peer) = self.peers.get(&env.sender) else {
            return Some(format!(
                "a first message claiming to be {}, whose identity key is unknown here",
                env.sender
            ));
        };
        let used = crate::identity::pre_key_identity(&env.ciphertext)?;
        (used != peer.keys.curve25519).then(|| {
            format!(
                "a first message claiming to be {} was made under an identity key that is not {}'s",
                env.sender, env.sender
            )
        })
    }

    /// An authentic plaintext (it decrypted) whose payload this version
    /// cannot read: a notice, and the message keeps its place as a stub.
    fn unreadable(&mut self, now: Timestamp, env: &Envelope, plaintext: &[u8], e: &DecodeError) {
        let reason = Unreadable::of(e);
        let stub = crate::payload::unpad(plaintext)
            .ok()
            .and_then(Payload::decode_unreadable)
            .filter(|p| {
                let h = p.header();
                h.channel_id == env.channel_id
                    && h.message_id == env.message_id
                    && h.sender == env.sender
            });
        let version = plaintext.get(5).copied().unwrap_or(0);
        match stub {
            Some(p) => {
                let h = p.header().clone();
                let what = format!(
                    "a {} body of version {} ({e})",
                    h.body_kind.name(),
                    h.version
                );
                let place = Some((h.epoch.number, h.seq));
                self.push_alert(Alert::unsupported_body(
                    now,
                    env.channel_id,
                    &env.sender,
                    place,
                    env.message_id,
                    what,
                    reason,
                ));
                if !self.breaks(super::Rule::UnreadCounts) {
                    self.place(now, p, true);
                }
            }
            None => {
                let what = format!("a payload of version {version} ({e})");
                self.push_alert(Alert::unsupported_body(
                    now,
                    env.channel_id,
                    &env.sender,
                    None,
                    env.message_id,
                    what,
                    reason,
                ));
            }
        }
    }

    /// Folds one authentic payload into its channel (or holds it back),
    /// stores it, and applies what was held behind it.
    fn place(&mut self, now: Timestamp, payload: Payload, unsupported: bool) {
        let h = payload.header().clone();
        let digest = payload.digest();
        let mut state = self
            .channels
            .get(&h.channel_id)
            .cloned()
            .unwrap_or_else(|| ChannelState::new(h.channel_id, self.me.clone()));
        let placement = match state.handle_payload(&payload, digest) {
            Ok(events) => Placement::Applied(events),
            Err(ChannelError::NotYetOpen(_)) => Placement::Held,
            Err(e) => {
                self.reject(now, &h, e);
                Placement::Rejected
            }
        };
        if let Placement::Applied(events) = &placement {
            self.judge_events(now, &state, events);
            self.check_own_head(now, &state, &h);
            if !unsupported {
                self.check_withheld(now, &state, &payload);
            }
            self.crossed(now, &payload);
        }
        if !matches!(placement, Placement::Rejected) {
            self.resolve_failures_at(now, h.channel_id, &h.sender, h.epoch.number, h.seq);
        }
        let applied = match placement {
            Placement::Rejected => return,
            Placement::Held => None,
            Placement::Applied(_) => {
                let n = self.next_applied;
                self.next_applied += 1;
                Some(n)
            }
        };
        self.store_message(StoredMessage {
            payload,
            digest,
            direction: Direction::In,
            stored_at: now,
            applied,
            unsupported,
        });
        if applied.is_some() {
            self.channels.insert(h.channel_id, state);
            if h.body_kind != BodyKind::Receipt {
                self.to_receipt.insert(h.channel_id);
            }
            self.on_epoch_change(now, h.channel_id);
            self.apply_held(now, h.channel_id);
            if h.body_kind == BodyKind::Structured {
                self.authority_due.entry(h.channel_id).or_insert(now);
            }
        }
    }

    fn reject(&mut self, now: Timestamp, h: &crate::payload::Header, e: ChannelError) {
        let place = Some((h.epoch.number, h.seq));
        let ids = vec![h.message_id];
        let why = e.to_string();
        let alert = match &e {
            ChannelError::Chain(ChainError::Duplicate { .. }) => {
                Alert::replay(now, h.channel_id, &h.sender, place, ids, why)
            }
            ChannelError::Chain(ChainError::Prev { .. } | ChainError::Equivocation { .. }) => {
                Alert::fork(now, h.channel_id, &h.sender, h.epoch.number, h.seq, why)
            }
            ChannelError::NotAMember(_) | ChannelError::Proposal(_) | ChannelError::Response(_) => {
                let mut a = Alert::membership_mismatch(now, h.channel_id, &h.sender);
                a.detail = why;
                a.message_ids = ids;
                a
            }
            _ => Alert::forged(now, Some(h.channel_id), &h.sender, place, h.message_id, why),
        };
        self.push_alert(alert);
    }

    /// Raises `unauthorized_act` for each typed act of `channel` its sender
    /// could not make and no alert names yet: run once per batch in which a
    /// typed act was applied (before the batch's changes are polled; an act
    /// naming one that arrives later is judged then) and when a store opens
    /// (old transcripts).
    pub(crate) fn judge_authority(&mut self, now: Timestamp, channel: ChannelId) {
        let Some(state) = self.channels.get(&channel) else {
            return;
        };
        let members = state
            .members()
            .iter()
            .map(|m| (m.handle.clone(), m.role))
            .collect();
        let reads = state.policy().is_some_and(|p| p.mediator_reads);
        let payloads: Vec<&Payload> = self
            .msgs
            .iter()
            .filter(|m| m.channel() == channel && m.applied.is_some())
            .map(|m| &m.payload)
            .collect();
        let roster = crate::commitments::authority::Roster::new(members, reads)
            .learn(payloads.iter().copied());
        let found = crate::commitments::authority::audit(&payloads, &roster);
        let places: Vec<(EpochNumber, Seq, Handle)> = found
            .iter()
            .map(|f| {
                let p = payloads
                    .iter()
                    .find(|p| p.header().message_id == f.id)
                    .map(|p| p.header());
                p.map_or((EpochNumber(0), Seq(0), f.refusal.sender.clone()), |h| {
                    (h.epoch.number, h.seq, h.sender.clone())
                })
            })
            .collect();
        for (f, (epoch, seq, sender)) in found.into_iter().zip(places) {
            let known = self
                .alerts
                .iter()
                .any(|a| a.kind == AlertKind::UnauthorizedAct && a.message_ids.contains(&f.id));
            if !known {
                self.push_alert(Alert::unauthorized_act(
                    now,
                    channel,
                    &sender,
                    (epoch, seq),
                    f.id,
                    &f.words,
                ));
            }
        }
    }

    /// A stub where this member may read the content: the sender (or a
    /// relay replaying a stub) withheld it.
    fn check_withheld(&mut self, now: Timestamp, state: &ChannelState, payload: &Payload) {
        let Payload::Stub { header: h, .. } = payload else {
            return;
        };
        let Some(policy) = state.policy() else { return };
        let role = state.member(&self.me).map(|m| m.role);
        let entitled = match role {
            Some(Role::Mediator) => policy.mediator_reads,
            Some(_) => true,
            None => false,
        };
        if entitled {
            self.push_alert(Alert::withheld(
                now,
                h.channel_id,
                &h.sender,
                h.epoch.number,
                h.seq,
                h.message_id,
            ));
        }
    }

    /// Turns channel events into alerts: gaps (or `modified`, where a
    /// failed ciphertext sat at the missing position), reorders, forks.
    fn judge_events(&mut self, now: Timestamp, state: &ChannelState, events: &[ChannelEvent]) {
        let channel = state.id();
        for event in events {
            match event {
                ChannelEvent::Proposed { by } => self.introduce(now, state, by),
                ChannelEvent::Gap {
                    sender,
                    epoch,
                    missing,
                    message_id,
                } => {
                    let epoch = EpochNumber(*epoch);
                    let mut unexplained = Vec::new();
                    for pos in missing {
                        let failed = self.failures.iter().position(|f| {
                            f.channel_id == channel
                                && &f.sender == sender
                                && f.seq_hint == pos.0
                                && f.epoch == epoch
                        });
                        match failed {
                            Some(i) => {
                                let f = self.failures.remove(i);
                                self.changes.resolved_failures.push(f.message_id);
                                self.push_alert(Alert::modified(
                                    now,
                                    channel,
                                    sender,
                                    epoch,
                                    *pos,
                                    f.message_id,
                                    *message_id,
                                ));
                            }
                            None => unexplained.push(*pos),
                        }
                    }
                    if !unexplained.is_empty() && !self.is_stale_in(&channel) {
                        self.push_alert(Alert::gap(
                            now,
                            channel,
                            sender,
                            epoch,
                            unexplained,
                            *message_id,
                        ));
                    }
                }
                ChannelEvent::Reorder {
                    sender,
                    epoch,
                    seq,
                    message_id,
                } => {
                    self.push_alert(Alert::reorder(
                        now,
                        channel,
                        sender,
                        EpochNumber(*epoch),
                        *seq,
                        *message_id,
                    ));
                }
                ChannelEvent::Fork {
                    member,
                    epoch,
                    seq,
                    claimed_by,
                    claimed,
                    held,
                    held_from,
                } => {
                    let detail = if claimed_by == member {
                        format!(
                            "{member}'s message #{} (epoch {epoch}) reports its own previous position as {}…, but its chain holds {}…: {member} misreports its own head",
                            seq.0 + 1, &claimed.to_hex()[..12], &held.to_hex()[..12]
                        )
                    } else if held_from == member {
                        format!(
                            "{claimed_by} reports {member}'s message #{} (epoch {epoch}) with digest {}…, but the message {member} sent here has {}…: {member} equivocated (sent different versions), or {claimed_by} misreports",
                            seq.0, &claimed.to_hex()[..12], &held.to_hex()[..12]
                        )
                    } else {
                        format!(
                            "{claimed_by} and {held_from} report different digests for {member}'s message #{} (epoch {epoch}): {member} equivocated, or one of them misreports",
                            seq.0
                        )
                    };
                    self.push_alert(Alert::fork(
                        now,
                        channel,
                        member,
                        EpochNumber(*epoch),
                        *seq,
                        detail,
                    ));
                }
                ChannelEvent::Activated(_)
                | ChannelEvent::Message { .. }
                | ChannelEvent::Responded { .. } => {}
            }
        }
    }

    /// A reply written before its author saw later messages of the one it
    /// answers: a notice, since honest delays do the same.
    fn crossed(&mut self, now: Timestamp, payload: &Payload) {
        let h = payload.header();
        let Some(q) = h.in_reply_to else { return };
        let Some(question) = self
            .msgs
            .iter()
            .find(|m| m.payload.header().message_id == q)
        else {
            return;
        };
        let qh = question.payload.header();
        if qh.epoch != h.epoch || qh.sender == h.sender {
            return;
        }
        let seen = h.heads.0.get(&qh.sender).map_or(0, |hd| hd.seq.0);
        let later: Vec<MessageId> = self
            .msgs
            .iter()
            .map(|m| m.payload.header())
            .filter(|m| {
                m.channel_id == h.channel_id
                    && m.epoch == h.epoch
                    && m.sender == qh.sender
                    && m.seq.0 > seen
                    && m.seq > qh.seq
                    && m.body_kind.is_content()
            })
            .map(|m| m.message_id)
            .collect();
        if later.is_empty() {
            return;
        }
        let detail = format!(
            "{}'s reply to {} was written before it saw {}'s later message(s) {}",
            h.sender,
            q,
            qh.sender,
            later
                .iter()
                .map(|m| m.to_hex())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut ids = vec![h.message_id];
        ids.extend(later);
        self.push_alert(Alert::crossed_messages(
            now,
            h.channel_id,
            &h.sender,
            ids,
            detail,
        ));
    }

    /// Classifies a ciphertext that did not decrypt, by the position its
    /// (unauthenticated) hint names.
    fn classify_failure(&mut self, now: Timestamp, env: &Envelope, why: &Undecrypted) {
        if *why == Undecrypted::UnknownKey {
            // Said once as a notice; the position still counts as missing
            // until the sender's genuine message fills it.
            self.push_alert(Alert::unknown_one_time_key(
                now,
                env.channel_id,
                &env.sender,
                env.message_id,
            ));
        }
        let why = why.to_string();
        let why = why.as_str();
        if self.is_stale_in(&env.channel_id) {
            // The restored store cannot read what was sent on sessions it
            // lost: a consequence of the restore, not evidence against the
            // relay (the stale_store alert says so).
            return;
        }
        let id = env.message_id;
        let epoch = self.epoch_of(&env.channel_id);
        let seq = Seq(env.seq_hint);
        let state = self.channels.get(&env.channel_id);
        if state.is_some_and(|s| s.is_gap(&env.sender, env.seq_hint)) {
            self.push_alert(Alert::late_undecryptable(
                now,
                env.channel_id,
                &env.sender,
                epoch,
                seq,
                id,
                why,
            ));
        } else if state.is_some_and(|s| s.holds(&env.sender, env.seq_hint)) {
            let why = format!("a ciphertext claiming to be {}'s #{} does not decrypt, and the genuine #{} is already here ({why})", env.sender, seq.0, seq.0);
            self.push_alert(Alert::forged(
                now,
                Some(env.channel_id),
                &env.sender,
                Some((epoch, seq)),
                id,
                why,
            ));
        } else {
            // Decided later: a genuine message of the sender will show
            // whether a message existed at this position.
            let f = Failure {
                message_id: id,
                channel_id: env.channel_id,
                sender: env.sender.clone(),
                seq_hint: env.seq_hint,
                epoch,
                learned_at: now,
            };
            self.changes.failures.push(f.clone());
            self.failures.push(f);
        }
    }

    /// Failures at the position a genuine message just took were forged.
    fn resolve_failures_at(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        epoch: EpochNumber,
        seq: Seq,
    ) {
        while let Some(i) = self.failures.iter().position(|f| {
            f.channel_id == channel
                && &f.sender == sender
                && f.seq_hint == seq.0
                && f.epoch == epoch
        }) {
            let f = self.failures.remove(i);
            self.changes.resolved_failures.push(f.message_id);
            let why = format!("a ciphertext claiming to be {sender} #{} failed to decrypt, and the genuine #{} arrived", seq.0, seq.0);
            self.push_alert(Alert::forged(
                now,
                Some(channel),
                sender,
                Some((epoch, seq)),
                f.message_id,
                why,
            ));
        }
    }

    /// Tries every session with the sender, then (for a pre-key message)
    /// a new inbound session.
    fn decrypt(&mut self, env: &Envelope) -> Result<Vec<u8>, Undecrypted> {
        if let Some(list) = self.sessions.get_mut(&env.sender) {
            for i in 0..list.len() {
                if let Ok(plaintext) = list[i].decrypt(env.olm_type, &env.ciphertext) {
                    let s = list.remove(i);
                    list.insert(0, s);
                    if i > 0 {
                        // Another session is in front now: not the fresh one.
                        self.fresh_sessions.remove(&env.sender);
                    }
                    return Ok(plaintext);
                }
            }
        }
        if env.olm_type != OlmType::PreKey {
            return Err(Undecrypted::Other(
                "no session with the sender decrypts it".into(),
            ));
        }
        let keys = match self.peers.get(&env.sender) {
            Some(p) => p.keys,
            None => return Err(Undecrypted::Other("no pinned identity key".into())),
        };
        let (session, plaintext) = self
            .identity
            .inbound_session(&keys, env.olm_type, &env.ciphertext)
            .map_err(|e| match e {
                crate::CryptoError::SessionCreation(
                    vodozemac::olm::SessionCreationError::MissingOneTimeKey(_),
                ) => Undecrypted::UnknownKey,
                e => Undecrypted::Other(e.to_string()),
            })?;
        self.sessions
            .entry(env.sender.clone())
            .or_default()
            .insert(0, session);
        self.fresh_sessions.remove(&env.sender);
        self.inbound_sessions += 1;
        self.changes.account = Some(self.identity.pickle());
        Ok(plaintext)
    }

    /// Applies held-back payloads of `channel` that now fit, until none does.
    fn apply_held(&mut self, now: Timestamp, channel: ChannelId) {
        loop {
            let mut progress = false;
            for i in 0..self.msgs.len() {
                if self.msgs[i].channel() != channel || self.msgs[i].applied.is_some() {
                    continue;
                }
                let Some(state) = self.channels.get(&channel) else {
                    return;
                };
                let mut next = state.clone();
                let (payload, digest) = (self.msgs[i].payload.clone(), self.msgs[i].digest);
                let Ok(events) = next.handle_payload(&payload, digest) else {
                    continue;
                };
                self.judge_events(now, &next, &events);
                if !self.msgs[i].unsupported {
                    self.check_withheld(now, &next, &payload);
                }
                let order = self.next_applied;
                self.next_applied += 1;
                self.msgs[i].applied = Some(order);
                self.changes.messages.push(self.msgs[i].clone());
                self.channels.insert(channel, next);
                if payload.header().body_kind != BodyKind::Receipt {
                    self.to_receipt.insert(channel);
                }
                self.on_epoch_change(now, channel);
                if payload.header().body_kind == BodyKind::Structured {
                    self.authority_due.entry(channel).or_insert(now);
                }
                progress = true;
            }
            if !progress {
                return;
            }
        }
    }
}

/// Why a ciphertext did not decrypt.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Undecrypted {
    /// A first message names a one-time key this store does not hold.
    UnknownKey,
    /// Anything else, in words.
    Other(String),
}

impl std::fmt::Display for Undecrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undecrypted::UnknownKey => f.write_str("its one-time key is not held here"),
            Undecrypted::Other(why) => f.write_str(why),
        }
    }
}
