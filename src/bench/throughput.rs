//! Measures how many alerts per second the intake accepts *durably*: real HTTP on loopback,
//! N concurrent clients, the SQLite store with fsync on every commit (or a PostgreSQL store). For `bench intake` and the
//! figure on the dispatcher issue.

use std::future::IntoFuture;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Serialize;
use serde_json::json;

use crate::dispatch::intake::{router, IntakeLimits, IntakeState};
use crate::dispatch::metrics::DispatchMetrics;
use crate::dispatch::store::{CommitStats, SqliteOptions, SqliteStore, Store};
use crate::resolved::{ConnectionEntry, ConnectionKey, Registry};
use crate::secret::SecretString;

/// One measurement's shape.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputRun {
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// Alerts sent in total.
    pub alerts: usize,
    /// Alerts per request (1 = one object per request; more = arrays).
    pub batch: usize,
}

/// What one measurement found.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputReport {
    #[serde(flatten)]
    pub run: ThroughputRun,
    pub requests: usize,
    pub seconds: f64,
    pub alerts_per_second: f64,
    /// Store calls and commits during the run: several calls per commit = shared fsyncs.
    pub store: CommitStats,
    /// Each request's latency (not serialized; summarised by the caller).
    #[serde(skip)]
    pub latencies: Vec<Duration>,
}

const TOKEN: &str = "throughput-token";

/// Runs one measurement with a fresh store in `dir` and an intake on 127.0.0.1:0. Fails unless
/// every alert was answered 202 and the store counts them all.
pub async fn measure_intake(dir: &Path, run: ThroughputRun) -> anyhow::Result<ThroughputReport> {
    if run.clients == 0 || run.batch == 0 || run.alerts == 0 {
        bail!("clients, alerts and batch must be positive");
    }
    let sqlite = Arc::new(
        SqliteStore::open(dir.join("throughput.db"), SqliteOptions::default())
            .context("opening the store")?,
    );
    let stats = sqlite.clone();
    measure_intake_on(sqlite, "intake", move || stats.commit_stats(), run).await
}

/// Runs one measurement on `store` (SQLite or PostgreSQL) through connection `bench/<name>`;
/// `commit_stats` reads the store's batching counters (zeros where it has none).
pub async fn measure_intake_on(
    store: Arc<dyn Store>,
    name: &str,
    commit_stats: impl Fn() -> CommitStats,
    run: ThroughputRun,
) -> anyhow::Result<ThroughputReport> {
    if run.clients == 0 || run.batch == 0 || run.alerts == 0 {
        bail!("clients, alerts and batch must be positive");
    }
    let key = ConnectionKey::new("bench", name);
    let registry = Registry::new();
    registry.publish(
        key.clone(),
        ConnectionEntry {
            intake_token: Some(SecretString::new(TOKEN)),
            ..Default::default()
        },
    );
    // Bodies are built before the clock starts: the measurement is the intake, not the client.
    let bodies = request_bodies(run);
    let requests = bodies.len();
    let mut metrics_registry = prometheus_client::registry::Registry::default();
    let state = IntakeState {
        registry,
        store: store.clone(),
        metrics: Arc::new(DispatchMetrics::register(&mut metrics_registry)),
        limits: IntakeLimits {
            // The per-connection rate limit stays on the path, sized so the run fits in it.
            requests_per_minute: IntakeLimits::default()
                .requests_per_minute
                .max(u32::try_from(requests).unwrap_or(u32::MAX)),
            ..IntakeLimits::default()
        },
    };
    // The intake shares the benchmark's runtime with the clients: on a machine with fewer
    // cores than busy threads, a runtime of its own adds cross-thread wake-ups to every
    // request (measured on 2 shared cores: median ratio to Alertmanager 0.19 that way).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, router(state)).into_future());
    let url = format!("http://{addr}/v1/namespaces/bench/connections/{name}/alerts");

    let http = reqwest::Client::new();
    let before = commit_stats();
    let load = post_all(&http, &url, Some(TOKEN), bodies, run.clients, 202).await;
    let after = commit_stats();
    server.abort();
    let load = load?;
    let seconds = load.seconds;
    let stored = store.counters(key).await?.accepted;
    if stored != run.alerts as u64 {
        bail!("{} alerts sent but {stored} stored", run.alerts);
    }
    Ok(ThroughputReport {
        run,
        requests,
        seconds,
        alerts_per_second: run.alerts as f64 / seconds.max(f64::EPSILON),
        store: CommitStats {
            calls: after.calls - before.calls,
            commits: after.commits - before.commits,
            syncs: after.syncs - before.syncs,
            sync_micros: after.sync_micros - before.sync_micros,
        },
        latencies: load.latencies,
    })
}

/// What [`post_all`] measured: wall time and each request's latency, in sending order per client.
#[derive(Clone, Debug)]
pub struct LoadResult {
    pub seconds: f64,
    pub latencies: Vec<Duration>,
}

/// Posts `bodies` as JSON over `clients` concurrent connections (each client sends its share one
/// after another) and fails unless every answer has status `expect`. Shared by the intake
/// measurement and the Alertmanager comparison of `bench intake`, so both are driven alike.
pub async fn post_all(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    bodies: Vec<String>,
    clients: usize,
    expect: u16,
) -> anyhow::Result<LoadResult> {
    let per_client = bodies.len().div_ceil(clients.max(1)).max(1);
    // Parsed once: the client's per-request work is the same small share on both sides.
    let url = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in bodies.chunks(per_client) {
        let chunk = chunk.to_vec();
        let http = http.clone();
        let url = url.clone();
        let bearer = bearer.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(chunk.len());
            for body in chunk {
                let sent = Instant::now();
                let mut req = http
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(t) = &bearer {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await?;
                let status = resp.status();
                // Read the whole answer: the request is done when its body is.
                let _ = resp.bytes().await?;
                if status.as_u16() != expect {
                    bail!("{url} answered {status}");
                }
                latencies.push(sent.elapsed());
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(bodies.len());
    for t in tasks {
        latencies.extend(t.await.context("client task")??);
    }
    Ok(LoadResult {
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    })
}

/// Alert objects as a SaaS monitor sends them, chunked into request bodies of `run.batch`.
pub fn request_bodies(run: ThroughputRun) -> Vec<String> {
    let alerts: Vec<_> = (0..run.alerts)
        .map(|i| {
            json!({
                "id": format!("tp-{i}"),
                "organization": format!("Org {}", i % 50),
                "user": format!("user{}@example.com", i % 500),
                "alertType": "Too Many Downloads",
                "severity": "critical",
                "description": "412 files downloaded from SharePoint in 10 minutes",
                "occurredAt": "2026-11-24T16:18:28Z",
            })
        })
        .collect();
    alerts
        .chunks(run.batch)
        .map(|c| {
            if run.batch == 1 {
                c[0].to_string()
            } else {
                serde_json::Value::Array(c.to_vec()).to_string()
            }
        })
        .collect()
}
