//! The CLI as a platform team scripts it: `plan --detailed-exitcode` on a cluster the operator
//! has converged, `$KUBECONFIG` (plan and import), `plan | head`, and a clear message for a
//! connection that does not exist.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kube::Api;
use psa_operator::api::ContractService;
use psa_operator::gitops::offline;
use serde_json::Value;

use crate::support::{bin, eventually, start_operator};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the binary off the async runtime with `KUBECONFIG` set (or removed).
async fn psa_operator(args: Vec<String>, kubeconfig: Option<PathBuf>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(bin());
        cmd.args(&args)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match kubeconfig {
            Some(k) => cmd.env("KUBECONFIG", k),
            None => cmd.env_remove("KUBECONFIG"),
        };
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(repo().join("config/samples").join(name)).unwrap()
}

/// The ConnectWise connection and its catalog service, pointed at `url`, in `dir` (no Secrets:
/// `plan` reads them from the cluster of `$KUBECONFIG`).
fn write_input(dir: &Path, url: &str) -> PathBuf {
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("connection.yaml"),
        sample("02-psaconnection-connectwise.yaml").replace("http://127.0.0.1:8081", url),
    )
    .unwrap();
    std::fs::write(
        input.join("service.yaml"),
        sample("03-contractservice-saas-alerts-monitoring.yaml"),
    )
    .unwrap();
    input
}

fn plan_args(input: &Path) -> Vec<String> {
    [
        "plan",
        input.to_str().unwrap(),
        "--detailed-exitcode",
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_detailed_exitcode_is_0_once_the_operator_has_converged() {
    let dir = tempfile::tempdir().unwrap();
    let cw = offline::start(&repo().join("src/sandbox/connectwise/demo-seed.yaml"))
        .await
        .unwrap();
    let cluster = crate::support::dev_cluster().await;
    let kubeconfig = crate::support::kubeconfig_in(&cluster, dir.path());
    cluster
        .apply_yaml(&psa_operator::api::crdgen::all_crds_yaml(), "test")
        .unwrap();
    let input = write_input(dir.path(), &cw.sandbox.base_url());
    let objects = [
        sample("00-namespace.yaml"),
        sample("01-secrets.yaml"),
        std::fs::read_to_string(input.join("connection.yaml")).unwrap(),
        std::fs::read_to_string(input.join("service.yaml")).unwrap(),
    ]
    .join("\n---\n");
    cluster.apply_yaml(&objects, "test").unwrap();

    // Before the operator ran: the catalog service is still to be created → 2.
    let before = psa_operator(plan_args(&input), Some(kubeconfig.clone())).await;
    assert_eq!(before.status.code(), Some(2), "{}", text(&before.stderr));
    let v: Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(v["summary"]["servicesToCreate"], 1);
    assert_eq!(
        v["connections"][0]["credentials"],
        "Secret \"demo-cw-keys\" in namespace \"psa\" of the cluster",
        "$KUBECONFIG is where the credentials came from"
    );

    let (_operator, _, _) = start_operator(dir.path(), &kubeconfig, &[]);
    let client = crate::support::kube_client(&cluster);
    let services: Api<ContractService> = Api::namespaced(client, "psa");
    // Converged is what a user reads off the resource: Ready=True for this generation, with
    // the catalog id it manages (an id alone can be seen before a later reconcile settles).
    let id = eventually(
        Duration::from_secs(60),
        "the service Ready with its catalog id",
        || async {
            let s = services.get("saas-alerts-monitoring").await.ok()?;
            let st = s.status?;
            let ready = st.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "True"
                    && c.observed_generation == s.metadata.generation
            });
            (ready && st.observed_generation == s.metadata.generation)
                .then_some(st.external_id)
                .flatten()
        },
    )
    .await;

    // Converged: the service is managed and as the spec says → 0, no adoption planned.
    let after = psa_operator(plan_args(&input), Some(kubeconfig.clone())).await;
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}\n{}",
        text(&after.stderr),
        text(&after.stdout)
    );
    let v: Value = serde_json::from_slice(&after.stdout).unwrap();
    let service = &v["connections"][0]["catalog"][0];
    assert_eq!(service["action"], "InStep", "{v}");
    assert_eq!(service["id"], Value::String(id));
    assert_eq!(v["summary"]["servicesToAdopt"], 0);
    assert_eq!(v["summary"]["servicesToCreate"], 0);

    // The flag reads the same cluster as $KUBECONFIG.
    let mut offline_args = plan_args(&input);
    offline_args.push("--kubeconfig".into());
    offline_args.push(kubeconfig.display().to_string());
    let explicit = psa_operator(offline_args, None).await;
    assert_eq!(
        explicit.status.code(),
        Some(0),
        "--kubeconfig reads the same cluster"
    );

    // import reads the credentials Secret from the cluster of $KUBECONFIG as plan does, and
    // says what it tried without one.
    let import_args = vec![
        "import".to_string(),
        "--connection-file".into(),
        input.join("connection.yaml").display().to_string(),
    ];
    let imported = psa_operator(import_args.clone(), Some(kubeconfig.clone())).await;
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    assert!(
        text(&imported.stdout).contains("kind: CustomerMapping"),
        "{}",
        text(&imported.stdout)
    );
    let without = psa_operator(import_args, None).await;
    assert_ne!(without.status.code(), Some(0));
    assert!(
        text(&without.stderr).contains("demo-cw-keys"),
        "{}",
        text(&without.stderr)
    );

    // send-sample through a connection that does not exist: one clear sentence.
    let out = psa_operator(
        vec![
            "send-sample".into(),
            "-n".into(),
            "psa".into(),
            "--connection".into(),
            "nope".into(),
        ],
        Some(kubeconfig.clone()),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no PsaConnection \"nope\" in namespace \"psa\""),
        "{err}"
    );
    assert!(
        !err.contains("ErrorResponse") && !err.contains("Status {"),
        "{err}"
    );
    cluster.shutdown().await.unwrap();
}

/// Runs `cmd` with our end of its stdout closed before it writes, as `head` does after its
/// first bytes; its exit status and stderr.
async fn with_stdout_closed(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// `plan -o json | head -c 1`: the reader goes away; no "Broken pipe" error, the exit code
/// still says what the plan found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_into_a_closed_pipe_is_quiet() {
    let mut plan = Command::new(bin());
    plan.args([
        "plan",
        "config/samples",
        "--offline-psa-seed",
        "src/sandbox/connectwise/demo-seed.yaml",
        "--offline-psa-seed",
        "src/sandbox/bms/demo-seed.yaml",
        "--offline-psa-seed",
        "src/sandbox/autotask/demo-seed.yaml",
        "-o",
        "json",
    ])
    .current_dir(repo())
    .env_remove("KUBECONFIG")
    .stdin(Stdio::null());
    let out = with_stdout_closed(plan).await;
    let err = text(&out.stderr);
    assert!(!err.contains("Broken pipe"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");

    let mut crd = Command::new(bin());
    crd.arg("crd");
    let crd = with_stdout_closed(crd).await;
    assert!(
        !text(&crd.stderr).contains("Broken pipe"),
        "{}",
        text(&crd.stderr)
    );
}
