//! The storm breaker's state in SQLite (`decide::storm` applied inside the store's
//! transactions; one writer thread serialises them).

use rusqlite::{params, Connection, OptionalExtension};

use super::unavailable;
use crate::dispatch::decide::storm::{
    admit, closable, closed, noted, Admission, AdmitRequest, Member, StormWindow,
};
use crate::dispatch::store::storm::{close_due_ms, decode, encode};
use crate::dispatch::store::{StoreResult, StormDue};
use crate::resolved::ConnectionKey;

pub(super) const SCHEMA: &str = "
-- Storm breaker: one row per (connection, customer) with its window and roll-up (JSON), and
-- when the roll-up may close (indexed for the sweep).
CREATE TABLE IF NOT EXISTS storm_windows (
    namespace    TEXT NOT NULL,
    connection   TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    state        TEXT NOT NULL,
    close_due_ms INTEGER,
    PRIMARY KEY (namespace, connection, customer_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS storm_windows_due ON storm_windows (close_due_ms)
    WHERE close_due_ms IS NOT NULL;
-- Which groups of a customer's current window got a ticket or went to the roll-up.
CREATE TABLE IF NOT EXISTS storm_members (
    namespace       TEXT    NOT NULL,
    connection      TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    group_key       TEXT    NOT NULL,
    window_start_ms INTEGER NOT NULL,
    member          TEXT    NOT NULL,
    PRIMARY KEY (namespace, connection, customer_id, group_key)
) WITHOUT ROWID;
";

pub(super) fn window(
    conn: &Connection,
    key: &ConnectionKey,
    customer_id: &str,
) -> StoreResult<Option<StormWindow>> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT state FROM storm_windows
             WHERE namespace = ?1 AND connection = ?2 AND customer_id = ?3",
        )
        .map_err(unavailable)?
        .query_row(params![key.namespace, key.name, customer_id], |r| r.get(0))
        .optional()
        .map_err(unavailable)?;
    text.as_deref().map(decode).transpose()
}

fn write_window(
    conn: &Connection,
    key: &ConnectionKey,
    customer_id: &str,
    w: &StormWindow,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO storm_windows (namespace, connection, customer_id, state, close_due_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (namespace, connection, customer_id) DO UPDATE SET
           state = excluded.state, close_due_ms = excluded.close_due_ms",
    )
    .map_err(unavailable)?
    .execute(params![
        key.namespace,
        key.name,
        customer_id,
        encode(w),
        close_due_ms(w)
    ])
    .map(drop)
    .map_err(unavailable)
}

pub(super) fn admit_in(conn: &Connection, req: &AdmitRequest) -> StoreResult<Admission> {
    let key = &req.connection;
    let before = window(conn, key, &req.customer_id)?;
    let member: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT window_start_ms, member FROM storm_members
             WHERE namespace = ?1 AND connection = ?2 AND customer_id = ?3 AND group_key = ?4",
        )
        .map_err(unavailable)?
        .query_row(
            params![key.namespace, key.name, req.customer_id, req.group_key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let member = member.and_then(|(start, m)| Member::parse(&m).map(|m| (start, m)));
    let (after, record, admission) = admit(before.as_ref(), member, req);
    if before
        .as_ref()
        .is_some_and(|b| b.window_start_ms != after.window_start_ms)
    {
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
            after.window_start_ms
        ])
        .map_err(unavailable)?;
    }
    write_window(conn, key, &req.customer_id, &after)?;
    if let Some(m) = record {
        conn.prepare_cached(
            "INSERT INTO storm_members
               (namespace, connection, customer_id, group_key, window_start_ms, member)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (namespace, connection, customer_id, group_key) DO UPDATE SET
               window_start_ms = excluded.window_start_ms, member = excluded.member",
        )
        .map_err(unavailable)?
        .execute(params![
            key.namespace,
            key.name,
            req.customer_id,
            req.group_key,
            after.window_start_ms,
            m.as_str()
        ])
        .map_err(unavailable)?;
    }
    Ok(admission)
}

/// `TicketRecord::Storm`, written with `complete`.
pub(super) fn write_noted(
    conn: &Connection,
    key: &ConnectionKey,
    customer_id: &str,
    created: Option<&str>,
    label: &str,
) -> StoreResult<()> {
    match window(conn, key, customer_id)? {
        Some(w) => write_window(conn, key, customer_id, &noted(&w, created, label)),
        None => Ok(()),
    }
}

pub(super) fn due_in(
    conn: &Connection,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> StoreResult<Vec<StormDue>> {
    let rows: Vec<(String, String, String, String)> = conn
        .prepare_cached(
            "SELECT namespace, connection, customer_id, state FROM storm_windows
             WHERE close_due_ms IS NOT NULL AND close_due_ms <= ?1
             ORDER BY close_due_ms LIMIT ?2",
        )
        .map_err(unavailable)?
        .query_map(
            params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut out = vec![];
    for (ns, name, customer_id, state) in rows {
        let mut w = decode(&state)?;
        if !closable(&w, now_ms) {
            continue;
        }
        w.closing_until_ms = Some(now_ms + lease_ms);
        let connection = ConnectionKey::new(&ns, &name);
        write_window(conn, &connection, &customer_id, &w)?;
        out.push(StormDue {
            connection,
            customer_id,
            window: w,
        });
    }
    Ok(out)
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
