//! The store conformance suite: the same tests against SQLite and a real PostgreSQL server
//! (a throwaway one, see `postgres::throwaway`). A backend is opened as several `Store`
//! instances over the same data — two pools, as two replicas would have.
//!
//! PostgreSQL tests skip only with `PSA_SKIP_POSTGRES=1` (and say so loudly); a missing server
//! binary fails them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::postgres::throwaway::{skip_requested, ThrowawayPostgres};
use super::*;
use crate::dispatch::event::{Envelope, Event};

enum Backing {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

struct Backend {
    backing: Backing,
}

fn server() -> &'static ThrowawayPostgres {
    static SERVER: OnceLock<ThrowawayPostgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        ThrowawayPostgres::start().unwrap_or_else(|e| {
            panic!("cannot start the throwaway PostgreSQL (PSA_SKIP_POSTGRES=1 skips): {e}")
        })
    })
}

impl Backend {
    fn sqlite() -> Backend {
        Backend {
            backing: Backing::Sqlite(tempfile::tempdir().unwrap()),
        }
    }

    async fn postgres(test: &str) -> Option<Backend> {
        if skip_requested(test) {
            return None;
        }
        let url = server().create_database(test).await.unwrap();
        Some(Backend {
            backing: Backing::Postgres(url),
        })
    }

    /// Whether replicas share it (claims have owners).
    fn shared(&self) -> bool {
        matches!(self.backing, Backing::Postgres(_))
    }

    /// A store instance (a replica's pool) named `owner`.
    async fn open(&self, owner: &str) -> Arc<dyn Store> {
        match &self.backing {
            Backing::Sqlite(dir) => Arc::new(
                SqliteStore::open(dir.path().join("store.db"), SqliteOptions::default()).unwrap(),
            ),
            Backing::Postgres(url) => Arc::new(
                PgStore::connect(
                    url,
                    PgOptions {
                        owner: owner.into(),
                        ..PgOptions::default()
                    },
                )
                .await
                .unwrap(),
            ),
        }
    }
}

/// The event the store tests queue (a sample with a fixed description and no link).
pub(super) fn event(id: &str) -> Event {
    Event {
        id: id.into(),
        description: "412 files".into(),
        url: None,
        ..Event::sample()
    }
}

pub(super) fn new_event(conn: &str, id: &str, key: &str, at: i64) -> NewEvent {
    NewEvent {
        group_key: key.into(),
        envelope: Envelope {
            namespace: "psa".into(),
            connection: conn.into(),
            accepted_at_ms: at,
            event: event(id),
        },
    }
}

/// Enqueues (connection, id, key, accepted at) events in one call.
pub(super) async fn enqueue_all(
    store: &dyn Store,
    events: &[(&str, &str, &str, i64)],
) -> Vec<Enqueued> {
    let batch = events
        .iter()
        .map(|(c, id, k, at)| new_event(c, id, k, *at))
        .collect();
    store.enqueue(batch).await.unwrap()
}

pub(super) fn acme() -> ConnectionKey {
    ConnectionKey::new("psa", "acme")
}

const MINUTE: Duration = Duration::from_secs(60);

/// acme's lanes whose group key starts with "sample:".
fn sample_lanes() -> LaneScope {
    LaneScope::Prefixed {
        connection: acme(),
        prefix: "sample:".into(),
    }
}

async fn claim(store: &dyn Store, key: &str, now: i64, lease: Duration) -> Option<StoredEvent> {
    store
        .claim(LaneId::new(acme(), key), now, lease)
        .await
        .unwrap()
}

// ---- the suite ----

async fn duplicates_are_ignored_and_a_new_instance_sees_committed_events(b: Backend) {
    let store = b.open("a").await;
    let r = enqueue_all(
        &*store,
        &[("acme", "a1", "k", 1000), ("acme", "a2", "k", 1000)],
    )
    .await;
    assert!(r.iter().all(|e| e.new));
    let again = enqueue_all(
        &*store,
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
    assert!(again[1].new, "same id, other connection: another event");
    drop(store);

    let other = b.open("b").await;
    let lane = other
        .lane_events(LaneId::new(acme(), "k"), 10)
        .await
        .unwrap();
    let ids: Vec<_> = lane.iter().map(|e| e.envelope.event.id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    assert_eq!(lane[0].envelope.accepted_at_ms, 1000, "duplicate overwrote");
    let c = other.counters(acme()).await.unwrap();
    assert_eq!((c.accepted, c.pending, c.delivered), (2, 2, 0));
    assert_eq!(other.queue_depth().await.unwrap(), 3);
}

async fn a_lane_hands_out_one_event_at_a_time_in_arrival_order(b: Backend) {
    let store = b.open("a").await;
    enqueue_all(
        &*store,
        &[
            ("acme", "a1", "jane", 10),
            ("acme", "b1", "bob", 11),
            ("acme", "a2", "jane", 12),
        ],
    )
    .await;
    let lanes = store.ready_lanes(LaneScope::All, 100, 10).await.unwrap();
    let keys: Vec<_> = lanes.iter().map(|l| l.group_key.as_str()).collect();
    assert_eq!(keys, ["jane", "bob"]);
    let first = claim(&*store, "jane", 100, MINUTE).await.expect("head");
    assert_eq!(first.envelope.event.id, "a1");
    assert_eq!(first.claims, 1);
    assert!(claim(&*store, "jane", 100, MINUTE).await.is_none());
    let lanes = store
        .ready_lanes(LaneScope::Connection(acme()), 100, 10)
        .await
        .unwrap();
    assert_eq!(lanes.len(), 1, "the claimed lane is not offered");
    assert_eq!(lanes[0].group_key, "bob");
    store.mark_done(vec![first.seq], 150).await.unwrap();
    let second = claim(&*store, "jane", 200, MINUTE).await.expect("next");
    assert_eq!(second.envelope.event.id, "a2");
    assert_eq!(
        store.mark_done(vec![first.seq], 200).await,
        Err(StoreError::NotQueued(first.seq))
    );
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.accepted, c.pending, c.delivered), (3, 2, 1));
}

/// A suspended connection's samples are found behind any number of held lanes due before
/// them, and only lanes of that connection starting with the prefix are offered.
async fn sample_lanes_are_found_behind_held_lanes(b: Backend) {
    let store = b.open("a").await;
    let held: Vec<(String, String)> = (0..30)
        .map(|i| (format!("h{i}"), format!("user:[\"contoso\",\"u{i}\"]")))
        .collect();
    let mut events: Vec<(&str, &str, &str, i64)> = held
        .iter()
        .map(|(id, key)| ("acme", id.as_str(), key.as_str(), 10))
        .collect();
    events.push(("acme", "s0", "sample:", 30));
    events.push(("acme", "s1", "sample:user:[\"contoso\",\"bob\"]", 50));
    events.push(("acme", "s2", "sample;after", 50));
    events.push(("acme", "s3", "samplex", 50));
    events.push(("other", "s4", "sample:user:[\"contoso\",\"bob\"]", 50));
    enqueue_all(&*store, &events).await;
    let earliest = store
        .ready_lanes(LaneScope::Connection(acme()), 100, 5)
        .await
        .unwrap();
    assert!(
        earliest.iter().all(|l| !l.group_key.starts_with("sample:")),
        "the held lanes are due first"
    );
    let samples = store.ready_lanes(sample_lanes(), 100, 5).await.unwrap();
    let keys: Vec<_> = samples.iter().map(|l| l.group_key.as_str()).collect();
    assert_eq!(keys, ["sample:", "sample:user:[\"contoso\",\"bob\"]"]);
    assert!(samples.iter().all(|l| l.connection == acme()));
    // Not due yet, or claimed: not offered.
    let early = store.ready_lanes(sample_lanes(), 40, 5).await.unwrap();
    assert_eq!(early.len(), 1);
    claim(&*store, "sample:", 100, MINUTE).await.expect("head");
    let left = store.ready_lanes(sample_lanes(), 100, 5).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].group_key, "sample:user:[\"contoso\",\"bob\"]");
}

async fn an_expired_lease_lets_another_replica_claim_the_lane(b: Backend) {
    let a = b.open("replica-a").await;
    let other = b.open("replica-b").await;
    enqueue_all(&*a, &[("acme", "a1", "k", 0)]).await;
    let lease = Duration::from_millis(500);
    let first = claim(&*a, "k", 0, lease).await.expect("claimed by a");
    assert_eq!((first.claims, first.attempts), (1, 0));
    assert!(
        claim(&*other, "k", 499, lease).await.is_none(),
        "lease held"
    );
    assert_eq!(other.next_ready_at(None).await.unwrap(), Some(500));
    let again = claim(&*other, "k", 500, lease)
        .await
        .expect("lease ran out");
    assert_eq!(again.seq, first.seq);
    assert_eq!(
        again.claims, 2,
        "the second claim is visible to the marker lookup"
    );
    // The first claimant's late outcome still counts once; the event is not delivered twice.
    other.mark_done(vec![again.seq], 600).await.unwrap();
    assert_eq!(
        a.mark_done(vec![first.seq], 601).await,
        Err(StoreError::NotQueued(first.seq))
    );
    assert_eq!(a.counters(acme()).await.unwrap().delivered, 1);
}

async fn release_all_claims_ends_this_replicas_claims(b: Backend) {
    let a = b.open("replica-a").await;
    let other = b.open("replica-b").await;
    enqueue_all(&*a, &[("acme", "a1", "k1", 0), ("acme", "b1", "k2", 0)]).await;
    assert!(claim(&*a, "k1", 0, MINUTE).await.is_some());
    assert!(claim(&*other, "k2", 0, MINUTE).await.is_some());
    let released = a.release_all_claims().await.unwrap();
    assert!(
        claim(&*a, "k1", 10, MINUTE).await.is_some(),
        "own claim ended"
    );
    if b.shared() {
        assert_eq!(released, 1, "only replica-a's claim");
        assert!(
            claim(&*a, "k2", 10, MINUTE).await.is_none(),
            "replica-b's live claim stays"
        );
    } else {
        assert_eq!(released, 2, "one replica: every claim is its own");
    }
}

async fn retries_count_attempts_and_defer_does_not(b: Backend) {
    let store = b.open("a").await;
    enqueue_all(&*store, &[("acme", "a1", "k", 0), ("acme", "a2", "k", 0)]).await;
    let ev = claim(&*store, "k", 0, MINUTE).await.unwrap();
    let n = store
        .retry_later(ev.seq, 5_000, "HTTP 503".into())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(store
        .ready_lanes(LaneScope::All, 4_999, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        claim(&*store, "k", 4_999, MINUTE).await.is_none(),
        "not due"
    );
    assert_eq!(
        store.next_ready_at(Some(acme())).await.unwrap(),
        Some(5_000)
    );
    let ev = claim(&*store, "k", 5_000, MINUTE).await.unwrap();
    assert_eq!(
        ev.envelope.event.id, "a1",
        "the retried head keeps its place"
    );
    assert_eq!(ev.attempts, 1);
    assert_eq!(ev.last_error.as_deref(), Some("HTTP 503"));
    store.defer(ev.seq, 9_000).await.unwrap();
    let ev = claim(&*store, "k", 9_000, MINUTE).await.unwrap();
    assert_eq!(ev.attempts, 1, "defer counts no attempt");
    assert_eq!(
        store.defer(12345, 0).await,
        Err(StoreError::NotQueued(12345))
    );
}

async fn dead_letters_free_the_lane_mail_once_and_replay(b: Backend) {
    let store = b.open("a").await;
    enqueue_all(&*store, &[("acme", "a1", "k", 0), ("acme", "a2", "k", 0)]).await;
    let ev = claim(&*store, "k", 0, MINUTE).await.unwrap();
    store
        .dead_letter(ev.seq, "HTTP 400: bad board".into(), 100)
        .await
        .unwrap();
    let next = claim(&*store, "k", 100, MINUTE)
        .await
        .expect("lane flows on");
    assert_eq!(next.envelope.event.id, "a2");
    let due = store.failsafe_due(None, 100, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].state, EventState::DeadLetter);
    store
        .failsafe_retry_later(ev.seq, 1_000, "smtp down".into())
        .await
        .unwrap();
    assert!(store.failsafe_due(None, 999, 10).await.unwrap().is_empty());
    store.mark_failsafe_sent(ev.seq).await.unwrap();
    assert!(store
        .failsafe_due(None, 5_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.mark_failsafe_sent(next.seq).await,
        Err(StoreError::NotDeadLetter(next.seq))
    );
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.pending, c.dead_letters), (1, 1));

    store.mark_done(vec![next.seq], 200).await.unwrap();
    assert_eq!(
        store.replay_dead_letters(Some(acme()), 300).await.unwrap(),
        1
    );
    let back = claim(&*store, "k", 300, MINUTE).await.expect("replayed");
    assert_eq!((back.seq, back.attempts), (ev.seq, 0));
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.pending, c.delivered, c.dead_letters), (1, 1, 0));
}

async fn the_firing_alerts_of_a_group_ticket_are_kept_with_complete(b: Backend) {
    let store = b.open("a").await;
    enqueue_all(&*store, &[("acme", "a1", "k", 0), ("acme", "a2", "k", 0)]).await;
    assert_eq!(
        store.group_lifecycle(acme(), "k".into()).await.unwrap(),
        None
    );
    let record = |ticket: &str, firing: &[&str]| TicketRecord::Lifecycle {
        connection: acme(),
        group_key: "k".into(),
        lifecycle: GroupLifecycle {
            ticket_id: ticket.into(),
            status_id: Some("16".into()),
            firing: firing.iter().map(|s| s.to_string()).collect(),
        },
    };
    let ev = claim(&*store, "k", 0, MINUTE).await.unwrap();
    store
        .complete(vec![ev.seq], 10, vec![record("T-1", &["fp-a", "fp-b"])])
        .await
        .unwrap();
    let kept = store.group_lifecycle(acme(), "k".into()).await.unwrap();
    assert_eq!(
        kept,
        Some(GroupLifecycle {
            ticket_id: "T-1".into(),
            status_id: Some("16".into()),
            firing: BTreeSet::from(["fp-a".to_string(), "fp-b".to_string()]),
        })
    );
    // The next record replaces the set (one resolved), per group.
    let ev = claim(&*store, "k", 20, MINUTE).await.unwrap();
    store
        .complete(vec![ev.seq], 20, vec![record("T-1", &["fp-b"])])
        .await
        .unwrap();
    let kept = store
        .group_lifecycle(acme(), "k".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.firing, BTreeSet::from(["fp-b".to_string()]));
    assert_eq!(
        store
            .group_lifecycle(ConnectionKey::new("psa", "other"), "k".into())
            .await
            .unwrap(),
        None
    );
}

async fn complete_writes_the_indexes_all_or_nothing(b: Backend) {
    let store = b.open("a").await;
    enqueue_all(&*store, &[("acme", "a1", "k", 0), ("acme", "f1", "f", 0)]).await;
    let ev = claim(&*store, "k", 0, MINUTE).await.unwrap();
    let group = |id: &str| TicketRecord::Group {
        connection: acme(),
        group_key: "k".into(),
        ticket: GroupTicket {
            ticket_id: id.into(),
            open: true,
            updated_at_ms: 10,
        },
    };
    // One unknown seq fails the call and nothing of it stays.
    assert_eq!(
        store
            .complete(vec![ev.seq, 999_999], 10, vec![group("T-1")])
            .await,
        Err(StoreError::NotQueued(999_999))
    );
    assert_eq!(store.group_ticket(acme(), "k".into()).await.unwrap(), None);
    assert_eq!(store.counters(acme()).await.unwrap().delivered, 0);

    let finding = TicketRecord::Finding {
        connection: acme(),
        finding_id: "F-9".into(),
        ticket_id: "T-2".into(),
        updated_at_ms: 10,
    };
    store
        .complete(vec![ev.seq], 10, vec![group("T-1"), finding])
        .await
        .unwrap();
    let t = store
        .group_ticket(acme(), "k".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.ticket_id.as_str(), t.open), ("T-1", true));
    assert_eq!(
        store.finding_ticket(acme(), "F-9".into()).await.unwrap(),
        Some("T-2".into())
    );
    assert_eq!(store.counters(acme()).await.unwrap().delivered, 1);
    store
        .set_group_ticket(
            acme(),
            "k".into(),
            GroupTicket {
                ticket_id: "T-1".into(),
                open: false,
                updated_at_ms: 20,
            },
        )
        .await
        .unwrap();
    assert!(
        !store
            .group_ticket(acme(), "k".into())
            .await
            .unwrap()
            .unwrap()
            .open
    );
    store
        .set_finding_ticket(acme(), "F-9".into(), "T-3".into(), 30)
        .await
        .unwrap();
    assert_eq!(
        store.finding_ticket(acme(), "F-9".into()).await.unwrap(),
        Some("T-3".into())
    );
}

async fn concurrent_claimants_from_two_pools_get_each_lane_once(b: Backend) {
    let a = b.open("replica-a").await;
    let other = b.open("replica-b").await;
    let lanes: Vec<String> = (0..40).map(|i| format!("lane-{i}")).collect();
    let events: Vec<(String, String)> = lanes
        .iter()
        .map(|l| (format!("{l}-e"), l.clone()))
        .collect();
    a.enqueue(
        events
            .iter()
            .map(|(id, key)| new_event("acme", id, key, 0))
            .collect(),
    )
    .await
    .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, store) in [a.clone(), other.clone()].into_iter().enumerate() {
        for chunk in 0..4 {
            let store = store.clone();
            let lanes = lanes.clone();
            tasks.spawn(async move {
                let mut won = Vec::new();
                // Every task tries every lane, from a different starting point.
                for j in 0..lanes.len() {
                    let key = &lanes[(j + chunk * 10 + i * 5) % lanes.len()];
                    if let Some(ev) = store
                        .claim(LaneId::new(acme(), key.clone()), 10, MINUTE)
                        .await
                        .unwrap()
                    {
                        won.push(ev.seq);
                    }
                }
                won
            });
        }
    }
    let mut claimed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        claimed.extend(r.unwrap());
    }
    claimed.sort_unstable();
    let distinct: BTreeSet<i64> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), lanes.len(), "each lane claimed exactly once");
    assert_eq!(distinct.len(), lanes.len());
}

async fn enqueue_and_complete_racing_on_one_lane_lose_nothing(b: Backend) {
    let producer = b.open("replica-a").await;
    let consumer = b.open("replica-b").await;
    const N: usize = 150;
    let produce = tokio::spawn(async move {
        for i in 0..N {
            producer
                .enqueue(vec![new_event("acme", &format!("e{i:04}"), "k", i as i64)])
                .await
                .unwrap();
        }
    });
    let mut delivered = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while delivered.len() < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {N} delivered: an event was lost from its lane",
            delivered.len()
        );
        match consumer
            .claim(LaneId::new(acme(), "k"), i64::MAX / 2, MINUTE)
            .await
            .unwrap()
        {
            Some(ev) => {
                delivered.push(ev.envelope.event.id.clone());
                consumer.mark_done(vec![ev.seq], 1).await.unwrap();
            }
            None => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
    produce.await.unwrap();
    let want: Vec<String> = (0..N).map(|i| format!("e{i:04}")).collect();
    assert_eq!(delivered, want, "every event once, in arrival order");
    let c = consumer.counters(acme()).await.unwrap();
    assert_eq!(
        (c.accepted, c.pending, c.delivered),
        (N as u64, 0, N as u64)
    );
}

/// Ids are unique per endpoint family: an `/alerts` id cannot suppress a finding or an
/// Alertmanager alert with the same id (PostgreSQL: since store migration 4).
async fn event_ids_are_unique_per_id_space(b: Backend) {
    use crate::dispatch::event::EventKind;
    let store = b.open("replica-a").await;
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

async fn the_same_ids_from_two_replicas_are_stored_once(b: Backend) {
    let a = b.open("replica-a").await;
    let other = b.open("replica-b").await;
    let batch = |conn: &str| -> Vec<NewEvent> {
        (0..60)
            .map(|i| new_event(conn, &format!("dup-{i}"), &format!("k{}", i % 7), i))
            .collect()
    };
    let (ra, rb) = tokio::join!(a.enqueue(batch("acme")), other.enqueue(batch("acme")));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut seqs: BTreeMap<usize, i64> = BTreeMap::new();
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        assert_eq!(x.seq, y.seq, "dup-{i} has one seq");
        assert!(x.new ^ y.new, "dup-{i} is new for exactly one replica");
        seqs.insert(i, x.seq);
    }
    let c = a.counters(acme()).await.unwrap();
    assert_eq!((c.accepted, c.pending), (60, 60));
}

fn admit_req(group: &str, now_ms: i64) -> crate::dispatch::decide::storm::AdmitRequest {
    crate::dispatch::decide::storm::AdmitRequest {
        connection: acme(),
        customer_id: "10".into(),
        customer_name: "Contoso Ltd".into(),
        group_key: group.into(),
        now_ms,
        limit_count: 20,
        per_ms: 60_000,
        lease_ms: 5_000,
    }
}

/// 30 new groups of one customer from two replicas at once, limit 20: 20 tickets, one
/// roll-up creator, the rest wait; once recorded, every later group (also after a restart)
/// is a note on that one roll-up.
async fn the_storm_breaker_counts_across_replicas_and_restarts(b: Backend) {
    use crate::dispatch::decide::storm::Admission;
    let a = b.open("replica-a").await;
    let other = b.open("replica-b").await;
    let run = |store: Arc<dyn Store>, from: usize| async move {
        let mut out = vec![];
        for i in from..from + 15 {
            out.push(
                store
                    .storm_admit(admit_req(&format!("g{i}"), 1_000))
                    .await
                    .unwrap(),
            );
        }
        out
    };
    let (ra, rb) = tokio::join!(run(a.clone(), 0), run(other.clone(), 15));
    let all: Vec<Admission> = ra.into_iter().chain(rb).collect();
    let tickets = all.iter().filter(|x| **x == Admission::Ticket).count();
    let creators = all
        .iter()
        .filter(|x| matches!(x, Admission::CreateRollup { seq: 0 }))
        .count();
    let waits = all
        .iter()
        .filter(|x| matches!(x, Admission::Wait { until_ms: 6_000 }))
        .count();
    assert_eq!((tickets, creators, waits), (20, 1, 9), "{all:?}");
    // A retry of an admitted group gets its answer again, not a second slot.
    assert_eq!(
        a.storm_admit(admit_req("g0", 1_100)).await.unwrap(),
        Admission::Ticket
    );
    let record = |created: Option<&str>, l: &str| TicketRecord::Storm {
        connection: acme(),
        customer_id: "10".into(),
        created: created.map(String::from),
        label: l.into(),
    };
    let created = record(Some("R1"), "jane · Downloads");
    a.complete(vec![], 1_200, vec![created]).await.unwrap();
    other
        .complete(vec![], 1_300, vec![record(None, "bob · MFA")])
        .await
        .unwrap();
    // After a restart (a new instance over the same data): the same roll-up.
    drop(a);
    let restarted = b.open("replica-a").await;
    for store in [&restarted, &other] {
        assert_eq!(
            store.storm_admit(admit_req("g99", 2_000)).await.unwrap(),
            Admission::Note {
                rollup_ticket_id: "R1".into()
            }
        );
    }
    let w = restarted
        .storm_window(acme(), "10".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w.tickets, w.rollup_ticket_id.as_deref()), (20, Some("R1")));
    assert_eq!(w.overflow.values().sum::<u64>(), 2);
    assert_eq!(
        other.storm_window(acme(), "11".into()).await.unwrap(),
        None,
        "per customer"
    );
}

/// A roll-up quiet for a whole window is handed to one sweeper; once closed, the next overflow
/// creates the next generation.
async fn a_quiet_roll_up_is_closed_by_one_replica(b: Backend) {
    use crate::dispatch::decide::storm::Admission;
    let a = b.open("replica-a").await;
    let other = b.open("replica-b").await;
    for i in 0..21 {
        a.storm_admit(admit_req(&format!("g{i}"), 0)).await.unwrap();
    }
    let created = TicketRecord::Storm {
        connection: acme(),
        customer_id: "10".into(),
        created: Some("R1".into()),
        label: "jane · Downloads".into(),
    };
    a.complete(vec![], 10, vec![created]).await.unwrap();
    // The last alert went to the roll-up at 0: quiet until 60 000.
    assert!(a.storm_due(59_999, 5_000, 10).await.unwrap().is_empty());
    let (da, db) = tokio::join!(
        a.storm_due(60_000, 5_000, 10),
        other.storm_due(60_000, 5_000, 10)
    );
    let due: Vec<StormDue> = da.unwrap().into_iter().chain(db.unwrap()).collect();
    assert_eq!(due.len(), 1, "one replica closes it: {due:?}");
    assert_eq!(due[0].window.rollup_ticket_id.as_deref(), Some("R1"));
    assert_eq!(due[0].customer_id, "10");
    // Leased: not handed out again until the lease ends.
    assert!(other.storm_due(61_000, 5_000, 10).await.unwrap().is_empty());
    other
        .storm_closed(acme(), "10".into(), "R1".into())
        .await
        .unwrap();
    assert!(a.storm_due(70_000, 5_000, 10).await.unwrap().is_empty());
    // A new storm in a later window: 20 tickets, then a new roll-up generation.
    for i in 0..20 {
        assert_eq!(
            a.storm_admit(admit_req(&format!("h{i}"), 80_000))
                .await
                .unwrap(),
            Admission::Ticket
        );
    }
    assert_eq!(
        a.storm_admit(admit_req("h20", 80_001)).await.unwrap(),
        Admission::CreateRollup { seq: 1 }
    );
}

/// The dead-letter list and replay take a connection, or every connection with `None`.
async fn dead_letters_are_listed_and_replayed_per_connection(b: Backend) {
    let store = b.open("a").await;
    enqueue_all(
        &*store,
        &[
            ("acme", "a1", "k", 0),
            ("acme", "a2", "k", 0),
            ("other", "o1", "k", 0),
        ],
    )
    .await;
    let a1 = claim(&*store, "k", 0, MINUTE).await.expect("a1");
    store
        .dead_letter(a1.seq, "permanent: board gone".into(), 10)
        .await
        .unwrap();
    let a2 = claim(&*store, "k", 10, MINUTE).await.expect("a2");
    assert_eq!(a2.envelope.event.id, "a2");
    store.mark_done(vec![a2.seq], 20).await.unwrap();
    let other = ConnectionKey::new("psa", "other");
    let o1 = store
        .claim(LaneId::new(other, "k"), 0, MINUTE)
        .await
        .unwrap()
        .expect("o1");
    store.dead_letter(o1.seq, "x".into(), 10).await.unwrap();

    let dead = store.dead_letters(Some(acme()), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, EventState::DeadLetter);
    assert_eq!(dead[0].attempts, 1);
    assert!(!dead[0].failsafe_sent);
    store.mark_failsafe_sent(a1.seq).await.unwrap();
    assert!(store.dead_letters(Some(acme()), 10).await.unwrap()[0].failsafe_sent);
    let c = store.counters(acme()).await.unwrap();
    assert_eq!((c.pending, c.delivered, c.dead_letters), (0, 1, 1));

    assert_eq!(
        store.replay_dead_letters(Some(acme()), 100).await.unwrap(),
        1
    );
    let back = claim(&*store, "k", 100, MINUTE).await.expect("replayed");
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

async fn failsafe_mails_are_due_at_once_and_retried_until_sent(b: Backend) {
    let store = b.open("a").await;
    enqueue_all(&*store, &[("acme", "a1", "k", 0)]).await;
    let ev = claim(&*store, "k", 0, MINUTE).await.expect("head");
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

async fn group_and_finding_indexes_round_trip(b: Backend) {
    let store = b.open("a").await;
    assert_eq!(store.group_ticket(acme(), "k".into()).await.unwrap(), None);
    let ticket = |open: bool, at: i64| GroupTicket {
        ticket_id: "101".into(),
        open,
        updated_at_ms: at,
    };
    for t in [ticket(true, 5), ticket(false, 6)] {
        store
            .set_group_ticket(acme(), "k".into(), t.clone())
            .await
            .unwrap();
        assert_eq!(
            store.group_ticket(acme(), "k".into()).await.unwrap(),
            Some(t)
        );
    }
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
        store.finding_ticket(acme(), "f-1".into()).await.unwrap(),
        Some("202".into())
    );
    assert_eq!(
        store.finding_ticket(acme(), "f-2".into()).await.unwrap(),
        None
    );
}

async fn workers_are_woken_by_new_work_not_by_reads(b: Backend) {
    let store = b.open("a").await;
    let mut rx = store.subscribe();
    let before = *rx.borrow_and_update();
    store.ready_lanes(LaneScope::All, 0, 10).await.unwrap();
    assert!(!rx.has_changed().unwrap(), "a read must not wake workers");
    enqueue_all(&*store, &[("acme", "a1", "k", 0)]).await;
    assert!(rx.has_changed().unwrap());
    assert_ne!(*rx.borrow_and_update(), before);
}

async fn concurrent_enqueues_of_one_instance_all_commit(b: Backend) {
    let store = b.open("a").await;
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
    let lane = store
        .lane_events(LaneId::new(acme(), "k3"), 100)
        .await
        .unwrap();
    let ids: Vec<_> = lane.iter().map(|e| e.envelope.event.id.clone()).collect();
    let want: Vec<_> = (0..25).map(|i| format!("t3-{i}")).collect();
    assert_eq!(ids, want, "one client's events keep their order");
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::sqlite()).await
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(b) = super::Backend::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(b).await
                }
            )*
        }
    };
}

conformance!(
    duplicates_are_ignored_and_a_new_instance_sees_committed_events,
    a_lane_hands_out_one_event_at_a_time_in_arrival_order,
    sample_lanes_are_found_behind_held_lanes,
    an_expired_lease_lets_another_replica_claim_the_lane,
    release_all_claims_ends_this_replicas_claims,
    retries_count_attempts_and_defer_does_not,
    dead_letters_free_the_lane_mail_once_and_replay,
    complete_writes_the_indexes_all_or_nothing,
    the_firing_alerts_of_a_group_ticket_are_kept_with_complete,
    concurrent_claimants_from_two_pools_get_each_lane_once,
    enqueue_and_complete_racing_on_one_lane_lose_nothing,
    the_same_ids_from_two_replicas_are_stored_once,
    event_ids_are_unique_per_id_space,
    the_storm_breaker_counts_across_replicas_and_restarts,
    a_quiet_roll_up_is_closed_by_one_replica,
    dead_letters_are_listed_and_replayed_per_connection,
    failsafe_mails_are_due_at_once_and_retried_until_sent,
    group_and_finding_indexes_round_trip,
    workers_are_woken_by_new_work_not_by_reads,
    concurrent_enqueues_of_one_instance_all_commit,
);

/// A PostgreSQL store written at schema version 3 (one id space per connection) opens at the
/// latest version with its events kept, each in the space of its kind: the old `/alerts` event
/// is still a duplicate of itself, and a finding that reuses its id is a new event.
#[tokio::test]
async fn a_version_3_postgres_store_moves_its_events_into_id_spaces() {
    use crate::dispatch::event::EventKind;
    use crate::dispatch::store::postgres::migrations::MIGRATIONS;
    let test = "a_version_3_postgres_store_moves_its_events_into_id_spaces";
    if skip_requested(test) {
        return;
    }
    let url = server().create_database("v3_ids").await.unwrap();
    {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        client
            .batch_execute(
                "CREATE TABLE psa_schema_migrations (
                     version BIGINT PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await
            .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 <= 3) {
            client.batch_execute(sql).await.unwrap();
            client
                .execute(
                    "INSERT INTO psa_schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .unwrap();
        }
        let body = serde_json::to_string(&new_event("acme", "rt-1", "k", 1000).envelope).unwrap();
        client
            .execute(
                "INSERT INTO psa_events (namespace, connection, event_id, group_key, kind, body,
                                         state, next_attempt_at_ms, accepted_at_ms)
                 VALUES ('psa', 'acme', 'rt-1', 'k', 'alert', $1, 0, 1000, 1000)",
                &[&body],
            )
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
    }
    let store = Backend {
        backing: Backing::Postgres(url),
    }
    .open("replica-a")
    .await;
    let with_kind = |kind: EventKind| {
        let mut ev = new_event("acme", "rt-1", "k", 2000);
        ev.envelope.event.kind = kind;
        ev
    };
    let again = store
        .enqueue(vec![
            with_kind(EventKind::Alert),
            with_kind(EventKind::FindingCreated),
        ])
        .await
        .unwrap();
    let new: Vec<bool> = again.iter().map(|e| e.new).collect();
    assert_eq!(new, [false, true], "{again:?}");
}
