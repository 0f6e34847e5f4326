//! Fixture builders shared by the e2e areas: the resources a user would write (as YAML, the way
//! they reach the cluster) and the operator steps several scenarios take in the same way. Each
//! builder says what it makes; a test adds only what is particular to it.

use crate::controllers::{apply_text, patch, Env};

/// A `ContractService` for "SaaS Alerts Monitoring" (description "Monitoring of SaaS tenants",
/// cost 1.00, price 3.00) named `name` on `connection`; `extra_spec` lines (indented two spaces)
/// are appended to its spec.
pub fn monitoring_service_yaml(name: &str, connection: &str, extra_spec: &str) -> String {
    resource_yaml(
        "ContractService",
        name,
        connection,
        &format!(
            "  name: SaaS Alerts Monitoring\n  description: Monitoring of SaaS tenants\n  \
             cost: \"1.00\"\n  price: \"3.00\"\n{extra_spec}"
        ),
    )
}

/// A resource of the operator's `kind` named `name` in `psa` on `connection`, with the rest of
/// its spec in `spec_lines` (indented two spaces, each ending in a newline).
pub fn resource_yaml(kind: &str, name: &str, connection: &str, spec_lines: &str) -> String {
    format!(
        "\napiVersion: psa-operator.io/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}, namespace: psa}}\n\
         spec:\n  connectionRef: {{name: {connection}}}\n{spec_lines}"
    )
}

/// A `CustomerMapping` named `name` of `organization` to the company `company` selects (e.g.
/// `{identifier: CONTOSO}` or `{name: Fabrikam Inc}`) on `connection`; `extra_spec` lines
/// (indented two spaces) are appended to its spec.
pub fn mapping_yaml(
    name: &str,
    connection: &str,
    organization: &str,
    company: &str,
    extra_spec: &str,
) -> String {
    resource_yaml(
        "CustomerMapping",
        name,
        connection,
        &format!("  organization: {organization}\n  company: {company}\n{extra_spec}"),
    )
}

/// Several resources as one YAML stream.
pub fn yaml_stream(docs: &[String]) -> String {
    docs.join("---")
}

/// Contoso on `connection`, billed `quantity` units of the contract service `service` on its
/// "Managed Security" contract, with "Alert Contact" as the default contact.
pub fn contoso_billing_mapping_yaml(
    name: &str,
    connection: &str,
    service: &str,
    quantity: i64,
) -> String {
    mapping_yaml(
        name,
        connection,
        "Contoso Ltd",
        "{identifier: CONTOSO}",
        &format!(
            "  defaultContact: {{name: Alert Contact}}\n  contract: {{name: Managed Security}}\n  \
             contractService: {{serviceRef: {{name: {service}}}, quantity: {quantity}}}\n"
        ),
    )
}

/// Applies the monitoring service `name` on `connection` (`deletionPolicy: Orphan`), waits
/// until it is Ready and returns its id in the PSA (`status.externalId`, never empty).
pub async fn ready_monitoring_service(env: &Env, name: &str, connection: &str) -> String {
    let yaml = monitoring_service_yaml(name, connection, "  deletionPolicy: Orphan\n");
    apply_text(&env.cluster, &yaml).await;
    let what = format!("contractservice/{name}");
    env.wait_condition(&what, "Ready", "True").await;
    let id = env.jsonpath(&what, "{.status.externalId}").await;
    assert!(!id.is_empty(), "{what} has no externalId");
    id
}

/// Asks the operator to re-check `mapping` now (`nonce` makes the request new) and waits until
/// its contract line is in step again (`ContractSynced=True`, reason `InStep`).
pub async fn reconcile_in_step(env: &Env, mapping: &str, nonce: &str) {
    patch(
        env,
        mapping,
        "merge",
        &format!(
            r#"{{"metadata":{{"annotations":{{"psa-operator.io/reconcile-requested-at":"{nonce}"}}}}}}"#
        ),
    )
    .await;
    env.eventually("ContractSynced InStep", || async {
        let (status, reason, _) = env.condition(mapping, "ContractSynced").await;
        (status == "True" && reason == "InStep").then_some(())
    })
    .await;
}

/// Patches `what` (`kind`: merge or json) and waits until its condition `type_` has `status`;
/// the condition's (status, reason, message).
pub async fn patch_until(
    env: &Env,
    what: &str,
    kind: &str,
    body: &str,
    type_: &str,
    status: &str,
) -> (String, String, String) {
    patch(env, what, kind, body).await;
    env.wait_condition(what, type_, status).await
}

/// Merge-patches `what` and waits until it is Ready again (a setting put right).
pub async fn merge_until_ready(env: &Env, what: &str, body: &str) {
    patch_until(env, what, "merge", body, "Ready", "True").await;
}

/// Merge-patches a setting the PSA cannot resolve into `what`; the (reason, message) of its
/// `SettingsResolved=False`.
pub async fn merge_until_unresolved(env: &Env, what: &str, body: &str) -> (String, String) {
    let (_, reason, message) =
        patch_until(env, what, "merge", body, "SettingsResolved", "False").await;
    (reason, message)
}

/// Sets `ticket.<setting>.value` of the connection `what` to a name the PSA does not resolve;
/// the `SettingsResolved=False` message, its reason checked to be `NamesNotFound`.
pub async fn unresolved_value(env: &Env, what: &str, setting: &str, value: &str) -> String {
    let body = serde_json::json!({"spec": {"ticket": {setting: {"value": value}}}});
    let (reason, message) = merge_until_unresolved(env, what, &body.to_string()).await;
    assert_eq!(reason, "NamesNotFound", "{message}");
    message
}

/// Puts `ticket.<setting>.value` of the connection `what` back to `value`; waits until Ready.
pub async fn resolved_value(env: &Env, what: &str, setting: &str, value: &str) {
    let body = serde_json::json!({"spec": {"ticket": {setting: {"value": value}}}});
    merge_until_ready(env, what, &body.to_string()).await;
}

/// A PSA error as (its condition reason, which names its kind; the HTTP status behind it), to
/// check both in one assertion.
pub fn kind_and_status(e: &psa_operator::psa::PsaError) -> (&'static str, Option<u16>) {
    use psa_operator::psa::PsaError::{Auth, Permanent, Transient};
    let status = match e {
        Transient { status, .. } | Auth { status, .. } | Permanent { status, .. } => *status,
        _ => None,
    };
    (e.reason(), status)
}

/// The names of the PSA's boards (Kaseya BMS and Autotask: queues), as its client lists them.
pub async fn board_names(psa: &dyn psa_operator::psa::Directory) -> Vec<String> {
    psa.boards()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect()
}

/// The operator's intake address for `connection`'s alerts (the `psa` namespace).
pub fn alerts_url(env: &Env, connection: &str) -> String {
    format!(
        "http://127.0.0.1:{}/v1/namespaces/psa/connections/{connection}/alerts",
        env.intake_port
    )
}

/// POSTs `alert` to `connection`'s intake with the bearer `token`; the intake's answer.
pub async fn post_alert(
    env: &Env,
    connection: &str,
    token: &str,
    alert: &serde_json::Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(alerts_url(env, connection))
        .bearer_auth(token)
        .json(alert)
        .send()
        .await
        .expect("intake answers")
}

/// An alert as a SaaS monitor posts it: `alert_type` about `user` at `organization`, severity
/// high, titled "<alert type> for <user>".
pub fn intake_alert(
    id: &str,
    organization: &str,
    user: &str,
    alert_type: &str,
) -> serde_json::Value {
    serde_json::json!({
        "id": id, "organization": organization, "user": user, "alertType": alert_type,
        "severity": "high", "title": format!("{alert_type} for {user}"),
        "description": "seen by the SaaS monitor", "occurredAt": "2026-11-24T10:00:00Z"
    })
}

/// Waits until every resource of `what` (e.g. `customermapping/contoso`) is Ready.
pub async fn wait_ready(env: &Env, what: &[&str]) {
    for w in what {
        env.wait_condition(w, "Ready", "True").await;
    }
}

/// Applies `yaml` and waits until the condition `type_` of `what` has `status`; the condition's
/// (status, reason, message).
pub async fn apply_until(
    env: &Env,
    yaml: &str,
    what: &str,
    type_: &str,
    status: &str,
) -> (String, String, String) {
    apply_text(&env.cluster, yaml).await;
    env.wait_condition(what, type_, status).await
}

/// The PSA sandbox stops answering (503 on every call) until its faults are set again.
pub fn psa_outage(sb: &psa_operator::sandbox::RunningSandbox) {
    sb.admin()
        .set_faults(psa_operator::sandbox::Faults {
            outage: true,
            ..Default::default()
        })
        .unwrap();
}

/// Deletes `deleted` and waits until `healed`, which it stood in the way of, is Ready again.
pub async fn delete_heals(env: &Env, deleted: &str, healed: &str) {
    env.cluster
        .kubectl_ok(&["delete", "-n", "psa", deleted])
        .await;
    env.wait_condition(healed, "Ready", "True").await;
}

/// Each PSA's sandbox in process with its demo data (the same organisations on every PSA) and
/// no faults, and the demo credentials its clients use: one place for the provider set-up the
/// provider suites, the dispatcher's and the contract tests share.
pub mod demo {
    use psa_operator::psa::autotask::AutotaskConfig;
    use psa_operator::psa::bms::BmsConfig;
    use psa_operator::psa::connectwise::ConnectWiseConfig;
    use psa_operator::psa::{Company, Contract, Psa};
    use psa_operator::sandbox::{self, Faults, RunningSandbox};
    use psa_operator::secret::SecretString;

    /// A company of the demo data by its name (the same on every PSA).
    pub async fn company_named(psa: &dyn Psa, name: &str) -> Company {
        psa.find_company_by_name(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} in the demo data"))
    }

    /// Contoso's recurring contract in the demo data.
    pub async fn managed_security(psa: &dyn Psa, contoso: &Company) -> Contract {
        psa.find_contract(&contoso.id, "Managed Security")
            .await
            .unwrap()
            .expect("Managed Security in the demo data")
    }

    /// A loopback listener on a free port, for an in-process sandbox.
    pub async fn loopback() -> tokio::net::TcpListener {
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    pub async fn connectwise_sandbox() -> RunningSandbox {
        let seed = sandbox::connectwise::demo_seed();
        sandbox::connectwise::start(loopback().await, seed, Faults::default())
            .await
            .unwrap()
    }

    pub async fn bms_sandbox() -> RunningSandbox {
        let seed = sandbox::bms::demo_seed();
        sandbox::bms::start(loopback().await, seed, Faults::default())
            .await
            .unwrap()
    }

    pub async fn autotask_sandbox() -> RunningSandbox {
        let seed = sandbox::autotask::demo_seed();
        sandbox::autotask::start(loopback().await, seed, Faults::default())
            .await
            .unwrap()
    }

    /// The ConnectWise client's configuration for the sandbox at `url`, demo credentials.
    pub fn connectwise_config(url: &str) -> ConnectWiseConfig {
        use sandbox::connectwise::{
            DEMO_CLIENT_ID, DEMO_COMPANY_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
        };
        ConnectWiseConfig::new(
            url,
            DEMO_COMPANY_ID,
            DEMO_CLIENT_ID,
            SecretString::new(DEMO_PUBLIC_KEY),
            SecretString::new(DEMO_PRIVATE_KEY),
        )
    }

    /// The Kaseya BMS client's configuration for the sandbox `sb`: the demo tenant and user.
    pub fn bms_config(sb: &RunningSandbox) -> BmsConfig {
        BmsConfig::new(sb.base_url(), "demo", "demo-api", "demo-password")
    }

    /// The Autotask client's configuration for the sandbox `sb`: its REST zone and the demo
    /// API user.
    pub fn autotask_config(sb: &RunningSandbox) -> AutotaskConfig {
        use sandbox::autotask::{DEMO_INTEGRATION_CODE, DEMO_SECRET, DEMO_USERNAME};
        AutotaskConfig::new(
            Some(format!("{}/atservicesrest/", sb.base_url())),
            DEMO_USERNAME,
            DEMO_SECRET,
            DEMO_INTEGRATION_CODE,
        )
    }
}
