//! Connection-level settings that need no PSA call: dispatcher tuning, Alertmanager label names,
//! the failsafe SMTP Secret. Pure; the reconciler and `validate`/`plan` report the same misses.

use std::time::Duration;

use crate::api::{parse_duration, PsaConnectionSpec};
use crate::dispatch::failsafe::clear_text_auth_problem;
use crate::resolved::{
    AlertmanagerLabelNames, ConnectionKey, DispatchConfig, SmtpSettings, SmtpTls,
};
use crate::secret::SecretString;

use super::Unresolved;

/// Intake path of a connection.
pub fn intake_path(key: &ConnectionKey) -> String {
    format!("/v1/namespaces/{}/connections/{}", key.namespace, key.name)
}

/// Dispatcher settings with defaults applied; a bad duration is reported by name.
pub fn dispatch_config(spec: &PsaConnectionSpec) -> Result<DispatchConfig, Unresolved> {
    let mut cfg = DispatchConfig::for_provider(spec.provider.provider());
    let Some(d) = &spec.dispatch else {
        return Ok(cfg);
    };
    if let Some(n) = d.max_attempts {
        cfg.max_attempts = n;
    }
    if let Some(n) = d.requests_per_hour {
        cfg.requests_per_hour = n;
    }
    let dur = |field: &str, v: &Option<String>| -> Result<Option<Duration>, Unresolved> {
        match v {
            None => Ok(None),
            Some(s) => parse_duration(s).map(Some).ok_or_else(|| Unresolved {
                field: field.into(),
                value: s.clone(),
                problem: "is not a duration like 2s, 500ms or 1m30s".into(),
            }),
        }
    };
    if let Some(b) = dur("dispatch.initialBackoff", &d.initial_backoff)? {
        cfg.initial_backoff = b;
    }
    if let Some(w) = dur("dispatch.groupWait", &d.group_wait)? {
        cfg.group_wait = w;
    }
    unresolved_hold(spec)?;
    Ok(cfg)
}

/// `spec.dispatch.unresolvedHold`: how long this connection's held events wait before they are
/// dead-lettered; `None` = the operator's `--unresolved-hold`. Read apart from the rest of the
/// settings because the dispatcher needs it exactly while they do not resolve.
pub fn unresolved_hold(spec: &PsaConnectionSpec) -> Result<Option<Duration>, Unresolved> {
    let Some(s) = spec
        .dispatch
        .as_ref()
        .and_then(|d| d.unresolved_hold.as_ref())
    else {
        return Ok(None);
    };
    match parse_duration(s) {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(Unresolved {
            field: "dispatch.unresolvedHold".into(),
            value: s.clone(),
            problem: "is not a positive duration like 2s, 500ms or 15m".into(),
        }),
    }
}

/// Alertmanager label names with defaults applied.
pub fn alertmanager_labels(spec: &PsaConnectionSpec) -> AlertmanagerLabelNames {
    label_names(spec.alertmanager.as_ref())
}

/// Label names of `spec.alertmanager` or `spec.grafana` with defaults applied.
pub fn label_names(labels: Option<&crate::api::AlertmanagerLabels>) -> AlertmanagerLabelNames {
    let mut l = AlertmanagerLabelNames::default();
    if let Some(a) = labels {
        if let Some(v) = &a.organization_label {
            l.organization = v.clone();
        }
        if let Some(v) = &a.user_label {
            l.user = v.clone();
        }
        if let Some(v) = &a.alert_type_label {
            l.alert_type = v.clone();
        }
        if let Some(v) = &a.severity_label {
            l.severity = v.clone();
        }
    }
    l
}

/// Parses the failsafe SMTP Secret's entries (host, port, from, username, password, tls).
pub fn smtp_settings(
    secret_name: &str,
    get: impl Fn(&str) -> Option<SecretString>,
) -> Result<SmtpSettings, Unresolved> {
    let field = |key: &str| format!("failsafe.smtpSecretRef({secret_name}).{key}");
    let need = |key: &str| {
        get(key).ok_or_else(|| Unresolved {
            field: field(key),
            value: String::new(),
            problem: "missing".into(),
        })
    };
    let host = need("host")?.expose().to_string();
    let from = need("from")?.expose().to_string();
    let port_s = get("port").map(|p| p.expose().to_string());
    let tls = match get("tls").map(|t| t.expose().to_lowercase()).as_deref() {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("none") => SmtpTls::None,
        Some("tls") => SmtpTls::Tls,
        Some(other) => {
            return Err(Unresolved {
                field: field("tls"),
                value: other.into(),
                problem: "must be none, starttls or tls".into(),
            })
        }
    };
    let default_port = match tls {
        SmtpTls::Tls => 465,
        SmtpTls::StartTls => 587,
        SmtpTls::None => 25,
    };
    let port = match port_s {
        None => default_port,
        Some(p) => p.parse().map_err(|_| Unresolved {
            field: field("port"),
            value: p.clone(),
            problem: "is not a port number".into(),
        })?,
    };
    // A password sent in clear text needs the Secret's explicit consent.
    let username = get("username").map(|u| u.expose().to_string());
    let allow = get("allowInsecureAuth").is_some_and(|v| v.expose().trim() == "true");
    if let Some(problem) = clear_text_auth_problem(tls, username.is_some(), allow) {
        return Err(Unresolved {
            field: field("tls"),
            value: "none".into(),
            problem: problem.into(),
        });
    }
    Ok(SmtpSettings {
        host,
        port,
        from,
        username,
        password: get("password"),
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DispatchSettings;
    use std::collections::BTreeMap;

    fn spec_with_dispatch(d: DispatchSettings) -> PsaConnectionSpec {
        PsaConnectionSpec {
            dispatch: Some(d),
            ..Default::default()
        }
    }

    #[test]
    fn dispatch_defaults_and_overrides() {
        let cfg = dispatch_config(&spec_with_dispatch(DispatchSettings::default())).unwrap();
        assert_eq!(cfg, DispatchConfig::default());
        assert_eq!(cfg.max_attempts, 8);
        // ConnectWise: no hourly budget unless the spec sets one.
        let mut cw = spec_with_dispatch(DispatchSettings::default());
        cw.provider.connect_wise = Some(Default::default());
        assert_eq!(
            dispatch_config(&cw).unwrap().shown_requests_per_hour(),
            None
        );
        cw.dispatch = Some(DispatchSettings {
            requests_per_hour: Some(600),
            ..Default::default()
        });
        assert_eq!(
            dispatch_config(&cw).unwrap().shown_requests_per_hour(),
            Some(600)
        );
        let cfg = dispatch_config(&spec_with_dispatch(DispatchSettings {
            max_attempts: Some(3),
            initial_backoff: Some("500ms".into()),
            requests_per_hour: Some(60),
            group_wait: Some("30s".into()),
            unresolved_hold: None,
        }))
        .unwrap();
        assert_eq!(cfg.max_attempts, 3);
        assert_eq!(cfg.initial_backoff, Duration::from_millis(500));
        assert_eq!(cfg.group_wait, Duration::from_secs(30));
        let bad = dispatch_config(&spec_with_dispatch(DispatchSettings {
            group_wait: Some("soon".into()),
            ..Default::default()
        }))
        .unwrap_err();
        assert_eq!(bad.field, "dispatch.groupWait");
    }

    #[test]
    fn unresolved_hold_per_connection() {
        let with = |v: Option<&str>| {
            spec_with_dispatch(DispatchSettings {
                unresolved_hold: v.map(String::from),
                ..Default::default()
            })
        };
        let table = [
            (None, Ok(None)),
            (Some("2s"), Ok(Some(Duration::from_secs(2)))),
            (Some("1h30m"), Ok(Some(Duration::from_secs(5400)))),
            (Some("0s"), Err("dispatch.unresolvedHold")),
            (Some("soon"), Err("dispatch.unresolvedHold")),
        ];
        for (value, want) in table {
            let got = unresolved_hold(&with(value)).map_err(|u| u.field);
            assert_eq!(got, want.map_err(String::from), "{value:?}");
            // The settings as a whole report the same miss.
            assert_eq!(
                dispatch_config(&with(value)).is_ok(),
                got.is_ok(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn smtp_secret_parsing() {
        let secret = |pairs: &[(&str, &str)]| {
            let m: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| m.get(k).map(|v| SecretString::new(v.clone()))
        };
        let s = smtp_settings(
            "smtp",
            secret(&[
                ("host", "127.0.0.1"),
                ("port", "2525"),
                ("from", "psa@x"),
                ("tls", "none"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("127.0.0.1", 2525, SmtpTls::None)
        );
        assert!(s.password.is_none());
        let s = smtp_settings(
            "smtp",
            secret(&[("host", "mail"), ("from", "a@b"), ("password", "pw")]),
        )
        .unwrap();
        assert_eq!((s.port, s.tls), (587, SmtpTls::StartTls));
        assert!(
            !format!("{s:?}").contains("pw"),
            "password must not appear in Debug"
        );
        let clear = [
            ("host", "h"),
            ("from", "a@b"),
            ("tls", "none"),
            ("username", "u"),
            ("password", "pw"),
        ];
        let e = smtp_settings("smtp", secret(&clear)).unwrap_err();
        assert_eq!(e.field, "failsafe.smtpSecretRef(smtp).tls");
        assert!(e.problem.contains("allowInsecureAuth"), "{}", e.problem);
        let allowed = [&clear[..], &[("allowInsecureAuth", "true")]].concat();
        assert!(smtp_settings("smtp", secret(&allowed)).is_ok());
        let e = smtp_settings("smtp", secret(&[("from", "a@b")])).unwrap_err();
        assert_eq!(e.field, "failsafe.smtpSecretRef(smtp).host");
        let e = smtp_settings(
            "smtp",
            secret(&[("host", "h"), ("from", "a@b"), ("tls", "ssl3")]),
        )
        .unwrap_err();
        assert!(e.problem.contains("none, starttls or tls"));
        let e = smtp_settings(
            "smtp",
            secret(&[("host", "h"), ("from", "a@b"), ("port", "smtp")]),
        )
        .unwrap_err();
        assert_eq!(e.field, "failsafe.smtpSecretRef(smtp).port");
    }
}
