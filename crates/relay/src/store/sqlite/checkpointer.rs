//! The checkpointer: a thread that copies the WAL into the database file
//! (a PASSIVE checkpoint, which never waits for or blocks the writer)
//! when the writer, lightly loaded, finds more than [`WAL_PASSIVE_PAGES`]
//! in it.
//!
//! SQLite starts the WAL over from its beginning, over blocks the file
//! already has, only at a commit that began after every frame was
//! copied; appending to a WAL that grows instead makes each fsync also
//! write the file's size and its new blocks (about 0.25 ms against 0.1 ms
//! on this disk). The writer always begins again before the thread is
//! done, so once it is ([`Idle`]) the writer copies the few frames
//! committed since itself, between two batches.
//!
//! Only a lightly loaded writer does either (its last batch a write or two,
//! nothing queued): then its fsync is most of a commit's time. Under a
//! load that batches writes, a batch shares its fsync among many, and the
//! checkpoint's own writes and fsync of the database file would delay the
//! batches behind it (measured: p99 at 32 senders 5 ms to 8). The
//! maintenance pass still truncates the WAL every 5 s and after acks,
//! which is what empties it of deleted ciphertext, and bounds it under
//! any load.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::StoreError;

/// WAL pages (4 KiB each) past which a lightly loaded writer asks for a
/// checkpoint: about half a second of posts at 1 sender.
const WAL_PASSIVE_PAGES: i32 = 1024;

/// Frames committed during the thread's last pass that the writer may be
/// left to copy (a few commits' worth).
const TAIL_PAGES: i64 = 64;

/// Passes of the thread at most per wake: if commits outrun it, a later
/// wake tries again.
const PASSES_MAX: usize = 8;

/// What the checkpointer and the writer share.
#[derive(Debug, Default)]
struct Shared {
    /// Frames in the WAL after the writer's last commit (its WAL hook).
    frames: AtomicI32,
    /// The thread copied every frame it saw; the writer has yet to copy
    /// the rest.
    caught_up: AtomicBool,
    /// Checkpoints run (the thread's, the writer's, the maintenance
    /// pass's), for the metrics.
    runs: AtomicU64,
}

/// The writer's side, called when it is lightly loaded.
#[derive(Debug)]
pub(super) struct Idle {
    shared: Arc<Shared>,
    wake: mpsc::SyncSender<()>,
}

impl Idle {
    /// Copies the frames committed since the thread caught up (so the
    /// writer's next commit starts the WAL over), or wakes the thread if
    /// the WAL has grown past [`WAL_PASSIVE_PAGES`]. A busy or failed
    /// checkpoint is left to the next time.
    pub(super) fn checkpoint(&self, writer: &Connection) {
        if self.shared.caught_up.swap(false, Ordering::AcqRel) {
            if passive(writer).is_some() {
                self.shared.runs.fetch_add(1, Ordering::Relaxed);
            }
        } else if self.shared.frames.load(Ordering::Relaxed) > WAL_PASSIVE_PAGES {
            // One wake pending is enough: a pass copies every frame.
            let _ = self.wake.try_send(());
        }
    }
}

/// A PASSIVE checkpoint on `conn`: the WAL's frames when it started, if
/// it copied every one of them.
fn passive(conn: &Connection) -> Option<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })
    .ok()
    .and_then(|(busy, frames)| (busy == 0).then_some(frames))
}

/// Checkpoints until one pass finds at most [`TAIL_PAGES`] frames more
/// than the last (the writer copies those), or passes fail to finish.
fn catch_up(conn: &Connection, shared: &Shared) {
    let mut seen = 0;
    for _ in 0..PASSES_MAX {
        let Some(frames) = passive(conn) else { return };
        shared.runs.fetch_add(1, Ordering::Relaxed);
        // Fewer frames than before: the WAL has started over already.
        if frames.saturating_sub(seen) <= TAIL_PAGES {
            shared.caught_up.store(true, Ordering::Release);
            return;
        }
        seen = frames;
    }
}

/// The checkpoint connection (shared with the maintenance pass's
/// truncating checkpoint, so the two never run at once) and the thread
/// that runs passive checkpoints on it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    conn: Arc<Mutex<Connection>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on `conn` and has `writer`'s commits count the
    /// WAL's frames; the writer wakes the thread and finishes its
    /// checkpoints through the [`Idle`]. The thread stops once that is
    /// dropped (with the writer).
    pub(super) fn start(
        conn: Connection,
        writer: &mut Connection,
    ) -> Result<(Self, Idle), StoreError> {
        let conn = Arc::new(Mutex::new(conn));
        let shared = Arc::new(Shared::default());
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = {
            let conn = Arc::clone(&conn);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sqlite-checkpointer".into())
                .spawn(move || {
                    // Busy or failed, the writer's next light batch asks again.
                    while woken.recv().is_ok() {
                        catch_up(&lock(&conn), &shared);
                    }
                })
                .map_err(|e| {
                    StoreError::Backend(format!("could not start the checkpointer: {e}"))
                })?
        };
        // Set after `wal_autocheckpoint`, which would replace it.
        let counted = Arc::clone(&shared);
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames| {
            counted.frames.store(frames, Ordering::Relaxed);
            Ok(())
        }))?;
        let idle = Idle {
            shared: Arc::clone(&shared),
            wake,
        };
        let checkpointer = Checkpointer {
            conn,
            shared,
            thread: Some(thread),
        };
        Ok((checkpointer, idle))
    }

    /// The checkpoint connection, for a truncating checkpoint.
    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Counts a checkpoint run by the maintenance pass.
    pub(super) fn ran(&self) {
        self.shared.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Checkpoints run since the store opened.
    pub(super) fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::Relaxed)
    }
}

/// A panic while holding the lock leaves SQLite consistent, so a poisoned
/// lock is still usable.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // The thread ends when the writer (and with it the `Idle` and its
        // sender) is gone, which the store drops first.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
