//! CRD generation: `psa-operator crd` prints these; `crds/` holds them, checked for drift by a test.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use kube::CustomResourceExt;

use super::{ContractService, CustomerMapping, PsaConnection};

/// The three CRDs in the order of their file names (so `cat crds/*` equals `psa-operator crd`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        ContractService::crd(),
        CustomerMapping::crd(),
        PsaConnection::crd(),
    ]
    .into_iter()
    .map(with_condition_columns)
    .collect()
}

/// `kubectl get` shows every kind alike: its own first column (what it is in the PSA), then the
/// Ready and Synced conditions and Ready's reason, the kind's other columns, the age, and (with
/// `-o wide`) Ready's message. A kind declares only its own columns (`printcolumn`).
fn with_condition_columns(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let column = |name: &str, type_: &str, json_path: &str, priority: Option<i32>| {
        CustomResourceColumnDefinition {
            name: name.into(),
            type_: type_.into(),
            json_path: json_path.into(),
            priority,
            ..Default::default()
        }
    };
    let ready = |field: &str| format!(".status.conditions[?(@.type==\"Ready\")].{field}");
    let conditions = [
        column("Ready", "string", &ready("status"), None),
        column(
            "Synced",
            "string",
            ".status.conditions[?(@.type==\"Synced\")].status",
            None,
        ),
        column("Reason", "string", &ready("reason"), None),
    ];
    let trailing = [
        column("Age", "date", ".metadata.creationTimestamp", None),
        column("Message", "string", &ready("message"), Some(1)),
    ];
    for version in &mut crd.spec.versions {
        let own = version
            .additional_printer_columns
            .take()
            .unwrap_or_default();
        let (first, rest) = own.split_at(own.len().min(1));
        let columns = first
            .iter()
            .chain(&conditions)
            .chain(rest)
            .chain(&trailing)
            .cloned()
            .collect();
        version.additional_printer_columns = Some(columns);
    }
    crd
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
