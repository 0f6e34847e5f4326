//! Storage faults under the dispatcher: a delivery reached the PSA but the store refused to
//! record it. The lane must not stay claimed for the whole lease (10 minutes by default): it is
//! released, delivered again once the store takes writes, and the marker lookup finds the
//! ticket instead of creating a second one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use psa_operator::api::Grouping;
use psa_operator::dispatch::decide::storm::{Admission, AdmitRequest, StormWindow};
use psa_operator::dispatch::store::*;
use psa_operator::resolved::ConnectionKey;
use tokio::sync::watch;

use super::fake_psa::FakePsa;
use super::harness::*;

/// A real store whose next `complete` and `defer` calls fail as a full disk makes them fail.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    pub fail_completes: AtomicU32,
    pub fail_defers: AtomicU32,
}

fn injected(counter: &AtomicU32) -> StoreResult<()> {
    let failed = counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failed {
        Err(StoreError::Unavailable(
            "database or disk is full (injected)".into(),
        ))
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn enqueue(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Enqueued>> {
        self.inner.enqueue(events).await
    }
    async fn ready_lanes(
        &self,
        scope: LaneScope,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<ReadyLane>> {
        self.inner.ready_lanes(scope, now_ms, limit).await
    }
    async fn next_ready_at(&self, connection: Option<ConnectionKey>) -> StoreResult<Option<i64>> {
        self.inner.next_ready_at(connection).await
    }
    async fn claim(
        &self,
        lane: LaneId,
        now_ms: i64,
        lease: Duration,
    ) -> StoreResult<Option<StoredEvent>> {
        self.inner.claim(lane, now_ms, lease).await
    }
    async fn lane_events(&self, lane: LaneId, limit: usize) -> StoreResult<Vec<StoredEvent>> {
        self.inner.lane_events(lane, limit).await
    }
    async fn complete(
        &self,
        seqs: Vec<i64>,
        now_ms: i64,
        records: Vec<TicketRecord>,
    ) -> StoreResult<()> {
        injected(&self.fail_completes)?;
        self.inner.complete(seqs, now_ms, records).await
    }
    async fn retry_later(
        &self,
        seq: i64,
        next_attempt_at_ms: i64,
        error: String,
    ) -> StoreResult<u32> {
        self.inner.retry_later(seq, next_attempt_at_ms, error).await
    }
    async fn defer(&self, seq: i64, not_before_ms: i64) -> StoreResult<()> {
        injected(&self.fail_defers)?;
        self.inner.defer(seq, not_before_ms).await
    }
    async fn dead_letter(&self, seq: i64, error: String, now_ms: i64) -> StoreResult<()> {
        self.inner.dead_letter(seq, error, now_ms).await
    }
    async fn group_lifecycle(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupLifecycle>> {
        self.inner.group_lifecycle(connection, group_key).await
    }
    async fn storm_admit(&self, req: AdmitRequest) -> StoreResult<Admission> {
        self.inner.storm_admit(req).await
    }
    async fn storm_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<StormDue>> {
        self.inner.storm_due(now_ms, lease_ms, limit).await
    }
    async fn storm_closed(
        &self,
        connection: ConnectionKey,
        customer_id: String,
        ticket_id: String,
    ) -> StoreResult<()> {
        self.inner
            .storm_closed(connection, customer_id, ticket_id)
            .await
    }
    async fn storm_window(
        &self,
        connection: ConnectionKey,
        customer_id: String,
    ) -> StoreResult<Option<StormWindow>> {
        self.inner.storm_window(connection, customer_id).await
    }
    async fn mark_failsafe_sent(&self, seq: i64) -> StoreResult<()> {
        self.inner.mark_failsafe_sent(seq).await
    }
    async fn failsafe_due(
        &self,
        connection: Option<ConnectionKey>,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.inner.failsafe_due(connection, now_ms, limit).await
    }
    async fn failsafe_retry_later(
        &self,
        seq: i64,
        next_at_ms: i64,
        error: String,
    ) -> StoreResult<()> {
        self.inner
            .failsafe_retry_later(seq, next_at_ms, error)
            .await
    }
    async fn dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.inner.dead_letters(connection, limit).await
    }
    async fn replay_dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        self.inner.replay_dead_letters(connection, now_ms).await
    }
    async fn release_all_claims(&self) -> StoreResult<u64> {
        self.inner.release_all_claims().await
    }
    async fn group_ticket(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupTicket>> {
        self.inner.group_ticket(connection, group_key).await
    }
    async fn finding_ticket(
        &self,
        connection: ConnectionKey,
        finding_id: String,
    ) -> StoreResult<Option<String>> {
        self.inner.finding_ticket(connection, finding_id).await
    }
    async fn counters(&self, connection: ConnectionKey) -> StoreResult<ConnectionCounters> {
        self.inner.counters(connection).await
    }
    async fn queue_depth(&self) -> StoreResult<u64> {
        self.inner.queue_depth().await
    }
    async fn health(&self, now_ms: i64) -> StoreResult<()> {
        self.inner.health(now_ms).await
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.subscribe()
    }
}

/// The ticket was created, recording it failed, and so did the first attempts to release the
/// lane (the store was still full): the lane is released once the store answers, the event is
/// delivered again within seconds — not after the 10-minute lease — and the PSA holds one
/// ticket, on the mapped company.
#[tokio::test]
async fn a_delivery_that_cannot_be_recorded_releases_its_lane_without_a_second_ticket() {
    let psa = FakePsa::new();
    let key = ConnectionKey::new("psa", "acme");
    let mut h = Harness::new(snapshot(&key, Arc::new(psa.clone()), Grouping::User));
    assert_eq!(
        h.options.claim_lease,
        Duration::from_secs(600),
        "the default lease"
    );
    let faulty = Arc::new(FaultyStore {
        inner: h.store.clone(),
        fail_completes: AtomicU32::new(1),
        fail_defers: AtomicU32::new(2),
    });
    h.store = faulty.clone();
    h.start();
    let sent = Instant::now();
    h.send(vec![alert("full-1", JANE, "Too Many Downloads")])
        .await;
    h.wait_counters("the event recorded as delivered", |c| c.delivered == 1)
        .await;
    let took = sent.elapsed();
    assert_eq!(faulty.fail_completes.load(Ordering::SeqCst), 0);
    assert_eq!(
        faulty.fail_defers.load(Ordering::SeqCst),
        0,
        "the release was retried after the store refused it"
    );
    assert!(
        took < Duration::from_secs(10),
        "delivered again after {took:?}: the lane stayed claimed"
    );
    let tickets = psa.tickets();
    assert_eq!(tickets.len(), 1, "no second ticket: {tickets:?}");
    assert_eq!(tickets[0].new.company_id, "10", "on the mapped company");
    assert_eq!(psa.calls("create_ticket"), 1);
    assert_eq!(
        psa.calls("find_ticket_by_marker"),
        1,
        "the second delivery looked the ticket up by its marker"
    );
    // The group is recorded against that ticket: the next alert is a note on it.
    h.send_and_settle(vec![alert("full-2", JANE, "Too Many Uploads")])
        .await;
    let tickets = psa.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].notes.len(), 1);
}
