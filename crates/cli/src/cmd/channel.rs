//! `channel create | accept | decline | list`.

use std::path::Path;

use std::io::IsTerminal as _;

use anyhow::{bail, Context as _};
use backchannel_client::{ClientError, ConsentStatement};
use clap::{Args, Subcommand};

use crate::store::{run_or_preview, DryRun, Work};
use crate::time::parse_duration;
use crate::{render, store};

/// Open, accept, decline and list channels.
#[derive(Debug, Args)]
pub struct ChannelArgs {
    #[command(subcommand)]
    command: ChannelCommand,
}

#[derive(Debug, Subcommand)]
enum ChannelCommand {
    /// Propose a channel, as its mediator.
    ///
    /// Sends the creation proposal (members, their keys as you know them,
    /// policy) end to end to every member. It takes effect when every party
    /// accepts. Without --mediator-reads you receive stubs (digests) of
    /// content, enough to check nothing was dropped, never the words.
    ///
    /// Example:
    ///
    ///   backchannel --store mediator.store channel create --title "Gulf talks" --party blue --party red
    #[command(verbatim_doc_comment)]
    Create {
        /// A title the members see.
        #[arg(long)]
        title: String,
        /// A party (repeat for each).
        #[arg(long = "party", value_name = "HANDLE", required = true)]
        parties: Vec<String>,
        /// An observer admitted with the parties' consent (repeat for each).
        #[arg(long = "observer", value_name = "HANDLE")]
        observers: Vec<String>,
        /// Let the mediator read content (every party must accept this).
        #[arg(long)]
        mediator_reads: bool,
        /// How long members have to receipt a message: 90s, 30m, 24h, 2d, "1 hour 30 minutes".
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        receipt_deadline: u32,
        /// How often each member proves the channel alive: 90s, 30m, 1h.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        heartbeat: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// Accept a channel's proposal: its creation, or a pending amendment.
    ///
    /// Shows what you are asked to accept (title, members and their keys,
    /// the policy before and after, whether the mediator will read) and
    /// asks you to confirm. From a script, read it first with `channel show`
    /// and pass `--yes DIGEST`: only the proposal with that digest is
    /// accepted, never another one that arrived meanwhile. Run `sync` first
    /// to receive the proposal.
    ///
    /// Examples:
    ///
    ///   backchannel --store blue.store channel accept 3f2a9c
    ///   backchannel --store blue.store channel accept 3f2a9c --yes 8d41c07e2b9a
    #[command(verbatim_doc_comment)]
    Accept {
        /// Channel id, or a unique prefix of it.
        channel: String,
        /// Accept without asking, if the proposal's digest starts with
        /// DIGEST (at least the 12 hex digits `channel show` prints).
        #[arg(long, value_name = "DIGEST")]
        yes: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// Show a channel: members and their keys, the policy, what awaits
    /// your consent, and every epoch with who accepted what.
    ///
    /// Example:
    ///
    ///   backchannel --store blue.store channel show 3f2a9c --json
    #[command(verbatim_doc_comment)]
    Show {
        /// Channel id, or a unique prefix of it.
        channel: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Propose a new epoch: members join or leave, or the policy changes.
    ///
    /// The mediator proposes any change; a party may propose to change the
    /// policy (e.g. withdraw --mediator-reads) or to remove members, where
    /// every member's client reads body version 3. The amendment goes end
    /// to end to every current member and every joiner; it takes effect
    /// when every party of the new membership accepts (`channel accept`;
    /// a party's own proposal counts as its acceptance). Sequence numbers restart in the new
    /// epoch; receipts are then due only from its members.
    ///
    /// `--rekey` proposes a new epoch with the same members and policy, on
    /// new sessions: the way back for a member whose store was restored
    /// from an older copy (its `stale_store` alert says so).
    ///
    /// Examples:
    ///
    ///   backchannel --store mediator.store channel amend 3f2a9c1e --add-party green --remove observer1 --mediator-reads yes
    ///   backchannel --store mediator.store channel amend 3f2a9c1e --rekey
    #[command(verbatim_doc_comment)]
    Amend {
        /// Channel id, or a unique prefix of it.
        channel: String,
        /// A party to add (repeat for each).
        #[arg(long = "add-party", value_name = "HANDLE")]
        add: Vec<String>,
        /// An observer to add (repeat for each).
        #[arg(long = "add-observer", value_name = "HANDLE")]
        observers: Vec<String>,
        /// A member to remove (repeat for each).
        #[arg(long = "remove", value_name = "HANDLE")]
        remove: Vec<String>,
        /// Change whether the mediator reads content.
        #[arg(long, value_name = "yes|no", value_parser = parse_yes_no)]
        mediator_reads: Option<bool>,
        /// Change the receipt deadline: 90s, 30m, 24h, 2d.
        #[arg(long, value_parser = parse_duration)]
        receipt_deadline: Option<u32>,
        /// Change the heartbeat interval.
        #[arg(long, value_parser = parse_duration)]
        heartbeat: Option<u32>,
        /// A new epoch with the same members and policy (no other change).
        #[arg(long, conflicts_with_all = ["add", "observers", "remove", "mediator_reads", "receipt_deadline", "heartbeat"])]
        rekey: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// Leave a channel, as a party: withdraw your consent to it.
    ///
    /// Takes effect as soon as the others receive it, with no answer
    /// awaited: a new epoch opens without you, and nothing sent from then
    /// on is encrypted to you. It cannot be undone (the mediator can only
    /// invite you again, by an amendment you would have to accept). Asks
    /// for confirmation on a terminal; --yes for scripts.
    ///
    /// Example:
    ///
    ///   backchannel --store blue.store channel leave 3f2a9c --yes
    #[command(verbatim_doc_comment)]
    Leave {
        /// Channel id, or a unique prefix of it.
        channel: String,
        /// Leave without asking.
        #[arg(long)]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// Decline a channel's creation proposal; it then never opens.
    ///
    /// Example:
    ///
    ///   backchannel --store red.store channel decline 3f2a9c1e --reason "not through this intermediary"
    #[command(verbatim_doc_comment)]
    Decline {
        /// Channel id, or a unique prefix of it.
        channel: String,
        /// Why (every member sees it).
        #[arg(long, default_value = "")]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// List your channels with their members, answers and key trust.
    ///
    /// Example:
    ///
    ///   backchannel --store blue.store channel list --json
    #[command(verbatim_doc_comment)]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `yes` or `no`.
fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("{s:?}: say yes or no")),
    }
}

pub async fn run(store_path: &Path, args: ChannelArgs) -> anyhow::Result<()> {
    match args.command {
        ChannelCommand::Create {
            title,
            parties,
            observers,
            mediator_reads,
            receipt_deadline,
            heartbeat,
            json,
            dry,
        } => {
            let Some(out) = run_or_preview(
                store_path,
                Work::Create {
                    title,
                    parties,
                    observers,
                    mediator_reads,
                    receipt_deadline_s: receipt_deadline,
                    heartbeat_interval_s: heartbeat,
                },
                dry,
                json,
            )
            .await?
            else {
                return Ok(());
            };
            if json {
                return render::json(&out);
            }
            outln!(
                "proposed channel {}",
                out["channel_id"].as_str().unwrap_or("")
            );
            outln!("It opens when every party accepts (`backchannel channel accept ID` on their side).");
        }
        ChannelCommand::Accept {
            channel,
            yes,
            json,
            dry,
        } => accept(store_path, channel, yes, json, dry).await?,
        ChannelCommand::Leave {
            channel,
            yes,
            json,
            dry,
        } => {
            if !yes && !dry.dry_run {
                if !std::io::stdin().is_terminal() {
                    bail!("nothing was sent: leaving cannot be undone; confirm on a terminal, or pass --yes");
                }
                if !confirm(&format!("Leave channel {channel}? You will receive nothing sent in it from then on. Type yes to leave: "))? {
                    bail!("nothing was sent");
                }
            }
            let Some(out) = run_or_preview(store_path, Work::Leave { channel }, dry, json).await?
            else {
                return Ok(());
            };
            if json {
                return render::json(&out);
            }
            outln!(
                "left channel {}: a new epoch opens without you as the others receive it",
                out["channel_id"].as_str().unwrap_or("")
            );
        }
        ChannelCommand::Show { channel, json } => {
            let client = store::open_reader(store_path)?;
            let id = client.resolve_channel(&channel).map_err(store::explain)?;
            let shown = Shown {
                channel: client
                    .channels()?
                    .into_iter()
                    .find(|c| c.channel_id == id.to_hex()),
                pending: client.consent(id)?,
                history: client.proposals(id)?,
            };
            if json {
                return render::json(&shown);
            }
            out!("{}", render::channel_show(&shown));
        }
        ChannelCommand::Amend {
            channel,
            add,
            observers,
            remove,
            mediator_reads,
            receipt_deadline,
            heartbeat,
            rekey,
            json,
            dry,
        } => {
            let unchanged = add.is_empty()
                && observers.is_empty()
                && remove.is_empty()
                && mediator_reads.is_none()
                && receipt_deadline.is_none()
                && heartbeat.is_none();
            if unchanged && !rekey {
                anyhow::bail!("nothing to change: name a change (--add-party, --remove, --mediator-reads, ...), or pass --rekey for a new epoch with the same members and policy");
            }
            let Some(out) = run_or_preview(
                store_path,
                Work::Amend {
                    channel,
                    add,
                    observers,
                    remove,
                    mediator_reads,
                    receipt_deadline_s: receipt_deadline,
                    heartbeat_interval_s: heartbeat,
                },
                dry,
                json,
            )
            .await?
            else {
                return Ok(());
            };
            if json {
                return render::json(&out);
            }
            let what = if rekey { "a rekey" } else { "an amendment" };
            outln!(
                "proposed {what} of channel {}",
                out["channel_id"].as_str().unwrap_or("")
            );
            outln!("It takes effect when every party of the new membership accepts.");
        }
        ChannelCommand::Decline {
            channel,
            reason,
            json,
            dry,
        } => {
            let Some(out) =
                run_or_preview(store_path, Work::Decline { channel, reason }, dry, json).await?
            else {
                return Ok(());
            };
            if json {
                return render::json(&out);
            }
            outln!(
                "declined channel {}",
                out["channel_id"].as_str().unwrap_or("")
            );
        }
        ChannelCommand::List { json } => {
            let client = store::open_reader(store_path)?;
            let channels = client.channels()?;
            if json {
                return render::json(&channels);
            }
            if channels.is_empty() {
                outln!("no channels yet: `backchannel sync` fetches proposals sent to you");
            }
            for c in &channels {
                outln!("{}", render::channel(c));
                let id = client.resolve_channel(&c.channel_id)?;
                if let Some(p) = client.consent(id)?.filter(|p| p.awaits_you) {
                    outln!("  awaiting your consent:");
                    out!("{}", render::consent(&p));
                    outln!(
                        "  Answer with `backchannel channel accept {}` or `channel decline`.\n",
                        &c.channel_id[..8]
                    );
                }
            }
        }
    }
    Ok(())
}

/// `channel show`: the channel, what awaits consent, its epoch history.
#[derive(Debug, serde::Serialize)]
pub struct Shown {
    /// The channel as this member knows it.
    pub channel: Option<backchannel_client::ChannelView>,
    /// The proposal awaiting answers, if any.
    pub pending: Option<ConsentStatement>,
    /// Every proposal held, oldest first.
    pub history: Vec<ConsentStatement>,
}

/// `channel accept`: the statement, then consent (asked on a terminal, or
/// given by `--yes DIGEST`), then exactly that proposal accepted.
async fn accept(
    store_path: &Path,
    channel: String,
    yes: Option<String>,
    json: bool,
    dry: DryRun,
) -> anyhow::Result<()> {
    let statement = {
        let client = store::open_reader(store_path)?;
        let id = client.resolve_channel(&channel).map_err(store::explain)?;
        client
            .consent(id)?
            .ok_or_else(|| store::explain(ClientError::NothingToAccept(id.to_hex())))?
    };
    let digest = match yes {
        _ if dry.dry_run => statement.digest,
        Some(prefix) if statement.is_named_by(&prefix) => statement.digest,
        Some(prefix) => {
            print_statement(&statement, json);
            bail!(
                "nothing was accepted: {prefix:?} does not name the proposal awaiting your answer ({}). Read it above, then pass --yes {}",
                statement.short_digest(),
                statement.short_digest()
            );
        }
        None => {
            print_statement(&statement, json);
            if !std::io::stdin().is_terminal() {
                bail!(
                    "nothing was accepted: confirm on a terminal, or after reading the proposal above pass --yes {}",
                    statement.short_digest()
                );
            }
            if !confirm(&format!(
                "Accept proposal {}? Type yes to accept: ",
                statement.short_digest()
            ))? {
                bail!("nothing was accepted");
            }
            statement.digest
        }
    };
    if dry.dry_run {
        print_statement(&statement, json);
    }
    let work = Work::Accept {
        channel: statement.channel_id.to_hex(),
        proposal: digest,
    };
    let Some(out) = run_or_preview(store_path, work, dry, json).await? else {
        return Ok(());
    };
    if json {
        return render::json(&out);
    }
    outln!(
        "accepted proposal {} of channel {}",
        statement.short_digest(),
        &statement.channel_id.to_hex()[..8]
    );
    Ok(())
}

/// The statement, on standard output (standard error under `--json`, so the
/// JSON stays one document).
fn print_statement(s: &ConsentStatement, json: bool) {
    let text = render::consent(s);
    if json {
        eprint!("{text}");
    } else {
        out!("{text}");
    }
}

/// Asks on the terminal; true only for "yes".
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading your answer")?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}
