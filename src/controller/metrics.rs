//! Prometheus metrics of the reconcilers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::metrics::register_at_zero;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    /// transient | permanent
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriterLabels {
    /// reconciler (conditions, resolved ids) | dispatch (delivery counters)
    pub writer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    pub namespace: String,
    pub connection: String,
}

/// `writer` label of the reconcilers' status writes.
pub const STATUS_WRITER_RECONCILER: &str = "reconciler";
/// `writer` label of the dispatch counters' status writes.
pub const STATUS_WRITER_DISPATCH: &str = "dispatch";

pub struct ControllerMetrics {
    pub reconciles: Family<KindLabels, Counter>,
    /// Status writes this replica sent to the API server: only the leader's grow.
    pub status_writes: Family<WriterLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Family<KindLabels, Histogram>,
    /// Connections whose routing is not complete in this process (warming up: the initial list
    /// of mappings not seen, or mappings not evaluated yet); their events are held.
    pub incomplete_connections: Gauge,
    /// Share (0–1) used of the request budget a connection's PSA shares with other integrations
    /// (Autotask's database threshold), at the connection's last reconcile.
    pub budget_share: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics {
            reconciles: Family::default(),
            status_writes: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            incomplete_connections: Gauge::default(),
            budget_share: Family::default(),
        }
    }
}

impl ControllerMetrics {
    /// Creates the metrics and registers them under `psa_operator_controller_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ControllerMetrics::default();
        let writers =
            [STATUS_WRITER_RECONCILER, STATUS_WRITER_DISPATCH].map(|writer| WriterLabels {
                writer: writer.to_string(),
            });
        register_at_zero(
            registry,
            "psa_operator_status_writes",
            "Status writes this replica made (only the leader writes statuses)",
            &m.status_writes,
            writers,
        );
        registry.register(
            "psa_operator_psa_budget_share",
            "Share (0-1) used of the request budget the PSA shares with the MSP's other integrations (Autotask: the database's hourly threshold), as last read",
            m.budget_share.clone(),
        );
        let sub = registry.sub_registry_with_prefix("psa_operator_controller");
        sub.register("reconciles", "Reconciles by kind", m.reconciles.clone());
        // Error series exist at 0 from the start, so a rate() over them is 0, not "no data".
        let errors = ["PsaConnection", "CustomerMapping", "ContractService"]
            .into_iter()
            .flat_map(|kind| {
                ["transient", "permanent"].map(|category| ErrorLabels {
                    kind: kind.to_string(),
                    category: category.to_string(),
                })
            });
        register_at_zero(
            sub,
            "reconcile_errors",
            "Reconcile errors by kind and category",
            &m.errors,
            errors,
        );
        // Declared with its unit: the name stays `…_reconcile_duration_seconds` and OpenMetrics
        // scrapes also get the `# UNIT` line.
        sub.register_with_unit(
            "reconcile_duration",
            "Reconcile duration by kind",
            Unit::Seconds,
            m.duration.clone(),
        );
        sub.register(
            "routing_incomplete_connections",
            "Connections whose routing is still being established in this process (events held)",
            m.incomplete_connections.clone(),
        );
        m
    }

    /// Counts one status write that reached the API server.
    pub fn status_written(&self, writer: &str) {
        self.status_writes
            .get_or_create(&WriterLabels {
                writer: writer.to_string(),
            })
            .inc();
    }

    pub fn set_incomplete_connections(&self, n: usize) {
        self.incomplete_connections
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_budget_share(&self, key: &crate::resolved::ConnectionKey, share: f64) {
        self.budget_share
            .get_or_create(&BudgetLabels {
                namespace: key.namespace.clone(),
                connection: key.name.clone(),
            })
            .set(share);
    }

    /// Drops a deleted connection's budget reading, so `/metrics` does not keep showing the last
    /// share of a connection that no longer exists.
    pub fn forget_connection(&self, key: &crate::resolved::ConnectionKey) {
        self.budget_share.remove(&BudgetLabels {
            namespace: key.namespace.clone(),
            connection: key.name.clone(),
        });
    }

    pub fn observe(&self, kind: &str, seconds: f64, error: Option<&str>) {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(seconds);
        if let Some(category) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    kind: kind.to_string(),
                    category: category.to_string(),
                })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolved::ConnectionKey;

    fn exposition(registry: &Registry) -> String {
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, registry).unwrap();
        body
    }

    /// A deleted connection's budget reading leaves `/metrics`; other connections' stay.
    #[test]
    fn a_forgotten_connection_has_no_budget_series() {
        let mut registry = Registry::default();
        let m = ControllerMetrics::register(&mut registry);
        let (gone, kept) = (
            ConnectionKey::new("psa", "autotask-old"),
            ConnectionKey::new("psa", "autotask"),
        );
        m.set_budget_share(&gone, 0.95);
        m.set_budget_share(&kept, 0.25);
        assert!(exposition(&registry).contains("connection=\"autotask-old\""));
        m.forget_connection(&gone);
        let body = exposition(&registry);
        assert!(!body.contains("connection=\"autotask-old\""), "{body}");
        assert!(body.contains("connection=\"autotask\""), "{body}");
    }

    /// Dashboards query `psa_operator_controller_reconcile_duration_seconds_bucket`: the name
    /// keeps its `_seconds` suffix now that the unit is declared, and the unit is exposed.
    #[test]
    fn reconcile_duration_keeps_its_name_and_declares_seconds() {
        let mut registry = Registry::default();
        let m = ControllerMetrics::register(&mut registry);
        m.duration
            .get_or_create(&KindLabels {
                kind: "CustomerMapping".to_string(),
            })
            .observe(0.2);
        let body = exposition(&registry);
        assert!(
            body.contains("psa_operator_controller_reconcile_duration_seconds_bucket{"),
            "{body}"
        );
        assert!(
            body.contains("# UNIT psa_operator_controller_reconcile_duration_seconds seconds"),
            "{body}"
        );
    }
}
