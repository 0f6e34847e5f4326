//! Every intake rejection as an RFC 9457 problem document (`application/problem+json`).
//!
//! `type`, `title`, `status`, `detail`, plus an `errors` list naming what was wrong: a JSON
//! pointer into the body, a request header, or a path parameter. Details never echo a token.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::fields::FieldError;
use crate::dispatch::metrics::RejectReason;
use crate::resolved::ConnectionKey;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Base of the problem `type` URIs.
const TYPE_BASE: &str = "https://psa-operator.io/problems/";

/// Most field errors listed in one problem document; `detail` counts all of them. A hostile
/// body can hold hundreds of thousands of bad fields: listing them all would answer a 2 MiB
/// request with a document a hundred times larger.
pub const MAX_LISTED_ERRORS: usize = 100;

/// Longest pointer or detail text in a listed error (a JSON key can be as long as the body).
const MAX_ITEM_TEXT: usize = 256;

/// `s` cut to at most `max` bytes on a character boundary, "…" marking the cut.
fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One thing wrong with the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProblemItem {
    /// JSON pointer into the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Request header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Path parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    pub detail: String,
}

impl ProblemItem {
    fn pointer(p: impl Into<String>, detail: impl Into<String>) -> Self {
        ProblemItem {
            pointer: Some(p.into()),
            header: None,
            parameter: None,
            detail: detail.into(),
        }
    }
    fn header(h: &str, detail: impl Into<String>) -> Self {
        ProblemItem {
            pointer: None,
            header: Some(h.to_string()),
            parameter: None,
            detail: detail.into(),
        }
    }
    fn parameter(p: &str, detail: impl Into<String>) -> Self {
        ProblemItem {
            pointer: None,
            header: None,
            parameter: Some(p.to_string()),
            detail: detail.into(),
        }
    }
}

impl From<&FieldError> for ProblemItem {
    fn from(e: &FieldError) -> Self {
        ProblemItem::pointer(
            bounded(&e.pointer, MAX_ITEM_TEXT),
            bounded(&e.detail, MAX_ITEM_TEXT),
        )
    }
}

/// The problem document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub errors: Vec<ProblemItem>,
}

/// Why the intake refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    UnknownConnection(ConnectionKey),
    /// No, malformed, or wrong bearer token (another connection's token included).
    Unauthorized(&'static str),
    UnsupportedMediaType(Option<String>),
    PayloadTooLarge(usize),
    /// The body could not be read from the connection.
    BodyUnreadable,
    Malformed(String),
    Invalid(Vec<FieldError>),
    /// The store could not commit: retry later.
    StoreUnavailable,
    /// The connection's intake token is not readable yet.
    NotReady,
    /// Over the connection's intake request rate; retry after the whole seconds given.
    RateLimited(u64),
    /// `/webhook/{source}` names no `spec.sources` entry.
    UnknownSource(String),
    /// A signed source's signature header is missing, malformed, stale or wrong.
    BadSignature {
        header: String,
        detail: String,
    },
    /// The connection's settings (and so its source mappings) are not resolved yet.
    NotResolved,
    /// A request header the intake reads has a value it does not know (the sample mark).
    BadHeader {
        header: &'static str,
        detail: String,
    },
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::UnknownConnection(_) => StatusCode::NOT_FOUND,
            Rejection::Unauthorized(_) | Rejection::BadSignature { .. } => StatusCode::UNAUTHORIZED,
            Rejection::UnknownSource(_) => StatusCode::NOT_FOUND,
            Rejection::NotResolved => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BodyUnreadable | Rejection::Malformed(_) | Rejection::BadHeader { .. } => {
                StatusCode::BAD_REQUEST
            }
            Rejection::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::StoreUnavailable | Rejection::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn reason(&self) -> RejectReason {
        match self {
            Rejection::UnknownConnection(_) => RejectReason::UnknownConnection,
            Rejection::Unauthorized(_) | Rejection::BadSignature { .. } => {
                RejectReason::Unauthorized
            }
            Rejection::UnknownSource(_) | Rejection::BadHeader { .. } => RejectReason::Invalid,
            Rejection::NotResolved => RejectReason::NotReady,
            Rejection::UnsupportedMediaType(_) => RejectReason::UnsupportedMediaType,
            Rejection::PayloadTooLarge(_) => RejectReason::PayloadTooLarge,
            Rejection::BodyUnreadable | Rejection::Malformed(_) => RejectReason::MalformedJson,
            Rejection::Invalid(_) => RejectReason::Invalid,
            Rejection::StoreUnavailable => RejectReason::StoreUnavailable,
            Rejection::NotReady => RejectReason::NotReady,
            Rejection::RateLimited(_) => RejectReason::RateLimited,
        }
    }

    /// The problem document of this rejection.
    pub fn problem(&self) -> Problem {
        let (slug, title, detail, errors) = match self {
            Rejection::UnknownConnection(key) => (
                "unknown-connection",
                "Unknown connection",
                format!("there is no PsaConnection {key}"),
                vec![ProblemItem::parameter(
                    "name",
                    "no such PsaConnection in this namespace",
                )],
            ),
            Rejection::Unauthorized(why) => (
                "unauthorized",
                "Unauthorized",
                "a valid bearer token of this connection's intake Secret is required".to_string(),
                vec![ProblemItem::header("Authorization", *why)],
            ),
            Rejection::UnsupportedMediaType(got) => (
                "unsupported-media-type",
                "Unsupported media type",
                "the body must be JSON (Content-Type: application/json)".to_string(),
                vec![ProblemItem::header(
                    "Content-Type",
                    match got {
                        Some(ct) => format!("{ct:?} is not JSON"),
                        None => "is missing".to_string(),
                    },
                )],
            ),
            Rejection::PayloadTooLarge(limit) => (
                "payload-too-large",
                "Payload too large",
                format!("the body exceeds {limit} bytes"),
                vec![ProblemItem::pointer(
                    "",
                    format!("must be at most {limit} bytes"),
                )],
            ),
            Rejection::BodyUnreadable => (
                "malformed-body",
                "Malformed body",
                "the request body could not be read".to_string(),
                vec![ProblemItem::pointer("", "could not be read")],
            ),
            Rejection::Malformed(why) => (
                "malformed-json",
                "Malformed JSON",
                "the body is not valid JSON".to_string(),
                vec![ProblemItem::pointer("", bounded(why, MAX_ITEM_TEXT))],
            ),
            Rejection::Invalid(errors) => (
                "invalid-event",
                "Invalid event",
                format!(
                    "{} field error{}{}; nothing was stored",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    if errors.len() > MAX_LISTED_ERRORS {
                        format!(" (the first {MAX_LISTED_ERRORS} are listed)")
                    } else {
                        String::new()
                    }
                ),
                errors
                    .iter()
                    .take(MAX_LISTED_ERRORS)
                    .map(ProblemItem::from)
                    .collect(),
            ),
            Rejection::StoreUnavailable => (
                "store-unavailable",
                "Store unavailable",
                "the event could not be stored durably; nothing was stored, retry later"
                    .to_string(),
                vec![ProblemItem::pointer("", "not stored")],
            ),
            Rejection::NotReady => (
                "connection-not-ready",
                "Connection not ready",
                "the connection's intake token is not available yet; retry later".to_string(),
                vec![ProblemItem::parameter(
                    "name",
                    "intake token not readable yet",
                )],
            ),
            Rejection::UnknownSource(name) => (
                "unknown-source",
                "Unknown source",
                format!(
                    "no spec.sources entry of this connection is named {:?}",
                    bounded(name, 64)
                ),
                vec![ProblemItem::parameter(
                    "source",
                    "must name one of the connection's spec.sources",
                )],
            ),
            Rejection::BadSignature { header, detail } => (
                "bad-signature",
                "Bad signature",
                "the request signature does not verify with the source's signing secret; \
                 nothing was stored"
                    .to_string(),
                vec![ProblemItem::header(
                    &bounded(header, 64),
                    bounded(detail, MAX_ITEM_TEXT),
                )],
            ),
            Rejection::NotResolved => (
                "connection-not-resolved",
                "Connection not resolved",
                "the connection's settings and source mappings are not resolved yet (see its \
                 SettingsResolved condition); retry later"
                    .to_string(),
                vec![ProblemItem::parameter("name", "settings not resolved yet")],
            ),
            Rejection::BadHeader { header, detail } => (
                "bad-header",
                "Bad request header",
                format!("the {header} header cannot be used this way; nothing was stored"),
                vec![ProblemItem::header(header, bounded(detail, MAX_ITEM_TEXT))],
            ),
            Rejection::RateLimited(secs) => (
                "rate-limited",
                "Too many requests",
                format!(
                    "this connection's intake request rate is used up; nothing was stored, \
                     retry in {secs} s (send alerts in batches to need fewer requests)"
                ),
                vec![ProblemItem::header("Retry-After", secs.to_string())],
            ),
        };
        Problem {
            type_: format!("{TYPE_BASE}{slug}"),
            title: title.to_string(),
            status: self.status().as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        match self {
            Rejection::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // Alertmanager and most senders retry 503s; give them a pace.
            Rejection::StoreUnavailable | Rejection::NotReady | Rejection::NotResolved => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Rejection::RateLimited(secs) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn each_rejection_has_its_status_type_and_named_item() {
        let cases: Vec<(Rejection, u16, &str, Value)> = vec![
            (
                Rejection::UnknownConnection(ConnectionKey::new("psa", "nope")),
                404,
                "unknown-connection",
                json!({"parameter": "name"}),
            ),
            (
                Rejection::Unauthorized("token does not match"),
                401,
                "unauthorized",
                json!({"header": "Authorization", "detail": "token does not match"}),
            ),
            (
                Rejection::UnsupportedMediaType(Some("text/plain".into())),
                415,
                "unsupported-media-type",
                json!({"header": "Content-Type"}),
            ),
            (
                Rejection::PayloadTooLarge(1024),
                413,
                "payload-too-large",
                json!({"pointer": "", "detail": "must be at most 1024 bytes"}),
            ),
            (
                Rejection::Malformed("EOF while parsing".into()),
                400,
                "malformed-json",
                json!({"pointer": "", "detail": "EOF while parsing"}),
            ),
            (
                Rejection::Invalid(vec![FieldError {
                    pointer: "/0/severity".into(),
                    detail: "must be one of low, medium, high, critical".into(),
                }]),
                422,
                "invalid-event",
                json!({"pointer": "/0/severity"}),
            ),
            (
                Rejection::StoreUnavailable,
                503,
                "store-unavailable",
                json!({"pointer": ""}),
            ),
            (
                Rejection::NotReady,
                503,
                "connection-not-ready",
                json!({"parameter": "name"}),
            ),
        ];
        for (rej, status, slug, item) in cases {
            let doc = serde_json::to_value(rej.problem()).unwrap();
            assert_eq!(doc["status"], status, "{rej:?}");
            assert_eq!(rej.status().as_u16(), status);
            assert_eq!(doc["type"], format!("{TYPE_BASE}{slug}"));
            assert!(doc["title"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(doc["detail"].as_str().is_some_and(|t| !t.is_empty()));
            let first = &doc["errors"][0];
            for (k, v) in item.as_object().unwrap() {
                assert_eq!(&first[k], v, "{rej:?} item {k}");
            }
        }
    }

    #[test]
    fn responses_carry_the_problem_media_type_and_hints() {
        let r = Rejection::Unauthorized("missing").into_response();
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let r = Rejection::StoreUnavailable.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
    }
}
