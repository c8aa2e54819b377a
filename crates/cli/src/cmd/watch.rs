//! `watch`: stay connected, sync on every push, wake at the member
//! machine's next timeout (receipt deadlines, heartbeats) even when nothing
//! is pushed, and serve work that other commands hand over.

use std::path::Path;
use std::time::Duration;

use backchannel_client::{Client, SyncReport};
use clap::Args;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::render;
use crate::store::{self, perform, Work, WorkResult};

/// Longest sleep when the machine names no timeout (it is asked again
/// after every event anyway).
const IDLE_MAX: Duration = Duration::from_secs(3600);
/// Wait before acting again on a timeout that came back unchanged.
const RETRY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Stay connected: sync on every push, send receipts and heartbeats.
///
/// Holds the store while it runs; `send`, `sync` and `channel` commands on
/// the same store hand their work to it (so no two processes advance one Olm
/// session). Receipt deadlines (`ack_overdue`) and heartbeats fire on time
/// even when the relay pushes nothing. Reconnects by itself and resumes
/// from its cursor. Ctrl-C stops.
///
/// Example:
///
///   backchannel --store red.store watch
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct WatchArgs {
    /// Print one JSON object per event.
    #[arg(long)]
    json: bool,
}

fn show(report: &SyncReport, json: bool) {
    if json {
        if !report.received.is_empty() || !report.alerts.is_empty() {
            if let Ok(line) = serde_json::to_string(report) {
                outln!("{line}");
            }
        }
    } else {
        for e in &report.received {
            outln!("{}", render::entry(e));
        }
        for c in &report.activated {
            outln!("channel {c} is now active");
        }
        for a in &report.alerts {
            outln!("{}", render::alert_line(a));
        }
    }
}

pub async fn run(store_path: &Path, args: WatchArgs) -> anyhow::Result<()> {
    let mut client =
        Client::open(store_path, &store::passphrase(false)?).map_err(store::explain)?;
    let listener = store::listen(store_path)?;
    eprintln!(
        "watching as {} on {}; other commands on this store are handed to this process. Ctrl-C stops.",
        client.me(),
        client.relay_url()
    );
    let result = watch_loop(&mut client, &listener, args.json).await;
    store::unlisten(store_path);
    result
}

async fn watch_loop(
    c: &mut Client,
    listener: &tokio::net::UnixListener,
    json: bool,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_secs(1);
    // The timeout last acted on: if the same one comes back (a heartbeat
    // that could not be sent), wait a while before trying again.
    let mut last_fired = None;
    loop {
        match c.sync().await {
            Ok(r) => show(&r, json),
            Err(e) => eprintln!("sync failed: {e}"),
        }
        let stream = c.push_stream().await;
        let mut stream = match stream {
            Ok(s) => {
                backoff = Duration::from_secs(1);
                s
            }
            Err(e) => {
                eprintln!(
                    "cannot connect ({e}); retrying in {}",
                    crate::time::duration(backoff.as_secs())
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        loop {
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(_)) => {
                        match c.sync().await {
                            Ok(r) => show(&r, json),
                            Err(e) => eprintln!("sync failed: {e}"),
                        }
                    }
                    Some(Err(e)) => { eprintln!("connection lost ({e}); reconnecting"); break; }
                    None => { eprintln!("the relay closed the connection; reconnecting"); break; }
                },
                conn = listener.accept() => {
                    // Served in turn: this process is the store's one writer.
                    if let Ok((conn, _)) = conn {
                        serve_work(c, conn).await;
                    }
                }
                _ = tokio::time::sleep(until_timeout(c, last_fired)) => {
                    last_fired = c.next_timeout();
                    match c.handle_timeout().await {
                        Ok(r) => show(&r, json),
                        Err(e) => eprintln!("timeout work failed: {e}"),
                    }
                }
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

/// How long until the machine's next timeout, on the client's own clock.
fn until_timeout(c: &Client, last_fired: Option<backchannel_protocol::Timestamp>) -> Duration {
    match c.next_timeout() {
        Some(t) if Some(t) == last_fired => RETRY_TIMEOUT,
        Some(t) => Duration::from_millis(t.0.saturating_sub(c.now().0).max(0) as u64).min(IDLE_MAX),
        None => IDLE_MAX,
    }
}

/// One handed-over request: a JSON line in, a JSON line out.
async fn serve_work(c: &mut Client, conn: tokio::net::UnixStream) {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let result = match serde_json::from_str::<Work>(&line) {
        Ok(work) => match perform(c, work).await {
            Ok(v) => WorkResult {
                ok: Some(v),
                error: None,
            },
            Err(e) => WorkResult {
                ok: None,
                error: Some(format!("{e:#}")),
            },
        },
        Err(e) => WorkResult {
            ok: None,
            error: Some(format!("unreadable request: {e}")),
        },
    };
    if let Ok(mut bytes) = serde_json::to_vec(&result) {
        bytes.push(b'\n');
        let _ = write.write_all(&bytes).await;
    }
}
