//! The client's own view of Autotask's JSON (never shared with the sandbox). Field names are the
//! document's (`autotask-rest-v1-swagger.json`, camelCase); every field is optional because
//! queries may leave fields out and tenants differ.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `QueryActionResult[…]`: one page of a query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WPage<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub page_details: Option<WPageDetails>,
}

/// `PagingModel`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WPageDetails {
    #[serde(default)]
    pub next_page_url: Option<String>,
}

/// `ItemQueryResultModel[…]`: `GET /{Entity}/{id}`; `item` is null when there is none.
#[derive(Debug, Deserialize)]
pub struct WItem<T> {
    #[serde(default = "Option::default")]
    pub item: Option<T>,
}

/// `OperationResultModel`: the answer to a create or an update.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WOperation {
    #[serde(default)]
    pub item_id: Option<Value>,
}

/// `ZoneInformationResultModel`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WZone {
    #[serde(default)]
    pub url: Option<String>,
}

/// `ThresholdStatusResultModel`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WThreshold {
    #[serde(default)]
    pub external_request_threshold: Option<i64>,
    #[serde(default)]
    pub current_timeframe_request_count: Option<i64>,
}

/// `FieldInformationResultModel`.
#[derive(Debug, Deserialize)]
pub struct WFields {
    #[serde(default)]
    pub fields: Vec<WField>,
}

/// `FieldInformationModel` (only what picklists need).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WField {
    pub name: String,
    #[serde(default)]
    pub picklist_values: Option<Vec<WPicklistValue>>,
}

/// `PickListValue`: values travel as strings.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WPicklistValue {
    pub value: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub is_default_value: Option<bool>,
    #[serde(default)]
    pub parent_value: Option<String>,
    #[serde(default)]
    pub sort_order: Option<i64>,
}

/// `CompanyModel` (the fields we read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WCompany {
    pub id: i64,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub company_number: Option<String>,
    #[serde(default)]
    pub company_type: Option<i64>,
    #[serde(rename = "parentCompanyID", default)]
    pub parent_company_id: Option<i64>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `ContactModel`: `isActive` is an integer (1 = active) in the document.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WContact {
    pub id: i64,
    #[serde(rename = "companyID", default)]
    pub company_id: Option<i64>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub email_address2: Option<String>,
    #[serde(default)]
    pub email_address3: Option<String>,
    #[serde(default)]
    pub is_active: Option<i64>,
    /// `primaryContact`: the company's primary contact.
    #[serde(default)]
    pub primary_contact: Option<bool>,
}

/// `TicketModel` (read side).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WTicket {
    pub id: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(rename = "companyID", default)]
    pub company_id: Option<i64>,
    #[serde(default)]
    pub status: Option<i64>,
    #[serde(rename = "externalID", default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub completed_date: Option<String>,
}

/// `TicketModel` (create side): unset fields are left out so Autotask's defaults apply.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WNewTicket {
    #[serde(rename = "companyID")]
    pub company_id: i64,
    pub title: String,
    pub description: String,
    #[serde(rename = "externalID")]
    pub external_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(rename = "queueID", skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<i64>,
    #[serde(rename = "contactID", skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<i64>,
    #[serde(rename = "contractID", skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_issue_type: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<i64>,
    #[serde(rename = "companyLocationID", skip_serializing_if = "Option::is_none")]
    pub company_location_id: Option<i64>,
}

/// `TicketNoteModel` (both directions; we send title, description, noteType, publish).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WNote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_type: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<i64>,
}

/// `ContractModel` (the fields we read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WContract {
    pub id: i64,
    #[serde(rename = "companyID", default)]
    pub company_id: Option<i64>,
    #[serde(default)]
    pub contract_name: Option<String>,
    /// 1 = active.
    #[serde(default)]
    pub status: Option<i64>,
}

/// `ServiceModel` (the catalog).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WService {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub unit_cost: Option<f64>,
    #[serde(default)]
    pub unit_price: Option<f64>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `BillingCodeModel` (to give a new service its allocation code).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WBillingCode {
    pub id: i64,
}

/// `ContractServiceModel`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WContractService {
    pub id: i64,
    #[serde(rename = "contractID", default)]
    pub contract_id: Option<i64>,
    #[serde(rename = "serviceID", default)]
    pub service_id: Option<i64>,
    #[serde(default)]
    pub unit_cost: Option<f64>,
    #[serde(default)]
    pub unit_price: Option<f64>,
}

/// `ContractServiceUnitModel`: units of one contract service for one period.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WContractServiceUnit {
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub units: Option<i64>,
}

/// `{"errors": ["…"]}`: Autotask's error body.
#[derive(Debug, Default, Deserialize)]
pub struct WErrors {
    #[serde(default)]
    pub errors: Vec<String>,
}
