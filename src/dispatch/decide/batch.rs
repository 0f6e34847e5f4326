//! `dispatch.groupWait`: alerts of one key arriving close together become one note.
//!
//! The head of a key's queue waits until `groupWait` after it was accepted; then it and the
//! alerts of the same key accepted within that window are handled together: the head opens the
//! ticket (or is part of the note) and the rest become one note. Only consecutive alerts batch,
//! so a finding or a resolution in between keeps its place in the order.

use std::time::Duration;

use crate::dispatch::decide::action::batchable;
use crate::dispatch::event::EventKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// Wait until this time (Unix ms) before handling the head.
    WaitUntil(i64),
    /// Handle this many events from the head of the queue together.
    Take(usize),
}

/// `queued`: (kind, accepted_at_ms) of the key's queued events, oldest first, head included.
pub fn batch(queued: &[(EventKind, i64)], group_wait: Duration, now_ms: i64) -> Batch {
    let Some(&(head_kind, head_at)) = queued.first() else {
        return Batch::Take(0);
    };
    if group_wait.is_zero() || !batchable(head_kind) {
        return Batch::Take(1);
    }
    let window_end =
        head_at.saturating_add(i64::try_from(group_wait.as_millis()).unwrap_or(i64::MAX));
    if now_ms < window_end {
        return Batch::WaitUntil(window_end);
    }
    let n = queued
        .iter()
        .take_while(|(kind, at)| batchable(*kind) && *at <= window_end)
        .count();
    Batch::Take(n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::*;

    #[test]
    fn batch_table() {
        let gw = Duration::from_secs(30);
        type Row<'a> = (&'a [(EventKind, i64)], Duration, i64, Batch);
        let table: Vec<Row> = vec![
            (&[], gw, 0, Batch::Take(0)),
            // No groupWait: one at a time.
            (&[(Alert, 0), (Alert, 1)], Duration::ZERO, 0, Batch::Take(1)),
            // Inside the window: wait for it to end.
            (&[(Alert, 1_000)], gw, 5_000, Batch::WaitUntil(31_000)),
            // Window over: everything accepted inside it.
            (
                &[
                    (Alert, 0),
                    (Alert, 10_000),
                    (AlertFiring, 30_000),
                    (Alert, 30_001),
                ],
                gw,
                40_000,
                Batch::Take(3),
            ),
            // A resolution in between stops the batch, keeping the order.
            (
                &[(Alert, 0), (AlertResolved, 1), (Alert, 2)],
                gw,
                40_000,
                Batch::Take(1),
            ),
            // Findings are never batched.
            (
                &[(FindingCreated, 0), (FindingCommented, 1)],
                gw,
                0,
                Batch::Take(1),
            ),
            (&[(AlertResolved, 0), (Alert, 1)], gw, 0, Batch::Take(1)),
        ];
        for (queued, gw, now, want) in table {
            assert_eq!(batch(queued, gw, now), want, "{queued:?} now={now}");
        }
    }
}
