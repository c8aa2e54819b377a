//! `exchange create | submit | withdraw | status | list`: escrowed simultaneous
//! exchange, so that neither side has to move first.

use std::path::Path;

use clap::{Args, Subcommand};

use crate::render;
use crate::store::{run_or_preview, DryRun, Work};

/// Escrowed simultaneous exchange: sealed offers released together.
///
/// Each participant seals its offer for each other participant; the relay
/// releases them all at once when all are in, and destroys them if the
/// deadline passes first. Until release nobody learns anything, not even
/// whether the others submitted. Fairness rests on the intermediary;
/// confidentiality and integrity do not.
#[derive(Debug, Args)]
pub struct ExchangeArgs {
    #[command(subcommand)]
    command: ExchangeCommand,
}

#[derive(Debug, Subcommand)]
enum ExchangeCommand {
    /// Open an exchange with other members of a channel.
    ///
    /// Example:
    ///
    ///   backchannel exchange create 3f2a9c1e --with red --terms "Simultaneous gestures of good faith." --deadline +24h
    #[command(verbatim_doc_comment)]
    Create {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// Another participant (repeat).
        #[arg(long = "with", value_name = "HANDLE", required = true)]
        with: Vec<String>,
        /// The terms, in words (their digest binds every offer).
        #[arg(long)]
        terms: String,
        /// After this, unreleased offers are destroyed.
        #[arg(long, value_parser = crate::time::Time, allow_hyphen_values = true)]
        deadline: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// Seal and submit your offer (replaces an earlier one).
    ///
    /// Example:
    ///
    ///   backchannel exchange submit 9a7c0e12 "Blue withdraws two brigades from the border zone."
    #[command(verbatim_doc_comment)]
    Submit {
        /// Exchange id, or a unique prefix of it (6 hex digits or more).
        exchange: String,
        /// Your offer.
        offer: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// Withdraw your offer before release.
    ///
    /// Example:
    ///
    ///   backchannel exchange withdraw 9a7c0e12
    #[command(verbatim_doc_comment)]
    Withdraw {
        /// Exchange id, or a unique prefix of it (6 hex digits or more).
        exchange: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// List the exchanges announced in your channels, as this store last saw them.
    ///
    /// `exchange status ID` asks the relay for an exchange's state now.
    ///
    /// Example:
    ///
    ///   backchannel exchange list --json
    #[command(verbatim_doc_comment)]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an exchange; at release, open and check the offers.
    ///
    /// Example:
    ///
    ///   backchannel exchange status 9a7c0e12 --json
    #[command(verbatim_doc_comment)]
    Status {
        /// Exchange id, or a unique prefix of it (6 hex digits or more).
        exchange: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store_path: &Path, args: ExchangeArgs) -> anyhow::Result<()> {
    let (work, json, dry) = match args.command {
        ExchangeCommand::Create {
            channel,
            with,
            terms,
            deadline,
            json,
            dry,
        } => (
            Work::ExchangeCreate {
                channel,
                with,
                terms,
                deadline_ms: deadline,
            },
            json,
            dry,
        ),
        ExchangeCommand::Submit {
            exchange,
            offer,
            json,
            dry,
        } => (Work::ExchangeSubmit { exchange, offer }, json, dry),
        ExchangeCommand::Withdraw {
            exchange,
            json,
            dry,
        } => (Work::ExchangeWithdraw { exchange }, json, dry),
        ExchangeCommand::Status { exchange, json } => {
            (Work::ExchangeStatus { exchange }, json, DryRun::default())
        }
        ExchangeCommand::List { json } => return list(store_path, json),
    };
    let Some(out) = run_or_preview(store_path, work, dry, json).await? else {
        return Ok(());
    };
    if json {
        return render::json(&out);
    }
    if let Some(id) = out.get("exchange_id").and_then(|v| v.as_str()) {
        outln!("created exchange {id}");
        return Ok(());
    }
    let view: backchannel_client::ExchangeView = serde_json::from_value(out)?;
    let st = &view.status;
    outln!(
        "exchange {}: {} (deadline {}); participants {}; your offer {}",
        st.exchange_id,
        st.state,
        crate::time::show(st.deadline_ms),
        st.participants.join(", "),
        if st.you_submitted {
            "is in"
        } else {
            "is not in"
        }
    );
    for o in &view.offers {
        outln!(
            "  from {}: {}",
            o.from,
            o.offer.as_deref().unwrap_or("[nothing readable]")
        );
    }
    for c in &view.confirmations {
        let alert = if c.matches == Some(false) {
            ": see `backchannel sync` for the alert"
        } else {
            ""
        };
        outln!(
            "  {}{} {}{alert}",
            if c.matches == Some(false) {
                "ALERT "
            } else {
                ""
            },
            c.by,
            c.words()
        );
    }
    for p in &view.problems {
        outln!("  ALERT {p}");
    }
    Ok(())
}

/// `exchange list`.
fn list(store_path: &Path, json: bool) -> anyhow::Result<()> {
    let client = crate::store::open_reader(store_path)?;
    let exchanges = client.exchanges();
    if json {
        return render::json(&exchanges);
    }
    if exchanges.is_empty() {
        outln!("no exchanges announced in your channels (`backchannel sync` fetches new ones)");
    }
    for x in &exchanges {
        out!("{}", render::exchange(x));
    }
    Ok(())
}

/// Export or import event reports as PLOVER-style JSON lines.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Write a channel's event reports as PLOVER records, one JSON per line.
    ///
    /// They are plaintext: --out creates the file readable by you only (0600).
    ///
    /// Example:
    ///
    ///   backchannel events export 3f2a --out reports.jsonl
    #[command(verbatim_doc_comment)]
    Export {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Send each PLOVER record of a JSON-lines file as an event report.
    ///
    /// Needs `actor`, `event` and `date`; `recipient`, `mode`, `time`,
    /// `enddate`, `endtime`, `event_loc` and `event_text` are used when present.
    ///
    /// Example:
    ///
    ///   backchannel events import 3f2a9c1e reports.jsonl
    #[command(verbatim_doc_comment)]
    Import {
        /// Channel id, or a unique prefix of it (6 hex digits or more).
        channel: String,
        /// The JSON-lines file.
        file: std::path::PathBuf,
        #[command(flatten)]
        dry: DryRun,
        /// Print JSON: what each report became (or would be, with --dry-run).
        #[arg(long)]
        json: bool,
    },
}

pub async fn events(store_path: &Path, args: EventsArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match args.command {
        EventsCommand::Export { channel, out } => {
            let client = crate::store::open_reader(store_path)?;
            let id = client.resolve_channel(&channel)?;
            let mut lines = String::new();
            for r in client.event_records(id)? {
                lines.push_str(&serde_json::to_string(&r)?);
                lines.push('\n');
            }
            match out {
                Some(path) => crate::out::write_private(&path, &lines)?,
                None => out!("{lines}"),
            }
        }
        EventsCommand::Import {
            channel,
            file,
            dry,
            json,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            // Every line is checked before anything is sent. Names in the
            // records are members where a member has the handle, else
            // outside actors.
            let ns = {
                let client = crate::store::open_reader(store_path)?;
                client.namespace(client.resolve_channel(&channel)?)?
            };
            let mut bodies = Vec::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("line {}: not JSON", n + 1))?;
                let e = backchannel_protocol::commitments::plover::records::from_record(&v)
                    .map_err(|e| anyhow::anyhow!("line {}: {e}", n + 1))?;
                let mut body = serde_json::to_value(&e)?;
                crate::store::imported_actors(&mut body, &ns);
                bodies.push(body);
            }
            let mut results = Vec::new();
            for body in &bodies {
                let work = Work::Structured {
                    channel: channel.clone(),
                    body: body.clone(),
                };
                // Under --json a dry run prints each preview as it goes.
                results.extend(run_or_preview(store_path, work, dry, json).await?);
            }
            if json {
                if !dry.dry_run {
                    crate::render::json(&results)?;
                }
                return Ok(());
            }
            let done = if dry.dry_run { "would send" } else { "sent" };
            outln!("{done} {} event report(s)", bodies.len());
        }
    }
    Ok(())
}
