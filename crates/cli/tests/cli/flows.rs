//! A user's flows across three processes.

use serde_json::json;

use crate::{bin, inbox, Scene};

#[test]
fn three_principals_talk_through_the_cli() {
    let s = Scene::new();
    let id = s.open_channel();
    let list = s.red.json(&["channel", "list"]);
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list[0]["mediator_reads"], false);

    let sent = s
        .blue
        .json(&["send", &id[..8], "We will not strike first."]);
    let m1 = sent["message_id"].as_str().unwrap().to_string();
    let out = s.red.run(&["sync"]);
    assert!(out.contains("We will not strike first."), "{out}");
    assert_eq!(
        inbox(&s.red),
        [("blue".to_string(), "We will not strike first.".to_string())]
    );

    s.red.run(&["send", &id, "Nor will we.", "--reply-to", &m1]);
    let r = s.blue.json(&["sync"]);
    assert_eq!(r["alerts"], json!([]));
    let blue_inbox = s.blue.json(&["inbox"]);
    assert_eq!(blue_inbox[0]["text"], "Nor will we.");
    assert_eq!(blue_inbox[0]["in_reply_to"], json!(m1));

    // The mediator's transcript holds stubs of both texts.
    s.mediator.run(&["sync"]);
    let log = s.mediator.json(&["log", &id]);
    let texts: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "text")
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(texts
        .iter()
        .all(|e| e["stub"] == true && e["text"].is_null()));
    let human = s.mediator.run(&["log", &id[..6], "--quiet"]);
    assert!(human.contains("[stub: content not readable"), "{human}");

    // Blue's export is consistent, and red's store holds the same history.
    let file = s.dir.path().join("talks.json");
    s.blue
        .run(&["transcript", "export", &id, "--out", file.to_str().unwrap()]);
    s.red.run(&["sync"]);
    let out = s.red.run(&[
        "transcript",
        "verify",
        file.to_str().unwrap(),
        "--against-store",
    ]);
    assert!(out.contains("every message matches"), "{out}");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("Nor will we.", "We will.");
    std::fs::write(&file, text).unwrap();
    let bad = s
        .red
        .try_run(&["transcript", "verify", file.to_str().unwrap()]);
    assert!(!bad.status.success(), "an edited transcript fails");

    // Safety numbers read the same on both sides; introduced keys say so.
    let red_fp = s.red.json(&["fingerprint", "blue"]);
    let blue_fp = s.blue.json(&["fingerprint", "red"]);
    assert_eq!(
        red_fp["peers"][0]["safety_number"],
        blue_fp["peers"][0]["safety_number"]
    );
    let label = red_fp["peers"][0]["key"].as_str().unwrap();
    assert!(
        label.contains("introduced") && label.contains("unverified"),
        "{label}"
    );
}

#[test]
fn errors_say_what_went_wrong_and_what_to_do() {
    let s = Scene::new();
    let out = s
        .blue
        .command(&["inbox"])
        .env("BACKCHANNEL_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("wrong passphrase") && err.contains("hint"),
        "{err}"
    );

    let out = s.blue.try_run(&["send", "ffffff", "hello"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unknown channel ffffff") && err.contains("channel list"),
        "{err}"
    );

    let nobody = crate::User {
        store: s.dir.path().join("none.store"),
    };
    let err = String::from_utf8(nobody.try_run(&["inbox"]).stderr).unwrap();
    assert!(err.contains("backchannel init"), "{err}");

    let again = s
        .blue
        .try_run(&["init", "--relay", &s.relay.url, "--handle", "blue"]);
    assert!(!again.status.success());
    let taken = crate::User {
        store: s.dir.path().join("blue2.store"),
    };
    let err = String::from_utf8(
        taken
            .try_run(&["init", "--relay", &s.relay.url, "--handle", "blue"])
            .stderr,
    )
    .unwrap();
    assert!(err.contains("handle_taken"), "{err}");
    assert!(
        !taken.store.exists(),
        "a refused registration leaves no store"
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        vec!["init"],
        vec!["fingerprint"],
        vec!["channel", "create"],
        vec!["channel", "accept"],
        vec!["channel", "decline"],
        vec!["channel", "amend"],
        vec!["channel", "list"],
        vec!["send"],
        vec!["sync"],
        vec!["inbox"],
        vec!["log"],
        vec!["watch"],
        vec!["verify"],
        vec!["trust", "verify"],
        vec!["transcript", "export"],
        vec!["transcript", "verify"],
        vec!["trust", "dangerous-accept-new-key"],
        vec!["demo"],
        vec!["assure"],
        vec!["reciprocate"],
        vec!["redline"],
        vec!["revoke"],
        vec!["suspend"],
        vec!["report"],
        vec!["confirm-lapse"],
        vec!["allege"],
        vec!["reply"],
        vec!["find"],
        vec!["ask"],
        vec!["acknowledge"],
        vec!["convey"],
        vec!["relate"],
        vec!["status"],
        vec!["show"],
        vec!["whatif"],
        vec!["exchange", "create"],
        vec!["exchange", "list"],
        vec!["exchange", "submit"],
        vec!["exchange", "withdraw"],
        vec!["exchange", "status"],
        vec!["events", "export"],
        vec!["events", "import"],
        vec!["relay", "serve"],
        vec!["relay", "release"],
    ] {
        let out = std::process::Command::new(bin())
            .args(&cmd)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && help.contains("backchannel "),
            "{cmd:?}: {help}"
        );
        assert!(help.contains("Example"), "{cmd:?} has no example:\n{help}");
    }
}

#[test]
fn the_demo_exits_zero_with_every_step_verified() {
    let out = std::process::Command::new(bin())
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Every step verified."), "{stdout}");
    assert!(!stdout.contains("FAILED"));
}

#[test]
fn verify_shows_alerts_blocks_and_dismisses() {
    let s = Scene::new();
    let id = s.open_channel();
    let out = s.blue.run(&["verify"]);
    assert!(out.contains("no open alerts"), "{out}");

    // The relay adds a member nobody agreed to.
    let ghost = crate::User {
        store: s.dir.path().join("ghost.store"),
    };
    ghost.run(&["init", "--relay", &s.relay.url, "--handle", "ghost"]);
    let db = s.dir.path().join("relay.db");
    backchannel_testkit::hostile::Hostile::at(&db).add_routing_member(
        backchannel_protocol::ChannelId::from_hex(&id).unwrap(),
        "ghost",
    );
    let out = s.blue.run(&["sync"]);
    assert!(out.contains("ALERT membership_mismatch"), "{out}");
    let v = s.blue.try_run(&["verify"]);
    assert!(
        !v.status.success(),
        "verify exits non-zero while an alert is open"
    );
    let text = String::from_utf8(v.stdout).unwrap();
    assert!(
        text.contains("membership_mismatch") && text.contains("what to do"),
        "{text}"
    );
    let blocked = s.blue.try_run(&["send", &id, "hello"]);
    assert!(!blocked.status.success());
    assert!(String::from_utf8(blocked.stderr)
        .unwrap()
        .contains("blocked"));

    let listed = s.blue.command(&["verify", "--json"]).output().unwrap();
    let alerts: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let alert_id = alerts[0]["id"].as_i64().unwrap().to_string();
    s.blue.run(&["verify", "--dismiss", &alert_id]);
    s.blue.run(&["send", &id, "hello"]);
}

#[test]
fn trust_verify_needs_the_right_safety_number() {
    let s = Scene::new();
    s.open_channel();
    let wrong = s
        .red
        .try_run(&["trust", "verify", "mediator", "--number", "12345"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8(wrong.stderr)
        .unwrap()
        .contains("nothing was marked verified"));
    let fp = s.red.json(&["fingerprint", "mediator"]);
    let number = fp["peers"][0]["safety_number"]
        .as_str()
        .unwrap()
        .to_string();
    s.red
        .run(&["trust", "verify", "mediator", "--number", &number]);
    let fp = s.red.json(&["fingerprint", "mediator"]);
    assert_eq!(fp["peers"][0]["key"], "verified");
}
