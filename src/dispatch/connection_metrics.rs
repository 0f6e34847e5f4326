//! Per-connection state as Prometheus gauges, read from the [`Registry`] and the dispatcher's counters at scrape time:
//! whether alerts become tickets, suspension, the effective PSA request budget and the events
//! waiting. These are what an on-call engineer's alerts ask ("connection not ready for 10 m",
//! "budget over 80 %", "events held for 15 m"); the counters live in [`DispatchMetrics`].
//!
//! Registered as a top-level collector: the registry encodes it before the dispatcher's
//! sub-registry, so the per-connection counter series it initialises (at 0) appear in the same
//! scrape as the connection.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::dispatch::metrics::DispatchMetrics;
use crate::dispatch::stats::{DispatchStats, StatsBoard};
use crate::resolved::{ConnectionEntry, ConnectionKey, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    namespace: String,
    connection: String,
}

/// The gauge values of one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionGauges {
    /// 1 when alerts become tickets now: settings resolved, intake token readable, not suspended.
    pub ready: i64,
    pub suspended: i64,
    /// Effective `dispatch.requestsPerHour`; 0 while the settings do not resolve.
    pub requests_per_hour: i64,
    /// Events accepted and not yet delivered or dead-lettered (held ones included).
    pub pending: i64,
}

/// The gauges of a connection from its registry entry and dispatcher stats.
pub fn gauges(entry: &ConnectionEntry, stats: &DispatchStats) -> ConnectionGauges {
    let resolved = entry.resolved.as_ref();
    let ready = resolved.is_some() && entry.intake_token.is_some() && !entry.suspended;
    ConnectionGauges {
        ready: i64::from(ready),
        suspended: i64::from(entry.suspended),
        requests_per_hour: resolved.map_or(0, |r| i64::from(r.dispatch.requests_per_hour)),
        pending: i64::try_from(stats.pending).unwrap_or(i64::MAX),
    }
}

/// The collector (see the module documentation).
#[derive(Clone)]
pub struct ConnectionMetrics {
    registry: Registry,
    stats: StatsBoard,
    dispatch: Arc<DispatchMetrics>,
}

impl std::fmt::Debug for ConnectionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionMetrics").finish_non_exhaustive()
    }
}

impl ConnectionMetrics {
    pub fn new(registry: Registry, stats: StatsBoard, dispatch: Arc<DispatchMetrics>) -> Self {
        ConnectionMetrics {
            registry,
            stats,
            dispatch,
        }
    }

    fn rows(&self) -> Vec<(ConnectionKey, ConnectionGauges)> {
        self.registry
            .keys()
            .into_iter()
            .filter_map(|key| {
                let entry = self.registry.get(&key)?;
                let g = gauges(&entry, &self.stats.get(&key));
                Some((key, g))
            })
            .collect()
    }
}

/// (name without prefix, help, value) of each gauge family.
type Family = (&'static str, &'static str, fn(&ConnectionGauges) -> i64);

const FAMILIES: [Family; 4] = [
    (
        "psa_operator_connection_ready",
        "1 when the connection turns alerts into tickets (settings resolved, intake token readable, not suspended)",
        |g| g.ready,
    ),
    (
        "psa_operator_connection_suspended",
        "1 while spec.suspend holds the connection's events",
        |g| g.suspended,
    ),
    (
        "psa_operator_connection_requests_per_hour",
        "Effective PSA request budget of the dispatcher per hour (dispatch.requestsPerHour or its default)",
        |g| g.requests_per_hour,
    ),
    (
        "psa_operator_connection_pending_events",
        "Events accepted and not yet delivered or dead-lettered, held ones included",
        |g| g.pending,
    ),
];

impl Collector for ConnectionMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.rows();
        for (key, _) in &rows {
            self.dispatch.init_connection(key);
        }
        if rows.is_empty() {
            return Ok(());
        }
        for (name, help, value) in FAMILIES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (key, g) in &rows {
                let labels = ConnectionLabels {
                    namespace: key.namespace.clone(),
                    connection: key.name.clone(),
                };
                ConstGauge::new(value(g)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;

    #[test]
    fn gauges_say_whether_alerts_become_tickets() {
        let token = Some(SecretString::from("t".to_string()));
        let waiting = ConnectionEntry {
            intake_token: token.clone(),
            ..Default::default()
        };
        let stats = DispatchStats {
            pending: 4,
            ..Default::default()
        };
        assert_eq!(
            gauges(&waiting, &stats),
            ConnectionGauges {
                ready: 0,
                suspended: 0,
                requests_per_hour: 0,
                pending: 4
            }
        );
        let suspended = ConnectionEntry {
            intake_token: token,
            suspended: true,
            ..Default::default()
        };
        let g = gauges(&suspended, &DispatchStats::default());
        assert_eq!((g.ready, g.suspended), (0, 1));
    }

    #[test]
    fn exposition_has_every_family_and_zeroed_dispatch_series() {
        let mut reg = prometheus_client::registry::Registry::default();
        let dispatch = Arc::new(DispatchMetrics::register(&mut reg));
        let registry = Registry::new();
        registry.publish(
            ConnectionKey::new("psa", "acme"),
            ConnectionEntry::default(),
        );
        reg.register_collector(Box::new(ConnectionMetrics::new(
            registry,
            StatsBoard::default(),
            dispatch,
        )));
        let text = crate::dispatch::metrics::encode(&reg);
        for line in [
            r#"psa_operator_connection_ready{namespace="psa",connection="acme"} 0"#,
            r#"psa_operator_connection_suspended{namespace="psa",connection="acme"} 0"#,
            r#"psa_operator_connection_requests_per_hour{namespace="psa",connection="acme"} 0"#,
            r#"psa_operator_connection_pending_events{namespace="psa",connection="acme"} 0"#,
            r#"psa_operator_dispatch_dead_letters_total{namespace="psa",connection="acme"} 0"#,
            r#"psa_operator_dispatch_failsafe_emails_total{namespace="psa",connection="acme"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
