//! `backchannel conformance` against our own client, driven through the
//! CLI as an operator would follow the printed steps: every rule holds;
//! with each rule broken on purpose (`BACKCHANNEL_TEST_BREAK`, debug builds
//! only), the harness reports exactly that rule and exits non-zero.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use backchannel_protocol::member::Rule;
use backchannel_testkit::RelayProcess;

use crate::{bin, User, PASS};

/// Runs the harness against a client "alice" breaking `broken`; returns the
/// exit status and the harness's lines.
fn against(broken: Option<Rule>) -> (bool, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn(bin(), &dir.path().join("relay.db"));
    let alice = User {
        store: dir.path().join("alice.store"),
    };
    alice.run(&["init", "--relay", &relay.url, "--handle", "alice"]);
    let act = |args: &[&str]| {
        let mut c = alice.command(args);
        if let Some(r) = broken {
            c.env("BACKCHANNEL_TEST_BREAK", r.name());
        }
        // A broken client may fail a command; the harness judges the wire.
        let _ = c.output().unwrap();
    };
    let mut harness = Command::new(bin())
        .env("BACKCHANNEL_PASSPHRASE", PASS)
        .args(["conformance", "--relay", &relay.url, "--peer", "alice"])
        .args(["--step-timeout", "8s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(harness.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in out.lines() {
        let line = line.unwrap();
        if line.starts_with("step ") {
            let action = line
                .split_once("): ")
                .and_then(|(_, rest)| rest.split_once(" — "))
                .map(|(code, _)| code.to_string())
                .unwrap();
            let field = |k: &str| {
                action
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{k}=")))
                    .unwrap()
                    .to_string()
            };
            act(&["sync"]);
            match action.split_whitespace().next().unwrap() {
                "accept" => {
                    // As an operator would: read the proposal, accept that one.
                    let shown = alice.try_run(&["channel", "show", &field("channel"), "--json"]);
                    let shown: serde_json::Value =
                        serde_json::from_slice(&shown.stdout).unwrap_or_default();
                    let digest = shown["pending"]["digest"].as_str().unwrap_or("none");
                    act(&["channel", "accept", &field("channel"), "--yes", digest]);
                }
                "sync" => {}
                "send-text" => act(&["send", &field("channel"), "A message for the harness."]),
                "acknowledge" => act(&[
                    "acknowledge",
                    &field("channel"),
                    &field("message"),
                    "Received and understood.",
                ]),
                other => panic!("unknown action {other}"),
            }
        }
        lines.push(line);
    }
    let status = harness.wait().unwrap();
    (status.success(), lines)
}

fn verdicts(lines: &[String]) -> (Vec<String>, Vec<String>) {
    let ok = lines
        .iter()
        .filter_map(|l| l.strip_prefix("ok "))
        .map(str::to_string)
        .collect();
    let failed = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FAILED "))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    (ok, failed)
}

#[test]
fn our_client_keeps_every_rule() {
    let (success, lines) = against(None);
    let (ok, failed) = verdicts(&lines);
    assert!(success, "{lines:#?}");
    assert!(failed.is_empty(), "{lines:#?}");
    let all: Vec<String> = Rule::ALL.iter().map(|r| r.name().to_string()).collect();
    let mut ok_sorted = ok.clone();
    ok_sorted.sort();
    let mut all_sorted = all.clone();
    all_sorted.sort();
    assert_eq!(ok_sorted, all_sorted, "{lines:#?}");
    assert!(lines.last().unwrap().contains("all 9 rules hold"));
}

/// Each broken rule is reported, alone, and every rule checked before it held.
fn reports_exactly(rule: Rule) {
    let (success, lines) = against(Some(rule));
    let (ok, failed) = verdicts(&lines);
    assert!(!success, "{rule}: {lines:#?}");
    assert_eq!(failed, [rule.name()], "{lines:#?}");
    assert!(!ok.iter().any(|r| r == rule.name()), "{lines:#?}");
}

macro_rules! broken {
    ($($name:ident => $rule:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            reports_exactly($rule);
        }
    )*};
}

broken! {
    a_client_writing_version_1_acceptances_breaks_versions => Rule::Versions,
    a_client_misreporting_its_own_head_breaks_own_head => Rule::OwnHead,
    a_client_sending_content_in_epoch_0_breaks_epoch_1_content => Rule::Epoch1Content,
    a_client_giving_the_mediator_full_copies_breaks_stubs => Rule::Stubs,
    a_client_that_never_receipts_breaks_receipts => Rule::Receipts,
    a_client_writing_loose_json_breaks_canonical => Rule::Canonical,
    a_client_dropping_unreadable_bodies_breaks_unread_counts => Rule::UnreadCounts,
    a_client_trusting_the_header_sender_breaks_sender_is_peer => Rule::SenderIsPeer,
    a_joiner_with_a_wrong_first_head_vector_breaks_joiner_heads => Rule::JoinerHeads,
}
