//! Sending: prepare, seal, encrypt once per recipient, and queue the post
//! in the outbox together with the advanced sessions and the message.

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};

use crate::channel::{ChannelError, ChannelState, CopyKind};
use crate::envelope::Envelope;
use crate::ids::{ChannelId, Handle, MessageId, Timestamp};
use crate::payload::{seal, Body, BodyKind, Payload};
use crate::{CryptoError, DecodeError};

use super::{AlertKind, Direction, Member, Rule, StoredMessage, Transmit, TransmitId};

/// Why a message was not sent (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// An open alert blocks sending in this channel until the user acts.
    #[error("sending is blocked by an open {kind} alert: {detail}")]
    Blocked {
        /// The alert's kind.
        kind: AlertKind,
        /// What it says.
        detail: String,
    },
    /// No Olm session with these recipients yet, or (for an amendment or
    /// an acceptance, which open a new epoch on new sessions) none opened
    /// since the last epoch change: claim a one-time key for each
    /// ([`Member::handle_claimed_key`]) and send again.
    #[error("no session yet with {}", .0.iter().map(Handle::to_string).collect::<Vec<_>>().join(", "))]
    NoSession(Vec<Handle>),
    /// This member knows no such channel.
    #[error("no channel {0}")]
    UnknownChannel(ChannelId),
    /// The channel refuses it (not active, not a member...).
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Too large, or malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Olm refused.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl Member {
    /// Where a member with a stale store may resume its chain in `channel`
    /// to accept a pending rekey: the highest of its own positions that
    /// another member's authenticated receipts report, once that reaches
    /// the last position the relay says it posted.
    fn resume_point(
        &self,
        channel: &ChannelId,
        body: &Body,
    ) -> Result<crate::transcript::Head, String> {
        let state = self.channels.get(channel).ok_or("unknown channel")?;
        let Body::Acceptance { proposal, .. } = body else {
            return Err("only the acceptance of a rekey can be sent from this store".into());
        };
        if state.pending().is_none_or(|p| p.digest != *proposal) {
            return Err(
                "only the acceptance of a pending rekey can be sent from this store".into(),
            );
        }
        let claimed = claimed_beyond(state, &self.me)
            .unwrap_or_else(|| state.head(state.epoch().number, &self.me));
        let target = self.stale_targets.get(channel).copied().unwrap_or_default();
        if claimed.seq < target {
            return Err(format!(
                "the other members' receipts do not yet show your position #{}: sync again shortly",
                target.0
            ));
        }
        Ok(claimed)
    }
}

/// A member that joined mid-epoch but finds its own positions in that
/// epoch's head vectors is a reinstalled device of a member: its chain
/// resumes beyond the highest position others report, so no position is
/// used twice.
fn joiner_resume(state: &ChannelState, me: &Handle) -> Option<crate::transcript::Head> {
    if state.joined_in() != Some(state.epoch().number) {
        return None;
    }
    claimed_beyond(state, me)
}

/// The highest of `me`'s own positions in the open epoch that another
/// member's head vector reports, if it is beyond what `me` holds.
fn claimed_beyond(state: &ChannelState, me: &Handle) -> Option<crate::transcript::Head> {
    let epoch = state.epoch().number;
    let held = state.head(epoch, me).seq;
    state.claimed_own_head(epoch).filter(|c| c.seq > held)
}

impl Member {
    /// Queues one post in the outbox (persisted with the next changes).
    fn queue(&mut self, channel: ChannelId, envelopes: Vec<Envelope>, resumed: bool) {
        let t = Transmit {
            id: TransmitId(self.next_transmit),
            channel,
            envelopes,
            resumed,
        };
        self.next_transmit += 1;
        self.changes.outbox.push(t.clone());
        self.outbox.push_back(t);
    }

    /// What a member forging another's messages does: `body` under a header
    /// naming `claimed` as its sender, at `claimed`'s next position as this
    /// member holds its chain, sent on this member's own session to `to`
    /// only, and kept nowhere here. The receiver must refuse it (`replay`:
    /// the header's sender is not the Olm peer). For the conformance harness.
    #[cfg(any(feature = "adversarial", feature = "conformance"))]
    pub fn dangerous_send_as<R: RngCore + CryptoRng>(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        claimed: &Handle,
        to: &Handle,
        body: Body,
        rng: &mut R,
    ) -> Result<MessageId, SendError> {
        let state = self
            .channels
            .get(&channel)
            .cloned()
            .ok_or(SendError::UnknownChannel(channel))?;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let message_id = MessageId(id);
        let mut prepared = state.prepare(&body, message_id, now, None)?;
        let head = state.head(prepared.header.epoch.number, claimed);
        let h = &mut prepared.header;
        h.sender = claimed.clone();
        h.seq = crate::Seq(head.seq.0 + 1);
        h.prev = head.digest;
        if let Some(own) = h.heads.0.get_mut(claimed) {
            *own = head;
        }
        let body = body.for_version(h.version);
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let sealed = seal(prepared.header.clone(), salt, body)?;
        let Some(session) = self.sessions.get_mut(to).and_then(|s| s.first_mut()) else {
            return Err(SendError::NoSession(vec![to.clone()]));
        };
        let (olm_type, ciphertext) = session.encrypt(&sealed.full)?;
        self.save_session(to, now);
        let envelope = Envelope {
            channel_id: channel,
            message_id,
            sender: self.me.clone(),
            recipient: to.clone(),
            seq_hint: prepared.header.seq.0,
            olm_type,
            ciphertext,
        };
        self.queue(channel, vec![envelope], false);
        Ok(message_id)
    }

    /// The header changes of the rules this member was told to break;
    /// true if the message no longer fits the sender's own chain.
    fn break_header(
        &self,
        state: &ChannelState,
        body: &Body,
        h: &mut crate::payload::Header,
    ) -> bool {
        if self.breaks(Rule::Versions) && matches!(body, Body::Acceptance { .. }) {
            h.version = crate::payload::BodyVersion::V1;
        }
        if self.breaks(Rule::JoinerHeads)
            && matches!(body, Body::Acceptance { .. })
            && state.joined_in() == Some(h.epoch.number)
        {
            h.heads.0.retain(|m, _| *m == self.me);
        }
        if self.breaks(Rule::Epoch1Content) && h.body_kind.is_content() {
            h.epoch = crate::transcript::Epoch::genesis(h.channel_id);
            return true;
        }
        false
    }

    /// A structured body in serde's own JSON (declaration order, nulls),
    /// when told to break the canonical rule.
    fn break_body(&self, body: Body) -> Body {
        match body {
            Body::Structured(s) if self.breaks(Rule::Canonical) => Body::Structured(Box::new(
                crate::commitments::StructuredBody::dangerous_loose(s.value().clone()),
            )),
            other => other,
        }
    }
}

/// How an adversarial test makes a member misbehave (never in honest use).
#[derive(Default)]
struct Tamper {
    /// Another body at the same position for these recipients.
    bodies: BTreeMap<Handle, Body>,
    /// These recipients get a stub where they may read the full copy.
    stub_for: Vec<Handle>,
    /// The sender's own head entry is reported wrong.
    misreport_own_head: bool,
}

impl Member {
    /// Prepares, seals and encrypts one message in `channel`, and queues its
    /// post: take [`Member::poll_changes`] and persist it before posting.
    /// Randomness for the message id and salt comes from `rng`.
    pub fn send<R: RngCore + CryptoRng>(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        body: Body,
        in_reply_to: Option<MessageId>,
        rng: &mut R,
    ) -> Result<MessageId, SendError> {
        self.send_tampered(now, channel, body, Tamper::default(), in_reply_to, rng)
    }

    /// What an equivocating member does: one position, another body for
    /// each recipient named in `others`. For adversarial tests only.
    #[cfg(feature = "adversarial")]
    pub fn dangerous_equivocate<R: RngCore + CryptoRng>(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        body: Body,
        others: BTreeMap<Handle, Body>,
        rng: &mut R,
    ) -> Result<MessageId, SendError> {
        let tamper = Tamper {
            bodies: others,
            ..Tamper::default()
        };
        self.send_tampered(now, channel, body, tamper, None, rng)
    }

    /// What a sender withholding content does: `victim` gets a stub although
    /// the policy entitles it to the full copy. For adversarial tests only.
    #[cfg(feature = "adversarial")]
    pub fn dangerous_withhold<R: RngCore + CryptoRng>(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        body: Body,
        victim: Handle,
        rng: &mut R,
    ) -> Result<MessageId, SendError> {
        let tamper = Tamper {
            stub_for: vec![victim],
            ..Tamper::default()
        };
        self.send_tampered(now, channel, body, tamper, None, rng)
    }

    /// A sender misreporting its own entry in its head vector. For
    /// adversarial tests only.
    #[cfg(feature = "adversarial")]
    pub fn dangerous_misreport_own_head<R: RngCore + CryptoRng>(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        body: Body,
        rng: &mut R,
    ) -> Result<MessageId, SendError> {
        let tamper = Tamper {
            misreport_own_head: true,
            ..Tamper::default()
        };
        self.send_tampered(now, channel, body, tamper, None, rng)
    }

    /// What a newer (or broken) client does: `body` (kind tag first) as
    /// raw bytes under body `version`, sent to every member in full, with a
    /// header of the same layout. For adversarial tests only (the receiver
    /// must say `unsupported_body`). The conformance harness sends these.
    #[cfg(any(feature = "adversarial", feature = "conformance"))]
    pub fn dangerous_send_raw<R: RngCore + CryptoRng>(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        version: crate::payload::BodyVersion,
        body: &[u8],
        rng: &mut R,
    ) -> Result<MessageId, SendError> {
        let state = self
            .channels
            .get(&channel)
            .cloned()
            .ok_or(SendError::UnknownChannel(channel))?;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let placeholder = Body::Text(String::new());
        let mut prepared = state.prepare(&placeholder, MessageId(id), now, None)?;
        prepared.header.version = version;
        prepared.header.body_kind = BodyKind::from_tag(body.first().copied().unwrap_or(0))?;
        let missing: Vec<Handle> = prepared
            .recipients
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| !self.has_session(p))
            .collect();
        if !missing.is_empty() {
            return Err(SendError::NoSession(missing));
        }
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let (plaintext, digest) = Payload::dangerous_raw_full(&prepared.header, salt, body)?;
        let stub = Payload::Stub {
            header: prepared.header.clone(),
            body_hash: crate::payload::body_hash(&salt, body),
        };
        let mut next = state;
        next.handle_payload(&stub, digest)?;
        let mut envelopes = Vec::new();
        for (peer, _) in &prepared.recipients {
            let Some(session) = self.sessions.get_mut(peer).and_then(|s| s.first_mut()) else {
                return Err(SendError::NoSession(vec![peer.clone()]));
            };
            let (olm_type, ciphertext) = session.encrypt(&plaintext)?;
            envelopes.push(Envelope {
                channel_id: channel,
                message_id: MessageId(id),
                sender: self.me.clone(),
                recipient: peer.clone(),
                seq_hint: prepared.header.seq.0,
                olm_type,
                ciphertext,
            });
        }
        for (peer, _) in &prepared.recipients {
            self.save_session(peer, now);
        }
        let order = self.next_applied;
        self.next_applied += 1;
        self.store_message(StoredMessage {
            payload: stub,
            digest,
            direction: Direction::Out,
            stored_at: now,
            applied: Some(order),
            unsupported: true,
        });
        self.channels.insert(channel, next);
        self.queue(channel, envelopes, false);
        Ok(MessageId(id))
    }

    fn send_tampered<R: RngCore + CryptoRng>(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        body: Body,
        tamper: Tamper,
        in_reply_to: Option<MessageId>,
        rng: &mut R,
    ) -> Result<MessageId, SendError> {
        let overrides = tamper.bodies;
        let mut own_head = None;
        let control = matches!(body, Body::Receipt | Body::Heartbeat);
        // Every open block counts, not just the first: a stale member still
        // decides on a changed key before it accepts.
        let blocks: Vec<(AlertKind, String)> = self
            .blocking_alerts(channel)
            .map(|a| (a.kind, a.detail.clone()))
            .collect();
        if let Some((kind, detail)) = blocks
            .iter()
            .find(|(k, _)| *k != AlertKind::StaleStore && !control)
        {
            return Err(SendError::Blocked {
                kind: *kind,
                detail: detail.clone(),
            });
        }
        if let Some((kind, detail)) = blocks.iter().find(|(k, _)| *k == AlertKind::StaleStore) {
            // The one way back: accept the rekey, from a position beyond
            // anything this member ever posted.
            let resume = self.resume_point(&channel, &body);
            own_head = Some(resume.map_err(|why| SendError::Blocked {
                kind: *kind,
                detail: format!("{detail} ({why})"),
            })?);
        }
        let resumed = own_head.is_some();
        let state = match self.channels.get(&channel) {
            Some(s) => s.clone(),
            None if matches!(body, Body::Creation(_)) => {
                ChannelState::new(channel, self.me.clone())
            }
            None => return Err(SendError::UnknownChannel(channel)),
        };
        if own_head.is_none() {
            own_head = joiner_resume(&state, &self.me);
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let message_id = MessageId(id);
        let mut prepared = state.prepare_from(&body, message_id, now, in_reply_to, own_head)?;
        let broken = self.break_header(&state, &body, &mut prepared.header);
        let body = self.break_body(body.for_version(prepared.header.version));
        if tamper.misreport_own_head || self.breaks(Rule::OwnHead) {
            if let Some(own) = prepared.header.heads.0.get_mut(&self.me) {
                own.digest = crate::ids::Digest::of(&[b"misreported", &own.digest.0]);
            }
        }
        // A new epoch starts on new sessions (see `fresh_sessions`).
        let epoch_change = matches!(body, Body::Amendment(_) | Body::Acceptance { .. });
        let missing: Vec<Handle> = prepared
            .recipients
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| !self.has_session(p) || (epoch_change && !self.fresh_sessions.contains(p)))
            .collect();
        if !missing.is_empty() {
            return Err(SendError::NoSession(missing));
        }
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let sealed = seal(prepared.header.clone(), salt, body.clone())?;
        let payload = Payload::Full {
            header: prepared.header.clone(),
            salt,
            body,
        };
        let mut next = state;
        let applied = next.handle_payload(&payload, sealed.digest);
        if !broken {
            applied?;
        }

        let mut envelopes = Vec::new();
        for (peer, kind) in &prepared.recipients {
            let other = match overrides.get(peer) {
                Some(b) => {
                    let mut s = [0u8; 16];
                    rng.fill_bytes(&mut s);
                    Some(seal(prepared.header.clone(), s, b.clone())?)
                }
                None => None,
            };
            let sealed = other.as_ref().unwrap_or(&sealed);
            let kind = if tamper.stub_for.contains(peer) {
                &CopyKind::Stub
            } else if self.breaks(Rule::Stubs) {
                &CopyKind::Full
            } else {
                kind
            };
            let copy = match kind {
                CopyKind::Full => &sealed.full,
                CopyKind::Stub => sealed.stub.as_ref().unwrap_or(&sealed.full),
            };
            let Some(session) = self.sessions.get_mut(peer).and_then(|s| s.first_mut()) else {
                return Err(SendError::NoSession(vec![peer.clone()]));
            };
            let (olm_type, ciphertext) = session.encrypt(copy)?;
            envelopes.push(Envelope {
                channel_id: channel,
                message_id,
                sender: self.me.clone(),
                recipient: peer.clone(),
                seq_hint: prepared.header.seq.0,
                olm_type,
                ciphertext,
            });
        }
        for (peer, _) in &prepared.recipients {
            self.save_session(peer, now);
            self.fresh_sessions.remove(peer);
        }
        let kind = prepared.header.body_kind;
        let order = self.next_applied;
        self.next_applied += 1;
        self.store_message(StoredMessage {
            payload,
            digest: sealed.digest,
            direction: Direction::Out,
            stored_at: now,
            applied: Some(order),
            unsupported: false,
        });
        self.channels.insert(channel, next);
        // Every message carries the head vector: it is a receipt too.
        self.to_receipt.remove(&channel);
        if kind == BodyKind::Amendment || kind == BodyKind::Acceptance {
            self.on_epoch_change(now, channel);
        }
        if !envelopes.is_empty() {
            self.queue(channel, envelopes, resumed);
        }
        Ok(message_id)
    }
}
