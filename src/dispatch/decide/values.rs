//! Ticket field values (source, status, type, priority) and issue types from the snapshot.
//!
//! Seed 003's three modes per field: "do not set" (the PSA default applies), "a single value for
//! all findings", "custom mapping" of each sender value. Map keys match case-insensitively (a
//! sender writing `Critical` or `critical` means the same); unmatched values take the default.

use crate::api::EventField;
use crate::dispatch::event::Event;
use crate::psa::{NewTicket, PsaId};
use crate::resolved::{IssueTypeIds, ResolvedCustomer, ResolvedTicket, ResolvedValue};

/// The event's value of a field a map can key on.
pub fn event_field(event: &Event, field: EventField) -> Option<&str> {
    let v = match field {
        EventField::Severity => event.severity.as_deref(),
        // Alerts name their type `alertType`, findings `type`: the event keeps both in one field.
        EventField::AlertType | EventField::Type => Some(event.alert_type.as_str()),
        EventField::Status => event.status.as_deref(),
        EventField::Priority => event.priority.as_deref(),
        EventField::Organization => Some(event.organization.as_str()),
    };
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// The PSA id a field gets for this event; `None` = do not set it.
pub fn resolve_value(value: &ResolvedValue, event: &Event) -> Option<PsaId> {
    match value {
        ResolvedValue::NotSet => None,
        ResolvedValue::One(id) => Some(id.clone()),
        ResolvedValue::Map { key, map, default } => {
            let found = event_field(event, *key).and_then(|v| {
                map.get(v).or_else(|| {
                    let wanted = v.to_lowercase();
                    map.iter()
                        .find(|(k, _)| k.trim().to_lowercase() == wanted)
                        .map(|(_, id)| id)
                })
            });
            found.or(default.as_ref()).cloned()
        }
    }
}

/// Issue type and sub-issue type for an alert type (seed 000's five combinations).
///
/// An override for the alert type replaces the default pair as a whole: a sub-issue type belongs
/// to its issue type, so the default sub-issue type never mixes with an overridden issue type.
pub fn issue_types(ticket: &ResolvedTicket, alert_type: &str) -> IssueTypeIds {
    let wanted = alert_type.trim().to_lowercase();
    let overridden = ticket.issue_type_overrides.get(alert_type).or_else(|| {
        ticket
            .issue_type_overrides
            .iter()
            .find(|(k, _)| k.trim().to_lowercase() == wanted)
            .map(|(_, v)| v)
    });
    overridden
        .cloned()
        .unwrap_or_else(|| ticket.issue_type_default.clone())
}

/// What a new ticket says and who it is for; the values come from the settings.
pub struct TicketText {
    /// The idempotency marker the ticket carries.
    pub marker: String,
    pub summary: String,
    pub description: String,
    pub contact_id: Option<PsaId>,
}

/// The ticket to create for `event` at `customer`: the customer's company, location and
/// contract, and the ids `ticket` gives this event (board, status, type, issue types, priority,
/// source). A ticket of its own and a storm's roll-up are both made here.
pub fn new_ticket(
    ticket: &ResolvedTicket,
    customer: &ResolvedCustomer,
    event: &Event,
    text: TicketText,
) -> NewTicket {
    let issue = issue_types(ticket, &event.alert_type);
    NewTicket {
        marker: text.marker,
        summary: text.summary,
        description: text.description,
        company_id: customer.company_id.clone(),
        contact_id: text.contact_id,
        location_id: customer.location_id.clone(),
        board_id: ticket.board_id.clone(),
        status_id: resolve_value(&ticket.status, event),
        type_id: resolve_value(&ticket.type_, event),
        issue_type_id: issue.issue_type,
        sub_issue_type_id: issue.sub_issue_type,
        priority_id: resolve_value(&ticket.priority, event),
        source_id: resolve_value(&ticket.source, event),
        contract_id: customer.contract_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn alert(alert_type: &str, severity: Option<&str>) -> Event {
        Event {
            alert_type: alert_type.into(),
            severity: severity.map(Into::into),
            status: Some("Open".into()),
            priority: Some("1".into()),
            ..crate::dispatch::event::Event::sample()
        }
    }

    fn map(key: EventField, pairs: &[(&str, &str)], default: Option<&str>) -> ResolvedValue {
        ResolvedValue::Map {
            key,
            map: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            default: default.map(Into::into),
        }
    }

    #[test]
    fn value_modes() {
        let by_severity = map(
            EventField::Severity,
            &[("critical", "1"), ("High", "2"), ("medium", "3")],
            Some("4"),
        );
        let no_default = map(EventField::Severity, &[("critical", "1")], None);
        let by_type = map(EventField::AlertType, &[("too many downloads", "30")], None);
        let by_status = map(EventField::Status, &[("open", "40")], None);
        let by_priority = map(EventField::Priority, &[("1", "50")], None);
        let by_org = map(EventField::Organization, &[("contoso ltd", "60")], None);
        let one = ResolvedValue::One("7".into());
        // (mapping, event severity, event alert type, expected id)
        let table: Vec<(&ResolvedValue, Option<&str>, &str, Option<&str>)> = vec![
            (&ResolvedValue::NotSet, Some("critical"), "x", None),
            (&one, Some("critical"), "x", Some("7")),
            (&one, None, "x", Some("7")),
            (&by_severity, Some("critical"), "x", Some("1")),
            (&by_severity, Some("CRITICAL"), "x", Some("1")),
            (&by_severity, Some("high"), "x", Some("2")),
            (&by_severity, Some(" Medium "), "x", Some("3")),
            (&by_severity, Some("low"), "x", Some("4")),
            (&by_severity, None, "x", Some("4")),
            (&by_severity, Some(""), "x", Some("4")),
            (&no_default, Some("low"), "x", None),
            (&no_default, Some("Critical"), "x", Some("1")),
            (&by_type, None, "Too Many Downloads", Some("30")),
            (&by_type, None, "Too Many Uploads", None),
            (&by_status, None, "x", Some("40")),
            (&by_priority, None, "x", Some("50")),
            (&by_org, None, "x", Some("60")),
        ];
        for (mapping, severity, alert_type, want) in table {
            let e = alert(alert_type, severity);
            assert_eq!(
                resolve_value(mapping, &e).as_deref(),
                want,
                "{mapping:?} {severity:?} {alert_type:?}"
            );
        }
    }

    fn ids(issue: Option<&str>, sub: Option<&str>) -> IssueTypeIds {
        IssueTypeIds {
            issue_type: issue.map(Into::into),
            sub_issue_type: sub.map(Into::into),
        }
    }

    /// Seed 000 "Determining if you will use issue types/sub-issue types": all five combinations.
    #[test]
    fn five_issue_type_combinations() {
        let overrides = |with_sub: bool| {
            let mut m = BTreeMap::new();
            m.insert(
                "Too Many Downloads".to_string(),
                ids(Some("20"), with_sub.then_some("21")),
            );
            m
        };
        let tickets = [
            // 1. No issue type / sub-issue type.
            ("none", ResolvedTicket::default()),
            // 2. Default issue type for all tickets.
            (
                "default",
                ResolvedTicket {
                    issue_type_default: ids(Some("10"), None),
                    ..Default::default()
                },
            ),
            // 3. Default issue type and sub-issue type for all tickets.
            (
                "default+sub",
                ResolvedTicket {
                    issue_type_default: ids(Some("10"), Some("11")),
                    ..Default::default()
                },
            ),
            // 4. No default, an override for a specific alert.
            (
                "override only",
                ResolvedTicket {
                    issue_type_overrides: overrides(true),
                    ..Default::default()
                },
            ),
            // 5. Default issue type and sub-issue type, with an override for a specific alert.
            (
                "default+sub+override",
                ResolvedTicket {
                    issue_type_default: ids(Some("10"), Some("11")),
                    issue_type_overrides: overrides(false),
                    ..Default::default()
                },
            ),
        ];
        // (combination, alert type, expected)
        let table = [
            ("none", "Too Many Downloads", ids(None, None)),
            ("none", "Multiple MFA Failures", ids(None, None)),
            ("default", "Too Many Downloads", ids(Some("10"), None)),
            ("default", "Multiple MFA Failures", ids(Some("10"), None)),
            (
                "default+sub",
                "Too Many Downloads",
                ids(Some("10"), Some("11")),
            ),
            (
                "default+sub",
                "Multiple MFA Failures",
                ids(Some("10"), Some("11")),
            ),
            (
                "override only",
                "Too Many Downloads",
                ids(Some("20"), Some("21")),
            ),
            (
                "override only",
                "too many downloads",
                ids(Some("20"), Some("21")),
            ),
            ("override only", "Multiple MFA Failures", ids(None, None)),
            // The override's issue type never takes the default's sub-issue type.
            (
                "default+sub+override",
                "Too Many Downloads",
                ids(Some("20"), None),
            ),
            (
                "default+sub+override",
                "Multiple MFA Failures",
                ids(Some("10"), Some("11")),
            ),
        ];
        for (combo, alert_type, want) in table {
            let t = &tickets.iter().find(|(n, _)| *n == combo).expect("combo").1;
            assert_eq!(issue_types(t, alert_type), want, "{combo} / {alert_type}");
        }
    }
}
