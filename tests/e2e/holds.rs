//! What a connection holds and what it lets through, with the operator as a process, kubectl and
//! the ConnectWise sandbox: a sample sent with `send-sample --even-if-suspended` becomes a ticket
//! while the connection is suspended and the alerts held by the suspension wait for its end;
//! `spec.dispatch.unresolvedHold` of a connection beats the operator's `--unresolved-hold`.

use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::controllers::{patch, Env};
use crate::dispatch::smtp;
use crate::support::bin;

const TOKEN: &str = "demo-cw-intake-token";

async fn post_alert(env: &Env, alert: &Value) -> Value {
    let r = crate::fixtures::post_alert(env, "demo-cw", TOKEN, alert).await;
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

fn alert(id: &str, organization: &str, user: &str) -> Value {
    crate::fixtures::intake_alert(id, organization, user, "Too Many Downloads")
}

async fn tickets(env: &Env) -> Vec<Value> {
    Env::sandbox_state(&env.cw).await["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `psa-operator send-sample` as a user runs it: the token read from the cluster of
/// `$KUBECONFIG`, the intake of the running operator.
async fn send_sample(env: &Env, extra: &[&str]) -> (bool, String) {
    let mut args: Vec<String> = [
        "send-sample",
        "-n",
        "psa",
        "--connection",
        "demo-cw",
        "--organization",
        "Fabrikam Inc",
        "--user",
        "sam@fabrikam.example",
        "--intake-url",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("http://127.0.0.1:{}", env.intake_port));
    args.extend(extra.iter().map(|s| s.to_string()));
    let kubeconfig = env.cluster.kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(bin())
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

/// The second seed's order: send a sample, then Enable. While suspended exactly one ticket
/// appears — the sample's, on the company its organization maps to — and the alert the
/// suspension holds is delivered only once the connection is enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_is_delivered_while_suspended_and_held_alerts_wait_for_enable() {
    let env = Env::start().await;
    crate::fixtures::wait_ready(
        &env,
        &["customermapping/fabrikam", "customermapping/contoso"],
    )
    .await;
    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"suspend":true}}"#,
    )
    .await;
    env.wait_condition("psaconnection/demo-cw", "Suspended", "True")
        .await;

    let answer = post_alert(
        &env,
        &alert("held-1", "Contoso Ltd", "jane@contoso.example"),
    )
    .await;
    assert_eq!(answer["held"], true, "{answer}");

    // Without the flag a sample is held like any alert, and the command says so.
    let (ok, out) = send_sample(&env, &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains("\"held\": true"), "{out}");
    assert!(
        out.contains("--even-if-suspended"),
        "the hint names the flag: {out}"
    );

    let (ok, out) = send_sample(&env, &["--even-if-suspended"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("\"held\": false"), "{out}");
    let sample = env
        .eventually("the sample's ticket", || async {
            tickets(&env).await.into_iter().next()
        })
        .await;
    assert_eq!(sample["company"]["name"], "Fabrikam Inc", "{sample}");
    assert!(
        sample["summary"]
            .as_str()
            .is_some_and(|s| s.contains("Multiple MFA Failures")),
        "the sample alert's summary: {sample}"
    );
    // Give the scheduler many rounds to (wrongly) deliver a held alert.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = tickets(&env).await;
    assert_eq!(all.len(), 1, "only the sample while suspended: {all:#?}");

    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"suspend":false}}"#,
    )
    .await;
    let all = env
        .eventually("the held alerts delivered after enable", || async {
            let t = tickets(&env).await;
            (t.len() == 3).then_some(t)
        })
        .await;
    let contoso: Vec<&Value> = all
        .iter()
        .filter(|t| t["company"]["identifier"] == "CONTOSO")
        .collect();
    assert_eq!(contoso.len(), 1, "the held alert's ticket: {all:#?}");
    let fabrikam = all
        .iter()
        .filter(|t| t["company"]["name"] == "Fabrikam Inc")
        .count();
    assert_eq!(
        fabrikam, 2,
        "the held sample, then its own ticket: {all:#?}"
    );
}

/// The operator holds alerts of a not-Ready organization for 15 minutes; the connection says
/// 2 s. The alert becomes a dead letter within seconds (a DeadLetter Event on the connection,
/// `status.dispatch.deadLetters`, the failsafe e-mail with the connection's subject prefix),
/// never a ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_unresolved_hold_beats_the_operators_default() {
    let env = Env::start_with_env(&[("PSA_UNRESOLVED_HOLD", "15m")]).await;
    // A mapping whose company the PSA does not have: its organization is held, not sent to the
    // catch-all company.
    let mapping = "apiVersion: psa-operator.io/v1alpha1\nkind: CustomerMapping\n\
                   metadata: {name: northwind, namespace: psa}\n\
                   spec:\n  connectionRef: {name: demo-cw}\n  organization: Northwind Traders\n  \
                   company: {identifier: NORTHWIND-NOT-IN-PSA}\n";
    crate::controllers::apply_text(&env.cluster, mapping).await;
    // A real SMTP server for the failsafe e-mail (the samples' Secret points at port 2525).
    let smtp = if smtp::available() {
        let port = smtp::free_port();
        let server = smtp::SmtpServer::start(port, env.cluster.dir.path()).await;
        let secret = format!(r#"{{"stringData":{{"port":"{port}"}}}}"#);
        patch(&env, "secret/smtp", "merge", &secret).await;
        Some(server)
    } else {
        None
    };
    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"dispatch":{"unresolvedHold":"2s"},"failsafe":{"subjectPrefix":"[SOC][demo-cw]"}}}"#,
    )
    .await;
    env.wait_condition("customermapping/northwind", "Ready", "False")
        .await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    // The override is in the connection's settings before the alert comes.
    env.eventually("the generation with the hold observed", || async {
        let generation = env
            .jsonpath("psaconnection/demo-cw", "{.metadata.generation}")
            .await;
        let observed = env
            .jsonpath("psaconnection/demo-cw", "{.status.observedGeneration}")
            .await;
        (!generation.is_empty() && generation == observed).then_some(())
    })
    .await;

    let posted = std::time::Instant::now();
    let answer = post_alert(
        &env,
        &alert("nw-1", "Northwind Traders", "ann@northwind.example"),
    )
    .await;
    assert_eq!(answer["accepted"], 1, "{answer}");

    let client = env.cluster.client().await;
    let events: Api<K8sEvent> = Api::namespaced(client, "psa");
    let note = env
        .eventually("a DeadLetter Event on the connection", || async {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("DeadLetter"))
                .find(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo-cw"))
                .and_then(|e| e.note)
        })
        .await;
    let waited = posted.elapsed();
    assert!(
        waited < Duration::from_secs(120),
        "dead-lettered after {waited:?}, not after the operator's 15 minutes"
    );
    assert!(note.contains("held for"), "{note}");
    assert!(
        note.to_lowercase().contains("northwind"),
        "the reason names the mapping: {note}"
    );
    env.wait_jsonpath(
        "psaconnection/demo-cw",
        "{.status.dispatch.deadLetters}",
        "1",
    )
    .await;
    assert!(
        tickets(&env).await.is_empty(),
        "no ticket for a held organization"
    );
    // The failsafe e-mail, with the connection's subject prefix, says what was held and why.
    if let Some(server) = &smtp {
        let mail = env
            .eventually("the failsafe e-mail", || async {
                server.messages().into_iter().next()
            })
            .await;
        let subject = smtp::subject(&mail);
        assert!(subject.starts_with("[SOC][demo-cw]"), "{subject}");
        assert!(subject.ends_with("integration failsafe used"), "{subject}");
        let body = smtp::body(&mail);
        assert!(body.contains("nw-1"), "{body}");
        assert!(body.contains("held for"), "{body}");
    }

    // The broken mapping is one problem, so one Warning Event — not its condition and Ready
    // again — and reconciling it again adds none.
    // (reason, times observed): a repeat would be a new object or a series count above 1.
    let warnings = |events: Vec<K8sEvent>| -> Vec<(String, i32)> {
        let mut v: Vec<(String, i32)> = events
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("northwind"))
            .map(|e| {
                let times = e.series.as_ref().map(|s| s.count).unwrap_or(1);
                (e.reason.unwrap_or_default(), times)
            })
            .collect();
        v.sort();
        v
    };
    let first = warnings(events.list(&ListParams::default()).await.unwrap().items);
    let (_, ready_reason, _) = env.condition("customermapping/northwind", "Ready").await;
    assert_eq!(
        first,
        [(ready_reason, 1)],
        "one Warning Event for the one problem"
    );
    patch(
        &env,
        "customermapping/northwind",
        "merge",
        r#"{"metadata":{"annotations":{"psa-operator.io/reconcile-requested-at":"again"}}}"#,
    )
    .await;
    // A negative: give the re-check time to (wrongly) emit.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = warnings(events.list(&ListParams::default()).await.unwrap().items);
    assert_eq!(
        again, first,
        "an unchanged problem makes no new Event object"
    );
}
