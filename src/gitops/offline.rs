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
    let v: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("not a YAML seed: {e}"))?;
    let has = |k: &str| v.get(k).is_some();
    match (
        has("companyId") && has("publicKey"),
        has("tenant") && has("users"),
        has("apiUsers"),
    ) {
        (true, false, false) => Ok(Provider::ConnectWise),
        (false, true, false) => Ok(Provider::KaseyaBms),
        (false, false, true) => Ok(Provider::Autotask),
        _ => Err(
            "cannot tell the PSA of this seed: a ConnectWise seed has companyId and publicKey, \
             a Kaseya BMS seed has tenant and users, an Autotask seed has apiUsers"
                .into(),
        ),
    }
}

fn secret_data(name: &str, entries: &[(&str, &str)]) -> SecretData {
    SecretData {
        name: name.to_string(),
        resource_version: String::new(),
        entries: entries
            .iter()
            .map(|(k, v)| (k.to_string(), SecretString::new(v.to_string())))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Starts the sandbox of `path`'s provider on a loopback port.
pub async fn start(path: &Path) -> Result<OfflinePsa, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let provider = detect_provider(&text).map_err(|e| format!("{shown}: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    let (sandbox, credentials) = match provider {
        Provider::ConnectWise => {
            use crate::sandbox::connectwise;
            let seed = connectwise::seed::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
            let creds = secret_data(
                "seed",
                &[
                    ("publicKey", &seed.public_key),
                    ("privateKey", &seed.private_key),
                ],
            );
            let running = connectwise::start(listener, seed, Faults::default())
                .await
                .map_err(|e| format!("cannot start the ConnectWise sandbox: {e}"))?;
            (running, creds)
        }
        Provider::KaseyaBms => {
            use crate::sandbox::bms;
            let seed = bms::seed::Seed::from_yaml(&text).map_err(|e| format!("{shown}: {e}"))?;
            let user = seed
                .users
                .first()
                .ok_or_else(|| format!("{shown}: the seed has no user"))?;
            let creds = secret_data(
                "seed",
                &[("username", &user.user_name), ("password", &user.password)],
            );
            let running = bms::start(listener, seed, Faults::default())
                .await
                .map_err(|e| format!("cannot start the Kaseya BMS sandbox: {e}"))?;
            (running, creds)
        }
        Provider::Autotask => {
            use crate::sandbox::autotask;
            let seed =
                autotask::seed::Seed::from_yaml(&text).map_err(|e| format!("{shown}: {e}"))?;
            let user = seed
                .api_users
                .first()
                .ok_or_else(|| format!("{shown}: the seed has no API user"))?;
            let creds = secret_data(
                "seed",
                &[
                    ("secret", &user.secret),
                    ("integrationCode", &user.integration_code),
                ],
            );
            let running = autotask::start(listener, seed, Faults::default())
                .await
                .map_err(|e| format!("cannot start the Autotask sandbox: {e}"))?;
            (running, creds)
        }
    };
    Ok(OfflinePsa {
        provider,
        seed_file: shown,
        sandbox,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_told_apart() {
        assert_eq!(
            detect_provider(crate::sandbox::connectwise::seed::DEMO_SEED_YAML),
            Ok(Provider::ConnectWise)
        );
        assert_eq!(
            detect_provider(crate::sandbox::bms::seed::DEMO_SEED_YAML),
            Ok(Provider::KaseyaBms)
        );
        assert_eq!(
            detect_provider(crate::sandbox::autotask::seed::DEMO_SEED_YAML),
            Ok(Provider::Autotask)
        );
        assert!(detect_provider("boards: []\n").is_err());
    }
}
