//! `bench memory`: resident memory of the operator process (`psa-operator run`) idle, with many
//! CustomerMappings Ready, and with many events stored (held for a suspended connection, so
//! they stay in the store instead of becoming tickets).

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::convergence::{apply_and_wait, ready_connection};
use super::env::BenchEnv;
use super::fit::linear_fit;
use super::intake::round;
use super::manifests::{ConnectionSpec, Provider};
use super::BenchArgs;
use crate::bench::throughput::{post_all, request_bodies, ThroughputRun};

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

/// The RSS target of issue [S] for 10,000 mappings and 100,000 stored events.
pub const TARGET_MIB: f64 = 128.0;

/// One size of the curve: a fresh environment (its own operator process and store), so each
/// point's RSS is its own and not what an earlier, larger point left behind.
async fn measure_point(mappings: usize, events: usize) -> anyhow::Result<Value> {
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
    }))
}

/// The growth over the points: MiB of RSS per mapping (with the events stored) and seconds
/// to all Ready per mapping. `null` with a single size.
fn growth(points: &[Value]) -> Value {
    let series = |pointer: &str| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| Some((p["mappings"].as_f64()?, p.pointer(pointer)?.as_f64()?)))
            .collect()
    };
    let rss = linear_fit(&series("/rssMiB/withMappingsAndEvents"));
    let seconds = linear_fit(&series("/secondsToAllReady"));
    match (rss, seconds) {
        (Some(rss), Some(seconds)) => json!({
            "mibPerMapping": round4(rss.slope),
            "fixedMiB": round(rss.intercept),
            "rssRSquared": round4(rss.r_squared),
            "secondsPerMapping": round4(seconds.slope),
            "secondsRSquared": round4(seconds.r_squared),
        }),
        _ => Value::Null,
    }
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let sizes: Vec<usize> = if args.mappings.is_empty() {
        vec![10_000]
    } else {
        args.mappings.iter().map(|m| (*m).max(1)).collect()
    };
    let events = args.events.unwrap_or(100_000).max(1);
    let mut points = Vec::with_capacity(sizes.len());
    for mappings in sizes {
        points.push(
            measure_point(mappings, events)
                .await
                .with_context(|| format!("memory with {mappings} mappings"))?,
        );
    }
    Ok(json!({
        "bench": "memory",
        "events": events,
        "targetMiB": TARGET_MIB,
        "fit": growth(&points),
        "points": points,
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

    #[test]
    fn growth_is_fitted_over_two_sizes_and_absent_for_one() {
        let point = |m: u64, rss: f64, s: f64| {
            serde_json::json!({"mappings": m, "secondsToAllReady": s,
                               "rssMiB": {"withMappingsAndEvents": rss}})
        };
        let two = [point(1000, 40.0, 5.0), point(3000, 60.0, 15.0)];
        let fit = super::growth(&two);
        assert_eq!(fit["mibPerMapping"], 0.01);
        assert_eq!(fit["fixedMiB"], 30.0);
        assert_eq!(fit["secondsPerMapping"], 0.005);
        assert!(super::growth(&two[..1]).is_null());
    }
}
