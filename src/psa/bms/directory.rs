//! Companies, contacts and the ticket settings names resolve against (boards, statuses, types, priorities, sources).

use super::*;
use crate::psa::Directory;
use async_trait::async_trait;

#[async_trait]
impl Directory for BmsClient {
    /// 1 call: `GET /v2/crm/accounts/summary/{id}` (a bare DTO, no envelope).
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>> {
        let path = format!(
            "/v2/crm/accounts/summary/{}",
            convert::num_id("account", id)?
        );
        match self.result(Req::get(path)).await {
            Ok(Value::Null) => Ok(None),
            Ok(v) => {
                let c = convert::company(decode("account", v)?);
                self.remember_company(&c);
                Ok(Some(c))
            }
            Err(PsaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// ⌈accounts / 100⌉ calls: `GET /v2/crm/accounts/summary` paged (type filtered by the PSA
    /// and checked again here, parents-only filtered here).
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>> {
        let mut req = Req::get("/v2/crm/accounts/summary");
        if let Some(t) = &filter.company_type {
            req = req.q("Filter.AccountTypeName", t);
        }
        let rows: Vec<WAccount> = self
            .pages("account", req, false, |a: &WAccount| {
                let type_ok = filter.company_type.as_deref().is_none_or(|want| {
                    a.account_type
                        .as_deref()
                        .is_some_and(|t| convert::same_name(t, want))
                });
                type_ok && (!filter.parent_only || a.parent_id.is_none())
            })
            .await?;
        let companies: Vec<Company> = rows.into_iter().map(convert::company).collect();
        for c in &companies {
            self.remember_company(c);
        }
        if *filter == CompanyFilter::default() {
            self.set_roster(&companies);
        }
        Ok(companies)
    }
    /// 1 call per 100 contacts of the account: `GET /v2/crm/contacts/search?Filter.AccountIds=`;
    /// "First Last" compared without regard to case or spacing.
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>> {
        let account = convert::num_id("account", company_id)?;
        let req = Req::get("/v2/crm/contacts/search").q("Filter.AccountIds", account);
        let rows: Vec<WContact> = self
            .pages("contact", req, true, |c: &WContact| {
                let full = format!(
                    "{} {}",
                    c.first_name.as_deref().unwrap_or(""),
                    c.last_name.as_deref().unwrap_or("")
                );
                c.is_active != Some(false)
                    && c.account_id.as_deref() == Some(company_id.as_str())
                    && convert::same_name(&full, name)
            })
            .await?;
        Ok(rows.into_iter().next().map(convert::contact))
    }
    /// 1 call: `GET /v2/system/queues/lookup` (active queues).
    async fn boards(&self) -> PsaResult<Vec<Named>> {
        self.lookup("queue", "/v2/system/queues/lookup").await
    }
    /// 1 call: `GET /v2/system/statuses/lookup`. BMS statuses are not per queue; `closed` is
    /// judged by name (see [`convert::is_closed_status_name`]).
    async fn statuses(&self, _board_id: Option<&PsaId>) -> PsaResult<Vec<StatusInfo>> {
        let rows: Vec<WLookup> = decode_list(
            "status",
            self.result(Req::get("/v2/system/statuses/lookup")).await?,
        )?;
        Ok(rows
            .into_iter()
            .filter(|r| r.is_active != Some(false))
            .map(|r| {
                let name = r.name.unwrap_or_default();
                StatusInfo {
                    closed: convert::is_closed_status_name(&name),
                    id: r.id,
                    name,
                }
            })
            .collect())
    }
    /// 1 call: `GET /v2/system/tenantlookup/{lookupTables.ticketType}` (default `TicketType`).
    async fn ticket_types(&self, _board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        let rows = self
            .tenant_lookup("ticket type", &self.tables.ticket_type)
            .await?;
        Ok(active_named(rows))
    }
    /// 1 call: `GET /v2/system/issuetypes/lookup`.
    async fn issue_types(&self, _board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.lookup("issue type", "/v2/system/issuetypes/lookup")
            .await
    }
    /// 1 call: `GET /v2/system/issuetypes/{id}/issuesubtypes/lookup`.
    async fn sub_issue_types(
        &self,
        _board_id: Option<&PsaId>,
        issue_type_id: &PsaId,
    ) -> PsaResult<Vec<Named>> {
        let id = convert::num_id("issue type", issue_type_id)?;
        let path = format!("/v2/system/issuetypes/{id}/issuesubtypes/lookup");
        self.lookup("sub-issue type", &path).await
    }
    /// 1 call: `GET /v2/system/priorities/lookup`.
    async fn priorities(&self) -> PsaResult<Vec<Named>> {
        self.lookup("priority", "/v2/system/priorities/lookup")
            .await
    }
    /// 1 call: `GET /v2/system/tenantlookup/{lookupTables.ticketSource}` (default
    /// `TicketSource`).
    async fn sources(&self) -> PsaResult<Vec<Named>> {
        let rows = self
            .tenant_lookup("ticket source", &self.tables.ticket_source)
            .await?;
        Ok(active_named(rows))
    }
    /// ⌈accounts / 100⌉ × ⌈contacts / 100⌉ calls: `GET /v2/crm/contacts/search?Filter.AccountIds=…
    /// &Filter.AccountIds=…&Filter.IsActive=true` (the array as repeated keys), `IsPoc` kept.
    async fn contacts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<DirectoryContact>>> {
        let mut out = Vec::new();
        for batch in company_ids.chunks(ACCOUNTS_PER_SEARCH) {
            let mut req = Req::get("/v2/crm/contacts/search").q("Filter.IsActive", "true");
            for id in batch {
                req = req.q("Filter.AccountIds", convert::num_id("account", id)?);
            }
            let rows: Vec<WContact> = self
                .pages("contact", req, false, |c: &WContact| {
                    c.is_active != Some(false)
                })
                .await?;
            out.extend(rows.into_iter().map(convert::directory_contact));
        }
        Ok(Some(out))
    }
}
