//! ConnectWise contract tests: the client against the in-process sandbox (every `Psa` method),
//! the client against payloads written from the documented shapes, the sandbox's rejections over
//! raw HTTP, exact call counts, and the real binary serving the demo data.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use psa_operator::psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
use psa_operator::psa::*;
use psa_operator::sandbox::connectwise::{
    self as cw_sandbox, seed, DEMO_CLIENT_ID, DEMO_COMPANY_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
};
use psa_operator::sandbox::{Faults, RunningSandbox};
use psa_operator::secret::SecretString;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::fixtures::demo::managed_security;
use crate::sandbox_admin::{calls, clear_calls, set_faults, state};

const API: &str = "/v4_6_release/apis/3.0";

async fn sandbox_with(seed: seed::Seed) -> RunningSandbox {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    cw_sandbox::start(listener, seed, Faults::default())
        .await
        .unwrap()
}

async fn demo() -> RunningSandbox {
    sandbox_with(cw_sandbox::demo_seed()).await
}

fn config(url: &str) -> ConnectWiseConfig {
    crate::fixtures::demo::connectwise_config(url)
}

fn client(sb: &RunningSandbox) -> ConnectWiseClient {
    ConnectWiseClient::new(config(&sb.base_url())).unwrap()
}

fn auth() -> String {
    let raw = format!("{DEMO_COMPANY_ID}+{DEMO_PUBLIC_KEY}:{DEMO_PRIVATE_KEY}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A raw request with the real ConnectWise headers.
fn raw(http: &reqwest::Client, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    http.request(method, url)
        .header("Authorization", auth())
        .header("clientId", DEMO_CLIENT_ID)
        .header(
            "Accept",
            "application/vnd.connectwise.com+json; version=2022.1",
        )
}

/// GET `url` with the real ConnectWise headers.
async fn get_raw(http: &reqwest::Client, url: String) -> reqwest::Response {
    raw(http, reqwest::Method::GET, url).send().await.unwrap()
}

async fn company(c: &ConnectWiseClient, identifier: &str) -> Company {
    c.find_company_by_identifier(identifier)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{identifier} is in the seed"))
}

/// Jane Doe, Contoso's contact in the demo data.
async fn jane_of(c: &ConnectWiseClient, contoso: &Company) -> Contact {
    c.find_contact_by_email(ContactEmail::new(&contoso.id, "jane@contoso.example"))
        .await
        .unwrap()
        .expect("Jane Doe in the demo data")
}

/// POST or PATCH `body` to `url` with the real headers; status and JSON body.
async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: &Value,
) -> (StatusCode, Value) {
    let r = raw(http, method, url).json(body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn names(v: &[Named]) -> Vec<&str> {
    v.iter().map(|n| n.name.as_str()).collect()
}

#[tokio::test]
async fn client_reads_companies_contacts_and_lookups_from_the_demo_data() {
    let sb = demo().await;
    let c = client(&sb);
    assert_eq!(c.provider(), Provider::ConnectWise);
    c.verify().await.unwrap();
    assert_eq!(
        c.api_base().await.unwrap(),
        format!("{}{API}", sb.base_url())
    );

    let contoso = company(&c, "CONTOSO").await;
    assert_eq!(contoso.name, "Contoso Ltd");
    assert!(contoso.active);
    assert_eq!(c.find_company_by_identifier("NOPE").await.unwrap(), None);
    assert_eq!(
        c.get_company(&contoso.id)
            .await
            .unwrap()
            .unwrap()
            .identifier,
        "CONTOSO"
    );
    let all = c.list_companies(&CompanyFilter::default()).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|x| x.identifier.as_str()).collect();
    assert_eq!(ids, vec!["DefaultCustomer", "CONTOSO", "FABRIKAM"]);

    let by_name = c
        .find_contact_by_name(&contoso.id, "Alert Contact")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.email.as_deref(), Some("alerts@contoso.example"));

    let boards = c.boards().await.unwrap();
    assert_eq!(names(&boards), vec!["Security Alerts", "Escalations"]);
    let board = Some(&boards[0].id);
    let statuses = c.statuses(board).await.unwrap();
    let flags: Vec<(&str, bool)> = statuses
        .iter()
        .map(|s| (s.name.as_str(), s.closed))
        .collect();
    assert_eq!(
        flags,
        vec![
            ("New", false),
            ("In Progress", false),
            (">Closed", true),
            ("Completed", true)
        ]
    );
    assert!(matches!(
        c.statuses(None).await,
        Err(PsaError::Permanent { .. })
    ));
    assert_eq!(
        names(&c.ticket_types(board).await.unwrap()),
        vec!["Alert", "Incident"]
    );
    assert_eq!(
        names(&c.issue_types(board).await.unwrap()),
        vec!["Data Leakage", "Identity"]
    );
    assert!(c
        .sub_issue_types(board, &"1".to_string())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        names(&c.priorities().await.unwrap()),
        vec![
            "Priority 1 - Critical",
            "Priority 2 - High",
            "Priority 3 - Medium",
            "Priority 4 - Low"
        ]
    );
    assert_eq!(
        names(&c.sources().await.unwrap()),
        vec!["SaaS Alerts", "SIEM"]
    );
}

#[tokio::test]
async fn ticket_lifecycle_create_find_note_close() {
    let sb = demo().await;
    let c = client(&sb);
    let contoso = company(&c, "CONTOSO").await;
    let jane = jane_of(&c, &contoso).await;
    let board = c.boards().await.unwrap().remove(0);
    let new_status = c.statuses(Some(&board.id)).await.unwrap().remove(0);
    let contract = managed_security(&c, &contoso).await;

    let t = NewTicket {
        marker: "alert-0001".into(),
        summary: format!("Impossible travel for jane {}", "x".repeat(120)),
        description: "Sign-ins from two countries within an hour.".into(),
        company_id: contoso.id.clone(),
        contact_id: Some(jane.id.clone()),
        board_id: Some(board.id.clone()),
        status_id: Some(new_status.id.clone()),
        priority_id: Some(c.priorities().await.unwrap()[1].id.clone()),
        source_id: Some(c.sources().await.unwrap()[0].id.clone()),
        type_id: Some(c.ticket_types(Some(&board.id)).await.unwrap()[0].id.clone()),
        issue_type_id: Some(c.issue_types(Some(&board.id)).await.unwrap()[1].id.clone()),
        contract_id: Some(contract.id.clone()),
        ..NewTicket::default()
    };
    let created = c.create_ticket(&t).await.unwrap();
    assert_eq!(
        created.summary.chars().count(),
        100,
        "summary cut to the PSA's limit"
    );
    assert!(!created.closed);
    assert_eq!(created.marker.as_deref(), Some("alert-0001"));

    assert_eq!(
        c.find_ticket_by_marker("alert-0001")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(created.id.clone())
    );
    assert_eq!(c.find_ticket_by_marker("alert-0002").await.unwrap(), None);
    c.add_note(&created.id, "Second sign-in from the same IP.")
        .await
        .unwrap();

    // The description became the first note; ours is the second.
    let state = state(&sb).await;
    let texts: Vec<&str> = state["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        vec![
            "Sign-ins from two countries within an hour.",
            "Second sign-in from the same IP."
        ]
    );

    c.close_ticket(CloseTicket::new(&created.id).note("Resolved by the customer."))
        .await
        .unwrap();
    let closed = c.get_ticket(&created.id).await.unwrap().unwrap();
    assert!(closed.closed);
    let closed_status = c.statuses(Some(&board.id)).await.unwrap();
    assert_eq!(
        closed.status_id.as_deref(),
        closed_status
            .iter()
            .find(|s| s.name == ">Closed")
            .map(|s| s.id.as_str())
    );
    assert!(matches!(
        c.add_note(&"424242".to_string(), "x").await,
        Err(PsaError::NotFound { .. })
    ));
}

#[tokio::test]
async fn catalog_and_contract_lines() {
    let sb = demo().await;
    let c = client(&sb);
    let contoso = company(&c, "CONTOSO").await;
    let contract = managed_security(&c, &contoso).await;
    let spec = CatalogServiceSpec {
        name: "SaaS Alerts Monitoring".into(),
        description: "Monitoring of SaaS alerts, per user".into(),
        cost: 12_500,
        price: 50_000,
    };
    assert_eq!(c.find_catalog_service(&spec.name).await.unwrap(), None);
    let svc = c.create_catalog_service(&spec).await.unwrap();
    assert_eq!(
        (svc.name.as_str(), svc.cost, svc.price),
        ("SaaS Alerts Monitoring", 12_500, 50_000)
    );
    // A second create is refused by the PSA: identifiers are unique.
    let dup = c.create_catalog_service(&spec).await.unwrap_err();
    assert_eq!(
        crate::fixtures::kind_and_status(&dup),
        ("PsaRejected", Some(400)),
        "{dup}"
    );
    assert!(dup.to_string().contains("identifier"), "{dup}");

    let changed = CatalogServiceSpec {
        price: 60_000,
        description: "Per user, monthly".into(),
        ..spec.clone()
    };
    let updated = c.update_catalog_service(&svc.id, &changed).await.unwrap();
    assert_eq!(
        (updated.price, updated.description.as_str()),
        (60_000, "Per user, monthly")
    );

    let values = LineValues {
        quantity: 12,
        cost: 12_500,
        price: 60_000,
    };
    let line = c
        .add_contract_line(LineKey::new(&contract.id, &svc.id), values)
        .await
        .unwrap();
    let upd = c
        .update_contract_line(
            &line,
            LineValues {
                quantity: 15,
                ..values
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.line().quantity, 15);
    assert_eq!(
        c.find_contract_line(LineKey::new(&contract.id, &svc.id))
            .await
            .unwrap()
            .map(|l| l.quantity),
        Some(15)
    );

    // In use on an agreement: ConnectWise refuses the delete (409); the client deactivates it.
    c.delete_catalog_service(&svc.id).await.unwrap();
    let state = state(&sb).await;
    assert_eq!(state["catalog"][0]["inactiveFlag"], true);
    // Unused: really deleted.
    let other = c
        .create_catalog_service(&CatalogServiceSpec {
            name: "Spare".into(),
            ..spec
        })
        .await
        .unwrap();
    c.delete_catalog_service(&other.id).await.unwrap();
    assert_eq!(c.find_catalog_service("Spare").await.unwrap(), None);
}

#[tokio::test]
async fn a_ticket_create_and_a_note_cost_exactly_one_call_each() {
    let sb = demo().await;
    let c = client(&sb);
    let contoso = company(&c, "CONTOSO").await;
    let first = calls(&sb).await;
    assert_eq!(
        first.count("GET", "/login/companyinfo/{company}"),
        1,
        "{first:?}"
    );
    clear_calls(&sb).await;

    let t = NewTicket {
        marker: "alert-calls".into(),
        summary: "Counting calls".into(),
        company_id: contoso.id.clone(),
        ..NewTicket::default()
    };
    let ticket = c.create_ticket(&t).await.unwrap();
    let after_create = calls(&sb).await;
    assert_eq!(after_create.total, 1, "{after_create:?}");
    assert_eq!(
        after_create.count("POST", &format!("{API}/service/tickets")),
        1
    );

    clear_calls(&sb).await;
    c.add_note(&ticket.id, "one more").await.unwrap();
    let after_note = calls(&sb).await;
    assert_eq!(after_note.total, 1, "{after_note:?}");
    assert_eq!(
        after_note.count("POST", &format!("{API}/service/tickets/{{id}}/notes")),
        1
    );

    clear_calls(&sb).await;
    c.get_ticket(&ticket.id).await.unwrap();
    c.close_ticket(CloseTicket::new(&ticket.id)).await.unwrap();
    let report = calls(&sb).await;
    // get_ticket 1; close without a status: ticket + statuses + PATCH.
    assert_eq!(
        report.count("GET", &format!("{API}/service/tickets/{{id}}")),
        2,
        "{report:?}"
    );
    assert_eq!(
        report.count("GET", &format!("{API}/service/boards/{{id}}/statuses")),
        1
    );
    assert_eq!(
        report.count("PATCH", &format!("{API}/service/tickets/{{id}}")),
        1
    );
    assert_eq!(report.total, 4);
}

#[tokio::test]
async fn names_with_quotes_are_found_exactly() {
    let yaml = r#"
companyId: demo
publicKey: demo-public
privateKey: demo-private
companies:
  - { identifier: OBRIEN, name: "O'Brien & Sons" }
  - { identifier: QUOTED, name: 'The "Quoted" Co' }
  - { identifier: BOTH, name: 'Bob''s "Best" Ltd' }
  - { identifier: DECOY, name: "Bob's xBestx Ltd" }
  - { identifier: SALT, name: "Salt and Pepper" }
"#;
    let sb = sandbox_with(seed::parse(yaml).unwrap()).await;
    let c = client(&sb);
    for (name, identifier) in [
        ("O'Brien & Sons", "OBRIEN"),
        (r#"The "Quoted" Co"#, "QUOTED"),
        (r#"Bob's "Best" Ltd"#, "BOTH"),
        ("Bob's xBestx Ltd", "DECOY"),
        ("Salt and Pepper", "SALT"),
    ] {
        let found = c.find_company_by_name(name).await.unwrap();
        assert_eq!(
            found.map(|x| x.identifier).as_deref(),
            Some(identifier),
            "{name}"
        );
    }
}

#[tokio::test]
async fn long_lists_are_paged_with_link_headers() {
    let mut yaml = String::from(
        "companyId: demo\npublicKey: demo-public\nprivateKey: demo-private\ncompanies:\n",
    );
    for i in 0..2345 {
        yaml.push_str(&format!(
            "  - {{ identifier: C{i:05}, name: Company {i} }}\n"
        ));
    }
    let sb = sandbox_with(seed::parse(&yaml).unwrap()).await;
    let c = client(&sb);
    c.verify().await.unwrap();
    clear_calls(&sb).await;
    let all = c.list_companies(&CompanyFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2345);
    assert_eq!(all[2344].identifier, "C02344");
    let report = calls(&sb).await;
    assert_eq!(
        report.count("GET", &format!("{API}/company/companies")),
        3,
        "{report:?}"
    );

    // The Link header as a client sees it on the middle page.
    let http = reqwest::Client::new();
    let r = get_raw(
        &http,
        format!(
            "{}{API}/company/companies?pageSize=1000&page=2",
            sb.base_url()
        ),
    )
    .await;
    let link = r.headers()["link"].to_str().unwrap().to_string();
    for rel in ["first", "prev", "next", "last"] {
        assert!(link.contains(&format!("rel=\"{rel}\"")), "{link}");
    }
    assert!(link.contains("page=3>; rel=\"next\""), "{link}");
    let page3 = get_raw(
        &http,
        format!(
            "{}{API}/company/companies?pageSize=1000&page=4",
            sb.base_url()
        ),
    )
    .await;
    assert_eq!(
        page3.json::<Vec<Value>>().await.unwrap().len(),
        0,
        "past the end: []"
    );
}

#[tokio::test]
async fn faults_become_transient_errors_and_retry_after_is_honoured() {
    let sb = demo().await;
    let c = client(&sb);
    c.verify().await.unwrap();

    // An outage and the admin layer's 429: `providers::the_admin_layers_faults_are_transient_errors`.
    set_faults(&sb, json!({"errorRate": 1.0})).await;
    let e = c.boards().await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("A timeout has occured"), "{e}");

    set_faults(&sb, json!({"rateLimitPerMinute": 1})).await;
    c.verify().await.unwrap();
    clear_calls(&sb).await;
    let e = c.verify().await.unwrap_err();
    let wait = e.retry_after().expect("429 carries Retry-After");
    assert!(
        wait > Duration::from_secs(10) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // While Retry-After runs, the client does not call the PSA at all.
    let e = c.priorities().await.unwrap_err();
    assert!(e.is_transient() && e.retry_after().is_some(), "{e}");
    assert_eq!(calls(&sb).await.total, 1);

    // A slow PSA hits the client's timeout.
    set_faults(&sb, json!({"latencyMs": 5000})).await;
    let mut cfg = config(&sb.base_url());
    cfg.timeout = Duration::from_millis(300);
    let slow = ConnectWiseClient::new(cfg).unwrap();
    let e = slow.verify().await.unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("timed out"),
        "{e}"
    );
    assert!(
        !e.to_string().contains("127.0.0.1"),
        "no URL in errors: {e}"
    );
}

#[tokio::test]
async fn bad_credentials_are_auth_errors_without_the_secret() {
    let sb = demo().await;
    let mut cfg = config(&sb.base_url());
    cfg.private_key = SecretString::new("wrong-private-key-xyz");
    let c = ConnectWiseClient::new(cfg).unwrap();
    let e = c.verify().await.unwrap_err();
    assert_eq!(
        crate::fixtures::kind_and_status(&e),
        ("AuthenticationFailed", Some(401)),
        "{e}"
    );
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains("wrong-private-key-xyz") && !text.contains("demo-public"),
        "{text}"
    );

    let mut cfg = config(&sb.base_url());
    cfg.company_id = "nosuchco".into();
    let e = ConnectWiseClient::new(cfg)
        .unwrap()
        .verify()
        .await
        .unwrap_err();
    assert!(matches!(e, PsaError::Auth { .. }), "{e}");
    assert!(e.to_string().contains("nosuchco"), "{e}");
}

#[tokio::test]
async fn sandbox_rejects_like_connectwise() {
    let sb = demo().await;
    let http = reqwest::Client::new();
    let base = format!("{}{API}", sb.base_url());

    // No clientId.
    let r = http
        .get(format!("{base}/company/companies"))
        .header("Authorization", auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "Unauthorized");
    assert!(body["message"].as_str().unwrap().contains("clientId"));

    // Wrong private key.
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("demo+demo-public:nope")
    );
    let r = http
        .get(format!("{base}/company/companies"))
        .header("Authorization", bad)
        .header("clientId", DEMO_CLIENT_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Summary over 100 characters.
    let tickets = format!("{base}/service/tickets");
    let post = reqwest::Method::POST;
    let long = json!({"summary": "s".repeat(101), "company": {"identifier": "CONTOSO"}});
    let (status, body) = send_json(&http, post.clone(), tickets.clone(), &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "InvalidObject");
    assert_eq!(body["errors"][0]["field"], "summary");

    // Unknown company, board and a status of no board.
    for (ticket, field) in [
        (json!({"summary": "x", "company": {"id": 999}}), "company"),
        (
            json!({"summary": "x", "company": {"id": 2}, "board": {"id": 77}}),
            "board",
        ),
        (
            json!({"summary": "x", "company": {"id": 2}, "status": {"id": 77}}),
            "status",
        ),
    ] {
        let (status, body) = send_json(&http, post.clone(), tickets.clone(), &ticket).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ticket}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }

    // A valid ticket, then a technician closes it by status name through PATCH.
    let ok = json!({"summary": "Technician test", "company": {"identifier": "CONTOSO"}});
    let (status, ticket) = send_json(&http, post.clone(), tickets.clone(), &ok).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ticket["status"]["name"], "New");
    assert_eq!(ticket["closedFlag"], false);
    let url = format!("{tickets}/{}", ticket["id"]);
    let to_status =
        |name: &str| json!([{"op": "replace", "path": "status", "value": {"name": name}}]);
    // "Closed" is not a status of the board: the closed status is ">Closed".
    let (status, _) = send_json(
        &http,
        reqwest::Method::PATCH,
        url.clone(),
        &to_status("Closed"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, closed) =
        send_json(&http, reqwest::Method::PATCH, url, &to_status(">Closed")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["closedFlag"], true);
    assert!(closed["closedDate"].is_string());

    // Duplicate catalog identifier (identifiers compare without case).
    let catalog = format!("{base}/procurement/catalog");
    let mut item = json!({
        "identifier": "Backup", "description": "Backup", "customerDescription": "Backup",
        "subcategory": {"id": 1}, "type": {"id": 1}, "price": 4, "cost": 1.5
    });
    let (status, _) = send_json(&http, post.clone(), catalog.clone(), &item).await;
    assert_eq!(status, StatusCode::CREATED);
    item["identifier"] = json!("BACKUP");
    let (status, body) = send_json(&http, post, catalog, &item).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "ObjectExists");
    assert_eq!(body["errors"][0]["field"], "identifier");
    // Missing records are 404 with ConnectWise's body; bad conditions are 400.
    let r = get_raw(&http, format!("{base}/service/tickets/4242")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Ticket 4242 not found"
    );
    let r = get_raw(
        &http,
        format!("{base}/company/companies?conditions=name=Contoso"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

fn json_reply(status: StatusCode, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A stand-in ConnectWise serving payloads written from the documented shapes.
async fn documented_payloads() -> (String, Arc<AtomicUsize>) {
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/connectwise/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let throttled = Arc::new(AtomicUsize::new(0));
    let t = throttled.clone();
    let api = "/v2017_3/apis/3.0";
    let (info, sys) = (fixture("companyinfo.json"), fixture("system-info.json"));
    let mut app = Router::new()
        .route(
            "/login/companyinfo/CW",
            get(move || async move { json_reply(StatusCode::OK, info) }),
        )
        .route(
            &format!("{api}/system/info"),
            get(move || {
                // The first call is throttled for one second: the client waits and retries.
                let t = t.clone();
                let sys = sys.clone();
                async move {
                    if t.fetch_add(1, Ordering::SeqCst) == 0 {
                        let mut r = json_reply(StatusCode::TOO_MANY_REQUESTS, "{}".into());
                        r.headers_mut().insert("retry-after", "1".parse().unwrap());
                        r
                    } else {
                        json_reply(StatusCode::OK, sys)
                    }
                }
            }),
        );
    // The documented answers to GETs under the API base: (path, HTTP status, fixture file).
    let documented = [
        ("/company/companies", 200, "companies.json"),
        ("/company/contacts", 200, "contacts.json"),
        ("/service/boards/1/statuses", 200, "statuses.json"),
        ("/service/tickets/1255787", 200, "ticket.json"),
        ("/service/tickets/1255788", 404, "error-404.json"),
    ];
    for (path, status, file) in documented {
        let (status, body) = (StatusCode::from_u16(status).unwrap(), fixture(file));
        app = app.route(
            &format!("{api}{path}"),
            get(move || async move { json_reply(status, body) }),
        );
    }
    let e400 = fixture("error-400.json");
    let app = app.route(
        &format!("{api}/procurement/catalog"),
        axum::routing::post(move || async move { json_reply(StatusCode::BAD_REQUEST, e400) }),
    );
    let url = crate::support::serve(app).await;
    (url, throttled)
}

#[tokio::test]
async fn client_parses_the_documented_payloads() {
    let (url, throttled) = documented_payloads().await;
    let mut cfg = config(&url);
    cfg.company_id = "CW".into();
    cfg.catalog_type_id = Some(1);
    cfg.catalog_subcategory_id = Some(1);
    let c = ConnectWiseClient::new(cfg).unwrap();
    assert_eq!(
        c.api_base().await.unwrap(),
        format!("{url}/v2017_3/apis/3.0")
    );
    c.verify().await.unwrap();
    assert_eq!(throttled.load(Ordering::SeqCst), 2, "one 429, one retry");

    let company = company(&c, "XYZTestCompany").await;
    assert_eq!(
        company,
        Company {
            id: "19297".into(),
            identifier: "XYZTestCompany".into(),
            name: "XYZ Test Company".into(),
            company_type: Some("Client".into()),
            parent_id: None,
            active: true,
            default_contact_id: Some("6027".into()),
            default_contact_name: Some("Pat Smith".into()),
            location_id: Some("1205".into()),
        }
    );
    let contact = c
        .find_contact_by_email(ContactEmail::new(&company.id, "pat.smith@xyz.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (contact.full_name().as_str(), contact.email.as_deref()),
        ("Pat Smith", Some("pat.smith@xyz.example"))
    );
    let statuses = c.statuses(Some(&"1".to_string())).await.unwrap();
    assert_eq!(
        statuses,
        vec![
            StatusInfo {
                id: "17".into(),
                name: "New".into(),
                closed: false
            },
            StatusInfo {
                id: "19".into(),
                name: ">Closed".into(),
                closed: true
            },
        ],
        "inactive statuses are left out"
    );
    let t = c.get_ticket(&"1255787".to_string()).await.unwrap().unwrap();
    assert_eq!(
        (t.status_id.as_deref(), t.closed, t.marker.as_deref()),
        (Some("17"), false, Some("alert-8f3a"))
    );
    assert_eq!(c.get_ticket(&"1255788".to_string()).await.unwrap(), None);
    let e = c
        .create_catalog_service(&CatalogServiceSpec {
            name: "X".into(),
            description: "X".into(),
            cost: 0,
            price: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(
        e,
        PsaError::Permanent {
            status: Some(400),
            message: "company object is invalid (identifier: Company ID already in use.)".into()
        }
    );
}

#[tokio::test]
async fn the_binary_serves_the_demo_data_with_the_real_paths_and_headers() {
    let (mut child, url) =
        crate::support::sandbox_process(["--flavor", "connectwise", "--addr", "127.0.0.1:0"]).await;
    let http = reqwest::Client::new();

    let info: Value =
        crate::support::send_for_json(http.get(format!("{url}/login/companyinfo/demo"))).await;
    assert_eq!(info["Codebase"], "v4_6_release/");
    let base = format!("{url}/{}apis/3.0", info["Codebase"].as_str().unwrap());

    let get = |path: &str| {
        let response = get_raw(&http, format!("{base}{path}"));
        async move { response.await.json::<Vec<Value>>().await.unwrap() }
    };
    let companies = get("/company/companies").await;
    let names: Vec<&str> = companies
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["Default Customer", "Contoso Ltd", "Fabrikam Inc"]
    );
    let boards = get("/service/boards?conditions=name%3D%22Security%20Alerts%22").await;
    let board = boards[0]["id"].as_i64().unwrap();
    let statuses = get(&format!(
        "/service/boards/{board}/statuses?conditions=closedStatus%3Dtrue"
    ))
    .await;
    let closed: Vec<&str> = statuses
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(closed, vec![">Closed", "Completed"]);
    let contacts = get("/company/contacts?conditions=company%2Fidentifier%3D%22CONTOSO%22&childConditions=communicationItems%2Fvalue%3D%22jane%40contoso.example%22").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["lastName"], "Doe");
    let agreements = get("/finance/agreements").await;
    assert_eq!(agreements[0]["name"], "Managed Security");
    assert_eq!(agreements[0]["company"]["identifier"], "CONTOSO");
    child.kill().await.unwrap();
}

/// A site upgraded between discovery and the next call: companyinfo names `v2024_1/` the first
/// time and `v2025_1/` after (its calls counted in `discoveries`); the new codebase answers
/// `system/info`.
fn upgraded_site(discoveries: &Arc<AtomicUsize>) -> Router {
    let d = discoveries.clone();
    Router::new()
        .route(
            "/login/companyinfo/demo",
            get(move || {
                let n = d.fetch_add(1, Ordering::SeqCst);
                let codebase = if n == 0 { "v2024_1/" } else { "v2025_1/" };
                async move { json_reply(StatusCode::OK, json!({ "Codebase": codebase }).to_string()) }
            }),
        )
        .route(
            "/v2025_1/apis/3.0/system/info",
            get(|| async { json_reply(StatusCode::OK, "{}".into()) }),
        )
}

#[tokio::test]
async fn a_moved_codebase_is_discovered_again() {
    // The site upgraded between discovery and the next call: the old codebase answers 404
    // without a ConnectWise error body, companyinfo now names the new one.
    let discoveries = Arc::new(AtomicUsize::new(0));
    let app = upgraded_site(&discoveries);
    let url = crate::support::serve(app).await;

    let c = ConnectWiseClient::new(config(&url)).unwrap();
    c.verify().await.unwrap();
    assert_eq!(discoveries.load(Ordering::SeqCst), 2);
    assert_eq!(
        c.api_base().await.unwrap(),
        format!("{url}/v2025_1/apis/3.0")
    );

    // A configured codebase is trusted: no discovery, the 404 is reported.
    let mut cfg = config(&url);
    cfg.codebase = Some("v2024_1/".into());
    let e = ConnectWiseClient::new(cfg)
        .unwrap()
        .verify()
        .await
        .unwrap_err();
    assert!(matches!(e, PsaError::NotFound { .. }), "{e}");
    assert_eq!(discoveries.load(Ordering::SeqCst), 2);
}

// ---- Issue 17: ConnectWise as a real instance behaves -------------------------------------

/// A seed with billing dates on agreements, a board whose statuses list "Completed" before
/// ">Closed", and type/subtype associations.
fn billing_seed(next_invoice: &str) -> seed::Seed {
    seed::parse(&format!(
        r#"
companyId: demo
publicKey: {DEMO_PUBLIC_KEY}
privateKey: {DEMO_PRIVATE_KEY}
companies:
  - identifier: CONTOSO
    name: Contoso Ltd
    contacts:
      - {{ firstName: Jane, lastName: Doe, email: jane@contoso.example }}
    agreements:
      - {{ name: Monthly, prorate: false, nextInvoiceDate: "{next_invoice}" }}
      - {{ name: Prorated, prorate: true, nextInvoiceDate: "{next_invoice}" }}
boards:
  - name: Security Alerts
    statuses:
      - {{ name: New, default: true }}
      - {{ name: Completed, closed: true }}
      - {{ name: ">Closed", closed: true }}
    types: [Alert, Incident]
    subtypes: [Identity, Data Leakage]
    associations:
      - {{ type: Alert, subType: Identity }}
procurement:
  types: [{{ name: Service, typeXref: Service }}]
  subcategories: [Managed Services]
catalog:
  - {{ identifier: Backup, description: Backup service, cost: 1.5, price: 4 }}
"#
    ))
    .unwrap()
}

fn next_month_first() -> String {
    let today = chrono::Utc::now().date_naive();
    psa_operator::sandbox::connectwise::first_of_next_month(today)
        .format("%Y-%m-%d")
        .to_string()
}

fn additions(st: &Value) -> Vec<Value> {
    st["additions"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn additions_start_on_a_date_the_agreement_accepts_and_future_cancellations_still_bill() {
    let next = next_month_first();
    let sb = sandbox_with(billing_seed(&next)).await;
    let c = client(&sb);
    let contoso = company(&c, "CONTOSO").await;
    let backup = c.find_catalog_service("Backup").await.unwrap().unwrap();
    let monthly = c
        .find_contract(&contoso.id, "Monthly")
        .await
        .unwrap()
        .unwrap();
    let values = LineValues {
        quantity: 3,
        cost: 15_000,
        price: 40_000,
    };

    // ConnectWise itself refuses today on an agreement invoiced until next month.
    let http = reqwest::Client::new();
    let today = chrono::Utc::now().format("%Y-%m-%dT00:00:00Z").to_string();
    let (status, body) = send_json(
        &http,
        reqwest::Method::POST,
        format!(
            "{}{API}/finance/agreements/{}/additions",
            sb.base_url(),
            monthly.id
        ),
        &json!({"product": {"id": backup.id.parse::<i64>().unwrap()}, "quantity": 1,
                "billCustomer": "Billable", "effectiveDate": today}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message"], "addition object is invalid");
    assert_eq!(body["errors"][0]["field"], "effectiveDate");

    // The client reads the agreement and starts the line on the next invoice date.
    clear_calls(&sb).await;
    let line = c
        .add_contract_line(LineKey::new(&monthly.id, &backup.id), values)
        .await
        .unwrap();
    assert_eq!(calls(&sb).await.total, 2, "agreement read + addition");
    let st = state(&sb).await;
    let added = additions(&st)
        .into_iter()
        .find(|a| a["id"].as_i64().map(|i| i.to_string()) == Some(line.id.clone()))
        .unwrap();
    assert_eq!(added["effectiveDate"], format!("{next}T00:00:00Z"));

    // A prorated agreement takes today.
    let prorated = c
        .find_contract(&contoso.id, "Prorated")
        .await
        .unwrap()
        .unwrap();
    let line2 = c
        .add_contract_line(LineKey::new(&prorated.id, &backup.id), values)
        .await
        .unwrap();
    let st = state(&sb).await;
    let added = additions(&st)
        .into_iter()
        .find(|a| a["id"].as_i64().map(|i| i.to_string()) == Some(line2.id.clone()))
        .unwrap();
    assert_eq!(added["effectiveDate"], today);

    // Cancelled for the end of next month: still the agreement's line (no second one).
    let cancel = |date: String| {
        let http = http.clone();
        let url = format!(
            "{}{API}/finance/agreements/{}/additions/{}",
            sb.base_url(),
            monthly.id,
            line.id
        );
        async move {
            send_json(
                &http,
                reqwest::Method::PATCH,
                url,
                &json!([{"op": "replace", "path": "cancelledDate", "value": date}]),
            )
            .await
        }
    };
    let (status, _) = cancel(format!("{}-28T00:00:00Z", &next[..7])).await;
    assert_eq!(status, StatusCode::OK);
    let found = c
        .find_contract_line(LineKey::new(&monthly.id, &backup.id))
        .await
        .unwrap();
    assert_eq!(found.map(|l| l.id), Some(line.id.clone()));
    // Cancelled as of yesterday: gone.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    cancel(yesterday).await;
    assert_eq!(
        c.find_contract_line(LineKey::new(&monthly.id, &backup.id))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_role_without_close_service_tickets_is_named_up_front_and_close_leaves_nothing_behind() {
    let sb = demo().await;
    let c = client(&sb);
    assert_eq!(
        c.missing_permissions(TICKET_FEATURES).await.unwrap(),
        vec![],
        "the demo API member has every right"
    );
    let http = reqwest::Client::new();
    let roles = format!("{}/_sandbox/roles", sb.base_url());
    // A right the sandbox does not know is refused with the reason.
    let r = http
        .post(&roles)
        .json(&json!({"deny": ["Service Desk/Close Tickets/Edit"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not a module function"));
    let r = http
        .post(&roles)
        .json(&json!({"deny": ["Service Desk/Close Service Tickets/Edit"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Read-only probe: one call, the missing right by module, function and level.
    clear_calls(&sb).await;
    let missing = c.missing_permissions(TICKET_FEATURES).await.unwrap();
    assert_eq!(calls(&sb).await.total, 1);
    assert_eq!(
        missing,
        vec![MissingPermission {
            feature: Feature::CloseTickets,
            right: "Service Desk › Close Service Tickets › Edit level".into()
        }]
    );
    let e = permission_problem(&missing).unwrap();
    assert_eq!(e.reason(), "PermissionDenied");
    assert!(
        e.to_string()
            .contains("closing tickets needs Service Desk › Close Service Tickets › Edit level"),
        "{e}"
    );

    // Tickets still work; closing fails as a permission, naming the right, and no resolution
    // note is left on a ticket that stayed open.
    let contoso = company(&c, "CONTOSO").await;
    let t = c
        .create_ticket(&NewTicket {
            marker: "perm-1".into(),
            summary: "Impossible travel".into(),
            company_id: contoso.id.clone(),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    let e = c
        .close_ticket(CloseTicket::new(&t.id).note("Resolved by the customer."))
        .await
        .unwrap_err();
    assert!(matches!(e, PsaError::PermissionDenied { .. }), "{e}");
    assert!(
        e.to_string().contains("Close Service Tickets › Edit level"),
        "{e}"
    );
    assert!(!c.get_ticket(&t.id).await.unwrap().unwrap().closed);
    assert_eq!(c.note_texts(&t.id).await.unwrap(), Some(vec![]));

    // A denied read is named by the call that needed it.
    http.post(&roles)
        .json(&json!({"deny": ["Companies/Company Maintenance/Inquire"]}))
        .send()
        .await
        .unwrap();
    let e = c.find_company_by_identifier("CONTOSO").await.unwrap_err();
    assert_eq!(e.reason(), "PermissionDenied");
    assert!(
        e.to_string()
            .contains("Companies › Company Maintenance › Inquire level"),
        "{e}"
    );
    // Reset grants everything again.
    reqwest::Client::new()
        .post(format!("{}/_sandbox/reset", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert!(c.find_company_by_identifier("CONTOSO").await.is_ok());
}

#[tokio::test]
async fn validation_errors_carry_connectwise_codes_and_lengths_count_utf16() {
    let sb = demo().await;
    let c = client(&sb);
    let http = reqwest::Client::new();
    let contoso = company(&c, "CONTOSO").await;
    let cid: i64 = contoso.id.parse().unwrap();
    let tickets = format!("{}{API}/service/tickets", sb.base_url());
    let post = |body: Value| {
        let (http, url) = (http.clone(), tickets.clone());
        async move { send_json(&http, reqwest::Method::POST, url, &body).await }
    };
    let code_of = |b: &Value| b["errors"][0]["code"].as_str().unwrap_or("").to_string();

    let (s, b) = post(json!({"company": {"id": cid}})).await;
    assert_eq!(
        (s, code_of(&b)),
        (StatusCode::BAD_REQUEST, "MissingRequiredField".into()),
        "{b}"
    );
    // 99 letters + an emoji: 100 characters but 101 UTF-16 units.
    let emoji = format!("{}🔥", "a".repeat(99));
    let (s, b) = post(json!({"summary": emoji, "company": {"id": cid}})).await;
    assert_eq!(
        (s, code_of(&b)),
        (StatusCode::BAD_REQUEST, "MaxLengthField".into()),
        "{b}"
    );
    assert_eq!(
        b["errors"][0]["message"],
        "The field summary must be a string with a maximum length of 100."
    );
    let (s, b) = post(json!({"summary": "x", "company": {"id": cid}, "status": {"id": 999}})).await;
    assert_eq!(
        (s, code_of(&b)),
        (StatusCode::BAD_REQUEST, "NotFound".into()),
        "{b}"
    );
    let (s, b) =
        post(json!({"summary": "x", "company": {"id": cid}, "processNotifications": "maybe"}))
            .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        b,
        json!({"code": "ConnectWiseApi", "message": "String was not recognized as a valid Boolean."})
    );
    let r = get_raw(&http, format!("{tickets}?conditions=colour=\"red\"")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "ApiFindCondition");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("colour is not a recognized name"),
        "{b}"
    );

    // The client cuts the same summary to what ConnectWise accepts, and the ticket exists.
    let t = c
        .create_ticket(&NewTicket {
            marker: "utf16".into(),
            summary: emoji.clone(),
            company_id: contoso.id.clone(),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    assert_eq!(t.summary, "a".repeat(99));
    // A note without a display flag is refused.
    let (s, b) = send_json(
        &http,
        reqwest::Method::POST,
        format!("{tickets}/{}/notes", t.id),
        &json!({"text": "hidden"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["message"],
        "Please choose where to display the notes in order to save this record."
    );
}

#[tokio::test]
async fn alert_tickets_and_notes_do_not_email_the_contact() {
    let sb = demo().await;
    let c = client(&sb);
    let contoso = company(&c, "CONTOSO").await;
    let jane = jane_of(&c, &contoso).await;
    let t = c
        .create_ticket(&NewTicket {
            marker: "quiet-1".into(),
            summary: "Impossible travel".into(),
            description: "details".into(),
            company_id: contoso.id.clone(),
            contact_id: Some(jane.id.clone()),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    c.add_note(&t.id, "a follow-up alert").await.unwrap();
    c.close_ticket(CloseTicket::new(&t.id).note("resolved"))
        .await
        .unwrap();
    assert_eq!(state(&sb).await["notifications"], json!([]));

    // Left to ConnectWise's default, the same note would have e-mailed Jane.
    let (s, _) = send_json(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        format!("{}{API}/service/tickets/{}/notes", sb.base_url(), t.id),
        &json!({"text": "hello", "detailDescriptionFlag": true}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let sent = state(&sb).await["notifications"].clone();
    assert_eq!(sent.as_array().unwrap().len(), 1);
    assert_eq!(sent[0]["to"], "jane@contoso.example");

    // processNotifications: true in the spec lets ConnectWise notify.
    let mut cfg = config(&sb.base_url());
    cfg.process_notifications = true;
    let loud = ConnectWiseClient::new(cfg).unwrap();
    loud.add_note(&t.id, "told").await.unwrap();
    assert_eq!(
        state(&sb).await["notifications"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn closing_prefers_closed_and_type_combinations_follow_the_board() {
    let sb = sandbox_with(billing_seed(&next_month_first())).await;
    let c = client(&sb);
    let contoso = company(&c, "CONTOSO").await;
    let board = c.boards().await.unwrap().remove(0);
    let t = c
        .create_ticket(&NewTicket {
            marker: "close-pref".into(),
            summary: "x".into(),
            company_id: contoso.id.clone(),
            board_id: Some(board.id.clone()),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    c.close_ticket(CloseTicket::new(&t.id)).await.unwrap();
    let statuses = c.statuses(Some(&board.id)).await.unwrap();
    let closed = c.get_ticket(&t.id).await.unwrap().unwrap();
    let name = statuses
        .iter()
        .find(|s| Some(s.id.as_str()) == closed.status_id.as_deref())
        .map(|s| s.name.as_str());
    assert_eq!(
        name,
        Some(">Closed"),
        "not the first closed status, Completed"
    );

    let id_of = |v: &[Named], n: &str| v.iter().find(|x| x.name == n).unwrap().id.clone();
    let types = c.ticket_types(Some(&board.id)).await.unwrap();
    let subtypes = c.issue_types(Some(&board.id)).await.unwrap();
    let combo = |t: &str, s: &str| TypeCombination {
        type_id: Some(id_of(&types, t)),
        issue_type_id: Some(id_of(&subtypes, s)),
        sub_issue_type_id: None,
    };
    let wanted = [
        combo("Alert", "Identity"),
        combo("Incident", "Identity"),
        combo("Alert", "Data Leakage"),
    ];
    clear_calls(&sb).await;
    assert_eq!(
        c.invalid_type_combinations(Some(&board.id), &wanted)
            .await
            .unwrap(),
        vec![1, 2]
    );
    assert_eq!(calls(&sb).await.total, 1);
    // The sandbox refuses such a ticket the way the check predicted.
    let ticket = |w: &TypeCombination| NewTicket {
        marker: "combo".into(),
        summary: "x".into(),
        company_id: contoso.id.clone(),
        board_id: Some(board.id.clone()),
        type_id: w.type_id.clone(),
        issue_type_id: w.issue_type_id.clone(),
        ..NewTicket::default()
    };
    assert!(c.create_ticket(&ticket(&wanted[0])).await.is_ok());
    let e = c.create_ticket(&ticket(&wanted[1])).await.unwrap_err();
    assert!(e.to_string().contains("combination is not allowed"), "{e}");
}

#[tokio::test]
async fn a_404_rereads_the_codebase_once_whatever_the_body() {
    // After an upgrade the old codebase answers 404 with a ConnectWise body; companyinfo names
    // the new one. A real 404 (same codebase) is reported after one re-read, not retried.
    let discoveries = Arc::new(AtomicUsize::new(0));
    let not_found = || async {
        json_reply(
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound", "message": "Ticket 5 not found"}).to_string(),
        )
    };
    let app = upgraded_site(&discoveries)
        .route("/v2024_1/apis/3.0/system/info", get(not_found))
        .route("/v2025_1/apis/3.0/service/tickets/5", get(not_found));
    let url = crate::support::serve(app).await;

    let c = ConnectWiseClient::new(config(&url)).unwrap();
    c.verify().await.unwrap();
    assert_eq!(discoveries.load(Ordering::SeqCst), 2);
    assert_eq!(c.endpoint().await, Some(format!("{url}/v2025_1/apis/3.0")));
    // A deleted ticket: None, and no discovery storm (re-reads are spaced a minute apart).
    assert_eq!(c.get_ticket(&"5".to_string()).await.unwrap(), None);
    assert_eq!(c.get_ticket(&"5".to_string()).await.unwrap(), None);
    assert_eq!(discoveries.load(Ordering::SeqCst), 2);
}

/// The operator end to end: a role without Close Service Tickets turns the connection's
/// Ready into `PermissionDenied` naming the right, before any alert; status shows the API
/// address used and that ConnectWise has no hourly budget while BMS has its 1,500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_names_a_missing_right_before_any_alert() {
    use crate::controllers::Env;
    use crate::fixtures::{resolved_value, unresolved_value};
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    let (_, _, authenticated) = env
        .condition("psaconnection/demo-cw", "Authenticated")
        .await;
    assert!(
        authenticated.contains(&format!("at {}{API}", env.cw.base_url())),
        "{authenticated}"
    );
    assert_eq!(
        env.jsonpath(
            "psaconnection/demo-cw",
            "{.status.dispatch.requestsPerHour}"
        )
        .await,
        ""
    );
    env.wait_condition("psaconnection/demo-bms", "Ready", "True")
        .await;
    // The dispatcher's status sink writes the budget in force within a few seconds.
    env.wait_jsonpath(
        "psaconnection/demo-bms",
        "{.status.dispatch.requestsPerHour}",
        "1500",
    )
    .await;

    // A ticket type the board does not combine with an issue type in use: named, then fixed.
    let message = unresolved_value(&env, "psaconnection/demo-cw", "type", "Incident").await;
    assert!(
        message.contains(
            "ticket.issueType.overrides[0] \"Incident / Data Leakage\": is not a type / subtype / item combination the board allows"
        ),
        "{message}"
    );
    assert!(!message.contains("Incident / Identity"), "{message}");
    resolved_value(&env, "psaconnection/demo-cw", "type", "Alert").await;

    let deny = |rights: Value| {
        let url = format!("{}/_sandbox/roles", env.cw.base_url());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&json!({ "deny": rights }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    // A catalog service change the role may not make: the ContractService names the right.
    env.wait_condition("contractservice/saas-alerts-monitoring", "Ready", "True")
        .await;
    deny(json!(["Procurement/Product Catalog/Edit"])).await;
    let (_, reason, message) = crate::fixtures::patch_until(
        &env,
        "contractservice/saas-alerts-monitoring",
        "merge",
        r#"{"spec":{"price":"4.00"}}"#,
        "Ready",
        "False",
    )
    .await;
    assert_eq!(reason, "PermissionDenied", "{message}");
    assert!(
        message.contains("Procurement › Product Catalog › Edit level"),
        "{message}"
    );

    deny(json!([
        "Procurement/Product Catalog/Edit",
        "Service Desk/Close Service Tickets/Edit"
    ]))
    .await;
    let (_, reason, message) = env
        .wait_condition("psaconnection/demo-cw", "Ready", "False")
        .await;
    assert_eq!(reason, "PermissionDenied", "{message}");
    assert!(
        message.contains("closing tickets needs Service Desk › Close Service Tickets › Edit level"),
        "{message}"
    );
    assert_eq!(
        state(&env.cw).await["tickets"],
        json!([]),
        "no alert was needed to find out"
    );
}

/// The web address users type works: calls go to the cloud API host (a pinned codebase needs
/// no discovery call, so nothing leaves the machine).
#[tokio::test]
async fn a_web_site_address_calls_the_api_host() {
    for (typed, host) in [
        (
            "https://na.myconnectwise.net",
            "https://api-na.myconnectwise.net",
        ),
        (
            "https://eu.myconnectwise.net/",
            "https://api-eu.myconnectwise.net",
        ),
        (
            "https://api-au.myconnectwise.net",
            "https://api-au.myconnectwise.net",
        ),
    ] {
        let mut cfg = config(typed);
        cfg.codebase = Some("v2025_1/".into());
        let c = ConnectWiseClient::new(cfg).unwrap();
        assert_eq!(
            c.endpoint().await,
            Some(format!("{host}/v2025_1/apis/3.0")),
            "{typed}"
        );
    }
    // The sandbox (any other host) is used as given, and works.
    let sb = demo().await;
    let c = client(&sb);
    c.verify().await.unwrap();
    assert_eq!(c.endpoint().await, Some(format!("{}{API}", sb.base_url())));
}
