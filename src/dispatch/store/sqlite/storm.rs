//! The storm breaker's state in SQLite (`decide::storm` applied inside the store's
//! transactions; one writer thread serialises them).

use rusqlite::{params, Connection};

use super::{first, query_rows, unavailable, upsert, KEYED};
use crate::dispatch::decide::storm::{closed, noted, Admission, AdmitRequest, StormWindow};
use crate::dispatch::store::rows::{limit_param, Columns};
use crate::dispatch::store::storm::{
    admit_writes, decode_stored, lease_to_close, membership, window_row,
};
use crate::dispatch::store::tables::StormNote;
use crate::dispatch::store::{StoreResult, StormDue};
use crate::resolved::ConnectionKey;

/// The sweep's index (the storm tables are keyed tables, `tables::STORM_WINDOWS` and
/// `tables::STORM_MEMBERS`, created before this).
pub(super) const SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS storm_windows_due ON storm_windows (close_due_ms)
    WHERE close_due_ms IS NOT NULL;
";

pub(super) fn window(
    conn: &Connection,
    key: &ConnectionKey,
    customer_id: &str,
) -> StoreResult<Option<StormWindow>> {
    let text = query_rows(
        conn,
        &KEYED.storm_windows.select,
        params![key.namespace, key.name, customer_id],
        |r| r.text(0),
    )?;
    match first(text) {
        Some(text) => decode_stored(&text),
        None => Ok(None),
    }
}

fn write_window(
    conn: &Connection,
    key: &ConnectionKey,
    customer_id: &str,
    w: &StormWindow,
) -> StoreResult<()> {
    upsert(
        conn,
        &KEYED.storm_windows.upsert,
        window_row(key, customer_id, w),
    )
}

pub(super) fn admit_in(conn: &Connection, req: &AdmitRequest) -> StoreResult<Admission> {
    let key = &req.connection;
    let before = window(conn, key, &req.customer_id)?;
    let member = query_rows(
        conn,
        &KEYED.storm_members.select,
        params![key.namespace, key.name, req.customer_id, req.group_key],
        |r| membership(r),
    )?;
    let member = first(member).flatten();
    let writes = admit_writes(req, before, member);
    if let Some(window_start_ms) = writes.void_members_before {
        // A new window: the memberships of the old one are void.
        conn.prepare_cached(
            "DELETE FROM storm_members
             WHERE namespace = ?1 AND connection = ?2 AND customer_id = ?3
               AND window_start_ms < ?4",
        )
        .map_err(unavailable)?
        .execute(params![
            key.namespace,
            key.name,
            req.customer_id,
            window_start_ms
        ])
        .map_err(unavailable)?;
    }
    upsert(conn, &KEYED.storm_windows.upsert, writes.window_row)?;
    if let Some(row) = writes.member_row {
        upsert(conn, &KEYED.storm_members.upsert, row)?;
    }
    Ok(writes.admission)
}

/// `TicketRecord::Storm`, written with `complete`.
pub(super) fn write_noted(conn: &Connection, note: &StormNote<'_>) -> StoreResult<()> {
    let (key, customer_id) = (note.connection, note.customer_id);
    match window(conn, key, customer_id)? {
        Some(w) => write_window(conn, key, customer_id, &noted(&w, note.created, note.label)),
        None => Ok(()),
    }
}

pub(super) fn due_in(
    conn: &Connection,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> StoreResult<Vec<StormDue>> {
    let rows = query_rows(
        conn,
        "SELECT namespace, connection, customer_id, state FROM storm_windows
         WHERE close_due_ms IS NOT NULL AND close_due_ms <= ?1
         ORDER BY close_due_ms LIMIT ?2",
        params![now_ms, limit_param(limit)],
        |r| lease_to_close(r, now_ms, lease_ms),
    )?;
    let due: Vec<StormDue> = rows.into_iter().flatten().collect();
    for d in &due {
        write_window(conn, &d.connection, &d.customer_id, &d.window)?;
    }
    Ok(due)
}

pub(super) fn closed_in(
    conn: &Connection,
    key: &ConnectionKey,
    customer_id: &str,
    ticket_id: &str,
) -> StoreResult<()> {
    match window(conn, key, customer_id)?.and_then(|w| closed(&w, ticket_id)) {
        Some(w) => write_window(conn, key, customer_id, &w),
        None => Ok(()),
    }
}
