//! Reconcilers end to end: devcluster + real kubectl + PSA sandboxes + `psa-operator run` as a
//! process. Assertions read the PSA's state through the sandbox and the resources through kubectl.

use std::time::Duration;

use serde_json::Value;

use crate::devcluster::{path_str, repo, Cluster};
use crate::fixtures::{mapping_yaml, patch_until, resolved_value, unresolved_value, yaml_stream};
use crate::support::{start_operator, ChildGuard};
use psa_operator::sandbox::{self, RunningSandbox};

/// One environment: API server with CRDs, both sandboxes, the samples applied, the operator.
pub struct Env {
    pub cluster: Cluster,
    pub cw: RunningSandbox,
    /// Kept alive for the Kaseya BMS connection of the samples.
    #[allow(dead_code)]
    pub bms: RunningSandbox,
    /// Kept alive for the Autotask connection of the samples.
    #[allow(dead_code)]
    pub autotask: RunningSandbox,
    pub operator: ChildGuard,
    pub intake_port: u16,
    pub metrics_port: u16,
    /// Extra environment of every operator process this Env starts.
    pub operator_env: Vec<(String, String)>,
}

/// The samples of `config/samples/` with the sandbox URLs of this test and a short
/// re-validation interval (so PSA-side renames show within the test).
pub fn samples_for(cw: &RunningSandbox, bms: &RunningSandbox, at: &RunningSandbox) -> String {
    let dir = repo().join("config/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = String::new();
    for f in files
        .iter()
        .filter(|f| f.extension().map(|e| e == "yaml").unwrap_or(false))
    {
        let mut text = std::fs::read_to_string(f)
            .unwrap()
            .replace("http://127.0.0.1:8081", &cw.base_url())
            .replace("http://127.0.0.1:8082", &bms.base_url())
            .replace("http://127.0.0.1:8083", &at.base_url());
        if text.contains("kind: PsaConnection") {
            text = text.replacen("\nspec:\n", "\nspec:\n  revalidateInterval: 2s\n", 1);
        }
        out.push_str("---\n");
        out.push_str(&text);
        out.push('\n');
    }
    out
}

pub async fn apply_text(cluster: &Cluster, yaml: &str) -> String {
    let file = cluster
        .dir
        .path()
        .join(format!("apply-{}.yaml", crate::support::free_port()));
    std::fs::write(&file, yaml).unwrap();
    cluster.kubectl_ok(&["apply", "-f", path_str(&file)]).await
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with_env(&[]).await
    }

    /// Like [`Env::start`], with extra environment for the operator (e.g. `RUST_LOG`).
    pub async fn start_with_env(operator_env: &[(&str, &str)]) -> Env {
        let cluster = Cluster::start().await;
        cluster.install_crds().await;
        let cw = sandbox::connectwise::start(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            sandbox::connectwise::demo_seed(),
            Default::default(),
        )
        .await
        .unwrap();
        let bms = sandbox::bms::start(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            sandbox::bms::demo_seed(),
            Default::default(),
        )
        .await
        .unwrap();
        let autotask = sandbox::autotask::start(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            sandbox::autotask::demo_seed(),
            Default::default(),
        )
        .await
        .unwrap();
        apply_text(&cluster, &samples_for(&cw, &bms, &autotask)).await;
        let (operator, intake_port, metrics_port) =
            start_operator(cluster.dir.path(), &cluster.kubeconfig, operator_env);
        Env {
            cluster,
            cw,
            bms,
            autotask,
            operator,
            intake_port,
            metrics_port,
            operator_env: operator_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn restart_operator(&mut self) {
        self.operator.kill();
        let env: Vec<(&str, &str)> = self
            .operator_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (op, i, m) = start_operator(self.cluster.dir.path(), &self.cluster.kubeconfig, &env);
        self.operator = op;
        self.intake_port = i;
        self.metrics_port = m;
    }

    pub async fn jsonpath(&self, what: &str, path: &str) -> String {
        let out = self
            .cluster
            .kubectl(&["get", "-n", "psa", what, "-o", &format!("jsonpath={path}")])
            .await;
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// (status, reason, message) of a condition.
    pub async fn condition(&self, what: &str, type_: &str) -> (String, String, String) {
        let f =
            |field: &'static str| format!("{{.status.conditions[?(@.type==\"{type_}\")].{field}}}");
        (
            self.jsonpath(what, &f("status")).await,
            self.jsonpath(what, &f("reason")).await,
            self.jsonpath(what, &f("message")).await,
        )
    }

    pub async fn wait_condition(
        &self,
        what: &str,
        type_: &str,
        status: &str,
    ) -> (String, String, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let c = self.condition(what, type_).await;
            if c.0 == status {
                return c;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "{what}: {type_} never became {status}; last {c:?}\noperator log:\n{}",
                    tail(&self.operator.log_text())
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn sandbox_state(sb: &RunningSandbox) -> Value {
        crate::sandbox_admin::state(sb).await
    }

    /// A call to the ConnectWise sandbox's REST API as a technician or administrator would make it.
    pub async fn cw_api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        use base64::Engine;
        let auth =
            base64::engine::general_purpose::STANDARD.encode("demo+demo-public:demo-private");
        reqwest::Client::new()
            .request(
                method,
                format!("{}/v4_6_release/apis/3.0{path}", self.cw.base_url()),
            )
            .header("Authorization", format!("Basic {auth}"))
            .header("clientId", "00000000-0000-0000-0000-000000000001")
            .json(&body)
            .send()
            .await
            .expect("sandbox answers")
    }

    /// Waits until `path` of `what` reads `want` (a status figure the operator writes soon).
    pub async fn wait_jsonpath(&self, what: &str, path: &str, want: &str) {
        self.eventually(&format!("{what} {path} = {want}"), || async {
            (self.jsonpath(what, path).await == want).then_some(())
        })
        .await;
    }

    /// Polls `f` until it returns `Some`; on timeout fails with the operator's log tail.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}\noperator log:\n{}",
                    tail(&self.operator.log_text())
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn dump_on_failure(&self) -> String {
        tail(&self.operator.log_text())
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn rows<'a>(state: &'a Value, table: &str) -> Vec<&'a Value> {
    state[table]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

pub async fn patch(env: &Env, what: &str, kind: &str, patch: &str) {
    env.cluster
        .kubectl_ok(&["patch", "-n", "psa", what, "--type", kind, "-p", patch])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise_samples_converge_and_follow_changes() {
    let mut env = Env::start().await;
    let out = env
        .cluster
        .kubectl(&[
            "wait",
            "-n",
            "psa",
            "--for=condition=Ready",
            "psaconnection/demo-cw",
            "customermapping/contoso",
            "customermapping/fabrikam",
            "contractservice/saas-alerts-monitoring",
            "--timeout=120s",
        ])
        .await;
    assert!(
        out.status.success(),
        "kubectl wait failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.dump_on_failure().await
    );

    // `kubectl get psa` shows the category with the promised columns.
    let table = env.cluster.kubectl_ok(&["get", "psa", "-n", "psa"]).await;
    assert!(
        table.contains("READY") && table.contains("SYNCED") && table.contains("REASON"),
        "{table}"
    );
    assert!(
        table.contains("psaconnection.psa-operator.io/demo-cw"),
        "{table}"
    );

    // The catalog service exists once; Contoso's agreement carries 42 users at 1.50 / 4.00.
    let st = Env::sandbox_state(&env.cw).await;
    let catalog: Vec<_> = rows(&st, "catalog")
        .into_iter()
        .filter(|c| c["identifier"] == "SaaS Alerts Monitoring")
        .collect();
    assert_eq!(catalog.len(), 1, "{catalog:?}");
    let additions = rows(&st, "additions");
    assert_eq!(additions.len(), 1, "{additions:?}");
    assert_eq!(additions[0]["quantity"].as_f64(), Some(42.0));
    // The demo agreement is not prorated and invoiced through this month: the line starts on
    // the next invoice date, as ConnectWise requires.
    let next =
        psa_operator::sandbox::connectwise::first_of_next_month(chrono::Utc::now().date_naive());
    assert_eq!(
        additions[0]["effectiveDate"].as_str(),
        Some(format!("{next}T00:00:00Z").as_str())
    );
    assert_eq!(
        env.jsonpath("customermapping/contoso", "{.status.syncedQuantity}")
            .await,
        "42"
    );

    // Restarting the operator does not create a second service or line.
    env.restart_operator();
    patch(
        &env,
        "contractservice/saas-alerts-monitoring",
        "merge",
        r#"{"metadata":{"annotations":{"psa-operator.io/reconcile-requested-at":"1"}}}"#,
    )
    .await;
    patch(
        &env,
        "customermapping/contoso",
        "merge",
        r#"{"metadata":{"annotations":{"psa-operator.io/reconcile-requested-at":"1"}}}"#,
    )
    .await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    env.cw.admin().clear_calls();
    // A quantity change in git is one write to the PSA.
    patch(
        &env,
        "customermapping/contoso",
        "merge",
        r#"{"spec":{"contractService":{"quantity":50}}}"#,
    )
    .await;
    env.wait_jsonpath("customermapping/contoso", "{.status.syncedQuantity}", "50")
        .await;
    let st = Env::sandbox_state(&env.cw).await;
    assert_eq!(
        rows(&st, "catalog")
            .iter()
            .filter(|c| c["identifier"] == "SaaS Alerts Monitoring")
            .count(),
        1
    );
    assert_eq!(rows(&st, "additions")[0]["quantity"].as_f64(), Some(50.0));
    let calls = env.cw.admin().calls();
    let writes: Vec<_> = calls.calls.iter().filter(|c| c.method != "GET").collect();
    assert_eq!(
        writes.len(),
        1,
        "one PSA write for a quantity change: {writes:?}"
    );
    assert_eq!(writes[0].count, 1, "{writes:?}");

    // A wrong key → Authenticated=False with a clear reason; fixing the Secret heals without restart.
    patch(
        &env,
        "secret/demo-cw-keys",
        "merge",
        r#"{"stringData":{"privateKey":"wrong-key"}}"#,
    )
    .await;
    let (_, reason, message) = env
        .wait_condition("psaconnection/demo-cw", "Authenticated", "False")
        .await;
    assert_eq!(reason, "AuthenticationFailed", "{message}");
    assert!(
        !message.contains("wrong-key") && !message.contains("demo-public"),
        "no secret in status: {message}"
    );
    assert_eq!(
        env.condition("psaconnection/demo-cw", "Ready").await.1,
        "AuthenticationFailed"
    );
    patch(
        &env,
        "secret/demo-cw-keys",
        "merge",
        r#"{"stringData":{"privateKey":"demo-private"}}"#,
    )
    .await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;

    // An unknown status name is named in SettingsResolved, with the nearest existing names.
    let message = unresolved_value(&env, "psaconnection/demo-cw", "status", "Nwe").await;
    assert!(
        message.contains(r#"ticket.status.value "Nwe""#) && message.contains(r#""New""#),
        "{message}"
    );
    resolved_value(&env, "psaconnection/demo-cw", "status", "New").await;

    // An administrator renames the status in the PSA: re-validation flips the condition before a
    // ticket fails, naming the setting; renaming it back heals.
    let st = Env::sandbox_state(&env.cw).await;
    let new_status = rows(&st, "statuses")
        .into_iter()
        .find(|s| s["name"] == "New")
        .cloned()
        .unwrap();
    let path = format!(
        "/service/boards/{}/statuses/{}",
        new_status["board"]["id"], new_status["id"]
    );
    let rename = |to: &str| serde_json::json!([{"op": "replace", "path": "name", "value": to}]);
    let r = env
        .cw_api(reqwest::Method::PATCH, &path, rename("Fresh"))
        .await;
    assert!(r.status().is_success(), "rename: {}", r.status());
    let (_, reason, message) = env
        .wait_condition("psaconnection/demo-cw", "SettingsResolved", "False")
        .await;
    assert_eq!(reason, "NamesNotFound");
    assert!(
        message.contains(r#"ticket.status.value "New""#),
        "{message}"
    );
    let r = env
        .cw_api(reqwest::Method::PATCH, &path, rename("New"))
        .await;
    assert!(r.status().is_success());
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;

    // deletionPolicy Delete removes the catalog service from the PSA; the finalizer is released.
    patch(
        &env,
        "contractservice/saas-alerts-monitoring",
        "merge",
        r#"{"spec":{"deletionPolicy":"Delete"}}"#,
    )
    .await;
    env.cluster
        .kubectl_ok(&[
            "delete",
            "-n",
            "psa",
            "contractservice/saas-alerts-monitoring",
            "--timeout=120s",
        ])
        .await;
    // Still in use on Contoso's agreement, so ConnectWise refuses the delete: it is deactivated.
    let st = Env::sandbox_state(&env.cw).await;
    let left: Vec<_> = rows(&st, "catalog")
        .into_iter()
        .filter(|c| c["identifier"] == "SaaS Alerts Monitoring")
        .collect();
    assert!(
        left.is_empty() || left.iter().all(|c| c["inactiveFlag"] == true),
        "catalog service still active: {left:?}"
    );
    // The mapping that bills through it says so.
    let (_, reason, _) = env
        .wait_condition("customermapping/contoso", "ContractSynced", "False")
        .await;
    assert_eq!(reason, "ServiceNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kaseya_bms_connection_becomes_ready() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-bms", "Ready", "True")
        .await;
    let ids = env
        .jsonpath("psaconnection/demo-bms", "{.status.resolved.values}")
        .await;
    assert!(
        ids.contains("ticket.issueType.overrides.Too Many Downloads.subIssueType"),
        "{ids}"
    );
    assert_eq!(
        env.jsonpath("psaconnection/demo-bms", "{.status.provider}")
            .await,
        "KaseyaBMS"
    );
    // Wrong password → Authenticated=False; fixed → Ready.
    patch(
        &env,
        "secret/demo-bms-keys",
        "merge",
        r#"{"stringData":{"password":"nope"}}"#,
    )
    .await;
    let (_, reason, message) = env
        .wait_condition("psaconnection/demo-bms", "Authenticated", "False")
        .await;
    assert_eq!(reason, "AuthenticationFailed", "{message}");
    assert!(!message.contains("nope"), "{message}");
    patch(
        &env,
        "secret/demo-bms-keys",
        "merge",
        r#"{"stringData":{"password":"demo-password"}}"#,
    )
    .await;
    env.wait_condition("psaconnection/demo-bms", "Ready", "True")
        .await;

    // Settings every BMS ticket needs (its document requires QueueId and StatusId): a connection
    // without one could never create a ticket, so it is refused at reconcile time, before the
    // first alert fails — RequiredByPsa names the setting and the connection is not Ready.
    // Putting the setting back heals.
    for (setting, needle, restore) in [
        (
            "board",
            "queue",
            r#"{"spec":{"ticket":{"board":"Security Alerts"}}}"#,
        ),
        (
            "status",
            "StatusId",
            r#"{"spec":{"ticket":{"status":{"value":"New"}}}}"#,
        ),
    ] {
        let (_, reason, message) = patch_until(
            &env,
            "psaconnection/demo-bms",
            "json",
            &format!(r#"[{{"op":"remove","path":"/spec/ticket/{setting}"}}]"#),
            "SettingsResolved",
            "False",
        )
        .await;
        assert_eq!(reason, "RequiredByPsa", "{message}");
        assert!(
            message.contains(&format!("ticket.{setting}")) && message.contains(needle),
            "{message}"
        );
        let (ready, reason, _) = env.condition("psaconnection/demo-bms", "Ready").await;
        assert_eq!(
            (ready.as_str(), reason.as_str()),
            ("False", "RequiredByPsa"),
            "{setting}"
        );
        crate::fixtures::merge_until_ready(&env, "psaconnection/demo-bms", restore).await;
    }
}

/// The contact chain of a mapping without `defaultContact` ([G] tickets without a contact): on
/// Kaseya BMS the account's point of contact (`IsPoc`) becomes the mapping's contact; an account
/// without one is reported as `ContactResolved=False` / `NoContact` while the mapping stays Ready
/// (its tickets are still delivered, without a contact).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_contact_chain_is_reported() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-bms", "Ready", "True")
        .await;
    let mappings = yaml_stream(&[
        mapping_yaml(
            "fabrikam-bms",
            "demo-bms",
            "Fabrikam Inc",
            "{identifier: FABRIKAM}",
            "",
        ),
        mapping_yaml(
            "contoso-bms",
            "demo-bms",
            "Contoso Ltd",
            "{identifier: CONTOSO}",
            "",
        ),
    ]);
    let (_, reason, message) = crate::fixtures::apply_until(
        &env,
        &mappings,
        "customermapping/fabrikam-bms",
        "ContactResolved",
        "True",
    )
    .await;
    assert_eq!(reason, "CompanyContact", "{message}");
    let contact = env
        .jsonpath("customermapping/fabrikam-bms", "{.status.contactId}")
        .await;
    assert!(!contact.is_empty(), "the point of contact's id in status");
    let (_, reason, message) = env
        .wait_condition("customermapping/contoso-bms", "ContactResolved", "False")
        .await;
    assert_eq!(reason, "NoContact", "{message}");
    assert!(message.contains("Contoso Ltd"), "{message}");
    env.wait_condition("customermapping/contoso-bms", "Ready", "True")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_problems_are_reported() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    let broken = yaml_stream(&[
        mapping_yaml(
            "contoso-again",
            "demo-cw",
            "Contoso Ltd",
            "{identifier: CONTOSO}",
            "",
        ),
        mapping_yaml(
            "nowhere",
            "demo-cw",
            "Nowhere Inc",
            "{name: Nowhere Inc}",
            "",
        ),
        mapping_yaml(
            "orphan",
            "no-such-connection",
            "Orphan Org",
            "{name: Orphan}",
            "",
        ),
    ]);
    let (_, reason, message) = crate::fixtures::apply_until(
        &env,
        &broken,
        "customermapping/contoso-again",
        "Ready",
        "False",
    )
    .await;
    assert_eq!(reason, "DuplicateOrganization", "{message}");
    assert!(message.contains("contoso"), "{message}");
    let (_, reason, _) = env
        .wait_condition("customermapping/contoso", "Ready", "False")
        .await;
    assert_eq!(reason, "DuplicateOrganization");
    let (_, reason, message) = env
        .wait_condition("customermapping/nowhere", "Ready", "False")
        .await;
    assert_eq!(reason, "CompanyNotFound", "{message}");
    let (_, reason, _) = env
        .wait_condition("customermapping/orphan", "Ready", "False")
        .await;
    assert_eq!(reason, "ConnectionNotFound");
    // Removing the duplicate heals the original.
    crate::fixtures::delete_heals(
        &env,
        "customermapping/contoso-again",
        "customermapping/contoso",
    )
    .await;
}

/// A call to the BMS sandbox's REST API as a technician's tool makes it (its own login).
async fn bms_api(env: &Env, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    crate::dispatch::bms::technician_api(&env.bms, method, path, body).await
}

/// Lines of a catalog service on Contoso's "Managed Security" through the related-services
/// search: (line id, unit price).
async fn bms_service_lines(env: &Env, service_id: &str) -> Vec<(i64, f64)> {
    let answer = bms_api(
        env,
        reqwest::Method::POST,
        &format!("/v2/admin/finance/services/{service_id}/relatedservices/search"),
        Some(serde_json::json!({"PageSize": 100, "PageNumber": 1,
                                "Filter": {"ContractName": "Managed Security"}})),
    )
    .await;
    answer["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["unitPrice"].as_f64().unwrap()))
        .collect()
}

/// Kaseya BMS billing: a line added by hand in BMS before the mapping existed is adopted; a
/// quantity change adds a line and ends the old one, so exactly one line bills; the same quantity
/// again (after an operator restart, from status memory) changes nothing. Checked through the
/// related-services search a BMS user's tool would use. `Orphan` keeps the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kaseya_bms_billing_and_orphan_deletion() {
    let mut env = Env::start().await;
    env.wait_condition("psaconnection/demo-bms", "Ready", "True")
        .await;
    let service_id =
        crate::fixtures::ready_monitoring_service(&env, "bms-monitoring", "demo-bms").await;
    let st = Env::sandbox_state(&env.bms).await;
    let contract_id = st["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Managed Security")
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    // Someone adds the service to Contoso's contract in BMS by hand, 5 units.
    let hand = bms_api(
        &env,
        reqwest::Method::POST,
        &format!("/v2/finance/contracts/recurringservices/{contract_id}/services"),
        Some(serde_json::json!([{
            "ServiceId": service_id.parse::<i64>().unwrap(), "Units": 5, "UnitCost": 1.0,
            "UnitPrice": 3.0, "EffectiveDate": "2026-01-01T00:00:00", "SortOrder": 0,
        }])),
    )
    .await;
    let hand_id = hand["result"]["id"].as_i64().unwrap();

    let billing = |rows: &[(i64, f64)]| -> Vec<i64> {
        rows.iter()
            .filter(|(_, p)| *p != 0.0)
            .map(|(id, _)| *id)
            .collect()
    };
    let units_of = |st: &Value, id: i64| -> f64 {
        st["contracts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|k| k["lines"].as_array().cloned().unwrap_or_default())
            .find(|l| l["id"].as_i64() == Some(id))
            .and_then(|l| l["units"].as_f64())
            .unwrap()
    };

    let mapping_yaml = |quantity: i64| {
        crate::fixtures::contoso_billing_mapping_yaml(
            "contoso-bms",
            "demo-bms",
            "bms-monitoring",
            quantity,
        )
    };
    let (_, reason, message) = crate::fixtures::apply_until(
        &env,
        &mapping_yaml(5),
        "customermapping/contoso-bms",
        "ContractSynced",
        "True",
    )
    .await;
    assert_eq!(reason, "LineAdopted", "{message}");
    assert_eq!(
        env.jsonpath("customermapping/contoso-bms", "{.status.contractLineId}")
            .await,
        hand_id.to_string()
    );
    assert_eq!(
        bms_service_lines(&env, &service_id).await,
        [(hand_id, 3.0)],
        "adopted, not duplicated"
    );

    // 5 → 7: BMS cannot change a line's units; a new line bills 7, the old one is ended.
    apply_text(&env.cluster, &mapping_yaml(7)).await;
    env.wait_jsonpath(
        "customermapping/contoso-bms",
        "{.status.syncedQuantity}",
        "7",
    )
    .await;
    let (_, reason, message) = env
        .condition("customermapping/contoso-bms", "ContractSynced")
        .await;
    assert_eq!(reason, "LineReplaced", "{message}");
    assert!(
        message.contains(&format!("ended line {hand_id}")),
        "{message}"
    );
    let rows = bms_service_lines(&env, &service_id).await;
    let bills = billing(&rows);
    assert_eq!(bills.len(), 1, "exactly one billing line: {rows:?}");
    let st = Env::sandbox_state(&env.bms).await;
    assert_eq!(units_of(&st, bills[0]), 7.0);

    // 7 again, after a restart (the line's units are remembered in status): nothing changes.
    env.restart_operator();
    apply_text(&env.cluster, &mapping_yaml(7)).await;
    crate::fixtures::reconcile_in_step(&env, "customermapping/contoso-bms", "again").await;
    let again = bms_service_lines(&env, &service_id).await;
    assert_eq!(again, rows, "no write for the same quantity");
    assert_eq!(billing(&again), bills);
    assert_eq!(units_of(&Env::sandbox_state(&env.bms).await, bills[0]), 7.0);
    crate::bms_contract::assert_contract(&env.bms).await;

    // Orphan: deleting the resource leaves the service in the PSA.
    env.cluster
        .kubectl_ok(&[
            "delete",
            "-n",
            "psa",
            "contractservice/bms-monitoring",
            "--timeout=120s",
        ])
        .await;
    let st = Env::sandbox_state(&env.bms).await;
    let svc: Vec<_> = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "SaaS Alerts Monitoring")
        .collect();
    assert_eq!(svc.len(), 1);
    assert_eq!(
        svc[0]["isActive"], true,
        "Orphan leaves the service as it was"
    );
}
