//! `actors`: who a channel's commitments can name, and the local aliases
//! that join actors across channels for `whatif --all-channels`.

use std::path::Path;

use backchannel_protocol::ChannelId;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::render;
use crate::store::{self, Work};
use crate::time::show;

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
    /// List each channel's members and outside actors (where each was first
    /// named), the local aliases, and names that may mean one actor in two
    /// channels.
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
            let out = store::run_work(
                store_path,
                Work::ActorSame {
                    channel,
                    name: name.clone(),
                },
            )
            .await?;
            let member_in: Vec<String> = out["member_in"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(|c| c[..8.min(c.len())].to_string()))
                .collect();
            let here = out["channel_id"].as_str().unwrap_or_default();
            let here = &here[..8.min(here.len())];
            outln!(
                "declared: outside:{name} of channel {here} is the member {name} of channel {} (in this store only; nothing was sent)",
                member_in.join(", ")
            );
            if out["named_here"] == false {
                outln!("note: channel {here} names no outside actor {name} yet; the declaration counts once it does");
            }
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
                outln!("forgotten: outside:{name} is its own actor again (in this store only; nothing was sent)");
            } else {
                outln!("there was no such declaration for {name}; nothing changed");
            }
            Ok(())
        }
    }
}

/// One channel's actors, as `actors list` shows them.
#[derive(Serialize)]
struct Listed {
    channel_id: String,
    title: String,
    members: Vec<String>,
    outside: Vec<OutsideListed>,
    /// Outside actors declared (locally) the member of that name elsewhere.
    same_as_member: Vec<String>,
}

#[derive(Serialize)]
struct OutsideListed {
    name: String,
    /// How many typed messages name it.
    named: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_named: Option<FirstNamedListed>,
}

#[derive(Serialize)]
struct FirstNamedListed {
    message_id: String,
    sender: String,
    sent_ms: i64,
}

fn list(store_path: &Path, channel: Option<&str>, json: bool) -> anyhow::Result<()> {
    let client = store::open_reader(store_path)?;
    let only = channel
        .map(|c| client.resolve_channel(c))
        .transpose()
        .map_err(store::explain)?;
    let aliases = client.actor_aliases().map_err(store::explain)?;
    let mut rows = Vec::new();
    for c in client.channels().map_err(store::explain)? {
        let id = ChannelId::from_hex(&c.channel_id)?;
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let ns = client.namespace(id).map_err(store::explain)?;
        let outside = ns
            .outside()
            .map(|(name, named)| OutsideListed {
                name: name.to_string(),
                named,
                first_named: ns.first_named(name).map(|f| FirstNamedListed {
                    message_id: f.message.to_hex(),
                    sender: f.sender.to_string(),
                    sent_ms: f.sent_at.0,
                }),
            })
            .collect();
        rows.push(Listed {
            channel_id: c.channel_id,
            title: c.title,
            members: ns.members().map(str::to_string).collect(),
            outside,
            same_as_member: aliases.of(id).map(str::to_string).collect(),
        });
    }
    if json {
        return render::json(&rows);
    }
    for r in &rows {
        out!("{}", listed(r));
    }
    for note in client.actor_collision_notes().map_err(store::explain)? {
        outln!("note: {note}");
    }
    Ok(())
}

/// A channel's actors in words.
fn listed(r: &Listed) -> String {
    let mut out = format!(
        "channel {} {}\n  members: {}\n",
        &r.channel_id[..8.min(r.channel_id.len())],
        r.title,
        r.members.join(", ")
    );
    if r.outside.is_empty() {
        out.push_str("  outside actors: none named yet\n");
    } else {
        out.push_str("  outside actors:\n");
    }
    for o in &r.outside {
        let times = if o.named == 1 { "once" } else { "times" };
        let count = if o.named == 1 {
            String::new()
        } else {
            format!("{} ", o.named)
        };
        out.push_str(&format!("    {} (named {count}{times}", o.name));
        if let Some(f) = &o.first_named {
            out.push_str(&format!(
                ", first by {} in {} at {}",
                f.sender,
                &f.message_id[..8.min(f.message_id.len())],
                show(f.sent_ms)
            ));
        }
        out.push_str(")\n");
    }
    for n in &r.same_as_member {
        out.push_str(&format!(
            "  outside:{n} is the member {n} of another channel (in this store only)\n"
        ));
    }
    out
}
