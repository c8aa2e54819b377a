//! Two relay instances on one PostgreSQL database: how long a message
//! posted to one takes to reach a WebSocket watcher on the other (the
//! database's notification is the only path between them).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use backchannel_protocol::ChannelId;
use backchannel_testkit::postgres::PgCluster;
use backchannel_testkit::Principal;
use futures_util::StreamExt as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::load::{RelaySender, Sender};

/// Posts `messages` 1 KiB messages one at a time to instance A and times
/// each until instance B pushed it to the recipient: microseconds, in
/// order.
pub async fn handoff(
    bin: &Path,
    work: &Path,
    cluster: &PgCluster,
    messages: usize,
) -> anyhow::Result<Vec<u32>> {
    let db = cluster.database();
    let mut relays = Vec::new();
    for name in ["instance-a", "instance-b"] {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        relays.push(crate::systems::spawn_relay(bin, &dir, Path::new(&db))?);
    }
    let (a, b) = (&relays[0], &relays[1]);
    let sender = Principal::join(&a.url, "sender", 0).await;
    let mut sink = Principal::join(&a.url, "sink", 0).await;
    sink.reconnect(&b.url).await;
    let channel = ChannelId::random();
    let made = sender
        .call(
            "POST",
            "/v1/channels",
            Some(
                &serde_json::json!({"channel_id": channel.to_hex(), "members": ["sender", "sink"]}),
            ),
        )
        .await;
    if made.status != 201 {
        bail!(
            "instance A refused the channel: {} {}",
            made.status,
            made.text
        );
    }
    let ws_url = format!("{}/v1/ws?after=0", b.url.replacen("http://", "ws://", 1));
    let mut request = ws_url
        .into_client_request()
        .context("the WebSocket address")?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", sink.token)
            .parse()
            .context("the token header")?,
    );
    let (mut watcher, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("connect the watcher to instance B")?;
    let mut poster = Sender::Relay(RelaySender {
        http: sender.http.clone(),
        post_url: format!("{}/v1/channels/{}/messages", a.url, channel.to_hex()),
        token: sender.token.clone(),
        sender: "sender".into(),
        recipient: "sink".into(),
        channel,
        ciphertext: crate::load::ciphertext(1024),
        seq: 0,
    });
    let mut waits = Vec::with_capacity(messages);
    for n in 0..messages {
        let posted = Instant::now();
        poster.send().await.context("post to instance A")?;
        match tokio::time::timeout(Duration::from_secs(10), watcher.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(other) => bail!("instance B's WebSocket ended after {n} messages: {other:?}"),
            Err(_) => {
                bail!("message {n} posted to instance A was not pushed by instance B within 10 s")
            }
        }
        waits.push(u32::try_from(posted.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    Ok(waits)
}
