//! The rendered install (chart with default and other values, config/default) and the samples
//! pass `kubectl apply --dry-run=server` against the embedded API server (`psa-operator
//! devcluster`): every object is of a kind the server serves, in a shape it accepts.

use std::path::PathBuf;

use super::tools::{helm, kubectl, repo};

/// kubectl against one server, with its own discovery cache.
struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(kubectl())
            .args(args)
            .arg("--request-timeout=30s")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, text) = self.run(args, stdin);
        assert!(ok, "kubectl {} failed:\n{text}", args.join(" "));
        text
    }
}

fn helm_template(extra: &[&str]) -> String {
    let mut args = vec![
        "template",
        "psa-operator",
        "charts/psa-operator",
        "--namespace",
        "psa-operator-system",
    ];
    args.extend_from_slice(extra);
    super::tools::run_ok(&helm(), &args)
}

fn check(k: &Kubectl) {
    // CRDs and the namespaces for real: a dry run creates nothing, so objects in a namespace
    // that the same dry run would create are refused (as by a real API server).
    k.ok(&["apply", "-f", "crds/"], None);
    k.ok(
        &[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
        None,
    );
    for ns in ["psa-operator-system", "psa"] {
        let doc = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
        k.ok(&["apply", "-f", "-"], Some(&doc));
    }
    let dry = ["apply", "--dry-run=server", "-f", "-"];
    let out = k.ok(&dry, Some(&helm_template(&[])));
    assert!(
        out.contains("deployment.apps/psa-operator created (server dry run)"),
        "{out}"
    );
    assert!(
        out.contains("clusterrole.rbac.authorization.k8s.io/psa-operator created (server dry run)"),
        "{out}"
    );
    // Non-default values, less the ServiceMonitor and PrometheusRule (their CRDs belong to the
    // Prometheus Operator) and the dashboard (its namespace belongs to Grafana).
    let values = [
        "-f",
        "charts/psa-operator/ci/namespaced-values.yaml",
        "--set",
        "serviceMonitor.enabled=false,prometheusRule.enabled=false,grafanaDashboard.enabled=false",
    ];
    let out = k.ok(&dry, Some(&helm_template(&values)));
    assert!(
        out.contains("ingress.networking.k8s.io/psa created (server dry run)"),
        "{out}"
    );
    assert!(
        out.contains("role.rbac.authorization.k8s.io/psa created (server dry run)"),
        "{out}"
    );
    let out = k.ok(
        &dry,
        Some(&helm_template(&[
            "-f",
            "charts/psa-operator/ci/ephemeral-values.yaml",
        ])),
    );
    assert!(
        out.contains("deployment.apps/psa-operator created (server dry run)"),
        "{out}"
    );
    let out = k.ok(&["apply", "--dry-run=server", "-k", "config/default"], None);
    assert!(
        out.contains("persistentvolumeclaim/psa-operator-store created (server dry run)"),
        "{out}"
    );
    // The samples, validated by the server against the CRD schemas.
    let out = k.ok(
        &["apply", "--dry-run=server", "-f", "config/samples/"],
        None,
    );
    assert!(
        out.contains("psaconnection.psa-operator.io/demo-cw created (server dry run)"),
        "{out}"
    );
    assert!(
        out.contains("psaconnection.psa-operator.io/demo-bms created (server dry run)"),
        "{out}"
    );
    // And the server would refuse a broken one: the dry run is a real check.
    let broken = std::fs::read_to_string(
        repo().join("config/samples/03-contractservice-saas-alerts-monitoring.yaml"),
    )
    .unwrap()
    .replace("price: \"3.00\"", "price: 3.5");
    let (ok, text) = k.run(&dry, Some(&broken));
    assert!(!ok, "a numeric price must be refused:\n{text}");
    assert!(text.contains("spec.price"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_manifests_pass_a_server_dry_run_against_devcluster() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = crate::support::dev_cluster().await;
    let kubeconfig = crate::support::kubeconfig_in(&cluster, dir.path());
    let k = Kubectl {
        kubeconfig,
        cache: dir.path().join("cache"),
    };
    let result = tokio::task::spawn_blocking(move || check(&k)).await;
    cluster.shutdown().await.unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
