//! The `PsaBudget` condition of a connection: how much of a request budget the PSA shares with
//! the MSP's other integrations is used (Autotask: the database's 10,000 requests per hour), so
//! an operator sees why tickets slow down or wait before Autotask refuses everyone at 100 %.
//!
//! It is informational: a low budget never makes the connection un-Ready, because the client
//! holds its calls (events wait and are retried) rather than failing them.

use crate::psa::SharedBudget;

/// Reason while the share used is below the point where the PSA slows down.
pub const BUDGET_AVAILABLE: &str = "BudgetAvailable";
/// Reason from the point where the PSA slows down (and, further up, our calls are held).
pub const SHARED_BUDGET_LOW: &str = "SharedBudgetLow";

/// (status, reason, message) of the `PsaBudget` condition for a reading.
pub fn budget_condition(provider: &str, b: &SharedBudget) -> (bool, &'static str, String) {
    let used = percent(b.used);
    let of = match b.per_hour {
        Some(n) => format!("{n} requests per hour"),
        None => "hourly request threshold".to_string(),
    };
    let head = format!(
        "{provider} reports {used} % of its {of} used, counting the MSP's other integrations"
    );
    if b.used >= b.held_at {
        (
            false,
            SHARED_BUDGET_LOW,
            format!(
                "{head}; from {} % this connection holds its calls (alerts wait and are retried) until the use falls",
                percent(b.held_at)
            ),
        )
    } else if b.used >= b.slows_at {
        (
            false,
            SHARED_BUDGET_LOW,
            format!(
                "{head}; {provider} slows answers from {} % and this connection holds its calls from {} %",
                percent(b.slows_at),
                percent(b.held_at)
            ),
        )
    } else {
        (true, BUDGET_AVAILABLE, head)
    }
}

/// A share (0–1) as a whole percentage, rounded down so 89.9 % never reads as the 90 % hold.
fn percent(share: f64) -> u64 {
    (share.max(0.0) * 100.0 + 1e-9).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(used: f64, per_hour: Option<u64>) -> SharedBudget {
        SharedBudget {
            used,
            slows_at: 0.5,
            held_at: 0.9,
            per_hour,
        }
    }

    #[test]
    fn the_condition_follows_the_share_used() {
        let table = [
            (
                0.0,
                true,
                BUDGET_AVAILABLE,
                "0 % of its 10000 requests per hour",
            ),
            (0.499, true, BUDGET_AVAILABLE, "49 %"),
            (0.5, false, SHARED_BUDGET_LOW, "slows answers from 50 %"),
            (0.899, false, SHARED_BUDGET_LOW, "89 %"),
            (0.9, false, SHARED_BUDGET_LOW, "holds its calls"),
            (0.95, false, SHARED_BUDGET_LOW, "95 % of its 10000"),
            (1.2, false, SHARED_BUDGET_LOW, "120 %"),
        ];
        for (used, ok, reason, says) in table {
            let (got_ok, got_reason, message) =
                budget_condition("Autotask", &at(used, Some(10_000)));
            assert_eq!((got_ok, got_reason), (ok, reason), "{used}: {message}");
            assert!(message.contains(says), "{used}: {message}");
            assert!(message.contains("other integrations"), "{message}");
        }
    }

    #[test]
    fn an_unknown_threshold_is_named_generically() {
        let (_, _, message) = budget_condition("Autotask", &at(0.3, None));
        assert!(
            message.contains("30 % of its hourly request threshold"),
            "{message}"
        );
    }
}
