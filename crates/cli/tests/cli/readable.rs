//! Issue 11, items 2 to 4: ids a person can type, commitments a person can
//! read, and irreversible acts that are deliberate. Each test is named after
//! the bullet it checks.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::{Scene, User};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn log_len(u: &User, channel: &str) -> usize {
    u.json(&["log", channel]).as_array().unwrap().len()
}

/// A conditional assurance to red; its message id.
fn assure(u: &User, channel: &str, wording: &str) -> String {
    let out = u.run(&[
        "assure",
        channel,
        wording,
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--unless-attacked-by",
        "red",
        "--attacker-proxies",
        "yes",
        "--until",
        "+7d",
        "--formality",
        "note-verbale",
        "--authorized-by",
        "the cabinet",
        "--reservation",
        "subject to review",
    ]);
    out.trim()
        .strip_prefix("sent ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_string()
}

/// `exchange create` with red, due in an hour.
fn exchange_create<'a>(channel: &'a str, terms: &'a str) -> Vec<&'a str> {
    vec![
        "exchange",
        "create",
        channel,
        "--with",
        "red",
        "--terms",
        terms,
        "--deadline",
        "+1h",
    ]
}

fn redline(u: &User, channel: &str) {
    u.run(&[
        "redline",
        channel,
        "If Red is attacked, the bases of Green are not secure.",
        "--if",
        "ASSAULT",
        "--if-against",
        "red",
        "--then",
        "ASSAULT",
        "--then-against",
        "outside:green",
    ]);
}

#[test]
fn reply_to_takes_the_prefix_listings_show() {
    let s = Scene::new();
    let id = s.open_channel();
    let m1 = s.blue.json(&["send", &id, "We will not strike first."])["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.red.run(&["sync"]);
    let inbox = s.red.run(&["inbox"]);
    let shown = &m1[..8];
    assert!(inbox.contains(&format!("({shown})")), "{inbox}");
    s.red
        .run(&["send", &id[..8], "Nor will we.", "--reply-to", shown]);
    s.blue.run(&["sync"]);
    let got = s.blue.json(&["inbox"]);
    let reply = got
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"] == "Nor will we.")
        .unwrap_or_else(|| panic!("{got}"));
    assert_eq!(reply["in_reply_to"], Value::from(m1.as_str()));
}

#[test]
fn ambiguous_prefix_lists_candidates() {
    let s = Scene::new();
    for title in ["first talks", "second talks"] {
        let out = s
            .mediator
            .command(&[
                "channel", "create", "--title", title, "--party", "blue", "--party", "red",
            ])
            .env("__BACKCHANNEL_TEST_ID_PREFIX", "3f2a9c")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let channels = s.mediator.json(&["channel", "list"]);
    let ids: Vec<&str> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel_id"].as_str().unwrap())
        .collect();
    assert!(ids.len() == 2 && ids.iter().all(|i| i.starts_with("3f2a9c")));
    let out = s
        .mediator
        .try_run(&["channel", "amend", "3f2a9c", "--rekey"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("3f2a9c matches 2 channels"), "{err}");
    for (i, title) in ids.iter().zip(["first talks", "second talks"]) {
        assert!(err.contains(i) && err.contains(title), "{err}");
    }
    assert!(
        !err.contains("Debug") && !err.contains("Ambiguous"),
        "{err}"
    );

    // Fewer than 6 digits is refused, whatever it would match.
    let out = s
        .mediator
        .try_run(&["channel", "amend", "3f2a9", "--rekey"]);
    assert!(
        stderr(&out).contains("give at least 6 of its hex digits"),
        "{}",
        stderr(&out)
    );

    // Exchanges too, with their participants and terms.
    let id = s.open_channel();
    for terms in ["Gestures of good faith.", "An exchange of prisoners."] {
        let out = s
            .blue
            .command(&exchange_create(&id, terms))
            .env("__BACKCHANNEL_TEST_ID_PREFIX", "77ab01")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = s.blue.try_run(&["exchange", "status", "77ab01"]);
    let err = stderr(&out);
    assert!(err.contains("77ab01 matches 2 exchanges"), "{err}");
    assert!(
        err.contains("exchange among blue, red: \"Gestures of good faith.\"")
            && err.contains("\"An exchange of prisoners.\""),
        "{err}"
    );
}

#[test]
fn exchange_ids_take_prefixes_and_exchange_list() {
    let s = Scene::new();
    let id = s.open_channel();
    let x = s
        .blue
        .json(&exchange_create(&id, "Gestures of good faith."))["exchange_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.red.run(&["sync"]);
    let list = s.red.json(&["exchange", "list"]);
    assert_eq!(list[0]["exchange_id"], Value::from(x.as_str()), "{list}");
    assert_eq!(list[0]["channel_id"], Value::from(id.as_str()));
    assert_eq!(list[0]["participants"], serde_json::json!(["blue", "red"]));
    assert_eq!(list[0]["terms"], "Gestures of good faith.");
    assert_eq!(list[0]["state"], "open");
    let text = s.red.run(&["exchange", "list"]);
    assert!(
        text.contains(&x[..8]) && text.contains(&id[..8]) && text.contains("among blue, red"),
        "{text}"
    );

    let short = &x[..8];
    s.blue
        .json(&["exchange", "submit", short, "Blue withdraws two brigades."]);
    let withdrawn = s.blue.json(&["exchange", "withdraw", short]);
    assert_eq!(withdrawn["status"]["you_submitted"], false);
    s.blue
        .json(&["exchange", "submit", short, "Blue withdraws two brigades."]);
    let out = s
        .red
        .run(&["exchange", "submit", short, "Red releases the crew."]);
    assert!(out.contains("released"), "{out}");
    let status = s.red.json(&["exchange", "status", short]);
    assert_eq!(status["status"]["state"], "released");
    assert_eq!(s.red.json(&["exchange", "list"])[0]["state"], "released");
}

#[test]
fn assurance_terms_are_shown_by_show_status_and_inbox() {
    let s = Scene::new();
    let id = s.open_channel();
    let a = assure(&s.blue, &id, "Blue will not strike Red first.");
    s.red.run(&["sync"]);
    s.red.run(&[
        "reciprocate",
        &id,
        "--of",
        &a[..8],
        "Nor will Red.",
        "--to",
        "blue",
        "--refrain-from",
        "ASSAULT",
        "--until-revoked",
        "--authorized-by",
        "the council",
    ]);
    s.red.run(&[
        "allege",
        &id,
        &a[..8],
        "--reply-by",
        "+48h",
        "Artillery fire on the ridge.",
    ]);
    s.blue.run(&["sync"]);
    s.blue.run(&[
        "suspend",
        &id,
        "--assurance",
        &a[..8],
        "--yes",
        "Suspended pending the finding.",
    ]);

    let shown = s.blue.run(&["show", &a[..8]]);
    for term in [
        "commits: to refrain from ASSAULT against red",
        "beneficiaries: red",
        "condition 0: lapses if attacked first by red",
        "the attacker's proxies count",
        "the attacker's allies open (both readings are evaluated)",
        "reservation: subject to review",
        "validity: from ",
        "formality: note verbale",
        "authorized by: the cabinet",
        "language: en (authoritative)",
        "state: suspended",
        "reciprocal: ",
        "breach alleged: ",
        "[alleges a breach of",
        "[suspends",
    ] {
        assert!(shown.contains(term), "{term:?} missing from:\n{shown}");
    }
    let json = s.blue.json(&["show", &a[..8]]);
    assert_eq!(json["body"]["type"], "assurance", "{json}");
    assert_eq!(json["body"]["unless"][0]["scope"]["attacker_proxies"], true);
    assert_eq!(json["assurance"]["state"], "suspended");
    assert!(json["terms"].as_array().unwrap().len() >= 9);

    let board = s.blue.run(&["status", &id]);
    for term in [
        "authorized by: the cabinet",
        "condition 0: lapses if attacked first by red",
        "formality: note verbale",
        "authorized by: the council",
        "conditions: none",
    ] {
        assert!(board.contains(term), "{term:?} missing from:\n{board}");
    }
    let board = s.blue.json(&["status", &id]);
    let terms = &board["assurances"][0]["assurance"];
    assert_eq!(terms["authorized_by"], "the cabinet", "{board}");
    assert_eq!(terms["formality"], "note_verbale");
    assert_eq!(terms["reservation"], "subject to review");

    let inbox = s.red.run(&["inbox"]);
    assert!(
        inbox.contains("[assurance, note verbale] Blue will not strike Red first."),
        "{inbox}"
    );
    let inbox = s.blue.json(&["inbox"]);
    let kinds: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["structured", "structured"], "{inbox}");
}

#[test]
fn mediator_board_counts_stubs_instead_of_none() {
    let s = Scene::new();
    let id = s.open_channel();
    assure(&s.blue, &id, "Blue will not strike Red first.");
    assure(&s.blue, &id, "Nor by proxy.");
    redline(&s.red, &id);
    s.mediator.run(&["sync"]);
    let board = s.mediator.run(&["status", &id]);
    assert!(
        board.contains("this channel holds 3 messages you hold only as stubs (digests); their commitments are not on your board"),
        "{board}"
    );
    assert!(!board.contains("no assurances or red lines yet"), "{board}");
    assert_eq!(s.mediator.json(&["status", &id])["stubs"], 3);
    let inbox = s.mediator.run(&["inbox"]);
    assert!(inbox.contains("[stub: content not readable"), "{inbox}");
}

#[test]
fn whatif_in_stub_channel_says_stubs() {
    let s = Scene::new();
    let id = s.open_channel();
    assure(&s.blue, &id, "Blue will not strike Red first.");
    redline(&s.red, &id);
    s.mediator.run(&["sync"]);
    // The mediator cannot read which outside actors the commitments name:
    // it names green as a new one.
    let cascade = s.mediator.run(&[
        "whatif",
        &id,
        "--actor",
        "outside:green",
        "--action",
        "ASSAULT",
        "--target",
        "red",
    ]);
    assert!(
        cascade.contains("this channel holds 2 messages you hold only as stubs (digests)"),
        "{cascade}"
    );
    assert!(!cascade.contains("nothing follows"), "{cascade}");
}

#[test]
fn revoke_without_id_refuses() {
    let s = Scene::new();
    let id = s.open_channel();
    assure(&s.blue, &id, "Blue will not strike Red first.");
    let before = log_len(&s.blue, &id);
    for verb in ["revoke", "suspend"] {
        let out = s.blue.try_run(&[verb, &id, "Withdrawn."]);
        assert!(!out.status.success(), "{verb}");
        let err = stderr(&out);
        assert!(
            err.contains("--assurance") && err.contains("--all"),
            "{err}"
        );
    }
    assert_eq!(log_len(&s.blue, &id), before, "nothing was sent");
    assert_ne!(
        s.blue.json(&["status", &id])["assurances"][0]["state"],
        "revoked"
    );
}

#[test]
fn revoke_all_needs_yes_and_lists_what_changes() {
    let s = Scene::new();
    let id = s.open_channel();
    let a = assure(&s.blue, &id, "Blue will not strike Red first.");
    let b = assure(&s.blue, &id, "Nor will it strike by proxy.");
    let before = log_len(&s.blue, &id);
    let out = s.blue.try_run(&["revoke", &id, "--all", "Withdrawn."]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("revoke 2 of your assurances")
            && err.contains(&a[..8])
            && err.contains("\"Blue will not strike Red first.\"")
            && err.contains(&b[..8])
            && err.contains("pass --yes")
            && err.contains("nothing was sent"),
        "{err}"
    );
    assert_eq!(log_len(&s.blue, &id), before, "nothing was sent");

    let out = s
        .blue
        .try_run(&["revoke", &id, "--all", "--yes", "Withdrawn."]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&b[..8]), "{}", stderr(&out));
    let board = s.blue.json(&["status", &id]);
    let states: Vec<&str> = board["assurances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["revoked", "revoked"], "{board}");

    // Red has none of its own: nothing to revoke, and it says so.
    s.red.run(&["sync"]);
    let out = s
        .red
        .try_run(&["suspend", &id, "--all", "--yes", "Paused."]);
    assert!(
        stderr(&out).contains("you have no assurance in force"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_sends_nothing() {
    let s = Scene::new();
    let id = s.open_channel();
    let a = assure(&s.blue, &id, "Blue will not strike Red first.");
    let before: Vec<usize> = [&s.mediator, &s.blue, &s.red]
        .iter()
        .map(|u| log_len(u, &id))
        .collect();

    let out = s.blue.run(&["send", &id, "hello there", "--dry-run"]);
    assert!(
        out.contains("dry run: nothing was sent") && out.contains("hello there"),
        "{out}"
    );
    let p = s.blue.json(&["send", &id, "hello", "--dry-run"]);
    assert_eq!(
        (&p["dry_run"], &p["kind"], &p["payload"]["text"]),
        (
            &Value::from(true),
            &Value::from("text"),
            &Value::from("hello")
        )
    );
    let p = s.blue.json(&[
        "allege",
        &id,
        &a[..8],
        "--reply-by",
        "+48h",
        "Fire on the ridge.",
        "--dry-run",
    ]);
    assert_eq!(p["kind"], "allegation");
    assert_eq!(p["payload"]["assurance"], Value::from(a.as_str()), "{p}");
    let out = s.blue.run(&[
        "revoke",
        &id,
        "--assurance",
        &a[..8],
        "Withdrawn.",
        "--dry-run",
    ]);
    assert!(out.contains("it would send: revoke, in channel"), "{out}");
    let mut args = exchange_create(&id, "Good faith.");
    args.push("--dry-run");
    let out = s.blue.run(&args);
    assert!(out.contains("Good faith."), "{out}");
    let p = s.mediator.json(&[
        "channel",
        "create",
        "--title",
        "more talks",
        "--party",
        "blue",
        "--party",
        "red",
        "--dry-run",
    ]);
    assert_eq!(p["kind"], "creation");
    assert_eq!(p["payload"]["title"], "more talks");
    s.mediator
        .run(&["channel", "amend", &id, "--rekey", "--dry-run"]);
    s.red.run(&["channel", "decline", &id, "--dry-run"]);
    let file = s.dir.path().join("reports.jsonl");
    std::fs::write(
        &file,
        "{\"date\":\"2026-05-03\",\"actor\":[{\"entity_text\":\"militia\"}],\"event\":[\"ASSAULT\"]}\n",
    )
    .unwrap();
    let out = s
        .red
        .run(&["events", "import", &id, file.to_str().unwrap(), "--dry-run"]);
    assert!(
        out.contains("it would send: event") && out.contains("would send 1 event report"),
        "{out}"
    );

    let after: Vec<usize> = [&s.mediator, &s.blue, &s.red]
        .iter()
        .map(|u| log_len(u, &id))
        .collect();
    assert_eq!(before, after, "nothing was sent");
    assert_eq!(
        s.mediator
            .json(&["channel", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.blue.json(&["exchange", "list"]), serde_json::json!([]));
    let refused = s.blue.try_run(&["send", &id, "  ", "--dry-run"]);
    assert!(!refused.status.success(), "{}", stdout(&refused));
}

/// On a terminal (`script` gives the command one), `revoke --all` asks,
/// and only a typed yes sends.
#[test]
fn revoke_all_asks_on_a_terminal() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: no /usr/bin/script to give the command a terminal");
        return;
    }
    let s = Scene::new();
    let id = s.open_channel();
    let a = assure(&s.blue, &id, "Blue will not strike Red first.");
    let on_a_terminal = |answer: &str| {
        let line = format!(
            "{} --store {} revoke {id} --all Withdrawn.",
            crate::bin().display(),
            s.blue.store.display()
        );
        let mut child = Command::new("/usr/bin/script")
            .args(["-qec", &line, "/dev/null"])
            .env("BACKCHANNEL_PASSPHRASE", crate::PASS)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let before = log_len(&s.blue, &id);
    let out = on_a_terminal("no");
    let said = stdout(&out);
    assert!(
        !out.status.success() && said.contains("Type yes to revoke them") && said.contains(&a[..8]),
        "{said}"
    );
    assert_eq!(log_len(&s.blue, &id), before, "nothing was sent");
    let out = on_a_terminal("yes");
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        s.blue.json(&["status", &id])["assurances"][0]["state"],
        "revoked"
    );
}
