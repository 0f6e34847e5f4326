//! BMS's documented throttle: so many calls per hour per endpoint (route template), rolling.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct EndpointLimiter {
    admitted: HashMap<String, VecDeque<Instant>>,
}

impl EndpointLimiter {
    /// Admits a call to `endpoint` or says in how many whole seconds a slot frees up.
    /// `limit` 0 admits everything.
    pub fn admit(&mut self, endpoint: &str, limit: u32, now: Instant) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let q = self.admitted.entry(endpoint.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            let oldest = q.front().copied().unwrap_or(now);
            let left = WINDOW.saturating_sub(now.duration_since(oldest));
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(secs.max(1));
        }
        q.push_back(now);
        Ok(())
    }

    pub fn clear(&mut self) {
        self.admitted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_per_endpoint_and_rolls() {
        let mut l = EndpointLimiter::default();
        let t0 = Instant::now();
        assert_eq!(l.admit("/a", 2, t0), Ok(()));
        assert_eq!(l.admit("/a", 2, t0 + Duration::from_secs(600)), Ok(()));
        assert_eq!(l.admit("/a", 2, t0 + Duration::from_secs(1200)), Err(2400));
        assert_eq!(l.admit("/b", 2, t0 + Duration::from_secs(1200)), Ok(()));
        assert_eq!(l.admit("/a", 2, t0 + WINDOW), Ok(()));
        for _ in 0..10 {
            assert_eq!(l.admit("/c", 0, t0), Ok(()));
        }
    }
}
