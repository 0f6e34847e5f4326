//! The dispatcher against the ConnectWise sandbox: the real client, the sandbox's REST shape,
//! and a technician acting through the PSA's own API.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use psa_operator::api::{EventField, Grouping};
use psa_operator::psa::connectwise::ConnectWiseClient;
use psa_operator::psa::{Billing, Directory, TicketDesk};
use psa_operator::psa::{ContactEmail, Psa};
use psa_operator::resolved::*;
use psa_operator::sandbox::connectwise::{
    DEMO_CLIENT_ID, DEMO_COMPANY_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
};
use psa_operator::sandbox::RunningSandbox;
use serde_json::{json, Value};

use super::harness::{snapshot, ORG};
use crate::fixtures::demo;

const API: &str = "/v4_6_release/apis/3.0";

/// PSA ids of the demo data the tests use.
pub struct Ids {
    pub contoso: String,
    pub jane: String,
    pub alert_contact: String,
    pub default_customer: String,
    pub default_contact: String,
    pub agreement: String,
    pub board: String,
    pub closed_status: String,
    pub priorities: HashMap<String, String>,
    pub source: String,
}

pub struct Cw {
    pub sb: RunningSandbox,
    pub client: Arc<ConnectWiseClient>,
    pub ids: Ids,
    http: reqwest::Client,
}

impl Cw {
    pub async fn start() -> Cw {
        let sb = demo::connectwise_sandbox().await;
        let client =
            Arc::new(ConnectWiseClient::new(demo::connectwise_config(&sb.base_url())).unwrap());
        // The ids a reconciler would resolve, looked up through the client.
        let c = client.as_ref();
        let contoso = c
            .find_company_by_identifier("CONTOSO")
            .await
            .unwrap()
            .unwrap()
            .id;
        let default_customer = c
            .find_company_by_identifier("DefaultCustomer")
            .await
            .unwrap()
            .unwrap()
            .id;
        let email = |company: String, e: &'static str| async move {
            c.find_contact_by_email(ContactEmail::new(&company, e))
                .await
                .unwrap()
                .unwrap()
                .id
        };
        let jane = email(contoso.clone(), "jane@contoso.example").await;
        let alert_contact = email(contoso.clone(), "alerts@contoso.example").await;
        let default_contact = c
            .find_contact_by_name(&default_customer, "Default Contact")
            .await
            .unwrap()
            .unwrap()
            .id;
        let agreement = c
            .find_contract(&contoso, "Managed Security")
            .await
            .unwrap()
            .unwrap()
            .id;
        let board = c
            .boards()
            .await
            .unwrap()
            .into_iter()
            .find(|b| b.name == "Security Alerts")
            .unwrap()
            .id;
        let closed_status = c
            .statuses(Some(&board))
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == ">Closed")
            .unwrap()
            .id;
        let priorities = c
            .priorities()
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.id))
            .collect();
        let source = c
            .sources()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == "SaaS Alerts")
            .unwrap()
            .id;
        sb.admin().clear_calls();
        Cw {
            sb,
            client,
            ids: Ids {
                contoso,
                jane,
                alert_contact,
                default_customer,
                default_contact,
                agreement,
                board,
                closed_status,
                priorities,
                source,
            },
            http: reqwest::Client::new(),
        }
    }

    /// The snapshot a reconciler would publish for the demo connection.
    pub fn snapshot(&self, key: &ConnectionKey, grouping: Grouping) -> ResolvedConnection {
        let mut conn = snapshot(key, self.client.clone() as Arc<dyn Psa>, grouping);
        let customer =
            |company: &str, name: &str, contact: &str, contract: Option<&str>| ResolvedCustomer {
                mapping_name: name.into(),
                company_id: company.into(),
                company_name: name.into(),
                location_id: None,
                default_contact_id: Some(contact.into()),
                contract_id: contract.map(Into::into),
                ticket: None,
            };
        conn.customers = [(
            ORG.into(),
            Arc::new(customer(
                &self.ids.contoso,
                "contoso",
                &self.ids.alert_contact,
                Some(&self.ids.agreement),
            )),
        )]
        .into();
        conn.catch_all = Some(customer(
            &self.ids.default_customer,
            "",
            &self.ids.default_contact,
            None,
        ));
        let p = |n: &str| self.ids.priorities[n].clone();
        conn.ticket = ResolvedTicket {
            board_id: Some(self.ids.board.clone()),
            source: ResolvedValue::One(self.ids.source.clone()),
            priority: ResolvedValue::Map {
                key: EventField::Severity,
                map: [
                    ("critical".to_string(), p("Priority 1 - Critical")),
                    ("high".to_string(), p("Priority 2 - High")),
                    ("medium".to_string(), p("Priority 3 - Medium")),
                ]
                .into(),
                default: Some(p("Priority 4 - Low")),
            },
            closed_status_id: Some(self.ids.closed_status.clone()),
            ..Default::default()
        };
        conn
    }

    fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let creds = format!("{DEMO_COMPANY_ID}+{DEMO_PUBLIC_KEY}:{DEMO_PRIVATE_KEY}");
        self.http
            .request(method, format!("{}{API}{path}", self.sb.base_url()))
            .header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(creds)
                ),
            )
            .header("clientId", DEMO_CLIENT_ID)
            .header(
                "Accept",
                "application/vnd.connectwise.com+json; version=2022.1",
            )
    }

    /// Tickets as the PSA's REST API returns them, oldest first.
    pub async fn tickets(&self) -> Vec<Value> {
        let r = self
            .raw(
                reqwest::Method::GET,
                "/service/tickets?pageSize=1000&orderBy=id asc",
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.json().await.unwrap()
    }

    /// Notes the dispatcher added (ConnectWise keeps the initial description as the first note).
    pub async fn notes(&self, ticket: &Value) -> Vec<String> {
        self.all_notes(ticket).await.into_iter().skip(1).collect()
    }

    pub async fn all_notes(&self, ticket: &Value) -> Vec<String> {
        let r = self
            .raw(
                reqwest::Method::GET,
                &format!("/service/tickets/{}/notes?pageSize=1000", ticket["id"]),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let notes: Vec<Value> = r.json().await.unwrap();
        notes
            .iter()
            .map(|n| n["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A technician closes the ticket in ConnectWise.
    pub async fn close_by_id(&self, id: &str) {
        let closed = self.ids.closed_status.clone();
        self.set_status(id, &closed).await;
    }

    /// A technician sets the ticket's status in ConnectWise.
    pub async fn set_status(&self, id: &str, status_id: &str) {
        let r = self
            .raw(reqwest::Method::PATCH, &format!("/service/tickets/{id}"))
            .json(&json!([{"op": "replace", "path": "status", "value": {"id": status_id.parse::<i64>().unwrap()}}]))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    pub fn calls(&self) -> u64 {
        self.sb.admin().calls().total
    }

    pub fn clear_calls(&self) {
        self.sb.admin().clear_calls();
    }
}
