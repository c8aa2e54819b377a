//! Side-by-side measurements of the hot paths, in one run, reported as
//! ratios (machines are noisy; ratios measured together travel better).
//! Run: `cargo bench -p backchannel-client`.
//!
//! 1. Olm encryption of a 1 KiB padded payload with the session kept in
//!    memory, against loading the session from its stored form (JSON
//!    pickle) and storing it again around each message (what DESIGN.md
//!    tells us never to do).
//! 2. A message sent by the client library (seal, encrypt for two members,
//!    commit session + message + outbox, post) against a bare relay post of
//!    the same envelopes, both on a real relay on 127.0.0.1 with SQLite at
//!    `synchronous=FULL`.

use std::time::{Duration, Instant};

use backchannel_client::{Client, KdfParams};
use backchannel_protocol::{Handle, Identity, PeerSession};
use backchannel_testkit::{Principal, TestRelay};

fn per_op(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn olm(n: usize) -> (f64, f64) {
    let alice = Identity::new();
    let mut bob = Identity::new();
    let key = bob.generate_one_time_keys(1).remove(0);
    let mut session = alice
        .outbound_session(&bob.keys(), &key)
        .unwrap_or_else(|e| panic!("{e}"));
    let plaintext = vec![7u8; 1024];
    let start = Instant::now();
    for _ in 0..n {
        let _ = session.encrypt(&plaintext);
    }
    let in_memory = per_op(start.elapsed(), n);
    // The stored form: the pickle as JSON (the client seals that JSON).
    let mut stored = serde_json::to_vec(&session.pickle()).unwrap_or_default();
    let start = Instant::now();
    for _ in 0..n {
        let pickle: vodozemac::olm::SessionPickle =
            serde_json::from_slice(&stored).unwrap_or_else(|e| panic!("{e}"));
        let mut s = PeerSession::from_pickle(pickle);
        let _ = s.encrypt(&plaintext);
        stored = serde_json::to_vec(&s.pickle()).unwrap_or_default();
    }
    (in_memory, per_op(start.elapsed(), n))
}

async fn sends(n: usize) -> (f64, f64) {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let make = |name: &'static str| {
        let path = dir.path().join(format!("{name}.store"));
        let url = relay.url.clone();
        async move {
            Client::create(
                &path,
                "bench",
                KdfParams::INSECURE_FOR_TESTS,
                &url,
                &Handle::new(name).unwrap_or_else(|e| panic!("{e}")),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let (mut mediator, mut blue, mut red) = (
        make("mediator").await,
        make("blue").await,
        make("red").await,
    );
    let policy = backchannel_protocol::payload::Policy {
        mediator_reads: false,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 600,
    };
    let h = |s: &str| Handle::new(s).unwrap_or_else(|e| panic!("{e}"));
    let id = mediator
        .create_channel("bench", &[h("blue"), h("red")], &[], policy)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for p in [&mut blue, &mut red] {
        p.sync().await.unwrap_or_else(|e| panic!("{e}"));
        p.accept(
            id,
            p.consent(id)
                .ok()
                .flatten()
                .map(|s| s.digest)
                .unwrap_or_else(|| panic!("no proposal")),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for c in [&mut mediator, &mut blue, &mut red] {
        c.sync().await.unwrap_or_else(|e| panic!("{e}"));
    }
    let text = "x".repeat(900);
    let start = Instant::now();
    for _ in 0..n {
        blue.send_text(id, &text, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let client = per_op(start.elapsed(), n);

    // The same number of same-size envelopes, posted bare by a principal
    // with no store and no crypto, in a channel of its own.
    let sizes: Vec<usize> = relay
        .hostile
        .mailbox("red")
        .iter()
        .map(|(_, e)| e.ciphertext.len())
        .collect();
    let size = sizes.last().copied().unwrap_or(1200);
    let poster = Principal::join(&relay.url, "poster", 0).await;
    let bare_channel = backchannel_protocol::ChannelId::random();
    let a = poster
        .call("POST", "/v1/channels", Some(&serde_json::json!({"channel_id": bare_channel.to_hex(), "members": ["poster", "red", "mediator"]})))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let start = Instant::now();
    for _ in 0..n {
        let m = backchannel_protocol::MessageId::random();
        let env = |to: &str| backchannel_protocol::api::EnvelopeJson {
            channel_id: bare_channel.to_hex(),
            message_id: m.to_hex(),
            sender: "poster".into(),
            recipient: to.into(),
            seq_hint: 1,
            olm_type: 1,
            ciphertext: backchannel_protocol::b64::encode(vec![9u8; size]),
        };
        let body = serde_json::json!({"envelopes": [env("red"), env("mediator")]});
        let r = poster
            .call(
                "POST",
                &format!("/v1/channels/{bare_channel}/messages"),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    (client, per_op(start.elapsed(), n))
}

fn main() {
    let n = 2000;
    let (memory, unpickled) = olm(n);
    println!("olm encrypt 1 KiB, session in memory:        {memory:8.1} us");
    println!(
        "olm encrypt 1 KiB, load + store the pickle:  {unpickled:8.1} us   ratio {:.1}x",
        unpickled / memory
    );
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (client, bare) = rt.block_on(sends(200));
    println!("client send (seal, encrypt x2, commit, post): {client:8.1} us");
    println!(
        "bare relay post of the same two envelopes:    {bare:8.1} us   ratio {:.1}x",
        client / bare
    );
}
