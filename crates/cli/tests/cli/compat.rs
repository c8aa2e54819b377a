//! Stores, relay databases and transcripts written before protocol v1
//! (fixtures made by `fixtures/pre-v1/generate.sh` with that build) still
//! open, read and verify the same after every later format change.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const FIXTURE_PASS: &str = "fixture passphrase";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pre-v1")
        .join(name)
}

/// Runs the binary on `store` with `passphrase`.
fn output(store: &Path, passphrase: &str, args: &[&str]) -> std::process::Output {
    Command::new(crate::bin())
        .env("BACKCHANNEL_PASSPHRASE", passphrase)
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs the binary on a copy of a fixture store; requires success.
fn run(store: &Path, args: &[&str]) -> String {
    let out = output(store, FIXTURE_PASS, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn copy_store(dir: &Path, who: &str) -> PathBuf {
    let to = dir.join(format!("{who}.store"));
    std::fs::copy(fixture(&format!("{who}.store")), &to).unwrap();
    to
}

fn channel() -> String {
    std::fs::read_to_string(fixture("channel_id"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_store_from_before_protocol_v1_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let blue = copy_store(dir.path(), "blue");
    let id = channel();
    let log: Value = serde_json::from_str(&run(&blue, &["log", &id, "--json"])).unwrap();
    let old: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("blue-log.json")).unwrap()).unwrap();
    // Every field the old log had reads the same; new fields may be added.
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), old.as_array().unwrap().len());
    for (now, was) in entries.iter().zip(old.as_array().unwrap()) {
        for (k, v) in was.as_object().unwrap() {
            assert_eq!(
                &now[k], v,
                "the log of an old store is unchanged: {k} in {was}"
            );
        }
    }
    let mut status: Value = serde_json::from_str(&run(&blue, &["status", &id, "--json"])).unwrap();
    let mut old: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("blue-status.json")).unwrap())
            .unwrap();
    // Only the evaluation time (now) differs, and the fields added since
    // (each assurance's typed terms, the count of stubs) are additions.
    status["at_ms"] = Value::Null;
    old["at_ms"] = Value::Null;
    assert_eq!(status["stubs"], 0);
    for a in status["assurances"].as_array().unwrap() {
        assert_eq!(a["assurance"]["wording"], a["wording"]);
    }
    assert!(
        within(&old, &status),
        "the board of an old store is unchanged (fields are only added):\n{old}\n{status}"
    );
    // The mediator's store, which holds stubs of the content, opens too.
    let mediator = copy_store(dir.path(), "mediator");
    let out = run(&mediator, &["log", &id]);
    assert!(out.contains("structured"), "{out}");
}

#[test]
fn an_old_store_exports_its_messages_byte_for_byte_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let blue = copy_store(dir.path(), "blue");
    let file = dir.path().join("again.json");
    run(
        &blue,
        &[
            "transcript",
            "export",
            &channel(),
            "--out",
            file.to_str().unwrap(),
        ],
    );
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let now = read(&file);
    let then = read(&fixture("blue-transcript.json"));
    assert_eq!(now["messages"], then["messages"]);
    // Every version 1 header keeps its version byte, and every version 1
    // structured body its exact (non-canonical) JSON.
    for m in now["messages"].as_array().unwrap() {
        assert!(m["header"].as_str().unwrap().starts_with("01"), "{m}");
    }
}

#[test]
fn an_old_transcript_still_verifies_and_tampering_still_shows() {
    let dir = tempfile::tempdir().unwrap();
    let blue = copy_store(dir.path(), "blue");
    let file = fixture("blue-transcript.json");
    let out = run(
        &blue,
        &["transcript", "verify", file.to_str().unwrap(), "--json"],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["check"]["problems"], serde_json::json!([]), "{out}");
    assert_eq!(v["check"]["messages"], 13);
    // A body byte changed in the old transcript is caught.
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let m = t["messages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["kind"] == "structured")
        .unwrap();
    let body = m["body"].as_str().unwrap().replacen("726564", "726565", 1);
    m["body"] = Value::String(body);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&t).unwrap()).unwrap();
    let out = output(
        &blue,
        FIXTURE_PASS,
        &["transcript", "verify", bad.to_str().unwrap()],
    );
    assert!(!out.status.success());
}

#[test]
fn a_relay_database_from_before_protocol_v1_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    std::fs::copy(fixture("relay.db"), &db).unwrap();
    let relay = backchannel_testkit::RelayProcess::spawn(crate::bin(), &db);
    // Principals registered then are still there for a new one to propose to.
    let store = dir.path().join("new.store");
    let newcomer = |args: &[&str]| {
        let out = output(&store, crate::PASS, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    newcomer(&["init", "--relay", &relay.url, "--handle", "newcomer"]);
    newcomer(&[
        "channel", "create", "--title", "after", "--party", "blue", "--party", "red",
    ]);
}

/// Is every field of `old` in `new` with the same value (objects may gain
/// fields; arrays keep their length)?
fn within(old: &Value, new: &Value) -> bool {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => o
            .iter()
            .all(|(k, v)| n.get(k).is_some_and(|x| within(v, x))),
        (Value::Array(o), Value::Array(n)) => {
            o.len() == n.len() && o.iter().zip(n).all(|(a, b)| within(a, b))
        }
        _ => old == new,
    }
}
