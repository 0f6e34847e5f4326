//! Dispatch statistics per connection, owned by the dispatcher, and the sink that carries them to
//! the PsaConnection's status (a few seconds old at most, written only when they changed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::resolved::ConnectionKey;

/// Counters of one connection: the store's (accepted, pending, dead letters) and this process's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    pub accepted: u64,
    pub pending: u64,
    pub tickets_created: u64,
    pub notes_added: u64,
    /// Alerts the storm breaker sent to a customer's roll-up ticket.
    pub alerts_rolled_up: u64,
    /// Roll-up tickets the storm breaker opened.
    pub rollups_opened: u64,
    pub failsafe_emails: u64,
    pub dead_letters: u64,
    pub auto_matched: u64,
    pub auto_unmatched: u64,
    pub unmatched_organizations: Vec<String>,
    /// The latest failed delivery: (RFC 3339 time, message).
    pub last_error: Option<(String, String)>,
    /// The PSA request budget in force (the connection's, or the default).
    pub requests_per_hour: Option<u32>,
}

/// Where the statistics go (the PsaConnection status in the operator; nowhere in benchmarks).
#[async_trait::async_trait]
pub trait StatsSink: Send + Sync {
    /// Records the counters of a connection; `false` when they could not be written (retried).
    async fn publish(&self, key: &ConnectionKey, stats: &DispatchStats) -> bool;
}

/// The dispatcher's counters, shared by its workers.
#[derive(Clone, Default)]
pub struct StatsBoard {
    inner: Arc<Mutex<Board>>,
}

#[derive(Default)]
struct Board {
    current: HashMap<ConnectionKey, DispatchStats>,
    /// What the sink last accepted, per connection.
    written: HashMap<ConnectionKey, DispatchStats>,
}

impl StatsBoard {
    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `f` to the counters of a connection (created on first use).
    pub fn update(&self, key: &ConnectionKey, f: impl FnOnce(&mut DispatchStats)) {
        f(self.board().current.entry(key.clone()).or_default());
    }

    pub fn get(&self, key: &ConnectionKey) -> DispatchStats {
        self.board().current.get(key).cloned().unwrap_or_default()
    }

    /// Forgets a deleted connection.
    pub fn remove(&self, key: &ConnectionKey) {
        let mut b = self.board();
        b.current.remove(key);
        b.written.remove(key);
    }

    /// Counters that changed since the sink last took them.
    pub fn changed(&self) -> Vec<(ConnectionKey, DispatchStats)> {
        let b = self.board();
        let mut out: Vec<_> = b
            .current
            .iter()
            .filter(|(k, s)| b.written.get(*k) != Some(*s))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn mark_written(&self, key: &ConnectionKey, stats: DispatchStats) {
        self.board().written.insert(key.clone(), stats);
    }

    /// Hands every changed connection's counters to `sink`; failures are tried again next time.
    pub async fn flush_to(&self, sink: &dyn StatsSink) {
        for (key, stats) in self.changed() {
            if sink.publish(&key, &stats).await {
                self.mark_written(&key, stats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<(ConnectionKey, u64)>>,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl StatsSink for Recorder {
        async fn publish(&self, key: &ConnectionKey, stats: &DispatchStats) -> bool {
            if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            self.seen
                .lock()
                .unwrap()
                .push((key.clone(), stats.tickets_created));
            true
        }
    }

    #[tokio::test]
    async fn only_changes_reach_the_sink_and_failures_are_retried() {
        let board = StatsBoard::default();
        let sink = Recorder::default();
        let a = ConnectionKey::new("psa", "a");
        board.update(&a, |s| s.tickets_created += 1);
        board.flush_to(&sink).await;
        board.flush_to(&sink).await;
        assert_eq!(
            sink.seen.lock().unwrap().len(),
            1,
            "unchanged: no second write"
        );
        sink.fail.store(true, std::sync::atomic::Ordering::Relaxed);
        board.update(&a, |s| s.tickets_created += 1);
        board.flush_to(&sink).await;
        sink.fail.store(false, std::sync::atomic::Ordering::Relaxed);
        board.flush_to(&sink).await;
        assert_eq!(*sink.seen.lock().unwrap(), vec![(a.clone(), 1), (a, 2)]);
    }
}
