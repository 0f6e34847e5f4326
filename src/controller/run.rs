//! Starts the three controllers with the watch relations between them:
//! Secret → PsaConnection (credentials, intake token, SMTP), PsaConnection → its CustomerMappings
//! and ContractServices, ContractService → the mappings that reference it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{future, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, Controller, PredicateConfig, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{ContractService, CustomerMapping, PsaConnection};
use crate::resolved::ConnectionKey;

use super::claims::Claims;
use super::context::Context;
use super::index::MappingInventory;
use super::mapping::Watched;
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
    .modify(drop_managed_fields)
    .reflect(conn_writer)
    .applied_objects()
    .predicate_filter(spec_predicate, PredicateConfig::default());
    let secret_index = conn_reader.clone();
    let connections = Controller::for_stream(conn_stream, conn_reader.clone())
        .with_config(bounded())
        // Secrets are watched as metadata only: the operator never caches Secret data (Helm
        // release Secrets and every other Secret of the cluster stay out of its memory); a
        // referenced one is read in full, by name, when its connection reconciles.
        .watches_stream(
            watcher(
                api::<PartialObjectMeta<Secret>>(&client, &scope),
                watcher::Config::default(),
            )
            .default_backoff()
            .touched_objects(),
            move |secret: PartialObjectMeta<Secret>| {
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
        // The store's health is a condition of every connection.
        .reconcile_all_on(ctx.store_health.changes())
        .graceful_shutdown_on(shutdown.clone())
        .run(connection::reconcile, error_policy, ctx.clone())
        .for_each(|_| future::ready(()));

    // CustomerMapping: re-checked when its connection is (un)authenticated in this process (the
    // publisher says so; a status write may not happen after a restart) or its service changes.
    let (map_reader, map_writer) = reflector::store::<CustomerMapping>();
    // Who claims which organization, fed by this watch before the reflector's cache: the
    // duplicate check of a reconcile and the re-check of the rivals of a changed mapping.
    let claims: Arc<Mutex<Claims>> = Arc::default();
    let (rivals_tx, rivals_changed) = futures::channel::mpsc::unbounded();
    let map_stream = watcher(
        api::<CustomerMapping>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(drop_managed_fields)
    .map_ok({
        let claims = claims.clone();
        move |event| {
            let touched = claims
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .observe(&event);
            for (ns, name) in touched {
                let _ = rivals_tx.unbounded_send(ObjectRef::new(&name).within(&ns));
            }
            event
        }
    })
    .reflect(map_writer)
    .applied_objects()
    .predicate_filter(spec_predicate, PredicateConfig::default());
    let service_changes = watcher(
        api::<ContractService>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let by_conn = map_reader.clone();
    let by_service = map_reader.clone();
    let watched = Watched {
        connections: conn_reader.clone(),
        mappings: map_reader.clone(),
        claims,
    };
    let mapping_triggers = ctx.publisher.connection_changes().flat_map(move |key| {
        futures::stream::iter(
            by_conn
                .state()
                .into_iter()
                .filter(|m| of_connection(m.namespace(), &m.spec.connection_ref.name, &key))
                .map(|m| ObjectRef::from_obj(&*m))
                .collect::<Vec<_>>(),
        )
    });
    // Mappings with their own ticket overrides or routes are resolved against the connection's
    // ticket settings: re-checked when those change (the others do not depend on them).
    let by_settings = map_reader.clone();
    let override_triggers = ctx
        .publisher
        .ticket_settings_changes()
        .flat_map(move |key| {
            futures::stream::iter(
                by_settings
                    .state()
                    .into_iter()
                    .filter(|m| {
                        of_connection(m.namespace(), &m.spec.connection_ref.name, &key)
                            && super::resolve::routes::has_overrides(&m.spec)
                    })
                    .map(|m| ObjectRef::from_obj(&*m))
                    .collect::<Vec<_>>(),
            )
        });
    let mappings = Controller::for_stream(map_stream, map_reader.clone())
        .with_config(bounded())
        .reconcile_on(mapping_triggers)
        .reconcile_on(override_triggers)
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
        // Added, deleted or renamed rivals (same connection and organization) matter too.
        .reconcile_on(rivals_changed)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            move |m, ctx| {
                let watched = watched.clone();
                async move { mapping::reconcile(m, ctx, watched).await }
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| future::ready(()));

    // ContractService: re-checked when its connection is (un)authenticated in this process.
    let (svc_reader, svc_writer) = reflector::store::<ContractService>();
    let svc_stream = watcher(
        api::<ContractService>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(drop_managed_fields)
    .reflect(svc_writer)
    .applied_objects()
    .predicate_filter(spec_predicate, PredicateConfig::default());
    let svc_by_conn = svc_reader.clone();
    let service_watched = contract_service::Watched {
        connections: conn_reader.clone(),
        services: svc_reader.clone(),
    };
    let service_triggers = ctx.publisher.connection_changes().flat_map(move |key| {
        futures::stream::iter(
            svc_by_conn
                .state()
                .into_iter()
                .filter(|s| of_connection(s.namespace(), &s.spec.connection_ref.name, &key))
                .map(|s| ObjectRef::from_obj(&*s))
                .collect::<Vec<_>>(),
        )
    });
    let services = Controller::for_stream(svc_stream, svc_reader.clone())
        .with_config(bounded())
        .reconcile_on(service_triggers)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            move |s, ctx| {
                let watched = service_watched.clone();
                async move { contract_service::reconcile(s, ctx, watched).await }
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| future::ready(()));

    let inventory = inventory(
        ctx.clone(),
        conn_reader,
        map_reader,
        svc_reader,
        shutdown.clone(),
    );
    let publisher = ctx.publisher.clone();
    let publishing = async move { publisher.run(shutdown.clone()).await };
    futures::join!(connections, mappings, services, inventory, publishing);
}

/// A resource of namespace `ns` referencing connection `name` belongs to `key`.
fn of_connection(ns: Option<String>, name: &str, key: &ConnectionKey) -> bool {
    ns.as_deref() == Some(key.namespace.as_str()) && name == key.name
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
        || crate::dispatch::intake::sources::secret_names(&s.sources)
            .iter()
            .any(|n| n == name)
}

/// How often the inventory of existing resources is handed to the publisher.
const INVENTORY_EVERY: Duration = Duration::from_millis(500);

/// Tells the publisher which connections and mappings exist in the API server: the initial
/// list (a connection's routing is complete only once its mappings are known), deletions (no
/// finalizer is needed for in-memory state) and organizations changed in a spec; and forgets
/// the remembered Warnings of objects deleted while broken.
async fn inventory(
    ctx: Arc<Context>,
    conns: reflector::Store<PsaConnection>,
    maps: reflector::Store<CustomerMapping>,
    services: reflector::Store<ContractService>,
    shutdown: impl future::Future<Output = ()> + Unpin,
) {
    let sweep = async {
        if conns.wait_until_ready().await.is_err() || maps.wait_until_ready().await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval(INVENTORY_EVERY);
        loop {
            tick.tick().await;
            let live: HashSet<ConnectionKey> = conns
                .state()
                .iter()
                .map(|c| ConnectionKey::new(c.namespace().unwrap_or_default(), c.name_any()))
                .collect();
            for key in ctx.publisher.connection_keys() {
                if !live.contains(&key) {
                    ctx.publisher.remove_connection(&key);
                    ctx.forget_connection(&key);
                    ctx.metrics.forget_connection(&key);
                }
            }
            ctx.publisher
                .sync_inventory(mapping_inventory(&maps.state()));
            ctx.metrics
                .set_incomplete_connections(ctx.publisher.incomplete_connections());
            if !ctx.warned.is_empty() {
                forget_deleted_warnings(&ctx, &conns, &maps, &services);
            }
        }
    };
    futures::pin_mut!(sweep);
    future::select(sweep, shutdown).await;
}

/// Drops the Warning records of objects the caches no longer hold (a deleted broken resource;
/// one created again under its name has a new uid and warns afresh).
fn forget_deleted_warnings(
    ctx: &Context,
    conns: &reflector::Store<PsaConnection>,
    maps: &reflector::Store<CustomerMapping>,
    services: &reflector::Store<ContractService>,
) {
    fn uids<K: Resource>(objects: Vec<Arc<K>>) -> impl Iterator<Item = String> {
        objects.into_iter().filter_map(|o| o.meta().uid.clone())
    }
    let live: HashSet<String> = uids(conns.state())
        .chain(uids(maps.state()))
        .chain(uids(services.state()))
        .collect();
    ctx.warned.forget_unless(|uid| live.contains(uid));
}

/// Connection → mapping name → organization, of the mappings not being deleted.
fn mapping_inventory(maps: &[Arc<CustomerMapping>]) -> MappingInventory {
    let mut inv = MappingInventory::new();
    for m in maps
        .iter()
        .filter(|m| m.meta().deletion_timestamp.is_none())
    {
        let key = ConnectionKey::new(
            m.namespace().unwrap_or_default(),
            m.spec.connection_ref.name.clone(),
        );
        inv.entry(key)
            .or_default()
            .insert(m.name_any(), m.spec.organization.clone());
    }
    inv
}

/// Reconciles in flight per controller. Unbounded (kube's default), applying 10,000 mappings
/// starts 10,000 reconciles at once: each holds its own API-server connection, buffers and PSA
/// answers, and the heap grows with the number of mappings instead of with this bound (heap
/// profile in docs/benchmarks.md, "Memory"). A mapping's reconcile mostly waits (for the
/// publisher's next batch, for its status write), so the bound also sets a wave's pace:
/// 32 gave about 300 mappings/s; 64 keeps memory bounded and the wave twice as fast.
const MAX_CONCURRENT_RECONCILES: u16 = 64;

fn bounded() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(MAX_CONCURRENT_RECONCILES)
}

/// The cached copies of watched objects keep no `metadata.managedFields`: nothing here reads
/// them, and with the spec applied by one manager and the status written by two more they are
/// a large part of each cached object (issue [S], memory with 10,000 mappings).
fn drop_managed_fields<K: kube::ResourceExt>(obj: &mut K) {
    obj.managed_fields_mut().clear();
}
