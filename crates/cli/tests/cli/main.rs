//! The `backchannel` binary as a user and an operator run it: real
//! processes, a real relay on an ephemeral loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actors;
mod authority;
mod backup;
mod commitments;
mod compat;
mod conformance;
mod consent;
mod conventions;
mod crash;
mod demo;
mod flows;
mod internet;
mod json;
mod outbox;
mod readable;
mod readme;
mod relay;
mod stale;
mod ui;
mod watch;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use backchannel_testkit::RelayProcess;
use serde_json::Value;

pub const PASS: &str = "cli test passphrase";

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_backchannel"))
}

/// A principal's store used through the binary.
pub struct User {
    pub store: PathBuf,
}

impl User {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.env("BACKCHANNEL_PASSPHRASE", PASS)
            .env_remove("BACKCHANNEL_CRASH_POINT")
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs and requires success.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and returns the raw output.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Accepts the channel's pending proposal (its creation or an
    /// amendment), the way a script does. Tests accept only through this.
    pub fn accept(&self, channel: &str) -> String {
        let shown = self.json(&["channel", "show", channel]);
        let digest = shown["pending"]["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("nothing awaits an answer in {channel}: {shown}"))
            .to_string();
        self.run(&["channel", "accept", channel, "--yes", &digest[..12]])
    }

    /// Runs with `--json` and parses the output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.run(&all)).unwrap()
    }
}

/// A relay child process and three initialised users.
pub struct Scene {
    pub relay: RelayProcess,
    pub mediator: User,
    pub blue: User,
    pub red: User,
    pub dir: tempfile::TempDir,
}

impl Scene {
    /// A relay and three users: mediator, blue, red.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let relay = RelayProcess::spawn(bin(), &dir.path().join("relay.db"));
        let user = |name: &str| {
            let u = User {
                store: dir.path().join(format!("{name}.store")),
            };
            u.run(&["init", "--relay", &relay.url, "--handle", name]);
            u
        };
        let (mediator, blue, red) = (user("mediator"), user("blue"), user("red"));
        Scene {
            relay,
            mediator,
            blue,
            red,
            dir,
        }
    }

    /// The scene of stores `mediator`, `blue` and `red` already made in
    /// `dir` on `relay`.
    pub fn of(relay: RelayProcess, dir: tempfile::TempDir) -> Self {
        let user = |name: &str| User {
            store: dir.path().join(format!("{name}.store")),
        };
        Scene {
            mediator: user("mediator"),
            blue: user("blue"),
            red: user("red"),
            relay,
            dir,
        }
    }

    /// The mediator proposes, both parties accept, everyone syncs.
    pub fn open_channel(&self) -> String {
        let id = self.open_channel_with(&[]);
        for u in [&self.mediator, &self.blue, &self.red] {
            let r = u.json(&["sync"]);
            assert_eq!(r["alerts"], serde_json::json!([]));
        }
        id
    }

    /// Like `open_channel`, with more `channel create` arguments (policy).
    pub fn open_channel_with(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "channel", "create", "--title", "talks", "--party", "blue", "--party", "red",
        ];
        args.extend_from_slice(extra);
        let out = self.mediator.json(&args);
        let id = out["channel_id"].as_str().unwrap().to_string();
        for p in [&self.blue, &self.red] {
            p.run(&["sync"]);
            p.accept(&id[..8]);
        }
        for u in [&self.mediator, &self.blue, &self.red] {
            u.run(&["sync"]);
        }
        id
    }
}

/// Text messages in a user's inbox, as (sender, text).
pub fn inbox(u: &User) -> Vec<(String, String)> {
    u.json(&["inbox", "--limit", "1000"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "text")
        .map(|e| {
            (
                e["sender"].as_str().unwrap().to_string(),
                e["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Polls `check` until it holds or `within` passes.
pub fn wait_for(within: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    check()
}
