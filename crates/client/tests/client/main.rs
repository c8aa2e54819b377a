//! The client library against a real relay on an ephemeral loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod e2e;
mod store;

use std::path::PathBuf;

use backchannel_client::{Client, KdfParams};
use backchannel_protocol::payload::Policy;
use backchannel_protocol::{ChannelId, Envelope, Handle};
use backchannel_testkit::TestRelay;

pub const PASS: &str = "test passphrase";

pub fn h(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

/// Three principals on one relay, each with a store in a temporary directory.
pub struct Cast {
    pub relay: TestRelay,
    pub mediator: Client,
    pub blue: Client,
    pub red: Client,
    pub dir: tempfile::TempDir,
}

impl Cast {
    pub async fn new() -> Self {
        let relay = TestRelay::start().await;
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let path: PathBuf = dir.path().join(format!("{name}.store"));
            let url = relay.url.clone();
            let name = name.to_string();
            async move {
                Client::create(&path, PASS, KdfParams::INSECURE_FOR_TESTS, &url, &h(&name))
                    .await
                    .unwrap()
            }
        };
        let mediator = make("mediator").await;
        let blue = make("blue").await;
        let red = make("red").await;
        Cast {
            relay,
            mediator,
            blue,
            red,
            dir,
        }
    }

    /// The mediator opens a channel with `policy`; both parties sync and accept.
    pub async fn open_channel(&mut self, reads: bool) -> ChannelId {
        let policy = Policy {
            mediator_reads: reads,
            receipt_deadline_s: 3600,
            heartbeat_interval_s: 600,
        };
        let id = self
            .mediator
            .create_channel("talks", &[h("blue"), h("red")], &[], policy)
            .await
            .unwrap();
        for p in [&mut self.blue, &mut self.red] {
            p.sync().await.unwrap();
            p.accept(id).await.unwrap();
        }
        self.sync_all().await;
        id
    }

    pub async fn sync_all(&mut self) {
        for _ in 0..2 {
            for c in [&mut self.mediator, &mut self.blue, &mut self.red] {
                let r = c.sync().await.unwrap();
                assert!(r.alerts.is_empty(), "{}: {:?}", c.me(), r.alerts);
            }
        }
    }

    /// Every envelope the relay holds right now, in every mailbox.
    pub fn relay_envelopes(&self) -> Vec<Envelope> {
        ["mediator", "blue", "red", "ghost"]
            .iter()
            .flat_map(|m| self.relay.store().mailbox(&h(m), 0, 10_000).unwrap())
            .map(|s| s.envelope)
            .collect()
    }
}
