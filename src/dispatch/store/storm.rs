//! What both backends share of the storm breaker's state: its row encoding. The rules are
//! `decide::storm`; each backend applies them inside one transaction.

use super::rows::Columns;
use super::tables::StoredValue::{self, Int, OptInt, Text};
use super::{StoreError, StoreResult, StormDue};
use crate::dispatch::decide::storm::{
    admit, closable, Admission, AdmitRequest, Member, StormWindow,
};
use crate::resolved::ConnectionKey;

/// The state as stored (JSON text).
pub(crate) fn encode(w: &StormWindow) -> String {
    serde_json::to_string(w).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn decode(text: &str) -> StoreResult<StormWindow> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("storm state: {e}")))
}

/// A stored state; empty text is a row created only to be locked (PostgreSQL's first
/// admission of a customer), which holds no window yet.
pub(crate) fn decode_stored(text: &str) -> StoreResult<Option<StormWindow>> {
    if text.is_empty() {
        return Ok(None);
    }
    decode(text).map(Some)
}

/// A group's membership of a window, read as `SELECT window_start_ms, member`; an unknown
/// member text counts as none.
pub(crate) fn membership(row: &impl Columns) -> StoreResult<Option<(i64, Member)>> {
    let start = row.int(0)?;
    Ok(Member::parse(&row.text(1)?).map(|m| (start, m)))
}

/// What recording an admission writes, decided by `decide::storm::admit` from what the
/// backend read: the customer's window and the group's membership (`None`: none recorded).
pub(crate) struct AdmitWrites {
    pub admission: Admission,
    /// A new window starting at this time voids the memberships of the old one.
    pub void_members_before: Option<i64>,
    /// The customer's `tables::STORM_WINDOWS` row.
    pub window_row: Vec<StoredValue>,
    /// The group's `tables::STORM_MEMBERS` row, when the admission records one.
    pub member_row: Option<Vec<StoredValue>>,
}

pub(crate) fn admit_writes(
    req: &AdmitRequest,
    before: Option<StormWindow>,
    member: Option<(i64, Member)>,
) -> AdmitWrites {
    let (after, record, admission) = admit(before.as_ref(), member, req);
    let new_window = before.is_some_and(|b| b.window_start_ms != after.window_start_ms);
    AdmitWrites {
        admission,
        void_members_before: new_window.then_some(after.window_start_ms),
        window_row: window_row(&req.connection, &req.customer_id, &after),
        member_row: record.map(|m| member_row(req, after.window_start_ms, m)),
    }
}

/// A roll-up read as `SELECT namespace, connection, customer_id, state` by the closing
/// sweep: when it may close at `now_ms`, its window leased to this sweep for `lease_ms` (the
/// caller writes it back); `None` when it may not close yet.
pub(crate) fn lease_to_close(
    row: &impl Columns,
    now_ms: i64,
    lease_ms: i64,
) -> StoreResult<Option<StormDue>> {
    let mut window = decode(&row.text(3)?)?;
    if !closable(&window, now_ms) {
        return Ok(None);
    }
    window.closing_until_ms = Some(now_ms + lease_ms);
    Ok(Some(StormDue {
        connection: ConnectionKey::new(row.text(0)?, row.text(1)?),
        customer_id: row.text(2)?,
        window,
    }))
}

/// A customer's `tables::STORM_WINDOWS` row.
pub(crate) fn window_row(
    key: &ConnectionKey,
    customer_id: &str,
    w: &StormWindow,
) -> Vec<StoredValue> {
    vec![
        Text(key.namespace.clone()),
        Text(key.name.clone()),
        Text(customer_id.to_string()),
        Text(encode(w)),
        OptInt(close_due_ms(w)),
    ]
}

/// The `tables::STORM_MEMBERS` row of the requesting group in the window starting at
/// `window_start_ms`.
fn member_row(req: &AdmitRequest, window_start_ms: i64, member: Member) -> Vec<StoredValue> {
    vec![
        Text(req.connection.namespace.clone()),
        Text(req.connection.name.clone()),
        Text(req.customer_id.clone()),
        Text(req.group_key.clone()),
        Int(window_start_ms),
        Text(member.as_str().to_string()),
    ]
}

/// The indexed column `storm_due` scans: when the open roll-up may close (a quiet window
/// after the last alert added to it, or after a closing sweep's lease); `None` without one.
pub(crate) fn close_due_ms(w: &StormWindow) -> Option<i64> {
    w.rollup_ticket_id.as_ref()?;
    let quiet = w.last_overflow_ms.map_or(0, |t| t + w.per_ms);
    Some(quiet.max(w.closing_until_ms.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::decide::storm::closable;

    #[test]
    fn close_due_agrees_with_closable() {
        let base = StormWindow {
            per_ms: 1000,
            rollup_ticket_id: Some("R1".into()),
            last_overflow_ms: Some(500),
            ..Default::default()
        };
        for closing in [None, Some(1200), Some(2000)] {
            let w = StormWindow {
                closing_until_ms: closing,
                ..base.clone()
            };
            let due = close_due_ms(&w).unwrap();
            assert!(closable(&w, due) && !closable(&w, due - 1), "{closing:?}");
        }
        assert_eq!(close_due_ms(&StormWindow::default()), None);
        let w = StormWindow {
            creating: Some(("k".into(), 9)),
            ..base
        };
        assert_eq!(decode(&encode(&w)).unwrap(), w);
        assert!(decode("[").is_err());
    }
}
