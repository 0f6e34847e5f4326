//! Per-customer ticket overrides and routes end to end: the samples, then routes patched onto the
//! connection and overrides onto a CustomerMapping with kubectl, alerts posted to the intake, and
//! each ticket read back from the PSA sandbox — on the right company, board and priority. An
//! unknown name is a condition naming the field.

use serde_json::{json, Value};

use crate::controllers::{apply_text, patch, Env};
use crate::fixtures::patch_until;

async fn post_alert(env: &Env, connection: &str, token: &str, alert: Value) {
    let r = crate::fixtures::post_alert(env, connection, token, &alert).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
}

/// An alert of its own user (so each becomes its own ticket under `User` grouping), titled with
/// its id.
fn alert(id: &str, org: &str, alert_type: &str, severity: &str) -> Value {
    let mut a = crate::fixtures::intake_alert(id, org, &format!("{id}@users.example"), alert_type);
    a["severity"] = json!(severity);
    a["title"] = json!(format!("{alert_type} ({id})"));
    a
}

fn tickets(state: &Value) -> Vec<Value> {
    state["tickets"].as_array().cloned().unwrap_or_default()
}

/// The ticket of alert `id`: its summary names the alert's user (default template) or title.
async fn ticket_of(env: &Env, sb: &psa_operator::sandbox::RunningSandbox, id: &str) -> Value {
    let (user, title) = (format!("{id}@users.example"), format!("({id})"));
    env.eventually(&format!("the ticket of alert {id}"), || async {
        let st = Env::sandbox_state(sb).await;
        tickets(&st).into_iter().find(|t| {
            let text = t.to_string();
            text.contains(&user) || text.contains(&title)
        })
    })
    .await
}

/// Waits until the mapping is Ready again after a change of its own or of its connection.
async fn settled(env: &Env, what: &str) {
    env.eventually(&format!("{what} Ready at its generation"), || async {
        let generation = env.jsonpath(what, "{.metadata.generation}").await;
        let observed = env
            .jsonpath(
                what,
                "{.status.conditions[?(@.type==\"Ready\")].observedGeneration}",
            )
            .await;
        let ready = env
            .jsonpath(what, "{.status.conditions[?(@.type==\"Ready\")].status}")
            .await;
        (generation == observed && ready == "True").then_some(())
    })
    .await;
}

/// ConnectWise: routes by severity and by alert type on the connection, a mapping's board and
/// priority override, a mapping's route beating the connection's, unknown names as conditions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise_routes_and_per_customer_overrides() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    let token = "demo-cw-intake-token";
    // Critical alerts go to the Escalations board (its own statuses: the sandbox refuses a
    // status of another board), password sprays are low priority.
    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"routes":[
            {"match":{"severity":["critical"]},"board":"Escalations","priority":"Priority 1 - Critical"},
            {"match":{"alertType":["Password Spray"]},"priority":"Priority 4 - Low"}]}}"#,
    )
    .await;
    // Contoso: its own board and priority, and critical alerts at High (its route beats the
    // connection's critical route).
    patch(
        &env,
        "customermapping/contoso",
        "merge",
        r#"{"spec":{"ticket":{"board":"Escalations","priority":"Priority 3 - Medium",
            "summaryTemplate":"[Contoso] {{ title }}"},
            "routes":[{"match":{"severity":["critical"]},"priority":"Priority 2 - High"}]}}"#,
    )
    .await;
    settled(&env, "psaconnection/demo-cw").await;
    settled(&env, "customermapping/contoso").await;
    settled(&env, "customermapping/fabrikam").await;

    let sends = [
        ("r1", "Fabrikam Inc", "Too Many Downloads", "critical"),
        ("r2", "Fabrikam Inc", "Password Spray", "high"),
        ("r3", "Fabrikam Inc", "Too Many Downloads", "high"),
        ("r4", "Contoso Ltd", "Too Many Downloads", "high"),
        ("r5", "Contoso Ltd", "Too Many Downloads", "critical"),
        ("r6", "Contoso Ltd", "Password Spray", "low"),
    ];
    for (id, org, alert_type, severity) in sends {
        post_alert(&env, "demo-cw", token, alert(id, org, alert_type, severity)).await;
    }
    // (alert, company, board, priority)
    let want = [
        ("r1", "FABRIKAM", "Escalations", "Priority 1 - Critical"),
        ("r2", "FABRIKAM", "Security Alerts", "Priority 4 - Low"),
        ("r3", "FABRIKAM", "Security Alerts", "Priority 2 - High"),
        ("r4", "CONTOSO", "Escalations", "Priority 3 - Medium"),
        ("r5", "CONTOSO", "Escalations", "Priority 2 - High"),
        // The connection's alert-type route on Contoso's base: its board, the route's priority.
        ("r6", "CONTOSO", "Escalations", "Priority 4 - Low"),
    ];
    for (id, company, board, priority) in want {
        let t = ticket_of(&env, &env.cw, id).await;
        assert_eq!(t["company"]["identifier"], company, "{id}: {t}");
        assert_eq!(t["board"]["name"], board, "{id}: {t}");
        assert_eq!(t["priority"]["name"], priority, "{id}: {t}");
        assert_eq!(t["status"]["name"], "New", "{id}: {t}");
        let summary = t["summary"].as_str().unwrap_or_default();
        assert_eq!(
            summary.starts_with("[Contoso] "),
            company == "CONTOSO",
            "{id}: the mapping's summary template: {summary:?}"
        );
    }

    // An unknown name in a mapping's route: the mapping's condition names the field.
    let (_, reason, message) = patch_until(
        &env,
        "customermapping/contoso",
        "json",
        r#"[{"op":"add","path":"/spec/routes/-","value":{"match":{"alertType":["X"]},"priority":"Priority 9"}}]"#,
        "Ready",
        "False",
    )
    .await;
    assert_eq!(reason, "NamesNotFound", "{message}");
    assert!(
        message.contains(r#"routes[1].priority "Priority 9""#),
        "{message}"
    );
    // And in the connection's routes: SettingsResolved names it.
    let (_, reason, message) = patch_until(
        &env,
        "psaconnection/demo-cw",
        "json",
        r#"[{"op":"replace","path":"/spec/routes/1/priority","value":"Priority Low"}]"#,
        "SettingsResolved",
        "False",
    )
    .await;
    assert_eq!(reason, "NamesNotFound", "{message}");
    assert!(
        message.contains(r#"routes[1].priority "Priority Low": not found"#),
        "{message}"
    );
}

/// Kaseya BMS: a mapping's queue and priority override, the connection's routes by severity and
/// by alert type, a mapping's route beating the connection's, and an unknown queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kaseya_bms_routes_and_per_customer_overrides() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-bms", "Ready", "True")
        .await;
    let token = "demo-bms-intake-token";
    patch(
        &env,
        "psaconnection/demo-bms",
        "merge",
        r#"{"spec":{"routes":[
            {"match":{"severity":["critical"]},"board":"Escalations","priority":"Critical"},
            {"match":{"alertType":["Password Spray"]},"priority":"Low"}]}}"#,
    )
    .await;
    apply_text(
        &env.cluster,
        r#"apiVersion: psa-operator.io/v1alpha1
kind: CustomerMapping
metadata: {name: contoso-bms, namespace: psa}
spec:
  connectionRef: {name: demo-bms}
  organization: Contoso Ltd
  company: {name: Contoso Ltd}
  ticket: {board: Escalations, priority: Medium}
  routes:
    - match: {severity: [critical]}
      priority: High
"#,
    )
    .await;
    settled(&env, "psaconnection/demo-bms").await;
    settled(&env, "customermapping/contoso-bms").await;

    let sends = [
        ("b1", "Fabrikam Inc", "Too Many Downloads", "critical"),
        ("b2", "Fabrikam Inc", "Password Spray", "high"),
        ("b3", "Contoso Ltd", "Too Many Downloads", "high"),
        ("b4", "Contoso Ltd", "Too Many Downloads", "critical"),
    ];
    for (id, org, alert_type, severity) in sends {
        post_alert(
            &env,
            "demo-bms",
            token,
            alert(id, org, alert_type, severity),
        )
        .await;
    }
    // (alert, account, queue, priority)
    let want = [
        // Fabrikam is matched by name (no mapping): the connection's routes.
        ("b1", "Fabrikam Inc", "Escalations", "Critical"),
        ("b2", "Fabrikam Inc", "Security Alerts", "Low"),
        ("b3", "Contoso Ltd", "Escalations", "Medium"),
        ("b4", "Contoso Ltd", "Escalations", "High"),
    ];
    for (id, account, queue, priority) in want {
        let t = ticket_of(&env, &env.bms, id).await;
        assert_eq!(t["accountName"], account, "{id}: {t}");
        assert_eq!(t["queueName"], queue, "{id}: {t}");
        assert_eq!(t["priorityName"], priority, "{id}: {t}");
    }

    // An unknown queue on the mapping: held, the condition names the field.
    let (_, reason, message) = patch_until(
        &env,
        "customermapping/contoso-bms",
        "merge",
        r#"{"spec":{"ticket":{"board":"Escalation"}}}"#,
        "Ready",
        "False",
    )
    .await;
    assert_eq!(reason, "NamesNotFound", "{message}");
    assert!(
        message.contains(r#"ticket.board "Escalation": not found (did you mean "Escalations"?)"#),
        "{message}"
    );
}
