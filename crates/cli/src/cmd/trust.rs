//! `verify` (alerts) and `trust` (key verification).

use std::path::Path;

use backchannel_protocol::member::{Alert, AlertId};
use clap::{Args, Subcommand};

use crate::store::{run_work, Work};
use crate::{render, store};

/// Show alerts; exit 1 while any is open.
///
/// Lists the alerts of every channel (or of CHANNEL) that are neither
/// dismissed nor cleared, with their time, kind, the message ids involved and
/// what to do. Exit status: 0 when no alert is open, 1 while any is, 2 when
/// nothing could be checked (wrong passphrase, no store...). Read an alert, act
/// on it, then dismiss it with --dismiss ID. `key_changed` and
/// `membership_mismatch` block sending in their channel until then.
///
/// Examples:
///
///   backchannel --store red.store verify
///   backchannel --store red.store verify 3f2a9c1e --json
///   backchannel --store red.store verify --dismiss 4
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// Only this channel (id or unique prefix).
    channel: Option<String>,
    /// Also show dismissed and cleared alerts, and notices.
    #[arg(long)]
    all: bool,
    /// Dismiss the alert with this id (after reading it).
    #[arg(long, value_name = "ID")]
    dismiss: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    alert: Alert,
    code: &'static str,
    notice: bool,
    advice: &'static str,
}

pub async fn verify(store_path: &Path, args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(id) = args.dismiss {
        run_work(store_path, Work::Dismiss { id: AlertId(id) }).await?;
        if !args.json {
            outln!("dismissed alert {id}");
        }
    }
    let client = store::open_reader(store_path)?;
    let channel = args
        .channel
        .as_deref()
        .map(|c| client.resolve_channel(c))
        .transpose()?;
    let shown: Vec<Shown> = client
        .alerts()?
        .into_iter()
        .filter(|a| channel.is_none_or(|c| a.channel.is_none_or(|x| x == c)))
        .filter(|a| args.all || (a.is_open() && !a.kind.is_notice()))
        .map(|alert| Shown {
            code: alert.kind.code(),
            notice: alert.kind.is_notice(),
            advice: backchannel_client::advice(alert.kind),
            alert,
        })
        .collect();
    let open = shown
        .iter()
        .filter(|s| s.alert.is_open() && !s.notice)
        .count();
    if args.json {
        render::json(&shown)?;
    } else {
        for s in &shown {
            let a = &s.alert;
            let state = if a.dismissed {
                " (dismissed)".to_string()
            } else if let Some(c) = &a.cleared {
                format!(" (cleared: {c})")
            } else {
                String::new()
            };
            outln!(
                "#{} {} {}{}{}\n    {}\n    messages: {}\n    what to do: {}",
                a.id,
                crate::time::show(a.raised_at.0),
                if s.notice { "notice " } else { "ALERT " },
                a.kind,
                state,
                a.detail,
                render::ids(&a.message_ids),
                s.advice
            );
        }
        if open == 0 {
            outln!("no open alerts");
        }
    }
    if open > 0 {
        return Err(crate::Found(format!(
            "{open} open alert(s): read them, act, then `backchannel verify --dismiss ID`"
        ))
        .into());
    }
    Ok(())
}

/// Mark keys verified, or accept a changed key.
#[derive(Debug, Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Mark PEER's key verified, after comparing the safety number.
    ///
    /// Compare `backchannel fingerprint PEER` with PEER over a path the
    /// intermediary does not control (in person, or a second intermediary),
    /// then type the number you compared: it must match.
    ///
    /// Example:
    ///
    ///   backchannel --store red.store trust verify mediator --number "12345 67890 ..."
    #[command(verbatim_doc_comment)]
    Verify {
        /// The other principal.
        peer: String,
        /// The 60-digit safety number you compared (spaces allowed).
        #[arg(long)]
        number: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace PEER's pinned key with the one the relay serves now.
    ///
    /// Clears PEER's `key_changed` alerts and unblocks sending. Whoever
    /// controls the relay could be the one presenting the new key: do this
    /// only after PEER confirmed the change over another path, and compare
    /// the new safety number it prints.
    ///
    /// Example:
    ///
    ///   backchannel --store blue.store trust dangerous-accept-new-key red
    #[command(verbatim_doc_comment)]
    DangerousAcceptNewKey {
        /// The other principal.
        peer: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn trust(store_path: &Path, args: TrustArgs) -> anyhow::Result<()> {
    match args.command {
        TrustCommand::Verify { peer, number, json } => {
            let out = run_work(
                store_path,
                Work::TrustVerify {
                    peer: peer.clone(),
                    number,
                },
            )
            .await?;
            if json {
                return render::json(&out);
            }
            outln!("{peer}'s key is marked verified");
        }
        TrustCommand::DangerousAcceptNewKey { peer, json } => {
            let out = run_work(store_path, Work::AcceptNewKey { peer: peer.clone() }).await?;
            if json {
                return render::json(&out);
            }
            outln!(
                "pinned the key the relay now serves for {peer} (unverified).\nCompare this safety number with {peer} before relying on it:\n{}",
                out["safety_number"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
