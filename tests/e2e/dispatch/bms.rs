//! The dispatcher against the Kaseya BMS sandbox: the real client, state read back from the
//! sandbox, and a technician closing tickets through the BMS API.

use std::sync::Arc;

use psa_operator::api::Grouping;
use psa_operator::psa::bms::BmsClient;
use psa_operator::psa::Psa;
use psa_operator::psa::TicketDesk;
use psa_operator::resolved::*;
use psa_operator::sandbox::RunningSandbox;
use serde_json::Value;

use super::harness::DemoIds;

pub type Ids = DemoIds;

pub struct Bms {
    pub sb: RunningSandbox,
    pub client: Arc<BmsClient>,
    pub ids: Ids,
}

impl Bms {
    pub async fn start() -> Bms {
        let sb = crate::fixtures::demo::bms_sandbox().await;
        let client = Arc::new(BmsClient::new(crate::fixtures::demo::bms_config(&sb)).unwrap());
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
        let ids = DemoIds::resolve(c, &contoso, &default, "Closed").await;
        sb.admin().clear_calls();
        Bms { sb, client, ids }
    }

    /// The snapshot a reconciler would publish for the demo BMS connection.
    pub fn snapshot(&self, key: &ConnectionKey, grouping: Grouping) -> ResolvedConnection {
        self.ids.snapshot(key, self.client.clone(), grouping, None)
    }

    /// Tickets (with their notes) as the sandbox holds them, oldest first.
    pub async fn tickets(&self) -> Vec<Value> {
        crate::sandbox_admin::tickets(&self.sb).await
    }

    /// A technician resolves the ticket through the BMS REST API, as their own tool would: a
    /// login of its own, then `POST /v2/servicedesk/tickets/{id}/resolve` with a closed status.
    pub async fn close_by_id(&self, id: &str) {
        let closed: i64 = self.ids.closed.parse().unwrap();
        let answer = technician_api(
            &self.sb,
            reqwest::Method::POST,
            &format!("/v2/servicedesk/tickets/{id}/resolve"),
            Some(serde_json::json!({
                "Comment": "Not an issue; limits raised.",
                "StatusId": closed,
                "IsInternal": false,
            })),
        )
        .await;
        assert!(answer["result"]["completedDate"].is_string(), "{answer}");
    }
}

/// A call to the BMS sandbox's REST API as a technician's tool makes it: a login of its own
/// with the demo credentials, then `method path` with the bearer token; the answer's envelope
/// must say `success`.
pub async fn technician_api(
    sb: &RunningSandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let http = reqwest::Client::new();
    let base = sb.base_url();
    let login: Value = crate::support::send_for_json(
        http.post(format!("{base}/v2/security/authenticate"))
            .form(&[
                ("GrantType", "password"),
                ("UserName", "demo-api"),
                ("Password", "demo-password"),
                ("Tenant", "demo"),
            ]),
    )
    .await;
    let token = login["result"]["accessToken"].as_str().unwrap().to_string();
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let answer: Value = crate::support::send_for_json(req).await;
    assert_eq!(answer["success"], true, "{path}: {answer}");
    answer
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
