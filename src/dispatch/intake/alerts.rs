//! `POST .../alerts`: SaaS-alert style alerts → `Event`s. Pure.
//!
//! One alert object, an array of them, or `{"events": [...]}`:
//! `{"id", "organization", "user", "alertType", "severity", "title", "description",
//!   "occurredAt", "url"}`. `id` may be sent as `eventId`; `organization` as `{"id","name"}`;
//! `user` as `{"email","name"}` (the e-mail wins — it is what finds the contact). `product`,
//! `alertTypeCode` and `ip` are kept as labels for templates. Unknown fields are ignored.

use std::collections::BTreeMap;

use super::fields::{parse_items, FieldError, Fields, Need, ParseError};
use crate::dispatch::event::{Event, EventKind};

/// `status` of an `/alerts` alert.
pub const ALERT_STATUSES: &[&str] = &["firing", "resolved"];

pub const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

/// Longest accepted event id, organization, user, alert type, title.
pub const MAX_ID: usize = 128;
pub const MAX_NAME: usize = 256;
pub const MAX_TITLE: usize = 1024;
/// Longest accepted description (bytes).
pub const MAX_DESCRIPTION: usize = 8 * 1024;

/// Parses an `/alerts` body holding at most `max_batch` alerts.
pub fn parse_alerts(body: &[u8], max_batch: usize) -> Result<Vec<Event>, ParseError> {
    parse_items(body, max_batch, parse_one)
}

fn parse_one(item: &serde_json::Value, at: &str, errors: &mut Vec<FieldError>) -> Option<Event> {
    let mut f = Fields::of(item, at, errors)?;
    let id = f.string_alias(&["id", "eventId"], Need::Required, MAX_ID);
    let organization = f.name_or_object("organization", Need::Required, &["name"], MAX_NAME);
    let user = f.name_or_object("user", Need::Optional, &["email", "name"], MAX_NAME);
    let alert_type = f.line("alertType", Need::Required, MAX_NAME);
    let severity = f.one_of("severity", Need::Optional, SEVERITIES);
    let title = f.string("title", Need::Optional, MAX_TITLE);
    let description = f.string("description", Need::Optional, MAX_DESCRIPTION);
    let occurred_at = f.time("occurredAt", Need::Optional);
    let url = f.url("url");
    let status = f.one_of("status", Need::Optional, ALERT_STATUSES);
    let alert_id = f.line("alertId", Need::Optional, MAX_ID);
    let mut labels = BTreeMap::new();
    for name in ["product", "alertTypeCode", "ip"] {
        if let Some(v) = f.line(name, Need::Optional, MAX_NAME) {
            labels.insert(name.to_string(), v);
        }
    }
    // Every field was read (and its errors recorded) before giving up on the item.
    let (id, organization, alert_type) = (id?, organization?, alert_type?);
    Some(Event {
        id,
        kind: if status.as_deref() == Some("resolved") {
            EventKind::AlertCleared
        } else {
            EventKind::Alert
        },
        organization,
        user,
        title: title.unwrap_or_else(|| alert_type.clone()),
        alert_type,
        severity,
        description: description.unwrap_or_default(),
        occurred_at,
        url,
        finding_id: alert_id,
        status,
        priority: None,
        comment: None,
        author: None,
        labels,
        annotations: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Vec<Event>, ParseError> {
        parse_alerts(v.to_string().as_bytes(), 100)
    }

    fn pointers(r: Result<Vec<Event>, ParseError>) -> Vec<String> {
        match r {
            Err(ParseError::Invalid(e)) => e.into_iter().map(|e| e.pointer).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn the_issue_shape_becomes_an_alert_event() {
        let evs = parse(json!({
            "id": "sa-1", "organization": "Contoso Ltd", "user": "jane@contoso.example",
            "alertType": "Too Many Downloads", "severity": "Critical",
            "title": "412 files downloaded", "description": "from SharePoint",
            "occurredAt": "2026-11-24T17:18:28+01:00", "url": "https://saas.example/a/1"
        }))
        .unwrap();
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e.id, "sa-1");
        assert_eq!(e.kind, EventKind::Alert);
        assert_eq!(e.organization, "Contoso Ltd");
        assert_eq!(e.user.as_deref(), Some("jane@contoso.example"));
        assert_eq!(e.alert_type, "Too Many Downloads");
        assert_eq!(e.severity.as_deref(), Some("critical"));
        assert_eq!(e.title, "412 files downloaded");
        assert_eq!(e.occurred_at.as_deref(), Some("2026-11-24T16:18:28Z"));
        assert_eq!(e.url.as_deref(), Some("https://saas.example/a/1"));
    }

    #[test]
    fn a_resolved_alert_is_a_clearing_of_its_alert_id() {
        let evs = parse(json!([
            {"id": "a-1", "organization": "Contoso Ltd", "alertType": "Disk Full",
             "alertId": "disk-c", "status": "Resolved"},
            {"id": "a-2", "organization": "Contoso Ltd", "alertType": "Disk Full"},
        ]))
        .unwrap();
        assert_eq!(evs[0].kind, EventKind::AlertCleared);
        assert_eq!(evs[0].finding_id.as_deref(), Some("disk-c"));
        assert_eq!(evs[1].kind, EventKind::Alert);
        assert_eq!(evs[1].finding_id, None);
        assert_eq!(
            pointers(parse(
                json!({"id": "a-3", "organization": "C", "alertType": "X",
                                  "status": "gone"})
            )),
            vec!["/status"]
        );
    }

    #[test]
    fn the_reference_shape_is_read_too() {
        let evs = parse(json!({"events": [{
            "eventId": "sa-7f3c", "organization": {"id": "9001", "name": "Contoso Ltd"},
            "user": {"email": "jane@contoso.example", "name": "Jane Doe"},
            "alertType": "Too Many Downloads", "alertTypeCode": "file.downloaded",
            "severity": "critical", "product": "Microsoft 365", "unknownField": [1, 2],
            "description": "412 files downloaded from SharePoint in 10 minutes",
            "occurredAt": "2026-11-24T16:18:28Z"
        }]}))
        .unwrap();
        let e = &evs[0];
        assert_eq!(e.id, "sa-7f3c");
        assert_eq!(e.organization, "Contoso Ltd");
        assert_eq!(e.user.as_deref(), Some("jane@contoso.example"));
        assert_eq!(
            e.title, "Too Many Downloads",
            "title defaults to the alert type"
        );
        assert_eq!(e.labels["product"], "Microsoft 365");
        assert_eq!(e.labels["alertTypeCode"], "file.downloaded");
    }

    #[test]
    fn arrays_keep_their_order() {
        let evs = parse(json!([
            {"id": "1", "organization": "O", "alertType": "A"},
            {"id": "2", "organization": "O", "alertType": "B", "user": {"name": "Bob"}}
        ]))
        .unwrap();
        let ids: Vec<_> = evs.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(evs[0].user, None);
        assert_eq!(evs[1].user.as_deref(), Some("Bob"));
    }

    #[test]
    fn field_errors_name_each_field() {
        let long = "x".repeat(MAX_DESCRIPTION + 1);
        let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
            (json!({}), vec!["/id", "/organization", "/alertType"]),
            (
                json!({"id": "1", "organization": "O", "alertType": "A", "severity": "urgent"}),
                vec!["/severity"],
            ),
            (
                json!({"id": "1", "organization": "O", "alertType": "A",
                       "occurredAt": "2024-01-15T10:00:00"}),
                vec!["/occurredAt"],
            ),
            (
                json!({"id": "1", "organization": "O", "alertType": "A", "url": "javascript:x"}),
                vec!["/url"],
            ),
            (
                json!({"id": "1", "organization": "O", "alertType": "A", "description": long}),
                vec!["/description"],
            ),
            (
                json!({"id": 5, "organization": {"id": "9"}, "alertType": "A"}),
                vec!["/id", "/organization/name"],
            ),
            (
                json!([{"id": "1", "organization": "O", "alertType": "A"}, "nope",
                       {"id": "3", "organization": "O"}]),
                vec!["/1", "/2/alertType"],
            ),
            (
                json!({"id": "x".repeat(MAX_ID + 1), "organization": "O", "alertType": "A"}),
                vec!["/id"],
            ),
        ];
        for (body, want) in cases {
            assert_eq!(pointers(parse(body.clone())), want, "{body}");
        }
    }

    #[test]
    fn not_json_is_malformed() {
        for body in [&b"{"[..], b"", b"\xff\xfe", b"{\"id\": }"] {
            assert!(matches!(
                parse_alerts(body, 100),
                Err(ParseError::Malformed(_))
            ));
        }
    }

    #[test]
    fn batches_are_capped() {
        let many: Vec<_> = (0..3)
            .map(|i| json!({"id": i.to_string(), "organization": "O", "alertType": "A"}))
            .collect();
        let body = serde_json::Value::Array(many).to_string();
        assert!(parse_alerts(body.as_bytes(), 3).is_ok());
        assert!(matches!(
            parse_alerts(body.as_bytes(), 2),
            Err(ParseError::Invalid(_))
        ));
    }

    #[test]
    fn deep_nesting_is_refused_without_crashing() {
        let body = "[".repeat(100_000);
        assert!(parse_alerts(body.as_bytes(), 100).is_err());
    }
}
