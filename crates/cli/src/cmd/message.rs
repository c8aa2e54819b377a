//! `send`, `sync`, `inbox` and `log`.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use backchannel_client::vault::records::Direction;
use backchannel_client::LogEntry;
use clap::Args;

use crate::store::{run_work, Work};
use crate::{render, store};

/// Send a message in a channel.
///
/// The text is encrypted end to end, once per member; the mediator gets a
/// stub unless every party accepted --mediator-reads. It is committed to your
/// outbox before it is posted, so a crash re-posts the same bytes. If `watch`
/// is running on this store, the work is handed to it.
///
/// Examples:
///
///   backchannel --store blue.store send 3f2a9c1e "We will not strike first."
///   echo "Received." | backchannel --store red.store send 3f2a9c1e - --reply-to 9c1e0d5a
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SendArgs {
    /// Channel id, or a unique prefix of it.
    channel: String,
    /// The text; `-` reads it from standard input.
    text: String,
    /// The message this answers: its id, or a unique prefix of it (6 hex
    /// digits or more, as listings show).
    #[arg(long, value_name = "MESSAGE_ID")]
    reply_to: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dry: crate::store::DryRun,
}

pub async fn send(store_path: &Path, args: SendArgs) -> anyhow::Result<()> {
    let text = if args.text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the message from standard input")?;
        s
    } else {
        args.text
    };
    let work = Work::Send {
        channel: args.channel,
        text,
        reply_to: args.reply_to,
    };
    let Some(out) = crate::store::run_or_preview(store_path, work, args.dry, args.json).await?
    else {
        return Ok(());
    };
    if args.json {
        return render::json(&out);
    }
    outln!("{}", render::delivery(&out));
    Ok(())
}

/// List what waits in your outbox, and why.
///
/// Every message is committed to the outbox before it is posted, so a send
/// that could not reach the relay is queued, never lost: `sync` (or a
/// running `watch`) posts it, the same bytes exactly once. Do not send it
/// again.
///
/// Example:
///
///   backchannel --store blue.store outbox --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct OutboxArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn outbox(store_path: &Path, args: OutboxArgs) -> anyhow::Result<()> {
    let mut client = store::open_reader(store_path)?;
    if client.queued().is_empty() {
        if args.json {
            return render::json(&Vec::<backchannel_client::QueuedPost>::new());
        }
        outln!("the outbox is empty: everything you sent was taken by the relay");
        return Ok(());
    }
    client.probe_relay().await;
    let queued = client.queued();
    if args.json {
        return render::json(&queued);
    }
    for q in &queued {
        outln!(
            "{} {} in channel {}, queued {}, to {}\n    {}",
            q.message_id,
            q.kind,
            &q.channel_id.to_hex()[..8],
            crate::time::show(q.queued_at.0),
            q.recipients
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            q.reason
        );
    }
    Ok(())
}

/// Fetch and verify new messages, then send receipts.
///
/// Reads your mailbox on the relay in order from where you left off,
/// decrypts and verifies each message against its channel (epoch, sequence
/// number, previous digest), stores it, and answers with a receipt where
/// something new arrived. Alerts are printed and kept.
///
/// Example:
///
///   backchannel --store red.store sync
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SyncArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn sync(store_path: &Path, args: SyncArgs) -> anyhow::Result<()> {
    let out = run_work(store_path, Work::Sync).await?;
    if args.json {
        return render::json(&out);
    }
    let report: render::Synced = serde_json::from_value(out).context("reading the sync report")?;
    out!("{}", render::sync(&report));
    Ok(())
}

/// Kinds of message that carry no content a person reads: `log` shows them.
const SET_UP: [&str; 6] = [
    "acceptance",
    "amendment",
    "creation",
    "decline",
    "heartbeat",
    "receipt",
];

/// Show received messages across channels (newest last).
///
/// Every message with content: text, every structured kind (commitments
/// on one line with their kind: `backchannel show ID` prints all their
/// terms), stubs as stubs, and kinds newer than this version. Channel
/// set-up, receipts and heartbeats are in `log`. Shows what has been synced
/// into the store; run `sync` (or keep `watch` running) to fetch new
/// messages first.
///
/// Example:
///
///   backchannel --store red.store inbox --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct InboxArgs {
    /// How many messages.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn inbox(store_path: &Path, args: InboxArgs) -> anyhow::Result<()> {
    let client = store::open_reader(store_path)?;
    let mut received: Vec<LogEntry> = client
        .log(None)?
        .into_iter()
        .filter(|e| e.direction == Direction::In && !SET_UP.contains(&e.kind.as_str()))
        .collect();
    let skip = received.len().saturating_sub(args.limit);
    received.drain(..skip);
    if args.json {
        return render::json(&received);
    }
    if received.is_empty() {
        outln!("no messages (run `backchannel sync` to fetch new ones)");
    }
    for e in &received {
        outln!("channel {}  {}", &e.channel_id[..8], render::entry(e));
    }
    Ok(())
}

/// Show one channel's transcript: every message with its position.
///
/// Includes set-up, receipts and heartbeats, your own messages, and stubs
/// (what you hold of content you may not read).
///
/// Example:
///
///   backchannel --store mediator.store log 3f2a9c1e
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LogArgs {
    /// Channel id, or a unique prefix of it.
    channel: String,
    /// Leave out receipts and heartbeats.
    #[arg(long)]
    quiet: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn log(store_path: &Path, args: LogArgs) -> anyhow::Result<()> {
    let client = store::open_reader(store_path)?;
    let id = client.resolve_channel(&args.channel)?;
    let entries: Vec<LogEntry> = client
        .log(Some(id))?
        .into_iter()
        .filter(|e| !args.quiet || !e.is_bookkeeping())
        .collect();
    if args.json {
        return render::json(&entries);
    }
    for e in &entries {
        outln!("{}", render::entry(e));
    }
    Ok(())
}
