//! The conventions every command follows: quiet on a closed pipe,
//! documented exit codes, private files, readable times, a passphrase that
//! can be scripted and changed, completions, a man page, and help a person
//! can find their way in.

use std::process::Stdio;

use crate::{bin, User, PASS};

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
        let out = std::process::Command::new(bin())
            .arg(typo)
            .output()
            .unwrap();
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
    let help = String::from_utf8(
        std::process::Command::new(bin())
            .arg("--help")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
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
