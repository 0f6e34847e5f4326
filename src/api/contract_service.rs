//! `ContractService`: a service in the PSA catalog used for contract lines (billing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{conditions_schema, LocalRef, Money};

/// A catalog service ensured in the PSA: created when absent; an existing item of the same name
/// is adopted only when `adopt: true` says so.
#[skip_serializing_none]
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
    printcolumn = r#"{"name":"ExternalID","type":"string","jsonPath":".status.externalId"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceSpec {
    /// The PsaConnection this service lives in (same namespace).
    pub connection_ref: LocalRef,
    /// Catalog identifier / service name in the PSA.
    #[schemars(length(min = 1, max = 50))]
    pub name: String,
    /// Description of the service in the PSA catalog.
    pub description: Option<String>,
    /// Default cost per unit (decimal string).
    pub cost: Money,
    /// Default price per unit (decimal string).
    pub price: Money,
    /// What happens in the PSA when this resource is deleted (default Orphan). An adopted item
    /// is deleted only with `managementPolicy: Full`.
    pub deletion_policy: Option<DeletionPolicy>,
    /// Adopt a catalog item of this name that already exists in the PSA (default false: an
    /// existing item is reported with `AdoptionNotRequested` and left untouched).
    pub adopt: Option<bool>,
    /// How much of an adopted item the operator manages (default Partial).
    pub management_policy: Option<ManagementPolicy>,
}

/// How much of an adopted catalog item the operator manages. Items it created are always Full.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManagementPolicy {
    /// Only the fields the spec sets are kept in step; the item is never deleted.
    #[default]
    Partial,
    /// The operator owns the item: every field follows the spec and `deletionPolicy` applies.
    Full,
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
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceStatus {
    /// The metadata.generation this status describes; older than the generation = not yet
    /// reconciled.
    pub observed_generation: Option<i64>,
    /// Ready, Synced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Id of the service in the PSA catalog.
    pub external_id: Option<String>,
    /// `Created` or `Adopted`.
    pub origin: Option<String>,
}
