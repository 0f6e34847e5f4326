//! Shared helpers of the end-to-end tests: the operator as a process, free ports, and
//! polling with generous deadlines (the machine may be loaded; nothing here asserts on time).

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
