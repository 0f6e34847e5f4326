//! The PSA names a connection's ticket settings use, each checked against the resolution the
//! operator does (`controller::resolve`), with the same field paths.

use crate::api::{TicketSettings, ValueMapping};
use crate::controller::resolve::{resolved_values, Unresolved};
use crate::resolved::ResolvedTicket;

use super::model::NameCheck;

/// A configured name: field path (as resolution reports misses), value, and the key of its id
/// in [`resolved_values`] (board and closed status have their own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configured {
    pub field: String,
    pub value: String,
    id_key: String,
    /// Field of the name this one is looked up under (a sub-issue type under its issue type).
    parent: Option<String>,
}

fn entry(field: String, value: &str, id_key: String, parent: Option<String>) -> Configured {
    Configured {
        field,
        value: value.to_string(),
        id_key,
        parent,
    }
}

fn mapping(out: &mut Vec<Configured>, field: &str, m: Option<&ValueMapping>) {
    let Some(m) = m else { return };
    if let Some(v) = &m.value {
        let f = format!("{field}.value");
        out.push(entry(f.clone(), v, f, None));
    }
    for (k, v) in m.map.iter().flatten() {
        let f = format!("{field}.map.{k}");
        out.push(entry(f.clone(), v, f, None));
    }
    if let Some(v) = &m.default {
        let f = format!("{field}.default");
        out.push(entry(f.clone(), v, f, None));
    }
}

/// Every PSA name in the ticket settings, in spec order.
pub fn configured_names(t: &TicketSettings) -> Vec<Configured> {
    let mut out = vec![];
    if let Some(b) = &t.board {
        out.push(entry("ticket.board".into(), b, "board".into(), None));
    }
    mapping(&mut out, "ticket.source", t.source.as_ref());
    mapping(&mut out, "ticket.status", t.status.as_ref());
    mapping(&mut out, "ticket.type", t.type_.as_ref());
    mapping(&mut out, "ticket.priority", t.priority.as_ref());
    if let Some(it) = &t.issue_type {
        if let Some(d) = &it.default {
            out.push(entry(
                "ticket.issueType.default".into(),
                d,
                "ticket.issueType.default.issueType".into(),
                None,
            ));
            if let Some(s) = &it.sub_issue_type {
                out.push(entry(
                    "ticket.issueType.subIssueType".into(),
                    s,
                    "ticket.issueType.default.subIssueType".into(),
                    Some("ticket.issueType.default".into()),
                ));
            }
        }
        for (i, o) in it.overrides.iter().enumerate() {
            let f = format!("ticket.issueType.overrides[{i}]");
            let key = format!("ticket.issueType.overrides.{}", o.alert_type);
            out.push(entry(
                format!("{f}.issueType"),
                &o.issue_type,
                format!("{key}.issueType"),
                None,
            ));
            if let Some(s) = &o.sub_issue_type {
                out.push(entry(
                    format!("{f}.subIssueType"),
                    s,
                    format!("{key}.subIssueType"),
                    Some(format!("{f}.issueType")),
                ));
            }
        }
    }
    if let Some(c) = &t.closed_status {
        out.push(entry(
            "ticket.closedStatus".into(),
            c,
            "closedStatus".into(),
            None,
        ));
    }
    out
}

/// Marks each configured name with the outcome of `resolve_ticket`. A sub-issue type whose issue
/// type did not resolve was not looked up: `resolves` is `None` for it.
pub fn name_checks(
    t: &TicketSettings,
    result: &Result<ResolvedTicket, Vec<Unresolved>>,
) -> Vec<NameCheck> {
    let ids = result.as_ref().ok().map(|r| (r, resolved_values(r)));
    let misses: &[Unresolved] = result.as_ref().err().map(Vec::as_slice).unwrap_or(&[]);
    configured_names(t)
        .into_iter()
        .map(|c| {
            let miss = misses.iter().find(|m| m.field == c.field);
            let parent_missed = c
                .parent
                .as_ref()
                .is_some_and(|p| misses.iter().any(|m| &m.field == p));
            let id = ids.as_ref().and_then(|(r, flat)| match c.id_key.as_str() {
                "board" => r.board_id.clone(),
                "closedStatus" => r.closed_status_id.clone(),
                k => flat.get(k).cloned(),
            });
            let (resolves, problem) = match (miss, parent_missed) {
                (Some(m), _) => (Some(false), Some(m.problem.clone())),
                (None, true) => (
                    None,
                    Some("not looked up: its issue type does not resolve".to_string()),
                ),
                (None, false) => (Some(true), None),
            };
            NameCheck {
                field: c.field,
                value: c.value,
                resolves,
                id,
                problem,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::resolve::{resolve_ticket, PsaCatalog};
    use crate::psa::{Named, StatusInfo};
    use std::collections::{BTreeMap, HashMap};

    fn named(pairs: &[(&str, &str)]) -> Vec<Named> {
        Named::list(pairs)
    }

    /// The reference settings with two names the catalog below lacks (the `medium` priority,
    /// the override's issue type) and a closed status; no source or type.
    fn settings() -> TicketSettings {
        let mut s = TicketSettings {
            source: None,
            type_: None,
            priority: Some(ValueMapping {
                map: Some(BTreeMap::from([
                    ("critical".into(), "P1".into()),
                    ("medium".into(), "Priority 3 - Normal".into()),
                ])),
                default: Some("P1".into()),
                ..Default::default()
            }),
            closed_status: Some(">Closed".into()),
            ..TicketSettings::sample()
        };
        s.issue_type.as_mut().unwrap().overrides[0].issue_type = "Exfil".into();
        s
    }

    fn catalog() -> PsaCatalog {
        PsaCatalog {
            boards: named(&[("1", "Security Alerts")]),
            statuses: StatusInfo::list(&[("10", "New", false), ("12", ">Closed", true)]),
            issue_types: named(&[("30", "SaaS Alerts")]),
            sub_issue_types: HashMap::from([("30".to_string(), named(&[("40", "General")]))]),
            priorities: named(&[("50", "P1"), ("52", "Priority 3 - Medium")]),
            ..Default::default()
        }
    }

    #[test]
    fn every_name_is_reported_with_its_outcome() {
        let s = settings();
        let checks = name_checks(&s, &resolve_ticket(&s, &catalog()));
        let rows: Vec<(&str, Option<bool>)> = checks
            .iter()
            .map(|c| (c.field.as_str(), c.resolves))
            .collect();
        assert_eq!(
            rows,
            [
                ("ticket.board", Some(true)),
                ("ticket.status.value", Some(true)),
                ("ticket.priority.map.critical", Some(true)),
                ("ticket.priority.map.medium", Some(false)),
                ("ticket.priority.default", Some(true)),
                ("ticket.issueType.default", Some(true)),
                ("ticket.issueType.subIssueType", Some(true)),
                ("ticket.issueType.overrides[0].issueType", Some(false)),
                ("ticket.issueType.overrides[0].subIssueType", None),
                ("ticket.closedStatus", Some(true)),
            ]
        );
        let medium = &checks[3];
        assert_eq!(
            medium.problem.as_deref(),
            Some("not found (did you mean \"Priority 3 - Medium\"?)")
        );
    }

    #[test]
    fn ids_are_shown_when_everything_resolves() {
        let mut s = settings();
        s.priority_map_mut().remove("medium");
        s.issue_type.as_mut().unwrap().overrides.clear();
        let checks = name_checks(&s, &resolve_ticket(&s, &catalog()));
        let ids: Vec<(&str, Option<&str>)> = checks
            .iter()
            .map(|c| (c.field.as_str(), c.id.as_deref()))
            .collect();
        assert_eq!(
            ids,
            [
                ("ticket.board", Some("1")),
                ("ticket.status.value", Some("10")),
                ("ticket.priority.map.critical", Some("50")),
                ("ticket.priority.default", Some("50")),
                ("ticket.issueType.default", Some("30")),
                ("ticket.issueType.subIssueType", Some("40")),
                ("ticket.closedStatus", Some("12")),
            ]
        );
    }
}
