//! Field-by-field validation of a JSON body, collecting every error with its JSON pointer.
//!
//! The parsers read a `serde_json::Value` through `Fields` rather than deriving structs, so a
//! rejection can name each offending field (`/events/3/severity`) and list all of them at once,
//! and so no input can make them panic.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::dispatch::event::{breaks_lines, strip_bidi_controls};

/// One invalid field: where (RFC 6901 JSON pointer into the body) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

/// Why a body could not be turned into events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON at all (→ 400).
    Malformed(String),
    /// JSON, but fields are missing or wrong (→ 422).
    Invalid(Vec<FieldError>),
}

/// Parses the body as JSON. serde_json's nesting limit keeps hostile input from exhausting the
/// stack.
pub fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError::Malformed(e.to_string()))
}

/// `base` + `/` + `token`, escaping `~` and `/` as RFC 6901 requires.
pub fn pointer(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// An error at `pointer`.
pub fn field_error(pointer: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }
}

/// Whether a field must be present.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
}

/// Bounds of a string map (Alertmanager labels and annotations).
#[derive(Clone, Copy, Debug)]
pub struct MapLimits {
    pub entries: usize,
    /// Longest key (bytes).
    pub key: usize,
    /// Longest value (bytes).
    pub value: usize,
}

/// The fields of one JSON object at `base`; errors go to the shared list.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    base: String,
    errors: &'a mut Vec<FieldError>,
}

/// The array `value[name]` a message must carry (an error on `top` when it is missing or not
/// an array: then nothing). Read through `value`, not `top`, so that the caller may go on
/// appending to the error list `top` borrows while it walks the items.
pub fn required_array<'v>(value: &'v Value, name: &str, top: &mut Fields<'_>) -> &'v [Value] {
    match value.get(name).filter(|v| !v.is_null()) {
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            top.error(name, "must be an array");
            &[]
        }
        None => {
            top.error(name, "is required");
            &[]
        }
    }
}

impl<'a> Fields<'a> {
    /// The object at `base`, or an error when the value is not an object.
    pub fn of(
        value: &'a Value,
        base: impl Into<String>,
        errors: &'a mut Vec<FieldError>,
    ) -> Option<Fields<'a>> {
        let base = base.into();
        match value.as_object() {
            Some(obj) => Some(Fields { obj, base, errors }),
            None => {
                errors.push(field_error(base, "must be a JSON object"));
                None
            }
        }
    }

    pub fn at(&self, name: &str) -> String {
        pointer(&self.base, name)
    }

    /// The raw value of a field; `null` counts as absent.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    pub fn error(&mut self, name: &str, detail: impl Into<String>) {
        let at = self.at(name);
        self.errors.push(field_error(at, detail));
    }

    fn missing(&mut self, name: &str, need: Need) {
        if need == Need::Required {
            self.error(name, "is required");
        }
    }

    /// A non-blank string of at most `max` bytes (trimmed, bidirectional controls dropped).
    pub fn string(&mut self, name: &str, need: Need, max: usize) -> Option<String> {
        let Some(v) = self.raw(name) else {
            self.missing(name, need);
            return None;
        };
        let Some(s) = v.as_str() else {
            self.error(name, "must be a string");
            return None;
        };
        let cleaned = strip_bidi_controls(s);
        let s = cleaned.trim();
        if s.is_empty() {
            if need == Need::Required {
                self.error(name, "must not be empty");
            }
            return None;
        }
        if s.len() > max {
            self.error(name, format!("must be at most {max} bytes"));
            return None;
        }
        Some(s.to_string())
    }

    /// `string` that must be one line: names, ids and types end up on lines of their own in
    /// ticket descriptions and failsafe e-mails, where a line break could forge a header.
    pub fn line(&mut self, name: &str, need: Need, max: usize) -> Option<String> {
        let s = self.string(name, need, max)?;
        if breaks_lines(&s) {
            self.error(
                name,
                "must be a single line (no line breaks or control characters)",
            );
            return None;
        }
        Some(s)
    }

    /// The first of `names` that is present (aliases such as `id` / `eventId`), as one line.
    pub fn string_alias(&mut self, names: &[&str], need: Need, max: usize) -> Option<String> {
        let present = names.iter().find(|n| self.raw(n).is_some());
        match present {
            Some(name) => self.line(name, need, max),
            None => {
                self.missing(names[0], need);
                None
            }
        }
    }

    /// A string or an integer, as a string (priorities sent as `1` or `"P1"`).
    pub fn string_or_number(&mut self, name: &str, max: usize) -> Option<String> {
        match self.raw(name) {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(_)) => self.line(name, Need::Optional, max),
            Some(_) => {
                self.error(name, "must be a string or a number");
                None
            }
            None => None,
        }
    }

    /// One of `allowed` (compared case-insensitively), returned lowercase.
    pub fn one_of(&mut self, name: &str, need: Need, allowed: &[&str]) -> Option<String> {
        let s = self.string(name, need, 64)?;
        let lower = s.to_lowercase();
        if allowed.contains(&lower.as_str()) {
            Some(lower)
        } else {
            self.error(name, format!("must be one of {}", allowed.join(", ")));
            None
        }
    }

    /// An RFC 3339 time with `Z` or an offset, normalised to UTC (nanoseconds kept).
    pub fn time(&mut self, name: &str, need: Need) -> Option<String> {
        let s = self.string(name, need, 64)?;
        match normalise_time(&s) {
            Some(t) => Some(t),
            None => {
                self.error(
                    name,
                    "must be an RFC 3339 time with Z or an offset, e.g. 2026-11-24T16:18:28Z",
                );
                None
            }
        }
    }

    /// An absolute http(s) URL.
    pub fn url(&mut self, name: &str) -> Option<String> {
        let s = self.string(name, Need::Optional, 2048)?;
        if is_http_url(&s) {
            Some(s)
        } else {
            self.error(name, "must be an absolute http(s) URL");
            None
        }
    }

    /// A one-line name given as a string or as an object with a `name` (or first of `keys`) member:
    /// `"organization": "Contoso"` and `"organization": {"id": "9", "name": "Contoso"}`.
    pub fn name_or_object(
        &mut self,
        name: &str,
        need: Need,
        keys: &[&str],
        max: usize,
    ) -> Option<String> {
        match self.raw(name) {
            Some(v @ Value::Object(_)) => {
                let at = self.at(name);
                let mut inner = Fields::of(v, at, self.errors)?;
                inner.string_alias(keys, need, max)
            }
            _ => self.line(name, need, max),
        }
    }

    /// An object whose values are all strings (labels, annotations), within `limits`.
    pub fn string_map(
        &mut self,
        name: &str,
        need: Need,
        limits: MapLimits,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let Some(v) = self.raw(name) else {
            self.missing(name, need);
            return None;
        };
        let Some(obj) = v.as_object() else {
            self.error(name, "must be an object of strings");
            return None;
        };
        if obj.len() > limits.entries {
            self.error(
                name,
                format!("must have at most {} entries", limits.entries),
            );
            return None;
        }
        let mut out = std::collections::BTreeMap::new();
        let at = self.at(name);
        for (k, v) in obj {
            if k.len() > limits.key {
                // The key itself may be huge: name the map, not the key.
                let detail = format!("keys must be at most {} bytes", limits.key);
                self.errors.push(field_error(at.clone(), detail));
                continue;
            }
            match v.as_str() {
                Some(s) if s.len() > limits.value => self.errors.push(field_error(
                    pointer(&at, k),
                    format!("must be at most {} bytes", limits.value),
                )),
                Some(s) => {
                    out.insert(k.clone(), strip_bidi_controls(s));
                }
                None => self
                    .errors
                    .push(field_error(pointer(&at, k), "must be a string")),
            }
        }
        Some(out)
    }
}

/// RFC 3339 with `Z` or an offset → UTC RFC 3339; `None` for anything else (naive times too).
pub fn normalise_time(s: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| {
        t.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    })
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// The items of a body that is one object, an array of objects, or `{"events": [...]}`,
/// with the pointer prefix of each item.
pub fn items(value: &Value, max: usize) -> Result<Vec<(String, &Value)>, ParseError> {
    let (list, base): (Vec<&Value>, &str) = match value {
        Value::Array(a) => (a.iter().collect(), ""),
        Value::Object(o) => match o.get("events") {
            Some(Value::Array(a)) => (a.iter().collect(), "/events"),
            Some(_) => {
                return Err(ParseError::Invalid(vec![field_error(
                    "/events",
                    "must be an array of events",
                )]))
            }
            None => return Ok(vec![(String::new(), value)]),
        },
        _ => {
            return Err(ParseError::Invalid(vec![field_error(
                "",
                "must be an event object or an array of events",
            )]))
        }
    };
    if list.is_empty() {
        return Err(ParseError::Invalid(vec![field_error(
            base,
            "must hold at least one event",
        )]));
    }
    if list.len() > max {
        return Err(ParseError::Invalid(vec![field_error(
            base,
            format!("must hold at most {max} events per request"),
        )]));
    }
    Ok(list
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("{base}/{i}"), v))
        .collect())
}

/// Parses a body of one or many items (see `items`) with `parse_one`, collecting the field
/// errors of all items; the whole body is refused when any item is invalid.
pub fn parse_items<T>(
    body: &[u8],
    max_batch: usize,
    parse_one: impl Fn(&Value, &str, &mut Vec<FieldError>) -> Option<T>,
) -> Result<Vec<T>, ParseError> {
    let value = parse_json(body)?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (at, item) in items(&value, max_batch)? {
        if let Some(v) = parse_one(item, &at, &mut errors) {
            out.push(v);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ParseError::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_escape_slash_and_tilde() {
        assert_eq!(pointer("", "a/b~c"), "/a~1b~0c");
        assert_eq!(pointer("/alerts/0/labels", "team"), "/alerts/0/labels/team");
    }

    #[test]
    fn times_need_an_offset() {
        let cases = [
            ("2026-11-24T16:18:28Z", Some("2026-11-24T16:18:28Z")),
            ("2026-11-24T18:18:28+02:00", Some("2026-11-24T16:18:28Z")),
            (
                "2026-11-24T16:18:28.674357769Z",
                Some("2026-11-24T16:18:28.674357769Z"),
            ),
            ("2024-01-15T10:00:00.000", None),
            ("yesterday", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalise_time(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http() {
        for (u, ok) in [
            ("https://app.example/x?y=1", true),
            ("http://prometheus:9090/graph", true),
            ("ftp://x", false),
            ("https://", false),
            ("/relative", false),
            ("https://a b", false),
        ] {
            assert_eq!(is_http_url(u), ok, "{u}");
        }
    }

    #[test]
    fn bodies_hold_one_or_many_items() {
        let one = json!({"id": "a"});
        assert_eq!(items(&one, 100).unwrap()[0].0, "");
        let arr = json!([{"id": "a"}, {"id": "b"}]);
        let got: Vec<_> = items(&arr, 100).unwrap().into_iter().map(|p| p.0).collect();
        assert_eq!(got, ["/0", "/1"]);
        let wrapped = json!({"events": [{"id": "a"}]});
        assert_eq!(items(&wrapped, 100).unwrap()[0].0, "/events/0");
        let cases = [
            (json!([]), ""),
            (json!("x"), ""),
            (json!({"events": 3}), "/events"),
            (json!([{}, {}, {}]), ""),
        ];
        for (body, at) in cases {
            match items(&body, 2) {
                Err(ParseError::Invalid(e)) => assert_eq!(e[0].pointer, at, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn fields_report_every_problem() {
        let v = json!({"a": 3, "b": "  ", "c": "x".repeat(20), "d": "HIGH", "e": {"k": 1}});
        let mut errors = Vec::new();
        let mut f = Fields::of(&v, "/0", &mut errors).unwrap();
        assert_eq!(f.string("a", Need::Required, 10), None);
        assert_eq!(f.string("b", Need::Required, 10), None);
        assert_eq!(f.string("c", Need::Required, 10), None);
        assert_eq!(f.string("z", Need::Required, 10), None);
        assert_eq!(f.string("y", Need::Optional, 10), None);
        assert_eq!(
            f.one_of("d", Need::Required, &["low", "high"]).as_deref(),
            Some("high")
        );
        let limits = MapLimits {
            entries: 10,
            key: 10,
            value: 10,
        };
        assert!(f.string_map("e", Need::Required, limits).is_some());
        let got: Vec<_> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/0/a", "must be a string"),
                ("/0/b", "must not be empty"),
                ("/0/c", "must be at most 10 bytes"),
                ("/0/z", "is required"),
                ("/0/e/k", "must be a string"),
            ]
        );
    }
}
