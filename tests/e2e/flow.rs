//! The whole product: samples applied with kubectl, the operator as a process, alerts posted to
//! its intake over HTTP, tickets and notes read back from the PSA sandbox. Covers the first seed's
//! `User` grouping example with a technician closing the ticket through the PSA's REST API.

use serde_json::{json, Value};

use crate::controllers::Env;

async fn post_alert(env: &Env, connection: &str, token: &str, alert: Value) -> reqwest::Response {
    crate::fixtures::post_alert(env, connection, token, &alert).await
}

/// A Contoso alert linking to the monitor's page for it.
fn alert(id: &str, user: &str, alert_type: &str) -> Value {
    let mut a = crate::fixtures::intake_alert(id, "Contoso Ltd", user, alert_type);
    a["url"] = json!("https://saas-monitor.example/alerts/1");
    a
}

fn tickets(state: &Value) -> Vec<Value> {
    state["tickets"].as_array().cloned().unwrap_or_default()
}

/// Notes of a ticket. ConnectWise keeps the initial description as the first note, so a ticket
/// with one follow-up alert has two.
fn notes_of(state: &Value, ticket_id: i64) -> usize {
    state["notes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter(|n| n["ticketId"].as_i64() == Some(ticket_id))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise_user_grouping_example() {
    let env = Env::start().await;
    crate::fixtures::wait_ready(&env, &["psaconnection/demo-cw", "customermapping/contoso"]).await;
    let token = "demo-cw-intake-token";
    // Jane's alert of `alert_type` to the ConnectWise connection with `token`; the intake's answer.
    let post_jane = |token: &'static str, id: &'static str, alert_type: &'static str| {
        post_alert(
            &env,
            "demo-cw",
            token,
            alert(id, "jane@contoso.example", alert_type),
        )
    };

    // Wrong token → 401 problem document; nothing stored.
    let r = post_jane("not-the-token", "a0", "X").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));

    // 1. First alert of the user → a ticket for Contoso, contact Jane (found by e-mail).
    let r = post_jane(token, "a1", "Too Many Downloads").await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let first = env
        .eventually("first ticket", || async {
            let st = Env::sandbox_state(&env.cw).await;
            tickets(&st).into_iter().next()
        })
        .await;
    assert_eq!(first["company"]["identifier"], "CONTOSO", "{first}");
    assert_eq!(
        first["contact"]["name"]
            .as_str()
            .map(|n| n.contains("Jane")),
        Some(true),
        "{first}"
    );
    assert_eq!(first["board"]["name"], "Security Alerts");
    assert_eq!(first["priority"]["name"], "Priority 2 - High");
    assert_eq!(first["agreement"]["name"], "Managed Security", "{first}");
    let first_id = first["id"].as_i64().unwrap();

    // 2. Another alert type, same user, ticket open → a note on the first ticket.
    let r = post_jane(token, "a2", "Too Many Uploads").await;
    assert_eq!(r.status(), 202);
    // A repeated id is accepted and ignored.
    let r = post_jane(token, "a2", "Too Many Uploads").await;
    assert_eq!(r.status(), 202);
    env.eventually("note on first ticket", || async {
        let st = Env::sandbox_state(&env.cw).await;
        (notes_of(&st, first_id) >= 2).then_some(())
    })
    .await;

    // 3. A technician closes the ticket through the PSA's REST API.
    let closed = Env::sandbox_state(&env.cw).await["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == ">Closed")
        .cloned()
        .unwrap();
    let r = env
        .cw_api(
            reqwest::Method::PATCH,
            &format!("/service/tickets/{first_id}"),
            json!([{"op": "replace", "path": "status", "value": {"id": closed["id"]}}]),
        )
        .await;
    assert!(
        r.status().is_success(),
        "technician close: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );

    // 4. The next alert for the user opens a new ticket.
    let r = post_jane(token, "a3", "Multiple MFA Failures").await;
    assert_eq!(r.status(), 202);
    let st = env
        .eventually("second ticket", || async {
            let st = Env::sandbox_state(&env.cw).await;
            (tickets(&st).len() == 2).then_some(st)
        })
        .await;
    assert_eq!(
        notes_of(&st, first_id),
        2,
        "the duplicate id did not add a second note"
    );

    // The connection's status counts what happened.
    env.wait_jsonpath(
        "psaconnection/demo-cw",
        "{.status.dispatch.ticketsCreated}",
        "2",
    )
    .await;
}

/// Kaseya BMS with `accountMapping: ByCompanyName` (the sample): an organization without a
/// CustomerMapping is matched to the account of the same name when its alert arrives, its ticket
/// gets the account's point of contact (`IsPoc`; the contact chain ends at the company's primary
/// contact), and the connection's status counts it; an unknown organization falls to the
/// catch-all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kaseya_bms_auto_mapping_and_catch_all() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-bms", "Ready", "True")
        .await;
    let token = "demo-bms-intake-token";
    let mut a = alert("b1", "someone@fabrikam.example", "Too Many Downloads");
    a["organization"] = json!("Fabrikam Inc");
    assert_eq!(post_alert(&env, "demo-bms", token, a).await.status(), 202);
    let mut b = alert("b2", "nobody@unknown.example", "Multiple MFA Failures");
    b["organization"] = json!("Unknown Org");
    assert_eq!(post_alert(&env, "demo-bms", token, b).await.status(), 202);
    let st = env
        .eventually("two BMS tickets", || async {
            let st = Env::sandbox_state(&env.bms).await;
            (tickets(&st).len() == 2).then_some(st)
        })
        .await;
    let t = tickets(&st);
    let fab = t
        .iter()
        .find(|t| t["accountName"] == "Fabrikam Inc")
        .expect("Fabrikam ticket");
    // No contact of the user's and no CustomerMapping default: the account's point of contact
    // (never the catch-all contact, which belongs to another company).
    assert_eq!(fab["contactName"], "Alert Contact", "{fab}");
    assert!(
        t.iter().any(|t| t["accountName"] == "Default Customer"),
        "unknown org → catch-all: {t:?}"
    );
    env.wait_jsonpath(
        "psaconnection/demo-bms",
        "{.status.autoMapping.matched}",
        "1",
    )
    .await;
    let unmatched = env
        .jsonpath(
            "psaconnection/demo-bms",
            "{.status.autoMapping.unmatchedOrganizations}",
        )
        .await;
    assert!(unmatched.contains("Unknown Org"), "{unmatched}");
}

/// Autotask from the samples: the connection (zone URL, API user headers) becomes Ready, an
/// alert of a mapped-by-name organization becomes a ticket on that company with the sample's
/// queue, status, priority map and issue / sub-issue override, and a follow-up becomes a note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotask_sample_connection_ticket_and_note() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-autotask", "Ready", "True")
        .await;
    assert_eq!(
        env.jsonpath("psaconnection/demo-autotask", "{.status.provider}")
            .await,
        "Autotask"
    );
    let token = "demo-autotask-intake-token";
    let a = alert("at1", "jane@contoso.example", "Too Many Downloads");
    assert_eq!(
        post_alert(&env, "demo-autotask", token, a).await.status(),
        202
    );
    let b = alert("at2", "jane@contoso.example", "Too Many Uploads");
    assert_eq!(
        post_alert(&env, "demo-autotask", token, b).await.status(),
        202
    );
    let st = env
        .eventually("an Autotask ticket with a note", || async {
            let st = Env::sandbox_state(&env.autotask).await;
            let t = tickets(&st);
            (t.len() == 1 && t[0]["notes"].as_array().is_some_and(|n| n.len() == 1)).then_some(st)
        })
        .await;
    let t = &tickets(&st)[0];
    let pick = |list: &str, label: &str| {
        st["picklists"][list]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["label"] == label)
            .unwrap_or_else(|| panic!("{label} in {list}"))["value"]
            .clone()
    };
    let contoso = st["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["companyName"] == "Contoso Ltd")
        .unwrap()["id"]
        .clone();
    assert_eq!(t["companyID"], contoso, "{t}");
    assert_eq!(t["queueID"], pick("Tickets.queueID", "Security Alerts"));
    assert_eq!(t["status"], pick("Tickets.status", "New"));
    assert_eq!(
        t["priority"],
        pick("Tickets.priority", "High"),
        "severity high → High"
    );
    assert_eq!(
        t["subIssueType"],
        pick("Tickets.subIssueType", "Data Leakage")
    );
    assert!(t["notes"][0]["description"]
        .as_str()
        .unwrap()
        .contains("Too Many Uploads"));
}

/// Issue [S] 22 item 4: once the controllers have listed the contacts of the mapped companies and
/// of the catch-all company, the dispatcher answers an alert user's contact look-up from that
/// directory: a hit, a miss in a complete list and a catch-all alert make no contact call to the
/// PSA, and each ticket still carries the right contact on the right company.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise_contact_lookups_come_from_the_directory() {
    let env = Env::start().await;
    crate::fixtures::wait_ready(&env, &["psaconnection/demo-cw", "customermapping/contoso"]).await;
    let token = "demo-cw-intake-token";
    env.cw.admin().clear_calls();
    let mut other = alert("d3", "someone@fabrikam.example", "Too Many Downloads");
    other["organization"] = json!("Fabrikam Unmapped");
    for body in [
        alert("d1", "jane@contoso.example", "Too Many Downloads"),
        alert("d2", "nobody@contoso.example", "Too Many Downloads"),
        other,
    ] {
        let r = post_alert(&env, "demo-cw", token, body).await;
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
    }
    let all = env
        .eventually("three tickets", || async {
            let t = tickets(&Env::sandbox_state(&env.cw).await);
            (t.len() == 3).then_some(t)
        })
        .await;
    let of_user = |user: &str| {
        all.iter()
            .find(|t| t["summary"].as_str().is_some_and(|s| s.contains(user)))
            .unwrap_or_else(|| panic!("a ticket of {user}: {all:?}"))
            .clone()
    };
    // (user, company identifier, contact name)
    for (user, company, contact) in [
        ("jane@contoso.example", "CONTOSO", "Jane"),
        ("nobody@contoso.example", "CONTOSO", "Alert Contact"),
        ("someone@fabrikam.example", "", "Default Contact"),
    ] {
        let t = of_user(user);
        if !company.is_empty() {
            assert_eq!(t["company"]["identifier"], company, "{t}");
        } else {
            assert_eq!(t["company"]["name"], "Default Customer", "{t}");
        }
        assert!(
            t["contact"]["name"]
                .as_str()
                .is_some_and(|n| n.contains(contact)),
            "{user}: contact {contact} expected: {t}"
        );
    }
    let calls = env.cw.admin().calls();
    let contact_calls: Vec<_> = calls
        .calls
        .iter()
        .filter(|c| c.route.ends_with("/company/contacts"))
        .collect();
    assert!(
        contact_calls.is_empty(),
        "contact look-ups went to the PSA: {contact_calls:?}"
    );
    assert_eq!(
        calls.count("POST", "/v4_6_release/apis/3.0/service/tickets"),
        3,
        "{:?}",
        calls.calls
    );
}
