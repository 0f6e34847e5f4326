//! `POST .../alertmanager`: the Prometheus Alertmanager webhook (version 4) → `Event`s. Pure.
//!
//! One event per alert in the message (a message holds the whole group, not a delta; the
//! idempotent event id makes the repeats harmless): id `am:<fingerprint>:<startsAt UTC>:<status>`,
//! so the same alert episode firing again is a duplicate, its resolution is one new event, and a
//! new episode (new `startsAt`) is new. Organization, user, alert type and severity come from
//! the labels the connection names (defaults `organization`, `user`, `alertname`, `severity`).
//! An alert without the organization label still counts — it routes to the catch-all company —
//! because refusing it would make Alertmanager drop the whole group (4xx is never retried).

use std::collections::BTreeMap;

use serde_json::Value;

use super::alerts::{MAX_DESCRIPTION, MAX_NAME, MAX_TITLE};
use super::fields::{
    field_error, parse_json, required_array, FieldError, Fields, MapLimits, Need, ParseError,
};
use crate::dispatch::decide::render::{cut_bytes, one_line};
use crate::dispatch::event::{Event, EventKind};
use crate::resolved::AlertmanagerLabelNames;

/// Labels: names and values as short as Prometheus ever makes them; the labels that become the
/// organization, user, alert type and severity are held to `/alerts`' name limit on top.
const LABEL_LIMITS: MapLimits = MapLimits {
    entries: 64,
    key: MAX_NAME,
    value: MAX_TITLE,
};

/// Annotations carry the prose (summary, description, runbook links).
const ANNOTATION_LIMITS: MapLimits = MapLimits {
    entries: 32,
    key: MAX_NAME,
    value: MAX_DESCRIPTION,
};

/// A sender of messages in Alertmanager's shape (`externalURL`, `alerts`, each alert read by
/// [`parse_alert`]) and what it adds to that shape: Alertmanager itself, Grafana.
pub(crate) trait Dialect {
    /// What the sender's own top-level fields say, handed to [`Dialect::finish`].
    type Top;
    /// Added to the error of a message over the alert limit: how to stay under it.
    const TOO_MANY_HINT: &'static str;
    /// Reads (and checks) the sender's own top-level fields.
    fn read_top(value: &Value, top: &mut Fields) -> Self::Top;
    /// Completes one alert's event, given the alert as sent and the message's `externalURL`.
    fn finish(top: &Self::Top, event: Event, alert: &Value, external_url: Option<&str>) -> Event;
}

/// Prometheus Alertmanager's webhook, version 4.
pub struct Alertmanager;

impl Dialect for Alertmanager {
    type Top = ();
    const TOO_MANY_HINT: &'static str = " (set max_alerts in Alertmanager's webhook_config)";

    fn read_top(_: &Value, top: &mut Fields) {
        if let Some(v) = top.string("version", Need::Required, 16) {
            if v != "4" {
                top.error("version", "only webhook version \"4\" is understood");
            }
        }
    }

    fn finish(_: &(), event: Event, _: &Value, _: Option<&str>) -> Event {
        event
    }
}

/// Parses an Alertmanager webhook message of at most `max_alerts` alerts (the same per-request
/// limit as `/alerts`; Alertmanager's `max_alerts` webhook setting keeps a group within it).
pub fn parse_alertmanager(
    body: &[u8],
    names: &AlertmanagerLabelNames,
    max_alerts: usize,
) -> Result<Vec<Event>, ParseError> {
    parse_message::<Alertmanager>(body, names, max_alerts)
}

/// Parses a message of `D`'s dialect of Alertmanager's shape, of at most `max_alerts` alerts.
pub(crate) fn parse_message<D: Dialect>(
    body: &[u8],
    names: &AlertmanagerLabelNames,
    max_alerts: usize,
) -> Result<Vec<Event>, ParseError> {
    let value = parse_json(body)?;
    let mut errors: Vec<FieldError> = Vec::new();
    let Some(mut top) = Fields::of(&value, "", &mut errors) else {
        return Err(ParseError::Invalid(errors));
    };
    let sender = D::read_top(&value, &mut top);
    let external_url = top.string("externalURL", Need::Optional, 2048);
    let alerts = required_array(&value, "alerts", &mut top);
    if alerts.len() > max_alerts {
        return Err(ParseError::Invalid(vec![field_error(
            "/alerts",
            format!(
                "must hold at most {max_alerts} alerts per message{}",
                D::TOO_MANY_HINT
            ),
        )]));
    }
    let mut events = Vec::new();
    for (i, alert) in alerts.iter().enumerate() {
        let at = format!("/alerts/{i}");
        let url = external_url.as_deref();
        if let Some(ev) = parse_alert(alert, &at, names, url, &mut errors) {
            events.push(D::finish(&sender, ev, alert, url));
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(ParseError::Invalid(errors))
    }
}

pub(crate) fn parse_alert(
    alert: &Value,
    at: &str,
    names: &AlertmanagerLabelNames,
    external_url: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<Event> {
    let mut f = Fields::of(alert, at, errors)?;
    let status = f.one_of("status", Need::Required, &["firing", "resolved"]);
    let labels = f.string_map("labels", Need::Required, LABEL_LIMITS);
    let annotations = f
        .string_map("annotations", Need::Optional, ANNOTATION_LIMITS)
        .unwrap_or_default();
    let starts_at = f.time("startsAt", Need::Required);
    let ends_at = f.time("endsAt", Need::Optional);
    let fingerprint = f.string("fingerprint", Need::Required, 128);
    // `generatorURL` is often "" and not always absolute; keep it only when it is a link.
    let generator_url = f
        .string("generatorURL", Need::Optional, 2048)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let (status, labels, starts_at, fingerprint) = (status?, labels?, starts_at?, fingerprint?);
    let mut too_long = false;
    for name in [
        &names.organization,
        &names.user,
        &names.alert_type,
        &names.severity,
    ] {
        if labels.get(name).is_some_and(|v| v.len() > MAX_NAME) {
            errors.push(field_error(
                super::fields::pointer(&format!("{at}/labels"), name),
                format!("must be at most {MAX_NAME} bytes (it names the organization, user, alert type or severity)"),
            ));
            too_long = true;
        }
    }
    if too_long {
        return None;
    }

    let summary = annotations.get("summary").cloned();
    let description = annotations
        .get("description")
        .or(summary.as_ref())
        .cloned()
        .unwrap_or_default();
    if description.len() > MAX_DESCRIPTION {
        errors.push(field_error(
            format!("{at}/annotations/description"),
            format!("must be at most {MAX_DESCRIPTION} bytes"),
        ));
        return None;
    }
    let resolved = status == "resolved";
    // The zero time Alertmanager sends for a firing alert's end is "no end".
    let ends_at = ends_at.filter(|t| !t.starts_with("0001-01-01"));
    let mut event = Event {
        id: format!("am:{fingerprint}:{starts_at}:{status}"),
        kind: if resolved {
            EventKind::AlertResolved
        } else {
            EventKind::AlertFiring
        },
        organization: String::new(),
        user: None,
        severity: None,
        title: String::new(),
        alert_type: String::new(),
        description,
        occurred_at: if resolved {
            ends_at.or(Some(starts_at))
        } else {
            Some(starts_at)
        },
        url: generator_url.or_else(|| external_url.map(str::to_string)),
        finding_id: Some(fingerprint),
        status: Some(status),
        priority: None,
        comment: None,
        author: None,
        labels,
        annotations: annotations.into_iter().collect::<BTreeMap<_, _>>(),
    };
    apply_label_names(&mut event, names);
    Some(event)
}

/// Sets organization, user, alert type, severity and title of an Alertmanager event from its
/// labels under `names`. The intake calls it with the connection's names; a worker calls it
/// again with the resolved names for events stored before the connection resolved (they were
/// read with the default names). Idempotent. Label values may hold line breaks (refusing them
/// would make Alertmanager drop the group): the single-line fields get them as spaces, and at
/// most `/alerts`' name limit.
pub fn apply_label_names(event: &mut Event, names: &AlertmanagerLabelNames) {
    let label = |name: &str| {
        event
            .labels
            .get(name)
            .map(|v| cut_bytes(&one_line(v), MAX_NAME))
            .filter(|v| !v.is_empty())
    };
    let alert_type = label(&names.alert_type)
        .or_else(|| label("alertname"))
        .unwrap_or_else(|| "Alertmanager alert".to_string());
    event.organization = label(&names.organization).unwrap_or_default();
    event.user = label(&names.user);
    event.severity = label(&names.severity).map(|s| s.to_lowercase());
    event.title = event
        .annotations
        .get("summary")
        .cloned()
        .unwrap_or_else(|| alert_type.clone());
    event.alert_type = alert_type;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURE: &str =
        include_str!("../../../tests/fixtures/alertmanager-0.25-webhook-firing.json");

    fn names() -> AlertmanagerLabelNames {
        AlertmanagerLabelNames::default()
    }

    #[test]
    fn the_recorded_webhook_becomes_one_firing_event() {
        let evs = parse_alertmanager(FIXTURE.as_bytes(), &names(), 100).unwrap();
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e.kind, EventKind::AlertFiring);
        assert_eq!(
            e.id,
            "am:6d1ddaf090ad53b0:2026-11-24T16:18:28.674357769Z:firing"
        );
        assert_eq!(e.organization, "Contoso Ltd");
        assert_eq!(e.user.as_deref(), Some("jane@contoso.example"));
        assert_eq!(e.alert_type, "ImpossibleTravel");
        assert_eq!(e.severity.as_deref(), Some("high"));
        assert_eq!(e.title, "Sign-in from two countries");
        assert_eq!(
            e.url.as_deref(),
            Some("http://vm:18932"),
            "generatorURL was empty"
        );
        assert_eq!(
            e.occurred_at.as_deref(),
            Some("2026-11-24T16:18:28.674357769Z")
        );
        assert_eq!(e.labels["alertname"], "ImpossibleTravel");
    }

    fn message(alerts: Value) -> Vec<u8> {
        json!({"version": "4", "status": "firing", "receiver": "psa",
               "externalURL": "http://am:9093", "alerts": alerts})
        .to_string()
        .into_bytes()
    }

    fn alert(status: &str, starts: &str, labels: Value) -> Value {
        json!({"status": status, "labels": labels, "annotations": {},
               "startsAt": starts, "endsAt": "2026-11-24T15:47:10.114Z",
               "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a4c2e81f09b3d7e5"})
    }

    #[test]
    fn ids_are_stable_per_episode_and_status() {
        let labels = json!({"alertname": "MultipleFailedLogins", "organization": "Contoso Ltd"});
        let firing = alert("firing", "2026-11-24T15:02:10.114Z", labels.clone());
        let resolved = alert("resolved", "2026-11-24T16:02:10.114+01:00", labels.clone());
        let next = alert("firing", "2026-11-24T18:00:00Z", labels);
        let a = parse_alertmanager(&message(json!([firing.clone()])), &names(), 100).unwrap();
        let b =
            parse_alertmanager(&message(json!([firing, resolved, next])), &names(), 100).unwrap();
        assert_eq!(a[0].id, b[0].id, "a repeated message repeats the id");
        assert_eq!(
            b[1].id,
            "am:a4c2e81f09b3d7e5:2026-11-24T15:02:10.114Z:resolved"
        );
        assert_eq!(b[1].kind, EventKind::AlertResolved);
        assert_eq!(
            b[1].occurred_at.as_deref(),
            Some("2026-11-24T15:47:10.114Z")
        );
        assert_ne!(b[2].id, b[0].id, "a new episode is a new event");
        assert_eq!(b[0].user, None);
        assert_eq!(b[0].url.as_deref(), Some("http://prometheus:9090/graph"));
    }

    #[test]
    fn label_names_come_from_the_connection() {
        let names = AlertmanagerLabelNames {
            organization: "customer".into(),
            user: "upn".into(),
            alert_type: "rule".into(),
            severity: "level".into(),
        };
        let a = alert(
            "firing",
            "2026-11-24T15:02:10Z",
            json!({"alertname": "X", "rule": "Impossible travel", "customer": "Fabrikam",
                   "upn": "bob@fabrikam.example", "level": "CRITICAL", "organization": "no"}),
        );
        let e = parse_alertmanager(&message(json!([a])), &names, 100)
            .unwrap()
            .remove(0);
        assert_eq!(e.organization, "Fabrikam");
        assert_eq!(e.user.as_deref(), Some("bob@fabrikam.example"));
        assert_eq!(e.alert_type, "Impossible travel");
        assert_eq!(e.severity.as_deref(), Some("critical"));
    }

    #[test]
    fn events_read_with_default_names_can_be_relabelled() {
        let a = alert(
            "firing",
            "2026-11-24T15:02:10Z",
            json!({"alertname": "X", "customer": "Fabrikam", "upn": "bob@fabrikam.example"}),
        );
        let mut e = parse_alertmanager(&message(json!([a])), &names(), 100)
            .unwrap()
            .remove(0);
        assert_eq!((e.organization.as_str(), e.user.as_deref()), ("", None));
        let custom = AlertmanagerLabelNames {
            organization: "customer".into(),
            user: "upn".into(),
            ..AlertmanagerLabelNames::default()
        };
        apply_label_names(&mut e, &custom);
        assert_eq!(e.organization, "Fabrikam");
        assert_eq!(e.user.as_deref(), Some("bob@fabrikam.example"));
        assert_eq!((e.alert_type.as_str(), e.title.as_str()), ("X", "X"));
        let once = e.clone();
        apply_label_names(&mut e, &custom);
        assert_eq!(e, once);
    }

    #[test]
    fn missing_organization_routes_to_catch_all_rather_than_failing() {
        let a = alert("firing", "2026-11-24T15:02:10Z", json!({"alertname": "X"}));
        let e = parse_alertmanager(&message(json!([a])), &names(), 100)
            .unwrap()
            .remove(0);
        assert_eq!(e.organization, "");
    }

    #[test]
    fn field_errors_name_each_field() {
        let ok = alert("firing", "2026-11-24T15:02:10Z", json!({"alertname": "X"}));
        let mut bad_status = ok.clone();
        bad_status["status"] = json!("pending");
        let mut bad_label = ok.clone();
        bad_label["labels"]["team"] = json!(3);
        let mut no_fp = ok.clone();
        no_fp.as_object_mut().unwrap().remove("fingerprint");
        let mut naive = ok.clone();
        naive["startsAt"] = json!("2026-11-24T15:02:10");
        let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
            (br#"{"version":"3","alerts":[]}"#.to_vec(), vec!["/version"]),
            (br#"{"alerts":[]}"#.to_vec(), vec!["/version"]),
            (br#"{"version":"4"}"#.to_vec(), vec!["/alerts"]),
            (br#"{"version":"4","alerts":{}}"#.to_vec(), vec!["/alerts"]),
            (br#"[]"#.to_vec(), vec![""]),
            (
                message(json!([ok.clone(), bad_status])),
                vec!["/alerts/1/status"],
            ),
            (message(json!([bad_label])), vec!["/alerts/0/labels/team"]),
            (message(json!([no_fp])), vec!["/alerts/0/fingerprint"]),
            (message(json!([naive])), vec!["/alerts/0/startsAt"]),
            (message(json!([7])), vec!["/alerts/0"]),
        ];
        for (body, want) in cases {
            match parse_alertmanager(&body, &names(), 100) {
                Err(ParseError::Invalid(e)) => {
                    let got: Vec<_> = e.iter().map(|e| e.pointer.as_str()).collect();
                    assert_eq!(got, want, "{}", String::from_utf8_lossy(&body));
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(&body)),
            }
        }
    }

    #[test]
    fn an_empty_group_is_accepted_with_no_events() {
        assert_eq!(
            parse_alertmanager(&message(json!([])), &names(), 100),
            Ok(vec![])
        );
    }
}
