//! The conventions every command follows: quiet on a closed pipe,
//! documented exit codes, private files, readable times, a passphrase that
//! can be scripted and changed, completions, a man page, and help a person
//! can find their way in.

use std::process::Stdio;

use backchannel_testkit::RelayProcess;

use crate::{bin, User, PASS};

/// A relay and one initialised user, for tests that need no channel.
fn solo() -> (RelayProcess, User, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn(bin(), &dir.path().join("relay.db"));
    let user = User {
        store: dir.path().join("blue.store"),
    };
    user.run(&["init", "--relay", &relay.url, "--handle", "blue"]);
    (relay, user, dir)
}

/// Runs the binary with no store.
fn bare(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn closed_pipe_ends_quietly() {
    let s = crate::Scene::new();
    let id = s.open_channel();
    for args in [
        vec!["log", id.as_str()],
        vec!["fingerprint"],
        vec!["channel", "list"],
        vec!["verify"],
    ] {
        // The reader is gone before the command writes its first line.
        let mut child = s
            .blue
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn typos_suggest_the_command() {
    for (typo, meant) in [("snyc", "sync"), ("inbx", "inbox"), ("verfy", "verify")] {
        let out = bare(&[typo]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("similar subcommand exists: '{meant}'")),
            "{typo}: {stderr}"
        );
    }
}

#[test]
fn verify_exit_codes_are_0_1_2() {
    let s = crate::Scene::new();
    let id = s.open_channel();
    let status = |u: &User, pass: &str| {
        u.command(&["verify"])
            .env("BACKCHANNEL_PASSPHRASE", pass)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(status(&s.blue, PASS), Some(0), "clean");
    // Blue's store goes back to an older copy: `stale_store` is open.
    let copy = s.dir.path().join("blue.copy");
    std::fs::copy(&s.blue.store, &copy).unwrap();
    s.blue.run(&["send", &id, "after the copy"]);
    std::fs::copy(&copy, &s.blue.store).unwrap();
    let _ = s.blue.try_run(&["sync"]);
    assert_eq!(status(&s.blue, PASS), Some(1), "alerts open");
    assert_eq!(
        status(&s.blue, "not the passphrase"),
        Some(2),
        "not checked"
    );
    let nobody = User {
        store: s.dir.path().join("nobody.store"),
    };
    assert_eq!(status(&nobody, PASS), Some(2), "no store");
    let help = String::from_utf8(bare(&["--help"]).stdout).unwrap();
    assert!(help.contains("Exit status:"), "{help}");
}

/// Runs `u`'s command under umask 022, the usual default.
fn under_umask_022(u: &User, args: &[&str]) -> String {
    let c = u.command(args);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(c.get_program())
        .args(c.get_args())
        .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn files_are_created_0600() {
    let s = crate::Scene::new();
    let id = s.open_channel();
    let green = User {
        store: s.dir.path().join("new-dir").join("green.store"),
    };
    under_umask_022(
        &green,
        &["init", "--relay", &s.relay.url, "--handle", "green"],
    );
    under_umask_022(&green, &["sync"]);
    assert_eq!(mode(&green.store), 0o600, "the store");
    assert_eq!(mode(&lock_of(&green)), 0o600, "its lock");
    assert_eq!(
        mode(green.store.parent().unwrap()),
        0o700,
        "the directory init made"
    );

    s.blue.run(&[
        "report",
        &id,
        "Two drones.",
        "--actor",
        "outside:militia",
        "--action",
        "ASSAULT",
        "--from",
        "2026-11-24T02:10Z",
        "--until",
        "2026-11-24T02:40Z",
    ]);
    let transcript = s.dir.path().join("talks.json");
    let events = s.dir.path().join("events.jsonl");
    // An existing file is narrowed too.
    std::fs::write(&events, "old").unwrap();
    under_umask_022(
        &s.blue,
        &[
            "transcript",
            "export",
            &id,
            "--out",
            transcript.to_str().unwrap(),
        ],
    );
    under_umask_022(
        &s.blue,
        &["events", "export", &id, "--out", events.to_str().unwrap()],
    );
    assert_eq!(mode(&transcript), 0o600, "the transcript export");
    assert_eq!(mode(&events), 0o600, "the events export");
    assert!(std::fs::read_to_string(&events)
        .unwrap()
        .contains("Two drones."));
}

fn lock_of(u: &User) -> std::path::PathBuf {
    let mut p = u.store.clone().into_os_string();
    p.push(".lock");
    p.into()
}

/// Runs with the local zone two hours east of UTC; returns (stdout, stderr).
fn in_eet(u: &User, args: &[&str]) -> (String, String) {
    let out = u.command(args).env("TZ", "EET-2").output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

#[test]
fn times_accept_offsets_dates_and_relative_forms() {
    let s = crate::Scene::new();
    let id = s.open_channel();
    // An offset, echoed back in UTC and local time before it is sent.
    let (_, echoed) = in_eet(
        &s.blue,
        &[
            "ask",
            &id,
            "Explain.",
            "--reply-by",
            "2026-12-03T12:00:00+02:00",
        ],
    );
    assert!(
        echoed.contains("reply-by: 2026-12-03 10:00 UTC (12:00 local)"),
        "{echoed}"
    );
    // A bare date is 00:00 UTC.
    let (_, echoed) = in_eet(
        &s.blue,
        &["ask", &id, "And this?", "--reply-by", "2026-12-04"],
    );
    assert!(
        echoed.contains("reply-by: 2026-12-04 00:00 UTC (02:00 local)"),
        "{echoed}"
    );
    let board = s.blue.json(&["status", &id]);
    let due: Vec<i64> = board["awaiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["due_ms"].as_i64().unwrap())
        .collect();
    assert!(due.contains(&1_796_292_000_000), "{board}");
    assert!(due.contains(&1_796_342_400_000), "{board}");
    let (text, _) = in_eet(&s.blue, &["status", &id]);
    assert!(
        text.contains("due 2026-12-03 10:00 UTC (12:00 local)"),
        "{text}"
    );

    // Relative forms, the documented `--from -30m` among them.
    let (_, echoed) = in_eet(
        &s.blue,
        &[
            "report",
            &id,
            "Seen.",
            "--actor",
            "outside:militia",
            "--action",
            "ASSAULT",
            "--from",
            "-30m",
            "--until",
            "+90s",
        ],
    );
    assert!(
        echoed.contains("from: ") && echoed.contains("until: "),
        "{echoed}"
    );
    let (_, echoed) = in_eet(
        &s.blue,
        &[
            "exchange",
            "create",
            &id,
            "--with",
            "red",
            "--terms",
            "t",
            "--deadline",
            "in 2 days",
        ],
    );
    assert!(
        echoed.contains("deadline: ") && echoed.contains(" local)"),
        "{echoed}"
    );
    let bad = s
        .blue
        .try_run(&["ask", &id, "q", "--reply-by", "2026-12-03T10:00"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("no time zone"),
        "{err}"
    );

    let backwards = s.blue.try_run(&[
        "report",
        &id,
        "x",
        "--actor",
        "outside:m",
        "--action",
        "ASSAULT",
        "--from",
        "2026-12-03T10:00Z",
        "--until",
        "2026-12-03",
    ]);
    let err = String::from_utf8_lossy(&backwards.stderr);
    assert!(
        err.contains(
            "the window ends (2026-12-03 00:00 UTC) before it starts (2026-12-03 10:00 UTC)"
        ),
        "{err}"
    );

    // Durations read as words, times as dates.
    let (list, _) = in_eet(&s.blue, &["channel", "list"]);
    assert!(
        list.contains("receipts due within 1 day, heartbeat every 1 hour"),
        "{list}"
    );
    let (log, _) = in_eet(&s.blue, &["log", &id]);
    assert!(!log.contains(" ms]"), "{log}");
    assert!(log.contains("offers due by 20"), "{log}");
}

#[test]
fn passphrase_file_and_change() {
    let (_relay, u, dir) = solo();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let old_file = write("old.txt", &format!("{PASS}\nthe rest is ignored\n"));
    let new_file = write("new.txt", "a new passphrase\n");
    let old = old_file.to_str().unwrap();
    let new = new_file.to_str().unwrap();
    let without_env = |args: &[&str]| {
        u.command(args)
            .env_remove("BACKCHANNEL_PASSPHRASE")
            .output()
            .unwrap()
    };
    // The first line of the file is the passphrase; no variable needed.
    assert!(without_env(&["--passphrase-file", old, "fingerprint"])
        .status
        .success());
    let asked = without_env(&["fingerprint"]);
    let err = String::from_utf8_lossy(&asked.stderr);
    assert!(
        !asked.status.success() && err.contains("--passphrase-file"),
        "{err}"
    );

    let changed = without_env(&[
        "--passphrase-file",
        old,
        "passphrase",
        "change",
        "--new-passphrase-file",
        new,
    ]);
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    // The old passphrase no longer opens the store, by file or variable.
    for out in [
        without_env(&["--passphrase-file", old, "verify"]),
        u.try_run(&["verify"]),
    ] {
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    }
    // The new one does, for reading and for work with the relay.
    assert!(without_env(&["--passphrase-file", new, "verify"])
        .status
        .success());
    let synced = u
        .command(&["sync"])
        .env("BACKCHANNEL_PASSPHRASE", "a new passphrase")
        .output()
        .unwrap();
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
}

#[test]
fn completions_and_man_page() {
    let run = |args: &[&str]| {
        let out = bare(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef backchannel"),
        ("fish", "complete -c backchannel"),
    ] {
        let script = run(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["sync", "passphrase", "transcript", "passphrase-file"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let page = run(&["man"]);
    for part in [
        ".TH backchannel 1",
        ".SH SUBCOMMANDS",
        "passphrase",
        "Exit status",
    ] {
        assert!(page.contains(part), "the man page has {part}");
    }
}

#[test]
fn help_is_grouped_by_role() {
    let help = String::from_utf8(bare(&["--help"]).stdout).unwrap();
    let at = |heading: &str| {
        help.find(&format!("\n{heading}"))
            .unwrap_or_else(|| panic!("no {heading} group: {help}"))
    };
    let groups = [
        at("Everyone:"),
        at("Mediator:"),
        at("Commitments"),
        at("Relay operator:"),
        at("Options:"),
    ];
    assert!(groups.windows(2).all(|w| w[0] < w[1]), "{help}");
    let section = |i: usize| &help[groups[i]..groups[i + 1]];
    let listed = |i: usize, command: &str| {
        section(i)
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{command} ")))
    };
    for c in [
        "init",
        "sync",
        "send",
        "verify",
        "channel",
        "passphrase",
        "man",
        "completions",
    ] {
        assert!(listed(0, c), "everyone: {c}");
    }
    for c in ["channel create", "channel amend", "convey", "find"] {
        assert!(listed(1, c), "mediator: {c}");
    }
    for c in [
        "assure", "redline", "status", "whatif", "exchange", "events",
    ] {
        assert!(listed(2, c), "commitments: {c}");
    }
    for c in ["relay", "conformance"] {
        assert!(listed(3, c), "relay operator: {c}");
    }
}
