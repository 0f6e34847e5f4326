//! Autotask PSA (Datto/Kaseya) REST API v1.0 client behind the neutral [`Psa`] trait.
//!
//! Facts come from `reference/specs/autotask-rest-v1-swagger.json` (the document Autotask
//! serves) and `reference/psa-apis/autotask.md`; choices where they are silent are in
//! `docs/providers/autotask.md`. The module is laid out like every provider should be:
//!
//! | file           | what it holds                                                            |
//! |----------------|--------------------------------------------------------------------------|
//! | `transport.rs` | zone discovery, credential headers, one limited call, query paging       |
//! | `limits.rs`    | the database's shared hourly threshold, our share, 3 requests/endpoint   |
//! | `wire.rs`      | the client's own serde types of Autotask's JSON                          |
//! | `convert.rs`   | pure conversions and decisions (table-tested)                            |
//! | `directory.rs` | companies, contacts, picklists (statuses, queues, types, …)              |
//! | `tickets.rs`   | tickets (marker in `externalID`), notes, closing                         |
//! | `billing.rs`   | contracts, the `Services` catalog, contract services and their units     |
//!
//! # Calls per operation
//! Each method's doc gives the calls it makes. Add one `ZoneInformation` call for the first call
//! of a client without a configured zone, and one `ThresholdInformation` call at most once a
//! minute (the database's use, see [`limits`]).

mod billing;
mod convert;
mod directory;
pub mod limits;
mod tickets;
mod transport;
mod wire;

/// The minimal ticket create that works on live tenants: companyID, title, status, priority and a
/// queue (or an assigned resource with its role, which psa-operator never sets). The REST
/// document marks no property required, so this comes from the provider notes.
pub const REQUIRED_TICKET_SETTINGS: &[RequiredTicketSetting] = &[
    RequiredTicketSetting::new("board", "queueID")
        .because(" (a queue: without one Autotask needs an assigned resource, and psa-operator assigns no one)"),
    RequiredTicketSetting::new("status", "status"),
    RequiredTicketSetting::new("priority", "priority"),
];

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;

pub use limits::AutotaskLimits;

use self::transport::Transport;
use self::wire::{WField, WFields, WPicklistValue};
use super::{
    Company, Contact, Named, Provider, Psa, PsaError, PsaResult, RequiredTicketSetting, StatusInfo,
};
use crate::secret::SecretString;

/// Where zone discovery asks when no zone is configured.
pub const DISCOVERY_URL: &str = "https://webservices.autotask.net/atservicesrest";

/// How long a picklist read from `entityInformation/fields` is reused: settings resolution asks
/// for seven ticket picklists in a row, all in one answer.
const FIELDS_TTL: Duration = Duration::from_secs(60);

/// Everything [`AutotaskClient::new`] needs; the factory fills it from a `PsaConnection` and its
/// Secret (`secret`, `integrationCode`).
#[derive(Clone, Debug)]
pub struct AutotaskConfig {
    /// The zone's REST root (`https://webservices15.autotask.net/atservicesrest/`); discovered
    /// from the API user when absent.
    pub zone_url: Option<String>,
    /// Where zone discovery asks (Autotask's global host; a sandbox in tests).
    pub discovery_url: String,
    /// The API-only user's e-mail (header `UserName`).
    pub username: String,
    /// The API user's secret (header `Secret`).
    pub secret: SecretString,
    /// The integration's tracking identifier (header `ApiIntegrationCode`).
    pub integration_code: SecretString,
    pub limits: AutotaskLimits,
    pub timeout: Duration,
}

impl AutotaskConfig {
    pub fn new(
        zone_url: Option<String>,
        username: impl Into<String>,
        secret: impl Into<SecretString>,
        integration_code: impl Into<SecretString>,
    ) -> Self {
        AutotaskConfig {
            zone_url,
            discovery_url: DISCOVERY_URL.to_string(),
            username: username.into(),
            secret: secret.into(),
            integration_code: integration_code.into(),
            limits: AutotaskLimits::default(),
            timeout: crate::psa::DEFAULT_TIMEOUT,
        }
    }
}

type FieldCache = HashMap<&'static str, (Instant, Arc<Vec<WField>>)>;

/// An Autotask client. Cheap to share behind `Arc<dyn Psa>`.
pub struct AutotaskClient {
    t: Transport,
    fields: Mutex<FieldCache>,
}

impl AutotaskClient {
    /// Builds a client; nothing is sent until the first call.
    pub fn new(config: AutotaskConfig) -> PsaResult<Self> {
        Ok(AutotaskClient {
            t: Transport::new(config)?,
            fields: Mutex::new(HashMap::new()),
        })
    }

    /// The share (0–1) of the Autotask database's hourly threshold in use at the last reading.
    pub fn database_share(&self) -> Option<f64> {
        self.t.limits.share()
    }

    /// The fields of an entity (1 call, reused for [`FIELDS_TTL`]).
    async fn fields(&self, entity: &'static str) -> PsaResult<Arc<Vec<WField>>> {
        let cached = {
            let map = self.fields.lock().unwrap_or_else(|p| p.into_inner());
            map.get(entity)
                .filter(|(at, _)| at.elapsed() < FIELDS_TTL)
                .map(|(_, f)| f.clone())
        };
        if let Some(f) = cached {
            return Ok(f);
        }
        let path = format!("/V1.0/{entity}/entityInformation/fields");
        let v = self.t.call(Method::GET, &path, None).await?;
        let fields: WFields = transport::decode("field information", v)?;
        let fields = Arc::new(fields.fields);
        self.fields
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entity, (Instant::now(), fields.clone()));
        Ok(fields)
    }

    /// The values of one picklist field of an entity (all of them, active or not).
    async fn picklist(&self, entity: &'static str, field: &str) -> PsaResult<Vec<WPicklistValue>> {
        let fields = self.fields(entity).await?;
        let f = fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(field))
            .ok_or_else(|| PsaError::Permanent {
                status: None,
                message: format!("Autotask's {entity} fields carry no {field} picklist"),
            })?;
        Ok(f.picklist_values.clone().unwrap_or_default())
    }

    /// Active values of a picklist as neutral names.
    async fn named_picklist(&self, entity: &'static str, field: &str) -> PsaResult<Vec<Named>> {
        Ok(convert::active_values(&self.picklist(entity, field).await?)
            .iter()
            .map(convert::named)
            .collect())
    }
}

#[async_trait]
impl Psa for AutotaskClient {
    fn provider(&self) -> Provider {
        Provider::Autotask
    }
    /// 1 call: `GET /V1.0/ThresholdInformation` (authenticated, cheap, and tells the share used).
    async fn verify(&self) -> PsaResult<()> {
        self.verify_credentials().await
    }
    fn shared_budget(&self) -> Option<super::SharedBudget> {
        self.t.limits.shared_budget()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secret_and_tracking_identifier() {
        let c = AutotaskConfig::new(
            None,
            "api@msp.example",
            "s3cr3t-pw",
            "TRACKINGID27CHARSLONGXXXXXX",
        );
        let shown = format!("{c:?}");
        assert!(shown.contains("api@msp.example"), "{shown}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(!shown.contains("TRACKINGID27"), "{shown}");
    }
}
