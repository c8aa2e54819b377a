//! `actors`: who a channel's commitments can name, and the local aliases
//! that join actors across channels for `whatif --all-channels`.

use std::path::Path;

use clap::{Args, Subcommand};

use crate::render;
use crate::store::{self, Work};

/// The actors of your channels: members, outside actors, local aliases.
///
/// In a channel, members and outside actors share one namespace: a plain
/// name is the member with that handle, or an outside actor the channel's
/// commitments already name; `outside:NAME` names a new one (never a
/// member's name). Across channels, an outside actor of one channel may be
/// declared the same as a member of another, for `whatif --all-channels`:
/// in this store only, never sent (the members of one channel must not
/// learn which other channels you are in).
///
/// Examples:
///
///   backchannel actors list
///   backchannel actors list 3f2a9c1e --json
///   backchannel actors same 3f2a9c1e usa
///   backchannel actors forget 3f2a9c1e usa
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ActorsArgs {
    #[command(subcommand)]
    command: ActorsCommand,
}

#[derive(Debug, Subcommand)]
enum ActorsCommand {
    /// List each channel's members and outside actors, and the local aliases.
    List {
        /// Only this channel (id or unique prefix).
        channel: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Declare the outside actor NAME of CHANNEL the same as the member NAME
    /// of another of your channels (this store only; nothing is sent).
    Same {
        /// The channel naming the outside actor.
        channel: String,
        /// The name (a member's handle in another channel).
        name: String,
    },
    /// Forget such a declaration.
    Forget {
        /// The channel.
        channel: String,
        /// The name.
        name: String,
    },
}

pub async fn run(store_path: &Path, args: ActorsArgs) -> anyhow::Result<()> {
    match args.command {
        ActorsCommand::List { channel, json } => list(store_path, channel.as_deref(), json),
        ActorsCommand::Same { channel, name } => {
            store::run_work(
                store_path,
                Work::ActorSame {
                    channel,
                    name: name.clone(),
                },
            )
            .await?;
            outln!("declared: outside:{name} is the member {name} (in this store only; nothing was sent)");
            Ok(())
        }
        ActorsCommand::Forget { channel, name } => {
            let out = store::run_work(
                store_path,
                Work::ActorForget {
                    channel,
                    name: name.clone(),
                },
            )
            .await?;
            if out["forgotten"] == true {
                outln!("forgotten: outside:{name} is its own actor again");
            } else {
                outln!("there was no such declaration for {name}; nothing changed");
            }
            Ok(())
        }
    }
}

fn list(store_path: &Path, channel: Option<&str>, json: bool) -> anyhow::Result<()> {
    let client = store::open_reader(store_path)?;
    let only = channel.map(|c| client.resolve_channel(c)).transpose()?;
    let aliases = client.actor_aliases()?;
    let mut rows = Vec::new();
    for c in client.channels()? {
        let id = backchannel_protocol::ChannelId::from_hex(&c.channel_id)?;
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let ns = client.namespace(id)?;
        let same: Vec<&str> = aliases
            .0
            .iter()
            .filter(|(ch, _)| *ch == id)
            .map(|(_, n)| n.as_str())
            .collect();
        rows.push(serde_json::json!({
            "channel_id": c.channel_id,
            "title": c.title,
            "members": ns.members().collect::<Vec<_>>(),
            "outside": ns.outside().map(|(n, count)| serde_json::json!({"name": n, "named": count})).collect::<Vec<_>>(),
            "same_as_member": same,
        }));
    }
    if json {
        return render::json(&rows);
    }
    for r in &rows {
        let id = r["channel_id"].as_str().unwrap_or_default();
        outln!(
            "channel {} {}",
            &id[..8.min(id.len())],
            r["title"].as_str().unwrap_or_default()
        );
        let list = |v: &serde_json::Value| {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        outln!("  members: {}", list(&r["members"]));
        let outside: Vec<String> = r["outside"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{} (named {} times)",
                    o["name"].as_str().unwrap_or_default(),
                    o["named"]
                )
            })
            .collect();
        outln!(
            "  outside actors: {}",
            if outside.is_empty() {
                "none yet".to_string()
            } else {
                outside.join(", ")
            }
        );
        for n in r["same_as_member"].as_array().into_iter().flatten() {
            outln!(
                "  outside:{} is the member {} of another channel (this store only)",
                n.as_str().unwrap_or_default(),
                n.as_str().unwrap_or_default()
            );
        }
    }
    for c in client.actor_collisions()? {
        outln!("note: {}", c.words());
    }
    Ok(())
}
