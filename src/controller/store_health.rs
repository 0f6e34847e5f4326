//! The dispatch store's health on every PsaConnection: condition `StoreHealthy`, and `Ready`
//! that does not promise "alerts become tickets" while the intake answers 503.
//!
//! The store is one for the whole process, so a probe task (`watch_store`) asks it every few
//! seconds and, on a change only, has every connection reconciled; the reconciler sets the
//! condition from the last answer. An outage of the store is a dependency's outage the operator
//! recovers from by itself once the store answers (disk space freed, PostgreSQL back), like a
//! PSA outage: `Ready=False` with reason `StoreUnavailable` (honest: alerts are refused now) and
//! kstatus `Reconciling`, not `Stalled` — no change to the resource would fix it.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::watch;

use crate::api::condition_types::READY;
use crate::dispatch::store::Store;

use super::status::Conditions;

/// Condition type: whether the dispatch store takes writes.
pub const STORE_HEALTHY: &str = "StoreHealthy";
/// Reason of `StoreHealthy=False` and of `Ready=False` while the store refuses writes.
pub const STORE_UNAVAILABLE: &str = "StoreUnavailable";

/// The last answer of the store probe, shared by the probe task and the reconcilers.
#[derive(Clone)]
pub struct StoreHealth {
    /// `None` = healthy (or not probed yet); `Some` = why not.
    problem: Arc<watch::Sender<Option<String>>>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            problem: Arc::new(watch::channel(None).0),
        }
    }
}

impl StoreHealth {
    /// Records a probe's answer; `true` when it changed.
    pub fn set(&self, problem: Option<String>) -> bool {
        self.problem.send_if_modified(|current| {
            if *current == problem {
                return false;
            }
            *current = problem;
            true
        })
    }

    /// Why the store refuses writes now, if it does.
    pub fn problem(&self) -> Option<String> {
        self.problem.borrow().clone()
    }

    /// One item per change of health (for re-checking every connection).
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.problem.subscribe(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }

    /// Probes `store` every `every` until the task is dropped.
    pub async fn watch_store(self, store: Arc<dyn Store>, every: Duration) {
        loop {
            let answer = store.health(crate::dispatch::worker::now_ms()).await;
            let problem = answer.err().map(|e| e.to_string());
            if self.set(problem.clone()) {
                match problem {
                    Some(e) => tracing::error!(error = %e, "the dispatch store refuses writes"),
                    None => tracing::info!("the dispatch store takes writes again"),
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// `StoreHealthy` from the probe's answer: (healthy, reason, message). The message says what a
/// user sees, not the store's error (it may name hosts and paths; the log has it).
pub fn store_condition(problem: Option<&str>) -> (bool, &'static str, &'static str) {
    match problem {
        None => (true, "StoreAvailable", "the dispatch store takes writes"),
        Some(_) => (
            false,
            STORE_UNAVAILABLE,
            "the dispatch store refuses writes (disk full, removed, or PostgreSQL unreachable; \
             see the operator log): the intake answers 503 and senders retry",
        ),
    }
}

/// Sets `StoreHealthy`, and `Ready=False` while the store refuses writes (whatever else
/// holds: nothing is accepted).
pub fn apply(conds: &mut Conditions, problem: Option<&str>) {
    let (healthy, reason, message) = store_condition(problem);
    conds.set(STORE_HEALTHY, healthy, reason, message);
    if !healthy {
        conds.set(READY, false, reason, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn the_store_answer_decides_the_condition() {
        let (ok, reason, _) = store_condition(None);
        assert!(ok);
        assert_eq!(reason, "StoreAvailable");
        let (ok, reason, message) = store_condition(Some("store unavailable: disk full"));
        assert!(!ok);
        assert_eq!(reason, STORE_UNAVAILABLE);
        assert!(message.contains("503"), "{message}");
        assert!(
            !message.contains("disk full:"),
            "no raw store error: {message}"
        );
    }

    #[test]
    fn an_unavailable_store_makes_ready_false_and_reconciling_not_stalled() {
        let now = Timestamp::from_second(1_000).unwrap();
        let table = [
            (None, "True", "Ready"),
            (Some("down"), "False", STORE_UNAVAILABLE),
        ];
        for (problem, ready, reason) in table {
            let mut c = Conditions::new(&[], Some(1), now);
            c.set(READY, true, "Ready", "alerts become tickets");
            apply(&mut c, problem);
            c.set_kstatus();
            let r = c.get(READY).unwrap();
            assert_eq!((r.status.as_str(), r.reason.as_str()), (ready, reason));
            assert_eq!(c.get(super::super::status::STALLED), None, "{problem:?}");
            assert_eq!(
                c.is_true(super::super::status::RECONCILING),
                problem.is_some(),
                "{problem:?}"
            );
        }
    }

    #[tokio::test]
    async fn only_changes_are_reported() {
        use futures::StreamExt;
        let health = StoreHealth::default();
        let mut changes = Box::pin(health.changes());
        assert!(!health.set(None), "healthy from the start");
        assert!(health.set(Some("down".into())));
        assert!(!health.set(Some("down".into())));
        tokio::time::timeout(Duration::from_secs(1), changes.next())
            .await
            .expect("a change")
            .expect("stream open");
        assert_eq!(health.problem().as_deref(), Some("down"));
    }
}
