//! The CRD copies in the chart and in config/crd are the generated top-level crds/ files.

use std::collections::BTreeSet;
use std::path::Path;

use psa_operator::api::crdgen::CRD_FILES;

use super::tools::repo;

fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".yaml"))
        .collect()
}

fn assert_copy_of_crds(copy_dir: &str) {
    let root = repo();
    let expected: BTreeSet<String> = CRD_FILES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        yaml_files(&root.join(copy_dir)),
        expected,
        "{copy_dir} must hold exactly the generated CRD files"
    );
    for file in CRD_FILES {
        let original = std::fs::read_to_string(root.join("crds").join(file)).expect("crds/ file");
        let copy = std::fs::read_to_string(root.join(copy_dir).join(file)).expect("copied file");
        assert!(
            original == copy,
            "{copy_dir}/{file} differs from crds/{file}; run: cp crds/*.yaml {copy_dir}/"
        );
    }
}

#[test]
fn chart_crds_are_the_generated_crds() {
    assert_copy_of_crds("charts/psa-operator/files/crds");
}

#[test]
fn kustomize_crds_are_the_generated_crds() {
    assert_copy_of_crds("config/crd/bases");
}

#[test]
fn kustomize_crd_layer_lists_every_crd() {
    let text = std::fs::read_to_string(repo().join("config/crd/kustomization.yaml")).unwrap();
    let k: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let listed: BTreeSet<String> = k["resources"]
        .as_sequence()
        .expect("resources list")
        .iter()
        .map(|r| r.as_str().unwrap().trim_start_matches("bases/").to_string())
        .collect();
    let expected: BTreeSet<String> = CRD_FILES.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, expected);
}
