//! The crash harness can fail: against a relay that forgets its last
//! commits at every start (its WAL deleted before it opens the database),
//! it reports lost messages and exits 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_crash_harness_catches_a_relay_that_forgets() {
    let bench = Path::new(env!("CARGO_BIN_EXE_backchannel-bench"));
    let relay = bench.with_file_name("backchannel");
    if !relay.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI builds the workspace: {} must exist",
            relay.display()
        );
        eprintln!(
            "skipped: no relay binary at {} (cargo build -p backchannel-cli)",
            relay.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let forgetful = dir.path().join("forgetful-relay");
    std::fs::write(
        &forgetful,
        format!(
            "#!/bin/sh\n# Forgets what it committed since the last checkpoint.\ndb=''; prev=''\nfor a in \"$@\"; do [ \"$prev\" = --db ] && db=$a; prev=$a; done\nrm -f \"$db-wal\"\nexec {} \"$@\"\n",
            relay.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&forgetful)
        .status()
        .unwrap();
    let out = Command::new(bench)
        .args([
            "crash",
            "--messages",
            "100",
            "--senders",
            "2",
            "--kills",
            "10",
        ])
        .args(["--max-uptime-ms", "300", "--patience-s", "5"])
        .arg("--relay-bin")
        .arg(&forgetful)
        .arg("--work")
        .arg(dir.path().join("work"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let lost: usize = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("lost"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a line of lost messages");
    assert!(lost > 0, "{report}");
    assert!(report.contains("crash harness: FAIL"), "{report}");
}
