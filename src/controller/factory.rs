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
    match (
        &provider.connect_wise,
        &provider.kaseya_bms,
        &provider.autotask,
    ) {
        (Some(cw), _, _) => Some(&cw.credentials_secret_ref.name),
        (None, Some(bms), _) => Some(&bms.credentials_secret_ref.name),
        (None, None, Some(at)) => Some(&at.credentials_secret_ref.name),
        _ => None,
    }
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
        use crate::psa::autotask::{AutotaskClient, AutotaskConfig};
        use crate::psa::bms::{BmsClient, BmsConfig};
        use crate::psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
        match (
            &provider.connect_wise,
            &provider.kaseya_bms,
            &provider.autotask,
        ) {
            (Some(cw), None, None) => {
                let mut cfg = ConnectWiseConfig::new(
                    cw.url.trim_end_matches('/'),
                    cw.company_id.clone(),
                    cw.client_id.clone(),
                    credentials.require("publicKey")?,
                    credentials.require("privateKey")?,
                );
                cfg.codebase = cw.codebase.clone();
                cfg.process_notifications = cw.process_notifications.unwrap_or(false);
                let client = ConnectWiseClient::new(cfg)
                    .map_err(|e| FactoryError::Invalid(e.to_string()))?;
                Ok(Arc::new(client))
            }
            (None, Some(bms), None) => {
                let mut cfg = BmsConfig::new(
                    bms.url.trim_end_matches('/'),
                    bms.tenant.clone(),
                    credentials.require("username")?.expose(),
                    credentials.require("password")?,
                );
                if let Some(t) = &bms.lookup_tables {
                    let tables = &mut cfg.lookup_tables;
                    for (name, slot) in [
                        (&t.ticket_type, &mut tables.ticket_type),
                        (&t.ticket_source, &mut tables.ticket_source),
                        (&t.note_type, &mut tables.note_type),
                    ] {
                        if let Some(n) = name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                            *slot = n.to_string();
                        }
                    }
                }
                let client =
                    BmsClient::new(cfg).map_err(|e| FactoryError::Invalid(e.to_string()))?;
                Ok(Arc::new(client))
            }
            (None, None, Some(at)) => {
                let cfg = AutotaskConfig::new(
                    at.zone_url.clone(),
                    at.username.clone(),
                    credentials.require("secret")?,
                    credentials.require("integrationCode")?,
                );
                let client =
                    AutotaskClient::new(cfg).map_err(|e| FactoryError::Invalid(e.to_string()))?;
                Ok(Arc::new(client))
            }
            _ => Err(FactoryError::Invalid(
                "exactly one provider must be set".into(),
            )),
        }
    }
}
