//! `POST .../findings`: finding lifecycle events → `Event`s. Pure.
//!
//! One object, an array, or `{"events": [...]}`:
//! `{"id", "findingId", "event": "created"|"commented"|"resolved", "organization", "name",
//!   "type", "priority", "status", "description", "comment", "author", "url", "occurredAt"}`.
//! `id` may be sent as `eventId`, `organization` as `{"id","name"}`, `priority` as a number.
//! A `commented` event needs its `comment`; a `resolved` one may carry one (the resolution
//! notes). Every finding event keys on `findingId`: one ticket per finding.

use std::collections::BTreeMap;

use super::alerts::{MAX_DESCRIPTION, MAX_ID, MAX_NAME, MAX_TITLE};
use super::fields::{parse_items, FieldError, Fields, Need, ParseError};
use crate::dispatch::event::{Event, EventKind};

pub const LIFECYCLE: &[&str] = &["created", "commented", "resolved"];

/// Longest accepted comment (bytes).
pub const MAX_COMMENT: usize = 16 * 1024;

/// Parses a `/findings` body holding at most `max_batch` events.
pub fn parse_findings(body: &[u8], max_batch: usize) -> Result<Vec<Event>, ParseError> {
    parse_items(body, max_batch, parse_one)
}

fn parse_one(item: &serde_json::Value, at: &str, errors: &mut Vec<FieldError>) -> Option<Event> {
    let mut f = Fields::of(item, at, errors)?;
    let id = f.string_alias(&["id", "eventId"], Need::Required, MAX_ID);
    let finding_id = f.line("findingId", Need::Required, MAX_ID);
    let lifecycle = f.one_of("event", Need::Required, LIFECYCLE);
    let organization = f.name_or_object("organization", Need::Required, &["name"], MAX_NAME);
    let name = f.string("name", Need::Optional, MAX_TITLE);
    let finding_type = f.line("type", Need::Optional, MAX_NAME);
    let priority = f.string_or_number("priority", MAX_NAME);
    let status = f.line("status", Need::Optional, MAX_NAME);
    let description = f.string("description", Need::Optional, MAX_DESCRIPTION);
    let comment_need = match lifecycle.as_deref() {
        Some("commented") => Need::Required,
        _ => Need::Optional,
    };
    let comment = f.string("comment", comment_need, MAX_COMMENT);
    let author = f.line("author", Need::Optional, MAX_NAME);
    let url = f.url("url");
    let occurred_at = f.time("occurredAt", Need::Optional);
    let (id, finding_id, lifecycle, organization) = (id?, finding_id?, lifecycle?, organization?);
    let kind = match lifecycle.as_str() {
        "created" => EventKind::FindingCreated,
        "commented" => EventKind::FindingCommented,
        _ => EventKind::FindingResolved,
    };
    Some(Event {
        id,
        kind,
        title: name.unwrap_or_else(|| format!("Finding {finding_id}")),
        finding_id: Some(finding_id),
        organization,
        user: None,
        alert_type: finding_type.unwrap_or_else(|| "Finding".to_string()),
        severity: None,
        description: description.unwrap_or_default(),
        occurred_at,
        url,
        status,
        priority,
        comment,
        author,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Vec<Event>, ParseError> {
        parse_findings(v.to_string().as_bytes(), 100)
    }

    #[test]
    fn lifecycle_events_map_to_kinds() {
        let base = json!({"id": "e", "findingId": "f-1", "organization": "Contoso Ltd",
                          "name": "Impossible travel", "type": "Threat", "priority": 1,
                          "status": "Open", "comment": "looking", "author": "SOC"});
        let cases = [
            ("created", EventKind::FindingCreated),
            ("Commented", EventKind::FindingCommented),
            ("resolved", EventKind::FindingResolved),
        ];
        for (word, kind) in cases {
            let mut body = base.clone();
            body["event"] = json!(word);
            let e = parse(body).unwrap().remove(0);
            assert_eq!(e.kind, kind, "{word}");
            assert_eq!(e.finding_id.as_deref(), Some("f-1"));
            assert_eq!(e.alert_type, "Threat");
            assert_eq!(e.priority.as_deref(), Some("1"));
            assert_eq!(e.title, "Impossible travel");
            assert_eq!(e.comment.as_deref(), Some("looking"));
            assert_eq!(e.author.as_deref(), Some("SOC"));
        }
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let e = parse(
            json!({"eventId": "e", "findingId": "f-9", "event": "created",
                             "organization": {"id": "b1", "name": "Contoso"}}),
        )
        .unwrap()
        .remove(0);
        assert_eq!(e.title, "Finding f-9");
        assert_eq!(e.alert_type, "Finding");
        assert_eq!(e.organization, "Contoso");
    }

    #[test]
    fn field_errors_name_each_field() {
        let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
            (
                json!({}),
                vec!["/id", "/findingId", "/event", "/organization"],
            ),
            (
                json!({"id": "e", "findingId": "f", "event": "reopened", "organization": "O"}),
                vec!["/event"],
            ),
            (
                json!({"id": "e", "findingId": "f", "event": "commented", "organization": "O"}),
                vec!["/comment"],
            ),
            (
                json!([{"id": "e", "findingId": "f", "event": "created", "organization": "O",
                        "priority": [1]}]),
                vec!["/0/priority"],
            ),
        ];
        for (body, want) in cases {
            match parse(body.clone()) {
                Err(ParseError::Invalid(e)) => {
                    let got: Vec<_> = e.iter().map(|e| e.pointer.as_str()).collect();
                    assert_eq!(got, want, "{body}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
