//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`
//! (a commit is fsynced before we answer), `secure_delete` (deleted rows are
//! zeroed, not just unlinked) and truncating checkpoints off the commit path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use checkpointer::Checkpointer;
use writer::{Mode, Writer};

use backchannel_protocol::{
    ChannelId, Digest, Envelope, ExchangeId, Handle, IdentityKeys, MessageId, OlmType, SignedKey,
    Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{
    exchange_state, handle, id16, is_fresh, judge_mailbox, judge_sender, judge_submission, key32,
    sig64, MailboxUse,
};
use super::{
    ChannelRecord, Claimed, ExchangeRecord, ExchangeState, KeyCounts, KeyStock, OfferCopy,
    OwnRecord, Posting, PostingAnswer, PostingWork, PrincipalRecord, Quota, Rate, RateDecision,
    RelayStore, RowCounts, StoreError, StoredEnvelope, Usage, WriteCounts, ONE_TIME_KEYS_HELD_MAX,
};

mod checkpointer;
mod writer;

/// Numbered migrations, applied in order; `PRAGMA user_version` records the last.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_escrow.sql"),
    include_str!("../../migrations/sqlite/0003_own_record.sql"),
    include_str!("../../migrations/sqlite/0004_release.sql"),
    include_str!("../../migrations/sqlite/0005_limits.sql"),
    include_str!("../../migrations/sqlite/0006_lean_writes.sql"),
];

/// The next cursor: above every envelope stored and every one deleted
/// (the floor the deletion trigger keeps), so none is issued twice.
const NEXT_CURSOR: &str = "max(coalesce((SELECT max(cursor) FROM envelopes), 0), (SELECT issued FROM cursor_floor WHERE id = 1)) + 1";

/// Attempts of a truncating checkpoint that finds another running.
const TRUNCATE_TRIES: usize = 5;

/// Ciphertext bytes deleted in one transaction of an ack or a purge.
const DELETE_CHUNK_BYTES: i64 = 256 * 1024;

/// A relay store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    /// The one writer (SQLite has one anyway): a thread owning the write
    /// connection, committing what queues up behind a commit together.
    /// Dropped before `checkpointer`, whose thread it ends.
    writer: Writer,
    /// The size cap of [`SqliteStore::cap_size`] in pages, 0 for none
    /// (`max_page_count` is a setting of the write connection alone).
    cap_pages: AtomicU64,
    /// The database file (its file system's free space is reported).
    path: PathBuf,
    /// The checkpoint connection, and the thread copying the WAL into the
    /// file as it grows.
    checkpointer: Checkpointer,
    /// Read-only connections: a read never waits for a commit's fsync
    /// behind `conn`'s lock (WAL lets readers run beside the writer).
    readers: Mutex<Vec<Connection>>,
    /// Transactions committed (SQLite's commit hook), for the metrics.
    commits: Arc<AtomicU64>,
}

/// A pooled read-only connection, given back when dropped.
struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a Mutex<Vec<Connection>>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    // `conn` is Some from construction until `drop` takes it back: an
    // invariant of this type, not a condition of outside data.
    #[allow(clippy::expect_used)]
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader is used only until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
                StoreError::Full
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    /// The write connection keeps 16 MiB of pages (a post's reads then
    /// rarely go to the file) and its savepoints' journal in memory (each
    /// write of a batch is a savepoint).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "could not enable WAL (journal_mode={mode})"
            )));
        }
        conn.execute_batch(
            "PRAGMA synchronous=FULL;
             PRAGMA secure_delete=ON;
             PRAGMA foreign_keys=ON;
             PRAGMA wal_autocheckpoint=0;
             PRAGMA cache_size=-16384;
             PRAGMA temp_store=MEMORY;",
        )?;
        check_durable(&conn)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::Backend(format!(
                "the database is at schema version {version}, written by a newer relay (this one knows {}): run that relay, or restore the backup made before the upgrade",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version={}", i + 1))?;
            tx.commit()?;
        }
        let checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(5))?;
        // A checkpoint syncs the WAL before it copies and the file after.
        checkpointer.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;")?;
        let (checkpointer, idle) = Checkpointer::start(checkpointer, &mut conn)?;
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        // The previous hook (there is none) is returned and dropped.
        let _ = conn.commit_hook(Some(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            false // false lets the commit proceed
        }));
        Ok(SqliteStore {
            writer: Writer::start(conn, idle)?,
            cap_pages: AtomicU64::new(0),
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            checkpointer,
            commits,
        })
    }

    /// Caps the database at about `bytes` (SQLite's `max_page_count`):
    /// past it, writes fail as on a full disk. 0 removes the cap.
    pub fn cap_size(&self, bytes: u64) -> Result<(), StoreError> {
        let pages = self.writer.run(Mode::Outside, move |conn| {
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = if bytes == 0 {
                u32::MAX as i64 - 1
            } else {
                (bytes as i64 / page.max(1)).max(1)
            };
            Ok(
                conn.query_row(&format!("PRAGMA max_page_count={pages}"), [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })?;
        self.cap_pages
            .store(if bytes == 0 { 0 } else { pages as u64 }, Ordering::Relaxed);
        Ok(())
    }

    /// Runs a durable write on the writer: answered once committed.
    fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.run(Mode::Durable, f)
    }

    fn checkpointer(&self) -> MutexGuard<'_, Connection> {
        self.checkpointer.conn()
    }

    /// A read-only connection from the pool, opened if none is free.
    fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                c
            }
        };
        Ok(Reader {
            conn: Some(conn),
            pool: &self.readers,
        })
    }

    /// Copies the WAL into the main file and empties it; true if a reader
    /// kept it from completing. The writer's own short checkpoint (see
    /// the checkpointer) refuses this one at once rather than waiting, so
    /// a busy one is tried again a few times first.
    fn truncate_wal(&self, conn: &Connection) -> Result<bool, StoreError> {
        let mut tries = 1;
        loop {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 || tries == TRUNCATE_TRIES {
                self.checkpointer.ran();
                return Ok(busy != 0);
            }
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Deletes envelopes received before `before`, in transactions of
    /// about [`DELETE_CHUNK_BYTES`] each followed by a truncating
    /// checkpoint, like an ack: a month of unfetched mail must not need a
    /// month's worth of WAL on a nearly full disk.
    fn purge_unfetched(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let n = self.write(move |tx| {
                // In cursor order up to the first envelope young enough to
                // stay (no index by age to keep up at every post): an older
                // one behind it, from a clock set back, waits for it.
                Ok(tx.execute(
                    "DELETE FROM envelopes WHERE cursor IN (
                        SELECT cursor FROM (
                            SELECT cursor, sum(length(ciphertext)) OVER (ORDER BY cursor) - length(ciphertext) AS ahead
                            FROM envelopes WHERE cursor < coalesce(
                                (SELECT cursor FROM envelopes WHERE received_at_ms >= ?1 ORDER BY cursor LIMIT 1),
                                9223372036854775807)
                        ) WHERE ahead < ?2
                     )",
                    params![before.0, DELETE_CHUNK_BYTES],
                )?)
            })?;
            if n == 0 {
                return Ok(deleted);
            }
            deleted += n as u64;
            self.truncate_wal(&self.checkpointer())?;
        }
    }
}

/// Counts one use of `bucket`'s window (a new window once the last
/// ended); limited once the count passes the rate.
fn count_use(
    tx: &Connection,
    bucket: &str,
    rate: Rate,
    now: Timestamp,
) -> Result<RateDecision, StoreError> {
    let (count, end) = tx
        .prepare_cached(
            "INSERT INTO rate_windows (bucket, window_start_ms, window_end_ms, count) VALUES (?1, ?2, ?2 + ?3, 1)
             ON CONFLICT (bucket) DO UPDATE SET
                count = CASE WHEN window_end_ms <= ?2 THEN 1 ELSE count + 1 END,
                window_start_ms = CASE WHEN window_end_ms <= ?2 THEN ?2 ELSE window_start_ms END,
                window_end_ms = CASE WHEN window_end_ms <= ?2 THEN ?2 + ?3 ELSE window_end_ms END
             RETURNING count, window_end_ms",
        )?
        .query_row(params![bucket, now.0, rate.window_ms], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
    if count as u64 > u64::from(rate.count) {
        Ok(RateDecision::Limited {
            until: Timestamp(end),
        })
    } else {
        Ok(RateDecision::Allowed)
    }
}

/// One transaction of an ack: deletes the recipient's envelopes through
/// `through`, or through the cursor where about [`DELETE_CHUNK_BYTES`] of
/// them end; answers how many it deleted and where it stopped.
fn ack_chunk(tx: &Connection, recipient: &Handle, through: u64) -> Result<(u64, u64), StoreError> {
    let highest: i64 = tx
        .query_row(
            // The highest deleted cursor, or a higher one still waiting.
            "SELECT max(last_cursor, coalesce((SELECT max(cursor) FROM envelopes WHERE recipient = ?1), 0))
             FROM principals WHERE handle = ?1",
            [recipient.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::UnknownPrincipal(recipient.clone()))?;
    if through > highest as u64 {
        return Err(StoreError::AckBeyondMailbox {
            through,
            highest: highest as u64,
        });
    }
    let chunk_end: i64 = tx.query_row(
        "SELECT coalesce(max(cursor), ?2) FROM (
            SELECT cursor, sum(length(ciphertext)) OVER (ORDER BY cursor) AS running
            FROM envelopes WHERE recipient = ?1 AND cursor <= ?2
         ) WHERE running - ?3 <= 0 OR cursor = (SELECT min(cursor) FROM envelopes WHERE recipient = ?1)",
        params![recipient.as_str(), through as i64, DELETE_CHUNK_BYTES],
        |r| r.get(0),
    )?;
    let n = tx.execute(
        "DELETE FROM envelopes WHERE recipient = ?1 AND cursor <= ?2",
        params![recipient.as_str(), chunk_end],
    )?;
    tx.execute(
        "UPDATE principals SET acked_through = max(acked_through, ?2) WHERE handle = ?1",
        params![recipient.as_str(), chunk_end],
    )?;
    Ok((n as u64, chunk_end as u64))
}

/// Refuses a connection whose commits would not be on the disk when they
/// return: every answer the relay gives rests on that (a build or a
/// setting of SQLite that ignores `synchronous=FULL` must not run).
fn check_durable(conn: &Connection) -> Result<(), StoreError> {
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    // 2 is FULL, 3 EXTRA: both sync the WAL at every commit.
    if sync < 2 || !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "SQLite runs with synchronous={sync} and journal_mode={mode}: a commit would not be on the disk when the relay answers; the relay needs synchronous=FULL (2) in WAL mode"
        )));
    }
    Ok(())
}

/// A released handle registers again with new keys and the next key
/// version; any other taken handle is refused. Runs in the registration's
/// transaction, after its key check.
fn register_released(
    conn: &Connection,
    h: &Handle,
    keys: &IdentityKeys,
) -> Result<PrincipalRecord, StoreError> {
    let version: Option<i64> = conn
        .query_row(
            "UPDATE principals SET curve25519 = ?2, ed25519 = ?3, key_version = key_version + 1, released = 0
             WHERE handle = ?1 AND released = 1 RETURNING key_version",
            params![h.as_str(), &keys.curve25519[..], &keys.ed25519[..]],
            |r| r.get(0),
        )
        .optional()?;
    match version {
        Some(v) => Ok(PrincipalRecord {
            handle: h.clone(),
            keys: *keys,
            key_version: v as u64,
        }),
        None => Err(StoreError::HandleTaken(h.clone())),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

type EnvelopeRow = (
    i64,
    i64,
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    i64,
    i64,
    Vec<u8>,
);

fn stored_envelope(row: EnvelopeRow) -> Result<StoredEnvelope, StoreError> {
    let (cursor, received, channel, message, sender, recipient, seq_hint, olm_type, ciphertext) =
        row;
    Ok(StoredEnvelope {
        cursor: cursor as u64,
        received_at: Timestamp(received),
        envelope: Envelope {
            channel_id: ChannelId(id16(channel)?),
            message_id: MessageId(id16(message)?),
            sender: handle(sender)?,
            recipient: handle(recipient)?,
            seq_hint: seq_hint as u64,
            olm_type: OlmType::from_number(olm_type as u8)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ciphertext,
        },
    })
}

/// The envelopes of a post not stored before, each with its hash; a
/// duplicate with the same hash is skipped, one with another is a conflict.
fn fresh_envelopes<'a>(
    tx: &Connection,
    envelopes: &'a [Envelope],
) -> Result<Vec<(&'a Envelope, Digest)>, StoreError> {
    let mut fresh = Vec::with_capacity(envelopes.len());
    for e in envelopes {
        let hash = Digest::of(&[&e.encode()]);
        let existing: Option<Vec<u8>> = tx
            .prepare_cached(
                "SELECT envelope_hash FROM posted WHERE message_id = ?1 AND recipient = ?2",
            )?
            .query_row(params![&e.message_id.0[..], e.recipient.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        if is_fresh(e, existing, &hash)? {
            fresh.push((e, hash));
        }
    }
    Ok(fresh)
}

/// Bytes `who` has stored: envelopes waiting for others, and offers.
fn stored_bytes_in(conn: &Connection, who: &Handle) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT (SELECT coalesce(sum(bytes), 0) FROM mailbox_usage WHERE sender = ?1)
                  + (SELECT coalesce(sum(length(ciphertext)), 0) FROM offers WHERE submitter = ?1)",
        )?
        .query_row([who.as_str()], |r| r.get(0))?;
    Ok(n as u64)
}

/// Refuses a copy that would pass its recipient's mailbox limits, or the
/// sender's share of them.
fn check_mailbox(conn: &Connection, e: &Envelope, quota: &Quota) -> Result<(), StoreError> {
    let (all_n, all_b, own_n, own_b): (i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce(sum(envelopes), 0), coalesce(sum(bytes), 0),
                    coalesce(sum(CASE WHEN sender = ?2 THEN envelopes END), 0),
                    coalesce(sum(CASE WHEN sender = ?2 THEN bytes END), 0)
             FROM mailbox_usage WHERE recipient = ?1",
        )?
        .query_row(params![e.recipient.as_str(), e.sender.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    judge_mailbox(
        e,
        MailboxUse {
            envelopes: all_n as u64,
            bytes: all_b as u64,
            own_envelopes: own_n as u64,
            own_bytes: own_b as u64,
        },
        quota,
    )
}

fn key_version(tx: &Connection, handle: &Handle) -> Result<u64, StoreError> {
    tx.query_row(
        "UPDATE principals SET key_version = key_version + 1 WHERE handle = ?1 RETURNING key_version",
        [handle.as_str()],
        |r| r.get::<_, i64>(0),
    )
    .optional()?
    .map(|v| v as u64)
    .ok_or_else(|| StoreError::UnknownPrincipal(handle.clone()))
}

/// A channel's routing record, read on `conn`.
fn channel_in(conn: &Connection, id: &ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
    let head = conn
        .prepare_cached("SELECT created_by, created_at_ms FROM channels WHERE channel_id = ?1")?
        .query_row([&id.0[..]], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    let Some((created_by, created_at)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT handle FROM channel_members WHERE channel_id = ?1 ORDER BY handle",
    )?;
    let members = stmt
        .query_map([&id.0[..]], |r| r.get::<_, String>(0))?
        .map(|r| handle(r?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ChannelRecord {
        id: *id,
        members,
        created_by: handle(created_by)?,
        created_at: Timestamp(created_at),
    }))
}

/// Who a token names and until when, read on `conn`.
fn token_in(
    conn: &Connection,
    token_hash: &Digest,
) -> Result<Option<(Handle, Timestamp)>, StoreError> {
    let row = conn
        .prepare_cached("SELECT handle, expires_at_ms FROM tokens WHERE token_hash = ?1")?
        .query_row([&token_hash.0[..]], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    row.map(|(h, t)| Ok((handle(h)?, Timestamp(t)))).transpose()
}

/// A post and its rate counts, in the caller's transaction.
fn post_in(
    tx: &Connection,
    envelopes: &[Envelope],
    now: Timestamp,
    quota: &Quota,
    counts: &[(String, Rate)],
) -> Result<Vec<StoredEnvelope>, StoreError> {
    for (bucket, rate) in counts {
        if let RateDecision::Limited { until } = count_use(tx, bucket, *rate, now)? {
            return Err(StoreError::RateLimited {
                bucket: bucket.clone(),
                until,
            });
        }
    }
    let fresh = fresh_envelopes(tx, envelopes)?;
    if let Some(sender) = fresh.first().map(|(e, _)| &e.sender) {
        let adding: u64 = fresh.iter().map(|(e, _)| e.ciphertext.len() as u64).sum();
        judge_sender(sender, stored_bytes_in(tx, sender)?, adding, quota)?;
    }
    let mut stored = Vec::new();
    for (e, hash) in fresh {
        check_mailbox(tx, e, quota)?;
        tx.prepare_cached(
            "INSERT INTO posted (message_id, recipient, envelope_hash) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![
            &e.message_id.0[..],
            e.recipient.as_str(),
            &hash.0[..]
        ])?;
        let known = tx
            .prepare_cached("SELECT 1 FROM principals WHERE handle = ?1")?
            .query_row([e.recipient.as_str()], |_| Ok(()))
            .optional()?;
        if known.is_none() {
            return Err(StoreError::UnknownPrincipal(e.recipient.clone()));
        }
        let cursor: i64 = tx.prepare_cached(&format!("INSERT INTO envelopes (cursor, recipient, message_id, channel_id, sender, seq_hint, olm_type, ciphertext, received_at_ms)
                 VALUES ({NEXT_CURSOR}, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING cursor"))?.query_row(
                params![
                    e.recipient.as_str(),
                    &e.message_id.0[..],
                    &e.channel_id.0[..],
                    e.sender.as_str(),
                    e.seq_hint as i64,
                    e.olm_type.number(),
                    &e.ciphertext,
                    now.0
                ],
                |r| r.get(0),
            )?;
        stored.push(StoredEnvelope {
            cursor: cursor as u64,
            received_at: now,
            envelope: e.clone(),
        });
    }
    if let Some(e) = stored.first().map(|s| &s.envelope) {
        tx.prepare_cached(
                "INSERT INTO last_posts (sender, channel_id, message_id, seq_hint) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sender, channel_id) DO UPDATE SET message_id = excluded.message_id, seq_hint = excluded.seq_hint",
            )?
            .execute(
                params![e.sender.as_str(), &e.channel_id.0[..], &e.message_id.0[..], e.seq_hint as i64],
            )?;
    }
    Ok(stored)
}

impl Posting for SqliteStore {
    fn token(&self, token_hash: &Digest) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        token_in(&*self.reader()?, token_hash)
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        channel_in(&*self.reader()?, id)
    }

    fn post_counted(
        &self,
        envelopes: &[Envelope],
        now: Timestamp,
        quota: &Quota,
        counts: &[(String, Rate)],
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let (envelopes, quota, counts) = (envelopes.to_vec(), *quota, counts.to_vec());
        self.write(move |tx| post_in(tx, &envelopes, now, &quota, &counts))
    }

    fn hit(&self, bucket: &str, rate: Rate, now: Timestamp) -> Result<RateDecision, StoreError> {
        let bucket = bucket.to_owned();
        // A counter, not a record: answered before its batch commits, and
        // a batch of counters only is committed without an fsync.
        self.writer
            .run(Mode::Counter, move |tx| count_use(tx, &bucket, rate, now))
    }
}

/// The write connection, inside the savepoint of a post queued by
/// [`RelayStore::on_writer`]: its reads see every write before it, and its
/// writes are the post's.
struct OnWriter<'a>(&'a Connection);

impl Posting for OnWriter<'_> {
    fn token(&self, token_hash: &Digest) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        token_in(self.0, token_hash)
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        channel_in(self.0, id)
    }

    fn post_counted(
        &self,
        envelopes: &[Envelope],
        now: Timestamp,
        quota: &Quota,
        counts: &[(String, Rate)],
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        post_in(self.0, envelopes, now, quota, counts)
    }

    fn hit(&self, bucket: &str, rate: Rate, now: Timestamp) -> Result<RateDecision, StoreError> {
        count_use(self.0, bucket, rate, now)
    }
}

impl RelayStore for SqliteStore {
    fn on_writer(&self, work: PostingWork) -> Result<PostingAnswer, PostingWork> {
        Ok(self
            .writer
            .submit(Mode::Durable, move |conn| work(&OnWriter(conn))))
    }

    fn register(
        &self,
        h: &Handle,
        keys: &IdentityKeys,
        now: Timestamp,
        invite: Option<&Digest>,
    ) -> Result<PrincipalRecord, StoreError> {
        let (h, keys, invite) = (h.clone(), *keys, invite.copied());
        self.write(move |tx| {
            if let Some(code) = invite {
                // Consumed only if the registration commits (same transaction).
                let used = tx.execute(
                    "DELETE FROM invites WHERE code_hash = ?1 AND expires_at_ms > ?2",
                    params![&code.0[..], now.0],
                )?;
                if used == 0 {
                    return Err(StoreError::InviteInvalid);
                }
            }
            let holder: Option<String> = tx
                .query_row(
                    "SELECT handle FROM principals WHERE handle <> ?1 AND (curve25519 IN (?2, ?3) OR ed25519 IN (?2, ?3)) LIMIT 1",
                    params![h.as_str(), &keys.curve25519[..], &keys.ed25519[..]],
                    |r| r.get(0),
                )
                .optional()?;
            if holder.is_some() {
                return Err(StoreError::KeyTaken);
            }
            let inserted = tx.execute(
                "INSERT INTO principals (handle, curve25519, ed25519, key_version, created_at_ms) VALUES (?1, ?2, ?3, 1, ?4)",
                params![h.as_str(), &keys.curve25519[..], &keys.ed25519[..], now.0],
            );
            match inserted {
                Ok(_) => Ok(PrincipalRecord {
                    handle: h,
                    keys,
                    key_version: 1,
                }),
                Err(e) if is_unique_violation(&e) => register_released(tx, &h, &keys),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn create_invite(&self, code_hash: &Digest, expires: Timestamp) -> Result<(), StoreError> {
        let code_hash = *code_hash;
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO invites (code_hash, expires_at_ms) VALUES (?1, ?2)",
                params![&code_hash.0[..], expires.0],
            )?;
            Ok(())
        })
    }

    fn release_principal(&self, h: &Handle) -> Result<bool, StoreError> {
        let h = h.clone();
        self.write(move |tx| {
            let found = tx.execute(
                "UPDATE principals SET released = 1, acked_through = 0 WHERE handle = ?1",
                [h.as_str()],
            )?;
            if found == 0 {
                return Ok(false);
            }
            // Nothing of the lost device's stays usable: its keys, logins and
            // undelivered envelopes (sealed to the old keys). Its last posts
            // stay: the new device learns from them where its chains stand.
            for sql in [
                "DELETE FROM one_time_keys WHERE handle = ?1",
                "DELETE FROM fallback_keys WHERE handle = ?1",
                "DELETE FROM tokens WHERE handle = ?1",
                "DELETE FROM challenges WHERE handle = ?1",
                "DELETE FROM envelopes WHERE recipient = ?1",
            ] {
                tx.execute(sql, [h.as_str()])?;
            }
            Ok(true)
        })
    }

    fn principal(&self, h: &Handle) -> Result<Option<PrincipalRecord>, StoreError> {
        let row = self
            .reader()?
            .query_row(
                "SELECT curve25519, ed25519, key_version FROM principals WHERE handle = ?1 AND released = 0",
                [h.as_str()],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(c, e, v)| {
            Ok(PrincipalRecord {
                handle: h.clone(),
                keys: IdentityKeys {
                    curve25519: key32(c)?,
                    ed25519: key32(e)?,
                },
                key_version: v as u64,
            })
        })
        .transpose()
    }

    fn put_challenge(
        &self,
        challenge: &[u8; 32],
        h: &Handle,
        expires: Timestamp,
    ) -> Result<(), StoreError> {
        let (challenge, h) = (*challenge, h.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO challenges (challenge, handle, expires_at_ms) VALUES (?1, ?2, ?3)",
                params![&challenge[..], h.as_str(), expires.0],
            )?;
            Ok(())
        })
    }

    fn take_challenge(
        &self,
        challenge: &[u8; 32],
    ) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        let challenge = *challenge;
        let row = self.write(move |tx| {
            Ok(tx
                .query_row(
                    "DELETE FROM challenges WHERE challenge = ?1 RETURNING handle, expires_at_ms",
                    [&challenge[..]],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?)
        })?;
        row.map(|(h, t)| Ok((handle(h)?, Timestamp(t)))).transpose()
    }

    fn put_token(
        &self,
        token_hash: &Digest,
        h: &Handle,
        expires: Timestamp,
    ) -> Result<(), StoreError> {
        let (token_hash, h) = (*token_hash, h.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO tokens (token_hash, handle, expires_at_ms) VALUES (?1, ?2, ?3)",
                params![&token_hash.0[..], h.as_str(), expires.0],
            )?;
            Ok(())
        })
    }

    fn upload_keys(
        &self,
        h: &Handle,
        one_time: &[SignedKey],
        fallback: Option<&SignedKey>,
        replace: bool,
    ) -> Result<KeyCounts, StoreError> {
        let (h, one_time, fallback) = (h.clone(), one_time.to_vec(), fallback.cloned());
        self.write(move |tx| {
        let version = key_version(tx, &h)?;
        if replace {
            tx.execute("DELETE FROM one_time_keys WHERE handle = ?1", [h.as_str()])?;
        }
        for k in &one_time {
            // A key uploaded twice is kept once (an upload retried after a
            // lost answer must not fail).
            tx.execute(
                "INSERT OR IGNORE INTO one_time_keys (handle, key, signature) VALUES (?1, ?2, ?3)",
                params![h.as_str(), &k.key[..], &k.signature[..]],
            )?;
        }
        if let Some(k) = &fallback {
            tx.execute(
                "INSERT INTO fallback_keys (handle, key, signature) VALUES (?1, ?2, ?3)
                 ON CONFLICT (handle) DO UPDATE SET key = excluded.key, signature = excluded.signature, claimed = 0",
                params![h.as_str(), &k.key[..], &k.signature[..]],
            )?;
        }
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM one_time_keys WHERE handle = ?1",
            [h.as_str()],
            |r| r.get(0),
        )?;
        if count as u64 > ONE_TIME_KEYS_HELD_MAX {
            return Err(StoreError::LimitExceeded(
                "at most 1000 unclaimed one-time keys per principal",
            ));
        }
        let has_fallback: bool = tx.query_row(
            "SELECT count(*) > 0 FROM fallback_keys WHERE handle = ?1",
            [h.as_str()],
            |r| r.get(0),
        )?;
        Ok(KeyCounts {
            one_time_keys: count as u64,
            has_fallback,
            key_version: version,
        })
        })
    }

    fn claim_key(&self, h: &Handle, one_time: bool) -> Result<Option<Claimed>, StoreError> {
        let h = h.clone();
        self.write(move |tx| {
        let taken = if one_time {
            tx.query_row(
                "DELETE FROM one_time_keys WHERE id = (SELECT min(id) FROM one_time_keys WHERE handle = ?1)
                 RETURNING key, signature",
                [h.as_str()],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?
        } else {
            None
        };
        let (row, fallback) = match taken {
            Some(row) => (Some(row), false),
            None => (
                tx.query_row(
                    "UPDATE fallback_keys SET claimed = 1 WHERE handle = ?1 RETURNING key, signature",
                    [h.as_str()],
                    |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)),
                )
                .optional()?,
                true,
            ),
        };
        let Some((key, signature)) = row else {
            return Ok(None);
        };
        let version = key_version(tx, &h)?;
        Ok(Some(Claimed {
            key: SignedKey {
                key: key32(key)?,
                fallback,
                signature: sig64(signature)?,
            },
            key_version: version,
        }))
        })
    }

    fn key_stock(&self, h: &Handle) -> Result<KeyStock, StoreError> {
        let conn = self.reader()?;
        let one_time: i64 = conn.query_row(
            "SELECT count(*) FROM one_time_keys WHERE handle = ?1",
            [h.as_str()],
            |r| r.get(0),
        )?;
        let fallback: Option<i64> = conn
            .query_row(
                "SELECT claimed FROM fallback_keys WHERE handle = ?1",
                [h.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(KeyStock {
            one_time_keys: one_time as u64,
            has_fallback: fallback.is_some(),
            fallback_claimed: fallback == Some(1),
        })
    }

    fn create_channel(&self, c: &ChannelRecord) -> Result<(), StoreError> {
        let c = c.clone();
        self.write(move |tx| {
            match tx.execute(
                "INSERT INTO channels (channel_id, created_by, created_at_ms) VALUES (?1, ?2, ?3)",
                params![&c.id.0[..], c.created_by.as_str(), c.created_at.0],
            ) {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(StoreError::ChannelExists(c.id)),
                Err(e) => return Err(e.into()),
            }
            for m in &c.members {
                match tx.execute(
                    "INSERT INTO channel_members (channel_id, handle) VALUES (?1, ?2)",
                    params![&c.id.0[..], m.as_str()],
                ) {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::UnknownPrincipal(m.clone()))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
    }

    fn set_channel_members(&self, id: &ChannelId, members: &[Handle]) -> Result<(), StoreError> {
        let (id, members) = (*id, members.to_vec());
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM channel_members WHERE channel_id = ?1",
                [&id.0[..]],
            )?;
            for m in &members {
                match tx.execute(
                    "INSERT INTO channel_members (channel_id, handle) VALUES (?1, ?2)",
                    params![&id.0[..], m.as_str()],
                ) {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::UnknownPrincipal(m.clone()))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
    }

    fn create_exchange(&self, e: &ExchangeRecord, now: Timestamp) -> Result<(), StoreError> {
        let e = e.clone();
        self.write(move |tx| {
        match tx.execute(
            "INSERT INTO exchanges (exchange_id, channel_id, created_by, terms_digest, deadline_ms, created_at_ms, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open')",
            params![&e.id.0[..], &e.channel_id.0[..], e.created_by.as_str(), &e.terms_digest.0[..], e.deadline.0, now.0],
        ) {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => return Err(StoreError::ExchangeClosed("exists already")),
            Err(err) => return Err(err.into()),
        }
        for p in &e.participants {
            tx.execute(
                "INSERT INTO exchange_participants (exchange_id, handle) VALUES (?1, ?2)",
                params![&e.id.0[..], p.as_str()],
            )?;
        }
        Ok(())
        })
    }

    fn exchange(&self, id: &ExchangeId) -> Result<Option<ExchangeRecord>, StoreError> {
        exchange_in(&*self.reader()?, id)
    }

    fn submit_offer(
        &self,
        id: &ExchangeId,
        copies: &[OfferCopy],
        now: Timestamp,
    ) -> Result<ExchangeRecord, StoreError> {
        let (id, copies) = (*id, copies.to_vec());
        self.write(move |tx| {
        let e = exchange_in(tx, &id)?.ok_or(StoreError::ExchangeClosed("is unknown"))?;
        let submitter = judge_submission(&e, &copies, now)?;
        tx.execute(
            "DELETE FROM offers WHERE exchange_id = ?1 AND submitter = ?2",
            params![&id.0[..], submitter.as_str()],
        )?;
        for c in &copies {
            tx.execute(
                "INSERT INTO offers (exchange_id, submitter, recipient, olm_type, ciphertext, submitted_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![&id.0[..], c.submitter.as_str(), c.recipient.as_str(), c.olm_type.number(), &c.ciphertext, now.0],
            )?;
        }
        let submitted: i64 = tx.query_row(
            "SELECT count(DISTINCT submitter) FROM offers WHERE exchange_id = ?1",
            [&id.0[..]],
            |r| r.get(0),
        )?;
        if submitted as usize == e.participants.len() {
            tx.execute(
                "UPDATE exchanges SET state = 'released', released_at_ms = ?2 WHERE exchange_id = ?1",
                params![&id.0[..], now.0],
            )?;
        }
        exchange_in(tx, &id)?.ok_or(StoreError::ExchangeClosed("is unknown"))
        })
    }

    fn withdraw_offer(
        &self,
        id: &ExchangeId,
        submitter: &Handle,
    ) -> Result<ExchangeRecord, StoreError> {
        let (id, submitter) = (*id, submitter.clone());
        self.write(move |tx| {
            let e = exchange_in(tx, &id)?.ok_or(StoreError::ExchangeClosed("is unknown"))?;
            if e.state != ExchangeState::Open {
                return Err(StoreError::ExchangeClosed("is no longer open"));
            }
            tx.execute(
                "DELETE FROM offers WHERE exchange_id = ?1 AND submitter = ?2",
                params![&id.0[..], submitter.as_str()],
            )?;
            Ok(e)
        })
    }

    fn has_offer(&self, id: &ExchangeId, who: &Handle) -> Result<bool, StoreError> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT 1 FROM offers WHERE exchange_id = ?1 AND submitter = ?2 LIMIT 1",
                params![&id.0[..], who.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn offers_for(
        &self,
        id: &ExchangeId,
        recipient: &Handle,
    ) -> Result<Vec<OfferCopy>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT submitter, olm_type, ciphertext FROM offers WHERE exchange_id = ?1 AND recipient = ?2 ORDER BY submitter",
        )?;
        let rows = stmt.query_map(params![&id.0[..], recipient.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (s, t, c) = r?;
            Ok(OfferCopy {
                submitter: handle(s)?,
                recipient: recipient.clone(),
                olm_type: OlmType::from_number(t as u8)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ciphertext: c,
            })
        })
        .collect()
    }

    fn destroy_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |tx| {
        // secure_delete zeroes the offers' pages; the next truncating
        // checkpoint removes them from the WAL as well.
        tx.execute(
            "DELETE FROM offers WHERE exchange_id IN (SELECT exchange_id FROM exchanges WHERE state = 'open' AND deadline_ms <= ?1)",
            [now.0],
        )?;
        let n = tx.execute(
            "UPDATE exchanges SET state = 'destroyed' WHERE state = 'open' AND deadline_ms <= ?1",
            [now.0],
        )?;
        Ok(n as u64)
        })
    }

    fn mailbox(
        &self,
        recipient: &Handle,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT cursor, received_at_ms, channel_id, message_id, sender, recipient, seq_hint, olm_type, ciphertext
             FROM envelopes WHERE recipient = ?1 AND cursor > ?2 ORDER BY cursor LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                recipient.as_str(),
                after.min(i64::MAX as u64) as i64,
                limit as i64
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )?;
        rows.map(|r| stored_envelope(r?)).collect()
    }

    fn own_record(&self, who: &Handle) -> Result<OwnRecord, StoreError> {
        let conn = self.reader()?;
        let acked_through: i64 = conn
            .query_row(
                "SELECT acked_through FROM principals WHERE handle = ?1",
                [who.as_str()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownPrincipal(who.clone()))?;
        let mut stmt = conn.prepare_cached(
            "SELECT channel_id, message_id, seq_hint FROM last_posts WHERE sender = ?1 ORDER BY channel_id",
        )?;
        let rows = stmt.query_map([who.as_str()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut last_posts = Vec::new();
        for row in rows {
            let (c, m, seq) = row?;
            let bad = |_| StoreError::Backend("a last post row is damaged".into());
            last_posts.push((
                ChannelId(c.as_slice().try_into().map_err(bad)?),
                MessageId(m.as_slice().try_into().map_err(bad)?),
                seq as u64,
            ));
        }
        Ok(OwnRecord {
            acked_through: acked_through as u64,
            last_posts,
        })
    }

    fn ack(&self, recipient: &Handle, through: u64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        // With secure_delete every deleted page is written zeroed to the
        // WAL: a large ack is cut into transactions of about DELETE_CHUNK_BYTES,
        // each followed by a truncating checkpoint, so it needs little free
        // disk (an ack must work when the disk is nearly full).
        loop {
            let who = recipient.clone();
            let (n, chunk_end) = self.write(move |tx| ack_chunk(tx, &who, through))?;
            deleted += n;
            if chunk_end >= through {
                return Ok(deleted);
            }
            self.truncate_wal(&self.checkpointer())?;
        }
    }

    fn purge_expired(
        &self,
        now: Timestamp,
        unfetched_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let expired = self.write(move |tx| {
            let mut n = 0;
            for sql in [
                "DELETE FROM challenges WHERE expires_at_ms <= ?1",
                "DELETE FROM tokens WHERE expires_at_ms <= ?1",
                "DELETE FROM invites WHERE expires_at_ms <= ?1",
                "DELETE FROM rate_windows WHERE window_end_ms <= ?1",
            ] {
                n += tx.execute(sql, [now.0])?;
            }
            Ok(n as u64)
        })?;
        Ok(expired + self.purge_unfetched(unfetched_before)?)
    }

    fn stored_bytes(&self, who: &Handle) -> Result<u64, StoreError> {
        stored_bytes_in(&*self.reader()?, who)
    }

    fn usage(&self) -> Result<Usage, StoreError> {
        let conn = self.reader()?;
        let (envelopes, bytes): (i64, i64) = conn.query_row(
            "SELECT coalesce(sum(envelopes), 0), coalesce(sum(bytes), 0) FROM mailbox_usage",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let deepest: i64 = conn.query_row(
            "SELECT coalesce(max(n), 0) FROM (SELECT sum(envelopes) AS n FROM mailbox_usage GROUP BY recipient)",
            [],
            |r| r.get(0),
        )?;
        Ok(Usage {
            envelopes: envelopes as u64,
            bytes: bytes as u64,
            deepest_mailbox: deepest as u64,
        })
    }

    fn free_space(&self) -> Result<Option<u64>, StoreError> {
        let conn = self.reader()?;
        let pragma = |name: &str| -> Result<i64, StoreError> {
            Ok(conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
        };
        let page = pragma("page_size")?;
        let max_pages = match self.cap_pages.load(Ordering::Relaxed) {
            0 => pragma("max_page_count")?,
            cap => cap as i64,
        };
        let room = (max_pages - pragma("page_count")? + pragma("freelist_count")?).max(0) as u64
            * page.max(0) as u64;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // A checkpoint copies the WAL's pages into the main file before it
        // can truncate the WAL: that much disk is spoken for already.
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        let pending = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let disk = rustix::fs::statvfs(dir).ok().map(|s| {
            s.f_bavail
                .saturating_mul(s.f_frsize)
                .saturating_sub(pending)
        });
        Ok(Some(disk.map_or(room, |d| d.min(room))))
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        // TRUNCATE copies every committed page into the main file (where
        // secure_delete has zeroed deleted rows) and empties the WAL, so
        // deleted ciphertext survives in neither file. It runs on a
        // connection of its own: a PASSIVE pass copies the bulk beside the
        // writer, so TRUNCATE (which holds off writers) has only the rest.
        let conn = self.checkpointer();
        let _: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(0))?;
        if self.truncate_wal(&conn)? {
            return Err(StoreError::Backend(
                "checkpoint could not complete: database busy".into(),
            ));
        }
        Ok(())
    }

    fn write_counts(&self) -> WriteCounts {
        WriteCounts {
            commits: self.commits.load(Ordering::Relaxed),
            checkpoints: self.checkpointer.runs(),
            writes: self.writer.committed(),
            queued: self.writer.queued() as u64,
        }
    }

    fn row_counts(&self) -> Result<RowCounts, StoreError> {
        let conn = self.reader()?;
        let count = |table: &str| -> Result<u64, StoreError> {
            Ok(
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })? as u64,
            )
        };
        Ok(RowCounts {
            principals: count("principals")?,
            one_time_keys: count("one_time_keys")?,
            fallback_keys: count("fallback_keys")?,
            challenges: count("challenges")?,
            tokens: count("tokens")?,
            channels: count("channels")?,
            channel_members: count("channel_members")?,
            envelopes: count("envelopes")?,
            posted: count("posted")?,
        })
    }
}

fn exchange_in(conn: &Connection, id: &ExchangeId) -> Result<Option<ExchangeRecord>, StoreError> {
    let row = conn
        .query_row(
            "SELECT channel_id, created_by, terms_digest, deadline_ms, state, released_at_ms FROM exchanges WHERE exchange_id = ?1",
            [&id.0[..]],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((channel, by, terms, deadline, state, released)) = row else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT handle FROM exchange_participants WHERE exchange_id = ?1 ORDER BY handle",
    )?;
    let participants = stmt
        .query_map([&id.0[..]], |r| r.get::<_, String>(0))?
        .map(|r| handle(r?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ExchangeRecord {
        id: *id,
        channel_id: ChannelId(id16(channel)?),
        created_by: handle(by)?,
        participants,
        terms_digest: Digest(key32(terms)?),
        deadline: Timestamp(deadline),
        state: exchange_state(&state)?,
        released_at: released.map(Timestamp),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use backchannel_protocol::MessageId;

    use super::*;
    use crate::store::conformance::{env, with_channel, T0};
    use crate::store::Quota;

    /// A store holding 2 MiB of ciphertext for `red`, its WAL emptied.
    fn two_mebibytes_waiting(dir: &Path) -> SqliteStore {
        let store = SqliteStore::open(&dir.join("relay.db")).unwrap();
        let ch = with_channel(&store, &["blue", "red"]);
        for fill in 0..32 {
            let mut e = env(ch, MessageId::random(), "blue", "red", fill);
            e.ciphertext = vec![fill; 64 * 1024];
            store.post(&[e], T0, &Quota::NONE).unwrap();
        }
        store.checkpoint().unwrap();
        store
    }

    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("relay.db-wal")).map_or(0, |m| m.len())
    }

    /// With secure_delete each deleted page is written zeroed to the WAL:
    /// deleting 2 MiB at once would need 2 MiB of free disk, which a nearly
    /// full disk lacks exactly when members drain their mailboxes.
    #[test]
    fn a_large_ack_or_purge_needs_only_a_chunk_of_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = two_mebibytes_waiting(dir.path());
        let highest = store.mailbox(&Handle::new("red").unwrap(), 0, 100).unwrap();
        let through = highest.last().unwrap().cursor;
        assert_eq!(
            store.ack(&Handle::new("red").unwrap(), through).unwrap(),
            32
        );
        assert!(
            wal_bytes(dir.path()) < 1024 * 1024,
            "ack: {}",
            wal_bytes(dir.path())
        );

        let dir = tempfile::tempdir().unwrap();
        let store = two_mebibytes_waiting(dir.path());
        let later = Timestamp(T0.0 + 1);
        assert_eq!(store.purge_expired(later, later).unwrap(), 32);
        assert!(
            wal_bytes(dir.path()) < 1024 * 1024,
            "purge: {}",
            wal_bytes(dir.path())
        );
        assert_eq!(store.usage().unwrap().envelopes, 0);
    }

    /// Between maintenance passes the checkpointer copies the WAL into the
    /// file as it fills, and the writer starts it over: its fsyncs then
    /// overwrite blocks instead of growing the file, and the WAL stays
    /// small under sustained posts (before, 69 MB here until the next
    /// maintenance checkpoint).
    #[test]
    fn the_wal_starts_over_between_maintenance_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
        let ch = with_channel(&store, &["blue", "red"]);
        let before = store.write_counts().checkpoints;
        let mut largest = 0;
        for i in 0..2048u32 {
            let mut e = env(ch, MessageId::random(), "blue", "red", i as u8);
            e.ciphertext = vec![i as u8; 8 * 1024];
            store.post(&[e], T0, &Quota::NONE).unwrap();
            largest = largest.max(wal_bytes(dir.path()));
        }
        assert!(
            largest < 8 * 1024 * 1024,
            "16 MiB of posts grew the WAL to {largest} bytes"
        );
        assert!(store.write_counts().checkpoints > before);
        assert_eq!(store.usage().unwrap().envelopes, 2048);
    }

    /// The metrics' commit count is SQLite's own (its commit hook): a post
    /// is one commit, a refused one none, a checkpoint is counted apart.
    #[test]
    fn commits_and_checkpoints_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
        let ch = with_channel(&store, &["blue", "red"]);
        let before = store.write_counts();
        let e = env(ch, MessageId::random(), "blue", "red", 1);
        store.post(&[e], T0, &Quota::NONE).unwrap();
        let posted = store.write_counts();
        assert_eq!(posted.commits, before.commits + 1);
        let full = Quota {
            mailbox_envelopes: 1,
            ..Quota::NONE
        };
        let over = env(ch, MessageId::random(), "blue", "red", 2);
        assert!(store.post(&[over], T0, &full).is_err());
        assert_eq!(store.write_counts().commits, posted.commits);
        store.checkpoint().unwrap();
        assert_eq!(store.write_counts().checkpoints, posted.checkpoints + 1);
    }

    /// Pages a commit wrote to the WAL (each a 24-byte frame header and
    /// the page; the WAL file has a 32-byte header).
    fn wal_pages(dir: &Path) -> u64 {
        wal_bytes(dir).saturating_sub(32) / (4096 + 24)
    }

    /// A post writes only its envelope, the recipient index, the posted
    /// hash, the usage count and the last post: no principals row, no
    /// AUTOINCREMENT sequence, no index by age (28 KB of WAL per 1 KiB
    /// post before). Posts queued together share their pages.
    #[test]
    fn a_post_writes_few_pages_and_a_batch_shares_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let ch = with_channel(&*store, &["blue", "red"]);
        for fill in 0..200u8 {
            let mut e = env(ch, MessageId::random(), "blue", "red", fill);
            e.ciphertext = vec![fill; 1024];
            store.post(&[e], T0, &Quota::NONE).unwrap();
        }
        // The least of five posts, each alone in the WAL: a random id often
        // splits an index page, and that post writes two or three more.
        let mut alone: Vec<u64> = (0..5)
            .map(|_| {
                store.checkpoint().unwrap();
                let mut e = env(ch, MessageId::random(), "blue", "red", 1);
                e.ciphertext = vec![7; 1024];
                store.post(&[e], T0, &Quota::NONE).unwrap();
                wal_pages(dir.path())
            })
            .collect();
        alone.sort_unstable();
        let one = alone[0];
        assert!(
            one <= 5,
            "a 1 KiB post wrote {one} pages (of five: {alone:?})"
        );

        store.checkpoint().unwrap();
        let release = hold_writer(&store, Mode::Outside);
        let posts: Vec<_> = (0..32u8)
            .map(|i| {
                let s = Arc::clone(&store);
                let t = std::thread::spawn(move || {
                    let mut e = env(ch, MessageId::random(), "blue", "red", i);
                    e.ciphertext = vec![i; 1024];
                    s.post(&[e], T0, &Quota::NONE).unwrap();
                });
                until_queued(&store, usize::from(i) + 1);
                t
            })
            .collect();
        drop(release);
        for t in posts {
            t.join().unwrap();
        }
        let batch = wal_pages(dir.path());
        assert!(batch <= 32, "32 posts in one batch wrote {batch} pages");
    }

    #[test]
    fn a_connection_that_would_not_sync_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("relay.db")).unwrap();
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch("PRAGMA synchronous=FULL").unwrap();
        assert!(check_durable(&conn).is_ok());
        conn.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
        let refused = check_durable(&conn).unwrap_err().to_string();
        assert!(refused.contains("synchronous=1"), "{refused}");
        conn.execute_batch("PRAGMA synchronous=FULL").unwrap();
        let _: String = conn
            .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
            .unwrap();
        assert!(check_durable(&conn).is_err());
    }

    /// Keeps the writer busy with a write of `mode` until the returned
    /// sender is dropped: `Durable` holds the database's write lock
    /// (inside a batch's transaction), `Outside` only the writer.
    fn hold_writer(store: &Arc<SqliteStore>, mode: Mode) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel();
        let s = Arc::clone(store);
        std::thread::spawn(move || {
            let _ = s.writer.run(mode, move |conn| {
                if mode == Mode::Durable {
                    conn.execute_batch("UPDATE principals SET released = released")?;
                }
                let _ = started.send(());
                let _ = held.recv();
                Ok(())
            });
        });
        running.recv().unwrap();
        release
    }

    /// Waits until `n` writes are queued behind the one in progress.
    fn until_queued(store: &SqliteStore, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.writer.queued() < n {
            assert!(std::time::Instant::now() < deadline, "writes never queued");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Posts that queue up while a commit is in flight are committed
    /// together in one transaction (one fsync); within it the idempotence
    /// rule holds (the second of two identical posts is a duplicate, one
    /// with other bytes a conflict), and a refused post leaves the others
    /// of its batch stored.
    #[test]
    fn writes_queued_behind_a_commit_are_committed_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let ch = with_channel(&*store, &["blue", "red"]);
        let id = MessageId::random();
        let posts = [
            env(ch, id, "blue", "red", 1),
            env(ch, id, "blue", "red", 1),
            env(ch, id, "blue", "red", 2),
            env(ch, MessageId::random(), "blue", "red", 3),
        ];
        let release = hold_writer(&store, Mode::Outside);
        let before = store.write_counts().commits;
        let mut answers = Vec::new();
        for (i, e) in posts.into_iter().enumerate() {
            let s = Arc::clone(&store);
            answers.push(std::thread::spawn(move || s.post(&[e], T0, &Quota::NONE)));
            until_queued(&store, i + 1);
        }
        drop(release);
        let answers: Vec<_> = answers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(answers[0].as_ref().unwrap().len(), 1, "the first is stored");
        assert!(
            answers[1].as_ref().unwrap().is_empty(),
            "the second is a duplicate"
        );
        assert!(
            matches!(answers[2], Err(StoreError::Conflict { .. })),
            "other bytes under the id: {:?}",
            answers[2]
        );
        assert_eq!(
            answers[3].as_ref().unwrap().len(),
            1,
            "the refusal undid only itself"
        );
        assert_eq!(
            store.write_counts().commits,
            before + 1,
            "one commit for the batch"
        );
        let red = Handle::new("red").unwrap();
        assert_eq!(store.mailbox(&red, 0, 10).unwrap().len(), 2);
    }

    /// A post queued on the writer reads on the write connection, so it
    /// sees a token stored earlier in its own batch; it is answered only
    /// once that batch has committed, and a refused post's work undoes
    /// only itself.
    #[test]
    fn a_post_on_the_writer_sees_its_batch_and_waits_for_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let ch = with_channel(&*store, &["blue", "red"]);
        let (blue, token) = (Handle::new("blue").unwrap(), Digest::of(&[b"t"]));
        let release = hold_writer(&store, Mode::Outside);
        let before = store.write_counts();
        let s = Arc::clone(&store);
        let b = blue.clone();
        let login = std::thread::spawn(move || s.put_token(&token, &b, Timestamp(T0.0 + 60_000)));
        until_queued(&store, 1);
        let post = |n: u8| -> PostingWork {
            Box::new(move |p: &dyn Posting| {
                let who = p.token(&token)?.map(|(h, _)| h);
                let e = env(ch, MessageId::random(), "blue", "red", n);
                let stored = if n == 1 {
                    p.post_counted(&[e], T0, &Quota::NONE, &[])?.len()
                } else {
                    // Other bytes under a stored id: refused.
                    let first = p.post_counted(std::slice::from_ref(&e), T0, &Quota::NONE, &[])?;
                    let mut other = e;
                    other.ciphertext.push(0);
                    p.post_counted(&[other], T0, &Quota::NONE, &[])?;
                    first.len()
                };
                Ok(Box::new((who, stored)) as Box<dyn std::any::Any + Send>)
            })
        };
        let mut answers: Vec<_> = (1..=2)
            .map(|n| store.on_writer(post(n)).map_err(|_| ()).unwrap())
            .collect();
        until_queued(&store, 3);
        assert!(
            answers.iter_mut().all(|a| a.try_recv().is_err()),
            "answered before its batch ran"
        );
        drop(release);
        login.join().unwrap().unwrap();
        let first = answers.remove(0).blocking_recv().unwrap().unwrap();
        let (who, stored) = *first.downcast::<(Option<Handle>, usize)>().unwrap();
        assert_eq!(
            (who, stored),
            (Some(blue), 1),
            "the token seen, the post stored"
        );
        let second = answers.remove(0).blocking_recv().unwrap();
        assert!(
            matches!(second, Err(StoreError::Conflict { .. })),
            "{:?}",
            second.map(|_| ())
        );
        let after = store.write_counts();
        assert_eq!(
            (after.commits, after.writes),
            (before.commits + 1, before.writes + 2),
            "one commit: the login and the first post"
        );
        let red = Handle::new("red").unwrap();
        assert_eq!(
            store.mailbox(&red, 0, 10).unwrap().len(),
            1,
            "the refused post undone"
        );
    }

    /// Many senders at once: fewer commits than posts, every post stored.
    #[test]
    fn concurrent_posts_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let ch = with_channel(&*store, &["blue", "red"]);
        let before = store.write_counts().commits;
        let senders: Vec<_> = (0..16)
            .map(|i| {
                let s = Arc::clone(&store);
                std::thread::spawn(move || {
                    for n in 0..25u8 {
                        let e = env(ch, MessageId::random(), "blue", "red", i ^ n);
                        s.post(&[e], T0, &Quota::NONE).unwrap();
                    }
                })
            })
            .collect();
        for t in senders {
            t.join().unwrap();
        }
        let commits = store.write_counts().commits - before;
        let red = Handle::new("red").unwrap();
        assert_eq!(store.mailbox(&red, 0, 1000).unwrap().len(), 400);
        assert!(commits < 400, "{commits} commits for 400 posts");
    }

    /// A rate counter is answered before its batch commits, so a post's
    /// rate checks do not each wait for an fsync.
    #[test]
    fn a_counter_is_answered_before_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let ch = with_channel(&*store, &["blue", "red"]);
        // A post in the same batch as the counter, kept from committing by
        // the write held after it.
        let release = hold_writer(&store, Mode::Outside);
        let s = Arc::clone(&store);
        let post = std::thread::spawn(move || {
            s.post(
                &[env(ch, MessageId::random(), "blue", "red", 1)],
                T0,
                &Quota::NONE,
            )
        });
        until_queued(&store, 1);
        let (done, answer) = std::sync::mpsc::channel();
        let s = Arc::clone(&store);
        std::thread::spawn(move || {
            let rate = Rate {
                count: 1,
                window_ms: 60_000,
            };
            let _ = done.send(s.hit("posts/principal:blue", rate, T0).is_ok());
        });
        until_queued(&store, 2);
        // The held write is released; the batch (post, counter) runs.
        drop(release);
        assert_eq!(
            answer.recv_timeout(std::time::Duration::from_secs(5)),
            Ok(true)
        );
        assert_eq!(post.join().unwrap().unwrap().len(), 1);
    }

    /// A read (the token lookup of every request, a mailbox fetch) does not
    /// queue behind a write in progress: it has its own connection, and
    /// WAL lets it read the last commit while the writer works.
    #[test]
    fn reads_do_not_wait_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let ch = with_channel(&*store, &["blue", "red"]);
        let e = env(ch, MessageId::random(), "blue", "red", 1);
        store.post(&[e], T0, &Quota::NONE).unwrap();
        // A write in progress, holding the database's write lock.
        let writing = hold_writer(&store, Mode::Durable);
        let (done, answer) = std::sync::mpsc::channel();
        let reader = Arc::clone(&store);
        std::thread::spawn(move || {
            let red = Handle::new("red").unwrap();
            let page = reader.mailbox(&red, 0, 10).map(|p| p.len());
            let channel = reader.channel(&ch).map(|c| c.is_some());
            let room = reader.free_space().map(|f| f.is_some());
            let _ = done.send((page, channel, room));
        });
        let read = answer.recv_timeout(std::time::Duration::from_secs(2));
        drop(writing);
        let (page, channel, room) = read.expect("the read waited for the writer");
        assert_eq!(page.unwrap(), 1);
        assert!(channel.unwrap());
        assert!(room.unwrap());
    }

    /// The periodic checkpoint (every few seconds, and after acks) does
    /// not go through the writer, so it never waits in the writes' queue.
    #[test]
    fn the_checkpoint_runs_beside_the_write_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(two_mebibytes_waiting(dir.path()));
        let red = Handle::new("red").unwrap();
        let through = store.mailbox(&red, 0, 100).unwrap().last().unwrap().cursor;
        store.ack(&red, through).unwrap();
        let writing = hold_writer(&store, Mode::Outside);
        let (done, answer) = std::sync::mpsc::channel();
        let checkpointing = Arc::clone(&store);
        std::thread::spawn(move || {
            let _ = done.send(checkpointing.checkpoint().is_ok());
        });
        let finished = answer.recv_timeout(std::time::Duration::from_secs(2));
        drop(writing);
        assert_eq!(finished, Ok(true), "the checkpoint waited for the writer");
        assert_eq!(wal_bytes(dir.path()), 0);
    }
}
