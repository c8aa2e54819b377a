//! What-if: run a hypothetical event through the assurances in force and the
//! red lines, and follow the cascade: which assurances lapse (under which
//! readings of their conditions), which red lines fire, what their declared
//! responses set off in turn, until nothing changes. Each assurance lapses
//! and each red line fires at most once, so cycles terminate; everything is
//! visited in transcript order, so the result is deterministic.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;

use super::fold::{assurance_of, breaks, fold, Entry, Reading, State};
use super::structured::{Action, Actor};
use crate::ids::{Handle, Timestamp};
use crate::payload::Role;

/// One effect of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// A red line fires: its issuer's declared response follows.
    Fires {
        /// The red line, hex.
        red_line: String,
        /// Its issuer.
        issuer: String,
        /// Its wording.
        wording: String,
        /// The response, as an event.
        response: String,
    },
    /// An assurance lapses.
    Lapses {
        /// The assurance, hex.
        assurance: String,
        /// Its issuer.
        issuer: String,
        /// Its wording.
        wording: String,
        /// Which condition (index into `unless`).
        condition: usize,
        /// The readings under which it lapses.
        readings: Vec<Reading>,
        /// True if other readings say it holds.
        readings_diverge: bool,
    },
}

/// One event of the cascade and what it set off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// 1 for the hypothetical event.
    pub n: usize,
    /// The event, e.g. `green ASSAULT against red`.
    pub event: String,
    /// The step whose red line produced it (none for the first).
    pub caused_by: Option<usize>,
    /// Its effects.
    pub effects: Vec<Effect>,
}

/// The whole cascade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cascade {
    /// The steps, breadth first.
    pub steps: Vec<Step>,
    /// Messages held only as stubs (digests): their commitments are not
    /// in the cascade.
    pub stubs: usize,
}

/// `actor KIND[/modes] against target`.
pub fn describe(actor: &Actor, action: &Action) -> String {
    let modes = if action.modes.is_empty() {
        String::new()
    } else {
        format!("/{}", action.modes.join("+"))
    };
    match &action.target {
        Some(t) => format!("{actor} {}{modes} against {t}", action.kind),
        None => format!("{actor} {}{modes}", action.kind),
    }
}

fn triggers(
    trigger_actor: &Option<Actor>,
    trigger: &Action,
    actor: &Actor,
    action: &Action,
) -> bool {
    trigger_actor.as_ref().is_none_or(|a| a == actor)
        && trigger.kind == action.kind
        && (trigger.modes.is_empty() || trigger.modes.iter().any(|m| action.modes.contains(m)))
        && trigger
            .target
            .as_ref()
            .is_none_or(|t| action.target.as_ref() == Some(t))
}

/// Runs `actor` doing `action` through the channel's commitments in force
/// at `at`.
pub fn what_if(
    entries: &[Entry],
    members: &[(Handle, Role)],
    at: Timestamp,
    actor: Actor,
    action: Action,
) -> Cascade {
    let board = fold(entries, members, at);
    let body = |id: &str| {
        entries
            .iter()
            .find(|e| e.payload.header().message_id.to_hex() == id)
            .and_then(|e| assurance_of(&e.payload))
    };
    let in_force: Vec<_> = board
        .assurances
        .iter()
        .filter(|a| a.state == State::Active)
        .filter_map(|a| body(&a.id).map(|b| (a, b)))
        .collect();
    let mut queue = VecDeque::from([(actor, action, None)]);
    let mut lapsed = BTreeSet::new();
    let mut fired = BTreeSet::new();
    let mut steps = Vec::new();
    while let Some((actor, action, caused_by)) = queue.pop_front() {
        let n = steps.len() + 1;
        let mut effects = Vec::new();
        for (view, a) in &in_force {
            if lapsed.contains(&view.id) {
                continue;
            }
            let issuer = Actor::Member(view.issuer.clone());
            for (ci, cond) in a.unless.iter().enumerate() {
                let all = Reading::all(&cond.scope);
                let yes: Vec<Reading> = all
                    .iter()
                    .copied()
                    .filter(|r| breaks(&issuer, cond, &actor, &action, r, &board.relations))
                    .collect();
                if !yes.is_empty() {
                    effects.push(Effect::Lapses {
                        assurance: view.id.clone(),
                        issuer: view.issuer.clone(),
                        wording: view.wording.clone(),
                        condition: ci,
                        readings_diverge: yes.len() != all.len(),
                        readings: yes,
                    });
                    lapsed.insert(view.id.clone());
                    break;
                }
            }
        }
        for rl in &board.red_lines {
            if fired.contains(&rl.id)
                || !triggers(
                    &rl.red_line.trigger_actor,
                    &rl.red_line.trigger,
                    &actor,
                    &action,
                )
            {
                continue;
            }
            fired.insert(rl.id.clone());
            let responder = Actor::Member(rl.issuer.clone());
            let response = rl.red_line.response.clone();
            effects.push(Effect::Fires {
                red_line: rl.id.clone(),
                issuer: rl.issuer.clone(),
                wording: rl.red_line.wording.clone(),
                response: describe(&responder, &response),
            });
            queue.push_back((responder, response, Some(n)));
        }
        steps.push(Step {
            n,
            event: describe(&actor, &action),
            caused_by,
            effects,
        });
    }
    Cascade {
        steps,
        stubs: board.stubs,
    }
}

impl Cascade {
    /// Step by step, for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            let cause = s
                .caused_by
                .map_or(String::new(), |c| format!(" (response to step {c})"));
            out.push_str(&format!("step {}: {}{cause}\n", s.n, s.event));
            if s.effects.is_empty() && self.stubs > 0 {
                out.push_str(&format!("  {}\n", super::terms::stubs_notice(self.stubs)));
            } else if s.effects.is_empty() {
                out.push_str("  nothing follows\n");
            }
            for e in &s.effects {
                match e {
                    Effect::Lapses {
                        issuer,
                        wording,
                        condition,
                        readings,
                        readings_diverge,
                        ..
                    } => {
                        out.push_str(&format!("  lapses: {issuer}'s assurance \"{wording}\" (condition {condition})\n"));
                        if *readings_diverge {
                            out.push_str(&format!(
                                "    only under the readings where {} (the wording leaves it open)\n",
                                Reading::common(readings)
                            ));
                        }
                    }
                    Effect::Fires {
                        issuer,
                        wording,
                        response,
                        ..
                    } => {
                        out.push_str(&format!(
                            "  fires: {issuer}'s red line \"{wording}\" -> {response}\n"
                        ));
                    }
                }
            }
        }
        out
    }

    /// A Graphviz DOT graph: events as boxes, lapses as ellipses, red lines
    /// as edges to the responses they set off.
    pub fn to_dot(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out =
            String::from("digraph whatif {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        for s in &self.steps {
            out.push_str(&format!(
                "  e{} [shape=box, label=\"{}. {}\"];\n",
                s.n,
                s.n,
                esc(&s.event)
            ));
            if let Some(c) = s.caused_by {
                let why = self.steps[c - 1]
                    .effects
                    .iter()
                    .find_map(|e| match e {
                        Effect::Fires {
                            wording, response, ..
                        } if *response == s.event => Some(wording.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  e{c} -> e{} [label=\"red line: {}\"];\n",
                    s.n,
                    esc(&why)
                ));
            }
            for (i, e) in s.effects.iter().enumerate() {
                if let Effect::Lapses {
                    issuer,
                    wording,
                    readings_diverge,
                    ..
                } = e
                {
                    let style = if *readings_diverge { "dashed" } else { "solid" };
                    out.push_str(&format!(
                        "  l{}_{i} [shape=ellipse, style={style}, label=\"lapses: {}: {}\"];\n  e{} -> l{}_{i};\n",
                        s.n,
                        esc(issuer),
                        esc(wording),
                        s.n,
                        s.n
                    ));
                }
            }
        }
        out.push_str("}\n");
        out
    }
}
