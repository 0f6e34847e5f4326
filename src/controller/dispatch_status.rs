//! `status.dispatch` of a PsaConnection from what the dispatcher counted: what `kubectl get`
//! shows in its TICKETS and DEAD LETTERS columns and `kubectl describe` under Dispatch
//! (the budget in force and the latest delivery failure).

use crate::api::{DeliveryFailure, DispatchCounters};
use crate::dispatch::stats::DispatchStats;

/// Longest failure message kept in status (the dispatcher's log has the rest).
const MAX_MESSAGE: usize = 512;

/// The status block for `stats` (the budget is the one the dispatcher applies; none until it
/// has scheduled the connection once).
pub fn dispatch_status(stats: &DispatchStats) -> DispatchCounters {
    DispatchCounters {
        accepted: stats.accepted,
        pending: stats.pending,
        tickets_created: stats.tickets_created,
        notes_added: stats.notes_added,
        alerts_rolled_up: stats.alerts_rolled_up,
        rollups_opened: stats.rollups_opened,
        failsafe_emails: stats.failsafe_emails,
        dead_letters: stats.dead_letters,
        requests_per_hour: stats.requests_per_hour,
        last_error: stats
            .last_error
            .as_ref()
            .map(|(time, message)| DeliveryFailure {
                time: time.clone(),
                message: super::context::truncate(message, MAX_MESSAGE),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_in_force_and_last_error_reach_status() {
        let stats = DispatchStats {
            tickets_created: 3,
            dead_letters: 1,
            requests_per_hour: Some(60),
            last_error: Some((
                "2026-12-02T23:00:00Z".into(),
                format!("PSA said 400: {}", "x".repeat(1000)),
            )),
            ..Default::default()
        };
        let st = dispatch_status(&stats);
        assert_eq!(st.requests_per_hour, Some(60));
        assert_eq!((st.tickets_created, st.dead_letters), (3, 1));
        let err = st.last_error.unwrap();
        assert_eq!(err.time, "2026-12-02T23:00:00Z");
        assert!(err.message.starts_with("PSA said 400: xxx"));
        assert_eq!(err.message.len(), MAX_MESSAGE);
        let quiet = dispatch_status(&DispatchStats::default());
        assert_eq!((quiet.last_error, quiet.requests_per_hour), (None, None));
    }
}
