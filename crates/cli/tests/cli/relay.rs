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

/// A relay killed with SIGKILL right after it answered 2xx, restarted on the
/// same database, delivers every message it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let mut relay = RelayProcess::spawn(bin(), &db);
    let mut blue = Principal::join(&relay.url, "blue", 1).await;
    let mut red = Principal::join(&relay.url, "red", 1).await;
    let channel = ChannelId::random();
    let a = blue
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": channel.to_hex(), "members": ["blue", "red"]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);

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
