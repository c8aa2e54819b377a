//! Who may rule: acts a sender may not make are refused before sending,
//! and every board ignores them (with `unauthorized_act`) when another
//! client sends them anyway.

use crate::commitments::{log_len, proxies_left_open, sent_id};
use crate::{Scene, User};

/// Blue's no-first-strike assurance to red, received by everyone.
fn assurance(s: &Scene, id: &str) -> String {
    let a = sent_id(&s.blue.run(&[
        "assure",
        id,
        "Blue will not strike Red first.",
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--unless-attacked-by",
        "red",
        "--attacker-allies",
        "no",
        "--attacker-proxies",
        "no",
        "--attacked-allies",
        "no",
        "--attacked-proxies",
        "no",
        "--until-revoked",
        "--authorized-by",
        "the cabinet",
    ]));
    for u in [&s.red, &s.mediator, &s.blue] {
        u.run(&["sync"]);
    }
    a
}

/// Runs, requires the refusal (exit status 2, the words), and that nothing
/// was sent.
pub(crate) fn refused(u: &User, channel: &str, args: &[&str], words: &str) {
    let before = log_len(u, channel);
    let out = u.try_run(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(words), "{args:?}: {err}");
    assert_eq!(log_len(u, channel), before, "{args:?}: nothing is sent");
}

#[test]
fn a_party_cannot_rule_nor_confirm_anothers_lapse_nor_revoke_a_red_line() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--mediator-reads"]);
    for u in [&s.mediator, &s.blue, &s.red] {
        u.run(&["sync"]);
    }
    let a = assurance(&s, &id);
    refused(
        &s.red,
        &id,
        &["find", &id, &a[..8], "--lapsed", "It lapsed."],
        "only the mediator's finding rules",
    );
    refused(
        &s.red,
        &id,
        &["find", &id, &a[..8], "--lapsed", "It lapsed.", "--dry-run"],
        "only the mediator's finding rules",
    );
    refused(
        &s.red,
        &id,
        &["confirm-lapse", &id, &a[..8], "Blue's word is void."],
        "only the issuer of an assurance confirms that it lapsed",
    );
    let rl = sent_id(&s.red.run(&[
        "redline",
        &id,
        "If Red is struck, Red strikes Blue.",
        "--if",
        "ASSAULT",
        "--if-against",
        "red",
        "--then",
        "ASSAULT",
        "--then-against",
        "blue",
    ]));
    refused(
        &s.red,
        &id,
        &[
            "revoke",
            &id,
            "--assurance",
            &rl[..8],
            "--yes",
            "Withdrawn.",
        ],
        "is a red line, not an assurance",
    );
    // The mediator may rule here; its finding changes the board.
    let f = s
        .mediator
        .run(&["find", &id, &a[..8], "--lapsed", "Blue was struck first."]);
    assert!(f.starts_with("sent "), "{f}");
    s.blue.run(&["sync"]);
    let board = s.blue.json(&["status", &id]);
    assert_eq!(board["assurances"][0]["state"], "lapsed", "{board}");
    assert_eq!(
        board["assurances"][0]["rulings"][0]["text"],
        "Blue was struck first."
    );
}

#[test]
fn the_mediator_cannot_rule_on_what_it_cannot_read() {
    let s = Scene::new();
    let id = s.open_channel();
    let a = assurance(&s, &id);
    // Without mediator_reads the mediator holds only stubs: it names the
    // message by a prefix it has, but may not rule on it.
    refused(
        &s.mediator,
        &id,
        &["find", &id, &a[..8], "--lapsed", "It lapsed."],
        "mediator_reads",
    );
}

#[test]
fn another_clients_forbidden_act_is_ignored_and_raises_unauthorized_act() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--mediator-reads"]);
    for u in [&s.mediator, &s.blue, &s.red] {
        u.run(&["sync"]);
    }
    let a = assurance(&s, &id);
    // A client that does not check (an old or a modified one) sends red's
    // "finding" anyway.
    let out = s
        .red
        .command(&["find", &id, &a[..8], "--lapsed", "Blue's word is void."])
        .env("BACKCHANNEL_TEST_BREAK", "authority")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finding = sent_id(&String::from_utf8(out.stdout).unwrap());
    s.blue.run(&["sync"]);
    let board = s.blue.json(&["status", &id]);
    assert_eq!(board["assurances"][0]["state"], "active", "{board}");
    assert_eq!(board["assurances"][0]["findings"], serde_json::json!([]));
    assert_eq!(board["unauthorized"][0]["message"], finding.as_str());
    assert_eq!(board["unauthorized"][0]["rule"], "mediator_finds");
    let text = s.blue.run(&["status", &id]);
    assert!(
        text.contains("ignored") && text.contains("only the mediator's finding rules"),
        "{text}"
    );
    assert!(!text.contains("FINDING"), "{text}");
    let verify = |u: &User| -> serde_json::Value {
        let out = u.try_run(&["verify", "--all", "--json"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "an open alarm: verify finds a problem"
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let alerts = verify(&s.blue);
    let hit = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "unauthorized_act")
        .unwrap_or_else(|| panic!("{alerts}"));
    assert_eq!(hit["principal"], "red");
    assert!(hit["detail"]
        .as_str()
        .unwrap()
        .contains("only the mediator's finding rules"));
    // Raised once: syncing and opening again add nothing.
    s.blue.run(&["sync"]);
    let again = verify(&s.blue);
    let n = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|x| x["code"] == "unauthorized_act")
            .count()
    };
    assert_eq!(n(&again), 1, "{again}");
}

#[test]
fn a_finding_answers_the_allegation_and_the_board_says_what_it_found() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--mediator-reads"]);
    for u in [&s.mediator, &s.blue, &s.red] {
        u.run(&["sync"]);
    }
    let a = assurance(&s, &id);
    let al = sent_id(&s.red.run(&[
        "allege",
        &id,
        &a[..8],
        "--reply-by",
        "+48h",
        "Shells on the ridge at 02:10 UTC.",
    ]));
    s.mediator.run(&["sync"]);
    let board = s.mediator.json(&["status", &id]);
    assert_eq!(board["awaiting"][0]["id"], al.as_str());
    s.mediator.run(&[
        "find",
        &id,
        &a[..8],
        "--allegation",
        &al[..8],
        "--breached",
        "The craters point to positions held by blue.",
    ]);
    s.blue.run(&["sync"]);
    let board = s.blue.json(&["status", &id]);
    assert_eq!(board["awaiting"], serde_json::json!([]), "{board}");
    assert_eq!(board["assurances"][0]["ruled"][0], al.as_str());
    let text = s.blue.run(&["status", &id]);
    assert!(
        text.contains("answered by the mediator's finding")
            && text.contains(&format!(
                "breached (on allegation {}): \"The craters point to positions held by blue.\"",
                &al[..8]
            )),
        "{text}"
    );
    assert!(!text.contains("unanswered"), "{text}");
}

#[test]
fn the_whatif_names_the_rule_the_reading_the_relation_and_the_channel() {
    let s = Scene::new();
    let id = s.open_channel();
    proxies_left_open(&s, &id);
    s.red.run(&["sync"]);
    s.blue.run(&["sync"]);
    let text = s.blue.run(&[
        "whatif",
        "--all-channels",
        "--actor",
        "militia",
        "--action",
        "ASSAULT",
        "--target",
        "blue",
    ]);
    for want in [
        "lapses: blue's assurance",
        &format!("in channel {}", &id[..8]),
        "only if red's proxies count as red",
        "through the relation: militia (outside the channel) is a proxy of red (declared by blue)",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    // Blue striking red itself: a breach, not "nothing follows".
    let text = s.blue.run(&[
        "whatif", &id, "--actor", "blue", "--action", "ASSAULT", "--target", "red",
    ]);
    assert!(
        text.contains("breach: blue would be in breach of its assurance"),
        "{text}"
    );
    let json = s.blue.json(&[
        "whatif", &id, "--actor", "blue", "--action", "ASSAULT", "--target", "red",
    ]);
    assert_eq!(json["steps"][0]["effects"][0]["effect"], "breach", "{json}");
}
