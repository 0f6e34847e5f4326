//! The storm breaker's state in PostgreSQL (`decide::storm` applied inside one transaction;
//! the customer's row is locked, so replicas admit one group at a time per customer).

use deadpool_postgres::Transaction;

use super::{exec, get, query, query_opt};
use crate::dispatch::decide::storm::{
    admit, closable, closed, noted, Admission, AdmitRequest, Member, StormWindow,
};
use crate::dispatch::store::storm::{close_due_ms, decode, encode};
use crate::dispatch::store::{StoreResult, StormDue};
use crate::resolved::ConnectionKey;

/// The customer's state, its row locked until the transaction ends (`lock`).
pub(super) async fn window(
    tx: &Transaction<'_>,
    key: &ConnectionKey,
    customer_id: &str,
    lock: bool,
) -> StoreResult<Option<StormWindow>> {
    let sql = if lock {
        "SELECT state FROM psa_storm_windows
         WHERE namespace = $1 AND connection = $2 AND customer_id = $3 FOR UPDATE"
    } else {
        "SELECT state FROM psa_storm_windows
         WHERE namespace = $1 AND connection = $2 AND customer_id = $3"
    };
    let row = query_opt(tx, sql, &[&key.namespace, &key.name, &customer_id]).await?;
    match row {
        Some(r) => Ok(Some(decode(&get::<String>(&r, 0)?)?)),
        None => Ok(None),
    }
}

async fn write_window(
    tx: &Transaction<'_>,
    key: &ConnectionKey,
    customer_id: &str,
    w: &StormWindow,
) -> StoreResult<()> {
    exec(
        tx,
        "INSERT INTO psa_storm_windows (namespace, connection, customer_id, state, close_due_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (namespace, connection, customer_id) DO UPDATE SET
           state = excluded.state, close_due_ms = excluded.close_due_ms",
        &[
            &key.namespace,
            &key.name,
            &customer_id,
            &encode(w),
            &close_due_ms(w),
        ],
    )
    .await
    .map(drop)
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
    let row = query_opt(
        tx,
        "SELECT state FROM psa_storm_windows
         WHERE namespace = $1 AND connection = $2 AND customer_id = $3 FOR UPDATE",
        &[&key.namespace, &key.name, &req.customer_id],
    )
    .await?;
    let before = match row {
        Some(r) => {
            let text: String = get(&r, 0)?;
            if text.is_empty() {
                None
            } else {
                Some(decode(&text)?)
            }
        }
        None => None,
    };
    let member = query_opt(
        tx,
        "SELECT window_start_ms, member FROM psa_storm_members
         WHERE namespace = $1 AND connection = $2 AND customer_id = $3 AND group_key = $4",
        &[&key.namespace, &key.name, &req.customer_id, &req.group_key],
    )
    .await?;
    let member = match member {
        Some(r) => Member::parse(&get::<String>(&r, 1)?).map(|m| (get::<i64>(&r, 0), m)),
        None => None,
    };
    let member = match member {
        Some((start, m)) => Some((start?, m)),
        None => None,
    };
    let (after, record, admission) = admit(before.as_ref(), member, req);
    if before
        .as_ref()
        .is_some_and(|b| b.window_start_ms != after.window_start_ms)
    {
        exec(
            tx,
            "DELETE FROM psa_storm_members
             WHERE namespace = $1 AND connection = $2 AND customer_id = $3
               AND window_start_ms < $4",
            &[
                &key.namespace,
                &key.name,
                &req.customer_id,
                &after.window_start_ms,
            ],
        )
        .await?;
    }
    write_window(tx, key, &req.customer_id, &after).await?;
    if let Some(m) = record {
        exec(
            tx,
            "INSERT INTO psa_storm_members
               (namespace, connection, customer_id, group_key, window_start_ms, member)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (namespace, connection, customer_id, group_key) DO UPDATE SET
               window_start_ms = excluded.window_start_ms, member = excluded.member",
            &[
                &key.namespace,
                &key.name,
                &req.customer_id,
                &req.group_key,
                &after.window_start_ms,
                &m.as_str(),
            ],
        )
        .await?;
    }
    Ok(admission)
}

/// `TicketRecord::Storm`, written with `complete`.
pub(super) async fn write_noted(
    tx: &Transaction<'_>,
    key: &ConnectionKey,
    customer_id: &str,
    created: Option<&str>,
    label: &str,
) -> StoreResult<()> {
    match window(tx, key, customer_id, true).await? {
        Some(w) => write_window(tx, key, customer_id, &noted(&w, created, label)).await,
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
    let mut out = vec![];
    for r in rows {
        let connection = ConnectionKey::new(get::<String>(&r, 0)?, get::<String>(&r, 1)?);
        let customer_id: String = get(&r, 2)?;
        let mut w = decode(&get::<String>(&r, 3)?)?;
        if !closable(&w, now_ms) {
            continue;
        }
        w.closing_until_ms = Some(now_ms + lease_ms);
        write_window(tx, &connection, &customer_id, &w).await?;
        out.push(StormDue {
            connection,
            customer_id,
            window: w,
        });
    }
    Ok(out)
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
