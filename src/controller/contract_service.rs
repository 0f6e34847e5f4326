//! ContractService reconciler: the catalog service exists in the PSA (adopted by name or
//! created), its description/cost/price follow the spec, and deletion honours `deletionPolicy`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::api::condition_types::*;
use crate::api::{
    find_condition, make_condition, set_condition, ContractService, ContractServiceStatus,
    DeletionPolicy,
};
use crate::psa::{CatalogService, CatalogServiceSpec, Psa, PsaError};
use crate::resolved::ConnectionKey;

use super::context::Context;
use super::ReconcileError;

/// Finalizer that lets `deletionPolicy: Delete` remove the service from the PSA first.
pub const FINALIZER: &str = "psa-operator.io/contract-service";

/// What the spec asks for, in PSA units. `None` when a money field is not a decimal.
pub fn wanted_spec(s: &ContractService) -> Result<CatalogServiceSpec, String> {
    let cost = s
        .spec
        .cost
        .to_minor()
        .ok_or_else(|| format!("spec.cost {:?} is not a decimal", s.spec.cost.0))?;
    let price = s
        .spec
        .price
        .to_minor()
        .ok_or_else(|| format!("spec.price {:?} is not a decimal", s.spec.price.0))?;
    Ok(CatalogServiceSpec {
        name: s.spec.name.clone(),
        description: s.spec.description.clone().unwrap_or_default(),
        cost,
        price,
    })
}

/// Fields of the PSA's service that differ from the spec (drift to correct).
pub fn drift(existing: &CatalogService, wanted: &CatalogServiceSpec) -> Vec<&'static str> {
    let mut d = vec![];
    if existing.description != wanted.description {
        d.push("description");
    }
    if existing.cost != wanted.cost {
        d.push("cost");
    }
    if existing.price != wanted.price {
        d.push("price");
    }
    d
}

pub async fn reconcile(
    s: Arc<ContractService>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let ns = s.namespace().unwrap_or_default();
    let api: Api<ContractService> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, s, |event| async {
        match event {
            Finalizer::Apply(s) => apply(&s, &ctx).await,
            Finalizer::Cleanup(s) => cleanup(&s, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => ReconcileError::Finalizer(other.to_string()),
    });
    ctx.metrics.observe(
        "ContractService",
        started.elapsed().as_secs_f64(),
        result.as_ref().err().map(|e| e.category()),
    );
    result
}

async fn apply(s: &ContractService, ctx: &Context) -> Result<Action, ReconcileError> {
    let ns = s.namespace().unwrap_or_default();
    let key = ConnectionKey::new(ns.clone(), s.spec.connection_ref.name.clone());
    let old = s.status.clone().unwrap_or_default();
    let mut status = ContractServiceStatus {
        observed_generation: s.metadata.generation,
        conditions: old.conditions.clone(),
        external_id: old.external_id.clone(),
        origin: old.origin.clone(),
    };
    let (ok, reason, message, transient) = match ctx.psa_client(&key) {
        None => (
            false,
            "ConnectionNotReady".to_string(),
            format!(
                "PsaConnection {:?} is missing or not authenticated",
                key.name
            ),
            false,
        ),
        Some(psa) => match ensure(s, psa.as_ref(), &mut status).await {
            Ok(msg) => (true, "Ready".to_string(), msg, false),
            Err(Failure::Spec(msg)) => (false, "InvalidSpec".to_string(), msg, false),
            Err(Failure::Psa(e)) => (
                false,
                e.reason().to_string(),
                e.to_string(),
                e.is_transient(),
            ),
        },
    };
    let now = Timestamp::now();
    let g = s.metadata.generation;
    set_condition(
        &mut status.conditions,
        make_condition(&old.conditions, READY, ok, &reason, message.clone(), g, now),
    );
    let synced_reason = if transient {
        "PsaUnavailable"
    } else {
        "ReconcileSuccess"
    };
    set_condition(
        &mut status.conditions,
        make_condition(
            &old.conditions,
            SYNCED,
            !transient,
            synced_reason,
            if transient {
                message.clone()
            } else {
                "status reflects the PSA".into()
            },
            g,
            now,
        ),
    );
    let before = find_condition(&old.conditions, READY);
    if before
        .map(|b| b.status != if ok { "True" } else { "False" } || b.reason != reason)
        .unwrap_or(true)
    {
        let warning = super::event_type::is_warning(ok, &reason);
        ctx.event(s, warning, &reason, "EnsureCatalogService", message)
            .await;
    }
    if status != old {
        let api: Api<ContractService> = Api::namespaced(ctx.client.clone(), &ns);
        super::apply_status(&api, &s.name_any(), "ContractService", json!(status)).await?;
    }
    Ok(if transient {
        Action::requeue(Duration::from_secs(15))
    } else {
        Action::requeue(ctx.default_revalidate)
    })
}

enum Failure {
    Spec(String),
    Psa(PsaError),
}

impl From<PsaError> for Failure {
    fn from(e: PsaError) -> Self {
        Failure::Psa(e)
    }
}

/// Adopts or creates the service and corrects drift. Looks up by name before creating, so a crash
/// between create and status write never creates a second one.
async fn ensure(
    s: &ContractService,
    psa: &dyn Psa,
    status: &mut ContractServiceStatus,
) -> Result<String, Failure> {
    let wanted = wanted_spec(s).map_err(Failure::Spec)?;
    let existing = psa.find_catalog_service(&wanted.name).await?;
    match existing {
        None => {
            let created = psa.create_catalog_service(&wanted).await?;
            status.external_id = Some(created.id.clone());
            status.origin = Some("Created".into());
            Ok(format!(
                "created catalog service {:?} (id {})",
                created.name, created.id
            ))
        }
        Some(found) => {
            if status.external_id.as_deref() != Some(found.id.as_str()) {
                status.external_id = Some(found.id.clone());
                if status.origin.is_none() {
                    status.origin = Some("Adopted".into());
                }
            }
            let fields = drift(&found, &wanted);
            if fields.is_empty() {
                Ok(format!(
                    "catalog service {:?} (id {}) matches the spec",
                    found.name, found.id
                ))
            } else {
                psa.update_catalog_service(&found.id, &wanted).await?;
                Ok(format!(
                    "corrected {} of catalog service {:?} (id {})",
                    fields.join(", "),
                    found.name,
                    found.id
                ))
            }
        }
    }
}

async fn cleanup(s: &ContractService, ctx: &Context) -> Result<Action, ReconcileError> {
    if s.spec.deletion_policy.unwrap_or_default() == DeletionPolicy::Orphan {
        ctx.event(
            s,
            false,
            "Orphaned",
            "Delete",
            "deletionPolicy Orphan: the service stays in the PSA".into(),
        )
        .await;
        return Ok(Action::await_change());
    }
    let ns = s.namespace().unwrap_or_default();
    let key = ConnectionKey::new(ns, s.spec.connection_ref.name.clone());
    let Some(id) = s.status.as_ref().and_then(|st| st.external_id.clone()) else {
        return Ok(Action::await_change());
    };
    let Some(psa) = ctx.psa_client(&key) else {
        // Without a client the PSA cannot be told; keep the finalizer and retry.
        ctx.event(
            s,
            true,
            "ConnectionNotReady",
            "Delete",
            "waiting for the connection to delete the service".into(),
        )
        .await;
        return Err(ReconcileError::Psa(PsaError::Transient {
            status: None,
            message: format!("PsaConnection {:?} is not ready", key.name),
            retry_after: None,
        }));
    };
    match psa.delete_catalog_service(&id).await {
        Ok(()) | Err(PsaError::NotFound { .. }) => {
            ctx.event(
                s,
                false,
                "Deleted",
                "Delete",
                format!("catalog service {id} removed from the PSA"),
            )
            .await;
            Ok(Action::await_change())
        }
        Err(e) => Err(ReconcileError::Psa(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_lists_fields() {
        let existing = CatalogService {
            id: "1".into(),
            name: "S".into(),
            description: "d".into(),
            cost: 10_000,
            price: 30_000,
        };
        let mut wanted = CatalogServiceSpec {
            name: "S".into(),
            description: "d".into(),
            cost: 10_000,
            price: 30_000,
        };
        assert!(drift(&existing, &wanted).is_empty());
        wanted.price = 35_000;
        wanted.description = "new".into();
        assert_eq!(drift(&existing, &wanted), ["description", "price"]);
    }
}
