//! The durable store of the dispatcher: event queue, grouping index, finding index, counters.
//!
//! `Store` is the narrow interface the intake and the workers use. `sqlite::SqliteStore` backs it
//! with one embedded SQLite file (`dev`, single replica); `postgres::PgStore` with a PostgreSQL
//! database that several replicas share. `--store` picks one (`location::StoreLocation`). Every
//! call is one transaction, and per-key ordering rests on a claim with a lease rather than on
//! in-process locks, so both backends give the same semantics (the conformance suite runs the
//! same tests against both).
//!
//! # Queue model
//!
//! Every event belongs to one *lane*: (connection, group key). Events of a lane are delivered
//! strictly in arrival order (`seq`); lanes are independent. The store keeps, per lane with
//! queued events, its *head* (lowest queued `seq`) and when the head is next due (`ready_at`).
//! A worker:
//!
//! 1. asks `ready_lanes` (an indexed range scan over lane heads, not over events) or waits on
//!    `subscribe()` / `next_ready_at`;
//! 2. `claim`s a lane: it gets the head event and the lane is leased to it until the lease ends
//!    or it reports an outcome — nobody else gets an event of that lane meanwhile;
//! 3. reports exactly one outcome: `mark_done`, `retry_later`, `defer` or `dead_letter`, each of
//!    which ends the claim and moves the head.
//!
//! A dead-lettered event leaves its lane (later events of the key flow on; the failsafe e-mail
//! reports it) and can be put back with `replay_dead_letters`. Suspended connections need nothing
//! more from the store: the worker claims only their sample lanes (`LaneScope::Prefixed`),
//! so their other events stay queued.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::dispatch::decide::storm::{Admission, AdmitRequest, StormWindow};
use crate::dispatch::event::Envelope;
use crate::resolved::ConnectionKey;

pub mod location;
pub mod postgres;
mod rows;
pub mod sqlite;
mod storm;
mod tables;

#[cfg(test)]
mod conformance;

pub use location::{StoreLocation, StoreLocationError};
pub use postgres::{PgOptions, PgStore};
pub use sqlite::{CommitStats, SqliteOptions, SqliteStore};

/// Opens the store at `location`: creates the SQLite file's directory, or connects to
/// PostgreSQL and migrates its schema. `owner` names this replica's lane claims.
pub async fn open(location: &StoreLocation, owner: &str) -> StoreResult<Arc<dyn Store>> {
    match location {
        StoreLocation::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "creating store directory {}: {e}",
                        parent.display()
                    ))
                })?;
            }
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || {
                SqliteStore::open(path, SqliteOptions::default())
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the store: {e}")))??;
            Ok(Arc::new(store))
        }
        StoreLocation::Postgres(url) => {
            let options = PgOptions {
                owner: owner.to_string(),
                ..PgOptions::default()
            };
            Ok(Arc::new(PgStore::connect(url, options).await?))
        }
    }
}

/// Why a store call failed. Messages never hold event content or secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot read or write now (disk full, read-only, locked, I/O error). Retry later;
    /// the intake answers 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store has been shut down.
    #[error("store closed")]
    Closed,
    /// A stored row could not be decoded.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The event `seq` named in the call is not queued (already finished, or never existed).
    #[error("event {0} is not queued")]
    NotQueued(i64),
    /// The event `seq` named in the call is not a dead letter.
    #[error("event {0} is not a dead letter")]
    NotDeadLetter(i64),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An event to enqueue: the envelope and its grouping key (see `dispatch::grouping::group_key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub group_key: String,
    pub envelope: Envelope,
}

/// Result of enqueuing one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// Store sequence number (arrival order) of the event — of the first copy for a duplicate.
    pub seq: i64,
    /// `false` when (connection, id space, event id) was already stored: nothing was changed.
    pub new: bool,
}

/// Where an event is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventState {
    Queued,
    Done,
    DeadLetter,
}

/// An event as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub group_key: String,
    pub envelope: Envelope,
    pub state: EventState,
    /// Delivery attempts that failed so far (`retry_later` and `dead_letter` count one each).
    pub attempts: u32,
    /// Unix ms before which the event is not handed out.
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    /// Dead letters: whether the failsafe e-mail for it went out.
    pub failsafe_sent: bool,
    /// Unix ms of `mark_done` / `dead_letter`.
    pub finished_at_ms: Option<i64>,
    /// How often `claim` handed this event out, the current claim included. More than one (or
    /// `attempts > 0`) means an earlier run may have reached the PSA before it crashed.
    pub claims: u32,
    /// Dead letters whose failsafe e-mail is not sent: when to try it (next).
    pub failsafe_next_at_ms: Option<i64>,
    /// Dead letters: why the last failsafe e-mail attempt failed.
    pub failsafe_error: Option<String>,
}

/// A ticket index update written in the same transaction as `complete`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketRecord {
    Group {
        connection: ConnectionKey,
        group_key: String,
        ticket: GroupTicket,
    },
    Finding {
        connection: ConnectionKey,
        finding_id: String,
        ticket_id: String,
        updated_at_ms: i64,
    },
    /// Which alerts of a group's ticket are still firing (auto-resolve).
    Lifecycle {
        connection: ConnectionKey,
        group_key: String,
        lifecycle: GroupLifecycle,
    },
    /// Storm breaker: an alert went to the customer's roll-up ticket (`created`: this
    /// delivery created the roll-up), counted under `label` (`decide::storm::noted`).
    Storm {
        connection: ConnectionKey,
        customer_id: String,
        created: Option<String>,
        label: String,
    },
}

/// A roll-up ticket due to close (`Store::storm_due`), leased to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StormDue {
    pub connection: ConnectionKey,
    pub customer_id: String,
    pub window: StormWindow,
}

/// The alerts that fed a group's ticket and still fire, and the status the dispatcher left the
/// ticket in. A resolution closes the ticket only when none fires any more and its status is
/// still ours (a technician who moved it keeps it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupLifecycle {
    pub ticket_id: String,
    /// The ticket's status when the dispatcher created it (`None`: the PSA did not say).
    pub status_id: Option<String>,
    /// Identities (see `decide::lifecycle::alert_identity`) of the alerts still firing.
    pub firing: std::collections::BTreeSet<String>,
}

/// `GroupLifecycle::firing` as both stores keep it: a JSON array of strings.
pub(crate) fn firing_json(firing: &std::collections::BTreeSet<String>) -> String {
    serde_json::to_string(firing).unwrap_or_else(|_| "[]".into())
}

/// The inverse of [`firing_json`]; an unreadable value counts as "nothing known to fire".
pub(crate) fn parse_firing(text: &str) -> std::collections::BTreeSet<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// A lane whose head event is due and not claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyLane {
    pub connection: ConnectionKey,
    pub group_key: String,
    pub ready_at_ms: i64,
}

impl ReadyLane {
    /// Which lane this is, to claim it.
    pub fn id(&self) -> LaneId {
        LaneId {
            connection: self.connection.clone(),
            group_key: self.group_key.clone(),
        }
    }
}

/// A lane: the events of one group key of one connection (see "Queue model").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneId {
    pub connection: ConnectionKey,
    pub group_key: String,
}

impl LaneId {
    pub fn new(connection: ConnectionKey, group_key: impl Into<String>) -> LaneId {
        LaneId {
            connection,
            group_key: group_key.into(),
        }
    }
}

/// Which lanes `Store::ready_lanes` looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaneScope {
    /// Every connection's.
    All,
    /// One connection's.
    Connection(ConnectionKey),
    /// One connection's whose group key starts with `prefix` (a suspended connection's sample
    /// lanes, `grouping::SAMPLE_PREFIX`): however many held lanes are due before them, they
    /// are found (the backends use an indexed query, not a filter over the connection's lanes).
    Prefixed {
        connection: ConnectionKey,
        prefix: String,
    },
}

impl LaneScope {
    /// The one connection the scope looks at (`None`: all).
    pub fn connection(&self) -> Option<&ConnectionKey> {
        match self {
            LaneScope::All => None,
            LaneScope::Connection(connection) | LaneScope::Prefixed { connection, .. } => {
                Some(connection)
            }
        }
    }
}

/// The ticket of a group (connection + group key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupTicket {
    pub ticket_id: String,
    /// `false` once the dispatcher learnt the ticket was closed; the next alert opens a new one.
    pub open: bool,
    pub updated_at_ms: i64,
}

/// Per-connection counters, kept in the same transactions as the events they count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounters {
    /// Events ever accepted (duplicates not counted).
    pub accepted: u64,
    /// Events queued now (including held ones of a suspended connection).
    pub pending: u64,
    /// Events ever delivered (`mark_done`).
    pub delivered: u64,
    /// Dead letters now (replay takes them back to pending).
    pub dead_letters: u64,
}

/// The dispatcher's durable state. Object-safe: use as `Arc<dyn Store>`.
///
/// Times are Unix milliseconds passed in by the caller, so tests and workers agree on a clock.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores the events in one transaction, all or nothing, durably (committed and synced)
    /// before returning. An event whose (connection, `kind.id_space()`, id) is already stored
    /// is left unchanged and reported with `new: false` — ids of different endpoints never
    /// collide. Results are in input order.
    async fn enqueue(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Enqueued>>;

    /// Lanes of `scope` whose head is due at `now_ms` and not claimed, earliest due first.
    async fn ready_lanes(
        &self,
        scope: LaneScope,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<ReadyLane>>;

    /// When the next lane head becomes due (may be in the past), ignoring claims; `None` when
    /// nothing is queued. For sleeping until the next retry.
    async fn next_ready_at(&self, connection: Option<ConnectionKey>) -> StoreResult<Option<i64>>;

    /// Claims a lane: returns its head event if it is due and the lane is not claimed (or the
    /// previous claim's lease ended), and leases the lane until `now_ms + lease`.
    async fn claim(
        &self,
        lane: LaneId,
        now_ms: i64,
        lease: Duration,
    ) -> StoreResult<Option<StoredEvent>>;

    /// Queued events of a lane in order, head first (e.g. to merge those within `groupWait`).
    async fn lane_events(&self, lane: LaneId, limit: usize) -> StoreResult<Vec<StoredEvent>>;

    /// Marks queued events delivered, ends the claim of their lanes and writes the ticket index
    /// records — all in one transaction, so a crash cannot separate "done" from "which ticket".
    /// Only a call that finishes events wakes the workers (records alone queue no work).
    async fn complete(
        &self,
        seqs: Vec<i64>,
        now_ms: i64,
        records: Vec<TicketRecord>,
    ) -> StoreResult<()>;

    /// `complete` without index records.
    async fn mark_done(&self, seqs: Vec<i64>, now_ms: i64) -> StoreResult<()> {
        self.complete(seqs, now_ms, Vec::new()).await
    }

    /// Counts a failed attempt, records the error, and makes the event due again at
    /// `next_attempt_at_ms`; ends the claim. Returns the new attempt count.
    async fn retry_later(
        &self,
        seq: i64,
        next_attempt_at_ms: i64,
        error: String,
    ) -> StoreResult<u32>;

    /// Makes the event due at `not_before_ms` without counting an attempt (rate budget,
    /// `groupWait`, 429 Retry-After); ends the claim.
    async fn defer(&self, seq: i64, not_before_ms: i64) -> StoreResult<()>;

    /// Moves a queued event to the dead letters (counting the attempt), recording the error;
    /// ends the claim and lets the lane's next event through.
    async fn dead_letter(&self, seq: i64, error: String, now_ms: i64) -> StoreResult<()>;

    /// Records that the failsafe e-mail of a dead letter went out.
    async fn mark_failsafe_sent(&self, seq: i64) -> StoreResult<()>;

    /// Dead letters whose failsafe e-mail is due (not sent, next try at or before `now_ms`),
    /// earliest first. A new dead letter is due at once.
    async fn failsafe_due(
        &self,
        connection: Option<ConnectionKey>,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// The failsafe e-mail of a dead letter failed: try again at `next_at_ms`.
    async fn failsafe_retry_later(
        &self,
        seq: i64,
        next_at_ms: i64,
        error: String,
    ) -> StoreResult<()>;

    /// Dead letters, oldest first.
    async fn dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// Puts dead letters back in their lanes (attempts reset, due at `now_ms`). Returns how many.
    async fn replay_dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        now_ms: i64,
    ) -> StoreResult<u64>;

    /// Ends the claims of an earlier run of this replica (startup: claims of a crashed process
    /// are void). SQLite has one replica, so every claim; PostgreSQL only those of this
    /// replica's owner name — other replicas' claims are live, a dead one's run out with the lease.
    async fn release_all_claims(&self) -> StoreResult<u64>;

    /// The ticket recorded for a group.
    async fn group_ticket(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupTicket>>;

    /// Records (replaces) the ticket of a group: `complete` with this record and no event.
    async fn set_group_ticket(
        &self,
        connection: ConnectionKey,
        group_key: String,
        ticket: GroupTicket,
    ) -> StoreResult<()> {
        let now_ms = ticket.updated_at_ms;
        let record = TicketRecord::Group {
            connection,
            group_key,
            ticket,
        };
        self.complete(Vec::new(), now_ms, vec![record]).await
    }

    /// The firing alerts recorded for a group's ticket.
    async fn group_lifecycle(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupLifecycle>>;

    /// Storm breaker: whether a new group of a customer gets a ticket of its own, a note on
    /// the roll-up, creates the roll-up or waits for its creation — decided by
    /// `decide::storm::admit` and recorded in one transaction (serialised per customer across
    /// replicas; a retried group gets its first answer).
    async fn storm_admit(&self, req: AdmitRequest) -> StoreResult<Admission>;

    /// Roll-ups due to close at `now_ms` (`decide::storm::closable`), each leased to the caller
    /// for `lease_ms` so that one replica closes it.
    async fn storm_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<StormDue>>;

    /// The roll-up `ticket_id` of a customer was closed: the next overflow opens a new one.
    async fn storm_closed(
        &self,
        connection: ConnectionKey,
        customer_id: String,
        ticket_id: String,
    ) -> StoreResult<()>;

    /// A customer's storm state.
    async fn storm_window(
        &self,
        connection: ConnectionKey,
        customer_id: String,
    ) -> StoreResult<Option<StormWindow>>;

    /// The ticket recorded for a finding.
    async fn finding_ticket(
        &self,
        connection: ConnectionKey,
        finding_id: String,
    ) -> StoreResult<Option<String>>;

    /// Records (replaces) the ticket of a finding, as `set_group_ticket` does a group's.
    async fn set_finding_ticket(
        &self,
        connection: ConnectionKey,
        finding_id: String,
        ticket_id: String,
        now_ms: i64,
    ) -> StoreResult<()> {
        let record = TicketRecord::Finding {
            connection,
            finding_id,
            ticket_id,
            updated_at_ms: now_ms,
        };
        self.complete(Vec::new(), now_ms, vec![record]).await
    }

    /// Counters of one connection (zero for an unknown one).
    async fn counters(&self, connection: ConnectionKey) -> StoreResult<ConnectionCounters>;

    /// Events queued over all connections.
    async fn queue_depth(&self) -> StoreResult<u64>;

    /// Whether the store takes writes now (readiness): `Err` while the last real work failed
    /// to commit (disk full, I/O error, the file removed or replaced) until work commits
    /// again, and when a small probe write fails. Cheap enough for every readiness probe.
    /// The default only reads; a backend should override it with a write probe.
    async fn health(&self, now_ms: i64) -> StoreResult<()> {
        let _ = now_ms;
        self.queue_depth().await.map(|_| ())
    }

    /// A counter bumped after each commit that queued or re-queued work (enqueue, retry,
    /// defer, replay, finished claim): workers wait on it instead of polling.
    fn subscribe(&self) -> watch::Receiver<u64>;
}
