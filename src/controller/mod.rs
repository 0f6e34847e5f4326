//! Reconcilers of the three custom resources and what they share.
//!
//! Each reconcile reads as dereference → validate → resolve → apply → status. The rules are pure
//! and shared with `gitops` (`resolve/`); routing facts go into one index whose single writer
//! publishes the dispatcher's snapshots (`index`, `publish`); statuses and Events are finished
//! one way (`status`).
//!
//! Imports run one way: reconcilers → context/publish/status/resolve → index; nothing here
//! imports a reconciler.

pub mod budget;
pub mod claims;
pub mod connection;
pub mod context;
pub mod contract_service;
pub mod customer_ticket;
pub mod dispatch_status;
pub mod event_type;
pub mod factory;
pub mod index;
pub mod mapping;
pub mod metrics;
pub mod problem_events;
pub mod publish;
pub mod resolve;
pub mod run;
pub mod secrets;
pub mod sources;
pub mod stats_sink;
pub mod status;
pub mod store_health;
pub mod type_combinations;
pub mod warned;

use kube::api::{Patch, PatchParams};
use kube::Api;
use serde::de::DeserializeOwned;

use crate::api::{GROUP, VERSION};

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "psa-operator";

/// Annotation that forces a re-check when its value changes.
pub const RECONCILE_REQUESTED_AT: &str = "psa-operator.io/reconcile-requested-at";

/// Errors that end a reconcile early. PSA and configuration problems are reported in conditions
/// and do not surface here; these are failures to talk to the Kubernetes API.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error("PSA: {0}")]
    Psa(#[from] crate::psa::PsaError),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl ReconcileError {
    /// `transient` errors are retried with backoff; `permanent` ones wait for a change.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "transient",
            ReconcileError::Psa(e) if e.is_transient() => "transient",
            ReconcileError::Psa(_) => "permanent",
            ReconcileError::Finalizer(_) => "transient",
        }
    }
}

/// Writes `status` with server-side apply, so fields we stop setting are removed.
pub async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    kind: &str,
    status: serde_json::Value,
) -> Result<(), ReconcileError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": kind,
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(ReconcileError::Kube)?;
    Ok(())
}
