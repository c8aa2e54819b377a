//! Crashes at the worst moments: a process SIGKILLed at an exact point
//! (`BACKCHANNEL_CRASH_POINT`, debug builds) or at random, then restarted.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{inbox, Scene, User};

/// Starts `args` stopped at `point`, waits until it gets there, SIGKILLs it.
pub(crate) fn kill_at(u: &User, args: &[&str], point: &str) {
    let mut child: Child = u
        .command(args)
        .env("BACKCHANNEL_CRASH_POINT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reached = false;
    for line in BufReader::new(stderr).lines() {
        if line
            .unwrap()
            .contains(&format!("crash point {point} reached"))
        {
            reached = true;
            break;
        }
    }
    assert!(reached, "{args:?} never reached {point}");
    child.kill().unwrap();
    child.wait().unwrap();
}

pub(crate) fn no_alerts(u: &User) {
    let r = u.json(&["sync"]);
    assert_eq!(r["alerts"], json!([]), "{}", u.store.display());
}

#[test]
fn a_receiver_killed_between_fetching_and_storing_loses_and_repeats_nothing() {
    let s = Scene::new();
    let id = s.open_channel();
    let texts: Vec<String> = (1..=3).map(|i| format!("message {i}")).collect();
    for t in &texts {
        s.blue.run(&["send", &id, t]);
    }
    kill_at(&s.red, &["sync"], "after_fetch");
    kill_at(&s.red, &["sync"], "after_fetch");
    no_alerts(&s.red);
    let got: Vec<String> = inbox(&s.red).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        got, texts,
        "every message exactly once, decrypted, in order"
    );
}

#[test]
fn a_receiver_killed_at_many_moments_loses_and_repeats_nothing() {
    let s = Scene::new();
    let id = s.open_channel();
    let texts: Vec<String> = (1..=30).map(|i| format!("numbered message {i}")).collect();
    for t in &texts {
        s.blue.run(&["send", &id, t]);
    }
    // Most of a command's time is unlocking the store (Argon2id); aim the
    // kills past it, into the processing of the mailbox.
    let started = Instant::now();
    s.red.run(&["inbox"]);
    let unlock = started.elapsed();
    for extra_ms in [0, 10, 20, 30, 45, 60, 80, 110, 150] {
        let mut child = s
            .red
            .command(&["sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(unlock + Duration::from_millis(extra_ms));
        let _ = child.kill();
        child.wait().unwrap();
    }
    no_alerts(&s.red);
    let got: Vec<String> = inbox(&s.red).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, texts);
}

#[test]
fn a_sender_killed_around_its_post_sends_the_same_bytes_once() {
    let s = Scene::new();
    let id = s.open_channel();
    // Killed after committing the outbox, before posting...
    kill_at(&s.blue, &["send", &id, "first"], "after_outbox_commit");
    // ...then, while posting it again, after the relay stored it but before
    // the answer was recorded.
    kill_at(&s.blue, &["sync"], "after_post");
    // The next command posts the same bytes a third time (the relay answers
    // as the first time and stores nothing new), then its own message.
    s.blue.run(&["send", &id, "second"]);
    s.blue.run(&["send", &id, "third"]);
    no_alerts(&s.red);
    let got: Vec<String> = inbox(&s.red).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, ["first", "second", "third"]);
    no_alerts(&s.mediator);
    no_alerts(&s.blue);
}

#[test]
fn send_while_watch_runs_hands_the_work_over() {
    let s = Scene::new();
    let id = s.open_channel();
    let mut watch = s
        .blue
        .command(&["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = {
        let mut p = s.blue.store.as_os_str().to_owned();
        p.push(".sock");
        std::path::PathBuf::from(p)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "watch did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Red writes while blue's watch receives, receipts and sends.
    s.red.run(&["send", &id, "from red"]);
    for i in 1..=3 {
        let started = Instant::now();
        s.blue.run(&["send", &id, &format!("from blue {i}")]);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "send waited instead of handing over"
        );
    }
    let synced = s.blue.json(&["sync"]);
    assert_eq!(synced["alerts"], json!([]));
    watch.kill().unwrap();
    watch.wait().unwrap();
    let out = String::from_utf8(
        watch
            .stdout
            .take()
            .map(|mut o| {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut o, &mut v).unwrap();
                v
            })
            .unwrap(),
    )
    .unwrap();
    assert!(
        out.contains("from red"),
        "watch printed what arrived: {out}"
    );
    // With watch gone (and its socket left behind), commands work directly.
    s.blue.run(&["send", &id, "from blue 4"]);
    no_alerts(&s.red);
    let got: Vec<String> = inbox(&s.red).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        got,
        ["from blue 1", "from blue 2", "from blue 3", "from blue 4"]
    );
    no_alerts(&s.mediator);
}
