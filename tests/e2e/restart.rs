//! Routing that survives a restart: the operator as a process, SIGKILLed and started again on the
//! same store, with alerts posted while it warms up and after. Every alert of a mapped
//! organization must land on the mapped company in the PSA — never on the catch-all — and the
//! status must say only what the running process does.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::controllers::{apply_text, patch, Env};
use crate::dispatch::smtp;
use crate::fixtures::patch_until;

const CW_TOKEN: &str = "demo-cw-intake-token";
const BMS_TOKEN: &str = "demo-bms-intake-token";

fn alert(id: &str, organization: &str, user: &str) -> Value {
    let mut a = crate::fixtures::intake_alert(id, organization, user, "Too Many Downloads");
    a["description"] = json!("restart test");
    a
}

/// Posts until the intake takes it: right after a start the connection may not be known yet
/// (404) or the process may not listen yet.
async fn post_accepted(env: &Env, connection: &str, token: &str, body: Value) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = crate::fixtures::alerts_url(env, connection);
        match http.post(&url).bearer_auth(token).json(&body).send().await {
            Ok(r) if r.status() == 202 => return,
            Ok(r) if r.status() == 404 || r.status() == 503 => {}
            Ok(r) => panic!("intake refused {body}: {} {:?}", r.status(), r.text().await),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "intake never accepted {body}\n{}",
            env.dump_on_failure().await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Which PSA a test runs against and how its tickets name their company.
#[derive(Clone, Copy)]
enum Provider {
    ConnectWise,
    KaseyaBms,
}

impl Provider {
    fn connection(self) -> &'static str {
        match self {
            Provider::ConnectWise => "demo-cw",
            Provider::KaseyaBms => "demo-bms",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Provider::ConnectWise => CW_TOKEN,
            Provider::KaseyaBms => BMS_TOKEN,
        }
    }

    fn company_of(self, ticket: &Value) -> String {
        let name = match self {
            Provider::ConnectWise => &ticket["company"]["name"],
            Provider::KaseyaBms => &ticket["accountName"],
        };
        name.as_str().unwrap_or_default().to_string()
    }

    async fn tickets(self, env: &Env) -> Vec<Value> {
        let sb = match self {
            Provider::ConnectWise => &env.cw,
            Provider::KaseyaBms => &env.bms,
        };
        Env::sandbox_state(sb).await["tickets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The ticket whose summary names `user` (each user of these tests gets a ticket of its own).
fn ticket_of<'a>(tickets: &'a [Value], user: &str) -> Option<&'a Value> {
    tickets.iter().find(|t| {
        ["summary", "title"]
            .iter()
            .any(|f| t[*f].as_str().is_some_and(|s| s.contains(user)))
    })
}

/// Waits for the tickets of `users` and checks each is on `company`.
/// One alert per user of `users` (ids `<prefix>-<n>`), each accepted by the intake.
async fn post_each(
    env: &Env,
    provider: Provider,
    organization: &str,
    prefix: &str,
    users: &[String],
) {
    for (i, u) in users.iter().enumerate() {
        let id = format!("{prefix}-{i}");
        post_accepted(
            env,
            provider.connection(),
            provider.token(),
            alert(&id, organization, u),
        )
        .await;
    }
}

async fn assert_on_company(env: &Env, provider: Provider, users: &[String], company: &str) {
    let tickets = env
        .eventually("a ticket per user", || async {
            let t = provider.tickets(env).await;
            users
                .iter()
                .all(|u| ticket_of(&t, u).is_some())
                .then_some(t)
        })
        .await;
    for user in users {
        let t = ticket_of(&tickets, user).expect("ticket");
        assert_eq!(
            provider.company_of(t),
            company,
            "{user}'s alert is on the wrong company: {t}\n{}",
            env.dump_on_failure().await
        );
    }
}

/// Alert → mapped company; SIGKILL; restart on the same store; alerts posted at once (while the
/// operator warms up) and 30 s later all reach the mapped company.
async fn routing_survives_a_restart(provider: Provider, organization: &str, company: &str) {
    let mut env = Env::start().await;
    let conn = format!("psaconnection/{}", provider.connection());
    env.wait_condition(&conn, "Ready", "True").await;
    if let Provider::KaseyaBms = provider {
        // An organization that is not a BMS account name: without its mapping, automatic
        // mapping misses and the catch-all would take it.
        let mapping = format!(
            "apiVersion: psa-operator.io/v1alpha1\nkind: CustomerMapping\nmetadata: {{name: northwind, namespace: psa}}\n\
             spec:\n  connectionRef: {{name: demo-bms}}\n  organization: {organization}\n  company: {{name: {company}}}\n"
        );
        apply_text(&env.cluster, &mapping).await;
    }
    let mapping = match provider {
        Provider::ConnectWise => "customermapping/contoso",
        Provider::KaseyaBms => "customermapping/northwind",
    };
    env.wait_condition(mapping, "Ready", "True").await;
    patch(
        &env,
        &conn,
        "merge",
        r#"{"spec":{"dispatch":{"requestsPerHour":1000000}}}"#,
    )
    .await;
    let user = |i: usize| format!("restart{i}@{}.example", provider.connection());
    post_accepted(
        &env,
        provider.connection(),
        provider.token(),
        alert("r-0", organization, &user(0)),
    )
    .await;
    assert_on_company(&env, provider, &[user(0)], company).await;

    env.operator.kill();
    env.restart_operator();
    let restarted = Instant::now();
    let early: Vec<String> = (1..=5).map(user).collect();
    post_each(&env, provider, organization, "r-early", &early).await;
    eprintln!(
        "early alerts accepted {:?} after the restart",
        restarted.elapsed()
    );
    assert_on_company(&env, provider, &early, company).await;
    env.wait_condition(mapping, "Ready", "True").await;

    tokio::time::sleep(Duration::from_secs(30).saturating_sub(restarted.elapsed())).await;
    let late: Vec<String> = (6..=8).map(user).collect();
    post_each(&env, provider, organization, "r-late", &late).await;
    assert_on_company(&env, provider, &late, company).await;
    let tickets = provider.tickets(&env).await;
    assert!(
        tickets
            .iter()
            .all(|t| provider.company_of(t) != "Default Customer"),
        "nothing of a mapped organization reaches the catch-all: {tickets:#?}"
    );
    let log = env.operator.log_text();
    assert!(!log.contains("route=\"catchAll\"") && !log.contains("route=catchAll"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise_routing_survives_a_restart() {
    routing_survives_a_restart(Provider::ConnectWise, "Contoso Ltd", "Contoso Ltd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kaseya_bms_routing_survives_a_restart() {
    routing_survives_a_restart(Provider::KaseyaBms, "Northwind Traders", "Contoso Ltd").await;
}

/// The mapped company is deleted in the PSA while alerts flow: the mapping goes Ready=False, its
/// organization's alerts are held, then dead-lettered to the failsafe e-mail — none reaches the
/// catch-all company.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_company_holds_then_mails_never_catch_all() {
    assert!(
        smtp::available(),
        "aiosmtpd is needed (pip install aiosmtpd; .ci/install-tools does it)"
    );
    let smtp_dir = tempfile::tempdir().unwrap();
    let smtp_port = smtp::free_port();
    let server = smtp::SmtpServer::start(smtp_port, smtp_dir.path()).await;
    let env = Env::start_with_env(&[("PSA_UNRESOLVED_HOLD", "4s")]).await;
    patch(
        &env,
        "secret/smtp",
        "merge",
        &json!({"stringData": {"host": "127.0.0.1", "port": smtp_port.to_string(), "tls": "none"}})
            .to_string(),
    )
    .await;
    env.wait_condition("customermapping/contoso", "Ready", "True")
        .await;
    post_accepted(
        &env,
        "demo-cw",
        CW_TOKEN,
        alert("d-0", "Contoso Ltd", "before@contoso.example"),
    )
    .await;
    assert_on_company(
        &env,
        Provider::ConnectWise,
        &["before@contoso.example".into()],
        "Contoso Ltd",
    )
    .await;

    // A technician deletes the company in ConnectWise; the next re-check notices.
    let company_id = env
        .jsonpath("customermapping/contoso", "{.status.companyId}")
        .await;
    let r = env
        .cw_api(
            reqwest::Method::PATCH,
            &format!("/company/companies/{company_id}"),
            json!([{"op": "replace", "path": "deletedFlag", "value": true}]),
        )
        .await;
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let (_, reason, _) = patch_until(
        &env,
        "customermapping/contoso",
        "merge",
        r#"{"metadata":{"annotations":{"psa-operator.io/reconcile-requested-at":"company-deleted"}}}"#,
        "Ready",
        "False",
    )
    .await;
    assert_eq!(reason, "CompanyNotFound");

    post_accepted(
        &env,
        "demo-cw",
        CW_TOKEN,
        alert("d-1", "Contoso Ltd", "after@contoso.example"),
    )
    .await;
    let mail = env
        .eventually("the failsafe e-mail", || async {
            server
                .messages()
                .into_iter()
                .find(|m| m.contains("d-1") || m.contains("after@contoso.example"))
        })
        .await;
    assert!(
        smtp::subject(&mail).ends_with("integration failsafe used"),
        "{mail}"
    );
    assert!(
        smtp::body(&mail).contains("not sent to the catch-all"),
        "{mail}"
    );
    let tickets = Provider::ConnectWise.tickets(&env).await;
    assert!(
        ticket_of(&tickets, "after@contoso.example").is_none(),
        "the held alert made no ticket anywhere: {tickets:#?}"
    );
    env.wait_jsonpath(
        "psaconnection/demo-cw",
        "{.status.dispatch.deadLetters}",
        "1",
    )
    .await;
}

/// Dispatch counters reach the connection's status within 20 s, not at the next re-validation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_counters_reach_status_within_20s() {
    let env = Env::start().await;
    env.wait_condition("customermapping/contoso", "Ready", "True")
        .await;
    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"dispatch":{"requestsPerHour":1000000}}}"#,
    )
    .await;
    let n = 6;
    for i in 0..n {
        let user = format!("count{}@contoso.example", i % 3);
        post_accepted(
            &env,
            "demo-cw",
            CW_TOKEN,
            alert(&format!("c-{i}"), "Contoso Ltd", &user),
        )
        .await;
    }
    let posted = Instant::now();
    let deadline = posted + Duration::from_secs(20);
    loop {
        let dispatch = env
            .jsonpath("psaconnection/demo-cw", "{.status.dispatch}")
            .await;
        let v: Value = serde_json::from_str(&dispatch).unwrap_or(Value::Null);
        if v["accepted"] == n && v["ticketsCreated"] == 3 && v["notesAdded"] == 3 {
            eprintln!(
                "counters in status {:?} after the last post",
                posted.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status.dispatch after 20 s: {dispatch}\n{}",
            env.dump_on_failure().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
