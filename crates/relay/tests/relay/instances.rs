//! Two relay instances on one PostgreSQL database: what a client does on
//! one is seen on the other, and a post to one is pushed over WebSocket to
//! a client connected to the other (skipped, saying so, where PostgreSQL
//! is not installed; CI installs it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use backchannel_protocol::api::{EnvelopeJson, PushFrame};
use backchannel_protocol::{ChannelId, Envelope, MessageId, OlmType};
use backchannel_relay::store::PostgresStore;
use backchannel_relay::{serve, system_clock, Relay, RelayConfig};
use backchannel_testkit::postgres::PgCluster;
use backchannel_testkit::Principal;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Serves a relay instance on `url`'s database; answers its address.
async fn instance(url: &str) -> std::net::SocketAddr {
    let store = PostgresStore::open(url).unwrap();
    let relay = Relay::with(Arc::new(store), RelayConfig::default(), system_clock());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, relay, std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_to_one_instance_is_pushed_by_the_other() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.database();
    let (a, b) = (instance(&url).await, instance(&url).await);
    let (url_a, url_b) = (format!("http://{a}"), format!("http://{b}"));

    // Registered and logged in on A; B knows them from the database.
    let blue = Principal::join(&url_a, "blue", 0).await;
    let mut red = Principal::join(&url_a, "red", 0).await;
    red.reconnect(&url_b).await;
    let channel = ChannelId::random();
    let made = blue
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": channel.to_hex(), "members": ["blue", "red"]})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);

    let mut ws_req = format!("ws://{b}/v1/ws?after=0")
        .into_client_request()
        .unwrap();
    ws_req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", red.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_req).await.unwrap();

    let path = format!("/v1/channels/{channel}/messages");
    let mut waits = Vec::new();
    for n in 0..20u8 {
        let env = Envelope {
            channel_id: channel,
            message_id: MessageId::random(),
            sender: blue.handle.clone(),
            recipient: red.handle.clone(),
            seq_hint: u64::from(n) + 1,
            olm_type: OlmType::Normal,
            ciphertext: vec![n; 256],
        };
        let posted_at = Instant::now();
        let post = blue
            .call(
                "POST",
                &path,
                Some(&json!({"envelopes": [EnvelopeJson::from(&env)]})),
            )
            .await;
        assert_eq!(post.status, 201, "{}", post.text);
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("instance B pushed what instance A stored, within 10 s")
            .unwrap()
            .unwrap();
        waits.push(posted_at.elapsed());
        let PushFrame::Delivery(pushed) =
            serde_json::from_str::<PushFrame>(frame.to_text().unwrap()).unwrap();
        assert_eq!(Envelope::try_from(&pushed.envelope).unwrap(), env);
    }
    waits.sort();
    eprintln!(
        "post on A to push on B: median {:?}, worst {:?} (20 posts)",
        waits[waits.len() / 2],
        waits[waits.len() - 1]
    );

    // An ack on B empties the mailbox A reads.
    let ack = red
        .call("POST", "/v1/mailbox/ack", Some(&json!({"through": 20})))
        .await;
    assert!(ack.status < 300, "{}", ack.text);
    let mut red_on_a = red;
    red_on_a.url = url_a;
    let left = red_on_a.call("GET", "/v1/mailbox?after=0", None).await;
    assert_eq!(left.status, 200, "{}", left.text);
    assert_eq!(left.body["deliveries"], json!([]), "{}", left.text);
}
