//! The attacks of ATTACKS.md that a relay (or a dishonest member) can
//! mount, injected into a running world, and what must be raised for each.
//! Every attack keeps its ground truth (victim, sender, positions, ids) so
//! that "detected" means the exact alert, with those ids and positions,
//! at the members the row names, in time.

use backchannel_protocol::api::EnvelopeJson;
use backchannel_protocol::member::{Alert, AlertKind};
use backchannel_protocol::payload::Body;
use backchannel_protocol::{
    Envelope, Handle, Identity, IdentityKeys, MessageId, OlmType, SignedKey, Timestamp,
};
use rand::Rng;

use crate::world::{h, World};

/// One row of ATTACKS.md, as the simulation mounts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Row 1: drop one message.
    Drop,
    /// Row 2: cut a member off for good.
    TailDrop,
    /// Row 3: reorder two messages of one sender.
    Reorder,
    /// Row 4: delay a reply until after a later question.
    DelayReply,
    /// Row 5: replay an envelope under a new message id.
    Replay,
    /// Row 6: flip bits in a ciphertext.
    Flip,
    /// Row 7: inject a ciphertext the sender never sent.
    Inject,
    /// Row 8: a member equivocates.
    Fork,
    /// Row 9: a ghost member in the routing record.
    Ghost,
    /// Row 10: substitute a one-time key at claim.
    KeySubstitution,
    /// Row 11: serve an identity-point or low-order key.
    BadKey,
    /// Row 12: serve an Ed25519 key as Curve25519, or another's key.
    KeyConfusion,
    /// Row 14: forge mailbox acks while cutting a member off.
    ForgedAck,
    /// Row 15: serve an older mailbox position.
    Rollback,
    /// Row 16: withhold more than the Olm window, then deliver.
    WithholdWindow,
    /// Row 17: lose rows of a mailbox.
    Truncate,
    /// Row 19: a sender gives a party a stub.
    Withheld,
    /// Row 21: a pre-key message under an unknown identity key.
    ForeignPreKey,
    /// Row 22: a sender misreports its own head.
    MisreportHead,
}

impl Attack {
    /// Every attack the simulation mounts.
    pub const ALL: [Attack; 19] = [
        Attack::Drop,
        Attack::TailDrop,
        Attack::Reorder,
        Attack::DelayReply,
        Attack::Replay,
        Attack::Flip,
        Attack::Inject,
        Attack::Fork,
        Attack::Ghost,
        Attack::KeySubstitution,
        Attack::BadKey,
        Attack::KeyConfusion,
        Attack::ForgedAck,
        Attack::Rollback,
        Attack::WithholdWindow,
        Attack::Truncate,
        Attack::Withheld,
        Attack::ForeignPreKey,
        Attack::MisreportHead,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Attack::Drop => "drop",
            Attack::TailDrop => "tail-drop",
            Attack::Reorder => "reorder",
            Attack::DelayReply => "delay-reply",
            Attack::Replay => "replay",
            Attack::Flip => "flip",
            Attack::Inject => "inject",
            Attack::Fork => "fork",
            Attack::Ghost => "ghost",
            Attack::KeySubstitution => "key-substitution",
            Attack::BadKey => "bad-key",
            Attack::KeyConfusion => "key-confusion",
            Attack::ForgedAck => "forged-ack",
            Attack::Rollback => "rollback",
            Attack::WithholdWindow => "withhold-window",
            Attack::Truncate => "truncate",
            Attack::Withheld => "withheld",
            Attack::ForeignPreKey => "foreign-prekey",
            Attack::MisreportHead => "misreport-head",
        }
    }

    /// Its row in ATTACKS.md.
    pub fn row(self) -> u32 {
        match self {
            Attack::Drop => 1,
            Attack::TailDrop => 2,
            Attack::Reorder => 3,
            Attack::DelayReply => 4,
            Attack::Replay => 5,
            Attack::Flip => 6,
            Attack::Inject => 7,
            Attack::Fork => 8,
            Attack::Ghost => 9,
            Attack::KeySubstitution => 10,
            Attack::BadKey => 11,
            Attack::KeyConfusion => 12,
            Attack::ForgedAck => 14,
            Attack::Rollback => 15,
            Attack::WithholdWindow => 16,
            Attack::Truncate => 17,
            Attack::Withheld => 19,
            Attack::ForeignPreKey => 21,
            Attack::MisreportHead => 22,
        }
    }

    /// By name or row number.
    pub fn parse(s: &str) -> Option<Attack> {
        Attack::ALL
            .into_iter()
            .find(|a| a.name() == s || s.parse::<u32>().is_ok_and(|r| r == a.row()))
    }

    /// Attacks armed from the start (their moment is a claim or a key
    /// lookup, which happen while the channel is set up).
    pub fn at_setup(self) -> bool {
        matches!(
            self,
            Attack::KeySubstitution | Attack::BadKey | Attack::KeyConfusion
        )
    }
}

/// An attack under way and its ground truth.
#[derive(Debug)]
pub struct Active {
    /// Which.
    pub attack: Attack,
    /// When it was injected.
    pub at: Option<Timestamp>,
    /// The member attacked.
    pub victim: Option<Handle>,
    /// The member whose messages or keys are used.
    pub sender: Option<Handle>,
    /// Message ids that the alert must name.
    pub ids: Vec<MessageId>,
    /// Positions that the alert must name.
    pub positions: Vec<u64>,
    /// Envelopes held back by the relay.
    held: Vec<Envelope>,
    /// How many more envelopes to treat (drop, hold).
    budget: usize,
    /// The attack has done its part.
    pub done: bool,
    /// Why it could not be mounted in this run (it then counts as not run).
    pub skipped: Option<String>,
}

impl Active {
    /// Lets `n` claims of the set-up pass before substituting one.
    pub fn budget_claims(&mut self, n: usize) {
        self.budget = n;
    }

    /// An attack not yet injected.
    pub fn new(attack: Attack) -> Active {
        Active {
            attack,
            at: None,
            victim: None,
            sender: None,
            ids: Vec::new(),
            positions: Vec::new(),
            held: Vec::new(),
            budget: 0,
            done: false,
            skipped: None,
        }
    }
}

fn armed(w: &World, a: Attack) -> bool {
    w.attack
        .as_ref()
        .is_some_and(|x| x.attack == a && !x.done && (x.at.is_some() || a.at_setup()))
}

/// The relay stores a post: a hostile one drops, holds or alters copies.
pub fn on_post(w: &mut World, envelopes: Vec<Envelope>) -> Vec<Envelope> {
    let Some(a) = w.attack.as_mut() else {
        return envelopes;
    };
    if a.at.is_none() || a.done {
        return envelopes;
    }
    let (victim, sender) = (a.victim.clone(), a.sender.clone());
    let to_victim = |e: &Envelope| Some(&e.recipient) == victim.as_ref();
    let from_sender = |e: &Envelope| sender.as_ref().is_none_or(|s| &e.sender == s);
    let mut out = Vec::new();
    for mut e in envelopes {
        if !(to_victim(&e) && from_sender(&e)) {
            out.push(e);
            continue;
        }
        match a.attack {
            Attack::Drop | Attack::Truncate if a.budget > 0 => {
                a.budget -= 1;
                a.ids.push(e.message_id);
                a.positions.push(e.seq_hint);
                a.sender.get_or_insert(e.sender.clone());
                if a.budget == 0 {
                    a.done = true;
                }
            }
            Attack::TailDrop | Attack::ForgedAck => {}
            Attack::Reorder if a.held.is_empty() => {
                a.ids.push(e.message_id);
                a.positions.push(e.seq_hint);
                a.held.push(e);
            }
            Attack::Reorder => {
                out.push(e);
                out.append(&mut a.held);
                a.done = true;
            }
            Attack::WithholdWindow if a.budget > 0 => {
                a.budget -= 1;
                if a.ids.is_empty() {
                    a.ids.push(e.message_id);
                    a.positions.push(e.seq_hint);
                }
                a.held.push(e);
            }
            Attack::WithholdWindow => {
                out.push(e);
                out.append(&mut a.held);
                a.done = true;
            }
            Attack::Flip => {
                let mid = e.ciphertext.len() / 2;
                if let Some(b) = e.ciphertext.get_mut(mid) {
                    *b ^= 0x5a;
                }
                a.ids.push(e.message_id);
                a.positions.push(e.seq_hint);
                a.done = true;
                out.push(e);
            }
            Attack::DelayReply if a.held.is_empty() && a.budget > 0 => {
                a.held.push(e);
            }
            _ => out.push(e),
        }
    }
    out
}

/// A claim of `peer`'s key by `who`: a hostile relay substitutes one.
pub fn on_claim(
    w: &mut World,
    who: &Handle,
    peer: &Handle,
) -> Option<(IdentityKeys, SignedKey, u64)> {
    let claimed = w.relay.claim(peer)?;
    if !armed(w, Attack::KeySubstitution) {
        return Some(claimed);
    }
    let now = w.now;
    let a = w.attack.as_mut()?;
    if a.budget > 0 {
        // Not this claim: a later one of the set-up.
        a.budget -= 1;
        return Some(claimed);
    }
    let mut impostor = Identity::new();
    let forged = impostor.generate_one_time_keys(1).pop()?;
    a.victim = Some(who.clone());
    a.sender = Some(peer.clone());
    a.at = Some(now);
    a.done = true;
    Some((claimed.0, forged, claimed.2))
}

/// A key lookup of `peer`: a hostile relay serves a bad key once.
pub fn on_lookup(w: &mut World, peer: &Handle) -> Option<(IdentityKeys, u64)> {
    let k = w.relay.keys.get(peer)?;
    let served = (k.identity, k.version);
    let attack = w.attack.as_ref().map(|a| a.attack);
    let target = w.attack.as_ref().and_then(|a| a.sender.clone());
    let bad = match attack {
        Some(x @ (Attack::BadKey | Attack::KeyConfusion))
            if armed(w, x) && target.as_ref() == Some(peer) =>
        {
            let mut keys = served.0;
            let pick = w.rng.gen_range(0..2);
            match (x, pick) {
                (Attack::BadKey, 0) => keys.curve25519 = [0; 32],
                (Attack::BadKey, _) => {
                    let mut one = [0u8; 32];
                    one[0] = 1;
                    keys.curve25519 = one;
                }
                (_, 0) => keys.curve25519 = keys.ed25519,
                _ => {
                    let (owner, other) = w
                        .relay
                        .keys
                        .iter()
                        .find(|(h, _)| *h != peer)
                        .map(|(h, k)| (h.clone(), k.identity.curve25519))?;
                    keys.curve25519 = other;
                    if let Some(a) = w.attack.as_mut() {
                        a.victim = Some(owner);
                    }
                }
            }
            Some(keys)
        }
        _ => None,
    };
    match bad {
        Some(keys) => {
            let now = w.now;
            if let Some(a) = w.attack.as_mut() {
                a.at = Some(now);
                a.done = true;
            }
            Some((keys, served.1))
        }
        None => Some(served),
    }
}

/// A fetch of `who`'s mailbox: a hostile relay serves an old position.
pub fn on_fetch(
    w: &mut World,
    who: &Handle,
    mut page: Vec<(u64, EnvelopeJson)>,
) -> Vec<(u64, EnvelopeJson)> {
    if !armed(w, Attack::Rollback) || w.attack.as_ref().and_then(|a| a.victim.as_ref()) != Some(who)
    {
        return page;
    }
    let cursor = w.nodes.get(who).map_or(0, |n| n.member.cursor());
    let old = w
        .relay
        .history
        .iter()
        .rev()
        .find(|(c, e)| *c <= cursor && &e.recipient == who)
        .map(|(c, e)| (*c, EnvelopeJson::from(e)));
    if let (Some(old), Some(a)) = (old, w.attack.as_mut()) {
        a.done = true;
        page.insert(0, old);
    }
    page
}

/// Mounts the attack now (for those not armed from the start).
pub fn inject(w: &mut World) {
    let Some(attack) = w.attack.as_ref().map(|a| a.attack) else {
        return;
    };
    let members = w.members();
    let parties: Vec<Handle> = members
        .iter()
        .filter(|m| **m != w.mediator)
        .cloned()
        .collect();
    let victim = w.pick(&members);
    let others: Vec<Handle> = members
        .iter()
        .filter(|m| Some(*m) != victim.as_ref())
        .cloned()
        .collect();
    let sender = w.pick(&others);
    let now = w.now;
    let (Some(victim), Some(sender)) = (victim, sender) else {
        skip(w, "fewer than two members");
        return;
    };
    if let Some(a) = w.attack.as_mut() {
        a.at = Some(now);
        a.victim = Some(victim.clone());
        a.sender = Some(sender.clone());
        if matches!(
            attack,
            Attack::TailDrop | Attack::ForgedAck | Attack::Truncate
        ) {
            // Cut off from everyone, or rows lost whoever sent them.
            a.sender = None;
        }
        a.budget = match attack {
            Attack::Drop => 1,
            Attack::Truncate => 1 + (now.0 as usize % 3),
            Attack::WithholdWindow => 45,
            _ => 0,
        };
    }
    w.note(format!(
        "attack {} on {victim} (sender {sender} where it matters)",
        attack.name()
    ));
    match attack {
        Attack::Drop
        | Attack::Reorder
        | Attack::Flip
        | Attack::TailDrop
        | Attack::Truncate
        | Attack::Rollback => {}
        Attack::ForgedAck => {
            // The relay deletes what the victim has not read and claims it acked.
            let last = w.relay.mailbox(&victim, 0).last().map(|(c, _)| *c);
            if let Some(c) = last {
                w.relay.ack(&victim, c);
            }
        }
        Attack::WithholdWindow => {
            if let Some(a) = w.attack.as_mut() {
                a.victim = Some(victim.clone());
            }
            for i in 0..46 {
                w.send(&sender, Body::Text(format!("burst {i}")), None);
            }
        }
        Attack::Replay => replay(w, &victim),
        Attack::Inject => inject_forgery(w, &victim, &sender),
        Attack::ForeignPreKey => foreign_pre_key(w, &victim, &sender),
        Attack::Ghost => {
            let channel = w.channel;
            if let Some(r) = w.relay.routing.get_mut(&channel) {
                r.push(h("ghost"));
            }
            finish(w);
        }
        Attack::Fork => {
            let Some(other) = w.pick(
                &others
                    .iter()
                    .filter(|m| **m != sender)
                    .cloned()
                    .collect::<Vec<_>>(),
            ) else {
                skip(w, "an equivocation needs two other members");
                return;
            };
            let bodies: std::collections::BTreeMap<_, _> =
                [(other, Body::Text("the other version".into()))]
                    .into_iter()
                    .collect();
            let id = w.send_tampered(&sender, |m, now, c, rng| {
                m.dangerous_equivocate(
                    now,
                    c,
                    Body::Text("one version".into()),
                    bodies.clone(),
                    rng,
                )
            });
            record(w, id, &sender);
        }
        Attack::Withheld => {
            let Some(party) = parties.iter().find(|p| **p != sender).cloned() else {
                skip(w, "no party to withhold from");
                return;
            };
            if let Some(a) = w.attack.as_mut() {
                a.victim = Some(party.clone());
            }
            let id = w.send_tampered(&sender, |m, now, c, rng| {
                m.dangerous_withhold(
                    now,
                    c,
                    Body::Text("for your eyes".into()),
                    party.clone(),
                    rng,
                )
            });
            record(w, id, &sender);
        }
        Attack::MisreportHead => {
            let id = w.send_tampered(&sender, |m, now, c, rng| {
                m.dangerous_misreport_own_head(now, c, Body::Text("my head".into()), rng)
            });
            record(w, id, &sender);
        }
        Attack::DelayReply => delay_reply(w, &parties),
        Attack::KeySubstitution | Attack::BadKey | Attack::KeyConfusion => {}
    }
}

fn skip(w: &mut World, why: &str) {
    if let Some(a) = w.attack.as_mut() {
        a.skipped = Some(why.into());
        a.done = true;
    }
}

fn finish(w: &mut World) {
    if let Some(a) = w.attack.as_mut() {
        a.done = true;
    }
}

/// Records the message a tampering sender sent, with its position.
fn record(w: &mut World, id: Option<MessageId>, sender: &Handle) {
    let seq = w
        .nodes
        .get(sender)
        .and_then(|n| n.member.next_seq(&w.channel))
        .map(|s| s.0.saturating_sub(1));
    match (id, seq, w.attack.as_mut()) {
        (Some(id), Some(seq), Some(a)) => {
            a.ids.push(id);
            a.positions.push(seq);
            a.done = true;
        }
        _ => skip(w, "the tampering sender could not send"),
    }
}

fn replay(w: &mut World, victim: &Handle) {
    let past = w
        .relay
        .history
        .iter()
        .rev()
        .find(|(_, e)| &e.recipient == victim)
        .map(|(_, e)| e.clone());
    let Some(mut e) = past else {
        skip(w, "nothing delivered to replay");
        return;
    };
    let mut id = [0u8; 16];
    w.rng.fill(&mut id);
    e.message_id = MessageId(id);
    let _ = w.relay.inject(&[e]);
    if let Some(a) = w.attack.as_mut() {
        a.ids.push(MessageId(id));
        a.done = true;
    }
}

fn inject_forgery(w: &mut World, victim: &Handle, sender: &Handle) {
    let mut ct = vec![0u8; 120];
    w.rng.fill(&mut ct[..]);
    ct[0] = 3; // the Olm version byte, so it reads like a message
    let mut id = [0u8; 16];
    w.rng.fill(&mut id);
    let e = Envelope {
        channel_id: w.channel,
        message_id: MessageId(id),
        sender: sender.clone(),
        recipient: victim.clone(),
        seq_hint: 1,
        olm_type: OlmType::Normal,
        ciphertext: ct,
    };
    let _ = w.relay.inject(&[e]);
    if let Some(a) = w.attack.as_mut() {
        a.ids.push(MessageId(id));
        a.done = true;
    }
}

fn foreign_pre_key(w: &mut World, victim: &Handle, sender: &Handle) {
    let Some((keys, one_time, _)) = w.relay.claim(victim) else {
        skip(w, "no key of the victim to claim");
        return;
    };
    let impostor = Identity::new();
    let Ok(mut session) = impostor.outbound_session(&keys, &one_time) else {
        skip(w, "no session");
        return;
    };
    let Ok((olm_type, ciphertext)) = session.encrypt(&[0u8; 512]) else {
        return;
    };
    let mut id = [0u8; 16];
    w.rng.fill(&mut id);
    let e = Envelope {
        channel_id: w.channel,
        message_id: MessageId(id),
        sender: sender.clone(),
        recipient: victim.clone(),
        seq_hint: 1_000,
        olm_type,
        ciphertext,
    };
    let _ = w.relay.inject(&[e]);
    if let Some(a) = w.attack.as_mut() {
        a.ids.push(MessageId(id));
        a.done = true;
    }
}

/// A asks, B answers; the relay holds B's reply from A until A asked again.
fn delay_reply(w: &mut World, parties: &[Handle]) {
    let (Some(asker), Some(answerer)) = (parties.first().cloned(), parties.get(1).cloned()) else {
        skip(w, "crossed messages need two parties");
        return;
    };
    if let Some(a) = w.attack.as_mut() {
        a.victim = Some(asker.clone());
        a.sender = Some(answerer.clone());
    }
    let Some(q1) = w.send(&asker, Body::Text("first question".into()), None) else {
        return;
    };
    w.sync(&answerer);
    if let Some(a) = w.attack.as_mut() {
        a.budget = 1;
    }
    let reply = w.send(
        &answerer,
        Body::Text("answer to the first".into()),
        Some(q1),
    );
    let q2 = w.send(&asker, Body::Text("second question".into()), None);
    let held = w.attack.as_mut().map(|a| {
        a.budget = 0;
        a.done = true;
        std::mem::take(&mut a.held)
    });
    let _ = w.relay.post(&held.unwrap_or_default());
    if let (Some(a), Some(r), Some(q2)) = (w.attack.as_mut(), reply, q2) {
        a.ids = vec![r, q2];
    }
}

/// True when `a` names what the attack did.
fn names(
    a: &Alert,
    kind: AlertKind,
    principal: Option<&Handle>,
    ids: &[MessageId],
    positions: &[u64],
) -> bool {
    a.kind == kind
        && principal.is_none_or(|p| a.principal.as_ref() == Some(p))
        && ids.iter().all(|i| a.message_ids.contains(i))
        && positions
            .iter()
            .all(|p| a.positions.iter().any(|x| x.0 == *p))
}

/// Whether the attack was detected as its row requires: the exact kind,
/// naming its ids and positions, at the members the row names, raised
/// within `window` of the injection.
pub fn detected(w: &World, window: i64) -> Result<(), String> {
    let Some(a) = w.attack.as_ref() else {
        return Err("no attack".into());
    };
    let Some(at) = a.at else {
        return Err("the attack never found its moment".into());
    };
    let in_time = |x: &Alert| x.raised_at.0 <= at.0 + window;
    let alerts_of = |m: &Handle| -> Vec<&Alert> {
        w.nodes
            .get(m)
            .map(|n| n.member.alerts().iter().filter(|x| in_time(x)).collect())
            .unwrap_or_default()
    };
    let (victim, sender) = (a.victim.as_ref(), a.sender.as_ref());
    let at_victim =
        |kind: AlertKind, principal: Option<&Handle>, ids: &[MessageId], pos: &[u64]| {
            victim.is_some_and(|v| {
                alerts_of(v)
                    .iter()
                    .any(|x| names(x, kind, principal, ids, pos))
            })
        };
    // Members in their own view (the victim's view may be stale).
    let others: Vec<Handle> = w
        .active_members()
        .into_iter()
        .filter(|m| Some(m) != victim)
        .collect();
    // A cut-off member is noticed a deadline after each other member learnt
    // of the first message it missed (plus that member's own offline spell
    // or sync interval, on its own clock).
    let overdue_everywhere = || {
        !others.is_empty()
            && others.iter().all(|m| {
                let Some(n) = w.nodes.get(m) else {
                    return false;
                };
                // Deadlines are judged per epoch: count from the open one.
                let epoch = n.member.channel(&w.channel).map(|c| c.epoch().number);
                let first_missed = n
                    .member
                    .messages()
                    .iter()
                    .filter(|x| Some(x.payload.header().epoch.number) == epoch)
                    // Sent after the cut: the victim never got it.
                    .filter(|x| {
                        x.payload.header().sent_at >= at
                            && x.payload.header().body_kind
                                != backchannel_protocol::payload::BodyKind::Receipt
                    })
                    .filter(|x| Some(&x.payload.header().sender) != victim)
                    .map(|x| x.stored_at.0)
                    .min();
                let Some(first) = first_missed else {
                    return false;
                };
                n.member.alerts().iter().any(|x| {
                    x.kind == AlertKind::AckOverdue
                        && x.member.as_ref() == victim
                        && x.raised_at.0 <= first + crate::DEADLINE_MS + crate::LATENESS_MS
                })
            })
    };
    let ok = match a.attack {
        Attack::Drop => at_victim(AlertKind::Gap, sender, &[], &a.positions),
        Attack::TailDrop | Attack::ForgedAck => overdue_everywhere(),
        Attack::Reorder => at_victim(AlertKind::Reorder, sender, &a.ids, &a.positions),
        Attack::DelayReply => {
            let v = victim.map(alerts_of).unwrap_or_default();
            v.iter()
                .any(|x| names(x, AlertKind::CrossedMessages, sender, &a.ids, &[]))
                && !v.iter().any(|x| !x.kind.is_notice())
        }
        Attack::Replay => at_victim(AlertKind::Replay, None, &a.ids, &[]),
        Attack::Flip => at_victim(AlertKind::Modified, sender, &a.ids, &a.positions),
        Attack::Inject | Attack::ForeignPreKey => at_victim(AlertKind::Forged, sender, &a.ids, &[]),
        Attack::Fork | Attack::MisreportHead => {
            others.iter().filter(|m| Some(*m) != sender).any(|m| {
                alerts_of(m)
                    .iter()
                    .any(|x| names(x, AlertKind::Fork, sender, &[], &[]))
            })
        }
        Attack::Ghost => w.members().iter().all(|m| {
            alerts_of(m)
                .iter()
                .any(|x| x.kind == AlertKind::MembershipMismatch && x.member == Some(h("ghost")))
        }),
        Attack::KeySubstitution => at_victim(AlertKind::KeyChanged, sender, &[], &[]),
        // Which principal the alert names depends on which key was seen
        // first: the one served wrongly, or the one whose key was used.
        Attack::BadKey | Attack::KeyConfusion => alerts_of(&w.mediator).iter().any(|x| {
            names(x, AlertKind::BadKey, sender, &[], &[])
                || (victim.is_some() && names(x, AlertKind::BadKey, victim, &[], &[]))
        }),
        Attack::Rollback => at_victim(AlertKind::Rollback, None, &[], &[]),
        Attack::WithholdWindow => {
            at_victim(AlertKind::LateUndecryptable, sender, &[], &[])
                && !w.nodes.values().any(|n| {
                    n.member
                        .alerts()
                        .iter()
                        .any(|x| x.kind == AlertKind::Forged)
                })
        }
        Attack::Truncate => at_victim(AlertKind::Gap, sender, &[], &[]) || overdue_everywhere(),
        Attack::Withheld => at_victim(AlertKind::Withheld, sender, &a.ids, &a.positions),
    };
    if ok {
        return Ok(());
    }
    let seen: Vec<String> = w
        .nodes
        .iter()
        .flat_map(|(m, n)| {
            n.member.alerts().iter().map(move |x| {
                format!(
                    "{m}: {} principal {:?} member {:?} at +{} s",
                    x.kind,
                    x.principal,
                    x.member,
                    (x.raised_at.0 - at.0) / 1000
                )
            })
        })
        .take(12)
        .collect();
    Err(format!("{a:?}; raised: {seen:?}"))
}
