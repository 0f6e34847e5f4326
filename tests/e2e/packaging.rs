//! Packaging: the Helm chart, the kustomize tree, the samples, RBAC and the GitOps health checks.
//!
//! External tools: `helm` ($PSA_HELM, $PSA_TOOLS_DIR/helm, ~/.cache/psa-operator-tools/helm or
//! PATH), `kubectl` ($PSA_KUBECTL or PATH) and Lua 5.4 ($PSA_LUA, `lua5.4` or `lua` on PATH);
//! `.ci/install-tools` installs them.

mod chart_crds;
mod crds;
mod demo_data;
mod dryrun;
pub mod gitops;
mod helm;
mod image;
mod kustomize;
pub mod monitoring;
mod rbac;
mod rbac_live;
mod samples;
mod schema;
pub mod tools;
