//! The conventions every command follows: quiet on a closed pipe,
//! documented exit codes, private files, readable times, a passphrase that
//! can be scripted and changed, completions, a man page, and help a person
//! can find their way in.

use crate::bin;

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
