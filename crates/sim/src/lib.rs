//! Deterministic simulation of Backchannel: several [`Member`] machines
//! around an in-memory relay on a virtual clock, from a seed.
//!
//! Every choice the harness makes (who sends what and when, delays,
//! redeliveries, crashes, amendments, message ids and salts, which attack
//! and when) comes from one seeded generator, and nothing it decides
//! depends on ciphertext bytes (vodozemac draws its own key randomness), so
//! a seed replays the same schedule, classifications and alerts.
//!
//! An honest run must raise no alert at all (notices are allowed); an
//! attacked run must raise the alert its ATTACKS.md row names, at the
//! members it names, with the message ids and positions involved, within
//! the receipt deadline plus one heartbeat interval of the injection.
//!
//! ```
//! let outcome = backchannel_sim::run(7, None);
//! assert!(outcome.honest_alerts.is_empty(), "{:?}", outcome.honest_alerts);
//! ```
//!
//! [`Member`]: backchannel_protocol::member::Member
#![forbid(unsafe_code)]

pub mod attack;
pub mod relay;
pub mod store;
pub mod world;

use backchannel_protocol::payload::{Body, Policy};
use backchannel_protocol::{ChannelId, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use attack::Attack;
use world::{h, World};

/// Receipt deadline in the simulated channels, seconds.
pub const DEADLINE_S: u32 = 600;
/// Heartbeat interval, seconds.
pub const HEARTBEAT_S: u32 = 240;
/// The deadline in ms.
pub const DEADLINE_MS: i64 = DEADLINE_S as i64 * 1000;
/// How late past a deadline an honest member may notice it: its longest
/// offline spell plus a sync interval (deadlines run on its own clock,
/// judged when it is online).
pub const LATENESS_MS: i64 = OFFLINE_MAX_MS + 60_000;
/// Longest honest offline spell, ms (well below the deadline: a member
/// kept offline past it is attack row 2, not an honest run).
const OFFLINE_MAX_MS: i64 = 180_000;
/// Simulated time of the main phase, ms.
const MAIN_MS: i64 = 40 * 60_000;

/// What one seed did.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The attack mounted, if any.
    pub attack: Option<Attack>,
    /// For an attacked run: `Ok` if detected as its row requires, else why not.
    pub detected: Option<Result<(), String>>,
    /// The attack could not be mounted in this run (why).
    pub skipped: Option<String>,
    /// Alerts (not notices) raised in an honest run: each is a false alarm.
    pub honest_alerts: Vec<String>,
    /// Messages carried.
    pub messages: usize,
    /// The step trace, for a failing seed.
    pub trace: Vec<String>,
}

impl Outcome {
    /// True if the run did what it must.
    pub fn passed(&self) -> bool {
        self.honest_alerts.is_empty() && !matches!(self.detected, Some(Err(_)))
    }
}

/// Which attack (if any) seed `seed` mounts, with `share` of the seeds
/// attacked (half by default).
pub fn attack_for(seed: u64, share: f64, only: Option<Attack>) -> Option<Attack> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xa77a_c4ed);
    if !rng.gen_bool(share.clamp(0.0, 1.0)) {
        return None;
    }
    Some(only.unwrap_or_else(|| Attack::ALL[rng.gen_range(0..Attack::ALL.len())]))
}

/// A world from `seed` with the channel open (every member active), and
/// `attack` armed but not yet injected (set-up attacks are mounted here).
pub fn setup(seed: u64, attack: Option<Attack>) -> World {
    let mut w = World {
        rng: StdRng::seed_from_u64(seed),
        now: Timestamp(1_750_000_000_000),
        relay: relay::MemRelay::default(),
        nodes: Default::default(),
        channel: ChannelId([0; 16]),
        mediator: h("mediator"),
        trace: Vec::new(),
        attack: attack.map(attack::Active::new),
    };
    let mut id = [0u8; 16];
    w.rng.fill(&mut id);
    w.channel = ChannelId(id);
    let three = w.rng.gen_bool(0.4);
    let mut parties = vec![h("blue"), h("red")];
    if three {
        parties.push(h("green"));
    }
    for who in std::iter::once(w.mediator.clone())
        .chain(parties.iter().cloned())
        .chain([h(JOINER)])
    {
        w.add_node(&who);
    }
    let policy = Policy {
        mediator_reads: w.rng.gen_bool(0.5),
        receipt_deadline_s: DEADLINE_S,
        heartbeat_interval_s: HEARTBEAT_S,
    };
    if let Some(a) = w.attack.as_mut() {
        if a.attack.at_setup() {
            // The moment is a claim or key lookup of the set-up: pick whose.
            let i = (seed as usize) % parties.len();
            a.sender = Some(parties[i].clone());
            if a.attack == Attack::KeySubstitution {
                // The claim substituted: one of the mediator's, or later.
                a.budget_claims(i);
            }
        }
    }
    w.note(format!(
        "parties {parties:?}, mediator_reads {}",
        policy.mediator_reads
    ));
    w.create_channel(&parties, policy);
    for _ in 0..20 {
        if w.all_active() {
            break;
        }
        w.settle_step(2_000);
    }
    w
}

/// The member a seed may add by amendment.
pub const JOINER: &str = "yellow";

/// Runs seed `seed`, honest or with `attack`.
pub fn run(seed: u64, attack: Option<Attack>) -> Outcome {
    let mut w = setup(seed, attack);
    let joiner = h(JOINER);
    let start = w.now.0;
    let attack_at = start + w.rng.gen_range(60_000..MAIN_MS / 2);
    let mut amend_at = w
        .rng
        .gen_bool(0.3)
        .then(|| start + w.rng.gen_range(60_000..MAIN_MS - 600_000));
    // An attack racing an epoch change is a case of its own (see the
    // README): keep honest amendments a deadline and a heartbeat away.
    let apart = i64::from(DEADLINE_S + HEARTBEAT_S) * 1000;
    if attack.is_some() && amend_at.is_some_and(|t| (t - attack_at).abs() < apart) {
        amend_at = None;
    }
    let mut offline_until: std::collections::BTreeMap<_, i64> = Default::default();
    let mut injected = attack.is_none_or(|a| a.at_setup());
    let mut amended = false;
    while w.now.0 < start + MAIN_MS {
        w.now.0 += w.rng.gen_range(1_000..8_000);
        if !injected && w.now.0 >= attack_at {
            injected = true;
            attack::inject(&mut w);
        }
        if !amended && amend_at.is_some_and(|t| w.now.0 >= t) {
            amended = true;
            amend(&mut w, &joiner);
        }
        step(&mut w, &mut offline_until);
    }
    // Settle: everyone online and attentive for a deadline and a heartbeat.
    for n in w.nodes.values_mut() {
        n.online = true;
    }
    let settle_end = w.now.0 + i64::from(DEADLINE_S + 2 * HEARTBEAT_S) * 1000;
    while w.now.0 < settle_end {
        let dt = w.rng.gen_range(2_000..10_000);
        w.settle_step(dt);
    }
    judge(seed, attack, w)
}

/// One step of honest activity for every member, in a random order.
fn step(
    w: &mut World,
    offline_until: &mut std::collections::BTreeMap<backchannel_protocol::Handle, i64>,
) {
    let mut all: Vec<_> = w.nodes.keys().cloned().collect();
    for i in (1..all.len()).rev() {
        let j = w.rng.gen_range(0..=i);
        all.swap(i, j);
    }
    for who in all {
        let now = w.now.0;
        let Some(node) = w.nodes.get_mut(&who) else {
            continue;
        };
        if !node.online {
            if offline_until.get(&who).is_some_and(|t| now >= *t) {
                node.online = true;
                w.note(format!("{who} back online"));
            } else {
                continue;
            }
        }
        let r: f64 = w.rng.gen();
        if r < 0.003 {
            if let Some(n) = w.nodes.get_mut(&who) {
                n.online = false;
            }
            let back = now + w.rng.gen_range(10_000..OFFLINE_MAX_MS);
            offline_until.insert(who.clone(), back);
            w.note(format!("{who} offline until {back}"));
            continue;
        }
        if r < 0.006 {
            w.note(format!("{who} crashes and restarts"));
            w.crash(&who);
        }
        if w.rng.gen_bool(0.25) {
            w.sync(&who);
        }
        if w.rng.gen_bool(0.02) && w.members().contains(&who) {
            let text = format!("message {} from {who}", w.rng.gen::<u32>());
            let reply_to = last_received(w, &who);
            if w.send(&who, Body::Text(text), reply_to).is_some() && w.rng.gen_bool(0.05) {
                // A crash after the send committed and before the post
                // answered: the outbox posts the same bytes again.
                w.crash(&who);
            }
        }
        w.timeout(&who);
        if w.rng.gen_bool(0.01) {
            redeliver(w, &who);
        }
    }
}

/// The last message `who` received, to answer now and then.
fn last_received(
    w: &mut World,
    who: &backchannel_protocol::Handle,
) -> Option<backchannel_protocol::MessageId> {
    if !w.rng.gen_bool(0.3) {
        return None;
    }
    let n = w.nodes.get(who)?;
    n.member
        .messages()
        .iter()
        .rev()
        .find(|m| m.payload.header().body_kind.is_content() && &m.payload.header().sender != who)
        .map(|m| m.payload.header().message_id)
}

/// An honest relay may hand an unread envelope over twice (a retried
/// write): the copy must be dropped silently.
fn redeliver(w: &mut World, who: &backchannel_protocol::Handle) {
    let unread = w.relay.mailbox(who, 0);
    if let Some((_, env)) = unread.first().cloned() {
        let c = w.relay.cursor();
        w.relay
            .mailboxes
            .entry(who.clone())
            .or_default()
            .push((c, env));
    }
}

/// The mediator changes the membership or the policy in a new epoch.
fn amend(w: &mut World, joiner: &backchannel_protocol::Handle) {
    let members = w.members();
    let parties: Vec<_> = members
        .iter()
        .filter(|m| **m != w.mediator)
        .cloned()
        .collect();
    let Some(policy) = w
        .nodes
        .get(&w.mediator)
        .and_then(|n| n.member.channel(&w.channel))
        .and_then(|s| s.policy())
    else {
        return;
    };
    match w.rng.gen_range(0..3) {
        0 if !members.contains(joiner) => {
            w.note(format!("amendment: {joiner} joins"));
            w.amend(Some(joiner), None, policy);
        }
        // Never the member under attack: its leaving would end the attack.
        1 if parties.len() > 2
            && w.attack.as_ref().and_then(|a| a.victim.as_ref()) != parties.last() =>
        {
            let leaver = parties[parties.len() - 1].clone();
            w.note(format!("amendment: {leaver} leaves"));
            w.amend(None, Some(&leaver), policy);
        }
        _ => {
            let p = Policy {
                heartbeat_interval_s: HEARTBEAT_S / 2,
                ..policy
            };
            w.note("amendment: shorter heartbeats".into());
            w.amend(None, None, p);
        }
    }
}

fn judge(seed: u64, attack: Option<Attack>, w: World) -> Outcome {
    let messages = w.relay.history.len();
    let window = i64::from(DEADLINE_S + HEARTBEAT_S) * 1000;
    let skipped = w.attack.as_ref().and_then(|a| a.skipped.clone());
    let detected = match (attack, &skipped) {
        (Some(_), None) => Some(attack::detected(&w, window)),
        _ => None,
    };
    let honest_alerts = if attack.is_none() {
        w.nodes
            .iter()
            .flat_map(|(who, n)| {
                n.member
                    .alerts()
                    .iter()
                    .filter(|a| !a.kind.is_notice())
                    .map(move |a| format!("{who}: {} at {}: {}", a.kind, a.raised_at.0, a.detail))
            })
            .collect()
    } else {
        Vec::new()
    };
    Outcome {
        seed,
        attack,
        detected,
        skipped,
        honest_alerts,
        messages,
        trace: w.trace,
    }
}
