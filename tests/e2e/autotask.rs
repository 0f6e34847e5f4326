//! Autotask-specific behaviour on the sandbox (the cross-provider cases are in `providers.rs`,
//! the dispatcher's in `dispatch/autotask.rs`, the document checks in `autotask_contract.rs`):
//! user counts as adjustments of one contract service, the database's shared threshold, three
//! requests per endpoint, credentials and zone discovery, the binary's `--flavor autotask`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fixtures::demo::{company_named, managed_security};
use crate::sandbox_admin::{set_database, state};
use psa_operator::psa::autotask::{AutotaskClient, AutotaskConfig};
use psa_operator::psa::{Billing, Directory, TicketDesk};
use psa_operator::psa::{CatalogServiceSpec, ContactEmail, LineKey, LineValues, Psa};
use psa_operator::sandbox::autotask::{
    demo_seed, start, DEMO_INTEGRATION_CODE, DEMO_SECRET, DEMO_USERNAME,
};
use psa_operator::sandbox::{Faults, RunningSandbox};
use serde_json::{json, Value};

async fn sandbox() -> RunningSandbox {
    crate::fixtures::demo::autotask_sandbox().await
}

/// `path` under the sandbox's REST zone (`Companies/7`).
fn rest_url(sb: &RunningSandbox, path: &str) -> String {
    format!("{}/atservicesrest/V1.0/{path}", sb.base_url())
}

/// A raw request as the demo API user sends it (the three Autotask headers).
fn as_api_user(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("ApiIntegrationCode", DEMO_INTEGRATION_CODE)
        .header("UserName", DEMO_USERNAME)
        .header("Secret", DEMO_SECRET)
}

fn client(sb: &RunningSandbox) -> AutotaskClient {
    AutotaskClient::new(crate::fixtures::demo::autotask_config(sb)).unwrap()
}

/// The billing case: 5 users, then 7, is one contract service with two adjustments
/// (+5 when attached, +2 from today); the units in force read back as 7; nothing changes when
/// asked again for 7.
#[tokio::test]
async fn user_count_5_to_7_is_one_adjustment_of_plus_2_on_one_contract_service() {
    let sb = sandbox().await;
    let c = client(&sb);
    let contoso = company_named(&c, "Contoso Ltd").await;
    let contract = managed_security(&c, &contoso).await;
    let svc = c
        .create_catalog_service(&CatalogServiceSpec {
            name: "SaaS Alerts Monitoring".into(),
            description: "per monitored user".into(),
            cost: 15_000,
            price: 40_000,
        })
        .await
        .unwrap();
    let v = LineValues {
        quantity: 5,
        cost: 15_000,
        price: 40_000,
    };
    let key = LineKey::new(&contract.id, &svc.id);
    let line = c.add_contract_line(key, v).await.unwrap();
    let seven = LineValues { quantity: 7, ..v };
    let current = c.find_contract_line(key).await.unwrap().unwrap();
    assert_eq!(current.quantity, 5);
    c.update_contract_line(&current, seven).await.unwrap();
    let after = c.find_contract_line(key).await.unwrap().unwrap();
    assert_eq!((after.id.as_str(), after.quantity), (line.id.as_str(), 7));
    sb.admin().clear_calls();
    c.update_contract_line(&after, seven).await.unwrap();
    let calls = sb.admin().calls();
    assert_eq!(
        calls.count("POST", "/atservicesrest/V1.0/ContractServiceAdjustments"),
        0,
        "no adjustment when the count is unchanged: {calls:?}"
    );

    let st = state(&sb).await;
    let lines = st["contractServices"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "exactly one contract service: {lines:?}");
    let changes: Vec<i64> = lines[0]["adjustments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["unitChange"].as_i64().unwrap())
        .collect();
    assert_eq!(changes, [5, 2]);
    assert_eq!(lines[0]["units"][0]["units"], 7);
}

/// Three requests per endpoint: the sandbox refuses a fourth concurrent one (429), and the
/// client, asked for nine at once, never sends more than three and gets all nine answers.
#[tokio::test]
async fn three_concurrent_requests_per_endpoint() {
    let sb = sandbox().await;
    set_database(&sb, json!({"processingMs": 300})).await;
    let http = reqwest::Client::new();
    let url = rest_url(&sb, "Companies/7");
    let raw: Vec<_> = (0..5).map(|_| as_api_user(http.get(&url)).send()).collect();
    let statuses: Vec<u16> = futures::future::join_all(raw)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );

    let c = Arc::new(client(&sb));
    c.verify().await.unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..9)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.find_company_by_name("Fabrikam Inc").await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().unwrap().is_some());
    }
    // Nine calls of 300 ms, three at a time: three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
}

/// At 100 % of the database's hourly threshold the sandbox refuses with 429 and says why;
/// `ThresholdInformation` still answers; a client reads it and holds its calls with a reason.
#[tokio::test]
async fn the_database_threshold_is_shared_and_refused_at_100_percent() {
    let sb = sandbox().await;
    let c = client(&sb);
    c.verify().await.unwrap();
    assert_eq!(c.database_share(), Some(0.0));
    set_database(&sb, json!({"requestsThisHour": 10_000})).await;
    let r = as_api_user(reqwest::Client::new().get(rest_url(&sb, "Companies/1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("request threshold"),
        "{body}"
    );

    let fresh = client(&sb);
    let e = fresh.find_company_by_name("Contoso Ltd").await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("100 %"), "{e}");
    assert_eq!(fresh.database_share(), Some(1.0));
}

/// Wrong credentials are an authentication error; an API user Autotask does not know has no
/// zone; a known one is discovered and used.
#[tokio::test]
async fn credentials_and_zone_discovery() {
    let sb = sandbox().await;
    let wrong = AutotaskClient::new(AutotaskConfig::new(
        Some(format!("{}/atservicesrest/", sb.base_url())),
        DEMO_USERNAME,
        "not-the-secret",
        DEMO_INTEGRATION_CODE,
    ))
    .unwrap();
    let e = wrong.verify().await.unwrap_err();
    assert_eq!(e.reason(), "AuthenticationFailed", "{e}");
    assert!(!e.to_string().contains("not-the-secret"), "{e}");

    let discover = |user: &str| {
        let mut cfg = AutotaskConfig::new(None, user, DEMO_SECRET, DEMO_INTEGRATION_CODE);
        cfg.discovery_url = format!("{}/atservicesrest", sb.base_url());
        AutotaskClient::new(cfg).unwrap()
    };
    let e = discover("nobody@msp.example").verify().await.unwrap_err();
    assert_eq!(e.reason(), "AuthenticationFailed", "{e}");
    assert!(e.to_string().contains("Zone information"), "{e}");
    discover(DEMO_USERNAME).verify().await.unwrap();
}

/// `psa-operator sandbox --flavor autotask` serves the demo database on the Autotask paths.
#[tokio::test]
async fn the_binary_serves_the_autotask_flavor() {
    let (_child, url) =
        crate::support::sandbox_process(["--flavor", "autotask", "--addr", "127.0.0.1:0"]).await;
    let c = AutotaskClient::new(AutotaskConfig::new(
        Some(format!("{url}/atservicesrest/")),
        DEMO_USERNAME,
        DEMO_SECRET,
        DEMO_INTEGRATION_CODE,
    ))
    .unwrap();
    let contoso = c
        .find_company_by_identifier("CONTOSO")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contoso.name, "Contoso Ltd");
    let queues = crate::fixtures::board_names(&c).await;
    assert!(
        queues.contains(&"Security Alerts".to_string()),
        "{queues:?}"
    );
}

/// The picklist value a label has in the sandbox's database (`Tickets.status` etc.).
fn pick(st: &Value, list: &str, label: &str) -> String {
    st["picklists"][list]
        .as_array()
        .unwrap_or_else(|| panic!("no picklist {list}"))
        .iter()
        .find(|p| p["label"] == label)
        .unwrap_or_else(|| panic!("{label} not in {list}"))["value"]
        .to_string()
}

/// Ticket settings resolve by name against Autotask's picklists (`Tickets/entityInformation/
/// fields`): queue, status, source, ticket type, priority map and default, issue type and
/// sub-issue type (a sub-issue type only under its own issue type, by `parentValue`). A name
/// Autotask does not have — including an inactive value, which Autotask refuses on a ticket —
/// is a miss naming the field: the connection's reason is `NamesNotFound`.
#[tokio::test]
async fn ticket_settings_resolve_by_name_against_autotask_picklists() {
    use psa_operator::api::TicketSettings;
    use psa_operator::controller::resolve::ticket::{
        describe_unresolved, fetch_catalog, misses_reason, resolve_ticket, resolved_values,
    };
    use psa_operator::sandbox::autotask::seed::SeedStatus;
    let mut seed = demo_seed();
    seed.picklists.statuses.push(SeedStatus {
        value: 9,
        label: "Legacy Triage".into(),
        active: false,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb = start(listener, seed, Faults::default()).await.unwrap();
    let c = client(&sb);
    let st = state(&sb).await;
    let settings = |v: Value| -> TicketSettings { serde_json::from_value(v).unwrap() };

    // Every name known (in any case): the ids are Autotask's picklist values.
    let good = settings(json!({
        "board": "Security Alerts",
        "status": {"value": "new"},
        "source": {"value": "SaaS Alerts"},
        "type": {"value": "Alert"},
        "priority": {"map": {"critical": "Critical", "high": "High"}, "default": "Medium"},
        "issueType": {
            "default": "SaaS Alerts", "subIssueType": "General",
            "overrides": [{"alertType": "Too Many Downloads", "issueType": "SaaS Alerts", "subIssueType": "Data Leakage"}]
        },
        "closedStatus": "Complete",
    }));
    let (cat, board) = fetch_catalog(&c, &good).await.unwrap();
    assert_eq!(board, Some(pick(&st, "Tickets.queueID", "Security Alerts")));
    let resolved = resolve_ticket(&good, &cat).unwrap_or_else(|m| panic!("{m:?}"));
    assert_eq!(
        resolved.closed_status_id,
        Some("5".to_string()),
        "Complete is status 5"
    );
    let values = resolved_values(&resolved);
    // (setting under `ticket.`, its picklist under `Tickets.`, the label it names there)
    let want = [
        ("status.value", "status", "New"),
        ("source.value", "source", "SaaS Alerts"),
        ("type.value", "ticketType", "Alert"),
        ("priority.map.critical", "priority", "Critical"),
        ("priority.map.high", "priority", "High"),
        ("priority.default", "priority", "Medium"),
        ("issueType.default.issueType", "issueType", "SaaS Alerts"),
        ("issueType.default.subIssueType", "subIssueType", "General"),
        (
            "issueType.overrides.Too Many Downloads.subIssueType",
            "subIssueType",
            "Data Leakage",
        ),
    ];
    for (setting, picklist, label) in want {
        let field = format!("ticket.{setting}");
        let id = pick(&st, &format!("Tickets.{picklist}"), label);
        assert_eq!(values.get(&field), Some(&id), "{field}: {values:?}");
    }

    // Unknown and inactive names: every miss is named by its field.
    let bad = settings(json!({
        "board": "Security Alerts",
        "status": {"value": "Legacy Triage"},
        "source": {"value": "Carrier Pigeon"},
        "type": {"value": "Problem"},
        "priority": {"map": {"critical": "Urgent", "high": "High"}},
        "issueType": {
            "default": "SaaS Alerts", "subIssueType": "Firewall",
            "overrides": [{"alertType": "Too Many Downloads", "issueType": "Security", "subIssueType": "IAM"}]
        },
        "closedStatus": "Done",
    }));
    let (cat, _) = fetch_catalog(&c, &bad).await.unwrap();
    let misses = resolve_ticket(&bad, &cat).unwrap_err();
    assert_eq!(misses_reason(&misses), "NamesNotFound");
    let mut fields: Vec<&str> = misses.iter().map(|m| m.field.as_str()).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "ticket.closedStatus",
            "ticket.issueType.overrides[0].subIssueType",
            "ticket.issueType.subIssueType",
            "ticket.priority.map.critical",
            "ticket.source.value",
            "ticket.status.value",
            "ticket.type.value",
        ],
        "{}",
        describe_unresolved(&misses)
    );
    let message = describe_unresolved(&misses);
    for named in [
        "\"Legacy Triage\"",
        "\"Carrier Pigeon\"",
        "\"Urgent\"",
        "\"Firewall\"",
        "\"IAM\"",
    ] {
        assert!(message.contains(named), "{named} in {message}");
    }

    // An unknown queue: the queue is the miss (its picklists are not checked without it).
    let no_queue = settings(json!({"board": "Helpdesk", "status": {"value": "New"}}));
    let (cat, board) = fetch_catalog(&c, &no_queue).await.unwrap();
    assert_eq!(board, None);
    let misses = resolve_ticket(&no_queue, &cat).unwrap_err();
    assert_eq!(misses.len(), 1, "{misses:?}");
    assert_eq!(
        (misses[0].field.as_str(), misses[0].value.as_str()),
        ("ticket.board", "Helpdesk")
    );
}

/// The shared `/_sandbox/` admin layer on the Autotask flavor: calls are counted per route, an
/// outage answers 503 with Autotask's `{"errors": [...]}` body (a transient error for the
/// client), a rate-limit fault a 429, and a reset restores the seed, the faults, the calls and
/// the database's hour.
#[tokio::test]
async fn the_sandbox_admin_layer_speaks_autotask() {
    use crate::sandbox_admin::{calls, set_faults};
    let sb = sandbox().await;
    let c = client(&sb);
    let contoso = company_named(&c, "Contoso Ltd").await;
    let report = calls(&sb).await;
    assert_eq!(
        report.count("POST", "/atservicesrest/V1.0/Companies/query"),
        1,
        "{report:?}"
    );
    set_database(&sb, json!({"requestsThisHour": 4_000})).await;

    set_faults(&sb, json!({"outage": true})).await;
    let company = rest_url(&sb, &format!("Companies/{}", contoso.id));
    let raw = as_api_user(reqwest::Client::new().get(company))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 503);
    let body: Value = raw.json().await.unwrap();
    assert!(
        body["errors"][0].is_string(),
        "Autotask's error shape: {body}"
    );
    // The client's transient error: `providers::the_admin_layers_faults_are_transient_errors`.

    set_faults(&sb, json!({"rateLimitPerMinute": 1})).await;
    let _ = c.get_company(&contoso.id).await;
    let e = c.get_company(&contoso.id).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("429"), "{e}");

    // A ticket, then a reset: the seed's state again, no faults, no calls, a fresh hour.
    set_faults(&sb, json!({})).await;
    let made = as_api_user(reqwest::Client::new().post(rest_url(&sb, "Tickets")))
        .json(&json!({
            "companyID": contoso.id.parse::<i64>().unwrap(), "title": "by hand",
            "status": 1, "priority": 1, "queueID": 1,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200, "{}", made.text().await.unwrap());
    assert_eq!(state(&sb).await["tickets"].as_array().unwrap().len(), 1);
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/reset", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let st = state(&sb).await;
    assert_eq!(st["tickets"], json!([]));
    assert_eq!(st["database"]["requestsThisHour"], 0);
    assert_eq!(calls(&sb).await.total, 0);
    assert_eq!(
        c.get_company(&contoso.id).await.unwrap().unwrap().name,
        "Contoso Ltd"
    );
}

/// Contacts by e-mail look in all three of Autotask's address fields (`emailAddress`,
/// `emailAddress2`, `emailAddress3`, any case), on the company asked about only, active
/// contacts only.
#[tokio::test]
async fn contacts_are_found_by_any_of_their_three_addresses() {
    use psa_operator::sandbox::autotask::seed::SeedContact;
    let mut seed = demo_seed();
    let person = |first: &str, email: Option<&str>, email2: Option<&str>, email3: Option<&str>| {
        SeedContact {
            first_name: first.into(),
            last_name: "Example".into(),
            email: email.map(Into::into),
            email2: email2.map(Into::into),
            email3: email3.map(Into::into),
            active: true,
            primary: false,
        }
    };
    let contoso = seed
        .companies
        .iter_mut()
        .find(|c| c.name == "Contoso Ltd")
        .unwrap();
    contoso.contacts.extend([
        person(
            "Second",
            Some("s@old.example"),
            Some("second@contoso.example"),
            None,
        ),
        person("Third", None, None, Some("Third@Contoso.example")),
        SeedContact {
            active: false,
            ..person("Gone", Some("gone@contoso.example"), None, None)
        },
    ]);
    let fabrikam = seed
        .companies
        .iter_mut()
        .find(|c| c.name == "Fabrikam Inc")
        .unwrap();
    fabrikam
        .contacts
        .push(person("Other", Some("third@contoso.example"), None, None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb = start(listener, seed, Faults::default()).await.unwrap();
    let c = client(&sb);
    let contoso = company_named(&c, "Contoso Ltd").await;
    let found = |email: &'static str| {
        let c = &c;
        let id = contoso.id.clone();
        async move {
            c.find_contact_by_email(ContactEmail::new(&id, email))
                .await
                .unwrap()
                .map(|k| (k.first_name, k.company_id))
        }
    };
    let here = Some(contoso.id.clone());
    assert_eq!(
        found("jane@contoso.example").await,
        Some(("Jane".into(), here.clone())),
        "emailAddress"
    );
    assert_eq!(
        found("SECOND@contoso.example").await,
        Some(("Second".into(), here.clone())),
        "emailAddress2, any case"
    );
    assert_eq!(
        found("third@contoso.example").await,
        Some(("Third".into(), here.clone())),
        "emailAddress3; Fabrikam's contact with the same address is not Contoso's"
    );
    assert_eq!(found("gone@contoso.example").await, None, "inactive");
    assert_eq!(found("nobody@contoso.example").await, None);
}
