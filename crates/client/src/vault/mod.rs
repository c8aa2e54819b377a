//! The sealed local store: one SQLite file (rollback journal, so nothing
//! lingers beside it at rest; `synchronous=FULL`), every secret or personal
//! value sealed under a store key that the passphrase unwraps.
//!
//! Writes go through [`Tx`]: the advanced Olm session and the message it
//! decrypted (or the outbox entry it encrypted) commit together.

mod crypto;
pub mod records;

use std::path::{Path, PathBuf};

use backchannel_protocol::api::EnvelopeJson;
use backchannel_protocol::member::{
    Alert, Changes, Failure, Peer, Snapshot, StoredMessage, Transmit, TransmitId,
};
use backchannel_protocol::payload::Payload;
use backchannel_protocol::{
    b64, ChannelId, Digest, Envelope, Handle, Identity, MessageId, PeerSession, Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crypto::KdfParams;
use crypto::{derive, Sealer};
use records::{MessageRecord, OutboxRecord, PeerRecord};

use crate::error::VaultError;

const SCHEMA: &str = include_str!("schema.sql");

/// The open store.
pub struct Vault {
    conn: Connection,
    sealer: Sealer,
    path: PathBuf,
    /// Transactions committed since it was opened (each costs the disk
    /// its fsyncs).
    commits: std::cell::Cell<u64>,
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

/// Creates an empty file readable and writable by its owner only (0600),
/// whatever the umask: SQLite then fills it, and gives its journal the
/// same mode.
fn create_private(path: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| VaultError::Sqlite(format!("cannot create {}: {e}", path.display())))
}

/// Brings a store made by an earlier version up to date (version 2: the
/// epoch of each unclassified failure; version 3: envelopes deferred until
/// a key decision).
fn migrate(conn: &Connection) -> Result<(), VaultError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 2 {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE failures ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
             PRAGMA user_version=2;
             COMMIT;",
        )?;
    }
    if version < 3 {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE deferred (message_id BLOB PRIMARY KEY, sealed BLOB NOT NULL);
             PRAGMA user_version=3;
             COMMIT;",
        )?;
    }
    Ok(())
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, VaultError> {
    serde_json::to_vec(v).map_err(|_| VaultError::Corrupt("record does not encode"))
}

/// The pace of one-time key uploads (see `Client::sync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPacing {
    /// When the current hour of uploads began, ms.
    pub window_start_ms: i64,
    /// One-time keys uploaded in it.
    pub uploaded: u64,
    /// When the fallback key was last rotated, ms.
    pub fallback_rotated_ms: i64,
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
        create_private(path)?;
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
        tx.execute_batch("PRAGMA user_version=3")?;
        tx.commit()?;
        let mut vault = Vault {
            conn,
            sealer: Sealer::new(&store_key),
            path: path.to_path_buf(),
            commits: std::cell::Cell::new(0),
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
        migrate(&conn)?;
        Ok(Vault {
            conn,
            sealer: Sealer::new(&store_key),
            path: path.to_path_buf(),
            commits: std::cell::Cell::new(0),
        })
    }

    /// Writes a consistent copy of the whole store to `to`, a new file
    /// readable by its owner only: sealed as the store is, it opens with
    /// the same passphrase and nothing else.
    pub fn backup(&self, to: &Path) -> Result<(), VaultError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        // SQLite writes into an empty file; creating it first sets its mode.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => VaultError::Exists(to.display().to_string()),
                _ => VaultError::Sqlite(format!("creating {}: {e}", to.display())),
            })?;
        let target = to
            .to_str()
            .ok_or(VaultError::Corrupt("the backup path is not UTF-8"))?;
        if let Err(e) = self.conn.execute("VACUUM INTO ?1", [target]) {
            let _ = std::fs::remove_file(to);
            return Err(e.into());
        }
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| VaultError::Sqlite(format!("syncing {}: {e}", to.display())))
    }

    /// Marks the store as restored from a backup whose record the relay
    /// has not confirmed yet (`true`), or confirmed (`false`): until then
    /// nothing is prepared offline (it could reuse a position).
    pub fn set_restored_unchecked(&mut self, unchecked: bool) -> Result<(), VaultError> {
        self.conn.execute(
            "INSERT INTO meta (k, v) VALUES ('restored_unchecked', ?1)
             ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            [vec![u8::from(unchecked)]],
        )?;
        Ok(())
    }

    /// The local actor aliases (see `commitments::actors::Aliases`),
    /// sealed like the rest of the store and never sent.
    pub fn actor_aliases(&self) -> Result<Vec<(ChannelId, String)>, VaultError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'actor_aliases'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(sealed) = sealed else {
            return Ok(Vec::new());
        };
        let pairs: Vec<(String, String)> = self.open_json("actor_aliases", &sealed)?;
        pairs
            .into_iter()
            .map(|(c, n)| {
                ChannelId::from_hex(&c)
                    .map(|c| (c, n))
                    .map_err(|_| VaultError::Corrupt("actor alias"))
            })
            .collect()
    }

    /// Replaces the local actor aliases.
    pub fn set_actor_aliases(&mut self, aliases: &[(ChannelId, String)]) -> Result<(), VaultError> {
        let pairs: Vec<(String, &String)> = aliases.iter().map(|(c, n)| (c.to_hex(), n)).collect();
        let plain = zeroize::Zeroizing::new(json(&pairs)?);
        let sealed = self.sealer.seal(b"actor_aliases", &plain)?;
        self.conn.execute(
            "INSERT INTO meta (k, v) VALUES ('actor_aliases', ?1)
             ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            [sealed],
        )?;
        Ok(())
    }

    /// See [`Vault::set_restored_unchecked`].
    pub fn restored_unchecked(&self) -> Result<bool, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT v FROM meta WHERE k = 'restored_unchecked'",
                [],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .is_some_and(|v| v == [1]))
    }

    /// How far this store has got: the mailbox position read and the
    /// messages held. A restore refuses to replace a store that is ahead.
    pub fn progress(&self) -> Result<(u64, u64), VaultError> {
        let held: i64 = self
            .conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
        Ok((self.cursor()?, held.max(0) as u64))
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals the store under `new` instead of `old`: the store key is
    /// unwrapped with `old` (a wrong one changes nothing) and wrapped again
    /// under a key derived from `new` with a fresh salt, in one SQLite
    /// transaction (rollback journal, `synchronous=FULL`: either both the
    /// salt and the wrapped key are replaced on disk, or neither). From
    /// then on `old` no longer opens the store; the data stays sealed under
    /// the same store key and is not rewritten.
    pub fn change_passphrase(&mut self, old: &str, new: &str) -> Result<(), VaultError> {
        let kdf = KdfParams::decode(&self.meta("kdf_params")?)?;
        let old_kek = Sealer::new(&*derive(old, &self.meta("kdf_salt")?, kdf)?);
        let store_key = old_kek.unwrap_key(&self.meta("store_key")?)?;
        let salt: [u8; 16] = rand::random();
        let wrapped = Sealer::new(&*derive(new, &salt, kdf)?).wrap(&store_key)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (k, v) in [("kdf_salt", salt.to_vec()), ("store_key", wrapped)] {
            tx.execute("UPDATE meta SET v = ?2 WHERE k = ?1", params![k, v])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn meta(&self, k: &str) -> Result<Vec<u8>, VaultError> {
        self.conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()?
            .ok_or(VaultError::Corrupt("missing metadata"))
    }

    /// How the relay's TLS certificate is trusted (a private CA, a pin);
    /// not secret, kept beside the relay's URL.
    pub fn relay_trust(&self) -> Result<crate::RelayTrust, VaultError> {
        let optional = |k: &str| -> Result<Option<Vec<u8>>, VaultError> {
            Ok(self
                .conn
                .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
                .optional()?)
        };
        let pin = match optional("relay_pin")? {
            Some(v) => Some(backchannel_protocol::Digest(
                v.try_into().map_err(|_| VaultError::Corrupt("relay pin"))?,
            )),
            None => None,
        };
        Ok(crate::RelayTrust {
            ca_pem: optional("relay_ca_pem")?,
            pin,
        })
    }

    /// Records how the relay's certificate is trusted.
    pub fn set_relay_trust(&mut self, trust: &crate::RelayTrust) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM meta WHERE k IN ('relay_ca_pem', 'relay_pin')",
            [],
        )?;
        if let Some(pem) = &trust.ca_pem {
            tx.execute("INSERT INTO meta (k, v) VALUES ('relay_ca_pem', ?1)", [pem])?;
        }
        if let Some(pin) = &trust.pin {
            tx.execute(
                "INSERT INTO meta (k, v) VALUES ('relay_pin', ?1)",
                [&pin.0[..]],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// How many one-time keys were uploaded in the current hour, and when
    /// the fallback key was last rotated (not secret; paces uploads across
    /// runs of the command).
    pub fn key_pacing(&self) -> Result<KeyPacing, VaultError> {
        let v: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'key_pacing'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match v {
            Some(v) => serde_json::from_slice(&v).map_err(|_| VaultError::Corrupt("key pacing")),
            None => Ok(KeyPacing::default()),
        }
    }

    /// Records the pacing of key uploads.
    pub fn set_key_pacing(&mut self, pacing: &KeyPacing) -> Result<(), VaultError> {
        self.conn.execute(
            "INSERT INTO meta (k, v) VALUES ('key_pacing', ?1) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            [json(pacing)?],
        )?;
        Ok(())
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

    /// Everything the member machine is restored from.
    pub fn snapshot(&self) -> Result<Snapshot, VaultError> {
        let mut s = Snapshot::new(self.handle()?, self.account()?);
        s.sessions = self.sessions()?;
        s.peers = self
            .peers()?
            .into_iter()
            .map(|p| p.to_peer())
            .collect::<Result<_, _>>()?;
        s.key_versions = self.rows("SELECT handle, version FROM key_versions", |r| {
            let h = Handle::new(r.get::<_, String>(0)?)
                .map_err(|_| VaultError::Corrupt("key version handle"))?;
            Ok((h, r.get::<_, i64>(1)? as u64))
        })?;
        s.messages = self.rows("SELECT applied, sealed FROM messages ORDER BY id", |r| {
            let applied = r.get::<_, Option<i64>>(0)?.map(|n| n as u64);
            let record: MessageRecord = self.open_json("messages", &r.get::<_, Vec<u8>>(1)?)?;
            Ok(StoredMessage {
                payload: Payload::decode(
                    &b64::decode(&record.payload, "payload")
                        .map_err(|_| VaultError::Corrupt("message"))?,
                )
                .map_err(|_| VaultError::Corrupt("message"))?,
                digest: Digest::from_hex(&record.digest)
                    .map_err(|_| VaultError::Corrupt("message digest"))?,
                direction: record.direction,
                stored_at: Timestamp(record.stored_at_ms),
                applied,
                unsupported: record.unsupported,
            })
        })?;
        s.processed = self.rows("SELECT message_id, envelope_hash FROM processed", |r| {
            Ok((
                MessageId(fixed(&r.get::<_, Vec<u8>>(0)?)?),
                fixed(&r.get::<_, Vec<u8>>(1)?)?,
            ))
        })?;
        s.ciphertexts = self.rows("SELECT digest FROM ciphertexts", |r| {
            fixed(&r.get::<_, Vec<u8>>(0)?)
        })?;
        s.failures = self.rows(
            "SELECT message_id, channel_id, sender, seq_hint, learned_at, epoch FROM failures ORDER BY learned_at",
            |r| {
                Ok(Failure {
                    message_id: MessageId(fixed(&r.get::<_, Vec<u8>>(0)?)?),
                    channel_id: ChannelId(fixed(&r.get::<_, Vec<u8>>(1)?)?),
                    sender: Handle::new(r.get::<_, String>(2)?).map_err(|_| VaultError::Corrupt("failure sender"))?,
                    seq_hint: r.get::<_, i64>(3)? as u64,
                    learned_at: Timestamp(r.get(4)?),
                    epoch: backchannel_protocol::EpochNumber(r.get::<_, i64>(5)? as u32),
                })
            },
        )?;
        s.alerts = self.rows("SELECT sealed FROM alerts ORDER BY id", |r| {
            self.open_json::<Alert>("alerts", &r.get::<_, Vec<u8>>(0)?)
        })?;
        s.outbox = self.rows("SELECT id, sealed FROM outbox ORDER BY id", |r| {
            let id = TransmitId(r.get::<_, i64>(0)? as u64);
            let record: OutboxRecord = self.open_json("outbox", &r.get::<_, Vec<u8>>(1)?)?;
            record.to_transmit(id)
        })?;
        s.deferred = self.rows("SELECT sealed FROM deferred ORDER BY rowid", |r| {
            let e: EnvelopeJson = self.open_json("deferred", &r.get::<_, Vec<u8>>(0)?)?;
            Envelope::try_from(&e).map_err(|_| VaultError::Corrupt("deferred envelope"))
        })?;
        s.cursor = self.cursor()?;
        Ok(s)
    }

    fn rows<T>(
        &self,
        sql: &str,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<T, VaultError>,
    ) -> Result<Vec<T>, VaultError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(f(r)?);
        }
        Ok(out)
    }

    /// Every Olm session, most recently used first per peer.
    pub fn sessions(&self) -> Result<Vec<(Handle, PeerSession)>, VaultError> {
        self.rows(
            "SELECT peer, sealed FROM sessions ORDER BY used_at DESC",
            |r| {
                let peer = Handle::new(r.get::<_, String>(0)?)
                    .map_err(|_| VaultError::Corrupt("session peer"))?;
                Ok((
                    peer,
                    PeerSession::from_pickle(self.open_json("sessions", &r.get::<_, Vec<u8>>(1)?)?),
                ))
            },
        )
    }

    /// Every pinned peer.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, VaultError> {
        self.rows("SELECT sealed FROM peers ORDER BY handle", |r| {
            self.open_json("peers", &r.get::<_, Vec<u8>>(0)?)
        })
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

    /// Starts a write transaction.
    pub fn tx(&mut self) -> Result<Tx<'_>, VaultError> {
        Ok(Tx {
            tx: self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            sealer: &self.sealer,
            commits: &self.commits,
        })
    }

    /// Transactions committed since this vault was opened.
    pub fn commits(&self) -> u64 {
        self.commits.get()
    }
}

fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], VaultError> {
    b.try_into()
        .map_err(|_| VaultError::Corrupt("a fixed-size column"))
}

/// One atomic write to the store.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    sealer: &'a Sealer,
    commits: &'a std::cell::Cell<u64>,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl Tx<'_> {
    fn seal<T: Serialize>(&self, aad: &str, v: &T) -> Result<Vec<u8>, VaultError> {
        let plain = zeroize::Zeroizing::new(json(v)?);
        self.sealer.seal(aad.as_bytes(), &plain)
    }

    /// Saves the Olm account.
    pub fn put_account(&mut self, identity: &Identity) -> Result<(), VaultError> {
        self.put_account_pickle(&identity.pickle())
    }

    fn put_account_pickle(
        &mut self,
        pickle: &vodozemac::olm::AccountPickle,
    ) -> Result<(), VaultError> {
        let sealed = self.seal("account", pickle)?;
        self.tx.execute(
            "INSERT INTO account (id, sealed) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed",
            [sealed],
        )?;
        Ok(())
    }

    /// Persists what the member machine changed, all in this transaction.
    pub fn apply(&mut self, c: &Changes) -> Result<(), VaultError> {
        if let Some(a) = &c.account {
            self.put_account_pickle(a)?;
        }
        for peer in &c.forget_sessions {
            self.tx
                .execute("DELETE FROM sessions WHERE peer = ?1", [peer.as_str()])?;
        }
        for s in &c.sessions {
            let sealed = self.seal("sessions", &s.pickle)?;
            self.tx.execute(
                "INSERT INTO sessions (session_id, peer, sealed, used_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (session_id) DO UPDATE SET sealed = excluded.sealed, used_at = excluded.used_at",
                params![s.id, s.peer.as_str(), sealed, s.used_at.0],
            )?;
        }
        for (h, p) in &c.peers {
            self.put_peer(&PeerRecord::of(h, p))?;
        }
        for (h, v) in &c.key_versions {
            self.tx.execute(
                "INSERT INTO key_versions (handle, version) VALUES (?1, ?2)
                 ON CONFLICT (handle) DO UPDATE SET version = max(version, excluded.version)",
                params![h.as_str(), *v as i64],
            )?;
        }
        for m in &c.messages {
            self.put_message(m)?;
        }
        for (id, hash) in &c.processed {
            self.tx.execute(
                "INSERT OR IGNORE INTO processed (message_id, envelope_hash) VALUES (?1, ?2)",
                params![&id.0[..], &hash[..]],
            )?;
        }
        for d in &c.ciphertexts {
            self.tx.execute(
                "INSERT OR IGNORE INTO ciphertexts (digest) VALUES (?1)",
                [&d[..]],
            )?;
        }
        for f in &c.failures {
            self.tx.execute(
                "INSERT OR REPLACE INTO failures (message_id, channel_id, sender, seq_hint, learned_at, epoch) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![&f.message_id.0[..], &f.channel_id.0[..], f.sender.as_str(), f.seq_hint as i64, f.learned_at.0, f.epoch.0],
            )?;
        }
        for id in &c.resolved_failures {
            self.tx
                .execute("DELETE FROM failures WHERE message_id = ?1", [&id.0[..]])?;
        }
        for a in &c.alerts {
            let sealed = self.seal("alerts", a)?;
            self.tx.execute(
                "INSERT INTO alerts (id, dismissed, sealed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET dismissed = excluded.dismissed, sealed = excluded.sealed",
                params![a.id.0 as i64, a.dismissed, sealed],
            )?;
        }
        for t in &c.outbox {
            let sealed = self.seal("outbox", &OutboxRecord::of(t))?;
            self.tx.execute(
                "INSERT INTO outbox (id, channel_id, sealed) VALUES (?1, ?2, ?3)",
                params![t.id.0 as i64, t.channel.to_hex().as_bytes(), sealed],
            )?;
        }
        for id in &c.outbox_done {
            self.tx
                .execute("DELETE FROM outbox WHERE id = ?1", [id.0 as i64])?;
        }
        for e in &c.deferred {
            let sealed = self.seal("deferred", &EnvelopeJson::from(e))?;
            self.tx.execute(
                "INSERT OR REPLACE INTO deferred (message_id, sealed) VALUES (?1, ?2)",
                params![&e.message_id.0[..], sealed],
            )?;
        }
        for id in &c.deferred_done {
            self.tx
                .execute("DELETE FROM deferred WHERE message_id = ?1", [&id.0[..]])?;
        }
        if let Some(cursor) = c.cursor {
            self.tx.execute(
                "UPDATE meta SET v = ?1 WHERE k = 'cursor' AND v < ?1",
                [cursor.to_be_bytes().to_vec()],
            )?;
        }
        Ok(())
    }

    /// Pins (or re-pins) a peer.
    fn put_peer(&mut self, peer: &PeerRecord) -> Result<(), VaultError> {
        let sealed = self.seal("peers", peer)?;
        self.tx.execute(
            "INSERT INTO peers (handle, sealed) VALUES (?1, ?2) ON CONFLICT (handle) DO UPDATE SET sealed = excluded.sealed",
            params![peer.handle, sealed],
        )?;
        Ok(())
    }

    /// Stores a payload, or marks a stored one applied.
    fn put_message(&mut self, m: &StoredMessage) -> Result<(), VaultError> {
        let h = m.payload.header();
        let record = MessageRecord {
            payload: b64::encode(m.payload.encode()),
            digest: m.digest.to_hex(),
            direction: m.direction,
            stored_at_ms: m.stored_at.0,
            unsupported: m.unsupported,
        };
        let sealed = self.seal("messages", &record)?;
        self.tx.execute(
            "INSERT INTO messages (channel_id, message_id, sender, applied, sealed) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (message_id, sender) DO UPDATE SET applied = excluded.applied, sealed = excluded.sealed",
            params![&h.channel_id.0[..], &h.message_id.0[..], h.sender.as_str(), m.applied.map(|n| n as i64), sealed],
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

    /// Commits.
    pub fn commit(self) -> Result<(), VaultError> {
        self.tx.commit()?;
        self.commits.set(self.commits.get() + 1);
        Ok(())
    }
}

impl PeerRecord {
    fn of(handle: &Handle, p: &Peer) -> PeerRecord {
        PeerRecord {
            handle: handle.to_string(),
            curve25519: b64::encode(p.keys.curve25519),
            ed25519: b64::encode(p.keys.ed25519),
            trust: p.trust.clone(),
        }
    }

    fn to_peer(&self) -> Result<(Handle, Peer), VaultError> {
        let bad = |_| VaultError::Corrupt("peer record");
        let h = Handle::new(self.handle.as_str()).map_err(bad)?;
        let keys = backchannel_protocol::IdentityKeys {
            curve25519: backchannel_protocol::api::fixed(&self.curve25519, "curve25519")
                .map_err(bad)?,
            ed25519: backchannel_protocol::api::fixed(&self.ed25519, "ed25519").map_err(bad)?,
        };
        Ok((
            h,
            Peer {
                keys,
                trust: self.trust.clone(),
            },
        ))
    }
}

impl OutboxRecord {
    fn of(t: &Transmit) -> OutboxRecord {
        OutboxRecord {
            channel_id: t.channel.to_hex(),
            envelopes: t.envelopes.iter().map(EnvelopeJson::from).collect(),
            resumed: t.resumed,
        }
    }

    fn to_transmit(&self, id: TransmitId) -> Result<Transmit, VaultError> {
        let bad = |_| VaultError::Corrupt("outbox record");
        Ok(Transmit {
            id,
            channel: ChannelId::from_hex(&self.channel_id).map_err(bad)?,
            envelopes: self
                .envelopes
                .iter()
                .map(|e| Envelope::try_from(e).map_err(|_| VaultError::Corrupt("outbox envelope")))
                .collect::<Result<_, _>>()?,
            resumed: self.resumed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_passphrase_opens_the_store_and_the_old_one_no_longer_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let handle = Handle::new("blue").unwrap();
        let identity = Identity::new();
        let mut vault = Vault::create(
            &path,
            "old words",
            KdfParams::INSECURE_FOR_TESTS,
            &handle,
            "http://127.0.0.1:1",
            &identity,
        )
        .unwrap();
        assert!(matches!(
            vault.change_passphrase("not them", "new words"),
            Err(VaultError::WrongPassphrase)
        ));
        vault.change_passphrase("old words", "new words").unwrap();
        drop(vault);
        assert!(matches!(
            Vault::open(&path, "old words"),
            Err(VaultError::WrongPassphrase)
        ));
        let reopened = Vault::open(&path, "new words").unwrap();
        assert_eq!(reopened.handle().unwrap(), handle);
        assert_eq!(reopened.account().unwrap().keys(), identity.keys());
    }
}
