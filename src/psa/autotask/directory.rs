//! Companies and contacts (the picklists are in `mod.rs`: one `entityInformation/fields` call).

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::convert::{self, eq, num_id, same_name};
use super::transport::decode;
use super::wire::{WCompany, WContact, WItem};
use super::AutotaskClient;
use super::*;
use crate::psa::Directory;
use crate::psa::{
    Company, CompanyFilter, CompanyKey, Contact, ContactEmail, DirectoryContact, PsaError, PsaId,
    PsaResult,
};
use async_trait::async_trait;

/// `isActive` of a contact: 1 = active (an integer in the document).
fn contact_active(c: &WContact) -> bool {
    c.is_active != Some(0)
}

impl AutotaskClient {
    /// 1 call: `GET /V1.0/ThresholdInformation`.
    pub(super) async fn verify_credentials(&self) -> PsaResult<()> {
        self.t.read_threshold().await
    }

    /// 1 call: `POST /V1.0/Companies/query` with `companyNumber` (or `companyName`) `eq value`;
    /// the exact value (any case) wins.
    pub(super) async fn company_where(
        &self,
        key: CompanyKey,
        value: &str,
    ) -> PsaResult<Option<Company>> {
        let needle = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if needle.is_empty() {
            return Ok(None);
        }
        let matches =
            move |c: &WCompany| convert::company_value(c, key).is_some_and(|h| same_name(h, value));
        let field = convert::company_field(key);
        let rows: Vec<WCompany> = self
            .t
            .query("Companies", vec![eq(field, needle)], Some(&matches))
            .await?;
        Ok(rows
            .into_iter()
            .find(|c| matches(c))
            .map(|c| convert::company(c, None)))
    }

    /// 1 call: `GET /V1.0/Companies/{id}`; `None` when there is no such company.
    pub(super) async fn company_by_id(&self, id: &PsaId) -> PsaResult<Option<Company>> {
        let path = format!("/V1.0/Companies/{}", num_id("company", id)?);
        match self.t.call(Method::GET, &path, None).await {
            Ok(v) => Ok(decode::<WItem<WCompany>>("company", v)?
                .item
                .map(|c| convert::company(c, None))),
            Err(PsaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// 1 call for the `companyType` picklist, then ⌈companies / 500⌉ query pages.
    pub(super) async fn companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>> {
        let types = self.picklist("Companies", "companyType").await?;
        let type_names: HashMap<String, String> = types
            .iter()
            .map(|v| (v.value.clone(), v.label.clone().unwrap_or_default()))
            .collect();
        let mut conditions: Vec<Value> = vec![json!({"op": "gte", "field": "id", "value": 0})];
        if let Some(want) = &filter.company_type {
            let value = types
                .iter()
                .find(|v| v.label.as_deref().is_some_and(|l| same_name(l, want)))
                .ok_or_else(|| PsaError::Permanent {
                    status: None,
                    message: format!("Autotask has no company type {want:?}"),
                })?;
            conditions.push(eq("companyType", num_id("company type", &value.value)?));
        }
        let rows: Vec<WCompany> = self.t.query("Companies", conditions, None).await?;
        Ok(rows
            .into_iter()
            .filter(|c| !filter.parent_only || c.parent_company_id.is_none())
            .map(|c| {
                let name = c
                    .company_type
                    .and_then(|t| type_names.get(&t.to_string()).cloned());
                convert::company(c, name)
            })
            .collect())
    }

    /// 1 call: `POST /V1.0/Contacts/query` on the company and `emailAddress`, `emailAddress2` or
    /// `emailAddress3`; active contacts only, re-checked here (any case).
    pub(super) async fn contacts_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Vec<Contact>> {
        let company = num_id("company", q.company_id)?;
        let want = q.email.trim();
        if want.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<WContact> = self
            .t
            .query(
                "Contacts",
                convert::contact_email_filter(company, want),
                None,
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter(|c| {
                contact_active(c)
                    && c.company_id == Some(company)
                    && convert::contact_has_email(c, want)
            })
            .map(|c| convert::contact(c, Some(want)))
            .collect())
    }

    /// ⌈contacts of the company / 500⌉ calls: `POST /V1.0/Contacts/query` on the company;
    /// "First Last" compared without regard to case or spacing.
    pub(super) async fn contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>> {
        let company = num_id("company", company_id)?;
        let matches = move |c: &WContact| {
            let full = format!(
                "{} {}",
                c.first_name.as_deref().unwrap_or(""),
                c.last_name.as_deref().unwrap_or("")
            );
            contact_active(c) && same_name(&full, name)
        };
        let rows: Vec<WContact> = self
            .t
            .query("Contacts", vec![eq("companyID", company)], Some(&matches))
            .await?;
        Ok(rows
            .into_iter()
            .find(|c| matches(c))
            .map(|c| convert::contact(c, None)))
    }

    /// ⌈companies / 500⌉ × ⌈contacts / 500⌉ calls: `POST /V1.0/Contacts/query` with
    /// `companyID in […]`, active contacts only (filtered by the PSA and again here).
    pub(super) async fn contacts_of(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Vec<DirectoryContact>> {
        let mut out = Vec::new();
        for batch in convert::id_batches(company_ids)? {
            let rows: Vec<WContact> = self
                .t
                .query(
                    "Contacts",
                    vec![convert::any_of("companyID", &batch), eq("isActive", 1)],
                    None,
                )
                .await?;
            out.extend(
                rows.into_iter()
                    .filter(contact_active)
                    .map(convert::directory_contact),
            );
        }
        Ok(out)
    }

    /// 1 call: `POST /V1.0/Contacts/query` on the company, `primaryContact` true, active.
    pub(super) async fn primary_contact_of(
        &self,
        company_id: &PsaId,
    ) -> PsaResult<Option<Contact>> {
        let company = num_id("company", company_id)?;
        let rows: Vec<WContact> = self
            .t
            .query(
                "Contacts",
                vec![
                    eq("companyID", company),
                    eq("primaryContact", true),
                    eq("isActive", 1),
                ],
                None,
            )
            .await?;
        Ok(rows
            .into_iter()
            .find(|c| contact_active(c) && c.primary_contact == Some(true))
            .map(|c| convert::contact(c, None)))
    }
}

#[async_trait]
impl Directory for AutotaskClient {
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>> {
        self.company_by_id(id).await
    }
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>> {
        self.companies(filter).await
    }
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>> {
        self.contact_by_name(company_id, name).await
    }
    /// 1 call (shared by every ticket picklist for a minute): the `queueID` picklist.
    async fn boards(&self) -> PsaResult<Vec<Named>> {
        self.named_picklist("Tickets", "queueID").await
    }
    /// 1 call (shared): the `status` picklist; only "Complete" (5) is closed.
    async fn statuses(&self, _board_id: Option<&PsaId>) -> PsaResult<Vec<StatusInfo>> {
        let values = self.picklist("Tickets", "status").await?;
        Ok(convert::active_values(&values)
            .iter()
            .map(convert::status_info)
            .collect())
    }
    /// 1 call (shared): the `ticketType` picklist.
    async fn ticket_types(&self, _board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.named_picklist("Tickets", "ticketType").await
    }
    /// 1 call (shared): the `issueType` picklist.
    async fn issue_types(&self, _board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.named_picklist("Tickets", "issueType").await
    }
    /// 1 call (shared): the `subIssueType` picklist values whose `parentValue` is the issue type.
    async fn sub_issue_types(
        &self,
        _board_id: Option<&PsaId>,
        issue_type_id: &PsaId,
    ) -> PsaResult<Vec<Named>> {
        let values = self.picklist("Tickets", "subIssueType").await?;
        Ok(convert::active_values(&values)
            .iter()
            .filter(|v| v.parent_value.as_deref().map(str::trim) == Some(issue_type_id.trim()))
            .map(convert::named)
            .collect())
    }
    /// 1 call (shared): the `priority` picklist.
    async fn priorities(&self) -> PsaResult<Vec<Named>> {
        self.named_picklist("Tickets", "priority").await
    }
    /// 1 call (shared): the `source` picklist.
    async fn sources(&self) -> PsaResult<Vec<Named>> {
        self.named_picklist("Tickets", "source").await
    }
    async fn contacts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<DirectoryContact>>> {
        self.contacts_of(company_ids).await.map(Some)
    }
}
