//! End to end through the real client library: each message timed from
//! the sender's `send_text` (seal, encrypt, store, post) until the
//! recipient's `sync` returned it decrypted and verified, on the relay on
//! SQLite.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use backchannel_client::Client;
use backchannel_protocol::ChannelId;

use crate::report::percentile;

/// What one end-to-end run measured.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Sending clients (each in a channel of its own with the recipient).
    pub senders: usize,
    /// Seconds timed.
    pub seconds: f64,
    /// Messages the senders' relay acknowledged inside the window, per second.
    pub sent_per_s: f64,
    /// Messages decrypted by the recipient inside the window, per second.
    pub msgs_per_s: f64,
    /// Send to decrypted at the recipient, µs: p50.
    pub p50_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// The sender's own call (until the relay acknowledged), µs: p50.
    pub send_p50_us: u32,
    /// Sends that failed.
    pub errors: usize,
}

/// When each message (sender, number) was handed to `send_text`.
type Started = Arc<Mutex<BTreeMap<(usize, usize), Instant>>>;

/// Starts a relay on SQLite under `work`, one recipient and `senders`
/// clients, lets every sender send closed-loop for `seconds` while the
/// recipient syncs, and times each message the recipient decrypted.
pub async fn measure(
    bin: &Path,
    work: &Path,
    senders: usize,
    seconds: f64,
) -> anyhow::Result<Delivery> {
    if work.exists() {
        std::fs::remove_dir_all(work).with_context(|| format!("clear {}", work.display()))?;
    }
    std::fs::create_dir_all(work).with_context(|| format!("create {}", work.display()))?;
    let relay = crate::systems::spawn_relay(bin, work, &work.join("relay.db"))?;
    let (mut recipient, clients) = crate::crash::cast(work, &relay.url, senders).await?;
    let started: Started = Arc::default();
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(k, (client, channel))| {
            tokio::spawn(send_until(client, channel, k, end, started.clone()))
        })
        .collect();
    let mut waits = Vec::new();
    while Instant::now() < end {
        let report = recipient.sync().await.context("the recipient's sync")?;
        let now = Instant::now();
        let got: Vec<(usize, usize)> = report
            .received
            .iter()
            .filter(|e| e.kind == "text" && !e.stub)
            .filter_map(|e| e.text.as_deref().and_then(numbered))
            .collect();
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let started = started
            .lock()
            .map_err(|_| anyhow::anyhow!("a sender panicked"))?;
        waits.extend(
            got.iter()
                .filter_map(|key| started.get(key))
                .map(|t| micros(now - *t)),
        );
    }
    let mut sends = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (own, failed) = t.await.context("a sender task")?;
        sends.extend(own);
        errors += failed;
    }
    Ok(Delivery {
        senders,
        seconds,
        sent_per_s: sends.len() as f64 / seconds,
        msgs_per_s: waits.len() as f64 / seconds,
        p50_us: percentile(&mut waits, 50.0),
        p99_us: percentile(&mut waits, 99.0),
        send_p50_us: percentile(&mut sends, 50.0),
        errors,
    })
}

/// Sends numbered texts one after another until `end`; answers how long
/// each `send_text` took (µs) and how many failed.
async fn send_until(
    mut client: Client,
    channel: ChannelId,
    k: usize,
    end: Instant,
    started: Started,
) -> (Vec<u32>, usize) {
    let (mut took, mut errors) = (Vec::new(), 0);
    let mut i = 0;
    while Instant::now() < end {
        let t = Instant::now();
        if let Ok(mut s) = started.lock() {
            s.insert((k, i), t);
        }
        match client
            .send_text(channel, &format!("e2e {k} {i}"), None)
            .await
        {
            Ok(_) => took.push(micros(t.elapsed())),
            Err(_) => errors += 1,
        }
        i += 1;
    }
    (took, errors)
}

/// The (sender, number) a text of [`send_until`] names.
fn numbered(text: &str) -> Option<(usize, usize)> {
    let mut words = text.strip_prefix("e2e ")?.split(' ');
    let k = words.next()?.parse().ok()?;
    let i = words.next()?.parse().ok()?;
    Some((k, i))
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_own_texts_are_numbered() {
        assert_eq!(numbered("e2e 3 17"), Some((3, 17)));
        assert_eq!(numbered("e2e 3"), None);
        assert_eq!(numbered("crash 3 17"), None);
    }
}
