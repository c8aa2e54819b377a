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

#[test]
fn on_alert_runs_a_command_with_the_alert_and_never_its_content() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--receipt-deadline", "3s"]);
    let file = s.dir.path().join("alerts.txt");
    let hook = format!(
        "echo \"$BACKCHANNEL_ALERT_KIND $BACKCHANNEL_ALERT_CHANNEL $BACKCHANNEL_ALERT_MEMBER $BACKCHANNEL_ALERT_ID$BACKCHANNEL_PASSPHRASE\" >> '{}'",
        file.display()
    );
    let mut watch = s
        .blue
        .command(&["watch", "--on-alert", &hook])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read its stderr to the end (a closed pipe would end it), and go on
    // once it says it is watching.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(watch.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("watching as blue") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("watch started");
    s.blue.run(&["send", &id[..8], "a secret nobody receipts"]);
    let started = std::time::Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.lines().count() >= 2 || started.elapsed() > Duration::from_secs(60) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    watch.kill().unwrap();
    watch.wait().unwrap();
    let mut got: Vec<&str> = lines.lines().collect();
    got.sort();
    assert_eq!(got.len(), 2, "one run per alert: {lines:?}");
    for (line, member) in got.iter().zip(["mediator", "red"]) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[..3], ["ack_overdue", id.as_str(), member], "{line}");
        assert!(f[3].parse::<u64>().is_ok(), "an alert id: {line}");
    }
    assert!(!lines.contains("secret"), "never content: {lines}");
    assert!(
        !lines.contains(crate::PASS),
        "never the passphrase: {lines}"
    );
}
