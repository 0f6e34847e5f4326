//! psa-operator: security alerts → PSA tickets, declared as Kubernetes custom resources.
//!
//! The map of modules follows `DESIGN.md`: `api` (custom resources), `psa` (provider-neutral
//! trait and one module per PSA), `sandbox` (PSA emulators), `controller` (reconcilers),
//! `dispatch` (intake, store, workers), `devcluster` (embedded Kubernetes API server), `cli`.

pub mod api;
#[cfg(feature = "dev-tools")]
pub mod bench;
pub mod cli;
pub mod controller;
#[cfg(feature = "dev-tools")]
pub mod dev;
pub mod devcluster;
pub mod dispatch;
pub mod gitops;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod providers;
pub mod psa;
pub mod resolved;
pub mod sandbox;
pub mod secret;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod fuzz_tests;
