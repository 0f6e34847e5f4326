//! `psa-operator send-sample`: posts a realistic sample event through a connection's intake —
//! the seed guides' "Send Sample Finding" / "Simulate from" buttons — and prints the answer.
//!
//! The sample goes through the real intake (auth, validation, durable store), so a `202` proves
//! the whole path up to the queue; the ticket then appears in the PSA like any other. With
//! `--even-if-suspended` it is marked (`intake::sample`) and delivered while the connection is
//! still suspended — the second seed's order: send a sample, then enable.

use anyhow::{bail, Context as _};
use kube::Api;
use serde_json::{json, Value};

use super::{SampleKind, SendSampleArgs};
use crate::api::PsaConnection;
use crate::dispatch::intake::sample::{EVEN_IF_SUSPENDED, SAMPLE_HEADER};
use crate::secret::SecretString;

/// A sample alert: a medium-severity "Multiple MFA Failures" for `user` at `organization`.
pub fn sample_alert(id: &str, organization: &str, user: &str, occurred_at: &str) -> Value {
    json!({
        "id": id,
        "organization": organization,
        "user": user,
        "alertType": "Multiple MFA Failures",
        "severity": "medium",
        "title": format!("Sample alert: multiple MFA failures for {user}"),
        "description": format!(
            "Sample alert sent by `psa-operator send-sample`: 6 failed multi-factor \
             authentication attempts for {user} within 10 minutes from 203.0.113.42. \
             No action is needed; close this ticket."
        ),
        "occurredAt": occurred_at,
        "product": "Microsoft 365",
    })
}

/// A sample finding (`created`): a priority-1 "Impossible travel" threat.
pub fn sample_finding(id: &str, organization: &str, user: &str, occurred_at: &str) -> Value {
    json!({
        "id": format!("{id}-created"),
        "findingId": id,
        "event": "created",
        "organization": organization,
        "name": format!("Sample finding: impossible travel for {user}"),
        "type": "Threat",
        "priority": 1,
        "status": "Open",
        "description": format!(
            "Sample finding sent by `psa-operator send-sample`: successful sign-ins for {user} \
             from two countries 20 minutes apart. No action is needed; close this ticket."
        ),
        "occurredAt": occurred_at,
    })
}

/// The intake URL of a connection's endpoint.
pub fn endpoint_url(base: &str, namespace: &str, connection: &str, kind: SampleKind) -> String {
    let path = match kind {
        SampleKind::Alert => "alerts",
        SampleKind::Finding => "findings",
    };
    format!(
        "{}/v1/namespaces/{}/connections/{}/{path}",
        base.trim_end_matches('/'),
        urlencoding::encode(namespace),
        urlencoding::encode(connection)
    )
}

pub async fn run(args: SendSampleArgs) -> anyhow::Result<()> {
    let token = match &args.token {
        Some(t) => SecretString::new(t.clone()),
        None => token_from_cluster(&args).await?,
    };
    let now = chrono::Utc::now();
    let id = format!(
        "sample-{}-{:08x}",
        now.timestamp_millis(),
        rand::random::<u32>()
    );
    let occurred_at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = match args.kind {
        SampleKind::Alert => sample_alert(&id, &args.organization, &args.user, &occurred_at),
        SampleKind::Finding => sample_finding(&id, &args.organization, &args.user, &occurred_at),
    };
    let url = endpoint_url(
        &args.intake_url,
        &args.namespace,
        &args.connection,
        args.kind,
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut request = client.post(&url).bearer_auth(token.expose()).json(&body);
    if args.even_if_suspended {
        request = request.header(SAMPLE_HEADER, EVEN_IF_SUSPENDED);
    }
    let resp = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let answer = serde_json::from_str::<Value>(&text).ok();
    let held = answer.as_ref().and_then(|v| v["held"].as_bool()) == Some(true);
    let shown = answer
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or(text);
    println!("POST {url}");
    println!(
        "sample {} {id} from {:?}",
        kind_word(args.kind),
        args.organization
    );
    println!("{status}");
    println!("{shown}");
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("the intake did not accept the sample ({status})");
    }
    if held {
        println!("{}", held_hint(args.even_if_suspended));
    }
    Ok(())
}

/// Why an accepted sample has no ticket yet, and what to do about it.
fn held_hint(even_if_suspended: bool) -> &'static str {
    if even_if_suspended {
        "held: the connection's settings do not resolve yet (see its SettingsResolved \
         condition); the sample is delivered once they do"
    } else {
        "held: the connection is suspended or its settings do not resolve yet; the ticket \
         appears when it is enabled (--even-if-suspended delivers a sample while suspended)"
    }
}

/// What to tell the user when `--connection` names no PsaConnection.
fn missing_connection(namespace: &str, name: &str) -> String {
    format!(
        "there is no PsaConnection {name:?} in namespace {namespace:?} \
         (`kubectl get psaconnections -n {namespace}` lists them; --namespace/-n picks another namespace)"
    )
}

/// A kube error as one sentence: the API server's message, not the Rust structure around it.
fn kube_error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} ({})", status.message, status.reason)
        }
        other => other.to_string(),
    }
}

fn kind_word(kind: SampleKind) -> &'static str {
    match kind {
        SampleKind::Alert => "alert",
        SampleKind::Finding => "finding",
    }
}

/// Reads the intake token from the Secret named in the connection's `spec.intake`.
async fn token_from_cluster(args: &SendSampleArgs) -> anyhow::Result<SecretString> {
    let client = crate::operator::kube_client(args.kubeconfig.as_deref())
        .await
        .context("no --token given and no cluster to read the intake Secret from")?;
    let api: Api<PsaConnection> = Api::namespaced(client.clone(), &args.namespace);
    let conn = match api.get_opt(&args.connection).await {
        Ok(Some(c)) => c,
        Ok(None) => bail!("{}", missing_connection(&args.namespace, &args.connection)),
        Err(e) => bail!(
            "cannot read PsaConnection {}/{}: {}",
            args.namespace,
            args.connection,
            kube_error_text(&e)
        ),
    };
    let Some(intake) = conn.spec.intake else {
        bail!(
            "PsaConnection {}/{} has no spec.intake.tokenSecretRef; pass --token",
            args.namespace,
            args.connection
        );
    };
    let secret = crate::controller::secrets::read_secret(
        &client,
        &args.namespace,
        &intake.token_secret_ref.name,
    )
    .await?;
    Ok(secret.require("token")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::event::EventKind;
    use crate::dispatch::intake::{alerts::parse_alerts, findings::parse_findings};

    #[test]
    fn samples_pass_the_intake_validation() {
        let (org, user, at) = ("Fabrikam", "bob@fabrikam.example", "2026-11-24T16:00:00Z");
        let a = sample_alert("s-1", org, user, at).to_string();
        let ev = parse_alerts(a.as_bytes(), 100).unwrap().remove(0);
        assert_eq!(ev.organization, "Fabrikam");
        assert_eq!(ev.user.as_deref(), Some("bob@fabrikam.example"));
        assert_eq!(ev.severity.as_deref(), Some("medium"));

        let f = sample_finding("s-2", org, user, at).to_string();
        let ev = parse_findings(f.as_bytes(), 100).unwrap().remove(0);
        assert_eq!(ev.kind, EventKind::FindingCreated);
        assert_eq!(ev.finding_id.as_deref(), Some("s-2"));
        assert_eq!(ev.priority.as_deref(), Some("1"));
    }

    #[test]
    fn a_missing_connection_is_named_without_debug_output() {
        let m = missing_connection("psa", "nope");
        assert!(
            m.contains("no PsaConnection \"nope\" in namespace \"psa\""),
            "{m}"
        );
        assert!(m.contains("kubectl get psaconnections -n psa"), "{m}");
        assert!(!m.contains('{') && !m.contains("ErrorResponse"), "{m}");
    }

    #[test]
    fn endpoint_urls() {
        assert_eq!(
            endpoint_url(
                "http://127.0.0.1:8080/",
                "psa",
                "acme-cw",
                SampleKind::Alert
            ),
            "http://127.0.0.1:8080/v1/namespaces/psa/connections/acme-cw/alerts"
        );
        assert_eq!(
            endpoint_url("https://x.example", "a b", "c", SampleKind::Finding),
            "https://x.example/v1/namespaces/a%20b/connections/c/findings"
        );
    }
}
