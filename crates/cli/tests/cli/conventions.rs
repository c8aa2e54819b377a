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
