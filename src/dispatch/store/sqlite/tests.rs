use std::time::Duration;

use super::*;
use crate::dispatch::event::EventKind;
use crate::dispatch::store::conformance::{acme, enqueue_all, new_event};

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("store.db"), SqliteOptions::default()).expect("open")
}

/// The store at `path`, its writes waiting up to `busy_timeout` for another writer's lock.
fn open_waiting(path: &std::path::Path, busy_timeout: Duration) -> SqliteStore {
    let options = SqliteOptions {
        busy_timeout,
        ..Default::default()
    };
    SqliteStore::open(path, options).expect("open")
}

#[tokio::test]
async fn a_locked_store_fails_the_call_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open_waiting(&path, Duration::from_millis(100));
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store
        .enqueue(vec![new_event("acme", "a1", "k", 0)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    locker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(store.counters(acme()).await.unwrap().accepted, 0);
    let r = enqueue_all(&store, &[("acme", "a1", "k", 0)]).await;
    assert!(r[0].new, "the failed attempt left no trace");
}

#[test]
fn opening_an_unwritable_path_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(
        dir.path().join("missing/dir/store.db"),
        SqliteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn calls_waiting_on_one_commit_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open_waiting(&path, Duration::from_secs(60));
    // Another writer holds the file: no commit can happen until it lets go.
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let before = store.commit_stats();
    let mut calls: Vec<_> = (0..10)
        .map(|i| Box::pin(store.enqueue(vec![new_event("acme", &format!("a{i}"), "k", 0)])))
        .collect();
    for call in calls.iter_mut() {
        // One poll hands the job to the writer thread; it cannot be answered yet.
        assert!(futures::poll!(call.as_mut()).is_pending());
    }
    locker.execute_batch("ROLLBACK").unwrap();
    for r in futures::future::join_all(calls).await {
        assert!(r.unwrap()[0].new);
    }
    let after = store.commit_stats();
    assert_eq!(after.calls - before.calls, 10);
    // The call the writer was blocked on, then everything that queued up behind it.
    assert!(
        after.commits - before.commits <= 2,
        "{} commits for 10 waiting calls",
        after.commits - before.commits
    );
    assert_eq!(store.counters(acme()).await.unwrap().accepted, 10);
}

/// The red-team case: `store.db` (+ `-wal`, `-shm`) deleted, or replaced, while running. The
/// next enqueue must fail (the intake answers 503) and health must fail, instead of a 202 for
/// an alert written into an unlinked file.
#[tokio::test]
async fn a_removed_or_replaced_store_file_refuses_writes_and_fails_health() {
    for replace in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        enqueue_all(&store, &[("acme", "a1", "k", 1000)]).await;
        assert_eq!(store.health(1000).await, Ok(()));
        let db = dir.path().join("store.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        if replace {
            std::fs::write(&db, b"").unwrap();
        }
        let err = store
            .enqueue(vec![new_event("acme", "a2", "k", 2000)])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Unavailable(m) if m.contains("removed or replaced")),
            "{err}"
        );
        let health = store.health(2000).await.unwrap_err();
        assert!(
            health.to_string().contains("removed or replaced"),
            "{health}"
        );
    }
}

/// A store with damaged pages refuses to open with a message naming the recovery, instead of
/// starting ready and answering "malformed" to every alert.
#[test]
fn a_corrupted_store_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = open(&dir);
            let batch: Vec<_> = (0..400)
                .map(|i| new_event("acme", &format!("a{i}"), &format!("k{i}"), 1000))
                .collect();
            store.enqueue(batch).await.unwrap();
        });
    }
    // Let the writer thread close the file (it checkpoints the WAL into store.db).
    std::thread::sleep(Duration::from_millis(200));
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[8 * 4096..12 * 4096] {
        *b = 0x5a;
    }
    std::fs::write(&db, bytes).unwrap();
    let err = SqliteStore::open(&db, SqliteOptions::default()).unwrap_err();
    match err {
        StoreError::Corrupt(m) => {
            assert!(
                m.contains("integrity check") && m.contains("operations.md"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// A version 1 store (one id space) opens as version 2 with its events kept in the space of
/// their kind.
#[tokio::test]
async fn a_version_1_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,
                connection TEXT NOT NULL, event_id TEXT NOT NULL, group_key TEXT NOT NULL,
                kind TEXT NOT NULL, body TEXT NOT NULL, state INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at_ms INTEGER NOT NULL,
                last_error TEXT, accepted_at_ms INTEGER NOT NULL, finished_at_ms INTEGER,
                failsafe_sent INTEGER NOT NULL DEFAULT 0, failsafe_next_at_ms INTEGER,
                failsafe_error TEXT, claims INTEGER NOT NULL DEFAULT 0,
                UNIQUE (namespace, connection, event_id));
             PRAGMA user_version = 1;",
        )
        .unwrap();
        let body = serde_json::to_string(&new_event("acme", "rt-1", "k", 1000).envelope).unwrap();
        conn.execute(
            "INSERT INTO events (namespace, connection, event_id, group_key, kind, body, state,
                                 next_attempt_at_ms, accepted_at_ms)
             VALUES ('psa', 'acme', 'rt-1', 'k', 'alert', ?1, 1, 1000, 1000)",
            [body],
        )
        .unwrap();
    }
    let store = open(&dir);
    let again = store
        .enqueue(vec![new_event("acme", "rt-1", "k", 2000)])
        .await
        .unwrap();
    assert!(
        !again[0].new,
        "the stored alert is still a duplicate of itself"
    );
    let mut finding = new_event("acme", "rt-1", "k", 2000);
    finding.envelope.event.kind = EventKind::FindingCreated;
    assert!(store.enqueue(vec![finding]).await.unwrap()[0].new);
}

#[cfg(unix)]
#[tokio::test]
async fn the_store_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(&store, &[("acme", "a1", "k", 1000)]).await;
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", dir.path().join("store.db").display());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }
}

/// Group commit: calls that queued up behind one commit share it, yet each hears its own
/// outcome — a job that fails rolls back only itself — and when the shared commit fails,
/// every waiter of that batch hears the failure and none of its work is stored.
#[tokio::test]
async fn each_waiter_of_a_shared_commit_hears_its_own_outcome_and_a_failed_commit_fails_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open_waiting(&path, Duration::from_secs(60));
    let queued = enqueue_all(&store, &[("acme", "old", "k0", 0)]).await;

    // Round 1: ten enqueues and one call that must fail on its own, all in one batch.
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut enqueues: Vec<_> = (0..10)
        .map(|i| Box::pin(store.enqueue(vec![new_event("acme", &format!("a{i}"), "k", 0)])))
        .collect();
    // A queued event is no dead letter: this job alone fails.
    let mut failing = Box::pin(store.failsafe_retry_later(queued[0].seq, 1, "x".into()));
    for call in enqueues.iter_mut() {
        assert!(futures::poll!(call.as_mut()).is_pending());
    }
    assert!(futures::poll!(failing.as_mut()).is_pending());
    let before = store.commit_stats();
    locker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        failing.await,
        Err(StoreError::NotDeadLetter(queued[0].seq)),
        "the failing job hears its own error"
    );
    for r in futures::future::join_all(enqueues).await {
        assert!(r.unwrap()[0].new, "its batch mates still commit");
    }
    assert!(store.commit_stats().commits - before.commits <= 2);
    assert_eq!(store.counters(acme()).await.unwrap().accepted, 11);

    // Round 2: the shared commit fails: every waiter hears it, nothing of theirs is stored.
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut enqueues: Vec<_> = (0..10)
        .map(|i| Box::pin(store.enqueue(vec![new_event("acme", &format!("b{i}"), "k", 0)])))
        .collect();
    for call in enqueues.iter_mut() {
        assert!(futures::poll!(call.as_mut()).is_pending());
    }
    // Every batch until all ten have been answered fails (they may take two batches).
    store.fail_next_commits(10);
    locker.execute_batch("ROLLBACK").unwrap();
    for r in futures::future::join_all(enqueues).await {
        let err = r.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    store.fail_next_commits(0);
    assert_eq!(store.counters(acme()).await.unwrap().accepted, 11);
    let lane = store
        .lane_events(LaneId::new(acme(), "k"), 100)
        .await
        .unwrap();
    assert_eq!(lane.len(), 10, "only round 1's events are in the lane");
    assert!(lane.iter().all(|e| e.envelope.event.id.starts_with('a')));
    // The failed ones were not half-stored: sent again, they are new.
    let again = enqueue_all(&store, &[("acme", "b0", "k", 0)]).await;
    assert!(again[0].new);
}

/// The WAL flush is what makes a commit durable, so its failure is the commit's failure: the
/// caller waiting for it hears `Unavailable` (the intake's 503), and the store refuses every
/// later write and fails its health until reopened — after a failed flush the kernel may have
/// dropped pages, and a later flush could succeed over them. Reopened, the refused alert is
/// new and the unflushed one is found at most once.
#[tokio::test]
async fn a_failed_wal_flush_fails_its_waiter_and_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(&store, &[("acme", "a0", "k", 0)]).await;
    store.fail_next_syncs(1);
    let err = store
        .enqueue(vec![new_event("acme", "a1", "k", 0)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("flushing the store's WAL")),
        "{err}"
    );
    let later = store
        .enqueue(vec![new_event("acme", "a2", "k", 0)])
        .await
        .unwrap_err();
    assert!(matches!(later, StoreError::Unavailable(_)), "{later:?}");
    assert!(
        store.health(1).await.is_err(),
        "health fails while poisoned"
    );
    drop(store);

    let store = open(&dir);
    let again = store
        .enqueue(vec![
            new_event("acme", "a0", "k", 0),
            new_event("acme", "a1", "k", 0),
            new_event("acme", "a2", "k", 0),
        ])
        .await
        .unwrap();
    assert!(!again[0].new, "the flushed alert is kept");
    assert!(again[2].new, "the refused alert was never stored");
    let lane = store
        .lane_events(LaneId::new(acme(), "k"), 100)
        .await
        .unwrap();
    let ids: Vec<_> = lane.iter().map(|e| e.envelope.event.id.as_str()).collect();
    assert_eq!(ids, ["a0", "a1", "a2"], "each alert once");
}

/// No caller hears of a batch before the WAL flush that covers it: every answered call is
/// counted by a flush that began after its commit, so answered calls never outnumber what
/// the flushes covered, and a read after a write is answered only after that write's flush.
#[tokio::test]
async fn every_answer_waits_for_a_flush_after_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let before = store.commit_stats();
    let calls: Vec<_> = (0..20)
        .map(|i| store.enqueue(vec![new_event("acme", &format!("a{i}"), "k", 0)]))
        .collect();
    for r in futures::future::join_all(calls).await {
        assert!(r.unwrap()[0].new);
    }
    let after = store.commit_stats();
    assert!(after.syncs > before.syncs, "writes were flushed");
    assert!(after.syncs - before.syncs <= after.commits - before.commits);
    // A failing flush fails the read queued behind the unflushed write, too.
    store.fail_next_syncs(1);
    let (write, read) = tokio::join!(
        store.enqueue(vec![new_event("acme", "b", "k", 0)]),
        store.counters(acme())
    );
    assert!(write.is_err());
    assert!(
        read.is_err(),
        "a read that may have seen the write waits for its flush"
    );
}
