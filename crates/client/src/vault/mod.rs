//! The sealed local store: one SQLite file (rollback journal, so nothing
//! lingers beside it at rest; `synchronous=FULL`), every secret or personal
//! value sealed under a store key that the passphrase unwraps.
//!
//! Writes go through [`Tx`]: the advanced Olm session and the message it
//! decrypted (or the outbox entry it encrypted) commit together.

mod crypto;
pub mod records;

use std::path::{Path, PathBuf};

use backchannel_protocol::{ChannelId, Handle, Identity, MessageId, PeerSession};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crypto::KdfParams;
use crypto::{derive, Sealer};
use records::{AlertRecord, MessageRecord, OutboxRecord, PeerRecord};

use crate::error::VaultError;

const SCHEMA: &str = include_str!("schema.sql");

/// A stored payload with its row data.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// Row id (arrival order).
    pub row: i64,
    /// The channel.
    pub channel_id: ChannelId,
    /// Folding order, or `None` if held back.
    pub applied: Option<i64>,
    /// The record.
    pub record: MessageRecord,
}

/// A ciphertext that failed to decrypt, waiting to be classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Its message id.
    pub message_id: MessageId,
    /// The channel its envelope named.
    pub channel_id: ChannelId,
    /// The sender its envelope named.
    pub sender: Handle,
    /// The envelope's (unauthenticated) sequence-number hint.
    pub seq_hint: u64,
    /// When this member learnt of it.
    pub learned_at: i64,
}

/// The open store.
pub struct Vault {
    conn: Connection,
    sealer: Sealer,
    path: PathBuf,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn connect(path: &Path) -> Result<Connection, VaultError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;",
    )?;
    Ok(conn)
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, VaultError> {
    serde_json::to_vec(v).map_err(|_| VaultError::Corrupt("record does not encode"))
}

impl Vault {
    /// Creates a store at `path` for `handle` on the relay at `relay_url`.
    pub fn create(
        path: &Path,
        passphrase: &str,
        kdf: KdfParams,
        handle: &Handle,
        relay_url: &str,
        identity: &Identity,
    ) -> Result<Vault, VaultError> {
        if path.exists() {
            return Err(VaultError::Exists(path.display().to_string()));
        }
        let salt: [u8; 16] = rand::random();
        let store_key = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
        let kek = Sealer::new(&*derive(passphrase, &salt, kdf)?);
        let wrapped = kek.wrap(&store_key)?;
        let mut conn = connect(path)?;
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        for (k, v) in [
            ("kdf_salt", salt.to_vec()),
            ("kdf_params", kdf.encode()),
            ("store_key", wrapped),
            ("handle", handle.as_str().as_bytes().to_vec()),
            ("relay_url", relay_url.as_bytes().to_vec()),
            ("cursor", 0u64.to_be_bytes().to_vec()),
        ] {
            tx.execute("INSERT INTO meta (k, v) VALUES (?1, ?2)", params![k, v])?;
        }
        tx.execute_batch("PRAGMA user_version=1")?;
        tx.commit()?;
        let mut vault = Vault {
            conn,
            sealer: Sealer::new(&store_key),
            path: path.to_path_buf(),
        };
        let mut tx = vault.tx()?;
        tx.put_account(identity)?;
        tx.commit()?;
        Ok(vault)
    }

    /// Opens the store at `path`. A wrong passphrase changes nothing.
    pub fn open(path: &Path, passphrase: &str) -> Result<Vault, VaultError> {
        if !path.exists() {
            return Err(VaultError::Missing(path.display().to_string()));
        }
        let conn = connect(path)?;
        let meta = |k: &str| -> Result<Vec<u8>, VaultError> {
            conn.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(|_| VaultError::Corrupt("not a backchannel store"))?
                .ok_or(VaultError::Corrupt("not a backchannel store"))
        };
        let salt = meta("kdf_salt")?;
        let kdf = KdfParams::decode(&meta("kdf_params")?)?;
        let wrapped = meta("store_key")?;
        let kek = Sealer::new(&*derive(passphrase, &salt, kdf)?);
        let store_key = kek.unwrap_key(&wrapped)?;
        Ok(Vault {
            conn,
            sealer: Sealer::new(&store_key),
            path: path.to_path_buf(),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta(&self, k: &str) -> Result<Vec<u8>, VaultError> {
        self.conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()?
            .ok_or(VaultError::Corrupt("missing metadata"))
    }

    /// This principal's handle.
    pub fn handle(&self) -> Result<Handle, VaultError> {
        let raw =
            String::from_utf8(self.meta("handle")?).map_err(|_| VaultError::Corrupt("handle"))?;
        Handle::new(raw).map_err(|_| VaultError::Corrupt("handle"))
    }

    /// The relay's URL.
    pub fn relay_url(&self) -> Result<String, VaultError> {
        String::from_utf8(self.meta("relay_url")?).map_err(|_| VaultError::Corrupt("relay url"))
    }

    /// The mailbox cursor processed so far.
    pub fn cursor(&self) -> Result<u64, VaultError> {
        let b = self.meta("cursor")?;
        let arr: [u8; 8] = b
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Corrupt("cursor"))?;
        Ok(u64::from_be_bytes(arr))
    }

    fn open_json<T: DeserializeOwned>(&self, aad: &str, sealed: &[u8]) -> Result<T, VaultError> {
        let plain = self.sealer.open(aad.as_bytes(), sealed)?;
        serde_json::from_slice(&plain).map_err(|_| VaultError::Corrupt("record does not decode"))
    }

    /// The Olm account.
    pub fn account(&self) -> Result<Identity, VaultError> {
        let sealed: Vec<u8> =
            self.conn
                .query_row("SELECT sealed FROM account WHERE id = 1", [], |r| r.get(0))?;
        Ok(Identity::from_pickle(self.open_json("account", &sealed)?))
    }

    /// Every Olm session, most recently used first per peer.
    pub fn sessions(&self) -> Result<Vec<(Handle, PeerSession)>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT peer, sealed FROM sessions ORDER BY used_at DESC")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (peer, sealed) = row?;
            let peer = Handle::new(peer).map_err(|_| VaultError::Corrupt("session peer"))?;
            out.push((
                peer,
                PeerSession::from_pickle(self.open_json("sessions", &sealed)?),
            ));
        }
        Ok(out)
    }

    /// Every pinned peer.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT sealed FROM peers ORDER BY handle")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| self.open_json("peers", &r?)).collect()
    }

    /// Every stored payload, in arrival order.
    pub fn messages(&self) -> Result<Vec<StoredMessage>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, channel_id, applied, sealed FROM messages ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, channel, applied, sealed) = row?;
            let channel: [u8; 16] = channel
                .as_slice()
                .try_into()
                .map_err(|_| VaultError::Corrupt("channel id"))?;
            out.push(StoredMessage {
                row: id,
                channel_id: ChannelId(channel),
                applied,
                record: self.open_json("messages", &sealed)?,
            });
        }
        Ok(out)
    }

    /// The envelope hash stored for a processed message id.
    pub fn processed(&self, id: &MessageId) -> Result<Option<[u8; 32]>, VaultError> {
        let hash: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT envelope_hash FROM processed WHERE message_id = ?1",
                [&id.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        hash.map(|h| {
            h.as_slice()
                .try_into()
                .map_err(|_| VaultError::Corrupt("envelope hash"))
        })
        .transpose()
    }

    /// True if this ciphertext digest was processed before.
    pub fn seen_ciphertext(&self, digest: &[u8; 32]) -> Result<bool, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM ciphertexts WHERE digest = ?1",
                [&digest[..]],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Unclassified decryption failures.
    pub fn failures(&self) -> Result<Vec<Failure>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT message_id, channel_id, sender, seq_hint, learned_at FROM failures ORDER BY learned_at")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        rows.map(|r| {
            let (m, c, s, hint, at) = r?;
            Ok(Failure {
                message_id: MessageId(
                    m.as_slice()
                        .try_into()
                        .map_err(|_| VaultError::Corrupt("failure id"))?,
                ),
                channel_id: ChannelId(
                    c.as_slice()
                        .try_into()
                        .map_err(|_| VaultError::Corrupt("failure channel"))?,
                ),
                sender: Handle::new(s).map_err(|_| VaultError::Corrupt("failure sender"))?,
                seq_hint: hint as u64,
                learned_at: at,
            })
        })
        .collect()
    }

    /// The highest key version seen for `handle`.
    pub fn key_version(&self, handle: &Handle) -> Result<Option<u64>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT version FROM key_versions WHERE handle = ?1",
                [handle.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|v| v as u64))
    }

    /// This member's record of an exchange.
    pub fn exchange(
        &self,
        id: &backchannel_protocol::ExchangeId,
    ) -> Result<Option<records::ExchangeLocal>, VaultError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT sealed FROM exchanges WHERE exchange_id = ?1",
                [&id.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        sealed.map(|s| self.open_json("exchanges", &s)).transpose()
    }

    /// Posts not yet answered, oldest first.
    pub fn outbox(&self) -> Result<Vec<(i64, OutboxRecord)>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, sealed FROM outbox ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        rows.map(|r| {
            let (id, sealed) = r?;
            Ok((id, self.open_json("outbox", &sealed)?))
        })
        .collect()
    }

    /// Alerts, with their row ids and whether they were dismissed.
    pub fn alerts(&self) -> Result<Vec<(i64, bool, AlertRecord)>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, dismissed, sealed FROM alerts ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (id, dismissed, sealed) = r?;
            Ok((id, dismissed, self.open_json("alerts", &sealed)?))
        })
        .collect()
    }

    /// Starts a write transaction.
    pub fn tx(&mut self) -> Result<Tx<'_>, VaultError> {
        Ok(Tx {
            tx: self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            sealer: &self.sealer,
        })
    }
}

/// One atomic write to the store.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    sealer: &'a Sealer,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx { .. }")
    }
}

impl Tx<'_> {
    fn seal<T: Serialize>(&self, aad: &str, v: &T) -> Result<Vec<u8>, VaultError> {
        let plain = zeroize::Zeroizing::new(json(v)?);
        self.sealer.seal(aad.as_bytes(), &plain)
    }

    /// Saves the Olm account.
    pub fn put_account(&mut self, identity: &Identity) -> Result<(), VaultError> {
        let sealed = self.seal("account", &identity.pickle())?;
        self.tx.execute(
            "INSERT INTO account (id, sealed) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed",
            [sealed],
        )?;
        Ok(())
    }

    /// Saves an Olm session.
    pub fn put_session(
        &mut self,
        peer: &Handle,
        session: &PeerSession,
        used_at: i64,
    ) -> Result<(), VaultError> {
        let sealed = self.seal("sessions", &session.pickle())?;
        self.tx.execute(
            "INSERT INTO sessions (session_id, peer, sealed, used_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (session_id) DO UPDATE SET sealed = excluded.sealed, used_at = excluded.used_at",
            params![session.id(), peer.as_str(), sealed, used_at],
        )?;
        Ok(())
    }

    /// Forgets every session with `peer` (its identity key changed).
    pub fn delete_sessions(&mut self, peer: &Handle) -> Result<(), VaultError> {
        self.tx
            .execute("DELETE FROM sessions WHERE peer = ?1", [peer.as_str()])?;
        Ok(())
    }

    /// Pins (or re-pins) a peer.
    pub fn put_peer(&mut self, peer: &PeerRecord) -> Result<(), VaultError> {
        let sealed = self.seal("peers", peer)?;
        self.tx.execute(
            "INSERT INTO peers (handle, sealed) VALUES (?1, ?2) ON CONFLICT (handle) DO UPDATE SET sealed = excluded.sealed",
            params![peer.handle, sealed],
        )?;
        Ok(())
    }

    /// Stores a payload; returns its row id.
    pub fn put_message(
        &mut self,
        channel: &ChannelId,
        message: &MessageId,
        sender: &Handle,
        record: &MessageRecord,
    ) -> Result<i64, VaultError> {
        let sealed = self.seal("messages", record)?;
        self.tx.execute(
            "INSERT INTO messages (channel_id, message_id, sender, sealed) VALUES (?1, ?2, ?3, ?4)",
            params![&channel.0[..], &message.0[..], sender.as_str(), sealed],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Marks a stored payload as folded into its channel as number `order`.
    pub fn set_applied(&mut self, row: i64, order: i64) -> Result<(), VaultError> {
        self.tx.execute(
            "UPDATE messages SET applied = ?2 WHERE id = ?1",
            [row, order],
        )?;
        Ok(())
    }

    /// Records a processed ciphertext's digest.
    pub fn put_ciphertext(&mut self, digest: &[u8; 32]) -> Result<(), VaultError> {
        self.tx.execute(
            "INSERT OR IGNORE INTO ciphertexts (digest) VALUES (?1)",
            [&digest[..]],
        )?;
        Ok(())
    }

    /// Records an unclassified decryption failure.
    pub fn put_failure(&mut self, f: &Failure) -> Result<(), VaultError> {
        self.tx.execute(
            "INSERT OR REPLACE INTO failures (message_id, channel_id, sender, seq_hint, learned_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&f.message_id.0[..], &f.channel_id.0[..], f.sender.as_str(), f.seq_hint as i64, f.learned_at],
        )?;
        Ok(())
    }

    /// Removes a classified failure.
    pub fn delete_failure(&mut self, id: &MessageId) -> Result<(), VaultError> {
        self.tx
            .execute("DELETE FROM failures WHERE message_id = ?1", [&id.0[..]])?;
        Ok(())
    }

    /// Records the key version the relay showed for `handle`.
    pub fn put_key_version(&mut self, handle: &Handle, version: u64) -> Result<(), VaultError> {
        self.tx.execute(
            "INSERT INTO key_versions (handle, version) VALUES (?1, ?2)
             ON CONFLICT (handle) DO UPDATE SET version = max(version, excluded.version)",
            params![handle.as_str(), version as i64],
        )?;
        Ok(())
    }

    /// Replaces an alert's record and dismissal.
    pub fn update_alert(
        &mut self,
        id: i64,
        alert: &AlertRecord,
        dismissed: bool,
    ) -> Result<(), VaultError> {
        let sealed = self.seal("alerts", alert)?;
        self.tx.execute(
            "UPDATE alerts SET sealed = ?2, dismissed = ?3 WHERE id = ?1",
            params![id, sealed, dismissed],
        )?;
        Ok(())
    }

    /// Records a processed message id.
    pub fn put_processed(
        &mut self,
        id: &MessageId,
        envelope_hash: &[u8; 32],
    ) -> Result<(), VaultError> {
        self.tx.execute(
            "INSERT OR IGNORE INTO processed (message_id, envelope_hash) VALUES (?1, ?2)",
            params![&id.0[..], &envelope_hash[..]],
        )?;
        Ok(())
    }

    /// Saves this member's record of an exchange.
    pub fn put_exchange(
        &mut self,
        id: &backchannel_protocol::ExchangeId,
        e: &records::ExchangeLocal,
    ) -> Result<(), VaultError> {
        let sealed = self.seal("exchanges", e)?;
        self.tx.execute(
            "INSERT INTO exchanges (exchange_id, sealed) VALUES (?1, ?2) ON CONFLICT (exchange_id) DO UPDATE SET sealed = excluded.sealed",
            params![&id.0[..], sealed],
        )?;
        Ok(())
    }

    /// Queues a post.
    pub fn push_outbox(&mut self, record: &OutboxRecord) -> Result<i64, VaultError> {
        let sealed = self.seal("outbox", record)?;
        self.tx.execute(
            "INSERT INTO outbox (channel_id, sealed) VALUES (?1, ?2)",
            params![record.channel_id.as_bytes(), sealed],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Removes an answered post.
    pub fn delete_outbox(&mut self, id: i64) -> Result<(), VaultError> {
        self.tx.execute("DELETE FROM outbox WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Records an alert; returns its id.
    pub fn put_alert(&mut self, alert: &AlertRecord) -> Result<i64, VaultError> {
        let sealed = self.seal("alerts", alert)?;
        self.tx
            .execute("INSERT INTO alerts (sealed) VALUES (?1)", [sealed])?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Marks an alert dismissed.
    pub fn dismiss_alert(&mut self, id: i64) -> Result<bool, VaultError> {
        Ok(self
            .tx
            .execute("UPDATE alerts SET dismissed = 1 WHERE id = ?1", [id])?
            > 0)
    }

    /// Advances the mailbox cursor (never backwards).
    pub fn set_cursor(&mut self, cursor: u64) -> Result<(), VaultError> {
        self.tx.execute(
            "UPDATE meta SET v = ?1 WHERE k = 'cursor' AND v < ?1",
            [cursor.to_be_bytes().to_vec()],
        )?;
        Ok(())
    }

    /// Commits.
    pub fn commit(self) -> Result<(), VaultError> {
        self.tx.commit()?;
        Ok(())
    }
}
