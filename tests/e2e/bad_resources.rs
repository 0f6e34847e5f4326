//! Semantically bad resources (the API server accepts them; only the PSA or the cluster can say
//! they are wrong): each gets a condition with a reason, and none makes the operator spin — the
//! reconcile count over a window, read from its own `/metrics`, stays bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::controllers::{apply_text, Env};
use crate::fixtures::{mapping_yaml, resource_yaml, yaml_stream};

async fn reconciles(env: &Env) -> BTreeMap<String, u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", env.metrics_port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("psa_operator_controller_reconciles_total{kind=\""))
        .filter_map(|rest| {
            let (kind, n) = rest.split_once("\"} ")?;
            Some((kind.to_string(), n.trim().parse().ok()?))
        })
        .collect()
}

/// A ConnectWise connection `name` on the sandbox at `url` with the client id `client_id` and
/// the keys of the Secret `keys`; the rest of its spec in `rest` (indented two spaces).
fn cw_connection(name: &str, url: &str, client_id: &str, keys: &str, rest: &str) -> String {
    format!(
        "\napiVersion: psa-operator.io/v1alpha1\nkind: PsaConnection\n\
         metadata: {{name: {name}, namespace: psa}}\nspec:\n  provider:\n    connectWise: \
         {{url: {url}, companyId: demo, clientId: {client_id}, credentialsSecretRef: {{name: {keys}}}}}\n{rest}"
    )
}

/// Resources the API server accepts and the operator must refuse, each for its own reason.
fn bad(url: &str) -> String {
    const CLIENT: &str = "00000000-0000-0000-0000-000000000001";
    let elsewhere = r#"
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Secret
metadata: {name: half-keys, namespace: psa}
stringData: {publicKey: only-half}
---
apiVersion: psa-operator.io/v1alpha1
kind: CustomerMapping
metadata: {name: elsewhere, namespace: other}
spec:
  connectionRef: {name: demo-cw}
  organization: Contoso Ltd
  company: {identifier: CONTOSO}
"#;
    let board = "  ticket:\n    board: Security Alerts\n";
    yaml_stream(&[
        elsewhere.to_string(),
        cw_connection("no-secret", url, "c", "does-not-exist", ""),
        cw_connection("half-secret", url, "c", "half-keys", ""),
        cw_connection(
            "bad-names",
            url,
            CLIENT,
            "demo-cw-keys",
            &format!(
                "{board}    status: {{value: Nwe}}\n    priority: {{value: Priority 9 - Imaginary}}\n"
            ),
        ),
        cw_connection(
            "bad-lifecycle",
            url,
            CLIENT,
            "demo-cw-keys",
            &format!("{board}  lifecycle: {{onResolve: Close, closedStatus: Complete}}\n"),
        ),
        cw_connection(
            "bad-reopen",
            url,
            CLIENT,
            "demo-cw-keys",
            &format!(
                "{board}  lifecycle: {{reopenWithin: 24h, neverReopen: [\"Closed - Wontfix\"]}}\n"
            ),
        ),
        mapping_yaml(
            "unknown-company",
            "demo-cw",
            "Unknown Org",
            "{name: No Such Company Ltd}",
            "",
        ),
        resource_yaml(
            "ContractService",
            "on-missing-connection",
            "no-such-connection",
            "  name: Orphan Service\n  cost: \"1.00\"\n  price: \"2.00\"\n",
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resources_get_a_reason_and_no_hot_loop() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    apply_text(&env.cluster, &bad(&env.cw.base_url())).await;

    let expect = [
        ("psaconnection/no-secret", "Ready", "SecretNotFound"),
        ("psaconnection/half-secret", "Ready", "SecretKeyMissing"),
        (
            "psaconnection/bad-names",
            "SettingsResolved",
            "NamesNotFound",
        ),
        (
            "customermapping/unknown-company",
            "Ready",
            "CompanyNotFound",
        ),
        (
            "contractservice/on-missing-connection",
            "Ready",
            "ConnectionNotReady",
        ),
    ];
    for (what, cond, reason) in expect {
        let (_, got, message) = env.wait_condition(what, cond, "False").await;
        assert_eq!(got, reason, "{what}: {message}");
        assert!(!message.is_empty(), "{what}: a message says what to do");
    }
    // lifecycle.closedStatus is resolved against the board's statuses like the ticket settings.
    let (_, reason, message) = env
        .wait_condition("psaconnection/bad-lifecycle", "SettingsResolved", "False")
        .await;
    assert_eq!(reason, "NamesNotFound", "{message}");
    assert!(
        message.contains("lifecycle.closedStatus") && message.contains("Completed"),
        "names the field and the nearest status: {message}"
    );
    // lifecycle.neverReopen names too.
    let (_, reason, message) = env
        .wait_condition("psaconnection/bad-reopen", "SettingsResolved", "False")
        .await;
    assert_eq!(reason, "NamesNotFound", "{message}");
    assert!(
        message.contains("lifecycle.neverReopen") && message.contains("Closed - Wontfix"),
        "names the field and the value: {message}"
    );
    // A mapping may only use a connection of its own namespace.
    let (_, reason, message) = {
        let out = env
            .cluster
            .kubectl(&[
                "get",
                "-n",
                "other",
                "customermapping/elsewhere",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}|{.status.conditions[?(@.type==\"Ready\")].message}",
            ])
            .await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (r, m) = text.split_once('|').unwrap_or((&text, ""));
        ((), r.to_string(), m.to_string())
    };
    assert_eq!(reason, "ConnectionNotFound", "{message}");

    // No hot loop: reconciles over a quiet window stay bounded. The sample connections
    // re-validate every 2 s (samples_for), so a few per second are expected; a loop makes
    // hundreds.
    let before = reconciles(&env).await;
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let after = reconciles(&env).await;
    let mut total = 0;
    for (kind, n) in &after {
        let d = n - before.get(kind).copied().unwrap_or(0);
        eprintln!("reconciles of {kind} in {window:?}: {d}");
        total += d;
    }
    assert!(
        total <= 40,
        "{total} reconciles in {window:?}: a hot loop ({before:?} → {after:?})"
    );
}
