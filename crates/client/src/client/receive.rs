//! The sync driver: fetch a page of the mailbox, feed each delivery to the
//! member machine, persist its changes atomically, post what it queued,
//! ack, then let it judge deadlines and the relay's routing record.

use std::collections::BTreeMap;

use backchannel_protocol::channel::ChannelStatus;
use backchannel_protocol::member::{Alert, Direction, OwnRecord};
use backchannel_protocol::{ChannelId, Handle, IdentityKeys};
use serde::{Deserialize, Serialize};

use super::{crash_point, entry_of, Client, LogEntry};
use crate::error::ClientError;

/// Mailbox page size when syncing.
pub const SYNC_PAGE: usize = 100;

/// What a sync did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// Payloads from others folded into their channels, in order.
    pub received: Vec<LogEntry>,
    /// Alerts and notices raised.
    pub alerts: Vec<Alert>,
    /// Alerts cleared (a late receipt, a gap filled).
    pub cleared: Vec<Alert>,
    /// Channels that became active.
    pub activated: Vec<String>,
    /// Receipts sent afterwards.
    pub receipts_sent: usize,
    /// Posts from the outbox sent first.
    pub outbox_sent: usize,
    /// Messages the outbox held that will never be sent (a stale store).
    #[serde(default)]
    pub not_sent: Vec<String>,
    /// The mailbox cursor reached.
    pub cursor: u64,
}

impl Client {
    /// Checks the relay's record of this member against the store (once
    /// per open, before anything queued is posted): a store restored from
    /// an older copy raises `stale_store` and posts nothing.
    pub async fn check_own_record(&mut self) -> Result<Vec<String>, ClientError> {
        if self.member.own_checked() {
            return Ok(Vec::new());
        }
        self.connect().await?;
        let me = self.relay.me().await?;
        let record = OwnRecord {
            acked_through: me.acked_through,
            last_posts: me
                .last_posts
                .iter()
                .filter_map(|p| {
                    Some((
                        ChannelId::from_hex(&p.channel_id).ok()?,
                        backchannel_protocol::MessageId::from_hex(&p.message_id).ok()?,
                        backchannel_protocol::Seq(p.seq_hint),
                    ))
                })
                .collect(),
        };
        let queued = |m: &backchannel_protocol::member::Member| -> Vec<String> {
            m.outbox()
                .filter_map(|t| t.envelopes.first().map(|e| e.message_id.to_hex()))
                .collect()
        };
        let before = queued(&self.member);
        let now = self.now();
        self.member.handle_own_record(now, &record);
        self.persist()?;
        if self.vault.restored_unchecked()? {
            // Restored from a backup: the relay forgets the one-time keys
            // published after it (this store lacks them), then the record
            // counts as confirmed.
            self.replace_keys(super::ONE_TIME_KEYS_TARGET).await?;
            self.vault.set_restored_unchecked(false)?;
        }
        // What the check dropped from the outbox will never be sent.
        let kept = queued(&self.member);
        Ok(before.into_iter().filter(|id| !kept.contains(id)).collect())
    }

    fn statuses(&self) -> BTreeMap<ChannelId, ChannelStatus> {
        self.member
            .channels()
            .iter()
            .map(|(id, s)| (*id, s.status()))
            .collect()
    }

    /// Persists what the machine changed and adds it to `report`.
    pub(crate) fn collect(&mut self, report: &mut SyncReport) -> Result<(), ClientError> {
        let changes = self.persist_changes()?;
        for m in &changes.messages {
            if m.direction == Direction::In && m.applied.is_some() {
                report.received.push(entry_of(m));
            }
        }
        report.cleared.extend(
            changes
                .alerts
                .iter()
                .filter(|a| a.cleared.is_some() && !a.dismissed)
                .cloned(),
        );
        while let Some(a) = self.member.poll_alert() {
            report.alerts.push(a);
        }
        Ok(())
    }

    /// Sends what the outbox holds, reads the mailbox to the end, acks it,
    /// checks receipt deadlines and the relay's routing record, and sends a
    /// receipt in every channel where something other than a receipt arrived.
    pub async fn sync(&mut self) -> Result<SyncReport, ClientError> {
        self.connect().await?;
        let before = self.statuses();
        let mut report = SyncReport {
            not_sent: self.check_own_record().await?,
            ..SyncReport::default()
        };
        self.collect(&mut report)?;
        report.outbox_sent = self.flush_outbox().await?;
        let start = self.member.cursor();
        let mut cursor = start;
        let mut stock = None;
        loop {
            let page = self.relay.mailbox(cursor, SYNC_PAGE).await?;
            stock = page.key_stock.or(stock);
            crash_point("after_fetch");
            for d in page.deliveries {
                cursor = cursor.max(d.cursor);
                if let Some(peer) = self.member.keys_needed(&d.envelope) {
                    // First contact from someone no channel introduced:
                    // trust on first use, to be checked with `fingerprint`.
                    // What came before is reported first (storing the keys
                    // commits it).
                    self.collect(&mut report)?;
                    self.fetch_keys(&peer).await?;
                }
                let now = self.now();
                self.member.handle_delivery(now, d.cursor, &d.envelope);
            }
            // One transaction a page, not one a delivery: a crash before it
            // commits loses only work the next sync redoes (the cursor and
            // the sessions are committed together, and nothing was acked).
            self.collect(&mut report)?;
            if !page.more {
                break;
            }
        }
        report.cursor = self.member.cursor();
        if report.cursor > start {
            // Routing housekeeping only: the relay deletes what was stored here.
            self.relay.ack(report.cursor).await?;
        }
        // The mailbox was read to the end: deadlines may now be judged.
        let now = self.now();
        self.member.handle_caught_up(now);
        self.check_routing().await?;
        self.judge_confirmations()?;
        self.collect(&mut report)?;
        for channel in self.member.receipts_due() {
            self.send_receipt(channel).await?;
            report.receipts_sent += 1;
        }
        let inbound = self.member.take_inbound_sessions();
        self.tend_keys(stock, inbound).await?;
        let after = self.statuses();
        report.activated = after
            .iter()
            .filter(|(id, s)| **s == ChannelStatus::Active && before.get(id) != Some(s))
            .map(|(id, _)| id.to_hex())
            .collect();
        Ok(report)
    }

    /// Keys of `peer` as the relay serves them, handed to the machine
    /// (which checks them and raises `bad_key` or `rollback` itself).
    async fn fetch_keys(&mut self, peer: &Handle) -> Result<(), ClientError> {
        let p = match self.relay.principal(peer).await {
            Ok(p) => p,
            Err(e) if e.api_code().is_some() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let keys = match (
            backchannel_protocol::api::fixed(&p.curve25519, "curve25519"),
            backchannel_protocol::api::fixed(&p.ed25519, "ed25519"),
        ) {
            (Ok(curve25519), Ok(ed25519)) => IdentityKeys {
                curve25519,
                ed25519,
            },
            _ => return Ok(()),
        };
        let now = self.now();
        // A refused key is an alert inside the machine; the delivery that
        // needed it is then classified as it stands.
        let _ = self
            .member
            .handle_served_keys(now, peer, keys, p.key_version);
        self.persist()?;
        Ok(())
    }

    /// Hands each channel's routing record on the relay to the machine.
    async fn check_routing(&mut self) -> Result<(), ClientError> {
        for id in self.member.routing_to_check() {
            let routing = match self.relay.channel(id).await {
                Ok(r) => r,
                Err(e)
                    if e.api_code() == Some("not_a_member")
                        || e.api_code() == Some("unknown_channel") =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let routed: Vec<Handle> = routing
                .members
                .iter()
                .filter_map(|m| Handle::new(m.as_str()).ok())
                .collect();
            let now = self.now();
            self.member.handle_routing(now, id, &routed);
        }
        Ok(())
    }
}
