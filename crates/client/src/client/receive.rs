//! Receiving: read the one mailbox in order, classify every delivery with
//! what this member stored (ATTACKS.md, "Telling the alerts apart"), verify
//! each payload against its channel, and commit the advanced session with
//! the message in one transaction. Positions are counted only from
//! decrypted payloads; the envelope's sequence hint only places failures.

use std::collections::BTreeSet;

use backchannel_protocol::api::Delivery;
use backchannel_protocol::channel::{ChannelError, ChannelEvent, ChannelState, ChannelStatus};
use backchannel_protocol::payload::{BodyKind, Payload};
use backchannel_protocol::transcript::ChainError;
use backchannel_protocol::{ChannelId, Digest, Envelope, Handle, IdentityKeys, MessageId, OlmType};
use serde::{Deserialize, Serialize};

use super::{crash_point, peer_keys, Client, LogEntry, Msg};
use crate::error::ClientError;
use crate::vault::records::{AlertRecord, Direction};
use crate::vault::Failure;

/// Mailbox page size when syncing.
pub const SYNC_PAGE: usize = 100;

/// What a sync did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// Payloads from others folded into their channels, in order.
    pub received: Vec<LogEntry>,
    /// Alerts and notices raised.
    pub alerts: Vec<AlertRecord>,
    /// Alerts cleared (a late receipt, a gap filled).
    pub cleared: Vec<AlertRecord>,
    /// Channels that became active.
    pub activated: Vec<String>,
    /// Receipts sent afterwards.
    pub receipts_sent: usize,
    /// Posts from the outbox sent first.
    pub outbox_sent: usize,
    /// The mailbox cursor reached.
    pub cursor: u64,
}

/// What happened to one payload.
enum Placement {
    Applied(Vec<ChannelEvent>),
    Held,
    Rejected,
}

/// One delivery's outcome, committed together.
#[derive(Default)]
struct Outcome {
    alerts: Vec<AlertRecord>,
    ciphertext: Option<[u8; 32]>,
    processed: Option<(MessageId, [u8; 32])>,
    failure: Option<Failure>,
    resolved_failures: Vec<MessageId>,
}

impl Client {
    /// Sends what the outbox holds, reads the mailbox to the end, acks it,
    /// checks receipt deadlines and the relay's routing record, and sends a
    /// receipt in every channel where something other than a receipt arrived.
    pub async fn sync(&mut self) -> Result<SyncReport, ClientError> {
        self.connect().await?;
        let mut report = SyncReport {
            outbox_sent: self.flush_outbox().await?,
            ..SyncReport::default()
        };
        let mut to_receipt = BTreeSet::new();
        let mut inbound_sessions = 0;
        let start = self.vault.cursor()?;
        let mut cursor = start;
        loop {
            let page = self.relay.mailbox(cursor, SYNC_PAGE).await?;
            crash_point("after_fetch");
            let more = page.more;
            for d in page.deliveries {
                if d.cursor <= cursor {
                    // Cursors only grow: older state served again.
                    let alert = AlertRecord::new(
                        "rollback",
                        d.envelope.channel_id.clone(),
                        d.envelope.sender.clone(),
                        vec![d.envelope.message_id.clone()],
                        format!(
                            "the relay served mailbox position {} after position {cursor} was read",
                            d.cursor
                        ),
                        self.now().0,
                    );
                    report.alerts.push(alert.clone());
                    self.raise(vec![alert])?;
                    continue;
                }
                cursor = d.cursor;
                inbound_sessions += self.receive(d, &mut report, &mut to_receipt).await?;
            }
            if !more {
                break;
            }
        }
        report.cursor = cursor;
        if cursor > start {
            // Routing housekeeping only: the relay deletes what was stored here.
            self.relay.ack(cursor).await?;
        }
        // The mailbox was read to the end: deadlines may now be judged.
        self.clear_filled_gaps(&mut report);
        self.settle_failures(&mut report)?;
        self.check_routing(&mut report).await?;
        self.check_receipts(&mut report)?;
        for channel in to_receipt {
            let active = self.channel_state(&channel)?.status() == ChannelStatus::Active;
            if active && self.blocking_alert(&channel).is_none() {
                self.send_receipt(channel).await?;
                report.receipts_sent += 1;
            }
        }
        if inbound_sessions > 0 {
            self.replenish_keys(inbound_sessions).await?;
        }
        Ok(report)
    }

    fn alert_for(
        &self,
        kind: &str,
        channel: Option<ChannelId>,
        sender: &Handle,
        ids: Vec<String>,
        detail: String,
    ) -> AlertRecord {
        AlertRecord::new(
            kind,
            channel.map(|c| c.to_hex()).unwrap_or_default(),
            sender.to_string(),
            ids,
            detail,
            self.now().0,
        )
    }

    /// Handles one delivery; returns 1 if it opened an inbound session.
    async fn receive(
        &mut self,
        d: Delivery,
        report: &mut SyncReport,
        to_receipt: &mut BTreeSet<ChannelId>,
    ) -> Result<usize, ClientError> {
        let cursor = d.cursor;
        let mut out = Outcome::default();
        let env = match Envelope::try_from(&d.envelope) {
            Ok(e) => e,
            Err(e) => {
                let who =
                    Handle::new(d.envelope.sender.as_str()).unwrap_or_else(|_| self.me.clone());
                out.alerts.push(self.alert_for(
                    "forged",
                    None,
                    &who,
                    vec![d.envelope.message_id.clone()],
                    format!("an envelope that does not decode: {e}"),
                ));
                return self.commit_outcome(cursor, out, None, report).map(|_| 0);
            }
        };
        let hash = Digest::of(&[&env.encode()]).0;
        let ct_digest = Digest::of(&[&env.ciphertext]).0;
        let id = env.message_id.to_hex();
        if let Some(seen) = self.vault.processed(&env.message_id)? {
            if seen != hash {
                out.alerts.push(self.alert_for("replay", Some(env.channel_id), &env.sender, vec![id], "a message id already processed came again with different bytes; the new copy was not shown".into()));
            }
            // An identical redelivery is dropped silently: Olm would refuse
            // its message key a second time anyway.
            return self.commit_outcome(cursor, out, None, report).map(|_| 0);
        }
        out.processed = Some((env.message_id, hash));
        out.ciphertext = Some(ct_digest);
        if self.vault.seen_ciphertext(&ct_digest)? {
            out.alerts.push(
                self.alert_for(
                    "replay",
                    Some(env.channel_id),
                    &env.sender,
                    vec![id],
                    "a ciphertext already processed came again under another message id or channel"
                        .into(),
                ),
            );
            return self.commit_outcome(cursor, out, None, report).map(|_| 0);
        }
        if env.recipient != self.me {
            out.alerts.push(self.alert_for(
                "forged",
                Some(env.channel_id),
                &env.sender,
                vec![id],
                format!(
                    "a copy addressed to {} was put in this mailbox",
                    env.recipient
                ),
            ));
            return self.commit_outcome(cursor, out, None, report).map(|_| 0);
        }
        if env.olm_type == OlmType::PreKey && !self.peers.contains_key(&env.sender) {
            // First contact from someone no channel introduced: trust on
            // first use, to be checked with `backchannel fingerprint`.
            if let Err(e) = self.pin_from_relay(&env.sender).await {
                let kind = if e.code() == "bad_key" {
                    "bad_key"
                } else {
                    "forged"
                };
                out.alerts.push(self.alert_for(
                    kind,
                    Some(env.channel_id),
                    &env.sender,
                    vec![id],
                    format!("no usable identity key to open a session with: {e}"),
                ));
                return self.commit_outcome(cursor, out, None, report).map(|_| 0);
            }
        }
        let (plaintext, inbound) = match self.decrypt(&env) {
            Ok(x) => x,
            Err(e) => {
                self.classify_failure(&env, &e.to_string(), &mut out);
                return self.commit_outcome(cursor, out, None, report).map(|_| 0);
            }
        };
        let payload = match Payload::from_plaintext(&plaintext) {
            Ok(p) => p,
            Err(e) => {
                self.classify_failure(
                    &env,
                    &format!("decrypted bytes are not a payload: {e}"),
                    &mut out,
                );
                return self
                    .commit_outcome(cursor, out, Some(&env.sender), report)
                    .map(|_| inbound);
            }
        };
        let h = payload.header().clone();
        if h.channel_id != env.channel_id
            || h.message_id != env.message_id
            || h.sender != env.sender
        {
            out.alerts.push(self.alert_for(
                "replay",
                Some(env.channel_id),
                &env.sender,
                vec![id, h.message_id.to_hex()],
                format!(
                    "a payload of channel {} message {} arrived under another envelope (moved)",
                    h.channel_id, h.message_id
                ),
            ));
            return self
                .commit_outcome(cursor, out, Some(&env.sender), report)
                .map(|_| inbound);
        }

        let digest = payload.digest();
        let me = self.me.clone();
        let mut state = self
            .channels
            .get(&h.channel_id)
            .cloned()
            .unwrap_or_else(|| ChannelState::new(h.channel_id, me));
        let placement = match state.handle_payload(&payload, digest) {
            Ok(events) => Placement::Applied(events),
            Err(ChannelError::NotYetOpen(_)) => Placement::Held,
            Err(e) => {
                let kind = match &e {
                    ChannelError::Chain(ChainError::Duplicate { .. }) => "replay",
                    ChannelError::Chain(
                        ChainError::Prev { .. } | ChainError::Equivocation { .. },
                    ) => "fork",
                    ChannelError::NotAMember(_)
                    | ChannelError::Proposal(_)
                    | ChannelError::Response(_) => "membership_mismatch",
                    _ => "forged",
                };
                out.alerts.push(self.alert_for(
                    kind,
                    Some(h.channel_id),
                    &h.sender,
                    vec![h.message_id.to_hex()],
                    e.to_string(),
                ));
                Placement::Rejected
            }
        };
        if let Placement::Applied(events) = &placement {
            self.judge_events(&state, &h.sender, h.seq.0, events, &mut out, report)?;
            self.crossed(&state, &payload, &mut out);
        }
        // Close failures this genuine message accounts for.
        if !matches!(placement, Placement::Rejected) {
            for f in self.vault.failures()? {
                if f.channel_id == h.channel_id
                    && f.sender == h.sender
                    && f.seq_hint == h.seq.0
                    && !out.resolved_failures.contains(&f.message_id)
                {
                    out.alerts.push(self.alert_for(
                        "forged",
                        Some(f.channel_id),
                        &f.sender,
                        vec![f.message_id.to_hex()],
                        format!("a ciphertext claiming to be {} #{} failed to decrypt, and the genuine #{} arrived", f.sender, f.seq_hint, f.seq_hint),
                    ));
                    out.resolved_failures.push(f.message_id);
                }
            }
        }

        let now_ms = self.now().0;
        let next = self.next_applied;
        let mut tx = self.vault.tx()?;
        if inbound > 0 {
            tx.put_account(&self.identity)?;
        }
        if let Some(s) = self.sessions.get(&env.sender).and_then(|s| s.first()) {
            tx.put_session(&env.sender, s, now_ms)?;
        }
        let staged: Option<Msg> = match placement {
            Placement::Rejected => None,
            Placement::Held => Some(Self::stage_message(
                &mut tx,
                &payload,
                digest,
                Direction::In,
                None,
                now_ms,
            )?),
            Placement::Applied(_) => Some(Self::stage_message(
                &mut tx,
                &payload,
                digest,
                Direction::In,
                Some(next),
                now_ms,
            )?),
        };
        let alerts = Self::stage_outcome(&mut tx, cursor, &mut out)?;
        tx.commit()?;
        self.finish_outcome(alerts, report);
        if let Some(msg) = staged {
            let applied = msg.applied.is_some();
            if applied {
                self.channels.insert(h.channel_id, state);
                report.received.push(msg.entry());
                if h.body_kind != BodyKind::Receipt {
                    to_receipt.insert(h.channel_id);
                }
            }
            self.commit_message(msg);
            if applied {
                self.apply_held(h.channel_id, report, to_receipt)?;
            }
        }
        Ok(inbound)
    }

    /// Turns channel events into alerts: gaps (or `modified`, where a failed
    /// ciphertext sat at the missing position), reorders, forks.
    fn judge_events(
        &mut self,
        state: &ChannelState,
        sender: &Handle,
        _seq: u64,
        events: &[ChannelEvent],
        out: &mut Outcome,
        report: &mut SyncReport,
    ) -> Result<(), ClientError> {
        let channel = state.id();
        for event in events {
            match event {
                ChannelEvent::Proposed { by } => self.introduce(state, by, &mut out.alerts)?,
                ChannelEvent::Activated(_) => report.activated.push(channel.to_hex()),
                ChannelEvent::Gap {
                    sender: s,
                    epoch,
                    missing,
                    message_id,
                } => {
                    let failures = self.vault.failures()?;
                    let mut unexplained = Vec::new();
                    for pos in missing {
                        match failures.iter().find(|f| {
                            f.channel_id == channel && &f.sender == s && f.seq_hint == pos.0
                        }) {
                            Some(f) => {
                                out.alerts.push(self.alert_for(
                                    "modified",
                                    Some(channel),
                                    s,
                                    vec![f.message_id.to_hex(), message_id.to_hex()],
                                    format!("{s}'s message #{} failed to decrypt; its next message confirms a message existed there: it was altered in transit", pos.0),
                                ));
                                out.resolved_failures.push(f.message_id);
                            }
                            None => unexplained.push(pos.0),
                        }
                    }
                    if !unexplained.is_empty() {
                        let mut a = self.alert_for(
                            "gap",
                            Some(channel),
                            s,
                            vec![message_id.to_hex()],
                            format!(
                                "{s}'s message {} arrived, but not {}: withheld, dropped or late",
                                message_id,
                                describe_positions(&unexplained)
                            ),
                        );
                        a.positions = unexplained;
                        a.epoch = *epoch;
                        out.alerts.push(a);
                    }
                }
                ChannelEvent::Reorder {
                    sender: s,
                    epoch,
                    seq,
                    message_id,
                } => {
                    let mut a = self.alert_for(
                        "reorder",
                        Some(channel),
                        s,
                        vec![message_id.to_hex()],
                        format!("{s}'s message #{} arrived after later ones (the gap reported for it is closed)", seq.0),
                    );
                    a.positions = vec![seq.0];
                    a.epoch = *epoch;
                    out.alerts.push(a);
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
                    let detail = if held_from == member {
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
                    out.alerts.push(self.alert_for(
                        "fork",
                        Some(channel),
                        member,
                        Vec::new(),
                        detail,
                    ));
                }
                ChannelEvent::Message { .. } | ChannelEvent::Responded { .. } => {}
            }
        }
        let _ = sender;
        Ok(())
    }

    /// A reply written before its author saw later messages of the one it
    /// answers: a notice, since honest delays do the same.
    fn crossed(&self, state: &ChannelState, payload: &Payload, out: &mut Outcome) {
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
        let later: Vec<String> = self
            .msgs
            .iter()
            .map(|m| m.payload.header())
            .filter(|m| {
                m.channel_id == state.id()
                    && m.epoch == h.epoch
                    && m.sender == qh.sender
                    && m.seq.0 > seen
                    && m.seq > qh.seq
                    && m.body_kind.is_content()
            })
            .map(|m| m.message_id.to_hex())
            .collect();
        if !later.is_empty() {
            let mut ids = vec![h.message_id.to_hex()];
            ids.extend(later.iter().cloned());
            out.alerts.push(self.alert_for(
                "crossed_messages",
                Some(state.id()),
                &h.sender,
                ids,
                format!(
                    "{}'s reply to {} was written before it saw {}'s later message(s) {}",
                    h.sender,
                    q,
                    qh.sender,
                    later.join(", ")
                ),
            ));
        }
    }

    /// Classifies a ciphertext that did not decrypt, by the position its
    /// (unauthenticated) hint names.
    fn classify_failure(&self, env: &Envelope, why: &str, out: &mut Outcome) {
        let id = env.message_id.to_hex();
        let state = self.channels.get(&env.channel_id);
        if state.is_some_and(|s| s.is_gap(&env.sender, env.seq_hint)) {
            out.alerts.push(self.alert_for(
                "late_undecryptable",
                Some(env.channel_id),
                &env.sender,
                vec![id],
                format!(
                    "{}'s message #{}, reported missing, arrived too late to decrypt ({why})",
                    env.sender, env.seq_hint
                ),
            ));
        } else if state.is_some_and(|s| s.holds(&env.sender, env.seq_hint)) {
            out.alerts.push(self.alert_for(
                "forged",
                Some(env.channel_id),
                &env.sender,
                vec![id],
                format!("a ciphertext claiming to be {}'s #{} does not decrypt, and the genuine #{} is already here ({why})", env.sender, env.seq_hint, env.seq_hint),
            ));
        } else {
            // Decided later: a genuine message of the sender will show
            // whether a message existed at this position.
            out.failure = Some(Failure {
                message_id: env.message_id,
                channel_id: env.channel_id,
                sender: env.sender.clone(),
                seq_hint: env.seq_hint,
                learned_at: self.now().0,
            });
        }
    }

    fn stage_outcome(
        tx: &mut crate::vault::Tx<'_>,
        cursor: u64,
        out: &mut Outcome,
    ) -> Result<Vec<(i64, AlertRecord)>, ClientError> {
        if let Some((id, hash)) = &out.processed {
            tx.put_processed(id, hash)?;
        }
        if let Some(d) = &out.ciphertext {
            tx.put_ciphertext(d)?;
        }
        if let Some(f) = &out.failure {
            tx.put_failure(f)?;
        }
        for id in &out.resolved_failures {
            tx.delete_failure(id)?;
        }
        tx.set_cursor(cursor)?;
        Self::stage_alerts(tx, std::mem::take(&mut out.alerts))
    }

    fn finish_outcome(&mut self, alerts: Vec<(i64, AlertRecord)>, report: &mut SyncReport) {
        report.alerts.extend(alerts.iter().map(|(_, a)| a.clone()));
        self.commit_alerts(alerts);
    }

    /// Commits a delivery that was not stored as a message.
    fn commit_outcome(
        &mut self,
        cursor: u64,
        mut out: Outcome,
        session_of: Option<&Handle>,
        report: &mut SyncReport,
    ) -> Result<(), ClientError> {
        let now_ms = self.now().0;
        let mut tx = self.vault.tx()?;
        if let Some(peer) = session_of {
            if let Some(s) = self.sessions.get(peer).and_then(|s| s.first()) {
                tx.put_session(peer, s, now_ms)?;
            }
        }
        let alerts = Self::stage_outcome(&mut tx, cursor, &mut out)?;
        tx.commit()?;
        self.finish_outcome(alerts, report);
        Ok(())
    }

    /// Gap alerts whose positions have all arrived are cleared.
    fn clear_filled_gaps(&mut self, report: &mut SyncReport) {
        let mut updates = Vec::new();
        for (id, dismissed, a) in &self.alert_list {
            if a.kind != "gap" || a.cleared.is_some() {
                continue;
            }
            let Ok(channel) = ChannelId::from_hex(&a.channel_id) else {
                continue;
            };
            let Ok(sender) = Handle::new(a.sender.as_str()) else {
                continue;
            };
            let Some(state) = self.channels.get(&channel) else {
                continue;
            };
            let filled = a.positions.iter().all(|p| {
                state
                    .sender_log(backchannel_protocol::EpochNumber(a.epoch), &sender)
                    .is_some_and(|l| l.digest_at(*p).is_some())
            });
            if filled {
                let mut cleared = a.clone();
                cleared.cleared = Some("every missing message arrived late (see `reorder`)".into());
                updates.push((*id, *dismissed, cleared));
            }
        }
        if updates.is_empty() {
            return;
        }
        let Ok(mut tx) = self.vault.tx() else { return };
        for (id, dismissed, a) in &updates {
            if tx.update_alert(*id, a, *dismissed).is_err() {
                return;
            }
        }
        if tx.commit().is_err() {
            return;
        }
        for (id, dismissed, a) in updates {
            report.cleared.push(a.clone());
            if let Some(slot) = self.alert_list.iter_mut().find(|(i, _, _)| *i == id) {
                *slot = (id, dismissed, a);
            }
        }
    }

    /// After reading the mailbox to the end: failures at positions that a
    /// genuine message now holds were forged.
    fn settle_failures(&mut self, report: &mut SyncReport) -> Result<(), ClientError> {
        let mut alerts = Vec::new();
        let mut resolved = Vec::new();
        for f in self.vault.failures()? {
            if self
                .channels
                .get(&f.channel_id)
                .is_some_and(|s| s.holds(&f.sender, f.seq_hint))
            {
                alerts.push(self.alert_for(
                    "forged",
                    Some(f.channel_id),
                    &f.sender,
                    vec![f.message_id.to_hex()],
                    format!("a ciphertext claiming to be {}'s #{} does not decrypt, and the genuine #{} is here", f.sender, f.seq_hint, f.seq_hint),
                ));
                resolved.push(f.message_id);
            }
        }
        if alerts.is_empty() {
            return Ok(());
        }
        let mut tx = self.vault.tx()?;
        for id in &resolved {
            tx.delete_failure(id)?;
        }
        let staged = Self::stage_alerts(&mut tx, alerts)?;
        tx.commit()?;
        report.alerts.extend(staged.iter().map(|(_, a)| a.clone()));
        self.commit_alerts(staged);
        Ok(())
    }

    /// Tries every session with the sender, then (for a pre-key message) a
    /// new inbound session. Returns the plaintext and 1 if a session was opened.
    fn decrypt(&mut self, env: &Envelope) -> Result<(Vec<u8>, usize), ClientError> {
        if let Some(list) = self.sessions.get_mut(&env.sender) {
            for i in 0..list.len() {
                if let Ok(plaintext) = list[i].decrypt(env.olm_type, &env.ciphertext) {
                    let s = list.remove(i);
                    list.insert(0, s);
                    return Ok((plaintext, 0));
                }
            }
        }
        if env.olm_type != OlmType::PreKey {
            return Err(ClientError::Input(
                "no session with the sender decrypts it".into(),
            ));
        }
        let keys: IdentityKeys = match self.peers.get(&env.sender) {
            Some(p) => peer_keys(p)?,
            None => return Err(ClientError::Input("no pinned identity key".into())),
        };
        let (session, plaintext) =
            self.identity
                .inbound_session(&keys, env.olm_type, &env.ciphertext)?;
        self.sessions
            .entry(env.sender.clone())
            .or_default()
            .insert(0, session);
        Ok((plaintext, 1))
    }

    /// Pins the keys a creation proposal introduces, and checks that it
    /// introduces this member with its own keys.
    fn introduce(
        &mut self,
        state: &ChannelState,
        proposer: &Handle,
        alerts: &mut Vec<AlertRecord>,
    ) -> Result<(), ClientError> {
        let mine = self.keys();
        // The proposal just made: a pending amendment, else the creation.
        let members = state
            .pending()
            .map_or(state.members(), |p| p.proposal.members.as_slice());
        for m in members {
            let keys = IdentityKeys {
                curve25519: m.curve25519,
                ed25519: m.ed25519,
            };
            if m.handle == self.me {
                if keys != mine {
                    alerts.push(self.alert_for(
                        "key_changed",
                        Some(state.id()),
                        proposer,
                        Vec::new(),
                        format!("{proposer} introduced you to the channel with keys that are not yours: others would encrypt to someone else"),
                    ));
                }
                continue;
            }
            let trust = crate::vault::records::Trust::Introduced {
                by: proposer.to_string(),
            };
            match self.pin(&m.handle, keys, trust) {
                Ok(()) | Err(ClientError::KeyChanged(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Applies held-back payloads of `channel` that now fit, until none does.
    fn apply_held(
        &mut self,
        channel: ChannelId,
        report: &mut SyncReport,
        to_receipt: &mut BTreeSet<ChannelId>,
    ) -> Result<(), ClientError> {
        loop {
            let mut progress = false;
            for i in 0..self.msgs.len() {
                if self.msgs[i].channel != channel || self.msgs[i].applied.is_some() {
                    continue;
                }
                let Some(state) = self.channels.get(&channel) else {
                    return Ok(());
                };
                let mut next = state.clone();
                let (payload, digest) = (self.msgs[i].payload.clone(), self.msgs[i].digest);
                let Ok(events) = next.handle_payload(&payload, digest) else {
                    continue;
                };
                let mut out = Outcome::default();
                let h = payload.header();
                self.judge_events(&next, &h.sender, h.seq.0, &events, &mut out, report)?;
                let order = self.next_applied;
                let mut tx = self.vault.tx()?;
                tx.set_applied(self.msgs[i].row, order)?;
                let staged = Self::stage_alerts(&mut tx, std::mem::take(&mut out.alerts))?;
                tx.commit()?;
                self.finish_outcome(staged, report);
                self.next_applied += 1;
                self.msgs[i].applied = Some(order);
                self.channels.insert(channel, next);
                if h.body_kind != BodyKind::Receipt {
                    to_receipt.insert(channel);
                }
                report.received.push(self.msgs[i].entry());
                progress = true;
            }
            if !progress {
                return Ok(());
            }
        }
    }
}

/// `#3`, `#3 and #4`, `#3 to #7`.
fn describe_positions(p: &[u64]) -> String {
    match p {
        [one] => format!("#{one}"),
        [a, b] => format!("#{a} and #{b}"),
        [first, .., last] if (last - first) as usize + 1 == p.len() => {
            format!("#{first} to #{last}")
        }
        _ => p
            .iter()
            .map(|x| format!("#{x}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
