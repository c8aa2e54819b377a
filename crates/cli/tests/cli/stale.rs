//! A store restored from an older copy: detected before anything is
//! posted, and brought back by a rekey epoch, with no alert at the others.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::crash::{kill_at, no_alerts};
use crate::{inbox, Scene, User};

/// The store's files as they are now (the program is not running).
fn copy_store(u: &User, to: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(to).unwrap();
    let name = u.store.file_name().unwrap().to_string_lossy().into_owned();
    let mut copied = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = u.store.with_file_name(format!("{name}{suffix}"));
        if from.exists() {
            let dest = to.join(format!("{name}{suffix}"));
            std::fs::copy(&from, &dest).unwrap();
            copied.push(dest);
        }
    }
    copied
}

fn restore_store(u: &User, copy: &[PathBuf]) {
    let name = u.store.file_name().unwrap().to_string_lossy().into_owned();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(u.store.with_file_name(format!("{name}{suffix}")));
    }
    for file in copy {
        let dest = u.store.with_file_name(file.file_name().unwrap());
        std::fs::copy(file, dest).unwrap();
    }
}

fn alerts_of(report: &Value, kind: &str) -> Vec<Value> {
    report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .cloned()
        .collect()
}

#[test]
fn a_restored_store_posts_nothing_and_comes_back_through_a_rekey() {
    let s = Scene::new();
    let id = s.open_channel();
    s.blue.run(&["send", &id, "before the copy"]);
    // Committed to the outbox, then the process died before posting it.
    kill_at(
        &s.blue,
        &["send", &id, "queued at the copy"],
        "after_outbox_commit",
    );
    let copy = copy_store(&s.blue, &s.dir.path().join("backup"));
    // The original goes on: it posts the queued message and one more.
    no_alerts(&s.blue);
    s.blue.run(&["send", &id, "after the copy"]);
    for u in [&s.mediator, &s.red] {
        no_alerts(u);
    }
    let red_had = inbox(&s.red).len();

    restore_store(&s.blue, &copy);
    let out = s.blue.try_run(&["sync", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "sync --json: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let stale = alerts_of(&report, "stale_store");
    assert_eq!(stale.len(), 1, "{report}");
    let detail = stale[0]["detail"].as_str().unwrap();
    assert!(detail.contains("or the relay is lying"), "{detail}");
    assert!(!detail.contains("init"), "never advises re-initialising");
    assert_eq!(
        report["not_sent"].as_array().map(Vec::len),
        Some(1),
        "the queued post is listed as not sent: {report}"
    );
    // Nothing from the restored store reached anyone.
    no_alerts(&s.red);
    assert_eq!(inbox(&s.red).len(), red_had);
    // It refuses to send on its old sessions and positions.
    let refused = s.blue.try_run(&["send", &id, "hello again"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--rekey"), "the way back is named: {said}");

    // The way back: a rekey epoch, accepted as usual.
    s.mediator.run(&["channel", "amend", &id[..8], "--rekey"]);
    for p in [&s.blue, &s.red] {
        p.run(&["sync"]);
        p.accept(&id[..8]);
    }
    for u in [&s.mediator, &s.red, &s.blue, &s.mediator, &s.red] {
        u.run(&["sync"]);
    }
    for u in [&s.mediator, &s.red, &s.blue] {
        let list = u.json(&["channel", "list"]);
        assert_eq!(list[0]["epoch"], 2, "the rekey epoch is open: {list}");
    }
    s.blue.run(&["send", &id, "back on new positions"]);
    s.red.run(&["send", &id, "welcome back"]);
    for u in [&s.mediator, &s.red] {
        no_alerts(u);
    }
    // (The mediator of this channel holds stubs only.)
    assert!(inbox(&s.red).contains(&("blue".into(), "back on new positions".into())));
    let blue = s.blue.json(&["sync"]);
    assert_eq!(blue["alerts"], serde_json::json!([]), "{blue}");
    assert!(inbox(&s.blue).contains(&("red".into(), "welcome back".into())));
    let verify = s.blue.json(&["verify"]);
    let open: Vec<&Value> = verify["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["kind"] != "stale_store")
        .collect();
    assert!(open.is_empty(), "only the stale store itself: {verify}");
}

#[test]
fn amend_without_a_change_asks_for_one_or_rekey() {
    let s = Scene::new();
    let id = s.open_channel();
    let out = s.mediator.try_run(&["channel", "amend", &id[..8]]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("nothing to change") && said.contains("--rekey"),
        "{said}"
    );
    let out = s
        .mediator
        .try_run(&["channel", "amend", &id[..8], "--rekey", "--remove", "red"]);
    assert!(!out.status.success(), "--rekey changes nothing else");
}

/// The kinds in a JSON list of alerts.
fn kinds_of(alerts: &Value) -> Vec<String> {
    alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Every alert a user's store ever raised (open, cleared or dismissed).
pub(crate) fn all_kinds(u: &User) -> Vec<String> {
    let out = u.try_run(&["verify", "--all", "--json"]);
    kinds_of(&serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn a_reinstalled_member_is_reintroduced_and_nothing_is_called_forged() {
    let s = Scene::new();
    let id = s.open_channel();
    s.blue.run(&["send", &id, "before the loss"]);
    s.red.run(&["sync"]);
    s.red.run(&["send", &id, "heard you"]);
    for u in [&s.mediator, &s.blue, &s.mediator] {
        no_alerts(u);
    }

    // Blue's device is lost; the operator releases the handle; blue starts
    // again on a new device, with new keys, under the same handle.
    std::fs::remove_file(&s.blue.store).unwrap();
    let taken = s
        .blue
        .try_run(&["init", "--relay", &s.relay.url, "--handle", "blue"]);
    assert!(!taken.status.success());
    let said = String::from_utf8_lossy(&taken.stderr);
    assert!(said.contains("relay release"), "{said}");
    let _ = std::fs::remove_file(&s.blue.store);
    let db = s.dir.path().join("relay.db");
    let released = std::process::Command::new(crate::bin())
        .args(["relay", "release", "--handle", "blue", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(released.status.success(), "{released:?}");
    s.blue
        .run(&["init", "--relay", &s.relay.url, "--handle", "blue"]);

    // The mediator accepts the new key (after comparing safety numbers)
    // and re-introduces it in a rekey epoch.
    s.mediator
        .run(&["trust", "dangerous-accept-new-key", "blue"]);
    s.mediator.run(&["channel", "amend", &id[..8], "--rekey"]);
    s.blue.run(&["sync"]);
    s.blue.accept(&id[..8]);

    // Red sees the new key as introduced by the mediator: blocked until it
    // decides; blue's acceptance waits, unread, and is not called forged.
    let red = s.red.try_run(&["sync", "--json"]);
    let report: Value = serde_json::from_slice(&red.stdout).unwrap();
    assert_eq!(kinds_of(&report["alerts"]), ["key_changed"], "{report}");
    let refused = s.red.try_run(&["channel", "accept", &id[..8]]);
    assert!(!refused.status.success(), "blocked until red decides");
    s.red.run(&["trust", "dangerous-accept-new-key", "blue"]);
    s.red.accept(&id[..8]);
    for u in [&s.mediator, &s.blue, &s.red, &s.mediator, &s.blue] {
        u.run(&["sync"]);
    }
    for u in [&s.mediator, &s.red, &s.blue] {
        let list = u.json(&["channel", "list"]);
        assert_eq!(list[0]["epoch"], 2, "the rekey epoch is open: {list}");
    }
    s.blue.run(&["send", &id, "back on a new device"]);
    s.red.run(&["sync"]);
    s.red.run(&["send", &id, "welcome back"]);
    for u in [&s.mediator, &s.red, &s.blue] {
        no_alerts(u);
    }
    assert!(inbox(&s.red).contains(&("blue".into(), "back on a new device".into())));
    assert!(inbox(&s.blue).contains(&("red".into(), "welcome back".into())));
    for (who, u) in [
        ("mediator", &s.mediator),
        ("red", &s.red),
        ("blue", &s.blue),
    ] {
        let kinds = all_kinds(u);
        // The new device finds the relay's record of its old posts (cleared
        // by the rekey); red had to decide on the new key.
        let expected: &[&str] = match who {
            "red" => &["key_changed"],
            "blue" => &["stale_store"],
            _ => &[],
        };
        assert_eq!(kinds, expected, "{who}: never forged, nothing else");
    }
}
