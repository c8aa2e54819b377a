//! Bad input gets a JSON error with its stable code and changes nothing in
//! the database (row counts compared before and after each request).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use backchannel_protocol::{b64, Timestamp};
use backchannel_relay::RelayConfig;
use backchannel_testkit::{request, Answer, Principal, TestRelay};
use serde_json::json;

/// Sends a request and checks status, code, and that no row changed.
async fn refused(
    relay: &TestRelay,
    answer: impl std::future::Future<Output = Answer>,
    status: u16,
    code: &str,
) {
    let before = relay.row_counts();
    let a = answer.await;
    assert_eq!((a.status, a.code()), (status, code), "{}", a.text);
    assert!(!a.body["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(
        relay.row_counts(),
        before,
        "a refused request ({code}) changed the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_code_and_change_nothing() {
    let now = Arc::new(AtomicI64::new(1_750_000_000_000));
    let clock_now = now.clone();
    let clock = Arc::new(move || Timestamp(clock_now.load(Ordering::SeqCst)));
    let relay = TestRelay::start_with(RelayConfig::default(), clock).await;
    let url = relay.url.clone();
    let http = reqwest::Client::new();
    let mediator = Principal::join(&url, "mediator", 2).await;
    let blue = Principal::join(&url, "blue", 2).await;
    let red = Principal::join(&url, "red", 2).await;
    let outsider = Principal::join(&url, "outsider", 2).await;
    let channel = "00112233445566778899aabbccddeeff";
    let a = mediator
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": channel, "members": ["mediator", "blue", "red"]})),
        )
        .await;
    assert_eq!(a.status, 201);
    let post_path = format!("/v1/channels/{channel}/messages");
    let envelope = |to: &str, ct: &str| {
        json!({"envelopes": [{"channel_id": channel, "message_id": "0f".repeat(16), "sender": "blue",
                              "recipient": to, "seq_hint": 1, "olm_type": 0, "ciphertext": ct}]})
    };

    // Authentication.
    refused(
        &relay,
        request(&http, "GET", &format!("{url}/v1/mailbox"), None, None),
        401,
        "unauthorized",
    )
    .await;
    refused(
        &relay,
        request(
            &http,
            "GET",
            &format!("{url}/v1/mailbox"),
            Some("not-a-token"),
            None,
        ),
        401,
        "unauthorized",
    )
    .await;

    // A post looks its token up on the same trip as the post itself: an
    // unknown token still stores nothing.
    let unknown_post = envelope("red", "AAAA");
    refused(
        &relay,
        request(
            &http,
            "POST",
            &format!("{url}{post_path}"),
            Some("not-a-token"),
            Some(&unknown_post),
        ),
        401,
        "unauthorized",
    )
    .await;

    // A struct given as the array of its fields is not a JSON object.
    refused(
        &relay,
        blue.call("POST", "/v1/keys", Some(&json!([[], null, false]))),
        400,
        "invalid_json",
    )
    .await;

    // A replayed login challenge, even with a valid signature.
    let c = blue
        .call(
            "POST",
            "/v1/login/challenge",
            Some(&json!({"handle": "blue"})),
        )
        .await;
    let challenge = c.body["challenge"].as_str().unwrap().to_string();
    let sig = b64::encode(
        blue.identity
            .sign_login_challenge(&b64::decode(&challenge, "c").unwrap())
            .unwrap(),
    );
    let login = json!({"handle": "blue", "challenge": challenge, "signature": sig});
    assert_eq!(
        request(
            &http,
            "POST",
            &format!("{url}/v1/login"),
            None,
            Some(&login)
        )
        .await
        .status,
        200
    );
    refused(
        &relay,
        request(
            &http,
            "POST",
            &format!("{url}/v1/login"),
            None,
            Some(&login),
        ),
        401,
        "challenge_invalid",
    )
    .await;

    // A wrong signature consumes the challenge: it cannot be retried.
    let c = red
        .call(
            "POST",
            "/v1/login/challenge",
            Some(&json!({"handle": "red"})),
        )
        .await;
    let challenge = c.body["challenge"].as_str().unwrap().to_string();
    let wrong = b64::encode(
        blue.identity
            .sign_login_challenge(&b64::decode(&challenge, "c").unwrap())
            .unwrap(),
    );
    let a = request(
        &http,
        "POST",
        &format!("{url}/v1/login"),
        None,
        Some(&json!({"handle": "red", "challenge": challenge, "signature": wrong})),
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "login_failed"));

    // Malformed JSON, wrong fields, missing content type, bad base64, bad keys.
    let raw = |body: &'static str, ctype: Option<&'static str>| {
        let mut r = http.post(format!("{url}/v1/principals")).body(body);
        if let Some(t) = ctype {
            r = r.header("content-type", t);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            Answer {
                status,
                body: serde_json::from_str(&text).unwrap_or_default(),
                text,
            }
        }
    };
    refused(
        &relay,
        raw("{\"handle\": ", Some("application/json")),
        400,
        "invalid_json",
    )
    .await;
    refused(
        &relay,
        raw(
            "{\"handle\": \"x\", \"extra\": 1}",
            Some("application/json"),
        ),
        400,
        "invalid_json",
    )
    .await;
    refused(&relay, raw("{}", None), 415, "unsupported_media_type").await;
    let keys = blue.identity.keys();
    let reg = |c: String, e: String| json!({"handle": "newcomer", "curve25519": c, "ed25519": e});
    refused(
        &relay,
        request(
            &http,
            "POST",
            &format!("{url}/v1/principals"),
            None,
            Some(&reg("!!not base64!!".into(), b64::encode(keys.ed25519))),
        ),
        400,
        "invalid_base64",
    )
    .await;
    refused(
        &relay,
        request(
            &http,
            "POST",
            &format!("{url}/v1/principals"),
            None,
            Some(&reg(b64::encode([0u8; 32]), b64::encode(keys.ed25519))),
        ),
        400,
        "bad_key",
    )
    .await;
    refused(
        &relay,
        request(
            &http,
            "POST",
            &format!("{url}/v1/principals"),
            None,
            Some(
                &reg(b64::encode(keys.curve25519), b64::encode(keys.ed25519))
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert("handle".into(), json!("Bad Handle"));
                        serde_json::Value::Object(o)
                    })
                    .unwrap(),
            ),
        ),
        400,
        "invalid_field",
    )
    .await;
    // An empty invitation code is malformed even where registration is open.
    refused(&relay, request(&http, "POST", &format!("{url}/v1/principals"), None, Some(&json!({"handle": "fresh", "invite": "", "curve25519": b64::encode(keys.curve25519), "ed25519": b64::encode(keys.ed25519)}))), 400, "invalid_field").await;
    refused(&relay, request(&http, "POST", &format!("{url}/v1/principals"), None, Some(&json!({"handle": "fresh", "invite": "x".repeat(257), "curve25519": b64::encode(keys.curve25519), "ed25519": b64::encode(keys.ed25519)}))), 400, "invalid_field").await;
    refused(&relay, request(&http, "POST", &format!("{url}/v1/principals"), None, Some(&json!({"handle": "blue", "curve25519": b64::encode(keys.curve25519), "ed25519": b64::encode(keys.ed25519)}))), 409, "handle_taken").await;

    // Oversized body.
    let huge = "A".repeat(backchannel_relay::RelayConfig::default().body_max_bytes + 1024);
    refused(
        &relay,
        blue.call("POST", &post_path, Some(&envelope("red", &huge))),
        413,
        "payload_too_large",
    )
    .await;

    // Channels and membership.
    refused(
        &relay,
        blue.call(
            "POST",
            &format!("/v1/channels/{}/messages", "ab".repeat(16)),
            Some(&envelope("red", "AAAA")),
        ),
        404,
        "unknown_channel",
    )
    .await;
    refused(
        &relay,
        blue.call(
            "POST",
            "/v1/channels/not-hex/messages",
            Some(&envelope("red", "AAAA")),
        ),
        400,
        "invalid_field",
    )
    .await;
    refused(
        &relay,
        outsider.call("POST", &post_path, Some(&envelope("red", "AAAA"))),
        403,
        "not_a_member",
    )
    .await;
    refused(
        &relay,
        blue.call("POST", &post_path, Some(&envelope("outsider", "AAAA"))),
        403,
        "not_a_member",
    )
    .await;
    refused(
        &relay,
        blue.call("POST", &post_path, Some(&envelope("red", "AAAA="))),
        400,
        "invalid_base64",
    )
    .await;
    refused(
        &relay,
        red.call("POST", &post_path, Some(&envelope("mediator", "AAAA"))),
        400,
        "invalid_field",
    )
    .await;
    refused(
        &relay,
        outsider.call("GET", &format!("/v1/channels/{channel}"), None),
        403,
        "not_a_member",
    )
    .await;
    refused(
        &relay,
        blue.call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": channel, "members": ["blue", "red"]})),
        ),
        409,
        "channel_exists",
    )
    .await;
    refused(
        &relay,
        blue.call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": "cd".repeat(16), "members": ["blue", "ghost"]})),
        ),
        404,
        "unknown_principal",
    )
    .await;
    refused(
        &relay,
        blue.call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": "cd".repeat(16), "members": ["red", "mediator"]})),
        ),
        400,
        "invalid_field",
    )
    .await;

    // Keys.
    refused(
        &relay,
        blue.call("POST", "/v1/keys/claim", Some(&json!({"handle": "ghost"}))),
        404,
        "unknown_principal",
    )
    .await;
    let forged = json!({"one_time_keys": [{"key": b64::encode(red.identity.keys().curve25519), "signature": b64::encode([1u8; 64])}]});
    refused(
        &relay,
        blue.call("POST", "/v1/keys", Some(&forged)),
        400,
        "bad_signature",
    )
    .await;
    let _bare = Principal::join(&url, "bare", 0).await;
    refused(
        &relay,
        blue.call("POST", "/v1/keys/claim", Some(&json!({"handle": "bare"}))),
        404,
        "no_keys",
    )
    .await;

    // Mailbox.
    refused(
        &relay,
        blue.call("GET", "/v1/mailbox?after=-1", None),
        400,
        "bad_request",
    )
    .await;
    refused(
        &relay,
        blue.call("GET", "/v1/mailbox?limit=100000", None),
        400,
        "limit_exceeded",
    )
    .await;
    refused(
        &relay,
        blue.call(
            "POST",
            "/v1/mailbox/ack",
            Some(&json!({"through": 1_000_000})),
        ),
        400,
        "ack_beyond_mailbox",
    )
    .await;
    refused(&relay, blue.call("GET", "/v1/ws", None), 400, "bad_request").await;

    // Routes and methods.
    refused(
        &relay,
        blue.call("GET", "/v1/nothing-here", None),
        404,
        "not_found",
    )
    .await;
    refused(&relay, blue.call("GET", "/", None), 404, "not_found").await;
    refused(
        &relay,
        blue.call("DELETE", "/v1/mailbox", None),
        405,
        "method_not_allowed",
    )
    .await;

    // An expired token, on the relay's own clock.
    now.fetch_add(RelayConfig::default().token_ttl_ms + 1, Ordering::SeqCst);
    refused(
        &relay,
        blue.call("GET", "/v1/mailbox", None),
        401,
        "token_expired",
    )
    .await;
    refused(
        &relay,
        blue.call("POST", &post_path, Some(&envelope("red", "AAAA"))),
        401,
        "token_expired",
    )
    .await;
    // And an expired challenge.
    now.fetch_sub(RelayConfig::default().token_ttl_ms + 1, Ordering::SeqCst);
    let c = red
        .call(
            "POST",
            "/v1/login/challenge",
            Some(&json!({"handle": "red"})),
        )
        .await;
    let challenge = c.body["challenge"].as_str().unwrap().to_string();
    let sig = b64::encode(
        red.identity
            .sign_login_challenge(&b64::decode(&challenge, "c").unwrap())
            .unwrap(),
    );
    now.fetch_add(
        RelayConfig::default().challenge_ttl_ms + 1,
        Ordering::SeqCst,
    );
    let a = request(
        &http,
        "POST",
        &format!("{url}/v1/login"),
        None,
        Some(&json!({"handle": "red", "challenge": challenge, "signature": sig})),
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "challenge_invalid"));
}
