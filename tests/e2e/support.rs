//! Shared helpers of the end-to-end tests: the operator as a process, free ports, and
//! polling with generous deadlines (the machine may be loaded; nothing here asserts on time).

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use psa_operator::devcluster::{Config as DevConfig, DevCluster};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_psa-operator"))
}

/// A free loopback port (bound and released; the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET url` answered with JSON (panics on a transport error or a body that is not `T`).
pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// A request's answer as JSON (panics on a transport error or a body that is not `T`).
pub async fn send_for_json<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    request.send().await.unwrap().json().await.unwrap()
}

/// A request's answer as text (panics on a transport error).
pub async fn send_for_text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// Serves `app` on a free loopback port in the background (a stand-in PSA); its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The namespace the e2e resources live in.
pub const PSA_NAMESPACE_YAML: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: psa}\n";

/// An in-process API server (devcluster) on a free loopback port.
pub async fn dev_cluster() -> DevCluster {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    DevCluster::start(listener, DevConfig::default())
        .await
        .unwrap()
}

/// Writes the cluster's kubeconfig into `dir`; its path.
pub fn kubeconfig_in(cluster: &DevCluster, dir: &Path) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    kubeconfig
}

/// Creates the `psa` namespace on the cluster; a client of the cluster.
pub fn psa_namespace_and_client(cluster: &DevCluster) -> kube::Client {
    cluster.apply_yaml(PSA_NAMESPACE_YAML, "test").unwrap();
    kube_client(cluster)
}

/// A client of the cluster.
pub fn kube_client(cluster: &DevCluster) -> kube::Client {
    kube::Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap()
}

/// `psa-operator sandbox <args>` as a process of its own (killed when dropped) and the URL it
/// announced on its first line (`listening on <url>`).
pub async fn sandbox_process<I, S>(args: I) -> (tokio::process::Child, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(bin())
        .arg("sandbox")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
        .await
        .expect("the sandbox announced itself in time")
        .unwrap()
        .unwrap_or_default();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

/// The value of `series` (a metric name with its labels, if any) in the `/metrics` of the
/// process listening on `port`; `None` while it does not answer or does not show the series.
pub async fn metric(port: u16, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A child process killed when dropped; its stderr goes to a log file for post-mortems.
pub struct ChildGuard {
    pub child: Child,
    pub log: PathBuf,
}

impl ChildGuard {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `psa-operator run` against a kubeconfig; returns the guard and the intake/metrics ports.
pub fn start_operator(
    dir: &Path,
    kubeconfig: &Path,
    extra_env: &[(&str, &str)],
) -> (ChildGuard, u16, u16) {
    let intake = free_port();
    let metrics = free_port();
    let log = dir.join(format!("operator-{intake}.log"));
    let mut cmd = Command::new(bin());
    cmd.args([
        "run",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--store",
        dir.join("store.db").to_str().unwrap(),
        "--intake-addr",
        &format!("127.0.0.1:{intake}"),
        "--metrics-addr",
        &format!("127.0.0.1:{metrics}"),
    ])
    .env("RUST_LOG", "info,psa_operator=debug")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("operator starts");
    (ChildGuard { child, log }, intake, metrics)
}
