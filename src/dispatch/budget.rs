//! The per-connection PSA request budget (`dispatch.requestsPerHour`) and 429 pauses.
//!
//! Every PSA call the dispatcher makes for a connection first takes a token from the
//! connection's limiter (governor, GCRA). The burst is a twentieth of the hourly budget (three
//! minutes' worth), so a storm of alerts cannot spend the hour's budget in its first second and
//! then starve everything else; over any hour at most about 105% of the budget is spent. A PSA
//! answer with `Retry-After` pauses all calls of the connection until then.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use crate::psa::forward::{forward_ticket_desk, Around, Call};
use crate::psa::{PsaError, PsaResult, TicketDesk};

pub struct Budget {
    per_hour: u32,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
}

impl Budget {
    pub fn new(per_hour: u32) -> Self {
        let rate = NonZeroU32::new(per_hour.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((per_hour / 20).max(1)).unwrap_or(NonZeroU32::MIN);
        Budget {
            per_hour,
            limiter: RateLimiter::direct(Quota::per_hour(rate).allow_burst(burst)),
            paused_until: Mutex::new(None),
        }
    }

    pub fn per_hour(&self) -> u32 {
        self.per_hour
    }

    /// Waits for a pause to end and for a token.
    pub async fn acquire(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until).await;
        }
        self.limiter.until_ready().await;
    }

    /// Pauses every call of the connection for `d` (a PSA `Retry-After`); a longer pause wins.
    pub fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    /// The end of the current pause, if one is running.
    pub fn paused_until(&self) -> Option<Instant> {
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        match *p {
            Some(until) if until > Instant::now() => Some(until),
            _ => {
                *p = None;
                None
            }
        }
    }
}

/// The PSA of one connection as the worker uses it: every call waits for the budget, is
/// counted (PSA calls per event), and a `Retry-After` in an error pauses the connection.
#[derive(Clone)]
pub struct PsaCalls {
    psa: Arc<dyn TicketDesk>,
    budget: Arc<Budget>,
    calls: Arc<AtomicU32>,
}

impl PsaCalls {
    pub fn new(psa: Arc<dyn TicketDesk>, budget: Arc<Budget>) -> Self {
        PsaCalls {
            psa,
            budget,
            calls: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Calls made through this handle so far.
    pub fn count(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Every call waits for the budget and is counted; a `Retry-After` in its error pauses the
/// connection. Reads and writes alike.
impl Around for PsaCalls {
    async fn read<T: Send>(&self, _method: &'static str, call: Call<'_, T>) -> PsaResult<T> {
        self.budget.acquire().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let r = call.await;
        if let Err(e) = &r {
            if let Some(ra) = e.retry_after() {
                self.budget.pause_for(ra);
            }
        }
        r
    }
}

// The dispatcher's PSA: the `TicketDesk` calls, each behind the connection's budget; those with
// a default in the trait too (see `psa::forward`).
forward_ticket_desk!(PsaCalls => psa);

/// A failed PSA call that should not count against the event (the budget was the problem).
pub fn is_rate_limited(e: &PsaError) -> bool {
    matches!(
        e,
        PsaError::Transient {
            status: Some(429),
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pause_holds_calls_until_retry_after() {
        let b = Budget::new(1_000_000);
        b.acquire().await;
        b.pause_for(Duration::from_secs(7));
        b.pause_for(Duration::from_secs(2)); // a shorter pause does not shorten the running one
        let start = Instant::now();
        b.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
        assert!(b.paused_until().is_none());
    }

    #[test]
    fn burst_is_a_twentieth_of_the_hour() {
        let b = Budget::new(1500);
        let mut granted = 0;
        while b.limiter.check().is_ok() && granted < 1000 {
            granted += 1;
        }
        assert_eq!(granted, 75);
        let tiny = Budget::new(1);
        assert!(tiny.limiter.check().is_ok());
        assert!(tiny.limiter.check().is_err());
    }
}
