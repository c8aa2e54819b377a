//! The relay exposed as on the internet, attacked as an attacker would: each
//! test runs a real `relay serve` process and fails on a relay without the
//! limit it checks.

use std::path::Path;
use std::time::{Duration, Instant};

use backchannel_protocol::api::EnvelopeJson;
use backchannel_protocol::{ChannelId, Envelope, Handle, MessageId, OlmType};
use backchannel_relay::server::LoopbackCa;
use backchannel_testkit::{request, Principal, RelayProcess};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{bin, User};

fn addr(relay: &RelayProcess) -> String {
    relay
        .url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string()
}

/// Sends raw bytes and reads the answer until the relay closes or `wait`.
async fn raw(relay: &RelayProcess, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr(relay)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the relay closes `s` within `within` (reads end or fail).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn healthy(url: &str) -> bool {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    matches!(http.get(format!("{url}/v1/health")).send().await, Ok(r) if r.status() == 200)
}

async fn channel_of(blue: &Principal, red: &Principal) -> String {
    let id = ChannelId::random().to_hex();
    let members = json!([blue.handle.as_str(), red.handle.as_str()]);
    let a = blue
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": id, "members": members})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    id
}

fn envelope(channel: &str, from: &Handle, to: &Handle, size: usize) -> serde_json::Value {
    let e = Envelope {
        channel_id: ChannelId::from_hex(channel).unwrap(),
        message_id: MessageId::random(),
        sender: from.clone(),
        recipient: to.clone(),
        seq_hint: 1,
        olm_type: OlmType::Normal,
        ciphertext: vec![7; size],
    };
    json!({"envelopes": [EnvelopeJson::from(&e)]})
}

/// One registered principal used to crash the relay with fragmented
/// WebSocket messages it buffered (64 MiB each). Now a client frame over
/// 1 KiB closes the socket, and the relay, under a memory cap, serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_websocket_messages_close_the_socket_under_a_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn_limited(bin(), &dir.path().join("relay.db"), &[], "-v 2000000");
    let p = Principal::join(&relay.url, "mallory", 0).await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr(&relay)).await.unwrap();
        let upgrade = format!(
            "GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {}\r\n\r\n",
            p.token
        );
        s.write_all(upgrade.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101", "the upgrade was refused");
        sockets.push(s);
    }
    // Each socket sends non-final binary fragments of 64 KiB, masked, and
    // never the last one: 4 MiB each if the relay kept reading.
    let chunk = vec![0x41u8; 65_536];
    let mut frame = vec![0x02, 0x80 | 127];
    frame.extend_from_slice(&(chunk.len() as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(&chunk);
    let mut continuation = frame.clone();
    continuation[0] = 0x00;
    let mut closed = 0;
    for s in &mut sockets {
        let mut sent = s.write_all(&frame).await.is_ok();
        for _ in 0..63 {
            if !sent {
                break;
            }
            sent = s.write_all(&continuation).await.is_ok();
        }
        if !sent || closed_within(s, Duration::from_secs(5)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 20,
        "every oversized WebSocket message must close its socket"
    );
    assert!(healthy(&relay.url).await, "the relay must survive");
}

/// Without a login, slow clients that never finish their headers used to
/// hold every descriptor. Now they are cut at the header timeout, the
/// per-address limit keeps room, and an honest client gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_at_a_low_descriptor_limit_leaves_room_for_honest_clients() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn_limited(
        bin(),
        &dir.path().join("relay.db"),
        &[
            "--max-connections",
            "60",
            "--max-connections-per-ip",
            "10",
            "--header-read-timeout-ms",
            "1500",
        ],
        "-n 100",
    );
    let mut slow = Vec::new();
    for _ in 0..80 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(mut s) = socket.connect(addr(&relay).parse().unwrap()).await else {
            continue;
        };
        let _ = s
            .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
        slow.push(s);
    }
    let started = Instant::now();
    assert!(
        healthy(&relay.url).await,
        "an honest client must get through"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The held connections are cut once their head is late.
    let mut cut = 0;
    for s in &mut slow {
        if closed_within(s, Duration::from_secs(4)).await {
            cut += 1;
        }
    }
    assert_eq!(cut, slow.len(), "every slow connection must be closed");
}

/// Anyone could drain a victim's one-time keys without limit. Now claims
/// are rate-limited per claimer, and past the target's limit the relay
/// serves the fallback key, so others still reach the victim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_drain_is_limited_and_the_victim_stays_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn_with(
        bin(),
        &dir.path().join("relay.db"),
        &[
            "--one-time-claims-per-target",
            "5/h",
            "--claims-per-principal",
            "12/h",
        ],
    );
    let victim = Principal::join(&relay.url, "victim", 40).await;
    let drainer = Principal::join(&relay.url, "drainer", 0).await;
    async fn claim(p: &Principal) -> backchannel_testkit::Answer {
        p.call("POST", "/v1/keys/claim", Some(&json!({"handle": "victim"})))
            .await
    }
    let mut kinds = Vec::new();
    for _ in 0..12 {
        let a = claim(&drainer).await;
        assert_eq!(a.status, 200, "{}", a.text);
        kinds.push(a.body["fallback"].as_bool().unwrap());
    }
    assert_eq!(kinds.iter().filter(|f| !**f).count(), 5, "{kinds:?}");
    let refused = claim(&drainer).await;
    assert_eq!(
        (refused.status, refused.code()),
        (429, "rate_limited"),
        "{}",
        refused.text
    );
    assert!(refused.body["error"]["retry_after"].as_u64().unwrap() > 0);
    let honest = Principal::join(&relay.url, "honest", 0).await;
    let a = claim(&honest).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["fallback"], json!(true));
    // The victim learns its stock and that its fallback key went out.
    let m = victim.call("GET", "/v1/mailbox", None).await;
    assert_eq!(
        m.body["key_stock"],
        json!({"one_time_keys": 35, "has_fallback_key": true, "fallback_claimed": true})
    );
}

/// A full disk answered 500 to everyone. Now, below the reserve, posts get
/// `507 storage_full` while login, fetch and ack work, and no acknowledged
/// message is lost: here with a database capped in size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_posts_and_keeps_login_fetch_and_ack() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn_with(
        bin(),
        &dir.path().join("relay.db"),
        &[
            "--db-max-bytes",
            "3000000",
            "--disk-reserve-bytes",
            "600000",
        ],
    );
    fill_then_drain(&relay).await;
}

/// The same on a small file system (a tmpfs of 8 MiB), where this machine
/// lets the test mount one; elsewhere it says it is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_file_system_refuses_posts_and_keeps_login_fetch_and_ack() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: this machine does not let the test mount a tmpfs (the size-capped database test covers the reserve)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());
    {
        let relay = RelayProcess::spawn_with(
            bin(),
            &dir.path().join("relay.db"),
            &["--disk-reserve-bytes", "3000000"],
        );
        fill_then_drain(&relay).await;
    }
}

/// Posts 60 KB envelopes until the relay answers 507, then checks that the
/// recipient can log in, fetch every accepted one and acknowledge them.
async fn fill_then_drain(relay: &RelayProcess) {
    let blue = Principal::join(&relay.url, "blue", 0).await;
    let red = Principal::join(&relay.url, "red", 0).await;
    let channel = channel_of(&blue, &red).await;
    let mut accepted = 0;
    let full = loop {
        let a = blue
            .call(
                "POST",
                &format!("/v1/channels/{channel}/messages"),
                Some(&envelope(&channel, &blue.handle, &red.handle, 60_000)),
            )
            .await;
        match a.status {
            201 => accepted += 1,
            _ => break a,
        }
        assert!(accepted < 400, "the reserve was never reached");
    };
    assert_eq!(
        (full.status, full.code()),
        (507, "storage_full"),
        "{}",
        full.text
    );
    assert!(accepted > 10, "{accepted}");
    let health = request(
        &red.http,
        "GET",
        &format!("{}/v1/health", relay.url),
        None,
        None,
    )
    .await;
    assert_eq!(health.body["storage"], json!("full"));
    let mut red = red;
    red.reconnect(&relay.url.clone()).await;
    let mut fetched = 0;
    let mut after = 0;
    loop {
        let page = red
            .call("GET", &format!("/v1/mailbox?after={after}&limit=100"), None)
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let n = page.body["deliveries"].as_array().unwrap().len();
        fetched += n;
        after = page.body["next_cursor"].as_u64().unwrap();
        if n == 0 || !page.body["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(fetched, accepted, "every acknowledged post is delivered");
    let ack = red
        .call("POST", "/v1/mailbox/ack", Some(&json!({"through": after})))
        .await;
    assert_eq!(ack.status, 200, "{}", ack.text);
    assert_eq!(ack.body["deleted"].as_u64().unwrap() as usize, accepted);
}

/// The whole client over https and wss with a private CA; a certificate
/// from another CA, or another than the pinned one, is refused in words.
#[test]
fn tls_end_to_end_with_a_private_ca_and_a_pin() {
    let dir = tempfile::tempdir().unwrap();
    let ca = LoopbackCa::create(dir.path()).unwrap();
    let relay = RelayProcess::spawn_with(
        bin(),
        &dir.path().join("relay.db"),
        &[
            "--tls-cert",
            ca.cert.to_str().unwrap(),
            "--tls-key",
            ca.key.to_str().unwrap(),
        ],
    );
    assert!(relay.url.starts_with("https://"), "{}", relay.url);
    let fingerprint = relay
        .fingerprint
        .clone()
        .expect("the relay prints its certificate's sha256");
    let user = |name: &str, trust: &[&str]| {
        User {
            store: dir.path().join(format!("{name}.store")),
        }
        .try_run(
            &[
                &["init", "--relay", &relay.url, "--handle", name][..],
                trust,
            ]
            .concat(),
        )
    };
    let ca_file = ca.ca.to_str().unwrap();
    assert!(user("mediator", &["--ca-file", ca_file]).status.success());
    assert!(user("blue", &["--pin-sha256", &fingerprint])
        .status
        .success());
    assert!(user("red", &["--ca-file", ca_file]).status.success());
    let other = tempfile::tempdir().unwrap();
    let stranger = LoopbackCa::create(other.path()).unwrap();
    for (name, flags) in [
        ("nobody", vec![]),
        ("wrongca", vec!["--ca-file", stranger.ca.to_str().unwrap()]),
        ("wrongpin", vec!["--pin-sha256", &"ab".repeat(32)]),
    ] {
        let out = user(name, &flags);
        assert!(!out.status.success(), "{name} must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("failed the TLS check"), "{name}: {err}");
    }
    let scene = crate::Scene::of(relay, dir);
    let id = scene.open_channel();
    // `watch` holds red's store and takes the message from the wss push.
    let mut watch = scene
        .red
        .command(&["watch", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    scene.blue.run(&["send", &id[..8], "over TLS"]);
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("over TLS") {
                let _ = tx.send(line);
            }
        }
    });
    let pushed = rx.recv_timeout(Duration::from_secs(20));
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(pushed.is_ok(), "watch saw nothing arrive over wss");
    let inbox = crate::inbox(&scene.red)
        .iter()
        .any(|(_, t)| t == "over TLS");
    assert!(inbox, "red received the message over https");
}

/// Plain HTTP on every interface used to be served without a word.
#[test]
fn plain_http_off_loopback_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["relay", "serve", "--listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("relay.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve plain HTTP") && err.contains("--tls-cert"),
        "{err}"
    );
}

/// Open registration let anyone in. Off loopback the default is invite,
/// and here on loopback it is asked for: a code admits one registration.
#[test]
fn invitations_admit_one_registration_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = RelayProcess::spawn_with(bin(), &db, &["--registration", "invite"]);
    let user = |name: &str| User {
        store: dir.path().join(format!("{name}.store")),
    };
    let out = user("blue").try_run(&["init", "--relay", &relay.url, "--handle", "blue"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invitation"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes = std::process::Command::new(bin())
        .args(["relay", "invite", "--count", "1", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(codes.status.success());
    let code = String::from_utf8(codes.stdout).unwrap().trim().to_string();
    assert_eq!(code.len(), 32, "{code}");
    user("blue").run(&[
        "init", "--relay", &relay.url, "--handle", "blue", "--invite", &code,
    ]);
    let again = user("red").try_run(&[
        "init", "--relay", &relay.url, "--handle", "red", "--invite", &code,
    ]);
    assert!(!again.status.success(), "a code is used once");
}

/// hyper's own answers (a head too large, a malformed request) had empty
/// bodies; a long URI and a flood of challenges went unanswered in JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn_with(
        bin(),
        &dir.path().join("relay.db"),
        &["--challenges-per-ip", "5/min"],
    );
    let big = format!(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let answer = raw(&relay, big.as_bytes(), Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(
        answer.contains("\"code\":\"headers_too_large\""),
        "{answer}"
    );
    let answer = raw(&relay, b"NOT HTTP AT ALL\r\n\r\n", Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
    let long = format!(
        "GET /v1/health?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "q".repeat(6000)
    );
    let answer = raw(&relay, long.as_bytes(), Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(answer.contains("\"code\":\"uri_too_long\""), "{answer}");
    let p = Principal::join(&relay.url, "blue", 0).await;
    let mut last = None;
    for _ in 0..8 {
        last = Some(
            p.call(
                "POST",
                "/v1/login/challenge",
                Some(&json!({"handle": "blue"})),
            )
            .await,
        );
    }
    let last = last.unwrap();
    assert_eq!(
        (last.status, last.code()),
        (429, "rate_limited"),
        "{}",
        last.text
    );
    assert!(last.body["error"]["retry_after"].as_u64().is_some());
}

/// A WebSocket kept pushing after its token expired. Now it is closed with
/// code 4001 when the token expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_is_closed_when_its_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn_with(
        bin(),
        &dir.path().join("relay.db"),
        &["--token-ttl-ms", "1500"],
    );
    let p = Principal::join(&relay.url, "blue", 0).await;
    let mut ws = push_socket(&relay, &p).await;
    let started = Instant::now();
    let (close, deliveries) = until_closed(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(close, Some(4001));
    assert_eq!(deliveries, 0);
    assert!(started.elapsed() >= Duration::from_millis(1000));
}

type PushSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// `p`'s push WebSocket on a plain-HTTP relay.
async fn push_socket(relay: &RelayProcess, p: &Principal) -> PushSocket {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{}/v1/ws", relay.url.replacen("http", "ws", 1)),
    )
    .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", p.token).parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Reads until the relay closes the socket: its close code and how many
/// deliveries came first. Panics if it stays open `within`.
async fn until_closed(ws: &mut PushSocket, within: Duration) -> (Option<u16>, usize) {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut deliveries = 0;
    tokio::time::timeout(within, async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(frame)) => return (frame.map(|f| u16::from(f.code)), deliveries),
                Ok(Message::Text(_)) => deliveries += 1,
                _ => {}
            }
        }
        (None, deliveries)
    })
    .await
    .expect("the relay must close the socket")
}

/// A released principal's lost device kept its open WebSocket and was
/// pushed what others sent to the handle's next registration. The relay
/// now closes it (4003) before pushing anything more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_principals_websocket_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = RelayProcess::spawn(bin(), &db);
    let lost = Principal::join(&relay.url, "blue", 0).await;
    let red = Principal::join(&relay.url, "red", 0).await;
    let mut ws = push_socket(&relay, &lost).await;
    let out = std::process::Command::new(bin())
        .args(["relay", "release", "--handle", "blue", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blue = Principal::join(&relay.url, "blue", 0).await;
    let channel = channel_of(&red, &blue).await;
    let a = red
        .call(
            "POST",
            &format!("/v1/channels/{channel}/messages"),
            Some(&envelope(&channel, &red.handle, &blue.handle, 100)),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let (close, deliveries) = until_closed(&mut ws, Duration::from_secs(5)).await;
    assert_eq!((close, deliveries), (Some(4003), 0));
}

/// One member's junk filled another's mailbox for every sender. Now each
/// sender has a share of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sender_cannot_fill_a_mailbox_for_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn_with(
        bin(),
        &dir.path().join("relay.db"),
        &[
            "--mailbox-max-envelopes",
            "40",
            "--sender-share-percent",
            "25",
        ],
    );
    let junk = Principal::join(&relay.url, "junk", 0).await;
    let victim = Principal::join(&relay.url, "victim", 0).await;
    let friend = Principal::join(&relay.url, "friend", 0).await;
    let to_victim = channel_of(&junk, &victim).await;
    let mut sent = 0;
    let refused = loop {
        let a = junk
            .call(
                "POST",
                &format!("/v1/channels/{to_victim}/messages"),
                Some(&envelope(&to_victim, &junk.handle, &victim.handle, 100)),
            )
            .await;
        if a.status != 201 {
            break a;
        }
        sent += 1;
    };
    assert_eq!(sent, 10);
    assert_eq!(
        (refused.status, refused.code()),
        (507, "quota_exceeded"),
        "{}",
        refused.text
    );
    let from_friend = channel_of(&friend, &victim).await;
    let a = friend
        .call(
            "POST",
            &format!("/v1/channels/{from_friend}/messages"),
            Some(&envelope(&from_friend, &friend.handle, &victim.handle, 100)),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
}

/// 32 honest senders within the default limits never see a 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_honest_senders_are_never_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn(bin(), &dir.path().join("relay.db"));
    let sink = Principal::join(&relay.url, "sink", 0).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let url = relay.url.clone();
        let sink = sink.handle.clone();
        tasks.push(tokio::spawn(async move {
            let p = Principal::join(&url, &format!("sender-{i}"), 0).await;
            let id = ChannelId::random().to_hex();
            let a = p
                .call(
                    "POST",
                    "/v1/channels",
                    Some(&json!({"channel_id": id, "members": [p.handle.as_str(), sink.as_str()]})),
                )
                .await;
            assert_eq!(a.status, 201, "{}", a.text);
            let mut statuses = Vec::new();
            for _ in 0..25 {
                let a = p
                    .call(
                        "POST",
                        &format!("/v1/channels/{id}/messages"),
                        Some(&envelope(&id, &p.handle, &sink, 1024)),
                    )
                    .await;
                statuses.push(a.status);
            }
            statuses
        }));
    }
    for t in tasks {
        let statuses = t.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    }
}

/// Settings come from the file, variables and flags (flags win); the
/// metrics listener counts what was refused and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_from_file_variables_and_flags_and_the_metrics_that_count_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::process::Command::new(bin())
        .args(["relay", "config-example"])
        .output()
        .unwrap();
    assert!(example.status.success());
    let text = String::from_utf8(example.stdout).unwrap();
    assert!(text.contains("members_per_channel = 64"), "{text}");
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        text.replace("members_per_channel = 64", "members_per_channel = 2")
            .replace(
                "exchange_deadline_max_ms = 2592000000",
                "exchange_deadline_max_ms = 60000",
            )
            .replace("offer_max_bytes = 1048576", "offer_max_bytes = 1"),
    )
    .unwrap();
    let mut command = std::process::Command::new(bin());
    command
        .env("BACKCHANNEL_RELAY_CHANNELS_PER_PRINCIPAL", "2/h")
        .env("BACKCHANNEL_RELAY_OFFER_MAX_BYTES", "5");
    let relay = {
        // The variable and the file name the same setting; the flag wins.
        let mut c = command;
        let out = c
            .args([
                "relay",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--db")
            .arg(dir.path().join("relay.db"))
            .arg("--config")
            .arg(&config)
            .args(["--offer-max-bytes", "8"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        out
    };
    let mut child = relay;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let listening = lines.next().unwrap().unwrap();
    let metrics = lines.next().unwrap().unwrap();
    let url = listening
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let metrics_url = metrics
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let blue = Principal::join(&url, "blue", 0).await;
    let red = Principal::join(&url, "red", 0).await;
    let _green = Principal::join(&url, "green", 0).await;
    let three = blue
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": ChannelId::random().to_hex(), "members": ["blue", "red", "green"]})),
        )
        .await;
    assert_eq!(
        (three.status, three.code()),
        (400, "limit_exceeded"),
        "{}",
        three.text
    );
    let channel = channel_of(&blue, &red).await;
    let again = blue
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": ChannelId::random().to_hex(), "members": ["blue", "red"]})),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (429, "rate_limited"),
        "from the variable: {}",
        again.text
    );
    let now = backchannel_client::now().0;
    let exchange = |deadline: i64| {
        json!({"exchange_id": "ab".repeat(16), "channel_id": channel, "participants": ["blue", "red"],
               "terms_digest": "00".repeat(32), "deadline_ms": deadline})
    };
    let far = blue
        .call("POST", "/v1/exchanges", Some(&exchange(now + 3_600_000)))
        .await;
    assert_eq!(
        (far.status, far.code()),
        (400, "limit_exceeded"),
        "{}",
        far.text
    );
    let near = blue
        .call("POST", "/v1/exchanges", Some(&exchange(now + 30_000)))
        .await;
    assert_eq!(near.status, 201, "{}", near.text);
    let offer = |bytes: usize| {
        json!({"copies": [{"participant": "red", "olm_type": 1,
               "ciphertext": backchannel_protocol::b64::encode(vec![1u8; bytes])}]})
    };
    let path = format!("/v1/exchanges/{}/offer", "ab".repeat(16));
    let big = blue.call("PUT", &path, Some(&offer(9))).await;
    assert_eq!(
        (big.status, big.code()),
        (400, "limit_exceeded"),
        "the flag's 8 bytes: {}",
        big.text
    );
    let small = blue.call("PUT", &path, Some(&offer(8))).await;
    assert_eq!(small.status, 200, "{}", small.text);
    let text = reqwest::get(metrics_url.as_str())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("backchannel_rejected_total{limit=\"rate_limited\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "backchannel_requests_total{method=\"POST\",route=\"/v1/channels\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("backchannel_connections "), "{text}");
    let commits: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("backchannel_store_commits_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no commit count: {text}"));
    let writes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("backchannel_store_writes_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no write count: {text}"));
    // Three registrations, a channel, an exchange and an offer at least,
    // each in a commit of its own or sharing one.
    assert!(writes >= 6, "{text}");
    assert!((1..=writes).contains(&commits), "{text}");
    assert!(text.contains("backchannel_store_writes_queued "), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A renewed certificate is taken on SIGHUP without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate() {
    use backchannel_client::transport::RelayClient;
    use backchannel_client::RelayTrust;
    let dir = tempfile::tempdir().unwrap();
    let ca = LoopbackCa::create(dir.path()).unwrap();
    let relay = RelayProcess::spawn_with(
        bin(),
        &dir.path().join("relay.db"),
        &[
            "--tls-cert",
            ca.cert.to_str().unwrap(),
            "--tls-key",
            ca.key.to_str().unwrap(),
        ],
    );
    let pinned = |hex: &str| RelayTrust {
        ca_pem: None,
        pin: Some(backchannel_protocol::Digest::from_hex(hex).unwrap()),
    };
    let old = relay.fingerprint.clone().unwrap();
    let handle = Handle::new("blue").unwrap();
    let probe = |trust: RelayTrust| {
        let url = relay.url.clone();
        let handle = handle.clone();
        async move {
            RelayClient::with_trust(&url, &trust)
                .unwrap()
                .principal(&handle)
                .await
        }
    };
    // Unauthenticated, so `unauthorized`: what matters is that TLS held.
    let before = probe(pinned(&old)).await.unwrap_err();
    assert!(before.api_code().is_some(), "{before}");
    let renewed = tempfile::tempdir().unwrap();
    let next = LoopbackCa::create(renewed.path()).unwrap();
    std::fs::copy(&next.cert, &ca.cert).unwrap();
    std::fs::copy(&next.key, &ca.key).unwrap();
    let new = backchannel_relay::TlsFiles::load(&ca.cert, &ca.key)
        .unwrap()
        .fingerprint()
        .to_hex();
    assert_ne!(new, old);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &relay.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let reloaded = crate::wait_for(Duration::from_secs(5), || {
        let rt = tokio::runtime::Handle::current();
        let trust = pinned(&new);
        let url = relay.url.clone();
        let h = handle.clone();
        std::thread::scope(|s| {
            s.spawn(|| {
                rt.block_on(async move {
                    RelayClient::with_trust(&url, &trust)
                        .unwrap()
                        .principal(&h)
                        .await
                })
            })
            .join()
            .unwrap()
        })
        .is_err_and(|e| e.api_code().is_some())
    });
    assert!(reloaded, "the new certificate must be served after SIGHUP");
    let stale = probe(pinned(&old)).await.unwrap_err();
    assert!(
        stale.to_string().contains("failed the TLS check"),
        "{stale}"
    );
}

/// The `relay serve` arguments of a deploy file: the systemd unit's
/// `ExecStart=` (continuation lines joined) or the Containerfile's JSON
/// `ENTRYPOINT`, after `relay serve`.
fn deployed_arguments(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let words: Vec<String> = if let Some(start) = text.find("ExecStart=") {
        let mut line = String::new();
        for l in text[start + "ExecStart=".len()..].lines() {
            line.push_str(l.trim_end_matches('\\'));
            if !l.ends_with('\\') {
                break;
            }
        }
        line.split_whitespace().map(str::to_string).collect()
    } else {
        let start = text.find("ENTRYPOINT").expect("an ENTRYPOINT");
        let list = &text[start + "ENTRYPOINT".len()..];
        let list = list[..=list.find(']').unwrap()].replace("\\\n", "");
        serde_json::from_str(&list).unwrap()
    };
    let serve = words.iter().position(|w| w == "serve").unwrap();
    words[serve + 1..].to_vec()
}

/// The systemd unit and the container start a relay as written (every flag
/// exists, TLS from the files they name, the example config accepted), here
/// with their paths moved into a temporary directory and their listeners
/// onto loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_files_start_a_tls_relay() {
    use backchannel_client::transport::RelayClient;
    use backchannel_client::RelayTrust;
    for file in [
        "../../deploy/backchannel-relay.service",
        "../../deploy/Containerfile",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ca = LoopbackCa::create(dir.path()).unwrap();
        let config = dir.path().join("relay.toml");
        std::fs::write(&config, backchannel_relay::RelayConfig::example()).unwrap();
        let args = deployed_arguments(file);
        assert!(
            !args.iter().any(|a| a == "--insecure-plain-http"),
            "{file} must serve TLS only"
        );
        let mut kept = Vec::new();
        let mut words = args.iter();
        while let Some(flag) = words.next() {
            let value = words
                .next()
                .unwrap_or_else(|| panic!("{file}: {flag} without a value"));
            let value = match flag.as_str() {
                // The test's own database and listener (RelayProcess).
                "--db" | "--listen" => continue,
                "--tls-cert" | "--tls-key" => {
                    // Read in place: a copy made at start (systemd's
                    // LoadCredential=) would hide a renewal from SIGHUP.
                    assert!(value.starts_with('/'), "{file}: {flag} {value}");
                    let ours = if flag == "--tls-cert" {
                        &ca.cert
                    } else {
                        &ca.key
                    };
                    ours.to_str().unwrap().to_string()
                }
                "--config" => config.to_str().unwrap().to_string(),
                "--metrics-listen" => "127.0.0.1:0".to_string(),
                _ => value.clone(),
            };
            kept.push(flag.clone());
            kept.push(value);
        }
        let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
        assert!(kept.contains(&"--tls-cert"), "{file}: {kept:?}");
        let relay = RelayProcess::spawn_with(bin(), &dir.path().join("relay.db"), &kept);
        assert!(relay.url.starts_with("https://"), "{file}: {}", relay.url);
        let trust = RelayTrust {
            ca_pem: Some(ca.ca_pem.clone().into_bytes()),
            pin: None,
        };
        let answer = RelayClient::with_trust(&relay.url, &trust)
            .unwrap()
            .principal(&Handle::new("blue").unwrap())
            .await
            .unwrap_err();
        assert!(
            answer.api_code().is_some(),
            "{file}: TLS must hold: {answer}"
        );
    }
}
