//! Kaseya BMS: the REST client against the in-process BMS sandbox, over real HTTP.
//!
//! Every `Psa` method is exercised; so are token expiry and refresh, failures reported behind
//! HTTP 200, 429s, the client's own per-endpoint budget, and the calls each operation costs
//! (read from the sandbox's `/_sandbox/calls`).

use std::time::Duration;

use psa_operator::psa::bms::{BmsClient, BmsConfig, RateBudget};
use psa_operator::psa::{Billing, Directory, TicketDesk};
use psa_operator::psa::{
    CatalogServiceSpec, CloseTicket, Company, CompanyFilter, ContactEmail, LineKey, LineUpdate,
    LineValues, NewTicket, Psa, PsaError,
};
use psa_operator::sandbox::bms::{demo_seed, start, Seed};
use psa_operator::sandbox::{Faults, RunningSandbox};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::fixtures::demo::managed_security;
use crate::sandbox_admin::{calls, clear_calls, state};

async fn sandbox(seed: Seed) -> RunningSandbox {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(listener, seed, Faults::default()).await.unwrap()
}

fn config(sb: &RunningSandbox) -> BmsConfig {
    crate::fixtures::demo::bms_config(sb)
}

fn client(sb: &RunningSandbox) -> BmsClient {
    BmsClient::new(config(sb)).unwrap()
}

fn id_of(list: &[psa_operator::psa::Named], name: &str) -> String {
    list.iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
        .id
        .clone()
}

/// The demo's Contoso Ltd account.
async fn contoso(c: &BmsClient) -> Company {
    c.find_company_by_identifier("CONTOSO")
        .await
        .unwrap()
        .expect("Contoso Ltd in the demo tenant")
}

/// Ids of the demo tenant's ticket settings, resolved through the client.
struct Settings {
    queue: String,
    status_new: String,
    closed: String,
    alert: String,
    high: String,
    saas: String,
    issue: String,
    sub_iam: String,
}

async fn settings(c: &BmsClient) -> Settings {
    let issue_types = c.issue_types(None).await.unwrap();
    let issue = id_of(&issue_types, "SaaS Alerts");
    let subs = c.sub_issue_types(None, &issue).await.unwrap();
    let statuses = c.statuses(None).await.unwrap();
    Settings {
        queue: id_of(&c.boards().await.unwrap(), "Security Alerts"),
        status_new: statuses
            .iter()
            .find(|s| s.name == "New")
            .unwrap()
            .id
            .clone(),
        closed: statuses.iter().find(|s| s.closed).unwrap().id.clone(),
        alert: id_of(&c.ticket_types(None).await.unwrap(), "Alert"),
        high: id_of(&c.priorities().await.unwrap(), "High"),
        saas: id_of(&c.sources().await.unwrap(), "SaaS Alerts"),
        sub_iam: id_of(&subs, "IAM"),
        issue,
    }
}

#[tokio::test]
async fn companies_and_contacts_are_found_exactly() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    c.verify().await.unwrap();

    let contoso = c
        .find_company_by_identifier("contoso")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contoso.name, "Contoso Ltd");
    assert_eq!(contoso.identifier, "CONTOSO");
    assert!(contoso.active);
    assert!(
        contoso.location_id.is_some(),
        "main location from the summary"
    );
    // The PSA filter is "contains"; the client insists on the whole code.
    assert_eq!(c.find_company_by_identifier("CONT").await.unwrap(), None);

    let fabrikam = c
        .find_company_by_name("fabrikam  inc")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fabrikam.identifier, "FABRIKAM");
    assert_eq!(
        c.get_company(&fabrikam.id).await.unwrap(),
        Some(fabrikam.clone())
    );
    // An id must be a number: anything else is an error, not a missing company.
    assert!(c.get_company(&"CONTOSO".to_string()).await.is_err());

    let all = c.list_companies(&CompanyFilter::default()).await.unwrap();
    let names: Vec<&str> = all.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["Default Customer", "Contoso Ltd", "Fabrikam Inc"]);

    // The PSA filter is "contains"; the client insists on the whole address.
    assert_eq!(
        c.find_contact_by_email(ContactEmail::new(&contoso.id, "jane@contoso"))
            .await
            .unwrap(),
        None
    );
    let alert = c
        .find_contact_by_name(&fabrikam.id, "alert contact")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert.email.as_deref(), Some("alerts@fabrikam.example"));
    assert_eq!(
        c.find_contact_by_name(&fabrikam.id, "Jane Doe")
            .await
            .unwrap(),
        None
    );
    crate::bms_contract::assert_contract(&sb).await;
}

/// The batched directory listing ([S] item 1): the contacts of several accounts in one search
/// (`Filter.AccountIds` repeated, as the document's integer array), the point of contact kept;
/// the primary contact of one account by `Filter.IsPoc`. Both checked against Kaseya's document.
#[tokio::test]
async fn contacts_of_several_accounts_in_one_search_with_the_point_of_contact() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    c.verify().await.unwrap();
    let contoso = contoso(&c).await;
    let fabrikam = c
        .find_company_by_identifier("FABRIKAM")
        .await
        .unwrap()
        .unwrap();
    clear_calls(&sb).await;
    let listed = c
        .contacts_of_companies(&[contoso.id.clone(), fabrikam.id.clone()])
        .await
        .unwrap()
        .expect("BMS lists contacts of several accounts");
    assert_eq!(calls(&sb).await.total, 1, "one search for both accounts");
    let mut rows: Vec<(String, String, bool)> = listed
        .iter()
        .map(|d| {
            (
                d.contact.company_id.clone().unwrap(),
                d.emails.join(","),
                d.primary,
            )
        })
        .collect();
    rows.sort();
    let mut want = vec![
        (
            contoso.id.clone(),
            "alerts@contoso.example".to_string(),
            false,
        ),
        (
            contoso.id.clone(),
            "jane@contoso.example".to_string(),
            false,
        ),
        (
            fabrikam.id.clone(),
            "alerts@fabrikam.example".to_string(),
            true,
        ),
    ];
    want.sort();
    assert_eq!(rows, want);
    let poc = c
        .primary_contact(&fabrikam)
        .await
        .unwrap()
        .expect("a point of contact");
    assert_eq!(poc.full_name(), "Alert Contact");
    assert_eq!(c.primary_contact(&contoso).await.unwrap(), None);
    // One account is fewer than a page of the tenant's contracts: its own look-up answers.
    clear_calls(&sb).await;
    let one = c
        .contracts_of_companies(std::slice::from_ref(&contoso.id))
        .await
        .unwrap()
        .expect("BMS lists contracts of accounts");
    assert_eq!(
        one.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["Managed Security"]
    );
    let report = calls(&sb).await;
    assert_eq!(
        report.count("GET", "/v2/finance/contracts/lookup"),
        1,
        "{report:?}"
    );
    assert_eq!(report.count("GET", "/v2/finance/contracts/summary"), 0);
    crate::bms_contract::assert_contract(&sb).await;
}

/// The contracts of a wave of 250 accounts from the paged contract summary ([S] 22 item 1):
/// rows attached to accounts by their name, across three pages; an account whose name another
/// account shares is looked up on its own; an inactive contract is reported inactive. Checked
/// against Kaseya's document.
#[tokio::test]
async fn contracts_of_a_wave_come_from_the_paged_summary() {
    let mut seed = demo_seed();
    let account = |name: String, contract: &str, active: bool| {
        serde_json::from_value::<psa_operator::sandbox::bms::seed::SeedAccount>(serde_json::json!({
            "name": name, "code": name.replace(' ', ""), "locations": ["Main"],
            "contracts": [{"name": contract, "active": active}],
        }))
        .unwrap()
    };
    for i in 0..250 {
        seed.accounts
            .push(account(format!("Wave {i:03}"), "Managed Security", i != 7));
    }
    seed.accounts
        .push(account("Twin Corp".into(), "Twin Plan A", true));
    seed.accounts
        .push(account("twin  corp".into(), "Twin Plan B", true));
    let sb = sandbox(seed).await;
    let c = client(&sb);
    let accounts = c.list_companies(&CompanyFilter::default()).await.unwrap();
    let id = |name: &str| {
        accounts
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .id
            .clone()
    };
    let mut wanted: Vec<String> = (0..250).map(|i| id(&format!("Wave {i:03}"))).collect();
    wanted.push(id("Twin Corp"));
    clear_calls(&sb).await;
    let listed = c
        .contracts_of_companies(&wanted)
        .await
        .unwrap()
        .expect("BMS lists contracts of accounts");
    let of = |account: &str| -> Vec<(String, bool)> {
        listed
            .iter()
            .filter(|k| k.company_id == account)
            .map(|k| (k.name.clone(), k.active))
            .collect()
    };
    assert_eq!(listed.len(), 251, "{listed:?}");
    assert_eq!(of(&wanted[0]), [("Managed Security".to_string(), true)]);
    assert_eq!(of(&wanted[249]), [("Managed Security".to_string(), true)]);
    assert_eq!(of(&wanted[7]), [("Managed Security".to_string(), false)]);
    // Only its own contract, not the other Twin Corp's.
    assert_eq!(of(&id("Twin Corp")), [("Twin Plan A".to_string(), true)]);
    let report = calls(&sb).await;
    // 253 contracts of the wave and the demo's: three pages of 100; the twin looked up.
    assert_eq!(
        report.count("GET", "/v2/finance/contracts/summary"),
        3,
        "{report:?}"
    );
    assert_eq!(
        report.count("GET", "/v2/finance/contracts/lookup"),
        1,
        "{report:?}"
    );
    assert_eq!(
        report.count("GET", "/v2/crm/accounts/summary"),
        0,
        "{report:?}"
    );
    crate::bms_contract::assert_contract(&sb).await;
}

#[tokio::test]
async fn picklists_carry_the_demo_values() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    let names =
        |l: Vec<psa_operator::psa::Named>| l.into_iter().map(|n| n.name).collect::<Vec<_>>();
    assert_eq!(
        names(c.boards().await.unwrap()),
        ["Security Alerts", "Escalations"]
    );
    assert_eq!(
        names(c.ticket_types(None).await.unwrap()),
        ["Alert", "Incident"]
    );
    assert_eq!(names(c.sources().await.unwrap()), ["SaaS Alerts", "SIEM"]);
    assert_eq!(
        names(c.priorities().await.unwrap()),
        ["Critical", "High", "Medium", "Low"]
    );
    let issue_types = c.issue_types(None).await.unwrap();
    assert_eq!(names(issue_types.clone()), ["SaaS Alerts", "Security"]);
    let saas = id_of(&issue_types, "SaaS Alerts");
    assert_eq!(
        names(c.sub_issue_types(None, &saas).await.unwrap()),
        ["General", "Data Leakage", "IAM"]
    );
    let statuses: Vec<(String, bool)> = c
        .statuses(None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.closed))
        .collect();
    assert_eq!(
        statuses,
        [
            ("New".to_string(), false),
            ("In Progress".to_string(), false),
            ("Closed".to_string(), true),
            ("Completed".to_string(), true)
        ]
    );
    crate::bms_contract::assert_contract(&sb).await;
}

#[tokio::test]
async fn tickets_are_created_found_noted_and_closed() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    let s = settings(&c).await;
    let contoso = contoso(&c).await;
    let jane = c
        .find_contact_by_email(ContactEmail::new(&contoso.id, "jane@contoso.example"))
        .await
        .unwrap()
        .unwrap();
    let contract = managed_security(&c, &contoso).await;
    let new = NewTicket {
        marker: "evt-0001".into(),
        summary: "Multiple MFA Failures: jane@contoso.example".into(),
        description: "5 failed MFA prompts in 10 minutes".into(),
        company_id: contoso.id.clone(),
        contact_id: Some(jane.id.clone()),
        location_id: contoso.location_id.clone(),
        board_id: Some(s.queue.clone()),
        status_id: Some(s.status_new.clone()),
        type_id: Some(s.alert.clone()),
        issue_type_id: Some(s.issue.clone()),
        sub_issue_type_id: Some(s.sub_iam.clone()),
        priority_id: Some(s.high.clone()),
        source_id: Some(s.saas.clone()),
        contract_id: Some(contract.id.clone()),
    };
    let t = c.create_ticket(&new).await.unwrap();
    assert_eq!(t.summary, new.summary);
    assert_eq!(t.marker.as_deref(), Some("evt-0001"));
    assert!(!t.closed);

    let found = c.find_ticket_by_marker("evt-0001").await.unwrap().unwrap();
    assert_eq!(found.id, t.id);
    assert_eq!(c.find_ticket_by_marker("evt-000").await.unwrap(), None);

    // The ticket as BMS holds it: every id set, marker at the end of the details.
    let st = state(&sb).await;
    let row = &st["tickets"][0];
    assert_eq!(row["contactName"], "Jane Doe");
    assert_eq!(row["subIssueTypeName"], "IAM");
    assert_eq!(row["contractName"], "Managed Security");
    assert_eq!(row["queueName"], "Security Alerts");
    assert!(row["details"]
        .as_str()
        .unwrap()
        .ends_with("psa-operator-ref:evt-0001"));

    c.add_note(&t.id, "Too Many Uploads by jane").await.unwrap();
    c.close_ticket(CloseTicket::new(&t.id).note("False positive"))
        .await
        .unwrap();
    let closed = c.get_ticket(&t.id).await.unwrap().unwrap();
    assert!(closed.closed);
    let st = state(&sb).await;
    let notes: Vec<&str> = st["tickets"][0]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["details"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["Too Many Uploads by jane", "False positive"]);
    assert_eq!(st["tickets"][0]["statusName"], "Closed");

    // Without a location the account's main location is looked up.
    let second = NewTicket {
        marker: "evt-0002".into(),
        location_id: None,
        contact_id: None,
        contract_id: None,
        ..new.clone()
    };
    let t2 = c.create_ticket(&second).await.unwrap();
    let st = state(&sb).await;
    assert_eq!(st["tickets"][1]["id"].as_i64().unwrap().to_string(), t2.id);
    assert_eq!(
        st["tickets"][1]["locationId"]
            .as_i64()
            .map(|l| l.to_string()),
        contoso.location_id
    );
    // Closing with an explicit status.
    let statuses = c.statuses(None).await.unwrap();
    let completed = statuses.iter().find(|x| x.name == "Completed").unwrap();
    c.close_ticket(CloseTicket::new(&t2.id).status(&completed.id))
        .await
        .unwrap();
    assert_eq!(state(&sb).await["tickets"][1]["statusName"], "Completed");
    assert!(c.get_ticket(&t2.id).await.unwrap().unwrap().closed);
    crate::bms_contract::assert_contract(&sb).await;
}

#[tokio::test]
async fn catalog_services_and_contract_lines() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    let spec = CatalogServiceSpec {
        name: "SaaS Alerts Monitoring".into(),
        description: "Monitoring of SaaS tenants".into(),
        cost: 10_000,
        price: 30_000,
    };
    assert_eq!(c.find_catalog_service(&spec.name).await.unwrap(), None);
    let created = c.create_catalog_service(&spec).await.unwrap();
    assert_eq!((created.cost, created.price), (10_000, 30_000));
    // A second service with the same name is refused behind HTTP 200.
    let dup = c.create_catalog_service(&spec).await.unwrap_err();
    assert_eq!(dup.reason(), "PsaRejected", "{dup}");
    assert!(dup.to_string().contains("already exists"), "{dup}");

    let updated = c
        .update_catalog_service(
            &created.id,
            &CatalogServiceSpec {
                price: 32_500,
                ..spec.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.price, 32_500);
    assert_eq!(state(&sb).await["services"][0]["isActive"], true);

    let contoso = contoso(&c).await;
    let contract = managed_security(&c, &contoso).await;
    // BMS finds lines but cannot read their units: callers supply the units they remember.
    assert!(!c.lists_contract_lines());
    let v = LineValues {
        quantity: 42,
        cost: 15_000,
        price: 40_000,
    };
    let line = c
        .add_contract_line(LineKey::new(&contract.id, &created.id), v)
        .await
        .unwrap();
    assert_eq!((line.quantity, line.cost, line.price), (42, 15_000, 40_000));

    // Unchanged: one search, no write.
    clear_calls(&sb).await;
    match c.update_contract_line(&line, v).await.unwrap() {
        LineUpdate::Updated(l) => assert_eq!(l, line),
        other => panic!("nothing changed, got {other:?}"),
    }
    let report = calls(&sb).await;
    assert_eq!(report.total, 1, "{report:?}");

    // Price only: updated in place, same line.
    let dearer = LineValues { price: 45_000, ..v };
    match c.update_contract_line(&line, dearer).await.unwrap() {
        LineUpdate::Updated(l) => assert_eq!((l.id.as_str(), l.price), (line.id.as_str(), 45_000)),
        other => panic!("a price change is made in place, got {other:?}"),
    }

    // Units: a new line effective today, the old one ended (cost and price 0).
    let more = LineValues {
        quantity: 43,
        ..dearer
    };
    let LineUpdate::Replaced { line: new, note } =
        c.update_contract_line(&line, more).await.unwrap()
    else {
        panic!("BMS cannot change a line's units");
    };
    assert_ne!(new.id, line.id);
    assert_eq!(new.quantity, 43);
    assert!(note.contains(&format!("ended line {}", line.id)), "{note}");
    let st = state(&sb).await;
    let lines: Vec<(i64, f64)> = st["contracts"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["units"].as_f64().unwrap() as i64,
                l["unitPrice"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines, [(42, 0.0), (43, 4.5)], "one line bills");
    assert_eq!(
        c.find_contract_line(LineKey::new(&contract.id, &created.id))
            .await
            .unwrap()
            .map(|l| l.id),
        Some(new.id.clone())
    );
    // In use by a contract: BMS refuses the delete, and says why.
    let e = c.delete_catalog_service(&created.id).await.unwrap_err();
    assert!(e.to_string().contains("used by a contract"), "{e}");
    let spare = c
        .create_catalog_service(&CatalogServiceSpec {
            name: "Spare".into(),
            ..spec.clone()
        })
        .await
        .unwrap();
    c.delete_catalog_service(&spare.id).await.unwrap();
    assert_eq!(c.find_catalog_service("Spare").await.unwrap(), None);
    // Deleting again is not an error.
    c.delete_catalog_service(&spare.id).await.unwrap();
    crate::bms_contract::assert_contract(&sb).await;
}

#[tokio::test]
async fn failure_behind_http_200_is_a_permanent_error_with_the_psa_message() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    let contoso = contoso(&c).await;
    let bare = NewTicket {
        marker: "evt-x".into(),
        summary: "no settings".into(),
        description: "d".into(),
        company_id: contoso.id.clone(),
        location_id: contoso.location_id.clone(),
        ..NewTicket::default()
    };
    let e = c.create_ticket(&bare).await.unwrap_err();
    assert_eq!(
        crate::fixtures::kind_and_status(&e),
        ("PsaRejected", Some(200)),
        "{e:?}"
    );
    let text = e.to_string();
    for want in [
        "'StatusId' is required.",
        "'PriorityId' is required.",
        "'SourceId' is required.",
    ] {
        assert!(text.contains(want), "{text}");
    }
    assert!(state(&sb).await["tickets"].as_array().unwrap().is_empty());

    // Wrong password: an authentication error carrying BMS's words, never the password.
    let wrong = BmsClient::new(BmsConfig::new(
        sb.base_url(),
        "demo",
        "demo-api",
        "not-the-password",
    ))
    .unwrap();
    let e = wrong.verify().await.unwrap_err();
    assert_eq!(e.reason(), "AuthenticationFailed", "{e}");
    assert!(
        e.to_string()
            .contains("Invalid username, password or tenant"),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    assert!(!format!("{e:?}").contains("not-the-password"));
}

#[tokio::test]
async fn an_expired_token_costs_one_login_and_one_repeat() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    c.verify().await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/tokens/expire", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    c.verify().await.unwrap();
    let report = calls(&sb).await;
    assert_eq!(report.count("POST", "/v2/security/authenticate"), 2);
    // First call, the call refused with 401, its repeat.
    assert_eq!(report.count("GET", "/v2/security/userinfo"), 3);
    assert_eq!(report.count("POST", "/v2/security/refreshtoken"), 0);
    crate::bms_contract::assert_contract(&sb).await;
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_use() {
    let mut seed = demo_seed();
    // Shorter than the client's one-minute margin: every later call finds it about to expire.
    seed.settings.access_token_seconds = 30;
    let sb = sandbox(seed).await;
    let c = client(&sb);
    c.verify().await.unwrap();
    c.verify().await.unwrap();
    c.verify().await.unwrap();
    let report = calls(&sb).await;
    assert_eq!(report.count("POST", "/v2/security/authenticate"), 1);
    assert_eq!(report.count("POST", "/v2/security/refreshtoken"), 2);
    assert_eq!(
        report.count("GET", "/v2/security/userinfo"),
        3,
        "no call met a 401"
    );
    crate::bms_contract::assert_contract(&sb).await;
}

#[tokio::test]
async fn a_429_is_transient_with_retry_after() {
    let mut seed = demo_seed();
    seed.settings.calls_per_hour_per_endpoint = 2;
    let sb = sandbox(seed).await;
    let c = client(&sb);
    c.boards().await.unwrap();
    c.boards().await.unwrap();
    let e = c.boards().await.unwrap_err();
    assert_eq!(
        crate::fixtures::kind_and_status(&e),
        ("PsaUnavailable", Some(429)),
        "{e:?}"
    );
    let wait = e.retry_after().expect("Retry-After is passed on");
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(3600),
        "{wait:?}"
    );
    assert!(e.to_string().contains("quota exceeded"), "{e}");
    // Per endpoint: another picklist still answers.
    c.priorities().await.unwrap();
    // The shared admin layer's rate-limit fault: `providers::the_admin_layers_faults_are_transient_errors`.
}

#[tokio::test]
async fn the_client_keeps_within_its_per_endpoint_budget() {
    let sb = sandbox(demo_seed()).await;
    let mut cfg = config(&sb);
    cfg.budget = RateBudget {
        calls_per_hour: 3,
        burst: 3,
        max_wait: Duration::ZERO,
    };
    let c = BmsClient::new(cfg).unwrap();
    for _ in 0..3 {
        c.boards().await.unwrap();
    }
    let e = c.boards().await.unwrap_err();
    assert!(
        matches!(e, PsaError::Transient { status: None, .. }),
        "{e:?}"
    );
    assert!(e.retry_after().unwrap() > Duration::from_secs(60));
    assert!(e.to_string().contains("/v2/system/queues/lookup"), "{e}");
    c.priorities().await.unwrap();
    let report = calls(&sb).await;
    assert_eq!(
        report.count("GET", "/v2/system/queues/lookup"),
        3,
        "the 4th never left"
    );
    assert_eq!(report.count("GET", "/v2/system/priorities/lookup"), 1);
    crate::bms_contract::assert_contract(&sb).await;
}

/// The figures in the provider docs: what one ticket and one note cost on BMS.
#[tokio::test]
async fn calls_per_ticket_and_note() {
    let sb = sandbox(demo_seed()).await;
    let c = client(&sb);
    // The connection reconciler verifies a client before the dispatcher uses it; that call also
    // reads the tenant's time zone for the dates the client writes.
    c.verify().await.unwrap();
    let s = settings(&c).await;
    let contoso = contoso(&c).await;
    let new = NewTicket {
        marker: "evt-count".into(),
        summary: "Too Many Downloads".into(),
        description: "d".into(),
        company_id: contoso.id.clone(),
        location_id: contoso.location_id.clone(),
        board_id: Some(s.queue),
        status_id: Some(s.status_new),
        type_id: Some(s.alert),
        priority_id: Some(s.high),
        source_id: Some(s.saas),
        ..NewTicket::default()
    };
    clear_calls(&sb).await;
    let t = c.create_ticket(&new).await.unwrap();
    let report = calls(&sb).await;
    assert_eq!(report.total, 1, "{report:?}");
    assert_eq!(report.count("POST", "/v2/servicedesk/tickets"), 1);

    clear_calls(&sb).await;
    c.add_note(&t.id, "first note").await.unwrap();
    let report = calls(&sb).await;
    assert_eq!(
        report.total, 2,
        "first note also reads the note types: {report:?}"
    );
    assert_eq!(report.count("GET", "/v2/system/tenantlookup/{table}"), 1);

    clear_calls(&sb).await;
    c.add_note(&t.id, "second note").await.unwrap();
    let report = calls(&sb).await;
    assert_eq!(report.total, 1, "{report:?}");
    assert_eq!(
        report.count("POST", "/v2/servicedesk/tickets/{id}/notes"),
        1
    );

    clear_calls(&sb).await;
    let no_location = NewTicket {
        marker: "evt-count-2".into(),
        location_id: None,
        ..new
    };
    c.create_ticket(&no_location).await.unwrap();
    assert_eq!(calls(&sb).await.total, 2, "location lookup + create");
    clear_calls(&sb).await;
    c.get_ticket(&t.id).await.unwrap();
    c.find_ticket_by_marker("evt-count").await.unwrap();
    c.close_ticket(CloseTicket::new(&t.id).status(&s.closed))
        .await
        .unwrap();
    assert_eq!(
        calls(&sb).await.total,
        3,
        "get, find by marker, close with the resolved closed status: one each"
    );
    // Without a closed status from the settings the client reads the statuses once: BMS would
    // take a missing StatusId as 0.
    clear_calls(&sb).await;
    c.close_ticket(CloseTicket::new(&t.id)).await.unwrap();
    c.close_ticket(CloseTicket::new(&t.id)).await.unwrap();
    let report = calls(&sb).await;
    assert_eq!(
        report.count("GET", "/v2/system/statuses/lookup"),
        1,
        "{report:?}"
    );
    assert_eq!(
        report.count("POST", "/v2/servicedesk/tickets/{id}/resolve"),
        2
    );
    crate::bms_contract::assert_contract(&sb).await;
}

#[tokio::test]
async fn the_sandbox_speaks_the_bms_wire_format() {
    let sb = sandbox(demo_seed()).await;
    let http = reqwest::Client::new();
    let base = sb.base_url();
    let r = http
        .get(format!("{base}/v2/system/queues/lookup"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));

    let login: Value = crate::support::send_for_json(
        http.post(format!("{base}/v2/security/authenticate"))
            .form(&[
                ("grantType", "password"),
                ("userName", "demo-api"),
                ("password", "demo-password"),
                ("tenant", "demo"),
            ]),
    )
    .await;
    assert_eq!(login["success"], true);
    let token = login["result"]["accessToken"].as_str().unwrap().to_string();
    assert!(login["result"]["accessTokenExpireOn"].is_string());

    let page: Value = crate::support::send_for_json(
        http.get(format!(
            "{base}/v2/crm/accounts/summary?PageSize=2&PageNumber=2"
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(page["totalRecords"], 3);
    assert_eq!(page["result"].as_array().unwrap().len(), 1);
    assert_eq!(page["result"][0]["accountName"], "Fabrikam Inc");
    assert_eq!(page["result"][0]["locations"][0]["isMain"], true);

    // A technician's tool searching tickets with a body, as the document describes.
    let found: Value = crate::support::send_for_json(
        http.post(format!("{base}/v2/servicedesk/tickets/search"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "PageSize": 10, "PageNumber": 1,
                "Filter": {"AccountCode": "CONTOSO", "ExcludeCompleted": 1}
            })),
    )
    .await;
    assert_eq!(found["success"], true, "{found}");
    assert_eq!(found["totalRecords"], 0, "no tickets yet: {found}");
    // A path BMS does not have: 404 with an empty body, as ASP.NET answers.
    let r = http
        .get(format!("{base}/v2/servicedesk/tickets/1/nothing-here"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().is_empty());

    // A body the binder cannot read: 400 problem details, not the envelope.
    let r = http
        .post(format!("{base}/v2/servicedesk/tickets"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"Title": "t", "AccountId": "five"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let problem: Value = r.json().await.unwrap();
    assert!(problem["errors"]["$.AccountId"].is_array(), "{problem}");
}

/// `psa-operator sandbox --flavor bms` with a seed file: first stdout line is the address, and the
/// real BMS paths answer with the seed's tenant.
#[tokio::test]
async fn the_binary_serves_a_seed_file_on_the_bms_paths() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("acme.yaml");
    std::fs::write(
        &seed,
        "tenant: Acme MSP\nusers: [{userName: api, password: pw}]\n\
         accounts: [{name: Northwind, code: NW, contacts: [{firstName: Ann, lastName: Lee, email: ann@nw.example}]}]\n\
         queues: [Triage]\n",
    )
    .unwrap();
    let mut args: Vec<std::ffi::OsString> = [
        "--flavor",
        "bms",
        "--addr",
        "127.0.0.1:0",
        "--latency-ms",
        "1",
        "--seed",
    ]
    .map(Into::into)
    .into();
    args.push(seed.into());
    let (_child, url) = crate::support::sandbox_process(args).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let c = BmsClient::new(BmsConfig::new(&url, "acme msp", "api", "pw")).unwrap();
    let nw = c.find_company_by_identifier("NW").await.unwrap().unwrap();
    assert_eq!(nw.name, "Northwind");
    let ann = c
        .find_contact_by_email(ContactEmail::new(&nw.id, "ann@nw.example"))
        .await
        .unwrap();
    assert_eq!(ann.map(|a| a.full_name()).as_deref(), Some("Ann Lee"));
    let queues = crate::fixtures::board_names(&c).await;
    assert_eq!(queues, ["Triage"]);
    let e = BmsClient::new(BmsConfig::new(&url, "demo", "demo-api", "demo-password"))
        .unwrap()
        .verify()
        .await
        .unwrap_err();
    assert_eq!(
        e.reason(),
        "AuthenticationFailed",
        "the seed replaced the demo tenant"
    );
}

/// A stand-in BMS answering with payloads written from Kaseya's documented shapes (Swagger
/// PascalCase, a bare DTO, a login as third-party clients see it, a refusal behind HTTP 200 and an
/// empty 401), so the client is not only ever tested against our own emulator's spelling.
async fn documented_bms() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/bms/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let json = |body: String| ([("content-type", "application/json")], body);
    let logins = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = logins.clone();
    let (login, queues, account, refused) = (
        fixture("login.json"),
        fixture("queues-pascal.json"),
        fixture("account-summary-bare.json"),
        fixture("ticket-create-refused.json"),
    );
    let app = axum::Router::new()
        .route(
            "/v2/security/authenticate",
            post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = login.clone();
                async move { json(body) }
            }),
        )
        .route(
            "/v2/system/queues/lookup",
            get(move || async move { json(queues) }),
        )
        .route(
            "/v2/security/userinfo",
            get(move || async move {
                json(r#"{"Success":true,"Result":{"UserId":7,"TimeZoneValue":-5.0,"TimeZoneName":"Eastern Standard Time"}}"#.to_string())
            }),
        )
        .route(
            "/v2/crm/accounts/summary/{id}",
            get(move || async move { json(account) }),
        )
        .route(
            "/v2/servicedesk/tickets",
            post(move || async move { json(refused) }),
        )
        .route(
            "/v2/servicedesk/tickets/{id}",
            get(|| async { StatusCode::UNAUTHORIZED }),
        );
    let url = crate::support::serve(app).await;
    (url, logins)
}

#[tokio::test]
async fn the_client_reads_the_documented_payloads() {
    use std::sync::atomic::Ordering;
    let (url, logins) = documented_bms().await;
    let c = BmsClient::new(BmsConfig::new(&url, "Acme MSP", "api", "pw")).unwrap();

    // PascalCase envelope; inactive queues left out.
    let queues = crate::fixtures::board_names(&c).await;
    assert_eq!(queues, ["Security Alerts"]);
    // The login's expiry lies in the past: the client does not trust it, and does not log in
    // again for every call either.
    assert_eq!(logins.load(Ordering::SeqCst), 1);

    // The bare DTO of `accounts/summary/{id}`, main location picked.
    let contoso = c.get_company(&"12".to_string()).await.unwrap().unwrap();
    assert_eq!(contoso.identifier, "CONTOSO");
    assert_eq!(contoso.location_id.as_deref(), Some("41"));
    assert_eq!(contoso.company_type.as_deref(), Some("Customer"));

    // A refusal behind HTTP 200 with Swagger's error shape.
    let e = c
        .create_ticket(&NewTicket {
            marker: "m".into(),
            summary: "s".into(),
            company_id: "12".into(),
            location_id: Some("41".into()),
            ..NewTicket::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "PSA rejected the request (HTTP 200): Ticket could not be saved. Location is required for the account. (LocationId)"
    );

    // A 401 that a fresh login does not cure: one re-login, then an authentication error.
    let before = logins.load(Ordering::SeqCst);
    let e = c.get_ticket(&"5".to_string()).await.unwrap_err();
    assert_eq!(e.reason(), "AuthenticationFailed", "{e}");
    assert_eq!(logins.load(Ordering::SeqCst), before + 1);
}

/// The tenant lookup table names are Kaseya's to publish and are not: a table the tenant does
/// not know is reported as `LookupUnavailable` naming it, and the names can be configured.
#[tokio::test]
async fn an_unknown_lookup_table_is_named_in_the_error() {
    let sb = sandbox(demo_seed()).await;
    let mut cfg = config(&sb);
    cfg.lookup_tables.ticket_type = "IncidentKind".into();
    let c = BmsClient::new(cfg).unwrap();
    let e = c.ticket_types(None).await.unwrap_err();
    assert_eq!(e.reason(), "LookupUnavailable", "{e}");
    assert!(e.to_string().contains("\"IncidentKind\""), "{e}");
    assert!(e.to_string().contains("lookupTables"), "{e}");
    assert!(!e.is_transient());
    // Sources still come from their (default) table.
    assert!(!c.sources().await.unwrap().is_empty());
    crate::bms_contract::assert_contract(&sb).await;
}
