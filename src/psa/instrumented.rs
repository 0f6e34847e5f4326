//! A `Psa` wrapper that counts every call by provider, method and outcome (Prometheus), so
//! `/metrics` shows PSA calls per route whichever client sits underneath.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::forward::{forward_psa, Around, Call};
use super::*;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub provider: String,
    pub method: String,
    /// ok | transient | auth | not_found | permanent
    pub outcome: String,
}

/// Counter family shared by every instrumented client.
#[derive(Clone, Default)]
pub struct PsaCallMetrics {
    pub calls: Family<CallLabels, Counter>,
}

impl PsaCallMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = PsaCallMetrics::default();
        registry.register(
            "psa_operator_psa_calls",
            "PSA client calls by provider, method and outcome",
            m.calls.clone(),
        );
        m
    }
}

pub struct InstrumentedPsa {
    inner: Arc<dyn Psa>,
    metrics: PsaCallMetrics,
}

impl InstrumentedPsa {
    pub fn wrap(inner: Arc<dyn Psa>, metrics: PsaCallMetrics) -> Arc<dyn Psa> {
        Arc::new(InstrumentedPsa { inner, metrics })
    }

    fn count<T>(&self, method: &str, r: PsaResult<T>) -> PsaResult<T> {
        let outcome = match &r {
            Ok(_) => "ok",
            Err(PsaError::Transient { .. }) => "transient",
            Err(PsaError::Auth { .. }) => "auth",
            Err(PsaError::PermissionDenied { .. }) => "permission_denied",
            Err(PsaError::NotFound { .. }) => "not_found",
            Err(PsaError::Permanent { .. }) | Err(PsaError::LookupUnavailable { .. }) => {
                "permanent"
            }
        };
        self.metrics
            .calls
            .get_or_create(&CallLabels {
                provider: self.inner.provider().as_str().to_string(),
                method: method.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        r
    }
}

impl Around for InstrumentedPsa {
    async fn read<T: Send>(&self, method: &'static str, call: Call<'_, T>) -> PsaResult<T> {
        self.count(method, call.await)
    }
}

// Every method, those with a default in the traits too (see `forward`).
forward_psa!(InstrumentedPsa => inner);
