//! The whole path over real HTTP: register, log in, keys, channel, post,
//! idempotent re-post, push, fetch, decrypt both ways, ack.

use std::time::Duration;

use backchannel_protocol::api::{ClaimResponse, Delivery, MailboxResponse, PushFrame};
use backchannel_protocol::payload::{seal, Body, BodyKind, Header, Payload};
use backchannel_protocol::transcript::{Chain, Epoch, HeadVector};
use backchannel_protocol::{ChannelId, Envelope, Handle, MessageId, PeerSession, Timestamp};
use backchannel_testkit::{contains, Principal, TestRelay};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TEXT: &str = "We will not strike first, as long as we are not attacked first.";
const REPLY: &str = "Received through the same channel. The same holds on our side.";

fn text_message(
    channel: ChannelId,
    sender: &Principal,
    members: &[Handle],
    text: &str,
    reply: Option<MessageId>,
) -> (Header, Body) {
    let epoch = Epoch::genesis(channel);
    let chain = Chain::new(epoch);
    let header = Header {
        version: backchannel_protocol::payload::BodyVersion::V2,
        channel_id: channel,
        message_id: MessageId::random(),
        epoch,
        sender: sender.handle.clone(),
        seq: chain.next_seq().unwrap(),
        prev: chain.head().digest,
        sent_at: Timestamp(1_750_000_000_000),
        in_reply_to: reply,
        body_kind: BodyKind::Text,
        heads: HeadVector::empty(&epoch, members),
    };
    (header, Body::Text(text.into()))
}

fn envelope(
    header: &Header,
    to: &Principal,
    session: &mut PeerSession,
    plaintext: &[u8],
) -> Envelope {
    let (olm_type, ciphertext) = session.encrypt(plaintext).unwrap();
    Envelope {
        channel_id: header.channel_id,
        message_id: header.message_id,
        sender: header.sender.clone(),
        recipient: to.handle.clone(),
        seq_hint: header.seq.0,
        olm_type,
        ciphertext,
    }
}

async fn fetch(p: &Principal, after: u64) -> MailboxResponse {
    let a = p
        .call("GET", &format!("/v1/mailbox?after={after}"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    serde_json::from_value(a.body).unwrap()
}

fn text_of(plaintext: &[u8]) -> String {
    match Payload::from_plaintext(plaintext).unwrap() {
        Payload::Full {
            body: Body::Text(t),
            ..
        } => t,
        other => panic!("expected a full text payload, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_and_its_reply_travel_through_the_relay() {
    let relay = TestRelay::start().await;
    let mediator = Principal::join(&relay.url, "mediator", 3).await;
    let mut blue = Principal::join(&relay.url, "blue", 3).await;
    let mut red = Principal::join(&relay.url, "red", 3).await;
    let members = [
        mediator.handle.clone(),
        blue.handle.clone(),
        red.handle.clone(),
    ];

    // Blue claims one of red's one-time keys and opens a session.
    let a = blue
        .call("POST", "/v1/keys/claim", Some(&json!({"handle": "red"})))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let claim: ClaimResponse = serde_json::from_value(a.body).unwrap();
    assert!(!claim.fallback);
    let (red_keys, otk) = claim.decode().unwrap();
    assert_eq!(
        red_keys,
        red.identity.keys(),
        "the relay served red's identity keys"
    );
    let mut blue_to_red = blue.identity.outbound_session(&red_keys, &otk).unwrap();

    // The mediator opens a channel (routing only).
    let channel = ChannelId::random();
    let a = mediator
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": channel.to_hex(), "members": ["mediator", "blue", "red"]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let a = red
        .call("GET", &format!("/v1/channels/{channel}"), None)
        .await;
    assert_eq!(a.body["members"], json!(["blue", "mediator", "red"]));

    // Red listens on the WebSocket before anything is posted.
    let mut ws_req = format!("ws://{}/v1/ws?after=0", relay.addr)
        .into_client_request()
        .unwrap();
    ws_req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", red.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_req).await.unwrap();

    // Blue posts a message to red.
    let (header, body) = text_message(channel, &blue, &members, TEXT, None);
    let sealed = seal(header.clone(), rand_salt(), body).unwrap();
    let env = envelope(&header, &red, &mut blue_to_red, &sealed.full);
    let post = json!({"envelopes": [backchannel_protocol::api::EnvelopeJson::from(&env)]});
    let path = format!("/v1/channels/{channel}/messages");
    let first = blue.call("POST", &path, Some(&post)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = blue.call("POST", &path, Some(&post)).await;
    assert_eq!(
        (again.status, &again.text),
        (first.status, &first.text),
        "a repeated post answers as the first"
    );
    let mut changed = env.clone();
    changed.ciphertext[10] ^= 1;
    let conflict = blue
        .call(
            "POST",
            &path,
            Some(&json!({"envelopes": [backchannel_protocol::api::EnvelopeJson::from(&changed)]})),
        )
        .await;
    assert_eq!(
        (conflict.status, conflict.code()),
        (409, "envelope_conflict")
    );
    assert_eq!(
        relay.row_counts().envelopes,
        1,
        "one envelope stored, not three"
    );

    // The push arrives without any polling.
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("push within 10 s")
        .unwrap()
        .unwrap();
    let PushFrame::Delivery(pushed) =
        serde_json::from_str::<PushFrame>(frame.to_text().unwrap()).unwrap();
    assert_eq!(Envelope::try_from(&pushed.envelope).unwrap(), env);

    // The relay's files hold the ciphertext, never the text.
    let bytes = relay.file_bytes();
    assert!(
        contains(&bytes, &env.ciphertext[..48]),
        "the scan finds what is there"
    );
    assert!(
        !contains(&bytes, TEXT.as_bytes()),
        "plaintext in the relay database"
    );

    // Red fetches, decrypts, and replies on the same session.
    let mailbox = fetch(&red, 0).await;
    assert_eq!(mailbox.deliveries, vec![pushed.clone()]);
    assert!(!mailbox.more);
    let Delivery {
        cursor,
        envelope: got,
        ..
    } = &mailbox.deliveries[0];
    let got = Envelope::try_from(got).unwrap();
    let (mut red_to_blue, plaintext) = red
        .identity
        .inbound_session(&blue.identity.keys(), got.olm_type, &got.ciphertext)
        .unwrap();
    assert_eq!(text_of(&plaintext), TEXT);

    let (rheader, rbody) = text_message(channel, &red, &members, REPLY, Some(header.message_id));
    let rsealed = seal(rheader.clone(), rand_salt(), rbody).unwrap();
    let renv = envelope(&rheader, &blue, &mut red_to_blue, &rsealed.full);
    let a = red
        .call(
            "POST",
            &path,
            Some(&json!({"envelopes": [backchannel_protocol::api::EnvelopeJson::from(&renv)]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let bmail = fetch(&blue, 0).await;
    let benv = Envelope::try_from(&bmail.deliveries[0].envelope).unwrap();
    let reply = blue_to_red
        .decrypt(benv.olm_type, &benv.ciphertext)
        .unwrap();
    assert_eq!(text_of(&reply), REPLY);
    assert_eq!(
        Payload::from_plaintext(&reply)
            .unwrap()
            .header()
            .in_reply_to,
        Some(header.message_id)
    );

    // Red acks: the envelope is deleted, and soon gone from the files too.
    let a = red
        .call("POST", "/v1/mailbox/ack", Some(&json!({"through": cursor})))
        .await;
    assert_eq!((a.status, &a.body), (200, &json!({"deleted": 1})));
    assert!(fetch(&red, 0).await.deliveries.is_empty());
    // PostgreSQL keeps deleted bytes in its files until it reuses the
    // space (SECURITY.md): only SQLite promises they leave the files.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !backchannel_testkit::on_postgres()
        && contains(&relay.file_bytes(), &env.ciphertext[..48])
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acked ciphertext still in the database files"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Posting it again answers as the first time and delivers nothing new.
    let again = blue.call("POST", &path, Some(&post)).await;
    assert_eq!(again.text, first.text);
    assert!(fetch(&red, *cursor).await.deliveries.is_empty());

    red.publish_keys(1).await;
    blue.publish_keys(1).await;
    relay.stop().await;
}

fn rand_salt() -> [u8; 16] {
    rand::random()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_keys_are_claimed_once_then_the_fallback_with_growing_versions() {
    let relay = TestRelay::start().await;
    let blue = Principal::join(&relay.url, "blue", 0).await;
    let red = Principal::join(&relay.url, "red", 2).await;
    let mut keys = Vec::new();
    let mut versions = Vec::new();
    for _ in 0..4 {
        let a = blue
            .call("POST", "/v1/keys/claim", Some(&json!({"handle": "red"})))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let c: ClaimResponse = serde_json::from_value(a.body).unwrap();
        let (owner, key) = c.decode().unwrap();
        key.verify(&owner).unwrap();
        versions.push(c.key_version);
        keys.push((key.key, c.fallback));
    }
    assert_ne!(keys[0].0, keys[1].0);
    assert_eq!(
        [keys[0].1, keys[1].1, keys[2].1, keys[3].1],
        [false, false, true, true]
    );
    assert_eq!(
        keys[2].0, keys[3].0,
        "the fallback key is served until replaced"
    );
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    let a = red.call("GET", "/v1/principals/red", None).await;
    assert_eq!(a.body["key_version"].as_u64(), versions.last().copied());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_in_the_openapi_document_is_routed() {
    let relay = TestRelay::start().await;
    let http = reqwest::Client::new();
    let doc = backchannel_testkit::request(
        &http,
        "GET",
        &format!("{}/v1/openapi.json", relay.url),
        None,
        None,
    )
    .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.0.3");
    let paths = doc.body["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 20);
    for (path, ops) in paths {
        let concrete = path
            .replace("{handle}", "blue")
            .replace("{channel_id}", &"0".repeat(32))
            .replace("{exchange_id}", &"0".repeat(32));
        for method in ops.as_object().unwrap().keys() {
            let a = backchannel_testkit::request(
                &http,
                &method.to_uppercase(),
                &format!("{}{concrete}", relay.url),
                None,
                None,
            )
            .await;
            let code = a.body["error"]["code"].as_str().unwrap_or("");
            assert!(
                !["not_found", "method_not_allowed"].contains(&code),
                "{method} {path}: {}",
                a.text
            );
        }
    }
}
