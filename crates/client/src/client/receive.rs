//! Receiving: read the one mailbox in order, drop identical redeliveries
//! before decrypting, try every session with the sender, verify each payload
//! against its channel (epoch, sequence number, previous digest), and commit
//! the advanced session with the message in one transaction.

use std::collections::BTreeSet;

use backchannel_protocol::api::Delivery;
use backchannel_protocol::channel::{ChannelError, ChannelEvent, ChannelState, ChannelStatus};
use backchannel_protocol::payload::{Body, BodyKind, Payload};
use backchannel_protocol::transcript::ChainError;
use backchannel_protocol::{b64, ChannelId, Digest, Envelope, Handle, IdentityKeys, OlmType};
use serde::{Deserialize, Serialize};

use super::{crash_point, entry_of, now, peer_keys, Client, LogEntry};
use crate::error::ClientError;
use crate::vault::records::{AlertRecord, Direction, MessageRecord, Trust};

/// Mailbox page size when syncing.
pub const SYNC_PAGE: usize = 100;

/// What a sync did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// Payloads from others folded into their channels, in order.
    pub received: Vec<LogEntry>,
    /// Alerts raised.
    pub alerts: Vec<AlertRecord>,
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

impl Client {
    /// Sends what the outbox holds, reads the mailbox to the end, acks it,
    /// and sends a receipt in every channel where something other than a
    /// receipt arrived.
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
            for d in page.deliveries {
                cursor = d.cursor;
                inbound_sessions += self.receive(d, &mut report, &mut to_receipt).await?;
            }
            if !page.more {
                break;
            }
        }
        report.cursor = cursor;
        if cursor > start {
            // Routing housekeeping only: the relay deletes what was stored here.
            self.relay.ack(cursor).await?;
        }
        for channel in to_receipt {
            if self.channel_state(&channel)?.status() == ChannelStatus::Active {
                self.send_receipt(channel).await?;
                report.receipts_sent += 1;
            }
        }
        if inbound_sessions > 0 {
            self.replenish_keys(inbound_sessions).await?;
        }
        Ok(report)
    }

    fn alert(
        kind: &str,
        channel: Option<ChannelId>,
        sender: &Handle,
        ids: Vec<String>,
        detail: String,
    ) -> AlertRecord {
        AlertRecord {
            kind: kind.into(),
            channel_id: channel.map(|c| c.to_hex()).unwrap_or_default(),
            sender: sender.to_string(),
            message_ids: ids,
            detail,
            raised_at_ms: now().0,
        }
    }

    /// Handles one delivery; returns 1 if it opened an inbound session.
    async fn receive(
        &mut self,
        d: Delivery,
        report: &mut SyncReport,
        to_receipt: &mut BTreeSet<ChannelId>,
    ) -> Result<usize, ClientError> {
        let cursor = d.cursor;
        let env = match Envelope::try_from(&d.envelope) {
            Ok(e) => e,
            Err(e) => {
                let who =
                    Handle::new(d.envelope.sender.as_str()).unwrap_or_else(|_| self.me.clone());
                let alert = Self::alert(
                    "forged",
                    None,
                    &who,
                    vec![d.envelope.message_id.clone()],
                    format!("an envelope that does not decode: {e}"),
                );
                return self.commit_failure(cursor, None, alert, report).map(|_| 0);
            }
        };
        let hash = Digest::of(&[&env.encode()]).0;
        if let Some(seen) = self.vault.processed(&env.message_id)? {
            if seen == hash {
                // An identical redelivery: dropped silently (Olm would refuse
                // the message key a second time anyway).
                let mut tx = self.vault.tx()?;
                tx.set_cursor(cursor)?;
                tx.commit()?;
                return Ok(0);
            }
            let alert = Self::alert(
                "replay",
                Some(env.channel_id),
                &env.sender,
                vec![env.message_id.to_hex()],
                "a message id already processed came again with different bytes".into(),
            );
            return self.commit_failure(cursor, None, alert, report).map(|_| 0);
        }
        if env.recipient != self.me {
            let alert = Self::alert(
                "forged",
                Some(env.channel_id),
                &env.sender,
                vec![env.message_id.to_hex()],
                format!(
                    "a copy addressed to {} was put in this mailbox",
                    env.recipient
                ),
            );
            return self
                .commit_failure(cursor, Some(hash), alert, report)
                .map(|_| 0);
        }
        if env.olm_type == OlmType::PreKey && !self.peers.contains_key(&env.sender) {
            // First contact from someone no channel introduced: trust on
            // first use, to be checked with `backchannel fingerprint`.
            if let Err(e) = self.pin_from_relay(&env.sender).await {
                let alert = Self::alert(
                    "forged",
                    Some(env.channel_id),
                    &env.sender,
                    vec![env.message_id.to_hex()],
                    format!("no identity key to open a session with: {e}"),
                );
                return self
                    .commit_failure(cursor, Some(hash), alert, report)
                    .map(|_| 0);
            }
        }
        let (plaintext, inbound) = match self.decrypt(&env) {
            Ok(x) => x,
            Err(e) => {
                let alert = Self::alert(
                    "forged",
                    Some(env.channel_id),
                    &env.sender,
                    vec![env.message_id.to_hex()],
                    format!(
                        "a ciphertext that no session with {} decrypts: {e}",
                        env.sender
                    ),
                );
                return self
                    .commit_failure(cursor, Some(hash), alert, report)
                    .map(|_| 0);
            }
        };
        let payload = match Payload::from_plaintext(&plaintext) {
            Ok(p) => p,
            Err(e) => {
                let alert = Self::alert(
                    "forged",
                    Some(env.channel_id),
                    &env.sender,
                    vec![env.message_id.to_hex()],
                    format!("decrypted bytes are not a payload: {e}"),
                );
                return self
                    .commit_failure(cursor, Some(hash), alert, report)
                    .map(|_| inbound);
            }
        };
        let h = payload.header().clone();
        if h.channel_id != env.channel_id
            || h.message_id != env.message_id
            || h.sender != env.sender
        {
            let alert = Self::alert(
                "replay",
                Some(env.channel_id),
                &env.sender,
                vec![env.message_id.to_hex(), h.message_id.to_hex()],
                format!(
                    "a payload of channel {} message {} arrived under another envelope (moved)",
                    h.channel_id, h.message_id
                ),
            );
            return self
                .commit_failure(cursor, Some(hash), alert, report)
                .map(|_| inbound);
        }

        let digest = payload.digest();
        let me = self.me.clone();
        let mut state = self
            .channels
            .get(&h.channel_id)
            .cloned()
            .unwrap_or_else(|| ChannelState::new(h.channel_id, me));
        let mut alerts = Vec::new();
        let placement = match state.handle_payload(&payload, digest) {
            Ok(events) => Placement::Applied(events),
            Err(ChannelError::NotYetOpen(_)) => Placement::Held,
            Err(ChannelError::Chain(ChainError::Seq { expected, found })) if found > expected => {
                alerts.push(Self::alert(
                    "gap",
                    Some(h.channel_id),
                    &h.sender,
                    vec![h.message_id.to_hex()],
                    format!(
                        "{} skipped positions {}..{} of its chain in epoch {}: the relay withheld them or they are late",
                        h.sender,
                        expected.0,
                        found.0 - 1,
                        h.epoch.number.0
                    ),
                ));
                Placement::Held
            }
            Err(e) => {
                let kind = match &e {
                    ChannelError::Chain(ChainError::Seq { .. }) => "replay",
                    ChannelError::Chain(ChainError::Prev { .. }) => "fork",
                    ChannelError::NotAMember(_)
                    | ChannelError::Proposal(_)
                    | ChannelError::Response(_) => "membership_mismatch",
                    _ => "forged",
                };
                alerts.push(Self::alert(
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
            for event in events {
                match event {
                    ChannelEvent::Proposed { by } => self.introduce(&state, by, &mut alerts)?,
                    ChannelEvent::Activated(_) => report.activated.push(h.channel_id.to_hex()),
                    _ => {}
                }
            }
        }

        let record = MessageRecord {
            payload: b64::encode(payload.encode()),
            digest: digest.to_hex(),
            direction: Direction::In,
            stored_at_ms: now().0,
        };
        let mut tx = self.vault.tx()?;
        if inbound > 0 {
            tx.put_account(&self.identity)?;
        }
        if let Some(s) = self.sessions.get(&env.sender).and_then(|s| s.first()) {
            tx.put_session(&env.sender, s, now().0)?;
        }
        if !matches!(placement, Placement::Rejected) {
            let row = tx.put_message(&h.channel_id, &h.message_id, &h.sender, &record)?;
            if matches!(placement, Placement::Applied(_)) {
                tx.mark_applied(row)?;
            }
        }
        tx.put_processed(&env.message_id, &hash)?;
        for a in &alerts {
            tx.put_alert(a)?;
        }
        tx.set_cursor(cursor)?;
        tx.commit()?;
        report.alerts.extend(alerts);

        if let Placement::Applied(_) = placement {
            self.channels.insert(h.channel_id, state);
            report
                .received
                .push(entry_of(&payload, &record.digest, Direction::In, false));
            if h.body_kind != BodyKind::Receipt {
                to_receipt.insert(h.channel_id);
            }
            self.apply_held(h.channel_id, report, to_receipt)?;
        }
        Ok(inbound)
    }

    /// Records a delivery that could not be processed, with its alert.
    fn commit_failure(
        &mut self,
        cursor: u64,
        hash: Option<[u8; 32]>,
        alert: AlertRecord,
        report: &mut SyncReport,
    ) -> Result<(), ClientError> {
        let mut tx = self.vault.tx()?;
        if let (Some(hash), Ok(id)) = (
            hash,
            backchannel_protocol::MessageId::from_hex(
                alert.message_ids.first().map_or("", String::as_str),
            ),
        ) {
            tx.put_processed(&id, &hash)?;
        }
        tx.put_alert(&alert)?;
        tx.set_cursor(cursor)?;
        tx.commit()?;
        report.alerts.push(alert);
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
            return Err(ClientError::Input("no session decrypts it".into()));
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
        for m in state.members() {
            let keys = IdentityKeys {
                curve25519: m.curve25519,
                ed25519: m.ed25519,
            };
            if m.handle == self.me {
                if keys != mine {
                    alerts.push(Self::alert(
                        "key_changed",
                        Some(state.id()),
                        proposer,
                        Vec::new(),
                        format!("{proposer} introduced you to the channel with keys that are not yours: others would encrypt to someone else"),
                    ));
                }
                continue;
            }
            let trust = Trust::Introduced {
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
            let held: Vec<_> = self
                .vault
                .messages()?
                .into_iter()
                .filter(|m| m.channel_id == channel && m.applied.is_none())
                .collect();
            let mut progress = false;
            for m in held {
                let payload = Payload::decode(&b64::decode(&m.record.payload, "payload")?)?;
                let digest = Digest::from_hex(&m.record.digest)?;
                let Some(state) = self.channels.get_mut(&channel) else {
                    return Ok(());
                };
                let mut next = state.clone();
                if let Ok(events) = next.handle_payload(&payload, digest) {
                    let mut tx = self.vault.tx()?;
                    tx.mark_applied(m.row)?;
                    tx.commit()?;
                    *state = next;
                    if events
                        .iter()
                        .any(|e| matches!(e, ChannelEvent::Activated(_)))
                    {
                        report.activated.push(channel.to_hex());
                    }
                    if !matches!(
                        payload,
                        Payload::Full {
                            body: Body::Receipt,
                            ..
                        }
                    ) {
                        to_receipt.insert(channel);
                    }
                    report.received.push(entry_of(
                        &payload,
                        &m.record.digest,
                        m.record.direction,
                        false,
                    ));
                    progress = true;
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }
}
