//! The client library against a real relay on an ephemeral loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod attacks;
mod deniability;
mod e2e;
mod escrow;
mod honest;
mod limits;
mod store;

use std::path::PathBuf;

use backchannel_client::{Client, KdfParams};
use backchannel_protocol::payload::Policy;
use backchannel_protocol::{ChannelId, Envelope, Handle};
use backchannel_testkit::TestRelay;

pub const PASS: &str = "test passphrase";

/// The digest of the proposal awaiting `c`'s answer in `id`, as its
/// consent statement names it (a test accepts what it was shown).
pub fn proposal(c: &Client, id: ChannelId) -> backchannel_protocol::Digest {
    c.consent(id)
        .unwrap()
        .expect("a proposal awaits an answer")
        .digest
}

pub fn h(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

/// Three principals on one relay, each with a store in a temporary directory.
pub struct Cast {
    /// The clients' shared virtual clock, in ms.
    pub clock: std::sync::Arc<std::sync::atomic::AtomicI64>,
    pub relay: TestRelay,
    pub mediator: Client,
    pub blue: Client,
    pub red: Client,
    pub dir: tempfile::TempDir,
}

impl Cast {
    pub async fn new() -> Self {
        Self::on(TestRelay::start().await).await
    }

    /// The cast on a relay with other settings.
    pub async fn with_config(config: backchannel_relay::RelayConfig) -> Self {
        Self::on(TestRelay::start_with(config, backchannel_relay::system_clock()).await).await
    }

    async fn on(relay: TestRelay) -> Self {
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
        let mut mediator = make("mediator").await;
        let mut blue = make("blue").await;
        let mut red = make("red").await;
        let clock = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
            backchannel_client::now().0,
        ));
        for c in [&mut mediator, &mut blue, &mut red] {
            let t = clock.clone();
            c.set_clock(std::sync::Arc::new(move || {
                backchannel_protocol::Timestamp(t.load(std::sync::atomic::Ordering::SeqCst))
            }));
        }
        Cast {
            clock,
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
            p.accept(id, proposal(p, id)).await.unwrap();
        }
        self.sync_all().await;
        id
    }

    /// Claims one of red's one-time keys from the relay, as any registered
    /// principal could (here an impostor that is not registered uses the
    /// mediator's login).
    pub async fn red_key_for_tests(
        &mut self,
        _impostor: &mut backchannel_protocol::Identity,
    ) -> backchannel_protocol::SignedKey {
        let mut relay = backchannel_client::transport::RelayClient::new(&self.relay.url).unwrap();
        let p = backchannel_testkit::Principal::join(&self.relay.url, "impostor", 0).await;
        relay.login(&p.handle, &p.identity).await.unwrap();
        relay.claim(&h("red")).await.unwrap().decode().unwrap().1
    }

    /// Moves the virtual clock forward.
    pub fn advance_s(&self, seconds: i64) {
        self.clock
            .fetch_add(seconds * 1000, std::sync::atomic::Ordering::SeqCst);
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

/// The principal an alert names, or "".
pub fn alert_who(a: &backchannel_protocol::member::Alert) -> &str {
    a.principal.as_ref().map_or("", |p| p.as_str())
}

/// The member an alert names, or "".
pub fn alert_member(a: &backchannel_protocol::member::Alert) -> &str {
    a.member.as_ref().map_or("", |p| p.as_str())
}

/// The message ids of an alert, hex.
pub fn alert_ids(a: &backchannel_protocol::member::Alert) -> Vec<String> {
    a.message_ids.iter().map(|m| m.to_hex()).collect()
}

/// The positions of an alert.
pub fn alert_pos(a: &backchannel_protocol::member::Alert) -> Vec<u64> {
    a.positions.iter().map(|s| s.0).collect()
}
