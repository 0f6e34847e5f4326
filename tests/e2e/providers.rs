//! The provider-neutral contract suite: one set of checks on `Arc<dyn Psa>`, run against the
//! ConnectWise, Kaseya BMS and Autotask clients each on its sandbox, all seeded with
//! the same demo organisations. What a reconciler or the dispatcher relies on must hold for each;
//! every check runs once per provider from the table below.

use std::sync::Arc;

use psa_operator::psa::autotask::{AutotaskClient, AutotaskConfig};
use psa_operator::psa::bms::{BmsClient, BmsConfig};
use psa_operator::psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
use psa_operator::psa::{CatalogServiceSpec, LineValues, Named, NewTicket, Psa, PsaId, StatusInfo};
use psa_operator::sandbox::connectwise::{
    DEMO_CLIENT_ID, DEMO_COMPANY_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
};
use psa_operator::sandbox::{Faults, RunningSandbox};
use psa_operator::secret::SecretString;
use tokio::net::TcpListener;

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Each PSA's client on its own sandbox with the demo data (kept alive next to the client).
async fn connectwise() -> (RunningSandbox, Arc<dyn Psa>) {
    let cw = psa_operator::sandbox::connectwise::start(
        listener().await,
        psa_operator::sandbox::connectwise::demo_seed(),
        Faults::default(),
    )
    .await
    .unwrap();
    let cw_client = ConnectWiseClient::new(ConnectWiseConfig::new(
        cw.base_url(),
        DEMO_COMPANY_ID,
        DEMO_CLIENT_ID,
        SecretString::new(DEMO_PUBLIC_KEY),
        SecretString::new(DEMO_PRIVATE_KEY),
    ))
    .unwrap();
    (cw, Arc::new(cw_client))
}

async fn bms() -> (RunningSandbox, Arc<dyn Psa>) {
    let bms = psa_operator::sandbox::bms::start(
        listener().await,
        psa_operator::sandbox::bms::demo_seed(),
        Faults::default(),
    )
    .await
    .unwrap();
    let bms_client = BmsClient::new(BmsConfig::new(
        bms.base_url(),
        "demo",
        "demo-api",
        "demo-password",
    ))
    .unwrap();
    (bms, Arc::new(bms_client))
}

async fn autotask() -> (RunningSandbox, Arc<dyn Psa>) {
    let at = psa_operator::sandbox::autotask::start(
        listener().await,
        psa_operator::sandbox::autotask::demo_seed(),
        Faults::default(),
    )
    .await
    .unwrap();
    let at_client = AutotaskClient::new(AutotaskConfig::new(
        Some(format!("{}/atservicesrest/", at.base_url())),
        psa_operator::sandbox::autotask::DEMO_USERNAME,
        psa_operator::sandbox::autotask::DEMO_SECRET,
        psa_operator::sandbox::autotask::DEMO_INTEGRATION_CODE,
    ))
    .unwrap();
    (at, Arc::new(at_client))
}

/// Every check below runs once per provider of this table, as a test of its own
/// (`providers::<check>::<provider>`), so the providers run in parallel.
macro_rules! on_every_provider {
    ($($check:ident),+ $(,)?) => {$(
        mod $check {
            on_every_provider!(@providers $check: connectwise, bms, autotask);
        }
    )+};
    (@providers $check:ident: $($provider:ident),+) => {$(
        #[tokio::test]
        async fn $provider() {
            let (_sandbox, psa) = super::$provider().await;
            super::$check(psa.as_ref()).await;
        }
    )+};
}

on_every_provider!(
    companies_contacts_and_contracts_resolve_the_same,
    a_ticket_lives_the_same_life,
    catalog_services_and_contract_lines_behave_alike,
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

async fn companies_contacts_and_contracts_resolve_the_same(psa: &dyn Psa) {
    let who = psa.provider().as_str();
    psa.verify().await.unwrap();
    let contoso = psa
        .find_company_by_identifier("CONTOSO")
        .await
        .unwrap()
        .expect(who);
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
        .find_contact_by_email(&contoso.id, "Jane@Contoso.example")
        .await
        .unwrap()
        .expect(who);
    assert_eq!(jane.full_name(), "Jane Doe", "{who}");
    assert_eq!(
        psa.find_contact_by_email(&fabrikam.id, "jane@contoso.example")
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
        psa.find_contract(&fabrikam.id, "Managed Security")
            .await
            .unwrap(),
        None,
        "{who}"
    );
}

async fn a_ticket_lives_the_same_life(psa: &dyn Psa) {
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
    let contoso = psa
        .find_company_by_identifier("CONTOSO")
        .await
        .unwrap()
        .expect(who);
    let jane = psa
        .find_contact_by_email(&contoso.id, "jane@contoso.example")
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

    psa.add_note(&t.id, "Too Many Uploads: jane@contoso.example")
        .await
        .unwrap();
    assert!(
        !psa.get_ticket(&t.id).await.unwrap().expect(who).closed,
        "{who}"
    );
    psa.close_ticket(&t.id, None, Some("closed by the provider suite"))
        .await
        .unwrap();
    assert!(
        psa.get_ticket(&t.id).await.unwrap().expect(who).closed,
        "{who}"
    );
}

async fn catalog_services_and_contract_lines_behave_alike(psa: &dyn Psa) {
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

    let contoso = psa
        .find_company_by_identifier("CONTOSO")
        .await
        .unwrap()
        .expect(who);
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
    let line = psa
        .add_contract_line(&contract.id, &created.id, v)
        .await
        .unwrap();
    assert_eq!(line.quantity, 5, "{who}");
    let seen = psa
        .find_contract_line(&contract.id, &created.id)
        .await
        .unwrap()
        .expect(who);
    assert_eq!(seen.quantity, 5, "{who}");
    let update = psa
        .update_contract_line(&seen, LineValues { quantity: 6, ..v })
        .await
        .unwrap();
    assert_eq!(update.line().quantity, 6, "{who}");
    let after = psa
        .find_contract_line(&contract.id, &created.id)
        .await
        .unwrap()
        .expect(who);
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
