//! `plan --offline-psa-seed FILE`: a PSA sandbox started in this process from a seed file,
//! standing in for the live PSA of every connection of the seed's provider.

use std::collections::BTreeMap;
use std::path::Path;

use crate::controller::secrets::SecretData;
use crate::psa::Provider;
use crate::sandbox::{Faults, RunningSandbox};
use crate::secret::SecretString;

/// A running sandbox and the credentials its seed accepts.
pub struct OfflinePsa {
    pub provider: Provider,
    pub seed_file: String,
    pub sandbox: RunningSandbox,
    /// Used when neither the input nor the cluster has the connection's Secret.
    pub credentials: SecretData,
}

/// Which PSA a seed file is for, from its top-level keys.
pub fn detect_provider(text: &str) -> Result<Provider, String> {
    crate::providers::seed_provider(text)
}

/// Starts the sandbox of `path`'s provider on a loopback port.
pub async fn start(path: &Path) -> Result<OfflinePsa, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let provider = detect_provider(&text).map_err(|e| format!("{shown}: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    let (sandbox, entries) = provider
        .start_sandbox(listener, Some(&text), Faults::default())
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    let credentials = SecretData {
        name: "seed".to_string(),
        resource_version: String::new(),
        entries: entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), SecretString::new(v)))
            .collect::<BTreeMap<_, _>>(),
    };
    Ok(OfflinePsa {
        provider,
        seed_file: shown,
        sandbox,
        credentials,
    })
}
