//! `POST .../cloudevents`: CloudEvents 1.0 over HTTP (HTTP protocol binding), mapped by the
//! first `spec.sources` entry whose `cloudEventTypes` takes the event's `type`. Pure.
//!
//! * binary mode: attributes in `ce-*` headers (values percent-decoded), the body is `data`;
//! * structured mode: `Content-Type: application/cloudevents+json`, the body is the event
//!   (`data` JSON; `data_base64` is refused: the mapping reads JSON);
//! * batch mode: `Content-Type: application/cloudevents-batch+json`, an array of structured
//!   events (at most the batch limit).
//!
//! The expressions see `event` (every attribute, extensions included, e.g. `event.subject`)
//! and `payload` (`data`). The event id is the source's `id` expression, else
//! `ce:<source>:<id>` (CloudEvents' own uniqueness rule), so redeliveries are duplicates.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{event_id, to_event, CompiledSource, CompiledSources, Input};
use crate::dispatch::event::Event;
use crate::dispatch::intake::fields::{
    field_error, normalise_time, parse_json, FieldError, ParseError,
};

const REQUIRED: [&str; 4] = ["specversion", "id", "source", "type"];

/// How the request carries its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Binary,
    Structured,
    Batch,
}

/// The mode of a request from its content type (essence, lower-case).
pub fn mode(content_type: &str) -> Mode {
    match content_type {
        "application/cloudevents+json" => Mode::Structured,
        "application/cloudevents-batch+json" => Mode::Batch,
        _ => Mode::Binary,
    }
}

/// The events of a request and the sources that mapped them (whose signatures the caller
/// checks).
pub fn parse_cloudevents<'s>(
    sources: &'s CompiledSources,
    content_type: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
    max_batch: usize,
) -> Result<(Vec<Event>, Vec<&'s CompiledSource>), ParseError> {
    let value = parse_json(body)?;
    let mut errors = Vec::new();
    let events: Vec<(String, Map<String, Value>)> = match mode(content_type) {
        Mode::Binary => match binary_attributes(headers, value) {
            Ok(attrs) => vec![(String::new(), attrs)],
            Err(e) => return Err(ParseError::Invalid(e)),
        },
        Mode::Structured => match value {
            Value::Object(m) => vec![(String::new(), m)],
            _ => return Err(invalid("", "a structured CloudEvent must be a JSON object")),
        },
        Mode::Batch => match value {
            Value::Array(list) if list.len() > max_batch => {
                return Err(invalid(
                    "",
                    format!("must hold at most {max_batch} events per request"),
                ))
            }
            Value::Array(list) => list
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Object(m) => Some((format!("/{i}"), m)),
                    _ => {
                        errors.push(field_error(format!("/{i}"), "must be a CloudEvent object"));
                        None
                    }
                })
                .collect(),
            _ => return Err(invalid("", "a CloudEvents batch must be a JSON array")),
        },
    };
    let mut out = Vec::new();
    let mut used = Vec::new();
    for (at, attrs) in &events {
        if let Some((event, source)) = map_event(sources, headers, at, attrs, &mut errors) {
            out.push(event);
            used.push(source);
        }
    }
    if errors.is_empty() {
        Ok((out, used))
    } else {
        Err(ParseError::Invalid(errors))
    }
}

fn invalid(at: &str, detail: impl Into<String>) -> ParseError {
    ParseError::Invalid(vec![field_error(at, detail)])
}

/// Binary mode: `ce-<name>` headers → attributes, the body → `data`.
fn binary_attributes(
    headers: &BTreeMap<String, String>,
    data: Value,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut attrs = Map::new();
    for (name, value) in headers {
        if let Some(attr) = name.strip_prefix("ce-") {
            let decoded = urlencoding::decode(value).map(|c| c.into_owned());
            let decoded = decoded.unwrap_or_else(|_| value.clone());
            attrs.insert(attr.to_string(), Value::String(decoded));
        }
    }
    if !attrs.contains_key("specversion") {
        return Err(vec![field_error(
            "",
            "not a CloudEvent: binary mode needs the ce-specversion, ce-id, ce-source and ce-type \
             headers (or send Content-Type: application/cloudevents+json)",
        )]);
    }
    attrs.insert("data".into(), data);
    Ok(attrs)
}

/// One event: required attributes, its source, the mapping.
fn map_event<'s>(
    sources: &'s CompiledSources,
    headers: &BTreeMap<String, String>,
    at: &str,
    attrs: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<(Event, &'s CompiledSource)> {
    let text = |name: &str| {
        attrs
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let before = errors.len();
    for name in REQUIRED {
        if text(name).is_none() {
            errors.push(field_error(
                format!("{at}/{name}"),
                format!("is required (a non-empty string; binary mode: header ce-{name})"),
            ));
        }
    }
    if let Some(v) = text("specversion").filter(|v| *v != "1.0") {
        errors.push(field_error(
            format!("{at}/specversion"),
            format!("{v:?} is not 1.0"),
        ));
    }
    if attrs.contains_key("data_base64") {
        errors.push(field_error(
            format!("{at}/data_base64"),
            "binary data cannot be mapped; send JSON data",
        ));
    }
    let time = text("time").map(|t| normalise_time(t).ok_or(t));
    if let Some(Err(t)) = time {
        errors.push(field_error(
            format!("{at}/time"),
            format!("{t:?} is not an RFC 3339 time"),
        ));
    }
    if errors.len() > before {
        return None;
    }
    let event_type = text("type")?;
    let Some(source) = sources.for_cloud_event(event_type) else {
        errors.push(field_error(
            format!("{at}/type"),
            format!("no spec.sources entry maps CloudEvents type {event_type:?} (cloudEventTypes)"),
        ));
        return None;
    };
    let null = Value::Null;
    let payload = attrs.get("data").unwrap_or(&null);
    let mut attributes = attrs.clone();
    attributes.remove("data");
    let attributes = Value::Object(attributes);
    let input = Input {
        payload,
        headers,
        event: &attributes,
        at,
    };
    let mut mapped = match source.evaluate(&input) {
        Ok(m) => m,
        Err(e) => {
            errors.extend(e);
            return None;
        }
    };
    let ce_source = text("source")?;
    let raw_id = mapped
        .id
        .take()
        .unwrap_or_else(|| format!("{ce_source}:{}", text("id").unwrap_or_default()));
    let mut labels = BTreeMap::new();
    for name in ["type", "source", "subject"] {
        if let Some(v) = text(name) {
            labels.insert(format!("ce_{name}"), v.to_string());
        }
    }
    let id = event_id(&format!("ce:{}:", source.name), &raw_id);
    Some((
        to_event(id, mapped, time.and_then(Result::ok), labels),
        source,
    ))
}
