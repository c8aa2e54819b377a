//! An in-memory relay: mailboxes in cursor order, idempotent posts per
//! message id and recipient, one-time keys, routing records, and the record
//! of each principal's acks and last posts. Hostile behaviour is done to it
//! from outside (the attack module), by editing what it holds.

use std::collections::BTreeMap;

use backchannel_protocol::api::EnvelopeJson;
use backchannel_protocol::{
    ChannelId, Digest, Envelope, Handle, IdentityKeys, MessageId, SignedKey,
};

/// One principal's published keys.
pub struct Keys {
    /// Identity keys (as the relay serves them).
    pub identity: IdentityKeys,
    /// Unclaimed one-time keys.
    pub one_time: Vec<SignedKey>,
    /// The fallback key.
    pub fallback: Option<SignedKey>,
    /// Bumped on every upload and claim.
    pub version: u64,
}

/// The relay's whole state.
#[derive(Default)]
pub struct MemRelay {
    next_cursor: u64,
    /// Recipient → (cursor, envelope), in cursor order.
    pub mailboxes: BTreeMap<Handle, Vec<(u64, EnvelopeJson)>>,
    posted: BTreeMap<(MessageId, Handle), [u8; 32]>,
    /// Published keys per principal.
    pub keys: BTreeMap<Handle, Keys>,
    /// Routing records.
    pub routing: BTreeMap<ChannelId, Vec<Handle>>,
    /// Highest ack per principal.
    pub acked: BTreeMap<Handle, u64>,
    /// Latest post per (sender, channel), with its sequence hint.
    pub last_posts: BTreeMap<(Handle, ChannelId), (MessageId, u64)>,
    /// Every envelope ever stored, for attacks that replay or inspect.
    pub history: Vec<(u64, Envelope)>,
}

impl MemRelay {
    /// A new cursor.
    pub fn cursor(&mut self) -> u64 {
        self.next_cursor += 1;
        self.next_cursor
    }

    /// A member's post of one message: its copies are stored, and the
    /// relay's record of the sender's last post (`GET /v1/me`) follows.
    pub fn post(&mut self, envelopes: &[Envelope]) -> Result<Vec<(u64, Envelope)>, String> {
        let stored = self.inject(envelopes)?;
        if let Some((_, e)) = stored.first() {
            self.last_posts
                .insert((e.sender.clone(), e.channel_id), (e.message_id, e.seq_hint));
        }
        Ok(stored)
    }

    /// Stores copies straight into mailboxes, as a hostile operator does
    /// (no member posted them, so no record of anyone's posts changes);
    /// identical copies again are skipped, different bytes refused.
    pub fn inject(&mut self, envelopes: &[Envelope]) -> Result<Vec<(u64, Envelope)>, String> {
        let mut stored = Vec::new();
        for e in envelopes {
            let hash = Digest::of(&[&e.encode()]).0;
            match self.posted.get(&(e.message_id, e.recipient.clone())) {
                Some(h) if *h == hash => continue,
                Some(_) => return Err(format!("conflict for {} to {}", e.message_id, e.recipient)),
                None => {}
            }
            self.posted
                .insert((e.message_id, e.recipient.clone()), hash);
            let c = self.cursor();
            self.mailboxes
                .entry(e.recipient.clone())
                .or_default()
                .push((c, EnvelopeJson::from(e)));
            self.history.push((c, e.clone()));
            stored.push((c, e.clone()));
        }
        Ok(stored)
    }

    /// The whole mailbox after `after`.
    pub fn mailbox(&self, who: &Handle, after: u64) -> Vec<(u64, EnvelopeJson)> {
        self.mailboxes
            .get(who)
            .map(|m| m.iter().filter(|(c, _)| *c > after).cloned().collect())
            .unwrap_or_default()
    }

    /// Deletes up to `through`.
    pub fn ack(&mut self, who: &Handle, through: u64) {
        if let Some(m) = self.mailboxes.get_mut(who) {
            m.retain(|(c, _)| *c > through);
        }
        let a = self.acked.entry(who.clone()).or_insert(0);
        *a = (*a).max(through);
    }

    /// Claims one of `who`'s keys (the fallback when none is left).
    pub fn claim(&mut self, who: &Handle) -> Option<(IdentityKeys, SignedKey, u64)> {
        let k = self.keys.get_mut(who)?;
        let key = if k.one_time.is_empty() {
            k.fallback.clone()?
        } else {
            k.one_time.remove(0)
        };
        k.version += 1;
        Some((k.identity, key, k.version))
    }

    /// Publishes keys.
    pub fn upload(
        &mut self,
        who: &Handle,
        identity: IdentityKeys,
        one_time: Vec<SignedKey>,
        fallback: Option<SignedKey>,
    ) -> u64 {
        let k = self.keys.entry(who.clone()).or_insert(Keys {
            identity,
            one_time: Vec::new(),
            fallback: None,
            version: 0,
        });
        k.one_time.extend(one_time);
        if fallback.is_some() {
            k.fallback = fallback;
        }
        k.version += 1;
        k.version
    }
}
