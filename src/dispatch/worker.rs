//! The dispatcher's workers: which lane runs when, and what happens after each attempt.
//!
//! A *lane* is the queue of one (connection, grouping key). Lanes run one event at a time, in
//! order (the store leases a lane to one claimant), different lanes in parallel, bounded per
//! connection and overall. A connection's PSA calls share one request budget. Held events:
//! a suspended connection's lanes are not claimed (they flow when it resumes: the registry's
//! watch channel wakes the scheduler), except its sample lanes (`grouping::SAMPLE_PREFIX`,
//! `send-sample --even-if-suspended`: test before enable); a connection whose settings do not
//! resolve is held for `unresolved_hold`, then its events become dead letters and go out by
//! failsafe e-mail.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::dispatch::budget::{is_rate_limited, Budget, PsaCalls};
use crate::dispatch::cache::Ttl;
use crate::dispatch::decide::action::batchable;
use crate::dispatch::decide::batch::{batch, Batch};
use crate::dispatch::decide::retry::{after_failure, backoff, AfterFailure};
use crate::dispatch::deliver::{Caches, Delivery, DeliveryError};
use crate::dispatch::failsafe::{compose, send};
use crate::dispatch::grouping::{claimable, SAMPLE_PREFIX};
use crate::dispatch::metrics::DispatchMetrics;
use crate::dispatch::problems::{DeliveryProblem, ProblemSink};
use crate::dispatch::stats::{StatsBoard, StatsSink};
use crate::dispatch::store::{LaneId, LaneScope, Store, StoreError, StoredEvent};
use crate::resolved::{ConnectionKey, Failsafe, Registry, ResolvedConnection};

/// Tuning of the dispatcher process (per-connection tuning lives in the PsaConnection).
#[derive(Clone, Debug)]
pub struct DispatcherOptions {
    /// Lanes delivering at the same time, over all connections.
    pub max_parallel_lanes: usize,
    /// Lanes of one connection delivering at the same time.
    pub lanes_per_connection: usize,
    /// How long an "open" answer about a group's ticket is trusted before a note re-reads it.
    /// Zero = read the ticket before every note.
    pub ticket_state_ttl: Duration,
    /// How long events of a connection whose settings do not resolve are held before they go
    /// to the dead letters and the failsafe e-mail.
    pub unresolved_hold: Duration,
    /// Lease of a claimed lane; a crashed claimant's lane is free again after it.
    pub claim_lease: Duration,
    /// Longest sleep of the scheduler without a wake-up (new connections, clock drift).
    pub idle_poll: Duration,
    /// Events one lane delivers before giving its slot back (fairness between lanes).
    pub events_per_turn: usize,
    /// Contact-by-e-mail and automatic-account-mapping caches.
    pub contact_ttl: Ttl,
    pub company_ttl: Ttl,
    /// Pause before re-sending a failsafe e-mail that failed.
    pub failsafe_retry: Duration,
    /// How long shutdown waits for lanes to finish the event at hand.
    pub shutdown_grace: Duration,
    /// How often changed counters go to the status sink.
    pub stats_every: Duration,
    /// How long an event of a held organization waits before it is looked at again.
    pub held_recheck: Duration,
    /// The clock of the lifecycle windows (reopen, storm breaker); tests move it ahead.
    pub clock: crate::dispatch::clock::Clock,
    /// How often quiet storm roll-ups are looked for (and closed).
    pub storm_sweep: Duration,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            max_parallel_lanes: 64,
            // Little's law: 100 new tickets/s at 2 PSA calls of 50 ms each keeps 10 lanes busy;
            // with 4 the queue grew without bound (`bench e2e-latency`). The PSA is protected
            // by the connection's requestsPerHour budget, not by the lane count.
            lanes_per_connection: 16,
            // Always ask the PSA before a note: a technician may have closed the ticket a second
            // ago, and a note on a closed ticket is an alert nobody sees. groupWait, not a
            // cache, is what keeps bursts cheap.
            ticket_state_ttl: Duration::ZERO,
            unresolved_hold: Duration::from_secs(15 * 60),
            claim_lease: Duration::from_secs(10 * 60),
            idle_poll: Duration::from_secs(2),
            events_per_turn: 200,
            contact_ttl: Ttl::default(),
            company_ttl: Ttl::default(),
            failsafe_retry: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            stats_every: Duration::from_secs(5),
            held_recheck: Duration::from_secs(1),
            clock: Default::default(),
            storm_sweep: Duration::from_secs(5),
        }
    }
}

/// Turns stored events into PSA tickets and notes. Start it with [`Dispatcher::run`].
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    stats: StatsBoard,
    sink: Mutex<Option<Arc<dyn StatsSink>>>,
    /// Where dead letters and failsafe e-mails are reported (Events on the connection).
    problems: Mutex<Option<Arc<dyn ProblemSink>>>,
    store: Arc<dyn Store>,
    metrics: Arc<DispatchMetrics>,
    options: DispatcherOptions,
    caches: Caches,
    global_slots: Arc<Semaphore>,
    /// Wakes the scheduler: a lane finished, a connection changed.
    wake: Arc<Notify>,
    /// Wakes the failsafe sender: a new dead letter.
    mail_wake: Notify,
    state: Mutex<SchedState>,
}

#[derive(Default)]
struct SchedState {
    in_flight: HashSet<(ConnectionKey, String)>,
    budgets: HashMap<ConnectionKey, Arc<Budget>>,
    conn_slots: HashMap<ConnectionKey, Arc<Semaphore>>,
    /// When this process first saw the connection held without resolved settings.
    held_since: HashMap<ConnectionKey, Instant>,
    watched: HashSet<ConnectionKey>,
    /// The last failsafe settings seen per connection, for when the settings stop resolving
    /// (a PSA outage or a revoked credential is exactly when the failsafe is needed).
    last_failsafe: HashMap<ConnectionKey, Failsafe>,
    stats_refreshed: Option<Instant>,
    stats_sunk: Option<Instant>,
    unknown_swept: Option<Instant>,
    /// Claims this process could not end because the store refused the write: event seq →
    /// (connection, when the claim was taken). Released at the next rounds, within the lease.
    unreleased: HashMap<i64, (ConnectionKey, Instant)>,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Dispatcher {
    pub fn new(registry: Registry, store: Arc<dyn Store>, metrics: Arc<DispatchMetrics>) -> Self {
        Self::with_options(registry, store, metrics, DispatcherOptions::default())
    }

    pub fn with_options(
        registry: Registry,
        store: Arc<dyn Store>,
        metrics: Arc<DispatchMetrics>,
        options: DispatcherOptions,
    ) -> Self {
        let caches = Caches::new(options.contact_ttl, options.company_ttl);
        Dispatcher {
            inner: Arc::new(Inner {
                registry,
                stats: StatsBoard::default(),
                sink: Mutex::new(None),
                problems: Mutex::new(None),
                store,
                metrics,
                global_slots: Arc::new(Semaphore::new(options.max_parallel_lanes.max(1))),
                options,
                caches,
                wake: Arc::new(Notify::new()),
                mail_wake: Notify::new(),
                state: Mutex::new(SchedState::default()),
            }),
        }
    }

    /// Sends the counters to `sink` (the PsaConnection status) every `stats_every` when changed.
    pub fn with_stats_sink(self, sink: Arc<dyn StatsSink>) -> Self {
        *self.inner.sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink);
        self
    }

    /// Reports each dead letter and each failsafe e-mail sent to `sink`.
    pub fn with_problem_sink(self, sink: Arc<dyn ProblemSink>) -> Self {
        *self
            .inner
            .problems
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(sink);
        self
    }

    /// The dispatcher's counters per connection.
    pub fn stats(&self) -> StatsBoard {
        self.inner.stats.clone()
    }

    /// Runs until `shutdown` completes; then lets lanes finish the event at hand (up to
    /// `shutdown_grace`). Whatever is cut off is still queued and resumes on the next start.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let inner = self.inner;
        match inner.store.release_all_claims().await {
            Ok(n) if n > 0 => tracing::info!(claims = n, "released lane claims of an earlier run"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot release earlier claims; they expire with their lease")
            }
        }
        // Every task lives in a JoinSet owned by this future: dropping it (an aborted run)
        // stops them all, as a process exit would.
        let mut mail = JoinSet::new();
        mail.spawn(inner.clone().failsafe_loop());
        mail.spawn(inner.clone().stats_loop());
        mail.spawn(inner.clone().storm_loop());
        let mut lanes = JoinSet::new();
        let mut watchers = JoinSet::new();
        let mut changes = Some(inner.store.subscribe());
        tokio::pin!(shutdown);
        loop {
            inner.watch_registry(&mut watchers);
            let wake_at = inner.schedule(&mut lanes).await;
            while lanes.try_join_next().is_some() {}
            let store_changed = async {
                match changes.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                alive = store_changed => {
                    if !alive {
                        tracing::warn!("store change feed closed; polling");
                        changes = None;
                    }
                }
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
        mail.abort_all();
        watchers.abort_all();
        let grace = inner.options.shutdown_grace;
        let drained =
            tokio::time::timeout(grace, async { while lanes.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!("lanes still busy at shutdown; their events stay queued");
            lanes.abort_all();
        }
    }
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, SchedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A watcher per connection wakes the scheduler when the connection changes (resumed,
    /// resolved, new snapshot).
    fn watch_registry(&self, watchers: &mut JoinSet<()>) {
        for key in self.registry.keys() {
            if !self.state().watched.insert(key.clone()) {
                continue;
            }
            let Some(mut rx) = self.registry.subscribe(&key) else {
                continue;
            };
            let wake = self.wake.clone();
            watchers.spawn(async move {
                while rx.changed().await.is_ok() {
                    wake.notify_one();
                }
            });
        }
        // Forget removed connections so a re-created one is watched again.
        let live: HashSet<ConnectionKey> = self.registry.keys().into_iter().collect();
        self.state().watched.retain(|k| live.contains(k));
    }

    fn budget(&self, key: &ConnectionKey, per_hour: u32) -> Arc<Budget> {
        let mut st = self.state();
        let b = st
            .budgets
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Budget::new(per_hour)));
        if b.per_hour() != per_hour {
            *b = Arc::new(Budget::new(per_hour));
        }
        b.clone()
    }

    fn conn_slots(&self, key: &ConnectionKey) -> Arc<Semaphore> {
        let n = self.options.lanes_per_connection.max(1);
        self.state()
            .conn_slots
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(n)))
            .clone()
    }

    /// One scheduling round: starts every lane that may run now. Returns when to look again
    /// at the latest (the next retry, the end of a hold or a pause).
    async fn schedule(self: &Arc<Self>, lanes: &mut JoinSet<()>) -> Instant {
        self.retry_releases().await;
        let now = now_ms();
        let mut wake = Instant::now() + self.options.idle_poll;
        let known = self.registry.keys();
        for key in &known {
            let Some(entry) = self.registry.get(key) else {
                continue;
            };
            if entry.suspended {
                // Held until resumed, however long: suspension is the user's decision. Only
                // its samples (`send-sample --even-if-suspended`) are delivered meanwhile.
                self.state().held_since.remove(key);
                if entry.resolved.is_none() {
                    continue;
                }
            }
            let Some(conn) = entry.resolved else {
                wake = wake.min(
                    self.expire_held(
                        key,
                        now,
                        "its settings do not resolve (see the PsaConnection's conditions)",
                    )
                    .await,
                );
                continue;
            };
            {
                let mut st = self.state();
                st.held_since.remove(key);
                if let Some(f) = &conn.failsafe {
                    st.last_failsafe.insert(key.clone(), f.clone());
                }
            }
            let shown = conn.dispatch.shown_requests_per_hour();
            self.stats.update(key, |s| s.requests_per_hour = shown);
            let budget = self.budget(key, conn.dispatch.requests_per_hour);
            if let Some(until) = budget.paused_until() {
                wake = wake.min(until);
                continue;
            }
            let slots = self.conn_slots(key);
            if slots.available_permits() == 0 || self.global_slots.available_permits() == 0 {
                continue;
            }
            let limit = self.options.lanes_per_connection.max(1) * 4;
            let scope = if entry.suspended {
                LaneScope::Prefixed {
                    connection: key.clone(),
                    prefix: SAMPLE_PREFIX.into(),
                }
            } else {
                LaneScope::Connection(key.clone())
            };
            let ready = self.store.ready_lanes(scope, now, limit).await;
            let ready = match ready {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(connection = %key, error = %e, "cannot list ready lanes");
                    continue;
                }
            };
            for lane in ready {
                let id = (key.clone(), lane.group_key.clone());
                if self.state().in_flight.contains(&id) {
                    continue;
                }
                let Ok(conn_permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let Ok(global_permit) = self.global_slots.clone().try_acquire_owned() else {
                    break;
                };
                self.state().in_flight.insert(id);
                let me = self.clone();
                let key = key.clone();
                lanes.spawn(async move {
                    me.lane(key, lane.group_key, (conn_permit, global_permit))
                        .await
                });
            }
        }
        self.sweep_unknown(&known, now).await;
        if let Ok(Some(t)) = self.store.next_ready_at(None).await {
            // Due in the past = held or waiting for a slot: the wake-ups above cover those.
            if t > now {
                let d = Duration::from_millis(u64::try_from(t - now).unwrap_or(0));
                wake = wake.min(Instant::now() + d);
            }
        }
        wake
    }

    /// Events of connections the registry does not know (deleted, or never reconciled since
    /// this process started) are held like unresolved ones, then dead-lettered.
    async fn sweep_unknown(&self, known: &[ConnectionKey], now: i64) {
        {
            let mut st = self.state();
            let due = st
                .unknown_swept
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(30));
            if !due {
                return;
            }
            st.unknown_swept = Some(Instant::now());
        }
        let Ok(ready) = self.store.ready_lanes(LaneScope::All, now, 1000).await else {
            return;
        };
        let unknown: HashSet<ConnectionKey> = ready
            .into_iter()
            .map(|l| l.connection)
            .filter(|c| !known.contains(c))
            .collect();
        for key in unknown {
            self.expire_held(&key, now, "the PsaConnection does not exist")
                .await;
        }
    }

    /// Holds a connection's events until the hold budget is spent, then dead-letters the due
    /// heads of its lanes (the failsafe sender mails them). Returns when to look again.
    async fn expire_held(&self, key: &ConnectionKey, now: i64, why: &str) -> Instant {
        let since = *self
            .state()
            .held_since
            .entry(key.clone())
            .or_insert_with(Instant::now);
        let hold = self.hold_of(key);
        if since.elapsed() < hold {
            return since + hold;
        }
        let reason = format!(
            "connection {key} was not ready for {}s: {why}",
            hold.as_secs()
        );
        let Ok(ready) = self
            .store
            .ready_lanes(LaneScope::Connection(key.clone()), now, 100)
            .await
        else {
            return Instant::now() + self.options.idle_poll;
        };
        for lane in ready {
            if self
                .state()
                .in_flight
                .contains(&(key.clone(), lane.group_key.clone()))
            {
                continue;
            }
            while let Ok(Some(ev)) = self
                .store
                .claim(lane.id(), now, self.options.claim_lease)
                .await
            {
                if !self.dead_letter(key, &ev, reason.clone()).await {
                    break;
                }
            }
        }
        Instant::now() + self.options.idle_poll
    }

    async fn dead_letter(&self, key: &ConnectionKey, ev: &StoredEvent, reason: String) -> bool {
        tracing::warn!(connection = %key, event = %ev.envelope.event.id, reason = %reason,
            "event moved to the dead letters");
        let problem = DeliveryProblem::DeadLetter {
            event_id: ev.envelope.event.id.clone(),
            reason: reason.clone(),
        };
        match self.store.dead_letter(ev.seq, reason, now_ms()).await {
            Ok(()) => {
                self.metrics.dead_letter(key);
                self.mail_wake.notify_one();
                self.report(key, &problem).await;
                true
            }
            Err(e) => {
                tracing::error!(connection = %key, error = %e, "cannot record a dead letter");
                false
            }
        }
    }

    /// Hands a delivery problem to the problem sink, if one is wired.
    async fn report(&self, key: &ConnectionKey, problem: &DeliveryProblem) {
        let sink = self
            .problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(sink) = sink {
            sink.report(key, problem).await;
        }
    }

    /// Refreshes the counters once a second, on a task of its own: a scheduling round never
    /// waits for the counter queries or the status write to the API server (with lanes
    /// started only by rounds, that wait was added to the latency of every alert behind it).
    /// Storm breaker: closes the roll-up tickets that stayed quiet for a whole window (each
    /// leased in the store, so one replica closes it).
    async fn storm_loop(self: Arc<Self>) {
        loop {
            self.close_quiet_rollups().await;
            tokio::time::sleep(self.options.storm_sweep).await;
        }
    }

    async fn close_quiet_rollups(&self) {
        let now = self.options.clock.now_ms();
        let lease = ms(self.options.claim_lease);
        let due = match self.store.storm_due(now, lease, 50).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the roll-ups due to close");
                return;
            }
        };
        for d in due {
            let Some(conn) = self
                .registry
                .get(&d.connection)
                .and_then(|e| e.resolved.filter(|_| !e.suspended))
            else {
                // Not routable here now: the lease runs out and a later sweep tries again.
                continue;
            };
            let calls = PsaCalls::new(
                conn.psa.clone(),
                self.budget(&conn.key, conn.dispatch.requests_per_hour),
            );
            let closed = crate::dispatch::storm::close_rollup(&conn, &calls, &d).await;
            self.metrics.psa_calls_for_event(&conn.key, calls.count());
            match closed {
                Ok(()) => match crate::dispatch::storm::forget_rollup(&*self.store, &d).await {
                    Ok(()) => {
                        self.metrics.rollup_closed(&conn.key);
                        tracing::info!(connection = %conn.key,
                            ticket = d.window.rollup_ticket_id.as_deref().unwrap_or("-"),
                            alerts = d.window.overflow.values().sum::<u64>(),
                            "storm over: roll-up ticket closed");
                    }
                    Err(e) => tracing::warn!(connection = %conn.key, error = %e,
                        "roll-up closed but not recorded; closed again after the lease"),
                },
                Err(e) => tracing::warn!(connection = %conn.key, error = %e,
                    "cannot close the roll-up ticket; retried after the lease"),
            }
        }
    }

    async fn stats_loop(self: Arc<Self>) {
        loop {
            self.refresh_stats().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Copies the store's counters into the registry (the connection status shows them) and
    /// the queue depth into the metrics, at most once a second.
    async fn refresh_stats(&self) {
        {
            let mut st = self.state();
            if st
                .stats_refreshed
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
            {
                return;
            }
            st.stats_refreshed = Some(Instant::now());
        }
        for key in self.registry.keys() {
            if let Ok(c) = self.store.counters(key.clone()).await {
                self.stats.update(&key, |s| {
                    s.accepted = c.accepted;
                    s.pending = c.pending;
                    s.dead_letters = c.dead_letters;
                });
            }
        }
        if let Ok(depth) = self.store.queue_depth().await {
            self.metrics.set_queue_depth(depth);
        }
        self.sink_stats().await;
    }

    /// Hands changed counters to the status sink, at most every `stats_every`.
    async fn sink_stats(&self) {
        let sink = self.sink.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(sink) = sink else {
            return;
        };
        {
            let mut st = self.state();
            let every = self.options.stats_every;
            if st.stats_sunk.is_some_and(|t| t.elapsed() < every) {
                return;
            }
            st.stats_sunk = Some(Instant::now());
        }
        self.stats.flush_to(sink.as_ref()).await;
    }

    /// Delivers a lane's events in order until it is empty, not due, held, or its turn is up.
    async fn lane(
        self: Arc<Self>,
        key: ConnectionKey,
        group_key: String,
        _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) {
        for _ in 0..self.options.events_per_turn.max(1) {
            if !self.lane_step(&key, &group_key).await {
                break;
            }
        }
        self.state().in_flight.remove(&(key, group_key));
        self.wake.notify_one();
    }

    /// Claims and delivers the head of a lane. `true` = go on with the next event.
    async fn lane_step(&self, key: &ConnectionKey, group_key: &str) -> bool {
        let Some(entry) = self.registry.get(key) else {
            return false;
        };
        // Suspended since the lane was listed: only a sample lane goes on.
        let Some(conn) = entry
            .resolved
            .filter(|_| claimable(entry.suspended, group_key))
        else {
            return false;
        };
        let budget = self.budget(key, conn.dispatch.requests_per_hour);
        if budget.paused_until().is_some() {
            return false;
        }
        let now = now_ms();
        let claimed_at = Instant::now();
        let head = match self
            .store
            .claim(
                LaneId::new(key.clone(), group_key),
                now,
                self.options.claim_lease,
            )
            .await
        {
            Ok(Some(h)) => h,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(connection = %key, error = %e, "cannot claim a lane");
                return false;
            }
        };
        let Some(batch) = self.batch(&conn, group_key, head, now).await else {
            return false;
        };
        let calls = PsaCalls::new(conn.psa.clone(), budget);
        let delivery = Delivery {
            conn: &conn,
            store: &self.store,
            psa: &calls,
            caches: &self.caches,
            stats: &self.stats,
            ticket_state_ttl: self.options.ticket_state_ttl,
            now_ms: self.options.clock.now_ms(),
        };
        let result = delivery.run(group_key, &batch).await;
        self.metrics.psa_calls_for_event(&conn.key, calls.count());
        let head = &batch[0];
        match result {
            Ok(done) => {
                let seqs: Vec<i64> = batch.iter().map(|e| e.seq).collect();
                if let Err(e) = self
                    .store
                    .complete(seqs, now_ms(), done.records.clone())
                    .await
                {
                    // Delivered but not recorded: give the lane back at once (not after the
                    // lease), so this or another replica delivers it again as soon as the
                    // store takes writes; the marker lookup then finds the ticket created.
                    tracing::error!(connection = %key, error = %e, "cannot record a delivery");
                    self.release(key, head.seq, claimed_at).await;
                    return false;
                }
                if done.ticket_created {
                    self.metrics.ticket_created(key);
                }
                for _ in 0..done.notes_added {
                    self.metrics.note_added(key);
                }
                if done.rolled_up {
                    self.metrics.rolled_up(key, done.ticket_created);
                }
                self.stats.update(key, |s| {
                    s.tickets_created += u64::from(done.ticket_created);
                    s.notes_added += u64::from(done.notes_added);
                    s.alerts_rolled_up += u64::from(done.rolled_up);
                    s.rollups_opened += u64::from(done.rolled_up && done.ticket_created);
                });
                tracing::info!(connection = %key, event = %head.envelope.event.id,
                    kind = head.envelope.event.kind.as_str(), batch = batch.len(),
                    ticket = done.ticket_id.as_deref().unwrap_or("-"),
                    created = done.ticket_created, recovered = done.recovered_by_marker,
                    notes = done.notes_added, closed = done.closed, reopened = done.reopened,
                    rolled_up = done.rolled_up,
                    route = done.route.unwrap_or("-"),
                    contact = done.contact.map(|c| c.label()).unwrap_or("-"),
                    nothing = done.nothing.unwrap_or("-"), psa_calls = calls.count(),
                    "delivered");
                true
            }
            Err(e) => self.failed(&conn, head, e, claimed_at).await,
        }
    }

    /// Ends this process's claim of the lane whose head is `seq` after its outcome could not be
    /// recorded: the event is due again now, without counting an attempt. When the store
    /// refuses that too, the release is retried at each scheduling round — but only within
    /// the lease: after it another replica may hold the lane, and its claim is not ours to end.
    async fn release(&self, key: &ConnectionKey, seq: i64, claimed_at: Instant) {
        match self.store.defer(seq, now_ms()).await {
            // NotQueued: the outcome was recorded after all (the answer, not the commit, was lost).
            Ok(()) | Err(StoreError::NotQueued(_)) => {
                self.state().unreleased.remove(&seq);
            }
            Err(e) => {
                let first = self
                    .state()
                    .unreleased
                    .insert(seq, (key.clone(), claimed_at))
                    .is_none();
                if first {
                    tracing::warn!(connection = %key, error = %e, "cannot release a lane claim yet; retrying");
                }
            }
        }
    }

    /// Retries the releases the store refused, while their claims are still this process's.
    async fn retry_releases(&self) {
        let lease = self.options.claim_lease;
        let pending: Vec<(i64, ConnectionKey, Instant)> = {
            let mut st = self.state();
            st.unreleased.retain(|_, (_, at)| at.elapsed() < lease);
            st.unreleased
                .iter()
                .map(|(seq, (key, at))| (*seq, key.clone(), *at))
                .collect()
        };
        for (seq, key, at) in pending {
            self.release(&key, seq, at).await;
        }
    }

    /// The head alone, or with the alerts `groupWait` merges into it. `None` = deferred.
    async fn batch(
        &self,
        conn: &ResolvedConnection,
        group_key: &str,
        head: StoredEvent,
        now: i64,
    ) -> Option<Vec<StoredEvent>> {
        let gw = conn.dispatch.group_wait;
        if gw.is_zero() || !batchable(head.envelope.event.kind) {
            return Some(vec![head]);
        }
        let queued = match self
            .store
            .lane_events(LaneId::new(conn.key.clone(), group_key), 500)
            .await
        {
            Ok(q) if q.first().map(|e| e.seq) == Some(head.seq) => q,
            _ => return Some(vec![head]),
        };
        let times: Vec<_> = queued
            .iter()
            .map(|e| (e.envelope.event.kind, e.envelope.accepted_at_ms))
            .collect();
        match batch(&times, gw, now) {
            Batch::WaitUntil(t) => {
                if let Err(e) = self.store.defer(head.seq, t).await {
                    tracing::warn!(connection = %conn.key, error = %e, "cannot defer for groupWait");
                }
                None
            }
            Batch::Take(n) => Some(queued.into_iter().take(n.max(1)).collect()),
        }
    }

    /// After a failed delivery: retry later, wait for the budget, or give up (dead letter and
    /// failsafe). `true` = the lane may go on (the head left it).
    async fn failed(
        &self,
        conn: &ResolvedConnection,
        head: &StoredEvent,
        err: DeliveryError,
        claimed_at: Instant,
    ) -> bool {
        let key = &conn.key;
        let now = now_ms();
        // Not a failure: another group is opening the customer's roll-up; wait for it.
        if let DeliveryError::RollupPending { wait_ms } = &err {
            let wait = (*wait_ms).clamp(50, 1000);
            if let Err(se) = self.store.defer(head.seq, now + wait).await {
                tracing::warn!(connection = %key, error = %se, "cannot defer");
                self.release(key, head.seq, claimed_at).await;
            }
            return false;
        }
        let failed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.stats
            .update(key, |s| s.last_error = Some((failed_at, err.to_string())));
        let cfg = &conn.dispatch;
        let attempt = head.attempts + 1;
        let jitter: f64 = rand::random();
        let retry = match &err {
            // The budget, not the event, was the problem: wait without spending an attempt.
            DeliveryError::Psa(e) if is_rate_limited(e) => {
                let wait = e
                    .retry_after()
                    .unwrap_or_else(|| backoff(1, cfg.initial_backoff, jitter));
                if let Err(se) = self.store.defer(head.seq, now + ms(wait)).await {
                    tracing::warn!(connection = %key, error = %se, "cannot defer");
                }
                return false;
            }
            DeliveryError::Psa(e) => {
                after_failure(e, attempt, cfg.max_attempts, cfg.initial_backoff, jitter)
            }
            DeliveryError::Unsettled => {
                if attempt >= cfg.max_attempts {
                    AfterFailure::GiveUp
                } else {
                    AfterFailure::RetryIn(backoff(attempt, cfg.initial_backoff, jitter))
                }
            }
            DeliveryError::Unroutable(_) => AfterFailure::GiveUp,
            DeliveryError::Held { .. } => return self.hold(conn, head, &err).await,
            DeliveryError::RollupPending { .. } => return false,
            DeliveryError::Store(e) => {
                tracing::error!(connection = %key, error = %e, "store failed during delivery");
                self.release(key, head.seq, claimed_at).await;
                return false;
            }
        };
        match retry {
            AfterFailure::RetryIn(d) => {
                tracing::warn!(connection = %key, event = %head.envelope.event.id, attempt,
                    retry_in_ms = ms(d), error = %err, "delivery failed; will retry");
                if let Err(e) = self
                    .store
                    .retry_later(head.seq, now + ms(d), err.to_string())
                    .await
                {
                    tracing::warn!(connection = %key, error = %e, "cannot schedule a retry");
                    self.release(key, head.seq, claimed_at).await;
                }
                false
            }
            AfterFailure::GiveUp => {
                let transient = matches!(&err, DeliveryError::Psa(e) if e.is_transient())
                    || matches!(err, DeliveryError::Unsettled);
                let reason = if transient {
                    format!("gave up after {attempt} attempts: {err}")
                } else {
                    err.to_string()
                };
                self.dead_letter(key, head, reason).await
            }
        }
    }

    /// An event of a held organization waits without spending an attempt, up to
    /// `unresolved_hold` from its acceptance; then it is a dead letter (failsafe e-mail).
    /// `true` = the lane may go on.
    async fn hold(
        &self,
        conn: &ResolvedConnection,
        head: &StoredEvent,
        err: &DeliveryError,
    ) -> bool {
        let now = now_ms();
        let held_for = now.saturating_sub(head.envelope.accepted_at_ms);
        if held_for < ms(self.hold_of(&conn.key)) {
            let recheck = now + ms(self.options.held_recheck);
            if let Err(e) = self.store.defer(head.seq, recheck).await {
                tracing::warn!(connection = %conn.key, error = %e, "cannot defer a held event");
            }
            return false;
        }
        let reason = format!(
            "{err}; held for {}s and not sent to the catch-all company",
            held_for / 1000
        );
        self.dead_letter(&conn.key, head, reason).await
    }

    /// How long a connection's held events wait: its `spec.dispatch.unresolvedHold`, else the
    /// dispatcher's default.
    fn hold_of(&self, key: &ConnectionKey) -> Duration {
        self.registry
            .get(key)
            .and_then(|e| e.unresolved_hold)
            .unwrap_or(self.options.unresolved_hold)
    }

    /// The failsafe settings for a connection: the current snapshot's, else the last seen.
    fn failsafe_for(&self, key: &ConnectionKey) -> Option<Failsafe> {
        let current = self
            .registry
            .get(key)
            .and_then(|e| e.resolved)
            .and_then(|r| r.failsafe.clone());
        current
            .or_else(|| self.registry.failsafe(key))
            .or_else(|| self.state().last_failsafe.get(key).cloned())
    }

    /// Sends the failsafe e-mail of every dead letter that needs one; failed mails are retried.
    async fn failsafe_loop(self: Arc<Self>) {
        loop {
            let now = now_ms();
            match self.store.failsafe_due(None, now, 100).await {
                Ok(due) => {
                    for ev in due {
                        self.send_failsafe(&ev).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list dead letters needing a failsafe e-mail")
                }
            }
            tokio::select! {
                _ = self.mail_wake.notified() => {}
                _ = tokio::time::sleep(self.options.failsafe_retry.min(Duration::from_secs(30))) => {}
            }
        }
    }

    async fn send_failsafe(&self, ev: &StoredEvent) {
        let key = ev.envelope.connection_key();
        let now = now_ms();
        let Some(failsafe) = self.failsafe_for(&key) else {
            // Kept as a dead letter; asked again later in case a failsafe gets configured.
            let _ = self
                .store
                .failsafe_retry_later(
                    ev.seq,
                    now + ms(self.options.failsafe_retry * 10),
                    "no failsafe e-mail configured for the connection".into(),
                )
                .await;
            return;
        };
        let reason = ev.last_error.as_deref().unwrap_or("unknown");
        let prefix = failsafe
            .subject_prefix
            .as_deref()
            .unwrap_or(crate::dispatch::failsafe::DEFAULT_SUBJECT_PREFIX);
        let mail = compose(&ev.envelope, reason, prefix);
        match send(&failsafe, &mail).await {
            Ok(()) => {
                if let Err(e) = self.store.mark_failsafe_sent(ev.seq).await {
                    tracing::error!(connection = %key, error = %e, "failsafe e-mail sent but not recorded; it may be sent again");
                }
                self.metrics.failsafe_email(&key);
                self.stats.update(&key, |s| s.failsafe_emails += 1);
                tracing::warn!(connection = %key, event = %ev.envelope.event.id,
                    recipients = failsafe.recipients.len(), "failsafe e-mail sent");
                let problem = DeliveryProblem::FailsafeSent {
                    event_id: ev.envelope.event.id.clone(),
                    recipients: failsafe.recipients.len(),
                };
                self.report(&key, &problem).await;
            }
            Err(e) => {
                tracing::error!(connection = %key, event = %ev.envelope.event.id, error = %e,
                    "failsafe e-mail failed; the dead letter stays and the mail is retried");
                let _ = self
                    .store
                    .failsafe_retry_later(
                        ev.seq,
                        now + ms(self.options.failsafe_retry),
                        e.to_string(),
                    )
                    .await;
            }
        }
    }
}
