//! Sending that tells the truth: a send is committed to the outbox first,
//! then reported as sent or queued (with its id), and delivered once.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::crash::kill_at;
use crate::{inbox, Scene};

/// How many times red holds `text`.
fn held_by_red(s: &Scene, text: &str) -> usize {
    s.red.run(&["sync"]);
    inbox(&s.red).iter().filter(|(_, t)| t == text).count()
}

#[test]
fn offline_send_is_queued_with_its_id_and_one_sync_delivers_it_once() {
    let mut s = Scene::new();
    let id = s.open_channel();
    s.relay.stop();
    let out = s
        .blue
        .json(&["send", &id[..8], "sent while the relay was down"]);
    assert_eq!(out["delivery"], "queued", "{out}");
    let message = out["message_id"].as_str().unwrap().to_string();
    assert_eq!(message.len(), 32);
    let text = s.blue.run(&["send", &id[..8], "a second one"]);
    assert!(
        text.starts_with("queued ") && text.contains("when the relay is reachable"),
        "{text}"
    );
    let queued = s.blue.json(&["outbox"]);
    let entries = queued.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{queued}");
    assert_eq!(entries[0]["message_id"], message.as_str());
    assert!(
        entries[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach the relay"),
        "{queued}"
    );
    s.relay.start_again();
    let synced = s.blue.json(&["sync"]);
    assert_eq!(synced["outbox_sent"], 2, "{synced}");
    assert_eq!(s.blue.json(&["outbox"]), serde_json::json!([]));
    s.blue.run(&["sync"]);
    assert_eq!(held_by_red(&s, "sent while the relay was down"), 1);
    assert_eq!(held_by_red(&s, "a second one"), 1);
}

#[test]
fn killing_send_never_leaves_a_message_neither_queued_nor_refused() {
    let s = Scene::new();
    let id = s.open_channel();
    for (point, text) in [
        ("after_outbox_commit", "killed after commit"),
        ("after_post", "killed after post"),
    ] {
        kill_at(&s.blue, &["send", &id[..8], text], point);
        // Either still queued, or already with the relay: never neither.
        let queued = s.blue.json(&["outbox"]);
        let waiting = queued.as_array().unwrap().len();
        match point {
            "after_outbox_commit" => assert_eq!(waiting, 1, "{point}: {queued}"),
            _ => assert!(waiting <= 1, "{point}: {queued}"),
        }
        s.blue.run(&["sync"]);
        assert_eq!(s.blue.json(&["outbox"]), serde_json::json!([]), "{point}");
        assert_eq!(held_by_red(&s, text), 1, "{point}: delivered exactly once");
    }
}

#[test]
fn send_with_watch_running_and_the_relay_down_answers_queued() {
    let mut s = Scene::new();
    let id = s.open_channel();
    let mut watch = s
        .blue
        .command(&["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stderr.take().unwrap()).lines();
    let mut wait_for = |needle: &str| {
        for line in lines.by_ref() {
            if line.unwrap().contains(needle) {
                return;
            }
        }
        panic!("watch never printed {needle:?}");
    };
    wait_for("watching as blue");
    s.relay.stop();
    wait_for("cannot connect");
    let mut send = s
        .blue
        .command(&["send", &id[..8], "handed over while reconnecting", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while send.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            send.kill().unwrap();
            panic!("the send hung while watch was reconnecting");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out: serde_json::Value = serde_json::from_reader(send.stdout.take().unwrap()).unwrap();
    assert_eq!(out["delivery"], "queued", "{out}");
    s.relay.start_again();
    // The watch delivers it when it reconnects.
    let deadline = Instant::now() + Duration::from_secs(60);
    while held_by_red(&s, "handed over while reconnecting") == 0 {
        assert!(
            Instant::now() < deadline,
            "watch never delivered the queued send"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    assert_eq!(held_by_red(&s, "handed over while reconnecting"), 1);
}

#[test]
fn the_first_send_after_accepting_says_what_to_do_in_words() {
    let s = Scene::new();
    let out = s.mediator.json(&[
        "channel", "create", "--title", "talks", "--party", "blue", "--party", "red",
    ]);
    let id = out["channel_id"].as_str().unwrap().to_string();
    s.blue.run(&["sync"]);
    s.blue.accept(&id[..8]);
    let refused = s.blue.try_run(&["send", &id[..8], "too early"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("no acceptance yet from red") && err.contains("backchannel sync"),
        "{err}"
    );
    for internal in ["Pending", "Handle(", "waiting_for"] {
        assert!(
            !err.contains(internal),
            "internal text {internal:?} in {err}"
        );
    }
    let once = "the channel is not open";
    assert_eq!(err.matches(once).count(), 1, "printed once: {err}");
}
