//! `ContractService`: a service in the PSA catalog used for contract lines (billing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{conditions_schema, LocalRef, Money};

/// A catalog service ensured in the PSA (adopted by name when it exists).
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "psa-operator.io",
    version = "v1alpha1",
    kind = "ContractService",
    doc = "ContractService: a service in the PSA catalog (ConnectWise product, BMS contract service) that CustomerMappings bill per user on their contracts. `kubectl explain contractservice.spec` describes each field.",
    plural = "contractservices",
    singular = "contractservice",
    shortname = "csvc",
    category = "psa",
    namespaced,
    status = "ContractServiceStatus",
    printcolumn = r#"{"name":"ExternalID","type":"string","jsonPath":".status.externalId"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceSpec {
    /// The PsaConnection this service lives in (same namespace).
    pub connection_ref: LocalRef,
    /// Catalog identifier / service name in the PSA.
    #[schemars(length(min = 1, max = 50))]
    pub name: String,
    /// Description of the service in the PSA catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default cost per unit (decimal string).
    pub cost: Money,
    /// Default price per unit (decimal string).
    pub price: Money,
    /// What happens in the PSA when this resource is deleted (default Orphan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// What deleting the resource does to the PSA catalog service. Default: Orphan.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletionPolicy {
    /// Leave the service in the PSA.
    #[default]
    Orphan,
    /// Delete (or deactivate) the service in the PSA.
    Delete,
}

/// Observed state of a ContractService.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceStatus {
    /// The metadata.generation this status describes; older than the generation = not yet
    /// reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Synced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Id of the service in the PSA catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `Created` or `Adopted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}
