//! `POST .../webhook/{source}`: a generic JSON webhook mapped by `spec.sources[name]`. Pure.
//!
//! The body is one JSON object (one alert) or an array of them (at most the batch limit).
//! The event id is the source's `id` expression, else the `svix-id` header (one object only),
//! else the SHA-256 of the object: a sender's retry of the same payload is a duplicate.

use std::collections::BTreeMap;

use serde_json::Value;

use super::signature::{sha256_hex, SVIX_ID};
use super::{event_id, to_event, CompiledSource, Input};
use crate::dispatch::event::Event;
use crate::dispatch::intake::fields::{field_error, parse_json, ParseError};

/// Maps a webhook body with `source`.
pub fn parse_webhook(
    source: &CompiledSource,
    headers: &BTreeMap<String, String>,
    body: &[u8],
    max_batch: usize,
) -> Result<Vec<Event>, ParseError> {
    let value = parse_json(body)?;
    let (items, single): (Vec<(String, &Value)>, bool) = match &value {
        Value::Array(list) => {
            if list.len() > max_batch {
                return Err(ParseError::Invalid(vec![field_error(
                    "",
                    format!("must hold at most {max_batch} payloads per request"),
                )]));
            }
            (
                list.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("/{i}"), v))
                    .collect(),
                false,
            )
        }
        Value::Object(_) => (vec![(String::new(), &value)], true),
        _ => {
            return Err(ParseError::Invalid(vec![field_error(
                "",
                "must be a JSON object (one alert) or an array of them",
            )]))
        }
    };
    let no_event = Value::Object(Default::default());
    let prefix = format!("webhook:{}:", source.name);
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (at, payload) in items {
        let input = Input {
            payload,
            headers,
            event: &no_event,
            at: &at,
        };
        match source.evaluate(&input) {
            Ok(mut mapped) => {
                let raw_id = mapped
                    .id
                    .take()
                    .or_else(|| headers.get(SVIX_ID).filter(|_| single).cloned())
                    .unwrap_or_else(|| sha256_hex(payload.to_string().as_bytes()));
                events.push(to_event(
                    event_id(&prefix, &raw_id),
                    mapped,
                    None,
                    BTreeMap::new(),
                ));
            }
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(ParseError::Invalid(errors))
    }
}
