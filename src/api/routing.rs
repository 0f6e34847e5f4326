//! Per-customer ticket overrides (`CustomerMapping.spec.ticket`) and routes
//! (`PsaConnection.spec.routes`, `CustomerMapping.spec.routes`): which board, priority and type a
//! ticket gets, by customer, severity and alert type.
//!
//! A ticket starts from the connection's `ticket` settings; the mapping's `ticket` replaces what
//! it sets; then the first route that matches the alert — the mapping's routes first, then the
//! connection's — replaces what it sets. Names are resolved at reconcile time
//! (`controller::resolve::routes`), never per alert.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::PsaName;

/// Ticket values one customer's tickets get instead of the connection's `ticket` settings.
/// Absent fields keep the connection's value.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("!has(self.subIssueType) || has(self.issueType)")
        .message("subIssueType needs issueType")
        .reason(Reason::FieldValueInvalid)
)]
pub struct CustomerTicketSettings {
    /// ConnectWise service board / Kaseya BMS or Autotask queue for this customer's tickets.
    /// The connection's status, type and issue type names are looked up on this board where the
    /// PSA scopes them per board (ConnectWise).
    pub board: Option<PsaName>,
    /// Priority of every ticket of this customer (replaces the connection's priority value or map).
    pub priority: Option<PsaName>,
    /// Ticket type of every ticket of this customer (replaces the connection's type value or map).
    #[serde(rename = "type")]
    pub type_: Option<PsaName>,
    /// Issue type (ConnectWise subtype) of every ticket of this customer; replaces the
    /// connection's `issueType` settings as a whole, per-alert overrides included.
    pub issue_type: Option<PsaName>,
    /// Sub-issue type (ConnectWise item) with that issue type, where the PSA has them.
    pub sub_issue_type: Option<PsaName>,
    /// minijinja template of this customer's ticket summaries (same variables as the
    /// connection's `ticket.summaryTemplate`).
    #[schemars(length(max = 2048))]
    pub summary_template: Option<String>,
}

/// One route: alerts it matches get its board, priority and type. First match wins, like
/// Alertmanager routes; a CustomerMapping's routes are tried before its connection's.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("has(self.board) || has(self.priority) || has(self.type)")
        .message("a route sets at least one of board, priority or type")
        .reason(Reason::FieldValueInvalid)
)]
pub struct TicketRoute {
    /// Which alerts the route takes.
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// Board / queue of the tickets it takes.
    pub board: Option<PsaName>,
    /// Priority of the tickets it takes.
    pub priority: Option<PsaName>,
    /// Ticket type of the tickets it takes.
    #[serde(rename = "type")]
    pub type_: Option<PsaName>,
}

/// What a route matches: the alert's severity and/or alert type, each one of a list (compared
/// case-insensitively, blanks around ignored). Both given = both must match.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("(has(self.severity) && size(self.severity) > 0) || (has(self.alertType) && size(self.alertType) > 0)")
        .message("a route matches on severity, alertType or both")
        .reason(Reason::FieldValueInvalid)
)]
pub struct RouteMatch {
    /// Severities the route takes, e.g. `[critical]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub severity: Vec<String>,
    /// Alert types the route takes, as alerts name them, e.g. `[Too Many Downloads]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub alert_type: Vec<String>,
}
