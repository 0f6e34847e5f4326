//! The storm breaker's state in PostgreSQL (`decide::storm` applied inside one transaction;
//! the customer's row is locked, so replicas admit one group at a time per customer).

use std::sync::LazyLock;

use deadpool_postgres::Transaction;

use super::{exec, query, query_opt, upsert, KEYED};
use crate::dispatch::decide::storm::{closed, noted, Admission, AdmitRequest, StormWindow};
use crate::dispatch::store::rows::Columns;
use crate::dispatch::store::storm::{
    admit_writes, decode_stored, lease_to_close, membership, window_row,
};
use crate::dispatch::store::tables::StormNote;
use crate::dispatch::store::{StoreResult, StormDue};
use crate::resolved::ConnectionKey;

/// The customer's state, its row locked until the transaction ends (`lock`).
pub(super) async fn window(
    tx: &Transaction<'_>,
    key: &ConnectionKey,
    customer_id: &str,
    lock: bool,
) -> StoreResult<Option<StormWindow>> {
    static LOCKED: LazyLock<String> =
        LazyLock::new(|| format!("{} FOR UPDATE", KEYED.storm_windows.select));
    let sql = if lock {
        LOCKED.as_str()
    } else {
        KEYED.storm_windows.select.as_str()
    };
    let row = query_opt(tx, sql, &[&key.namespace, &key.name, &customer_id]).await?;
    match row {
        Some(r) => decode_stored(&r.text(0)?),
        None => Ok(None),
    }
}

async fn write_window(
    tx: &Transaction<'_>,
    key: &ConnectionKey,
    customer_id: &str,
    w: &StormWindow,
) -> StoreResult<()> {
    upsert(
        tx,
        &KEYED.storm_windows.upsert,
        window_row(key, customer_id, w),
    )
    .await
}

pub(super) async fn admit_in(tx: &Transaction<'_>, req: &AdmitRequest) -> StoreResult<Admission> {
    let key = &req.connection;
    // The row exists before it is locked, so two first admissions of a customer serialise too.
    exec(
        tx,
        "INSERT INTO psa_storm_windows (namespace, connection, customer_id, state)
         VALUES ($1, $2, $3, '') ON CONFLICT DO NOTHING",
        &[&key.namespace, &key.name, &req.customer_id],
    )
    .await?;
    let before = window(tx, key, &req.customer_id, true).await?;
    let member = query_opt(
        tx,
        &KEYED.storm_members.select,
        &[&key.namespace, &key.name, &req.customer_id, &req.group_key],
    )
    .await?;
    let member = match member {
        Some(r) => membership(&r)?,
        None => None,
    };
    let writes = admit_writes(req, before, member);
    if let Some(window_start_ms) = writes.void_members_before {
        // A new window: the memberships of the old one are void.
        exec(
            tx,
            "DELETE FROM psa_storm_members
             WHERE namespace = $1 AND connection = $2 AND customer_id = $3
               AND window_start_ms < $4",
            &[
                &key.namespace,
                &key.name,
                &req.customer_id,
                &window_start_ms,
            ],
        )
        .await?;
    }
    upsert(tx, &KEYED.storm_windows.upsert, writes.window_row).await?;
    if let Some(row) = writes.member_row {
        upsert(tx, &KEYED.storm_members.upsert, row).await?;
    }
    Ok(writes.admission)
}

/// `TicketRecord::Storm`, written with `complete`.
pub(super) async fn write_noted(tx: &Transaction<'_>, note: &StormNote<'_>) -> StoreResult<()> {
    let (key, customer_id) = (note.connection, note.customer_id);
    match window(tx, key, customer_id, true).await? {
        Some(w) => write_window(tx, key, customer_id, &noted(&w, note.created, note.label)).await,
        None => Ok(()),
    }
}

pub(super) async fn due_in(
    tx: &Transaction<'_>,
    now_ms: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<StormDue>> {
    // Rows another replica is claiming are skipped, not waited for.
    let rows = query(
        tx,
        "SELECT namespace, connection, customer_id, state FROM psa_storm_windows
         WHERE close_due_ms IS NOT NULL AND close_due_ms <= $1
         ORDER BY close_due_ms LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&now_ms, &limit],
    )
    .await?;
    let mut due = vec![];
    for r in &rows {
        if let Some(d) = lease_to_close(r, now_ms, lease_ms)? {
            write_window(tx, &d.connection, &d.customer_id, &d.window).await?;
            due.push(d);
        }
    }
    Ok(due)
}

pub(super) async fn closed_in(
    tx: &Transaction<'_>,
    key: &ConnectionKey,
    customer_id: &str,
    ticket_id: &str,
) -> StoreResult<()> {
    match window(tx, key, customer_id, true)
        .await?
        .and_then(|w| closed(&w, ticket_id))
    {
        Some(w) => write_window(tx, key, customer_id, &w).await,
        None => Ok(()),
    }
}
