//! CRD generation: `psa-operator crd` prints these; `crds/` holds them, checked for drift by a test.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{ContractService, CustomerMapping, PsaConnection};

/// The three CRDs in the order of their file names (so `cat crds/*` equals `psa-operator crd`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        ContractService::crd(),
        CustomerMapping::crd(),
        PsaConnection::crd(),
    ]
}

/// File names under `crds/` for each CRD, in the order of [`all_crds`].
pub const CRD_FILES: [&str; 3] = [
    "psa-operator.io_contractservices.yaml",
    "psa-operator.io_customermappings.yaml",
    "psa-operator.io_psaconnections.yaml",
];

/// One CRD as YAML (a document without the `---` separator).
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    serde_yaml::to_string(crd).expect("CRD serializes to YAML")
}

/// All CRDs as one multi-document YAML stream; identical to `cat crds/*` in file order.
pub fn all_crds_yaml() -> String {
    all_crds()
        .iter()
        .map(|c| format!("---\n{}", crd_yaml(c)))
        .collect::<String>()
}
