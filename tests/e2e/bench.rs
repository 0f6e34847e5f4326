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
    let v = bench(&["intake", "--alerts", "20", "--clients", "2", "--batch", "5"]).await;
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
        assert_eq!(m["psaOperator"]["latency"]["samples"], *requests);
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

#[tokio::test]
async fn memory_reads_the_operator_rss() {
    let v = bench(&["memory", "--mappings", "5", "--events", "150"]).await;
    assert_eq!(v["events"], 150);
    for p in ["idle", "withMappings", "withMappingsAndEvents", "peak"] {
        assert!(number(&v, &format!("/rssMiB/{p}")) > 1.0, "{p}: {v}");
    }
    assert!(number(&v, "/storeFileMiB") > 0.0, "{v}");
}
