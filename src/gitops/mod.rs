//! GitOps tooling for pull requests: `validate` (offline checks of resource YAML), `plan`
//! (what applying would change in the PSA, read-only) and `import` (CustomerMapping scaffolds
//! for PSA companies not yet mapped).
//!
//! Everything starts from [`yaml_docs`]: the YAML as the user wrote it, with lines, so every
//! finding points at `file:line`.

pub mod args;
pub mod credentials;
pub mod crossref;
pub mod diagnostic;
pub mod import;
pub mod offline;
pub mod plan;
pub mod read_only;
pub mod resource_set;
pub mod schema;
pub mod validate;
pub mod yaml_docs;
