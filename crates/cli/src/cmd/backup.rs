//! `backup` and `restore`.

use std::path::{Path, PathBuf};

use backchannel_client::Client;
use clap::Args;

use crate::{render, store};

/// Write a sealed copy of your store to FILE.
///
/// The copy is consistent even while `watch` runs, readable by you only
/// (0600), and sealed as the store is: it opens with the store's passphrase
/// and nothing else. Keep it somewhere safe; `restore` brings it back.
///
/// Example:
///
///   backchannel --store blue.store backup /media/usb/blue-2026-12-03.backup
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist).
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn backup(store_path: &Path, args: BackupArgs) -> anyhow::Result<()> {
    let client = store::open_reader(store_path)?;
    client.backup(&args.file).map_err(store::explain)?;
    if args.json {
        return render::json(&serde_json::json!({"backup": args.file, "handle": client.me()}));
    }
    outln!(
        "wrote a sealed copy of {}'s store to {} (0600; it opens with the same passphrase)",
        client.me(),
        args.file.display()
    );
    Ok(())
}

/// Put a backup in place of your store.
///
/// Refuses to replace a store that is newer than the backup (one that read
/// more of its mailbox or holds messages the backup lacks), and a store in
/// use (stop `watch` first). Then asks the relay what the copy lacks and
/// says it, as a notice: messages delivered and acknowledged since the
/// backup, queued messages that will not go, channels that stop until a
/// rekey. A restored store never posts from old positions or sessions: each
/// channel that moved on waits (`stale_store`) for its mediator's rekey
/// (`channel amend CHANNEL --rekey`), which you accept as usual.
///
/// Example:
///
///   backchannel --store blue.store restore /media/usb/blue-2026-12-03.backup
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RestoreArgs {
    /// The backup to restore.
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn restore(store_path: &Path, args: RestoreArgs) -> anyhow::Result<()> {
    let pass = store::passphrase(false)?;
    let (_client, report) = Client::restore(&args.file, store_path, &pass)
        .await
        .map_err(store::explain)?;
    if args.json {
        return render::json(&report);
    }
    outln!(
        "restored {} from {}",
        store_path.display(),
        args.file.display()
    );
    outln!("notice: what the backup lacks");
    for line in &report.notice {
        outln!("  {line}");
    }
    Ok(())
}
