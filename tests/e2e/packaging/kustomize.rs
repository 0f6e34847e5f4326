//! config/default: `kubectl kustomize` renders a complete install equal to the chart's defaults.

use serde_json::Value;

use super::helm::render as helm_render;
use super::tools::{find, kubectl, of_kind, run_ok, yaml_docs};

/// `kubectl kustomize config/default`.
pub fn render() -> Vec<Value> {
    render_dir("config/default")
}

/// `kubectl kustomize DIR` (a kustomization or a component, relative to the repository).
pub fn render_dir(dir: &str) -> Vec<Value> {
    yaml_docs(&run_ok(&kubectl(), &["kustomize", dir]))
}

#[test]
fn kustomize_default_renders_a_complete_install() {
    let docs = render();
    find(&docs, "Namespace", "psa-operator-system");
    let crds: Vec<&str> = of_kind(&docs, "CustomResourceDefinition")
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        crds,
        [
            "contractservices.psa-operator.io",
            "customermappings.psa-operator.io",
            "psaconnections.psa-operator.io"
        ]
    );
    for (kind, name) in [
        ("ServiceAccount", "psa-operator"),
        ("ClusterRole", "psa-operator"),
        ("ClusterRoleBinding", "psa-operator"),
        ("Deployment", "psa-operator"),
        ("Service", "psa-operator"),
        ("PersistentVolumeClaim", "psa-operator-store"),
    ] {
        let obj = find(&docs, kind, name);
        if !kind.starts_with("Cluster") {
            assert_eq!(
                obj["metadata"]["namespace"], "psa-operator-system",
                "{kind}/{name}"
            );
        }
    }
    // Every namespaced object lands in the operator namespace; nothing else is in the install.
    let known = [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
    ];
    for d in &docs {
        let kind = d["kind"].as_str().unwrap();
        assert!(known.contains(&kind), "unexpected {kind} in config/default");
    }
}

/// The parts of the operator pod a user relies on, with names that differ between the two
/// installs (Helm's instance labels, chart version) left out.
fn pod_essentials(docs: &[Value]) -> Value {
    let deploy = find(docs, "Deployment", "psa-operator");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    serde_json::json!({
        "replicas": deploy["spec"]["replicas"],
        "strategy": deploy["spec"]["strategy"],
        "serviceAccountName": pod["serviceAccountName"],
        "podSecurityContext": pod["securityContext"],
        "volumes": pod["volumes"],
        "image": c["image"],
        "args": c["args"],
        "env": c["env"],
        "ports": c["ports"],
        "livenessProbe": c["livenessProbe"],
        "readinessProbe": c["readinessProbe"],
        "securityContext": c["securityContext"],
        "resources": c["resources"],
        "volumeMounts": c["volumeMounts"],
    })
}

#[test]
fn kustomize_install_equals_the_chart_defaults() {
    let kustomize = render();
    let helm = helm_render(&[]);
    assert_eq!(pod_essentials(&kustomize), pod_essentials(&helm));
    let ports = |docs: &[Value]| find(docs, "Service", "psa-operator")["spec"]["ports"].clone();
    assert_eq!(ports(&kustomize), ports(&helm));
    let pvc =
        |docs: &[Value]| find(docs, "PersistentVolumeClaim", "psa-operator-store")["spec"].clone();
    assert_eq!(pvc(&kustomize), pvc(&helm));
    let rules = |docs: &[Value], kind: &str, name: &str| find(docs, kind, name)["rules"].clone();
    for (kind, name) in [
        ("ClusterRole", "psa-operator"),
        ("ClusterRole", "psa-operator-view"),
        ("ClusterRole", "psa-operator-edit"),
    ] {
        assert_eq!(
            rules(&kustomize, kind, name),
            rules(&helm, kind, name),
            "{kind}/{name}"
        );
    }
}

#[test]
fn kustomize_ha_overlay_runs_two_replicas_on_postgres() {
    let docs = yaml_docs(&run_ok(&kubectl(), &["kustomize", "config/ha"]));
    let deploy = find(&docs, "Deployment", "psa-operator");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--store")), "{args:?}");
    let store = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PSA_STORE")
        .expect("PSA_STORE from a Secret");
    assert_eq!(
        store["valueFrom"]["secretKeyRef"]["name"],
        "psa-operator-postgres"
    );
    assert!(of_kind(&docs, "PersistentVolumeClaim").is_empty());
    assert!(!pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "store"));
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
            ["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    let pdb = find(&docs, "PodDisruptionBudget", "psa-operator");
    assert_eq!(pdb["metadata"]["namespace"], "psa-operator-system");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}
