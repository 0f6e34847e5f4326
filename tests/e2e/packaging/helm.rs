//! The Helm chart: lint --strict, and what `helm template` renders with default and other values.

use serde_json::Value;

use super::tools::{find, helm, of_kind, run, run_ok, yaml_docs};

const CHART: &str = "charts/psa-operator";
const CI_VALUES: [&str; 3] = [
    "charts/psa-operator/ci/namespaced-values.yaml",
    "charts/psa-operator/ci/ephemeral-values.yaml",
    "charts/psa-operator/ci/ha-values.yaml",
];

/// `helm template` of the chart as release `psa-operator` in `psa-operator-system`.
pub fn render(extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        "psa-operator",
        CHART,
        "--namespace",
        "psa-operator-system",
    ];
    args.extend_from_slice(extra);
    yaml_docs(&run_ok(&helm(), &args))
}

fn container(docs: &[Value], deployment: &str) -> Value {
    find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0].clone()
}

fn args_of(c: &Value) -> Vec<&str> {
    c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn helm_lint_strict_is_clean_with_default_and_ci_values() {
    let out = run_ok(&helm(), &["lint", "--strict", CHART]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    for values in CI_VALUES {
        let out = run_ok(&helm(), &["lint", "--strict", CHART, "-f", values]);
        assert!(out.contains("0 chart(s) failed"), "{values}: {out}");
    }
}

#[test]
fn default_values_render_a_hardened_single_replica_operator() {
    let docs = render(&[]);
    let deploy = find(&docs, "Deployment", "psa-operator");
    assert_eq!(deploy["metadata"]["namespace"], "psa-operator-system");
    assert_eq!(deploy["spec"]["replicas"], 1);
    assert_eq!(deploy["spec"]["strategy"]["type"], "Recreate");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "psa-operator");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = container(&docs, "psa-operator");
    assert_eq!(c["image"], "ghcr.io/psa-operator/psa-operator:0.1.0");
    assert_eq!(
        args_of(&c),
        [
            "run",
            "--all-namespaces",
            "--store=/var/lib/psa-operator/psa-operator.db",
            "--intake-addr=0.0.0.0:8080",
            "--metrics-addr=0.0.0.0:9090"
        ]
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    // The store is on the chart's claim, kept on uninstall.
    let pvc = find(&docs, "PersistentVolumeClaim", "psa-operator-store");
    assert_eq!(
        pvc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let claim = &pod["volumes"][0]["persistentVolumeClaim"]["claimName"];
    assert_eq!(claim, "psa-operator-store");
    let svc = find(&docs, "Service", "psa-operator");
    let ports: Vec<(&str, u64)> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["port"].as_u64().unwrap()))
        .collect();
    assert_eq!(ports, [("intake", 8080), ("metrics", 9090)]);
    // Optional parts are off by default; the operator's role is cluster-wide.
    assert!(of_kind(&docs, "Ingress").is_empty());
    assert!(of_kind(&docs, "ServiceMonitor").is_empty());
    find(&docs, "ClusterRole", "psa-operator");
    find(&docs, "ClusterRole", "psa-operator-view");
}

#[test]
fn non_default_values_confine_and_expose_the_operator() {
    let docs = render(&["-f", CI_VALUES[0]]);
    let c = container(&docs, "psa");
    assert_eq!(
        c["image"],
        "registry.example.com/security/psa-operator:0.1.0-rc.1"
    );
    let args = args_of(&c);
    assert!(args.contains(&"--namespace=psa"), "{args:?}");
    assert!(!args.contains(&"--all-namespaces"));
    assert!(args.contains(&"--intake-addr=0.0.0.0:18080"));
    assert!(args.contains(&"--metrics-addr=0.0.0.0:19090"));
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"TZ") && env.contains(&"POD_NAMESPACE"),
        "{env:?}"
    );
    // Secrets and status only in the watched namespace: a Role there, no operator ClusterRole.
    let role = find(&docs, "Role", "psa");
    assert_eq!(role["metadata"]["namespace"], "psa");
    assert!(
        of_kind(&docs, "ClusterRole").is_empty(),
        "aggregated roles disabled too"
    );
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());
    let binding = find(&docs, "RoleBinding", "psa");
    assert_eq!(binding["subjects"][0]["name"], "psa-operator-sa");
    assert_eq!(binding["subjects"][0]["namespace"], "psa-operator-system");
    // Ingress routes only to the intake port, with TLS.
    let ing = find(&docs, "Ingress", "psa");
    let path = &ing["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["backend"]["service"]["port"]["name"], "intake");
    assert_eq!(ing["spec"]["tls"][0]["secretName"], "intake-tls");
    assert_eq!(ing["spec"]["ingressClassName"], "nginx");
    let sm = find(&docs, "ServiceMonitor", "psa");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    // An existing claim is used, none is created.
    assert!(of_kind(&docs, "PersistentVolumeClaim").is_empty());
    let pod = &find(&docs, "Deployment", "psa")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "psa-store"
    );
    assert_eq!(pod["imagePullSecrets"][0]["name"], "registry-pull");

    let docs = render(&["-f", CI_VALUES[1]]);
    let deploy = find(&docs, "Deployment", "psa-operator");
    assert_eq!(deploy["spec"]["replicas"], 0);
    assert!(deploy["spec"]["template"]["spec"]["volumes"][0]["emptyDir"].is_object());
    assert!(of_kind(&docs, "PersistentVolumeClaim").is_empty());
    let c = container(&docs, "psa-operator");
    let format = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PSA_LOG_FORMAT");
    assert_eq!(format.unwrap()["value"], "json");
}

#[test]
fn values_schema_rejects_a_second_sqlite_replica_and_unknown_keys() {
    let two = run(
        &helm(),
        &["template", "x", CHART, "--set", "replicaCount=2"],
    );
    assert!(!two.ok, "two replicas on one SQLite file must be refused");
    assert!(two.stderr.contains("replicaCount"), "{}", two.stderr);
    assert!(
        two.stderr.contains("store.postgres.urlSecretRef"),
        "the refusal names the way out: {}",
        two.stderr
    );
    let typo = run(
        &helm(),
        &["template", "x", CHART, "--set", "persistance.enabled=false"],
    );
    assert!(!typo.ok, "a misspelt key must be refused");
    let bad_ns = run(
        &helm(),
        &[
            "template",
            "x",
            CHART,
            "--set",
            "watch.namespace=Not_A_Namespace",
        ],
    );
    assert!(!bad_ns.ok, "an invalid namespace name must be refused");
}

#[test]
fn ha_values_render_replicas_on_postgres_with_a_leader_pdb_and_spread() {
    let docs = render(&["-f", "charts/psa-operator/ci/ha-values.yaml"]);
    let deploy = find(&docs, "Deployment", "psa-operator");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");
    let c = container(&docs, "psa-operator");
    let args = args_of(&c);
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--store")),
        "the URL comes from the Secret, not an argument: {args:?}"
    );
    let store_env = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PSA_STORE")
        .expect("PSA_STORE");
    assert_eq!(
        store_env["valueFrom"]["secretKeyRef"]["name"],
        "psa-operator-postgres"
    );
    assert!(
        of_kind(&docs, "PersistentVolumeClaim").is_empty(),
        "no SQLite volume with a shared store"
    );
    let pdb = find(&docs, "PodDisruptionBudget", "psa-operator");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let anti = &deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        ["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts
        .iter()
        .any(|m| m["mountPath"] == "/etc/psa-operator/postgres-ca"));
}

#[test]
fn notes_tell_how_to_check_status() {
    let out = run_ok(
        &helm(),
        &[
            "install",
            "psa-operator",
            CHART,
            "--dry-run=client",
            "--namespace",
            "psa-operator-system",
        ],
    );
    assert!(out.contains("kubectl get psa -A"), "{out}");
    assert!(out.contains("--for=condition=Ready"), "{out}");
    assert!(out.contains("single replica"), "{out}");
}
