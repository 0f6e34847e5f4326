//! The intake HTTP API: per-connection endpoints that authenticate, validate and durably store
//! events, answering `202 Accepted` only after the store commit.
//!
//! `POST /v1/namespaces/{ns}/connections/{name}/alerts | findings | alertmanager`.
//! Checks, in order: connection known (404) → token readable (503) → bearer token of THIS
//! connection, constant-time (401) → the connection's request rate (429 + Retry-After) → JSON
//! content type (415) → body size (413) → JSON (400) →
//! fields (422, every bad field named) → one store transaction for the whole body (503 when it
//! fails; nothing half-stored). A repeated event id is acknowledged (`"status": "duplicate"`)
//! and not stored again. A suspended or not yet resolved connection still stores its events;
//! the workers hold them (`"held": true`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Serialize;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::api::Grouping;
use crate::dispatch::event::{Envelope, Event};
use crate::dispatch::grouping::group_key;
use crate::dispatch::metrics::DispatchMetrics;
use crate::dispatch::store::{NewEvent, Store};
use crate::resolved::{AlertmanagerLabelNames, ConnectionKey, Registry};

pub mod alertmanager;
pub mod alerts;
pub mod fields;
pub mod findings;
pub mod problem;
pub mod rate;
pub mod server;
pub mod throughput;

use fields::ParseError;
pub use problem::{Problem, ProblemItem, Rejection, PROBLEM_CONTENT_TYPE};

/// Size limits of the intake.
#[derive(Clone, Debug)]
pub struct IntakeLimits {
    /// Body limit of `/alerts` and `/findings`.
    pub events_body: usize,
    /// Body limit of `/alertmanager` (a whole group per message).
    pub alertmanager_body: usize,
    /// Most events in one request, on every endpoint (Alertmanager: alerts in one message).
    pub max_batch: usize,
    /// Longest wait for the rest of a body (a stalled sender gets a 400, not a held socket).
    pub body_timeout: Duration,
    /// Requests per connection and minute (burst: the same); over it → 429 with Retry-After.
    /// 0 = unlimited. Batches of up to `max_batch` events count as one request.
    pub requests_per_minute: u32,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        IntakeLimits {
            events_body: 1024 * 1024,
            alertmanager_body: 2 * 1024 * 1024,
            max_batch: 100,
            body_timeout: Duration::from_secs(30),
            requests_per_minute: 6_000,
        }
    }
}

/// What the intake handlers share.
#[derive(Clone)]
pub struct IntakeState {
    pub registry: Registry,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<DispatchMetrics>,
    pub limits: IntakeLimits,
}

/// Which endpoint a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Alerts,
    Findings,
    Alertmanager,
}

impl Endpoint {
    fn body_limit(self, limits: &IntakeLimits) -> usize {
        match self {
            Endpoint::Alertmanager => limits.alertmanager_body,
            Endpoint::Alerts | Endpoint::Findings => limits.events_body,
        }
    }

    /// The endpoint's pure parser.
    pub fn parse(
        self,
        body: &[u8],
        limits: &IntakeLimits,
        names: &AlertmanagerLabelNames,
    ) -> Result<Vec<Event>, ParseError> {
        match self {
            Endpoint::Alerts => alerts::parse_alerts(body, limits.max_batch),
            Endpoint::Findings => findings::parse_findings(body, limits.max_batch),
            Endpoint::Alertmanager => {
                alertmanager::parse_alertmanager(body, names, limits.max_batch)
            }
        }
    }
}

/// The intake routes plus `/healthz` and `/readyz`.
pub fn router(state: IntakeState) -> Router {
    let body_timeout = state.limits.body_timeout;
    let rate = Arc::new(rate::IntakeRate::new(state.limits.requests_per_minute));
    let route = |endpoint: Endpoint| {
        let rate = rate.clone();
        post(move |st, path, headers, body| receive(endpoint, rate, st, path, headers, body))
    };
    Router::new()
        .route(
            "/v1/namespaces/{ns}/connections/{name}/alerts",
            route(Endpoint::Alerts),
        )
        .route(
            "/v1/namespaces/{ns}/connections/{name}/findings",
            route(Endpoint::Findings),
        )
        .route(
            "/v1/namespaces/{ns}/connections/{name}/alertmanager",
            route(Endpoint::Alertmanager),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .with_state(state)
}

/// Ready when the store takes writes (`Store::health`): an intake that would answer 503 to
/// every alert is taken out of the Service.
async fn readyz(State(st): State<IntakeState>) -> Response {
    match st.store.health(now_ms()).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// The `202 Accepted` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// Events stored by this request.
    pub accepted: usize,
    /// Events whose id was already stored (acknowledged, not stored again).
    pub duplicates: usize,
    /// The connection is suspended or not resolved yet: events wait in the queue.
    pub held: bool,
    pub events: Vec<AcceptedEvent>,
}

#[derive(Debug, Serialize)]
pub struct AcceptedEvent {
    pub id: String,
    /// `accepted` or `duplicate`.
    pub status: &'static str,
}

async fn receive(
    endpoint: Endpoint,
    rate: Arc<rate::IntakeRate>,
    State(st): State<IntakeState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let key = ConnectionKey::new(ns, name);
    match accept(endpoint, &rate, &st, &key, &headers, body).await {
        Ok(accepted) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
        Err(rej) => {
            st.metrics.rejected(rej.reason());
            tracing::debug!(connection = %key, ?endpoint, status = %rej.status(), "intake refused a request");
            rej.into_response()
        }
    }
}

async fn accept(
    endpoint: Endpoint,
    rate: &rate::IntakeRate,
    st: &IntakeState,
    key: &ConnectionKey,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, Rejection> {
    let entry = st
        .registry
        .get(key)
        .ok_or_else(|| Rejection::UnknownConnection(key.clone()))?;
    let token = entry.intake_token.as_ref().ok_or(Rejection::NotReady)?;
    check_bearer(headers, |presented| token.ct_eq(presented))?;
    // After authentication: a stranger's requests cannot use up a sender's budget.
    rate.check(key)
        .map_err(|wait| Rejection::RateLimited(rate::retry_after_secs(wait)))?;
    check_json_content_type(headers)?;
    let limit = endpoint.body_limit(&st.limits);
    let bytes = read_body(headers, body, limit).await?;

    let resolved = entry.resolved.as_deref();
    let names = resolved.map(|r| r.alertmanager.clone()).unwrap_or_default();
    let events = endpoint
        .parse(&bytes, &st.limits, &names)
        .map_err(|e| match e {
            ParseError::Malformed(why) => Rejection::Malformed(why),
            ParseError::Invalid(errors) => Rejection::Invalid(errors),
        })?;

    // Until the connection resolves its grouping is unknown: the coarser `User` key keeps
    // every order the finer key would need.
    let grouping = resolved.map(|r| r.grouping).unwrap_or(Grouping::User);
    let now = now_ms();
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let batch = events
        .into_iter()
        .map(|event| NewEvent {
            group_key: group_key(&event, grouping),
            envelope: Envelope {
                namespace: key.namespace.clone(),
                connection: key.name.clone(),
                accepted_at_ms: now,
                event,
            },
        })
        .collect();
    let results = st.store.enqueue(batch).await.map_err(|e| {
        tracing::error!(connection = %key, error = %e, "storing events failed");
        Rejection::StoreUnavailable
    })?;

    let accepted = results.iter().filter(|r| r.new).count();
    let duplicates = results.len() - accepted;
    st.metrics.events_accepted(key, accepted as u64);
    if duplicates > 0 {
        st.metrics.events_duplicate(key, duplicates as u64);
    }
    Ok(Accepted {
        accepted,
        duplicates,
        held: entry.suspended || entry.resolved.is_none(),
        events: ids
            .into_iter()
            .zip(&results)
            .map(|(id, r)| AcceptedEvent {
                id,
                status: if r.new { "accepted" } else { "duplicate" },
            })
            .collect(),
    })
}

/// Requires `Authorization: Bearer <token>` with a token `matches` accepts.
fn check_bearer(headers: &HeaderMap, matches: impl Fn(&str) -> bool) -> Result<(), Rejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Rejection::Unauthorized("is missing"))?;
    let value = value
        .to_str()
        .map_err(|_| Rejection::Unauthorized("is not a bearer token"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(Rejection::Unauthorized("is not a bearer token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Unauthorized("is not a bearer token"));
    }
    if matches(token.trim()) {
        Ok(())
    } else {
        Err(Rejection::Unauthorized(
            "token is not this connection's intake token",
        ))
    }
}

/// `application/json`, `application/<x>+json`, with or without parameters.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Rejection::UnsupportedMediaType(None));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType(Some(
            text.chars().take(100).collect(),
        )))
    }
}

/// Reads the body, refusing it as soon as it passes `limit` bytes (or declares more).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Rejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Rejection::PayloadTooLarge(limit));
    }
    let mut out = Vec::with_capacity(declared.map_or(8 * 1024, |n| n as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Rejection::BodyUnreadable)?;
        if out.len() + chunk.len() > limit {
            return Err(Rejection::PayloadTooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens() {
        let ok = |t: &str| t == "s3cret";
        let cases: &[(Option<&str>, bool)] = &[
            (Some("Bearer s3cret"), true),
            (Some("bearer s3cret"), true),
            (Some("Bearer other"), false),
            (Some("Basic s3cret"), false),
            (Some("s3cret"), false),
            (None, false),
        ];
        for (value, want) in cases {
            let h = match value {
                Some(v) => headers(&[(header::AUTHORIZATION, v)]),
                None => HeaderMap::new(),
            };
            assert_eq!(check_bearer(&h, ok).is_ok(), *want, "{value:?}");
        }
    }

    #[test]
    fn content_types() {
        let cases: &[(Option<&str>, bool)] = &[
            (Some("application/json"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some("Application/JSON"), true),
            (Some("application/vnd.alert+json"), true),
            (Some("text/plain"), false),
            (Some("application/x-www-form-urlencoded"), false),
            (None, false),
        ];
        for (value, want) in cases {
            let h = match value {
                Some(v) => headers(&[(header::CONTENT_TYPE, v)]),
                None => HeaderMap::new(),
            };
            assert_eq!(check_json_content_type(&h).is_ok(), *want, "{value:?}");
        }
    }

    /// Bodies up to the body limit built to produce as many field errors (and as long
    /// pointers) as possible: every problem document stays under 64 KiB.
    #[test]
    fn problem_documents_stay_small_for_any_body_up_to_the_limit() {
        let limits = IntakeLimits::default();
        let names = AlertmanagerLabelNames::default();
        let fill = |prefix: &str, item: &str, suffix: &str, limit: usize| {
            let n = (limit - prefix.len() - suffix.len()) / (item.len() + 1);
            let items = vec![item; n].join(",");
            format!("{prefix}{items}{suffix}").into_bytes()
        };
        let huge_key = format!("\"{}\":1", "k".repeat(256 * 1024));
        let bodies: Vec<(Endpoint, Vec<u8>)> = vec![
            (
                Endpoint::Alertmanager,
                fill(r#"{"version":"4","alerts":["#, "{}", "]}", limits.alertmanager_body),
            ),
            (
                Endpoint::Alertmanager,
                fill(r#"{"version":"4","alerts":["#, "{}", "]}", 300 * 1024),
            ),
            (
                Endpoint::Alertmanager,
                format!(
                    r#"{{"version":"4","alerts":[{{"status":"firing","startsAt":"2026-11-24T15:02:10Z","fingerprint":"f","labels":{{{}}}}}]}}"#,
                    vec![huge_key.as_str(); 7].join(",")
                )
                .into_bytes(),
            ),
            (
                Endpoint::Alertmanager,
                format!(
                    r#"{{"version":"4","alerts":[{{"status":"firing","startsAt":"2026-11-24T15:02:10Z","fingerprint":"f","labels":{{{}}}}}]}}"#,
                    (0..60).map(|i| format!("\"l{i}\":1")).collect::<Vec<_>>().join(",")
                )
                .into_bytes(),
            ),
            (Endpoint::Alerts, fill("[", "{}", "]", limits.events_body)),
            (Endpoint::Alerts, fill("[", "{}", "]", 100 * 3)),
            (Endpoint::Findings, fill("[", r#"{"id":7,"findingId":7,"event":7,"organization":7,"name":7,"type":7,"priority":[],"status":7,"description":7,"comment":7,"author":7,"url":7,"occurredAt":7}"#, "]", 100 * 200)),
        ];
        for (endpoint, body) in bodies {
            assert!(body.len() <= endpoint.body_limit(&limits), "{endpoint:?}");
            let rejection = match endpoint.parse(&body, &limits, &names) {
                Err(ParseError::Invalid(errors)) => Rejection::Invalid(errors),
                Err(ParseError::Malformed(why)) => Rejection::Malformed(why),
                Ok(events) => panic!("{endpoint:?}: {} events accepted", events.len()),
            };
            let doc = serde_json::to_vec(&rejection.problem()).unwrap();
            assert!(
                doc.len() < 64 * 1024,
                "{endpoint:?}: a {} byte body gave a {} byte problem document",
                body.len(),
                doc.len()
            );
        }
    }

    /// The red-team Alertmanager cases: more alerts than any endpoint takes, a 1.5 MB `user`
    /// label. Both are refused with a named field, as `/alerts` refuses them.
    #[test]
    fn alertmanager_holds_the_limits_of_every_endpoint() {
        let limits = IntakeLimits::default();
        let names = AlertmanagerLabelNames::default();
        let alert = |user: &str| {
            serde_json::json!({"status": "firing", "startsAt": "2026-11-24T15:02:10Z",
                "fingerprint": "f", "labels": {"alertname": "X", "user": user}})
        };
        let too_many = serde_json::json!({"version": "4",
            "alerts": vec![alert("jane@contoso.example"); limits.max_batch + 1]});
        let long_user =
            serde_json::json!({"version": "4", "alerts": [alert(&"u".repeat(1_500_000))]});
        let limits_big = IntakeLimits {
            alertmanager_body: 4 * 1024 * 1024,
            ..limits.clone()
        };
        for (body, pointer) in [(too_many, "/alerts"), (long_user, "/alerts/0/labels/user")] {
            match Endpoint::Alertmanager.parse(body.to_string().as_bytes(), &limits_big, &names) {
                Err(ParseError::Invalid(e)) => assert_eq!(e[0].pointer, pointer),
                other => panic!("{pointer}: {other:?}"),
            }
        }
        let at_limit = serde_json::json!({"version": "4",
            "alerts": (0..limits.max_batch).map(|i| {
                let mut a = alert("jane@contoso.example");
                a["fingerprint"] = serde_json::json!(format!("f{i}"));
                a
            }).collect::<Vec<_>>()});
        let events = Endpoint::Alertmanager
            .parse(at_limit.to_string().as_bytes(), &limits, &names)
            .unwrap();
        assert_eq!(events.len(), limits.max_batch);
    }

    /// Line breaks in single-line fields would forge header-like lines in descriptions and
    /// failsafe e-mails; bidirectional overrides would disguise a summary.
    #[test]
    fn single_line_fields_refuse_line_breaks_and_lose_bidi_controls() {
        let limits = IntakeLimits::default();
        let names = AlertmanagerLabelNames::default();
        let base = serde_json::json!({"id": "rt-1", "organization": "Contoso Ltd",
            "user": "jane@contoso.example", "alertType": "Too Many Downloads"});
        for field in ["organization", "user", "alertType", "id"] {
            let mut body = base.clone();
            body[field] = serde_json::json!("Contoso\r\nBcc: x@evil.example");
            match Endpoint::Alerts.parse(body.to_string().as_bytes(), &limits, &names) {
                Err(ParseError::Invalid(e)) => {
                    assert_eq!(e[0].pointer, format!("/{field}"));
                    assert!(e[0].detail.contains("single line"), "{}", e[0].detail);
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut body = base.clone();
        body["alertType"] = serde_json::json!("invoice\u{202E}fdp.exe");
        let ev = Endpoint::Alerts
            .parse(body.to_string().as_bytes(), &limits, &names)
            .unwrap();
        assert_eq!(ev[0].alert_type, "invoicefdp.exe");
        // Alertmanager: a label cannot be refused (the group would be dropped); it is one line.
        let am = serde_json::json!({"version": "4", "alerts": [{"status": "firing",
            "startsAt": "2026-11-24T15:02:10Z", "fingerprint": "f",
            "labels": {"alertname": "X", "organization": "Contoso\nBcc: x@evil.example"}}]});
        let ev = Endpoint::Alertmanager
            .parse(am.to_string().as_bytes(), &limits, &names)
            .unwrap();
        assert_eq!(ev[0].organization, "Contoso Bcc: x@evil.example");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_declared_or_not() {
        let body = || Body::from(vec![b'x'; 11]);
        let declared = headers(&[(header::CONTENT_LENGTH, "11")]);
        assert_eq!(
            read_body(&declared, body(), 10).await,
            Err(Rejection::PayloadTooLarge(10))
        );
        assert_eq!(
            read_body(&HeaderMap::new(), body(), 10).await,
            Err(Rejection::PayloadTooLarge(10))
        );
        assert_eq!(
            read_body(&HeaderMap::new(), body(), 11)
                .await
                .unwrap()
                .len(),
            11
        );
    }
}
