//! The `/_sandbox/` admin API shared by every PSA emulator, and the middleware that counts calls
//! and injects faults on the emulated PSA routes.
//!
//! | route                    | what it does                                                        |
//! |--------------------------|---------------------------------------------------------------------|
//! | `GET /_sandbox/calls`    | calls per method and route template since the last reset            |
//! | `DELETE /_sandbox/calls` | zeroes the call counters only (state and faults stay)               |
//! | `GET /_sandbox/faults`   | the faults in force                                                 |
//! | `POST /_sandbox/faults`  | replaces the faults: `{latencyMs, errorRate, rateLimitPerMinute, outage}`; absent = off |
//! | `POST /_sandbox/reset`   | restores the seed, zeroes the counters, restores the start-up faults |
//! | `GET /_sandbox/state`    | the emulator's whole state as JSON (shape is the emulator's)         |
//! | `GET /`                  | read-only HTML page of the state and the last PSA calls ([`super::web`]) |
//!
//! A fault is applied to a PSA call in this order: latency, outage (503), rate limit (429 with
//! `Retry-After`), random server error (500). Every call that reaches a PSA route is counted,
//! including the ones a fault rejected, because a client's retries are calls too. Requests that
//! match no route are neither counted nor faulted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// What an emulator plugs into the admin layer.
pub trait SandboxBackend: Send + Sync + 'static {
    /// Restores the state the sandbox was started with.
    fn reset(&self);
    /// The whole state as JSON, for `GET /_sandbox/state`.
    fn state(&self) -> serde_json::Value;
    /// The error body the emulated PSA would send for an injected fault (its own error shape).
    fn fault_body(&self, fault: InjectedFault) -> serde_json::Value;
    /// What a technician would see in the PSA, for the read-only page at `/` (none: no page).
    fn web_view(&self) -> Option<super::web::PsaView> {
        None
    }
}

/// A fault the admin layer injected into a PSA call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// `outage: true` → 503.
    Outage,
    /// Over `rateLimitPerMinute` → 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// Drawn by `errorRate` → 500.
    ServerError,
}

impl InjectedFault {
    pub fn status(self) -> StatusCode {
        match self {
            InjectedFault::Outage => StatusCode::SERVICE_UNAVAILABLE,
            InjectedFault::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            InjectedFault::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Faults applied to every PSA call (the body of `POST /_sandbox/faults`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every PSA call before it is answered.
    pub latency_ms: u64,
    /// Fraction (0.0–1.0) of PSA calls answered with a 500.
    pub error_rate: f64,
    /// PSA calls admitted per sliding minute; 0 = unlimited.
    pub rate_limit_per_minute: u32,
    /// Every PSA call answered with a 503.
    pub outage: bool,
}

impl Faults {
    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "errorRate must be between 0 and 1, got {}",
                self.error_rate
            ));
        }
        Ok(())
    }
}

/// One row of `GET /_sandbox/calls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    pub method: String,
    /// The route template as the router declares it, e.g. `/v4_6_release/apis/3.0/service/tickets/{id}`.
    pub route: String,
    pub count: u64,
}

/// Body of `GET /_sandbox/calls`: rows sorted by route then method, and their sum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallReport {
    pub total: u64,
    pub calls: Vec<CallCount>,
}

impl CallReport {
    /// Count of one method + route template (0 when never called).
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method) && c.route == route)
            .map(|c| c.count)
            .sum()
    }
}

/// One PSA call as the web view lists it (newest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecentCall {
    /// RFC 3339, UTC, seconds.
    pub at: String,
    pub method: String,
    /// The path called (without the query string).
    pub path: String,
    pub status: u16,
}

/// How many calls the web view keeps.
const RECENT_CALLS: usize = 50;

/// Call counters, faults and the rate-limit window of one sandbox.
pub struct Admin {
    backend: Arc<dyn SandboxBackend>,
    startup_faults: Faults,
    inner: Mutex<AdminState>,
}

#[derive(Default)]
struct AdminState {
    calls: BTreeMap<(String, String), u64>,
    faults: Faults,
    /// Start times of the calls admitted in the last minute (for `rateLimitPerMinute`).
    admitted: VecDeque<Instant>,
    /// The last [`RECENT_CALLS`] PSA calls, oldest first.
    recent: VecDeque<RecentCall>,
}

const RATE_WINDOW: Duration = Duration::from_secs(60);

impl Admin {
    /// An admin layer over `backend`; `startup_faults` are in force from the start and after a reset
    /// (e.g. `--latency-ms`).
    pub fn new(backend: Arc<dyn SandboxBackend>, startup_faults: Faults) -> Arc<Self> {
        Arc::new(Admin {
            backend,
            inner: Mutex::new(AdminState {
                faults: startup_faults.clone(),
                ..AdminState::default()
            }),
            startup_faults,
        })
    }

    fn lock(&self) -> MutexGuard<'_, AdminState> {
        // A panic while holding the lock cannot leave the counters inconsistent; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The call counters.
    pub fn calls(&self) -> CallReport {
        let st = self.lock();
        let calls: Vec<CallCount> = st
            .calls
            .iter()
            .map(|((route, method), count)| CallCount {
                method: method.clone(),
                route: route.clone(),
                count: *count,
            })
            .collect();
        CallReport {
            total: calls.iter().map(|c| c.count).sum(),
            calls,
        }
    }

    pub fn clear_calls(&self) {
        let mut st = self.lock();
        st.calls.clear();
        st.recent.clear();
    }

    /// The last PSA calls, newest first.
    pub fn recent_calls(&self) -> Vec<RecentCall> {
        self.lock().recent.iter().rev().cloned().collect()
    }

    fn record(&self, call: RecentCall) {
        let mut st = self.lock();
        if st.recent.len() == RECENT_CALLS {
            st.recent.pop_front();
        }
        st.recent.push_back(call);
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the faults; the rate-limit window starts afresh.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        let mut st = self.lock();
        st.faults = faults;
        st.admitted.clear();
        Ok(())
    }

    /// Restores the seed, zeroes the counters and restores the start-up faults.
    pub fn reset(&self) {
        self.backend.reset();
        let mut st = self.lock();
        st.calls.clear();
        st.admitted.clear();
        st.recent.clear();
        st.faults = self.startup_faults.clone();
    }

    /// Counts the call and decides which fault, if any, answers it.
    fn admit(&self, method: &str, route: &str, now: Instant) -> (Duration, Option<InjectedFault>) {
        let mut st = self.lock();
        *st.calls
            .entry((route.to_string(), method.to_string()))
            .or_insert(0) += 1;
        let latency = Duration::from_millis(st.faults.latency_ms);
        if st.faults.outage {
            return (latency, Some(InjectedFault::Outage));
        }
        let limit = st.faults.rate_limit_per_minute;
        if limit > 0 {
            while st
                .admitted
                .front()
                .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
            {
                st.admitted.pop_front();
            }
            if st.admitted.len() >= limit as usize {
                let oldest = st.admitted.front().copied().unwrap_or(now);
                let left = RATE_WINDOW.saturating_sub(now.duration_since(oldest));
                return (
                    latency,
                    Some(InjectedFault::RateLimited {
                        retry_after_secs: retry_after_secs(left),
                    }),
                );
            }
            st.admitted.push_back(now);
        }
        let error_rate = st.faults.error_rate;
        drop(st);
        if error_rate > 0.0 && rand::random::<f64>() < error_rate {
            return (latency, Some(InjectedFault::ServerError));
        }
        (latency, None)
    }
}

/// Whole seconds until the window frees a slot, at least 1 (a `Retry-After: 0` invites a hot loop).
fn retry_after_secs(left: Duration) -> u64 {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    secs.max(1)
}

/// Wraps an emulator's PSA routes with call counting and fault injection, and adds `/_sandbox/`.
///
/// Call this after every PSA route is on `psa_routes` (routes added later are not counted).
pub fn with_admin(psa_routes: Router, admin: Arc<Admin>) -> Router {
    psa_routes
        .route_layer(middleware::from_fn_with_state(
            admin.clone(),
            count_and_fault,
        ))
        .merge(admin_routes(admin))
}

async fn count_and_fault(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let (latency, fault) = admin.admit(&method, &route, Instant::now());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = answer(&admin, fault, req, next).await;
    admin.record(RecentCall {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        method,
        path,
        status: resp.status().as_u16(),
    });
    resp
}

async fn answer(admin: &Admin, fault: Option<InjectedFault>, req: Request, next: Next) -> Response {
    match fault {
        None => next.run(req).await,
        Some(fault) => {
            let body = admin.backend.fault_body(fault);
            let mut resp = (fault.status(), Json(body)).into_response();
            if let InjectedFault::RateLimited { retry_after_secs } = fault {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            resp
        }
    }
}

fn admin_routes(admin: Arc<Admin>) -> Router {
    Router::new()
        .route(
            "/_sandbox/calls",
            get(|State(a): State<Arc<Admin>>| async move { Json(a.calls()) }).delete(
                |State(a): State<Arc<Admin>>| async move {
                    a.clear_calls();
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/_sandbox/faults",
            get(|State(a): State<Arc<Admin>>| async move { Json(a.faults()) }).post(set_faults),
        )
        .route(
            "/_sandbox/reset",
            post(|State(a): State<Arc<Admin>>| async move {
                a.reset();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/_sandbox/state",
            get(|State(a): State<Arc<Admin>>| async move { Json(a.backend.state()) }),
        )
        .route("/", get(web_page))
        .with_state(admin)
}

/// `GET /`: the read-only page of the sandbox, or 404 when the emulator has none.
async fn web_page(State(admin): State<Arc<Admin>>) -> Response {
    match admin.backend.web_view() {
        Some(view) => super::web::page(&view, &admin.recent_calls()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn set_faults(
    State(admin): State<Arc<Admin>>,
    body: Result<Json<Faults>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let faults = match body {
        Ok(Json(f)) => f,
        Err(e) => return admin_error(e.body_text()),
    };
    match admin.set_faults(faults) {
        Ok(()) => Json(admin.faults()).into_response(),
        Err(msg) => admin_error(msg),
    }
}

fn admin_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl SandboxBackend for Nothing {
        fn reset(&self) {}
        fn state(&self) -> serde_json::Value {
            serde_json::json!({})
        }
        fn fault_body(&self, _: InjectedFault) -> serde_json::Value {
            serde_json::json!({})
        }
    }

    fn admin(faults: Faults) -> Arc<Admin> {
        Admin::new(Arc::new(Nothing), faults)
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let table = [
            (Duration::ZERO, 1),
            (Duration::from_millis(1), 1),
            (Duration::from_millis(1000), 1),
            (Duration::from_millis(1001), 2),
            (Duration::from_secs(59), 59),
        ];
        for (left, want) in table {
            assert_eq!(retry_after_secs(left), want, "{left:?}");
        }
    }

    #[test]
    fn rate_limit_admits_n_per_minute_then_says_when_to_come_back() {
        let a = admin(Faults {
            rate_limit_per_minute: 2,
            ..Faults::default()
        });
        let t0 = Instant::now();
        assert_eq!(a.admit("GET", "/x", t0).1, None);
        assert_eq!(a.admit("GET", "/x", t0 + Duration::from_secs(10)).1, None);
        assert_eq!(
            a.admit("GET", "/x", t0 + Duration::from_secs(20)).1,
            Some(InjectedFault::RateLimited {
                retry_after_secs: 40
            })
        );
        // The first call left the window: one slot free again.
        assert_eq!(a.admit("GET", "/x", t0 + Duration::from_secs(60)).1, None);
        assert_eq!(a.calls().count("GET", "/x"), 4);
    }

    #[test]
    fn outage_wins_over_everything_and_is_counted() {
        let a = admin(Faults {
            outage: true,
            error_rate: 1.0,
            latency_ms: 5,
            ..Faults::default()
        });
        let (latency, fault) = a.admit("POST", "/t", Instant::now());
        assert_eq!(fault, Some(InjectedFault::Outage));
        assert_eq!(latency, Duration::from_millis(5));
        assert_eq!(a.calls().total, 1);
    }

    #[test]
    fn error_rate_extremes_are_deterministic() {
        let always = admin(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        let never = admin(Faults::default());
        for _ in 0..50 {
            assert_eq!(
                always.admit("GET", "/x", Instant::now()).1,
                Some(InjectedFault::ServerError)
            );
            assert_eq!(never.admit("GET", "/x", Instant::now()).1, None);
        }
    }

    #[test]
    fn reset_restores_startup_faults_and_zeroes_calls() {
        let startup = Faults {
            latency_ms: 7,
            ..Faults::default()
        };
        let a = admin(startup.clone());
        a.admit("GET", "/x", Instant::now());
        a.set_faults(Faults {
            outage: true,
            ..Faults::default()
        })
        .unwrap();
        a.reset();
        assert_eq!(a.faults(), startup);
        assert_eq!(a.calls().total, 0);
    }

    #[test]
    fn error_rate_outside_zero_to_one_is_refused() {
        let a = admin(Faults::default());
        for bad in [-0.1, 1.5, f64::NAN] {
            assert!(a
                .set_faults(Faults {
                    error_rate: bad,
                    ..Faults::default()
                })
                .is_err());
        }
    }

    #[test]
    fn faults_body_uses_the_documented_camel_case_names() {
        let f: Faults = serde_json::from_str(
            r#"{"latencyMs":10,"errorRate":0.5,"rateLimitPerMinute":30,"outage":true}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Faults {
                latency_ms: 10,
                error_rate: 0.5,
                rate_limit_per_minute: 30,
                outage: true
            }
        );
        // Absent fields mean "off".
        let f: Faults = serde_json::from_str(r#"{"outage":true}"#).unwrap();
        assert_eq!(f.latency_ms, 0);
        assert!(serde_json::from_str::<Faults>(r#"{"latency":10}"#).is_err());
    }
}
