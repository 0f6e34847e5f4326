//! The neutral event every intake payload is turned into, and what the store keeps.
//!
//! Three intake shapes (SaaS-alert style alerts, finding lifecycle events, Alertmanager webhook
//! alerts) become one `Event`, so grouping, routing and mapping are written once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resolved::ConnectionKey;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// A SaaS-alert style alert: creates a ticket or a note on the open ticket of its group.
    Alert,
    /// A new finding: creates a ticket (one ticket per finding).
    FindingCreated,
    /// A comment on a finding: a note on the finding's ticket.
    FindingCommented,
    /// The finding was resolved: a note and the ticket closed.
    FindingResolved,
    /// Alertmanager alert firing: grouped like `Alert`.
    AlertFiring,
    /// Alertmanager alert resolved: a note (resolution) on the group's ticket, or the ticket
    /// closed with `lifecycle.onResolve: Close` once none of its alerts fires.
    AlertResolved,
    /// An `/alerts` alert sent again with `"status": "resolved"`: like `AlertResolved`.
    AlertCleared,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alert => "alert",
            EventKind::FindingCreated => "finding.created",
            EventKind::FindingCommented => "finding.commented",
            EventKind::FindingResolved => "finding.resolved",
            EventKind::AlertFiring => "alertmanager.firing",
            EventKind::AlertResolved => "alertmanager.resolved",
            EventKind::AlertCleared => "alert.resolved",
        }
    }

    /// The endpoint family whose ids this kind shares: event ids are unique per connection
    /// *and* id space, so an `/alerts` sender cannot make a `/findings` or Alertmanager event
    /// a "duplicate" by reusing its id.
    pub fn id_space(self) -> &'static str {
        match self {
            EventKind::Alert | EventKind::AlertCleared => "alerts",
            EventKind::FindingCreated
            | EventKind::FindingCommented
            | EventKind::FindingResolved => "findings",
            EventKind::AlertFiring | EventKind::AlertResolved => "alertmanager",
        }
    }

    /// An alert that stopped firing (Alertmanager `resolved`, `/alerts` `"status":"resolved"`).
    pub fn is_resolution(self) -> bool {
        matches!(self, EventKind::AlertResolved | EventKind::AlertCleared)
    }

    pub fn is_finding(self) -> bool {
        matches!(
            self,
            EventKind::FindingCreated | EventKind::FindingCommented | EventKind::FindingResolved
        )
    }
}

/// One event, normalised. Serialised as JSON in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique per event as the sender names it; a repeated id is accepted and ignored.
    pub id: String,
    pub kind: EventKind,
    /// Organization / account name as the sender names it (→ CustomerMapping.organization).
    pub organization: String,
    /// E-mail or display name of the user the alert is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Alert type (`Multiple MFA Failures`), finding type, or Alertmanager alertname.
    pub alert_type: String,
    /// low | medium | high | critical (alerts); Alertmanager `severity` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// RFC 3339 time of the event as the sender gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Link back to the alert/finding in the sender's app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Findings: the finding id (one ticket per finding). Alertmanager: the alert fingerprint.
    /// `/alerts`: the sender's `alertId`, naming one alert across its firing and resolved events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<String>,
    /// Finding status / priority / type as the sender names them (for value maps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Comment text and author of a `FindingCommented` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Alertmanager labels and annotations (for templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Event {
    /// A complete alert (Contoso's Jane, "Too Many Downloads"): the one fixture unit tests,
    /// the e2e harness and benchmarks build their events from, changing what they are about
    /// with struct update syntax (`Event { id, ..Event::sample() }`).
    pub fn sample() -> Event {
        Event {
            id: "sa-1".into(),
            kind: EventKind::Alert,
            organization: "Contoso Ltd".into(),
            user: Some("jane@contoso.example".into()),
            alert_type: "Too Many Downloads".into(),
            severity: Some("critical".into()),
            title: "Too Many Downloads".into(),
            description: "412 files downloaded from SharePoint in 10 minutes".into(),
            occurred_at: Some("2026-11-24T16:18:28Z".into()),
            url: Some("https://alerts.example/e/sa-1".into()),
            finding_id: None,
            status: None,
            priority: None,
            comment: None,
            author: None,
            labels: Default::default(),
            annotations: Default::default(),
        }
    }
}

/// An event as stored: which connection it came through and when it was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub namespace: String,
    pub connection: String,
    /// Unix milliseconds when the intake accepted the event.
    pub accepted_at_ms: i64,
    pub event: Event,
}

impl Envelope {
    pub fn connection_key(&self) -> ConnectionKey {
        ConnectionKey::new(self.namespace.clone(), self.connection.clone())
    }
}

/// Unicode bidirectional formatting controls (LRM/RLM/ALM, embeddings and overrides, isolates).
/// In a ticket summary a U+202E makes "exe.txt" read as "txt.exe": they are dropped from every
/// text an event brings in, and from every text rendered for a PSA or an e-mail.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// `s` without bidirectional controls.
pub fn strip_bidi_controls(s: &str) -> String {
    s.chars().filter(|c| !is_bidi_control(*c)).collect()
}

/// Whether `s` breaks lines or holds other control characters: a single-line field with one
/// could forge a "Bcc: …" line in a ticket description or failsafe body.
pub fn breaks_lines(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn bidi_controls_are_stripped_and_line_breaks_seen() {
        let cases = [
            ("invoice\u{202E}txt.exe", "invoicetxt.exe"),
            ("\u{2066}a\u{2069}\u{200F}b", "ab"),
            ("Contoso Ltd — é 👍", "Contoso Ltd — é 👍"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_bidi_controls(input), want, "{input:?}");
        }
        for (s, breaks) in [
            ("Contoso", false),
            ("Contoso\r\nBcc: x@evil.example", true),
            ("a\nb", true),
            ("a\u{2028}b", true),
            ("tab\there", true),
            ("é 👍 —", false),
        ] {
            assert_eq!(breaks_lines(s), breaks, "{s:?}");
        }
    }
}
