//! The intake HTTP API: per-connection endpoints that authenticate, validate and durably store
//! events, answering `202 Accepted` only after the store commit.
//!
//! `POST /v1/namespaces/{ns}/connections/{name}/alerts | findings | alertmanager`.
//! Checks, in order: the source address not over its failed-authentication budget (429) →
//! bearer token of THIS connection, constant-time (401 — an unknown connection answers the
//! same 401, so names cannot be probed) → token readable (503) → the connection's request
//! rate (429 + Retry-After) → JSON
//! content type (415) → sample mark header (400, `sample`) → body size (413) → JSON (400) →
//! fields (422, every bad field named) → one store transaction for the whole body (503 when it
//! fails; nothing half-stored). A repeated event id is acknowledged (`"status": "duplicate"`)
//! and not stored again. A suspended or not yet resolved connection still stores its events;
//! the workers hold them (`"held": true`) — except a sample marked `Psa-Operator-Sample:
//! even-if-suspended` (`sample`), which a suspension does not hold.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use serde::Serialize;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::api::Grouping;
use crate::dispatch::event::{Envelope, Event};
use crate::dispatch::grouping::{group_key, sample_group_key};
use crate::dispatch::metrics::DispatchMetrics;
use crate::dispatch::store::{NewEvent, Store};
use crate::resolved::{AlertmanagerLabelNames, ConnectionKey, Registry};
use crate::secret::SecretString;

pub mod alertmanager;
pub mod alerts;
pub mod fields;
pub mod findings;
pub mod problem;
pub mod rate;
pub mod sample;
pub mod server;
pub mod sources;

use fields::ParseError;
pub use problem::{Problem, ProblemItem, Rejection, PROBLEM_CONTENT_TYPE};
use sources::grafana::Grafana;
use sources::intake::MappedRoute;

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
    /// Failed authentications per source address and minute before that address is refused
    /// (429) for a while. 0 = unlimited.
    pub auth_failures_per_minute: u32,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        IntakeLimits {
            events_body: 1024 * 1024,
            alertmanager_body: 2 * 1024 * 1024,
            max_batch: 100,
            body_timeout: Duration::from_secs(30),
            requests_per_minute: 6_000,
            auth_failures_per_minute: 30,
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
    /// Grafana alerting's webhook contact point (read with `spec.grafana`'s label names).
    Grafana,
}

impl Endpoint {
    fn body_limit(self, limits: &IntakeLimits) -> usize {
        match self {
            Endpoint::Alertmanager | Endpoint::Grafana => limits.alertmanager_body,
            Endpoint::Alerts | Endpoint::Findings => limits.events_body,
        }
    }

    /// The endpoint's pure parser; `names` are the label names of the endpoint (Alertmanager's
    /// or Grafana's).
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
            Endpoint::Grafana => {
                alertmanager::parse_message::<Grafana>(body, names, limits.max_batch)
            }
        }
    }
}

/// What a request is sent to: a built-in shape, or one mapped by `spec.sources`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Fixed(Endpoint),
    /// `/cloudevents` or `/webhook/{source}`.
    Mapped(sources::intake::MappedRoute),
}

impl Route {
    fn body_limit(&self, limits: &IntakeLimits) -> usize {
        match self {
            Route::Fixed(e) => e.body_limit(limits),
            Route::Mapped(_) => limits.events_body,
        }
    }
}

/// The intake routes plus `/healthz` and `/readyz`.
pub fn router(state: IntakeState) -> Router {
    let body_timeout = state.limits.body_timeout;
    let guards = Arc::new(Guards {
        rate: rate::IntakeRate::new(state.limits.requests_per_minute),
        auth_failures: rate::AuthFailures::new(state.limits.auth_failures_per_minute),
    });
    let route = |endpoint: Route| {
        let guards = guards.clone();
        post(
            move |st, peer, Path((ns, name)): Path<(String, String)>, headers, body| {
                receive(endpoint, guards, st, peer, (ns, name), headers, body)
            },
        )
    };
    let webhook = {
        let guards = guards.clone();
        post(
            move |st,
                  peer,
                  Path((ns, name, source)): Path<(String, String, String)>,
                  headers,
                  body| {
                receive(
                    Route::Mapped(MappedRoute::Webhook(source)),
                    guards,
                    st,
                    peer,
                    (ns, name),
                    headers,
                    body,
                )
            },
        )
    };
    Router::new()
        .route(
            "/v1/namespaces/{ns}/connections/{name}/alerts",
            route(Route::Fixed(Endpoint::Alerts)),
        )
        .route(
            "/v1/namespaces/{ns}/connections/{name}/findings",
            route(Route::Fixed(Endpoint::Findings)),
        )
        .route(
            "/v1/namespaces/{ns}/connections/{name}/alertmanager",
            route(Route::Fixed(Endpoint::Alertmanager)),
        )
        .route(
            "/v1/namespaces/{ns}/connections/{name}/grafana",
            route(Route::Fixed(Endpoint::Grafana)),
        )
        .route(
            "/v1/namespaces/{ns}/connections/{name}/cloudevents",
            route(Route::Mapped(MappedRoute::CloudEvents)),
        )
        .route(
            "/v1/namespaces/{ns}/connections/{name}/webhook/{source}",
            webhook,
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
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable: {e}"),
            )
                .into_response()
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

/// The intake's rate limits, shared by its routes.
struct Guards {
    rate: rate::IntakeRate,
    auth_failures: rate::AuthFailures,
}

/// The client's address, set by `server::serve` (absent when served otherwise, e.g. in
/// tests with `axum::serve`: then no per-source limit applies).
type Peer = Option<Extension<ConnectInfo<std::net::SocketAddr>>>;

async fn receive(
    endpoint: Route,
    guards: Arc<Guards>,
    State(st): State<IntakeState>,
    peer: Peer,
    (ns, name): (String, String),
    headers: HeaderMap,
    body: Body,
) -> Response {
    let key = ConnectionKey::new(ns, name);
    let source = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    match accept(&endpoint, &guards, &st, source, &key, &headers, body).await {
        Ok(accepted) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
        Err(rej) => {
            st.metrics.rejected(rej.reason());
            tracing::debug!(connection = %key, ?endpoint, status = %rej.status(), "intake refused a request");
            rej.into_response()
        }
    }
}

async fn accept(
    endpoint: &Route,
    guards: &Guards,
    st: &IntakeState,
    source: Option<std::net::IpAddr>,
    key: &ConnectionKey,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, Rejection> {
    if let Some(wait) = source.and_then(|ip| guards.auth_failures.blocked(ip)) {
        return Err(Rejection::RateLimited(rate::retry_after_secs(wait)));
    }
    let entry = st.registry.get(key);
    let authenticated = match entry.as_ref() {
        Some(e) => authenticate(headers, e.intake_token.as_ref()),
        // Right after a start the connection may not be loaded yet: a well-formed request is
        // asked to retry (503), as for a token not readable yet — Alertmanager retries a 503,
        // not a 401. Every unknown name answers alike, so existence is still not told.
        None if !st.registry.is_synced() => authenticate(headers, None),
        // Same answer as a wrong token: whether a connection exists is not told to strangers.
        None => check_bearer(headers, |_| false),
    };
    if let Err(rejection) = authenticated {
        if let Some(ip) = source {
            guards.auth_failures.failed(ip);
        }
        return Err(rejection);
    }
    let entry = entry.ok_or_else(|| Rejection::UnknownConnection(key.clone()))?;
    // After authentication: a stranger's requests cannot use up a sender's budget.
    guards
        .rate
        .check(key)
        .map_err(|wait| Rejection::RateLimited(rate::retry_after_secs(wait)))?;
    check_json_content_type(headers)?;
    let sample = sample::sample_mark(headers, endpoint)?;
    let limit = endpoint.body_limit(&st.limits);
    let bytes = read_body(headers, body, limit).await?;

    let resolved = entry.resolved.as_deref();
    // Borrowed, not cloned or built: this runs for every request.
    static DEFAULT_NAMES: std::sync::LazyLock<AlertmanagerLabelNames> =
        std::sync::LazyLock::new(AlertmanagerLabelNames::default);
    let events = match endpoint {
        Route::Fixed(endpoint) => {
            let names = resolved.map_or(&*DEFAULT_NAMES, |r| match endpoint {
                Endpoint::Grafana => &r.grafana,
                _ => &r.alertmanager,
            });
            endpoint
                .parse(&bytes, &st.limits, names)
                .map_err(parse_rejection)?
        }
        Route::Mapped(mapped) => {
            // The mapping is part of the resolved settings: until then the sender retries.
            let resolved = resolved.ok_or(Rejection::NotResolved)?;
            let mapped = sources::intake::map_request(
                mapped,
                &resolved.sources,
                headers,
                &bytes,
                &st.limits,
            );
            if let (Err(Rejection::BadSignature { .. }), Some(ip)) = (&mapped, source) {
                guards.auth_failures.failed(ip);
            }
            mapped?
        }
    };

    if sample {
        sample::check_sample_batch(events.len())?;
    }

    // Until the connection resolves its grouping is unknown: the coarser `User` key keeps
    // every order the finer key would need.
    let grouping = resolved.map(|r| r.grouping).unwrap_or(Grouping::User);
    let lane = if sample { sample_group_key } else { group_key };
    let now = now_ms();
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let batch = events
        .into_iter()
        .map(|event| NewEvent {
            group_key: lane(&event, grouping),
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
        // A sample waits only for the settings, not for the end of a suspension.
        held: (entry.suspended && !sample) || entry.resolved.is_none(),
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

/// Checks the bearer token against a connection's intake token. A connection whose token is
/// not readable (yet) answers 503 only to a well-formed bearer header, 401 otherwise.
fn authenticate(headers: &HeaderMap, token: Option<&SecretString>) -> Result<(), Rejection> {
    match token {
        Some(token) => check_bearer(headers, |presented| token.ct_eq(presented)),
        None => {
            check_bearer(headers, |_| true)?;
            Err(Rejection::NotReady)
        }
    }
}

/// Shortest intake token the operator accepts: a sender's only credential must not be
/// guessable (`openssl rand -hex 24` makes a good one).
pub const MIN_TOKEN_LENGTH: usize = 16;

/// The intake token to use from the Secret's `token` value: surrounding whitespace (a trailing
/// newline from `echo` or a YAML block) is dropped — a sender can never present it — and what
/// remains must have at least `MIN_TOKEN_LENGTH` characters. Pure; the connection reconciler
/// reports an error as `WeakIntakeToken`. The message never holds the token.
pub fn check_intake_token(raw: &SecretString) -> Result<SecretString, String> {
    let trimmed = raw.expose().trim();
    let chars = trimmed.chars().count();
    if chars < MIN_TOKEN_LENGTH {
        return Err(format!(
            "the intake token has {chars} characters (surrounding whitespace ignored); at \
             least {MIN_TOKEN_LENGTH} are required, e.g. from `openssl rand -hex 24`"
        ));
    }
    Ok(SecretString::new(trimmed))
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

pub(crate) fn parse_rejection(e: ParseError) -> Rejection {
    match e {
        ParseError::Malformed(why) => Rejection::Malformed(why),
        ParseError::Invalid(errors) => Rejection::Invalid(errors),
    }
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
                    [huge_key.as_str(); 7].join(",")
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

    /// A router over a real store with one connection, `psa/acme`, token `acme-intake-token-1`.
    fn auth_router(dir: &tempfile::TempDir, failures_per_minute: u32) -> Router {
        let store = crate::dispatch::store::SqliteStore::open(
            dir.path().join("store.db"),
            Default::default(),
        )
        .unwrap();
        let registry = Registry::new();
        registry.publish(
            ConnectionKey::new("psa", "acme"),
            crate::resolved::ConnectionEntry {
                intake_token: Some(SecretString::new("acme-intake-token-1")),
                ..Default::default()
            },
        );
        let mut prom = prometheus_client::registry::Registry::default();
        router(IntakeState {
            registry,
            store: Arc::new(store),
            metrics: Arc::new(DispatchMetrics::register(&mut prom)),
            limits: IntakeLimits {
                auth_failures_per_minute: failures_per_minute,
                ..IntakeLimits::default()
            },
        })
    }

    async fn post(app: &Router, path: &str, token: &str, from: &str) -> (u16, String) {
        use tower::ServiceExt;
        let peer: std::net::SocketAddr = from.parse().unwrap();
        let req = axum::http::Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .extension(ConnectInfo(peer))
            .body(Body::from(
                r#"{"id":"a1","organization":"Contoso","alertType":"X"}"#,
            ))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Without a valid token, an unknown connection and an existing one answer the same 401:
    /// namespaces and connection names cannot be enumerated.
    #[tokio::test]
    async fn unknown_and_existing_connections_look_alike_without_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let app = auth_router(&dir, 0);
        let existing = post(
            &app,
            "/v1/namespaces/psa/connections/acme/alerts",
            "guess",
            "192.0.2.1:1",
        )
        .await;
        let unknown = post(
            &app,
            "/v1/namespaces/psa/connections/nope/alerts",
            "guess",
            "192.0.2.1:1",
        )
        .await;
        let other_ns = post(
            &app,
            "/v1/namespaces/x/connections/acme/alerts",
            "guess",
            "192.0.2.1:1",
        )
        .await;
        assert_eq!(existing.0, 401);
        assert_eq!(unknown, existing);
        assert_eq!(other_ns, existing);
        assert!(!existing.1.contains("acme"), "{}", existing.1);
        let ok = post(
            &app,
            "/v1/namespaces/psa/connections/acme/alerts",
            "acme-intake-token-1",
            "192.0.2.1:1",
        )
        .await;
        assert_eq!(ok.0, 202, "{}", ok.1);
    }

    /// Failed authentication is limited per source address: after the budget, even the right
    /// token from that address waits; another address is not affected.
    #[tokio::test]
    async fn failed_authentication_is_rate_limited_per_source() {
        let dir = tempfile::tempdir().unwrap();
        let app = auth_router(&dir, 5);
        let path = "/v1/namespaces/psa/connections/acme/alerts";
        for i in 0..6 {
            let (status, _) = post(&app, path, &format!("guess-{i}"), "192.0.2.9:4000").await;
            assert_eq!(status, 401, "try {i}");
        }
        let (status, body) = post(&app, path, "acme-intake-token-1", "192.0.2.9:4001").await;
        assert_eq!(status, 429, "{body}");
        let (status, _) = post(&app, path, "acme-intake-token-1", "192.0.2.10:4000").await;
        assert_eq!(status, 202);
    }

    #[test]
    fn intake_tokens_are_trimmed_and_must_be_long_enough() {
        let cases: &[(&str, Option<&str>)] = &[
            ("x", None),
            ("  short-token  \n", None),
            ("0123456789abcdef", Some("0123456789abcdef")),
            ("0123456789abcdef\n", Some("0123456789abcdef")),
            (" \t0123456789abcdef-more ", Some("0123456789abcdef-more")),
        ];
        for (raw, want) in cases {
            let got = check_intake_token(&SecretString::new(*raw));
            match (got, want) {
                (Ok(t), Some(w)) => assert_eq!(t.expose(), *w),
                (Err(why), None) => {
                    assert!(why.contains("at least 16"), "{why}");
                    assert!(
                        !why.contains("short-token"),
                        "the message never holds the token"
                    );
                }
                (got, _) => panic!("{raw:?}: {:?}", got.map(|t| t.expose().to_string())),
            }
        }
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

    /// Concurrent single-alert requests share the store's commits (group commit). When a
    /// shared commit fails, every request of it answers 503 with a problem document and none
    /// of its alerts is stored; every request answered 202 is in the store file, read back
    /// by a second, independent opening of that file.
    #[tokio::test]
    async fn a_failed_shared_commit_answers_503_to_each_waiter_and_every_202_is_on_disk() {
        use crate::dispatch::store::SqliteStore;
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Arc::new(SqliteStore::open(&path, Default::default()).unwrap());
        let registry = Registry::new();
        let key = ConnectionKey::new("psa", "acme");
        registry.publish(
            key.clone(),
            crate::resolved::ConnectionEntry {
                intake_token: Some(SecretString::new("acme-intake-token-1")),
                ..Default::default()
            },
        );
        let mut prom = prometheus_client::registry::Registry::default();
        let app = router(IntakeState {
            registry,
            store: store.clone(),
            metrics: Arc::new(DispatchMetrics::register(&mut prom)),
            limits: IntakeLimits::default(),
        });
        let send_all = |prefix: &'static str| {
            let app = app.clone();
            async move {
                let requests = (0..16).map(|i| {
                    let req =
                        axum::http::Request::post("/v1/namespaces/psa/connections/acme/alerts")
                            .header(header::AUTHORIZATION, "Bearer acme-intake-token-1")
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Body::from(format!(
                                r#"{{"id":"{prefix}{i}","organization":"Contoso","alertType":"X"}}"#
                            )))
                            .unwrap();
                    let app = app.clone();
                    async move {
                        let resp = app.oneshot(req).await.unwrap();
                        let status = resp.status().as_u16();
                        let kind = resp
                            .headers()
                            .get(header::CONTENT_TYPE)
                            .map(|v| v.to_str().unwrap().to_string());
                        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                            .await
                            .unwrap();
                        (status, kind, String::from_utf8_lossy(&body).into_owned())
                    }
                });
                futures::future::join_all(requests).await
            }
        };

        store.fail_next_commits(u32::MAX);
        for (status, kind, body) in send_all("lost-").await {
            assert_eq!(status, 503, "{body}");
            assert_eq!(kind.as_deref(), Some(PROBLEM_CONTENT_TYPE), "{body}");
            assert!(body.contains("store-unavailable"), "{body}");
        }
        store.fail_next_commits(0);
        let before = store.commit_stats();
        for (status, _, body) in send_all("kept-").await {
            assert_eq!(status, 202, "{body}");
        }
        assert_eq!(store.commit_stats().calls - before.calls, 16);

        // An independent reader of the file: what was answered 202 is there, nothing else.
        let reader = rusqlite::Connection::open(&path).unwrap();
        let ids: Vec<String> = reader
            .prepare("SELECT event_id FROM events ORDER BY event_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut want: Vec<String> = (0..16).map(|i| format!("kept-{i}")).collect();
        want.sort();
        assert_eq!(ids, want);
    }
}
