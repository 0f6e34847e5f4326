//! The embedded API server (`src/devcluster`) driven by the real `kubectl` binary and by kube-rs.
//!
//! kubectl: `$PSA_KUBECTL` or `kubectl` on PATH (`.ci/install-tools` installs it). Each test starts
//! its own server on 127.0.0.1:0 with its own kubeconfig and discovery cache.

mod controller;
mod kube_client;
mod kubectl;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use psa_operator::devcluster::{Config, DevCluster};

/// Generous bound for one kubectl call on a loaded 2-core machine.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(120);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> String {
    repo()
        .join("tests/fixtures/devcluster")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn kubectl_binary() -> PathBuf {
    std::env::var_os("PSA_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// One running devcluster with a kubeconfig and a private kubectl cache.
pub struct Cluster {
    pub server: DevCluster,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let server = DevCluster::start(listener, config)
            .await
            .expect("devcluster starts");
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Cluster {
            server,
            dir,
            kubeconfig,
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("kube-cache")
    }

    /// Runs kubectl against this server.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new(kubectl_binary());
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.cache_dir())
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        let out = tokio::time::timeout(KUBECTL_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
            .unwrap_or_else(|e| panic!("cannot run kubectl ({e}); set PSA_KUBECTL"));
        out
    }

    /// Runs kubectl and returns stdout, failing the test with stderr when it fails.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub async fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Applies `crds/` and waits until every CRD is Established.
    pub async fn install_crds(&self) {
        let crds = repo().join("crds");
        let out = self.kubectl_ok(&["apply", "-f", path_str(&crds)]).await;
        assert_eq!(out.matches(" created").count(), 3, "{out}");
        self.kubectl_ok(&[
            "wait",
            "--for",
            "condition=established",
            "crd",
            "--all",
            "--timeout=60s",
        ])
        .await;
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig reads");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("kubeconfig is valid");
        kube::Client::try_from(config).expect("client")
    }
}

/// A server configuration that snapshots into `dir`.
pub fn persistent(dir: &Path) -> Config {
    Config {
        state_dir: Some(dir.to_path_buf()),
        ..Default::default()
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
