//! Tickets (our marker in `externalID`), their notes (a child entity), and closing.

use reqwest::Method;
use serde_json::json;

use super::convert::{self, eq, num_id, opt_id, truncate_chars};
use super::transport::decode;
use super::wire::{WItem, WNewTicket, WNote, WOperation, WTicket};
use super::AutotaskClient;
use super::*;
use crate::psa::{CloseTicket, CompanyKey, ContactEmail, ReopenTicket, TicketDesk};
use crate::psa::{NewTicket, PsaError, PsaId, PsaResult, Ticket};
use async_trait::async_trait;

impl AutotaskClient {
    /// 1 call: `POST /V1.0/Tickets` (answer `{itemId}`). Title and description are cut to
    /// Autotask's limits; unset values are left out (Autotask's defaults apply; a tenant that
    /// requires one answers with a permanent error naming it).
    pub(super) async fn new_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        let body = WNewTicket {
            company_id: num_id("company", &t.company_id)?,
            title: truncate_chars(t.summary.trim(), convert::TITLE_MAX),
            description: truncate_chars(&t.description, convert::DESCRIPTION_MAX),
            external_id: t.marker.clone(),
            status: opt_id("status", t.status_id.as_ref())?,
            priority: opt_id("priority", t.priority_id.as_ref())?,
            queue_id: opt_id("queue", t.board_id.as_ref())?,
            contact_id: opt_id("contact", t.contact_id.as_ref())?,
            contract_id: opt_id("contract", t.contract_id.as_ref())?,
            ticket_type: opt_id("ticket type", t.type_id.as_ref())?,
            issue_type: opt_id("issue type", t.issue_type_id.as_ref())?,
            sub_issue_type: opt_id("sub-issue type", t.sub_issue_type_id.as_ref())?,
            source: opt_id("source", t.source_id.as_ref())?,
            company_location_id: opt_id("location", t.location_id.as_ref())?,
        };
        let body = serde_json::to_value(&body).map_err(|e| PsaError::Permanent {
            status: None,
            message: format!("cannot encode the ticket: {e}"),
        })?;
        let v = self
            .t
            .call(Method::POST, "/V1.0/Tickets", Some(&body))
            .await?;
        let op: WOperation = decode("ticket", v)?;
        let id = convert::item_id("ticket", op.item_id.as_ref())?;
        Ok(Ticket {
            id,
            summary: body["title"].as_str().unwrap_or_default().to_string(),
            company_id: Some(t.company_id.clone()),
            closed: t.status_id.as_deref() == Some(&convert::STATUS_COMPLETE.to_string()),
            status_id: t.status_id.clone(),
            marker: Some(t.marker.clone()),
            closed_at_ms: None,
        })
    }

    /// 1 call: `POST /V1.0/Tickets/query` with `externalID eq marker`, checked exactly.
    pub(super) async fn ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        let exact = |t: &WTicket| t.external_id.as_deref() == Some(marker);
        let rows: Vec<WTicket> = self
            .t
            .query("Tickets", vec![eq("externalID", marker)], Some(&exact))
            .await?;
        Ok(rows.into_iter().find(|t| exact(t)).map(convert::ticket))
    }

    /// 1 call: `GET /V1.0/Tickets/{id}`; closed when its status is Complete or `completedDate` is set.
    pub(super) async fn ticket_by_id(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        let path = format!("/V1.0/Tickets/{}", num_id("ticket", id)?);
        match self.t.call(Method::GET, &path, None).await {
            Ok(v) => Ok(decode::<WItem<WTicket>>("ticket", v)?
                .item
                .map(convert::ticket)),
            Err(PsaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Note type and publish values for our notes: the "Internal" ones of the `TicketNotes`
    /// picklists (1 call, shared for a minute).
    async fn note_kind(&self) -> PsaResult<(Option<i64>, Option<i64>)> {
        let note_types = self.picklist("TicketNotes", "noteType").await?;
        let publish = self.picklist("TicketNotes", "publish").await?;
        Ok((
            convert::preferred_value(&note_types, "internal"),
            convert::preferred_value(&publish, "internal"),
        ))
    }

    /// 1 call: `POST /V1.0/Tickets/{id}/Notes` (plus the shared `TicketNotes` fields call).
    pub(super) async fn post_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        let id = num_id("ticket", ticket_id)?;
        let (note_type, publish) = self.note_kind().await?;
        let note = WNote {
            id: None,
            title: Some(convert::note_title(text)),
            description: Some(truncate_chars(text, convert::NOTE_MAX)),
            note_type,
            publish,
        };
        let body = json!(note);
        let path = format!("/V1.0/Tickets/{id}/Notes");
        let v = self.t.call(Method::POST, &path, Some(&body)).await?;
        let op: WOperation = decode("note", v)?;
        convert::item_id("note", op.item_id.as_ref())
    }

    /// 1 call per 500 notes: `POST /V1.0/TicketNotes/query` on the ticket, oldest first.
    pub(super) async fn notes_of(&self, ticket_id: &PsaId) -> PsaResult<Vec<String>> {
        let id = num_id("ticket", ticket_id)?;
        let rows: Vec<WNote> = self
            .t
            .query("TicketNotes", vec![eq("ticketID", id)], None)
            .await?;
        let mut rows: Vec<WNote> = rows;
        rows.sort_by_key(|n| n.id);
        Ok(rows.into_iter().filter_map(|n| n.description).collect())
    }

    /// 1 call: `PATCH /V1.0/Tickets` with the status (Complete, 5, unless another is given);
    /// 1 more for the note when there is one (added first, so it is on the ticket when a
    /// technician sees it closed).
    pub(super) async fn complete_ticket(&self, close: CloseTicket<'_>) -> PsaResult<()> {
        let id = num_id("ticket", close.ticket_id)?;
        let status = match close.status_id {
            Some(s) => num_id("status", s)?,
            None => convert::STATUS_COMPLETE,
        };
        if let Some(n) = close.note.map(str::trim).filter(|n| !n.is_empty()) {
            self.post_note(close.ticket_id, n).await?;
        }
        let body = json!({ "id": id, "status": status });
        self.t
            .call(Method::PATCH, "/V1.0/Tickets", Some(&body))
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl TicketDesk for AutotaskClient {
    async fn find_company_by(&self, key: CompanyKey, value: &str) -> PsaResult<Option<Company>> {
        self.company_where(key, value).await
    }
    async fn find_contact_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Option<Contact>> {
        Ok(self.contacts_by_email(q).await?.into_iter().next())
    }
    async fn find_contacts_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Vec<Contact>> {
        self.contacts_by_email(q).await
    }
    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        self.new_ticket(t).await
    }
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        self.ticket_by_marker(marker).await
    }
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        self.ticket_by_id(id).await
    }
    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        self.post_note(ticket_id, text).await
    }
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        self.notes_of(ticket_id).await.map(Some)
    }
    async fn close_ticket(&self, close: CloseTicket<'_>) -> PsaResult<()> {
        self.complete_ticket(close).await
    }
    /// 2 calls: `PATCH /V1.0/Tickets` `{id, status}` (a status other than Complete clears
    /// `completedDate`), then the note as `add_note` posts it.
    async fn reopen_ticket(&self, reopen: ReopenTicket<'_>) -> PsaResult<()> {
        let body = json!({
            "id": num_id("ticket", reopen.ticket_id)?,
            "status": num_id("status", reopen.status_id)?,
        });
        self.t
            .call(Method::PATCH, "/V1.0/Tickets", Some(&body))
            .await?;
        self.add_note(reopen.ticket_id, reopen.note)
            .await
            .map(|_| ())
    }
    /// Autotask keeps the flag on the contact (`primaryContact`), not the company.
    async fn primary_contact(&self, company: &Company) -> PsaResult<Option<Contact>> {
        self.primary_contact_of(&company.id).await
    }
}
