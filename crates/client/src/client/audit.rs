//! Checks run after the mailbox was read to the end: receipt deadlines
//! (`ack_overdue`, on this member's own clock from when it learnt of each
//! message) and the relay's routing record (`membership_mismatch`). Mailbox
//! acks never clear anything: only end-to-end receipts do.

use backchannel_protocol::channel::ChannelStatus;
use backchannel_protocol::payload::BodyKind;
use backchannel_protocol::{ChannelId, Handle};

use super::{Client, SyncReport};
use crate::error::ClientError;
use crate::vault::records::AlertRecord;

impl Client {
    /// Raises one `ack_overdue` per member whose receipts do not cover a
    /// message past the channel's deadline; clears it when they do.
    pub(crate) fn check_receipts(&mut self, report: &mut SyncReport) -> Result<(), ClientError> {
        let now = self.now().0;
        let mut raise = Vec::new();
        let mut clear = Vec::new();
        for state in self
            .channels
            .values()
            .filter(|s| s.status() == ChannelStatus::Active)
        {
            let deadline_ms = i64::from(state.policy().map_or(0, |p| p.receipt_deadline_s)) * 1000;
            if deadline_ms == 0 {
                continue;
            }
            let epoch = state.epoch().number;
            for member in state
                .members()
                .iter()
                .map(|m| &m.handle)
                .filter(|m| **m != self.me)
            {
                let overdue: Vec<String> = self
                    .msgs
                    .iter()
                    .filter(|m| m.channel == state.id() && m.applied.is_some())
                    .map(|m| (m, m.payload.header()))
                    .filter(|(m, h)| {
                        h.epoch.number == epoch
                            && h.body_kind != BodyKind::Receipt
                            && &h.sender != member
                            && state.covered(epoch, member, &h.sender) < h.seq.0
                            && now - m.stored_at >= deadline_ms
                    })
                    .map(|(_, h)| h.message_id.to_hex())
                    .collect();
                let existing = self.alert_list.iter().find(|(_, _, a)| {
                    a.kind == "ack_overdue"
                        && a.cleared.is_none()
                        && a.channel_id == state.id().to_hex()
                        && a.member == member.as_str()
                });
                match (overdue.is_empty(), existing) {
                    (false, None) => {
                        let mut a = AlertRecord::new(
                            "ack_overdue",
                            state.id().to_hex(),
                            member.to_string(),
                            overdue.clone(),
                            format!(
                                "{member} has not confirmed receipt of {} message(s) within {} s of when you learnt of them",
                                overdue.len(),
                                deadline_ms / 1000
                            ),
                            now,
                        );
                        a.member = member.to_string();
                        raise.push(a);
                    }
                    (true, Some((id, dismissed, a))) => {
                        let mut cleared = a.clone();
                        cleared.cleared = Some(format!("cleared by a late receipt from {member}"));
                        clear.push((*id, *dismissed, cleared));
                    }
                    (false, Some((id, dismissed, a))) if a.message_ids != overdue => {
                        // Still overdue, now for these messages.
                        let mut updated = a.clone();
                        updated.detail = format!(
                            "{member} has not confirmed receipt of {} message(s) within {} s of when you learnt of them",
                            overdue.len(),
                            deadline_ms / 1000
                        );
                        updated.message_ids = overdue;
                        clear.push((*id, *dismissed, updated));
                    }
                    _ => {}
                }
            }
        }
        if raise.is_empty() && clear.is_empty() {
            return Ok(());
        }
        let mut tx = self.vault.tx()?;
        for (id, dismissed, a) in &clear {
            tx.update_alert(*id, a, *dismissed)?;
        }
        let staged = Self::stage_alerts(&mut tx, raise)?;
        tx.commit()?;
        for (id, dismissed, a) in clear {
            if a.cleared.is_some() {
                report.cleared.push(a.clone());
            }
            if let Some(slot) = self.alert_list.iter_mut().find(|(i, _, _)| *i == id) {
                *slot = (id, dismissed, a);
            }
        }
        report.alerts.extend(staged.iter().map(|(_, a)| a.clone()));
        self.commit_alerts(staged);
        Ok(())
    }

    /// Compares each channel's routing record on the relay with the members
    /// agreed end to end: a member nobody agreed to is `membership_mismatch`.
    pub(crate) async fn check_routing(
        &mut self,
        report: &mut SyncReport,
    ) -> Result<(), ClientError> {
        let channels: Vec<(ChannelId, Vec<Handle>)> = self
            .channels
            .values()
            .filter(|s| s.setup().is_some())
            .map(|s| {
                // Agreed: this epoch's members, those a pending amendment
                // would add, and former members still routed.
                let mut allowed: Vec<Handle> =
                    s.members().iter().map(|m| m.handle.clone()).collect();
                allowed.extend(
                    s.pending()
                        .iter()
                        .flat_map(|p| p.proposal.members.iter().map(|m| m.handle.clone())),
                );
                allowed.extend(s.former_members().iter().cloned());
                allowed.extend(s.heard_members().iter().cloned());
                (s.id(), allowed)
            })
            .collect();
        let mut raise = Vec::new();
        for (id, agreed) in channels {
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
            for extra in routing
                .members
                .iter()
                .filter(|m| !agreed.iter().any(|a| a.as_str() == m.as_str()))
            {
                let known = self.alert_list.iter().any(|(_, _, a)| {
                    a.kind == "membership_mismatch"
                        && a.channel_id == id.to_hex()
                        && a.member == *extra
                });
                if !known {
                    let mut a = AlertRecord::new(
                        "membership_mismatch",
                        id.to_hex(),
                        extra.clone(),
                        Vec::new(),
                        format!("the relay routes channel {id} to {extra}, whom no accepted proposal names; nothing is encrypted to it"),
                        self.now().0,
                    );
                    a.member = extra.clone();
                    raise.push(a);
                }
            }
        }
        if !raise.is_empty() {
            report.alerts.extend(raise.iter().cloned());
            self.raise(raise)?;
        }
        Ok(())
    }
}
