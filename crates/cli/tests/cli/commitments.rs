//! Assurances, red lines, the board and what-if, as a user runs them.

use crate::authority::refused;
use crate::{Scene, User};

pub(crate) fn sent_id(out: &str) -> String {
    out.trim()
        .strip_prefix("sent ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_string()
}

pub(crate) fn log_len(u: &User, id: &str) -> usize {
    u.json(&["log", id]).as_array().unwrap().len()
}

#[test]
fn assurances_red_lines_the_board_and_whatif() {
    let s = Scene::new();
    let id = s.open_channel();
    let a = sent_id(&s.blue.run(&[
        "assure",
        &id,
        "Blue will not strike Red first, as long as it is not attacked first.",
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--unless-attacked-by",
        "red",
        "--until-revoked",
        "--authorized-by",
        "the cabinet",
    ]));
    s.red.run(&["sync"]);
    let b = sent_id(&s.red.run(&[
        "reciprocate",
        &id,
        "--of",
        &a[..10],
        "Red will not strike Blue first either.",
        "--to",
        "blue",
        "--refrain-from",
        "ASSAULT",
        "--unless-attacked-by",
        "blue",
        "--until-revoked",
        "--authorized-by",
        "the council",
        "--formality",
        "oral",
    ]));
    s.red
        .run(&["relate", &id, "outside:green", "ally-of", "blue"]);
    s.red.run(&[
        "redline",
        &id,
        "If Red is attacked, the bases of Green are not secure.",
        "--if",
        "ASSAULT",
        "--if-against",
        "red",
        "--then",
        "ASSAULT",
        "--then-against",
        "green",
    ]);
    for u in [&s.blue, &s.mediator, &s.red, &s.blue] {
        u.run(&["sync"]);
    }
    let board = s.blue.json(&["status", &id]);
    let states: Vec<&str> = board["assurances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "active"], "{board}");
    assert_eq!(
        board["assurances"][0]["reciprocated_by"][0].as_str(),
        Some(b.as_str())
    );
    assert_eq!(board["red_lines"].as_array().unwrap().len(), 1);
    assert_eq!(board["relations"][0]["by"], "red");
    let text = s.red.run(&["status", &id]);
    assert!(
        text.contains("active") && text.contains("red line"),
        "{text}"
    );

    let cascade = s.blue.run(&[
        "whatif", &id, "--actor", "green", "--action", "ASSAULT", "--target", "red",
    ]);
    assert!(
        cascade.contains("step 1: green (outside the channel) ASSAULT against red, hypothetical"),
        "{cascade}"
    );
    assert!(
        cascade.contains("red line fires: red's red line"),
        "{cascade}"
    );
    assert!(
        cascade.contains("step 2: red ASSAULT against green (outside the channel), the declared response to step 1"),
        "{cascade}"
    );
    assert!(
        cascade.contains("lapses: blue's assurance")
            && cascade.contains("only if attacks on blue's allies count as attacks on blue"),
        "{cascade}"
    );
    let dot = s.blue.run(&[
        "whatif", &id, "--actor", "green", "--action", "ASSAULT", "--target", "red", "--dot",
    ]);
    assert!(dot.starts_with("digraph whatif {"), "{dot}");
    assert!(
        dot.contains("rankdir=TB;")
            && dot.contains("label=\"red line ")
            && dot.contains("cluster_legend"),
        "{dot}"
    );

    // --svg FILE writes the graph, laid out without Graphviz, for its
    // owner only, and says so on standard error.
    let file = s.dir.path().join("cascade.svg");
    let whatif = [
        "whatif", &id, "--actor", "green", "--action", "ASSAULT", "--target", "red",
    ];
    let svg_args = [&whatif[..], &["--svg", file.to_str().unwrap()]].concat();
    let out = s.blue.try_run(&svg_args);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(
        said.contains(&format!("wrote the graph of 2 steps to {}", file.display())),
        "{said}"
    );
    let svg = std::fs::read_to_string(&file).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(
        svg.contains("class=\"node red-line\"") && svg.contains("id=\"legend\""),
        "{svg}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let nowhere = s.dir.path().join("no-such-dir/cascade.svg");
    let refused = s
        .blue
        .try_run(&[&whatif[..], &["--svg", nowhere.to_str().unwrap()]].concat());
    assert!(!refused.status.success());
    let said = String::from_utf8(refused.stderr).unwrap();
    assert!(
        said.contains(&format!("cannot write {}", nowhere.display())),
        "{said}"
    );
    let both = s.blue.try_run(&[&svg_args[..], &["--json"]].concat());
    assert!(!both.status.success(), "--json and --svg together");

    let all = s.blue.run(&[
        "whatif",
        "--all-channels",
        "--actor",
        "green",
        "--action",
        "ASSAULT",
        "--target",
        "red",
    ]);
    // The same but for the hypothetical's time (now, at each run).
    let untimed = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split(", hypothetical").next().unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(
        untimed(&all),
        untimed(&cascade),
        "one channel: the same cascade across all channels"
    );

    // The log shows the typed payloads in words.
    let log = s.red.run(&["log", &id, "--quiet"]);
    assert!(
        log.contains("[assurance, non-paper] Blue will not strike Red first"),
        "{log}"
    );
}

#[test]
fn bad_commitments_are_refused_and_nothing_is_sent() {
    let s = Scene::new();
    let id = s.open_channel();
    let before = log_len(&s.blue, &id);
    let unknown = s.blue.try_run(&[
        "assure",
        &id,
        "x",
        "--to",
        "red",
        "--refrain-from",
        "FIGHT",
        "--until-revoked",
        "--authorized-by",
        "me",
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8(unknown.stderr)
        .unwrap()
        .contains("not a PLOVER event type"));
    let backwards = s.blue.try_run(&[
        "assure",
        &id,
        "x",
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--from",
        "+2h",
        "--until",
        "+1h",
        "--authorized-by",
        "me",
    ]);
    assert!(!backwards.status.success());
    assert!(String::from_utf8(backwards.stderr)
        .unwrap()
        .contains("before it starts"));
    let dangling = s
        .blue
        .try_run(&["revoke", &id, "--assurance", "ffffff", "gone"]);
    assert!(!dangling.status.success());
    assert!(String::from_utf8(dangling.stderr)
        .unwrap()
        .contains("no message ffffff"));
    let mode = s.blue.try_run(&[
        "assure",
        &id,
        "x",
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--mode",
        "picnic",
        "--until-revoked",
        "--authorized-by",
        "me",
    ]);
    assert!(String::from_utf8(mode.stderr)
        .unwrap()
        .contains("is not a mode of ASSAULT"));
    assert_eq!(log_len(&s.blue, &id), before, "nothing was sent");
}

#[test]
fn an_escrowed_exchange_from_the_command_line() {
    let s = Scene::new();
    let id = s.open_channel();
    let created = s.blue.json(&[
        "exchange",
        "create",
        &id,
        "--with",
        "red",
        "--terms",
        "Gestures of good faith.",
        "--deadline",
        "+1h",
    ]);
    let x = created["exchange_id"].as_str().unwrap().to_string();
    let blue = s
        .blue
        .json(&["exchange", "submit", &x, "Blue withdraws two brigades."]);
    assert_eq!(blue["status"]["state"], "open");
    let red_before = s.red.json(&["exchange", "status", &x]);
    assert_eq!(red_before["status"]["state"], "open");
    assert_eq!(red_before["offers"], serde_json::json!([]));
    let out = s
        .red
        .run(&["exchange", "submit", &x, "Red releases the crew."]);
    assert!(
        out.contains("released") && out.contains("from blue: Blue withdraws two brigades."),
        "{out}"
    );
    s.blue.run(&["sync"]);
    let out = s.blue.run(&["exchange", "status", &x]);
    assert!(out.contains("from red: Red releases the crew."), "{out}");
    assert!(
        out.contains("red confirmed receiving the offer you sealed"),
        "{out}"
    );
    let outsider = s.mediator.try_run(&["exchange", "status", &x]);
    assert!(!outsider.status.success());
    assert!(String::from_utf8(outsider.stderr)
        .unwrap()
        .contains("not_a_participant"));
}

#[test]
fn event_reports_export_and_import_as_plover_records() {
    let s = Scene::new();
    let id = s.open_channel();
    let file = s.dir.path().join("in.jsonl");
    std::fs::write(
        &file,
        r#"{"id":"x1","date":"2026-05-03","time":"02:10:00","actor":[{"entity_text":"militia"}],"recipient":[{"entity_text":"blue"}],"event":["ASSAULT"],"mode":["drone"],"event_text":"Two drones over the depot."}
"#,
    )
    .unwrap();
    let out = s
        .red
        .run(&["events", "import", &id, file.to_str().unwrap()]);
    assert!(out.contains("sent 1 event report"), "{out}");
    s.blue.run(&["sync"]);
    let exported = s.blue.run(&["events", "export", &id]);
    let record: serde_json::Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    assert_eq!(record["event"], serde_json::json!(["ASSAULT"]));
    assert_eq!(record["actor"][0]["entity_text"], "militia");
    assert_eq!(record["date"], "2026-05-03");
    assert_eq!(record["coder"], "red");
    let bad = s.dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"date\":\"2026-05-03\",\"actor\":[{\"code\":\"X\"}],\"event\":[\"FIGHT\"]}\n",
    )
    .unwrap();
    let refused = s
        .red
        .try_run(&["events", "import", &id, bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8(refused.stderr)
        .unwrap()
        .contains("line 1"));
}

#[test]
fn whatif_of_several_events_and_from_a_reported_event() {
    let s = Scene::new();
    let id = s.open_channel();
    proxies_left_open(&s, &id);
    let report = sent_id(&s.blue.run(&[
        "report",
        &id,
        "Drones over the depot.",
        "--actor",
        "militia",
        "--action",
        "ASSAULT",
        "--target",
        "blue",
        "--from",
        "-2h",
        "--until",
        "-1h",
    ]));
    s.red.run(&["sync"]);
    s.blue.run(&["sync"]);
    let text = s.blue.run(&[
        "whatif",
        &id,
        "--actor",
        "militia",
        "--action",
        "ASSAULT",
        "--target",
        "blue",
        "--then",
        "red ASSAULT blue @+1h",
    ]);
    assert!(
        text.contains("only if red's proxies count as red")
            && text.contains("step 2: red ASSAULT against blue, hypothetical, at ")
            && text.contains("it has now lapsed under all readings"),
        "{text}"
    );
    let from = s.blue.json(&["whatif", &id, "--from-report", &report[..8]]);
    assert_eq!(from["steps"][0]["origin"], "reported", "{from}");
    assert_eq!(from["steps"][0]["report"], report.as_str());
    assert_eq!(from["steps"][0]["effects"][0]["effect"], "lapses", "{from}");
    let bad = s.blue.try_run(&[
        "whatif", &id, "--actor", "militia", "--action", "ASSAULT", "--then", "red",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ACTOR TYPE[/MODE+MODE] [TARGET] [@TIME]")
    );
    let none = s.blue.try_run(&["whatif", &id]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("say what happens"));
}

/// Blue's no-first-strike assurance to red that leaves open whether red's
/// proxies count, and blue's word that the militia is red's proxy.
pub(crate) fn proxies_left_open(s: &Scene, id: &str) {
    s.blue.run(&[
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
        "--attacked-allies",
        "no",
        "--attacked-proxies",
        "no",
        "--until-revoked",
        "--authorized-by",
        "the cabinet",
    ]);
    s.blue
        .run(&["relate", id, "outside:militia", "proxy-of", "red"]);
}

/// Body version 4 from the command line: provisos and combined
/// conditions, a guarantee, a red line with several targets, a scope and a
/// validity window that is then revoked, a disputed relation, and a
/// proviso decided by the mediator (a party's decision is refused).
#[test]
fn richer_commitments_from_the_command_line() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--mediator-reads"]);
    let a = sent_id(&s.blue.run(&[
        "assure",
        &id,
        "Blue will not invade Red, provided the missiles are withdrawn within thirty days.",
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--unless-attacked-by",
        "red",
        "--unless-attacked-by",
        "outside:green",
        "--unless-all",
        "--provided",
        "red RETREAT/withdraw @+30d",
        "--attacker-allies",
        "yes",
        "--until-revoked",
        "--authorized-by",
        "the cabinet",
    ]));
    let bad = s.blue.try_run(&[
        "assure",
        &id,
        "x",
        "--to",
        "red",
        "--refrain-from",
        "ASSAULT",
        "--provided",
        "red RETREAT/withdraw",
        "--until-revoked",
        "--authorized-by",
        "me",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("say by when"),
        "{bad:?}"
    );
    s.mediator.run(&["sync"]);
    s.mediator.run(&[
        "guarantee",
        &id,
        &a[..10],
        "Should Blue invade Red, the mediator's principals will sanction Blue.",
        "--then",
        "SANCTION",
        "--then-against",
        "blue",
    ]);
    let r = sent_id(&s.red.run(&[
        "redline",
        &id,
        "Any strike by Blue or its proxies on Red or its ally, this month, will be answered.",
        "--if",
        "ASSAULT",
        "--if-by",
        "blue",
        "--if-against",
        "red",
        "--if-against",
        "outside:ally",
        "--by-proxies",
        "yes",
        "--until",
        "+30d",
        "--then",
        "ASSAULT",
        "--then-against",
        "blue",
    ]));
    s.blue
        .run(&["relate", &id, "outside:militia", "ally-of", "red"]);
    s.red.run(&["sync"]);
    s.red.run(&[
        "dispute",
        &id,
        "outside:militia",
        "ally-of",
        "red",
        "Not our ally.",
    ]);
    for u in [&s.blue, &s.mediator, &s.red, &s.blue] {
        u.run(&["sync"]);
    }
    let board = s.blue.json(&["status", &id]);
    let mine = &board["assurances"][0];
    assert_eq!(mine["provisos"][0]["state"], "open", "{board}");
    assert_eq!(mine["guarantees"][0]["guarantor"], "mediator", "{board}");
    assert_eq!(board["red_lines"][0]["state"], "active", "{board}");
    assert_eq!(board["relations"][0]["disputed_by"][0], "red", "{board}");
    let text = s.blue.run(&["status", &id]);
    assert!(text.contains("proviso 1: not yet decided"), "{text}");
    assert!(text.contains("DISPUTED by red"), "{text}");

    // A breach sets off the guarantee; the red line fires on it.
    let cascade = s.blue.run(&[
        "whatif", &id, "--actor", "blue", "--action", "ASSAULT", "--target", "red",
    ]);
    assert!(
        cascade.contains("guarantee acts: mediator's guarantee"),
        "{cascade}"
    );
    assert!(
        cascade.contains("red line fires: red's red line"),
        "{cascade}"
    );
    // With only undisputed relations, the militia is nobody's ally.
    let spec = [
        "whatif", &id, "--actor", "militia", "--action", "ASSAULT", "--target", "blue",
    ];
    let every = s.blue.run(&spec);
    assert!(
        every.contains("lapses only once all of them are met"),
        "{every}"
    );
    let disputed = s.blue.run(&[&spec[..], &["--undisputed-only"]].concat());
    assert!(
        disputed.contains("disputed by red")
            && disputed.contains("this what-if uses only undisputed relations"),
        "{disputed}"
    );

    let revoke = s
        .red
        .run(&["revoke", &id, "--red-line", &r[..10], "--yes", "Withdrawn."]);
    assert!(revoke.starts_with("sent "), "{revoke}");
    for u in [&s.blue, &s.red, &s.blue] {
        u.run(&["sync"]);
    }
    assert_eq!(
        s.blue.json(&["status", &id])["red_lines"][0]["state"],
        "revoked"
    );
    let cascade = s.blue.run(&[
        "whatif", &id, "--actor", "blue", "--action", "ASSAULT", "--target", "red",
    ]);
    assert!(
        cascade.contains("would fire, but it is revoked"),
        "{cascade}"
    );
    refused(
        &s.blue,
        &id,
        &["revoke", &id, "--red-line", &r[..10], "--yes", "x"],
        "only its issuer can revoke",
    );

    // Only the mediator or blue decides blue's proviso.
    refused(
        &s.red,
        &id,
        &["proviso", &id, &a[..10], "1", "--fulfilled", "Done."],
        "not yours to make",
    );
    s.mediator.run(&["sync"]);
    s.mediator.run(&[
        "proviso",
        &id,
        &a[..10],
        "1",
        "--failed",
        "The inspectors found them in place.",
    ]);
    s.blue.run(&["sync"]);
    let board = s.blue.json(&["status", &id]);
    assert_eq!(board["assurances"][0]["state"], "lapsed", "{board}");
    assert_eq!(board["assurances"][0]["provisos"][0]["state"], "failed");
}
