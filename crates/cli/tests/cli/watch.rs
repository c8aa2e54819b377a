//! `watch` keeps time itself: deadlines fire with no traffic at all.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Scene;

#[test]
fn a_silent_peer_is_overdue_at_the_deadline_in_watch_with_nothing_pushed() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--receipt-deadline", "3s"]);
    let mut watch = s
        .blue
        .command(&["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sock = s.blue.store.as_os_str().to_owned();
    sock.push(".sock");
    let sock = std::path::PathBuf::from(sock);
    let started = Instant::now();
    while !sock.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "watch did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Handed to the running watch; then red and the mediator stay silent:
    // nothing is ever pushed to blue, and nobody runs `sync` for it.
    // The clock starts before the send: the deadline runs from the post,
    // which happens inside this command.
    let sent_at = Instant::now();
    s.blue.run(&["send", &id, "Are you there?"]);
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut overdue = Vec::new();
    while overdue.len() < 2 && sent_at.elapsed() < Duration::from_secs(30) {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let report: serde_json::Value = serde_json::from_str(&line).unwrap();
        for a in report["alerts"].as_array().into_iter().flatten() {
            if a["kind"] == "ack_overdue" {
                overdue.push(a["member"].as_str().unwrap().to_string());
            }
        }
    }
    let waited = sent_at.elapsed();
    watch.kill().unwrap();
    watch.wait().unwrap();
    overdue.sort();
    assert_eq!(
        overdue,
        ["mediator", "red"],
        "one ack_overdue per silent member"
    );
    assert!(
        waited >= Duration::from_secs(3),
        "not before the deadline: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(15),
        "at the deadline, not at some later push: {waited:?}"
    );
}
