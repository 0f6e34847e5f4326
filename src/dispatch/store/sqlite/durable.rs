//! When the writer's commits are on disk, and who hears of them — off the writer thread.
//!
//! The writer connection commits with `synchronous=NORMAL`: `COMMIT` writes the transaction's
//! WAL frames and returns without waiting for the disk. Nobody hears of a commit before it is
//! on disk: every batch's answers — a `202`, an event a worker claimed, the workers' wake-up —
//! go to the syncer thread, which `fdatasync`s the WAL file and only then answers each batch
//! committed before that sync began. That is the flush `synchronous=FULL` makes inside
//! `COMMIT`, moved to another thread so that the writer runs and commits the next batch while
//! the disk flushes the last one (measured: the flush was most of a single-alert request's
//! wall time, docs/benchmarks.md "Intake").
//!
//! A sync that fails poisons the store until the process restarts (the kernel may have dropped
//! the pages it could not write, so nothing committed since the last good sync can be trusted):
//! the batches waiting for it and every later call answer `Unavailable` (`503` at the intake).
//!
//! Checkpoints (copying the WAL back into the database file, which fsyncs that file) run on a
//! connection of their own, on their own thread, instead of stalling the writer after a commit;
//! the WAL stays bounded (`WAL_BOUND_FRAMES`).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;

use super::{unavailable, BatchCounters, Health, Reply};
use crate::dispatch::store::{StoreError, StoreResult};

/// The WAL file is extended to this size with zeros when the store opens: SQLite overwrites a
/// WAL from its start after each complete checkpoint, so in steady state a commit rewrites
/// blocks the file already has. Appending instead makes every flush also commit the file
/// system's journal (the file's size changed): measured on this disk, an appending
/// write+fdatasync took 0.6–3.7 ms, an overwriting one 0.17–0.35 ms. Zeros past the last
/// valid frame are what SQLite itself leaves after a WAL restart: recovery stops at the first
/// frame whose salt does not match the header.
pub(super) const WAL_PREALLOCATED_BYTES: u64 = 8 << 20;

/// A passive checkpoint is started after this many committed writes.
const CHECKPOINT_EVERY_COMMITS: u64 = 100;

/// Above this many WAL frames (4 KiB pages each, with the default page size) the checkpointer
/// waits for the writer to pause and restarts the WAL, so a store under constant load does
/// not grow its WAL without end (passive checkpoints alone never see the writer pause).
const WAL_BOUND_FRAMES: i64 = 4_000;

/// One committed (or failed) batch waiting to be answered.
pub(super) struct Settled {
    pub replies: Vec<Reply>,
    pub outcome: Result<(), StoreError>,
    /// A successful commit of it wakes the workers.
    pub notifies: bool,
    /// Its outcome is recorded as the store's health (not only readiness probes).
    pub real_work: bool,
    /// It changed rows: it is on disk only after the next sync.
    pub wrote: bool,
}

/// The writer's side of the syncer: where it hands batches, and whether syncs still work.
pub(super) struct Durability {
    queue: Arc<Queue>,
    answer: Arc<Answer>,
    /// Batches that wrote, numbered by the writer.
    written: AtomicU64,
    /// The last written batch number whose sync returned.
    synced: Arc<AtomicU64>,
    /// Why the store refuses writes after a failed sync (never cleared while open).
    poisoned: Arc<Mutex<Option<String>>>,
    checkpoints: mpsc::SyncSender<()>,
    commits_since_checkpoint: AtomicU64,
}

/// What answering a batch needs (shared by the writer and the syncer).
pub(super) struct Answer {
    pub changes: Arc<watch::Sender<u64>>,
    pub stats: Arc<BatchCounters>,
    pub health: Arc<Health>,
}

impl Answer {
    /// Health first (a caller that got its answer and asks `health` next must see this
    /// batch's effect), then the workers' wake-up, then each caller.
    fn answer(&self, batch: Settled) {
        if batch.real_work {
            self.health.record(batch.outcome.as_ref().map(|_| ()));
        }
        if batch.outcome.is_ok() && batch.notifies {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.stats
            .calls
            .fetch_add(batch.replies.len() as u64, Ordering::Relaxed);
        for reply in batch.replies {
            reply(batch.outcome.clone());
        }
    }
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    pending: Vec<(u64, Settled)>,
    closed: bool,
}

impl Durability {
    /// Opens (and preallocates) the WAL file of the store at `db_path` and starts the syncer
    /// and checkpointer threads. The writer connection must already be in WAL mode.
    pub(super) fn start(
        db_path: &Path,
        busy_timeout: Duration,
        answer: Answer,
    ) -> StoreResult<Durability> {
        let wal = preallocate_wal(&wal_path(db_path), WAL_PREALLOCATED_BYTES)?;
        // Before the syncer: if it cannot start, dropping `checkpoints` stops this thread.
        let checkpoints = start_checkpointer(db_path.to_path_buf(), busy_timeout)?;
        let queue = Arc::new(Queue::default());
        let answer = Arc::new(answer);
        let synced = Arc::new(AtomicU64::new(0));
        let poisoned = Arc::new(Mutex::new(None));
        let syncer = Syncer {
            queue: queue.clone(),
            answer: answer.clone(),
            synced: synced.clone(),
            poisoned: poisoned.clone(),
            wal,
        };
        // One flushing thread: a second one flushing concurrently measured no better
        // (single-alert ratio 0.65 and 0.82 with two, 0.72 and 0.69 with one, same runs).
        std::thread::Builder::new()
            .name("psa-store-sync".into())
            .spawn(move || syncer.run())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the sync thread: {e}")))?;
        Ok(Durability {
            queue,
            answer,
            written: AtomicU64::new(0),
            synced,
            poisoned,
            checkpoints,
            commits_since_checkpoint: AtomicU64::new(0),
        })
    }

    /// Why writes are refused since a sync failed, if one did.
    pub(super) fn poisoned(&self) -> Option<String> {
        self.poisoned.lock().expect("sync fault lock").clone()
    }

    /// Hands a batch over: answered at once when nothing it could have seen waits for the
    /// disk, otherwise by the syncer after the next sync.
    pub(super) fn settle(&self, batch: Settled) {
        if batch.wrote {
            self.written.fetch_add(1, Ordering::SeqCst);
            self.nudge_checkpointer();
        }
        let written = self.written.load(Ordering::SeqCst);
        if written == self.synced.load(Ordering::SeqCst) {
            // Everything committed so far is on disk: a read (or a failure) needs no sync.
            self.answer.answer(batch);
            return;
        }
        let mut state = self.queue.state.lock().expect("sync queue lock");
        state.pending.push((written, batch));
        self.queue.ready.notify_one();
    }

    fn nudge_checkpointer(&self) {
        let n = self
            .commits_since_checkpoint
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if n >= CHECKPOINT_EVERY_COMMITS {
            self.commits_since_checkpoint.store(0, Ordering::Relaxed);
            // Full channel: a checkpoint is already due; the nudge is not needed twice.
            let _ = self.checkpoints.try_send(());
        }
    }
}

impl Drop for Durability {
    /// The writer is gone: the syncer answers what is queued and stops.
    fn drop(&mut self) {
        let mut state = self.queue.state.lock().expect("sync queue lock");
        state.closed = true;
        self.queue.ready.notify_all();
    }
}

struct Syncer {
    queue: Arc<Queue>,
    answer: Arc<Answer>,
    synced: Arc<AtomicU64>,
    poisoned: Arc<Mutex<Option<String>>>,
    wal: File,
}

impl Syncer {
    fn run(self) {
        loop {
            let batches = {
                let mut state = self.queue.state.lock().expect("sync queue lock");
                while state.pending.is_empty() && !state.closed {
                    state = self.queue.ready.wait(state).expect("sync queue lock");
                }
                if state.pending.is_empty() {
                    return;
                }
                std::mem::take(&mut state.pending)
            };
            // Every batch taken was committed before this sync starts, so it covers them all.
            let upto = batches.iter().map(|(n, _)| *n).max().unwrap_or(0);
            let synced = self.sync();
            if synced.is_ok() {
                self.synced.fetch_max(upto, Ordering::SeqCst);
            }
            for (_, mut batch) in batches {
                if let Err(e) = &synced {
                    batch.outcome = Err(e.clone());
                }
                self.answer.answer(batch);
            }
        }
    }

    /// Flushes the WAL; a failure poisons the store. Once poisoned, no later flush counts:
    /// Linux reports a failed write-back once, so a later flush may succeed over lost pages.
    fn sync(&self) -> Result<(), StoreError> {
        if let Some(why) = self.poisoned.lock().expect("sync fault lock").clone() {
            return Err(StoreError::Unavailable(why));
        }
        #[cfg(test)]
        {
            let failing = &self.answer.stats.failing_syncs;
            if failing
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(self.poison("I/O error (injected by a test)".into()));
            }
        }
        let started = std::time::Instant::now();
        match self.wal.sync_data() {
            Ok(()) => {
                let stats = &self.answer.stats;
                stats.syncs.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                stats.sync_micros.fetch_add(micros, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(self.poison(e.to_string())),
        }
    }

    fn poison(&self, why: String) -> StoreError {
        let message = format!(
            "flushing the store's WAL to disk failed ({why}); commits since the last flush \
             may be lost, so the store refuses writes until the operator restarts"
        );
        *self.poisoned.lock().expect("sync fault lock") = Some(message.clone());
        StoreError::Unavailable(message)
    }
}

fn wal_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Opens the WAL file (SQLite has created it by now; created 0600 otherwise) and extends it
/// with zeros to `bytes`, synced, so commits overwrite blocks instead of growing the file.
fn preallocate_wal(path: &Path, bytes: u64) -> StoreResult<File> {
    let io = |e: std::io::Error| {
        StoreError::Unavailable(format!("cannot prepare {}: {e}", path.display()))
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut wal = options.open(path).map_err(io)?;
    let len = wal.metadata().map_err(io)?.len();
    if len < bytes {
        // Real zeros, not fallocate: writing into allocated-but-unwritten extents changes
        // file system metadata at the next flush, the cost this avoids.
        use std::io::Seek as _;
        wal.seek(std::io::SeekFrom::Start(len)).map_err(io)?;
        let chunk = vec![0u8; 1 << 20];
        let mut left = bytes - len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            wal.write_all(&chunk[..n]).map_err(io)?;
            left -= n as u64;
        }
        wal.sync_all().map_err(io)?;
    }
    Ok(wal)
}

/// Starts the checkpointer thread on a connection of its own; it runs a checkpoint whenever
/// the writer nudges it and stops when the writer is gone.
fn start_checkpointer(path: PathBuf, busy_timeout: Duration) -> StoreResult<mpsc::SyncSender<()>> {
    let conn = Connection::open(&path).map_err(unavailable)?;
    conn.busy_timeout(busy_timeout).map_err(unavailable)?;
    // FULL: the checkpoint syncs the WAL before copying it and the database file after.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable)?;
    let (nudges, rx) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("psa-store-ckpt".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                if let Err(e) = checkpoint(&conn) {
                    tracing::warn!(error = %e, "store checkpoint failed; retried after more commits");
                }
            }
        })
        .map_err(|e| {
            StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
        })?;
    Ok(nudges)
}

/// A passive checkpoint (the writer goes on meanwhile); when the WAL is past its bound, a
/// restarting one, which waits for the writer to pause so the next commit starts the WAL over.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if frames > WAL_BOUND_FRAMES {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))?;
    }
    Ok(())
}
