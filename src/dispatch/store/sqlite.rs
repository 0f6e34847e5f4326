//! `Store` on one embedded SQLite file (rusqlite, WAL, `synchronous=FULL`).
//!
//! One writer thread owns the connection. Every call becomes a job sent to it; the thread takes
//! all jobs waiting at that moment (up to `max_batch`), runs them in ONE transaction, each inside
//! its own savepoint (a failing job rolls back only itself), and commits. Each caller is
//! answered only once the commit is synced to disk (`durable`: the WAL flush runs on a thread
//! of its own, so the writer commits the next batch meanwhile). Under load, many concurrent
//! intake requests thus share one flush; when idle, a single request commits alone with no
//! added wait.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Params, Row};
use tokio::sync::{oneshot, watch};

use super::rows::{self, connection_filter_params, limit_param, ms, Columns, CounterDeltas, Lane};
use super::tables::{self, KeyedStatements, RecordWrite, StoredValue};
use super::{
    ConnectionCounters, Enqueued, GroupLifecycle, GroupTicket, LaneId, LaneScope, NewEvent,
    ReadyLane, Store, StoreError, StoreResult, StoredEvent, StormDue, TicketRecord,
};
use crate::dispatch::decide::storm::{Admission, AdmitRequest, StormWindow};
use crate::resolved::ConnectionKey;

/// Tuning of the SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How long a write waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// Most jobs committed in one transaction.
    pub max_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            max_batch: 512,
        }
    }
}

/// The SQLite-backed store. Dropping it stops the writer thread once queued jobs are done.
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    changes: Arc<watch::Sender<u64>>,
    path: PathBuf,
    stats: Arc<BatchCounters>,
    health: Arc<Health>,
}

/// How well commits are shared: calls answered and transactions committed since open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitStats {
    pub calls: u64,
    pub commits: u64,
    /// WAL flushes (`fdatasync`): each answers every call committed before it began.
    pub syncs: u64,
    /// Wall time spent in those flushes, in microseconds.
    pub sync_micros: u64,
}

#[derive(Default)]
struct BatchCounters {
    calls: AtomicU64,
    commits: AtomicU64,
    syncs: AtomicU64,
    sync_micros: AtomicU64,
    /// Tests: how many of the next commits fail (rolled back) as a full disk would make them.
    #[cfg(test)]
    failing_commits: std::sync::atomic::AtomicU32,
    /// Tests: how many of the next WAL flushes fail as an I/O error would make them.
    #[cfg(test)]
    failing_syncs: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a job hands back after running: called with the commit outcome.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A job's body: runs on the connection (or learns the transaction could not start).
type JobBody = Box<dyn FnOnce(Result<&Connection, StoreError>) -> Reply + Send>;

struct Job {
    /// Whether a successful commit of this job should wake workers.
    notifies: bool,
    /// A readiness probe: its outcome is its answer, not a change of the recorded health.
    probe: bool,
    run: JobBody,
}

const SCHEMA_VERSION: i64 = 2;

/// The columns and constraints of the events table (also built afresh by `MIGRATE_1_TO_2`).
const EVENTS_TABLE: &str = "(
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace          TEXT    NOT NULL,
    connection         TEXT    NOT NULL,
    id_space           TEXT    NOT NULL,
    event_id           TEXT    NOT NULL,
    group_key          TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    body               TEXT    NOT NULL,
    state              INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error         TEXT,
    accepted_at_ms     INTEGER NOT NULL,
    finished_at_ms     INTEGER,
    failsafe_sent      INTEGER NOT NULL DEFAULT 0,
    failsafe_next_at_ms INTEGER,
    failsafe_error     TEXT,
    claims             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, connection, id_space, event_id)
);";

/// Everything but the events table and the keyed tables (`tables::ALL`), created after the
/// events table (`migrate`).
const SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS events_lane_queued
    ON events (namespace, connection, group_key, seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS events_dead
    ON events (namespace, connection, seq) WHERE state = 2;
CREATE INDEX IF NOT EXISTS events_failsafe_due
    ON events (failsafe_next_at_ms) WHERE state = 2 AND failsafe_sent = 0;
-- One row per lane with queued events: its head and when the head is due.
CREATE TABLE IF NOT EXISTS lanes (
    namespace        TEXT    NOT NULL,
    connection       TEXT    NOT NULL,
    group_key        TEXT    NOT NULL,
    head_seq         INTEGER NOT NULL,
    ready_at_ms      INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    PRIMARY KEY (namespace, connection, group_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lanes_ready ON lanes (ready_at_ms);
CREATE INDEX IF NOT EXISTS lanes_conn_ready ON lanes (namespace, connection, ready_at_ms);
-- One row: the last readiness probe's write (`Store::health`).
CREATE TABLE IF NOT EXISTS health (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    namespace    TEXT    NOT NULL,
    connection   TEXT    NOT NULL,
    accepted     INTEGER NOT NULL,
    pending      INTEGER NOT NULL,
    delivered    INTEGER NOT NULL,
    dead_letters INTEGER NOT NULL,
    PRIMARY KEY (namespace, connection)
) WITHOUT ROWID;
";

/// Version 1 → 2: event ids become unique per id space (`EventKind::id_space`), which needs
/// the UNIQUE constraint rebuilt: copies `events` into `events_v2` (created with
/// `EVENTS_TABLE` just before) and puts it in its place. Indexes are recreated by `SCHEMA`
/// afterwards.
const MIGRATE_1_TO_2: &str = "
INSERT INTO events_v2
SELECT seq, namespace, connection,
       CASE WHEN kind = 'alert' THEN 'alerts'
            WHEN kind LIKE 'finding.%' THEN 'findings'
            ELSE 'alertmanager' END,
       event_id, group_key, kind, body, state, attempts, next_attempt_at_ms, last_error,
       accepted_at_ms, finished_at_ms, failsafe_sent, failsafe_next_at_ms, failsafe_error, claims
FROM events;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
";

/// A SQLite error as a store error: a damaged file is `Corrupt` (it will not heal by waiting),
/// everything else (disk full, I/O, locks) `Unavailable`.
fn unavailable(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Which file a path names (device, inode): a store file deleted or replaced while open
/// keeps taking writes into the unlinked inode, which a restart would never see.
#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// `PRAGMA quick_check` at open: a store with damaged pages must not start and answer 503
/// "malformed" to every alert; the message says how to recover.
fn check_integrity(conn: &Connection, path: &Path) -> StoreResult<()> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| corrupt_at(path, &unavailable(e).to_string()))?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(corrupt_at(path, &verdict))
    }
}

fn corrupt_at(path: &Path, why: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "{} failed its integrity check ({why}); move it aside and restore a backup or start \
         empty (docs/operations.md, \"Store corrupted\")",
        path.display()
    ))
}

/// What the writer thread knows about the store's health (`Store::health`).
#[derive(Default)]
struct Health {
    /// Why the last batch of real work failed to commit; cleared by the next one that commits.
    fault: std::sync::Mutex<Option<String>>,
}

impl Health {
    fn fault(&self) -> Option<String> {
        self.fault.lock().expect("health lock").clone()
    }

    /// Records a batch outcome; logs each change between healthy and failing once.
    fn record(&self, outcome: Result<(), &StoreError>) {
        let mut fault = self.fault.lock().expect("health lock");
        match (outcome, fault.is_some()) {
            (Ok(()), true) => {
                tracing::info!("store writes succeed again");
                *fault = None;
            }
            (Err(e), was_failing) => {
                if !was_failing {
                    tracing::error!(error = %e, "store writes fail: the intake answers 503 and readiness fails until they succeed");
                }
                *fault = Some(e.to_string());
            }
            (Ok(()), false) => {}
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file and starts its writer thread.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        make_private(&path)?;
        let identity = file_identity(&path);
        let conn = Connection::open(&path).map_err(unavailable)?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(unavailable)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(unavailable)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "journal mode WAL not available (got {mode})"
            )));
        }
        // FULL while migrating; the batches' commits are flushed by `durable` instead.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(unavailable)?;
        check_integrity(&conn, &path)?;
        migrate(&conn)?;
        // NORMAL: COMMIT writes the WAL without waiting for the disk; no caller hears of a
        // batch before the syncer's flush of the WAL returned (`durable`). Checkpoints run on
        // the checkpointer's connection, not after the writer's commits.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(unavailable)?;

        let (jobs, rx) = mpsc::channel::<Job>();
        let (changes, _) = watch::channel(0u64);
        let changes = Arc::new(changes);
        let thread_changes = changes.clone();
        let stats = Arc::new(BatchCounters::default());
        let thread_stats = stats.clone();
        let max_batch = options.max_batch.max(1);
        let health = Arc::new(Health::default());
        let durability = durable::Durability::start(
            &path,
            options.busy_timeout,
            durable::Answer {
                changes: thread_changes,
                stats: thread_stats.clone(),
                health: health.clone(),
            },
        )?;
        let writer = Writer {
            stats: thread_stats,
            durability,
            path: path.clone(),
            identity,
            max_batch,
        };
        std::thread::Builder::new()
            .name("psa-store-writer".into())
            .spawn(move || writer.run(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore {
            jobs,
            changes,
            path,
            stats,
            health,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls answered and transactions committed so far: calls per commit shows the batching.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            calls: self.stats.calls.load(Ordering::Relaxed),
            commits: self.stats.commits.load(Ordering::Relaxed),
            syncs: self.stats.syncs.load(Ordering::Relaxed),
            sync_micros: self.stats.sync_micros.load(Ordering::Relaxed),
        }
    }

    /// Tests: the next `n` batch commits fail and roll back, as a full disk or an I/O error
    /// at COMMIT would make them, so every waiter of such a batch must hear the failure.
    #[cfg(test)]
    pub(crate) fn fail_next_commits(&self, n: u32) {
        self.stats.failing_commits.store(n, Ordering::SeqCst);
    }

    /// Tests: the next `n` WAL flushes fail, as an I/O error would make them.
    #[cfg(test)]
    pub(crate) fn fail_next_syncs(&self, n: u32) {
        self.stats.failing_syncs.store(n, Ordering::SeqCst);
    }

    /// The row of a keyed table (`tables`) whose key is (namespace, connection, `id`), read by
    /// `read` from the table's `select`.
    async fn keyed_row<T: Send + 'static>(
        &self,
        select: &'static str,
        connection: ConnectionKey,
        id: String,
        read: impl Fn(&Row<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<Option<T>> {
        self.call(false, move |conn| {
            let key = params![connection.namespace, connection.name, id];
            query_rows(conn, select, key, read).map(first)
        })
        .await
    }

    /// Runs `f` on the writer thread inside the next batch transaction; answers after the
    /// commit is on disk.
    async fn call<R, F>(&self, notifies: bool, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        self.call_job(notifies, false, f).await
    }

    async fn call_job<R, F>(&self, notifies: bool, probe: bool, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<R>>();
        let run = move |conn: Result<&Connection, StoreError>| -> Reply {
            let result = match conn {
                Ok(conn) => in_savepoint(conn, f),
                Err(e) => Err(e),
            };
            Box::new(move |commit: Result<(), StoreError>| {
                let out = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(e),
                    (Err(e), _) => Err(e),
                };
                // The caller may have gone away (request cancelled); the work is committed anyway.
                let _ = tx.send(out);
            })
        };
        self.jobs
            .send(Job {
                notifies,
                probe,
                run: Box::new(run),
            })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Creates the store file 0600 (or narrows an existing one): it holds alerts and users'
/// e-mail addresses. SQLite gives its `-wal` and `-shm` files the same mode.
fn make_private(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |e: std::io::Error| {
            StoreError::Unavailable(format!("cannot create {}: {e}", path.display()))
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(unavailable)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "store schema version {version} is newer than this build ({SCHEMA_VERSION})"
        )));
    }
    let upgrade = if version == 1 {
        format!("CREATE TABLE events_v2 {EVENTS_TABLE}; {MIGRATE_1_TO_2}")
    } else {
        String::new()
    };
    let keyed: Vec<String> = tables::ALL.iter().map(|t| t.sqlite_create()).collect();
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {upgrade} CREATE TABLE IF NOT EXISTS events {EVENTS_TABLE}; {SCHEMA} {} \
         {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
        keyed.join(" "),
        storm::SCHEMA
    ))
    .map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        unavailable(e)
    })
}

fn run_cached(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(unavailable)
}

fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<R>,
) -> StoreResult<R> {
    // Cached statements: every job of every batch runs these two, on the serial writer.
    run_cached(conn, "SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            run_cached(conn, "RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")
                .map_err(unavailable)?;
            Err(e)
        }
    }
}

/// The writer thread's state.
struct Writer {
    stats: Arc<BatchCounters>,
    /// Where committed batches wait for the WAL flush before their callers hear of them.
    durability: durable::Durability,
    path: PathBuf,
    /// The file opened (device, inode).
    identity: Option<(u64, u64)>,
    max_batch: usize,
}

impl Writer {
    fn run(self, conn: Connection, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(&conn, batch);
        }
    }

    /// Runs a batch in one transaction and hands it to `durability`, which answers each job
    /// once the commit is on disk.
    fn commit_batch(&self, conn: &Connection, batch: Vec<Job>) {
        let notifies = batch.iter().any(|j| j.notifies);
        let real_work = batch.iter().any(|j| !j.probe);
        let begin = self
            .check_file()
            .and_then(|()| self.check_synced())
            .and_then(|()| conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable));
        if let Err(err) = begin {
            let replies = batch
                .into_iter()
                .map(|job| (job.run)(Err(err.clone())))
                .collect();
            self.durability.settle(durable::Settled {
                replies,
                outcome: Err(err),
                notifies: false,
                real_work,
                wrote: false,
            });
            return;
        }
        let changes_before = conn.total_changes();
        let replies: Vec<Reply> = batch.into_iter().map(|job| (job.run)(Ok(conn))).collect();
        let commit = self.commit(conn);
        if commit.is_ok() {
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
        }
        // Counted even for rows of a job that rolled back to its savepoint: a flush too many,
        // never one too few.
        let wrote = commit.is_ok() && conn.total_changes() != changes_before;
        self.durability.settle(durable::Settled {
            replies,
            outcome: commit,
            notifies,
            real_work,
            wrote,
        });
    }

    /// No write after a failed WAL flush: it would build on pages the disk may have lost.
    fn check_synced(&self) -> Result<(), StoreError> {
        match self.durability.poisoned() {
            None => Ok(()),
            Some(why) => Err(StoreError::Unavailable(why)),
        }
    }

    /// Commits the batch (into the WAL; `durable` flushes it); on failure rolls it back, so
    /// nothing of a batch whose waiters hear an error stays stored.
    fn commit(&self, conn: &Connection) -> Result<(), StoreError> {
        #[cfg(test)]
        {
            let failing = &self.stats.failing_commits;
            if failing
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(StoreError::Unavailable(
                    "disk I/O error (injected by a test)".into(),
                ));
            }
        }
        conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            unavailable(e)
        })
    }

    /// The path still names the file that was opened: writes to a deleted or replaced store
    /// would be acknowledged and lost at the next restart.
    fn check_file(&self) -> Result<(), StoreError> {
        if file_identity(&self.path) == self.identity {
            return Ok(());
        }
        Err(StoreError::Unavailable(format!(
            "store file {} was removed or replaced while open; nothing is stored until the \
             operator restarts on the file at that path (docs/operations.md)",
            self.path.display()
        )))
    }
}

// ---- row helpers (run on the writer thread) ----

impl Columns for Row<'_> {
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.get(i).map_err(unavailable)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.get(i).map_err(unavailable)
    }
    fn text(&self, i: usize) -> StoreResult<String> {
        self.get(i).map_err(unavailable)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i).map_err(unavailable)
    }
    /// SQLite keeps booleans as 0 / 1.
    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.get::<_, i64>(i).map(|v| v != 0).map_err(unavailable)
    }
}

/// Every row `sql` selects, each read by `read`.
fn query_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    read: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut rows = stmt.query(params).map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// The first of the rows a statement selected: those selecting by a key find one at most.
fn first<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}

fn query_events(
    conn: &Connection,
    sql_tail: &str,
    params: impl Params,
) -> StoreResult<Vec<StoredEvent>> {
    let sql = format!("SELECT {} FROM events {sql_tail}", rows::EVENT_COLUMNS);
    query_rows(conn, &sql, params, |r| rows::event(r))
}

/// (namespace, connection, group key) of a queued event; `NotQueued` otherwise.
fn queued_lane(conn: &Connection, seq: i64) -> StoreResult<Lane> {
    let lanes = query_rows(
        conn,
        "SELECT namespace, connection, group_key FROM events WHERE seq = ?1 AND state = 0",
        [seq],
        |r| rows::lane(r),
    )?;
    first(lanes).ok_or(StoreError::NotQueued(seq))
}

/// Re-derives a lane's head from its queued events (or drops the lane when none is left).
fn refresh_lane(
    conn: &Connection,
    (ns, name, key): (&str, &str, &str),
    end_claim: bool,
) -> StoreResult<()> {
    let head: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT seq, next_attempt_at_ms FROM events
             WHERE namespace = ?1 AND connection = ?2 AND group_key = ?3 AND state = 0
             ORDER BY seq LIMIT 1",
        )
        .map_err(unavailable)?
        .query_row(params![ns, name, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(unavailable)?;
    match head {
        Some((seq, ready_at)) => {
            conn.prepare_cached(
                "INSERT INTO lanes (namespace, connection, group_key, head_seq, ready_at_ms, claimed_until_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)
                 ON CONFLICT (namespace, connection, group_key) DO UPDATE SET
                   head_seq = excluded.head_seq,
                   ready_at_ms = excluded.ready_at_ms,
                   claimed_until_ms = CASE WHEN ?6 THEN NULL ELSE claimed_until_ms END",
            )
            .map_err(unavailable)?
            .execute(params![ns, name, key, seq, ready_at, end_claim])
            .map_err(unavailable)?;
        }
        None => {
            conn.prepare_cached(
                "DELETE FROM lanes WHERE namespace = ?1 AND connection = ?2 AND group_key = ?3",
            )
            .map_err(unavailable)?
            .execute(params![ns, name, key])
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Adds deltas to a connection's counters (creating the row on first use).
fn bump_counters(
    conn: &Connection,
    ns: &str,
    name: &str,
    [accepted, pending, delivered, dead]: [i64; 4],
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO counters (namespace, connection, accepted, pending, delivered, dead_letters)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (namespace, connection) DO UPDATE SET
           accepted = accepted + excluded.accepted,
           pending = pending + excluded.pending,
           delivered = delivered + excluded.delivered,
           dead_letters = dead_letters + excluded.dead_letters",
    )
    .map_err(unavailable)?
    .execute(params![ns, name, accepted, pending, delivered, dead])
    .map_err(unavailable)?;
    Ok(())
}

/// Encodes an event's stored body. Called by the requesting task, not on the writer thread:
/// everything the writer does is serial across all requests, so per-event CPU work that needs
/// no connection is done before the job is queued.
fn encode_body(ev: &NewEvent) -> StoreResult<String> {
    serde_json::to_string(&ev.envelope)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {e}")))
}

/// Stores one event (its body encoded by `encode_body`); the connection's counters are bumped
/// once per job by the caller, not per event.
fn enqueue_one(conn: &Connection, ev: &NewEvent, body: &str) -> StoreResult<Enqueued> {
    let env = &ev.envelope;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events (namespace, connection, event_id, group_key, kind, body, state,
                                 attempts, next_attempt_at_ms, accepted_at_ms, id_space)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7, ?7, ?8)
             ON CONFLICT (namespace, connection, id_space, event_id) DO NOTHING",
        )
        .map_err(unavailable)?
        .execute(params![
            env.namespace,
            env.connection,
            env.event.id,
            ev.group_key,
            env.event.kind.as_str(),
            body,
            env.accepted_at_ms,
            env.event.kind.id_space()
        ])
        .map_err(unavailable)?;
    if inserted == 0 {
        let seq: i64 = conn
            .prepare_cached(
                "SELECT seq FROM events
                 WHERE namespace = ?1 AND connection = ?2 AND id_space = ?3 AND event_id = ?4",
            )
            .map_err(unavailable)?
            .query_row(
                params![
                    env.namespace,
                    env.connection,
                    env.event.kind.id_space(),
                    env.event.id
                ],
                |r| r.get(0),
            )
            .map_err(unavailable)?;
        return Ok(Enqueued { seq, new: false });
    }
    let seq = conn.last_insert_rowid();
    // A new lane starts with this event as head; an existing lane keeps its (earlier) head.
    conn.prepare_cached(
        "INSERT INTO lanes (namespace, connection, group_key, head_seq, ready_at_ms, claimed_until_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)
         ON CONFLICT (namespace, connection, group_key) DO NOTHING",
    )
    .map_err(unavailable)?
    .execute(params![
        env.namespace,
        env.connection,
        ev.group_key,
        seq,
        env.accepted_at_ms
    ])
    .map_err(unavailable)?;
    Ok(Enqueued { seq, new: true })
}

/// Stores a request's events and adds the new ones to their connections' counters (one
/// counter write per connection, however many events).
fn enqueue_request(
    conn: &Connection,
    events: &[NewEvent],
    bodies: &[String],
) -> StoreResult<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(events.len());
    let mut new_per_connection: Vec<(&str, &str, i64)> = Vec::new();
    for (ev, body) in events.iter().zip(bodies) {
        let enqueued = enqueue_one(conn, ev, body)?;
        if enqueued.new {
            let (ns, name) = (&ev.envelope.namespace, &ev.envelope.connection);
            match new_per_connection
                .iter_mut()
                .find(|(n, c, _)| n == ns && c == name)
            {
                Some(entry) => entry.2 += 1,
                None => new_per_connection.push((ns, name, 1)),
            }
        }
        out.push(enqueued);
    }
    for (ns, name, n) in new_per_connection {
        bump_counters(conn, ns, name, [n, n, 0, 0])?;
    }
    Ok(out)
}

/// The keyed tables' statements in SQLite's dialect.
static KEYED: LazyLock<KeyedStatements> = LazyLock::new(|| KeyedStatements::new(tables::SQLITE));

impl rusqlite::ToSql for StoredValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            StoredValue::Text(v) => v.to_sql(),
            StoredValue::OptText(v) => v.to_sql(),
            StoredValue::Int(v) => v.to_sql(),
            StoredValue::OptInt(v) => v.to_sql(),
            StoredValue::Flag(v) => v.to_sql(),
        }
    }
}

/// Writes a keyed table's row (`tables`), replacing the one with the same key.
fn upsert(conn: &Connection, sql: &str, row: Vec<StoredValue>) -> StoreResult<()> {
    conn.prepare_cached(sql)
        .map_err(unavailable)?
        .execute(rusqlite::params_from_iter(row))
        .map(drop)
        .map_err(unavailable)
}

fn write_ticket_record(conn: &Connection, record: &TicketRecord) -> StoreResult<()> {
    match tables::record_write(record) {
        RecordWrite::Row(table, row) => upsert(conn, KEYED.upsert(table), row),
        RecordWrite::StormNote(note) => storm::write_noted(conn, &note),
    }
}

/// Runs an UPDATE of one dead letter; `NotDeadLetter` when it matched no row.
fn update_dead_letter(
    conn: &Connection,
    seq: i64,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<()> {
    let n = conn
        .prepare_cached(sql)
        .map_err(unavailable)?
        .execute(params)
        .map_err(unavailable)?;
    if n == 0 {
        return Err(StoreError::NotDeadLetter(seq));
    }
    Ok(())
}

/// The least string greater than every string starting with `prefix` (an ASCII prefix whose
/// last character is below `~`, as `grouping::SAMPLE_PREFIX`), for a range scan.
fn prefix_upper_bound(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    match chars.pop() {
        Some(last) => {
            let next = char::from_u32(u32::from(last) + 1).unwrap_or(char::MAX);
            chars.push(next);
            chars.into_iter().collect()
        }
        None => char::MAX.to_string(),
    }
}

/// The condition on (?1, ?2) = `rows::connection_filter_params`: empty strings select all
/// connections.
const CONN_FILTER: &str = "(?1 = '' OR (namespace = ?1 AND connection = ?2))";

/// Due, unclaimed lanes of `connection` whose group key starts with `prefix`.
fn ready_with_prefix(
    conn: &Connection,
    connection: &ConnectionKey,
    prefix: &str,
    now_ms: i64,
    limit: i64,
) -> StoreResult<Vec<ReadyLane>> {
    // A range on the primary key (namespace, connection, group_key): byte order, so
    // [prefix, prefix with its last byte + 1) is exactly the keys starting with it.
    let upper = prefix_upper_bound(prefix);
    query_rows(
        conn,
        "SELECT group_key, ready_at_ms FROM lanes
         WHERE namespace = ?1 AND connection = ?2
           AND group_key >= ?3 AND group_key < ?4 AND ready_at_ms <= ?5
           AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?5)
         ORDER BY ready_at_ms LIMIT ?6",
        params![
            connection.namespace,
            connection.name,
            prefix,
            upper,
            now_ms,
            limit
        ],
        |r| rows::ready_lane_of(connection, r),
    )
}

#[async_trait]
impl Store for SqliteStore {
    async fn enqueue(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Enqueued>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let bodies = events
            .iter()
            .map(encode_body)
            .collect::<StoreResult<Vec<String>>>()?;
        self.call(true, move |conn| enqueue_request(conn, &events, &bodies))
            .await
    }

    async fn ready_lanes(
        &self,
        scope: LaneScope,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<ReadyLane>> {
        let limit = limit_param(limit);
        self.call(false, move |conn| match scope {
            LaneScope::Prefixed { connection, prefix } => {
                ready_with_prefix(conn, &connection, &prefix, now_ms, limit)
            }
            scope => {
                let (ns, name) = connection_filter_params(scope.connection());
                let sql = format!(
                    "SELECT namespace, connection, group_key, ready_at_ms FROM lanes
                     WHERE {CONN_FILTER} AND ready_at_ms <= ?3
                       AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?3)
                     ORDER BY ready_at_ms LIMIT ?4"
                );
                query_rows(conn, &sql, params![ns, name, now_ms, limit], |r| {
                    rows::ready_lane(r)
                })
            }
        })
        .await
    }

    async fn next_ready_at(&self, connection: Option<ConnectionKey>) -> StoreResult<Option<i64>> {
        let (ns, name) = connection_filter_params(connection.as_ref());
        self.call(false, move |conn| {
            // A claimed lane can be claimed again at the earliest when its lease ends.
            let sql = format!(
                "SELECT MIN(CASE WHEN claimed_until_ms IS NULL THEN ready_at_ms
                                 ELSE max(ready_at_ms, claimed_until_ms) END)
                 FROM lanes WHERE {CONN_FILTER}"
            );
            conn.prepare_cached(&sql)
                .map_err(unavailable)?
                .query_row(params![ns, name], |r| r.get::<_, Option<i64>>(0))
                .map_err(unavailable)
        })
        .await
    }

    async fn claim(
        &self,
        lane: LaneId,
        now_ms: i64,
        lease: Duration,
    ) -> StoreResult<Option<StoredEvent>> {
        self.call(false, move |conn| {
            let until = now_ms.saturating_add(ms(lease));
            let head: Option<i64> = conn
                .prepare_cached(
                    "UPDATE lanes SET claimed_until_ms = ?4
                     WHERE namespace = ?1 AND connection = ?2 AND group_key = ?3
                       AND ready_at_ms <= ?5
                       AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?5)
                     RETURNING head_seq",
                )
                .map_err(unavailable)?
                .query_row(
                    params![
                        lane.connection.namespace,
                        lane.connection.name,
                        lane.group_key,
                        until,
                        now_ms
                    ],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let Some(seq) = head else { return Ok(None) };
            conn.prepare_cached("UPDATE events SET claims = claims + 1 WHERE seq = ?1")
                .map_err(unavailable)?
                .execute([seq])
                .map_err(unavailable)?;
            let found = query_events(conn, "WHERE seq = ?1 AND state = 0", [seq])?;
            rows::claimed_head(seq, found)
        })
        .await
    }

    async fn lane_events(&self, lane: LaneId, limit: usize) -> StoreResult<Vec<StoredEvent>> {
        let limit = limit_param(limit);
        self.call(false, move |conn| {
            let LaneId {
                connection,
                group_key,
            } = lane;
            query_events(
                conn,
                "WHERE namespace = ?1 AND connection = ?2 AND group_key = ?3 AND state = 0
                 ORDER BY seq LIMIT ?4",
                params![connection.namespace, connection.name, group_key, limit],
            )
        })
        .await
    }

    async fn complete(
        &self,
        seqs: Vec<i64>,
        now_ms: i64,
        records: Vec<TicketRecord>,
    ) -> StoreResult<()> {
        let finishes_events = !seqs.is_empty();
        self.call(finishes_events, move |conn| {
            let mut lanes = BTreeSet::new();
            for seq in seqs {
                let lane = queued_lane(conn, seq)?;
                conn.prepare_cached(
                    "UPDATE events SET state = 1, finished_at_ms = ?2 WHERE seq = ?1",
                )
                .map_err(unavailable)?
                .execute(params![seq, now_ms])
                .map_err(unavailable)?;
                bump_counters(conn, &lane.0, &lane.1, [0, -1, 1, 0])?;
                lanes.insert(lane);
            }
            for (ns, name, key) in &lanes {
                refresh_lane(conn, (ns, name, key), true)?;
            }
            records
                .iter()
                .try_for_each(|r| write_ticket_record(conn, r))
        })
        .await
    }

    async fn retry_later(
        &self,
        seq: i64,
        next_attempt_at_ms: i64,
        error: String,
    ) -> StoreResult<u32> {
        self.call(true, move |conn| {
            let (ns, name, key) = queued_lane(conn, seq)?;
            let attempts: i64 = conn
                .prepare_cached(
                    "UPDATE events SET attempts = attempts + 1, next_attempt_at_ms = ?2,
                                       last_error = ?3
                     WHERE seq = ?1 RETURNING attempts",
                )
                .map_err(unavailable)?
                .query_row(params![seq, next_attempt_at_ms, error], |r| r.get(0))
                .map_err(unavailable)?;
            refresh_lane(conn, (&ns, &name, &key), true)?;
            Ok(u32::try_from(attempts).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn defer(&self, seq: i64, not_before_ms: i64) -> StoreResult<()> {
        self.call(true, move |conn| {
            let (ns, name, key) = queued_lane(conn, seq)?;
            conn.prepare_cached("UPDATE events SET next_attempt_at_ms = ?2 WHERE seq = ?1")
                .map_err(unavailable)?
                .execute(params![seq, not_before_ms])
                .map_err(unavailable)?;
            refresh_lane(conn, (&ns, &name, &key), true)
        })
        .await
    }

    async fn dead_letter(&self, seq: i64, error: String, now_ms: i64) -> StoreResult<()> {
        self.call(true, move |conn| {
            let (ns, name, key) = queued_lane(conn, seq)?;
            conn.prepare_cached(
                "UPDATE events SET state = 2, attempts = attempts + 1, last_error = ?2,
                                   finished_at_ms = ?3, failsafe_sent = 0,
                                   failsafe_next_at_ms = ?3, failsafe_error = NULL
                 WHERE seq = ?1",
            )
            .map_err(unavailable)?
            .execute(params![seq, error, now_ms])
            .map_err(unavailable)?;
            bump_counters(conn, &ns, &name, [0, -1, 0, 1])?;
            refresh_lane(conn, (&ns, &name, &key), true)
        })
        .await
    }

    async fn mark_failsafe_sent(&self, seq: i64) -> StoreResult<()> {
        self.call(false, move |conn| {
            update_dead_letter(
                conn,
                seq,
                "UPDATE events SET failsafe_sent = 1, failsafe_next_at_ms = NULL
                 WHERE seq = ?1 AND state = 2",
                params![seq],
            )
        })
        .await
    }

    async fn failsafe_due(
        &self,
        connection: Option<ConnectionKey>,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (ns, name) = connection_filter_params(connection.as_ref());
        let sql = format!(
            "WHERE {CONN_FILTER} AND state = 2 AND failsafe_sent = 0 AND failsafe_next_at_ms <= ?3
             ORDER BY failsafe_next_at_ms, seq LIMIT ?4"
        );
        let limit = limit_param(limit);
        self.call(false, move |conn| {
            query_events(conn, &sql, params![ns, name, now_ms, limit])
        })
        .await
    }

    async fn failsafe_retry_later(
        &self,
        seq: i64,
        next_at_ms: i64,
        error: String,
    ) -> StoreResult<()> {
        self.call(false, move |conn| {
            update_dead_letter(
                conn,
                seq,
                "UPDATE events SET failsafe_next_at_ms = ?2, failsafe_error = ?3
                 WHERE seq = ?1 AND state = 2 AND failsafe_sent = 0",
                params![seq, next_at_ms, error],
            )
        })
        .await
    }

    async fn dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (ns, name) = connection_filter_params(connection.as_ref());
        let sql = format!("WHERE {CONN_FILTER} AND state = 2 ORDER BY seq LIMIT ?3");
        let limit = limit_param(limit);
        self.call(false, move |conn| {
            query_events(conn, &sql, params![ns, name, limit])
        })
        .await
    }

    async fn replay_dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let (ns, name) = connection_filter_params(connection.as_ref());
        self.call(true, move |conn| {
            let sql = format!(
                "UPDATE events SET state = 0, attempts = 0, next_attempt_at_ms = ?3,
                                   finished_at_ms = NULL, failsafe_sent = 0,
                                   failsafe_next_at_ms = NULL, failsafe_error = NULL
                 WHERE {CONN_FILTER} AND state = 2
                 RETURNING namespace, connection, group_key"
            );
            let replayed = query_rows(conn, &sql, params![ns, name, now_ms], |r| rows::lane(r))?;
            let mut deltas = CounterDeltas::default();
            let mut lanes = BTreeSet::new();
            for (ns, name, key) in &replayed {
                deltas.add(ns, name, [0, 1, 0, -1]);
                lanes.insert((ns.as_str(), name.as_str(), key.as_str()));
            }
            for ((ns, name), delta) in deltas.iter() {
                bump_counters(conn, ns, name, *delta)?;
            }
            for lane in lanes {
                // A lane being worked on keeps its claim; the replayed event queues behind it.
                refresh_lane(conn, lane, false)?;
            }
            Ok(replayed.len() as u64)
        })
        .await
    }

    async fn release_all_claims(&self) -> StoreResult<u64> {
        self.call(true, |conn| {
            conn.execute(
                "UPDATE lanes SET claimed_until_ms = NULL WHERE claimed_until_ms IS NOT NULL",
                [],
            )
            .map(|n| n as u64)
            .map_err(unavailable)
        })
        .await
    }

    async fn group_ticket(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupTicket>> {
        let select = &KEYED.group_tickets.select;
        self.keyed_row(select, connection, group_key, |r| rows::group_ticket(r))
            .await
    }

    async fn group_lifecycle(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupLifecycle>> {
        let select = &KEYED.group_lifecycle.select;
        self.keyed_row(select, connection, group_key, |r| rows::group_lifecycle(r))
            .await
    }

    async fn storm_admit(&self, req: AdmitRequest) -> StoreResult<Admission> {
        self.call(false, move |conn| storm::admit_in(conn, &req))
            .await
    }

    async fn storm_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<StormDue>> {
        self.call(false, move |conn| {
            storm::due_in(conn, now_ms, lease_ms, limit)
        })
        .await
    }

    async fn storm_closed(
        &self,
        connection: ConnectionKey,
        customer_id: String,
        ticket_id: String,
    ) -> StoreResult<()> {
        self.call(false, move |conn| {
            storm::closed_in(conn, &connection, &customer_id, &ticket_id)
        })
        .await
    }

    async fn storm_window(
        &self,
        connection: ConnectionKey,
        customer_id: String,
    ) -> StoreResult<Option<StormWindow>> {
        self.call(false, move |conn| {
            storm::window(conn, &connection, &customer_id)
        })
        .await
    }

    async fn finding_ticket(
        &self,
        connection: ConnectionKey,
        finding_id: String,
    ) -> StoreResult<Option<String>> {
        let select = &KEYED.finding_tickets.select;
        self.keyed_row(select, connection, finding_id, |r| r.text(0))
            .await
    }

    async fn counters(&self, connection: ConnectionKey) -> StoreResult<ConnectionCounters> {
        self.call(false, move |conn| {
            let counted = query_rows(
                conn,
                "SELECT accepted, pending, delivered, dead_letters FROM counters
                 WHERE namespace = ?1 AND connection = ?2",
                params![connection.namespace, connection.name],
                |r| rows::counters(Some(r)),
            )?;
            Ok(first(counted).unwrap_or_default())
        })
        .await
    }

    async fn health(&self, now_ms: i64) -> StoreResult<()> {
        if let Some(fault) = self.health.fault() {
            return Err(StoreError::Unavailable(fault));
        }
        self.call_job(false, true, move |conn| {
            conn.prepare_cached(
                "INSERT INTO health (id, checked_at_ms) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET checked_at_ms = excluded.checked_at_ms",
            )
            .map_err(unavailable)?
            .execute([now_ms])
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn queue_depth(&self) -> StoreResult<u64> {
        self.call(false, |conn| {
            conn.query_row("SELECT COALESCE(SUM(pending), 0) FROM counters", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| u64::try_from(v).unwrap_or(0))
            .map_err(unavailable)
        })
        .await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

mod durable;
mod storm;

#[cfg(test)]
mod tests;
