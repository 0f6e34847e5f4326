//! `bench convergence`: CustomerMappings applied to the API server at once → all Ready, with the
//! operator already running and its connection Ready. Wall time and the PSA calls it took.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::env::{loopback, BenchEnv};
use super::intake::round;
use super::manifests::{self, ConnectionSpec, Provider};
use crate::cli::BenchArgs;
use crate::sandbox::{self, RunningSandbox};

/// A ConnectWise sandbox seeded with `mappings` companies, its connection Ready under a running
/// operator, the counters zeroed: the state just before mappings are applied.
pub async fn ready_connection(
    env: &mut BenchEnv,
    mappings: usize,
    extra: &[ConnectionSpec],
) -> anyhow::Result<(RunningSandbox, ConnectionSpec)> {
    let cw = sandbox::connectwise::start(
        loopback().await?,
        manifests::connectwise_seed(mappings)?,
        Default::default(),
    )
    .await?;
    let conn = ConnectionSpec {
        name: "cw".into(),
        provider: Provider::ConnectWise,
        url: cw.base_url(),
        group_wait: "0s".into(),
        suspend: false,
    };
    env.apply(&manifests::connection_yaml(&conn))?;
    for c in extra {
        env.apply(&manifests::connection_yaml(&ConnectionSpec {
            url: cw.base_url(),
            ..c.clone()
        }))?;
    }
    env.start_operator()?;
    env.wait_connection_ready(&conn.name).await?;
    env.settle(&cw, Duration::from_millis(500)).await?;
    cw.admin().clear_calls();
    Ok((cw, conn))
}

/// Applies the mappings and waits until `count` are Ready; returns the seconds it took.
pub async fn apply_and_wait(env: &BenchEnv, conn: &str, count: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    env.apply(&manifests::mappings_yaml(conn, count))?;
    let limit = Duration::from_secs(300 + count as u64 / 10);
    env.until(
        &format!("{count} CustomerMappings Ready"),
        limit,
        Duration::from_millis(250),
        || async { Ok((env.mappings_ready().await? >= count).then_some(())) },
    )
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let mappings = args.mappings.first().copied().unwrap_or(1000).max(1);
    let mut env = BenchEnv::start().await?;
    let (cw, conn) = ready_connection(&mut env, mappings, &[]).await?;
    let seconds = apply_and_wait(&env, &conn.name, mappings).await?;
    let report = cw.admin().calls();
    let by_route: BTreeMap<String, u64> = report
        .calls
        .iter()
        .map(|c| (format!("{} {}", c.method, c.route), c.count))
        .collect();
    env.stop().await?;
    Ok(json!({
        "provider": "connectWise",
        "mappings": mappings,
        "secondsToAllReady": round(seconds),
        "psaCalls": report.total,
        "psaCallsPerMapping": round(report.total as f64 / mappings as f64),
        "byRoute": by_route,
    }))
}
