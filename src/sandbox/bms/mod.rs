//! A stateful emulator of the Kaseya BMS REST API v2, for tests, `dev` and benchmarks.
//!
//! What it reproduces (facts from `reference/psa-apis/kaseya-bms.md`, choices where Kaseya is
//! silent marked *sandbox*):
//! * login by form post to `/v2/security/authenticate` (tenant, user, password, any key casing);
//!   tokens that expire (`settings.accessTokenSeconds`), `/v2/security/refreshtoken`, 401 with an
//!   empty body and `WWW-Authenticate: Bearer` for a missing, unknown or expired token;
//! * the `{success, result, totalRecords}` envelope in camelCase; `success:false` behind HTTP 200
//!   for validation and business-rule failures; *sandbox*: HTTP 400 problem details when a body
//!   cannot be bound (wrong JSON types), as ASP.NET does;
//! * paging with `PageSize` (default 50, *sandbox*; at most 100) and 1-based `PageNumber`,
//!   `totalRecords` only on the paged endpoints; "contains" filters, any case;
//! * 1,500 calls per hour per endpoint (`settings.callsPerHourPerEndpoint`): 429, `Retry-After`,
//!   `{success:false, error:{code:429}}`;
//! * no call lists a contract's lines or changes a line, as in v2.
//!
//! The shared `/_sandbox/` admin API (calls, faults, reset, state) comes from [`super::admin`];
//! this emulator adds `POST /_sandbox/tokens/expire`, which makes every access token expire now,
//! and `GET /_sandbox/exchanges`, the last requests and answers as sent (see [`exchanges`]).

mod exchanges;
mod limits;
mod routes;
pub mod seed;
mod session;
mod state;
mod web;
mod wire;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub use seed::{Seed, SeedError};

use super::admin::{self, Admin, Faults, InjectedFault, SandboxBackend};
use super::RunningSandbox;
use exchanges::ExchangeLog;
use limits::EndpointLimiter;
use session::Sessions;
use state::Store;

/// The built-in demo tenant (`demo`, user `demo-api` / `demo-password`).
pub fn demo_seed() -> Seed {
    Seed::demo()
}

/// The Secret entries of a connection that log in as this seed's first user.
pub fn seed_credentials(seed: &Seed) -> Result<Vec<(&'static str, String)>, String> {
    let user = seed.users.first().ok_or("the seed has no user")?;
    Ok(vec![
        ("username", user.user_name.clone()),
        ("password", user.password.clone()),
    ])
}

pub(crate) struct Inner {
    pub store: Store,
    pub sessions: Sessions,
    pub limiter: EndpointLimiter,
    pub exchanges: ExchangeLog,
}

/// One emulated tenant: the seed it started from and its current state.
pub struct BmsSandbox {
    seed: Seed,
    inner: Mutex<Inner>,
}

impl BmsSandbox {
    pub fn new(seed: Seed) -> Arc<Self> {
        let inner = Mutex::new(Inner {
            store: Store::from_seed(&seed),
            sessions: Sessions::default(),
            limiter: EndpointLimiter::default(),
            exchanges: ExchangeLog::default(),
        });
        Arc::new(BmsSandbox { seed, inner })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A handler that panicked mid-update leaves at worst one half-made object; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every access token expire now (refresh tokens stay good).
    pub fn expire_tokens(&self) {
        self.lock().sessions.expire_all(Instant::now());
    }
}

impl SandboxBackend for BmsSandbox {
    fn reset(&self) {
        let mut inner = self.lock();
        inner.store = Store::from_seed(&self.seed);
        inner.sessions.clear();
        inner.limiter.clear();
        inner.exchanges.clear();
    }

    fn state(&self) -> Value {
        let inner = self.lock();
        routes::state_json(&inner.store, inner.sessions.len())
    }

    fn web_view(&self) -> Option<crate::sandbox::web::PsaView> {
        Some(web::view(&self.state()))
    }

    fn fault_body(&self, fault: InjectedFault) -> Value {
        let message = match fault {
            InjectedFault::Outage => "Service Unavailable".to_string(),
            InjectedFault::RateLimited { .. } => "API calls quota exceeded!".to_string(),
            InjectedFault::ServerError => "An unexpected error occurred.".to_string(),
        };
        json!({
            "success": false,
            "error": { "code": fault.status().as_u16(), "message": message },
        })
    }
}

/// The whole app (BMS routes counted and faulted, `/_sandbox/`) and its admin handle.
pub fn app(seed: Seed, startup_faults: Faults) -> (Router, Arc<Admin>) {
    let sandbox = BmsSandbox::new(seed);
    let psa = routes::api(sandbox.clone());
    let admin = Admin::new(sandbox.clone(), startup_faults);
    let app =
        admin::with_admin(psa, admin.clone()).merge(
            Router::new()
                .route(
                    "/_sandbox/exchanges",
                    get(|State(s): State<Arc<BmsSandbox>>| async move {
                        Json(s.lock().exchanges.all())
                    }),
                )
                .route(
                    "/_sandbox/tokens/expire",
                    post(|State(s): State<Arc<BmsSandbox>>| async move {
                        s.expire_tokens();
                        StatusCode::NO_CONTENT
                    }),
                )
                .with_state(sandbox),
        );
    (app, admin)
}

/// Serves the emulator on the listening `socket` in the background of the current runtime;
/// the bound address is `running.addr()`.
pub async fn start(socket: TcpListener, seed: Seed, faults: Faults) -> io::Result<RunningSandbox> {
    let (app, admin) = app(seed, faults);
    super::serve(socket, app, admin).await
}
