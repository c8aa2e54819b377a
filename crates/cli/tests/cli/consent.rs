//! Informed consent: what a party sees of a proposal before it agrees, and
//! that it agrees to exactly that.

use serde_json::Value;

use crate::{Scene, User};

/// Green registered; the mediator proposes to add it and to read content,
/// with a longer receipt deadline. Returns the channel id.
fn amend_with_green_and_mediator_reads(s: &Scene) -> (String, User) {
    let id = s.open_channel();
    let green = User {
        store: s.dir.path().join("green.store"),
    };
    green.run(&["init", "--relay", &s.relay.url, "--handle", "green"]);
    s.mediator.run(&[
        "channel",
        "amend",
        &id[..8],
        "--add-party",
        "green",
        "--mediator-reads",
        "yes",
        "--receipt-deadline",
        "2d",
    ]);
    (id, green)
}

fn answer_of(shown: &Value, party: &str) -> String {
    shown["pending"]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["party"] == party)
        .map(|a| a["answer"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn a_party_sees_the_amendment_before_accepting() {
    let s = Scene::new();
    let (id, _green) = amend_with_green_and_mediator_reads(&s);
    // What `sync`, `channel list`, `log` and `channel show` say, before
    // blue answers: each names both changes, in words.
    let synced = s.blue.run(&["sync"]);
    let listed = s.blue.run(&["channel", "list"]);
    let shown = s.blue.run(&["channel", "show", &id[..8]]);
    let granted = backchannel_client::MEDIATOR_READS_GRANTED;
    for (what, text) in [
        ("sync", &synced),
        ("channel list", &listed),
        ("channel show", &shown),
    ] {
        assert!(text.contains("Adds green as party"), "{what}: {text}");
        assert!(
            text.contains(granted),
            "{what} must say what mediator_reads grants: {text}"
        );
        assert!(text.contains("1 day becomes 2 days"), "{what}: {text}");
    }
    let log = s.blue.run(&["log", &id[..8]]);
    assert!(
        log.contains("green (party)") && log.contains("the mediator reads content"),
        "the log's amendment names its members and policy: {log}"
    );
    let json = s.blue.json(&["channel", "show", &id[..8]]);
    let pending = &json["pending"];
    assert_eq!(pending["kind"], "amendment");
    assert_eq!(pending["added"], serde_json::json!(["green"]));
    assert_eq!(pending["policy_before"]["mediator_reads"], false);
    assert_eq!(pending["policy"]["mediator_reads"], true);
    assert_eq!(pending["policy"]["receipt_deadline_s"], 172_800);
    assert_eq!(pending["awaits_you"], true);
    let green = pending["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["handle"] == "green")
        .unwrap();
    assert_eq!(green["key"]["state"], "introduced", "{green}");
    assert_eq!(green["key"]["by"], "mediator", "{green}");
}

#[test]
fn accept_without_a_terminal_or_yes_refuses_and_sends_nothing() {
    let s = Scene::new();
    let (id, _green) = amend_with_green_and_mediator_reads(&s);
    s.blue.run(&["sync"]);
    let out = s.blue.try_run(&["channel", "accept", &id[..8]]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("Adds green"),
        "the statement is shown: {stdout}"
    );
    assert!(
        stderr.contains("nothing was accepted") && stderr.contains("--yes"),
        "{stderr}"
    );
    // A wrong digest is refused too.
    let wrong = s
        .blue
        .try_run(&["channel", "accept", &id[..8], "--yes", "000000"]);
    assert!(!wrong.status.success());
    // Nothing went out: the mediator still waits for blue.
    s.mediator.run(&["sync"]);
    let shown = s.mediator.json(&["channel", "show", &id[..8]]);
    assert_eq!(answer_of(&shown, "blue"), "waiting", "{shown}");
    let log = s.blue.json(&["log", &id[..8]]);
    assert!(
        !log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["sender"] == "blue" && e["kind"] == "acceptance" && e["epoch"] == 1),
        "blue sent no acceptance in epoch 1: {log}"
    );
}

#[test]
fn accept_yes_accepts_only_the_proposal_shown() {
    let s = Scene::new();
    let (id, _green) = amend_with_green_and_mediator_reads(&s);
    s.blue.run(&["sync"]);
    let first = s.blue.json(&["channel", "show", &id[..8]])["pending"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // Another amendment arrives between reading and accepting.
    s.mediator
        .run(&["channel", "amend", &id[..8], "--mediator-reads", "yes"]);
    s.blue.run(&["sync"]);
    let out = s
        .blue
        .try_run(&["channel", "accept", &id[..8], "--yes", &first[..12]]);
    assert!(
        !out.status.success(),
        "the shown proposal is no longer the one awaiting"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing was accepted"), "{stderr}");
    // The one now shown is accepted by its own digest.
    let second = s.blue.json(&["channel", "show", &id[..8]])["pending"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    // Fewer digits than shown could name a proposal ground to look alike.
    let short = s
        .blue
        .try_run(&["channel", "accept", &id[..8], "--yes", &second[..8]]);
    assert!(!short.status.success(), "8 digits are not enough");
    let accepted = s
        .blue
        .json(&["channel", "accept", &id[..8], "--yes", &second[..12]]);
    assert_eq!(accepted["proposal"], second.as_str());
}

#[test]
fn a_joiner_sees_the_real_proposal() {
    let s = Scene::new();
    let (id, green) = amend_with_green_and_mediator_reads(&s);
    green.run(&["sync"]);
    let listed = green.json(&["channel", "list"]);
    let c = &listed[0];
    assert_eq!(c["title"], "talks", "{c}");
    assert_eq!(c["members"].as_array().unwrap().len(), 4, "{c}");
    assert_eq!(c["receipt_deadline_s"], 172_800);
    assert_eq!(c["heartbeat_interval_s"], 3600);
    assert_eq!(c["mediator_reads"], true);
    let shown = green.json(&["channel", "show", &id[..8]]);
    assert_eq!(shown["pending"]["joining"], true);
    assert_eq!(shown["pending"]["title"], "talks");
    let text = green.run(&["channel", "show", &id[..8]]);
    for needle in [
        "add you to channel \u{201c}talks\u{201d}",
        "blue as party",
        "red as party",
        "Receipt deadline (each member receipts every message within it): 2 days.",
        "Heartbeat interval (each member proves the channel alive): 1 hour.",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    assert!(!text.contains("0 seconds"), "{text}");
    // And it accepts through the same path as everyone.
    green.accept(&id[..8]);
}

/// Alerts a user's sync raised (kinds).
fn alert_kinds(u: &User) -> Vec<String> {
    u.json(&["sync"])["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn a_party_leaves_and_nothing_is_sent_to_it_afterwards() {
    let s = Scene::new();
    let id = s.open_channel();
    let refused = s.blue.try_run(&["channel", "leave", &id[..8]]);
    assert!(!refused.status.success(), "no terminal and no --yes");
    // A party cannot expel another (with two parties it would take effect
    // at once, red unasked).
    let expel = s
        .blue
        .try_run(&["channel", "amend", &id[..8], "--remove", "red"]);
    assert!(!expel.status.success(), "a party removes nobody else");
    s.blue.run(&["channel", "leave", &id[..8], "--yes"]);
    for u in [&s.mediator, &s.red, &s.blue] {
        assert_eq!(alert_kinds(u), Vec::<String>::new(), "a leave is no alarm");
    }
    let shown = s.red.json(&["channel", "show", &id[..8]]);
    let members: Vec<&str> = shown["channel"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["handle"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["mediator", "red"], "{shown}");
    assert_eq!(shown["channel"]["epoch"], 2);
    let last = shown["history"].as_array().unwrap().last().unwrap();
    assert_eq!(last["kind"], "leave");
    s.red.run(&["send", &id[..8], "after blue left"]);
    for u in [&s.mediator, &s.blue, &s.red, &s.mediator] {
        assert_eq!(alert_kinds(u), Vec::<String>::new());
    }
    let texts: Vec<(String, String)> = crate::inbox(&s.blue);
    assert!(
        !texts.iter().any(|(_, t)| t == "after blue left"),
        "{texts:?}"
    );
    let listed = s.blue.json(&["channel", "list"]);
    assert!(
        listed[0]["status"].as_str().unwrap().starts_with("left"),
        "{listed}"
    );
}

#[test]
fn a_party_withdraws_mediator_reads_and_the_mediator_then_gets_stubs() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--mediator-reads"]);
    s.red.run(&["send", &id[..8], "read by the mediator"]);
    // Blue proposes to withdraw the mediator's right to read; red is shown
    // the withdrawal in words and accepts; the mediator has no say.
    s.blue
        .run(&["channel", "amend", &id[..8], "--mediator-reads", "no"]);
    let synced = s.red.run(&["sync"]);
    assert!(
        synced.contains(backchannel_client::MEDIATOR_READS_WITHDRAWN),
        "{synced}"
    );
    s.red.accept(&id[..8]);
    for u in [&s.mediator, &s.blue, &s.red, &s.mediator] {
        assert_eq!(alert_kinds(u), Vec::<String>::new());
    }
    s.red.run(&["send", &id[..8], "not for the mediator"]);
    s.mediator.run(&["sync"]);
    let log = s.mediator.json(&["log", &id[..8]]);
    let entries = log.as_array().unwrap();
    let text_of = |e: &Value| e["text"].as_str().map(str::to_string);
    let texts: Vec<Option<String>> = entries
        .iter()
        .filter(|e| e["sender"] == "red" && e["kind"] == "text")
        .map(text_of)
        .collect();
    assert_eq!(
        texts,
        [Some("read by the mediator".to_string()), None],
        "the mediator holds the later message as a stub: {log}"
    );
    let stubs = entries
        .iter()
        .filter(|e| e["sender"] == "red" && e["stub"] == true)
        .count();
    assert_eq!(stubs, 1);
    assert_eq!(
        s.blue.json(&["channel", "show", &id[..8]])["channel"]["mediator_reads"],
        false
    );
}
