//! Tickets: create, find by marker, read, notes, close; and the company and contact look-ups the dispatcher makes.

use super::*;
use crate::psa::{CloseTicket, CompanyKey, ContactEmail, ReopenTicket, TicketDesk};
use async_trait::async_trait;

#[async_trait]
impl TicketDesk for ConnectWiseClient {
    /// 1 call: `GET /company/companies?conditions=identifier="…"` (or `name="…"`).
    async fn find_company_by(&self, key: CompanyKey, value: &str) -> PsaResult<Option<Company>> {
        self.find_company(key, value).await
    }
    /// 1 call: `GET /company/contacts?conditions=company/id=… and inactiveFlag=false
    /// &childConditions=communicationItems/value="…" and communicationItems/communicationType="Email"`.
    async fn find_contact_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Option<Contact>> {
        let ContactEmail { company_id, email } = q;
        let extra = vec![("childConditions", cond::contact_email(email))];
        let accept = |r: &ContactRecord| r.emails().iter().any(|e| e.eq_ignore_ascii_case(email));
        self.find_contact(company_id, extra, accept, Some(email))
            .await
    }
    /// 1 call: `POST /service/tickets` (summary cut to 100 characters, marker in `externalXRef`).
    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        let body =
            serde_json::to_value(ticket_body(t, self.process_notifications)?).map_err(internal)?;
        let rec: TicketRecord = self.post("/service/tickets", body).await?;
        Ok(rec.into_ticket())
    }
    /// 1 call: `GET /service/tickets?conditions=externalXRef="…"&orderBy=id desc`.
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        let q = [
            ("conditions", cond::eq_str("externalXRef", marker)),
            ("orderBy", "id desc".to_string()),
        ];
        let rows: Vec<TicketRecord> = self.http.first_page("/service/tickets", &q, 25).await?;
        Ok(rows
            .into_iter()
            .find(|r| r.external_x_ref.as_deref() == Some(marker))
            .map(TicketRecord::into_ticket))
    }
    /// 1 call: `GET /service/tickets/{id}`.
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        let id = numeric_id(id)?;
        let rec: Option<TicketRecord> =
            self.http.get_opt(&format!("/service/tickets/{id}")).await?;
        Ok(rec.map(TicketRecord::into_ticket))
    }
    /// 1 call per page: `GET /service/tickets/{id}/notes` (the initial description included).
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        #[derive(serde::Deserialize)]
        struct NoteText {
            #[serde(default)]
            text: Option<String>,
        }
        let id = numeric_id(ticket_id)?;
        let rows: Vec<NoteText> = self
            .http
            .list(&format!("/service/tickets/{id}/notes"), &[])
            .await?;
        Ok(Some(rows.into_iter().filter_map(|n| n.text).collect()))
    }
    /// 1 call: `POST /service/tickets/{id}/notes` (a discussion note).
    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        let id = numeric_id(ticket_id)?;
        let body = NewNoteBody {
            text,
            detail_description_flag: true,
            internal_analysis_flag: false,
            resolution_flag: false,
            process_notifications: self.process_notifications,
        };
        let body = serde_json::to_value(body).map_err(internal)?;
        let rec: IdOnly = self
            .post(&format!("/service/tickets/{id}/notes"), body)
            .await?;
        rec.id
            .map(|i| i.to_string())
            .ok_or_else(|| PsaError::Permanent {
                status: None,
                message: "ConnectWise answered the note without an id".into(),
            })
    }
    /// 1 call (`PATCH /service/tickets/{id}` status), +1 for the note (a resolution note,
    /// posted once the ticket is closed, so a role that may not close leaves no half-done
    /// close behind), +2 without `status_id` (the ticket, then its board's statuses).
    async fn close_ticket(&self, close: CloseTicket<'_>) -> PsaResult<()> {
        let id = numeric_id(close.ticket_id)?;
        let status = match close.status_id {
            Some(s) => numeric_id(s)?,
            None => self.closed_status_of(id).await?,
        };
        let ops = [PatchOp::replace("status", json!({ "id": status }))];
        let closed: PsaResult<TicketRecord> =
            self.patch(&format!("/service/tickets/{id}"), &ops).await;
        if let Err(PsaError::PermissionDenied { message }) = closed {
            return Err(PsaError::PermissionDenied {
                message: format!(
                    "closing a ticket needs {} (and {}) in the API member's security role: {message}",
                    rights::CLOSE_EDIT,
                    rights::TICKETS_EDIT
                ),
            });
        }
        closed?;
        if let Some(text) = close.note.filter(|n| !n.trim().is_empty()) {
            let body = NewNoteBody {
                text,
                detail_description_flag: true,
                internal_analysis_flag: false,
                resolution_flag: true,
                process_notifications: self.process_notifications,
            };
            let body = serde_json::to_value(body).map_err(internal)?;
            let _: IdOnly = self
                .post(&format!("/service/tickets/{id}/notes"), body)
                .await?;
        }
        Ok(())
    }
    /// 2 calls: `PATCH /service/tickets/{id}` (status back to an open one; ConnectWise clears
    /// `closedFlag` with it), then `POST /service/tickets/{id}/notes` (a discussion note).
    async fn reopen_ticket(&self, reopen: ReopenTicket<'_>) -> PsaResult<()> {
        let id = numeric_id(reopen.ticket_id)?;
        let ops = [PatchOp::replace(
            "status",
            json!({ "id": numeric_id(reopen.status_id)? }),
        )];
        let _: TicketRecord = self.patch(&format!("/service/tickets/{id}"), &ops).await?;
        self.add_note(reopen.ticket_id, reopen.note)
            .await
            .map(|_| ())
    }
}
