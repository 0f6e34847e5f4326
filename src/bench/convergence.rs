//! `bench convergence`: CustomerMappings applied to the API server at once → all Ready, with the
//! operator already running and its connection Ready. Wall time and the PSA calls it took.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::env::{loopback, BenchEnv};
use super::intake::round;
use super::manifests::{self, ConnectionSpec, Provider};
use super::BenchArgs;
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

/// As [`ready_connection`], on a Kaseya BMS sandbox seeded with `mappings` accounts.
pub async fn ready_bms_connection(
    env: &mut BenchEnv,
    mappings: usize,
) -> anyhow::Result<(RunningSandbox, ConnectionSpec)> {
    let bms = sandbox::bms::start(
        loopback().await?,
        manifests::bms_seed_with(mappings)?,
        Default::default(),
    )
    .await?;
    ready_sandbox_connection(env, bms, "bms", Provider::KaseyaBms).await
}

/// As [`ready_connection`], on an Autotask sandbox seeded with `mappings` companies.
pub async fn ready_autotask_connection(
    env: &mut BenchEnv,
    mappings: usize,
) -> anyhow::Result<(RunningSandbox, ConnectionSpec)> {
    let at = sandbox::autotask::start(
        loopback().await?,
        manifests::autotask_seed_with(mappings)?,
        Default::default(),
    )
    .await?;
    ready_sandbox_connection(env, at, "at", Provider::Autotask).await
}

/// A connection `name` to a started sandbox, Ready under a running operator, its counters zeroed.
async fn ready_sandbox_connection(
    env: &mut BenchEnv,
    psa: RunningSandbox,
    name: &str,
    provider: Provider,
) -> anyhow::Result<(RunningSandbox, ConnectionSpec)> {
    let conn = ConnectionSpec {
        name: name.into(),
        provider,
        url: psa.base_url(),
        group_wait: "0s".into(),
        suspend: false,
    };
    env.apply(&manifests::connection_yaml(&conn))?;
    env.start_operator()?;
    env.wait_connection_ready(&conn.name).await?;
    env.settle(&psa, Duration::from_millis(500)).await?;
    psa.admin().clear_calls();
    Ok((psa, conn))
}

/// Applies the mappings and waits until `count` are Ready; returns the seconds it took.
pub async fn apply_and_wait(env: &BenchEnv, conn: &str, count: usize) -> anyhow::Result<f64> {
    Ok(apply_and_follow(env, conn, count).await?.seconds)
}

/// How a wave converged: the seconds to all Ready and the Ready count about once a second.
pub struct Convergence {
    pub seconds: f64,
    /// (seconds since the apply, mappings Ready then).
    pub progress: Vec<(f64, usize)>,
}

/// Applies the mappings and follows them until `count` are Ready.
pub async fn apply_and_follow(
    env: &BenchEnv,
    conn: &str,
    count: usize,
) -> anyhow::Result<Convergence> {
    let started = Instant::now();
    env.apply(&manifests::mappings_yaml(conn, count))?;
    let limit = Duration::from_secs(300 + count as u64 / 10);
    let progress = std::sync::Mutex::new(Vec::new());
    env.until(
        &format!("{count} CustomerMappings Ready"),
        limit,
        Duration::from_millis(250),
        || async {
            let ready = env.mappings_ready().await?;
            let at = started.elapsed().as_secs_f64();
            let mut p = progress.lock().expect("progress");
            if p.last().is_none_or(|(t, _)| at - t >= 1.0) || ready >= count {
                p.push((round(at), ready));
            }
            Ok((ready >= count).then_some(()))
        },
    )
    .await?;
    Ok(Convergence {
        seconds: started.elapsed().as_secs_f64(),
        progress: progress.into_inner().expect("progress"),
    })
}

/// One measured size.
struct Point {
    mappings: usize,
    seconds: f64,
    psa_calls: u64,
    by_route: BTreeMap<String, u64>,
    progress: Vec<(f64, usize)>,
}

/// Each size in a fresh environment (API server, sandbox, operator), so a point's calls are its
/// own: mappings applied at once to a Ready connection → all Ready.
async fn measure(provider: Provider, mappings: usize) -> anyhow::Result<Point> {
    let mut env = BenchEnv::start().await?;
    let (cw, conn) = match provider {
        Provider::ConnectWise => ready_connection(&mut env, mappings, &[]).await?,
        Provider::KaseyaBms => ready_bms_connection(&mut env, mappings).await?,
        Provider::Autotask => ready_autotask_connection(&mut env, mappings).await?,
    };
    let wave = apply_and_follow(&env, &conn.name, mappings).await?;
    let report = cw.admin().calls();
    let by_route: BTreeMap<String, u64> = report
        .calls
        .iter()
        .map(|c| (format!("{} {}", c.method, c.route), c.count))
        .collect();
    env.stop().await?;
    Ok(Point {
        mappings,
        seconds: wave.seconds,
        psa_calls: report.total,
        by_route,
        progress: wave.progress,
    })
}

/// Least-squares line `y = intercept + slope · x` through the points; the slope is the growth
/// per mapping. `None` with fewer than two distinct sizes.
pub fn fit_line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if n < 2.0 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some((slope, mean_y - slope * mean_x))
}

/// The fitted growth as JSON: per mapping (slope) and fixed part (intercept), for calls and
/// seconds; `null` with a single size.
fn fit_json(points: &[Point]) -> Value {
    let line = |y: &dyn Fn(&Point) -> f64| {
        let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.mappings as f64, y(p))).collect();
        fit_line(&xy)
    };
    let calls = line(&|p| p.psa_calls as f64);
    let seconds = line(&|p| p.seconds);
    match (calls, seconds) {
        (Some((cs, ci)), Some((ss, si))) => json!({
            "callsPerMapping": cs,
            "callsFixed": round(ci),
            "secondsPerMapping": ss,
            "secondsFixed": round(si),
        }),
        _ => Value::Null,
    }
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let sizes: Vec<usize> = if args.mappings.is_empty() {
        vec![1000]
    } else {
        args.mappings.iter().map(|n| (*n).max(1)).collect()
    };
    let provider = match args.provider.as_deref() {
        None | Some("connectWise") => Provider::ConnectWise,
        Some("kaseyaBms") => Provider::KaseyaBms,
        Some("autotask") => Provider::Autotask,
        Some(other) => {
            anyhow::bail!("--provider {other:?}: one of connectWise, kaseyaBms, autotask")
        }
    };
    let mut points = Vec::new();
    for mappings in sizes {
        points.push(measure(provider, mappings).await?);
    }
    let first = &points[0];
    Ok(json!({
        "bench": "convergence",
        "provider": provider.label(),
        // The first size's figures at the top level, as before the list existed.
        "mappings": first.mappings,
        "secondsToAllReady": round(first.seconds),
        "psaCalls": first.psa_calls,
        "psaCallsPerMapping": round(first.psa_calls as f64 / first.mappings as f64),
        "byRoute": first.by_route,
        "points": points.iter().map(|p| json!({
            "mappings": p.mappings,
            "seconds": round(p.seconds),
            "psa_calls": p.psa_calls,
            "psaCallsPerMapping": round(p.psa_calls as f64 / p.mappings as f64),
            "byRoute": p.by_route,
            // [seconds since the apply, mappings Ready], about once a second.
            "readyOverTime": p.progress,
        })).collect::<Vec<_>>(),
        "fit": fit_json(&points),
    }))
}

#[cfg(test)]
mod tests {
    use super::fit_line;

    #[test]
    fn the_fitted_line_recovers_slope_and_intercept() {
        let (slope, intercept) =
            fit_line(&[(1000.0, 40.0), (3000.0, 60.0), (10000.0, 130.0)]).unwrap();
        assert!((slope - 0.01).abs() < 1e-9, "{slope}");
        assert!((intercept - 30.0).abs() < 1e-6, "{intercept}");
        assert_eq!(fit_line(&[(5.0, 1.0)]), None);
        assert_eq!(fit_line(&[(5.0, 1.0), (5.0, 2.0)]), None);
    }
}
