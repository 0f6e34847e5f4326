//! The sandbox's own view of Autotask's JSON (never the client's types): request bodies as
//! Autotask binds them, and error bodies. Answers are built as JSON objects in `state.rs`.

use serde::Deserialize;
use serde_json::{Map, Value};

/// `QueryModel`: `filter`, `maxRecords`, `includeFields` (Autotask binds the keys in any case).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct QueryIn {
    #[serde(default, alias = "Filter")]
    pub filter: Vec<FilterIn>,
    #[serde(default, alias = "MaxRecords", rename = "maxRecords")]
    pub max_records: Option<i64>,
    #[serde(default, alias = "IncludeFields", rename = "includeFields")]
    pub include_fields: Option<Vec<String>>,
}

/// `Filter`: a condition (`op`, `field`, `value`) or a group (`op` and/or with `items`).
#[derive(Clone, Debug, Deserialize)]
pub struct FilterIn {
    pub op: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub udf: Option<bool>,
    #[serde(default)]
    pub items: Vec<FilterIn>,
}

/// `TicketModel` as a create binds it (numbers must be numbers).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketIn {
    #[serde(rename = "companyID")]
    pub company_id: Option<i64>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<i64>,
    pub priority: Option<i64>,
    #[serde(rename = "queueID")]
    pub queue_id: Option<i64>,
    #[serde(rename = "contactID")]
    pub contact_id: Option<i64>,
    #[serde(rename = "contractID")]
    pub contract_id: Option<i64>,
    pub ticket_type: Option<i64>,
    pub issue_type: Option<i64>,
    pub sub_issue_type: Option<i64>,
    pub source: Option<i64>,
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    #[serde(rename = "assignedResourceID")]
    pub assigned_resource_id: Option<i64>,
    #[serde(rename = "companyLocationID")]
    pub company_location_id: Option<i64>,
}

/// `TicketNoteModel` as a create binds it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteIn {
    pub title: Option<String>,
    pub description: Option<String>,
    pub note_type: Option<i64>,
    pub publish: Option<i64>,
}

/// `ServiceModel` as a create binds it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceIn {
    pub name: Option<String>,
    pub description: Option<String>,
    pub unit_cost: Option<f64>,
    pub unit_price: Option<f64>,
    pub period_type: Option<i64>,
    #[serde(rename = "billingCodeID")]
    pub billing_code_id: Option<i64>,
    pub is_active: Option<bool>,
}

/// `ContractServiceModel` as a create binds it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceIn {
    #[serde(rename = "contractID")]
    pub contract_id: Option<i64>,
    #[serde(rename = "serviceID")]
    pub service_id: Option<i64>,
    pub unit_cost: Option<f64>,
    pub unit_price: Option<f64>,
}

/// `ContractServiceAdjustmentModel`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdjustmentIn {
    #[serde(rename = "contractID")]
    pub contract_id: Option<i64>,
    #[serde(rename = "contractServiceID")]
    pub contract_service_id: Option<i64>,
    #[serde(rename = "serviceID")]
    pub service_id: Option<i64>,
    pub effective_date: Option<String>,
    pub unit_change: Option<i64>,
    pub adjusted_unit_price: Option<f64>,
    pub adjusted_unit_cost: Option<f64>,
}

/// An update body: the fields to change and the `id`.
pub type PatchIn = Map<String, Value>;

/// `{"errors": [...]}`.
pub fn errors(message: impl Into<String>) -> Value {
    serde_json::json!({ "errors": [message.into()] })
}
