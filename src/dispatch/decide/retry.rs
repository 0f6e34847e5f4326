//! What to do after a failed attempt: retry when, or give up.
//!
//! Transient failures (timeouts, 5xx, 429) are retried with exponential backoff and full jitter
//! up to `dispatch.maxAttempts`; a PSA `Retry-After` is a floor for the next try. Permanent
//! failures (validation, auth, not found) cannot succeed by repeating the same request, so they
//! do not burn the retry budget: the event goes to the failsafe at once.

use std::time::Duration;

use crate::psa::PsaError;

/// Longest pause between two attempts, whatever the attempt count.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// After a failed attempt number `attempts` (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    RetryIn(Duration),
    GiveUp,
}

/// `jitter` is a number in [0, 1) drawn by the caller (kept out so the table test is exact).
pub fn after_failure(
    error: &PsaError,
    attempts: u32,
    max_attempts: u32,
    initial_backoff: Duration,
    jitter: f64,
) -> AfterFailure {
    if !error.is_transient() || attempts >= max_attempts.max(1) {
        return AfterFailure::GiveUp;
    }
    let backoff = backoff(attempts, initial_backoff, jitter);
    let wait = match error.retry_after() {
        Some(ra) => backoff.max(ra.min(MAX_BACKOFF)),
        None => backoff,
    };
    AfterFailure::RetryIn(wait)
}

/// Exponential backoff with jitter: the ceiling doubles per attempt (initial × 2^(n-1), capped);
/// the wait is drawn from the upper half of it so a retry never comes immediately, and many
/// events failing together spread out.
pub fn backoff(attempts: u32, initial: Duration, jitter: f64) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let ceiling = initial
        .saturating_mul(1u32 << exp)
        .min(MAX_BACKOFF)
        .max(Duration::from_millis(1));
    let jitter = jitter.clamp(0.0, 1.0);
    ceiling.mul_f64(0.5 + 0.5 * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(retry_after: Option<u64>) -> PsaError {
        PsaError::Transient {
            status: Some(503),
            message: "busy".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn retry_table() {
        let s = Duration::from_secs;
        let permanent = PsaError::Permanent {
            status: Some(400),
            message: "summary too long".into(),
        };
        let auth = PsaError::Auth {
            status: Some(401),
            message: "no".into(),
        };
        use AfterFailure::*;
        // (error, attempts so far, max attempts, jitter, expected)
        let table: Vec<(PsaError, u32, u32, f64, AfterFailure)> = vec![
            (transient(None), 1, 5, 0.0, RetryIn(s(1))),
            (transient(None), 1, 5, 1.0, RetryIn(s(2))),
            (transient(None), 2, 5, 0.0, RetryIn(s(2))),
            (
                transient(None),
                3,
                5,
                0.5,
                RetryIn(Duration::from_millis(6000)),
            ),
            (transient(None), 5, 5, 0.0, GiveUp),
            (transient(None), 9, 5, 0.0, GiveUp),
            // Retry-After is a floor, never shortens the backoff.
            (transient(Some(30)), 1, 5, 0.0, RetryIn(s(30))),
            (transient(Some(1)), 3, 5, 0.0, RetryIn(s(4))),
            // Permanent errors never retry, even on the first attempt.
            (permanent, 1, 5, 0.0, GiveUp),
            (auth, 1, 5, 0.0, GiveUp),
            (
                PsaError::NotFound {
                    message: "x".into(),
                },
                1,
                5,
                0.0,
                GiveUp,
            ),
            // Large attempt counts cap instead of overflowing.
            (transient(None), 40, 100, 1.0, RetryIn(MAX_BACKOFF)),
        ];
        for (err, attempts, max, jitter, want) in table {
            assert_eq!(
                after_failure(&err, attempts, max, s(2), jitter),
                want,
                "{err} #{attempts}/{max} j={jitter}"
            );
        }
    }

    #[test]
    fn backoff_grows_and_stays_in_its_band() {
        let initial = Duration::from_millis(100);
        let mut last_ceiling = Duration::ZERO;
        for n in 1..=12 {
            let lo = backoff(n, initial, 0.0);
            let hi = backoff(n, initial, 0.999_999);
            assert!(lo >= last_ceiling / 2, "attempt {n}");
            assert!(hi >= lo && hi <= MAX_BACKOFF);
            last_ceiling = hi;
        }
    }
}
