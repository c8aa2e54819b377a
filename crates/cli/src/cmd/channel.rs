//! `channel create | accept | decline | list`.

use std::path::Path;

use clap::{Args, Subcommand};

use crate::store::{run_or_preview, DryRun, Work};
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
        /// How long members have to receipt a message: 90s, 30m, 24h, 2d.
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
    /// Run `sync` first to receive it.
    ///
    /// Example:
    ///
    ///   backchannel --store blue.store channel accept 3f2a
    #[command(verbatim_doc_comment)]
    Accept {
        /// Channel id, or a unique prefix of it.
        channel: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dry: DryRun,
    },
    /// Propose a new epoch, as the channel's mediator: members join or leave,
    /// or the policy changes.
    ///
    /// The amendment goes end to end to every current member and every
    /// joiner; it takes effect when every party of the new membership
    /// accepts (`channel accept`). Sequence numbers restart in the new
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

/// Seconds from `90`, `90s`, `30m`, `24h` or `2d`.
pub(crate) fn parse_duration(s: &str) -> Result<u32, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u32 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 24h or 2d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use s, m, h or d")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
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
            println!(
                "proposed channel {}",
                out["channel_id"].as_str().unwrap_or("")
            );
            println!("It opens when every party accepts (`backchannel channel accept ID` on their side).");
        }
        ChannelCommand::Accept { channel, json, dry } => {
            let Some(out) = run_or_preview(store_path, Work::Accept { channel }, dry, json).await?
            else {
                return Ok(());
            };
            if json {
                return render::json(&out);
            }
            println!(
                "accepted channel {}",
                out["channel_id"].as_str().unwrap_or("")
            );
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
            println!(
                "proposed {what} of channel {}",
                out["channel_id"].as_str().unwrap_or("")
            );
            println!("It takes effect when every party of the new membership accepts.");
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
            println!(
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
                println!("no channels yet: `backchannel sync` fetches proposals sent to you");
            }
            for c in &channels {
                println!("{}", render::channel(c));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_with_units() {
        assert_eq!(super::parse_duration("90"), Ok(90));
        assert_eq!(super::parse_duration("30m"), Ok(1800));
        assert_eq!(super::parse_duration("2d"), Ok(172_800));
        assert!(super::parse_duration("1w").is_err());
        assert!(super::parse_duration("0s").is_err());
        assert!(super::parse_duration("h").is_err());
    }
}
