//! `watch`: stay connected, sync on every push, send receipts and
//! heartbeats, and serve work that other commands hand over.

use std::path::Path;
use std::time::Duration;

use backchannel_client::{now, Client, SyncReport};
use clap::Args;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::render;
use crate::store::{self, perform, Work, WorkResult};

/// How often heartbeats are checked for.
const HEARTBEAT_CHECK: Duration = Duration::from_secs(15);
/// Longest wait between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Stay connected: sync on every push, send receipts and heartbeats.
///
/// Holds the store while it runs; `send`, `sync` and `channel` commands on
/// the same store hand their work to it (so no two processes advance one Olm
/// session). Reconnects by itself and resumes from its cursor. Ctrl-C stops.
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
                println!("{line}");
            }
        }
    } else {
        for e in &report.received {
            println!("{}", render::entry(e));
        }
        for c in &report.activated {
            println!("channel {c} is now active");
        }
        for a in &report.alerts {
            println!(
                "ALERT {}: {} (messages {})",
                a.kind,
                a.detail,
                a.message_ids.join(", ")
            );
        }
    }
}

pub async fn run(store_path: &Path, args: WatchArgs) -> anyhow::Result<()> {
    let _lock = store::lock_for_watch(store_path)?;
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
    let mut beat = tokio::time::interval(HEARTBEAT_CHECK);
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
                eprintln!("cannot connect ({e}); retrying in {} s", backoff.as_secs());
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
                _ = beat.tick() => {
                    let due = c.heartbeats_due(now()).unwrap_or_default();
                    for channel in due {
                        match c.send_heartbeat(channel).await {
                            Ok(_) if !json => println!("heartbeat sent in {}", &channel.to_hex()[..8]),
                            Ok(_) => {}
                            Err(e) => eprintln!("heartbeat in {channel} failed: {e}"),
                        }
                    }
                }
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
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
