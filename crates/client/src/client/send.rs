//! The send driver: the member machine prepares, seals, encrypts and
//! queues; the client claims one-time keys it asks for, commits its
//! changes (sessions, message and outbox together), then posts in order.

use backchannel_protocol::api::EnvelopeJson;
use backchannel_protocol::member::SendError;
use backchannel_protocol::payload::{Body, BodyVersion, Member, Payload, Policy, Proposal, Role};
use backchannel_protocol::{ChannelId, Handle, MessageId};

use super::{crash_point, Client};
use crate::error::ClientError;

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
            handle: self.me().clone(),
            role: Role::Mediator,
            curve25519: self.keys().curve25519,
            ed25519: self.keys().ed25519,
        }];
        for (handles, role) in [(parties, Role::Party), (observers, Role::Observer)] {
            for h in handles {
                if h == self.me() || members.iter().any(|m| &m.handle == h) {
                    return Err(ClientError::Input(format!(
                        "{h} is listed twice (the mediator is a member already)"
                    )));
                }
                let keys = match self.member.peer(h) {
                    Some(p) => p.keys,
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
        let mut id = ChannelId::random();
        super::test_id_prefix(&mut id.0);
        let handles: Vec<Handle> = members.iter().map(|m| m.handle.clone()).collect();
        self.relay.create_channel(id, &handles).await?;
        let proposal = Proposal {
            title: title.to_string(),
            members,
            policy,
            reads: BodyVersion::SUPPORTED.to_vec(),
        };
        self.send_body(id, Body::Creation(proposal), None).await?;
        Ok(id)
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
        let mediator = setup.mediator().cloned();
        if mediator.as_ref() != Some(self.me()) {
            let party = state
                .member(self.me())
                .is_some_and(|m| m.role == Role::Party);
            if !party {
                return Err(ClientError::Input(format!(
                    "only the channel's mediator ({}) or a party proposes amendments",
                    mediator.map_or_else(|| "none".into(), |m| m.to_string())
                )));
            }
            if state.version().is_none_or(|v| v < BodyVersion::V3) {
                return Err(ClientError::Input(
                    "a party proposes amendments only where every member's client reads protocol body version 3; ask the mediator to propose it".into(),
                ));
            }
            if !add.is_empty() || !observers.is_empty() || !remove.is_empty() {
                return Err(ClientError::Input(
                    "only the mediator adds or removes members; a party may change the policy, or leave (`channel leave`)".into(),
                ));
            }
            if state.pending().is_some() {
                return Err(ClientError::Input(
                    "a proposal awaits answers in this channel: answer it (`channel show`, `channel accept` or `decline`) before proposing another".into(),
                ));
            }
        }
        let mut proposal = setup.proposal.clone();
        // Members keep the keys pinned here now: a member whose new key the
        // mediator accepted (a reinstalled device) is re-introduced with it.
        // (A party re-keys nobody: its amendment keeps every member as is.)
        let mediates = mediator.as_ref() == Some(self.me());
        for m in proposal.members.iter_mut().filter(|_| mediates) {
            if let Some(p) = self.member.peer(&m.handle) {
                m.curve25519 = p.keys.curve25519;
                m.ed25519 = p.keys.ed25519;
            }
        }
        let current: Vec<Handle> = proposal.members.iter().map(|m| m.handle.clone()).collect();
        for r in remove {
            if r == self.me() {
                return Err(ClientError::Input(
                    "you cannot remove yourself in an amendment: `backchannel channel leave` does that".into(),
                ));
            }
            if !current.contains(r) {
                return Err(ClientError::Input(format!(
                    "{r} is not a member of this channel"
                )));
            }
        }
        proposal.members.retain(|m| !remove.contains(&m.handle));
        for (handles, role) in [(add, Role::Party), (observers, Role::Observer)] {
            for h in handles {
                if proposal.members.iter().any(|m| &m.handle == h) {
                    return Err(ClientError::Input(format!("{h} is a member already")));
                }
                let keys = match self.member.peer(h) {
                    Some(p) => p.keys,
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
        proposal.reads = BodyVersion::SUPPORTED.to_vec();
        if !proposal.members.iter().any(|m| m.role == Role::Party) {
            return Err(ClientError::Input(
                "a channel needs at least one party".into(),
            ));
        }
        if let Some(a) = self.blocking_alert(&channel) {
            // Nothing changes, not even the routing record, while blocked.
            return Err(ClientError::Blocked {
                kind: a.kind,
                detail: a.detail,
            });
        }
        // Routing first: joiners must be able to receive the proposal and
        // answer it; leavers stay routed until the new epoch opens.
        let mut routing: Vec<Handle> = current;
        routing.extend(proposal.members.iter().map(|m| m.handle.clone()));
        routing.sort();
        routing.dedup();
        // A party's amendment adds nobody: the routing stays the creator's.
        if mediator.as_ref() == Some(self.me()) {
            self.relay.set_members(channel, &routing).await?;
        }
        self.send_body(channel, Body::Amendment(proposal), None)
            .await
    }

    /// Leaves `channel`: withdraws this member's consent. A party's leave
    /// takes effect as soon as the others receive it (no answer awaited):
    /// nothing sent afterwards is encrypted to it. Needs every member to
    /// read body version 3; the mediator does not leave (it amends).
    pub async fn leave(&mut self, channel: ChannelId) -> Result<MessageId, ClientError> {
        self.connect().await?;
        let state = self.channel_state(&channel)?;
        let Some(setup) = state.setup() else {
            return Err(ClientError::UnknownChannel(channel.to_hex()));
        };
        if state.member(self.me()).map(|m| m.role) != Some(Role::Party) {
            return Err(ClientError::Input(
                "only a party leaves a channel; a mediator ends its part by an amendment".into(),
            ));
        }
        if state.version().is_none_or(|v| v < BodyVersion::V3) {
            return Err(ClientError::Input(
                "leaving needs every member's client to read protocol body version 3; ask the mediator to remove you (`channel amend --remove`)".into(),
            ));
        }
        if state.pending().is_some() {
            return Err(ClientError::Input(
                "a proposal awaits answers in this channel: answer it (`channel show`, then `channel accept` or `decline`), then leave".into(),
            ));
        }
        let mut proposal = setup.proposal.clone();
        proposal.members.retain(|m| &m.handle != self.me());
        proposal.reads = BodyVersion::SUPPORTED.to_vec();
        self.send_body(channel, Body::Amendment(proposal), None)
            .await
    }

    /// Accepts the proposal awaiting this member's answer in `channel` (its
    /// creation, or a pending amendment), only if it is `proposal`: the one
    /// whose [`Client::consent`] statement the user was shown. If another
    /// proposal arrived meanwhile, nothing is sent.
    pub async fn accept(
        &mut self,
        channel: ChannelId,
        proposal: backchannel_protocol::Digest,
    ) -> Result<MessageId, ClientError> {
        let Some(statement) = self.consent(channel)? else {
            return Err(ClientError::NothingToAccept(channel.to_hex()));
        };
        if statement.digest != proposal {
            return Err(ClientError::ProposalChanged {
                shown: super::consent::short(&proposal),
                now: statement.short_digest(),
            });
        }
        self.send_body(channel, Body::accept(proposal), None).await
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
        self.check_act(channel, &body)?;
        self.send_body(channel, Body::structured(body)?, in_reply_to)
            .await
    }

    /// Refuses an act this member may not make (a party's finding, a lapse
    /// confirmation of another's assurance): every board would ignore it.
    pub fn check_act(
        &self,
        channel: ChannelId,
        body: &backchannel_protocol::commitments::Structured,
    ) -> Result<(), ClientError> {
        use backchannel_protocol::commitments::authority::{self, Named};
        // Tests of what other members' boards do with such an act send one.
        #[cfg(debug_assertions)]
        if std::env::var("BACKCHANNEL_TEST_BREAK")
            .is_ok_and(|r| r.split(',').any(|x| x.trim() == "authority"))
        {
            return Ok(());
        }
        let (entries, roster) = self.fold_inputs(channel)?;
        let payloads: Vec<&Payload> = entries.iter().map(|e| &e.payload).collect();
        let me = self.me();
        let sender = authority::Sender {
            handle: me,
            role: roster
                .members
                .iter()
                .find(|(h, _)| h == me)
                .map(|(_, r)| *r),
            mediator_reads: roster.mediator_reads,
        };
        let lookup = |id: &str| match payloads
            .iter()
            .find(|p| p.header().message_id.to_hex() == id)
        {
            Some(Payload::Full {
                header,
                body: Body::Structured(s),
                ..
            }) => Named::Structured {
                sender: &header.sender,
                body: s.value(),
            },
            Some(p) => Named::Other {
                sender: &p.header().sender,
                stub: matches!(p, Payload::Stub { .. }),
            },
            None => Named::Unknown,
        };
        authority::check(body, &sender, lookup).map_err(ClientError::Unauthorized)
    }

    /// Sends an explicit receipt (the head vector) in an active channel.
    pub async fn send_receipt(&mut self, channel: ChannelId) -> Result<MessageId, ClientError> {
        self.send_body(channel, Body::Receipt, None).await
    }

    /// Sends a heartbeat in an active channel.
    pub async fn send_heartbeat(&mut self, channel: ChannelId) -> Result<MessageId, ClientError> {
        self.send_body(channel, Body::Heartbeat, None).await
    }

    /// Opens a session to `peer` with a claimed one-time key, checked by
    /// the machine against the pinned identity key.
    async fn open_session(&mut self, peer: &Handle) -> Result<(), ClientError> {
        self.connect().await?;
        let claim = self.relay.claim(peer).await?;
        let (keys, one_time) = claim.decode()?;
        let now = self.now();
        let result = self
            .member
            .handle_claimed_key(now, peer, keys, claim.key_version, &one_time);
        self.persist()?;
        Ok(result?)
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
        #[cfg(not(feature = "adversarial"))]
        let _ = &overrides;
        self.send_with(channel, |member, now, rng| {
            #[cfg(feature = "adversarial")]
            if !overrides.is_empty() {
                return member.dangerous_equivocate(
                    now,
                    channel,
                    body.clone(),
                    overrides.clone(),
                    rng,
                );
            }
            member.send(now, channel, body.clone(), in_reply_to, rng)
        })
        .await
    }

    /// Runs `send` on the machine (claiming keys and retrying once if a
    /// session is missing), commits, and posts.
    async fn send_with(
        &mut self,
        channel: ChannelId,
        mut send: impl FnMut(
            &mut backchannel_protocol::member::Member,
            backchannel_protocol::Timestamp,
            &mut rand::rngs::OsRng,
        ) -> Result<MessageId, SendError>,
    ) -> Result<MessageId, ClientError> {
        // Offline, a message is still prepared and committed (queued) when
        // every session it needs exists; a first message to someone needs
        // their one-time key from the relay, so it is refused, never queued.
        let online = match self.connect().await {
            Ok(()) => true,
            Err(e) if e.leaves_queued() => false,
            Err(e) => return Err(e),
        };
        if online {
            self.flush_keeping_queue().await?;
        } else if self.vault.restored_unchecked()? {
            return Err(ClientError::NotQueued(
                "this store was restored from a backup and the relay has not yet confirmed what it holds of you, so a message prepared now could take a position already used".into(),
            ));
        }
        let mut claimed = false;
        let message_id = loop {
            let now = self.now();
            let mut rng = rand::rngs::OsRng;
            match send(&mut self.member, now, &mut rng) {
                Ok(id) => break id,
                Err(SendError::NoSession(peers)) if !claimed => {
                    if !online {
                        self.persist()?;
                        return Err(ClientError::NotQueued(format!(
                            "the relay cannot be reached, and a first message to {} needs a one-time key from it",
                            peers.iter().map(Handle::to_string).collect::<Vec<_>>().join(", ")
                        )));
                    }
                    for peer in peers {
                        self.open_session(&peer).await?;
                    }
                    claimed = true;
                }
                Err(e) => {
                    self.persist()?;
                    return Err(ClientError::from_send(channel, e));
                }
            }
        };
        self.persist()?;
        crash_point("after_outbox_commit");
        // Committed: from here the message is delivered or queued, so no
        // error may suggest it was not (a retry would send it twice).
        if let Err(e) = self.flush_outbox().await {
            self.last_post_error = Some(super::outbox::PostFailure::of(&e));
        } else {
            self.last_post_error = None;
        }
        Ok(message_id)
    }

    /// Sends raw `body` bytes (kind tag first) under body `version`, as a
    /// newer or broken client would. For the conformance harness.
    #[cfg(feature = "conformance")]
    pub async fn dangerous_send_raw(
        &mut self,
        channel: ChannelId,
        version: backchannel_protocol::payload::BodyVersion,
        body: &[u8],
    ) -> Result<MessageId, ClientError> {
        self.send_with(channel, |m, now, rng| {
            m.dangerous_send_raw(now, channel, version, body, rng)
        })
        .await
    }

    /// Sends `body` to `to` alone under a header naming `claimed` as its
    /// sender (a forgery `to` must refuse). For the conformance harness.
    #[cfg(feature = "conformance")]
    pub async fn dangerous_send_as(
        &mut self,
        channel: ChannelId,
        claimed: &Handle,
        to: &Handle,
        body: Body,
    ) -> Result<MessageId, ClientError> {
        self.send_with(channel, |m, now, rng| {
            m.dangerous_send_as(now, channel, claimed, to, body.clone(), rng)
        })
        .await
    }

    /// Posts every committed, unanswered post, oldest first, each after the
    /// previous one was answered. Returns how many went out.
    pub async fn flush_outbox(&mut self) -> Result<usize, ClientError> {
        // Checked before anything is sent in this open, even with nothing
        // queued: a stale store then prepares only what it may send.
        self.check_own_record().await?;
        if self.member.outbox().next().is_none() {
            return Ok(0);
        }
        let mut sent = 0;
        while let Some(t) = self.member.poll_transmit() {
            self.connect().await?;
            let envelopes: Vec<EnvelopeJson> = t.envelopes.iter().map(EnvelopeJson::from).collect();
            let posted = self.relay.post(&t.channel.to_hex(), envelopes).await;
            self.member.handle_posted(t.id, posted.is_ok());
            posted?;
            crash_point("after_post");
            self.persist()?;
            sent += 1;
        }
        Ok(sent)
    }
}
