//! `CustomerMapping`: one organization (as alerts name it) → PSA company, contact and contract.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{conditions_schema, LocalRef, Money};

/// Maps an organization of the alerting tool to a company of the PSA.
#[skip_serializing_none]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "psa-operator.io",
    version = "v1alpha1",
    kind = "CustomerMapping",
    doc = "CustomerMapping: an organization as alerts name it, mapped to a company in the PSA of a PsaConnection, with the contact and contract its tickets get and, optionally, a contract line billed per user. `kubectl explain customermapping.spec` describes each field.",
    plural = "customermappings",
    singular = "customermapping",
    shortname = "custmap",
    category = "psa",
    namespaced,
    status = "CustomerMappingStatus",
    printcolumn = r#"{"name":"Company","type":"string","jsonPath":".status.companyName"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CustomerMappingSpec {
    /// The PsaConnection this mapping belongs to (same namespace).
    pub connection_ref: LocalRef,
    /// The organization/account name exactly as it appears in alerts and findings (the intake
    /// takes at most 256 bytes).
    #[schemars(length(min = 1, max = 256))]
    pub organization: String,
    /// The PSA company: by identifier or by name.
    pub company: CompanyRef,
    /// Contact for tickets whose user has no contact of their own in the company.
    pub default_contact: Option<ContactRef>,
    /// Contract (agreement) attached to every ticket of this customer.
    pub contract: Option<ContractRef>,
    /// Contract service line on that contract, kept in step for billing.
    pub contract_service: Option<ContractServiceLine>,
    /// Ticket values this customer's tickets get instead of the connection's `ticket` settings.
    pub ticket: Option<super::routing::CustomerTicketSettings>,
    /// This customer's routes by severity or alert type, tried before the connection's
    /// `routes` (first match wins); a matching route replaces what it sets of `ticket`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub routes: Vec<super::routing::TicketRoute>,
}

/// A PSA company by identifier or by name (exactly one).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("has(self.identifier) != has(self.name)")
        .message("set exactly one of identifier or name")
        .reason(Reason::FieldValueInvalid)
)]
pub struct CompanyRef {
    /// Company identifier (ConnectWise `identifier`, BMS account code).
    #[schemars(length(min = 1))]
    pub identifier: Option<String>,
    /// Company name.
    #[schemars(length(min = 1))]
    pub name: Option<String>,
}

/// A contact by e-mail or by name (exactly one).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("has(self.email) != has(self.name)")
        .message("set exactly one of email or name")
        .reason(Reason::FieldValueInvalid)
)]
pub struct ContactRef {
    /// The contact's e-mail address.
    #[x_kube(validation = Rule::new("self.contains('@')").message("email must contain @"))]
    pub email: Option<String>,
    /// The contact's full name.
    #[schemars(length(min = 1))]
    pub name: Option<String>,
}

/// A contract (ConnectWise agreement, BMS contract) of the company by name.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractRef {
    /// Name of the contract in the PSA.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// A line for a ContractService on the mapped contract.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceLine {
    /// A ContractService in the same namespace.
    pub service_ref: LocalRef,
    /// Number of users billed.
    #[x_kube(validation = Rule::new("self >= 0").message("quantity must be >= 0"))]
    pub quantity: i64,
    /// Per-customer cost; default the ContractService's cost.
    pub cost: Option<Money>,
    /// Per-customer price; default the ContractService's price.
    pub price: Option<Money>,
}

/// Observed state of a CustomerMapping.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerMappingStatus {
    /// The metadata.generation this status describes; older than the generation = not yet
    /// reconciled.
    pub observed_generation: Option<i64>,
    /// Ready, Synced, Resolved, ContractSynced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Id of the mapped company in the PSA.
    pub company_id: Option<String>,
    /// Name of the mapped company in the PSA.
    pub company_name: Option<String>,
    /// Id of the contact the tickets get.
    pub contact_id: Option<String>,
    /// Id of the contract attached to tickets.
    pub contract_id: Option<String>,
    /// Id of the contract line kept in step with `contractService`.
    pub contract_line_id: Option<String>,
    /// Quantity last written to the contract line.
    pub synced_quantity: Option<i64>,
}
