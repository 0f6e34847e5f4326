//! The dispatcher's counters into `PsaConnection.status.dispatch` (and `autoMapping`), written
//! by server-side apply under a field manager of their own, so the reconciler's status writes
//! and these never remove each other's fields.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::api::{AutoMappingCounts, PsaConnection, GROUP, VERSION};
use crate::dispatch::stats::{DispatchStats, StatsSink};
use crate::resolved::ConnectionKey;

/// Field manager of the counters.
pub const DISPATCH_FIELD_MANAGER: &str = "psa-operator-dispatch";

pub struct ConnectionStatusSink {
    pub client: Client,
    /// Only the leader writes status.
    pub leader: Arc<AtomicBool>,
    /// Counts the writes (`psa_operator_status_writes_total{writer="dispatch"}`).
    pub metrics: Arc<super::metrics::ControllerMetrics>,
}

/// The status fragment the counters stand for.
pub fn status_fragment(stats: &DispatchStats) -> serde_json::Value {
    let dispatch = super::dispatch_status::dispatch_status(stats);
    let mut status = serde_json::json!({ "dispatch": dispatch });
    if stats.auto_matched + stats.auto_unmatched > 0 {
        let auto = AutoMappingCounts {
            matched: stats.auto_matched,
            unmatched: stats.auto_unmatched,
            unmatched_organizations: stats
                .unmatched_organizations
                .iter()
                .take(20)
                .cloned()
                .collect(),
        };
        status["autoMapping"] = serde_json::json!(auto);
    }
    status
}

#[async_trait::async_trait]
impl StatsSink for ConnectionStatusSink {
    async fn publish(&self, key: &ConnectionKey, stats: &DispatchStats) -> bool {
        if !self.leader.load(Ordering::Relaxed) {
            // The leader writes them; this replica's counters stay local (metrics).
            return true;
        }
        let api: Api<PsaConnection> = Api::namespaced(self.client.clone(), &key.namespace);
        let patch = serde_json::json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "PsaConnection",
            "status": status_fragment(stats),
        });
        let params = PatchParams::apply(DISPATCH_FIELD_MANAGER).force();
        match api
            .patch_status(&key.name, &params, &Patch::Apply(&patch))
            .await
        {
            Ok(_) => {
                self.metrics
                    .status_written(super::metrics::STATUS_WRITER_DISPATCH);
                true
            }
            // Deleted meanwhile: nothing to write to.
            Err(kube::Error::Api(e)) if e.code == 404 => true,
            Err(e) => {
                tracing::debug!(connection = %key, error = %e, "cannot write dispatch counters");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mapping_counts_only_once_used() {
        let mut stats = DispatchStats {
            accepted: 3,
            tickets_created: 2,
            ..Default::default()
        };
        let s = status_fragment(&stats);
        assert_eq!(s["dispatch"]["ticketsCreated"], 2);
        assert!(s.get("autoMapping").is_none());
        stats.auto_unmatched = 1;
        stats.unmatched_organizations = (0..30).map(|i| format!("org{i}")).collect();
        let s = status_fragment(&stats);
        assert_eq!(s["autoMapping"]["unmatched"], 1);
        assert_eq!(
            s["autoMapping"]["unmatchedOrganizations"]
                .as_array()
                .unwrap()
                .len(),
            20
        );
    }
}
