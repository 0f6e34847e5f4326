//! Stateful emulator of the ConnectWise PSA REST API 3.0 parts psa-operator calls.
//!
//! * `GET /login/companyinfo/{companyId}` (no auth) → `{"Codebase": "v4_6_release/", …}`, or
//!   `null` for an unknown company.
//! * Everything else under `/{codebase}apis/3.0/…`, with Basic auth
//!   `companyId+publicKey:privateKey` and a `clientId` header checked on every call (401 with
//!   `{"code":"Unauthorized"}` without either; a vendor guide reports 400 for a missing
//!   clientId, the issue fixes 401, and clients treat both as permanent).
//! * Companies, contacts, boards with statuses/types/subtypes/items, priorities, sources (read);
//!   tickets (create, read, list, PATCH, delete), notes, agreements and additions, catalog items.
//! * Validation like the real PSA: summary over 100 characters, unknown or foreign-board ids,
//!   duplicate catalog identifier (`ObjectExists`), a status name not on the board.
//! * Errors in ConnectWise's shape: `{code, message, errors[{code, message, resource, field}]}`.
//! * The API member's security role: every right granted until `POST /_sandbox/roles`
//!   (`{"deny": ["Service Desk/Close Service Tickets/Edit"]}`) takes some away; calls needing
//!   a denied right answer 403 `{"code":"Security"}`; `GET /system/mysecurity` lists the levels.
//! * `processNotifications` (default true) records the e-mail ConnectWise would send the
//!   ticket's contact in the `notifications` table of `/_sandbox/state`.
//! * `/_sandbox/…` admin API from [`crate::sandbox::admin`].
//!
//! Wire handling is the sandbox's own (JSON records built here), never the client's structs.
//! Seed format: [`seed`].

mod billing;
mod listing;
mod patch;
pub(crate) mod query;
mod routes;
mod security;
pub mod seed;
mod state;
mod tickets;
mod web;
mod wire;

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use self::seed::Seed;
pub use self::state::first_of_next_month;
use self::state::Store;
use self::wire::ApiError;
use super::admin::{self, Admin, Faults, InjectedFault, SandboxBackend};
use super::RunningSandbox;

/// Demo credentials (the built-in seed), for samples, `dev` and tests.
pub const DEMO_COMPANY_ID: &str = "demo";
pub const DEMO_PUBLIC_KEY: &str = "demo-public";
pub const DEMO_PRIVATE_KEY: &str = "demo-private";
pub const DEMO_CLIENT_ID: &str = "00000000-0000-0000-0000-000000000001";

/// The built-in demo seed.
pub fn demo_seed() -> Seed {
    // The embedded file is checked by a unit test; a broken build-in seed is a bug, not input.
    seed::parse(seed::DEMO_SEED_YAML).expect("built-in demo seed parses")
}

/// The Secret entries of a connection that this seed's API member accepts.
pub fn seed_credentials(seed: &Seed) -> Vec<(&'static str, String)> {
    vec![
        ("publicKey", seed.public_key.clone()),
        ("privateKey", seed.private_key.clone()),
    ]
}

/// The emulator's state and identity.
pub struct CwSandbox {
    seed: Seed,
    initial: Store,
    store: Mutex<Store>,
    /// Rights the API member's role lacks (`Module/Function/Level`).
    denied: Mutex<BTreeSet<String>>,
}

impl CwSandbox {
    pub fn new(seed: Seed) -> Arc<Self> {
        let initial = Store::from_seed(&seed);
        Arc::new(CwSandbox {
            store: Mutex::new(initial.clone()),
            initial,
            seed,
            denied: Mutex::new(BTreeSet::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn denied(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.denied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the API member's role has `right` (`Module/Function/Level`).
    fn may(&self, right: &str) -> bool {
        !self.denied().contains(right)
    }

    /// `/{codebase}apis/3.0`.
    pub fn api_prefix(&self) -> String {
        format!("/{}/apis/3.0", self.seed.codebase.trim_matches('/'))
    }

    /// Checks `clientId` and Basic auth; the message never repeats what was presented.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let client_id = headers
            .get("clientid")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .unwrap_or("");
        if client_id.is_empty() {
            return Err(ApiError::unauthorized(
                "A clientId header is required on every request. See https://developer.connectwise.com/ClientID",
            ));
        }
        if !self.seed.client_ids.is_empty()
            && !self
                .seed
                .client_ids
                .iter()
                .any(|c| c.eq_ignore_ascii_case(client_id))
        {
            return Err(ApiError::unauthorized("The clientId is not recognised."));
        }
        let decoded = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        let ok = decoded.as_deref().and_then(|d| {
            let (user, private) = d.split_once(':')?;
            let (company, public) = user.split_once('+')?;
            Some(
                company.eq_ignore_ascii_case(&self.seed.company_id)
                    && public == self.seed.public_key
                    && private == self.seed.private_key,
            )
        });
        if ok != Some(true) {
            return Err(ApiError::unauthorized(
                "Authentication failed: expected Basic companyId+publicKey:privateKey of an API member.",
            ));
        }
        Ok(())
    }
}

impl SandboxBackend for CwSandbox {
    fn reset(&self) {
        *self.lock() = self.initial.clone();
        self.denied().clear();
    }

    fn state(&self) -> Value {
        self.lock().dump()
    }

    fn web_view(&self) -> Option<crate::sandbox::web::PsaView> {
        Some(web::view(&self.state(), &self.seed.company_id))
    }

    fn fault_body(&self, fault: InjectedFault) -> Value {
        match fault {
            InjectedFault::Outage => {
                json!({"code": "ServiceUnavailable", "message": "The service is temporarily unavailable."})
            }
            InjectedFault::RateLimited { retry_after_secs } => json!({
                "code": "TooManyRequests",
                "message": format!("Too many requests; retry after {retry_after_secs} seconds."),
            }),
            InjectedFault::ServerError => {
                json!({"code": "ConnectWiseApi", "message": "A timeout has occured. Please try again."})
            }
        }
    }
}

async fn authenticated(State(s): State<Arc<CwSandbox>>, req: Request, next: Next) -> Response {
    if let Err(e) = s.authenticate(req.headers()) {
        return e.into_response();
    }
    // Nested under the codebase, the request path is relative to the API base here.
    if let Some(right) = security::needed(req.method(), req.uri().path()) {
        if !s.may(right) {
            return ApiError::security().into_response();
        }
    }
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert("api-current-version", HeaderValue::from_static("2025.1"));
    resp
}

async fn company_info(State(s): State<Arc<CwSandbox>>, Path(company): Path<String>) -> Json<Value> {
    if !company.eq_ignore_ascii_case(&s.seed.company_id) {
        return Json(Value::Null);
    }
    Json(json!({
        "CompanyName": s.seed.company_id, "Codebase": format!("{}/", s.seed.codebase.trim_matches('/')),
        "VersionCode": "v2025.1", "VersionNumber": "v4.6.100000", "CompanyID": s.seed.company_id,
        "IsCloud": false, "SiteUrl": "",
    }))
}

/// `POST /_sandbox/roles` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    #[serde(default)]
    deny: Vec<String>,
}

/// `GET /_sandbox/roles`: the denied rights.
async fn get_roles(State(s): State<Arc<CwSandbox>>) -> Json<Value> {
    Json(json!({ "deny": s.denied().iter().collect::<Vec<_>>() }))
}

/// `POST /_sandbox/roles`: replaces the denied rights (an empty list grants everything).
async fn set_roles(State(s): State<Arc<CwSandbox>>, body: axum::body::Bytes) -> Response {
    let parsed: Result<RolesBody, String> = serde_json::from_slice(&body)
        .map_err(|e| format!("expected {{\"deny\": [\"Module/Function/Level\", …]}}: {e}"));
    let rights = parsed.and_then(|b| {
        b.deny
            .iter()
            .map(|r| security::canonical(r))
            .collect::<Result<BTreeSet<String>, String>>()
    });
    match rights {
        Ok(rights) => {
            *s.denied() = rights;
            get_roles(State(s)).await.into_response()
        }
        Err(problem) => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": problem })),
        )
            .into_response(),
    }
}

/// The whole app (PSA routes counted and faulted, plus `/_sandbox/`) and its admin handle.
pub fn app(seed: Seed, startup_faults: Faults) -> (Router, Arc<Admin>) {
    let sandbox = CwSandbox::new(seed);
    let api = routes::api().layer(middleware::from_fn_with_state(
        sandbox.clone(),
        authenticated,
    ));
    let psa = Router::new()
        .route("/login/companyinfo/{company}", get(company_info))
        .nest(&sandbox.api_prefix(), api)
        .with_state(sandbox.clone());
    let roles = Router::new()
        .route("/_sandbox/roles", get(get_roles).post(set_roles))
        .with_state(sandbox.clone());
    let admin = Admin::new(sandbox, startup_faults);
    (admin::with_admin(psa, admin.clone()).merge(roles), admin)
}

/// Serves the emulator on the listening `socket` in the background of the current runtime.
pub async fn start(socket: TcpListener, seed: Seed, faults: Faults) -> io::Result<RunningSandbox> {
    let (app, admin) = app(seed, faults);
    super::serve(socket, app, admin).await
}
