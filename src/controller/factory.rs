//! Builds PSA clients from a PsaConnection's provider spec and its credentials Secret.
//!
//! Behind a trait so tests can hand the reconcilers a client of their choosing; the production
//! factory builds the ConnectWise, Kaseya BMS or Autotask REST client.

use std::sync::Arc;

use crate::api::ProviderSpec;
use crate::psa::Psa;

use super::secrets::{SecretData, SecretError};

/// Builds a client for a provider with the credentials read from its Secret.
pub trait PsaFactory: Send + Sync {
    fn build(
        &self,
        provider: &ProviderSpec,
        credentials: &SecretData,
    ) -> Result<Arc<dyn Psa>, FactoryError>;
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FactoryError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("invalid provider settings: {0}")]
    Invalid(String),
}

impl FactoryError {
    pub fn reason(&self) -> &'static str {
        match self {
            FactoryError::Secret(e) => e.reason(),
            FactoryError::Invalid(_) => "InvalidProvider",
        }
    }
}

/// Name of the credentials Secret of a provider.
pub fn credentials_secret_name(provider: &ProviderSpec) -> Option<&str> {
    provider.credentials_secret_name()
}

/// The production factory: ConnectWise, Kaseya BMS and Autotask REST clients.
#[derive(Clone, Debug, Default)]
pub struct RealPsaFactory;

impl PsaFactory for RealPsaFactory {
    fn build(
        &self,
        provider: &ProviderSpec,
        credentials: &SecretData,
    ) -> Result<Arc<dyn Psa>, FactoryError> {
        match crate::providers::ProviderRef::only(provider) {
            Some(selected) => selected.build_client(credentials),
            None => Err(FactoryError::Invalid(
                "exactly one provider must be set".into(),
            )),
        }
    }
}
