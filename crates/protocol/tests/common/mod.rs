//! Scenario files (`tests/whatif/*.json` at the repository root) as
//! transcripts: shared by the what-if and the graph tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use backchannel_protocol::commitments::authority::Roster;
use backchannel_protocol::commitments::fold::Entry;
use backchannel_protocol::commitments::whatif::{
    same, what_if, Cascade, ChannelInput, Hypothesis, Options,
};
use backchannel_protocol::commitments::{Action, Actor, Structured};
use backchannel_protocol::payload::{Body, Header, Payload, Role};
use backchannel_protocol::transcript::{Epoch, Head, HeadVector};
use backchannel_protocol::{ChannelId, Digest, Handle, MessageId, Seq, Timestamp};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Scenario {
    pub name: String,
    pub members: BTreeMap<String, String>,
    /// The channel's policy lets the mediator read (default true).
    #[serde(default = "yes")]
    pub mediator_reads: bool,
    pub at_ms: i64,
    pub messages: Vec<ScenarioMessage>,
    /// The hypothetical event, if the scenario asks a what-if.
    #[serde(default)]
    pub event: Option<ScenarioEvent>,
    /// Further events, in sequence, after `event` (and its cascade).
    #[serde(default)]
    pub then: Vec<ScenarioEvent>,
    /// The label of a reported event the what-if starts from.
    #[serde(default)]
    pub from_report: Option<String>,
    /// The what-if uses only undisputed relations.
    #[serde(default)]
    pub undisputed_only: bool,
    /// The cascade, as `render` writes it.
    #[serde(default)]
    pub expected: Vec<String>,
    /// Lines the cascade's text (what `whatif` prints) must contain.
    #[serde(default)]
    pub expected_text: Vec<String>,
    /// The board at `at_ms`, as `render_board` writes it.
    #[serde(default)]
    pub expected_board: Vec<String>,
}

pub fn yes() -> bool {
    true
}

#[derive(Deserialize)]
pub struct ScenarioMessage {
    pub label: String,
    pub sender: String,
    pub sent_at_ms: i64,
    pub body: serde_json::Value,
}

#[derive(Deserialize)]
pub struct ScenarioEvent {
    pub actor: Actor,
    pub action: Action,
    #[serde(default)]
    pub at_ms: Option<i64>,
}

impl Scenario {
    pub fn asks(&self) -> bool {
        self.event.is_some() || self.from_report.is_some() || !self.then.is_empty()
    }

    /// How the what-if reads the relations.
    pub fn options(&self) -> Options {
        Options {
            undisputed_only: self.undisputed_only,
        }
    }

    /// The events the what-if starts from, in order.
    pub fn hypotheses(
        &self,
        input: &[ChannelInput<'_>],
        labels: &BTreeMap<String, String>,
    ) -> Vec<Hypothesis> {
        let mut out = Vec::new();
        if let Some(l) = &self.from_report {
            let id = labels
                .iter()
                .find(|(_, v)| *v == l)
                .map(|(k, _)| k.clone())
                .unwrap();
            out.push(
                Hypothesis::reported(input, &id).unwrap_or_else(|| panic!("{l} is no report")),
            );
        }
        for e in self.event.iter().chain(&self.then) {
            let mut h = Hypothesis::new(e.actor.clone(), e.action.clone());
            h.at_ms = e.at_ms;
            out.push(h);
        }
        out
    }
}

/// Builds a transcript in which every member has seen every earlier message,
/// with a final receipt from each member. Bodies may name earlier messages
/// as `"@label"`.
pub fn transcript(s: &Scenario) -> (Vec<Entry>, Roster, BTreeMap<String, String>) {
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
            version: backchannel_protocol::payload::BodyVersion::V4,
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
    let roster = Roster::new(members, s.mediator_reads);
    (entries, roster, labels)
}

/// The scenario files, sorted.
pub fn files() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/whatif");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The scenario in `path`.
pub fn load(path: &std::path::Path) -> Scenario {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cascade a scenario asks for, in its one channel.
pub fn cascade(s: &Scenario) -> Cascade {
    let (entries, roster, labels) = transcript(s);
    let input = [ChannelInput {
        channel: entries[0].payload.header().channel_id,
        entries: &entries,
        roster: &roster,
    }];
    what_if(
        &input,
        Timestamp(s.at_ms),
        &s.hypotheses(&input, &labels),
        &same,
        s.options(),
    )
}
