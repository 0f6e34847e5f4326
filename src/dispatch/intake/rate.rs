//! The per-connection intake request rate (`IntakeLimits::requests_per_minute`): a holder of one
//! connection's token cannot flood the store, nor starve the other connections' senders. GCRA
//! (governor) with a burst of one minute's worth; over it → 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::resolved::ConnectionKey;

pub struct IntakeRate {
    /// `None` = unlimited.
    limiter: Option<DefaultKeyedRateLimiter<ConnectionKey>>,
    clock: DefaultClock,
}

impl IntakeRate {
    /// `per_minute` requests per connection and minute; 0 = unlimited.
    pub fn new(per_minute: u32) -> Self {
        IntakeRate {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request of `key`'s budget, or says how long until one is free.
    pub fn check(&self, key: &ConnectionKey) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// Whole seconds for `Retry-After`, at least 1 (a 0 invites an immediate retry).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_has_its_own_budget() {
        let rate = IntakeRate::new(3);
        let a = ConnectionKey::new("psa", "a");
        let b = ConnectionKey::new("psa", "b");
        for _ in 0..3 {
            assert!(rate.check(&a).is_ok());
        }
        let wait = rate.check(&a).expect_err("the fourth request of a minute");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(rate.check(&b).is_ok(), "another connection is not affected");
    }

    #[test]
    fn zero_means_unlimited() {
        let rate = IntakeRate::new(0);
        let a = ConnectionKey::new("psa", "a");
        assert!((0..10_000).all(|_| rate.check(&a).is_ok()));
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let cases = [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (59_500, 60)];
        for (ms, want) in cases {
            assert_eq!(retry_after_secs(Duration::from_millis(ms)), want, "{ms} ms");
        }
    }
}

/// Failed authentications per source address: a guesser gets `per_minute` tries a minute,
/// then every request from that address is answered 429 — before any token comparison —
/// until its budget refills. Behind a proxy all senders share the proxy's address; the limit
/// is set well above what a misconfigured but honest sender produces.
pub struct AuthFailures {
    limiter: Option<DefaultKeyedRateLimiter<std::net::IpAddr>>,
    blocked: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, std::time::Instant>>,
    clock: DefaultClock,
}

/// Sources tracked before expired entries are pruned.
const PRUNE_AT: usize = 10_000;

impl AuthFailures {
    /// `per_minute` failures per source and minute; 0 = unlimited.
    pub fn new(per_minute: u32) -> Self {
        AuthFailures {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            blocked: Default::default(),
            clock: DefaultClock::default(),
        }
    }

    /// How long `source` is still refused, if it is.
    pub fn blocked(&self, source: std::net::IpAddr) -> Option<Duration> {
        let blocked = self.blocked.lock().expect("auth failures lock");
        let until = *blocked.get(&source)?;
        until.checked_duration_since(std::time::Instant::now())
    }

    /// Counts a failed authentication of `source`; past the budget the source is refused
    /// until it refills.
    pub fn failed(&self, source: std::net::IpAddr) {
        let Some(limiter) = &self.limiter else {
            return;
        };
        if let Err(not_until) = limiter.check_key(&source) {
            let wait = not_until.wait_time_from(self.clock.now());
            let now = std::time::Instant::now();
            let mut blocked = self.blocked.lock().expect("auth failures lock");
            if blocked.len() >= PRUNE_AT {
                blocked.retain(|_, until| *until > now);
                limiter.retain_recent();
            }
            blocked.insert(source, now + wait);
        }
    }
}

#[cfg(test)]
mod auth_tests {
    use super::*;

    #[test]
    fn a_source_is_refused_after_its_failures_and_others_are_not() {
        let failures = AuthFailures::new(5);
        let guesser: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let honest: std::net::IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(failures.blocked(guesser), None);
            failures.failed(guesser);
        }
        assert_eq!(
            failures.blocked(guesser),
            None,
            "five failures are within the budget"
        );
        failures.failed(guesser);
        let wait = failures.blocked(guesser).expect("the sixth failure blocks");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        assert_eq!(failures.blocked(honest), None);
        let unlimited = AuthFailures::new(0);
        (0..1000).for_each(|_| unlimited.failed(guesser));
        assert_eq!(unlimited.blocked(guesser), None);
    }
}
