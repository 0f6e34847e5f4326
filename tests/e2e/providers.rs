//! The provider-neutral contract suite: one set of checks on `Arc<dyn Psa>`, run against the
//! ConnectWise, Kaseya BMS and Autotask clients each on its sandbox, all seeded with
//! the same demo organisations. What a reconciler or the dispatcher relies on must hold for each;
//! every check runs once per provider from the table below.

use std::sync::Arc;

use psa_operator::psa::autotask::AutotaskClient;
use psa_operator::psa::bms::BmsClient;
use psa_operator::psa::connectwise::ConnectWiseClient;
use psa_operator::psa::{
    CatalogServiceSpec, CloseTicket, Company, CompanyFilter, ContactEmail, LineKey, LineValues,
    Named, NewTicket, Psa, PsaId, StatusInfo,
};
use psa_operator::sandbox::RunningSandbox;
use serde_json::json;

use crate::fixtures::demo;
use crate::sandbox_admin::set_faults;

/// Each PSA's client on its own sandbox with the demo data (kept alive next to the client).
async fn connectwise() -> (RunningSandbox, Arc<dyn Psa>) {
    let sb = demo::connectwise_sandbox().await;
    let client = ConnectWiseClient::new(demo::connectwise_config(&sb.base_url())).unwrap();
    (sb, Arc::new(client))
}

async fn bms() -> (RunningSandbox, Arc<dyn Psa>) {
    let sb = demo::bms_sandbox().await;
    let client = BmsClient::new(demo::bms_config(&sb)).unwrap();
    (sb, Arc::new(client))
}

async fn autotask() -> (RunningSandbox, Arc<dyn Psa>) {
    let sb = demo::autotask_sandbox().await;
    let client = AutotaskClient::new(demo::autotask_config(&sb)).unwrap();
    (sb, Arc::new(client))
}

/// Every check below runs once per provider of this table, as a test of its own
/// (`providers::<check>::<provider>`), so the providers run in parallel. A check gets the
/// provider's sandbox (for its `/_sandbox/` admin layer) and its client.
macro_rules! on_every_provider {
    ($($check:ident),+ $(,)?) => {$(
        mod $check {
            on_every_provider!(@providers $check: connectwise, bms, autotask);
        }
    )+};
    (@providers $check:ident: $($provider:ident),+) => {$(
        #[tokio::test]
        async fn $provider() {
            let (sandbox, psa) = super::$provider().await;
            super::$check(&sandbox, psa.as_ref()).await;
        }
    )+};
}

on_every_provider!(
    companies_contacts_and_contracts_resolve_the_same,
    a_ticket_lives_the_same_life,
    catalog_services_and_contract_lines_behave_alike,
    the_admin_layers_faults_are_transient_errors,
);

fn named(list: &[Named], name: &str, who: &str) -> PsaId {
    list.iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{who}: {name:?} not in {list:?}"))
        .id
        .clone()
}

fn status(list: &[StatusInfo], name: &str, who: &str) -> StatusInfo {
    list.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{who}: status {name:?} not in {list:?}"))
        .clone()
}

/// The demo data's Contoso, found by its identifier (every provider's seed has it).
async fn contoso_of(psa: &dyn Psa, who: &str) -> Company {
    psa.find_company_by_identifier("CONTOSO")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{who}: no CONTOSO"))
}

async fn companies_contacts_and_contracts_resolve_the_same(_: &RunningSandbox, psa: &dyn Psa) {
    let who = psa.provider().as_str();
    psa.verify().await.unwrap();
    let contoso = contoso_of(psa, who).await;
    assert_eq!(contoso.name, "Contoso Ltd", "{who}");
    assert!(contoso.active, "{who}");
    assert_eq!(
        psa.get_company(&contoso.id).await.unwrap().map(|c| c.name),
        Some("Contoso Ltd".into()),
        "{who}"
    );
    assert_eq!(
        psa.find_company_by_identifier("CONTOS").await.unwrap(),
        None,
        "{who}"
    );
    assert_eq!(
        psa.find_company_by_name("contoso ltd")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(contoso.id.clone()),
        "{who}: company names match whatever their case"
    );
    assert_eq!(
        psa.get_company(&"999999".to_string()).await.unwrap(),
        None,
        "{who}: an unknown id is no company, not an error"
    );
    let vendors = CompanyFilter {
        company_type: Some("Vendor".into()),
        parent_only: false,
    };
    assert!(
        psa.list_companies(&vendors).await.unwrap().is_empty(),
        "{who}: the demo data has no vendors"
    );
    let fabrikam = psa
        .find_company_by_name("Fabrikam Inc")
        .await
        .unwrap()
        .expect(who);
    assert_eq!(fabrikam.identifier, "FABRIKAM", "{who}");
    assert_eq!(
        psa.find_company_by_name("Fabrikam").await.unwrap(),
        None,
        "{who}"
    );

    let jane = psa
        .find_contact_by_email(ContactEmail::new(&contoso.id, "JANE@Contoso.example"))
        .await
        .unwrap()
        .expect(who);
    assert_eq!(jane.full_name(), "Jane Doe", "{who}");
    assert_eq!(jane.email.as_deref(), Some("jane@contoso.example"), "{who}");
    assert_eq!(
        jane.company_id.as_deref(),
        Some(contoso.id.as_str()),
        "{who}"
    );
    assert_eq!(
        psa.find_contact_by_email(ContactEmail::new(&fabrikam.id, "jane@contoso.example"))
            .await
            .unwrap(),
        None,
        "{who}: contacts are looked up within the company"
    );
    let alert = psa
        .find_contact_by_name(&fabrikam.id, "Alert Contact")
        .await
        .unwrap()
        .expect(who);
    assert_eq!(
        alert.email.as_deref(),
        Some("alerts@fabrikam.example"),
        "{who}"
    );

    let contract = psa
        .find_contract(&contoso.id, "Managed Security")
        .await
        .unwrap()
        .expect(who);
    assert!(contract.active, "{who}");
    assert_eq!(
        psa.find_contract(&contoso.id, "Nope").await.unwrap(),
        None,
        "{who}"
    );
    assert_eq!(
        psa.find_contract(&fabrikam.id, "Managed Security")
            .await
            .unwrap(),
        None,
        "{who}"
    );
}

async fn a_ticket_lives_the_same_life(_: &RunningSandbox, psa: &dyn Psa) {
    let who = psa.provider().as_str();
    let board = named(&psa.boards().await.unwrap(), "Security Alerts", who);
    let statuses = psa.statuses(Some(&board)).await.unwrap();
    let new = status(&statuses, "New", who);
    assert!(!new.closed, "{who}");
    // Autotask's closed status is its system status "Complete" (5).
    let closed = if who == "Autotask" {
        "Complete"
    } else {
        "Completed"
    };
    assert!(status(&statuses, closed, who).closed, "{who}");
    let alert = named(&psa.ticket_types(Some(&board)).await.unwrap(), "Alert", who);
    let source = named(&psa.sources().await.unwrap(), "SaaS Alerts", who);
    let priority = psa.priorities().await.unwrap()[1].id.clone();
    let contoso = contoso_of(psa, who).await;
    let jane = psa
        .find_contact_by_email(ContactEmail::new(&contoso.id, "jane@contoso.example"))
        .await
        .unwrap()
        .expect(who);

    let marker = format!("suite-{who}-1");
    assert_eq!(
        psa.find_ticket_by_marker(&marker).await.unwrap(),
        None,
        "{who}"
    );
    let t = psa
        .create_ticket(&NewTicket {
            marker: marker.clone(),
            summary: "Too Many Downloads: jane@contoso.example".into(),
            description: "jane downloaded 900 files in 5 minutes".into(),
            company_id: contoso.id.clone(),
            contact_id: Some(jane.id.clone()),
            location_id: contoso.location_id.clone(),
            board_id: Some(board.clone()),
            status_id: Some(new.id.clone()),
            type_id: Some(alert.clone()),
            priority_id: Some(priority.clone()),
            source_id: Some(source.clone()),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    assert_eq!(t.marker.as_deref(), Some(marker.as_str()), "{who}");
    assert_eq!(t.company_id.as_deref(), Some(contoso.id.as_str()), "{who}");
    assert!(!t.closed, "{who}");
    let again = psa
        .find_ticket_by_marker(&marker)
        .await
        .unwrap()
        .expect(who);
    assert_eq!(again.id, t.id, "{who}");
    assert_eq!(
        again.company_id.as_deref(),
        Some(contoso.id.as_str()),
        "{who}"
    );

    let note = psa
        .add_note(&t.id, "Too Many Uploads: jane@contoso.example")
        .await
        .unwrap();
    assert!(!note.is_empty(), "{who}: a note has an id");
    assert!(
        !psa.get_ticket(&t.id).await.unwrap().expect(who).closed,
        "{who}"
    );
    psa.close_ticket(CloseTicket::new(&t.id).note("closed by the provider suite"))
        .await
        .unwrap();
    assert!(
        psa.get_ticket(&t.id).await.unwrap().expect(who).closed,
        "{who}"
    );
    assert_eq!(
        psa.get_ticket(&"999999".to_string()).await.unwrap(),
        None,
        "{who}: an unknown id is no ticket, not an error"
    );
}

async fn catalog_services_and_contract_lines_behave_alike(_: &RunningSandbox, psa: &dyn Psa) {
    let who = psa.provider().as_str();
    let spec = CatalogServiceSpec {
        name: "Provider Suite Service".into(),
        description: "made by the provider suite".into(),
        cost: 12_500,
        price: 30_000,
    };
    assert_eq!(
        psa.find_catalog_service(&spec.name).await.unwrap(),
        None,
        "{who}"
    );
    let created = psa.create_catalog_service(&spec).await.unwrap();
    let found = psa
        .find_catalog_service(&spec.name)
        .await
        .unwrap()
        .expect(who);
    assert_eq!(
        (found.id.as_str(), found.cost, found.price),
        (created.id.as_str(), 12_500, 30_000),
        "{who}"
    );
    assert_eq!(
        psa.find_catalog_service("provider suite service")
            .await
            .unwrap(),
        Some(created.clone()),
        "{who}: service names match whatever their case, and read back as created"
    );
    let dearer = CatalogServiceSpec {
        price: 35_000,
        ..spec.clone()
    };
    assert_eq!(
        psa.update_catalog_service(&created.id, &dearer)
            .await
            .unwrap()
            .price,
        35_000,
        "{who}"
    );
    assert_eq!(
        psa.find_catalog_service(&spec.name)
            .await
            .unwrap()
            .expect(who)
            .price,
        35_000,
        "{who}"
    );

    let contoso = contoso_of(psa, who).await;
    let contract = psa
        .find_contract(&contoso.id, "Managed Security")
        .await
        .unwrap()
        .expect(who);
    let v = LineValues {
        quantity: 5,
        cost: 12_500,
        price: 35_000,
    };
    let key = LineKey::new(&contract.id, &created.id);
    assert_eq!(
        psa.find_contract_line(key).await.unwrap(),
        None,
        "{who}: no line before one is added"
    );
    let line = psa.add_contract_line(key, v).await.unwrap();
    assert_eq!(
        (line.quantity, line.contract_id.as_str()),
        (5, contract.id.as_str()),
        "{who}"
    );
    let seen = psa.find_contract_line(key).await.unwrap().expect(who);
    assert_eq!(seen, line, "{who}: the line reads back as added");
    let update = psa
        .update_contract_line(&seen, LineValues { quantity: 6, ..v })
        .await
        .unwrap();
    assert_eq!(update.line().quantity, 6, "{who}");
    let after = psa.find_contract_line(key).await.unwrap().expect(who);
    assert_eq!(after.quantity, 6, "{who}");

    let spare = psa
        .create_catalog_service(&CatalogServiceSpec {
            name: "Provider Suite Spare".into(),
            ..spec.clone()
        })
        .await
        .unwrap();
    psa.delete_catalog_service(&spare.id).await.unwrap();
    assert_eq!(
        psa.find_catalog_service("Provider Suite Spare")
            .await
            .unwrap(),
        None,
        "{who}"
    );
}

/// The shared `/_sandbox/` admin layer's faults reach every client as transient errors (the
/// dispatcher retries them): an outage is a 503; over the rate limit, a 429 with the time to
/// wait from `Retry-After`.
async fn the_admin_layers_faults_are_transient_errors(sb: &RunningSandbox, psa: &dyn Psa) {
    let who = psa.provider().as_str();
    psa.verify().await.unwrap();
    let contoso = contoso_of(psa, who).await;

    set_faults(sb, json!({"outage": true})).await;
    let e = psa.verify().await.unwrap_err();
    assert_eq!(
        crate::fixtures::kind_and_status(&e),
        ("PsaUnavailable", Some(503)),
        "{who}: {e:?}"
    );

    set_faults(sb, json!({"rateLimitPerMinute": 1})).await;
    psa.get_company(&contoso.id).await.unwrap();
    let e = psa.get_company(&contoso.id).await.unwrap_err();
    assert!(e.is_transient(), "{who}: {e}");
    assert!(
        e.retry_after().is_some(),
        "{who}: Retry-After is passed on: {e:?}"
    );
}
