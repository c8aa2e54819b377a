//! docs/json.md against the real output: every field a `Fields:` line of
//! that page lists is present in the command's `--json` output, so the
//! documented shape cannot drift from what scripts get.

use serde_json::Value;

use crate::Scene;

/// (heading, fields) for every documented shape with a `Fields:` line.
fn documented() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/json.md"))
        .unwrap();
    let mut out = Vec::new();
    let mut heading = String::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            heading = h.replace('`', "");
        } else if let Some(f) = line.strip_prefix("Fields") {
            let f = f.trim_start_matches(|c| c != ':').trim_start_matches(':');
            let fields = f
                .split(',')
                .map(|x| x.trim().trim_matches('`').to_string())
                .filter(|x| !x.is_empty())
                .collect();
            out.push((heading.clone(), fields));
        }
    }
    out
}

#[test]
fn every_documented_json_field_is_in_the_output() {
    let s = Scene::new();
    let id = s.open_channel();
    let c = &id[..8];
    s.blue.run(&[
        "assure",
        c,
        "No first strike.",
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--until-revoked",
        "--authorized-by",
        "the cabinet",
    ]);
    s.red.run(&["sync"]);
    let board = s.red.json(&["status", c]);
    let assurance = board["assurances"][0]["id"].as_str().unwrap().to_string();
    s.mediator
        .run(&["channel", "amend", c, "--heartbeat", "2h"]);
    let dir = s.dir.path();
    let init_store = dir.join("extra.store");
    let init_store = init_store.to_str().unwrap();
    // What each documented heading runs (as red, unless said).
    let first = |v: Value| match v {
        Value::Array(a) => a.into_iter().next().unwrap_or(Value::Null),
        v => v,
    };
    let docs = documented();
    assert!(docs.len() >= 12, "docs/json.md lists its fields: {docs:?}");
    for (heading, fields) in docs {
        let out: Value = match heading.as_str() {
            "backchannel init --json" => serde_json::from_str(
                &crate::User {
                    store: init_store.into(),
                }
                .run(&[
                    "init",
                    "--relay",
                    &s.relay.url,
                    "--handle",
                    "extra",
                    "--json",
                ]),
            )
            .unwrap(),
            "backchannel fingerprint PEER --json" => s.red.json(&["fingerprint", "mediator"]),
            "backchannel channel list --json" => first(s.red.json(&["channel", "list"])),
            "backchannel channel show CHANNEL --json" => s.red.json(&["channel", "show", c]),
            "backchannel channel create | accept | amend | decline | leave --json" => {
                s.red.run(&["sync"]);
                let d = s.red.json(&["channel", "show", c])["pending"]["digest"]
                    .as_str()
                    .unwrap()
                    .to_string();
                s.red.json(&["channel", "accept", c, "--yes", &d])
            }
            "backchannel send CHANNEL TEXT --json" => s.red.json(&["send", c, "hello"]),
            "backchannel sync --json" => s.blue.json(&["sync"]),
            "backchannel log [CHANNEL] --json, backchannel inbox --json" => {
                first(s.blue.json(&["inbox"]))
            }
            "backchannel status CHANNEL --json" => board.clone(),
            "backchannel show ID --json" => s.red.json(&["show", &assurance[..8]]),
            "backchannel whatif CHANNEL … --json" => s.red.json(&[
                "whatif",
                c,
                "--actor",
                "outside:green",
                "--action",
                "ASSAULT",
                "--target",
                "red",
            ]),
            "backchannel restore FILE --json" => {
                let file = dir.join("blue.backup");
                s.blue.run(&["backup", file.to_str().unwrap()]);
                s.blue.json(&["restore", file.to_str().unwrap()])
            }
            other => panic!("docs/json.md documents {other:?}, which this test does not run"),
        };
        for f in &fields {
            assert!(
                out.get(f).is_some(),
                "{heading}: docs/json.md lists {f:?}, the output has no such field: {out}"
            );
        }
    }
}
