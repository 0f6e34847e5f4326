//! The operator process (`psa-operator run`): reconcilers, ticket dispatcher, intake and the
//! metrics/health server, wired together and stopped together.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use prometheus_client::registry::Registry as MetricsRegistry;

use crate::controller::context::Context;
use crate::controller::factory::{PsaFactory, RealPsaFactory};
use crate::controller::metrics::ControllerMetrics;
use crate::controller::problem_events::ConnectionProblemEvents;
use crate::controller::run::{run_controllers, Scope};
use crate::controller::stats_sink::ConnectionStatusSink;
use crate::dispatch::intake::server::{serve, ServerLimits};
use crate::dispatch::intake::{self, IntakeLimits, IntakeState};
use crate::dispatch::metrics::DispatchMetrics;
use crate::dispatch::store::{self, Store, StoreLocation};
use crate::dispatch::worker::{Dispatcher, DispatcherOptions};
use crate::leader::{LeaderFlag, LeaderMetrics};
use crate::psa::instrumented::PsaCallMetrics;
use crate::resolved::Registry;

/// Builds a kube client from a kubeconfig file, or the in-cluster / default configuration.
pub async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// Shared metrics registry, served at `/metrics`.
pub type SharedMetrics = Arc<Mutex<MetricsRegistry>>;

#[derive(Clone)]
struct HealthState {
    metrics: SharedMetrics,
    ready: Arc<std::sync::atomic::AtomicBool>,
    /// When set, `/readyz` also needs the store to answer: a replica that cannot reach
    /// PostgreSQL leaves the Service's endpoints, so alerts go to a replica that can take them.
    store: Option<Arc<dyn Store>>,
}

async fn metrics_handler(State(st): State<HealthState>) -> impl IntoResponse {
    let mut body = String::new();
    let reg = st.metrics.lock().expect("metrics lock poisoned");
    match prometheus_client::encoding::text::encode(&mut body, &reg) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Ready once started and while the store takes writes: with a full disk or a removed store
/// file the intake answers 503, and readiness says so.
async fn readyz(State(st): State<HealthState>) -> impl IntoResponse {
    if !st.ready.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting");
    }
    if let Some(store) = &st.store {
        // A write probe (the file replaced or removed, the disk full, PostgreSQL gone).
        let now = chrono::Utc::now().timestamp_millis();
        let probe = tokio::time::timeout(STORE_PROBE_TIMEOUT, store.health(now)).await;
        if !matches!(probe, Ok(Ok(_))) {
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
        }
    }
    (StatusCode::OK, "ok")
}

/// How long `/readyz` waits for the store before calling the replica unready.
const STORE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `/metrics`, `/healthz`, `/readyz`.
pub fn health_router(metrics: SharedMetrics, ready: Arc<std::sync::atomic::AtomicBool>) -> Router {
    health_router_with(metrics, ready, None)
}

/// `/metrics`, `/healthz`, `/readyz`; `/readyz` also probes `store` when given.
pub fn health_router_with(
    metrics: SharedMetrics,
    ready: Arc<std::sync::atomic::AtomicBool>,
    store: Option<Arc<dyn Store>>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(HealthState {
            metrics,
            ready,
            store,
        })
}

/// How often the store's health is probed for the connections' `StoreHealthy` condition.
const STORE_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Leader election of the controllers (several replicas): which Lease, and who we are.
pub type LeaderElection = crate::leader::ElectionSettings;

/// Options of the operator process.
pub struct OperatorOptions {
    pub scope: Scope,
    pub store: StoreLocation,
    pub intake_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub factory: Arc<dyn PsaFactory>,
    /// See `DispatcherOptions::unresolved_hold`.
    pub unresolved_hold: std::time::Duration,
    /// See `Context::ready_grace`.
    pub ready_grace: std::time::Duration,
    /// `None`: this replica always leads (one replica, `dev`).
    pub leader_election: Option<LeaderElection>,
    /// Name of this replica's lane claims in a shared store (the pod name).
    pub replica: String,
    /// How long a lane claim lasts before another replica may take the lane over.
    pub claim_lease: Option<std::time::Duration>,
    /// Connection limits of the intake and metrics listeners.
    pub server: ServerLimits,
}

impl OperatorOptions {
    pub fn with_defaults(
        store: impl Into<StoreLocation>,
        intake_addr: SocketAddr,
        metrics_addr: SocketAddr,
    ) -> Self {
        OperatorOptions {
            scope: Scope::All,
            store: store.into(),
            intake_addr,
            metrics_addr,
            factory: Arc::new(RealPsaFactory),
            unresolved_hold: DispatcherOptions::default().unresolved_hold,
            ready_grace: std::time::Duration::from_secs(30 * 60),
            leader_election: None,
            replica: store::postgres::default_owner(),
            claim_lease: None,
            server: ServerLimits::default(),
        }
    }
}

/// The operator's two listeners, bound before it starts (so `dev` can report real ports).
pub struct OperatorListeners {
    pub metrics: tokio::net::TcpListener,
    pub intake: tokio::net::TcpListener,
}

impl OperatorListeners {
    /// Binds `opts.metrics_addr` and `opts.intake_addr`; the error names the address.
    pub async fn bind(opts: &OperatorOptions) -> anyhow::Result<Self> {
        let metrics = tokio::net::TcpListener::bind(opts.metrics_addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding metrics address {}: {e}", opts.metrics_addr))?;
        let intake = tokio::net::TcpListener::bind(opts.intake_addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding intake address {}: {e}", opts.intake_addr))?;
        Ok(OperatorListeners { metrics, intake })
    }
}

/// Runs the operator until `shutdown` resolves.
pub async fn run_operator(
    client: Client,
    opts: OperatorOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let listeners = OperatorListeners::bind(&opts).await?;
    run_operator_on(client, opts, listeners, shutdown).await
}

/// Runs the operator on listeners bound by the caller until `shutdown` resolves.
pub async fn run_operator_on(
    client: Client,
    opts: OperatorOptions,
    listeners: OperatorListeners,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let registry = Registry::starting();
    let mut metrics = MetricsRegistry::default();
    let controller_metrics = Arc::new(ControllerMetrics::register(&mut metrics));
    let psa_calls = PsaCallMetrics::register(&mut metrics);
    let dispatch_metrics = Arc::new(DispatchMetrics::register(&mut metrics));
    let leader_metrics = LeaderMetrics::register(&mut metrics);
    let store: Arc<dyn Store> = store::open(&opts.store, &opts.replica)
        .await
        .map_err(|e| anyhow::anyhow!("opening store {}: {e}", opts.store))?;
    if opts.leader_election.is_none() && opts.store.is_shared() {
        tracing::warn!("shared store without --leader-elect: run one replica only, or every replica writes statuses");
    }
    let mut dispatcher_options = DispatcherOptions {
        unresolved_hold: opts.unresolved_hold,
        ..Default::default()
    };
    if let Some(lease) = opts.claim_lease {
        dispatcher_options.claim_lease = lease;
    }
    let dispatcher = Dispatcher::with_options(
        registry.clone(),
        store.clone(),
        dispatch_metrics.clone(),
        dispatcher_options,
    );
    metrics.register_collector(Box::new(
        crate::dispatch::connection_metrics::ConnectionMetrics::new(
            registry.clone(),
            dispatcher.stats(),
            dispatch_metrics.clone(),
        ),
    ));
    let metrics: SharedMetrics = Arc::new(Mutex::new(metrics));
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let OperatorListeners {
        metrics: health,
        intake,
    } = listeners;
    tracing::info!(metrics = %health.local_addr()?, intake = %intake.local_addr()?, store = %opts.store, "operator starting");
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let health_srv = serve(
        health,
        health_router_with(metrics.clone(), ready.clone(), Some(store.clone())),
        opts.server.clone(),
        shutdown.clone(),
    );
    let intake_state = IntakeState {
        registry: registry.clone(),
        store: store.clone(),
        metrics: dispatch_metrics.clone(),
        limits: IntakeLimits::default(),
    };
    let intake_srv = serve(
        intake,
        intake::router(intake_state),
        opts.server.clone(),
        shutdown.clone(),
    );
    // Leadership: true while this replica may write statuses and PSA objects. Without an
    // election it always may; with one, it starts false and follows the Lease.
    let leader_flag: LeaderFlag = Arc::new(std::sync::atomic::AtomicBool::new(
        opts.leader_election.is_none(),
    ));
    leader_metrics
        .is_leader
        .set(i64::from(opts.leader_election.is_none()));
    let election = {
        let client = client.clone();
        let flag = leader_flag.clone();
        let shutdown = shutdown.clone();
        let election = opts.leader_election.clone();
        async move {
            if let Some(le) = election {
                crate::leader::run_election(client, le, flag, leader_metrics, shutdown).await;
            }
        }
    };

    let mut ctx = Context::new(
        client.clone(),
        registry.clone(),
        opts.factory.clone(),
        controller_metrics,
    );
    ctx.psa_calls = psa_calls;
    ctx.ready_grace = opts.ready_grace;
    // Only the leader writes statuses and changes the PSA; every replica keeps its routing.
    ctx.leader = leader_flag.clone();
    let store_probe = ctx
        .store_health
        .clone()
        .watch_store(store.clone(), STORE_PROBE_EVERY);
    let ctx = Arc::new(ctx);
    let status_sink = ConnectionStatusSink {
        client,
        leader: ctx.leader.clone(),
        metrics: ctx.metrics.clone(),
    };
    let dispatcher = dispatcher
        .with_stats_sink(Arc::new(status_sink))
        .with_problem_sink(Arc::new(ConnectionProblemEvents::new(
            ctx.recorder.clone(),
            ctx.leader.clone(),
        )))
        .run(shutdown.clone());
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let controllers = run_controllers(ctx, opts.scope.clone(), shutdown.clone());
    // The probe never ends by itself; it stops with the controllers.
    let controllers = async move {
        tokio::select! {
            () = controllers => {}
            () = store_probe => {}
        }
    };
    let (health_res, intake_res, (), (), ()) =
        futures::join!(health_srv, intake_srv, controllers, dispatcher, election);
    health_res?;
    intake_res?;
    Ok(())
}
