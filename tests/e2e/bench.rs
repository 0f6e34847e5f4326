//! `psa-operator bench <name>` at tiny sizes: each benchmark runs to completion and prints one
//! JSON object with its figures and the core count. Timings are not asserted (a loaded machine
//! would make them flaky); counts that do not depend on timing are.

use serde_json::Value;

async fn bench(args: &[&str]) -> Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_psa-operator"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .await
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["benchmark"], args[0]);
    assert!(v["cores"].as_u64().unwrap_or(0) >= 1, "{v}");
    v
}

fn number(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing in {v}"))
}

#[tokio::test]
async fn unknown_benchmark_is_refused() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_psa-operator"))
        .args(["bench", "nope"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("calls-per-alert"));
}

#[tokio::test]
async fn intake_is_compared_with_alertmanager() {
    let bin = std::path::Path::new("/usr/bin/prometheus-alertmanager");
    if !bin.exists() {
        eprintln!("skipped: no Alertmanager (install it with .ci/install-tools)");
        return;
    }
    let v = bench(&[
        "intake",
        "--alerts",
        "20",
        "--clients",
        "2",
        "--batch",
        "5",
        "--rounds",
        "2",
    ])
    .await;
    let modes = v["modes"].as_array().expect("modes");
    assert_eq!(modes.len(), 2, "{v}");
    for (i, (mode, per_request, requests)) in
        [("single", 1, 20), ("batch", 5, 4)].iter().enumerate()
    {
        let m = &modes[i];
        assert_eq!(m["mode"], *mode);
        assert_eq!(m["alertsPerRequest"], *per_request);
        assert_eq!(m["psaOperator"]["requests"], *requests);
        assert_eq!(m["alertmanager"]["requests"], *requests);
        assert_eq!(m["rounds"], 2);
        assert_eq!(m["eachRoundRatio"].as_array().unwrap().len(), 2);
        // Latencies of both rounds; every request of ours shared or had a commit.
        assert_eq!(m["psaOperator"]["latency"]["samples"], 2 * requests);
        assert!(number(m, "/psaOperator/storeCallsPerCommit") >= 1.0, "{m}");
        for p in [
            "/psaOperator/alertsPerSecond",
            "/alertmanager/alertsPerSecond",
            "/ratio",
            "/psaOperator/latency/p50Ms",
            "/psaOperator/latency/p99Ms",
        ] {
            assert!(number(m, p) >= 0.0);
        }
    }
    assert!(
        v["alertmanagerVersion"].as_str().unwrap().starts_with("0."),
        "{v}"
    );
}

#[tokio::test]
async fn calls_per_alert_counts_both_providers() {
    let v = bench(&["calls-per-alert", "--burst", "3"]).await;
    for provider in ["connectWise", "kaseyaBms"] {
        let p = &v[provider];
        // One ticket for a first alert and a note (not a ticket) for its follow-up.
        assert_eq!(p["firstAlert"]["ticketsCreated"], 1, "{provider}: {p}");
        assert_eq!(p["followUp"]["ticketsCreated"], 0, "{provider}: {p}");
        assert_eq!(p["burstOneKey"]["ticketsCreated"], 1, "{provider}: {p}");
        assert_eq!(
            p["burstOneKeyGroupWait"]["ticketsCreated"], 1,
            "{provider}: {p}"
        );
        assert_eq!(p["distinctKeys"]["ticketsCreated"], 3, "{provider}: {p}");
        for s in [
            "firstAlert",
            "followUp",
            "burstOneKey",
            "burstOneKeyGroupWait",
            "distinctKeys",
        ] {
            assert!(
                number(p, &format!("/{s}/psaCalls")) >= 1.0,
                "{provider} {s}: {p}"
            );
            assert!(p[s]["byRoute"].is_object());
        }
    }
}

#[tokio::test]
async fn e2e_latency_sees_every_ticket() {
    let v = bench(&[
        "e2e-latency",
        "--alerts",
        "5",
        "--rate",
        "20",
        "--latency-ms",
        "5",
    ])
    .await;
    assert_eq!(v["latency"]["samples"], 5, "{v}");
    assert_eq!(v["psaLatencyMs"], 5);
    assert_eq!(v["targetP99Ms"], 60);
    assert!(number(&v, "/latency/p99Ms") >= number(&v, "/latency/p50Ms"));
    assert!(number(&v, "/psaCalls") >= 5.0, "a ticket per alert: {v}");
}

#[tokio::test]
async fn convergence_counts_mappings_and_calls() {
    let v = bench(&["convergence", "--mappings", "5"]).await;
    assert_eq!(v["mappings"], 5);
    assert!(number(&v, "/secondsToAllReady") > 0.0);
    assert!(number(&v, "/psaCalls") >= 1.0, "{v}");
    assert!(v["byRoute"].is_object());
}

/// Issue [S] item 1: 300 mappings applied at once converge on a batched directory. The bound is
/// on the ConnectWise sandbox's own call count (`/_sandbox/calls`, read by the benchmark), not a
/// time: before batching this took 602 calls (a contact and an agreement look-up per mapping);
/// now the companies, their contacts and their agreements are listed in a few pages and batches.
#[tokio::test]
async fn three_hundred_mappings_converge_on_a_few_dozen_psa_calls() {
    let v = bench(&["convergence", "--mappings", "300,30"]).await;
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 2, "{v}");
    assert_eq!(points[0]["mappings"], 300);
    let calls = number(&points[0], "/psa_calls");
    assert!(calls <= 30.0, "300 mappings took {calls} PSA calls: {v}");
    // Per route: no per-mapping contact or agreement look-ups.
    for (route, n) in points[0]["byRoute"].as_object().unwrap() {
        assert!(n.as_u64().unwrap() <= 10, "{route} called {n} times: {v}");
    }
    assert!(v["fit"]["callsPerMapping"].as_f64().is_some(), "{v}");
}

/// Kaseya BMS: 300 mappings with contracts converge without a contract look-up per mapping
/// (before: 300 `contracts/lookup` calls, of which BMS's 1,500 calls per hour per endpoint let
/// 100 go at once and the rest one per 2.5 s). The contracts come from a few pages of the
/// contract summary; the bound is the sandbox's own call count.
#[tokio::test]
async fn three_hundred_bms_mappings_converge_on_a_few_dozen_psa_calls() {
    let v = bench(&[
        "convergence",
        "--provider",
        "kaseyaBms",
        "--mappings",
        "300",
    ])
    .await;
    assert_eq!(v["provider"], "kaseyaBms");
    let point = &v["points"][0];
    assert_eq!(point["mappings"], 300);
    let calls = number(point, "/psa_calls");
    assert!(calls <= 40.0, "300 mappings took {calls} PSA calls: {v}");
    let routes = point["byRoute"].as_object().expect("byRoute");
    assert!(
        routes.contains_key("GET /v2/finance/contracts/summary"),
        "{v}"
    );
    for (route, n) in routes {
        assert!(n.as_u64().unwrap() <= 10, "{route} called {n} times: {v}");
    }
}

/// `--provider autotask`: 300 mappings converge on batched `in` look-ups (up to 500 ids a
/// query), far inside the database's 10,000 calls per hour.
#[tokio::test]
async fn convergence_on_autotask_counts_mappings_and_calls() {
    let v = bench(&["convergence", "--provider", "autotask", "--mappings", "300"]).await;
    assert_eq!(v["provider"], "autotask");
    assert_eq!(v["mappings"], 300);
    assert!(number(&v, "/secondsToAllReady") > 0.0);
    let calls = number(&v, "/psaCalls");
    assert!((1.0..=40.0).contains(&calls), "{calls} PSA calls: {v}");
    for (route, n) in v["byRoute"].as_object().expect("byRoute") {
        assert!(n.as_u64().unwrap() <= 10, "{route} called {n} times: {v}");
    }
}

#[tokio::test]
async fn memory_reads_the_operator_rss_per_size_and_fits_the_growth() {
    let v = bench(&["memory", "--mappings", "3,6", "--events", "150"]).await;
    assert_eq!(v["bench"], "memory");
    assert_eq!(v["events"], 150);
    let points = v["points"].as_array().expect("points");
    assert_eq!(
        points
            .iter()
            .map(|p| p["mappings"].clone())
            .collect::<Vec<_>>(),
        [3, 6],
        "{v}"
    );
    for point in points {
        for p in ["idle", "withMappings", "withMappingsAndEvents", "peak"] {
            assert!(number(point, &format!("/rssMiB/{p}")) > 1.0, "{p}: {v}");
        }
        assert!(number(point, "/storeFileMiB") > 0.0, "{v}");
    }
    // Two sizes give a slope (its sign depends on noise at these sizes; it must be there).
    number(&v, "/fit/mibPerMapping");
    number(&v, "/fit/secondsPerMapping");
}

/// `scripts/plot-benchmarks.py` draws every benchmark JSON it knows into an SVG beside it,
/// skips a broken file without failing the others, and lays the convergence providers over
/// each other. (It installs matplotlib into a private virtualenv on first use.)
#[tokio::test]
async fn the_plot_script_draws_each_benchmark_and_skips_a_broken_file() {
    if which_python().is_none() {
        eprintln!("skipped: no python3");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: Value| {
        std::fs::write(dir.path().join(name), v.to_string()).unwrap();
    };
    for provider in ["connectwise", "bms"] {
        write(
            &format!("convergence-{provider}.json"),
            serde_json::json!({"bench": "convergence", "provider": provider,
                "points": [{"mappings": 1000, "seconds": 4.0, "psa_calls": 12},
                           {"mappings": 3000, "seconds": 9.0, "psa_calls": 30}],
                "fit": {"secondsPerMapping": 0.0025}}),
        );
    }
    write(
        "memory.json",
        serde_json::json!({"bench": "memory", "events": 150, "targetMiB": 128,
            "points": [{"mappings": 3, "rssMiB": {"idle": 20, "withMappings": 21,
                        "withMappingsAndEvents": 22, "peak": 25}},
                       {"mappings": 6, "rssMiB": {"idle": 20, "withMappings": 22,
                        "withMappingsAndEvents": 23, "peak": 26}}]}),
    );
    write(
        "intake.json",
        serde_json::json!({"benchmark": "intake", "clients": 8, "alertmanagerVersion": "0.25.0",
            "modes": [{"mode": "single", "alertsPerRequest": 1, "ratio": 1.1,
                       "psaOperator": {"alertsPerSecond": 11000.0},
                       "alertmanager": {"alertsPerSecond": 10000.0}}]}),
    );
    write(
        "latency.json",
        serde_json::json!({"benchmark": "e2e-latency", "latency": {"p50Ms": 80, "p99Ms": 140}}),
    );
    std::fs::write(dir.path().join("broken.json"), "{ not json").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/plot-benchmarks.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipped broken.json"), "{stderr}");
    for svg in [
        "convergence-connectwise.svg",
        "convergence-bms.svg",
        "convergence.svg",
        "memory.svg",
        "intake.svg",
        "latency.svg",
    ] {
        let text = std::fs::read_to_string(dir.path().join(svg))
            .unwrap_or_else(|e| panic!("{svg}: {e}; {stderr}"));
        assert!(text.contains("<svg"), "{svg}");
    }
    let memory = std::fs::read_to_string(dir.path().join("memory.svg")).unwrap();
    assert!(
        memory.contains("target 128 MiB"),
        "the target line is labelled"
    );
    assert!(!dir.path().join("broken.svg").exists());
}

fn which_python() -> Option<()> {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
}
