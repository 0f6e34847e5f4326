//! The PostgreSQL schema, as embedded, numbered migrations. Applied at start under an advisory
//! lock: when several replicas start at once, one migrates and the others wait, then find
//! nothing left to do. A database migrated by a newer build is refused rather than written.

use deadpool_postgres::Object;

use crate::dispatch::store::{StoreError, StoreResult};

/// Key of the advisory lock held while migrating (two-int form: its own key space, apart from
/// the lane locks' single-bigint keys). "psa" / 1.
const MIGRATION_LOCK: (i32, i32) = (0x0070_7361, 1);

/// (version, SQL). Append only: a released migration never changes.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "
CREATE TABLE psa_events (
    seq                 BIGSERIAL PRIMARY KEY,
    namespace           TEXT    NOT NULL,
    connection          TEXT    NOT NULL,
    event_id            TEXT    NOT NULL,
    group_key           TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    state               BIGINT  NOT NULL,
    attempts            BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at_ms  BIGINT  NOT NULL,
    last_error          TEXT,
    accepted_at_ms      BIGINT  NOT NULL,
    finished_at_ms      BIGINT,
    failsafe_sent       BOOLEAN NOT NULL DEFAULT FALSE,
    failsafe_next_at_ms BIGINT,
    failsafe_error      TEXT,
    claims              BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (namespace, connection, event_id)
);
CREATE INDEX psa_events_lane_queued
    ON psa_events (namespace, connection, group_key, seq) WHERE state = 0;
CREATE INDEX psa_events_dead
    ON psa_events (namespace, connection, seq) WHERE state = 2;
CREATE INDEX psa_events_failsafe_due
    ON psa_events (failsafe_next_at_ms) WHERE state = 2 AND NOT failsafe_sent;
CREATE TABLE psa_lanes (
    namespace        TEXT   NOT NULL,
    connection       TEXT   NOT NULL,
    group_key        TEXT   NOT NULL,
    head_seq         BIGINT NOT NULL,
    ready_at_ms      BIGINT NOT NULL,
    claimed_until_ms BIGINT,
    claimed_by       TEXT,
    PRIMARY KEY (namespace, connection, group_key)
);
CREATE INDEX psa_lanes_ready ON psa_lanes (ready_at_ms);
CREATE INDEX psa_lanes_conn_ready ON psa_lanes (namespace, connection, ready_at_ms);
CREATE TABLE psa_group_tickets (
    namespace     TEXT    NOT NULL,
    connection    TEXT    NOT NULL,
    group_key     TEXT    NOT NULL,
    ticket_id     TEXT    NOT NULL,
    open          BOOLEAN NOT NULL,
    updated_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (namespace, connection, group_key)
);
CREATE TABLE psa_finding_tickets (
    namespace     TEXT   NOT NULL,
    connection    TEXT   NOT NULL,
    finding_id    TEXT   NOT NULL,
    ticket_id     TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (namespace, connection, finding_id)
);
-- Counters per connection, spread over shards: every transaction adds its deltas to one
-- shard row, so concurrent commits do not queue on one row lock; readers sum the shards.
CREATE TABLE psa_counters (
    namespace    TEXT     NOT NULL,
    connection   TEXT     NOT NULL,
    shard        SMALLINT NOT NULL,
    accepted     BIGINT   NOT NULL,
    pending      BIGINT   NOT NULL,
    delivered    BIGINT   NOT NULL,
    dead_letters BIGINT   NOT NULL,
    PRIMARY KEY (namespace, connection, shard)
);
",
    ),
    (
        2,
        "
-- Auto-resolve: the alerts of a group's ticket still firing (JSON array) and our status.
CREATE TABLE psa_group_lifecycle (
    namespace  TEXT NOT NULL,
    connection TEXT NOT NULL,
    group_key  TEXT NOT NULL,
    ticket_id  TEXT NOT NULL,
    status_id  TEXT,
    firing     TEXT NOT NULL,
    PRIMARY KEY (namespace, connection, group_key)
);
",
    ),
    (
        3,
        "
-- Storm breaker: one row per (connection, customer) with its window and roll-up (JSON), and
-- when the roll-up may close (indexed for the sweep).
CREATE TABLE psa_storm_windows (
    namespace    TEXT   NOT NULL,
    connection   TEXT   NOT NULL,
    customer_id  TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    close_due_ms BIGINT,
    PRIMARY KEY (namespace, connection, customer_id)
);
CREATE INDEX psa_storm_windows_due ON psa_storm_windows (close_due_ms)
    WHERE close_due_ms IS NOT NULL;
-- Which groups of a customer's current window got a ticket or went to the roll-up.
CREATE TABLE psa_storm_members (
    namespace       TEXT   NOT NULL,
    connection      TEXT   NOT NULL,
    customer_id     TEXT   NOT NULL,
    group_key       TEXT   NOT NULL,
    window_start_ms BIGINT NOT NULL,
    member          TEXT   NOT NULL,
    PRIMARY KEY (namespace, connection, customer_id, group_key)
);
",
    ),
    (
        4,
        "
-- Event ids are unique per connection *and* id space (`EventKind::id_space`), as in SQLite:
-- a finding or an Alertmanager alert that reuses an `/alerts` id is a new event, not a
-- duplicate. Existing rows get their space from their kind.
ALTER TABLE psa_events ADD COLUMN id_space TEXT;
UPDATE psa_events SET id_space = CASE
    WHEN kind IN ('alert', 'alert.resolved') THEN 'alerts'
    WHEN kind LIKE 'finding.%' THEN 'findings'
    ELSE 'alertmanager' END;
ALTER TABLE psa_events ALTER COLUMN id_space SET NOT NULL;
ALTER TABLE psa_events DROP CONSTRAINT psa_events_namespace_connection_event_id_key;
ALTER TABLE psa_events ADD CONSTRAINT psa_events_id_per_space
    UNIQUE (namespace, connection, id_space, event_id);
",
    ),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0)
}

/// Which migrations a database at `current` needs, in order; an error when it is newer than
/// this build. Pure, so the decision is tested without a server.
pub fn pending(current: i64) -> Result<Vec<(i64, &'static str)>, String> {
    let latest = latest_version();
    if current > latest {
        return Err(format!(
            "store schema version {current} is newer than this build ({latest}); \
             run the newer psa-operator or restore the database"
        ));
    }
    Ok(MIGRATIONS
        .iter()
        .copied()
        .filter(|(v, _)| *v > current)
        .collect())
}

/// Brings the schema to the latest version, in one transaction under the migration lock.
pub async fn apply(client: &mut Object) -> StoreResult<i64> {
    let unavailable = |e: tokio_postgres::Error| StoreError::Unavailable(e.to_string());
    let tx = client.transaction().await.map_err(unavailable)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
    )
    .await
    .map_err(unavailable)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS psa_schema_migrations (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(unavailable)?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM psa_schema_migrations",
            &[],
        )
        .await
        .map_err(unavailable)?
        .get(0);
    let todo = pending(current).map_err(StoreError::Corrupt)?;
    for (version, sql) in &todo {
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Unavailable(format!("applying store migration {version}: {e}"))
        })?;
        tx.execute(
            "INSERT INTO psa_schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    if !todo.is_empty() {
        tracing::info!(
            from = current,
            to = latest_version(),
            "store schema migrated"
        );
    }
    Ok(latest_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_migrations_by_current_version() {
        assert_eq!(
            pending(0).unwrap().iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(
            pending(1).unwrap().iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert!(pending(latest_version()).unwrap().is_empty());
        let newer = pending(latest_version() + 1).unwrap_err();
        assert!(newer.contains("newer than this build"), "{newer}");
    }

    #[test]
    fn versions_are_strictly_increasing() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(MIGRATIONS.first().is_some_and(|m| m.0 == 1));
    }
}
