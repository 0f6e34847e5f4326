//! Companies, contacts and the ticket settings names resolve against (boards, statuses, types, priorities, sources).

use super::*;
use crate::psa::Directory;
use async_trait::async_trait;

#[async_trait]
impl Directory for ConnectWiseClient {
    /// Paged (1): `GET /service/boards/{id}/typeSubTypeItemAssociations`.
    async fn invalid_type_combinations(
        &self,
        board_id: Option<&PsaId>,
        wanted: &[TypeCombination],
    ) -> PsaResult<Vec<usize>> {
        if board_id.is_none()
            || wanted
                .iter()
                .all(|w| w.issue_type_id.is_none() && w.sub_issue_type_id.is_none())
        {
            return Ok(Vec::new());
        }
        let assocs: Vec<TypeAssociation> = self
            .board_list(board_id, "typeSubTypeItemAssociations")
            .await?;
        Ok(invalid_combinations(&assocs, wanted))
    }
    /// 1 call: `GET /company/companies/{id}`.
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>> {
        let id = numeric_id(id)?;
        let rec: Option<CompanyRecord> = self
            .http
            .get_opt(&format!("/company/companies/{id}"))
            .await?;
        Ok(rec.map(CompanyRecord::into_company))
    }
    /// Paged: `GET /company/companies?conditions=deletedFlag=false[&childConditions=types/name="…"]`.
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>> {
        let mut q = vec![
            ("conditions", cond::eq("deletedFlag", Lit::Bool(false))),
            ("orderBy", "id asc".to_string()),
        ];
        if let Some(t) = &filter.company_type {
            q.push(("childConditions", cond::eq_str("types/name", t)));
        }
        let rows: Vec<CompanyRecord> = self.http.list("/company/companies", &q).await?;
        Ok(rows
            .into_iter()
            .map(CompanyRecord::into_company)
            .filter(|c| !filter.parent_only || c.parent_id.is_none())
            .filter(|c| match &filter.company_type {
                // Re-checked here: the child condition may match loosely (see `conditions`).
                Some(t) => c
                    .company_type
                    .as_deref()
                    .is_some_and(|ct| ct.eq_ignore_ascii_case(t)),
                None => true,
            })
            .collect())
    }
    /// 1 call: `GET /company/contacts?conditions=company/id=… and (firstName/lastName splits)`.
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>> {
        let wanted = name.split_whitespace().collect::<Vec<_>>().join(" ");
        let extra = vec![("conditions", cond::full_name(&wanted))];
        let accept = |r: &ContactRecord| {
            let full = format!(
                "{} {}",
                r.first_name.as_deref().unwrap_or(""),
                r.last_name.as_deref().unwrap_or("")
            );
            full.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .eq_ignore_ascii_case(&wanted)
        };
        self.find_contact(company_id, extra, accept, None).await
    }
    /// Paged (1): `GET /service/boards`; inactive boards left out.
    async fn boards(&self) -> PsaResult<Vec<Named>> {
        self.named_list("/service/boards").await
    }
    /// Paged (1): `GET /service/boards/{id}/statuses`; inactive statuses left out.
    async fn statuses(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<StatusInfo>> {
        let mut rows: Vec<BoardStatus> = self.board_list(board_id, "statuses").await?;
        rows.retain(|s| s.inactive != Some(true));
        rows.sort_by_key(|s| (s.sort_order.unwrap_or(i64::MAX), s.id));
        Ok(rows.into_iter().map(BoardStatus::into_status).collect())
    }
    /// Paged (1): `GET /service/boards/{id}/types`.
    async fn ticket_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.board_named(board_id, "types").await
    }
    /// Paged (1): `GET /service/boards/{id}/subtypes`.
    async fn issue_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.board_named(board_id, "subtypes").await
    }
    /// Paged (1): `GET /service/boards/{id}/items`. ConnectWise items belong to the board, not
    /// to a subtype (valid combinations live in `typeSubTypeItemAssociations`), so the issue
    /// type does not narrow the list.
    async fn sub_issue_types(
        &self,
        board_id: Option<&PsaId>,
        _issue_type_id: &PsaId,
    ) -> PsaResult<Vec<Named>> {
        self.board_named(board_id, "items").await
    }
    /// Paged (1): `GET /service/priorities`.
    async fn priorities(&self) -> PsaResult<Vec<Named>> {
        self.named_list("/service/priorities").await
    }
    /// Paged (1): `GET /service/sources`.
    async fn sources(&self) -> PsaResult<Vec<Named>> {
        self.named_list("/service/sources").await
    }
    /// ⌈companies / 400⌉ × pages of 1,000: `GET /company/contacts?conditions=company/id in (…)
    /// and inactiveFlag=false`. ConnectWise marks the primary contact on the company
    /// (`defaultContact`), not on the contact, so `primary` stays `false` here.
    async fn contacts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<DirectoryContact>>> {
        let mut out = Vec::new();
        for batch in company_ids.chunks(IDS_PER_CONDITION) {
            let q = [
                (
                    "conditions",
                    cond::and([
                        in_cond("company/id", batch)?,
                        cond::eq("inactiveFlag", Lit::Bool(false)),
                    ]),
                ),
                ("orderBy", "id asc".to_string()),
            ];
            let rows: Vec<ContactRecord> = self.http.list("/company/contacts", &q).await?;
            out.extend(rows.into_iter().map(|r| {
                let emails = r.emails().into_iter().map(str::to_string).collect();
                DirectoryContact {
                    contact: r.into_contact(None),
                    emails,
                    primary: false,
                }
            }));
        }
        Ok(Some(out))
    }
}
