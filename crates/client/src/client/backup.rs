//! Backups of a principal's store, and restoring one. A restored store is
//! an older copy: the next open follows the stale-store path (nothing is
//! posted from old positions or sessions until a rekey), and what the copy
//! lacks is said once, as a notice, by the restore itself.

use std::path::Path;

use backchannel_protocol::member::AlertKind;
use backchannel_protocol::ChannelId;
use serde::{Deserialize, Serialize};

use super::{lock, Client};
use crate::error::{ClientError, VaultError};
use crate::vault::Vault;

/// What a restore brought back and what the backup lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// Mailbox positions the backup had read.
    pub backup_cursor: u64,
    /// Mailbox positions the relay says were read and acknowledged (by the
    /// store as it was before the loss); `None` if the relay was not
    /// reached.
    pub relay_acked_through: Option<u64>,
    /// Messages the backup had queued that will never be sent (the relay
    /// holds later posts of this principal).
    pub not_sent: Vec<String>,
    /// Channels stopped until a rekey (`stale_store`).
    pub stale_channels: Vec<ChannelId>,
    /// The notice, one sentence per line.
    pub notice: Vec<String>,
}

impl Client {
    /// Writes a sealed copy of this store to `to` (a new file, 0600), which
    /// opens with the same passphrase. `restore` brings it back.
    pub fn backup(&self, to: &Path) -> Result<(), ClientError> {
        Ok(self.vault.backup(to)?)
    }

    /// Replaces the store at `store` by the backup `from`, unless the store
    /// is ahead of it (it read more of its mailbox, or holds messages the
    /// backup lacks): nothing is changed then. The store must not be in use.
    /// Then checks the relay's record of this principal, so what the backup
    /// lacks is known now, and returns it.
    pub async fn restore(
        from: &Path,
        store: &Path,
        passphrase: &str,
    ) -> Result<(Client, RestoreReport), ClientError> {
        let backup = Vault::open(from, passphrase)?;
        let (backup_cursor, backup_held) = backup.progress()?;
        let held = lock::StoreLock::acquire(store)?;
        if store.exists() {
            let current = Vault::open(store, passphrase).map_err(|e| match e {
                VaultError::WrongPassphrase => ClientError::Input(format!(
                    "the store at {} does not open with this passphrase, so it cannot be compared with the backup; nothing was changed (move it aside first)",
                    store.display()
                )),
                e => e.into(),
            })?;
            let same = current.handle()? == backup.handle()?
                && current.account()?.keys() == backup.account()?.keys();
            if !same {
                return Err(ClientError::Input(format!(
                    "the backup is of {}'s store, but the store at {} belongs to {} (or to another identity): nothing was changed",
                    backup.handle()?,
                    store.display(),
                    current.handle()?
                )));
            }
            let (cursor, count) = current.progress()?;
            if cursor > backup_cursor || count > backup_held {
                return Err(ClientError::Input(format!(
                    "the store at {} is newer than the backup (it read its mailbox to {cursor} and holds {count} messages; the backup {backup_cursor} and {backup_held}); nothing was changed. Move it aside first if you mean to go back",
                    store.display()
                )));
            }
        }
        let staging = lock::sibling(store, ".restoring");
        let _ = std::fs::remove_file(&staging);
        backup.backup(&staging)?;
        drop(backup);
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(lock::sibling(store, suffix));
        }
        std::fs::rename(&staging, store)
            .map_err(|e| VaultError::Sqlite(format!("putting the backup in place: {e}")))?;
        let mut client = Client::open_locked(store, passphrase, held)?;
        // Until the relay confirms its record, nothing is prepared offline.
        client.vault.set_restored_unchecked(true)?;
        // The backup is in place: from here a failure is said in the notice,
        // never as a failed restore.
        let (acked, not_sent, problem) = match client.check_own_record().await {
            // The check also had the relay forget the one-time keys
            // published after the backup.
            Ok(not_sent) => match client.relay.me().await {
                Ok(me) => (Some(me.acked_through), not_sent, None),
                Err(e) => (None, not_sent, Some(e.to_string())),
            },
            Err(e) => (None, Vec::new(), Some(e.to_string())),
        };
        let stale_channels: Vec<ChannelId> = client
            .member
            .open_alerts()
            .iter()
            .filter(|a| a.kind == AlertKind::StaleStore)
            .filter_map(|a| a.channel)
            .collect();
        let mut words = notice(backup_cursor, acked, &not_sent, &stale_channels);
        if let Some(p) = problem {
            words.insert(0, format!("The backup is in place, but asking the relay failed ({p}): what the copy lacks is checked at the next `sync`, before anything is sent."));
        }
        let report = RestoreReport {
            notice: words,
            backup_cursor,
            relay_acked_through: acked,
            not_sent,
            stale_channels,
        };
        Ok((client, report))
    }
}

/// What the backup lacks, in words: a notice, never an alarm.
fn notice(
    backup_cursor: u64,
    acked: Option<u64>,
    not_sent: &[String],
    stale: &[ChannelId],
) -> Vec<String> {
    let mut lines = Vec::new();
    match acked {
        None => {}
        Some(a) if a > backup_cursor => lines.push(format!(
            "{} message(s) delivered to you after the backup was taken were already acknowledged and are gone from the relay: this store will never hold them. Their senders still have them; ask for them again if they matter.",
            a - backup_cursor
        )),
        Some(_) => lines.push("Nothing delivered to you since the backup is lost: the relay still holds whatever came after it.".into()),
    }
    if !not_sent.is_empty() {
        lines.push(format!(
            "{} message(s) the backup had queued will not be sent: the store had sent later messages in their place.",
            not_sent.len()
        ));
    }
    lines.push(match acked {
        Some(_) => "The one-time keys published after the backup were unknown to this copy: the relay now holds fresh ones instead, so new sessions start on keys this store has. A peer that opened a session on one of the lost keys before now wrote a first message this store cannot read: if a peer says you did not answer, ask it to send again.".into(),
        None => "One-time keys published after the backup are unknown to this copy: the relay is told to forget them at the next `sync`, before anything is sent; until then nothing is queued either (`send` says so).".into(),
    });
    if stale.is_empty() {
        lines.push("No channel had moved on since the backup: you can send as before.".into());
    } else {
        lines.push(format!(
            "{} channel(s) stop until their mediator proposes a rekey (`channel amend CHANNEL --rekey`) and you accept it: nothing is sent there from old positions or sessions (`stale_store`). Tell the mediator.",
            stale.len()
        ));
    }
    lines
}
