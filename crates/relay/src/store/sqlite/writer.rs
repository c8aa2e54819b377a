//! The one writer: a thread that owns the write connection and commits,
//! in one transaction and one fsync, every write that arrived while the
//! previous commit was being made durable (group commit).
//!
//! Each write runs in a savepoint of the batch's transaction, so a write
//! that fails leaves the others of its batch untouched, and sees what the
//! writes before it in the batch did (two posts of one message id in one
//! batch are a post and its duplicate). A durable write is answered only
//! after the commit that holds it has returned, which with
//! `synchronous=FULL` is after the fsync.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::checkpointer::Idle;
use super::StoreError;

/// Most writes committed together: bounds a batch's transaction, and so
/// the wait of the first write in it.
const BATCH_MAX: usize = 512;

/// Writes in a batch at most for the writer to count as lightly loaded
/// (see the checkpointer): closed-loop senders leave the queue empty
/// after every commit, so the batch's size is what tells the load.
const LIGHT_BATCH: usize = 2;

/// How a write is committed and answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// A record: answered once the commit holding it is durable.
    Durable,
    /// A counter (a rate window): answered as soon as it ran, and carried
    /// to the disk by the commit of its batch. A batch of counters only
    /// commits without an fsync; a crash may forget the last counts.
    Counter,
    /// Connection settings or work that manages its own transactions:
    /// run alone, between batches.
    Outside,
}

/// A write queued for the writer: its work, run once in a savepoint, and
/// its answer, given once its batch is settled.
trait Write: Send {
    /// Runs the work and keeps its result; returns whether it succeeded
    /// (so the writer knows to keep or undo its savepoint).
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError>;
    /// Answers the caller: the work's result if it failed, else the
    /// outcome of the commit (`settled`) that holds it.
    fn answer(self: Box<Self>, settled: Result<(), StoreError>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: Reply<T>,
}

/// Where a write's answer goes: a thread blocked on it, or an async task
/// (which then needs no thread of its own to wait on the writer).
enum Reply<T> {
    Blocking(mpsc::SyncSender<Result<T, StoreError>>),
    Async(tokio::sync::oneshot::Sender<Result<T, StoreError>>),
}

impl<T, F> Write for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let Some(work) = self.work.take() else {
            return Err(StoreError::Backend("a write was run twice".into()));
        };
        let result = work(conn);
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.result = Some(result);
        outcome
    }

    fn answer(self: Box<Self>, settled: Result<(), StoreError>) {
        let answer = match self.result {
            Some(Err(e)) => Err(e),
            Some(Ok(value)) => settled.map(|()| value),
            None => Err(settled.err().unwrap_or_else(failed)),
        };
        // The caller may have stopped waiting: nobody to tell then.
        match self.reply {
            Reply::Blocking(to) => {
                let _ = to.send(answer);
            }
            Reply::Async(to) => {
                let _ = to.send(answer);
            }
        }
    }
}

struct Job {
    mode: Mode,
    write: Box<dyn Write>,
}

/// The handle to the writer thread; dropping it lets the thread finish
/// what is queued, close the connection and stop.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    /// Writes sent and not yet taken into a batch.
    queued: Arc<AtomicUsize>,
    /// Writes committed (their savepoint kept, their batch committed).
    committed: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

fn failed() -> StoreError {
    StoreError::Backend("a write failed unexpectedly inside the database writer".into())
}

impl Writer {
    /// Starts the thread that owns `conn`; after a light batch, with
    /// nothing queued, it runs `idle`'s checkpoints.
    pub(super) fn start(conn: Connection, idle: Idle) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let committed = Arc::new(AtomicU64::new(0));
        let counters = Counters {
            queued: Arc::clone(&queued),
            committed: Arc::clone(&committed),
        };
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(&conn, &queue, &counters, &idle))
            .map_err(|e| {
                StoreError::Backend(format!("could not start the database writer: {e}"))
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            queued,
            committed,
            thread: Some(thread),
        })
    }

    /// Runs `f` on the write connection and waits for its answer (for a
    /// durable write, until the commit that holds it is durable).
    pub(super) fn run<T, F>(&self, mode: Mode, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answered) = mpsc::sync_channel(1);
        self.queue(mode, f, Reply::Blocking(reply))?;
        answered.recv().map_err(|_| StoreError::writer_stopped())?
    }

    /// Queues `f` as [`Writer::run`] does, without waiting: the answer
    /// comes through the returned receiver, which is closed unanswered if
    /// the writer has stopped.
    pub(super) fn submit<T, F>(
        &self,
        mode: Mode,
        f: F,
    ) -> tokio::sync::oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answered) = tokio::sync::oneshot::channel();
        // A stopped writer drops the reply, which closes the receiver.
        let _ = self.queue(mode, f, Reply::Async(reply));
        answered
    }

    fn queue<T, F>(&self, mode: Mode, f: F, reply: Reply<T>) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let write = Box::new(Pending {
            work: Some(f),
            result: None,
            reply,
        });
        let jobs = self.jobs.as_ref().ok_or_else(StoreError::writer_stopped)?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        jobs.send(Job { mode, write })
            .map_err(|_| StoreError::writer_stopped())
    }
}

impl Writer {
    /// Writes waiting for the writer (sent, not yet in a batch).
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Writes committed since the writer started.
    pub(super) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            // A panicked writer has nothing more to close.
            let _ = thread.join();
        }
    }
}

/// What the writer counts for the metrics.
struct Counters {
    queued: Arc<AtomicUsize>,
    committed: Arc<AtomicU64>,
}

/// The writer's loop: wait for a write, take every other one queued
/// behind it (those that arrived during the last commit), run them.
fn serve(conn: &Connection, queue: &mpsc::Receiver<Job>, counters: &Counters, idle: &Idle) {
    let mut synced = None;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        counters.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        let light = batch.len() <= LIGHT_BATCH;
        let mut together = Vec::new();
        for mut job in batch {
            if job.mode == Mode::Outside {
                commit_batch(conn, std::mem::take(&mut together), counters, &mut synced);
                let _ = attempt(conn, &mut *job.write);
                job.write.answer(Ok(()));
                // It may have changed the connection's settings.
                synced = None;
            } else {
                together.push(job);
            }
        }
        commit_batch(conn, together, counters, &mut synced);
        if light && counters.queued.load(Ordering::Relaxed) == 0 {
            idle.checkpoint(conn);
        }
    }
}

/// Sets `synchronous` to FULL for a durable batch, NORMAL for counters
/// alone, unless it is so already (`synced`: FULL or not, if known).
fn set_synchronous(
    conn: &Connection,
    durable: bool,
    synced: &mut Option<bool>,
) -> Result<(), StoreError> {
    if *synced == Some(durable) {
        return Ok(());
    }
    *synced = None;
    conn.execute_batch(if durable {
        "PRAGMA synchronous=FULL"
    } else {
        "PRAGMA synchronous=NORMAL"
    })?;
    *synced = Some(durable);
    Ok(())
}

/// Runs a write; a panic in it is its failure, not the writer's end.
fn attempt(conn: &Connection, write: &mut dyn Write) -> Result<(), StoreError> {
    catch_unwind(AssertUnwindSafe(|| write.run(conn))).unwrap_or_else(|_| Err(failed()))
}

/// Runs a statement of the writer's own, parsed once per connection.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs `jobs` in one transaction (a savepoint each) and answers them.
fn commit_batch(conn: &Connection, jobs: Vec<Job>, counters: &Counters, sync: &mut Option<bool>) {
    if jobs.is_empty() {
        return;
    }
    let durable = jobs.iter().any(|j| j.mode == Mode::Durable);
    // Counters alone need no fsync; `synchronous` can change only
    // outside a transaction, and a durable batch never starts unless it
    // is FULL again.
    let synced = set_synchronous(conn, durable, sync);
    let mut pending: Vec<Box<dyn Write>> = Vec::new();
    // Writes whose savepoint was kept: with none, nothing is committed
    // (a refused write costs no fsync).
    let mut kept = 0usize;
    let mut begun = match synced {
        Err(e) if durable => Err(e),
        _ => run_cached(conn, "BEGIN IMMEDIATE"),
    };
    for mut job in jobs {
        if let Err(e) = &begun {
            job.write.answer(Err(e.clone()));
            continue;
        }
        if let Err(e) = run_cached(conn, "SAVEPOINT write") {
            job.write.answer(Err(e));
            continue;
        }
        let outcome = attempt(conn, &mut *job.write);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (a full disk can):
            // what the writes before this one did is gone with it.
            let lost = outcome.err().unwrap_or_else(|| {
                StoreError::Backend("a write ended its batch's transaction".into())
            });
            for w in pending.drain(..) {
                w.answer(Err(lost.clone()));
            }
            kept = 0;
            job.write.answer(Err(lost));
            begun = run_cached(conn, "BEGIN IMMEDIATE");
            continue;
        }
        let settled = if outcome.is_ok() {
            run_cached(conn, "RELEASE write")
        } else {
            run_cached(conn, "ROLLBACK TO write").and_then(|()| run_cached(conn, "RELEASE write"))
        };
        if let Err(e) = settled {
            job.write.answer(Err(e));
            continue;
        }
        kept += usize::from(outcome.is_ok());
        if job.mode == Mode::Counter {
            job.write.answer(Ok(()));
        } else {
            pending.push(job.write);
        }
    }
    let committed = match begun {
        Ok(()) if kept == 0 => run_cached(conn, "ROLLBACK"),
        Ok(()) => run_cached(conn, "COMMIT"),
        Err(e) => Err(e),
    };
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if committed.is_ok() {
        counters.committed.fetch_add(kept as u64, Ordering::Relaxed);
    }
    for w in pending {
        w.answer(committed.clone());
    }
}
