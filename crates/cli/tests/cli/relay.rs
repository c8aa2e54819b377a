//! `backchannel relay serve` as a child process.

use std::path::Path;

use backchannel_protocol::api::EnvelopeJson;
use backchannel_protocol::{ChannelId, Envelope, Handle, MessageId, OlmType};
use backchannel_testkit::{Principal, RelayProcess};
use serde_json::json;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_backchannel"))
}

#[test]
fn serve_help_has_examples() {
    let out = std::process::Command::new(bin())
        .args(["relay", "serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("Examples:") && help.contains("--listen 127.0.0.1:0"),
        "{help}"
    );
}

#[test]
fn a_bad_database_path_is_a_clear_error() {
    let out = std::process::Command::new(bin())
        .args([
            "relay",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "/nonexistent-dir/relay.db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("opening the relay database /nonexistent-dir/relay.db"),
        "{err}"
    );
}

/// Opens a channel of blue and red, as blue.
async fn open_channel(blue: &Principal) -> ChannelId {
    let channel = ChannelId::random();
    let a = blue
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": channel.to_hex(), "members": ["blue", "red"]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    channel
}

/// A relay killed with SIGKILL right after it answered 2xx, restarted on the
/// same database, delivers every message it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let mut relay = RelayProcess::spawn(bin(), &db);
    let mut blue = Principal::join(&relay.url, "blue", 1).await;
    let mut red = Principal::join(&relay.url, "red", 1).await;
    let channel = open_channel(&blue).await;

    let mut sent = Vec::new();
    for round in 0..5u8 {
        let env = Envelope {
            channel_id: channel,
            message_id: MessageId::random(),
            sender: Handle::new("blue").unwrap(),
            recipient: Handle::new("red").unwrap(),
            seq_hint: u64::from(round) + 1,
            olm_type: OlmType::Normal,
            ciphertext: (0..700)
                .map(|i| (i as u8).wrapping_mul(round + 3))
                .collect(),
        };
        blue.reconnect(&relay.url).await;
        let a = blue
            .call(
                "POST",
                &format!("/v1/channels/{channel}/messages"),
                Some(&json!({"envelopes": [EnvelopeJson::from(&env)]})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        // Killed the instant the 2xx arrived: no shutdown, no flush.
        relay.kill();
        sent.push(env);
        relay = RelayProcess::spawn(bin(), &db);
    }

    red.reconnect(&relay.url).await;
    let a = red.call("GET", "/v1/mailbox?after=0", None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let got: Vec<Envelope> = a.body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            Envelope::try_from(
                &serde_json::from_value::<EnvelopeJson>(d["envelope"].clone()).unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        got, sent,
        "every acknowledged message, in order, after five SIGKILLs"
    );
}

/// SIGTERM (systemd's stop) lets a post in flight finish: the relay stops
/// accepting, reads the rest of the request, stores the envelope, answers
/// 201 and only then exits, with success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_in_flight_at_sigterm_is_stored_and_answered() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let mut relay = RelayProcess::spawn(bin(), &db);
    let blue = Principal::join(&relay.url, "blue", 1).await;
    let mut red = Principal::join(&relay.url, "red", 1).await;
    let channel = open_channel(&blue).await;
    let env = Envelope {
        channel_id: channel,
        message_id: MessageId::random(),
        sender: Handle::new("blue").unwrap(),
        recipient: Handle::new("red").unwrap(),
        seq_hint: 1,
        olm_type: OlmType::Normal,
        ciphertext: vec![0x5a; 4096],
    };
    let body = serde_json::to_vec(&json!({"envelopes": [EnvelopeJson::from(&env)]})).unwrap();
    let addr = relay.url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/channels/{channel}/messages HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        blue.token,
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    socket.write_all(first).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    relay.terminate();
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "the stopping relay still accepts connections");
    assert!(relay.is_running(), "the relay exited with a post in flight");

    socket.write_all(rest).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let status = relay.wait_exit(std::time::Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}"
    );

    let relay = RelayProcess::spawn(bin(), &db);
    red.reconnect(&relay.url).await;
    let a = red.call("GET", "/v1/mailbox?after=0", None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.body["deliveries"].as_array().unwrap().len(),
        1,
        "{}",
        a.text
    );
}
