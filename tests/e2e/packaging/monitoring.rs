//! What the chart gives an on-call engineer: the PrometheusRule's rules pass `promtool check
//! rules`, their expressions pass `promtool test rules` on sample series (and a broken threshold
//! fails them), the chart ships rules and dashboard only when asked, and [`metric_names_used`]
//! feeds the tour test that scrapes a running operator for every name.

use std::path::Path;

use serde_json::Value;

use super::helm::render;
use super::tools::{find, of_kind, promtool, repo, run, run_ok, yaml_docs};

const RULES: &str = "charts/psa-operator/files/prometheus-rules.yaml";
const RULE_TESTS: &str = "tests/monitoring/prometheus-rules.test.yaml";
const DASHBOARD: &str = "charts/psa-operator/files/grafana-dashboard.json";

fn rules() -> Value {
    yaml_docs(&std::fs::read_to_string(repo().join(RULES)).unwrap()).remove(0)
}

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join(DASHBOARD)).unwrap()).unwrap()
}

fn rule_exprs() -> Vec<(String, String)> {
    rules()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["expr"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn dashboard_exprs() -> Vec<(String, String)> {
    dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap().to_string();
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every `psa_operator_*` metric a rule or a dashboard panel queries.
pub fn metric_names_used() -> Vec<String> {
    let re = regex::Regex::new(r"\bpsa_operator_[a-z0-9_]+").unwrap();
    let mut names: Vec<String> = rule_exprs()
        .into_iter()
        .chain(dashboard_exprs())
        .flat_map(|(_, e)| {
            re.find_iter(&e)
                .map(|m| m.as_str().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn promtool_accepts_the_alert_rules_an_on_call_needs() {
    let out = run_ok(&promtool(), &["check", "rules", RULES]);
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
    let alerts: Vec<String> = rule_exprs().into_iter().map(|(a, _)| a).collect();
    for want in [
        "PsaConnectionNotReady",
        "PsaDeadLetters",
        "PsaFailsafeEmailSent",
        "PsaBudgetHigh",
        "PsaEventsHeld",
        "PsaIntakeServerErrors",
        "PsaReconcileErrors",
    ] {
        assert!(
            alerts.iter().any(|a| a == want),
            "{want} missing: {alerts:?}"
        );
    }
}

#[test]
fn promtool_unit_tests_pass_and_catch_a_wrong_threshold() {
    let out = run(&promtool(), &["test", "rules", RULE_TESTS]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("SUCCESS"), "{}", out.stdout);

    // The same tests against rules whose budget threshold is off must fail.
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(repo().join(RULES)).unwrap();
    assert!(rules.contains("> 0.8"));
    let broken = dir.path().join("rules.yaml");
    std::fs::write(&broken, rules.replace("> 0.8", "> 1.5")).unwrap();
    let tests = std::fs::read_to_string(repo().join(RULE_TESTS))
        .unwrap()
        .replace(
            "../../charts/psa-operator/files/prometheus-rules.yaml",
            "rules.yaml",
        );
    let tests_file = dir.path().join("tests.yaml");
    std::fs::write(&tests_file, tests).unwrap();
    let out = run(&promtool(), &["test", "rules", path(&tests_file)]);
    assert!(!out.ok, "a wrong threshold went unnoticed:\n{}", out.stdout);
    let report = format!("{}{}", out.stdout, out.stderr);
    assert!(report.contains("PsaBudgetHigh"), "{report}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn dashboard_shows_what_on_call_reads_first() {
    let d = dashboard();
    assert_eq!(d["uid"], "psa-operator");
    let titles: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for want in [
        "Events in / out",
        "Tickets vs notes",
        "PSA calls by method",
        "PSA errors by method",
        "Queue depth",
        "PSA budget use",
        "Reconcile errors",
    ] {
        assert!(titles.contains(&want), "{want} missing: {titles:?}");
    }
    for p in d["panels"].as_array().unwrap() {
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{}",
            p["title"]
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
    }
    let names = metric_names_used();
    assert!(
        names.contains(&"psa_operator_dispatch_psa_calls_total".to_string()),
        "{names:?}"
    );
}

#[test]
fn chart_ships_rules_and_dashboard_only_when_enabled() {
    let plain = render(&[]);
    assert!(of_kind(&plain, "PrometheusRule").is_empty());
    assert!(of_kind(&plain, "ConfigMap").is_empty());

    let docs = render(&[
        "--set",
        "prometheusRule.enabled=true,grafanaDashboard.enabled=true,serviceMonitor.enabled=true",
        "--set",
        "prometheusRule.labels.release=kube-prometheus-stack",
    ]);
    let rule = find(&docs, "PrometheusRule", "psa-operator");
    assert_eq!(rule["metadata"]["namespace"], "psa-operator-system");
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(
        rule["spec"],
        rules(),
        "the PrometheusRule is the tested file"
    );
    let annotation = rule["spec"]["groups"][0]["rules"][0]["annotations"]["summary"]
        .as_str()
        .unwrap();
    assert!(
        annotation.contains("{{ $labels.connection }}"),
        "Helm left the alert templates alone: {annotation}"
    );

    let cm = find(&docs, "ConfigMap", "psa-operator-dashboard");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value =
        serde_json::from_str(cm["data"]["psa-operator.json"].as_str().unwrap()).unwrap();
    assert_eq!(shipped, dashboard());

    let sm = find(&docs, "ServiceMonitor", "psa-operator");
    assert_eq!(
        sm["spec"]["endpoints"][0]["honorLabels"], true,
        "the series keep the connection's namespace label"
    );
}
