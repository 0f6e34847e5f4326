//! The three custom resources of `psa-operator.io/v1alpha1` and the types they share.
//!
//! The user-facing shape is fixed by `api-v1alpha1.yaml` (the reference): field names are API.
//! Validation that can be static lives in the schema (enums, required fields, CEL rules);
//! defaults are applied in code, never in the schema, so GitOps tools see no drift.
//! An absent optional field is left out when serialized, never written as `null`
//! (`#[skip_serializing_none]` on every struct with `Option` fields): statuses are server-side
//! applied by more than one field manager, and a `null` would take a field from the other.

pub mod common;
pub mod connection;
pub mod contract_service;
pub mod crdgen;
pub mod lifecycle;
pub mod mapping;
pub mod noise;
pub mod routing;
pub mod sources;
#[cfg(test)]
mod tests;

pub use common::*;
pub use connection::*;
pub use contract_service::*;
pub use lifecycle::*;
pub use mapping::*;
pub use noise::*;
pub use routing::*;
pub use sources::*;

/// API group of every resource of this operator.
pub const GROUP: &str = "psa-operator.io";
/// The one served version.
pub const VERSION: &str = "v1alpha1";
