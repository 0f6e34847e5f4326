//! The dispatcher's wall clock for the alert lifecycle's windows (`lifecycle.reopenWithin`,
//! `noise.maxNewTicketsPerCustomer`): the real time, shifted by an offset that only tests set,
//! so a scenario can jump a day ahead without waiting. The queue's own timing (claims, leases,
//! retries) keeps the real clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shared by clones: advancing one advances all.
#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Unix ms now, as the windows see it.
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock forward by `by` (tests).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Clock(offset {} ms)",
            self.offset_ms.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_a_clone_moves_every_clone() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = clock.now_ms();
        other.advance(Duration::from_secs(25 * 3600));
        let moved = clock.now_ms() - before;
        assert!((25 * 3_600_000..26 * 3_600_000).contains(&moved), "{moved}");
    }
}
