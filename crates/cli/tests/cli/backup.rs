//! `backup` and `restore`: a sealed copy, a restore that refuses to go
//! back over a newer store, and the whole way back after a loss: what the
//! copy lacks is a notice, the channel waits for a rekey, and nobody sees
//! `gap`, `forged` or `modified`.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::Value;

use crate::stale::all_kinds;
use crate::{inbox, Scene, User};

fn remove_store(u: &User) {
    let name = u.store.file_name().unwrap().to_string_lossy().into_owned();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(u.store.with_file_name(format!("{name}{suffix}")));
    }
}

#[test]
fn a_restore_after_a_loss_says_what_was_lost_and_comes_back_through_a_rekey() {
    let s = Scene::new();
    let id = s.open_channel();
    s.blue.run(&["send", &id[..8], "before the backup"]);
    for u in [&s.mediator, &s.red, &s.blue] {
        u.run(&["sync"]);
    }
    let file = s.dir.path().join("blue.backup");
    s.blue.run(&["backup", file.to_str().unwrap()]);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is the owner's only");
    assert!(
        !s.blue
            .try_run(&["backup", file.to_str().unwrap()])
            .status
            .success(),
        "an existing file is never overwritten"
    );

    // Life goes on after the backup: red writes, blue reads and answers.
    s.red.run(&["send", &id[..8], "after the backup"]);
    s.blue.run(&["sync"]);
    s.blue.run(&["send", &id[..8], "blue after the backup"]);
    for u in [&s.mediator, &s.red] {
        u.run(&["sync"]);
    }

    // The store is newer than the backup: restore refuses, changes nothing.
    let refused = s.blue.try_run(&["restore", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("newer than the backup"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(inbox(&s.blue).iter().any(|(_, t)| t == "after the backup"));
    // Nor does it replace another principal's store.
    let foreign = s.red.try_run(&["restore", file.to_str().unwrap()]);
    assert!(!foreign.status.success());
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("belongs to red"),
        "{}",
        String::from_utf8_lossy(&foreign.stderr)
    );

    // The device is lost; the backup comes back, and says what it lacks.
    remove_store(&s.blue);
    let restored = s.blue.run(&["restore", file.to_str().unwrap()]);
    assert!(restored.contains("notice"), "{restored}");
    assert!(
        restored.contains("gone from the relay") && restored.contains("--rekey"),
        "{restored}"
    );
    assert!(!inbox(&s.blue).iter().any(|(_, t)| t == "after the backup"));
    let report: Value = s.blue.json(&["sync"]);
    let raised: Vec<&str> = report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(
        raised.iter().all(|k| *k == "stale_store"),
        "only the stale store, never gap or forged: {report}"
    );
    assert!(
        !s.blue
            .try_run(&["send", &id[..8], "from the old position"])
            .status
            .success(),
        "nothing is sent from old positions"
    );

    // The way back: the mediator's rekey, accepted as usual.
    s.mediator.run(&["channel", "amend", &id[..8], "--rekey"]);
    for p in [&s.blue, &s.red] {
        p.run(&["sync"]);
        p.accept(&id[..8]);
    }
    for u in [&s.mediator, &s.red, &s.blue, &s.mediator, &s.red] {
        u.run(&["sync"]);
    }
    s.blue.run(&["send", &id[..8], "back after the restore"]);
    s.red.run(&["send", &id[..8], "welcome back"]);
    for u in [&s.mediator, &s.red, &s.blue, &s.red] {
        u.run(&["sync"]);
    }
    assert!(inbox(&s.red).contains(&("blue".into(), "back after the restore".into())));
    assert!(inbox(&s.blue).contains(&("red".into(), "welcome back".into())));
    for (who, u) in [
        ("mediator", &s.mediator),
        ("red", &s.red),
        ("blue", &s.blue),
    ] {
        let held = all_kinds(u);
        for bad in ["gap", "forged", "modified", "ack_overdue"] {
            assert!(
                !held.iter().any(|k| k == bad),
                "{who} holds {bad}: {held:?}"
            );
        }
    }
}

#[test]
fn a_first_message_to_a_key_the_backup_lacks_is_a_notice_and_the_restore_replaces_the_keys() {
    let s = Scene::new();
    let user = |name: &str| {
        let u = User {
            store: s.dir.path().join(format!("{name}.store")),
        };
        u.run(&["init", "--relay", &s.relay.url, "--handle", name]);
        u
    };
    let file = s.dir.path().join("blue.backup");
    s.blue.run(&["backup", file.to_str().unwrap()]);
    // After the backup, green opens a session with blue; blue's stock runs
    // low, so it publishes keys the backup never saw; the older keys are
    // claimed away.
    let green = user("green");
    green.run(&["channel", "create", "--title", "g", "--party", "blue"]);
    let db = s.dir.path().join("relay.db");
    backchannel_testkit::hostile::Hostile::at(&db).keep_newest_one_time_keys("blue", 10);
    s.blue.run(&["sync"]);
    backchannel_testkit::hostile::Hostile::at(&db).keep_newest_one_time_keys("blue", 1);
    // Yellow's first message goes out on that key; then blue's store is lost.
    let yellow = user("yellow");
    yellow.run(&["channel", "create", "--title", "y", "--party", "blue"]);
    remove_store(&s.blue);
    s.blue.run(&["restore", file.to_str().unwrap()]);
    let report = s.blue.json(&["sync"]);
    let raised: Vec<&str> = report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    // The restore path itself (the relay read past the backup), and the
    // first message it cannot read: a notice, nothing worse.
    assert_eq!(raised, ["stale_store", "unknown_one_time_key"], "{report}");
    let held = all_kinds(&s.blue);
    for bad in ["gap", "forged", "modified"] {
        assert!(!held.iter().any(|k| k == bad), "blue holds {bad}: {held:?}");
    }
    // New sessions start on keys the restored store has.
    let white = user("white");
    white.run(&["channel", "create", "--title", "w", "--party", "blue"]);
    s.blue.run(&["sync"]);
    let titles: Vec<String> = s
        .blue
        .json(&["channel", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap().to_string())
        .collect();
    assert!(titles.contains(&"w".to_string()), "{titles:?}");
}

#[test]
fn an_offline_restore_queues_nothing_until_the_relay_confirms_the_record() {
    let mut s = Scene::new();
    let id = s.open_channel();
    let file = s.dir.path().join("blue.backup");
    s.blue.run(&["backup", file.to_str().unwrap()]);
    s.relay.stop();
    remove_store(&s.blue);
    let restored = s.blue.run(&["restore", file.to_str().unwrap()]);
    assert!(restored.contains("asking the relay failed"), "{restored}");
    // "Queued" would be a promise the restored store cannot keep yet.
    let refused = s.blue.try_run(&["send", &id[..8], "too soon"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("not sent and not queued"), "{err}");
    assert_eq!(s.blue.json(&["outbox"]), serde_json::json!([]));
    // Once the relay confirms the record, sending works as usual.
    s.relay.start_again();
    s.blue.run(&["sync"]);
    s.blue.run(&["send", &id[..8], "after the check"]);
    s.red.run(&["sync"]);
    let got = inbox(&s.red)
        .iter()
        .filter(|(_, t)| t == "after the check")
        .count();
    assert_eq!(got, 1);
}
