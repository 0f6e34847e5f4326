//! `Store` on PostgreSQL, shared by every replica (tokio-postgres + deadpool-postgres, rustls).
//!
//! Every call is one transaction on a pooled connection; a call returns only after its commit.
//! What SQLite gets from its single writer, this backend gets from locks:
//!
//! - **Lanes** are serialised by a transaction-scoped advisory lock per lane (a hash of
//!   namespace/connection/group key), taken in sorted order by every call that enqueues into or
//!   re-derives a lane. So an enqueue and a `complete` of the same lane on two replicas cannot
//!   interleave into a lane row that misses a queued event, and `seq`s of a lane are allocated
//!   in lane order.
//! - **Claims** are one conditional `UPDATE … WHERE claimed_until_ms IS NULL OR <= now`; a second
//!   claimant blocks on the row and then re-checks the condition on the committed row, so one
//!   wins. A claim records its owner (the replica) so a restarted replica releases only its own.
//! - **Schema** migrations are embedded and versioned; the migrating replica holds an advisory
//!   lock, so two replicas starting at once apply each migration exactly once.
//!
//! Workers of one process are woken after each commit that queued work; the same commit sends
//! a `NOTIFY` that wakes the other replicas' idle workers (`listen.rs`); the poll
//! (`DispatcherOptions::idle_poll`) only backs that up.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use tokio::sync::watch;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement};

use super::rows::{self, connection_filter_params, limit_param, ms, Columns, CounterDeltas, Lane};
use super::tables::{self, KeyedStatements, RecordWrite, StoredValue};
use super::{
    ConnectionCounters, Enqueued, GroupLifecycle, GroupTicket, LaneId, LaneScope, NewEvent,
    ReadyLane, Store, StoreError, StoreResult, StoredEvent, StormDue, TicketRecord,
};
use crate::dispatch::decide::storm::{Admission, AdmitRequest, StormWindow};
use crate::resolved::ConnectionKey;

pub mod connect;
pub mod listen;
pub mod migrations;
mod storm;
pub mod throwaway;

pub use connect::PgConnectOptions;

/// Tuning of the PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Most connections this replica opens.
    pub max_connections: usize,
    /// How long a call waits for a free connection (or for a new one) before failing.
    pub wait_timeout: Duration,
    /// Who claims lanes: the replica's identity (pod name). `release_all_claims` ends only its
    /// claims; the claims of other replicas run out with their lease.
    pub owner: String,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            wait_timeout: Duration::from_secs(5),
            owner: default_owner(),
        }
    }
}

/// The pod name (`HOSTNAME` in Kubernetes), else the host name, else a random id.
pub fn default_owner() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| format!("psa-operator-{:08x}", rand::random::<u32>()))
}

/// The PostgreSQL-backed store.
pub struct PgStore {
    pool: Pool,
    owner: String,
    shown: String,
    changes: Arc<watch::Sender<u64>>,
    /// The session listening for other replicas' notifications (ends with the store).
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl PgStore {
    /// Connects, applies the embedded migrations and returns the store. Fails (Unavailable)
    /// when the server cannot be reached: the caller decides whether to retry.
    pub async fn connect(url: &str, options: PgOptions) -> StoreResult<PgStore> {
        let opts = PgConnectOptions::from_url(url).map_err(StoreError::Unavailable)?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match opts.tls_config().map_err(StoreError::Unavailable)? {
            Some(tls) => Manager::from_config(
                opts.config.clone(),
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            ),
            None => Manager::from_config(opts.config.clone(), NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.wait_timeout))
            .recycle_timeout(Some(options.wait_timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", opts.shown)))?;
        let changes = Arc::new(watch::channel(0u64).0);
        let listener = tokio::spawn(listen::listen_forever(
            opts.clone(),
            options.owner.clone(),
            changes.clone(),
        ));
        let store = PgStore {
            pool,
            owner: options.owner,
            shown: opts.shown,
            changes,
            listener,
        };
        {
            let mut client = store.client().await?;
            migrations::apply(&mut client).await?;
        }
        Ok(store)
    }

    /// The URL with its password hidden.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// This replica's claim owner.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.shown)))
    }

    /// Reads the row of a keyed table (`tables`) whose key is (namespace, connection, `id`),
    /// if any: `select` is the table's statement; `read` turns the row into its record.
    async fn keyed_row<T: Send + 'static>(
        &self,
        select: &'static str,
        connection: ConnectionKey,
        id: String,
        read: fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                let key: Params<'_> = &[&connection.namespace, &connection.name, &id];
                let row = query_opt(tx, select, key).await?;
                row.as_ref().map(read).transpose()
            })
        })
        .await
    }

    /// Runs `body` in one transaction and commits; when `notifies`, the commit also wakes this
    /// process's workers and (by `NOTIFY`, delivered at commit) the other replicas'.
    async fn in_tx<R, F>(&self, notifies: bool, body: F) -> StoreResult<R>
    where
        R: Send,
        F: for<'c> FnOnce(&'c Transaction<'c>) -> futures::future::BoxFuture<'c, StoreResult<R>>
            + Send,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        let mut out = body(&tx).await;
        if notifies && out.is_ok() {
            if let Err(e) = exec(
                &tx,
                "SELECT pg_notify($1, $2)",
                &[&listen::CHANNEL, &self.owner],
            )
            .await
            {
                out = Err(e);
            }
        }
        match out {
            Ok(v) => {
                tx.commit().await.map_err(unavailable)?;
                if notifies {
                    self.changes.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(v)
            }
            Err(e) => {
                // Dropping the transaction rolls it back; say so explicitly to free the
                // connection at once.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

// ---- helpers on a transaction ----

/// The values bound to a statement's `$1`, `$2`, ….
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// `sql` prepared once per pooled connection.
async fn statement(tx: &Transaction<'_>, sql: &str) -> StoreResult<Statement> {
    tx.prepare_cached(sql).await.map_err(unavailable)
}

async fn exec(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> StoreResult<u64> {
    let stmt = statement(tx, sql).await?;
    tx.execute(&stmt, params).await.map_err(unavailable)
}

async fn query(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> StoreResult<Vec<Row>> {
    let stmt = statement(tx, sql).await?;
    tx.query(&stmt, params).await.map_err(unavailable)
}

/// The row a statement selecting by a key found, if any.
async fn query_opt(
    tx: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<Row>> {
    let stmt = statement(tx, sql).await?;
    tx.query_opt(&stmt, params).await.map_err(unavailable)
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> StoreResult<T> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

impl Columns for Row {
    fn int(&self, i: usize) -> StoreResult<i64> {
        get(self, i)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        get(self, i)
    }
    fn text(&self, i: usize) -> StoreResult<String> {
        get(self, i)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        get(self, i)
    }
    fn flag(&self, i: usize) -> StoreResult<bool> {
        get(self, i)
    }
}

/// The advisory-lock key of a lane. Stable across builds and replicas (FNV-1a, 64 bit), so
/// every replica locks the same key for the same lane. Collisions only serialise two lanes.
pub fn lane_lock_key((ns, name, key): (&str, &str, &str)) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in [ns, name, key] {
        for b in part.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h as i64
}

/// Takes the advisory locks of `lanes` in ascending key order (a fixed order: no deadlock
/// between two calls that lock several lanes).
async fn lock_lanes<'a>(
    tx: &Transaction<'_>,
    lanes: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> StoreResult<()> {
    let mut keys: Vec<i64> = lanes.into_iter().map(lane_lock_key).collect();
    keys.sort_unstable();
    keys.dedup();
    for k in keys {
        exec(tx, "SELECT pg_advisory_xact_lock($1)", &[&k]).await?;
    }
    Ok(())
}

async fn query_events(
    tx: &Transaction<'_>,
    sql_tail: &str,
    params: Params<'_>,
) -> StoreResult<Vec<StoredEvent>> {
    let sql = format!("SELECT {} FROM psa_events {sql_tail}", rows::EVENT_COLUMNS);
    query(tx, &sql, params)
        .await?
        .iter()
        .map(rows::event)
        .collect()
}

/// The lane of a queued event; `NotQueued` otherwise.
async fn queued_lane(tx: &Transaction<'_>, seq: i64) -> StoreResult<Lane> {
    let row = query_opt(
        tx,
        "SELECT namespace, connection, group_key FROM psa_events WHERE seq = $1 AND state = 0",
        &[&seq],
    )
    .await?
    .ok_or(StoreError::NotQueued(seq))?;
    rows::lane(&row)
}

/// Locks the lanes of queued events `seqs`, then checks they are still queued (a concurrent
/// call may have finished one while this one waited for the lock). Returns each event's lane.
async fn lock_queued(tx: &Transaction<'_>, seqs: &[i64]) -> StoreResult<Vec<(i64, Lane)>> {
    let mut found = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        found.push((seq, queued_lane(tx, seq).await?));
    }
    lock_lanes(
        tx,
        found
            .iter()
            .map(|(_, (ns, n, k))| (ns.as_str(), n.as_str(), k.as_str())),
    )
    .await?;
    for (seq, _) in &found {
        queued_lane(tx, *seq).await?;
    }
    Ok(found)
}

/// `lock_queued` for one event: its lane, locked.
async fn lock_queued_lane(tx: &Transaction<'_>, seq: i64) -> StoreResult<Lane> {
    let mut found = lock_queued(tx, &[seq]).await?;
    let (_, lane) = found.pop().ok_or(StoreError::NotQueued(seq))?;
    Ok(lane)
}

/// Re-derives a lane's head from its queued events (or drops the lane). The caller holds the
/// lane's advisory lock.
async fn refresh_lane(
    tx: &Transaction<'_>,
    (ns, name, key): &Lane,
    end_claim: bool,
) -> StoreResult<()> {
    let head = query_opt(
        tx,
        "SELECT seq, next_attempt_at_ms FROM psa_events
         WHERE namespace = $1 AND connection = $2 AND group_key = $3 AND state = 0
         ORDER BY seq LIMIT 1",
        &[ns, name, key],
    )
    .await?;
    match head {
        Some(row) => {
            let (seq, ready_at): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
            exec(
                tx,
                "INSERT INTO psa_lanes (namespace, connection, group_key, head_seq, ready_at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (namespace, connection, group_key) DO UPDATE SET
                   head_seq = excluded.head_seq,
                   ready_at_ms = excluded.ready_at_ms,
                   claimed_until_ms = CASE WHEN $6 THEN NULL ELSE psa_lanes.claimed_until_ms END,
                   claimed_by = CASE WHEN $6 THEN NULL ELSE psa_lanes.claimed_by END",
                &[ns, name, key, &seq, &ready_at, &end_claim],
            )
            .await?;
        }
        None => {
            exec(
                tx,
                "DELETE FROM psa_lanes WHERE namespace = $1 AND connection = $2 AND group_key = $3",
                &[ns, name, key],
            )
            .await?;
        }
    }
    Ok(())
}

/// Counter rows per connection: a transaction writes one of them (see the migration).
const COUNTER_SHARDS: i16 = 16;

/// Applies counter deltas to one shard, in key order (rows locked in a fixed order).
async fn apply_counters(tx: &Transaction<'_>, deltas: &CounterDeltas) -> StoreResult<()> {
    let shard: i16 = rand::random_range(0..COUNTER_SHARDS);
    for ((ns, name), [accepted, pending, delivered, dead]) in deltas.iter() {
        exec(
            tx,
            "INSERT INTO psa_counters (namespace, connection, accepted, pending, delivered, dead_letters, shard)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (namespace, connection, shard) DO UPDATE SET
               accepted = psa_counters.accepted + excluded.accepted,
               pending = psa_counters.pending + excluded.pending,
               delivered = psa_counters.delivered + excluded.delivered,
               dead_letters = psa_counters.dead_letters + excluded.dead_letters",
            &[ns, name, accepted, pending, delivered, dead, &shard],
        )
        .await?;
    }
    Ok(())
}

/// Inserts one event and, for a new lane, the lane with it as head; answers (seq, new). A
/// duplicate answers the stored seq with `new = false` — unless the first copy was committed by
/// another transaction while this statement waited, which its snapshot cannot see: then no
/// row, and `stored_seq` looks again.
const ENQUEUE_ONE: &str = "
WITH ins AS (
    INSERT INTO psa_events (namespace, connection, event_id, group_key, kind, body, state,
                            attempts, next_attempt_at_ms, accepted_at_ms, id_space)
    VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7, $8)
    ON CONFLICT (namespace, connection, id_space, event_id) DO NOTHING
    RETURNING seq
), lane AS (
    INSERT INTO psa_lanes (namespace, connection, group_key, head_seq, ready_at_ms)
    SELECT $1, $2, $4, seq, $7 FROM ins
    ON CONFLICT (namespace, connection, group_key) DO NOTHING
)
SELECT seq, TRUE FROM ins
UNION ALL
SELECT seq, FALSE FROM psa_events
 WHERE namespace = $1 AND connection = $2 AND id_space = $8 AND event_id = $3
   AND NOT EXISTS (SELECT 1 FROM ins)";

/// Enqueues a batch in one round trip: the lane locks (sorted) and one `ENQUEUE_ONE` per
/// event are pipelined on the connection, which runs them in the order sent.
async fn enqueue_batch(tx: &Transaction<'_>, events: &[NewEvent]) -> StoreResult<Vec<Enqueued>> {
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(unavailable)?;
    let insert = tx.prepare_cached(ENQUEUE_ONE).await.map_err(unavailable)?;
    let mut keys: Vec<i64> = events
        .iter()
        .map(|e| {
            lane_lock_key((
                e.envelope.namespace.as_str(),
                e.envelope.connection.as_str(),
                e.group_key.as_str(),
            ))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let bodies = events
        .iter()
        .map(|ev| {
            serde_json::to_string(&ev.envelope)
                .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {e}")))
        })
        .collect::<StoreResult<Vec<String>>>()?;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.envelope.event.kind.as_str())
        .collect();
    let (lock, insert) = (&lock, &insert);
    let locks = futures::future::try_join_all(keys.iter().map(|k| {
        let params: Vec<&(dyn ToSql + Sync)> = vec![k];
        tx.execute_raw(lock, params)
    }));
    let id_spaces: Vec<&str> = events
        .iter()
        .map(|e| e.envelope.event.kind.id_space())
        .collect();
    let id_spaces = &id_spaces;
    let inserts =
        futures::future::try_join_all(events.iter().zip(&bodies).zip(&kinds).enumerate().map(
            |(i, ((ev, body), kind))| {
                let env = &ev.envelope;
                let params: Vec<&(dyn ToSql + Sync)> = vec![
                    &env.namespace,
                    &env.connection,
                    &env.event.id,
                    &ev.group_key,
                    kind,
                    body,
                    &env.accepted_at_ms,
                    &id_spaces[i],
                ];
                async move {
                    use futures::TryStreamExt;
                    tx.query_raw(insert, params)
                        .await?
                        .try_collect::<Vec<Row>>()
                        .await
                }
            },
        ));
    // Polled in this order, so every lock is requested before the first insert.
    let (locked, inserted) = futures::join!(locks, inserts);
    locked.map_err(unavailable)?;
    let rows = inserted.map_err(unavailable)?;
    let mut out = Vec::with_capacity(events.len());
    for (ev, rows) in events.iter().zip(rows) {
        let found = match rows.first() {
            Some(row) => Enqueued {
                seq: get(row, 0)?,
                new: get(row, 1)?,
            },
            None => Enqueued {
                seq: stored_seq(tx, ev).await?,
                new: false,
            },
        };
        out.push(found);
    }
    Ok(out)
}

/// The seq of an already stored event (a fresh snapshot: it may have just been committed).
async fn stored_seq(tx: &Transaction<'_>, ev: &NewEvent) -> StoreResult<i64> {
    let env = &ev.envelope;
    let row = query_opt(
        tx,
        "SELECT seq FROM psa_events
          WHERE namespace = $1 AND connection = $2 AND id_space = $3 AND event_id = $4",
        &[
            &env.namespace,
            &env.connection,
            &env.event.kind.id_space(),
            &env.event.id,
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Unavailable("a duplicate event vanished; retry".into()))?;
    get(&row, 0)
}

/// The keyed tables' statements in PostgreSQL's dialect.
static KEYED: LazyLock<KeyedStatements> = LazyLock::new(|| KeyedStatements::new(tables::POSTGRES));

impl ToSql for StoredValue {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // Checked per value: `accepts` below admits any column type one of them fits.
        match self {
            StoredValue::Text(v) => v.to_sql_checked(ty, out),
            StoredValue::OptText(v) => v.to_sql_checked(ty, out),
            StoredValue::Int(v) => v.to_sql_checked(ty, out),
            StoredValue::OptInt(v) => v.to_sql_checked(ty, out),
            StoredValue::Flag(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <String as ToSql>::accepts(ty)
            || <i64 as ToSql>::accepts(ty)
            || <bool as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Writes a keyed table's row (`tables`), replacing the one with the same key.
async fn upsert(tx: &Transaction<'_>, sql: &str, row: Vec<StoredValue>) -> StoreResult<()> {
    let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    exec(tx, sql, &params).await.map(drop)
}

async fn write_ticket_record(tx: &Transaction<'_>, record: &TicketRecord) -> StoreResult<()> {
    match tables::record_write(record) {
        RecordWrite::Row(table, row) => upsert(tx, KEYED.upsert(table), row).await,
        RecordWrite::StormNote(note) => storm::write_noted(tx, &note).await,
    }
}

/// Runs an UPDATE of one dead letter; `NotDeadLetter` when it matched no row.
async fn update_dead_letter(
    tx: &Transaction<'_>,
    seq: i64,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<()> {
    if exec(tx, sql, params).await? == 0 {
        return Err(StoreError::NotDeadLetter(seq));
    }
    Ok(())
}

/// The condition on ($1, $2) = `rows::connection_filter_params`: empty strings select all
/// connections.
const CONN_FILTER: &str = "($1 = '' OR (namespace = $1 AND connection = $2))";

/// Due, unclaimed lanes of `connection` whose group key starts with `prefix`.
async fn ready_with_prefix(
    tx: &Transaction<'_>,
    connection: &ConnectionKey,
    prefix: &str,
    now_ms: i64,
    limit: i64,
) -> StoreResult<Vec<ReadyLane>> {
    // `left(...) =`, not a range or LIKE: a database collation other than "C" may order or
    // match punctuation differently; the connection's lanes come from the primary key's
    // leading columns either way.
    let sql = "SELECT group_key, ready_at_ms FROM psa_lanes
         WHERE namespace = $1 AND connection = $2
           AND left(group_key, length($3)) = $3 AND ready_at_ms <= $4
           AND (claimed_until_ms IS NULL OR claimed_until_ms <= $4)
         ORDER BY ready_at_ms LIMIT $5";
    let params: Params<'_> = &[
        &connection.namespace,
        &connection.name,
        &prefix,
        &now_ms,
        &limit,
    ];
    query(tx, sql, params)
        .await?
        .iter()
        .map(|r| rows::ready_lane_of(connection, r))
        .collect()
}

#[async_trait]
impl Store for PgStore {
    async fn enqueue(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Enqueued>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.in_tx(true, move |tx| {
            Box::pin(async move {
                let out = enqueue_batch(tx, &events).await?;
                let mut deltas = CounterDeltas::default();
                for (ev, r) in events.iter().zip(&out) {
                    if r.new {
                        let env = &ev.envelope;
                        deltas.add(&env.namespace, &env.connection, [1, 1, 0, 0]);
                    }
                }
                apply_counters(tx, &deltas).await?;
                Ok(out)
            })
        })
        .await
    }

    async fn ready_lanes(
        &self,
        scope: LaneScope,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<ReadyLane>> {
        let limit = limit_param(limit);
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                if let LaneScope::Prefixed { connection, prefix } = &scope {
                    return ready_with_prefix(tx, connection, prefix, now_ms, limit).await;
                }
                let (ns, name) = connection_filter_params(scope.connection());
                let sql = format!(
                    "SELECT namespace, connection, group_key, ready_at_ms FROM psa_lanes
                     WHERE {CONN_FILTER} AND ready_at_ms <= $3
                       AND (claimed_until_ms IS NULL OR claimed_until_ms <= $3)
                     ORDER BY ready_at_ms LIMIT $4"
                );
                query(tx, &sql, &[&ns, &name, &now_ms, &limit])
                    .await?
                    .iter()
                    .map(rows::ready_lane)
                    .collect()
            })
        })
        .await
    }

    async fn next_ready_at(&self, connection: Option<ConnectionKey>) -> StoreResult<Option<i64>> {
        let (ns, name) = connection_filter_params(connection.as_ref());
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                // A claimed lane can be claimed again at the earliest when its lease ends.
                let sql = format!(
                    "SELECT MIN(CASE WHEN claimed_until_ms IS NULL THEN ready_at_ms
                                     ELSE GREATEST(ready_at_ms, claimed_until_ms) END)
                     FROM psa_lanes WHERE {CONN_FILTER}"
                );
                let row = query_opt(tx, &sql, &[&ns, &name]).await?;
                match row {
                    Some(r) => get::<Option<i64>>(&r, 0),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    async fn claim(
        &self,
        lane: LaneId,
        now_ms: i64,
        lease: Duration,
    ) -> StoreResult<Option<StoredEvent>> {
        let owner = self.owner.clone();
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                let until = now_ms.saturating_add(ms(lease));
                let head = query_opt(
                    tx,
                    "UPDATE psa_lanes SET claimed_until_ms = $4, claimed_by = $6
                     WHERE namespace = $1 AND connection = $2 AND group_key = $3
                       AND ready_at_ms <= $5
                       AND (claimed_until_ms IS NULL OR claimed_until_ms <= $5)
                     RETURNING head_seq",
                    &[
                        &lane.connection.namespace,
                        &lane.connection.name,
                        &lane.group_key,
                        &until,
                        &now_ms,
                        &owner,
                    ],
                )
                .await?;
                let Some(row) = head else { return Ok(None) };
                let seq: i64 = get(&row, 0)?;
                exec(
                    tx,
                    "UPDATE psa_events SET claims = claims + 1 WHERE seq = $1",
                    &[&seq],
                )
                .await?;
                let found = query_events(tx, "WHERE seq = $1 AND state = 0", &[&seq]).await?;
                rows::claimed_head(seq, found)
            })
        })
        .await
    }

    async fn lane_events(&self, lane: LaneId, limit: usize) -> StoreResult<Vec<StoredEvent>> {
        let limit = limit_param(limit);
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                let (connection, group_key) = (&lane.connection, &lane.group_key);
                query_events(
                    tx,
                    "WHERE namespace = $1 AND connection = $2 AND group_key = $3 AND state = 0
                     ORDER BY seq LIMIT $4",
                    &[&connection.namespace, &connection.name, group_key, &limit],
                )
                .await
            })
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
        self.in_tx(finishes_events, move |tx| {
            Box::pin(async move {
                let found = lock_queued(tx, &seqs).await?;
                let mut deltas = CounterDeltas::default();
                let mut lanes = std::collections::BTreeSet::new();
                for (seq, lane) in found {
                    exec(
                        tx,
                        "UPDATE psa_events SET state = 1, finished_at_ms = $2 WHERE seq = $1",
                        &[&seq, &now_ms],
                    )
                    .await?;
                    deltas.add(&lane.0, &lane.1, [0, -1, 1, 0]);
                    lanes.insert(lane);
                }
                for lane in &lanes {
                    refresh_lane(tx, lane, true).await?;
                }
                for r in &records {
                    write_ticket_record(tx, r).await?;
                }
                apply_counters(tx, &deltas).await
            })
        })
        .await
    }

    async fn retry_later(
        &self,
        seq: i64,
        next_attempt_at_ms: i64,
        error: String,
    ) -> StoreResult<u32> {
        self.in_tx(true, move |tx| {
            Box::pin(async move {
                let lane = lock_queued_lane(tx, seq).await?;
                let row = query_opt(
                    tx,
                    "UPDATE psa_events SET attempts = attempts + 1, next_attempt_at_ms = $2,
                                           last_error = $3
                     WHERE seq = $1 RETURNING attempts",
                    &[&seq, &next_attempt_at_ms, &error],
                )
                .await?
                .ok_or(StoreError::NotQueued(seq))?;
                refresh_lane(tx, &lane, true).await?;
                Ok(u32::try_from(get::<i64>(&row, 0)?).unwrap_or(u32::MAX))
            })
        })
        .await
    }

    async fn defer(&self, seq: i64, not_before_ms: i64) -> StoreResult<()> {
        self.in_tx(true, move |tx| {
            Box::pin(async move {
                let lane = lock_queued_lane(tx, seq).await?;
                exec(
                    tx,
                    "UPDATE psa_events SET next_attempt_at_ms = $2 WHERE seq = $1",
                    &[&seq, &not_before_ms],
                )
                .await?;
                refresh_lane(tx, &lane, true).await
            })
        })
        .await
    }

    async fn dead_letter(&self, seq: i64, error: String, now_ms: i64) -> StoreResult<()> {
        self.in_tx(true, move |tx| {
            Box::pin(async move {
                let lane = lock_queued_lane(tx, seq).await?;
                exec(
                    tx,
                    "UPDATE psa_events SET state = 2, attempts = attempts + 1, last_error = $2,
                                           finished_at_ms = $3, failsafe_sent = FALSE,
                                           failsafe_next_at_ms = $3, failsafe_error = NULL
                     WHERE seq = $1",
                    &[&seq, &error, &now_ms],
                )
                .await?;
                let mut deltas = CounterDeltas::default();
                deltas.add(&lane.0, &lane.1, [0, -1, 0, 1]);
                refresh_lane(tx, &lane, true).await?;
                apply_counters(tx, &deltas).await
            })
        })
        .await
    }

    async fn mark_failsafe_sent(&self, seq: i64) -> StoreResult<()> {
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                update_dead_letter(
                    tx,
                    seq,
                    "UPDATE psa_events SET failsafe_sent = TRUE, failsafe_next_at_ms = NULL
                     WHERE seq = $1 AND state = 2",
                    &[&seq],
                )
                .await
            })
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
            "WHERE {CONN_FILTER} AND state = 2 AND NOT failsafe_sent AND failsafe_next_at_ms <= $3
             ORDER BY failsafe_next_at_ms, seq LIMIT $4"
        );
        let limit = limit_param(limit);
        self.in_tx(false, move |tx| {
            Box::pin(async move { query_events(tx, &sql, &[&ns, &name, &now_ms, &limit]).await })
        })
        .await
    }

    async fn failsafe_retry_later(
        &self,
        seq: i64,
        next_at_ms: i64,
        error: String,
    ) -> StoreResult<()> {
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                update_dead_letter(
                    tx,
                    seq,
                    "UPDATE psa_events SET failsafe_next_at_ms = $2, failsafe_error = $3
                     WHERE seq = $1 AND state = 2 AND NOT failsafe_sent",
                    &[&seq, &next_at_ms, &error],
                )
                .await
            })
        })
        .await
    }

    async fn dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (ns, name) = connection_filter_params(connection.as_ref());
        let sql = format!("WHERE {CONN_FILTER} AND state = 2 ORDER BY seq LIMIT $3");
        let limit = limit_param(limit);
        self.in_tx(false, move |tx| {
            Box::pin(async move { query_events(tx, &sql, &[&ns, &name, &limit]).await })
        })
        .await
    }

    async fn replay_dead_letters(
        &self,
        connection: Option<ConnectionKey>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let (ns, name) = connection_filter_params(connection.as_ref());
        self.in_tx(true, move |tx| {
            Box::pin(async move {
                // Lock the lanes the dead letters go back to before touching them.
                let dead = query(
                    tx,
                    &format!(
                        "SELECT DISTINCT namespace, connection, group_key FROM psa_events
                         WHERE {CONN_FILTER} AND state = 2"
                    ),
                    &[&ns, &name],
                )
                .await?;
                let lanes: Vec<Lane> = dead.iter().map(rows::lane).collect::<StoreResult<_>>()?;
                lock_lanes(
                    tx,
                    lanes
                        .iter()
                        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())),
                )
                .await?;
                let replayed = query(
                    tx,
                    &format!(
                        "UPDATE psa_events SET state = 0, attempts = 0, next_attempt_at_ms = $3,
                                               finished_at_ms = NULL, failsafe_sent = FALSE,
                                               failsafe_next_at_ms = NULL, failsafe_error = NULL
                         WHERE {CONN_FILTER} AND state = 2
                         RETURNING namespace, connection, group_key"
                    ),
                    &[&ns, &name, &now_ms],
                )
                .await?;
                let mut deltas = CounterDeltas::default();
                let mut touched = std::collections::BTreeSet::new();
                for r in &replayed {
                    let lane = rows::lane(r)?;
                    deltas.add(&lane.0, &lane.1, [0, 1, 0, -1]);
                    touched.insert(lane);
                }
                for lane in &touched {
                    // A lane being worked on keeps its claim; the replayed event queues behind it.
                    refresh_lane(tx, lane, false).await?;
                }
                apply_counters(tx, &deltas).await?;
                Ok(replayed.len() as u64)
            })
        })
        .await
    }

    /// Ends the claims of this replica (`PgOptions::owner`) only: the other replicas' claims
    /// are live work, and a dead replica's claims run out with their lease.
    async fn release_all_claims(&self) -> StoreResult<u64> {
        let owner = self.owner.clone();
        self.in_tx(true, move |tx| {
            Box::pin(async move {
                exec(
                    tx,
                    "UPDATE psa_lanes SET claimed_until_ms = NULL, claimed_by = NULL
                     WHERE claimed_until_ms IS NOT NULL AND claimed_by = $1",
                    &[&owner],
                )
                .await
            })
        })
        .await
    }

    async fn group_ticket(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupTicket>> {
        let select = &KEYED.group_tickets.select;
        self.keyed_row(select, connection, group_key, rows::group_ticket)
            .await
    }

    async fn group_lifecycle(
        &self,
        connection: ConnectionKey,
        group_key: String,
    ) -> StoreResult<Option<GroupLifecycle>> {
        let select = &KEYED.group_lifecycle.select;
        self.keyed_row(select, connection, group_key, rows::group_lifecycle)
            .await
    }

    async fn storm_admit(&self, req: AdmitRequest) -> StoreResult<Admission> {
        self.in_tx(false, move |tx| {
            Box::pin(async move { storm::admit_in(tx, &req).await })
        })
        .await
    }

    async fn storm_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<StormDue>> {
        let limit = limit_param(limit);
        self.in_tx(false, move |tx| {
            Box::pin(async move { storm::due_in(tx, now_ms, lease_ms, limit).await })
        })
        .await
    }

    async fn storm_closed(
        &self,
        connection: ConnectionKey,
        customer_id: String,
        ticket_id: String,
    ) -> StoreResult<()> {
        self.in_tx(false, move |tx| {
            Box::pin(
                async move { storm::closed_in(tx, &connection, &customer_id, &ticket_id).await },
            )
        })
        .await
    }

    async fn storm_window(
        &self,
        connection: ConnectionKey,
        customer_id: String,
    ) -> StoreResult<Option<StormWindow>> {
        self.in_tx(false, move |tx| {
            Box::pin(async move { storm::window(tx, &connection, &customer_id, false).await })
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
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                let row = query_opt(
                    tx,
                    "SELECT SUM(accepted)::BIGINT, SUM(pending)::BIGINT, SUM(delivered)::BIGINT,
                            SUM(dead_letters)::BIGINT
                     FROM psa_counters WHERE namespace = $1 AND connection = $2",
                    &[&connection.namespace, &connection.name],
                )
                .await?;
                // No rows: the sums are NULL (an unknown connection counts zero).
                rows::counters(row.as_ref())
            })
        })
        .await
    }

    async fn queue_depth(&self) -> StoreResult<u64> {
        self.in_tx(false, move |tx| {
            Box::pin(async move {
                let row = query_opt(
                    tx,
                    "SELECT COALESCE(SUM(pending), 0)::BIGINT FROM psa_counters",
                    &[],
                )
                .await?;
                let v: i64 = match row {
                    Some(r) => get(&r, 0)?,
                    None => 0,
                };
                Ok(u64::try_from(v).unwrap_or(0))
            })
        })
        .await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_lock_keys_are_stable_and_separate_the_parts() {
        // Fixed value: every replica and every build must lock the same key for a lane.
        assert_eq!(
            lane_lock_key(("psa", "acme", "k")),
            lane_lock_key(("psa", "acme", "k"))
        );
        assert_ne!(
            lane_lock_key(("psa", "acme", "k")),
            lane_lock_key(("psa", "acmek", ""))
        );
        assert_ne!(
            lane_lock_key(("psa", "acme", "k1")),
            lane_lock_key(("psa", "acme", "k2"))
        );
        // The FNV-1a value pinned: a change would let two builds lock different keys.
        assert_eq!(lane_lock_key(("psa", "acme", "k")), 3931385594016856718);
    }
}
