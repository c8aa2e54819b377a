#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]
//! What-if scenarios as data (`tests/whatif/*.json` at the repository
//! root), each with its expected cascade, run twice to show determinism.

mod common;

use std::collections::BTreeMap;

use backchannel_protocol::commitments::fold::{fold, Board};
use backchannel_protocol::commitments::whatif::{
    same, what_if, Cascade, ChannelInput, Effect, Options,
};
use backchannel_protocol::commitments::Actor;
use backchannel_protocol::Timestamp;
use common::{transcript, Scenario};

fn render(c: &Cascade, labels: &BTreeMap<String, String>) -> Vec<String> {
    let label = |id: &str| labels.get(id).cloned().unwrap_or_else(|| id.to_string());
    let mut out = Vec::new();
    for s in &c.steps {
        out.push(format!("step {}: {}", s.n, s.event));
        for e in &s.effects {
            out.push(match e {
                Effect::Lapses {
                    assurance,
                    condition,
                    readings_diverge,
                    now_all,
                    earlier,
                    ..
                } => format!(
                    "  lapses {} (condition {condition}){}",
                    label(assurance),
                    match (*readings_diverge, earlier.is_empty(), *now_all) {
                        (false, _, _) => "",
                        (true, true, _) => " under some readings",
                        (true, false, true) => " under the remaining readings",
                        (true, false, false) => " under more readings",
                    }
                ),
                Effect::Fires {
                    red_line,
                    response,
                    readings_diverge,
                    ..
                } => format!(
                    "  fires {} -> {response}{}",
                    label(red_line),
                    if *readings_diverge {
                        " under some readings"
                    } else {
                        ""
                    }
                ),
                Effect::Guarantee {
                    guarantee,
                    response,
                    ..
                } => format!("  guarantee {} -> {response}", label(guarantee)),
                Effect::Fulfils {
                    assurance, proviso, ..
                } => format!("  fulfils {} (proviso {proviso})", label(assurance)),
                Effect::Breach {
                    assurance,
                    under_all,
                    in_response_to,
                    ..
                } => format!(
                    "  breach {}{}{}",
                    label(assurance),
                    if *under_all {
                        ""
                    } else {
                        " under some readings"
                    },
                    if in_response_to.is_some() {
                        " (a declared response)"
                    } else {
                        ""
                    }
                ),
            });
        }
        for n in &s.notes {
            let about = n
                .commitment
                .as_deref()
                .map(label)
                .map_or(String::new(), |l| format!(" {l}"));
            out.push(format!(
                "  note {}{about}",
                serde_json::to_value(n.why).unwrap().as_str().unwrap()
            ));
        }
    }
    out
}

fn render_board(b: &Board, labels: &BTreeMap<String, String>) -> Vec<String> {
    let label = |id: &str| labels.get(id).cloned().unwrap_or_else(|| id.to_string());
    let mut out = Vec::new();
    for a in &b.assurances {
        out.push(format!(
            "assurance {}: {}, {} lapse claims, {} findings, {} breach reports",
            label(&a.id),
            serde_json::to_value(a.state).unwrap().as_str().unwrap(),
            a.lapse_claims.len(),
            a.rulings.len(),
            a.breach_reports.len()
        ));
    }
    for a in &b.assurances {
        for p in &a.provisos {
            out.push(format!(
                "proviso {} of {}: {}{}, {} claims",
                p.index + 1,
                label(&a.id),
                serde_json::to_value(p.state).unwrap().as_str().unwrap(),
                if p.overdue { " (overdue)" } else { "" },
                p.claims.len()
            ));
        }
        for g in &a.guarantees {
            out.push(format!(
                "guarantee {} of {} by {}",
                label(&g.id),
                label(&a.id),
                g.guarantor
            ));
        }
    }
    for r in &b.red_lines {
        out.push(format!(
            "red line {} by {}: {}",
            label(&r.id),
            r.issuer,
            serde_json::to_value(r.state).unwrap().as_str().unwrap()
        ));
    }
    for d in b.relations.iter().filter(|d| !d.disputed_by.is_empty()) {
        out.push(format!(
            "relation {} {:?} {} by {}, disputed by {}",
            d.subject,
            d.relation,
            d.object,
            d.by,
            d.disputed_by.join(", ")
        ));
    }
    for w in &b.awaiting {
        out.push(format!("awaiting {} from {}", label(&w.id), w.from));
    }
    for u in &b.unauthorized {
        out.push(format!(
            "ignored {}: {}",
            label(&u.message),
            u.refusal.rule.code()
        ));
    }
    out
}

#[test]
fn every_scenario_cascades_as_expected_and_deterministically() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/whatif");
    let mut count = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let s: Scenario = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (entries, roster, labels) = transcript(&s);
        let at = Timestamp(s.at_ms);
        let channel = entries[0].payload.header().channel_id;
        let input = [ChannelInput {
            channel,
            entries: &entries,
            roster: &roster,
        }];
        let board = render_board(&fold(&entries, &roster, at), &labels);
        // WHATIF_BLESS=FILE writes what each scenario gives to FILE (JSON
        // lines), to write new scenarios; read it before using it.
        let bless = std::env::var("WHATIF_BLESS").ok();
        let mut json = serde_json::json!({ "file": path.file_name().unwrap().to_str() });
        if bless.is_some() && (!s.expected_board.is_empty() || !s.asks()) {
            json["expected_board"] = serde_json::json!(board);
        } else if !s.expected_board.is_empty() || !s.asks() {
            assert_eq!(board, s.expected_board, "{}:\n{}", s.name, board.join("\n"));
        }
        if s.asks() {
            let events = s.hypotheses(&input, &labels);
            let run = || what_if(&input, at, &events, &same, s.options());
            let first = run();
            assert_eq!(first, run(), "{}: not deterministic", s.name);
            let got = render(&first, &labels);
            if bless.is_some() {
                json["expected"] = serde_json::json!(got);
                json["text"] = serde_json::json!(first.to_text());
            }
            assert!(
                bless.is_some() || got == s.expected,
                "{}:\n{}",
                s.name,
                got.join("\n")
            );
            let text = first.to_text();
            for line in &s.expected_text {
                assert!(
                    text.contains(line.as_str()),
                    "{}: no {line:?} in\n{text}",
                    s.name
                );
            }
            for internal in ["(condition 0)", "Active", "AllyOf", "ProxyOf", "where  ("] {
                assert!(
                    !text.contains(internal),
                    "{}: {internal:?} in\n{text}",
                    s.name
                );
            }
            let dot = first.to_dot();
            assert!(dot.starts_with("digraph whatif {") && dot.trim_end().ends_with('}'));
            assert!(dot.contains("rankdir=TB;") && dot.contains("subgraph cluster_legend {"));
            // Every step is a node, and every red line that fired too.
            for st in &first.steps {
                assert!(
                    dot.contains(&format!("  step{} [", st.n)),
                    "{}:\n{dot}",
                    s.name
                );
            }
            let fired = first
                .steps
                .iter()
                .flat_map(|st| &st.effects)
                .filter(|e| matches!(e, Effect::Fires { .. }))
                .count();
            assert_eq!(
                dot.matches("label=\"red line ").count(),
                fired,
                "{}",
                s.name
            );
        }
        if let Some(out) = &bless {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(out)
                .unwrap();
            writeln!(f, "{json}").unwrap();
        }
        count += 1;
    }
    assert!(count >= 20, "{count} scenarios");
}

mod properties {
    //! The cascade over generated worlds: members blue, red (and gray, who
    //! only ever speaks of actors no one else names), outside actors green
    //! and militia, random relations, assurances and red lines.

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    const ACTORS: [(&str, &str); 4] = [
        ("member", "blue"),
        ("member", "red"),
        ("outside", "green"),
        ("outside", "militia"),
    ];

    fn actor(i: usize) -> Value {
        let (k, n) = ACTORS[i % ACTORS.len()];
        json!({ k: n })
    }

    fn scope(bits: u8) -> Value {
        // Two bits per question: 0 open, 1 yes, 2 or 3 no.
        let q = |i: u8| match (bits >> (2 * i)) & 3 {
            0 => Value::Null,
            1 => json!(true),
            _ => json!(false),
        };
        let mut s = serde_json::Map::new();
        for (i, name) in [
            "attacker_allies",
            "attacker_proxies",
            "attacked_allies",
            "attacked_proxies",
        ]
        .into_iter()
        .enumerate()
        {
            let v = q(i as u8);
            if !v.is_null() {
                s.insert(name.into(), v);
            }
        }
        Value::Object(s)
    }

    #[derive(Clone, Debug)]
    struct World {
        /// (subject, ally?, object, declared by blue?)
        relations: Vec<(usize, bool, usize, bool)>,
        /// (issuer red?, target, attacker, scope bits)
        assurances: Vec<(bool, usize, usize, u8)>,
        /// (issuer red?, trigger actor, trigger target, response target)
        red_lines: Vec<(bool, Option<usize>, usize, usize)>,
        /// (actor, target, an attack?)
        event: (usize, usize, bool),
        /// The mediator guarantees assurance (index mod their count) by
        /// striking (response target): version 4.
        guarantees: Vec<(usize, usize)>,
    }

    fn world() -> impl Strategy<Value = World> {
        (
            proptest::collection::vec((2usize..4, any::<bool>(), 0usize..2, any::<bool>()), 0..3),
            proptest::collection::vec((any::<bool>(), 0usize..4, 0usize..4, any::<u8>()), 0..4),
            proptest::collection::vec(
                (
                    any::<bool>(),
                    proptest::option::of(0usize..4),
                    0usize..4,
                    0usize..4,
                ),
                0..5,
            ),
            (0usize..4, 0usize..4, proptest::bool::weighted(0.9)),
            proptest::collection::vec((0usize..4, 0usize..4), 0..3),
        )
            .prop_map(
                |(relations, assurances, red_lines, event, guarantees)| World {
                    relations,
                    assurances,
                    red_lines,
                    event,
                    guarantees,
                },
            )
    }

    fn issuer(red: bool) -> &'static str {
        if red {
            "red"
        } else {
            "blue"
        }
    }

    /// The world as a scenario; `unrelated` adds gray's commitments about
    /// zeta and omega, whom nothing else names.
    fn scenario(w: &World, unrelated: bool) -> Scenario {
        let mut messages = Vec::new();
        let mut t = 100;
        let mut push = |sender: &str, body: Value| {
            t += 10;
            messages.push(
                json!({"label": format!("m{t}"), "sender": sender, "sent_at_ms": t, "body": body}),
            );
            format!("m{t}")
        };
        for (s, ally, o, by_blue) in &w.relations {
            push(
                if *by_blue { "blue" } else { "red" },
                json!({"type": "relate", "subject": actor(*s), "relation": if *ally { "ally_of" } else { "proxy_of" }, "object": actor(*o)}),
            );
        }
        let mut firsts = Vec::new();
        for (red, target, attacker, bits) in &w.assurances {
            let other = if *red { "blue" } else { "red" };
            firsts.push(push(
                issuer(*red),
                json!({"type": "assurance", "beneficiaries": [{"member": other}],
                    "commitment": {"refrain": true, "action": {"kind": "ASSAULT", "target": actor(*target)}},
                    "unless": [{"attacked_first_by": actor(*attacker), "scope": scope(*bits)}],
                    "valid_from_ms": 0, "until_revoked": true, "formality": "oral",
                    "authorized_by": "x", "language": "en", "wording": "w"}),
            ));
        }
        for (red, by, target, response) in &w.red_lines {
            let mut body = json!({"type": "red_line", "trigger": {"kind": "ASSAULT", "target": actor(*target)},
                "response": {"kind": "ASSAULT", "target": actor(*response)}, "wording": "r"});
            if let Some(b) = by {
                body["trigger_actor"] = actor(*b);
            }
            push(issuer(*red), body);
        }
        for (i, response) in w.guarantees.iter().filter(|_| !firsts.is_empty()) {
            push(
                "mediator",
                json!({"type": "guarantee", "assurance": format!("@{}", firsts[i % firsts.len()]),
                    "response": {"kind": "ASSAULT", "target": actor(*response)}, "wording": "g"}),
            );
        }
        if unrelated {
            let (zeta, omega) = (json!({"outside": "zeta"}), json!({"outside": "omega"}));
            push(
                "gray",
                json!({"type": "relate", "subject": zeta, "relation": "ally_of", "object": omega}),
            );
            push(
                "gray",
                json!({"type": "red_line", "trigger_actor": omega, "trigger": {"kind": "ASSAULT", "target": zeta},
                    "response": {"kind": "ASSAULT", "target": zeta}, "wording": "g"}),
            );
            push(
                "gray",
                json!({"type": "assurance", "beneficiaries": [omega],
                    "commitment": {"refrain": true, "action": {"kind": "ASSAULT", "target": zeta}},
                    "unless": [{"attacked_first_by": zeta, "scope": {}}],
                    "valid_from_ms": 0, "until_revoked": true, "formality": "oral",
                    "authorized_by": "x", "language": "en", "wording": "g"}),
            );
        }
        let (a, target, attack) = w.event;
        serde_json::from_value(json!({
            "name": "generated",
            "members": {"mediator": "mediator", "blue": "party", "red": "party", "gray": "party"},
            "at_ms": 10_000,
            "messages": messages,
            "event": {"actor": actor(a), "action": {"kind": if attack { "ASSAULT" } else { "MOBILIZE" }, "target": actor(target)}},
        }))
        .unwrap()
    }

    fn cascade(s: &Scenario) -> (Cascade, BTreeMap<String, String>) {
        let (entries, roster, labels) = transcript(s);
        let input = [ChannelInput {
            channel: entries[0].payload.header().channel_id,
            entries: &entries,
            roster: &roster,
        }];
        let c = what_if(
            &input,
            Timestamp(s.at_ms),
            &s.hypotheses(&input, &labels),
            &same,
            Options::default(),
        );
        (c, labels)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn the_cascade_is_deterministic_and_ends(w in world()) {
            let s = scenario(&w, false);
            let (one, _) = cascade(&s);
            let (two, _) = cascade(&s);
            prop_assert_eq!(&one, &two);
            // Each red line fires, and each guarantee acts, at most once:
            // one step each, plus the first.
            let most = w.red_lines.len() + w.guarantees.len() + 1;
            prop_assert!(one.steps.len() <= most, "{}", one.to_text());
        }

        #[test]
        fn no_actor_is_released_by_the_answer_to_its_own_first_strike(w in world()) {
            let s = scenario(&w, false);
            let (c, labels) = cascade(&s);
            // Label -> the attacker its condition names.
            let by: BTreeMap<String, Actor> = s
                .messages
                .iter()
                .filter(|m| m.body["type"] == "assurance")
                .map(|m| {
                    (m.label.clone(), serde_json::from_value(m.body["unless"][0]["attacked_first_by"].clone()).unwrap())
                })
                .collect();
            for step in &c.steps {
                for e in &step.effects {
                    let Effect::Lapses { assurance, issuer, .. } = e else { continue };
                    let attacker = &by[&labels[assurance]];
                    let me = Actor::Member(issuer.clone());
                    let struck = c.steps[..step.n - 1].iter().find(|x| {
                        x.actor == me && x.action.kind.is_attack() && x.action.target.as_ref() == Some(attacker)
                    });
                    prop_assert!(struck.is_none(), "{issuer} struck {attacker} first, yet lapses at step {}:\n{}", step.n, c.to_text());
                }
            }
        }

        #[test]
        fn an_unrelated_commitment_changes_no_effect(w in world()) {
            let (before, _) = cascade(&scenario(&w, false));
            let (after, _) = cascade(&scenario(&w, true));
            prop_assert_eq!(before.steps, after.steps);
        }
    }
}
