//! Where `plan` and `import` get a connection's PSA credentials: the Secret in the input YAML,
//! else the Secret in the cluster (`--kubeconfig`), else the offline sandbox's seed.

use std::path::Path;

use crate::api::PsaConnection;
use crate::controller::secrets::{decode_secret, read_secret, SecretData};

use super::resource_set::ResourceSet;

/// Which kubeconfig `plan` and `import` read: `--kubeconfig`, else `$KUBECONFIG` (every file
/// of the list, merged as kubectl merges them), else none (no cluster is asked).
pub fn kubeconfig_source(
    flag: Option<&Path>,
    env: Option<std::ffi::OsString>,
) -> Option<KubeconfigSource> {
    match (flag, env) {
        (Some(p), _) => Some(KubeconfigSource::File(p.to_path_buf())),
        (None, Some(v)) if !v.is_empty() => Some(KubeconfigSource::Env),
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeconfigSource {
    File(std::path::PathBuf),
    Env,
}

/// The cluster `plan` and `import` read Secrets and live resources from, if any.
pub async fn optional_cluster_client(flag: Option<&Path>) -> anyhow::Result<Option<kube::Client>> {
    use anyhow::Context as _;
    match kubeconfig_source(flag, std::env::var_os("KUBECONFIG")) {
        None => Ok(None),
        Some(KubeconfigSource::File(p)) => Ok(Some(cluster_client(&p).await?)),
        Some(KubeconfigSource::Env) => {
            let kc = kube::config::Kubeconfig::from_env()
                .context("cannot read the kubeconfig files of $KUBECONFIG")?
                .context("$KUBECONFIG names no kubeconfig file")?;
            let cfg = kube::Config::from_custom_kubeconfig(
                kc,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .context("the kubeconfig of $KUBECONFIG is not usable")?;
            Ok(Some(kube::Client::try_from(cfg)?))
        }
    }
}

/// A kube client from a kubeconfig file (its current context).
pub async fn cluster_client(path: &Path) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("kubeconfig {} is not usable", path.display()))?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Credentials and a sentence saying where they came from (never their values).
pub struct Credentials {
    pub data: SecretData,
    pub source: String,
}

/// Looks the connection's credentials Secret up in the input, then in the cluster; `fallback`
/// (the offline seed's) last. `Err` says what was tried.
pub async fn credentials_for(
    conn: &PsaConnection,
    namespace: &str,
    set: &ResourceSet,
    cluster: Option<&kube::Client>,
    fallback: Option<(&SecretData, &str)>,
) -> Result<Credentials, String> {
    let Some(name) = conn.spec.provider.credentials_secret_name() else {
        return Err("the connection sets no provider".into());
    };
    if let Some(s) = set.secret(namespace, name) {
        return decode_secret(&s.obj)
            .map(|data| Credentials {
                data,
                source: format!("Secret {name:?} in the input"),
            })
            .map_err(|e| e.to_string());
    }
    if let Some(client) = cluster {
        let ns = if namespace.is_empty() {
            client.default_namespace()
        } else {
            namespace
        };
        match read_secret(client, ns, name).await {
            Ok(data) => {
                return Ok(Credentials {
                    data,
                    source: format!("Secret {name:?} in namespace {ns:?} of the cluster"),
                })
            }
            Err(e) if fallback.is_none() => return Err(e.to_string()),
            Err(_) => {}
        }
    }
    if let Some((data, what)) = fallback {
        return Ok(Credentials {
            data: data.clone(),
            source: what.to_string(),
        });
    }
    Err(format!(
        "Secret {name:?} is neither in the input nor readable (pass it in the input or use --kubeconfig)"
    ))
}

#[cfg(test)]
mod kubeconfig_tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_environment_then_no_cluster() {
        let flag = Path::new("/tmp/kc");
        assert_eq!(
            kubeconfig_source(Some(flag), Some("/other".into())),
            Some(KubeconfigSource::File(flag.to_path_buf()))
        );
        assert_eq!(
            kubeconfig_source(None, Some("/a:/b".into())),
            Some(KubeconfigSource::Env)
        );
        assert_eq!(kubeconfig_source(None, Some("".into())), None);
        assert_eq!(kubeconfig_source(None, None), None);
    }
}
