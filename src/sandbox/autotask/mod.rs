//! A stateful emulator of the Autotask PSA REST API (v1.0), for tests, `dev` and benchmarks.
//!
//! Laid out as every emulator should be: `routes.rs` (HTTP), `state.rs` (the database and its
//! rules), `query.rs` (the filter grammar), `wire.rs` (its own request types, never the
//! client's), `seed.rs` + `demo-seed.yaml` (what it starts from).
//!
//! What it reproduces (facts from `reference/specs/autotask-rest-v1-swagger.json` and
//! `reference/psa-apis/autotask.md`; choices where Autotask is silent marked *sandbox* in the
//! code):
//! * paths under `/atservicesrest/V1.0/`, zone discovery (`ZoneInformation?user=`, answering
//!   this sandbox's own URL), the three credential headers (401 otherwise);
//! * queries by `POST /{Entity}/query` (or `GET …?search=`) with the JSON filter grammar, at
//!   most 500 rows per page and `pageDetails.nextPageUrl`; `GET /{Entity}/{id}` as `{item}`;
//! * creates answering `{itemId}`, updates by `PATCH` with the id in the body, notes as a
//!   child of the ticket; `{"errors": [...]}` bodies, reference errors as HTTP 500;
//! * picklists in `entityInformation/fields` (sub-issue types with `parentValue`);
//! * `ContractServices` on a contract once, units changed only by `ContractServiceAdjustments`
//!   and reported per month by `ContractServiceUnits`;
//! * the database's hourly threshold (`settings.requestsPerHour`, 429 at 100 %,
//!   `ThresholdInformation`) and 3 concurrent requests per endpoint (429 beyond).
//!
//! Besides the shared `/_sandbox/` admin API ([`super::admin`]), `GET|POST /_sandbox/database`
//! reads or sets `{requestsThisHour, processingMs}`: the requests other integrations made this
//! hour, and how long each request holds its endpoint slot (to make concurrency visible).

mod query;
mod routes;
pub mod seed;
mod state;
mod wire;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State as AxState;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub use seed::{Seed, SeedError};

use super::admin::{self, Admin, Faults, InjectedFault, SandboxBackend};
use super::RunningSandbox;
use state::{Refusal, Store};

/// The demo API user (`config/samples/` and the tests use it).
pub const DEMO_USERNAME: &str = "demo-api@msp.example";
pub const DEMO_SECRET: &str = "demo-secret";
pub const DEMO_INTEGRATION_CODE: &str = "DEMOTRACKINGIDENTIFIER00001";

/// The built-in demo database.
pub fn demo_seed() -> Seed {
    Seed::demo()
}

/// The Secret entries of a connection that call as this seed's first API user.
pub fn seed_credentials(seed: &Seed) -> Result<Vec<(&'static str, String)>, String> {
    let user = seed.api_users.first().ok_or("the seed has no API user")?;
    Ok(vec![
        ("secret", user.secret.clone()),
        ("integrationCode", user.integration_code.clone()),
    ])
}

/// One emulated Autotask database: the seed it started from and its current state.
pub struct AutotaskSandbox {
    seed: Seed,
    state: Mutex<Store>,
    /// (tracking identifier, endpoint) → requests in flight.
    in_flight: Mutex<HashMap<(String, String), u32>>,
    processing_ms: AtomicU64,
}

/// An endpoint slot; leaving it frees the slot.
pub(crate) struct Slot<'a> {
    sb: &'a AutotaskSandbox,
    key: (String, String),
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut m = self.sb.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

impl AutotaskSandbox {
    pub fn new(seed: Seed) -> Arc<Self> {
        Arc::new(AutotaskSandbox {
            state: Mutex::new(Store::from_seed(&seed)),
            seed,
            in_flight: Mutex::new(HashMap::new()),
            processing_ms: AtomicU64::new(0),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        // A handler that panicked mid-update leaves at worst one half-made object; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request against the database's hour; refuses at 100 %.
    pub(crate) fn count_request(&self) -> Result<(), Refusal> {
        let limit = self.seed.settings.requests_per_hour;
        let mut st = self.lock();
        if st.hour_started.elapsed() >= HOUR {
            st.requests_this_hour = 0;
            st.hour_started = Instant::now();
        }
        if limit > 0 && st.requests_this_hour >= limit {
            return Err(Refusal {
                status: 429,
                message: format!(
                    "The request threshold of {limit} requests per hour for this database has been reached; requests are refused until usage falls."
                ),
            });
        }
        st.requests_this_hour += 1;
        Ok(())
    }

    /// Takes one of the endpoint's concurrent slots for this tracking identifier, if one is free.
    pub(crate) fn enter(&self, code: &str, endpoint: &str) -> Option<Slot<'_>> {
        let limit = self.seed.settings.threads_per_endpoint;
        let key = (code.to_string(), endpoint.to_string());
        let mut m = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.clone()).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot { sb: self, key })
    }

    pub(crate) fn processing(&self) -> Duration {
        Duration::from_millis(self.processing_ms.load(Ordering::Relaxed))
    }

    fn database_json(&self) -> Value {
        json!({
            "requestsThisHour": self.lock().requests_this_hour,
            "threshold": self.seed.settings.requests_per_hour,
            "processingMs": self.processing_ms.load(Ordering::Relaxed),
        })
    }

    /// Sets the requests made this hour (e.g. by other integrations) and the processing time.
    pub fn set_database(&self, requests_this_hour: Option<u64>, processing_ms: Option<u64>) {
        if let Some(n) = requests_this_hour {
            let mut st = self.lock();
            st.requests_this_hour = n;
            st.hour_started = Instant::now();
        }
        if let Some(ms) = processing_ms {
            self.processing_ms.store(ms, Ordering::Relaxed);
        }
    }
}

impl SandboxBackend for AutotaskSandbox {
    fn reset(&self) {
        *self.lock() = Store::from_seed(&self.seed);
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.processing_ms.store(0, Ordering::Relaxed);
    }

    fn state(&self) -> Value {
        routes::state_json(&self.lock(), self.seed.settings.requests_per_hour)
    }

    fn fault_body(&self, fault: InjectedFault) -> Value {
        let message = match fault {
            InjectedFault::Outage => "Service Unavailable",
            InjectedFault::RateLimited { .. } => "Too many requests; retry later.",
            InjectedFault::ServerError => "An unexpected error occurred.",
        };
        json!({ "errors": [message] })
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DatabaseIn {
    #[serde(default)]
    requests_this_hour: Option<u64>,
    #[serde(default)]
    processing_ms: Option<u64>,
}

/// The whole app (Autotask routes counted and faulted, `/_sandbox/`) and its admin handle.
pub fn app(seed: Seed, startup_faults: Faults) -> (Router, Arc<Admin>) {
    let sandbox = AutotaskSandbox::new(seed);
    let psa = routes::api(sandbox.clone());
    let admin = Admin::new(sandbox.clone(), startup_faults);
    let app = admin::with_admin(psa, admin.clone()).merge(
        Router::new()
            .route(
                "/_sandbox/database",
                get(|AxState(s): AxState<Arc<AutotaskSandbox>>| async move { Json(s.database_json()) })
                    .post(
                        |AxState(s): AxState<Arc<AutotaskSandbox>>, Json(d): Json<DatabaseIn>| async move {
                            s.set_database(d.requests_this_hour, d.processing_ms);
                            Json(s.database_json())
                        },
                    ),
            )
            .with_state(sandbox),
    );
    (app, admin)
}

/// Serves the emulator on the listening `socket` in the background of the current runtime.
pub async fn start(socket: TcpListener, seed: Seed, faults: Faults) -> io::Result<RunningSandbox> {
    let (app, admin) = app(seed, faults);
    super::serve(socket, app, admin).await
}
