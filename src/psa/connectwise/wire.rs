//! ConnectWise JSON as the client reads and writes it. Responses omit null fields, so every field
//! the client reads is optional; unknown fields are ignored.

use serde::{Deserialize, Serialize};

use crate::psa::{
    CatalogService, Company, Contact, Contract, ContractLine, MinorUnits, Named, StatusInfo, Ticket,
};

/// `GET /login/companyinfo/{companyId}` (PascalCase, unlike the REST API).
#[derive(Debug, Deserialize)]
pub struct CompanyInfo {
    #[serde(rename = "Codebase")]
    pub codebase: Option<String>,
}

/// The error body of every non-2xx answer.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
pub struct FieldError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub field: Option<String>,
}

impl ErrorBody {
    /// "message (field: detail; …)", the PSA's own words for status and conditions.
    pub fn describe(&self) -> String {
        let mut s = self
            .message
            .clone()
            .or_else(|| self.code.clone())
            .unwrap_or_default();
        let details: Vec<String> = self
            .errors
            .iter()
            .map(|e| {
                let text = e
                    .message
                    .clone()
                    .or_else(|| e.code.clone())
                    .unwrap_or_default();
                match &e.field {
                    Some(f) => format!("{f}: {text}"),
                    None => text,
                }
            })
            .collect();
        if !details.is_empty() {
            s.push_str(&format!(" ({})", details.join("; ")));
        }
        s
    }
}

/// `{ "id": …, "name": …, "identifier": … }` reference embedded in records.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Ref {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
}

impl Ref {
    pub fn id(id: i64) -> Self {
        Ref {
            id: Some(id),
            ..Ref::default()
        }
    }
}

fn id_string(id: Option<i64>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

/// Anything listed as `{id, name, inactiveFlag?}` (boards, types, subtypes, items, priorities, sources).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedRecord {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub inactive_flag: Option<bool>,
}

impl NamedRecord {
    pub fn is_active(&self) -> bool {
        !self.inactive_flag.unwrap_or(false)
    }
    pub fn into_named(self) -> Named {
        Named {
            id: id_string(self.id),
            name: self.name.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardStatus {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub sort_order: Option<i64>,
    pub inactive: Option<bool>,
    pub closed_status: Option<bool>,
}

impl BoardStatus {
    pub fn into_status(self) -> StatusInfo {
        StatusInfo {
            id: id_string(self.id),
            name: self.name.unwrap_or_default(),
            closed: self.closed_status.unwrap_or(false),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyRecord {
    pub id: Option<i64>,
    pub identifier: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub types: Vec<Ref>,
    pub status: Option<Ref>,
    pub deleted_flag: Option<bool>,
    pub default_contact: Option<Ref>,
    pub site: Option<Ref>,
    /// Present on child companies in newer versions (not in every edition of the spec).
    pub parent_company: Option<Ref>,
}

impl CompanyRecord {
    pub fn into_company(self) -> Company {
        let inactive_status = self
            .status
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .is_some_and(|n| n.eq_ignore_ascii_case("inactive"));
        Company {
            id: id_string(self.id),
            identifier: self.identifier.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            company_type: self.types.into_iter().find_map(|t| t.name),
            parent_id: self
                .parent_company
                .and_then(|p| p.id)
                .map(|i| i.to_string()),
            active: !self.deleted_flag.unwrap_or(false) && !inactive_status,
            default_contact_id: self
                .default_contact
                .as_ref()
                .and_then(|c| c.id)
                .map(|i| i.to_string()),
            default_contact_name: self.default_contact.and_then(|c| c.name),
            location_id: self.site.and_then(|s| s.id).map(|i| i.to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationItem {
    pub value: Option<String>,
    pub communication_type: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<Ref>,
    pub default_flag: Option<bool>,
}

impl CommunicationItem {
    fn is_email(&self) -> bool {
        let by_kind = self
            .communication_type
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("email"));
        let by_type = self
            .type_
            .as_ref()
            .and_then(|t| t.name.as_deref())
            .is_some_and(|n| n.eq_ignore_ascii_case("email"));
        by_kind || by_type
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactRecord {
    pub id: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<Ref>,
    #[serde(default)]
    pub communication_items: Vec<CommunicationItem>,
}

impl ContactRecord {
    /// E-mail addresses, the default one first.
    pub fn emails(&self) -> Vec<&str> {
        let mut items: Vec<&CommunicationItem> = self
            .communication_items
            .iter()
            .filter(|c| c.is_email())
            .collect();
        items.sort_by_key(|c| !c.default_flag.unwrap_or(false));
        items.iter().filter_map(|c| c.value.as_deref()).collect()
    }

    pub fn into_contact(self, preferred_email: Option<&str>) -> Contact {
        let email = match preferred_email {
            Some(p) => self
                .emails()
                .into_iter()
                .find(|e| e.eq_ignore_ascii_case(p))
                .map(str::to_string),
            None => None,
        }
        .or_else(|| self.emails().first().map(|e| e.to_string()));
        Contact {
            id: id_string(self.id),
            company_id: self.company.and_then(|c| c.id).map(|i| i.to_string()),
            first_name: self.first_name.unwrap_or_default(),
            last_name: self.last_name.unwrap_or_default(),
            email,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketRecord {
    pub id: Option<i64>,
    pub summary: Option<String>,
    pub company: Option<Ref>,
    pub board: Option<Ref>,
    pub status: Option<Ref>,
    pub closed_flag: Option<bool>,
    /// RFC 3339 (`2024-01-02T00:00:00Z`), stamped when a closed status is set.
    #[serde(default)]
    pub closed_date: Option<String>,
    #[serde(rename = "externalXRef")]
    pub external_x_ref: Option<String>,
}

impl TicketRecord {
    pub fn into_ticket(self) -> Ticket {
        Ticket {
            id: id_string(self.id),
            summary: self.summary.unwrap_or_default(),
            company_id: self.company.and_then(|c| c.id).map(|i| i.to_string()),
            status_id: self.status.and_then(|s| s.id).map(|i| i.to_string()),
            closed: self.closed_flag.unwrap_or(false),
            marker: self.external_x_ref.filter(|m| !m.is_empty()),
            closed_at_ms: self
                .closed_flag
                .unwrap_or(false)
                .then(|| self.closed_date.as_deref().and_then(rfc3339_ms))
                .flatten(),
        }
    }
}

/// An RFC 3339 date-time as Unix ms (`None` when it does not parse).
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Body of `POST /service/tickets`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTicketBody {
    pub summary: String,
    pub record_type: &'static str,
    pub company: Ref,
    #[serde(rename = "externalXRef")]
    pub external_x_ref: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_description: Option<String>,
    /// `false` keeps ConnectWise from e-mailing the contact and resources about the ticket.
    pub process_notifications: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Ref>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Ref>,
}

/// Body of `POST /service/tickets/{id}/notes`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewNoteBody<'a> {
    pub text: &'a str,
    pub detail_description_flag: bool,
    pub internal_analysis_flag: bool,
    pub resolution_flag: bool,
    pub process_notifications: bool,
}

#[derive(Debug, Deserialize)]
pub struct IdOnly {
    pub id: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementRecord {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub company: Option<Ref>,
    pub agreement_status: Option<String>,
    pub cancelled_flag: Option<bool>,
    pub start_date: Option<String>,
    pub bill_start_date: Option<String>,
    /// With proration an addition may start mid-period (the partial period is prorated);
    /// without it, only on or after the next invoice date.
    pub prorate_flag: Option<bool>,
    pub next_invoice_date: Option<String>,
}

impl AgreementRecord {
    pub fn into_contract(self) -> Contract {
        let active = self
            .agreement_status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("active"))
            && !self.cancelled_flag.unwrap_or(false);
        Contract {
            id: id_string(self.id),
            company_id: self
                .company
                .and_then(|c| c.id)
                .map(|i| i.to_string())
                .unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            active,
        }
    }
}

/// Money on the wire is a JSON number of currency units; we keep ten-thousandths.
pub fn to_units(minor: MinorUnits) -> f64 {
    minor as f64 / 10_000.0
}

pub fn from_units(units: Option<f64>) -> MinorUnits {
    units.map(|u| (u * 10_000.0).round() as i64).unwrap_or(0)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogRecord {
    pub id: Option<i64>,
    pub identifier: Option<String>,
    pub description: Option<String>,
    pub customer_description: Option<String>,
    pub price: Option<f64>,
    pub cost: Option<f64>,
}

impl CatalogRecord {
    pub fn into_service(self) -> CatalogService {
        CatalogService {
            id: id_string(self.id),
            name: self.identifier.unwrap_or_default(),
            // The long customer description carries the full text; `description` is cut to 60.
            description: self
                .customer_description
                .or(self.description)
                .unwrap_or_default(),
            cost: from_units(self.cost),
            price: from_units(self.price),
        }
    }
}

/// Body of `POST /procurement/catalog`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCatalogBody {
    pub identifier: String,
    pub description: String,
    pub customer_description: String,
    pub subcategory: Ref,
    #[serde(rename = "type")]
    pub type_: Ref,
    pub product_class: &'static str,
    pub price: f64,
    pub cost: f64,
    pub inactive_flag: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionRecord {
    pub id: Option<i64>,
    pub agreement_id: Option<i64>,
    pub product: Option<Ref>,
    pub quantity: Option<f64>,
    pub unit_price: Option<f64>,
    pub unit_cost: Option<f64>,
    pub cancelled_date: Option<String>,
}

impl AdditionRecord {
    /// Cancelled on or before `today`. An addition cancelled for a future date still bills
    /// until then, so it still counts as the agreement's line.
    pub fn is_cancelled(&self, today: chrono::NaiveDate) -> bool {
        match self.cancelled_date.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(d) => parse_date(d).is_none_or(|d| d <= today),
        }
    }

    /// `agreement_id` is the fallback for responses that omit `agreementId`.
    pub fn into_line(self, agreement_id: &str) -> ContractLine {
        ContractLine {
            id: id_string(self.id),
            contract_id: self
                .agreement_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| agreement_id.to_string()),
            service_id: self
                .product
                .and_then(|p| p.id)
                .map(|i| i.to_string())
                .unwrap_or_default(),
            quantity: self.quantity.map(|q| q.round() as i64).unwrap_or(0),
            cost: from_units(self.unit_cost),
            price: from_units(self.unit_price),
        }
    }
}

/// The date part of a ConnectWise timestamp (`2024-01-01T00:00:00Z`, or a bare date).
pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let day = s.trim().get(..10)?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// One row of `GET /service/boards/{id}/typeSubTypeItemAssociations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeAssociation {
    #[serde(rename = "type")]
    pub type_: Option<Ref>,
    pub sub_type: Option<Ref>,
    pub item: Option<Ref>,
}

/// Body of `POST /finance/agreements/{id}/additions`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAdditionBody {
    pub product: Ref,
    pub quantity: f64,
    pub unit_price: f64,
    pub unit_cost: f64,
    pub bill_customer: &'static str,
    pub effective_date: String,
}

/// One JSON-Patch operation as ConnectWise takes it (path without a leading `/`).
#[derive(Debug, Serialize, PartialEq)]
pub struct PatchOp {
    pub op: &'static str,
    pub path: &'static str,
    pub value: serde_json::Value,
}

impl PatchOp {
    pub fn replace(path: &'static str, value: serde_json::Value) -> Self {
        PatchOp {
            op: "replace",
            path,
            value,
        }
    }
}
