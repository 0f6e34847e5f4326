//! Autotask's limits, kept on our side before Autotask has to refuse us:
//!
//! * 10,000 requests per hour per **database**, shared with every other integration of the
//!   MSP: our own hourly budget is a share of it (default 50 %, leaving the rest to the others);
//! * `GET /V1.0/ThresholdInformation` tells how much of the database's hour is used by everyone:
//!   read at most once a minute (and at every credential check), and at or above
//!   `hold_at_share` (default 90 %) calls are held: a rate-limit error (429) with a
//!   `retry_after`, so the dispatcher waits without spending an alert's attempts instead of
//!   pushing the database to its 100 % refusal. At 100 % Autotask refuses every integration:
//!   then the error is an ordinary transient one, attempts are spent and the alert reaches the
//!   failsafe e-mail rather than waiting for the hour to roll over;
//! * at most 3 concurrent requests per endpoint (entity) per tracking identifier.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::wire::WThreshold;
use crate::psa::PsaError;

/// Autotask's documented hourly request threshold per database.
pub const DATABASE_REQUESTS_PER_HOUR: u32 = 10_000;

/// Share of the database's threshold from which Autotask itself adds latency to every answer.
pub const AUTOTASK_SLOWS_AT: f64 = 0.5;

/// How the client shares the database's budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutotaskLimits {
    /// Our own requests per rolling hour (default 5,000: half the database's threshold).
    pub requests_per_hour: u32,
    /// Concurrent requests per endpoint (Autotask allows 3 per tracking identifier).
    pub concurrent_per_endpoint: usize,
    /// Share of the database's threshold (0–1) at which we hold our calls.
    pub hold_at_share: f64,
    /// How often `ThresholdInformation` is read (at most).
    pub threshold_check_every: Duration,
    /// How long a call may wait for our own budget before it fails as transient.
    pub max_wait: Duration,
    /// The `retry_after` of a held call: Autotask counts in a rolling hour, so usage falls
    /// slowly; a minute lets the next reading see it.
    pub hold_retry_after: Duration,
}

impl Default for AutotaskLimits {
    fn default() -> Self {
        AutotaskLimits {
            requests_per_hour: DATABASE_REQUESTS_PER_HOUR / 2,
            concurrent_per_endpoint: 3,
            hold_at_share: 0.9,
            threshold_check_every: Duration::from_secs(60),
            max_wait: Duration::from_secs(10),
            hold_retry_after: Duration::from_secs(60),
        }
    }
}

/// The share (0–1) of the database's hourly threshold in use, from a `ThresholdInformation` answer.
pub fn database_share(t: &WThreshold) -> Option<f64> {
    let limit = t.external_request_threshold.filter(|l| *l > 0)?;
    let used = t.current_timeframe_request_count.unwrap_or(0).max(0);
    Some(used as f64 / limit as f64)
}

/// What to do with a call given the last reading of the database's use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdDecision {
    Go,
    /// Near the threshold: wait, leaving the rest to the other integrations.
    Hold {
        share: f64,
    },
    /// At or over the threshold: Autotask refuses everyone until the hour's use falls.
    Refused {
        share: f64,
    },
}

pub fn decide(share: Option<f64>, hold_at: f64) -> ThresholdDecision {
    match share {
        Some(s) if s >= 1.0 => ThresholdDecision::Refused { share: s },
        Some(s) if s >= hold_at => ThresholdDecision::Hold { share: s },
        _ => ThresholdDecision::Go,
    }
}

#[derive(Clone, Copy, Debug)]
struct Reading {
    share: Option<f64>,
    /// The database's threshold per hour, when the reading said.
    limit: Option<u64>,
    at: Instant,
}

pub struct Limits {
    config: AutotaskLimits,
    hourly: DefaultDirectRateLimiter,
    clock: DefaultClock,
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
    reading: Mutex<Option<Reading>>,
    /// One `ThresholdInformation` read at a time.
    pub(super) threshold_refresh: tokio::sync::Mutex<()>,
}

impl Limits {
    pub fn new(config: AutotaskLimits) -> Self {
        Limits {
            hourly: DefaultDirectRateLimiter::direct(hourly_quota(config.requests_per_hour)),
            clock: DefaultClock::default(),
            endpoints: Mutex::new(HashMap::new()),
            reading: Mutex::new(None),
            threshold_refresh: tokio::sync::Mutex::new(()),
            config,
        }
    }

    pub fn config(&self) -> AutotaskLimits {
        self.config
    }

    /// Waits for one of the endpoint's concurrent slots.
    pub async fn slot(&self, endpoint: &str) -> OwnedSemaphorePermit {
        let sem = {
            let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(endpoint.to_string())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.config.concurrent_per_endpoint.max(1)))
                })
                .clone()
        };
        // The semaphore is never closed.
        sem.acquire_owned()
            .await
            .expect("endpoint semaphore closed")
    }

    /// Takes one request from our hourly share, waiting up to `max_wait`.
    pub async fn hourly(&self) -> Result<(), PsaError> {
        loop {
            match self.hourly.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    if wait > self.config.max_wait {
                        return Err(PsaError::Transient {
                            status: None,
                            message: format!(
                                "this connection's share of the Autotask database budget ({} requests per hour) is spent; next request in {}s",
                                self.config.requests_per_hour,
                                wait.as_secs().max(1)
                            ),
                            retry_after: Some(wait),
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Whether the last reading is missing or older than `threshold_check_every`.
    pub fn reading_due(&self, now: Instant) -> bool {
        let r = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        r.is_none_or(|r| now.duration_since(r.at) >= self.config.threshold_check_every)
    }

    pub fn record(&self, share: Option<f64>, now: Instant) {
        let mut r = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        // A refusal says nothing about the threshold itself: keep the last one known.
        let limit = r.and_then(|r| r.limit);
        *r = Some(Reading {
            share,
            limit,
            at: now,
        });
    }

    /// Records a `ThresholdInformation` answer.
    pub fn record_threshold(&self, t: &WThreshold, now: Instant) {
        let limit = t
            .external_request_threshold
            .filter(|l| *l > 0)
            .and_then(|l| u64::try_from(l).ok());
        *self.reading.lock().unwrap_or_else(|p| p.into_inner()) = Some(Reading {
            share: database_share(t),
            limit,
            at: now,
        });
    }

    /// The last reading as a shared budget (status and metrics).
    pub fn shared_budget(&self) -> Option<crate::psa::SharedBudget> {
        let r = (*self.reading.lock().unwrap_or_else(|p| p.into_inner()))?;
        Some(crate::psa::SharedBudget {
            used: r.share?,
            slows_at: AUTOTASK_SLOWS_AT,
            held_at: self.config.hold_at_share,
            per_hour: r.limit,
        })
    }

    /// The last reading of the database's use (0–1), for status and metrics.
    pub fn share(&self) -> Option<f64> {
        self.reading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .and_then(|r| r.share)
    }

    /// Holds the call when the database is near its threshold (a 429: the caller waits
    /// without counting a failure), fails it when the database is at its threshold.
    pub fn check_threshold(&self) -> Result<(), PsaError> {
        let used = |share: f64| {
            format!(
                "the Autotask database has used {:.0} % of its hourly request threshold (shared with the MSP's other integrations)",
                share * 100.0
            )
        };
        match decide(self.share(), self.config.hold_at_share) {
            ThresholdDecision::Go => Ok(()),
            ThresholdDecision::Hold { share } => Err(PsaError::Transient {
                status: Some(429),
                message: format!(
                    "{}; holding requests from {:.0} % until the use falls",
                    used(share),
                    self.config.hold_at_share * 100.0
                ),
                retry_after: Some(self.config.hold_retry_after),
            }),
            ThresholdDecision::Refused { share } => Err(PsaError::Transient {
                status: None,
                message: format!(
                    "{}; Autotask refuses requests until the use falls",
                    used(share)
                ),
                retry_after: Some(self.config.hold_retry_after),
            }),
        }
    }
}

/// Any rolling hour holds at most `per_hour` requests, with a burst of a tenth of them.
fn hourly_quota(per_hour: u32) -> Quota {
    let per_hour = per_hour.max(1);
    let burst = (per_hour / 10).max(1);
    let refill = (per_hour - burst).max(1);
    let period = Duration::from_secs(3600) / refill;
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_share_decides_whether_calls_go() {
        let t = |limit: Option<i64>, used: Option<i64>| WThreshold {
            external_request_threshold: limit,
            current_timeframe_request_count: used,
        };
        let table = [
            (t(Some(10_000), Some(0)), Some(0.0), ThresholdDecision::Go),
            (
                t(Some(10_000), Some(5_000)),
                Some(0.5),
                ThresholdDecision::Go,
            ),
            (
                t(Some(10_000), Some(9_000)),
                Some(0.9),
                ThresholdDecision::Hold { share: 0.9 },
            ),
            (
                t(Some(10_000), Some(9_999)),
                Some(0.9999),
                ThresholdDecision::Hold { share: 0.9999 },
            ),
            (
                t(Some(10_000), Some(10_000)),
                Some(1.0),
                ThresholdDecision::Refused { share: 1.0 },
            ),
            (
                t(Some(10_000), Some(10_250)),
                Some(1.025),
                ThresholdDecision::Refused { share: 1.025 },
            ),
            (t(None, Some(10_000)), None, ThresholdDecision::Go),
            (t(Some(0), Some(1)), None, ThresholdDecision::Go),
        ];
        for (reading, share, decision) in table {
            assert_eq!(database_share(&reading), share, "{reading:?}");
            assert_eq!(decide(share, 0.9), decision, "{reading:?}");
        }
    }

    #[test]
    fn a_held_call_says_why_and_when_to_come_back() {
        let l = Limits::new(AutotaskLimits::default());
        assert!(l.reading_due(Instant::now()));
        l.record(Some(0.95), Instant::now());
        assert!(!l.reading_due(Instant::now()));
        let e = l.check_threshold().unwrap_err();
        assert!(e.is_transient());
        assert!(
            crate::dispatch::budget::is_rate_limited(&e),
            "a hold waits without spending attempts: {e:?}"
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        assert!(e.to_string().contains("95 %"), "{e}");
        // At 100 % Autotask refuses everyone: a failure the dispatcher counts (failsafe e-mail).
        l.record(Some(1.0), Instant::now());
        let e = l.check_threshold().unwrap_err();
        assert!(e.is_transient());
        assert!(!crate::dispatch::budget::is_rate_limited(&e), "{e:?}");
        assert!(e.to_string().contains("refuses"), "{e}");
        l.record(Some(0.2), Instant::now());
        assert!(l.check_threshold().is_ok());
    }

    #[test]
    fn the_shared_budget_reports_the_last_reading_and_keeps_the_threshold_through_a_refusal() {
        let l = Limits::new(AutotaskLimits::default());
        assert_eq!(l.shared_budget(), None, "nothing read yet");
        let t = WThreshold {
            external_request_threshold: Some(10_000),
            current_timeframe_request_count: Some(9_500),
        };
        l.record_threshold(&t, Instant::now());
        let b = l.shared_budget().unwrap();
        assert_eq!((b.used, b.per_hour), (0.95, Some(10_000)));
        assert_eq!((b.slows_at, b.held_at), (0.5, 0.9));
        // A 429 naming the threshold is recorded as 100 %; the threshold stays known.
        l.record(Some(1.0), Instant::now());
        let b = l.shared_budget().unwrap();
        assert_eq!((b.used, b.per_hour), (1.0, Some(10_000)));
        // A reading without a threshold has no share to show.
        let none = WThreshold {
            external_request_threshold: None,
            current_timeframe_request_count: Some(3),
        };
        l.record_threshold(&none, Instant::now());
        assert_eq!(l.shared_budget(), None);
    }

    #[tokio::test]
    async fn at_most_three_requests_per_endpoint_at_once() {
        let l = Limits::new(AutotaskLimits::default());
        let a = l.slot("Tickets").await;
        let _b = l.slot("Tickets").await;
        let _c = l.slot("Tickets").await;
        let fourth = tokio::time::timeout(Duration::from_millis(50), l.slot("Tickets")).await;
        assert!(
            fourth.is_err(),
            "a fourth concurrent Tickets request was let through"
        );
        let _other = tokio::time::timeout(Duration::from_millis(50), l.slot("Companies"))
            .await
            .expect("other endpoints are not held");
        drop(a);
        let _again = tokio::time::timeout(Duration::from_millis(50), l.slot("Tickets"))
            .await
            .expect("a freed slot is reused");
    }
}
