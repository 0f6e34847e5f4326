//! Pure resolution rules shared by the reconcilers and `gitops` (`validate`, `plan`, `import`):
//! names matched against PSA lists, ticket settings, connection settings, customers (company,
//! contact, contract, catch-all), catalog services and billing lines. Functions here either make
//! no I/O or only read the PSA; what to do with the result (conditions, plan rows) is the caller's.

pub mod billing;
pub mod catalog;
pub mod customer;
pub mod directory;
pub mod lifecycle;
pub mod line_memory;
pub mod names;
pub mod routes;
pub mod noise;
pub mod settings;
pub mod ticket;

pub use ticket::{
    describe_unresolved, fetch_catalog, resolve_ticket, resolved_values, PsaCatalog, Unresolved,
};
