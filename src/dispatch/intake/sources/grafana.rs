//! `POST .../grafana`: Grafana alerting's webhook contact point → `Event`s. Pure.
//!
//! Grafana posts Alertmanager's message shape with more fields (`orgId`, `title`, `state`,
//! `message`, per alert `silenceURL`, `dashboardURL`, `panelURL`, `values`, `valueString`)
//! and `version` "1". Each alert is read by the Alertmanager parser with the connection's
//! `spec.grafana` label names, so grouping, resolution notes and limits behave alike. The id
//! is `grafana:<orgId>:<fingerprint>:<startsAt>:<status>`: a Grafana repeat is a duplicate.

use serde_json::Value;

use crate::dispatch::event::Event;
#[cfg(doc)]
use crate::dispatch::intake::alertmanager::parse_message;
use crate::dispatch::intake::alertmanager::Dialect;
use crate::dispatch::intake::fields::Fields;

/// Grafana alerting's webhook: its `orgId` names the alerts' ids, its links replace the
/// external URL. Parsed by [`parse_message`]`::<Grafana>`.
pub struct Grafana;

impl Dialect for Grafana {
    type Top = String;
    const TOO_MANY_HINT: &'static str = "";

    fn read_top(value: &Value, top: &mut Fields) -> String {
        read_org_id(value, top)
    }

    fn finish(org_id: &String, event: Event, alert: &Value, external_url: Option<&str>) -> Event {
        grafana_event(org_id, event, alert, external_url)
    }
}

/// Grafana's `orgId` (`0` when absent), the first part of its alerts' ids.
fn read_org_id(value: &Value, top: &mut Fields) -> String {
    match value.get("orgId") {
        None | Some(Value::Null) => "0".to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            top.error("orgId", "must be a number");
            String::new()
        }
    }
}

/// An alert Alertmanager's parser read, as Grafana's: its id names the Grafana org, and it
/// links the alert's panel or dashboard (Alertmanager has neither) over the external URL.
fn grafana_event(org_id: &str, mut ev: Event, alert: &Value, external_url: Option<&str>) -> Event {
    ev.id = format!("grafana:{org_id}:{}", ev.id.trim_start_matches("am:"));
    let link = ["panelURL", "dashboardURL"]
        .iter()
        .filter_map(|k| alert.get(*k).and_then(Value::as_str))
        .find(|u| u.starts_with("http://") || u.starts_with("https://"));
    if let Some(link) = link.filter(|_| ev.url.as_deref() == external_url) {
        ev.url = Some(link.to_string());
    }
    ev
}
