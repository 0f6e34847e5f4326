//! `POST .../grafana`: Grafana alerting's webhook contact point → `Event`s. Pure.
//!
//! Grafana posts Alertmanager's message shape with more fields (`orgId`, `title`, `state`,
//! `message`, per alert `silenceURL`, `dashboardURL`, `panelURL`, `values`, `valueString`)
//! and `version` "1". Each alert is read by the Alertmanager parser with the connection's
//! `spec.grafana` label names, so grouping, resolution notes and limits behave alike. The id
//! is `grafana:<orgId>:<fingerprint>:<startsAt>:<status>`: a Grafana repeat is a duplicate.

use serde_json::Value;

use crate::dispatch::event::Event;
use crate::dispatch::intake::alertmanager::parse_alert;
use crate::dispatch::intake::fields::{
    field_error, parse_json, required_array, FieldError, Fields, Need, ParseError,
};
use crate::resolved::AlertmanagerLabelNames;

/// Parses a Grafana webhook message of at most `max_alerts` alerts.
pub fn parse_grafana(
    body: &[u8],
    names: &AlertmanagerLabelNames,
    max_alerts: usize,
) -> Result<Vec<Event>, ParseError> {
    let value = parse_json(body)?;
    let mut errors: Vec<FieldError> = Vec::new();
    let Some(mut top) = Fields::of(&value, "", &mut errors) else {
        return Err(ParseError::Invalid(errors));
    };
    let external_url = top.string("externalURL", Need::Optional, 2048);
    let org_id = match value.get("orgId") {
        None | Some(Value::Null) => "0".to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            top.error("orgId", "must be a number");
            String::new()
        }
    };
    let alerts = required_array(&value, "alerts", &mut top);
    if alerts.len() > max_alerts {
        return Err(ParseError::Invalid(vec![field_error(
            "/alerts",
            format!("must hold at most {max_alerts} alerts per message"),
        )]));
    }
    let mut events = Vec::new();
    for (i, alert) in alerts.iter().enumerate() {
        let at = format!("/alerts/{i}");
        // Grafana links the panel or dashboard of the alert; Alertmanager has neither.
        let link = ["panelURL", "dashboardURL"]
            .iter()
            .filter_map(|k| alert.get(*k).and_then(Value::as_str))
            .find(|u| u.starts_with("http://") || u.starts_with("https://"));
        if let Some(mut ev) = parse_alert(alert, &at, names, external_url.as_deref(), &mut errors) {
            ev.id = format!("grafana:{org_id}:{}", ev.id.trim_start_matches("am:"));
            if let Some(link) = link.filter(|_| ev.url.as_deref() == external_url.as_deref()) {
                ev.url = Some(link.to_string());
            }
            events.push(ev);
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(ParseError::Invalid(errors))
    }
}
