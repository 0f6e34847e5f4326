//! Reading referenced Secrets. Values go straight into `SecretString`; errors name the Secret and
//! the key, never a value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::secret::SecretString;

/// A Secret's decoded entries (`data`, with `stringData` already folded in by the API server).
#[derive(Clone, Debug, Default)]
pub struct SecretData {
    pub name: String,
    pub resource_version: String,
    pub entries: BTreeMap<String, SecretString>,
}

/// Why a referenced Secret is unusable.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("Secret {name:?} not found")]
    NotFound { name: String },
    #[error("Secret {name:?} has no key {key:?}")]
    MissingKey { name: String, key: String },
    #[error("Secret {name:?} key {key:?} is not valid UTF-8")]
    NotUtf8 { name: String, key: String },
    #[error("reading Secret {name:?} failed: {message}")]
    Api { name: String, message: String },
}

impl SecretError {
    pub fn reason(&self) -> &'static str {
        match self {
            SecretError::NotFound { .. } => "SecretNotFound",
            SecretError::MissingKey { .. } | SecretError::NotUtf8 { .. } => "SecretKeyMissing",
            SecretError::Api { .. } => "SecretUnreadable",
        }
    }

    /// API errors other than "not found" are worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, SecretError::Api { .. })
    }
}

impl SecretData {
    /// A required key.
    pub fn require(&self, key: &str) -> Result<SecretString, SecretError> {
        self.entries
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| SecretError::MissingKey {
                name: self.name.clone(),
                key: key.to_string(),
            })
    }

    /// An optional key (absent or empty = `None`).
    pub fn optional(&self, key: &str) -> Option<SecretString> {
        self.entries.get(key).filter(|v| !v.is_empty()).cloned()
    }
}

/// Decodes a Secret object (pure; used by tests and by `read_secret`).
pub fn decode_secret(secret: &Secret) -> Result<SecretData, SecretError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let mut entries = BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        let s = String::from_utf8(v.0.clone()).map_err(|_| SecretError::NotUtf8 {
            name: name.clone(),
            key: k.clone(),
        })?;
        entries.insert(
            k.clone(),
            SecretString::new(s.trim_end_matches(['\n', '\r']).to_string()),
        );
    }
    // Servers fold stringData into data; a Secret built in memory may still carry it.
    for (k, v) in secret.string_data.iter().flatten() {
        entries.insert(k.clone(), SecretString::new(v.clone()));
    }
    Ok(SecretData {
        name,
        resource_version: secret.metadata.resource_version.clone().unwrap_or_default(),
        entries,
    })
}

/// Reads and decodes a Secret in `namespace`.
pub async fn read_secret(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<SecretData, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(s)) => decode_secret(&s),
        Ok(None) => Err(SecretError::NotFound {
            name: name.to_string(),
        }),
        Err(e) => Err(SecretError::Api {
            name: name.to_string(),
            message: e.to_string(),
        }),
    }
}
