//! `watch`: stay connected, sync on every push, wake at the member
//! machine's next timeout (receipt deadlines, heartbeats) even when nothing
//! is pushed, and serve work that other commands hand over.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backchannel_client::{Client, SyncReport};
use backchannel_ui::Shared;
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
/// Longest wait for a handed-over request's line.
const REQUEST_WAIT: Duration = Duration::from_secs(10);
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
    /// Run CMD (with `sh -c`) for each new alert, so that it reaches a
    /// person: its kind, channel, id, principal and member are in the
    /// environment as BACKCHANNEL_ALERT_KIND, _CHANNEL, _ID, _PRINCIPAL and
    /// _MEMBER (empty when none); never content. Example:
    /// --on-alert 'notify-send "backchannel: $BACKCHANNEL_ALERT_KIND"'
    #[arg(long, value_name = "CMD")]
    on_alert: Option<String>,
}

/// Where events go: the terminal (text or JSON) and the alert command.
pub(crate) struct Output {
    pub(crate) json: bool,
    pub(crate) on_alert: Option<String>,
}

impl Output {
    fn show(&self, report: &SyncReport) {
        show(report, self.json);
        let Some(cmd) = &self.on_alert else { return };
        for a in &report.alerts {
            let opt = |v: Option<String>| v.unwrap_or_default();
            let spawned = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("BACKCHANNEL_ALERT_KIND", a.kind.code())
                .env(
                    "BACKCHANNEL_ALERT_CHANNEL",
                    opt(a.channel.map(|c| c.to_hex())),
                )
                .env("BACKCHANNEL_ALERT_ID", a.id.to_string())
                .env(
                    "BACKCHANNEL_ALERT_PRINCIPAL",
                    opt(a.principal.as_ref().map(ToString::to_string)),
                )
                .env(
                    "BACKCHANNEL_ALERT_MEMBER",
                    opt(a.member.as_ref().map(ToString::to_string)),
                )
                .env_remove(store::PASSPHRASE_ENV)
                .stdin(std::process::Stdio::null())
                .spawn();
            match spawned {
                // Reaped aside, so a slow command never holds the watch.
                Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
                Err(e) => eprintln!("--on-alert: cannot run {cmd:?}: {e}"),
            }
        }
    }
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
    let client = Client::open(store_path, &store::passphrase(false)?).map_err(store::explain)?;
    let listener = store::listen(store_path)?;
    eprintln!(
        "watching as {} on {}; other commands on this store are handed to this process. Ctrl-C stops.",
        client.me(),
        client.relay_url()
    );
    let out = Output {
        json: args.json,
        on_alert: args.on_alert,
    };
    let result = watch_loop(&Shared::new(client), &listener, &out).await;
    store::unlisten(store_path);
    result
}

/// A sync, shown, and open pages told.
async fn sync(shared: &Shared, out: &Output) {
    let synced = shared.lock().await.sync().await;
    match synced {
        Ok(r) => out.show(&r),
        Err(e) => eprintln!("sync failed: {e}"),
    }
    shared.changed();
}

/// One handed-over request, then open pages told.
async fn serve(
    shared: &Shared,
    conn: std::io::Result<(tokio::net::UnixStream, tokio::net::unix::SocketAddr)>,
) {
    // Served in turn: this process is the store's one writer.
    if let Ok((conn, _)) = conn {
        serve_work(shared, conn).await;
        shared.changed();
    }
}

/// Stays connected until Ctrl-C: syncs on every push, acts on the
/// machine's timeouts, serves handed-over work; `ui` runs it beside the
/// web interface over the same client.
pub(crate) async fn watch_loop(
    shared: &Arc<Shared>,
    listener: &tokio::net::UnixListener,
    out: &Output,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_secs(1);
    // The timeout last acted on: if the same one comes back (a heartbeat
    // that could not be sent), wait a while before trying again.
    let mut last_fired = None;
    let mut changes = shared.subscribe();
    loop {
        sync(shared, out).await;
        let stream = shared.lock().await.push_stream().await;
        let mut stream = match stream {
            Ok(s) => {
                backoff = Duration::from_secs(1);
                s
            }
            Err(e) => {
                eprintln!("cannot connect ({e}); retrying in {} s", backoff.as_secs());
                // Handed-over work is served while waiting: a send is
                // queued at once instead of hanging until the relay is back.
                let wake = tokio::time::sleep(backoff);
                tokio::pin!(wake);
                loop {
                    tokio::select! {
                        _ = &mut wake => break,
                        conn = listener.accept() => serve(shared, conn).await,
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                    }
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        loop {
            let sleep = until_timeout(&*shared.lock().await, last_fired);
            tokio::select! {
                // Work done from a page may have moved the next timeout.
                _ = changes.recv() => {},
                frame = stream.next() => match frame {
                    Some(Ok(_)) => sync(shared, out).await,
                    Some(Err(e)) => { eprintln!("connection lost ({e}); reconnecting"); break; }
                    None => { eprintln!("the relay closed the connection; reconnecting"); break; }
                },
                conn = listener.accept() => serve(shared, conn).await,
                _ = tokio::time::sleep(sleep) => {
                    let fired = {
                        let mut c = shared.lock().await;
                        last_fired = c.next_timeout();
                        c.handle_timeout().await
                    };
                    match fired {
                        Ok(r) => out.show(&r),
                        Err(e) => eprintln!("timeout work failed: {e}"),
                    }
                    shared.changed();
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
/// The request is read before the client is taken, and only for a while:
/// a local process that connects and says nothing holds nothing up.
async fn serve_work(shared: &Shared, conn: tokio::net::UnixStream) {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    let got = tokio::time::timeout(REQUEST_WAIT, reader.read_line(&mut line)).await;
    if !matches!(got, Ok(Ok(_))) {
        return;
    }
    let result = match serde_json::from_str::<Work>(&line) {
        Ok(work) => match perform(&mut *shared.lock().await, work).await {
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
