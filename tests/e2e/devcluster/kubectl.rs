//! Real kubectl against the devcluster: apply, wait, get (Table), explain, describe, diff,
//! patch, delete with finalizers, server-side apply, and refusals that name the field.

use super::{fixture, Cluster};

/// The READY/SYNCED/REASON columns need a status; the operator would write this one.
const READY_STATUS: &str = r#"{"status":{"provider":"ConnectWise","observedGeneration":1,"conditions":[
 {"type":"Ready","status":"True","reason":"Connected","message":"PSA reachable","lastTransitionTime":"2026-01-01T00:00:00Z","observedGeneration":1},
 {"type":"Synced","status":"True","reason":"Resolved","message":"all names resolved","lastTransitionTime":"2026-01-01T00:00:00Z","observedGeneration":1}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_wait_explain_describe_diff() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let valid = fixture("valid");
    let out = c.kubectl_ok(&["apply", "-f", &valid]).await;
    assert!(out.contains("secret/acme-cw-keys created"), "{out}");
    assert!(
        out.contains("psaconnection.psa-operator.io/acme-cw created"),
        "{out}"
    );

    let again = c.kubectl_ok(&["apply", "-f", &valid]).await;
    assert!(
        again.contains("psaconnection.psa-operator.io/acme-cw unchanged"),
        "{again}"
    );

    let secret = c
        .kubectl_ok(&[
            "get",
            "secret",
            "acme-cw-keys",
            "-o",
            "jsonpath={.data.publicKey}|{.type}|{.stringData}",
        ])
        .await;
    assert_eq!(
        secret, "c2FtcGxlLXB1YmxpYw==|Opaque|",
        "stringData folded into data"
    );

    c.kubectl_ok(&[
        "patch",
        "psaconnection",
        "acme-cw",
        "--subresource=status",
        "--type=merge",
        "-p",
        READY_STATUS,
    ])
    .await;
    let table = c.kubectl_ok(&["get", "psa"]).await;
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "PROVIDER", "READY", "SYNCED", "REASON", "AGE"] {
        assert!(header.contains(col), "missing {col}: {table}");
    }
    let row = table
        .lines()
        .find(|l| l.contains("acme-cw"))
        .unwrap_or_else(|| panic!("no row: {table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..5],
        &[
            "psaconnection.psa-operator.io/acme-cw",
            "ConnectWise",
            "True",
            "True",
            "Connected"
        ],
        "{table}"
    );
    let all_ns = c.kubectl_ok(&["get", "psaconn", "-A"]).await;
    assert!(all_ns.starts_with("NAMESPACE"), "{all_ns}");
    assert!(all_ns.contains("default"), "{all_ns}");

    let waited = c
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "psaconnection/acme-cw",
            "--timeout=60s",
        ])
        .await;
    assert!(waited.contains("condition met"), "{waited}");

    let explain = c.kubectl_ok(&["explain", "psaconnection.spec"]).await;
    for field in ["provider", "grouping", "catchAll"] {
        assert!(explain.contains(field), "explain lacks {field}: {explain}");
    }
    // The kinds and fields say what they are, with their defaults; no generator boilerplate.
    for kind in ["psaconnection", "customermapping", "contractservice"] {
        let top = c.kubectl_ok(&["explain", kind]).await;
        assert!(!top.contains("Auto-generated"), "{top}");
        assert!(
            top.contains("kubectl explain"),
            "{kind} has no description: {top}"
        );
    }
    let attempts = c
        .kubectl_ok(&["explain", "psaconnection.spec.dispatch.maxAttempts"])
        .await;
    assert!(attempts.contains("Default: 8"), "{attempts}");
    let grouping = c
        .kubectl_ok(&["explain", "psaconnection.spec.grouping"])
        .await;
    assert!(grouping.contains("Default: User"), "{grouping}");
    // The Ready message is a column of `-o wide` only (priority 1).
    let narrow = c.kubectl_ok(&["get", "psaconnection", "acme-cw"]).await;
    assert!(!narrow.contains("MESSAGE"), "{narrow}");
    let wide = c
        .kubectl_ok(&["get", "psaconnection", "acme-cw", "-o", "wide"])
        .await;
    assert!(
        wide.contains("MESSAGE") && wide.contains("PSA reachable"),
        "{wide}"
    );

    let yaml = c
        .kubectl_ok(&["get", "psaconnection", "acme-cw", "-o", "yaml"])
        .await;
    assert!(yaml.contains("generation: 1"), "{yaml}");
    assert!(yaml.contains("uid: "), "{yaml}");

    let described = c
        .kubectl_ok(&["describe", "psaconnection", "acme-cw"])
        .await;
    assert!(described.contains("Name:         acme-cw"), "{described}");

    let diff = c.kubectl(&["diff", "-f", &valid]).await;
    assert_eq!(
        diff.status.code(),
        Some(0),
        "diff of unchanged objects: {}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_resources_are_refused_naming_the_field() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let cases = [
        (
            "invalid/two-providers.yaml",
            vec!["spec.provider", "exactly one provider must be set"],
        ),
        (
            "invalid/wrong-type.yaml",
            vec!["spec.dispatch.maxAttempts", "must be of type integer"],
        ),
        (
            "invalid/bad-enum.yaml",
            vec!["spec.grouping", "Unsupported value: \"Everything\""],
        ),
        (
            "invalid/unknown-field.yaml",
            vec!["unknown field \"spec.colour\""],
        ),
    ];
    for (file, wanted) in cases {
        let err = c.kubectl_err(&["apply", "-f", &fixture(file)]).await;
        for w in wanted {
            assert!(err.contains(w), "{file}: {w:?} not in {err}");
        }
    }
    let none = c.kubectl(&["get", "psaconnections"]).await;
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found"),
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_and_delete_honour_finalizers() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", &fixture("valid")]).await;
    c.kubectl_ok(&[
        "patch",
        "psaconnection",
        "acme-cw",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["psa-operator.io/cleanup"],"labels":{"env":"dev"}}}"#,
    ])
    .await;
    let labelled = c
        .kubectl_ok(&["get", "psaconnection", "-l", "env=dev", "-o", "name"])
        .await;
    assert_eq!(labelled.trim(), "psaconnection.psa-operator.io/acme-cw");
    let other = c
        .kubectl_ok(&["get", "psaconnection", "-l", "env!=dev", "-o", "name"])
        .await;
    assert!(other.trim().is_empty(), "{other}");

    let failed_test = c
        .kubectl_err(&[
            "patch",
            "psaconnection",
            "acme-cw",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/grouping","value":"UserAndAlert"}]"#,
        ])
        .await;
    assert!(
        failed_test.contains("testing value /spec/grouping failed"),
        "{failed_test}"
    );
    let smp = c
        .kubectl_err(&[
            "patch",
            "psaconnection",
            "acme-cw",
            "-p",
            r#"{"spec":{"grouping":"UserAndAlert"}}"#,
        ])
        .await;
    assert!(
        smp.contains("unknown format") || smp.contains("not supported"),
        "{smp}"
    );
    let spec_patch = c
        .kubectl_ok(&[
            "patch",
            "psaconnection",
            "acme-cw",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/grouping","value":"UserAndAlert"}]"#,
        ])
        .await;
    assert!(spec_patch.contains("patched"), "{spec_patch}");
    let generation = c
        .kubectl_ok(&[
            "get",
            "psaconnection",
            "acme-cw",
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .await;
    assert_eq!(
        generation, "2",
        "spec change bumps generation, label change did not"
    );

    let deleted = c
        .kubectl_ok(&["delete", "psaconnection", "acme-cw", "--wait=false"])
        .await;
    assert!(deleted.contains("deleted"), "{deleted}");
    let ts = c
        .kubectl_ok(&[
            "get",
            "psaconnection",
            "acme-cw",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(
        !ts.is_empty(),
        "finalizer holds the object with a deletionTimestamp"
    );

    let waiter = {
        let kubeconfig = c.kubeconfig.clone();
        let cache = c.cache_dir();
        let home = c.dir.path().to_path_buf();
        tokio::spawn(async move {
            tokio::process::Command::new(super::kubectl_binary())
                .args([
                    "wait",
                    "--for=delete",
                    "psaconnection/acme-cw",
                    "--timeout=90s",
                ])
                .env("KUBECONFIG", kubeconfig)
                .env("KUBECACHEDIR", cache)
                .env("HOME", home)
                .output()
                .await
        })
    };
    c.kubectl_ok(&[
        "patch",
        "psaconnection",
        "acme-cw",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers/0"}]"#,
    ])
    .await;
    let waited = waiter.await.expect("join").expect("kubectl wait runs");
    assert!(
        waited.status.success(),
        "kubectl wait --for=delete: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let gone = c.kubectl_err(&["get", "psaconnection", "acme-cw"]).await;
    assert!(
        gone.contains("psaconnections.psa-operator.io \"acme-cw\" not found"),
        "{gone}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_creates_and_is_idempotent() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let file = fixture("server-side.yaml");
    let out = c.kubectl_ok(&["apply", "--server-side", "-f", &file]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let rv_args = [
        "get",
        "psaconnection",
        "bms-main",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ];
    let first = c.kubectl_ok(&rv_args).await;
    c.kubectl_ok(&["apply", "--server-side", "-f", &file]).await;
    assert_eq!(
        c.kubectl_ok(&rv_args).await,
        first,
        "identical apply keeps the resourceVersion"
    );

    let managers = c
        .kubectl_ok(&[
            "get",
            "psaconnection",
            "bms-main",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert_eq!(managers, "kubectl");

    // The manager stops applying the label: server-side apply removes it.
    let text = std::fs::read_to_string(&file).expect("fixture");
    let without_label = text.replace("  labels:\n    team: soc\n", "");
    let edited = c.dir.path().join("edited.yaml");
    std::fs::write(&edited, without_label).expect("write");
    c.kubectl_ok(&["apply", "--server-side", "-f", super::path_str(&edited)])
        .await;
    let labels = c
        .kubectl_ok(&[
            "get",
            "psaconnection",
            "bms-main",
            "-o",
            "jsonpath={.metadata.labels}",
        ])
        .await;
    assert!(!labels.contains("team"), "{labels}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_dir_keeps_resources_across_restarts() {
    let state = tempfile::tempdir().expect("temp dir");
    let config = super::persistent(state.path());
    let c = Cluster::start_with(config.clone()).await;
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", &fixture("valid")]).await;
    let uid_args = [
        "get",
        "psaconnection",
        "acme-cw",
        "-o",
        "jsonpath={.metadata.uid}",
    ];
    let uid = c.kubectl_ok(&uid_args).await;
    c.server.shutdown().await.expect("clean shutdown");

    let again = Cluster::start_with(config).await;
    assert_eq!(
        again.kubectl_ok(&uid_args).await,
        uid,
        "same object after restart"
    );
    let names = again.kubectl_ok(&["get", "psa", "-o", "name"]).await;
    assert!(
        names.contains("psaconnection.psa-operator.io/acme-cw"),
        "{names}"
    );
    let unchanged = again.kubectl_ok(&["apply", "-f", &fixture("valid")]).await;
    assert!(unchanged.contains("acme-cw unchanged"), "{unchanged}");
}

/// The user's first steps on a fresh machine: the shipped samples apply, list with their
/// columns, and `delete -f` removes them (namespace first, as the file order has it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_samples_apply_list_and_delete() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let samples = super::repo().join("config/samples");
    let samples = super::path_str(&samples);
    let out = c.kubectl_ok(&["apply", "-f", samples]).await;
    assert!(out.contains("namespace/psa created"), "{out}");
    let listed = c.kubectl_ok(&["get", "psa", "-A"]).await;
    for kind in [
        "psaconnection.psa-operator.io/",
        "customermapping.psa-operator.io/",
        "contractservice.psa-operator.io/",
    ] {
        assert!(listed.contains(kind), "{kind} missing: {listed}");
    }
    assert!(listed.contains("READY"), "{listed}");
    let deleted = c.kubectl_ok(&["delete", "-f", samples]).await;
    assert!(deleted.contains("namespace \"psa\" deleted"), "{deleted}");
    let namespaces = c.kubectl_ok(&["get", "namespaces", "-o", "name"]).await;
    assert!(!namespaces.contains("namespace/psa"), "{namespaces}");
    let left = c.kubectl(&["get", "psa", "-A"]).await;
    assert!(
        String::from_utf8_lossy(&left.stderr).contains("No resources found"),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// `kubectl create secret|configmap|namespace` post protobuf; `kubectl get -w` asks for Table
/// watch events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_create_and_get_watch() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.kubectl_ok(&["create", "namespace", "psa"]).await;
    let out = c
        .kubectl_ok(&[
            "create",
            "secret",
            "generic",
            "keys",
            "-n",
            "psa",
            "--from-literal=publicKey=pk",
        ])
        .await;
    assert!(out.contains("secret/keys created"), "{out}");
    c.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "psa",
        "--from-literal=a=b",
    ])
    .await;
    let secret = c
        .kubectl_ok(&[
            "get",
            "secret",
            "keys",
            "-n",
            "psa",
            "-o",
            "jsonpath={.type}/{.data.publicKey}",
        ])
        .await;
    assert_eq!(secret, "Opaque/cGs=");
    let table = c
        .kubectl_ok(&["get", "configmap", "settings", "-n", "psa"])
        .await;
    assert!(
        table.contains("DATA") && table.contains("settings"),
        "{table}"
    );

    c.kubectl_ok(&["apply", "-f", &fixture("valid")]).await;
    let mut watch = tokio::process::Command::new(super::kubectl_binary())
        .args([
            "get",
            "psaconnection",
            "acme-cw",
            "-w",
            "--output-watch-events",
        ])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("KUBECACHEDIR", c.cache_dir())
        .env("HOME", c.dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl get -w starts");
    let stdout = watch.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let next = async |lines: &mut tokio::io::Lines<_>| {
        tokio::time::timeout(super::KUBECTL_TIMEOUT, lines.next_line())
            .await
            .expect("kubectl get -w prints in time")
            .expect("read")
            .expect("a line")
    };
    let header: String = next(&mut lines).await;
    assert!(
        header.contains("EVENT") && header.contains("READY"),
        "{header}"
    );
    let added: String = next(&mut lines).await;
    assert!(
        added.starts_with("ADDED") && added.contains("acme-cw"),
        "{added}"
    );
    c.kubectl_ok(&["label", "psaconnection", "acme-cw", "team=soc"])
        .await;
    let modified: String = next(&mut lines).await;
    assert!(
        modified.starts_with("MODIFIED") && modified.contains("acme-cw"),
        "{modified}"
    );
    watch.kill().await.expect("stop kubectl get -w");
}

/// `--tls`: kubectl and kube trust the generated CA and send the token; a wrong token is 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mode_requires_the_bearer_token() {
    let c = Cluster::start_with(psa_operator::devcluster::Config {
        tls: true,
        ..Default::default()
    })
    .await;
    assert!(c.server.url().starts_with("https://127.0.0.1:"));
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", &fixture("valid")]).await;
    let api: kube::Api<psa_operator::api::PsaConnection> =
        kube::Api::namespaced(c.client().await, "default");
    let conn = api.get("acme-cw").await.expect("kube over https");
    assert_eq!(conn.metadata.generation, Some(1));

    let wrong = psa_operator::devcluster::kubeconfig_yaml_tls(
        &c.server.url(),
        c.server.ca_pem().expect("ca"),
        "not-the-token",
    );
    std::fs::write(&c.kubeconfig, wrong).expect("write kubeconfig");
    let err = c.kubectl_err(&["get", "psaconnections"]).await;
    assert!(err.contains("Unauthorized"), "{err}");
}
