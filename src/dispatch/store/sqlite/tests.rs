use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::dispatch::event::EventKind;
use crate::dispatch::store::conformance::{acme, enqueue_all, new_event};

/// Claims a lane and returns its head, which the test expects to be there.
async fn claim_head(
    store: &SqliteStore,
    conn: ConnectionKey,
    key: &str,
    now_ms: i64,
    lease: Duration,
) -> StoredEvent {
    store
        .claim(conn, key.into(), now_ms, lease)
        .await
        .unwrap()
        .expect("a due, unclaimed head")
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("store.db"), SqliteOptions::default()).expect("open")
}

#[tokio::test]
async fn enqueue_is_durable_and_idempotent_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let r = enqueue_all(
        &store,
        &[("acme", "a1", "k", 1000), ("acme", "a2", "k", 1000)],
    )
    .await;
    assert!(r.iter().all(|e| e.new));
    let again = enqueue_all(
        &store,
        &[("acme", "a1", "k", 2000), ("other", "a1", "k", 2000)],
    )
    .await;
    assert_eq!(
        again[0],
        Enqueued {
            seq: r[0].seq,
            new: false
        }
    );
    assert!(
        again[1].new,
        "the same id through another connection is a different event"
    );
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.accepted, c.pending), (2, 2));
    drop(store);

    // A fresh process sees what was acknowledged.
    let store = open(&dir);
    let lane = store.lane_events(acme(), "k".into(), 10).await.unwrap();
    let ids: Vec<_> = lane.iter().map(|e| e.envelope.event.id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    assert_eq!(
        lane[0].envelope.accepted_at_ms, 1000,
        "duplicate did not overwrite"
    );
    assert_eq!(store.queue_depth().await.unwrap(), 3);
}

#[tokio::test]
async fn a_lane_hands_out_one_event_at_a_time_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(
        &store,
        &[
            ("acme", "a1", "jane", 10),
            ("acme", "b1", "bob", 11),
            ("acme", "a2", "jane", 12),
        ],
    )
    .await;
    let lease = Duration::from_secs(60);
    let lanes = store.ready_lanes(None, 100, 10).await.unwrap();
    let keys: Vec<_> = lanes.iter().map(|l| l.group_key.as_str()).collect();
    assert_eq!(keys, ["jane", "bob"]);

    let first = store
        .claim(acme(), "jane".into(), 100, lease)
        .await
        .unwrap()
        .expect("head");
    assert_eq!(first.envelope.event.id, "a1");
    assert!(store
        .claim(acme(), "jane".into(), 100, lease)
        .await
        .unwrap()
        .is_none());
    let lanes = store.ready_lanes(Some(acme()), 100, 10).await.unwrap();
    assert_eq!(lanes.len(), 1, "the claimed lane is not offered");
    assert_eq!(lanes[0].group_key, "bob");

    store.mark_done(vec![first.seq], 150).await.unwrap();
    let second = store
        .claim(acme(), "jane".into(), 200, lease)
        .await
        .unwrap()
        .expect("next");
    assert_eq!(second.envelope.event.id, "a2");
    assert_eq!(
        store.mark_done(vec![first.seq], 200).await,
        Err(StoreError::NotQueued(first.seq))
    );
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.accepted, c.pending, c.delivered), (3, 2, 1));
}

#[tokio::test]
async fn an_expired_lease_frees_the_lane_and_release_all_claims_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(&store, &[("acme", "a1", "k", 0)]).await;
    let lease = Duration::from_millis(500);
    assert!(store
        .claim(acme(), "k".into(), 0, lease)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .claim(acme(), "k".into(), 499, lease)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.next_ready_at(None).await.unwrap(), Some(500));
    assert!(store
        .claim(acme(), "k".into(), 500, lease)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.release_all_claims().await.unwrap(), 1);
    assert!(store
        .claim(acme(), "k".into(), 600, lease)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn retries_keep_the_lane_blocked_until_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(&store, &[("acme", "a1", "k", 0), ("acme", "a2", "k", 0)]).await;
    let lease = Duration::from_secs(60);
    let ev = claim_head(&store, acme(), "k", 0, lease).await;
    let n = store
        .retry_later(ev.seq, 5_000, "PSA 503".into())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(store.ready_lanes(None, 4_999, 10).await.unwrap().is_empty());
    assert!(store
        .claim(acme(), "k".into(), 4_999, lease)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.next_ready_at(Some(acme())).await.unwrap(),
        Some(5_000)
    );
    let again = claim_head(&store, acme(), "k", 5_000, lease).await;
    assert_eq!(
        again.envelope.event.id, "a1",
        "a retried event stays at the head"
    );
    assert_eq!(again.attempts, 1);
    assert_eq!(again.last_error.as_deref(), Some("PSA 503"));

    store.defer(again.seq, 9_000).await.unwrap();
    let deferred = claim_head(&store, acme(), "k", 9_000, lease).await;
    assert_eq!(deferred.attempts, 1, "defer does not count an attempt");
}

#[tokio::test]
async fn dead_letters_unblock_the_lane_and_replay_requeues_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(
        &store,
        &[
            ("acme", "a1", "k", 0),
            ("acme", "a2", "k", 0),
            ("other", "o1", "k", 0),
        ],
    )
    .await;
    let lease = Duration::from_secs(60);
    let a1 = claim_head(&store, acme(), "k", 0, lease).await;
    store
        .dead_letter(a1.seq, "permanent: board gone".into(), 10)
        .await
        .unwrap();
    let a2 = claim_head(&store, acme(), "k", 10, lease).await;
    assert_eq!(a2.envelope.event.id, "a2");
    store.mark_done(vec![a2.seq], 20).await.unwrap();
    let other = ConnectionKey::new("psa", "other");
    let o1 = claim_head(&store, other.clone(), "k", 0, lease).await;
    store.dead_letter(o1.seq, "x".into(), 10).await.unwrap();

    let dead = store.dead_letters(Some(acme()), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, EventState::DeadLetter);
    assert_eq!(dead[0].attempts, 1);
    assert!(!dead[0].failsafe_sent);
    store.mark_failsafe_sent(a1.seq).await.unwrap();
    assert!(store.dead_letters(None, 10).await.unwrap()[0].failsafe_sent);
    assert_eq!(
        store.mark_failsafe_sent(a2.seq).await,
        Err(StoreError::NotDeadLetter(a2.seq))
    );
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.pending, c.delivered, c.dead_letters), (0, 1, 1));

    assert_eq!(
        store.replay_dead_letters(Some(acme()), 100).await.unwrap(),
        1
    );
    let back = claim_head(&store, acme(), "k", 100, lease).await;
    assert_eq!((back.envelope.event.id.as_str(), back.attempts), ("a1", 0));
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.pending, c.dead_letters), (1, 0));
    assert_eq!(
        store.dead_letters(None, 10).await.unwrap().len(),
        1,
        "other's stays"
    );
    assert_eq!(store.replay_dead_letters(None, 100).await.unwrap(), 1);
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn group_and_finding_indexes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.group_ticket(acme(), "k".into()).await.unwrap(), None);
    let t = GroupTicket {
        ticket_id: "101".into(),
        open: true,
        updated_at_ms: 5,
    };
    store
        .set_group_ticket(acme(), "k".into(), t.clone())
        .await
        .unwrap();
    assert_eq!(
        store.group_ticket(acme(), "k".into()).await.unwrap(),
        Some(t)
    );
    let closed = GroupTicket {
        ticket_id: "101".into(),
        open: false,
        updated_at_ms: 6,
    };
    store
        .set_group_ticket(acme(), "k".into(), closed.clone())
        .await
        .unwrap();
    assert_eq!(
        store.group_ticket(acme(), "k".into()).await.unwrap(),
        Some(closed)
    );
    assert_eq!(
        store
            .group_ticket(ConnectionKey::new("psa", "other"), "k".into())
            .await
            .unwrap(),
        None
    );

    store
        .set_finding_ticket(acme(), "f-1".into(), "202".into(), 7)
        .await
        .unwrap();
    assert_eq!(
        store
            .finding_ticket(acme(), "f-1".into())
            .await
            .unwrap()
            .as_deref(),
        Some("202")
    );
    assert_eq!(
        store.finding_ticket(acme(), "f-2".into()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn workers_are_woken_by_new_work_not_by_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut rx = store.subscribe();
    let before = *rx.borrow_and_update();
    store.ready_lanes(None, 0, 10).await.unwrap();
    assert!(!rx.has_changed().unwrap(), "a read must not wake workers");
    enqueue_all(&store, &[("acme", "a1", "k", 0)]).await;
    assert!(rx.has_changed().unwrap());
    assert_ne!(*rx.borrow_and_update(), before);
}

#[tokio::test]
async fn concurrent_enqueues_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let id = format!("t{t}-{i}");
                let r = store
                    .enqueue(vec![new_event("acme", &id, &format!("k{t}"), 0)])
                    .await
                    .unwrap();
                assert!(r[0].new);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.counters(acme()).await.unwrap().accepted, 400);
    let lane = store.lane_events(acme(), "k3".into(), 100).await.unwrap();
    let ids: Vec<_> = lane.iter().map(|e| e.envelope.event.id.clone()).collect();
    let want: Vec<_> = (0..25).map(|i| format!("t3-{i}")).collect();
    assert_eq!(ids, want, "one client's events keep their order");
}

#[tokio::test]
async fn a_locked_store_fails_the_call_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(
        &path,
        SqliteOptions {
            busy_timeout: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .unwrap();
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
async fn claims_are_counted_so_a_crashed_run_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(&store, &[("acme", "a1", "k", 0)]).await;
    let lease = Duration::from_secs(1);
    let first = claim_head(&store, acme(), "k", 0, lease).await;
    assert_eq!((first.claims, first.attempts), (1, 0));
    // The worker died holding the claim; after the lease the event comes back marked.
    let second = claim_head(&store, acme(), "k", 1_000, lease).await;
    assert_eq!(second.claims, 2);
}

#[tokio::test]
async fn complete_writes_the_ticket_index_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(
        &store,
        &[("acme", "a1", "k", 0), ("acme", "f1", "finding:f", 0)],
    )
    .await;
    let lease = Duration::from_secs(60);
    let a1 = claim_head(&store, acme(), "k", 0, lease).await;
    let ticket = GroupTicket {
        ticket_id: "7".into(),
        open: true,
        updated_at_ms: 1,
    };
    let records = vec![
        TicketRecord::Group {
            connection: acme(),
            group_key: "k".into(),
            ticket: ticket.clone(),
        },
        TicketRecord::Finding {
            connection: acme(),
            finding_id: "f".into(),
            ticket_id: "8".into(),
            updated_at_ms: 1,
        },
    ];
    // A stale seq fails the whole call: neither the event nor the index changes.
    let err = store
        .complete(vec![a1.seq, 999], 1, records.clone())
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::NotQueued(999));
    assert_eq!(store.group_ticket(acme(), "k".into()).await.unwrap(), None);
    assert_eq!(store.counters(acme()).await.unwrap().delivered, 0);

    store.complete(vec![a1.seq], 1, records).await.unwrap();
    assert_eq!(
        store.group_ticket(acme(), "k".into()).await.unwrap(),
        Some(ticket)
    );
    assert_eq!(
        store
            .finding_ticket(acme(), "f".into())
            .await
            .unwrap()
            .as_deref(),
        Some("8")
    );
    assert_eq!(store.counters(acme()).await.unwrap().delivered, 1);
}

#[tokio::test]
async fn failsafe_mails_are_due_at_once_and_retried_until_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    enqueue_all(&store, &[("acme", "a1", "k", 0)]).await;
    let ev = store
        .claim(acme(), "k".into(), 0, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    store
        .dead_letter(ev.seq, "retries exhausted".into(), 100)
        .await
        .unwrap();
    let due = store.failsafe_due(Some(acme()), 100, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    store
        .failsafe_retry_later(ev.seq, 5_000, "SMTP refused".into())
        .await
        .unwrap();
    assert!(store
        .failsafe_due(None, 4_999, 10)
        .await
        .unwrap()
        .is_empty());
    let due = store.failsafe_due(None, 5_000, 10).await.unwrap();
    assert_eq!(due[0].failsafe_error.as_deref(), Some("SMTP refused"));
    store.mark_failsafe_sent(ev.seq).await.unwrap();
    assert!(store
        .failsafe_due(None, i64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.failsafe_retry_later(ev.seq, 1, "x".into()).await,
        Err(StoreError::NotDeadLetter(ev.seq))
    );
}

#[tokio::test]
async fn calls_waiting_on_one_commit_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(
        &path,
        SqliteOptions {
            busy_timeout: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .unwrap();
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

/// Ids are unique per endpoint family: an `/alerts` id cannot suppress a finding or an
/// Alertmanager alert with the same id.
#[tokio::test]
async fn event_ids_are_unique_per_id_space() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let with_kind = |id: &str, kind: EventKind| {
        let mut ev = new_event("acme", id, "k", 1000);
        ev.envelope.event.kind = kind;
        ev
    };
    let am_id = "am:6d1ddaf090ad53b0:2026-11-24T16:18:28Z:firing";
    let first = store
        .enqueue(vec![
            with_kind("rt-1", EventKind::Alert),
            with_kind(am_id, EventKind::Alert),
        ])
        .await
        .unwrap();
    let second = store
        .enqueue(vec![
            with_kind("rt-1", EventKind::FindingCreated),
            with_kind(am_id, EventKind::AlertFiring),
            with_kind("rt-1", EventKind::FindingCommented),
            with_kind("rt-1", EventKind::Alert),
        ])
        .await
        .unwrap();
    assert!(first.iter().all(|e| e.new));
    let new: Vec<_> = second.iter().map(|e| e.new).collect();
    assert_eq!(new, [true, true, false, false]);
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
    let store = SqliteStore::open(
        &path,
        SqliteOptions {
            busy_timeout: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .unwrap();
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
    let lane = store.lane_events(acme(), "k".into(), 100).await.unwrap();
    assert_eq!(lane.len(), 10, "only round 1's events are in the lane");
    assert!(lane.iter().all(|e| e.envelope.event.id.starts_with('a')));
    // The failed ones were not half-stored: sent again, they are new.
    let again = enqueue_all(&store, &[("acme", "b0", "k", 0)]).await;
    assert!(again[0].new);
}
