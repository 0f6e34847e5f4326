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

/// One mode's rounds: ours and Alertmanager's, alternated so both see the same machine load.
struct ModeRounds {
    ours: Vec<ThroughputReport>,
    peer_rates: Vec<f64>,
    peer_latencies: Vec<std::time::Duration>,
    peer_requests: usize,
    ratios: Vec<f64>,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let alerts = args.alerts.unwrap_or(2000).max(1);
    let clients = args.clients.unwrap_or(8).max(1);
    let batch = args.batch.unwrap_or(100).clamp(1, 100);
    let rounds = args.rounds.unwrap_or(3).max(1);
    let dir = tempfile::tempdir()?;
    let am = Alertmanager::start(&args.alertmanager, dir.path()).await?;
    let postgres = postgres_store(args).await?;
    let mut modes = Vec::new();
    for (mode, per_request) in [("single", 1), ("batch", batch)] {
        let run = ThroughputRun {
            clients,
            alerts,
            batch: per_request,
        };
        let mut r = ModeRounds {
            ours: Vec::new(),
            peer_rates: Vec::new(),
            peer_latencies: Vec::new(),
            peer_requests: 0,
            ratios: Vec::new(),
        };
        for round in 0..rounds {
            let store_dir = tempfile::tempdir_in(dir.path())?;
            let ours = measure_intake(store_dir.path(), run).await?;
            // New label sets each round: Alertmanager stores them, as we do, not updates.
            let bodies = alertmanager::request_bodies(alerts, per_request, round);
            // A new client each round, as `measure_intake` has: both sides open their
            // connections inside the measured time, then keep them alive.
            let http = reqwest::Client::new();
            let peer = post_all(&http, &am.alerts_url(), None, bodies, clients, 200).await?;
            let peer_rate = alerts as f64 / peer.seconds.max(f64::EPSILON);
            r.ratios
                .push(ours.alerts_per_second / peer_rate.max(f64::EPSILON));
            r.peer_rates.push(peer_rate);
            r.peer_requests = peer.latencies.len();
            r.peer_latencies.extend(peer.latencies);
            r.ours.push(ours);
        }
        let on_postgres = match &postgres {
            Some((store, _)) => {
                let name = format!("intake-{mode}-{:08x}", rand::random::<u32>());
                let r = measure_intake_on(store.clone(), &name, CommitStats::default, run).await?;
                figures(&r)
            }
            None => Value::Null,
        };
        let ours_rates: Vec<f64> = r.ours.iter().map(|o| o.alerts_per_second).collect();
        let calls: u64 = r.ours.iter().map(|o| o.store.calls).sum();
        let commits: u64 = r.ours.iter().map(|o| o.store.commits).sum();
        let syncs: u64 = r.ours.iter().map(|o| o.store.syncs).sum();
        let sync_micros: u64 = r.ours.iter().map(|o| o.store.sync_micros).sum();
        let seconds: f64 = r.ours.iter().map(|o| o.seconds).sum();
        let requests = r.ours[0].requests;
        let latencies: Vec<_> = r.ours.iter().flat_map(|o| o.latencies.clone()).collect();
        modes.push(json!({
            "mode": mode,
            "alertsPerRequest": per_request,
            "rounds": rounds,
            "psaOperator": {
                "alertsPerSecond": round(median(ours_rates.clone())),
                "eachRound": ours_rates.iter().map(|v| round(*v)).collect::<Vec<_>>(),
                "requests": requests,
                "latency": summarize(latencies),
                // Requests answered per fsync'd commit: the group commit at work.
                "storeCallsPerCommit": round(calls as f64 / commits.max(1) as f64),
                // Requests answered per WAL flush (`fdatasync`): the shared disk waits.
                "storeCallsPerSync": round(calls as f64 / syncs.max(1) as f64),
                "syncMeanMs": round(sync_micros as f64 / 1000.0 / syncs.max(1) as f64),
                // Share of the rounds' wall time a WAL flush was under way.
                "syncShareOfWall": round(sync_micros as f64 / 1e6 / seconds.max(f64::EPSILON)),
            },
            "alertmanager": {
                "alertsPerSecond": round(median(r.peer_rates.clone())),
                "eachRound": r.peer_rates.iter().map(|v| round(*v)).collect::<Vec<_>>(),
                "requests": r.peer_requests,
                "latency": summarize(r.peer_latencies),
            },
            // The median of the rounds' ratios (each round: ours, then Alertmanager's).
            "ratio": round(median(r.ratios.clone())),
            "eachRoundRatio": r.ratios.iter().map(|v| round(*v)).collect::<Vec<_>>(),
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

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians_of_odd_even_and_empty_rounds() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
