//! Stateful emulators of the PSA REST APIs the clients call, for tests, `dev` and benchmarks.
//!
//! Each emulator (`connectwise`, `bms`, `autotask`) keeps its own wire types: it never reuses the client's
//! structs, so a mistake shared by both sides cannot hide. What they share is here:
//!
//! * [`admin`]: the `/_sandbox/` API (call counts, fault injection, reset, state dump) and the
//!   middleware counting and faulting the PSA routes. An emulator implements
//!   [`admin::SandboxBackend`] and wraps its PSA router with [`admin::with_admin`].
//! * [`serve`]: runs a finished router on a listener in the background and hands back a
//!   [`RunningSandbox`] (bound address, admin handle, shutdown on drop).
//! * [`seed`]: the seed entries the Kaseya BMS and Autotask seeds describe alike.
//! * [`web`]: the read-only HTML page at `/` (companies, tickets and notes, contract lines, the
//!   last calls); each emulator's `web` module turns its state into the page's view.
//!
//! Typical emulator entry point:
//! ```ignore
//! let admin = Admin::new(backend.clone(), startup_faults);
//! let app = admin::with_admin(psa_routes, admin.clone());
//! let running = sandbox::serve(listener, app, admin).await?;
//! println!("listening on {}", running.base_url());
//! ```

pub mod admin;
pub mod autotask;
pub mod bms;
pub mod connectwise;
pub mod seed;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use admin::{Admin, CallReport, Faults, InjectedFault, SandboxBackend};

/// A sandbox serving in the background of the current tokio runtime.
///
/// Dropping it stops the server (in-flight requests are cut); [`RunningSandbox::wait`] serves
/// until the process ends.
pub struct RunningSandbox {
    addr: SocketAddr,
    admin: Arc<Admin>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSandbox {
    /// The address actually bound (useful after binding port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin layer, for in-process callers that prefer it to `/_sandbox/` over HTTP.
    pub fn admin(&self) -> &Arc<Admin> {
        &self.admin
    }

    /// Serves until the server fails (it normally never returns).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let task = self.task.take();
        // Keep the shutdown sender alive for as long as we wait.
        let _keep = self.shutdown.take();
        match task {
            Some(t) => t.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Serves `app` on `listener` in a background task.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admin: Arc<Admin>,
) -> std::io::Result<RunningSandbox> {
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningSandbox {
        addr,
        admin,
        shutdown: Some(tx),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A backend whose state is one counter, to see reset and state go through.
    struct Counter(AtomicU32);
    impl SandboxBackend for Counter {
        fn reset(&self) {
            self.0.store(0, Ordering::SeqCst);
        }
        fn state(&self) -> serde_json::Value {
            serde_json::json!({ "hits": self.0.load(Ordering::SeqCst) })
        }
        fn fault_body(&self, fault: InjectedFault) -> serde_json::Value {
            serde_json::json!({ "code": format!("{fault:?}") })
        }
    }

    async fn start() -> (RunningSandbox, Arc<Counter>) {
        let backend = Arc::new(Counter(AtomicU32::new(0)));
        let b = backend.clone();
        let api = Router::new().route(
            "/items/{id}",
            get(move || {
                let b = b.clone();
                async move {
                    b.0.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        );
        let psa = Router::new().nest("/v1/api", api);
        let admin = Admin::new(backend.clone(), Faults::default());
        let app = admin::with_admin(psa, admin.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (serve(listener, app, admin).await.unwrap(), backend)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: String) -> T {
        http.get(url).send().await.unwrap().json().await.unwrap()
    }

    async fn post_faults(http: &reqwest::Client, base: &str, body: serde_json::Value) -> u16 {
        let r = http
            .post(format!("{base}/_sandbox/faults"))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    #[tokio::test]
    async fn admin_api_counts_by_route_template_faults_and_resets() {
        let (sb, _backend) = start().await;
        let http = reqwest::Client::new();
        let base = sb.base_url();
        for id in [1, 2, 3] {
            let r = http
                .get(format!("{base}/v1/api/items/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        // Unknown routes are not PSA calls.
        let r = http.get(format!("{base}/nope")).send().await.unwrap();
        assert_eq!(r.status(), 404);

        let calls: CallReport = get_json(&http, format!("{base}/_sandbox/calls")).await;
        assert_eq!(calls.total, 3);
        assert_eq!(calls.count("GET", "/v1/api/items/{id}"), 3);

        let state: serde_json::Value = get_json(&http, format!("{base}/_sandbox/state")).await;
        assert_eq!(state["hits"], 3);

        assert_eq!(
            post_faults(&http, &base, serde_json::json!({ "rateLimitPerMinute": 1 })).await,
            200
        );
        let ok = http
            .get(format!("{base}/v1/api/items/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let limited = http
            .get(format!("{base}/v1/api/items/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        let retry: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let body: serde_json::Value = limited.json().await.unwrap();
        assert!(
            body["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("RateLimited")),
            "{body}"
        );

        assert_eq!(
            post_faults(&http, &base, serde_json::json!({ "outage": true })).await,
            200
        );
        let down = http
            .get(format!("{base}/v1/api/items/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(down.status(), 503);

        assert_eq!(
            post_faults(&http, &base, serde_json::json!({ "errorRate": 2 })).await,
            400
        );

        let r = http
            .post(format!("{base}/_sandbox/reset"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(sb.admin().calls().total, 0);
        assert_eq!(sb.admin().faults(), Faults::default());
        let state: serde_json::Value = get_json(&http, format!("{base}/_sandbox/state")).await;
        assert_eq!(state["hits"], 0);
    }
}
