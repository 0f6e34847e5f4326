//! The row model both backends share: which columns a stored event is read from, how every
//! stored record is decoded, and the values both dialects bind alike. A backend only says how
//! to read one column of its own row type ([`Columns`]: rusqlite and tokio-postgres differ, and
//! SQLite keeps booleans as integers); the decoding after that is written once, here.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    ConnectionCounters, EventState, GroupLifecycle, GroupTicket, ReadyLane, StoreError,
    StoreResult, StoredEvent,
};
use crate::dispatch::event::Envelope;
use crate::resolved::ConnectionKey;

/// The columns [`event`] reads, in its order (both backends' event tables have them).
pub(crate) const EVENT_COLUMNS: &str = "seq, group_key, body, state, attempts, \
                                        next_attempt_at_ms, last_error, failsafe_sent, \
                                        finished_at_ms, claims, failsafe_next_at_ms, \
                                        failsafe_error";

/// `state` as stored: queued, done, dead letter.
pub(crate) const STATE_QUEUED: i64 = 0;
pub(crate) const STATE_DONE: i64 = 1;
pub(crate) const STATE_DEAD: i64 = 2;

/// A lane: (namespace, connection, group key).
pub(crate) type Lane = (String, String, String);

/// One column of a backend's result row, by position. A value of the wrong type is an error
/// of the backend's choosing (the row is not what the schema says).
pub(crate) trait Columns {
    fn int(&self, i: usize) -> StoreResult<i64>;
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>>;
    fn text(&self, i: usize) -> StoreResult<String>;
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    fn flag(&self, i: usize) -> StoreResult<bool>;
}

/// A stored count as the API's `u32` (a count beyond it reads as the maximum).
fn count(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn event_state(seq: i64, code: i64) -> StoreResult<EventState> {
    match code {
        STATE_QUEUED => Ok(EventState::Queued),
        STATE_DONE => Ok(EventState::Done),
        STATE_DEAD => Ok(EventState::DeadLetter),
        other => Err(StoreError::Corrupt(format!(
            "event {seq}: unknown state {other}"
        ))),
    }
}

/// An event read as `SELECT {EVENT_COLUMNS}`.
pub(crate) fn event(row: &impl Columns) -> StoreResult<StoredEvent> {
    let seq = row.int(0)?;
    let envelope: Envelope = serde_json::from_str(&row.text(2)?)
        .map_err(|e| StoreError::Corrupt(format!("event {seq}: {e}")))?;
    Ok(StoredEvent {
        seq,
        group_key: row.text(1)?,
        envelope,
        state: event_state(seq, row.int(3)?)?,
        attempts: count(row.int(4)?),
        next_attempt_at_ms: row.int(5)?,
        last_error: row.opt_text(6)?,
        failsafe_sent: row.flag(7)?,
        finished_at_ms: row.opt_int(8)?,
        claims: count(row.int(9)?),
        failsafe_next_at_ms: row.opt_int(10)?,
        failsafe_error: row.opt_text(11)?,
    })
}

/// What a claim of the lane whose head is `seq` hands out: the queued events found with that
/// seq (one); none means the lane row names an event that is not queued.
pub(crate) fn claimed_head(
    seq: i64,
    mut found: Vec<StoredEvent>,
) -> StoreResult<Option<StoredEvent>> {
    match found.pop() {
        Some(ev) => Ok(Some(ev)),
        None => Err(StoreError::Corrupt(format!(
            "lane head {seq} is not a queued event"
        ))),
    }
}

/// A lane read as `SELECT namespace, connection, group_key`.
pub(crate) fn lane(row: &impl Columns) -> StoreResult<Lane> {
    Ok((row.text(0)?, row.text(1)?, row.text(2)?))
}

/// A ready lane of any connection, read as `SELECT namespace, connection, group_key,
/// ready_at_ms`.
pub(crate) fn ready_lane(row: &impl Columns) -> StoreResult<ReadyLane> {
    Ok(ReadyLane {
        connection: ConnectionKey::new(row.text(0)?, row.text(1)?),
        group_key: row.text(2)?,
        ready_at_ms: row.int(3)?,
    })
}

/// A ready lane of `connection`, read as `SELECT group_key, ready_at_ms`.
pub(crate) fn ready_lane_of(
    connection: &ConnectionKey,
    row: &impl Columns,
) -> StoreResult<ReadyLane> {
    Ok(ReadyLane {
        connection: connection.clone(),
        group_key: row.text(0)?,
        ready_at_ms: row.int(1)?,
    })
}

/// Read as `SELECT ticket_id, open, updated_at_ms`.
pub(crate) fn group_ticket(row: &impl Columns) -> StoreResult<GroupTicket> {
    Ok(GroupTicket {
        ticket_id: row.text(0)?,
        open: row.flag(1)?,
        updated_at_ms: row.int(2)?,
    })
}

/// Read as `SELECT ticket_id, status_id, firing`.
pub(crate) fn group_lifecycle(row: &impl Columns) -> StoreResult<GroupLifecycle> {
    Ok(GroupLifecycle {
        ticket_id: row.text(0)?,
        status_id: row.opt_text(1)?,
        firing: super::parse_firing(&row.text(2)?),
    })
}

/// Read as `SELECT accepted, pending, delivered, dead_letters` (sums in PostgreSQL, which
/// are NULL for an unknown connection: it counts zero, as no row does).
pub(crate) fn counters(row: Option<&impl Columns>) -> StoreResult<ConnectionCounters> {
    let column = |i: usize| -> StoreResult<u64> {
        let stored = match row {
            Some(r) => r.opt_int(i)?.unwrap_or(0),
            None => 0,
        };
        Ok(u64::try_from(stored).unwrap_or(0))
    };
    Ok(ConnectionCounters {
        accepted: column(0)?,
        pending: column(1)?,
        delivered: column(2)?,
        dead_letters: column(3)?,
    })
}

/// Changes to connections' counters, collected over a call and written once per connection:
/// [accepted, pending, delivered, dead letters].
#[derive(Debug, Default)]
pub(crate) struct CounterDeltas(BTreeMap<(String, String), [i64; 4]>);

impl CounterDeltas {
    pub(crate) fn add(&mut self, ns: &str, name: &str, delta: [i64; 4]) {
        let sums = self
            .0
            .entry((ns.to_string(), name.to_string()))
            .or_default();
        for (sum, d) in sums.iter_mut().zip(delta) {
            *sum += d;
        }
    }

    /// ((namespace, connection), deltas) in key order: rows are written in a fixed order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&(String, String), &[i64; 4])> {
        self.0.iter()
    }
}

/// Namespace and connection bound for an optional connection filter; empty strings select
/// every connection (the backends' filter conditions test for them).
pub(crate) fn connection_filter_params(connection: Option<&ConnectionKey>) -> (String, String) {
    match connection {
        Some(k) => (k.namespace.clone(), k.name.clone()),
        None => (String::new(), String::new()),
    }
}

/// A `LIMIT` as bound (both dialects take a 64-bit integer).
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A lease or delay in the stored unit, milliseconds.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of values by position, as a backend would hand them over.
    struct Values(Vec<Option<String>>);

    impl Values {
        fn of(values: &[Option<&str>]) -> Values {
            Values(values.iter().map(|v| v.map(str::to_string)).collect())
        }
    }

    impl Columns for Values {
        fn int(&self, i: usize) -> StoreResult<i64> {
            self.opt_int(i)?
                .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
        }
        fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
            self.0[i]
                .as_deref()
                .map(|v| v.parse().map_err(|_| StoreError::Corrupt(v.into())))
                .transpose()
        }
        fn text(&self, i: usize) -> StoreResult<String> {
            self.opt_text(i)?
                .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
        }
        fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
            Ok(self.0[i].clone())
        }
        fn flag(&self, i: usize) -> StoreResult<bool> {
            Ok(self.int(i)? != 0)
        }
    }

    #[test]
    fn an_unknown_state_or_body_is_corrupt_and_names_the_event() {
        let stored = crate::dispatch::store::conformance::new_event("acme", "a1", "k", 0);
        let body = serde_json::to_string(&stored.envelope).unwrap();
        let row = |state: &str, body: &str| {
            Values::of(&[
                Some("7"),
                Some("k"),
                Some(body),
                Some(state),
                Some("0"),
                Some("0"),
                None,
                Some("0"),
                None,
                Some("1"),
                None,
                None,
            ])
        };
        let queued = event(&row("0", &body)).unwrap();
        assert_eq!(
            (queued.seq, queued.state, queued.envelope),
            (7, EventState::Queued, stored.envelope)
        );
        let err = event(&row("9", &body)).unwrap_err();
        assert_eq!(
            err,
            StoreError::Corrupt("event 7: unknown state 9".into()),
            "{err:?}"
        );
        let err = event(&row("0", "not json")).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.starts_with("event 7: ")),
            "{err:?}"
        );
    }

    #[test]
    fn counters_of_an_unknown_connection_are_zero_and_negative_sums_clamp() {
        assert_eq!(
            counters(None::<&Values>).unwrap(),
            ConnectionCounters::default()
        );
        let sums = Values::of(&[Some("3"), Some("-1"), None, Some("2")]);
        assert_eq!(
            counters(Some(&sums)).unwrap(),
            ConnectionCounters {
                accepted: 3,
                pending: 0,
                delivered: 0,
                dead_letters: 2,
            }
        );
    }

    #[test]
    fn counter_deltas_add_up_per_connection_in_key_order() {
        let mut deltas = CounterDeltas::default();
        deltas.add("ns", "b", [1, 1, 0, 0]);
        deltas.add("ns", "a", [0, -1, 1, 0]);
        deltas.add("ns", "b", [0, -1, 0, 1]);
        let written: Vec<_> = deltas
            .iter()
            .map(|((_, name), d)| (name.as_str(), *d))
            .collect();
        assert_eq!(written, [("a", [0, -1, 1, 0]), ("b", [1, 0, 0, 1])]);
    }
}
