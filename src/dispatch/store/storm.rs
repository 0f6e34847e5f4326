//! What both backends share of the storm breaker's state: its row encoding. The rules are
//! `decide::storm`; each backend applies them inside one transaction.

use super::{StoreError, StoreResult};
use crate::dispatch::decide::storm::StormWindow;

/// The state as stored (JSON text).
pub(crate) fn encode(w: &StormWindow) -> String {
    serde_json::to_string(w).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn decode(text: &str) -> StoreResult<StormWindow> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("storm state: {e}")))
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
