//! Tickets: create, find by marker, read, notes, close; and the company and contact look-ups the dispatcher makes.

use super::*;
use crate::psa::{CloseTicket, CompanyKey, ContactEmail, ReopenTicket, TicketDesk};
use async_trait::async_trait;

#[async_trait]
impl TicketDesk for BmsClient {
    /// 1 call: `GET /v2/crm/accounts/summary?Filter.AccountCode=` (or `Filter.AccountName=`;
    /// more only when over 100 accounts contain the value); exact match, any case.
    async fn find_company_by(&self, key: CompanyKey, value: &str) -> PsaResult<Option<Company>> {
        self.find_account(key, value).await
    }
    /// 1 call: `GET /v2/crm/contacts/search?Filter.EmailAddress=&Filter.AccountIds=`; exact
    /// e-mail match, any case, active contacts of that account only.
    async fn find_contact_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Option<Contact>> {
        let ContactEmail { company_id, email } = q;
        let account = convert::num_id("account", company_id)?;
        let want = email.trim();
        let req = Req::get("/v2/crm/contacts/search")
            .q("Filter.EmailAddress", want)
            .q("Filter.AccountIds", account);
        let rows: Vec<WContact> = self
            .pages("contact", req, true, |c: &WContact| {
                c.is_active != Some(false)
                    && c.account_id.as_deref() == Some(company_id.as_str())
                    && c.email
                        .as_deref()
                        .is_some_and(|e| e.trim().eq_ignore_ascii_case(want))
            })
            .await?;
        Ok(rows.into_iter().next().map(convert::contact))
    }
    /// 1 call: `POST /v2/servicedesk/tickets` — 2 when `location_id` is absent (the account's
    /// main location is looked up first), 1 more for the client's first dated write (the tenant's
    /// time zone). The marker is the last line of the details. The document requires status,
    /// priority, type and source, and live tenants a queue (or an assignee); settings resolution
    /// refuses a BMS connection without them, so an unset one here is BMS's validation message.
    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        let account = convert::num_id("account", &t.company_id)?;
        let location = match &t.location_id {
            Some(l) => convert::num_id("location", l)?,
            None => self.main_location(account).await?,
        };
        let mut body = json!({
            "Title": t.summary,
            "Details": convert::details_with_marker(&t.description, &t.marker),
            "AccountId": account,
            "LocationId": location,
            "OpenDate": convert::wire_time(self.tenant_now().await?),
        });
        set_opt(&mut body, "ContactId", "contact", t.contact_id.as_ref())?;
        set_opt(&mut body, "QueueId", "queue", t.board_id.as_ref())?;
        set_opt(&mut body, "StatusId", "status", t.status_id.as_ref())?;
        set_opt(&mut body, "TypeId", "ticket type", t.type_id.as_ref())?;
        set_opt(
            &mut body,
            "IssueTypeId",
            "issue type",
            t.issue_type_id.as_ref(),
        )?;
        set_opt(
            &mut body,
            "SubIssueTypeId",
            "sub-issue type",
            t.sub_issue_type_id.as_ref(),
        )?;
        set_opt(&mut body, "PriorityId", "priority", t.priority_id.as_ref())?;
        set_opt(&mut body, "SourceId", "source", t.source_id.as_ref())?;
        set_opt(&mut body, "ContractId", "contract", t.contract_id.as_ref())?;
        let v = self
            .result(Req::with_body(
                Method::POST,
                "/v2/servicedesk/tickets",
                body,
            ))
            .await?;
        if v.is_null() {
            return Err(empty_answer("ticket"));
        }
        let mut ticket = convert::ticket(decode("ticket", v)?);
        ticket.marker.get_or_insert_with(|| t.marker.clone());
        Ok(ticket)
    }
    /// 1 call (at most 3): `GET /v2/servicedesk/tickets?Filter.Details=psa-operator-ref:MARKER`
    /// (a token without `LIKE` metacharacters), checked exactly.
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        let req =
            Req::get("/v2/servicedesk/tickets").q("Filter.Details", convert::marker_token(marker));
        let rows: Vec<WTicket> = self
            .pages_up_to("ticket", req, true, MARKER_PAGES, |t: &WTicket| {
                t.details.as_deref().and_then(convert::marker_in).as_deref() == Some(marker)
            })
            .await?;
        Ok(rows.into_iter().next().map(convert::ticket))
    }
    /// 1 call: `GET /v2/servicedesk/tickets/{id}`; closed when `completedDate` is set, which is
    /// also when it was closed (tenant time: +1 `userinfo` call per client for the time zone).
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        let path = format!("/v2/servicedesk/tickets/{}", convert::num_id("ticket", id)?);
        match self.result(Req::get(path)).await {
            Ok(Value::Null) => Ok(None),
            Ok(v) => {
                let wire: WTicket = decode("ticket", v)?;
                let completed = wire.completed_date.clone().filter(|d| !d.trim().is_empty());
                let mut ticket = convert::ticket(wire);
                if let Some(date) = completed {
                    let offset = self.tenant_offset().await?;
                    ticket.closed_at_ms = convert::tenant_instant_ms(&date, offset);
                }
                Ok(Some(ticket))
            }
            Err(PsaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// 1 call per page: `GET /v2/servicedesk/tickets/{id}/notes` (paged, no total).
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        #[derive(serde::Deserialize)]
        struct WNoteText {
            #[serde(default, alias = "Details")]
            details: Option<String>,
        }
        let id = convert::num_id("ticket", ticket_id)?;
        let path = format!("/v2/servicedesk/tickets/{id}/notes");
        let rows: Vec<WNoteText> = self.pages("note", Req::get(path), false, |_| true).await?;
        Ok(Some(rows.into_iter().filter_map(|n| n.details).collect()))
    }
    /// 1 call: `POST /v2/servicedesk/tickets/{id}/notes` (internal note) — plus 1 for the
    /// client's first note, which reads the tenant's note types once.
    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        let id = convert::num_id("ticket", ticket_id)?;
        let type_id = self.note_type().await?;
        let body = json!({
            "Details": text,
            "IsInternal": true,
            "TypeId": type_id,
            "NoteDate": convert::wire_time(self.tenant_now().await?),
        });
        let path = format!("/v2/servicedesk/tickets/{id}/notes");
        let v = self
            .result(Req::with_body(Method::POST, path, body))
            .await?;
        if v.is_null() {
            return Err(empty_answer("note"));
        }
        Ok(decode::<WIdOnly>("note", v)?.id)
    }
    /// 1 call: `POST /v2/servicedesk/tickets/{id}/resolve` with the note as its comment and the
    /// closed status resolved with the settings — never without one (the document's `StatusId`
    /// is a plain integer: left out, it would be sent as 0). Without one given, the tenant's first
    /// closed status is read once (1 more call).
    async fn close_ticket(&self, close: CloseTicket<'_>) -> PsaResult<()> {
        let id = convert::num_id("ticket", close.ticket_id)?;
        let comment = close
            .note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_CLOSE_COMMENT);
        let mut body = json!({
            "Comment": comment,
            "IsInternal": true,
            "IsPublishToKnowledgeBase": false,
        });
        body["StatusId"] = json!(match close.status_id {
            Some(s) => convert::num_id("status", s)?,
            None => self.closed_status().await?,
        });
        let path = format!("/v2/servicedesk/tickets/{id}/resolve");
        self.result(Req::with_body(Method::POST, path, body))
            .await
            .map(|_| ())
    }
    /// 2 calls: `PATCH /v2/servicedesk/tickets/{id}` JSON Patch `replace /StatusId` (an open
    /// status clears `completedDate`), then the note as `add_note` posts it.
    async fn reopen_ticket(&self, reopen: ReopenTicket<'_>) -> PsaResult<()> {
        let id = convert::num_id("ticket", reopen.ticket_id)?;
        let body = json!([{
            "op": "replace",
            "path": "/StatusId",
            "value": convert::num_id("status", reopen.status_id)?,
        }]);
        let path = format!("/v2/servicedesk/tickets/{id}");
        self.result(Req::with_body(Method::PATCH, path, body))
            .await?;
        self.add_note(reopen.ticket_id, reopen.note)
            .await
            .map(|_| ())
    }
    /// 1 call: `GET /v2/crm/contacts/search?Filter.AccountIds=&Filter.IsPoc=true`: the account's
    /// point of contact (BMS keeps no primary contact on the account itself).
    async fn primary_contact(&self, company: &Company) -> PsaResult<Option<Contact>> {
        let account = convert::num_id("account", &company.id)?;
        let req = Req::get("/v2/crm/contacts/search")
            .q("Filter.AccountIds", account)
            .q("Filter.IsPoc", "true")
            .q("Filter.IsActive", "true");
        let rows: Vec<WContact> = self
            .pages("contact", req, true, |c: &WContact| {
                c.is_active != Some(false)
                    && c.is_poc == Some(true)
                    && c.account_id.as_deref() == Some(company.id.as_str())
            })
            .await?;
        Ok(rows.into_iter().next().map(convert::contact))
    }
}
