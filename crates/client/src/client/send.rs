//! Sending: prepare, seal, encrypt per recipient, commit (sessions, the
//! message and the outbox in one transaction), then post in order.

use backchannel_protocol::api::EnvelopeJson;
use backchannel_protocol::channel::{ChannelState, CopyKind};
use backchannel_protocol::payload::{seal, Body, Member, Payload, Policy, Proposal, Role};
use backchannel_protocol::{ChannelId, Envelope, Handle, MessageId, PeerSession};

use super::{crash_point, peer_keys, Client};
use crate::error::ClientError;
use crate::vault::records::{AlertRecord, Direction, OutboxRecord, Trust};

impl Client {
    /// Opens a channel as its mediator: routing record on the relay, then the
    /// creation proposal (members, their keys as this mediator knows them,
    /// policy) over Olm to each member.
    pub async fn create_channel(
        &mut self,
        title: &str,
        parties: &[Handle],
        observers: &[Handle],
        policy: Policy,
    ) -> Result<ChannelId, ClientError> {
        self.connect().await?;
        let mut members = vec![Member {
            handle: self.me.clone(),
            role: Role::Mediator,
            curve25519: self.keys().curve25519,
            ed25519: self.keys().ed25519,
        }];
        for (handles, role) in [(parties, Role::Party), (observers, Role::Observer)] {
            for h in handles {
                if *h == self.me || members.iter().any(|m| &m.handle == h) {
                    return Err(ClientError::Input(format!(
                        "{h} is listed twice (the mediator is a member already)"
                    )));
                }
                let keys = match self.peers.get(h) {
                    Some(p) => peer_keys(p)?,
                    None => self.pin_from_relay(h).await?,
                };
                members.push(Member {
                    handle: h.clone(),
                    role,
                    curve25519: keys.curve25519,
                    ed25519: keys.ed25519,
                });
            }
        }
        if parties.is_empty() {
            return Err(ClientError::Input(
                "a channel needs at least one party".into(),
            ));
        }
        members.sort_by(|a, b| a.handle.cmp(&b.handle));
        let id = ChannelId::random();
        let handles: Vec<Handle> = members.iter().map(|m| m.handle.clone()).collect();
        self.relay.create_channel(id, &handles).await?;
        let proposal = Proposal {
            title: title.to_string(),
            members,
            policy,
        };
        self.channels
            .insert(id, ChannelState::new(id, self.me.clone()));
        match self.send_body(id, Body::Creation(proposal), None).await {
            Ok(_) => Ok(id),
            Err(e) => {
                if self.log(Some(id))?.is_empty() {
                    self.channels.remove(&id);
                }
                Err(e)
            }
        }
    }

    /// Proposes a new epoch, as the channel's mediator: `add` parties and
    /// `observers` join (their keys as this mediator pins them), `remove`
    /// leave, and the policy becomes `policy`. It takes effect when every
    /// party of the new membership accepts.
    pub async fn amend(
        &mut self,
        channel: ChannelId,
        add: &[Handle],
        observers: &[Handle],
        remove: &[Handle],
        policy: Policy,
    ) -> Result<MessageId, ClientError> {
        self.connect().await?;
        let state = self.channel_state(&channel)?;
        let Some(setup) = state.setup() else {
            return Err(ClientError::UnknownChannel(channel.to_hex()));
        };
        if setup.proposer != self.me {
            return Err(ClientError::Input(format!(
                "only the channel's mediator ({}) proposes amendments",
                setup.proposer
            )));
        }
        let mut proposal = setup.proposal.clone();
        let current: Vec<Handle> = proposal.members.iter().map(|m| m.handle.clone()).collect();
        for r in remove {
            if *r == self.me || !current.contains(r) {
                return Err(ClientError::Input(format!(
                    "{r} is not a member this mediator can remove"
                )));
            }
        }
        proposal.members.retain(|m| !remove.contains(&m.handle));
        for (handles, role) in [(add, Role::Party), (observers, Role::Observer)] {
            for h in handles {
                if proposal.members.iter().any(|m| &m.handle == h) {
                    return Err(ClientError::Input(format!("{h} is a member already")));
                }
                let keys = match self.peers.get(h) {
                    Some(p) => peer_keys(p)?,
                    None => self.pin_from_relay(h).await?,
                };
                proposal.members.push(Member {
                    handle: h.clone(),
                    role,
                    curve25519: keys.curve25519,
                    ed25519: keys.ed25519,
                });
            }
        }
        proposal.members.sort_by(|a, b| a.handle.cmp(&b.handle));
        proposal.policy = policy;
        if !proposal.members.iter().any(|m| m.role == Role::Party) {
            return Err(ClientError::Input(
                "a channel needs at least one party".into(),
            ));
        }
        // Routing first: joiners must be able to receive the proposal and
        // answer it; leavers stay routed until the new epoch opens.
        let mut routing: Vec<Handle> = current;
        routing.extend(proposal.members.iter().map(|m| m.handle.clone()));
        routing.sort();
        routing.dedup();
        self.relay.set_members(channel, &routing).await?;
        self.send_body(channel, Body::Amendment(proposal), None)
            .await
    }

    /// Accepts the channel's creation proposal.
    pub async fn accept(&mut self, channel: ChannelId) -> Result<MessageId, ClientError> {
        let proposal = self.proposal_digest(&channel)?;
        self.send_body(channel, Body::Acceptance { proposal }, None)
            .await
    }

    /// Declines the channel's creation proposal.
    pub async fn decline(
        &mut self,
        channel: ChannelId,
        reason: &str,
    ) -> Result<MessageId, ClientError> {
        let proposal = self.proposal_digest(&channel)?;
        self.send_body(
            channel,
            Body::Decline {
                proposal,
                reason: reason.to_string(),
            },
            None,
        )
        .await
    }

    fn proposal_digest(
        &self,
        channel: &ChannelId,
    ) -> Result<backchannel_protocol::Digest, ClientError> {
        // A pending amendment is what awaits an answer; else the creation.
        let state = self.channel_state(channel)?;
        state
            .pending()
            .or(state.setup())
            .map(|s| s.digest)
            .ok_or_else(|| ClientError::UnknownChannel(channel.to_hex()))
    }

    /// Sends text in an active channel.
    pub async fn send_text(
        &mut self,
        channel: ChannelId,
        text: &str,
        in_reply_to: Option<MessageId>,
    ) -> Result<MessageId, ClientError> {
        if text.trim().is_empty() {
            return Err(ClientError::Input("the message is empty".into()));
        }
        self.send_body(channel, Body::Text(text.to_string()), in_reply_to)
            .await
    }

    /// Sends a typed payload (assurance, red line, event report...) after
    /// checking it makes sense; nothing is sent otherwise.
    pub async fn send_structured(
        &mut self,
        channel: ChannelId,
        body: backchannel_protocol::commitments::Structured,
        in_reply_to: Option<MessageId>,
    ) -> Result<MessageId, ClientError> {
        body.validate()
            .map_err(|e| ClientError::Input(e.to_string()))?;
        // References must name messages of this channel.
        let known: Vec<String> = self
            .message_ids(&channel)?
            .iter()
            .map(|m| m.to_hex())
            .collect();
        let json = serde_json::to_value(&body).map_err(|e| ClientError::Input(e.to_string()))?;
        for field in backchannel_protocol::commitments::Structured::REFERENCE_FIELDS {
            let value = json.get(field).and_then(|v| v.as_str()).map(str::to_string);
            if let Some(v) = value {
                if !known.contains(&v) {
                    return Err(ClientError::Input(format!(
                        "{field} {v} names no message of this channel"
                    )));
                }
            }
        }
        self.send_body(channel, Body::Structured(Box::new(body)), in_reply_to)
            .await
    }

    /// Sends an explicit receipt (the head vector) in an active channel.
    pub async fn send_receipt(&mut self, channel: ChannelId) -> Result<MessageId, ClientError> {
        self.send_body(channel, Body::Receipt, None).await
    }

    /// Sends a heartbeat in an active channel.
    pub async fn send_heartbeat(&mut self, channel: ChannelId) -> Result<MessageId, ClientError> {
        self.send_body(channel, Body::Heartbeat, None).await
    }

    /// The session to encrypt to `peer` with, claiming a one-time key and
    /// opening one if there is none. The claimed key's owner must match the
    /// pinned identity keys.
    async fn ensure_session(&mut self, peer: &Handle) -> Result<(), ClientError> {
        if self.sessions.get(peer).is_some_and(|s| !s.is_empty()) {
            return Ok(());
        }
        self.connect().await?;
        let pinned = match self.peers.get(peer) {
            Some(p) => Some(peer_keys(p)?),
            None => None,
        };
        let claim = self.relay.claim(peer).await?;
        let (keys, one_time) = claim.decode()?;
        match pinned {
            Some(p) if p != keys => {
                self.pin(peer, keys, Trust::Tofu)?; // raises key_changed
                return Err(ClientError::KeyChanged(peer.clone()));
            }
            Some(_) => self.check_served_keys(peer, &keys, claim.key_version)?,
            None => {
                self.check_served_keys(peer, &keys, claim.key_version)?;
                self.pin(peer, keys, Trust::Tofu)?;
            }
        }
        match one_time.verify(&keys) {
            Ok(()) => {}
            Err(backchannel_protocol::CryptoError::BadSignature { .. }) => {
                let alert = AlertRecord::new(
                    "key_changed",
                    String::new(),
                    peer.to_string(),
                    Vec::new(),
                    format!("the one-time key served for {peer} is not signed by {peer}'s pinned key: substituted; sending to {peer} is blocked"),
                    self.now().0,
                );
                self.raise(vec![alert])?;
                return Err(ClientError::KeyChanged(peer.clone()));
            }
            Err(e) => {
                let alert = AlertRecord::new(
                    "bad_key",
                    String::new(),
                    peer.to_string(),
                    Vec::new(),
                    format!("the one-time key served for {peer}: {e}"),
                    self.now().0,
                );
                self.raise(vec![alert])?;
                return Err(e.into());
            }
        }
        let session = self.identity.outbound_session(&keys, &one_time)?;
        self.sessions
            .entry(peer.clone())
            .or_default()
            .insert(0, session);
        Ok(())
    }

    /// Prepares, seals, encrypts, commits and posts one message.
    pub(crate) async fn send_body(
        &mut self,
        channel: ChannelId,
        body: Body,
        in_reply_to: Option<MessageId>,
    ) -> Result<MessageId, ClientError> {
        self.send_bodies(
            channel,
            body,
            std::collections::BTreeMap::new(),
            in_reply_to,
        )
        .await
    }

    /// What an equivocating member does: one position in its chain, a
    /// different text for each recipient named in `others` (the rest get
    /// `text`, which this member keeps). For adversarial tests only.
    #[cfg(feature = "adversarial")]
    pub async fn dangerous_equivocate(
        &mut self,
        channel: ChannelId,
        text: &str,
        others: std::collections::BTreeMap<Handle, String>,
    ) -> Result<MessageId, ClientError> {
        let others = others
            .into_iter()
            .map(|(h, t)| (h, Body::Text(t)))
            .collect();
        self.send_bodies(channel, Body::Text(text.into()), others, None)
            .await
    }

    /// Prepares, seals, encrypts, commits and posts one message; recipients
    /// named in `overrides` get another body at the same position (only the
    /// adversarial tests ever pass any).
    async fn send_bodies(
        &mut self,
        channel: ChannelId,
        body: Body,
        overrides: std::collections::BTreeMap<Handle, Body>,
        in_reply_to: Option<MessageId>,
    ) -> Result<MessageId, ClientError> {
        if !matches!(body, Body::Receipt | Body::Heartbeat) {
            if let Some(a) = self.blocking_alert(&channel) {
                return Err(ClientError::Blocked {
                    kind: a.kind,
                    detail: a.detail,
                });
            }
        }
        self.connect().await?;
        self.flush_outbox().await?;
        let message_id = MessageId::random();
        let sent_at = self.now();
        let prepared = self
            .channel_state(&channel)?
            .prepare(&body, message_id, sent_at, in_reply_to)
            .map_err(|source| ClientError::Channel { channel, source })?;
        for (peer, _) in &prepared.recipients {
            self.ensure_session(peer).await?;
        }
        let salt: [u8; 16] = rand::random();
        let sealed = seal(prepared.header.clone(), salt, body.clone())?;
        let payload = Payload::Full {
            header: prepared.header.clone(),
            salt,
            body,
        };
        let mut state = self.channel_state(&channel)?.clone();
        state
            .handle_payload(&payload, sealed.digest)
            .map_err(|source| ClientError::Channel { channel, source })?;

        let mut envelopes = Vec::new();
        let mut used: Vec<Handle> = Vec::new();
        for (peer, kind) in &prepared.recipients {
            let other = match overrides.get(peer) {
                Some(b) => Some(seal(prepared.header.clone(), rand::random(), b.clone())?),
                None => None,
            };
            let sealed = other.as_ref().unwrap_or(&sealed);
            let copy = match kind {
                CopyKind::Full => &sealed.full,
                CopyKind::Stub => sealed.stub.as_ref().unwrap_or(&sealed.full),
            };
            let session: &mut PeerSession = self
                .sessions
                .get_mut(peer)
                .and_then(|s| s.first_mut())
                .ok_or_else(|| ClientError::Input(format!("no session with {peer}")))?;
            let (olm_type, ciphertext) = session.encrypt(copy)?;
            envelopes.push(EnvelopeJson::from(&Envelope {
                channel_id: channel,
                message_id,
                sender: self.me.clone(),
                recipient: peer.clone(),
                seq_hint: prepared.header.seq.0,
                olm_type,
                ciphertext,
            }));
            used.push(peer.clone());
        }

        let next = self.next_applied;
        let mut tx = self.vault.tx()?;
        for peer in &used {
            if let Some(s) = self.sessions.get(peer).and_then(|s| s.first()) {
                tx.put_session(peer, s, sent_at.0)?;
            }
        }
        let msg = Self::stage_message(
            &mut tx,
            &payload,
            sealed.digest,
            Direction::Out,
            Some(next),
            sent_at.0,
        )?;
        if !envelopes.is_empty() {
            tx.push_outbox(&OutboxRecord {
                channel_id: channel.to_hex(),
                envelopes,
            })?;
        }
        tx.commit()?;
        self.commit_message(msg);
        self.channels.insert(channel, state);
        crash_point("after_outbox_commit");
        self.flush_outbox().await?;
        Ok(message_id)
    }

    /// Posts every committed, unanswered post, oldest first, each after the
    /// previous one was answered. Returns how many went out.
    pub async fn flush_outbox(&mut self) -> Result<usize, ClientError> {
        let pending = self.vault.outbox()?;
        if pending.is_empty() {
            return Ok(0);
        }
        self.connect().await?;
        let mut sent = 0;
        for (id, record) in pending {
            self.relay
                .post(&record.channel_id, record.envelopes)
                .await?;
            crash_point("after_post");
            let mut tx = self.vault.tx()?;
            tx.delete_outbox(id)?;
            tx.commit()?;
            sent += 1;
        }
        Ok(sent)
    }
}
