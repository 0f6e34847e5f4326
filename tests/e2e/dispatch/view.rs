//! One view of a PSA's tickets for the scenarios that run on every provider (the fake, the
//! ConnectWise sandbox, the BMS sandbox), so each seed example is written once.

use async_trait::async_trait;

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
            out.push(TicketView {
                id: t["id"].to_string(),
                summary: t["summary"].as_str().unwrap_or_default().into(),
                closed: t["closedFlag"] == true,
                notes: self.notes(&t).await,
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
