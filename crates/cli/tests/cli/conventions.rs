//! The conventions every command follows: quiet on a closed pipe,
//! documented exit codes, private files, readable times, a passphrase that
//! can be scripted and changed, completions, a man page, and help a person
//! can find their way in.

use std::process::Stdio;

use crate::bin;

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
