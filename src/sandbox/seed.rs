//! Seed pieces the Kaseya BMS and Autotask sandboxes describe alike: both databases hold issue
//! types with their sub-issue types, and a service catalog with unit cost and price. Each
//! provider's `seed` module keeps the rest of its own vocabulary (accounts or companies, status
//! shapes, users).

use serde::Deserialize;

/// An issue type and the names of its sub-issue types (ids assigned in order).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedIssueType {
    pub name: String,
    #[serde(default)]
    pub sub_issue_types: Vec<String>,
}

/// A service of the catalog.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedService {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub unit_cost: f64,
    #[serde(default)]
    pub unit_price: f64,
}

/// `#[serde(default = "…")]` for flags that are on unless the seed says otherwise.
pub(crate) fn yes() -> bool {
    true
}
