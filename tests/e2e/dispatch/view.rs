//! One view of a PSA's tickets for the scenarios that run on every provider (the fake, the
//! ConnectWise, Kaseya BMS and Autotask sandboxes), so each scenario is written once.

use async_trait::async_trait;
use psa_operator::api::Grouping;
use psa_operator::resolved::ResolvedConnection;
use serde_json::Value;

use super::autotask::At;
use super::bms::Bms;
use super::cw::Cw;
use super::fake_psa::FakePsa;

#[derive(Clone, Debug)]
pub struct TicketView {
    pub id: String,
    pub summary: String,
    pub closed: bool,
    /// Notes the dispatcher added, oldest first.
    pub notes: Vec<String>,
    /// The ticket's own text (ConnectWise: its first note); it names the event it came from.
    pub description: String,
    pub company_id: String,
    pub contact_id: Option<String>,
    pub contract_id: Option<String>,
    pub status_id: Option<String>,
}

/// A numeric id of a sandbox's JSON as our neutral string id; `None` when absent.
pub fn id_at(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

/// The ids a demo connection routes with, as a sandbox holds them.
pub struct DemoRouting<'a> {
    pub contoso: &'a str,
    pub jane: &'a str,
    pub alert_contact: &'a str,
    pub default_customer: &'a str,
    pub default_contact: &'a str,
    /// The status the operator closes tickets with.
    pub closed_status: &'a str,
}

/// A PSA sandbox with the demo data and a client on it, as the cross-provider scenarios use it.
pub trait DemoPsa: PsaView {
    /// The snapshot a reconciler would publish for the demo connection.
    fn demo_snapshot(&self, grouping: Grouping) -> ResolvedConnection;
    fn routing(&self) -> DemoRouting<'_>;
}

#[async_trait]
pub trait PsaView: Send + Sync {
    /// Tickets, oldest first.
    async fn tickets(&self) -> Vec<TicketView>;
    /// A technician closes the ticket in the PSA.
    async fn technician_closes(&self, id: &str);
    /// PSA calls since the last `clear_calls`.
    fn calls(&self) -> u64;
    fn clear_calls(&self);
}

#[async_trait]
impl PsaView for FakePsa {
    async fn tickets(&self) -> Vec<TicketView> {
        FakePsa::tickets(self)
            .into_iter()
            .map(|t| TicketView {
                id: t.id,
                summary: t.new.summary,
                closed: t.closed,
                notes: t.notes,
                description: t.new.description,
                company_id: t.new.company_id,
                contact_id: t.new.contact_id,
                contract_id: t.new.contract_id,
                status_id: t.status_id.or(t.new.status_id),
            })
            .collect()
    }
    async fn technician_closes(&self, id: &str) {
        self.close(id);
    }
    fn calls(&self) -> u64 {
        u64::from(self.total_calls())
    }
    fn clear_calls(&self) {
        self.reset_calls();
    }
}

#[async_trait]
impl PsaView for Cw {
    async fn tickets(&self) -> Vec<TicketView> {
        let mut out = vec![];
        for t in Cw::tickets(self).await {
            // ConnectWise keeps the initial description as the first note.
            let mut notes = self.all_notes(&t).await.into_iter();
            out.push(TicketView {
                id: t["id"].to_string(),
                summary: t["summary"].as_str().unwrap_or_default().into(),
                closed: t["closedFlag"] == true,
                description: notes.next().unwrap_or_default(),
                notes: notes.collect(),
                company_id: id_at(&t["company"]["id"]).unwrap_or_default(),
                contact_id: id_at(&t["contact"]["id"]),
                contract_id: id_at(&t["agreement"]["id"]),
                status_id: id_at(&t["status"]["id"]),
            });
        }
        out
    }
    async fn technician_closes(&self, id: &str) {
        self.close_by_id(id).await;
    }
    fn calls(&self) -> u64 {
        Cw::calls(self)
    }
    fn clear_calls(&self) {
        Cw::clear_calls(self);
    }
}

#[async_trait]
impl PsaView for Bms {
    async fn tickets(&self) -> Vec<TicketView> {
        Bms::tickets(self)
            .await
            .into_iter()
            .map(|t| TicketView {
                id: t["id"].to_string(),
                summary: t["title"].as_str().unwrap_or_default().into(),
                closed: !t["completedDate"].is_null(),
                notes: super::bms::notes(&t),
                description: t["details"].as_str().unwrap_or_default().into(),
                company_id: id_at(&t["accountId"]).unwrap_or_default(),
                contact_id: id_at(&t["contactId"]),
                contract_id: id_at(&t["contractId"]),
                status_id: id_at(&t["statusId"]),
            })
            .collect()
    }
    async fn technician_closes(&self, id: &str) {
        self.close_by_id(id).await;
    }
    fn calls(&self) -> u64 {
        self.sb.admin().calls().total
    }
    fn clear_calls(&self) {
        self.sb.admin().clear_calls();
    }
}

impl DemoPsa for Cw {
    fn demo_snapshot(&self, grouping: Grouping) -> ResolvedConnection {
        self.snapshot(&super::cw_key(), grouping)
    }
    fn routing(&self) -> DemoRouting<'_> {
        let ids = &self.ids;
        DemoRouting {
            contoso: &ids.contoso,
            jane: &ids.jane,
            alert_contact: &ids.alert_contact,
            default_customer: &ids.default_customer,
            default_contact: &ids.default_contact,
            closed_status: &ids.closed_status,
        }
    }
}

/// The routing ids of a sandbox whose ids are [`super::harness::DemoIds`].
fn demo_routing(ids: &super::harness::DemoIds) -> DemoRouting<'_> {
    DemoRouting {
        contoso: &ids.contoso,
        jane: &ids.jane,
        alert_contact: &ids.alert_contact,
        default_customer: &ids.default_customer,
        default_contact: &ids.default_contact,
        closed_status: &ids.closed,
    }
}

impl DemoPsa for Bms {
    fn demo_snapshot(&self, grouping: Grouping) -> ResolvedConnection {
        self.snapshot(&super::bms_key(), grouping)
    }
    fn routing(&self) -> DemoRouting<'_> {
        demo_routing(&self.ids)
    }
}

impl DemoPsa for At {
    fn demo_snapshot(&self, grouping: Grouping) -> ResolvedConnection {
        self.snapshot(grouping)
    }
    fn routing(&self) -> DemoRouting<'_> {
        demo_routing(&self.ids)
    }
}
