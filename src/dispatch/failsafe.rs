//! The failsafe e-mail: when an event cannot become a ticket or note (retries exhausted, a
//! permanent PSA error, no company to route to, the connection never became Ready), its full
//! content goes by e-mail to `failsafe.recipients`, with a subject ending in
//! "integration failsafe used" (seed 003) so mail rules can catch it. The event stays a dead
//! letter either way; a mail that fails is retried later, so nothing is dropped.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::dispatch::decide::render;
use crate::dispatch::event::Envelope;
use crate::resolved::{Failsafe, SmtpSettings, SmtpTls};

/// Every failsafe subject ends with this.
pub const SUBJECT_SUFFIX: &str = "integration failsafe used";

/// What a failsafe subject starts with unless `failsafe.subjectPrefix` says otherwise.
pub const DEFAULT_SUBJECT_PREFIX: &str = "[psa-operator]";

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FailsafeError {
    #[error("invalid e-mail address {address:?}: {message}")]
    Address { address: String, message: String },
    #[error("cannot build the failsafe e-mail: {0}")]
    Build(String),
    #[error("SMTP server {host}:{port} failed: {message}")]
    Smtp {
        host: String,
        port: u16,
        message: String,
    },
}

/// Why SMTP credentials must not be used with these settings: without TLS, `AUTH PLAIN` sends
/// the password in clear. Allowed only when the Secret opts in (`allowInsecureAuth: "true"`),
/// e.g. for a relay on loopback. Pure; the connection reconciler reports it on the Secret's
/// `tls` key.
pub fn clear_text_auth_problem(
    tls: SmtpTls,
    has_credentials: bool,
    allow_insecure_auth: bool,
) -> Option<&'static str> {
    (tls == SmtpTls::None && has_credentials && !allow_insecure_auth).then_some(
        "with a username, the password would cross the network in clear: use starttls or tls, \
         or set allowInsecureAuth: \"true\" in the Secret for a trusted relay",
    )
}

/// Largest failsafe body: the event's texts are bounded by the intake, but a dead letter's
/// labels and annotations add up; a mail server refuses (and a mailbox chokes on) megabytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Share of the body for the rendered alert and for the raw event.
const MAX_DETAILS: usize = 16 * 1024;
const MAX_JSON: usize = 32 * 1024;

/// `text` cut to `max` bytes with a line saying how much was left out.
fn bounded_section(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let kept = render::cut_bytes(text, max);
    format!(
        "{kept}\n[… {} more bytes not shown; `psa-operator replay` keeps the whole event]",
        text.len() - kept.len()
    )
}

/// Subject and body of a failsafe e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailsafeMail {
    pub subject: String,
    pub body: String,
}

/// Composes the e-mail for a dead-lettered event; `reason` says why no ticket was made;
/// `prefix` starts the subject (mail rules of the MSP key on it; empty = no prefix).
pub fn compose(envelope: &Envelope, reason: &str, prefix: &str) -> FailsafeMail {
    let e = &envelope.event;
    let mut what = e.alert_type.clone();
    if let Some(user) = e.user.as_deref().filter(|u| !u.trim().is_empty()) {
        what.push_str(" — ");
        what.push_str(user);
    }
    if !e.organization.trim().is_empty() {
        what.push_str(&format!(" ({})", e.organization));
    }
    let what = render::cut_chars(&render::one_line(&what), 150);
    // One line whatever the spec holds: a line break in a header would start another header.
    let prefix = render::cut_chars(&render::one_line(prefix), 60);
    let subject = if prefix.is_empty() {
        format!("{what}: {SUBJECT_SUFFIX}")
    } else {
        format!("{prefix} {what}: {SUBJECT_SUFFIX}")
    };
    let json = serde_json::to_string_pretty(e).unwrap_or_else(|_| "(not serialisable)".into());
    let json = bounded_section(&json, MAX_JSON);
    let details = bounded_section(&render::description(e), MAX_DETAILS);
    let reason = render::cut_chars(reason, 2000);
    let body = format!(
        "psa-operator could not create a ticket or note for this {kind} and kept it as a dead letter.\n\
         Replay it with `psa-operator replay` once the cause is fixed.\n\n\
         Connection: {ns}/{name}\nReason: {reason}\n\n\
         ---- Alert ----\n{details}\n\n---- Full event ----\n{json}\n",
        kind = e.kind.as_str(),
        ns = envelope.namespace,
        name = envelope.connection,
    );
    FailsafeMail { subject, body }
}

fn mailbox(address: &str) -> Result<Mailbox, FailsafeError> {
    address
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| FailsafeError::Address {
            address: address.to_string(),
            message: e.to_string(),
        })
}

/// Sends the mail to every recipient in one SMTP transaction.
pub async fn send(failsafe: &Failsafe, mail: &FailsafeMail) -> Result<(), FailsafeError> {
    let smtp = &failsafe.smtp;
    let mut builder = Message::builder()
        .from(mailbox(&smtp.from)?)
        .subject(mail.subject.clone());
    for r in &failsafe.recipients {
        builder = builder.to(mailbox(r)?);
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| FailsafeError::Build(e.to_string()))?;
    transport(smtp)?
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| smtp_error(smtp, e.to_string()))
}

fn smtp_error(smtp: &SmtpSettings, message: String) -> FailsafeError {
    FailsafeError::Smtp {
        host: smtp.host.clone(),
        port: smtp.port,
        message,
    }
}

fn transport(smtp: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, FailsafeError> {
    type T = AsyncSmtpTransport<Tokio1Executor>;
    let builder = match smtp.tls {
        // Plain SMTP: only sensible on a trusted network or loopback; the user chose it.
        SmtpTls::None => T::builder_dangerous(&smtp.host),
        SmtpTls::StartTls => {
            T::starttls_relay(&smtp.host).map_err(|e| smtp_error(smtp, e.to_string()))?
        }
        SmtpTls::Tls => T::relay(&smtp.host).map_err(|e| smtp_error(smtp, e.to_string()))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = smtp.username.as_deref().filter(|u| !u.is_empty()) {
        let password = smtp
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.to_string(), password));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::dispatch::event::Event;
    use crate::secret::SecretString;

    fn envelope(user: Option<&str>, alert_type: &str) -> Envelope {
        Envelope {
            namespace: "psa".into(),
            connection: "acme-cw".into(),
            accepted_at_ms: 0,
            event: Event {
                id: "sa-9".into(),
                user: user.map(Into::into),
                alert_type: alert_type.into(),
                description: "412 files".into(),
                url: Some("https://alerts.example/e/sa-9".into()),
                ..crate::dispatch::event::Event::sample()
            },
        }
    }

    #[test]
    fn subjects_end_with_the_suffix() {
        let long = "x".repeat(400);
        let table = [
            (
                envelope(Some("jane@contoso.example"), "Too Many Downloads"),
                "[psa-operator] Too Many Downloads — jane@contoso.example (Contoso Ltd): integration failsafe used",
            ),
            (
                envelope(None, "Line\nbreak"),
                "[psa-operator] Line break (Contoso Ltd): integration failsafe used",
            ),
        ];
        for (env, want) in table {
            assert_eq!(compose(&env, "r", DEFAULT_SUBJECT_PREFIX).subject, want);
        }
        let s = compose(&envelope(None, &long), "r", DEFAULT_SUBJECT_PREFIX).subject;
        assert!(
            s.ends_with(SUBJECT_SUFFIX) && s.chars().count() < 200,
            "{s}"
        );
    }

    #[test]
    fn the_subject_prefix_is_configurable_and_stays_one_line() {
        let env = envelope(None, "Too Many Downloads");
        let table = [
            (
                "[SOC][Contoso]",
                "[SOC][Contoso] Too Many Downloads (Contoso Ltd): integration failsafe used",
            ),
            (
                "",
                "Too Many Downloads (Contoso Ltd): integration failsafe used",
            ),
            (
                "ALERT\r\nBcc: x@evil.example",
                "ALERT Bcc: x@evil.example Too Many Downloads (Contoso Ltd): integration failsafe used",
            ),
        ];
        for (prefix, want) in table {
            assert_eq!(compose(&env, "r", prefix).subject, want, "{prefix:?}");
        }
    }

    #[test]
    fn body_carries_the_whole_alert_and_the_reason() {
        let m = compose(
            &envelope(Some("jane@contoso.example"), "Too Many Downloads"),
            "PSA rejected the request (HTTP 400): board inactive",
            DEFAULT_SUBJECT_PREFIX,
        );
        for part in [
            "Connection: psa/acme-cw",
            "Reason: PSA rejected the request (HTTP 400): board inactive",
            "412 files",
            "Severity: critical",
            "Link: https://alerts.example/e/sa-9",
            "\"id\": \"sa-9\"",
        ] {
            assert!(m.body.contains(part), "missing {part:?}\n{}", m.body);
        }
    }

    /// The red-team dead letter (6.2 MB failsafe e-mail): whatever the event holds, the body
    /// stays within `MAX_BODY` and still names the connection and the reason.
    #[test]
    fn bodies_are_bounded() {
        let mut env = envelope(Some("jane@contoso.example"), "Too Many Downloads");
        env.event.description = "d".repeat(8 * 1024);
        for i in 0..64 {
            env.event.labels.insert(format!("l{i}"), "v".repeat(1024));
        }
        for i in 0..32 {
            env.event
                .annotations
                .insert(format!("a{i}"), "a".repeat(8 * 1024));
        }
        env.event.user = Some("u".repeat(1_500_000));
        let m = compose(&env, &"r".repeat(100_000), "");
        assert!(m.body.len() <= MAX_BODY, "{} bytes", m.body.len());
        assert!(m.body.contains("Connection: psa/acme-cw"));
        assert!(m.body.contains("more bytes not shown"));
        assert!(m.subject.chars().count() < 200);
    }

    #[test]
    fn credentials_need_tls_unless_the_secret_allows_clear_text() {
        let table = [
            (SmtpTls::None, true, false, true),
            (SmtpTls::None, true, true, false),
            (SmtpTls::None, false, false, false),
            (SmtpTls::StartTls, true, false, false),
            (SmtpTls::Tls, true, false, false),
        ];
        for (tls, creds, allow, refused) in table {
            assert_eq!(
                clear_text_auth_problem(tls, creds, allow).is_some(),
                refused,
                "{tls:?} {creds} {allow}"
            );
        }
    }

    #[tokio::test]
    async fn bad_addresses_and_dead_servers_are_errors_without_secrets() {
        let mut fs = Failsafe {
            recipients: vec!["not an address".into()],
            smtp: SmtpSettings {
                host: "127.0.0.1".into(),
                port: 1,
                from: "psa@example.com".into(),
                username: Some("u".into()),
                password: Some(SecretString::new("hunter2")),
                tls: SmtpTls::None,
            },
            subject_prefix: None,
        };
        let mail = compose(&envelope(None, "X"), "r", DEFAULT_SUBJECT_PREFIX);
        let e = send(&fs, &mail).await.expect_err("bad recipient");
        assert!(matches!(e, FailsafeError::Address { .. }), "{e}");
        fs.recipients = vec!["soc@example.com".into()];
        let e = send(&fs, &mail)
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(e, FailsafeError::Smtp { .. }), "{e}");
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
}
