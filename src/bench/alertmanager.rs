//! A real Prometheus Alertmanager on loopback, the peer `bench intake` is compared with.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;
use tokio::process::{Child, Command};

/// Where the Debian package installs it (`.ci/install-tools`).
pub const DEFAULT_BINARY: &str = "/usr/bin/prometheus-alertmanager";

/// One route to a receiver that sends nothing: the measurement is Alertmanager's intake.
const CONFIG: &str = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n";

pub struct Alertmanager {
    child: Child,
    pub base: String,
    pub version: String,
}

impl Alertmanager {
    /// Starts the binary with its own config and storage under `dir`; waits for `/-/ready`.
    pub async fn start(binary: &Path, dir: &Path) -> anyhow::Result<Alertmanager> {
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .await
            .with_context(|| {
                format!(
                    "running {} (install it with .ci/install-tools)",
                    binary.display()
                )
            })?;
        let version_text = String::from_utf8_lossy(&version.stdout).to_string()
            + &String::from_utf8_lossy(&version.stderr);
        let version = version_text
            .split_whitespace()
            .skip_while(|w| *w != "version")
            .nth(1)
            .unwrap_or("unknown")
            .to_string();
        let config = dir.join("alertmanager.yml");
        std::fs::write(&config, CONFIG)?;
        let storage = dir.join("alertmanager-data");
        std::fs::create_dir_all(&storage)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.join("alertmanager.log"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let am = Alertmanager {
            child,
            base: format!("http://127.0.0.1:{port}"),
            version,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = http
                .get(format!("{}/-/ready", am.base))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                return Ok(am);
            }
            if Instant::now() > deadline {
                bail!("Alertmanager did not become ready on {}", am.base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn alerts_url(&self) -> String {
        format!("{}/api/v2/alerts", self.base)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The same alerts as the intake measurement, in Alertmanager's `postableAlerts` shape, chunked
/// into request bodies of `batch` (every body is an array; Alertmanager accepts nothing else).
/// `round` makes each round's label sets new (Alertmanager would otherwise update, not add).
pub fn request_bodies(alerts: usize, batch: usize, round: usize) -> Vec<String> {
    let all: Vec<_> = (0..alerts)
        .map(|i| {
            json!({
                "labels": {
                    "alertname": "Too Many Downloads",
                    "organization": format!("Org {}", i % 50),
                    "user": format!("user{}@example.com", i % 500),
                    "id": format!("tp-{round}-{i}"),
                    "severity": "critical",
                },
                "annotations": {"description": "412 files downloaded from SharePoint in 10 minutes"},
                "startsAt": "2026-11-24T16:18:28Z",
            })
        })
        .collect();
    all.chunks(batch.max(1))
        .map(|c| serde_json::Value::Array(c.to_vec()).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_arrays_of_batch_size_with_distinct_label_sets() {
        let bodies = request_bodies(5, 2, 0);
        assert_eq!(bodies.len(), 3);
        let first: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(first.as_array().unwrap().len(), 2);
        assert_ne!(first[0]["labels"], first[1]["labels"]);
        let last: serde_json::Value = serde_json::from_str(&bodies[2]).unwrap();
        assert_eq!(last.as_array().unwrap().len(), 1);
        let next_round: serde_json::Value =
            serde_json::from_str(&request_bodies(5, 2, 1)[0]).unwrap();
        assert_ne!(first[0]["labels"], next_round[0]["labels"]);
    }
}
