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
    /// Alertmanager alert resolved: a note (resolution) on the group's ticket.
    AlertResolved,
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
        }
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
