//! A conformance harness for other Backchannel clients. It plays a
//! mediator and a party (two fresh principals on the relay, in a temporary
//! directory) against a client under test, following the fixed script of
//! docs/protocol.md §12: at each step it acts, tells the client's operator
//! what to do, and checks what arrives. A step that sees a broken rule, or
//! that waits longer than the step timeout, fails naming its rule, and the
//! script stops there.
//!
//! It reads the client under test only from the wire, through its own
//! members' machines: what they refuse or raise an alert about, and what the
//! peer's headers, head vectors and copies say.

use std::time::Duration;

use backchannel_client::{Client, ClientError, KdfParams};
use backchannel_protocol::channel::ChannelState;
use backchannel_protocol::commitments::Structured;
use backchannel_protocol::member::{Direction, Rule, StoredMessage};
use backchannel_protocol::payload::{Body, BodyKind, BodyVersion, Payload, Policy};
use backchannel_protocol::transcript::Head;
use backchannel_protocol::{ChannelId, Digest, Handle, MessageId, Seq};

/// What the harness needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The relay's base URL.
    pub relay: String,
    /// The client under test's handle (registered, with one-time keys).
    pub peer: Handle,
    /// How long a step waits for the client under test.
    pub step_timeout: Duration,
}

/// What the operator of the client under test does at a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch, then accept the pending proposal (creation or amendment).
    Accept(ChannelId),
    /// Fetch (and receipt what arrived); send nothing else.
    Sync,
    /// Fetch, then send any text message.
    SendText(ChannelId),
    /// Fetch, then send an acknowledgement (structured) of a message.
    Acknowledge(ChannelId, MessageId),
}

impl Action {
    /// The machine-readable form: `accept channel=…`, `sync`,
    /// `send-text channel=…`, `acknowledge channel=… message=…`.
    pub fn code(&self) -> String {
        match self {
            Action::Accept(c) => format!("accept channel={c}"),
            Action::Sync => "sync".into(),
            Action::SendText(c) => format!("send-text channel={c}"),
            Action::Acknowledge(c, m) => format!("acknowledge channel={c} message={m}"),
        }
    }

    /// In words, for the operator.
    pub fn words(&self) -> String {
        match self {
            Action::Accept(c) => format!("fetch your messages, then accept the pending proposal of channel {c}"),
            Action::Sync => "fetch your messages (your client receipts them); send nothing else".into(),
            Action::SendText(c) => format!("fetch your messages, then send any text message in channel {c}"),
            Action::Acknowledge(c, m) => format!(
                "fetch your messages, then acknowledge message {m} in channel {c} (a structured acknowledgement)"
            ),
        }
    }
}

/// What the harness reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The principals it plays.
    Started {
        /// Its mediator.
        mediator: Handle,
        /// Its party.
        party: Handle,
    },
    /// A step begins: the operator acts now.
    Step {
        /// From 1.
        number: usize,
        /// How many there are.
        of: usize,
        /// The rules it checks.
        rules: Vec<Rule>,
        /// What to do.
        action: Action,
    },
    /// A rule was seen to hold.
    Held(Rule),
    /// A rule was seen broken; the script stops.
    Broken {
        /// Which.
        rule: Rule,
        /// What was seen.
        why: String,
    },
}

/// The harness could not run (not a verdict on the client under test).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The harness's own client failed (the relay is unreachable...).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A temporary directory for its stores.
    #[error("cannot make a temporary directory: {0}")]
    Io(#[from] std::io::Error),
}

/// The verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Rules seen to hold, in order.
    pub held: Vec<Rule>,
    /// The first rule seen broken, and why.
    pub broken: Option<(Rule, String)>,
}

/// The number of steps of the script.
pub const STEPS: usize = 7;

const POLL: Duration = Duration::from_millis(300);

struct Harness {
    m: Client,
    p: Client,
    peer: Handle,
    timeout: Duration,
    held: Vec<Rule>,
}

/// A step's failure.
struct Broke(Rule, String);

type Checked<T> = Result<T, Broke>;

/// Runs the script, reporting through `report`.
pub async fn run(config: Config, mut report: impl FnMut(Event)) -> Result<Report, HarnessError> {
    let dir = tempfile::tempdir()?;
    let tag = hex::encode(rand::random::<[u8; 4]>());
    let make = |role: &str| {
        let handle = Handle::new(format!("conformance-{tag}-{role}"));
        let path = dir.path().join(format!("{role}.store"));
        (handle, path)
    };
    let pass = hex::encode(rand::random::<[u8; 16]>());
    let (mh, mp) = make("m");
    let (ph, pp) = make("p");
    let (mh, ph) = (
        mh.map_err(ClientError::from)?,
        ph.map_err(ClientError::from)?,
    );
    // Throwaway stores, deleted at the end: no need for a slow KDF.
    let kdf = KdfParams::INSECURE_FOR_TESTS;
    let m = Client::create(&mp, &pass, kdf, &config.relay, &mh).await?;
    let p = Client::create(&pp, &pass, kdf, &config.relay, &ph).await?;
    report(Event::Started {
        mediator: mh,
        party: ph,
    });
    let mut h = Harness {
        m,
        p,
        peer: config.peer,
        timeout: config.step_timeout,
        held: Vec::new(),
    };
    let outcome = h.script(&mut report).await;
    let broken = match outcome {
        Ok(()) => None,
        Err(Failure::Broke(Broke(rule, why))) => {
            report(Event::Broken {
                rule,
                why: why.clone(),
            });
            Some((rule, why))
        }
        Err(Failure::Harness(e)) => return Err(e),
    };
    Ok(Report {
        held: h.held,
        broken,
    })
}

enum Failure {
    Broke(Broke),
    Harness(HarnessError),
}

impl From<Broke> for Failure {
    fn from(b: Broke) -> Self {
        Failure::Broke(b)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Harness(e.into())
    }
}

fn policy() -> Policy {
    Policy {
        mediator_reads: false,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 3600,
    }
}

/// The peer's messages in `channel` as `c` holds them, newest last.
fn from_peer<'a>(
    c: &'a Client,
    peer: &'a Handle,
    channel: ChannelId,
) -> impl Iterator<Item = &'a StoredMessage> + 'a {
    c.member().messages().iter().filter(move |m| {
        m.direction == Direction::In && m.channel() == channel && m.payload.header().sender == *peer
    })
}

fn state(c: &Client, channel: ChannelId) -> Option<&ChannelState> {
    c.member().channel(&channel)
}

impl Harness {
    async fn script(&mut self, report: &mut impl FnMut(Event)) -> Result<(), Failure> {
        let peer = self.peer.clone();
        let (mh, ph) = (self.m.me().clone(), self.p.me().clone());

        // 1. The peer accepts a creation: version 2 announcing what it reads.
        let a = self
            .m
            .create_channel("conformance", &[ph.clone(), peer.clone()], &[], policy())
            .await?;
        let creation = self.last_sent(a, BodyKind::Creation)?;
        self.step(
            report,
            1,
            vec![Rule::Versions, Rule::OwnHead],
            Action::Accept(a),
        );
        self.acceptance(Rule::Versions, a).await?;
        self.hold(report, &[Rule::Versions, Rule::OwnHead]);
        self.p.sync().await?;
        let shown = self.shown(a)?;
        self.p.accept(a, shown).await?;
        self.wait(Rule::Versions, "the channel to open", |h| {
            Ok(state(&h.m, a)
                .is_some_and(|s| s.epoch().number.0 == 1)
                .then_some(()))
        })
        .await?;

        // 2. Content in epoch 1; the mediator gets a stub.
        self.step(
            report,
            2,
            vec![Rule::Epoch1Content, Rule::Stubs],
            Action::SendText(a),
        );
        let text = self
            .wait(Rule::Epoch1Content, "the peer's text in epoch 1", |h| {
                h.peer_message(a, |m| m.payload.header().body_kind.is_content())
            })
            .await?;
        let hd = text.payload.header();
        if hd.epoch.number.0 != 1 || hd.epoch.opening != creation {
            return Err(Broke(
                Rule::Epoch1Content,
                format!("the first content came in epoch {} with another opening than the creation's digest", hd.epoch.number.0),
            )
            .into());
        }
        let agreed = state(&self.m, a).and_then(ChannelState::version);
        if Some(hd.version) != agreed {
            return Err(Broke(
                Rule::Versions,
                format!(
                    "the text is body version {}, not the version every member announced ({})",
                    hd.version,
                    agreed.map_or("none".into(), |v| v.to_string())
                ),
            )
            .into());
        }
        let mediator_copy = self
            .wait(Rule::Stubs, "the mediator's copy of the peer's text", |h| {
                Ok(from_peer(&h.m, &h.peer, a)
                    .find(|m| m.payload.header().message_id == hd.message_id)
                    .cloned())
            })
            .await?;
        if !matches!(mediator_copy.payload, Payload::Stub { .. }) {
            return Err(Broke(
                Rule::Stubs,
                "the mediator, which may not read, got the full text".into(),
            )
            .into());
        }
        if !matches!(text.payload, Payload::Full { .. }) || mediator_copy.digest != text.digest {
            return Err(Broke(
                Rule::Stubs,
                "the party's copy is not the full text with the stub's digest".into(),
            )
            .into());
        }
        self.hold(report, &[Rule::Epoch1Content, Rule::Stubs]);

        // 3. Receipts.
        let t1 = self.p.send_text(a, "Receipt this, please.", None).await?;
        let t1_head = self.sent_head(a, t1)?;
        self.step(report, 3, vec![Rule::Receipts], Action::Sync);
        self.wait(
            Rule::Receipts,
            "a head vector of the peer covering the party's text",
            |h| h.covering(a, &ph, t1_head).map(|o| o.map(drop)),
        )
        .await?;
        self.hold(report, &[Rule::Receipts]);

        // 4. A structured body in canonical JSON.
        self.step(report, 4, vec![Rule::Canonical], Action::Acknowledge(a, t1));
        let ack = self
            .wait(Rule::Canonical, "the peer's acknowledgement", |h| {
            h.peer_message(a, |m| {
                matches!(body(m), Some(Body::Structured(s))
                    if matches!(s.value(), Structured::Acknowledgement { of, .. } if *of == t1.to_hex()))
            })
        })
        .await?;
        if ack.payload.header().version < BodyVersion::V2 {
            return Err(Broke(
                Rule::Canonical,
                "the acknowledgement is body version 1, where the canonical form is not enforced; the channel runs on version 2".into(),
            )
            .into());
        }
        self.hold(report, &[Rule::Canonical]);

        // 5. Bodies the peer cannot read still count in the party's chain.
        self.p
            .dangerous_send_raw(a, BodyVersion(9), b"\x01\x00\x00\x00\x04v9?!")
            .await?;
        self.p
            .dangerous_send_raw(a, BodyVersion::V2, b"\x2a\x00\x00")
            .await?;
        let loose = br#"{"type":"note","text":"keys out of order"}"#;
        let mut raw = vec![BodyKind::Structured.tag()];
        raw.extend_from_slice(&(loose.len() as u32).to_be_bytes());
        raw.extend_from_slice(loose);
        let last = self.p.dangerous_send_raw(a, BodyVersion::V2, &raw).await?;
        let last_head = self.sent_head(a, last)?;
        self.step(report, 5, vec![Rule::UnreadCounts], Action::SendText(a));
        self.wait(
            Rule::UnreadCounts,
            "a head vector of the peer covering the three bodies it cannot read (they must count in the party's chain)",
            |h| h.covering(a, &ph, last_head).map(|o| o.map(drop)),
        )
        .await?;
        self.hold(report, &[Rule::UnreadCounts]);

        // 6. A header naming the mediator, sent on the party's session.
        self.m.sync().await?;
        self.p.sync().await?;
        self.p
            .dangerous_send_as(a, &mh, &peer, Body::Text("In the mediator's name.".into()))
            .await?;
        let real = self
            .m
            .send_text(a, "The mediator's own words.", None)
            .await?;
        let real_head = self.sent_head(a, real)?;
        self.step(report, 6, vec![Rule::SenderIsPeer], Action::SendText(a));
        let seen = self
            .wait(
                Rule::SenderIsPeer,
                "a head vector of the peer covering the mediator's text",
                |h| {
                    let m = h.covering(a, &mh, real_head)?;
                    Ok(m.and_then(|m| m.payload.header().heads.0.get(&mh).copied()))
                },
            )
            .await?;
        if seen.seq == real_head.seq && seen.digest != real_head.digest {
            return Err(Broke(
                Rule::SenderIsPeer,
                format!(
                    "the peer reports the mediator's chain at #{} as another message than the mediator sent: it took the party's forgery for the mediator's",
                    seen.seq.0
                ),
            )
            .into());
        }
        self.hold(report, &[Rule::SenderIsPeer]);

        // 7. A joiner's first head vector.
        let b = self
            .m
            .create_channel("conformance join", std::slice::from_ref(&ph), &[], policy())
            .await?;
        self.p.sync().await?;
        let shown = self.shown(b)?;
        self.p.accept(b, shown).await?;
        self.m.sync().await?;
        let amendment = self
            .m
            .amend(b, std::slice::from_ref(&peer), &[], &[], policy())
            .await?;
        let amendment_head = self.sent_head(b, amendment)?;
        self.step(report, 7, vec![Rule::JoinerHeads], Action::Accept(b));
        let acc = self.acceptance(Rule::JoinerHeads, b).await?;
        self.check_joiner_heads(b, &acc, amendment_head)?;
        self.hold(report, &[Rule::JoinerHeads]);
        Ok(())
    }

    fn step(&mut self, report: &mut impl FnMut(Event), n: usize, rules: Vec<Rule>, action: Action) {
        report(Event::Step {
            number: n,
            of: STEPS,
            rules,
            action,
        });
    }

    fn hold(&mut self, report: &mut impl FnMut(Event), rules: &[Rule]) {
        for r in rules {
            if !self.held.contains(r) {
                self.held.push(*r);
                report(Event::Held(*r));
            }
        }
    }

    /// Syncs both members until `done` gives a value; an alert either
    /// raises is the step's `rule` broken, as is the timeout.
    async fn wait<T>(
        &mut self,
        rule: Rule,
        what: &str,
        mut done: impl FnMut(&Harness) -> Checked<Option<T>>,
    ) -> Result<T, Failure> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            self.m.sync().await?;
            self.p.sync().await?;
            // The explicit checks first: they name the rule more exactly
            // than the alert the same fault raises.
            self.check_own_heads()?;
            for c in [&self.m, &self.p] {
                if let Some(a) = c.open_alerts().into_iter().next() {
                    return Err(
                        Broke(rule, format!("{} raised {}: {}", c.me(), a.kind, a.detail)).into(),
                    );
                }
            }
            if let Some(v) = done(self)? {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Broke(
                    rule,
                    format!("waited {} s for {what}", self.timeout.as_secs()),
                )
                .into());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every message of the peer names, in its own head entry, where its
    /// chain stood.
    fn check_own_heads(&self) -> Checked<()> {
        for c in [&self.m, &self.p] {
            for m in c.member().messages() {
                let h = m.payload.header();
                if m.direction != Direction::In || h.sender != self.peer {
                    continue;
                }
                let expected = (Seq(h.seq.0.saturating_sub(1)), h.prev);
                if let Some(own) = h.heads.0.get(&self.peer) {
                    if (own.seq, own.digest) != expected {
                        return Err(Broke(
                            Rule::OwnHead,
                            format!(
                                "the peer's #{} reports its own chain at #{}, not at #{} where it stood",
                                h.seq.0, own.seq.0, expected.0 .0
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits for the peer's acceptance in `channel` and checks its version.
    async fn acceptance(
        &mut self,
        rule: Rule,
        channel: ChannelId,
    ) -> Result<StoredMessage, Failure> {
        let acc = self
            .wait(rule, "the peer's acceptance", |h| {
                h.peer_message(channel, |m| {
                    matches!(body(m), Some(Body::Acceptance { .. }))
                })
            })
            .await?;
        self.check_acceptance(&acc)?;
        Ok(acc)
    }

    fn check_acceptance(&self, m: &StoredMessage) -> Checked<()> {
        let h = m.payload.header();
        let reads = match body(m) {
            Some(Body::Acceptance { reads, .. }) => reads.clone(),
            _ => Vec::new(),
        };
        if h.version < BodyVersion::V2 || !reads.contains(&BodyVersion::V2) {
            return Err(Broke(
                Rule::Versions,
                format!(
                    "the acceptance is body version {} announcing {:?}: protocol v1 clients write version 2 and announce the versions they read",
                    h.version,
                    reads.iter().map(|v| v.0).collect::<Vec<_>>()
                ),
            ));
        }
        Ok(())
    }

    /// The joiner lists the proposal's members, itself at `(0, opening)`,
    /// every other entry at a position it may hold (the mediator's
    /// amendment if it was the mediator's first message of the epoch).
    fn check_joiner_heads(
        &self,
        b: ChannelId,
        acc: &StoredMessage,
        amendment: Head,
    ) -> Checked<()> {
        let h = acc.payload.header();
        let broke = |why: String| Broke(Rule::JoinerHeads, why);
        let Some(pending) = state(&self.m, b).and_then(|s| s.pending().cloned()) else {
            return Err(broke(
                "the amendment is no longer pending: nothing to compare with".into(),
            ));
        };
        let expected: Vec<&Handle> = pending.proposal.members.iter().map(|m| &m.handle).collect();
        let listed: Vec<&Handle> = h.heads.0.keys().collect();
        if listed != expected {
            return Err(broke(format!(
                "the joiner's first head vector lists {listed:?}, not the proposal's members {expected:?}"
            )));
        }
        let opening = h.epoch.opening;
        for (member, head) in &h.heads.0 {
            let at_start = head.seq.0 == 0 && head.digest == opening;
            let ok = if *member == self.peer {
                at_start
            } else if *member == *self.m.me() && amendment.seq.0 == 1 {
                *head == amendment
            } else {
                at_start
                    || self.m.member().messages().iter().any(|m| {
                        m.payload.header().sender == *member
                            && m.payload.header().epoch == h.epoch
                            && m.payload.header().seq == head.seq
                            && m.digest == head.digest
                    })
            };
            if !ok {
                return Err(broke(format!(
                    "the joiner reports {member} at #{}, a position it cannot hold contiguously",
                    head.seq.0
                )));
            }
        }
        Ok(())
    }

    /// The proposal the harness's party is shown in `channel` (it accepts
    /// exactly that one).
    fn shown(&self, channel: ChannelId) -> Result<Digest, Failure> {
        self.p
            .consent(channel)?
            .map(|s| s.digest)
            .ok_or_else(|| Failure::Harness(ClientError::NothingToAccept(channel.to_hex()).into()))
    }

    /// The last message of `kind` this harness's mediator sent in `channel`.
    fn last_sent(&self, channel: ChannelId, kind: BodyKind) -> Result<Digest, Failure> {
        self.m
            .member()
            .messages()
            .iter()
            .rev()
            .find(|m| m.channel() == channel && m.payload.header().body_kind == kind)
            .map(|m| m.digest)
            .ok_or_else(|| {
                Failure::Harness(ClientError::Input("the proposal was not kept".into()).into())
            })
    }

    /// Where the chain of the one who sent `id` stands at it.
    fn sent_head(&self, channel: ChannelId, id: MessageId) -> Result<Head, Failure> {
        [&self.m, &self.p]
            .into_iter()
            .flat_map(|c| c.member().messages())
            .find(|m| m.channel() == channel && m.payload.header().message_id == id)
            .map(|m| Head {
                seq: m.payload.header().seq,
                digest: m.digest,
            })
            .ok_or_else(|| {
                Failure::Harness(ClientError::Input("a sent message was not kept".into()).into())
            })
    }

    fn peer_message(
        &self,
        channel: ChannelId,
        pick: impl Fn(&StoredMessage) -> bool,
    ) -> Checked<Option<StoredMessage>> {
        Ok(from_peer(&self.p, &self.peer, channel)
            .chain(from_peer(&self.m, &self.peer, channel))
            .find(|m| pick(m))
            .cloned())
    }

    /// A message of the peer whose head vector covers `member` at `head`.
    fn covering(
        &self,
        channel: ChannelId,
        member: &Handle,
        head: Head,
    ) -> Checked<Option<StoredMessage>> {
        self.peer_message(channel, |m| {
            m.payload
                .header()
                .heads
                .0
                .get(member)
                .is_some_and(|h| h.seq >= head.seq)
        })
    }
}

fn body(m: &StoredMessage) -> Option<&Body> {
    match &m.payload {
        Payload::Full { body, .. } => Some(body),
        Payload::Stub { .. } => None,
    }
}
