//! What the operator's metric sets (reconcilers, dispatcher) share.

use std::hash::Hash;

use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::registry::{Metric, Registry};

/// Registers `family` as `name` with each of `series` created at 0 from the start: a rate()
/// over a series that does not exist yet is "no data", not 0, and an alert rule on it stays
/// silent.
pub fn register_at_zero<S, M, C>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    family: &Family<S, M, C>,
    series: impl IntoIterator<Item = S>,
) where
    S: Clone + Hash + Eq,
    C: MetricConstructor<M>,
    Family<S, M, C>: Metric + Clone,
{
    registry.register(name, help, family.clone());
    for labels in series {
        let _ = family.get_or_create(&labels);
    }
}
