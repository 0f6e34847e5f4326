//! Starts the three controllers with the watch relations between them:
//! Secret → PsaConnection (credentials, intake token, SMTP), PsaConnection → its CustomerMappings
//! and ContractServices, ContractService → the mappings that reference it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{future, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, Controller, PredicateConfig, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{ContractService, CustomerMapping, PsaConnection};
use crate::resolved::ConnectionKey;

use super::context::Context;
use super::{connection, contract_service, mapping, ReconcileError, RECONCILE_REQUESTED_AT};

/// Which namespaces to watch.
#[derive(Clone, Debug)]
pub enum Scope {
    All,
    Namespace(String),
}

fn api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        Scope::All => Api::all(client.clone()),
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
    }
}

/// Reconcile when the spec, the deletion state or the force annotation changes — not on our own
/// status writes (which would loop).
fn spec_predicate<K: Resource>(obj: &K) -> Option<u64> {
    let mut h = DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    obj.meta().finalizers.hash(&mut h);
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
        .hash(&mut h);
    Some(h.finish())
}

/// A connection change that matters to its dependents: spec, or whether it is authenticated/ready.
fn connection_readiness(c: &PsaConnection) -> Option<u64> {
    let mut h = DefaultHasher::new();
    c.meta().generation.hash(&mut h);
    c.meta().uid.hash(&mut h);
    if let Some(st) = &c.status {
        for cond in &st.conditions {
            (&cond.type_, &cond.status).hash(&mut h);
        }
    }
    Some(h.finish())
}

fn error_policy<K>(_obj: Arc<K>, err: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, category = err.category(), "reconcile failed");
    match err.category() {
        "transient" => Action::requeue(Duration::from_secs(10)),
        _ => Action::requeue(Duration::from_secs(300)),
    }
}

/// Runs the controllers until `shutdown` resolves.
pub async fn run_controllers(
    ctx: Arc<Context>,
    scope: Scope,
    shutdown: impl future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let shutdown = future::FutureExt::shared(Box::pin(shutdown));

    // PsaConnection, with Secrets it references mapped back to it.
    let (conn_reader, conn_writer) = reflector::store::<PsaConnection>();
    let conn_stream = watcher(
        api::<PsaConnection>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(conn_writer)
    .applied_objects()
    .predicate_filter(spec_predicate, PredicateConfig::default());
    let secret_index = conn_reader.clone();
    let connections = Controller::for_stream(conn_stream, conn_reader.clone())
        .watches(
            api::<Secret>(&client, &scope),
            watcher::Config::default(),
            move |secret: Secret| {
                let ns = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                secret_index
                    .state()
                    .into_iter()
                    .filter(|c| {
                        c.namespace().as_deref() == Some(ns.as_str()) && references_secret(c, &name)
                    })
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(connection::reconcile, error_policy, ctx.clone())
        .for_each(|_| future::ready(()));

    // CustomerMapping: re-checked when its connection becomes (un)ready or its service changes.
    let (map_reader, map_writer) = reflector::store::<CustomerMapping>();
    let map_stream = watcher(
        api::<CustomerMapping>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(map_writer)
    .applied_objects()
    .predicate_filter(spec_predicate, PredicateConfig::default());
    let conn_changes = watcher(
        api::<PsaConnection>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(connection_readiness, PredicateConfig::default());
    let service_changes = watcher(
        api::<ContractService>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    // Deleted or added siblings (same connection and organization) matter too.
    let sibling_changes = watcher(
        api::<CustomerMapping>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let by_sibling = map_reader.clone();
    let by_conn = map_reader.clone();
    let by_service = map_reader.clone();
    let store_for_reconcile = map_reader.clone();
    let mappings = Controller::for_stream(map_stream, map_reader.clone())
        .watches_stream(conn_changes, move |c: PsaConnection| {
            let ns = c.namespace();
            let name = c.name_any();
            by_conn
                .state()
                .into_iter()
                .filter(|m| m.namespace() == ns && m.spec.connection_ref.name == name)
                .map(|m| ObjectRef::from_obj(&*m))
                .collect::<Vec<_>>()
        })
        .watches_stream(service_changes, move |s: ContractService| {
            let ns = s.namespace();
            let name = s.name_any();
            by_service
                .state()
                .into_iter()
                .filter(|m| {
                    m.namespace() == ns
                        && m.spec
                            .contract_service
                            .as_ref()
                            .map(|cs| cs.service_ref.name == name)
                            .unwrap_or(false)
                })
                .map(|m| ObjectRef::from_obj(&*m))
                .collect::<Vec<_>>()
        })
        .watches_stream(sibling_changes, move |changed: CustomerMapping| {
            let ns = changed.namespace();
            let org = changed.spec.organization.trim().to_lowercase();
            let conn = changed.spec.connection_ref.name.clone();
            let me = changed.name_any();
            by_sibling
                .state()
                .into_iter()
                .filter(|m| {
                    m.namespace() == ns
                        && m.name_any() != me
                        && m.spec.connection_ref.name == conn
                        && m.spec.organization.trim().to_lowercase() == org
                })
                .map(|m| ObjectRef::from_obj(&*m))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown.clone())
        .run(
            move |m, ctx| {
                let store = store_for_reconcile.clone();
                async move { mapping::reconcile(m, ctx, store).await }
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| future::ready(()));

    // ContractService: re-checked when its connection becomes (un)ready.
    let (svc_reader, svc_writer) = reflector::store::<ContractService>();
    let svc_stream = watcher(
        api::<ContractService>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(svc_writer)
    .applied_objects()
    .predicate_filter(spec_predicate, PredicateConfig::default());
    let conn_changes2 = watcher(
        api::<PsaConnection>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(connection_readiness, PredicateConfig::default());
    let svc_by_conn = svc_reader.clone();
    let services = Controller::for_stream(svc_stream, svc_reader.clone())
        .watches_stream(conn_changes2, move |c: PsaConnection| {
            let ns = c.namespace();
            let name = c.name_any();
            svc_by_conn
                .state()
                .into_iter()
                .filter(|s| s.namespace() == ns && s.spec.connection_ref.name == name)
                .map(|s| ObjectRef::from_obj(&*s))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown.clone())
        .run(contract_service::reconcile, error_policy, ctx.clone())
        .for_each(|_| future::ready(()));

    let janitor = janitor(ctx.clone(), conn_reader, map_reader, shutdown.clone());
    let publisher_ctx = ctx.clone();
    let publisher = async move { publisher_ctx.customer_publisher(shutdown.clone()).await };
    futures::join!(connections, mappings, services, janitor, publisher);
}

fn references_secret(c: &PsaConnection, name: &str) -> bool {
    let s = &c.spec;
    super::factory::credentials_secret_name(&s.provider) == Some(name)
        || s.intake
            .as_ref()
            .map(|i| i.token_secret_ref.name == name)
            .unwrap_or(false)
        || s.failsafe
            .as_ref()
            .map(|f| f.smtp_secret_ref.name == name)
            .unwrap_or(false)
}

/// Removes deleted connections and mappings from the dispatcher's view. Deletions are not
/// reconciled (no finalizer is needed for in-memory state), so this sweeps every few seconds.
async fn janitor(
    ctx: Arc<Context>,
    conns: reflector::Store<PsaConnection>,
    maps: reflector::Store<CustomerMapping>,
    shutdown: impl future::Future<Output = ()> + Unpin,
) {
    let sweep = async {
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        loop {
            tick.tick().await;
            if conns.wait_until_ready().await.is_err() || maps.wait_until_ready().await.is_err() {
                continue;
            }
            let live_conns: std::collections::HashSet<ConnectionKey> = conns
                .state()
                .iter()
                .map(|c| ConnectionKey::new(c.namespace().unwrap_or_default(), c.name_any()))
                .collect();
            for key in ctx.registry.keys() {
                if !live_conns.contains(&key) {
                    ctx.registry.remove(&key);
                    ctx.forget_connection(&key);
                }
            }
            let live_maps: std::collections::HashSet<(String, String)> = maps
                .state()
                .iter()
                .map(|m| (m.namespace().unwrap_or_default(), m.name_any()))
                .collect();
            let mut touched = vec![];
            {
                let mut st = ctx.state();
                for (key, by_name) in st.customers.iter_mut() {
                    let before = by_name.len();
                    by_name.retain(|name, _| {
                        live_maps.contains(&(key.namespace.clone(), name.clone()))
                    });
                    if by_name.len() != before {
                        touched.push(key.clone());
                    }
                }
            }
            for key in touched {
                connection::republish_customers(&ctx, &key);
            }
        }
    };
    futures::pin_mut!(sweep);
    future::select(sweep, shutdown).await;
}
