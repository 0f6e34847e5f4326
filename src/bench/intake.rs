//! `bench intake`: alerts per second accepted durably by the intake, single-alert and batched
//! requests, side by side with the same alerts posted to a real Alertmanager in the same run.

use std::sync::Arc;

use serde_json::{json, Value};

use super::alertmanager::{self, Alertmanager};
use super::stats::summarize;
use super::BenchArgs;
use crate::bench::throughput::{
    measure_intake, measure_intake_on, post_all, ThroughputReport, ThroughputRun,
};
use crate::dispatch::store::{self, CommitStats, Store, StoreLocation};

/// The PostgreSQL store of `--store`, when one was given.
async fn postgres_store(args: &BenchArgs) -> anyhow::Result<Option<(Arc<dyn Store>, String)>> {
    let Some(url) = &args.store else {
        return Ok(None);
    };
    let location = StoreLocation::parse(url)?;
    if !location.is_shared() {
        anyhow::bail!(
            "--store: bench intake compares a postgres:// store with SQLite; got {location}"
        );
    }
    let store = store::open(&location, "psa-operator-bench")
        .await
        .map_err(|e| anyhow::anyhow!("opening {location}: {e}"))?;
    Ok(Some((store, location.to_string())))
}

fn figures(r: &ThroughputReport) -> Value {
    json!({
        "alertsPerSecond": round(r.alerts_per_second),
        "seconds": round(r.seconds),
        "requests": r.requests,
        "latency": summarize(r.latencies.clone()),
    })
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let alerts = args.alerts.unwrap_or(2000).max(1);
    let clients = args.clients.unwrap_or(8).max(1);
    let batch = args.batch.unwrap_or(100).clamp(1, 100);
    let dir = tempfile::tempdir()?;
    let am = Alertmanager::start(&args.alertmanager, dir.path()).await?;
    let postgres = postgres_store(args).await?;
    let http = reqwest::Client::new();
    let mut modes = Vec::new();
    for (mode, per_request) in [("single", 1), ("batch", batch)] {
        let run = ThroughputRun {
            clients,
            alerts,
            batch: per_request,
        };
        let store_dir = tempfile::tempdir_in(dir.path())?;
        let ours = measure_intake(store_dir.path(), run).await?;
        let bodies = alertmanager::request_bodies(alerts, per_request);
        let peer = post_all(&http, &am.alerts_url(), None, bodies, clients, 200).await?;
        let peer_rate = alerts as f64 / peer.seconds.max(f64::EPSILON);
        let on_postgres = match &postgres {
            Some((store, _)) => {
                let name = format!("intake-{mode}-{:08x}", rand::random::<u32>());
                let r = measure_intake_on(store.clone(), &name, CommitStats::default, run).await?;
                figures(&r)
            }
            None => Value::Null,
        };
        modes.push(json!({
            "mode": mode,
            "alertsPerRequest": per_request,
            "psaOperator": {
                "alertsPerSecond": round(ours.alerts_per_second),
                "seconds": round(ours.seconds),
                "requests": ours.requests,
                "latency": summarize(ours.latencies),
            },
            "alertmanager": {
                "alertsPerSecond": round(peer_rate),
                "seconds": round(peer.seconds),
                "requests": peer.latencies.len(),
                "latency": summarize(peer.latencies),
            },
            "ratio": round(ours.alerts_per_second / peer_rate.max(f64::EPSILON)),
            "psaOperatorPostgres": on_postgres,
        }));
    }
    let version = am.version.clone();
    am.stop().await;
    Ok(json!({
        "alerts": alerts,
        "clients": clients,
        "durability": "202 after the SQLite commit (fsync) of every request",
        "postgres": postgres.as_ref().map(|(_, shown)| shown.clone()),
        "alertmanagerVersion": version,
        "modes": modes,
    }))
}

/// Two decimals are plenty for rates and seconds.
pub fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
