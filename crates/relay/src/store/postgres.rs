//! PostgreSQL, for several relay instances on one database: every check
//! that SQLite gets from having one writer is made here by the database
//! (row locks, `ON CONFLICT`, `DELETE … RETURNING`), so two instances can
//! take the same challenge, post the same message or release the same
//! exchange at once and it still happens exactly once.
//!
//! A commit returns once PostgreSQL has flushed it (`synchronous_commit`
//! on); the store refuses a server with `fsync`, `synchronous_commit` or
//! `full_page_writes` off. A post notifies (`pg_notify`) the instances that
//! follow others, which wake their WebSocket clients: the notification is
//! a hint, the mailbox's cursors the record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use backchannel_protocol::{
    ChannelId, Digest, Envelope, ExchangeId, Handle, IdentityKeys, MessageId, OlmType, SignedKey,
    Timestamp,
};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};

use super::rows::{
    exchange_state, handle, id16, is_fresh, judge_mailbox, judge_sender, judge_submission, key32,
    sig64, MailboxUse,
};
use super::{
    ChannelRecord, Claimed, ExchangeRecord, ExchangeState, KeyCounts, KeyStock, OfferCopy,
    OwnRecord, Posting, PrincipalRecord, Quota, Rate, RateDecision, RelayStore, RowCounts,
    StoreError, StoredEnvelope, Usage, WriteCounts, ONE_TIME_KEYS_HELD_MAX,
};

/// Numbered migrations, applied in order; `backchannel_schema` records the last.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_init.sql")];

/// The channel posts notify on.
const MAIL_CHANNEL: &str = "backchannel_mail";

/// Serialises migrations of instances started together (an advisory lock key).
const MIGRATION_LOCK: i64 = 0x6263_6d69_6772_6174;

/// Connections held at most per relay instance (PostgreSQL allows 100 by default).
pub const POOL_MAX: usize = 16;

/// Attempts of a transaction the database aborted for a deadlock or a
/// serialization failure (two instances meeting on the same rows).
const ATTEMPTS: usize = 8;

/// A relay store in a PostgreSQL database.
pub struct PostgresStore {
    pool: Arc<Pool>,
    /// Tells this instance's notifications from other instances'.
    instance: u64,
    commits: AtomicU64,
    checkpoints: AtomicU64,
    listener: Mutex<Option<Listener>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Why a unit of work failed: a refusal of ours, or the database.
enum Fail {
    Store(StoreError),
    Pg(postgres::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl Fail {
    /// Whether running the transaction again can succeed.
    fn retryable(&self) -> bool {
        matches!(self, Fail::Pg(e) if matches!(
            e.code(),
            Some(&SqlState::T_R_DEADLOCK_DETECTED) | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        ))
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Store(e) => e,
            Fail::Pg(e) => pg_error(&e),
        }
    }
}

fn pg_error(e: &postgres::Error) -> StoreError {
    match e.code() {
        Some(&SqlState::DISK_FULL) | Some(&SqlState::PROGRAM_LIMIT_EXCEEDED) => StoreError::Full,
        _ => StoreError::Backend(format!("PostgreSQL: {}", described(e))),
    }
}

/// The server's message and code, or the error with its causes (never
/// a statement's parameters: they may hold ciphertext).
fn described(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Which constraint a statement broke, if it broke one.
fn violated(f: &Fail, code: &SqlState) -> Option<String> {
    match f {
        Fail::Pg(e) => e
            .as_db_error()
            .filter(|db| db.code() == code)
            .map(|db| db.constraint().unwrap_or_default().to_owned()),
        Fail::Store(_) => None,
    }
}

type Work<'a, T> = dyn FnMut(&mut Tx<'_, '_>) -> Result<T, Fail> + 'a;

/// A pooled connection and the statements prepared on it: a statement is
/// parsed once per connection, not at every use (one round trip instead
/// of two).
struct Conn {
    client: Client,
    prepared: HashMap<&'static str, Statement>,
}

/// A connection (or its open transaction) with its prepared statements.
struct Db<'a, C: GenericClient> {
    c: &'a mut C,
    prepared: &'a mut HashMap<&'static str, Statement>,
}

/// A transaction with its connection's prepared statements.
type Tx<'a, 'b> = Db<'a, Transaction<'b>>;

impl<C: GenericClient> Db<'_, C> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.execute(&s, p)
    }

    fn query(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query(&s, p)
    }

    fn query_one(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query_one(&s, p)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query_opt(&s, p)
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.c.batch_execute(sql)
    }
}

/// A bounded pool of connections that were checked for durability.
struct Pool {
    config: postgres::Config,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
    waiting: usize,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self) -> Result<Conn, StoreError> {
        let mut state = self.lock();
        loop {
            if let Some(c) = state.idle.pop() {
                if !c.client.is_closed() {
                    return Ok(c);
                }
                state.open -= 1;
                continue;
            }
            if state.open < POOL_MAX {
                state.open += 1;
                drop(state);
                let connected = connect(&self.config);
                if connected.is_err() {
                    self.lock().open -= 1;
                    self.freed.notify_one();
                }
                return connected.map(|client| Conn {
                    client,
                    prepared: HashMap::new(),
                });
            }
            state.waiting += 1;
            state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
            state.waiting -= 1;
        }
    }

    fn put(&self, c: Conn) {
        let mut state = self.lock();
        if c.client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(c);
        }
        self.freed.notify_one();
    }
}

/// Connects and refuses a server whose commits would not be on its disk
/// when they return.
fn connect(config: &postgres::Config) -> Result<Client, StoreError> {
    let mut c = config.connect(NoTls).map_err(|e| {
        StoreError::Backend(format!("cannot connect to PostgreSQL: {}", described(&e)))
    })?;
    let row = c
        .query_one(
            "SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')",
            &[],
        )
        .map_err(|e| pg_error(&e))?;
    let (fsync, commit, pages): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    if fsync != "on" || commit == "off" || pages != "on" {
        return Err(StoreError::Backend(format!(
            "PostgreSQL runs with fsync={fsync}, synchronous_commit={commit}, full_page_writes={pages}: a commit would not be on its disk when the relay answers; the relay needs fsync=on, synchronous_commit on (or local, remote_write, remote_apply) and full_page_writes=on"
        )));
    }
    Ok(c)
}

/// Runs `f` on a thread outside any async runtime: the synchronous client
/// runs a runtime of its own, which may not start or stop inside another.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`,
    /// or a key=value string) and migrates it. Several relays may open
    /// one database at once.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("not a PostgreSQL address: {e}")))?;
        let pool = Arc::new(Pool {
            config,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
        });
        let store = PostgresStore {
            pool,
            instance: rand::random(),
            commits: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            listener: Mutex::new(None),
        };
        off_runtime(|| store.migrate())?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS backchannel_schema (version INTEGER NOT NULL)")?;
            let version: i32 = match tx.query_opt("SELECT version FROM backchannel_schema", &[])? {
                Some(row) => row.get(0),
                None => {
                    tx.execute("INSERT INTO backchannel_schema (version) VALUES (0)", &[])?;
                    0
                }
            };
            if version as usize > MIGRATIONS.len() {
                return Err(StoreError::Backend(format!(
                    "the database is at schema version {version}, written by a newer relay (this one knows {}): run that relay, or restore the backup made before the upgrade",
                    MIGRATIONS.len()
                )).into());
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
                tx.batch_execute(sql)?;
                tx.execute("UPDATE backchannel_schema SET version = $1", &[&(i as i32 + 1)])?;
            }
            Ok(())
        })
    }

    /// Runs `f` in a transaction and commits it: durable when this
    /// returns. A transaction the database aborted because it met another
    /// (a deadlock, a serialization failure) runs again.
    fn write<T>(
        &self,
        mut f: impl FnMut(&mut Tx<'_, '_>) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        let result = self.attempt(&mut conn, &mut f);
        self.pool.put(conn);
        result
    }

    fn attempt<T>(&self, conn: &mut Conn, f: &mut Work<'_, T>) -> Result<T, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let outcome: Result<T, Fail> = (|| {
                let mut tx = conn.client.transaction()?;
                let v = f(&mut Db {
                    c: &mut tx,
                    prepared: &mut conn.prepared,
                })?;
                tx.commit()?;
                Ok(v)
            })();
            match outcome {
                Ok(v) => {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(f) if f.retryable() && tries < ATTEMPTS => continue,
                Err(f) => return Err(f.into()),
            }
        }
    }

    /// Runs a read on a pooled connection (each statement sees what was
    /// committed when it began).
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Db<'_, Client>) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        let result = f(&mut Db {
            c: &mut conn.client,
            prepared: &mut conn.prepared,
        })
        .map_err(StoreError::from);
        self.pool.put(conn);
        result
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let idle = std::mem::take(&mut self.pool.lock().idle);
        // The connections' runtimes must not stop inside an async task.
        off_runtime(move || {
            drop(idle);
            if let Some(l) = listener {
                l.stop();
            }
        });
    }
}

/// The thread that listens for other instances' posts.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Listener {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Listens until `stop`, reconnecting after a lost connection; calls
/// `wake` for each recipient another instance stored envelopes for.
fn listen(
    config: &postgres::Config,
    instance: u64,
    stop: &AtomicBool,
    wake: &(dyn Fn(Handle) + Send + Sync),
) {
    let own = format!("{instance:016x}");
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut c) = config.connect(NoTls) else {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        if c.batch_execute(&format!("LISTEN {MAIL_CHANNEL}")).is_err() {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        'connected: while !stop.load(Ordering::Relaxed) && !c.is_closed() {
            let mut notes = c.notifications();
            let mut notes = notes.timeout_iter(Duration::from_millis(200));
            loop {
                match notes.next() {
                    Ok(Some(note)) => {
                        if let Some(h) = from_other(note.payload(), &own) {
                            wake(h);
                        }
                    }
                    // The timeout, or a lost connection (`is_closed` tells).
                    Ok(None) => break,
                    Err(_) => break 'connected,
                }
            }
        }
    }
}

/// The recipient a notification names, unless this instance sent it.
fn from_other(payload: &str, own: &str) -> Option<Handle> {
    let (from, who) = payload.split_once(' ')?;
    if from == own {
        return None;
    }
    Handle::new(who).ok()
}

/// Counts one use of `bucket`'s window (a new window once the last ended).
fn count_use(
    tx: &mut Tx<'_, '_>,
    bucket: &str,
    rate: Rate,
    now: Timestamp,
) -> Result<RateDecision, Fail> {
    let row = tx.query_one(
        "INSERT INTO rate_windows AS w (bucket, window_start_ms, window_end_ms, count) VALUES ($1, $2::bigint, $2::bigint + $3::bigint, 1)
         ON CONFLICT (bucket) DO UPDATE SET
            count = CASE WHEN w.window_end_ms <= $2 THEN 1 ELSE w.count + 1 END,
            window_start_ms = CASE WHEN w.window_end_ms <= $2 THEN $2 ELSE w.window_start_ms END,
            window_end_ms = CASE WHEN w.window_end_ms <= $2 THEN $2::bigint + $3::bigint ELSE w.window_end_ms END
         RETURNING count, window_end_ms",
        &[&bucket, &now.0, &rate.window_ms],
    )?;
    let (count, end): (i64, i64) = (row.get(0), row.get(1));
    Ok(if count as u64 > u64::from(rate.count) {
        RateDecision::Limited {
            until: Timestamp(end),
        }
    } else {
        RateDecision::Allowed
    })
}

/// A registration's write, whose unique keys mean `KeyTaken`.
fn keys_unique<T>(r: Result<T, postgres::Error>) -> Result<T, Fail> {
    let f = match r {
        Ok(v) => return Ok(v),
        Err(e) => Fail::from(e),
    };
    match violated(&f, &SqlState::UNIQUE_VIOLATION) {
        Some(_) => Err(StoreError::KeyTaken.into()),
        None => Err(f),
    }
}

fn key_version(tx: &mut Tx<'_, '_>, h: &Handle) -> Result<u64, Fail> {
    tx.query_opt(
        "UPDATE principals SET key_version = key_version + 1 WHERE handle = $1 RETURNING key_version",
        &[&h.as_str()],
    )?
    .map(|r| r.get::<_, i64>(0) as u64)
    .ok_or_else(|| StoreError::UnknownPrincipal(h.clone()).into())
}

fn stored_bytes_in(c: &mut Db<'_, impl GenericClient>, who: &Handle) -> Result<u64, Fail> {
    let row = c.query_one(
        "SELECT (SELECT coalesce(sum(bytes), 0) FROM mailbox_usage WHERE sender = $1)::bigint
              + (SELECT coalesce(sum(length(ciphertext)), 0) FROM offers WHERE submitter = $1)::bigint",
        &[&who.as_str()],
    )?;
    Ok(row.get::<_, i64>(0) as u64)
}

fn mailbox_use(tx: &mut Tx<'_, '_>, e: &Envelope) -> Result<MailboxUse, Fail> {
    let row = tx.query_one(
        "SELECT coalesce(sum(envelopes), 0)::bigint, coalesce(sum(bytes), 0)::bigint,
                coalesce(sum(CASE WHEN sender = $2 THEN envelopes END), 0)::bigint,
                coalesce(sum(CASE WHEN sender = $2 THEN bytes END), 0)::bigint
         FROM mailbox_usage WHERE recipient = $1",
        &[&e.recipient.as_str(), &e.sender.as_str()],
    )?;
    let n = |i| row.get::<_, i64>(i) as u64;
    Ok(MailboxUse {
        envelopes: n(0),
        bytes: n(1),
        own_envelopes: n(2),
        own_bytes: n(3),
    })
}

/// Inserts a channel's members, every one a registered principal.
fn insert_members(tx: &mut Tx<'_, '_>, id: &ChannelId, members: &[Handle]) -> Result<(), Fail> {
    for m in members {
        let inserted = tx.execute(
            "INSERT INTO channel_members (channel_id, handle) VALUES ($1, $2)",
            &[&&id.0[..], &m.as_str()],
        );
        if let Err(e) = inserted {
            let f = Fail::from(e);
            if violated(&f, &SqlState::FOREIGN_KEY_VIOLATION).is_some()
                || violated(&f, &SqlState::UNIQUE_VIOLATION).is_some()
            {
                return Err(StoreError::UnknownPrincipal(m.clone()).into());
            }
            return Err(f);
        }
    }
    Ok(())
}

fn stored_envelope(r: &Row) -> Result<StoredEnvelope, StoreError> {
    Ok(StoredEnvelope {
        cursor: r.get::<_, i64>(0) as u64,
        received_at: Timestamp(r.get(1)),
        envelope: Envelope {
            channel_id: ChannelId(id16(r.get(2))?),
            message_id: MessageId(id16(r.get(3))?),
            sender: handle(r.get(4))?,
            recipient: handle(r.get(5))?,
            seq_hint: r.get::<_, i64>(6) as u64,
            olm_type: OlmType::from_number(r.get::<_, i16>(7) as u8)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ciphertext: r.get(8),
        },
    })
}

fn exchange_in(
    c: &mut Db<'_, impl GenericClient>,
    id: &ExchangeId,
    lock: bool,
) -> Result<Option<ExchangeRecord>, Fail> {
    let sql = if lock {
        "SELECT channel_id, created_by, terms_digest, deadline_ms, state, released_at_ms FROM exchanges WHERE exchange_id = $1 FOR UPDATE"
    } else {
        "SELECT channel_id, created_by, terms_digest, deadline_ms, state, released_at_ms FROM exchanges WHERE exchange_id = $1"
    };
    let Some(row) = c.query_opt(sql, &[&&id.0[..]])? else {
        return Ok(None);
    };
    let participants = c
        .query(
            "SELECT handle FROM exchange_participants WHERE exchange_id = $1 ORDER BY handle",
            &[&&id.0[..]],
        )?
        .into_iter()
        .map(|r| handle(r.get(0)))
        .collect::<Result<Vec<_>, _>>()?;
    let state: String = row.get(4);
    Ok(Some(ExchangeRecord {
        id: *id,
        channel_id: ChannelId(id16(row.get(0))?),
        created_by: handle(row.get(1))?,
        participants,
        terms_digest: Digest(key32(row.get(2))?),
        deadline: Timestamp(row.get(3)),
        state: exchange_state(&state)?,
        released_at: row.get::<_, Option<i64>>(5).map(Timestamp),
    }))
}

/// Stores one message's copies (see [`RelayStore::post_counted`]).
fn post_in(
    tx: &mut Tx<'_, '_>,
    envelopes: &[Envelope],
    now: Timestamp,
    quota: &Quota,
    counts: &[(String, Rate)],
) -> Result<Vec<StoredEnvelope>, Fail> {
    for (bucket, rate) in counts {
        if let RateDecision::Limited { until } = count_use(tx, bucket, *rate, now)? {
            return Err(StoreError::RateLimited {
                bucket: bucket.clone(),
                until,
            }
            .into());
        }
    }
    // The sender's and recipients' rows, locked in one order (no deadlock
    // between two posts): counts and cursors are then drawn one post at a
    // time per mailbox, so cursor order is commit order.
    let mut parties: Vec<&str> = envelopes
        .iter()
        .flat_map(|e| [e.sender.as_str(), e.recipient.as_str()])
        .collect();
    parties.sort_unstable();
    parties.dedup();
    let known: Vec<String> = tx
        .query(
            "SELECT handle FROM principals WHERE handle = ANY($1) ORDER BY handle FOR UPDATE",
            &[&parties],
        )?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut fresh = Vec::with_capacity(envelopes.len());
    for e in envelopes {
        let hash = Digest::of(&[&e.encode()]);
        let existing: Option<Vec<u8>> = tx
            .query_opt(
                "SELECT envelope_hash FROM posted WHERE message_id = $1 AND recipient = $2",
                &[&&e.message_id.0[..], &e.recipient.as_str()],
            )?
            .map(|r| r.get(0));
        if is_fresh(e, existing, &hash)? {
            fresh.push((e, hash));
        }
    }
    if let Some(sender) = fresh.first().map(|(e, _)| &e.sender) {
        let adding: u64 = fresh.iter().map(|(e, _)| e.ciphertext.len() as u64).sum();
        judge_sender(sender, stored_bytes_in(tx, sender)?, adding, quota)?;
    }
    let mut stored = Vec::new();
    for (e, hash) in fresh {
        judge_mailbox(e, mailbox_use(tx, e)?, quota)?;
        if !known.iter().any(|k| k == e.recipient.as_str()) {
            return Err(StoreError::UnknownPrincipal(e.recipient.clone()).into());
        }
        tx.execute(
            "INSERT INTO posted (message_id, recipient, envelope_hash) VALUES ($1, $2, $3)",
            &[&&e.message_id.0[..], &e.recipient.as_str(), &&hash.0[..]],
        )?;
        let row = tx.query_one(
            "INSERT INTO envelopes (cursor, recipient, message_id, channel_id, sender, seq_hint, olm_type, ciphertext, received_at_ms)
             VALUES (nextval('envelope_cursors'), $1, $2, $3, $4, $5, $6, $7, $8) RETURNING cursor",
            &[
                &e.recipient.as_str(),
                &&e.message_id.0[..],
                &&e.channel_id.0[..],
                &e.sender.as_str(),
                &(e.seq_hint as i64),
                &i16::from(e.olm_type.number()),
                &e.ciphertext,
                &now.0,
            ],
        )?;
        stored.push(StoredEnvelope {
            cursor: row.get::<_, i64>(0) as u64,
            received_at: now,
            envelope: e.clone(),
        });
    }
    if let Some(e) = stored.first().map(|s| &s.envelope) {
        tx.execute(
            "INSERT INTO last_posts (sender, channel_id, message_id, seq_hint) VALUES ($1, $2, $3, $4)
             ON CONFLICT (sender, channel_id) DO UPDATE SET message_id = excluded.message_id, seq_hint = excluded.seq_hint",
            &[&e.sender.as_str(), &&e.channel_id.0[..], &&e.message_id.0[..], &(e.seq_hint as i64)],
        )?;
    }
    Ok(stored)
}

impl Posting for PostgresStore {
    fn token(&self, token_hash: &Digest) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        let row = self.read(|c| {
            Ok(c.query_opt(
                "SELECT handle, expires_at_ms FROM tokens WHERE token_hash = $1",
                &[&&token_hash.0[..]],
            )?)
        })?;
        row.map(|r| Ok((handle(r.get(0))?, Timestamp(r.get(1)))))
            .transpose()
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        let rows = self.read(|c| {
            let head = c.query_opt(
                "SELECT created_by, created_at_ms FROM channels WHERE channel_id = $1",
                &[&&id.0[..]],
            )?;
            let members = c.query(
                "SELECT handle FROM channel_members WHERE channel_id = $1 ORDER BY handle",
                &[&&id.0[..]],
            )?;
            Ok(head.map(|h| (h, members)))
        })?;
        let Some((head, members)) = rows else {
            return Ok(None);
        };
        Ok(Some(ChannelRecord {
            id: *id,
            members: members
                .into_iter()
                .map(|r| handle(r.get(0)))
                .collect::<Result<_, _>>()?,
            created_by: handle(head.get(0))?,
            created_at: Timestamp(head.get(1)),
        }))
    }

    fn post_counted(
        &self,
        envelopes: &[Envelope],
        now: Timestamp,
        quota: &Quota,
        counts: &[(String, Rate)],
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let instance = self.instance;
        self.write(|tx| {
            let stored = post_in(tx, envelopes, now, quota, counts)?;
            let mut woken: Vec<String> = stored
                .iter()
                .map(|s| format!("{instance:016x} {}", s.envelope.recipient))
                .collect();
            woken.dedup();
            if !woken.is_empty() {
                // Delivered to listeners when (and only if) this commits.
                tx.execute(
                    "SELECT pg_notify('backchannel_mail', w) FROM unnest($1::text[]) AS w",
                    &[&woken],
                )?;
            }
            Ok(stored)
        })
    }

    fn hit(&self, bucket: &str, rate: Rate, now: Timestamp) -> Result<RateDecision, StoreError> {
        self.write(|tx| count_use(tx, bucket, rate, now))
    }
}

impl RelayStore for PostgresStore {
    fn register(
        &self,
        h: &Handle,
        keys: &IdentityKeys,
        now: Timestamp,
        invite: Option<&Digest>,
    ) -> Result<PrincipalRecord, StoreError> {
        self.write(|tx| {
            if let Some(code) = invite {
                let used = tx.execute(
                    "DELETE FROM invites WHERE code_hash = $1 AND expires_at_ms > $2",
                    &[&&code.0[..], &now.0],
                )?;
                if used == 0 {
                    return Err(StoreError::InviteInvalid.into());
                }
            }
            let (c, e) = (&keys.curve25519[..], &keys.ed25519[..]);
            let holder = tx.query_opt(
                "SELECT handle FROM principals WHERE handle <> $1 AND (curve25519 IN ($2, $3) OR ed25519 IN ($2, $3)) LIMIT 1",
                &[&h.as_str(), &c, &e],
            )?;
            if holder.is_some() {
                return Err(StoreError::KeyTaken.into());
            }
            // The unique keys refuse what another instance registered at
            // the same moment, after the check above.
            let inserted = keys_unique(tx.execute(
                "INSERT INTO principals (handle, curve25519, ed25519, key_version, created_at_ms) VALUES ($1, $2, $3, 1, $4)
                 ON CONFLICT (handle) DO NOTHING",
                &[&h.as_str(), &c, &e, &now.0],
            ))?;
            let version = if inserted == 1 {
                1
            } else {
                keys_unique(tx.query_opt(
                    "UPDATE principals SET curve25519 = $2, ed25519 = $3, key_version = key_version + 1, released = false
                     WHERE handle = $1 AND released RETURNING key_version",
                    &[&h.as_str(), &c, &e],
                ))?
                .ok_or_else(|| StoreError::HandleTaken(h.clone()))?
                .get::<_, i64>(0) as u64
            };
            Ok(PrincipalRecord { handle: h.clone(), keys: *keys, key_version: version })
        })
    }

    fn create_invite(&self, code_hash: &Digest, expires: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO invites (code_hash, expires_at_ms) VALUES ($1, $2)",
                &[&&code_hash.0[..], &expires.0],
            )?;
            Ok(())
        })
    }

    fn release_principal(&self, h: &Handle) -> Result<bool, StoreError> {
        self.write(|tx| {
            let found = tx.execute(
                "UPDATE principals SET released = true, acked_through = 0 WHERE handle = $1",
                &[&h.as_str()],
            )?;
            if found == 0 {
                return Ok(false);
            }
            for sql in [
                "DELETE FROM one_time_keys WHERE handle = $1",
                "DELETE FROM fallback_keys WHERE handle = $1",
                "DELETE FROM tokens WHERE handle = $1",
                "DELETE FROM challenges WHERE handle = $1",
                "DELETE FROM envelopes WHERE recipient = $1",
            ] {
                tx.execute(sql, &[&h.as_str()])?;
            }
            Ok(true)
        })
    }

    fn principal(&self, h: &Handle) -> Result<Option<PrincipalRecord>, StoreError> {
        let row = self.read(|c| {
            Ok(c.query_opt(
                "SELECT curve25519, ed25519, key_version FROM principals WHERE handle = $1 AND NOT released",
                &[&h.as_str()],
            )?)
        })?;
        row.map(|r| {
            Ok(PrincipalRecord {
                handle: h.clone(),
                keys: IdentityKeys {
                    curve25519: key32(r.get(0))?,
                    ed25519: key32(r.get(1))?,
                },
                key_version: r.get::<_, i64>(2) as u64,
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
        self.write(|tx| {
            tx.execute(
                "INSERT INTO challenges (challenge, handle, expires_at_ms) VALUES ($1, $2, $3)",
                &[&&challenge[..], &h.as_str(), &expires.0],
            )?;
            Ok(())
        })
    }

    fn take_challenge(
        &self,
        challenge: &[u8; 32],
    ) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        let row = self.write(|tx| {
            Ok(tx.query_opt(
                "DELETE FROM challenges WHERE challenge = $1 RETURNING handle, expires_at_ms",
                &[&&challenge[..]],
            )?)
        })?;
        row.map(|r| Ok((handle(r.get(0))?, Timestamp(r.get(1)))))
            .transpose()
    }

    fn put_token(
        &self,
        token_hash: &Digest,
        h: &Handle,
        expires: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tokens (token_hash, handle, expires_at_ms) VALUES ($1, $2, $3)",
                &[&&token_hash.0[..], &h.as_str(), &expires.0],
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
        self.write(|tx| {
            let version = key_version(tx, h)?;
            if replace {
                tx.execute("DELETE FROM one_time_keys WHERE handle = $1", &[&h.as_str()])?;
            }
            for k in one_time {
                tx.execute(
                    "INSERT INTO one_time_keys (handle, key, signature) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&h.as_str(), &&k.key[..], &&k.signature[..]],
                )?;
            }
            if let Some(k) = fallback {
                tx.execute(
                    "INSERT INTO fallback_keys (handle, key, signature) VALUES ($1, $2, $3)
                     ON CONFLICT (handle) DO UPDATE SET key = excluded.key, signature = excluded.signature, claimed = false",
                    &[&h.as_str(), &&k.key[..], &&k.signature[..]],
                )?;
            }
            let row = tx.query_one(
                "SELECT (SELECT count(*) FROM one_time_keys WHERE handle = $1),
                        EXISTS (SELECT 1 FROM fallback_keys WHERE handle = $1)",
                &[&h.as_str()],
            )?;
            let count = row.get::<_, i64>(0) as u64;
            if count > ONE_TIME_KEYS_HELD_MAX {
                return Err(StoreError::LimitExceeded(
                    "at most 1000 unclaimed one-time keys per principal",
                )
                .into());
            }
            Ok(KeyCounts {
                one_time_keys: count,
                has_fallback: row.get(1),
                key_version: version,
            })
        })
    }

    fn claim_key(&self, h: &Handle, one_time: bool) -> Result<Option<Claimed>, StoreError> {
        self.write(|tx| {
            // SKIP LOCKED: two instances claiming at once take two keys.
            let taken = if one_time {
                tx.query_opt(
                    "DELETE FROM one_time_keys WHERE id = (
                        SELECT id FROM one_time_keys WHERE handle = $1 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING key, signature",
                    &[&h.as_str()],
                )?
            } else {
                None
            };
            let (row, fallback) = match taken {
                Some(row) => (Some(row), false),
                None => (
                    tx.query_opt(
                        "UPDATE fallback_keys SET claimed = true WHERE handle = $1 RETURNING key, signature",
                        &[&h.as_str()],
                    )?,
                    true,
                ),
            };
            let Some(row) = row else {
                return Ok(None);
            };
            let version = key_version(tx, h)?;
            Ok(Some(Claimed {
                key: SignedKey {
                    key: key32(row.get(0))?,
                    fallback,
                    signature: sig64(row.get(1))?,
                },
                key_version: version,
            }))
        })
    }

    fn key_stock(&self, h: &Handle) -> Result<KeyStock, StoreError> {
        let row = self.read(|c| {
            Ok(c.query_one(
                "SELECT (SELECT count(*) FROM one_time_keys WHERE handle = $1),
                        (SELECT claimed FROM fallback_keys WHERE handle = $1)",
                &[&h.as_str()],
            )?)
        })?;
        let fallback: Option<bool> = row.get(1);
        Ok(KeyStock {
            one_time_keys: row.get::<_, i64>(0) as u64,
            has_fallback: fallback.is_some(),
            fallback_claimed: fallback == Some(true),
        })
    }

    fn create_channel(&self, c: &ChannelRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO channels (channel_id, created_by, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&&c.id.0[..], &c.created_by.as_str(), &c.created_at.0],
            )?;
            if inserted == 0 {
                return Err(StoreError::ChannelExists(c.id).into());
            }
            insert_members(tx, &c.id, &c.members)
        })
    }

    fn set_channel_members(&self, id: &ChannelId, members: &[Handle]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM channel_members WHERE channel_id = $1",
                &[&&id.0[..]],
            )?;
            insert_members(tx, id, members)
        })
    }

    fn create_exchange(&self, e: &ExchangeRecord, now: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO exchanges (exchange_id, channel_id, created_by, terms_digest, deadline_ms, created_at_ms, state)
                 VALUES ($1, $2, $3, $4, $5, $6, 'open') ON CONFLICT DO NOTHING",
                &[&&e.id.0[..], &&e.channel_id.0[..], &e.created_by.as_str(), &&e.terms_digest.0[..], &e.deadline.0, &now.0],
            )?;
            if inserted == 0 {
                return Err(StoreError::ExchangeClosed("exists already").into());
            }
            for p in &e.participants {
                tx.execute(
                    "INSERT INTO exchange_participants (exchange_id, handle) VALUES ($1, $2)",
                    &[&&e.id.0[..], &p.as_str()],
                )?;
            }
            Ok(())
        })
    }

    fn exchange(&self, id: &ExchangeId) -> Result<Option<ExchangeRecord>, StoreError> {
        self.read(|c| exchange_in(c, id, false))
    }

    fn submit_offer(
        &self,
        id: &ExchangeId,
        copies: &[OfferCopy],
        now: Timestamp,
    ) -> Result<ExchangeRecord, StoreError> {
        self.write(|tx| {
            // The exchange's row lock: two instances' last submissions
            // cannot both see the other missing, nor one release after
            // the deadline's destruction.
            let e = exchange_in(tx, id, true)?.ok_or(StoreError::ExchangeClosed("is unknown"))?;
            let submitter = judge_submission(&e, copies, now)?;
            tx.execute(
                "DELETE FROM offers WHERE exchange_id = $1 AND submitter = $2",
                &[&&id.0[..], &submitter.as_str()],
            )?;
            for c in copies {
                tx.execute(
                    "INSERT INTO offers (exchange_id, submitter, recipient, olm_type, ciphertext, submitted_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&&id.0[..], &c.submitter.as_str(), &c.recipient.as_str(), &i16::from(c.olm_type.number()), &c.ciphertext, &now.0],
                )?;
            }
            let submitted: i64 = tx
                .query_one(
                    "SELECT count(DISTINCT submitter) FROM offers WHERE exchange_id = $1",
                    &[&&id.0[..]],
                )?
                .get(0);
            if submitted as usize == e.participants.len() {
                tx.execute(
                    "UPDATE exchanges SET state = 'released', released_at_ms = $2 WHERE exchange_id = $1",
                    &[&&id.0[..], &now.0],
                )?;
            }
            Ok(exchange_in(tx, id, false)?.ok_or(StoreError::ExchangeClosed("is unknown"))?)
        })
    }

    fn withdraw_offer(
        &self,
        id: &ExchangeId,
        submitter: &Handle,
    ) -> Result<ExchangeRecord, StoreError> {
        self.write(|tx| {
            let e = exchange_in(tx, id, true)?.ok_or(StoreError::ExchangeClosed("is unknown"))?;
            if e.state != ExchangeState::Open {
                return Err(StoreError::ExchangeClosed("is no longer open").into());
            }
            tx.execute(
                "DELETE FROM offers WHERE exchange_id = $1 AND submitter = $2",
                &[&&id.0[..], &submitter.as_str()],
            )?;
            Ok(e)
        })
    }

    fn has_offer(&self, id: &ExchangeId, who: &Handle) -> Result<bool, StoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT 1 FROM offers WHERE exchange_id = $1 AND submitter = $2 LIMIT 1",
                &[&&id.0[..], &who.as_str()],
            )?
            .is_some())
        })
    }

    fn offers_for(
        &self,
        id: &ExchangeId,
        recipient: &Handle,
    ) -> Result<Vec<OfferCopy>, StoreError> {
        let rows = self.read(|c| {
            Ok(c.query(
                "SELECT submitter, olm_type, ciphertext FROM offers WHERE exchange_id = $1 AND recipient = $2 ORDER BY submitter",
                &[&&id.0[..], &recipient.as_str()],
            )?)
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(OfferCopy {
                    submitter: handle(r.get(0))?,
                    recipient: recipient.clone(),
                    olm_type: OlmType::from_number(r.get::<_, i16>(1) as u8)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    ciphertext: r.get(2),
                })
            })
            .collect()
    }

    fn destroy_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(|tx| {
            // The state changes first, under the rows' locks: a submission
            // waiting on one then finds the exchange destroyed.
            let gone = tx.query(
                "UPDATE exchanges SET state = 'destroyed' WHERE state = 'open' AND deadline_ms <= $1 RETURNING exchange_id",
                &[&now.0],
            )?;
            let ids: Vec<Vec<u8>> = gone.iter().map(|r| r.get(0)).collect();
            tx.execute("DELETE FROM offers WHERE exchange_id = ANY($1)", &[&ids])?;
            Ok(ids.len() as u64)
        })
    }

    fn mailbox(
        &self,
        recipient: &Handle,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let rows = self.read(|c| {
            Ok(c.query(
                "SELECT cursor, received_at_ms, channel_id, message_id, sender, recipient, seq_hint, olm_type, ciphertext
                 FROM envelopes WHERE recipient = $1 AND cursor > $2 ORDER BY cursor LIMIT $3",
                &[&recipient.as_str(), &(after.min(i64::MAX as u64) as i64), &(limit.min(i64::MAX as usize) as i64)],
            )?)
        })?;
        rows.iter().map(stored_envelope).collect()
    }

    fn ack(&self, recipient: &Handle, through: u64) -> Result<u64, StoreError> {
        self.write(|tx| {
            let highest: i64 = tx
                .query_opt(
                    "SELECT greatest(last_cursor, coalesce((SELECT max(cursor) FROM envelopes WHERE recipient = $1), 0))
                     FROM principals WHERE handle = $1",
                    &[&recipient.as_str()],
                )?
                .ok_or_else(|| StoreError::UnknownPrincipal(recipient.clone()))?
                .get(0);
            if through > highest as u64 {
                return Err(StoreError::AckBeyondMailbox {
                    through,
                    highest: highest as u64,
                }
                .into());
            }
            let through = through as i64;
            let n = tx.execute(
                "DELETE FROM envelopes WHERE recipient = $1 AND cursor <= $2",
                &[&recipient.as_str(), &through],
            )?;
            tx.execute(
                "UPDATE principals SET acked_through = greatest(acked_through, $2) WHERE handle = $1",
                &[&recipient.as_str(), &through],
            )?;
            Ok(n)
        })
    }

    fn own_record(&self, who: &Handle) -> Result<OwnRecord, StoreError> {
        let (acked, posts) = self.read(|c| {
            let acked = c
                .query_opt(
                    "SELECT acked_through FROM principals WHERE handle = $1",
                    &[&who.as_str()],
                )?
                .ok_or_else(|| StoreError::UnknownPrincipal(who.clone()))?;
            let posts = c.query(
                "SELECT channel_id, message_id, seq_hint FROM last_posts WHERE sender = $1 ORDER BY channel_id",
                &[&who.as_str()],
            )?;
            Ok((acked, posts))
        })?;
        let last_posts = posts
            .into_iter()
            .map(|r| {
                Ok((
                    ChannelId(id16(r.get(0))?),
                    MessageId(id16(r.get(1))?),
                    r.get::<_, i64>(2) as u64,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(OwnRecord {
            acked_through: acked.get::<_, i64>(0) as u64,
            last_posts,
        })
    }

    fn purge_expired(
        &self,
        now: Timestamp,
        unfetched_before: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(|tx| {
            let mut n = 0;
            for sql in [
                "DELETE FROM challenges WHERE expires_at_ms <= $1",
                "DELETE FROM tokens WHERE expires_at_ms <= $1",
                "DELETE FROM invites WHERE expires_at_ms <= $1",
                "DELETE FROM rate_windows WHERE window_end_ms <= $1",
            ] {
                n += tx.execute(sql, &[&now.0])?;
            }
            // In cursor order up to the first envelope young enough to stay,
            // as on SQLite (no index by age to keep up at every post).
            n += tx.execute(
                "DELETE FROM envelopes WHERE cursor < coalesce(
                    (SELECT min(cursor) FROM envelopes WHERE received_at_ms >= $1),
                    9223372036854775807)",
                &[&unfetched_before.0],
            )?;
            Ok(n)
        })
    }

    fn stored_bytes(&self, who: &Handle) -> Result<u64, StoreError> {
        self.read(|c| stored_bytes_in(c, who))
    }

    fn usage(&self) -> Result<Usage, StoreError> {
        let row = self.read(|c| {
            Ok(c.query_one(
                "SELECT coalesce(sum(envelopes), 0)::bigint, coalesce(sum(bytes), 0)::bigint,
                        coalesce((SELECT max(n) FROM (SELECT sum(envelopes) AS n FROM mailbox_usage GROUP BY recipient) AS m), 0)::bigint
                 FROM mailbox_usage",
                &[],
            )?)
        })?;
        let n = |i| row.get::<_, i64>(i) as u64;
        Ok(Usage {
            envelopes: n(0),
            bytes: n(1),
            deepest_mailbox: n(2),
        })
    }

    fn free_space(&self) -> Result<Option<u64>, StoreError> {
        // The database's disk may be another machine's: not known here.
        // A full disk still refuses writes (`Full`).
        Ok(None)
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        // PostgreSQL keeps a deleted row's bytes in its data file until the
        // space is reused, and in its WAL until the segment is recycled
        // (SECURITY.md). VACUUM makes the space of deleted envelopes and
        // offers reusable, so later writes overwrite it sooner.
        self.read(|c| {
            c.batch_execute("VACUUM (SKIP_LOCKED) envelopes, offers, challenges, tokens")?;
            Ok(())
        })?;
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn write_counts(&self) -> WriteCounts {
        let commits = self.commits.load(Ordering::Relaxed);
        WriteCounts {
            commits,
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            writes: commits,
            queued: self.pool.lock().waiting as u64,
        }
    }

    fn row_counts(&self) -> Result<RowCounts, StoreError> {
        let row = self.read(|c| {
            Ok(c.query_one(
                "SELECT (SELECT count(*) FROM principals), (SELECT count(*) FROM one_time_keys),
                        (SELECT count(*) FROM fallback_keys), (SELECT count(*) FROM challenges),
                        (SELECT count(*) FROM tokens), (SELECT count(*) FROM channels),
                        (SELECT count(*) FROM channel_members), (SELECT count(*) FROM envelopes),
                        (SELECT count(*) FROM posted)",
                &[],
            )?)
        })?;
        let n = |i| row.get::<_, i64>(i) as u64;
        Ok(RowCounts {
            principals: n(0),
            one_time_keys: n(1),
            fallback_keys: n(2),
            challenges: n(3),
            tokens: n(4),
            channels: n(5),
            channel_members: n(6),
            envelopes: n(7),
            posted: n(8),
        })
    }

    fn follow_other_instances(&self, wake: Box<dyn Fn(Handle) + Send + Sync>) {
        let mut slot = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (pool, instance, flag) = (Arc::clone(&self.pool), self.instance, Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("backchannel-listen".into())
            .spawn(move || listen(&pool.config, instance, &flag, &*wake));
        if let Ok(thread) = thread {
            *slot = Some(Listener { stop, thread });
        }
    }
}
