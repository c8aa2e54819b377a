//! The load generator: K closed-loop senders, each sending one message
//! and waiting for its durable acknowledgement before the next, the same
//! for every system under test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use backchannel_protocol::{b64, ChannelId, MessageId};

/// One sender's connection to the system under test.
pub enum Sender {
    /// A principal posting 1-recipient messages over the relay's HTTP API
    /// (`201` means stored and fsynced).
    Relay(RelaySender),
    /// A JetStream publisher awaiting each publish acknowledgement.
    Nats(NatsSender),
}

/// A relay principal with its token and its channel to the sink.
pub struct RelaySender {
    /// Its HTTP client (one connection, kept alive).
    pub http: reqwest::Client,
    /// The post URL of its channel.
    pub post_url: String,
    /// Its bearer token.
    pub token: String,
    /// Its handle.
    pub sender: String,
    /// The handle every sender posts to.
    pub recipient: String,
    /// The channel it posts in.
    pub channel: ChannelId,
    /// The ciphertext, base64 (random bytes: the relay cannot tell).
    pub ciphertext: String,
    /// Its next sequence hint.
    pub seq: u64,
}

/// A JetStream publisher on a connection of its own.
pub struct NatsSender {
    /// The JetStream context of its connection.
    pub js: async_nats::jetstream::Context,
    /// Its subject (`bench.K`), captured by the benchmark stream.
    pub subject: String,
    /// The payload.
    pub payload: bytes::Bytes,
}

impl Sender {
    /// Sends one message and waits for its durable acknowledgement.
    pub async fn send(&mut self) -> anyhow::Result<()> {
        match self {
            Sender::Relay(r) => r.send().await,
            Sender::Nats(n) => n.send().await,
        }
    }
}

impl RelaySender {
    async fn send(&mut self) -> anyhow::Result<()> {
        self.seq += 1;
        let body = serde_json::json!({"envelopes": [{
            "channel_id": self.channel.to_hex(),
            "message_id": MessageId::random().to_hex(),
            "sender": self.sender,
            "recipient": self.recipient,
            "seq_hint": self.seq,
            "olm_type": 1,
            "ciphertext": self.ciphertext,
        }]});
        let answer = self
            .http
            .post(&self.post_url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .context("post")?;
        let status = answer.status();
        // Read the body so the connection is reused.
        let text = answer.text().await.unwrap_or_default();
        if status.as_u16() != 201 {
            bail!("post answered {status}: {text}");
        }
        Ok(())
    }
}

impl NatsSender {
    async fn send(&mut self) -> anyhow::Result<()> {
        let ack = self
            .js
            .publish(self.subject.clone(), self.payload.clone())
            .await
            .context("publish")?;
        ack.await.context("publish acknowledgement")?;
        Ok(())
    }
}

/// Random bytes of `size`, base64, for the relay's ciphertext field.
pub fn ciphertext(size: usize) -> String {
    let bytes: Vec<u8> = (0..size).map(|_| rand_byte()).collect();
    b64::encode(bytes)
}

fn rand_byte() -> u8 {
    MessageId::random().0[0]
}

/// What one timed run measured.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Acknowledgement latencies of the messages sent and acknowledged
    /// inside the timed window, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Failed sends inside the window.
    pub errors: u64,
    /// The first error, in words.
    pub first_error: Option<String>,
}

/// The clock of a run: the window in which messages are counted.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Counting starts (after the warm-up).
    pub start: Instant,
    /// Counting stops.
    pub end: Instant,
}

/// Starts every sender on its own task; each sends until `window.end`
/// and counts what it sent and had acknowledged within the window.
pub fn start(senders: Vec<Sender>, window: Window) -> Vec<tokio::task::JoinHandle<Sample>> {
    let stop = Arc::new(AtomicBool::new(false));
    senders
        .into_iter()
        .map(|mut s| {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut sample = Sample::default();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    if sent >= window.end {
                        break;
                    }
                    let result = s.send().await;
                    let done = Instant::now();
                    let inside = sent >= window.start && done <= window.end;
                    match result {
                        Ok(()) if inside => {
                            let us = done.duration_since(sent).as_micros();
                            sample
                                .latencies_us
                                .push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        Ok(()) => {}
                        Err(e) => {
                            if inside {
                                sample.errors += 1;
                            }
                            sample.first_error.get_or_insert_with(|| format!("{e:#}"));
                            // A refused send is not retried at full speed.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                sample
            })
        })
        .collect()
}

/// Waits for every sender and merges what they measured.
pub async fn finish(tasks: Vec<tokio::task::JoinHandle<Sample>>) -> anyhow::Result<Sample> {
    let mut all = Sample::default();
    for t in tasks {
        let s = t.await.context("a sender task failed")?;
        all.latencies_us.extend(s.latencies_us);
        all.errors += s.errors;
        if all.first_error.is_none() {
            all.first_error = s.first_error;
        }
    }
    Ok(all)
}
