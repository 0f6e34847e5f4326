//! Leader election on a `coordination.k8s.io/v1` Lease, so that with several replicas only one
//! writes statuses and PSA objects while every replica serves the intake and dispatches.
//!
//! The protocol is client-go's (`leaderelection`): a replica holds the lease while it renews it
//! every `retry_period`; a follower takes it over only after it has seen the same holder record
//! unchanged for `lease_duration` on its own clock (so clock skew between nodes does not matter);
//! every write is a `replace` carrying the `resourceVersion` that was read, so of two replicas
//! racing for the lease exactly one write succeeds (409 for the other). A leader that cannot
//! renew for `renew_deadline` (< `lease_duration`) steps down on its own, before anybody else
//! can take over — also when it cannot reach the API server at all.
//!
//! Why not a crate: `kube-leader-election` is built on kube 4 (we are on kube 5);
//! `kube-lease-manager` supports kube 5 but keeps reporting leadership while its renewals fail
//! (errors are retried without publishing `false`), so a leader cut off from the API server
//! would go on writing after its lease ran out; and its acquire relies on server-side-apply
//! field conflicts rather than on the resourceVersion precondition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

/// Timing of the election (client-go's defaults).
#[derive(Clone, Debug)]
pub struct ElectionTiming {
    /// How long a holder record stays valid without renewal.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down (must be < `lease_duration`).
    pub renew_deadline: Duration,
    /// How often the leader renews and a follower looks.
    pub retry_period: Duration,
}

impl Default for ElectionTiming {
    fn default() -> Self {
        ElectionTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl ElectionTiming {
    /// Checks the ordering the safety argument needs.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "--leader-renew-deadline ({:?}) must be shorter than --leader-lease-duration ({:?})",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(format!(
                "--leader-retry-period ({:?}) must be above zero and shorter than the renew deadline ({:?})",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }
}

/// Who may write: `true` on the leader. Shared with the controllers' `Context::leader`.
pub type LeaderFlag = Arc<AtomicBool>;

/// Leadership metrics: `psa_operator_leader` (1 on the leader) and leadership transitions.
#[derive(Clone, Default)]
pub struct LeaderMetrics {
    pub is_leader: Gauge,
    pub transitions: Counter,
}

impl LeaderMetrics {
    pub fn register(registry: &mut Registry) -> LeaderMetrics {
        let m = LeaderMetrics::default();
        registry.register(
            "psa_operator_leader",
            "1 while this replica holds the leader Lease and writes statuses and PSA objects",
            m.is_leader.clone(),
        );
        registry.register(
            "psa_operator_leader_transitions",
            "Times this replica became or stopped being the leader",
            m.transitions.clone(),
        );
        m
    }
}

/// The part of a Lease the decision looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderRecord {
    pub holder: Option<String>,
    pub lease_duration: Duration,
    /// `renewTime` as written (compared for change only, never with our clock).
    pub renew_time: Option<String>,
    pub transitions: i32,
}

impl HolderRecord {
    fn from_spec(spec: Option<&LeaseSpec>) -> HolderRecord {
        let spec = spec.cloned().unwrap_or_default();
        HolderRecord {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            lease_duration: Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
            ),
            renew_time: spec.renew_time.map(|t| t.0.to_string()),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// What to do with the lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: write a new renew time.
    Renew,
    /// Free or expired: write ourselves in as holder.
    TakeOver,
    /// Someone else holds it and it has not expired by our observation.
    Follow { holder: String },
}

/// The decision, from the record read, when we first saw that exact record (our clock), and
/// now. Pure: the table test covers it.
pub fn decide(
    record: &HolderRecord,
    identity: &str,
    first_seen: Instant,
    now: Instant,
) -> Decision {
    match &record.holder {
        None => Decision::TakeOver,
        Some(h) if h == identity => Decision::Renew,
        Some(h) => {
            if now.saturating_duration_since(first_seen) >= record.lease_duration {
                Decision::TakeOver
            } else {
                Decision::Follow { holder: h.clone() }
            }
        }
    }
}

/// What a leader does after a failed renewal: keep leading while the last success is recent
/// enough, step down once `renew_deadline` has passed. Pure.
pub fn still_leader(last_renewed: Instant, now: Instant, timing: &ElectionTiming) -> bool {
    now.saturating_duration_since(last_renewed) < timing.renew_deadline
}

/// One replica's election.
pub struct Election {
    api: Api<Lease>,
    lease_name: String,
    identity: String,
    timing: ElectionTiming,
    flag: LeaderFlag,
    metrics: LeaderMetrics,
    /// The last record read and when it was first seen (for followers' expiry).
    observed: Option<(HolderRecord, Instant)>,
    last_renewed: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
enum TryError {
    #[error("lost the race for the lease")]
    Conflict,
    #[error("{0}")]
    Api(#[from] kube::Error),
}

impl Election {
    pub fn new(
        client: Client,
        namespace: &str,
        lease_name: &str,
        identity: &str,
        timing: ElectionTiming,
        flag: LeaderFlag,
        metrics: LeaderMetrics,
    ) -> Election {
        Election {
            api: Api::namespaced(client, namespace),
            lease_name: lease_name.to_string(),
            identity: identity.to_string(),
            timing,
            flag,
            metrics,
            observed: None,
            last_renewed: None,
        }
    }

    fn set_leader(&self, leader: bool) {
        let was = self.flag.swap(leader, Ordering::SeqCst);
        self.metrics.is_leader.set(i64::from(leader));
        if was != leader {
            self.metrics.transitions.inc();
            if leader {
                tracing::info!(lease = %self.lease_name, identity = %self.identity, "became the leader: writing statuses and PSA objects");
            } else {
                tracing::warn!(lease = %self.lease_name, identity = %self.identity, "not the leader: statuses and PSA writes stop; intake and dispatch go on");
            }
        }
    }

    fn is_leader(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// One round: read, decide, write. `Ok(true)`: we hold the lease now.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, TryError> {
        let now = Instant::now();
        let existing = self.api.get_opt(&self.lease_name).await?;
        let record = HolderRecord::from_spec(existing.as_ref().and_then(|l| l.spec.as_ref()));
        let first_seen = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => now,
        };
        self.observed = Some((record.clone(), first_seen));
        let decision = decide(&record, &self.identity, first_seen, now);
        let taking_over = match decision {
            Decision::Follow { .. } => return Ok(false),
            Decision::Renew => false,
            Decision::TakeOver => true,
        };
        let stamp = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let mut spec = existing
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds =
            Some(i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX));
        spec.renew_time = Some(stamp.clone());
        if taking_over {
            spec.acquire_time = Some(stamp);
            spec.lease_transitions = Some(record.transitions + i32::from(record.holder.is_some()));
        }
        let result = match existing {
            Some(mut lease) => {
                // The resourceVersion read is kept: a concurrent writer makes this a 409.
                lease.spec = Some(spec);
                self.api
                    .replace(&self.lease_name, &PostParams::default(), &lease)
                    .await
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.lease_name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(written) => {
                let rec = HolderRecord::from_spec(written.spec.as_ref());
                self.observed = Some((rec, Instant::now()));
                self.last_renewed = Some(now);
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Err(TryError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up (shutdown of the leader): a successor need not wait for expiry.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        match self
            .api
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.lease_name, "released the leader lease"),
            Err(e) => {
                tracing::warn!(lease = %self.lease_name, error = %e, "cannot release the leader lease; it expires on its own")
            }
        }
    }

    /// Campaigns and holds the lease until `shutdown`; the flag follows leadership.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        self.set_leader(false);
        tokio::pin!(shutdown);
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => self.set_leader(true),
                Ok(false) => self.set_leader(false),
                Err(TryError::Conflict) => {
                    tracing::debug!(lease = %self.lease_name, "lease changed under us; re-reading");
                    if self.is_leader() {
                        // Somebody wrote the lease we hold: only a takeover does that.
                        self.set_leader(false);
                    }
                }
                Err(TryError::Api(e)) => {
                    let keep = self
                        .last_renewed
                        .is_some_and(|at| still_leader(at, Instant::now(), &self.timing));
                    if self.is_leader() && !keep {
                        tracing::warn!(lease = %self.lease_name, error = %e, "cannot renew the leader lease within the renew deadline");
                        self.set_leader(false);
                    } else {
                        tracing::warn!(lease = %self.lease_name, error = %e, "leader election: API call failed");
                    }
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.timing.retry_period) => {}
            }
        }
        if self.is_leader() {
            self.set_leader(false);
            self.release().await;
        }
    }
}

/// Which Lease to campaign for, and as whom.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    pub namespace: String,
    pub lease_name: String,
    /// This replica's name in the Lease (the pod name).
    pub identity: String,
    pub timing: ElectionTiming,
}

/// Campaigns for the Lease of `settings` until `shutdown`; `flag` is true exactly while this
/// replica may write. See the module doc for the protocol.
pub async fn run_election(
    client: Client,
    settings: ElectionSettings,
    flag: LeaderFlag,
    metrics: LeaderMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    Election::new(
        client,
        &settings.namespace,
        &settings.lease_name,
        &settings.identity,
        settings.timing,
        flag,
        metrics,
    )
    .run(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>, secs: u64) -> HolderRecord {
        HolderRecord {
            holder: holder.map(str::to_string),
            lease_duration: Duration::from_secs(secs),
            renew_time: Some("2026-12-02T23:00:00Z".into()),
            transitions: 3,
        }
    }

    #[test]
    fn who_writes_the_lease_next() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let cases = [
            (record(None, 15), s(0), Decision::TakeOver),
            (record(Some("me"), 15), s(0), Decision::Renew),
            (record(Some("me"), 15), s(60), Decision::Renew),
            (
                record(Some("other"), 15),
                s(14),
                Decision::Follow {
                    holder: "other".into(),
                },
            ),
            (record(Some("other"), 15), s(15), Decision::TakeOver),
            (record(Some("other"), 0), s(0), Decision::TakeOver),
        ];
        for (rec, seen_for, want) in cases {
            assert_eq!(
                decide(&rec, "me", t0, t0 + seen_for),
                want,
                "{rec:?} seen for {seen_for:?}"
            );
        }
    }

    #[test]
    fn a_leader_steps_down_before_a_follower_may_take_over() {
        let t = ElectionTiming::default();
        let t0 = Instant::now();
        assert!(still_leader(t0, t0 + Duration::from_secs(9), &t));
        assert!(!still_leader(t0, t0 + t.renew_deadline, &t));
        assert!(t.renew_deadline < t.lease_duration);
        assert!(t.validate().is_ok());
        let bad = ElectionTiming {
            renew_deadline: Duration::from_secs(20),
            ..ElectionTiming::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("--leader-renew-deadline"));
    }
}
