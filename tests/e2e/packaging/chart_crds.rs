//! The chart's CRDs are templates (cert-manager's pattern): `helm upgrade` upgrades them, which
//! Helm never does for a chart's `crds/` directory; `crds.install` and `crds.keep` control them.

use std::path::Path;

use serde_json::Value;

use super::helm::render;
use super::tools::{generated_crds, helm, of_kind, repo, run_ok, yaml_docs};

/// `v` with every number as a float: Helm's `fromYaml | toYaml` turns `0.0` into `0`.
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_floats).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn crd_named<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    of_kind(docs, "CustomResourceDefinition")
        .into_iter()
        .find(|c| c["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("CRD {name} is not rendered"))
}

#[test]
fn chart_renders_the_generated_crds_as_templates() {
    assert!(
        !repo().join("charts/psa-operator/crds").exists(),
        "a crds/ directory would be installed once and never upgraded by Helm"
    );
    let docs = render(&[]);
    assert_eq!(of_kind(&docs, "CustomResourceDefinition").len(), 3);
    for want in generated_crds() {
        let name = want["metadata"]["name"].as_str().unwrap();
        let got = crd_named(&docs, name);
        assert!(
            numbers_as_floats(&got["spec"]) == numbers_as_floats(&want["spec"]),
            "{name}: the rendered spec differs from crds/"
        );
        let meta = &got["metadata"];
        assert_eq!(meta["annotations"]["helm.sh/resource-policy"], "keep");
        assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "Helm");
        assert_eq!(meta["labels"]["app.kubernetes.io/instance"], "psa-operator");
    }

    let unkept = render(&["--set", "crds.keep=false"]);
    for crd in of_kind(&unkept, "CustomResourceDefinition") {
        assert!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"].is_null(),
            "crds.keep=false must let helm uninstall remove {}",
            crd["metadata"]["name"]
        );
    }

    let without = render(&["--set", "crds.install=false"]);
    assert!(of_kind(&without, "CustomResourceDefinition").is_empty());
    assert_eq!(
        of_kind(&without, "Deployment").len(),
        1,
        "the rest still renders"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn template(chart: &Path) -> Vec<Value> {
    let chart = chart.to_str().unwrap();
    yaml_docs(&run_ok(
        &helm(),
        &[
            "template",
            "psa-operator",
            chart,
            "-n",
            "psa-operator-system",
        ],
    ))
}

/// The next release of the chart carries a regenerated CRD (here: one more printer column and a
/// new optional field); what `helm upgrade` applies from it is the changed CRD.
#[test]
fn chart_upgrade_changes_a_crd() {
    let dir = tempfile::tempdir().unwrap();
    let next = dir.path().join("psa-operator");
    copy_dir(&repo().join("charts/psa-operator"), &next);
    let file = next.join("files/crds/psa-operator.io_psaconnections.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut crd: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let version = &mut crd["spec"]["versions"][0];
    version["additionalPrinterColumns"]
        .as_sequence_mut()
        .unwrap()
        .push(
            serde_yaml::from_str("{name: Upgraded, type: string, jsonPath: .spec.upgraded}")
                .unwrap(),
        );
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        .as_mapping_mut()
        .unwrap()
        .insert(
            "upgraded".into(),
            serde_yaml::from_str("{type: string}").unwrap(),
        );
    std::fs::write(&file, serde_yaml::to_string(&crd).unwrap()).unwrap();
    let chart_yaml = next.join("Chart.yaml");
    let meta = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(
        &chart_yaml,
        meta.replace("\nversion: 0.1.0", "\nversion: 0.2.0"),
    )
    .unwrap();

    let lint = run_ok(&helm(), &["lint", "--strict", next.to_str().unwrap()]);
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    let before = template(&repo().join("charts/psa-operator"));
    let after = template(&next);
    let name = "psaconnections.psa-operator.io";
    let columns = |docs: &[Value]| -> Vec<String> {
        crd_named(docs, name)["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!columns(&before).contains(&"Upgraded".to_string()));
    assert!(columns(&after).contains(&"Upgraded".to_string()));
    let field = |docs: &[Value]| {
        crd_named(docs, name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["spec"]["properties"]["upgraded"]
            .clone()
    };
    assert!(field(&before).is_null());
    assert_eq!(field(&after)["type"], "string");
    assert_eq!(
        crd_named(&after, name)["metadata"]["labels"]["helm.sh/chart"],
        "psa-operator-0.2.0",
        "the upgraded release owns the CRD"
    );
    // The other CRDs are unchanged by this upgrade.
    for other in [
        "customermappings.psa-operator.io",
        "contractservices.psa-operator.io",
    ] {
        assert_eq!(
            crd_named(&before, other)["spec"],
            crd_named(&after, other)["spec"]
        );
    }
}

/// The CRDs give their CEL rules a `reason` (Kubernetes 1.28+): the chart must refuse an older
/// cluster at install time instead of letting the API server reject the CRDs half-way.
#[test]
fn the_chart_refuses_clusters_older_than_its_crds_need() {
    let uses_cel_reason = generated_crds().iter().any(|crd| {
        serde_json::to_string(&crd["spec"])
            .unwrap()
            .contains("\"reason\":\"Field")
    });
    assert!(
        uses_cel_reason,
        "the CRDs no longer use CEL reason: relax kubeVersion"
    );
    let at = |version: &str| {
        super::tools::run(
            &helm(),
            &[
                "template",
                "t",
                "charts/psa-operator",
                "--kube-version",
                version,
            ],
        )
    };
    let old = at("1.27.9");
    assert!(!old.ok, "1.27 must be refused");
    assert!(old.stderr.contains("kubeVersion"), "{}", old.stderr);
    assert!(at("1.28.0").ok, "1.28 is supported");
}
