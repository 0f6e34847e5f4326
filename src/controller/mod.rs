//! Reconcilers of the three custom resources and what they share.
//!
//! Each reconcile follows dereference → validate → build → apply → status. PSA name matching and
//! settings resolution are pure (`names`, `resolve`); the reconcilers do the I/O around them.

pub mod connection;
pub mod context;
pub mod contract_service;
pub mod factory;
pub mod line_memory;
pub mod mapping;
pub mod metrics;
pub mod names;
pub mod required_fields;
pub mod resolve;
pub mod run;
pub mod secrets;

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
