//! Checks that need time or the whole mailbox: receipt deadlines
//! (`ack_overdue`, on this member's own clock from when it learnt of each
//! message, judged only after the mailbox was read to its end), filled
//! gaps, unclassified failures, the relay's routing record
//! (`membership_mismatch`), heartbeats, and what the next timeout is.
//! Mailbox acks never clear anything: only end-to-end receipts do.

use crate::channel::{ChannelState, ChannelStatus};
use crate::ids::{ChannelId, Handle, MessageId, Timestamp};
use crate::payload::{BodyKind, Header};

use super::alert::ack_overdue_detail;
use super::{Alert, AlertKind, Direction, Member};

impl Member {
    /// The mailbox was read to its end: deadlines may now be judged, and
    /// failures no genuine message can still explain are settled.
    pub fn handle_caught_up(&mut self, now: Timestamp) {
        self.caught_up = true;
        self.clear_filled_gaps();
        self.settle_failures(now);
        self.check_receipts(now);
    }

    /// The time has come (or passed) that [`Member::poll_timeout`] named.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.caught_up {
            self.check_receipts(now);
        }
    }

    /// The next instant at which [`Member::handle_timeout`] has something
    /// to do: a receipt deadline or a heartbeat. `None`: nothing pending.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| next = Some(next.map_or(t, |n| n.min(t)));
        for state in self
            .channels
            .values()
            .filter(|s| s.status() == ChannelStatus::Active)
        {
            if self.blocking_alert(&state.id()).is_none() {
                if let Some(t) = self.next_heartbeat(state) {
                    consider(t);
                }
            }
            if !self.caught_up {
                continue;
            }
            let deadline_ms = deadline_ms(state);
            if deadline_ms == 0 {
                continue;
            }
            for member in self.others(state) {
                let flagged = self
                    .open_overdue(state.id(), member)
                    .map(|a| a.message_ids.clone())
                    .unwrap_or_default();
                for (stored_at, id) in self.unreceipted(state, member) {
                    if !flagged.contains(&id) {
                        consider(Timestamp(stored_at.0.saturating_add(deadline_ms)));
                    }
                }
            }
        }
        next
    }

    /// When this member owes `state` a heartbeat: the interval after the
    /// last message it sent there.
    pub(crate) fn next_heartbeat(&self, state: &ChannelState) -> Option<Timestamp> {
        let interval_ms = i64::from(state.policy().map_or(0, |p| p.heartbeat_interval_s)) * 1000;
        if interval_ms == 0 {
            return None;
        }
        let last = self
            .msgs
            .iter()
            .filter(|m| m.direction == Direction::Out && m.channel() == state.id())
            .map(|m| m.payload.header().sent_at)
            .max()?;
        Some(Timestamp(last.0.saturating_add(interval_ms)))
    }

    fn others<'a>(&'a self, state: &'a ChannelState) -> impl Iterator<Item = &'a Handle> + 'a {
        state
            .members()
            .iter()
            .map(|m| &m.handle)
            .filter(move |m| **m != self.me)
    }

    /// Messages of the open epoch that `member`'s receipts do not cover
    /// yet, with when this member learnt of each.
    fn unreceipted(&self, state: &ChannelState, member: &Handle) -> Vec<(Timestamp, MessageId)> {
        let epoch = state.epoch().number;
        self.msgs
            .iter()
            .filter(|m| m.channel() == state.id() && m.applied.is_some())
            .map(|m| (m.stored_at, m.payload.header()))
            .filter(|(_, h)| {
                h.epoch.number == epoch
                    && h.body_kind != BodyKind::Receipt
                    && &h.sender != member
                    && state.covered(epoch, member, &h.sender) < h.seq.0
            })
            .map(|(at, h)| (at, h.message_id))
            .collect()
    }

    fn open_overdue(&self, channel: ChannelId, member: &Handle) -> Option<&Alert> {
        self.alerts.iter().find(|a| {
            a.kind == AlertKind::AckOverdue
                && a.cleared.is_none()
                && a.channel == Some(channel)
                && a.member.as_ref() == Some(member)
        })
    }

    /// Raises one `ack_overdue` per member whose receipts do not cover a
    /// message past the channel's deadline; clears it when they do.
    fn check_receipts(&mut self, now: Timestamp) {
        let mut work = Vec::new();
        for state in self
            .channels
            .values()
            .filter(|s| s.status() == ChannelStatus::Active)
        {
            let deadline_ms = deadline_ms(state);
            if deadline_ms == 0 {
                continue;
            }
            for member in self.others(state) {
                let overdue: Vec<MessageId> = self
                    .unreceipted(state, member)
                    .into_iter()
                    .filter(|(at, _)| now.0 - at.0 >= deadline_ms)
                    .map(|(_, id)| id)
                    .collect();
                let existing = self
                    .open_overdue(state.id(), member)
                    .map(|a| (a.id, a.message_ids.clone()));
                work.push((
                    state.id(),
                    member.clone(),
                    overdue,
                    existing,
                    (deadline_ms / 1000) as u32,
                ));
            }
        }
        for (channel, member, overdue, existing, deadline_s) in work {
            match (overdue.is_empty(), existing) {
                (false, None) => {
                    self.push_alert(Alert::ack_overdue(
                        now, channel, &member, overdue, deadline_s,
                    ));
                }
                (true, Some((id, _))) => {
                    self.clear_alert(id, format!("cleared by a late receipt from {member}"))
                }
                (false, Some((id, ids))) if ids != overdue => {
                    if let Some(a) = self.alerts.iter_mut().find(|a| a.id == id) {
                        a.detail = ack_overdue_detail(&member, overdue.len(), deadline_s);
                        a.message_ids = overdue;
                        self.changes.alerts.push(a.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// Gap alerts whose positions have all arrived are cleared.
    fn clear_filled_gaps(&mut self) {
        let filled: Vec<_> = self
            .alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Gap && a.cleared.is_none())
            .filter(|a| {
                let (Some(channel), Some(sender), Some(epoch)) = (a.channel, &a.principal, a.epoch)
                else {
                    return false;
                };
                let log = self
                    .channels
                    .get(&channel)
                    .and_then(|s| s.sender_log(epoch, sender));
                a.positions
                    .iter()
                    .all(|p| log.is_some_and(|l| l.digest_at(p.0).is_some()))
            })
            .map(|a| a.id)
            .collect();
        for id in filled {
            self.clear_alert(
                id,
                "every missing message arrived late (see `reorder`)".into(),
            );
        }
    }

    /// After reading the mailbox to the end: failures at positions that a
    /// genuine message now holds were forged.
    fn settle_failures(&mut self, now: Timestamp) {
        let held: Vec<usize> = (0..self.failures.len())
            .filter(|i| {
                let f = &self.failures[*i];
                self.channels
                    .get(&f.channel_id)
                    .and_then(|s| s.sender_log(f.epoch, &f.sender))
                    .is_some_and(|l| f.seq_hint > 0 && l.digest_at(f.seq_hint).is_some())
            })
            .collect();
        for i in held.into_iter().rev() {
            let f = self.failures.remove(i);
            self.changes.resolved_failures.push(f.message_id);
            let epoch = f.epoch;
            let why = format!("a ciphertext claiming to be {}'s #{} does not decrypt, and the genuine #{} is here", f.sender, f.seq_hint, f.seq_hint);
            let place = Some((epoch, crate::Seq(f.seq_hint)));
            self.push_alert(Alert::forged(
                now,
                Some(f.channel_id),
                &f.sender,
                place,
                f.message_id,
                why,
            ));
        }
    }

    /// Channels whose routing record the driver should fetch and hand to
    /// [`Member::handle_routing`].
    pub fn routing_to_check(&self) -> Vec<ChannelId> {
        self.channels
            .values()
            .filter(|s| s.setup().is_some())
            .map(ChannelState::id)
            .collect()
    }

    /// The relay's routing record of `channel`: a member nobody agreed to
    /// is `membership_mismatch` (nothing is ever encrypted to it).
    pub fn handle_routing(&mut self, now: Timestamp, channel: ChannelId, routed: &[Handle]) {
        let Some(s) = self.channels.get(&channel) else {
            return;
        };
        // Agreed: this epoch's members, those a pending amendment would
        // add, and former members still routed.
        let mut agreed: Vec<&Handle> = s.members().iter().map(|m| &m.handle).collect();
        agreed.extend(
            s.pending()
                .iter()
                .flat_map(|p| p.proposal.members.iter().map(|m| &m.handle)),
        );
        agreed.extend(s.former_members());
        agreed.extend(s.heard_members());
        let extra: Vec<Handle> = routed
            .iter()
            .filter(|m| !agreed.contains(m))
            .cloned()
            .collect();
        for extra in extra {
            let known = self.alerts.iter().any(|a| {
                a.kind == AlertKind::MembershipMismatch
                    && a.channel == Some(channel)
                    && a.member.as_ref() == Some(&extra)
            });
            if !known {
                self.push_alert(Alert::membership_mismatch(now, channel, &extra));
            }
        }
    }

    /// Another member's authenticated head vector covers a position of
    /// this member's own chain beyond what the store holds: it was
    /// restored from an older copy.
    pub(crate) fn check_own_head(&mut self, now: Timestamp, state: &ChannelState, h: &Header) {
        // A member that joined mid-epoch holds none of its earlier positions
        // there (a reinstalled device): it resumes from the claim instead.
        if h.sender == self.me
            || h.epoch != state.epoch()
            || state.joined_in() == Some(h.epoch.number)
        {
            return;
        }
        let Some(claimed) = h.heads.0.get(&self.me) else {
            return;
        };
        let held = state.head(h.epoch.number, &self.me).seq.0;
        if claimed.seq.0 > held {
            self.own_chain_ahead(now, state.id(), &h.sender, claimed.seq.0, held);
        }
    }

    /// A channel's epoch may have moved on: a rekey answers `stale_store`.
    pub(crate) fn on_epoch_change(&mut self, _now: Timestamp, channel: ChannelId) {
        let Some(state) = self.channels.get(&channel) else {
            return;
        };
        let (epoch, joined) = (state.epoch().number, state.joined_in());
        let stale = |a: &Alert| super::is_open_stale_in(a, &channel);
        // Raised before this store heard of the channel (a new device): it
        // concerns the epoch the store joined in.
        let unplaced: Vec<usize> = (0..self.alerts.len())
            .filter(|&i| stale(&self.alerts[i]) && self.alerts[i].epoch.is_none())
            .collect();
        if let Some(joined) = joined {
            for i in unplaced {
                self.alerts[i].epoch = Some(joined);
                self.changes.alerts.push(self.alerts[i].clone());
            }
        }
        let answered: Vec<_> = self
            .alerts
            .iter()
            .filter(|a| stale(a) && a.epoch.is_some_and(|e| epoch > e))
            .map(|a| a.id)
            .collect();
        for id in answered {
            self.clear_alert(
                id,
                format!("a new epoch ({}) opened with fresh sessions", epoch.0),
            );
        }
    }
}

fn deadline_ms(state: &ChannelState) -> i64 {
    i64::from(state.policy().map_or(0, |p| p.receipt_deadline_s)) * 1000
}
