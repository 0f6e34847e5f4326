//! The dispatcher against the Kaseya BMS sandbox: the real client, state read back from the
//! sandbox, and a technician closing tickets through the BMS API.

use std::sync::Arc;

use psa_operator::api::Grouping;
use psa_operator::psa::bms::{BmsClient, BmsConfig};
use psa_operator::psa::{Named, Psa};
use psa_operator::resolved::*;
use psa_operator::sandbox::bms::{demo_seed, start};
use psa_operator::sandbox::{Faults, RunningSandbox};
use serde_json::Value;

use super::harness::{snapshot, ORG};

pub struct Ids {
    pub contoso: String,
    pub contoso_location: Option<String>,
    pub jane: String,
    pub alert_contact: String,
    pub default_customer: String,
    pub default_location: Option<String>,
    pub default_contact: String,
    pub queue: String,
    pub status_new: String,
    pub closed: String,
    pub alert_type: String,
    pub high: String,
    pub source: String,
    pub issue: String,
    pub sub_general: String,
    pub sub_iam: String,
}

pub struct Bms {
    pub sb: RunningSandbox,
    pub client: Arc<BmsClient>,
    pub ids: Ids,
}

fn id_of(list: &[Named], name: &str) -> String {
    list.iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{name}"))
        .id
        .clone()
}

impl Bms {
    pub async fn start() -> Bms {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sb = start(listener, demo_seed(), Faults::default())
            .await
            .unwrap();
        let config = || BmsConfig::new(sb.base_url(), "demo", "demo-api", "demo-password");
        let client = Arc::new(BmsClient::new(config()).unwrap());
        // As the connection reconciler does before publishing the client (it also reads the
        // tenant's time zone, so the first dated write costs no extra call).
        client.verify().await.unwrap();
        let c = client.as_ref();
        let contoso = c
            .find_company_by_identifier("CONTOSO")
            .await
            .unwrap()
            .unwrap();
        let default = c
            .find_company_by_identifier("DefaultCustomer")
            .await
            .unwrap()
            .unwrap();
        let contact = |company: String, e: &'static str| async move {
            c.find_contact_by_email(&company, e)
                .await
                .unwrap()
                .unwrap()
                .id
        };
        let jane = contact(contoso.id.clone(), "jane@contoso.example").await;
        let alert_contact = contact(contoso.id.clone(), "alerts@contoso.example").await;
        let default_contact = c
            .find_contact_by_name(&default.id, "Default Contact")
            .await
            .unwrap()
            .unwrap()
            .id;
        let statuses = c.statuses(None).await.unwrap();
        let status = |n: &str| statuses.iter().find(|s| s.name == n).unwrap().id.clone();
        let issue_types = c.issue_types(None).await.unwrap();
        let issue = id_of(&issue_types, "SaaS Alerts");
        let subs = c.sub_issue_types(None, &issue).await.unwrap();
        let ids = Ids {
            contoso: contoso.id.clone(),
            contoso_location: contoso.location_id.clone(),
            jane,
            alert_contact,
            default_customer: default.id.clone(),
            default_location: default.location_id.clone(),
            default_contact,
            queue: id_of(&c.boards().await.unwrap(), "Security Alerts"),
            status_new: status("New"),
            closed: status("Closed"),
            alert_type: id_of(&c.ticket_types(None).await.unwrap(), "Alert"),
            high: id_of(&c.priorities().await.unwrap(), "High"),
            source: id_of(&c.sources().await.unwrap(), "SaaS Alerts"),
            sub_general: id_of(&subs, "General"),
            sub_iam: id_of(&subs, "IAM"),
            issue,
        };
        sb.admin().clear_calls();
        Bms { sb, client, ids }
    }

    /// The snapshot a reconciler would publish for the demo BMS connection.
    pub fn snapshot(&self, key: &ConnectionKey, grouping: Grouping) -> ResolvedConnection {
        let mut conn = snapshot(key, self.client.clone() as Arc<dyn Psa>, grouping);
        let ids = &self.ids;
        conn.customers = [(
            ORG.into(),
            Arc::new(ResolvedCustomer {
                mapping_name: "contoso".into(),
                company_id: ids.contoso.clone(),
                company_name: ORG.into(),
                location_id: ids.contoso_location.clone(),
                default_contact_id: Some(ids.alert_contact.clone()),
                contract_id: None,
            }),
        )]
        .into();
        conn.catch_all = Some(ResolvedCustomer {
            mapping_name: String::new(),
            company_id: ids.default_customer.clone(),
            company_name: "Default Customer".into(),
            location_id: ids.default_location.clone(),
            default_contact_id: Some(ids.default_contact.clone()),
            contract_id: None,
        });
        conn.ticket = ResolvedTicket {
            board_id: Some(ids.queue.clone()),
            source: ResolvedValue::One(ids.source.clone()),
            status: ResolvedValue::One(ids.status_new.clone()),
            type_: ResolvedValue::One(ids.alert_type.clone()),
            priority: ResolvedValue::One(ids.high.clone()),
            issue_type_default: IssueTypeIds {
                issue_type: Some(ids.issue.clone()),
                sub_issue_type: Some(ids.sub_general.clone()),
            },
            issue_type_overrides: [(
                "Multiple MFA Failures".to_string(),
                IssueTypeIds {
                    issue_type: Some(ids.issue.clone()),
                    sub_issue_type: Some(ids.sub_iam.clone()),
                },
            )]
            .into(),
            closed_status_id: Some(ids.closed.clone()),
            ..Default::default()
        };
        conn
    }

    /// Tickets (with their notes) as the sandbox holds them, oldest first.
    pub async fn tickets(&self) -> Vec<Value> {
        let state: Value = reqwest::get(format!("{}/_sandbox/state", self.sb.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["tickets"].as_array().cloned().unwrap_or_default()
    }

    /// A technician resolves the ticket through the BMS REST API, as their own tool would: a
    /// login of its own, then `POST /v2/servicedesk/tickets/{id}/resolve` with a closed status.
    pub async fn close_by_id(&self, id: &str) {
        let http = reqwest::Client::new();
        let base = self.sb.base_url();
        let login: Value = http
            .post(format!("{base}/v2/security/authenticate"))
            .form(&[
                ("GrantType", "password"),
                ("UserName", "demo-api"),
                ("Password", "demo-password"),
                ("Tenant", "demo"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["result"]["accessToken"].as_str().unwrap().to_string();
        let closed: i64 = self.ids.closed.parse().unwrap();
        let answer: Value = http
            .post(format!("{base}/v2/servicedesk/tickets/{id}/resolve"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "Comment": "Not an issue; limits raised.",
                "StatusId": closed,
                "IsInternal": false,
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["success"], true, "{answer}");
        assert!(answer["result"]["completedDate"].is_string(), "{answer}");
    }
}

pub fn notes(ticket: &Value) -> Vec<String> {
    ticket["notes"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|n| n["details"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}
