//! Embedded, minimal Kubernetes API server for `dev` mode and the end-to-end tests.
//!
//! Real `kubectl` (1.32) and kube-runtime clients talk to it over plain http on loopback with
//! anonymous access. State lives in memory, optionally persisted as a snapshot in a directory.
//! What clients need from the API is recorded in `reference/devcluster.md`; the pieces:
//! `store` (write rules), `discovery`, `openapi`, `table`, `patch`, `watch`, `validation`,
//! `selectors`, `events`, `route` and `http` (handlers), `persist` (snapshots).

pub mod discovery;
pub mod error;
pub mod events;
pub mod http;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod persist;
pub mod protobuf;
pub mod resources;
pub mod route;
pub mod selectors;
pub mod store;
pub mod table;
pub mod tls;
pub mod validation;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{watch as tokio_watch, Notify};
use tokio::task::JoinHandle;

use self::http::AppState;
use self::patch::PatchType;
use self::resources::StorageKey;
use self::store::{Store, Sub, WriteOpts};

/// Settings of one embedded API server.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Directory of the snapshot; `None` keeps everything in memory only.
    pub state_dir: Option<PathBuf>,
    /// Serve https with a generated CA and require a bearer token. Without it only loopback
    /// addresses are served (anonymous plain http).
    pub tls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DevclusterError {
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
    #[error("cannot write kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid manifest: {0}")]
    Manifest(String),
    #[error("{0}")]
    Api(#[from] error::ApiError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("refusing anonymous plain http on {0}: use --tls (https and a bearer token) or a loopback address")]
    NotLoopback(SocketAddr),
}

/// A running server. Dropping it does not stop it; call [`DevCluster::shutdown`].
pub struct DevCluster {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: tokio_watch::Sender<bool>,
    server: JoinHandle<()>,
    reaper: JoinHandle<()>,
    persister: Option<JoinHandle<()>>,
    state_dir: Option<PathBuf>,
    tls: Option<tls::TlsMaterial>,
}

/// How long the persister waits after a write before saving, so bursts coalesce.
const SAVE_DELAY: Duration = Duration::from_millis(200);

/// A terminating namespace keeps its contents this long (clients delete them meanwhile).
const NAMESPACE_GRACE: Duration = Duration::from_secs(2);

/// How often terminating namespaces are checked.
const REAP_EVERY: Duration = Duration::from_millis(250);

/// Events are kept this long after they were last seen, as by the apiserver's default `--event-ttl`.
const EVENT_TTL_MINUTES: i64 = 60;

impl DevCluster {
    /// Serves on an already bound listener (bind `127.0.0.1:0` in tests).
    pub async fn start(
        listener: tokio::net::TcpListener,
        config: Config,
    ) -> Result<DevCluster, DevclusterError> {
        let addr = listener.local_addr().map_err(DevclusterError::Listen)?;
        if !config.tls && !addr.ip().is_loopback() {
            return Err(DevclusterError::NotLoopback(addr));
        }
        let material = if config.tls {
            Some(tls::generate(addr.ip())?)
        } else {
            None
        };
        let mut store = match &config.state_dir {
            Some(dir) => persist::load(dir)?,
            None => Store::new(),
        };
        store.set_namespace_grace(NAMESPACE_GRACE);
        let (stop, stop_rx) = tokio_watch::channel(false);
        let changed = Arc::new(Notify::new());
        let state = Arc::new(AppState {
            store: Mutex::new(store),
            changed: changed.clone(),
            shutdown: stop_rx.clone(),
            token: material.as_ref().map(|m| m.token.clone()),
        });
        let persister = config.state_dir.clone().map(|dir| {
            let state = state.clone();
            let mut stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = changed.notified() => {}
                        _ = stop_rx.changed() => return,
                    }
                    tokio::time::sleep(SAVE_DELAY).await;
                    if let Err(e) = save_state(&state, &dir) {
                        tracing::warn!(error = %e, "devcluster snapshot not saved");
                    }
                }
            })
        });
        let reaper = {
            let state = state.clone();
            let mut stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REAP_EVERY);
                let mut last_expiry = tokio::time::Instant::now();
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop_rx.changed() => return,
                    }
                    let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
                    let before = store.resource_version();
                    if store.has_terminating_namespaces() {
                        store.collect_garbage();
                    }
                    if last_expiry.elapsed() >= Duration::from_secs(60) {
                        last_expiry = tokio::time::Instant::now();
                        let ttl = chrono::Duration::minutes(EVENT_TTL_MINUTES);
                        store.expire_events(ttl, chrono::Utc::now());
                    }
                    if store.resource_version() != before {
                        state.changed.notify_one();
                    }
                }
            })
        };
        let router = http::router(state.clone());
        let server = match &material {
            Some(m) => spawn_server(tls::TlsListener::new(listener, m)?, router, stop_rx),
            None => spawn_server(listener, router, stop_rx),
        };
        Ok(DevCluster {
            addr,
            state,
            stop,
            server,
            reaper,
            persister,
            state_dir: config.state_dir,
            tls: material,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with `--tls` (an unspecified listen address is
    /// reached through loopback).
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        match self.tls {
            Some(_) => format!("https://{addr}"),
            None => format!("http://{addr}"),
        }
    }

    /// The bearer token clients must send (`--tls` only).
    pub fn token(&self) -> Option<&str> {
        self.tls.as_ref().map(|m| m.token.as_str())
    }

    /// The PEM of the CA that signed the server certificate (`--tls` only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|m| m.ca_pem.as_str())
    }

    /// The kubeconfig for this server.
    pub fn kubeconfig(&self) -> String {
        match &self.tls {
            Some(m) => kubeconfig_yaml_tls(&self.url(), &m.ca_pem, &m.token),
            None => kubeconfig_yaml(&self.url()),
        }
    }

    /// Writes [`DevCluster::kubeconfig`] to `path` (owner-only: it may hold the token).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), DevclusterError> {
        write_file(path, &self.kubeconfig())
    }

    /// Creates or updates objects from multi-document YAML (server-side apply as `manager`);
    /// used to install the CRDs in `dev` mode. Returns how many objects were applied.
    pub fn apply_yaml(&self, yaml: &str, manager: &str) -> Result<usize, DevclusterError> {
        let mut n = 0;
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let obj: Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| DevclusterError::Manifest(e.to_string()))?;
            if obj.is_null() {
                continue;
            }
            self.apply_object(&obj, manager)?;
            n += 1;
        }
        if n > 0 {
            self.state.changed.notify_one();
        }
        Ok(n)
    }

    /// How many stored objects of resource `group`/`plural` in `namespace` satisfy `pred` (the
    /// stored form: `status` as written), counted in place.
    pub fn count(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        let store = self.state.store.lock().unwrap_or_else(|p| p.into_inner());
        store.count(&StorageKey::new(group, plural), Some(namespace), pred)
    }

    fn apply_object(&self, obj: &Value, manager: &str) -> Result<(), DevclusterError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let mut store = self.state.store.lock().unwrap_or_else(|p| p.into_inner());
        let def = store
            .registry()
            .all()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
            .cloned()
            .ok_or_else(|| {
                DevclusterError::Manifest(format!("no resource serves {api_version} {kind}"))
            })?;
        let name = meta::name(obj).to_string();
        let ns = match meta::namespace(obj) {
            "" if def.namespaced => "default".to_string(),
            n => n.to_string(),
        };
        let opts = WriteOpts {
            field_manager: Some(manager.to_string()),
            ..Default::default()
        };
        store.patch(&def, &ns, &name, PatchType::Apply, obj, Sub::Main, &opts)?;
        Ok(())
    }

    /// Stops serving (open watches end), then writes a last snapshot.
    pub async fn shutdown(self) -> Result<(), DevclusterError> {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.reaper.await;
        if let Some(p) = self.persister {
            let _ = p.await;
        }
        if let Some(dir) = &self.state_dir {
            save_state(&self.state, dir)?;
        }
        Ok(())
    }
}

fn spawn_server<L>(
    listener: L,
    router: axum::Router,
    mut stop: tokio_watch::Receiver<bool>,
) -> JoinHandle<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "devcluster server stopped");
        }
    })
}

fn save_state(state: &AppState, dir: &Path) -> Result<(), persist::PersistError> {
    let doc = {
        let store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        persist::encode(&store)
    };
    persist::save(dir, &doc)
}

/// A kubeconfig with one cluster, user and context named `psa-dev`, anonymous over http.
pub fn kubeconfig_yaml(server_url: &str) -> String {
    render_kubeconfig(server_url, "", "user: {}")
}

/// A kubeconfig for `--tls`: the CA inline and the bearer token.
pub fn kubeconfig_yaml_tls(server_url: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    render_kubeconfig(
        server_url,
        &format!("\n    certificate-authority-data: {ca}"),
        &format!("user:\n    token: {token}"),
    )
}

fn render_kubeconfig(server_url: &str, cluster_extra: &str, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: psa-dev
  cluster:
    server: {server_url}{cluster_extra}
users:
- name: psa-dev
  {user}
contexts:
- name: psa-dev
  context:
    cluster: psa-dev
    user: psa-dev
    namespace: default
current-context: psa-dev
preferences: {{}}
"
    )
}

/// Writes [`kubeconfig_yaml`] (anonymous http) to `path`, creating parent directories.
pub fn write_kubeconfig(path: &Path, server_url: &str) -> Result<(), DevclusterError> {
    write_file(path, &kubeconfig_yaml(server_url))
}

fn write_file(path: &Path, text: &str) -> Result<(), DevclusterError> {
    let err = |source| DevclusterError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_points_at_the_server() {
        let y = kubeconfig_yaml("http://127.0.0.1:1234");
        let v: serde_yaml::Value = serde_yaml::from_str(&y).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:1234"
        );
        assert_eq!(v["current-context"], "psa-dev");
    }

    #[tokio::test]
    async fn plain_http_is_refused_off_loopback() {
        let l = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let e = DevCluster::start(l, Config::default()).await.err().unwrap();
        assert!(matches!(e, DevclusterError::NotLoopback(_)));
    }

    #[test]
    fn tls_kubeconfig_carries_ca_and_token() {
        let y = kubeconfig_yaml_tls("https://127.0.0.1:1", "PEM", "tok");
        let v: serde_yaml::Value = serde_yaml::from_str(&y).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(v["users"][0]["user"]["token"], "tok");
    }

    #[tokio::test]
    async fn apply_yaml_installs_crds_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            state_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dc = DevCluster::start(l, cfg.clone()).await.unwrap();
        let n = dc
            .apply_yaml(&crate::api::crdgen::all_crds_yaml(), "test")
            .unwrap();
        assert_eq!(n, 3);
        dc.shutdown().await.unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dc = DevCluster::start(l, cfg).await.unwrap();
        {
            let store = dc.state.store.lock().unwrap();
            assert!(store
                .registry()
                .get("psa-operator.io", "v1alpha1", "psaconnections")
                .is_some());
        }
        dc.shutdown().await.unwrap();
    }
}
