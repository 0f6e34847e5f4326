//! A benchmark's environment: the embedded Kubernetes API server (in this process), PSA
//! sandboxes (in this process, so their call counters are read directly) and the operator as a
//! separate `psa-operator run` process (so its memory is its own).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::Client;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::manifests::NAMESPACE;
use crate::api::crdgen::all_crds_yaml;
use crate::api::PsaConnection;
use crate::devcluster::{self, DevCluster};
use crate::operator::kube_client;
use crate::sandbox::RunningSandbox;

/// Field manager name of everything a benchmark applies.
const MANAGER: &str = "psa-operator-bench";

pub struct BenchEnv {
    pub dir: tempfile::TempDir,
    pub cluster: DevCluster,
    pub kubeconfig: PathBuf,
    pub client: Client,
    pub http: reqwest::Client,
    operator: Option<Child>,
    pub intake_port: u16,
    pub metrics_port: u16,
}

/// A port that was free a moment ago (the operator binds it itself).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Listener on an ephemeral loopback port.
pub async fn loopback() -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind("127.0.0.1:0").await?)
}

fn ready(conditions: Option<&Vec<Condition>>) -> bool {
    conditions
        .map(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        .unwrap_or(false)
}

/// `Ready=True` among the conditions of a stored object.
fn stored_ready(conditions: &Value) -> bool {
    conditions
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

impl BenchEnv {
    /// API server with the CRDs and the benchmark namespace; no operator yet.
    pub async fn start() -> anyhow::Result<BenchEnv> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let cluster = DevCluster::start(
            loopback().await?,
            devcluster::Config {
                state_dir: None,
                tls: false,
            },
        )
        .await?;
        cluster.apply_yaml(&all_crds_yaml(), MANAGER)?;
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig)?;
        let client = kube_client(Some(&kubeconfig)).await?;
        let env = BenchEnv {
            dir,
            cluster,
            kubeconfig,
            client,
            http: reqwest::Client::new(),
            operator: None,
            intake_port: 0,
            metrics_port: 0,
        };
        env.apply(&super::manifests::base_yaml())?;
        Ok(env)
    }

    /// Applies manifests straight into the API server (as `kubectl apply` would, without the
    /// per-object process start-up that would dominate a 10,000-object apply).
    pub fn apply(&self, yaml: &str) -> anyhow::Result<usize> {
        Ok(self.cluster.apply_yaml(yaml, MANAGER)?)
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    /// Starts `psa-operator run` against this API server; its log goes to a file in the temp dir.
    pub fn start_operator(&mut self) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("locating the psa-operator binary")?;
        self.intake_port = free_port()?;
        self.metrics_port = free_port()?;
        let log = std::fs::File::create(self.dir.path().join("operator.log"))?;
        let child = Command::new(exe)
            .arg("run")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--store")
            .arg(self.store_path())
            .args(["--intake-addr", &format!("127.0.0.1:{}", self.intake_port)])
            .args([
                "--metrics-addr",
                &format!("127.0.0.1:{}", self.metrics_port),
            ])
            .env(
                "RUST_LOG",
                std::env::var("PSA_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the operator")?;
        self.operator = Some(child);
        Ok(())
    }

    pub fn operator_pid(&self) -> Option<u32> {
        self.operator.as_ref().and_then(|c| c.id())
    }

    /// The last lines of the operator's log (for error messages).
    pub fn operator_log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("operator.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls `f` every `every` until it returns `Some`, for at most `limit`.
    pub async fn until<T, F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        every: Duration,
        mut f: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = f().await? {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {limit:?} waiting for {what}; operator log:\n{}",
                    self.operator_log_tail()
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    pub async fn wait_connection_ready(&self, name: &str) -> anyhow::Result<()> {
        let api: Api<PsaConnection> = Api::namespaced(self.client.clone(), NAMESPACE);
        self.until(
            &format!("PsaConnection {name} Ready"),
            Duration::from_secs(120),
            Duration::from_millis(100),
            || async {
                let c = api.get_opt(name).await?;
                let ok = c
                    .and_then(|c| c.status)
                    .map(|s| ready(Some(&s.conditions)))
                    .unwrap_or(false);
                Ok(ok.then_some(()))
            },
        )
        .await
    }

    /// How many CustomerMappings of the namespace are Ready, counted in the API server's store
    /// (in this process). Listing 10,000 mappings over HTTP four times a second cost the
    /// machine more than the operator's own work and slowed what it measured.
    pub async fn mappings_ready(&self) -> anyhow::Result<usize> {
        Ok(self
            .cluster
            .count(crate::api::GROUP, "customermappings", NAMESPACE, |m| {
                stored_ready(&m["status"]["conditions"])
            }))
    }

    /// A gauge or counter of the operator's `/metrics` (summed over label sets).
    pub async fn metric(&self, name: &str) -> anyhow::Result<Option<f64>> {
        let text = self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .send()
            .await?
            .text()
            .await?;
        Ok(metric_value(&text, name))
    }

    /// POSTs one JSON body to a connection's `/alerts` and requires 202.
    pub async fn post_alerts(
        &self,
        connection: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(self.alerts_url(connection))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        if status != reqwest::StatusCode::ACCEPTED {
            bail!(
                "intake answered {status}: {}",
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    pub fn alerts_url(&self, connection: &str) -> String {
        format!(
            "http://127.0.0.1:{}/v1/namespaces/{NAMESPACE}/connections/{connection}/alerts",
            self.intake_port
        )
    }

    /// Waits until the operator has no queued events and `sandbox` saw no new call for `quiet`:
    /// everything the posted alerts cause has happened.
    pub async fn settle(&self, sandbox: &RunningSandbox, quiet: Duration) -> anyhow::Result<()> {
        // (calls seen, when that count or a non-empty queue was last observed)
        let last = std::cell::Cell::new((u64::MAX, Instant::now()));
        self.until(
            "the dispatcher to go idle",
            Duration::from_secs(300),
            Duration::from_millis(50),
            || async {
                let total = sandbox.admin().calls().total;
                let depth = self
                    .metric("psa_operator_dispatch_queue_depth")
                    .await?
                    .unwrap_or(0.0);
                if total != last.get().0 || depth > 0.0 {
                    last.set((total, Instant::now()));
                    return Ok(None);
                }
                Ok((last.get().1.elapsed() >= quiet).then_some(()))
            },
        )
        .await
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.operator.take() {
            let _ = c.kill().await;
        }
        self.cluster.shutdown().await?;
        if std::env::var_os("PSA_BENCH_KEEP").is_some() {
            // For profiling a run afterwards: the operator's log and store stay on disk.
            eprintln!("bench files kept in {}", self.dir.keep().display());
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Sum of a metric's samples in Prometheus/OpenMetrics text (`None` when absent).
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn metric_values_are_summed_over_labels_and_prefixes_do_not_match() {
        let text = "# TYPE x gauge\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3\nx_total_more 9\nq 7\n";
        assert_eq!(metric_value(text, "x_total"), Some(5.0));
        assert_eq!(metric_value(text, "q"), Some(7.0));
        assert_eq!(metric_value(text, "missing"), None);
    }
}
