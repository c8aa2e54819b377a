#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]
//! What-if scenarios as data (`tests/whatif/*.json` at the repository
//! root), each with its expected cascade, run twice to show determinism.

use std::collections::BTreeMap;

use backchannel_protocol::commitments::fold::Entry;
use backchannel_protocol::commitments::whatif::{what_if, Cascade, Effect};
use backchannel_protocol::commitments::{Action, Actor, Structured};
use backchannel_protocol::payload::{Body, Header, Payload, Role};
use backchannel_protocol::transcript::{Epoch, Head, HeadVector};
use backchannel_protocol::{ChannelId, Digest, Handle, MessageId, Seq, Timestamp};
use serde::Deserialize;

#[derive(Deserialize)]
struct Scenario {
    name: String,
    members: BTreeMap<String, String>,
    at_ms: i64,
    messages: Vec<ScenarioMessage>,
    event: ScenarioEvent,
    expected: Vec<String>,
}

#[derive(Deserialize)]
struct ScenarioMessage {
    label: String,
    sender: String,
    sent_at_ms: i64,
    body: serde_json::Value,
}

#[derive(Deserialize)]
struct ScenarioEvent {
    actor: Actor,
    action: Action,
}

/// Builds a transcript in which every member has seen every earlier message,
/// with a final receipt from each member. Bodies may name earlier messages
/// as `"@label"`.
fn transcript(s: &Scenario) -> (Vec<Entry>, Vec<(Handle, Role)>, BTreeMap<String, String>) {
    let channel = ChannelId([1; 16]);
    let epoch = Epoch::genesis(channel).successor(Digest([2; 32])).unwrap();
    let members: Vec<(Handle, Role)> = s
        .members
        .iter()
        .map(|(h, r)| {
            (
                Handle::new(h.as_str()).unwrap(),
                if r == "mediator" {
                    Role::Mediator
                } else {
                    Role::Party
                },
            )
        })
        .collect();
    let mut heads: BTreeMap<Handle, Head> = members
        .iter()
        .map(|(h, _)| {
            (
                h.clone(),
                Head {
                    seq: Seq(0),
                    digest: epoch.opening,
                },
            )
        })
        .collect();
    let mut entries = Vec::new();
    let mut labels = BTreeMap::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let last = s.messages.iter().map(|m| m.sent_at_ms).max().unwrap_or(0);
    let mut items: Vec<(String, String, i64, Option<serde_json::Value>)> = s
        .messages
        .iter()
        .map(|m| {
            (
                m.label.clone(),
                m.sender.clone(),
                m.sent_at_ms,
                Some(m.body.clone()),
            )
        })
        .collect();
    for (h, _) in &members {
        items.push((format!("receipt-{h}"), h.to_string(), last + 1, None));
    }
    for (i, (label, sender, at, body)) in items.into_iter().enumerate() {
        let id = MessageId([i as u8 + 10; 16]);
        let sender = Handle::new(sender).unwrap();
        let prev = heads[&sender];
        let body = match body {
            Some(b) => {
                let mut json = b.to_string();
                for (l, id) in &ids {
                    json = json.replace(&format!("\"@{l}\""), &format!("\"{id}\""));
                }
                let s: Structured =
                    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{label}: {e}"));
                s.validate().unwrap_or_else(|e| panic!("{label}: {e}"));
                Body::structured(s).unwrap()
            }
            None => Body::Receipt,
        };
        ids.insert(label.clone(), id.to_hex());
        labels.insert(id.to_hex(), label);
        let header = Header {
            version: backchannel_protocol::payload::BodyVersion::V2,
            channel_id: channel,
            message_id: id,
            epoch,
            sender: sender.clone(),
            seq: Seq(prev.seq.0 + 1),
            prev: prev.digest,
            sent_at: Timestamp(at),
            in_reply_to: None,
            body_kind: body.kind(),
            heads: HeadVector(heads.clone()),
        };
        let payload = Payload::Full {
            header,
            salt: [0; 16],
            body,
        };
        heads.insert(
            sender,
            Head {
                seq: Seq(prev.seq.0 + 1),
                digest: payload.digest(),
            },
        );
        entries.push(Entry { payload });
    }
    (entries, members, labels)
}

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
                    ..
                } => format!(
                    "  lapses {} (condition {condition}){}",
                    label(assurance),
                    if *readings_diverge {
                        " under some readings"
                    } else {
                        ""
                    }
                ),
                Effect::Fires {
                    red_line, response, ..
                } => format!("  fires {} -> {response}", label(red_line)),
            });
        }
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
        let (entries, members, labels) = transcript(&s);
        let run = || {
            what_if(
                &entries,
                &members,
                Timestamp(s.at_ms),
                s.event.actor.clone(),
                s.event.action.clone(),
            )
        };
        let first = run();
        assert_eq!(first, run(), "{}: not deterministic", s.name);
        let got = render(&first, &labels);
        assert_eq!(got, s.expected, "{}:\n{}", s.name, got.join("\n"));
        let dot = first.to_dot();
        assert!(dot.starts_with("digraph whatif {") && dot.trim_end().ends_with('}'));
        count += 1;
    }
    assert!(count >= 8, "{count} scenarios");
}
