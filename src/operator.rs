//! The operator process (`psa-operator run`): reconcilers, ticket dispatcher, intake and the
//! metrics/health server, wired together and stopped together.

use std::future::IntoFuture;
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
use crate::dispatch::intake::{self, IntakeLimits, IntakeState};
use crate::dispatch::metrics::DispatchMetrics;
use crate::dispatch::store::sqlite::{SqliteOptions, SqliteStore};
use crate::dispatch::store::Store;
use crate::dispatch::worker::{Dispatcher, DispatcherOptions};
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

async fn readyz(State(st): State<HealthState>) -> impl IntoResponse {
    if st.ready.load(std::sync::atomic::Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// `/metrics`, `/healthz`, `/readyz`.
pub fn health_router(metrics: SharedMetrics, ready: Arc<std::sync::atomic::AtomicBool>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(HealthState { metrics, ready })
}

/// Options of the operator process.
pub struct OperatorOptions {
    pub scope: Scope,
    pub store: std::path::PathBuf,
    pub intake_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub factory: Arc<dyn PsaFactory>,
    /// See `DispatcherOptions::unresolved_hold`.
    pub unresolved_hold: std::time::Duration,
}

impl OperatorOptions {
    pub fn with_defaults(
        store: std::path::PathBuf,
        intake_addr: SocketAddr,
        metrics_addr: SocketAddr,
    ) -> Self {
        OperatorOptions {
            scope: Scope::All,
            store,
            intake_addr,
            metrics_addr,
            factory: Arc::new(RealPsaFactory),
            unresolved_hold: DispatcherOptions::default().unresolved_hold,
        }
    }
}

/// Runs the operator until `shutdown` resolves.
pub async fn run_operator(
    client: Client,
    opts: OperatorOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let registry = Registry::new();
    let mut metrics = MetricsRegistry::default();
    let controller_metrics = Arc::new(ControllerMetrics::register(&mut metrics));
    let psa_calls = PsaCallMetrics::register(&mut metrics);
    let dispatch_metrics = Arc::new(DispatchMetrics::register(&mut metrics));
    let metrics: SharedMetrics = Arc::new(Mutex::new(metrics));
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));

    if let Some(parent) = opts.store.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("creating store directory {}: {e}", parent.display()))?;
    }
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&opts.store, SqliteOptions::default())
            .map_err(|e| anyhow::anyhow!("opening store {}: {e}", opts.store.display()))?,
    );

    let health = tokio::net::TcpListener::bind(opts.metrics_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding metrics address {}: {e}", opts.metrics_addr))?;
    let intake = tokio::net::TcpListener::bind(opts.intake_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding intake address {}: {e}", opts.intake_addr))?;
    tracing::info!(metrics = %health.local_addr()?, intake = %intake.local_addr()?, store = %opts.store.display(), "operator starting");
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let health_srv = axum::serve(health, health_router(metrics.clone(), ready.clone()))
        .with_graceful_shutdown(shutdown.clone());
    let intake_state = IntakeState {
        registry: registry.clone(),
        store: store.clone(),
        metrics: dispatch_metrics.clone(),
        limits: IntakeLimits::default(),
    };
    let intake_srv =
        axum::serve(intake, intake::router(intake_state)).with_graceful_shutdown(shutdown.clone());
    let mut ctx = Context::new(
        client.clone(),
        registry.clone(),
        opts.factory.clone(),
        controller_metrics,
    );
    ctx.psa_calls = psa_calls;
    let ctx = Arc::new(ctx);
    let status_sink = ConnectionStatusSink {
        client,
        leader: ctx.leader.clone(),
    };
    let dispatcher_options = DispatcherOptions {
        unresolved_hold: opts.unresolved_hold,
        ..Default::default()
    };
    let dispatcher = Dispatcher::with_options(
        registry.clone(),
        store.clone(),
        dispatch_metrics.clone(),
        dispatcher_options,
    )
    .with_stats_sink(Arc::new(status_sink))
    .with_problem_sink(Arc::new(ConnectionProblemEvents::new(
        ctx.recorder.clone(),
        ctx.leader.clone(),
    )))
    .run(shutdown.clone());
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let controllers = run_controllers(ctx, opts.scope.clone(), shutdown.clone());
    let (health_res, intake_res, (), ()) = futures::join!(
        health_srv.into_future(),
        intake_srv.into_future(),
        controllers,
        dispatcher
    );
    health_res?;
    intake_res?;
    Ok(())
}
