//! Builders of the values unit tests share: a PSA's statuses, a ticket setting naming one value,
//! the reference ticket settings. One place, so a test says only what it changes.

use std::collections::BTreeMap;

use crate::api::{IssueTypeOverride, IssueTypeSettings, TicketSettings, ValueMapping};
use crate::psa::StatusInfo;

impl StatusInfo {
    /// A list of `(id, name, closed)` as `StatusInfo` entries, in the PSA's order.
    pub fn list(rows: &[(&str, &str, bool)]) -> Vec<StatusInfo> {
        rows.iter()
            .map(|&(id, name, closed)| StatusInfo {
                id: id.into(),
                name: name.into(),
                closed,
            })
            .collect()
    }

    /// A board's statuses for lifecycle tests: one open, three closed (">Closed" the one
    /// ConnectWise sorts last).
    pub fn sample_board() -> Vec<StatusInfo> {
        StatusInfo::list(&[
            ("1", "New", false),
            ("12", ">Closed", true),
            ("14", "Auto-Resolved", true),
            ("15", "Closed - Won't fix", true),
        ])
    }
}

/// A ticket setting (`status`, `type`, …) that names one value for every alert.
pub fn value(name: &str) -> Option<ValueMapping> {
    Some(ValueMapping {
        value: Some(name.into()),
        ..Default::default()
    })
}

impl TicketSettings {
    /// Reference ticket settings: every name set, a priority per severity, an issue type with
    /// a per-alert-type override. Tests change what they are about with struct update syntax.
    pub fn sample() -> TicketSettings {
        TicketSettings {
            board: Some("Security Alerts".into()),
            source: value("SaaS Alerts"),
            status: value("New"),
            type_: value("Alert"),
            priority: Some(ValueMapping {
                map: Some(BTreeMap::from([
                    ("critical".into(), "Priority 1 - Critical".into()),
                    ("high".into(), "Priority 2 - High".into()),
                ])),
                default: Some("Priority 3 - Normal".into()),
                ..Default::default()
            }),
            issue_type: Some(IssueTypeSettings {
                default: Some("SaaS Alerts".into()),
                sub_issue_type: Some("General".into()),
                overrides: vec![IssueTypeOverride {
                    alert_type: "Too Many Downloads".into(),
                    issue_type: "SaaS Alerts".into(),
                    sub_issue_type: Some("Data Leakage".into()),
                }],
            }),
            summary_template: None,
            closed_status: None,
        }
    }

    /// The severity → priority map of settings that have one.
    pub fn priority_map_mut(&mut self) -> &mut BTreeMap<String, String> {
        (self.priority.as_mut())
            .and_then(|p| p.map.as_mut())
            .expect("settings with a priority map")
    }
}
