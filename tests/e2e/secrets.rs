//! No secret value leaves the operator: a whole run (samples, alerts on both PSAs, a refused
//! token, a wrong PSA key, a failsafe e-mail with SMTP credentials) with `RUST_LOG=trace`, then
//! the operator's log, every Event, every status and the intake's problem documents are scanned
//! for every secret value used. And `Debug` of each credential type is redacted.

use std::time::Duration;

use base64::Engine;
use psa_operator::psa::bms::BmsConfig;
use psa_operator::psa::connectwise::ConnectWiseConfig;
use psa_operator::resolved::{ConnectionEntry, SmtpSettings, SmtpTls};
use psa_operator::sandbox::Faults;
use psa_operator::secret::SecretString;
use serde_json::json;

use crate::controllers::{patch, Env};

const SMTP_PASSWORD: &str = "smtp-Pw-9f3a1c77";
const WRONG_KEY: &str = "wrong-Key-51b2e0";

/// Every secret value of the run, and the encodings a careless log line would carry.
fn needles() -> Vec<String> {
    let raw = [
        "demo-public",
        "demo-private",
        "demo-password",
        "demo-cw-intake-token",
        "demo-bms-intake-token",
        SMTP_PASSWORD,
        WRONG_KEY,
    ];
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
    // ConnectWise Basic auth, Kubernetes Secret `data`, SMTP AUTH PLAIN.
    out.push(b64("demo+demo-public:demo-private"));
    out.extend(raw.iter().map(|s| b64(s)));
    out.push(b64(&format!("\0alerts\0{SMTP_PASSWORD}")));
    out
}

#[test]
fn debug_of_credential_types_is_redacted() {
    let cw = ConnectWiseConfig::new(
        "https://cw.example",
        "msp",
        "client-id",
        SecretString::new("pub-K3y"),
        SecretString::new("priv-K3y"),
    );
    let bms = BmsConfig::new("https://bms.example", "tenant", "api", "bms-Pa55");
    let smtp = SmtpSettings {
        host: "smtp.example".into(),
        port: 587,
        from: "a@b.example".into(),
        username: Some("alerts".into()),
        password: Some(SecretString::new("smtp-Pa55")),
        tls: SmtpTls::StartTls,
    };
    let entry = ConnectionEntry {
        intake_token: Some(SecretString::new("intake-T0ken")),
        ..Default::default()
    };
    let texts = [
        format!("{cw:?}"),
        format!("{bms:?}"),
        format!("{:?}", bms.credentials),
        format!("{smtp:?}"),
        format!("{entry:?}"),
        format!("{}", SecretString::new("plain-Secr3t")),
    ];
    for t in &texts {
        for secret in [
            "pub-K3y",
            "priv-K3y",
            "bms-Pa55",
            "smtp-Pa55",
            "intake-T0ken",
            "plain-Secr3t",
        ] {
            assert!(!t.contains(secret), "{secret} in {t}");
        }
    }
    assert!(texts[0].contains("redacted") && texts[4].contains("redacted"));
}

/// The intake did not answer: show how the operator's log ends (a crash, a port taken).
fn unreachable_intake(env: &Env, e: reqwest::Error) -> ! {
    let log = env.operator.log_text();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    panic!(
        "intake unreachable: {e}\noperator log, last lines first:\n{}",
        tail.join("\n")
    )
}

async fn kubectl(env: &Env, args: &[&str]) -> String {
    env.cluster.kubectl_ok(args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_in_logs_events_statuses_or_errors() {
    let env = Env::start_with_env(&[("RUST_LOG", "trace")]).await;
    let mut seen_texts: Vec<(String, String)> = vec![];
    patch(
        &env,
        "secret/smtp",
        "merge",
        &json!({"stringData": {"username": "alerts", "password": SMTP_PASSWORD,
            "allowInsecureAuth": "true"}})
        .to_string(),
    )
    .await;
    crate::fixtures::wait_ready(&env, &["psaconnection/demo-cw", "psaconnection/demo-bms"]).await;

    let http = reqwest::Client::new();
    let post = |conn: &'static str, token: &'static str, id: &str, org: &str| {
        http.post(crate::fixtures::alerts_url(&env, conn))
            .bearer_auth(token)
            .json(&json!({
                "id": id, "organization": org, "user": "jane@contoso.example",
                "alertType": "Too Many Downloads", "severity": "high", "title": "t",
                "description": "secret scan", "occurredAt": "2026-11-24T10:00:00Z"
            }))
    };
    // Refusals: wrong token, another connection's token.
    for (conn, token) in [("demo-cw", "demo-bms-intake-token"), ("demo-bms", "nope")] {
        let r = post(conn, token, "s0", "Contoso Ltd")
            .send()
            .await
            .unwrap_or_else(|e| unreachable_intake(&env, e));
        assert_eq!(r.status(), 401);
        seen_texts.push(("problem document".into(), r.text().await.unwrap()));
    }
    // Alerts on both PSAs.
    for (conn, token) in [
        ("demo-cw", "demo-cw-intake-token"),
        ("demo-bms", "demo-bms-intake-token"),
    ] {
        let r = post(conn, token, "s1", "Contoso Ltd")
            .send()
            .await
            .unwrap_or_else(|e| unreachable_intake(&env, e));
        assert_eq!(r.status(), 202);
    }
    env.eventually("the ConnectWise ticket", || async {
        let st = Env::sandbox_state(&env.cw).await;
        (!st["tickets"].as_array()?.is_empty()).then_some(())
    })
    .await;

    // A dead letter and its failsafe e-mail: the PSA is down and one attempt is allowed.
    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"dispatch":{"maxAttempts":1}}}"#,
    )
    .await;
    let smtp_dir = tempfile::tempdir().unwrap();
    let _smtp = if crate::dispatch::smtp::available() {
        Some(crate::dispatch::smtp::SmtpServer::start(2525, smtp_dir.path()).await)
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(3)).await; // let the patch reach the snapshot
    crate::fixtures::psa_outage(&env.cw);
    let r = post("demo-cw", "demo-cw-intake-token", "s2", "Contoso Ltd")
        .send()
        .await
        .unwrap_or_else(|e| unreachable_intake(&env, e));
    assert_eq!(r.status(), 202);
    env.eventually("a dead letter in the status", || async {
        let n = env
            .jsonpath("psaconnection/demo-cw", "{.status.dispatch.deadLetters}")
            .await;
        (n.parse::<u64>().ok()? >= 1).then_some(())
    })
    .await;
    // A wrong PSA key: AuthenticationFailed, with the PSA's error text in the status.
    patch(
        &env,
        "secret/demo-cw-keys",
        "merge",
        &json!({"stringData": {"privateKey": WRONG_KEY}}).to_string(),
    )
    .await;
    env.cw.admin().set_faults(Faults::default()).unwrap();
    env.wait_condition("psaconnection/demo-cw", "Authenticated", "False")
        .await;
    // Let the failsafe attempt (sent or failed) be logged.
    tokio::time::sleep(Duration::from_secs(3)).await;

    seen_texts.push(("operator log".into(), env.operator.log_text()));
    seen_texts.push((
        "Events".into(),
        kubectl(&env, &["get", "events", "-A", "-o", "yaml"]).await,
    ));
    seen_texts.push((
        "statuses".into(),
        kubectl(&env, &["get", "psa", "-A", "-o", "yaml"]).await,
    ));
    seen_texts.push((
        "describe".into(),
        kubectl(&env, &["describe", "psaconnection", "-n", "psa"]).await,
    ));
    assert!(
        seen_texts[2].1.lines().count() > 100,
        "the trace log is there to scan"
    );
    let mut hits = vec![];
    for (what, text) in &seen_texts {
        for needle in needles() {
            for line in text.lines().filter(|l| l.contains(&needle)) {
                hits.push(format!(
                    "{what}: {needle}: {}",
                    &line[..line.len().min(300)]
                ));
            }
        }
    }
    eprintln!(
        "secret scan: {} texts, {} bytes, {} secret values (+ encodings), {} hits",
        seen_texts.len(),
        seen_texts.iter().map(|t| t.1.len()).sum::<usize>(),
        needles().len(),
        hits.len()
    );
    assert!(
        hits.is_empty(),
        "secret values leaked:\n{}",
        hits.join("\n")
    );
}
