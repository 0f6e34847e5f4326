//! The BMS response envelope, `{success, error, result, totalRecords}`, turned into a result or a
//! [`PsaError`]. Pure: status, headers already read, body bytes in; no I/O.
//!
//! The wire is camelCase while Kaseya's Swagger is PascalCase, and neither is promised, so every
//! object key is lowercased before anything reads it ([`lower_keys`]). A few endpoints (e.g.
//! `GET /v2/crm/accounts/summary/{id}`) answer with the bare DTO; a body without a `success` key
//! is taken as the result itself.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::psa::PsaError;

/// A successful response: the `result` member (or the bare body) and `totalRecords` when paged.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub result: Value,
    pub total_records: Option<u64>,
}

/// Longest PSA text kept in an error message.
const MAX_MESSAGE: usize = 500;

/// Classifies one HTTP response.
///
/// * non-2xx → [`PsaError::from_status`] with the PSA's message (or a short body excerpt);
/// * 2xx with `success: false` → `NotFound` when the error code is 404, otherwise `Permanent`
///   with the PSA's message: BMS reports validation failures this way, never a silent success;
/// * 2xx otherwise → the result.
pub fn parse_response(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<Envelope, PsaError> {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = if text.trim().is_empty() {
        None
    } else {
        serde_json::from_str::<Value>(&text).ok().map(lower_keys)
    };
    if !(200..300).contains(&status) {
        let message = parsed
            .as_ref()
            .and_then(error_message)
            .unwrap_or_else(|| fallback_message(status, &text));
        return Err(PsaError::from_status(status, message, retry_after));
    }
    let Some(value) = parsed else {
        if text.trim().is_empty() {
            return Ok(Envelope {
                result: Value::Null,
                total_records: None,
            });
        }
        return Err(PsaError::Permanent {
            status: Some(status),
            message: format!("response is not JSON: {}", excerpt(&text)),
        });
    };
    let Some(obj) = value.as_object().filter(|o| o.contains_key("success")) else {
        return Ok(Envelope {
            result: value,
            total_records: None,
        });
    };
    if obj.get("success").and_then(Value::as_bool) == Some(true) {
        return Ok(Envelope {
            result: obj.get("result").cloned().unwrap_or(Value::Null),
            total_records: obj.get("totalrecords").and_then(Value::as_u64),
        });
    }
    let message = error_message(&value)
        .unwrap_or_else(|| "the PSA reported a failure without a message".to_string());
    let code = obj
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64);
    Err(match code {
        Some(404) => PsaError::NotFound { message },
        Some(429) => PsaError::transient(status, message, retry_after),
        _ => PsaError::permanent(status, message),
    })
}

/// The PSA's own words from an (already lowercased) error body: `error.message`, then
/// `error.details` and `error.suberrors` when they add something.
pub fn error_message(body: &Value) -> Option<String> {
    let Some(err) = body.get("error") else {
        return problem_message(body);
    };
    if let Some(s) = err.as_str() {
        return non_empty(s).map(|s| clip(s.to_string()));
    }
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = err
        .get("message")
        .and_then(Value::as_str)
        .and_then(non_empty)
    {
        parts.push(m.to_string());
    }
    if let Some(d) = err
        .get("details")
        .and_then(Value::as_str)
        .and_then(non_empty)
    {
        if !parts.iter().any(|p| p == d) {
            parts.push(d.to_string());
        }
    }
    let subs: Vec<&str> = err
        .get("suberrors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(non_empty)
                .collect()
        })
        .unwrap_or_default();
    // "Save failed: Account is inactive", but "Could not be saved. Location is required."
    let mut message = match parts.as_slice() {
        [m, d] if m.ends_with(['.', '!', '?', ':']) => format!("{m} {d}"),
        _ => parts.join(": "),
    };
    if !subs.is_empty() {
        if message.is_empty() {
            message = subs.join("; ");
        } else {
            message = format!("{message} ({})", subs.join("; "));
        }
    }
    non_empty(&message).map(|m| clip(m.to_string()))
}

/// ASP.NET problem details (`title` and `errors: {field: [messages]}`), which the model binder
/// sends with HTTP 400 when a body cannot be bound.
fn problem_message(body: &Value) -> Option<String> {
    let title = body
        .get("title")
        .and_then(Value::as_str)
        .and_then(non_empty)?;
    let details: Vec<String> = body
        .get("errors")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .flat_map(|(field, msgs)| {
                    let msgs: Vec<&str> = match msgs {
                        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                        Value::String(s) => vec![s.as_str()],
                        _ => Vec::new(),
                    };
                    msgs.into_iter().map(move |m| format!("{field}: {m}"))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(clip(if details.is_empty() {
        title.to_string()
    } else {
        format!("{title} ({})", details.join("; "))
    }))
}

fn fallback_message(status: u16, text: &str) -> String {
    match (status, text.trim().is_empty()) {
        (401, true) => "the access token was refused".to_string(),
        (_, true) => format!("HTTP {status} without a body"),
        _ => excerpt(text),
    }
}

fn excerpt(text: &str) -> String {
    clip(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

/// Lowercases every object key, recursively, so `Success`, `success` and `SUCCESS` read the same.
pub fn lower_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), lower_keys(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(lower_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq)]
    enum Want {
        Ok(Value, Option<u64>),
        Err(&'static str, &'static str),
    }

    #[test]
    fn envelopes_are_classified() {
        let table: Vec<(&str, u16, &str, Want)> = vec![
            (
                "camelCase success",
                200,
                r#"{"success":true,"result":{"id":7}}"#,
                Want::Ok(json!({"id":7}), None),
            ),
            (
                "PascalCase success with paging",
                200,
                r#"{"Success":true,"Result":[{"Id":1}],"TotalRecords":12}"#,
                Want::Ok(json!([{"id":1}]), Some(12)),
            ),
            (
                "bare DTO",
                200,
                r#"{"Id":5,"AccountName":"Contoso Ltd"}"#,
                Want::Ok(json!({"id":5,"accountname":"Contoso Ltd"}), None),
            ),
            ("empty 200", 200, "", Want::Ok(Value::Null, None)),
            (
                "validation failure behind HTTP 200",
                200,
                r#"{"success":false,"error":{"code":400,"message":"One or more validation errors occurred.","subErrors":["'Title' must not be empty."]}}"#,
                Want::Err(
                    "PsaRejected",
                    "PSA rejected the request (HTTP 200): One or more validation errors occurred. ('Title' must not be empty.)",
                ),
            ),
            (
                "failure without a message",
                200,
                r#"{"success":false}"#,
                Want::Err(
                    "PsaRejected",
                    "PSA rejected the request (HTTP 200): the PSA reported a failure without a message",
                ),
            ),
            (
                "not found behind HTTP 200",
                200,
                r#"{"success":false,"error":{"code":404,"message":"Ticket not found."}}"#,
                Want::Err("NotFound", "not found in the PSA: Ticket not found."),
            ),
            (
                "error as a plain string",
                200,
                r#"{"success":false,"error":"Invalid tenant"}"#,
                Want::Err("PsaRejected", "PSA rejected the request (HTTP 200): Invalid tenant"),
            ),
            (
                "details add to the message",
                200,
                r#"{"success":false,"error":{"code":1,"message":"Save failed","details":"Account is inactive"}}"#,
                Want::Err(
                    "PsaRejected",
                    "PSA rejected the request (HTTP 200): Save failed: Account is inactive",
                ),
            ),
            (
                "problem details from the model binder",
                400,
                r#"{"title":"One or more validation errors occurred.","status":400,"errors":{"$.AccountId":["The JSON value could not be converted to System.Int32."]}}"#,
                Want::Err(
                    "PsaRejected",
                    "PSA rejected the request (HTTP 400): One or more validation errors occurred. ($.accountid: The JSON value could not be converted to System.Int32.)",
                ),
            ),
            (
                "401 with empty body",
                401,
                "",
                Want::Err(
                    "AuthenticationFailed",
                    "PSA refused the credentials (HTTP 401): the access token was refused",
                ),
            ),
            (
                "429 with envelope",
                429,
                r#"{"success":false,"error":{"code":429,"message":"API calls quota exceeded"}}"#,
                Want::Err(
                    "PsaUnavailable",
                    "PSA temporarily unavailable (HTTP 429): API calls quota exceeded",
                ),
            ),
            (
                "502 from a proxy",
                502,
                "<html> Bad   gateway </html>",
                Want::Err(
                    "PsaUnavailable",
                    "PSA temporarily unavailable (HTTP 502): <html> Bad gateway </html>",
                ),
            ),
            (
                "200 that is not JSON",
                200,
                "<html>login</html>",
                Want::Err(
                    "PsaRejected",
                    "PSA rejected the request (HTTP 200): response is not JSON: <html>login</html>",
                ),
            ),
        ];
        for (name, status, body, want) in table {
            match (parse_response(status, body.as_bytes(), None), want) {
                (Ok(e), Want::Ok(v, total)) => {
                    assert_eq!((e.result, e.total_records), (v, total), "{name}")
                }
                (Err(e), Want::Err(reason, message)) => {
                    assert_eq!(e.reason(), reason, "{name}");
                    assert_eq!(e.to_string(), message, "{name}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn retry_after_is_kept_on_429() {
        let e = parse_response(429, b"", Some(Duration::from_secs(30))).unwrap_err();
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn long_messages_are_clipped() {
        let long = "x".repeat(2_000);
        let body = format!(r#"{{"success":false,"error":{{"message":"{long}"}}}}"#);
        let e = parse_response(200, body.as_bytes(), None).unwrap_err();
        assert!(e.to_string().len() < 600, "{}", e.to_string().len());
    }
}
