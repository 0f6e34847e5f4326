//! `bench memory`: resident memory of the operator process (`psa-operator run`) idle, with many
//! CustomerMappings Ready, and with many events stored (held for a suspended connection, so
//! they stay in the store instead of becoming tickets).

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::convergence::{apply_and_wait, ready_connection};
use super::env::BenchEnv;
use super::intake::round;
use super::manifests::{ConnectionSpec, Provider};
use crate::cli::BenchArgs;
use crate::dispatch::intake::throughput::{post_all, request_bodies, ThroughputRun};

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB, from `/proc/<pid>/status`.
pub fn parse_status(status: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn rss_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading the operator's /proc status")?;
    match parse_status(&status) {
        (Some(rss), Some(hwm)) => Ok((rss as f64 / 1024.0, hwm as f64 / 1024.0)),
        _ => anyhow::bail!("no VmRSS/VmHWM in /proc/{pid}/status"),
    }
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let mappings = args
        .mappings
        .as_ref()
        .and_then(|sizes| sizes.first().copied())
        .unwrap_or(10_000)
        .max(1);
    let events = args.events.unwrap_or(100_000).max(1);
    let held = ConnectionSpec {
        name: "held".into(),
        provider: Provider::ConnectWise,
        url: String::new(),
        group_wait: "0s".into(),
        suspend: true,
    };
    let mut env = BenchEnv::start().await?;
    let (_cw, conn) = ready_connection(&mut env, mappings, std::slice::from_ref(&held)).await?;
    let pid = env.operator_pid().context("the operator has no pid")?;
    let idle = rss_mib(pid)?;
    let seconds = apply_and_wait(&env, &conn.name, mappings).await?;
    let with_mappings = rss_mib(pid)?;

    // The suspended connection holds what it accepts: the events stay stored.
    env.until(
        "the held connection's intake",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let probe = env
                .http
                .post(env.alerts_url(&held.name))
                .bearer_auth(held.token())
                .header("content-type", "application/json")
                .body("[]")
                .send()
                .await?;
            Ok((probe.status() != reqwest::StatusCode::NOT_FOUND
                && probe.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE)
                .then_some(()))
        },
    )
    .await?;
    let bodies = request_bodies(ThroughputRun {
        clients: 8,
        alerts: events,
        batch: 100,
    });
    let load = post_all(
        &env.http,
        &env.alerts_url(&held.name),
        Some(&held.token()),
        bodies,
        8,
        202,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_events = rss_mib(pid)?;
    // SQLite in WAL mode: recent commits are in the -wal file until a checkpoint.
    let store_bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = env.store_path().into_os_string();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum();
    env.stop().await?;
    Ok(json!({
        "mappings": mappings,
        "events": events,
        "secondsToAllReady": round(seconds),
        "secondsToStoreEvents": round(load.seconds),
        "storeFileMiB": round(store_bytes as f64 / 1_048_576.0),
        "rssMiB": {
            "idle": round(idle.0),
            "withMappings": round(with_mappings.0),
            "withMappingsAndEvents": round(with_events.0),
            "peak": round(with_events.1),
        },
        "targetMiB": 96,
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn rss_and_peak_are_read_in_kib() {
        let s = "Name:\tpsa-operator\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status(s), (Some(10240), Some(20480)));
        assert_eq!(parse_status("Name: x\n"), (None, None));
    }
}
