//! A channel as one member sees it, built only from verified payloads (never
//! from the relay's routing record): who was proposed with which keys, who
//! accepted or declined, which epoch is open, and every sender's chain.
//!
//! Feed every payload (received or sent, in processing order) through
//! [`ChannelState::handle_payload`]; ask [`ChannelState::prepare`] for the
//! header and the recipients of the next message. No I/O, no clock.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::ids::{ChannelId, Digest, EpochNumber, Handle, MessageId, Seq, Timestamp};
use crate::payload::{
    Body, BodyKind, BodyVersion, Header, Member, Payload, Policy, Proposal, Role,
};
use crate::transcript::{Chain, ChainError, Epoch, Head, HeadVector, Placed, SenderLog};

/// Whether a recipient gets the full copy or a stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    /// Header, salt and body.
    Full,
    /// Header and body hash only (content the recipient may not read).
    Stub,
}

/// A party's answer to the proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Accepted.
    Accepted,
    /// Declined, with the party's reason.
    Declined {
        /// Why.
        reason: String,
    },
}

/// The channel's set-up as proposed end to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Digest of the creation message; epoch 1 opens with it.
    pub digest: Digest,
    /// Who proposed it (the mediator).
    pub proposer: Handle,
    /// Members and policy.
    pub proposal: Proposal,
    /// When the proposer sent it.
    pub sent_at: Timestamp,
    /// Parties' answers so far.
    pub responses: BTreeMap<Handle, Response>,
    /// The body version the proposal was written in (its answers use it).
    pub version: BodyVersion,
    /// The body versions each member announced: the proposer in the
    /// proposal, each party in its acceptance.
    pub announced: BTreeMap<Handle, Vec<BodyVersion>>,
}

impl Setup {
    fn new(h: &Header, digest: Digest, proposal: &Proposal) -> Setup {
        // A party that proposes (version 3) accepts its own proposal.
        let proposer_is_party = proposal
            .members
            .iter()
            .any(|m| m.handle == h.sender && m.role == Role::Party);
        let responses = if proposer_is_party {
            BTreeMap::from([(h.sender.clone(), Response::Accepted)])
        } else {
            BTreeMap::new()
        };
        Setup {
            digest,
            proposer: h.sender.clone(),
            proposal: proposal.clone(),
            sent_at: h.sent_at,
            responses,
            version: h.version,
            announced: BTreeMap::from([(h.sender.clone(), proposal.reads.clone())]),
        }
    }

    /// The channel's mediator: the member with that role.
    pub fn mediator(&self) -> Option<&Handle> {
        self.proposal
            .members
            .iter()
            .find(|m| m.role == Role::Mediator)
            .map(|m| &m.handle)
    }

    /// True if this proposal only takes its proposer out of `current`
    /// (same title, policy and other members): a member leaving, which
    /// takes effect with no answer awaited (version 3).
    pub fn is_leave(&self, current: &Setup) -> bool {
        let mut rest = current.proposal.members.clone();
        rest.retain(|m| m.handle != self.proposer);
        self.version >= BodyVersion::V3
            && rest.len() + 1 == current.proposal.members.len()
            && rest == self.proposal.members
            && self.proposal.title == current.proposal.title
            && self.proposal.policy == current.proposal.policy
    }

    /// The highest body version every member of this set-up announced, if
    /// they share one. A member that announces nothing (an observer answers
    /// no proposal) is held to the baseline every protocol-v1 client reads.
    pub fn common_version(&self) -> Option<BodyVersion> {
        let baseline: Vec<BodyVersion> = BodyVersion::SUPPORTED
            .into_iter()
            .filter(|v| *v <= BodyVersion::BASELINE)
            .collect();
        let lists = self.proposal.members.iter().map(|m| {
            self.announced
                .get(&m.handle)
                .map_or(&baseline[..], Vec::as_slice)
        });
        BodyVersion::common(lists)
    }
}

/// Where the channel stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelStatus {
    /// Every party accepted: messages flow in the open epoch.
    Active,
    /// A party declined: the channel never opens.
    Declined {
        /// Who declined.
        by: Handle,
    },
    /// Proposed, waiting for these parties.
    Pending {
        /// Parties that have not answered.
        waiting_for: Vec<Handle>,
    },
    /// This member left in an amendment: it sends and receives no more.
    Left,
    /// No creation proposal seen yet.
    Unknown,
}

impl ChannelStatus {
    /// Where it stands, in words (for an error a person reads).
    pub fn words(&self) -> String {
        let names = |v: &[Handle]| {
            v.iter()
                .map(Handle::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            ChannelStatus::Active => "it is open".into(),
            ChannelStatus::Declined { by } => format!("{by} declined it; it never opens"),
            ChannelStatus::Pending { waiting_for } => format!(
                "it opens when every party has accepted, and this store has no acceptance yet from {}; `backchannel sync` fetches answers, `backchannel channel show` says who has answered",
                names(waiting_for)
            ),
            ChannelStatus::Left => "you are no longer a member of it".into(),
            ChannelStatus::Unknown => "no proposal of it is held here; `backchannel sync` fetches it".into(),
        }
    }
}

/// What a payload did to the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Every party accepted; this epoch is open.
    Activated(Epoch),
    /// Two accounts of one position disagree: a member's head vector names
    /// another digest than the message held (or than another member's head
    /// vector) at the same sender, epoch and position.
    Fork {
        /// Whose chain.
        member: Handle,
        /// Epoch number.
        epoch: u32,
        /// Position.
        seq: Seq,
        /// Who reported the other digest.
        claimed_by: Handle,
        /// The digest it reported.
        claimed: Digest,
        /// The digest held here (from the message itself, or from another
        /// member's report, named in `held_from`).
        held: Digest,
        /// Where the held digest came from: the member itself (its message)
        /// or another member's head vector.
        held_from: Handle,
    },
    /// A message arrived beyond the next position: these are missing.
    Gap {
        /// Whose chain.
        sender: Handle,
        /// Epoch number.
        epoch: u32,
        /// The missing positions.
        missing: Vec<Seq>,
        /// The message that revealed the gap.
        message_id: MessageId,
    },
    /// A message filled a position reported missing.
    Reorder {
        /// Whose chain.
        sender: Handle,
        /// Epoch number.
        epoch: u32,
        /// Its position.
        seq: Seq,
        /// The late message.
        message_id: MessageId,
    },
    /// A member sent content or a control message.
    Message {
        /// Sender.
        sender: Handle,
        /// Message id.
        message_id: MessageId,
        /// Kind of body.
        kind: BodyKind,
    },
    /// The creation proposal arrived.
    Proposed {
        /// Proposer.
        by: Handle,
    },
    /// A party answered the proposal.
    Responded {
        /// The party.
        member: Handle,
        /// True if it accepted.
        accepted: bool,
    },
}

/// A payload that does not fit the channel as this member knows it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The sender's chain does not continue here.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// Content before the channel is active, or a set-up message after.
    #[error("a {kind:?} body does not belong in epoch {epoch}")]
    WrongEpoch {
        /// Body kind.
        kind: BodyKind,
        /// Epoch number.
        epoch: u32,
    },
    /// The channel is not active, so nothing but set-up can be sent.
    #[error("the channel is not open: {0}")]
    NotActive(String),
    /// The sender is not a member of the proposal.
    #[error("{0} is not a member of the channel as proposed")]
    NotAMember(Handle),
    /// The payload is for an epoch this member cannot open yet (it has not
    /// seen every acceptance); hold it and try again later.
    #[error("epoch {0} is not open yet here")]
    NotYetOpen(u32),
    /// Another proposal than the one this member holds, or a proposal that
    /// leaves this member out.
    #[error("proposal conflict: {0}")]
    Proposal(&'static str),
    /// A response that does not fit (wrong proposal, from a non-party, or
    /// changed).
    #[error("response: {0}")]
    Response(&'static str),
    /// A body that needs a later version than every member reads.
    #[error("this needs body version {needed}, and not every member of the channel reads it (they share version {open}): each must update its client, then the channel must be amended so they announce it")]
    Version {
        /// What the body needs.
        needed: BodyVersion,
        /// The open epoch's version.
        open: BodyVersion,
    },
    /// The payload names another channel.
    #[error("payload is for channel {found}, not {expected}")]
    WrongChannel {
        /// This channel.
        expected: ChannelId,
        /// The payload's.
        found: ChannelId,
    },
}

/// The header and recipients of a message about to be sealed.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The header to seal.
    pub header: Header,
    /// Every other member and the copy it gets.
    pub recipients: Vec<(Handle, CopyKind)>,
}

/// One member's view of one channel.
#[derive(Clone, Debug)]
pub struct ChannelState {
    id: ChannelId,
    me: Handle,
    setup: Option<Setup>,
    epoch: Epoch,
    /// An amendment proposed in the open epoch, not yet accepted by all.
    pending: Option<Setup>,
    /// The epoch this member joined in the middle of (it cannot know the
    /// positions sent before it joined, so it counts no gaps there).
    joined_in: Option<EpochNumber>,
    /// Members of earlier epochs who are no longer members.
    former: Vec<Handle>,
    /// For a member that joined mid-epoch: the epoch's members, as the
    /// amendment's head vector names them (its answer goes to them too).
    heard_members: Vec<Handle>,
    chains: BTreeMap<(EpochNumber, Handle), SenderLog>,
    /// Head-vector reports of positions not held here yet: (digest, reporter).
    claims: BTreeMap<(EpochNumber, Handle, u64), (Digest, Handle)>,
    /// For (epoch, member, sender): the highest contiguous position of
    /// sender that member's head vectors report (its receipts).
    coverage: BTreeMap<(EpochNumber, Handle, Handle), u64>,
}

impl ChannelState {
    /// A channel this member has seen nothing of yet.
    pub fn new(id: ChannelId, me: Handle) -> Self {
        ChannelState {
            id,
            me,
            setup: None,
            epoch: Epoch::genesis(id),
            pending: None,
            joined_in: None,
            former: Vec::new(),
            heard_members: Vec::new(),
            chains: BTreeMap::new(),
            claims: BTreeMap::new(),
            coverage: BTreeMap::new(),
        }
    }

    /// A sender's log in an epoch.
    pub fn sender_log(&self, epoch: EpochNumber, sender: &Handle) -> Option<&SenderLog> {
        self.chains.get(&(epoch, sender.clone()))
    }

    /// True if `seq` of `sender` in the open epoch is reported missing.
    pub fn is_gap(&self, sender: &Handle, seq: u64) -> bool {
        self.sender_log(self.epoch.number, sender)
            .is_some_and(|l| l.is_gap(seq))
    }

    /// True if `seq` of `sender` in the open epoch is held already.
    pub fn holds(&self, sender: &Handle, seq: u64) -> bool {
        self.sender_log(self.epoch.number, sender)
            .is_some_and(|l| seq > 0 && l.digest_at(seq).is_some())
    }

    /// The highest position of `sender` that `member`'s receipts cover in
    /// `epoch` (a member covers its own messages).
    pub fn covered(&self, epoch: EpochNumber, member: &Handle, sender: &Handle) -> u64 {
        if member == sender {
            return u64::MAX;
        }
        self.coverage
            .get(&(epoch, member.clone(), sender.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// The channel id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The set-up, once the creation proposal was seen.
    pub fn setup(&self) -> Option<&Setup> {
        self.setup.as_ref()
    }

    /// The members as proposed (empty before the proposal).
    pub fn members(&self) -> &[Member] {
        self.setup.as_ref().map_or(&[], |s| &s.proposal.members)
    }

    /// A member by handle.
    pub fn member(&self, handle: &Handle) -> Option<&Member> {
        self.members().iter().find(|m| &m.handle == handle)
    }

    /// The agreed policy (once proposed).
    pub fn policy(&self) -> Option<Policy> {
        self.setup.as_ref().map(|s| s.proposal.policy)
    }

    /// The open epoch (epoch 0 until every party accepted).
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Where the channel stands.
    pub fn status(&self) -> ChannelStatus {
        let Some(setup) = self.setup.as_ref().or(self.pending.as_ref()) else {
            return ChannelStatus::Unknown;
        };
        if !setup.proposal.members.iter().any(|m| m.handle == self.me) {
            return ChannelStatus::Left;
        }
        let waiting = match Self::answers(setup) {
            Err(by) => return ChannelStatus::Declined { by },
            Ok(w) => w,
        };
        if waiting.is_empty() && self.setup.is_some() {
            ChannelStatus::Active
        } else {
            ChannelStatus::Pending {
                waiting_for: waiting,
            }
        }
    }

    /// The parties that have not answered `setup`, or the first that declined.
    fn answers(setup: &Setup) -> Result<Vec<Handle>, Handle> {
        let mut waiting = Vec::new();
        for m in setup
            .proposal
            .members
            .iter()
            .filter(|m| m.role == Role::Party)
        {
            match setup.responses.get(&m.handle) {
                Some(Response::Declined { .. }) => return Err(m.handle.clone()),
                Some(Response::Accepted) => {}
                None => waiting.push(m.handle.clone()),
            }
        }
        Ok(waiting)
    }

    /// An amendment waiting for the parties' answers.
    pub fn pending(&self) -> Option<&Setup> {
        self.pending.as_ref()
    }

    /// Members of earlier epochs who left.
    pub fn former_members(&self) -> &[Handle] {
        &self.former
    }

    /// The epoch this member joined in the middle of, if it did: it holds
    /// nothing of that epoch before the amendment that brought it (nor of
    /// its own chain there, if it is a reinstalled member).
    pub fn joined_in(&self) -> Option<EpochNumber> {
        self.joined_in
    }

    /// For a member that joined mid-epoch: that epoch's members by handle.
    pub fn heard_members(&self) -> &[Handle] {
        &self.heard_members
    }

    /// The head of `member`'s chain in `epoch`.
    pub fn head(&self, epoch: EpochNumber, member: &Handle) -> Head {
        self.chains.get(&(epoch, member.clone())).map_or(
            Head {
                seq: crate::Seq(0),
                digest: if epoch == self.epoch.number {
                    self.epoch.opening
                } else {
                    Epoch::genesis(self.id).opening
                },
            },
            SenderLog::head,
        )
    }

    fn heads_for(&self, epoch: Epoch, members: &[Member]) -> HeadVector {
        HeadVector(
            members
                .iter()
                .map(|m| {
                    let head = self.chains.get(&(epoch.number, m.handle.clone())).map_or(
                        Head {
                            seq: crate::Seq(0),
                            digest: epoch.opening,
                        },
                        SenderLog::head,
                    );
                    (m.handle.clone(), head)
                })
                .collect(),
        )
    }

    /// Applies one verified payload (received, or this member's own after
    /// sealing). On error nothing changed.
    pub fn handle_payload(
        &mut self,
        payload: &Payload,
        digest: Digest,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        let h = payload.header();
        if h.channel_id != self.id {
            return Err(ChannelError::WrongChannel {
                expected: self.id,
                found: h.channel_id,
            });
        }
        let genesis = Epoch::genesis(self.id);
        let body = match payload {
            Payload::Full { body, .. } => Some(body),
            Payload::Stub { .. } => None,
        };
        // A member added by an amendment first hears of the channel through
        // it, in an epoch it was not part of: it takes that epoch as given.
        let mut epoch = self.epoch;
        let mut joined_in = self.joined_in;
        let mut heard = None;
        if self.setup.is_none()
            && self.pending.is_none()
            && h.epoch != genesis
            && matches!(body, Some(Body::Amendment(_)))
        {
            epoch = h.epoch;
            joined_in = Some(h.epoch.number);
            heard = Some(h.heads.0.keys().cloned().collect::<Vec<_>>());
        }
        if h.epoch != genesis && h.epoch.number < epoch.number && self.had_epoch(&h.epoch) {
            return self.handle_late(h, digest);
        }
        if h.epoch != genesis && h.epoch != epoch {
            return Err(if h.epoch.number > epoch.number {
                ChannelError::NotYetOpen(h.epoch.number.0)
            } else {
                ChannelError::Chain(ChainError::Epoch {
                    expected: epoch,
                    found: h.epoch,
                })
            });
        }
        let kind = h.body_kind;
        if (kind == BodyKind::Creation && h.epoch != genesis)
            || (matches!(kind, BodyKind::Amendment) && h.epoch == genesis)
            || (kind.is_content() && h.epoch == genesis)
        {
            return Err(ChannelError::WrongEpoch {
                kind,
                epoch: h.epoch.number.0,
            });
        }

        let mut events = Vec::new();
        let mut new_setup = None;
        let mut new_pending = None;
        match body {
            Some(Body::Creation(proposal)) => {
                Self::check_proposer(proposal, &h.sender)?;
                if !proposal.members.iter().any(|m| m.handle == self.me) {
                    return Err(ChannelError::Proposal(
                        "the proposal does not name this member",
                    ));
                }
                match &self.setup {
                    Some(s) if s.digest != digest => {
                        return Err(ChannelError::Proposal(
                            "a second, different creation proposal",
                        ));
                    }
                    Some(_) => {}
                    None => {
                        new_setup = Some(Setup::new(h, digest, proposal));
                        events.push(ChannelEvent::Proposed {
                            by: h.sender.clone(),
                        });
                    }
                }
            }
            Some(Body::Amendment(proposal)) => {
                match &self.setup {
                    Some(s) if s.mediator() == Some(&h.sender) => {
                        Self::check_proposer(proposal, &h.sender)?;
                    }
                    Some(s) => Self::check_party_proposal(s, self.pending.as_ref(), proposal, h)?,
                    None => Self::check_proposer(proposal, &h.sender)?,
                }
                if self.setup.is_some() && self.status() != ChannelStatus::Active {
                    return Err(ChannelError::Proposal(
                        "an amendment before the channel is active",
                    ));
                }
                new_pending = Some(Setup::new(h, digest, proposal));
                events.push(ChannelEvent::Proposed {
                    by: h.sender.clone(),
                });
            }
            _ => {}
        }
        let setup = new_setup.as_ref().or(self.setup.as_ref());
        let pending = new_pending.as_ref().or(self.pending.as_ref());
        if setup.is_none() && pending.is_none() {
            // Nothing can be placed before the proposal; the caller holds it.
            return Err(ChannelError::NotYetOpen(h.epoch.number.0));
        }
        // Who may send in this epoch: its members, and (while an amendment
        // is pending) the members it would add.
        let sender = setup
            .and_then(|s| s.proposal.members.iter().find(|m| m.handle == h.sender))
            .or_else(|| {
                pending.and_then(|p| p.proposal.members.iter().find(|m| m.handle == h.sender))
            });
        if sender.is_none() {
            return Err(ChannelError::NotAMember(h.sender.clone()));
        }

        let response = match body {
            Some(Body::Acceptance { proposal, .. }) => Some((*proposal, Response::Accepted)),
            Some(Body::Decline { proposal, reason }) => Some((
                *proposal,
                Response::Declined {
                    reason: reason.clone(),
                },
            )),
            _ => None,
        };
        // Which proposal it answers: the creation (in epoch 0) or the pending amendment.
        let mut answers_pending = false;
        if let Some((proposal, answer)) = &response {
            let target = if setup.is_some_and(|s| s.digest == *proposal) && h.epoch == genesis {
                setup
            } else if pending.is_some_and(|p| p.digest == *proposal) && h.epoch != genesis {
                answers_pending = true;
                pending
            } else {
                return Err(ChannelError::Response("it answers another proposal"));
            };
            let Some(target) = target else {
                return Err(ChannelError::Response("it answers another proposal"));
            };
            let role = target
                .proposal
                .members
                .iter()
                .find(|m| m.handle == h.sender)
                .map(|m| m.role);
            if role != Some(Role::Party) {
                return Err(ChannelError::Response("only parties answer a proposal"));
            }
            // The same answer again must announce the same versions, or the
            // members would disagree on the epoch's version.
            let reads = match body {
                Some(Body::Acceptance { reads, .. }) => Some(reads),
                _ => None,
            };
            if target
                .responses
                .get(&h.sender)
                .is_some_and(|prev| prev != answer)
                || (target.responses.contains_key(&h.sender)
                    && reads.is_some_and(|r| target.announced.get(&h.sender) != Some(r)))
            {
                return Err(ChannelError::Response(
                    "the party already answered differently",
                ));
            }
        }

        // Every check passed: place it in the sender's log, then apply.
        let mut log = self
            .chains
            .get(&(h.epoch.number, h.sender.clone()))
            .cloned()
            .unwrap_or_else(|| SenderLog::new(h.epoch));
        match log.place(h.epoch, h.seq, h.prev, digest)? {
            Placed::Next => {}
            Placed::Late => events.push(ChannelEvent::Reorder {
                sender: h.sender.clone(),
                epoch: h.epoch.number.0,
                seq: h.seq,
                message_id: h.message_id,
            }),
            // A member that joined mid-epoch never saw that epoch's start.
            Placed::Ahead(_) if joined_in == Some(h.epoch.number) => {}
            Placed::Ahead(missing) => events.push(ChannelEvent::Gap {
                sender: h.sender.clone(),
                epoch: h.epoch.number.0,
                missing,
                message_id: h.message_id,
            }),
        }
        self.chains.insert((h.epoch.number, h.sender.clone()), log);
        self.epoch = epoch;
        self.joined_in = joined_in;
        if let Some(heard) = heard {
            self.heard_members = heard;
        }
        if joined_in != Some(h.epoch.number) {
            self.check_heads(h, digest, &mut events);
        } else if let Some(own) = h.heads.0.get(&self.me).filter(|o| o.seq.0 > 0) {
            // A joiner checks nothing of an epoch it never saw, but keeps
            // what others say of its own chain there (a reinstalled device
            // resumes beyond it).
            self.claims
                .entry((h.epoch.number, self.me.clone(), own.seq.0))
                .or_insert((own.digest, h.sender.clone()));
        }
        if let Some(s) = new_setup {
            self.setup = Some(s);
        }
        if let Some(p) = new_pending {
            self.pending = Some(p);
        }
        if let Some((_, answer)) = response {
            events.push(ChannelEvent::Responded {
                member: h.sender.clone(),
                accepted: answer == Response::Accepted,
            });
            let target = if answers_pending {
                self.pending.as_mut()
            } else {
                self.setup.as_mut()
            };
            if let Some(t) = target {
                t.responses.insert(h.sender.clone(), answer);
                if let Some(Body::Acceptance { reads, .. }) = body {
                    t.announced.insert(h.sender.clone(), reads.clone());
                }
            }
        }
        if !matches!(
            kind,
            BodyKind::Creation | BodyKind::Acceptance | BodyKind::Decline | BodyKind::Amendment
        ) || events.is_empty()
        {
            events.push(ChannelEvent::Message {
                sender: h.sender.clone(),
                message_id: h.message_id,
                kind,
            });
        }
        self.activate(&mut events);
        Ok(events)
    }

    /// True if this member held messages of `epoch` (a closed one).
    fn had_epoch(&self, epoch: &Epoch) -> bool {
        self.chains
            .iter()
            .any(|((n, _), log)| *n == epoch.number && log.epoch() == *epoch)
    }

    /// A message of a closed epoch, sent before its sender saw the next
    /// one open (honest crossing at an epoch change): it takes its place in
    /// that epoch's chain, where gaps and reorders still show.
    fn handle_late(
        &mut self,
        h: &Header,
        digest: Digest,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        let known = self
            .setup
            .as_ref()
            .is_some_and(|s| s.proposal.members.iter().any(|m| m.handle == h.sender))
            || self.former.contains(&h.sender)
            || self
                .chains
                .contains_key(&(h.epoch.number, h.sender.clone()));
        if !known {
            return Err(ChannelError::NotAMember(h.sender.clone()));
        }
        let mut log = self
            .chains
            .get(&(h.epoch.number, h.sender.clone()))
            .cloned()
            .unwrap_or_else(|| SenderLog::new(h.epoch));
        let mut events = Vec::new();
        match log.place(h.epoch, h.seq, h.prev, digest)? {
            Placed::Next => {}
            Placed::Late => events.push(ChannelEvent::Reorder {
                sender: h.sender.clone(),
                epoch: h.epoch.number.0,
                seq: h.seq,
                message_id: h.message_id,
            }),
            Placed::Ahead(missing) => events.push(ChannelEvent::Gap {
                sender: h.sender.clone(),
                epoch: h.epoch.number.0,
                missing,
                message_id: h.message_id,
            }),
        }
        self.chains.insert((h.epoch.number, h.sender.clone()), log);
        events.push(ChannelEvent::Message {
            sender: h.sender.clone(),
            message_id: h.message_id,
            kind: h.body_kind,
        });
        Ok(events)
    }

    /// A party's amendment (version 3, in an epoch whose every member
    /// announced it): it changes the title or policy and keeps every member
    /// as they are (only the mediator adds, removes or re-keys members),
    /// or it is its proposer leaving. Never while another proposal waits.
    fn check_party_proposal(
        current: &Setup,
        pending: Option<&Setup>,
        proposal: &Proposal,
        h: &Header,
    ) -> Result<(), ChannelError> {
        let role = current
            .proposal
            .members
            .iter()
            .find(|m| m.handle == h.sender)
            .map(|m| m.role);
        let v3 = h.version >= BodyVersion::V3
            && current
                .common_version()
                .is_some_and(|v| v >= BodyVersion::V3);
        if role != Some(Role::Party) || !v3 {
            return Err(ChannelError::Proposal(
                "only the channel's mediator, or a party in a version 3 epoch, proposes amendments",
            ));
        }
        if pending.is_some() {
            return Err(ChannelError::Proposal(
                "a party proposes nothing while another proposal awaits answers",
            ));
        }
        let mut others = current.proposal.members.clone();
        others.retain(|m| m.handle != h.sender);
        let kept: Vec<_> = proposal
            .members
            .iter()
            .filter(|m| m.handle != h.sender)
            .cloned()
            .collect();
        let leaves = !proposal.members.iter().any(|m| m.handle == h.sender);
        let keeps_self = leaves
            || current
                .proposal
                .members
                .iter()
                .filter(|m| m.handle == h.sender)
                .eq(proposal.members.iter().filter(|m| m.handle == h.sender));
        if kept != others || !keeps_self {
            return Err(ChannelError::Proposal(
                "a party's amendment keeps every member as it is (only the mediator adds or removes members), unless it is the party leaving",
            ));
        }
        Ok(())
    }

    /// A proposal's sender must be a mediator member of it.
    fn check_proposer(proposal: &Proposal, sender: &Handle) -> Result<(), ChannelError> {
        match proposal.members.iter().find(|m| &m.handle == sender) {
            Some(m) if m.role == Role::Mediator => Ok(()),
            _ => Err(ChannelError::Proposal(
                "the proposer is not a mediator member of its own proposal",
            )),
        }
    }

    /// Opens the next epoch once every party accepted the proposal.
    fn activate(&mut self, events: &mut Vec<ChannelEvent>) {
        let genesis = Epoch::genesis(self.id);
        if self.epoch == genesis {
            if let Some(s) = &self.setup {
                if Self::answers(s).is_ok_and(|w| w.is_empty()) {
                    if let Some(next) = genesis.successor(s.digest) {
                        self.epoch = next;
                        events.push(ChannelEvent::Activated(next));
                    }
                }
            }
            return;
        }
        let Some(p) = &self.pending else { return };
        let leave = self.setup.as_ref().is_some_and(|s| p.is_leave(s));
        if !leave && !Self::answers(p).is_ok_and(|w| w.is_empty()) {
            return;
        }
        let Some(next) = self.epoch.successor(p.digest) else {
            return;
        };
        let mut agreed = p.clone();
        if let Some(old) = &self.setup {
            // Answers to the creation stay on record with the new members,
            // and so do the versions a member announced before (a mediator
            // answers no party's amendment, yet still reads what it did).
            for (k, v) in &old.responses {
                agreed
                    .responses
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
            for (k, v) in &old.announced {
                agreed
                    .announced
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
            for m in &old.proposal.members {
                if !agreed.proposal.members.iter().any(|n| n.handle == m.handle)
                    && !self.former.contains(&m.handle)
                {
                    self.former.push(m.handle.clone());
                }
            }
        }
        // A joiner learnt the old members only by handle: they are former too.
        for m in std::mem::take(&mut self.heard_members) {
            if !agreed.proposal.members.iter().any(|n| n.handle == m) && !self.former.contains(&m) {
                self.former.push(m);
            }
        }
        self.setup = Some(agreed);
        self.pending = None;
        self.joined_in = None;
        self.epoch = next;
        events.push(ChannelEvent::Activated(next));
    }

    /// Compares what this message's head vector reports with what is held
    /// (and with what others reported), and checks earlier reports of this
    /// message's own position.
    fn check_heads(&mut self, h: &Header, digest: Digest, events: &mut Vec<ChannelEvent>) {
        let e = h.epoch.number;
        if let Some((claimed, by)) = self.claims.remove(&(e, h.sender.clone(), h.seq.0)) {
            if claimed != digest {
                events.push(ChannelEvent::Fork {
                    member: h.sender.clone(),
                    epoch: e.0,
                    seq: h.seq,
                    claimed_by: by,
                    claimed,
                    held: digest,
                    held_from: h.sender.clone(),
                });
            }
        }
        // The sender's own entry must be where this message's chain stands.
        if let Some(own) = h.heads.0.get(&h.sender) {
            let expected_seq = h.seq.0.saturating_sub(1);
            if own.seq.0 != expected_seq || own.digest != h.prev {
                events.push(ChannelEvent::Fork {
                    member: h.sender.clone(),
                    epoch: e.0,
                    seq: crate::Seq(expected_seq),
                    claimed_by: h.sender.clone(),
                    claimed: own.digest,
                    held: h.prev,
                    held_from: h.sender.clone(),
                });
            }
        }
        for (member, head) in &h.heads.0 {
            if *member == h.sender || head.seq.0 == 0 {
                continue;
            }
            let cov = self
                .coverage
                .entry((e, h.sender.clone(), member.clone()))
                .or_insert(0);
            *cov = (*cov).max(head.seq.0);
            let held = self
                .chains
                .get(&(e, member.clone()))
                .and_then(|l| l.digest_at(head.seq.0));
            match held {
                Some(d) if d != head.digest => events.push(ChannelEvent::Fork {
                    member: member.clone(),
                    epoch: e.0,
                    seq: head.seq,
                    claimed_by: h.sender.clone(),
                    claimed: head.digest,
                    held: d,
                    held_from: member.clone(),
                }),
                Some(_) => {}
                None => match self.claims.get(&(e, member.clone(), head.seq.0)) {
                    Some((other, by)) if *other != head.digest => events.push(ChannelEvent::Fork {
                        member: member.clone(),
                        epoch: e.0,
                        seq: head.seq,
                        claimed_by: h.sender.clone(),
                        claimed: head.digest,
                        held: *other,
                        held_from: by.clone(),
                    }),
                    Some(_) => {}
                    None => {
                        self.claims.insert(
                            (e, member.clone(), head.seq.0),
                            (head.digest, h.sender.clone()),
                        );
                    }
                },
            }
        }
    }

    /// The body version of the open epoch: the highest every member of its
    /// set-up announced (version 1 in a channel opened before protocol v1);
    /// `None` if they share none (nothing can then be written to them all).
    pub fn version(&self) -> Option<BodyVersion> {
        self.setup
            .as_ref()
            .map_or(Some(BodyVersion::BASELINE), Setup::common_version)
    }

    /// The version this member writes `body` in: a creation in the
    /// baseline; an answer in its proposal's version (every member who
    /// reads the proposal reads the answer); everything else in the open
    /// epoch's version.
    fn write_version(&self, body: &Body) -> Result<BodyVersion, ChannelError> {
        let answered = |digest: &Digest| {
            [self.pending.as_ref(), self.setup.as_ref()]
                .into_iter()
                .flatten()
                .find(|s| s.digest == *digest)
                .map(|s| s.version)
        };
        let version = match body {
            Body::Creation(_) => Some(BodyVersion::BASELINE),
            Body::Acceptance { proposal, .. } | Body::Decline { proposal, .. } => {
                answered(proposal).or_else(|| self.version())
            }
            _ => self.version(),
        };
        let version = version.ok_or_else(|| {
            ChannelError::NotActive(
                "its members announced no body version in common: nothing can be written that all of them read".into(),
            )
        })?;
        let needed = match body {
            Body::Structured(s) => s.min_version(),
            _ => BodyVersion::V1,
        };
        if version < needed {
            return Err(ChannelError::Version {
                needed,
                open: version,
            });
        }
        Ok(version)
    }

    /// The header and recipients of this member's next message with `body`.
    /// Nothing changes until the sealed payload is fed back through
    /// [`handle_payload`](Self::handle_payload).
    pub fn prepare(
        &self,
        body: &Body,
        message_id: MessageId,
        sent_at: Timestamp,
        in_reply_to: Option<MessageId>,
    ) -> Result<Prepared, ChannelError> {
        self.prepare_from(body, message_id, sent_at, in_reply_to, None)
    }

    /// The highest position of this member's own chain in `epoch` that
    /// another member's authenticated head vector reports, beyond what is
    /// held here (a store restored from an older copy resumes from it).
    pub fn claimed_own_head(&self, epoch: EpochNumber) -> Option<Head> {
        self.claims
            .iter()
            .filter(|((e, m, _), _)| *e == epoch && *m == self.me)
            .map(|((_, _, seq), (digest, _))| Head {
                seq: crate::Seq(*seq),
                digest: *digest,
            })
            .max_by_key(|h| h.seq)
    }

    /// As [`prepare`](Self::prepare), with this member's own chain resumed
    /// at `own_head` when given (after a restore: never at a position used).
    pub fn prepare_from(
        &self,
        body: &Body,
        message_id: MessageId,
        sent_at: Timestamp,
        in_reply_to: Option<MessageId>,
        own_head: Option<Head>,
    ) -> Result<Prepared, ChannelError> {
        let kind = body.kind();
        // `members`: whose heads the header reports; `to`: who receives it.
        let (epoch, members, to, policy) = match body {
            Body::Creation(p) => {
                if self.setup.is_some() {
                    return Err(ChannelError::Proposal("this channel was already proposed"));
                }
                (
                    Epoch::genesis(self.id),
                    p.members.clone(),
                    p.members.clone(),
                    p.policy,
                )
            }
            Body::Amendment(p) => {
                let Some(setup) = &self.setup else {
                    return Err(ChannelError::NotActive("no creation proposal yet".into()));
                };
                let party = setup
                    .proposal
                    .members
                    .iter()
                    .any(|m| m.handle == self.me && m.role == Role::Party);
                let may = setup.mediator() == Some(&self.me)
                    || (party && self.version().is_some_and(|v| v >= BodyVersion::V3));
                if !may || self.status() != ChannelStatus::Active {
                    return Err(ChannelError::Proposal(
                        "only the mediator of an active channel, or a party where every member reads version 3, proposes amendments",
                    ));
                }
                let to = union(&setup.proposal.members, &p.members);
                (
                    self.epoch,
                    setup.proposal.members.clone(),
                    to,
                    setup.proposal.policy,
                )
            }
            Body::Acceptance { proposal, .. } | Body::Decline { proposal, .. }
                if self.pending.as_ref().is_some_and(|p| p.digest == *proposal) =>
            {
                let pending = self.pending.as_ref().map(|p| p.proposal.clone());
                let Some(p) = pending else {
                    return Err(ChannelError::NotActive("no amendment pending".into()));
                };
                let current = self
                    .setup
                    .as_ref()
                    .map_or_else(|| p.members.clone(), |s| s.proposal.members.clone());
                if !p.members.iter().any(|m| m.handle == self.me) {
                    return Err(ChannelError::NotAMember(self.me.clone()));
                }
                // A joiner answers the epoch's members too (it knows their
                // handles from the amendment's head vector); it has no keys
                // of theirs here, and their roles do not matter for control.
                let heard: Vec<Member> = self
                    .heard_members
                    .iter()
                    .map(|handle| Member {
                        handle: handle.clone(),
                        role: Role::Observer,
                        curve25519: [0; 32],
                        ed25519: [0; 32],
                    })
                    .collect();
                (
                    self.epoch,
                    current.clone(),
                    union(&union(&current, &p.members), &heard),
                    p.policy,
                )
            }
            _ => {
                let Some(setup) = &self.setup else {
                    return Err(ChannelError::NotActive("no creation proposal yet".into()));
                };
                let epoch = match kind {
                    BodyKind::Acceptance | BodyKind::Decline => Epoch::genesis(self.id),
                    _ => match self.status() {
                        ChannelStatus::Active => self.epoch,
                        other => return Err(ChannelError::NotActive(other.words())),
                    },
                };
                let m = setup.proposal.members.clone();
                (epoch, m.clone(), m, setup.proposal.policy)
            }
        };
        if !to.iter().any(|m| m.handle == self.me) {
            return Err(ChannelError::NotAMember(self.me.clone()));
        }
        let held = self
            .chains
            .get(&(epoch.number, self.me.clone()))
            .map(SenderLog::head);
        let mine = match (own_head, held) {
            (Some(o), h) if h.is_none_or(|h| o.seq > h.seq) => Chain::resume(epoch, o),
            (_, Some(h)) => Chain::resume(epoch, h),
            (_, None) => Chain::new(epoch),
        };
        let Some(seq) = mine.next_seq() else {
            return Err(ChannelError::NotActive(
                "this member's chain is full".into(),
            ));
        };
        let header = Header {
            version: self.write_version(body)?,
            channel_id: self.id,
            message_id,
            epoch,
            sender: self.me.clone(),
            seq,
            prev: mine.head().digest,
            sent_at,
            in_reply_to,
            body_kind: kind,
            heads: self.heads_for(epoch, &members),
        };
        let mut header = header;
        if let Some(own) = header.heads.0.get_mut(&self.me) {
            // The own entry is where this message's chain stands.
            *own = mine.head();
        }
        let recipients = to
            .iter()
            .filter(|m| m.handle != self.me)
            .map(|m| {
                let stub = kind.is_content() && m.role == Role::Mediator && !policy.mediator_reads;
                (
                    m.handle.clone(),
                    if stub { CopyKind::Stub } else { CopyKind::Full },
                )
            })
            .collect();
        Ok(Prepared { header, recipients })
    }
}

/// Members of `a` and of `b`, each once, sorted by handle.
fn union(a: &[Member], b: &[Member]) -> Vec<Member> {
    let mut all: BTreeMap<Handle, Member> =
        a.iter().map(|m| (m.handle.clone(), m.clone())).collect();
    for m in b {
        all.entry(m.handle.clone()).or_insert_with(|| m.clone());
    }
    all.into_values().collect()
}

#[cfg(test)]
mod tests;
