//! The per-endpoint call budget (Kaseya: 1,500 calls per hour per endpoint on API v2).
//!
//! "Endpoint" is read as the path template without the method (`/v2/servicedesk/tickets/{id}`):
//! numeric segments are ids. Counting GET and POST of one path together, and every id of one
//! template together, errs on the strict side. Named segments stay apart (the lookup tables
//! `tenantlookup/TicketType` and `tenantlookup/TicketSource` each get a budget); each is read
//! once per settings resolution, far below any limit.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::RateBudget;
use crate::psa::PsaError;

/// Never wait for budget in more than this many slices (the wait shrinks each time).
const MAX_WAIT_ROUNDS: usize = 4;

pub struct Budget {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    config: RateBudget,
}

impl Budget {
    pub fn new(config: RateBudget) -> Self {
        let quota = quota(config);
        Budget {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            config,
        }
    }

    /// Takes one call from the endpoint's budget, waiting up to `max_wait` for it. When the wait
    /// would be longer, fails as transient with the time to wait, without calling the PSA.
    pub async fn acquire(&self, endpoint: &str) -> Result<(), PsaError> {
        let key = endpoint.to_string();
        for _ in 0..MAX_WAIT_ROUNDS {
            match self.limiter.check_key(&key) {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    if wait > self.config.max_wait {
                        return Err(spent(endpoint, self.config, wait));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(spent(endpoint, self.config, self.config.max_wait))
    }
}

fn spent(endpoint: &str, config: RateBudget, wait: Duration) -> PsaError {
    PsaError::Transient {
        status: None,
        message: format!(
            "the call budget for {endpoint} ({} calls per hour) is spent; next call in {}s",
            config.calls_per_hour,
            wait.as_secs().max(1)
        ),
        retry_after: Some(wait),
    }
}

/// `burst` calls at once, then one call every `3600 s / (calls_per_hour - burst)`: any rolling
/// hour holds at most `calls_per_hour` calls.
pub fn quota(config: RateBudget) -> Quota {
    let per_hour = config.calls_per_hour.max(1);
    let burst = config.burst.clamp(1, per_hour);
    let refill = (per_hour - burst).max(1);
    let period = Duration::from_secs(3600) / refill;
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// The endpoint a path belongs to: query dropped, numeric segments replaced by `{id}`.
pub fn endpoint_of(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segments: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect();
    segments.join("/").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_group_ids_and_drop_queries() {
        let table = [
            ("/v2/servicedesk/tickets", "/v2/servicedesk/tickets"),
            (
                "/v2/servicedesk/tickets/123",
                "/v2/servicedesk/tickets/{id}",
            ),
            (
                "/v2/servicedesk/tickets/123/notes",
                "/v2/servicedesk/tickets/{id}/notes",
            ),
            (
                "/v2/crm/accounts/summary?Filter.AccountCode=C1",
                "/v2/crm/accounts/summary",
            ),
            (
                "/v2/system/issuetypes/9/issuesubtypes/lookup",
                "/v2/system/issuetypes/{id}/issuesubtypes/lookup",
            ),
            (
                "/v2/system/tenantlookup/TicketType",
                "/v2/system/tenantlookup/tickettype",
            ),
        ];
        for (path, want) in table {
            assert_eq!(endpoint_of(path), want, "{path}");
        }
    }

    #[tokio::test]
    async fn budget_is_per_endpoint_and_refuses_beyond_max_wait() {
        let b = Budget::new(RateBudget {
            calls_per_hour: 3,
            burst: 3,
            max_wait: Duration::ZERO,
        });
        for _ in 0..3 {
            b.acquire("/a").await.unwrap();
        }
        let e = b.acquire("/a").await.unwrap_err();
        assert!(e.is_transient());
        let wait = e.retry_after().unwrap();
        assert!(
            wait > Duration::from_secs(60) && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );
        // Another endpoint has its own budget.
        b.acquire("/b").await.unwrap();
    }

    #[tokio::test]
    async fn a_short_wait_for_budget_is_waited_out() {
        // One call at once, then one every 100 ms.
        let b = Budget::new(RateBudget {
            calls_per_hour: 36_001,
            burst: 1,
            max_wait: Duration::from_secs(30),
        });
        let start = std::time::Instant::now();
        b.acquire("/a").await.unwrap();
        b.acquire("/a").await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn default_quota_never_exceeds_1500_in_an_hour() {
        let q = quota(RateBudget::default());
        let burst = q.burst_size().get();
        let refill = Duration::from_secs(3600).as_secs_f64() / q.replenish_interval().as_secs_f64();
        assert_eq!(burst, 100);
        assert!(
            f64::from(burst) + refill <= 1500.0 + 1e-6,
            "{burst} + {refill}"
        );
    }
}
