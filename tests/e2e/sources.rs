//! The mapped intake sources end to end on the ConnectWise sandbox: `spec.sources` and
//! `spec.grafana` applied with kubectl, a Grafana alert, a signed generic webhook and a
//! CloudEvents binary-mode event each become a ticket on the mapped company; a bad signature
//! is a 401 problem and stores nothing.

use ring::hmac;
use serde_json::{json, Value};

use crate::controllers::{apply_text, patch, Env};
use crate::fixtures::wait_ready;

const GRAFANA: &str = include_str!("../fixtures/grafana-11-webhook-firing.json");
const SAAS: &str = include_str!("../fixtures/saas-webhook-incident.json");
const CLOUDEVENT: &str = include_str!("../fixtures/cloudevents-1.0-structured.json");
const TOKEN: &str = "demo-cw-intake-token";
const SIGNING_SECRET: &str = "edr-signing-secret-for-the-e2e";

const SOURCES: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: edr-signing, namespace: psa}
stringData: {secret: edr-signing-secret-for-the-e2e}
---
apiVersion: psa-operator.io/v1alpha1
kind: PsaConnection
metadata: {name: demo-cw, namespace: psa}
spec:
  grafana: {organizationLabel: organization}
  sources:
    - name: edr
      organization: payload.organization.name
      alertType: "'EDR incident'"
      id: payload.id
      user: payload.incident_report.user
      severity: payload.incident_report.severity
      title: payload.incident_report.subject
      description: payload.incident_report.summary
      signature:
        hmacSha256: {header: X-EDR-Signature, secretRef: {name: edr-signing}}
    - name: siem
      organization: payload.customer.name
      alertType: payload.rule
      user: payload.account
      severity: payload.severity.lowerAscii()
      cloudEventTypes: ["com.example.siem.*"]
"#;

fn url(env: &Env, path: &str) -> String {
    format!(
        "http://127.0.0.1:{}/v1/namespaces/psa/connections/demo-cw/{path}",
        env.intake_port
    )
}

fn signed(body: &str, secret: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag: String = hmac::sign(&key, body.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={tag}")
}

async fn post_webhook(env: &Env, body: &str, signature: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url(env, "webhook/edr"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("x-edr-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .expect("intake answers")
}

/// The ticket whose summary starts with `summary`, once it exists.
async fn ticket(env: &Env, summary: &str) -> Value {
    env.eventually(summary, || async {
        let st = Env::sandbox_state(&env.cw).await;
        st["tickets"]
            .as_array()?
            .iter()
            .find(|t| {
                t["summary"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(summary))
            })
            .cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_signed_webhook_and_cloudevents_become_tickets() {
    let env = Env::start().await;
    wait_ready(&env, &["psaconnection/demo-cw", "customermapping/contoso"]).await;
    // The signing Secret first, then the sources (a merge patch of the sample connection).
    let (secret, connection) = SOURCES.split_once("---").unwrap();
    apply_text(&env.cluster, secret).await;
    let spec = serde_yaml::from_str::<Value>(connection).unwrap()["spec"].clone();
    let sources = json!({ "spec": spec }).to_string();
    patch(&env, "psaconnection/demo-cw", "merge", &sources).await;

    // A bad signature: 401 problem naming the header, whatever the snapshot's age.
    let forged = env
        .eventually("the edr source is loaded", || async {
            let r = post_webhook(&env, SAAS, &signed(SAAS, "guessed-secret")).await;
            (r.status() == 401).then_some(r)
        })
        .await;
    assert!(forged.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));
    let problem: Value = forged.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://psa-operator.io/problems/bad-signature"
    );
    assert_eq!(
        problem["errors"][0]["header"], "x-edr-signature",
        "{problem}"
    );

    // The signed webhook → a ticket for Contoso (the user's e-mail is not a contact there).
    let r = post_webhook(&env, SAAS, &signed(SAAS, SIGNING_SECRET)).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let edr = ticket(&env, "EDR incident — bob@contoso.example").await;
    assert_eq!(edr["company"]["identifier"], "CONTOSO", "{edr}");
    assert_eq!(edr["priority"]["name"], "Priority 1 - Critical", "{edr}");

    // Grafana's webhook → a ticket for the firing alert; the resolved one had no ticket.
    let r = reqwest::Client::new()
        .post(url(&env, "grafana"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(GRAFANA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let grafana = ticket(&env, "Impossible travel — jane@contoso.example").await;
    assert_eq!(grafana["company"]["identifier"], "CONTOSO", "{grafana}");
    assert_eq!(
        grafana["priority"]["name"], "Priority 2 - High",
        "{grafana}"
    );

    // A CloudEvent in binary mode → a ticket mapped by the siem source.
    let structured: Value = serde_json::from_str(CLOUDEVENT).unwrap();
    let mut data = structured["data"].clone();
    data["account"] = json!("ann@contoso.example");
    let r = reqwest::Client::new()
        .post(url(&env, "cloudevents"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-type", "com.example.siem.finding.created")
        .header("ce-source", "https://siem.example/tenants/7f3c")
        .header("ce-id", "e2e-binary-1")
        .header("ce-subject", "finding/3f9a6c1e")
        .body(data.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let ce = ticket(&env, "Impossible travel — ann@contoso.example").await;
    assert_eq!(ce["company"]["identifier"], "CONTOSO", "{ce}");

    // Three tickets in all: the forged request stored nothing.
    let st = Env::sandbox_state(&env.cw).await;
    assert_eq!(
        st["tickets"].as_array().unwrap().len(),
        3,
        "{}",
        st["tickets"]
    );

    // An expression that does not compile: the connection says which one.
    let broken = json!({"spec": {"sources": [{"name": "edr",
        "organization": "payload.organization.", "alertType": "'EDR incident'"}]}});
    let (reason, message) =
        crate::fixtures::merge_until_unresolved(&env, "psaconnection/demo-cw", &broken.to_string())
            .await;
    assert_eq!(reason, "InvalidSource", "{message}");
    assert!(message.contains("sources[0].organization"), "{message}");
}
