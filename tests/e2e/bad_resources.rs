//! Semantically bad resources (the API server accepts them; only the PSA or the cluster can say
//! they are wrong): each gets a condition with a reason, and none makes the operator spin — the
//! reconcile count over a window, read from its own `/metrics`, stays bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::controllers::{apply_text, Env};

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

const BAD: &str = r#"
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
kind: PsaConnection
metadata: {name: no-secret, namespace: psa}
spec:
  provider:
    connectWise: {url: CW_URL, companyId: demo, clientId: c, credentialsSecretRef: {name: does-not-exist}}
---
apiVersion: psa-operator.io/v1alpha1
kind: PsaConnection
metadata: {name: half-secret, namespace: psa}
spec:
  provider:
    connectWise: {url: CW_URL, companyId: demo, clientId: c, credentialsSecretRef: {name: half-keys}}
---
apiVersion: psa-operator.io/v1alpha1
kind: PsaConnection
metadata: {name: bad-names, namespace: psa}
spec:
  provider:
    connectWise: {url: CW_URL, companyId: demo, clientId: 00000000-0000-0000-0000-000000000001, credentialsSecretRef: {name: demo-cw-keys}}
  ticket:
    board: Security Alerts
    status: {value: Nwe}
    priority: {value: Priority 9 - Imaginary}
---
apiVersion: psa-operator.io/v1alpha1
kind: PsaConnection
metadata: {name: bad-lifecycle, namespace: psa}
spec:
  provider:
    connectWise: {url: CW_URL, companyId: demo, clientId: 00000000-0000-0000-0000-000000000001, credentialsSecretRef: {name: demo-cw-keys}}
  ticket:
    board: Security Alerts
  lifecycle: {onResolve: Close, closedStatus: Complete}
---
apiVersion: psa-operator.io/v1alpha1
kind: PsaConnection
metadata: {name: bad-reopen, namespace: psa}
spec:
  provider:
    connectWise: {url: CW_URL, companyId: demo, clientId: 00000000-0000-0000-0000-000000000001, credentialsSecretRef: {name: demo-cw-keys}}
  ticket:
    board: Security Alerts
  lifecycle: {reopenWithin: 24h, neverReopen: ["Closed - Wontfix"]}
---
apiVersion: psa-operator.io/v1alpha1
kind: CustomerMapping
metadata: {name: elsewhere, namespace: other}
spec:
  connectionRef: {name: demo-cw}
  organization: Contoso Ltd
  company: {identifier: CONTOSO}
---
apiVersion: psa-operator.io/v1alpha1
kind: CustomerMapping
metadata: {name: unknown-company, namespace: psa}
spec:
  connectionRef: {name: demo-cw}
  organization: Unknown Org
  company: {name: No Such Company Ltd}
---
apiVersion: psa-operator.io/v1alpha1
kind: ContractService
metadata: {name: on-missing-connection, namespace: psa}
spec:
  connectionRef: {name: no-such-connection}
  name: Orphan Service
  cost: "1.00"
  price: "2.00"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resources_get_a_reason_and_no_hot_loop() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    apply_text(&env.cluster, &BAD.replace("CW_URL", &env.cw.base_url())).await;

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
