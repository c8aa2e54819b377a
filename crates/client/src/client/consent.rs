//! What a proposal changes, in the words a party reads before it consents.
//!
//! The statement is built here, not in a front end, so the CLI and the web
//! interface show the same words, and so an acceptance names exactly the
//! proposal (by digest) whose statement was shown.

use backchannel_protocol::channel::{ChannelState, ChannelStatus, Response, Setup};
use backchannel_protocol::payload::{Body, Payload, Policy, Proposal, Role};
use backchannel_protocol::{duration_words, ChannelId, Digest, Handle, Timestamp};
use serde::{Deserialize, Serialize};

use super::Client;
use crate::error::ClientError;

/// The words said when a proposal grants the mediator the right to read.
pub const MEDIATOR_READS_GRANTED: &str = "once every party has accepted, the mediator will be able to read everything any member sends in this channel from then on; earlier messages stay unreadable to it";

/// The words said when a proposal withdraws it.
pub const MEDIATOR_READS_WITHDRAWN: &str = "once every party has accepted, the mediator will receive only stubs (digests) of what members send from then on; what it could read before stays with it";

/// Hex digits of a proposal digest shown to people and accepted back.
pub const DIGEST_PREFIX_LEN: usize = 12;

/// Which kind of proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    /// Opens the channel (epoch 1).
    Creation,
    /// Changes members or policy (a new epoch).
    Amendment,
    /// A new epoch with the same members and policy, on new sessions.
    Rekey,
    /// A party leaves: it takes effect when received, no answer awaited.
    Leave,
}

/// How this member knows a proposed member's identity key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeyState {
    /// It is this member's own key.
    Yours,
    /// The proposal names another key for this member than its own.
    NotYours,
    /// Pinned and compared in person.
    Verified,
    /// Pinned, not compared: introduced by `by` (or first seen from the
    /// relay when `by` is `None`).
    Introduced {
        /// Who introduced it.
        by: Option<String>,
    },
    /// Not pinned yet: this proposal introduces it.
    New {
        /// The proposer.
        by: String,
    },
    /// Another key than the one pinned for this handle.
    Changed,
}

impl KeyState {
    /// How it reads to people.
    pub fn words(&self) -> String {
        match self {
            KeyState::Yours => "you".into(),
            KeyState::NotYours => "NOT YOUR KEY: the proposal names another key for you".into(),
            KeyState::Verified => "key verified".into(),
            KeyState::Introduced { by: Some(by) } => format!("key introduced by {by}, unverified"),
            KeyState::Introduced { by: None } => "key first seen from the relay, unverified".into(),
            KeyState::New { by } => format!("key introduced by {by} in this proposal, unverified"),
            KeyState::Changed => "KEY CHANGED since you pinned it".into(),
        }
    }
}

/// A member as the proposal names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedMember {
    /// Handle.
    pub handle: Handle,
    /// `mediator`, `party` or `observer`.
    pub role: String,
    /// How this member knows its key.
    pub key: KeyState,
}

/// A channel's policy, as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// Whether the mediator reads content.
    pub mediator_reads: bool,
    /// Seconds members have to receipt a message.
    pub receipt_deadline_s: u32,
    /// Seconds between heartbeats.
    pub heartbeat_interval_s: u32,
}

impl From<Policy> for PolicyView {
    fn from(p: Policy) -> Self {
        PolicyView {
            mediator_reads: p.mediator_reads,
            receipt_deadline_s: p.receipt_deadline_s,
            heartbeat_interval_s: p.heartbeat_interval_s,
        }
    }
}

/// A member kept under another role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    /// The member.
    pub member: Handle,
    /// Its role now.
    pub from: String,
    /// Its role in the proposal.
    pub to: String,
}

/// Where a party's answer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerState {
    /// Accepted.
    Accepted,
    /// Declined.
    Declined,
    /// Not answered yet.
    Waiting,
}

impl AnswerState {
    /// The word for it.
    pub fn word(self) -> &'static str {
        match self {
            AnswerState::Accepted => "accepted",
            AnswerState::Declined => "declined",
            AnswerState::Waiting => "has not answered",
        }
    }
}

/// A party's answer to a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The party.
    pub party: Handle,
    /// What it answered.
    pub answer: AnswerState,
    /// A decline's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything a proposal changes, and the plain statement of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentStatement {
    /// The channel.
    pub channel_id: ChannelId,
    /// The proposal's digest: an acceptance names it.
    pub digest: Digest,
    /// Creation, amendment or rekey.
    pub kind: ProposalKind,
    /// Who proposed it.
    pub proposer: Handle,
    /// The proposer's clock when it sent it.
    pub sent_at: Timestamp,
    /// The epoch it opens once every party accepted.
    pub opens_epoch: u32,
    /// The title it sets.
    pub title: String,
    /// The title before, when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_before: Option<String>,
    /// True when this member is invited into an open channel whose earlier
    /// epochs it never saw (so nothing can be said of what changes).
    pub joining: bool,
    /// Every member of the proposed membership.
    pub members: Vec<ProposedMember>,
    /// Members it adds.
    pub added: Vec<Handle>,
    /// Members it removes.
    pub removed: Vec<Handle>,
    /// Members it keeps under another role.
    #[serde(default)]
    pub role_changes: Vec<RoleChange>,
    /// The policy it sets.
    pub policy: PolicyView,
    /// The policy before (an amendment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_before: Option<PolicyView>,
    /// Each party's answer so far.
    pub answers: Vec<Answer>,
    /// True if this member is a party of the proposed membership that has
    /// not answered: its consent is asked.
    pub awaits_you: bool,
    /// The statement, one sentence per line.
    pub lines: Vec<String>,
}

/// A digest's prefix as shown to people.
pub(crate) fn short(d: &Digest) -> String {
    d.to_hex()[..DIGEST_PREFIX_LEN].to_string()
}

/// One line on a proposal, from it alone (a log has no "before").
pub(crate) fn proposal_summary(digest: Digest, p: &Proposal) -> String {
    let members: Vec<String> = p
        .members
        .iter()
        .map(|m| format!("{} ({})", m.handle, role_name(m.role)))
        .collect();
    format!(
        "proposal {}: {}; members {}; the mediator {}; receipts due within {}; heartbeat every {}. `backchannel channel show` says what it changes.",
        short(&digest),
        quoted(&p.title),
        members.join(", "),
        if p.policy.mediator_reads { "reads content" } else { "gets stubs only" },
        duration_words(p.policy.receipt_deadline_s.into()),
        duration_words(p.policy.heartbeat_interval_s.into()),
    )
}

impl ConsentStatement {
    /// What became of this proposal, given the one awaiting answers now.
    pub fn outcome(&self, pending: Option<&ConsentStatement>) -> &'static str {
        if pending.is_some_and(|p| p.digest == self.digest) {
            "awaiting answers"
        } else if self
            .answers
            .iter()
            .any(|a| a.answer == AnswerState::Declined)
        {
            "declined"
        } else if self
            .answers
            .iter()
            .all(|a| a.answer == AnswerState::Accepted)
        {
            "took effect"
        } else {
            "replaced before every party answered"
        }
    }

    /// The digest prefix shown to people (and accepted back by `--yes`).
    pub fn short_digest(&self) -> String {
        short(&self.digest)
    }

    /// True if `prefix` names this proposal: at least the 12 hex digits
    /// shown (fewer could be matched by a proposal ground to look alike).
    pub fn is_named_by(&self, prefix: &str) -> bool {
        let prefix = prefix.trim().to_ascii_lowercase();
        prefix.len() >= DIGEST_PREFIX_LEN && self.digest.to_hex().starts_with(&prefix)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Mediator => "mediator",
        Role::Observer => "observer",
        Role::Party => "party",
    }
}

fn quoted(title: &str) -> String {
    if title.trim().is_empty() {
        "(untitled)".into()
    } else {
        format!("\u{201c}{title}\u{201d}")
    }
}

impl Client {
    /// The statement of the proposal awaiting answers in `channel` (its
    /// creation until it opens, then a pending amendment), or `None`.
    pub fn consent(&self, channel: ChannelId) -> Result<Option<ConsentStatement>, ClientError> {
        let state = self.channel_state(&channel)?;
        let (setup, before) = match (state.pending(), state.setup()) {
            (Some(p), current) => (p, current),
            (None, Some(s)) if state.epoch().number.0 == 0 => (s, None),
            _ => return Ok(None),
        };
        if matches!(state.status(), ChannelStatus::Declined { .. }) {
            return Ok(None);
        }
        let amendment = state.epoch().number.0 > 0;
        let mut s = self.statement(state, setup, before, amendment);
        s.opens_epoch = state.epoch().number.0 + 1;
        s.lines = lines_of(&s);
        Ok(Some(s))
    }

    /// The statement of any proposal this member holds, by digest (the
    /// epoch history of `channel show` and the consent views use it).
    pub(crate) fn statement(
        &self,
        state: &ChannelState,
        setup: &Setup,
        before: Option<&Setup>,
        amendment: bool,
    ) -> ConsentStatement {
        let p = &setup.proposal;
        let members: Vec<ProposedMember> = p
            .members
            .iter()
            .map(|m| ProposedMember {
                handle: m.handle.clone(),
                role: role_name(m.role).into(),
                key: self.key_state(&m.handle, m.curve25519, m.ed25519, &setup.proposer),
            })
            .collect();
        let old: Vec<&Handle> = before
            .map(|b| b.proposal.members.iter().map(|m| &m.handle).collect())
            .unwrap_or_default();
        let added: Vec<Handle> = if before.is_some() {
            p.members
                .iter()
                .map(|m| m.handle.clone())
                .filter(|h| !old.contains(&h))
                .collect()
        } else {
            Vec::new()
        };
        let removed: Vec<Handle> = old
            .iter()
            .filter(|h| !p.members.iter().any(|m| &&m.handle == *h))
            .map(|h| (*h).clone())
            .collect();
        // A member kept under another role (a party made an observer loses
        // its say): said, never folded into "unchanged".
        let role_changes: Vec<RoleChange> = before
            .map(|b| {
                b.proposal
                    .members
                    .iter()
                    .filter_map(|o| {
                        let n = p.members.iter().find(|n| n.handle == o.handle)?;
                        (n.role != o.role).then(|| RoleChange {
                            member: o.handle.clone(),
                            from: role_name(o.role).into(),
                            to: role_name(n.role).into(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let policy_before = before.map(|b| PolicyView::from(b.proposal.policy));
        let kind = match before {
            Some(b) if setup.is_leave(b) => ProposalKind::Leave,
            None if amendment => ProposalKind::Amendment,
            None => ProposalKind::Creation,
            Some(b)
                if b.proposal.policy == p.policy
                    && added.is_empty()
                    && removed.is_empty()
                    && role_changes.is_empty()
                    && b.proposal.title == p.title =>
            {
                ProposalKind::Rekey
            }
            Some(_) => ProposalKind::Amendment,
        };
        let answers: Vec<Answer> = p
            .members
            .iter()
            .filter(|m| m.role == Role::Party && m.handle != setup.proposer)
            .map(|m| match setup.responses.get(&m.handle) {
                Some(Response::Accepted) => Answer {
                    party: m.handle.clone(),
                    answer: AnswerState::Accepted,
                    reason: None,
                },
                Some(Response::Declined { reason }) => Answer {
                    party: m.handle.clone(),
                    answer: AnswerState::Declined,
                    reason: Some(reason.clone()),
                },
                None => Answer {
                    party: m.handle.clone(),
                    answer: AnswerState::Waiting,
                    reason: None,
                },
            })
            .collect();
        let me = self.me();
        let awaits_you = answers
            .iter()
            .any(|a| &a.party == me && a.answer == AnswerState::Waiting);
        let mut s = ConsentStatement {
            channel_id: state.id(),
            digest: setup.digest,
            kind,
            proposer: setup.proposer.clone(),
            sent_at: setup.sent_at,
            opens_epoch: 1,
            title: p.title.clone(),
            title_before: before
                .filter(|b| b.proposal.title != p.title)
                .map(|b| b.proposal.title.clone()),
            joining: amendment && before.is_none(),
            members,
            added,
            removed,
            role_changes,
            policy: p.policy.into(),
            policy_before,
            answers,
            awaits_you,
            lines: Vec::new(),
        };
        s.lines = lines_of(&s);
        s
    }

    fn key_state(
        &self,
        handle: &Handle,
        curve25519: [u8; 32],
        ed25519: [u8; 32],
        proposer: &Handle,
    ) -> KeyState {
        use backchannel_protocol::member::Trust;
        if handle == self.me() {
            let mine = self.keys();
            return if mine.curve25519 == curve25519 && mine.ed25519 == ed25519 {
                KeyState::Yours
            } else {
                KeyState::NotYours
            };
        }
        match self.member.peer(handle) {
            None => KeyState::New {
                by: proposer.to_string(),
            },
            Some(peer) if peer.keys.curve25519 != curve25519 || peer.keys.ed25519 != ed25519 => {
                KeyState::Changed
            }
            Some(peer) => match &peer.trust {
                Trust::Verified => KeyState::Verified,
                Trust::Introduced { by } => KeyState::Introduced {
                    by: Some(by.clone()),
                },
                Trust::Tofu => KeyState::Introduced { by: None },
            },
        }
    }

    /// Every proposal of `channel` in the order this member holds them,
    /// with the statement each made against the one before it.
    pub fn proposals(&self, channel: ChannelId) -> Result<Vec<ConsentStatement>, ClientError> {
        let state = self.channel_state(&channel)?;
        let mut out = Vec::new();
        let mut before: Option<Setup> = None;
        for m in self
            .member
            .messages()
            .iter()
            .filter(|m| m.channel() == channel)
        {
            let Payload::Full { body, .. } = &m.payload else {
                continue;
            };
            let (Body::Creation(p) | Body::Amendment(p)) = body else {
                continue;
            };
            let h = m.payload.header();
            let mut setup = match (state.setup(), state.pending()) {
                (Some(s), _) if s.digest == m.digest => s.clone(),
                (_, Some(s)) if s.digest == m.digest => s.clone(),
                _ => Setup {
                    digest: m.digest,
                    proposer: h.sender.clone(),
                    proposal: p.clone(),
                    sent_at: h.sent_at,
                    responses: Default::default(),
                    version: h.version,
                    announced: Default::default(),
                },
            };
            // Answers to proposals no longer current come from the log.
            for a in self
                .member
                .messages()
                .iter()
                .filter(|a| a.channel() == channel)
            {
                let Payload::Full { body, .. } = &a.payload else {
                    continue;
                };
                let answer = match body {
                    Body::Acceptance { proposal, .. } if *proposal == m.digest => {
                        Response::Accepted
                    }
                    Body::Decline { proposal, reason } if *proposal == m.digest => {
                        Response::Declined {
                            reason: reason.clone(),
                        }
                    }
                    _ => continue,
                };
                setup
                    .responses
                    .entry(a.payload.header().sender.clone())
                    .or_insert(answer);
            }
            let amendment = matches!(body, Body::Amendment(_));
            let mut s = self.statement(state, &setup, before.as_ref(), amendment);
            s.opens_epoch = h.epoch.number.0 + 1;
            s.lines = lines_of(&s);
            out.push(s);
            before = Some(setup);
        }
        Ok(out)
    }
}

/// The plain statement: who proposes what, then each change in words.
fn lines_of(s: &ConsentStatement) -> Vec<String> {
    let mut lines = Vec::new();
    let party_words = |h: &Handle| {
        s.members
            .iter()
            .find(|m| &m.handle == h)
            .map(|m| format!("{} as {} ({})", m.handle, m.role, m.key.words()))
            .unwrap_or_else(|| h.to_string())
    };
    match s.kind {
        ProposalKind::Creation => {
            lines.push(format!(
                "{} proposes a new channel {} (proposal {}).",
                s.proposer,
                quoted(&s.title),
                s.short_digest()
            ));
            let all: Vec<String> = s.members.iter().map(|m| party_words(&m.handle)).collect();
            lines.push(format!("Members: {}.", all.join("; ")));
        }
        ProposalKind::Leave => {
            lines.push(format!(
                "{} left channel {}: epoch {} opened without it (proposal {}); nothing sent from then on is encrypted to it. A leave awaits no answer.",
                s.proposer,
                quoted(&s.title),
                s.opens_epoch,
                s.short_digest()
            ));
            return lines;
        }
        ProposalKind::Amendment if s.joining => {
            lines.push(format!(
                "{} proposes to add you to channel {}, open before you were invited: epoch {} would open with you in it (proposal {}). You will not see what was said before.",
                s.proposer,
                quoted(&s.title),
                s.opens_epoch,
                s.short_digest()
            ));
            let all: Vec<String> = s.members.iter().map(|m| party_words(&m.handle)).collect();
            lines.push(format!("Members: {}.", all.join("; ")));
        }
        ProposalKind::Amendment | ProposalKind::Rekey => {
            lines.push(format!(
                "{} proposes {} of channel {}: epoch {} would open (proposal {}).",
                s.proposer,
                if s.kind == ProposalKind::Rekey {
                    "a rekey (new sessions, nothing else changes)"
                } else {
                    "an amendment"
                },
                quoted(s.title_before.as_deref().unwrap_or(&s.title)),
                s.opens_epoch,
                s.short_digest()
            ));
            if let Some(old) = &s.title_before {
                lines.push(format!(
                    "Title: {} becomes {}.",
                    quoted(old),
                    quoted(&s.title)
                ));
            }
            for h in &s.added {
                lines.push(format!("Adds {}.", party_words(h)));
            }
            for h in &s.removed {
                lines.push(format!(
                    "Removes {h}: it will receive nothing sent from then on."
                ));
            }
            for c in &s.role_changes {
                let say = if c.from == "party" {
                    ": it will no longer be asked to accept what changes"
                } else {
                    ""
                };
                lines.push(format!(
                    "Makes {} a {} instead of a {}{say}.",
                    c.member, c.to, c.from
                ));
            }
            if s.added.is_empty() && s.removed.is_empty() && s.role_changes.is_empty() {
                let all: Vec<String> = s.members.iter().map(|m| party_words(&m.handle)).collect();
                lines.push(format!("Members unchanged: {}.", all.join("; ")));
            }
        }
    }
    let before = s.policy_before;
    let (reads, was) = (s.policy.mediator_reads, before.map(|b| b.mediator_reads));
    match (was, reads) {
        (None, true) => lines.push(format!(
            "The mediator reads: {} will be able to read everything any member sends in this channel.",
            s.proposer
        )),
        (None, false) => lines.push(
            "The mediator does not read: it receives only stubs (digests) of what members send, enough to check nothing was dropped, never the words.".into(),
        ),
        (Some(false), true) => lines.push(format!("The mediator will read: {MEDIATOR_READS_GRANTED}.")),
        (Some(true), false) => lines.push(format!("The mediator will no longer read: {MEDIATOR_READS_WITHDRAWN}.")),
        (Some(r), _) => lines.push(format!(
            "The mediator {} (unchanged).",
            if r { "reads content" } else { "does not read content, it receives stubs" }
        )),
    }
    let change = |name: &str, now: u32, was: Option<u32>| match was {
        Some(w) if w != now => format!(
            "{name}: {} becomes {}.",
            duration_words(w.into()),
            duration_words(now.into())
        ),
        Some(_) => format!("{name}: {} (unchanged).", duration_words(now.into())),
        None => format!("{name}: {}.", duration_words(now.into())),
    };
    lines.push(change(
        "Receipt deadline (each member receipts every message within it)",
        s.policy.receipt_deadline_s,
        before.map(|b| b.receipt_deadline_s),
    ));
    lines.push(change(
        "Heartbeat interval (each member proves the channel alive)",
        s.policy.heartbeat_interval_s,
        before.map(|b| b.heartbeat_interval_s),
    ));
    let waiting: Vec<String> = s
        .answers
        .iter()
        .filter(|a| a.answer == AnswerState::Waiting)
        .map(|a| a.party.to_string())
        .collect();
    if !waiting.is_empty() {
        lines.push(format!(
            "It takes effect when every party accepts; waiting for {}.",
            waiting.join(", ")
        ));
    }
    for a in s
        .answers
        .iter()
        .filter(|a| a.answer != AnswerState::Waiting)
    {
        lines.push(match &a.reason {
            Some(r) if !r.is_empty() => format!("{} {}: {r}.", a.party, a.answer.word()),
            _ => format!("{} {}.", a.party, a.answer.word()),
        });
    }
    lines
}
