//! The operator on an Autotask connection, end to end (devcluster + real kubectl + the Autotask
//! sandbox + `psa-operator run`): user counts on a contract service, the database budget shared
//! with the MSP's other integrations, `send-sample` and `import`. What the PSA holds is read from
//! the sandbox (`/_sandbox/state`, the calls log), the resources through kubectl.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::controllers::{apply_text, Env};
use crate::fixtures::{contoso_billing_mapping_yaml, ready_monitoring_service};
use psa_operator::sandbox::RunningSandbox;

const ADJUSTMENTS: &str = "/atservicesrest/V1.0/ContractServiceAdjustments";
const CONTRACT_SERVICES: &str = "/atservicesrest/V1.0/Contracts/{id}/Services";
const THRESHOLD: &str = "/atservicesrest/V1.0/ThresholdInformation";

fn rows(state: &Value, table: &str) -> Vec<Value> {
    state[table].as_array().cloned().unwrap_or_default()
}

/// The contract services of `service_id` (with their adjustments) as Autotask holds them.
async fn contract_services_of(sb: &RunningSandbox, service_id: &str) -> Vec<Value> {
    rows(&Env::sandbox_state(sb).await, "contractServices")
        .into_iter()
        .filter(|cs| cs["serviceID"].as_i64() == service_id.parse::<i64>().ok())
        .collect()
}

fn unit_changes(cs: &Value) -> Vec<i64> {
    cs["adjustments"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["unitChange"].as_i64()).collect())
        .unwrap_or_default()
}

fn mapping_yaml(quantity: i64) -> String {
    contoso_billing_mapping_yaml(
        "contoso-autotask",
        "demo-autotask",
        "autotask-monitoring",
        quantity,
    )
}

/// Re-checks the mapping now and waits until its contract line is in step again.
async fn reconcile_in_step(env: &Env, nonce: &str) {
    crate::fixtures::reconcile_in_step(env, "customermapping/contoso-autotask", nonce).await;
}

/// Users 5 → 7 on Contoso's "Managed Security" contract: the service is attached once (+5), the
/// change is exactly one `ContractServiceAdjustments` call of +2 effective today, the same count
/// again (before and after an operator restart) calls nothing, and there is never a second
/// contract service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotask_user_counts_adjust_once_through_the_operator() {
    let mut env = Env::start().await;
    env.wait_condition("psaconnection/demo-autotask", "Ready", "True")
        .await;
    let service_id = ready_monitoring_service(&env, "autotask-monitoring", "demo-autotask").await;

    apply_text(&env.cluster, &mapping_yaml(5)).await;
    env.wait_condition("customermapping/contoso-autotask", "ContractSynced", "True")
        .await;
    let lines = contract_services_of(&env.autotask, &service_id).await;
    assert_eq!(lines.len(), 1, "one contract service: {lines:?}");
    assert_eq!(unit_changes(&lines[0]), [5], "{lines:?}");
    let line_id = lines[0]["id"].to_string();
    assert_eq!(
        env.jsonpath(
            "customermapping/contoso-autotask",
            "{.status.contractLineId}"
        )
        .await,
        line_id
    );

    // 5 → 7: one adjustment of +2 from today, nothing else written.
    env.autotask.admin().clear_calls();
    apply_text(&env.cluster, &mapping_yaml(7)).await;
    env.wait_jsonpath(
        "customermapping/contoso-autotask",
        "{.status.syncedQuantity}",
        "7",
    )
    .await;
    let calls = env.autotask.admin().calls();
    assert_eq!(calls.count("POST", ADJUSTMENTS), 1, "{calls:?}");
    assert_eq!(calls.count("POST", CONTRACT_SERVICES), 0, "{calls:?}");
    assert_eq!(calls.count("PATCH", CONTRACT_SERVICES), 0, "{calls:?}");
    let lines = contract_services_of(&env.autotask, &service_id).await;
    assert_eq!(lines.len(), 1, "never a second contract service: {lines:?}");
    assert_eq!(unit_changes(&lines[0]), [5, 2], "{lines:?}");
    let plus_two = &lines[0]["adjustments"][1];
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        plus_two["effectiveDate"]
            .as_str()
            .is_some_and(|d| d.starts_with(&today)),
        "effective today: {plus_two}"
    );

    // The same count again: read, nothing written.
    env.autotask.admin().clear_calls();
    reconcile_in_step(&env, "same-count").await;
    let calls = env.autotask.admin().calls();
    assert_eq!(calls.count("POST", ADJUSTMENTS), 0, "{calls:?}");

    // After a restart: still no second adjustment, still one contract service.
    env.restart_operator();
    env.wait_condition("psaconnection/demo-autotask", "Ready", "True")
        .await;
    reconcile_in_step(&env, "after-restart").await;
    let calls = env.autotask.admin().calls();
    assert_eq!(
        calls.count("POST", ADJUSTMENTS),
        0,
        "a restart adjusts nothing: {calls:?}"
    );
    assert_eq!(calls.count("POST", CONTRACT_SERVICES), 0, "{calls:?}");
    let lines = contract_services_of(&env.autotask, &service_id).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(unit_changes(&lines[0]), [5, 2], "{lines:?}");
}

/// `psa-operator send-sample` against the running operator, credentials and token from the
/// cluster (as the `dev` banner suggests).
fn send_sample(env: &Env, user: &str) {
    let out = Command::new(crate::support::bin())
        .args(["send-sample", "-n", "psa", "--connection", "demo-autotask"])
        .args(["--user", user, "--intake-url"])
        .arg(format!("http://127.0.0.1:{}", env.intake_port))
        .env("KUBECONFIG", &env.cluster.kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn set_other_integrations_use(sb: &RunningSandbox, requests: u64) {
    crate::sandbox_admin::set_database(sb, json!({ "requestsThisHour": requests })).await;
}

/// The value of a series in the operator's `/metrics`, if present.
async fn metric(env: &Env, series: &str) -> Option<f64> {
    crate::support::metric(env.metrics_port, series).await
}

/// `send-sample` makes a ticket on the right Autotask company; then the MSP's other
/// integrations use 95 % of the database's hour: the connection's `PsaBudget` condition and
/// the `psa_operator_psa_budget_share` gauge say so, the connection is not failed, and a new
/// alert waits (nothing but threshold readings reaches Autotask) instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotask_shared_budget_shows_and_holds_alerts() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-autotask", "Ready", "True")
        .await;
    let (_, reason, message) = env
        .wait_condition("psaconnection/demo-autotask", "PsaBudget", "True")
        .await;
    assert_eq!(reason, "BudgetAvailable", "{message}");
    assert!(message.contains("10000 requests per hour"), "{message}");

    // send-sample: a ticket on Contoso (Jane's company) with Jane as its contact.
    send_sample(&env, "jane@contoso.example");
    let ticket = env
        .eventually("the sample's ticket", || async {
            rows(&Env::sandbox_state(&env.autotask).await, "tickets")
                .into_iter()
                .next()
        })
        .await;
    let st = Env::sandbox_state(&env.autotask).await;
    let id_of = |table: &str, field: &str, value: &str| {
        rows(&st, table)
            .into_iter()
            .find(|r| r[field] == value)
            .unwrap_or_else(|| panic!("{value} not in {table}"))["id"]
            .clone()
    };
    assert_eq!(
        ticket["companyID"],
        id_of("companies", "companyName", "Contoso Ltd")
    );
    assert_eq!(
        ticket["contactID"],
        id_of("contacts", "emailAddress", "jane@contoso.example")
    );
    assert!(ticket["externalID"].as_str().is_some_and(|m| !m.is_empty()));

    // Other integrations use 9,500 of the database's 10,000 requests this hour.
    set_other_integrations_use(&env.autotask, 9_500).await;
    let (_, reason, message) = env
        .wait_condition("psaconnection/demo-autotask", "PsaBudget", "False")
        .await;
    assert_eq!(reason, "SharedBudgetLow", "{message}");
    assert!(message.contains("95 %"), "{message}");
    assert!(message.contains("holds its calls"), "{message}");
    let series = r#"psa_operator_psa_budget_share{namespace="psa",connection="demo-autotask"}"#;
    let share = env
        .eventually("the budget gauge at 95 %", || async {
            metric(&env, series).await.filter(|s| *s >= 0.95)
        })
        .await;
    assert!(share < 1.0, "{share}");

    // A new alert waits: no ticket call, no dead letter, the connection is not failed.
    env.autotask.admin().clear_calls();
    send_sample(&env, "jane@contoso.example");
    let pending =
        r#"psa_operator_connection_pending_events{namespace="psa",connection="demo-autotask"}"#;
    env.eventually("the held alert pending", || async {
        metric(&env, pending).await.filter(|n| *n >= 1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = env.autotask.admin().calls();
    assert_eq!(
        calls.total,
        calls.count("GET", THRESHOLD),
        "only threshold readings reach Autotask while held: {calls:?}"
    );
    assert_eq!(
        rows(&Env::sandbox_state(&env.autotask).await, "tickets").len(),
        1,
        "no new ticket while held"
    );
    let dead =
        r#"psa_operator_dispatch_dead_letters_total{namespace="psa",connection="demo-autotask"}"#;
    assert_eq!(metric(&env, dead).await, Some(0.0));
    let (ready, reason, message) = env.condition("psaconnection/demo-autotask", "Ready").await;
    assert_ne!(ready, "False", "{reason}: {message}");
}

/// `psa-operator import` against an Autotask database (the demo seed in a sandbox): one
/// CustomerMapping file per Autotask company that is not the catch-all, naming the company by
/// its number and its contact, valid next to the connection; Autotask is only read (queries are
/// POSTs to `…/query`, nothing else is written).
#[tokio::test]
async fn import_writes_customer_mappings_for_autotask_companies() {
    use psa_operator::gitops::validate::validate_paths;
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let off =
        psa_operator::gitops::offline::start(&repo.join("src/sandbox/autotask/demo-seed.yaml"))
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("connection.yaml");
    let sample =
        std::fs::read_to_string(repo.join("config/samples/02-psaconnection-autotask.yaml"))
            .unwrap()
            .replace("http://127.0.0.1:8083", &off.sandbox.base_url());
    std::fs::write(&conn, sample).unwrap();
    let out_dir = dir.path().join("mappings");
    std::fs::create_dir_all(&out_dir).unwrap();
    off.sandbox.admin().clear_calls();
    let args: Vec<String> = vec![
        "import".into(),
        "--connection-file".into(),
        conn.display().to_string(),
        "--secret-file".into(),
        repo.join("config/samples/01-secrets.yaml")
            .display()
            .to_string(),
        "--out-dir".into(),
        out_dir.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(crate::support::bin())
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("3 compan(ies) listed from Autotask"),
        "{stderr}"
    );
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "customermapping-contoso.yaml",
            "customermapping-fabrikam.yaml"
        ],
        "the catch-all company is skipped"
    );
    let contoso = std::fs::read_to_string(out_dir.join("customermapping-contoso.yaml")).unwrap();
    for want in [
        "kind: CustomerMapping",
        "connectionRef:\n    name: demo-autotask",
        "organization: Contoso Ltd",
        "company:\n    identifier: CONTOSO",
    ] {
        assert!(contoso.contains(want), "{want:?} not in\n{contoso}");
    }
    let fabrikam = std::fs::read_to_string(out_dir.join("customermapping-fabrikam.yaml")).unwrap();
    assert!(
        fabrikam.contains("company:\n    identifier: FABRIKAM"),
        "{fabrikam}"
    );
    // The files are valid next to their connection.
    std::fs::copy(&conn, out_dir.join("connection.yaml")).unwrap();
    let v = validate_paths(std::slice::from_ref(&out_dir));
    assert!(v.is_valid(), "{:?}", v.diagnostics);
    assert_eq!(v.set.mappings.len(), 2);

    let calls = off.sandbox.admin().calls();
    let writes: Vec<String> = calls
        .calls
        .iter()
        .filter(|c| c.method != "GET" && !(c.method == "POST" && c.route.ends_with("/query")))
        .map(|c| format!("{} {}", c.method, c.route))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "import only reads");
    assert!(calls.count("POST", "/atservicesrest/V1.0/Companies/query") >= 1);
}
