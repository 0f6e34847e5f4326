//! ContractService reconciler: the catalog service exists in the PSA (adopted by name or
//! created), its description/cost/price follow the spec, and deletion honours `deletionPolicy`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};

use crate::api::condition_types::*;
use crate::api::{ContractService, ContractServiceStatus, DeletionPolicy, PsaConnection};
use crate::psa::{Psa, PsaError};
use crate::resolved::ConnectionKey;

use super::context::Context;
use super::resolve::catalog::{
    decide_catalog, drift, may_delete, rival_claims, target_of, tenant_of, wanted_spec,
    CatalogAction, Claim, CREATED,
};
use super::status::{finish, Conditions};
use super::ReconcileError;

/// Finalizer that lets `deletionPolicy: Delete` remove the service from the PSA first.
pub const FINALIZER: &str = "psa-operator.io/contract-service";

/// What the reconciler reads besides the service itself (the controllers' caches).
#[derive(Clone)]
pub struct Watched {
    pub connections: Store<PsaConnection>,
    pub services: Store<ContractService>,
}

pub async fn reconcile(
    s: Arc<ContractService>,
    ctx: Arc<Context>,
    watched: Watched,
) -> Result<Action, ReconcileError> {
    if !ctx.is_leader() {
        // Services only change the PSA and status (no routing): the leader's work alone.
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let started = Instant::now();
    let ns = s.namespace().unwrap_or_default();
    let api: Api<ContractService> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, s, |event| async {
        match event {
            Finalizer::Apply(s) => apply(&s, &ctx, &watched).await,
            Finalizer::Cleanup(s) => cleanup(&s, &ctx, &watched).await,
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

async fn apply(
    s: &ContractService,
    ctx: &Context,
    watched: &Watched,
) -> Result<Action, ReconcileError> {
    let key = ConnectionKey::new(
        s.namespace().unwrap_or_default(),
        s.spec.connection_ref.name.clone(),
    );
    let old = remembered_status(s, ctx).await?;
    let mut status = ContractServiceStatus {
        observed_generation: s.metadata.generation,
        conditions: old.conditions.clone(),
        external_id: old.external_id.clone(),
        origin: old.origin.clone(),
    };
    let client = ctx
        .psa_client(&key)
        .filter(|_| ctx.publisher.is_authenticated(&key));
    let rivals = rivals(s, watched);
    let (ok, reason, message, transient) = match client {
        // Two resources would correct one PSA item against each other: neither touches it.
        _ if !rivals.is_empty() => (
            false,
            "DuplicateClaim".to_string(),
            format!(
                "catalog item {:?} of this PSA tenant is also claimed by ContractService {}; neither changes it until one is removed",
                s.spec.name,
                rivals.join(", ")
            ),
            false,
        ),
        None if ctx.publisher.is_unreachable(&key) => (
            false,
            "PsaUnavailable".to_string(),
            format!("PsaConnection {:?} cannot reach its PSA", key.name),
            true,
        ),
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
            Err(Failure::NotAdopted(msg)) => (false, "AdoptionNotRequested".to_string(), msg, false),
            Err(Failure::Psa(e)) => (
                false,
                e.reason().to_string(),
                e.to_string(),
                e.is_transient(),
            ),
        },
    };
    let mut conds = Conditions::new(&old.conditions, s.metadata.generation, Timestamp::now());
    if transient {
        // An outage does not make the service fail: Ready stays as known within the grace.
        conds.psa_unavailable(&message, ctx.ready_grace);
    } else {
        conds.set(READY, ok, &reason, message.clone());
        conds.set(SYNCED, true, "ReconcileSuccess", "status reflects the PSA");
    }
    conds.set_kstatus();
    let transitions = conds.transitions();
    status.conditions = conds.into_vec();
    finish(ctx, s, "ContractService", &transitions, &old, &status).await?;
    // A claim conflict may end by a sibling's deletion, which does not trigger this resource.
    Ok(if transient || reason == "DuplicateClaim" {
        Action::requeue(Duration::from_secs(15))
    } else {
        Action::requeue(ctx.default_revalidate)
    })
}

/// The status that says which catalog item this resource manages. The reflector's copy can lag
/// behind the status this reconciler wrote a moment ago: a connection change may trigger the
/// next reconcile before the watch delivers that write. Deciding from such a copy would take the
/// item just created for someone else's (`AdoptionNotRequested`) and write the status back
/// without its id — forgotten for good. So when the cached copy names no item, the API server's
/// copy decides (a read only in that case; a managed service never pays for it).
pub async fn remembered_status(
    s: &ContractService,
    ctx: &Context,
) -> Result<ContractServiceStatus, ReconcileError> {
    let cached = s.status.clone().unwrap_or_default();
    if cached.external_id.is_some() {
        return Ok(cached);
    }
    let api: Api<ContractService> =
        Api::namespaced(ctx.client.clone(), &s.namespace().unwrap_or_default());
    match api.get_opt(&s.name_any()).await {
        Ok(Some(live)) => Ok(live.status.unwrap_or_default()),
        Ok(None) => Ok(cached),
        Err(e) => Err(ReconcileError::Kube(e)),
    }
}

enum Failure {
    Spec(String),
    /// An item of that name exists and `spec.adopt` is not true.
    NotAdopted(String),
    Psa(PsaError),
}

impl From<PsaError> for Failure {
    fn from(e: PsaError) -> Self {
        Failure::Psa(e)
    }
}

/// The other ContractServices claiming the same catalog item of the same PSA tenant (through
/// this connection or another one to the same tenant).
fn rivals(s: &ContractService, watched: &Watched) -> Vec<String> {
    let connections = watched.connections.state();
    let tenant = |ns: &str, conn: &str| {
        connections
            .iter()
            .find(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == conn)
            .and_then(|c| tenant_of(&c.spec.provider))
    };
    let claim = |svc: &ContractService| {
        let ns = svc.namespace().unwrap_or_default();
        tenant(&ns, &svc.spec.connection_ref.name).map(|t| Claim {
            resource: format!("{ns}/{}", svc.name_any()),
            tenant: t,
            item: svc.spec.name.clone(),
        })
    };
    let Some(me) = claim(s) else {
        return vec![];
    };
    let all: Vec<Claim> = watched
        .services
        .state()
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .filter_map(|o| claim(o))
        .collect();
    rival_claims(&me, &all)
}

/// Creates the service, or keeps the one it manages in step. Looks up by name before creating,
/// so a crash between create and status write never creates a second one; an item it did not
/// create is adopted only when the spec asks.
async fn ensure(
    s: &ContractService,
    psa: &dyn Psa,
    status: &mut ContractServiceStatus,
) -> Result<String, Failure> {
    let wanted = wanted_spec(s).map_err(Failure::Spec)?;
    let existing = psa.find_catalog_service(&wanted.name).await?;
    match decide_catalog(existing.as_ref(), status, &s.spec) {
        CatalogAction::Create => {
            let created = psa.create_catalog_service(&wanted).await?;
            status.external_id = Some(created.id.clone());
            status.origin = Some(CREATED.into());
            Ok(format!(
                "created catalog service {:?} (id {})",
                created.name, created.id
            ))
        }
        CatalogAction::RefuseAdoption { id } => Err(Failure::NotAdopted(format!(
            "a catalog item named {:?} already exists in the PSA (id {id}); set spec.adopt: true to manage it",
            wanted.name
        ))),
        CatalogAction::Manage { id, full, origin } => {
            let Some(found) = existing else {
                return Err(Failure::Spec("catalog item vanished".into()));
            };
            status.external_id = Some(id.clone());
            status.origin = Some(origin.into());
            let target = target_of(&found, &wanted, full, &s.spec);
            let fields = drift(&found, &target);
            if fields.is_empty() {
                return Ok(format!(
                    "catalog service {:?} (id {id}, {}) matches the spec",
                    found.name,
                    origin.to_lowercase()
                ));
            }
            psa.update_catalog_service(&id, &target).await?;
            Ok(format!(
                "corrected {} of catalog service {:?} (id {id})",
                fields.join(", "),
                found.name
            ))
        }
    }
}

async fn cleanup(
    s: &ContractService,
    ctx: &Context,
    watched: &Watched,
) -> Result<Action, ReconcileError> {
    // A delete right after the create must not orphan the item for want of a fresh status.
    let status = remembered_status(s, ctx).await?;
    if !may_delete(&s.spec, &status) {
        let why = if s.spec.deletion_policy.unwrap_or_default() == DeletionPolicy::Orphan {
            "deletionPolicy Orphan: the service stays in the PSA"
        } else {
            "the item was adopted, not created, and managementPolicy is not Full: it stays in the PSA"
        };
        ctx.event(s, false, "Orphaned", "Delete", why.into()).await;
        return Ok(Action::await_change());
    }
    let ns = s.namespace().unwrap_or_default();
    let key = ConnectionKey::new(ns.clone(), s.spec.connection_ref.name.clone());
    // The connection is gone or going (Argo prune, namespace deletion): nothing can reach the
    // PSA any more, so let go instead of staying Terminating.
    let connection_alive = watched.connections.state().iter().any(|c| {
        c.namespace().as_deref() == Some(ns.as_str())
            && c.name_any() == key.name
            && c.meta().deletion_timestamp.is_none()
    });
    if !connection_alive {
        ctx.event(
            s,
            true,
            "ConnectionGone",
            "Delete",
            format!(
                "PsaConnection {:?} is deleted: the catalog service stays in the PSA (orphaned)",
                key.name
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    let Some(id) = status.external_id.clone() else {
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
