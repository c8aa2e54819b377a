//! `transcript export | verify`: deniable transcripts.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use backchannel_client::transcript::{self, TranscriptFile};
use clap::{Args, Subcommand};

use crate::{render, store};

/// Export a channel's transcript, or check one.
///
/// An export is plaintext with digests and head vectors, for the members to
/// compare their histories. It convinces no outsider: nothing in it is
/// signed, and anyone can write a file that passes `verify`. Keep it as
/// safe as the conversation itself.
#[derive(Debug, Args)]
pub struct TranscriptArgs {
    #[command(subcommand)]
    command: TranscriptCommand,
}

#[derive(Debug, Subcommand)]
enum TranscriptCommand {
    /// Write CHANNEL's history as JSON (no ciphertext, no key material).
    ///
    /// It is plaintext: --out creates the file readable by you only (0600).
    ///
    /// Example:
    ///
    ///   backchannel --store blue.store transcript export 3f2a9c1e --out talks.json
    #[command(verbatim_doc_comment)]
    Export {
        /// Channel id, or a unique prefix of it.
        channel: String,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check a transcript's internal consistency (digests, chains, heads).
    ///
    /// Passing says the file does not contradict itself, nothing more.
    /// --against-store also checks every message against your own store.
    ///
    /// Examples:
    ///
    ///   backchannel transcript verify talks.json
    ///   backchannel --store red.store transcript verify talks.json --against-store
    #[command(verbatim_doc_comment)]
    Verify {
        /// The exported file.
        file: PathBuf,
        /// Also compare with your store.
        #[arg(long)]
        against_store: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store_path: &Path, args: TranscriptArgs) -> anyhow::Result<()> {
    match args.command {
        TranscriptCommand::Export { channel, out } => {
            let client = store::open_reader(store_path)?;
            let id = client.resolve_channel(&channel)?;
            let file = client.export_transcript(id)?;
            let text = serde_json::to_string_pretty(&file)?;
            match out {
                Some(path) => {
                    crate::out::write_private(&path, &text)?;
                    eprintln!(
                        "wrote {} messages to {}",
                        file.messages.len(),
                        path.display()
                    );
                }
                None => outln!("{text}"),
            }
        }
        TranscriptCommand::Verify {
            file,
            against_store,
            json,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let parsed: TranscriptFile =
                serde_json::from_str(&text).context("not a transcript file")?;
            let check = transcript::verify(&parsed);
            let store_problems = if against_store {
                Some(store::open_reader(store_path)?.check_transcript_against_store(&parsed)?)
            } else {
                None
            };
            if json {
                render::json(
                    &serde_json::json!({"check": check, "against_store": store_problems}),
                )?;
            } else {
                outln!(
                    "{} messages; {} inconsistencies",
                    check.messages,
                    check.problems.len()
                );
                for p in &check.problems {
                    outln!("  inconsistent: {p}");
                }
                for r in &check.remarks {
                    outln!("  note: {r}");
                }
                if let Some(cmp) = &store_problems {
                    let verdict = if cmp.problems.is_empty() {
                        "every message matches"
                    } else {
                        "MISMATCH"
                    };
                    outln!("against your store: {verdict}");
                    for p in &cmp.problems {
                        outln!("  {p}");
                    }
                    if cmp.omitted > 0 {
                        outln!(
                            "  note: your store holds {} message(s) the file lacks",
                            cmp.omitted
                        );
                    }
                }
                outln!("(internal consistency proves nothing to an outsider: anyone can write a consistent file)");
            }
            let bad = check.problems.len() + store_problems.map_or(0, |c| c.problems.len());
            if bad > 0 {
                return Err(crate::Found(format!("the transcript failed {bad} check(s)")).into());
            }
        }
    }
    Ok(())
}
