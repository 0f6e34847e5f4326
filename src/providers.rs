//! The one place that lists the PSAs. Everything that depends on *which* PSA a connection uses
//! asks here: the member of `spec.provider` that is set ([`ProviderRef`]), the client it builds
//! and the Secret keys it reads, its default budget and required ticket settings, its sandbox and
//! the seed files that start one, its `psa-operator sandbox` name.
//!
//! A new PSA adds its CRD member (`api/connection.rs`), its folders (`psa/<p>/`,
//! `sandbox/<p>/`), its [`Provider`] variant and one arm to each match below; nothing else
//! names a provider.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{
    AutotaskProvider, ConnectWiseProvider, KaseyaBmsProvider, ProviderSpec, SecretRef,
};
use crate::controller::factory::FactoryError;
use crate::controller::secrets::SecretData;
use crate::psa::{self, Psa, RequiredTicketSetting, UNMETERED};
use crate::sandbox::{self, Faults, RunningSandbox};

/// Which PSA a client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    ConnectWise,
    KaseyaBms,
    Autotask,
}

impl Provider {
    /// Every PSA psa-operator talks to, in the order lists show them.
    pub const ALL: [Provider; 3] = [
        Provider::ConnectWise,
        Provider::KaseyaBms,
        Provider::Autotask,
    ];

    /// The default `dispatch.requestsPerHour`, from each PSA's documented limits: ConnectWise
    /// documents none (it answers 429 with `Retry-After` when busy); Kaseya BMS allows 1,500
    /// requests per hour per endpoint, so 1,500 for the connection never exceeds it.
    pub fn default_requests_per_hour(self) -> u32 {
        match self {
            Provider::ConnectWise => UNMETERED,
            Provider::KaseyaBms => 1500,
            // 10,000 an hour per database, shared with every other integration: half of it
            // (the client's own share guard keeps to the same figure).
            Provider::Autotask => 5000,
        }
    }

    /// The name status, metrics and `kind_name` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::ConnectWise => "ConnectWise",
            Provider::KaseyaBms => "KaseyaBMS",
            Provider::Autotask => "Autotask",
        }
    }

    /// The provider of a connection's `spec.provider` kind name (`ProviderSpec::kind_name`).
    pub fn from_kind_name(kind: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == kind)
    }

    /// Ticket settings this PSA cannot create a ticket without (from the vendor's document);
    /// a connection that leaves one unset is refused at reconcile, `validate` and `plan`.
    pub fn required_ticket_settings(self) -> &'static [RequiredTicketSetting] {
        match self {
            Provider::ConnectWise => psa::connectwise::REQUIRED_TICKET_SETTINGS,
            Provider::KaseyaBms => psa::bms::REQUIRED_TICKET_SETTINGS,
            Provider::Autotask => psa::autotask::REQUIRED_TICKET_SETTINGS,
        }
    }

    /// The name `psa-operator sandbox` takes for this PSA's emulator.
    pub fn sandbox_name(self) -> &'static str {
        match self {
            Provider::ConnectWise => "connectwise",
            Provider::KaseyaBms => "bms",
            Provider::Autotask => "autotask",
        }
    }

    /// Whether a seed file (parsed YAML) is this PSA's, from its top-level keys.
    fn owns_seed(self, seed: &serde_yaml::Value) -> bool {
        let has = |k: &str| seed.get(k).is_some();
        match self {
            Provider::ConnectWise => has("companyId") && has("publicKey"),
            Provider::KaseyaBms => has("tenant") && has("users"),
            Provider::Autotask => has("apiUsers"),
        }
    }

    /// Starts this PSA's sandbox on `listener` from seed YAML (`None`: the demo data), with the
    /// credentials that seed accepts (`(Secret key, value)` as a connection's Secret holds them).
    pub async fn start_sandbox(
        self,
        listener: TcpListener,
        seed_yaml: Option<&str>,
        faults: Faults,
    ) -> Result<(RunningSandbox, SeedCredentials), String> {
        let started = match self {
            Provider::ConnectWise => {
                use sandbox::connectwise as p;
                let seed = match seed_yaml {
                    Some(text) => p::seed::parse(text)?,
                    None => p::demo_seed(),
                };
                let creds = p::seed_credentials(&seed);
                (p::start(listener, seed, faults).await, creds)
            }
            Provider::KaseyaBms => {
                use sandbox::bms as p;
                let seed = match seed_yaml {
                    Some(text) => p::Seed::from_yaml(text).map_err(|e| e.to_string())?,
                    None => p::demo_seed(),
                };
                let creds = p::seed_credentials(&seed)?;
                (p::start(listener, seed, faults).await, creds)
            }
            Provider::Autotask => {
                use sandbox::autotask as p;
                let seed = match seed_yaml {
                    Some(text) => p::seed::Seed::from_yaml(text).map_err(|e| e.to_string())?,
                    None => p::demo_seed(),
                };
                let creds = p::seed_credentials(&seed)?;
                (p::start(listener, seed, faults).await, creds)
            }
        };
        let (running, creds) = started;
        let running = running
            .map_err(|e| format!("cannot start the {} sandbox: {e}", self.display_name()))?;
        Ok((running, creds))
    }

    /// The port `psa-operator dev` starts this PSA's sandbox on (`config/samples/` names it).
    pub fn dev_port(self) -> u16 {
        match self {
            Provider::ConnectWise => 8081,
            Provider::KaseyaBms => 8082,
            Provider::Autotask => 8083,
        }
    }

    /// The `psa-operator dev` option that moves this PSA's sandbox to another port.
    pub fn dev_port_option(self) -> &'static str {
        match self {
            Provider::ConnectWise => "connectwise-port",
            Provider::KaseyaBms => "bms-port",
            Provider::Autotask => "autotask-port",
        }
    }

    /// What `dev`'s banner tells a person about this PSA's sandbox and its demo data.
    pub fn dev_banner_note(self) -> &'static str {
        match self {
            Provider::ConnectWise => "sandbox; company demo; open it in a browser",
            Provider::KaseyaBms => "sandbox; tenant demo; open it in a browser",
            Provider::Autotask => "sandbox; user demo-api@msp.example",
        }
    }

    /// The PSA's product name in messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::ConnectWise => "ConnectWise",
            Provider::KaseyaBms => "Kaseya BMS",
            Provider::Autotask => "Autotask",
        }
    }
}

/// The Secret entries (key, value) a sandbox's seed accepts as credentials.
pub type SeedCredentials = Vec<(&'static str, String)>;

/// Which PSA a seed file is for, from its top-level keys.
pub fn seed_provider(text: &str) -> Result<Provider, String> {
    let v: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("not a YAML seed: {e}"))?;
    let mut owners = Provider::ALL.into_iter().filter(|p| p.owns_seed(&v));
    match (owners.next(), owners.next()) {
        (Some(p), None) => Ok(p),
        _ => Err(
            "cannot tell the PSA of this seed: a ConnectWise seed has companyId and publicKey, \
             a Kaseya BMS seed has tenant and users, an Autotask seed has apiUsers"
                .into(),
        ),
    }
}

/// `psa-operator sandbox <name>`: the PSAs by their sandbox names.
impl clap::ValueEnum for Provider {
    fn value_variants<'a>() -> &'a [Self] {
        &Provider::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.sandbox_name()))
    }
}

/// The member of `spec.provider` that is set, borrowed: the one match over the spec's members.
#[derive(Clone, Copy, Debug)]
pub enum ProviderRef<'a> {
    ConnectWise(&'a ConnectWiseProvider),
    KaseyaBms(&'a KaseyaBmsProvider),
    Autotask(&'a AutotaskProvider),
}

impl<'a> ProviderRef<'a> {
    /// The members that are set, in the order of the spec.
    fn all_set(spec: &'a ProviderSpec) -> impl Iterator<Item = ProviderRef<'a>> {
        [
            spec.connect_wise.as_ref().map(ProviderRef::ConnectWise),
            spec.kaseya_bms.as_ref().map(ProviderRef::KaseyaBms),
            spec.autotask.as_ref().map(ProviderRef::Autotask),
        ]
        .into_iter()
        .flatten()
    }

    /// The first member set (the CRD's CEL rule admits exactly one; names and messages use
    /// the first when a file that was never admitted sets more).
    pub fn first(spec: &'a ProviderSpec) -> Option<ProviderRef<'a>> {
        Self::all_set(spec).next()
    }

    /// The member set when exactly one is.
    pub fn only(spec: &'a ProviderSpec) -> Option<ProviderRef<'a>> {
        let mut set = Self::all_set(spec);
        match (set.next(), set.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    pub fn provider(self) -> Provider {
        match self {
            ProviderRef::ConnectWise(_) => Provider::ConnectWise,
            ProviderRef::KaseyaBms(_) => Provider::KaseyaBms,
            ProviderRef::Autotask(_) => Provider::Autotask,
        }
    }

    /// The member's name under `spec.provider`.
    pub fn field(self) -> &'static str {
        match self {
            ProviderRef::ConnectWise(_) => "connectWise",
            ProviderRef::KaseyaBms(_) => "kaseyaBms",
            ProviderRef::Autotask(_) => "autotask",
        }
    }

    pub fn credentials_secret_ref(self) -> &'a SecretRef {
        match self {
            ProviderRef::ConnectWise(p) => &p.credentials_secret_ref,
            ProviderRef::KaseyaBms(p) => &p.credentials_secret_ref,
            ProviderRef::Autotask(p) => &p.credentials_secret_ref,
        }
    }

    /// The PSA's URL as configured (Autotask: the zone URL, empty when discovered).
    pub fn url(self) -> String {
        match self {
            ProviderRef::ConnectWise(p) => p.url.clone(),
            ProviderRef::KaseyaBms(p) => p.url.clone(),
            ProviderRef::Autotask(p) => p.zone_url.clone().unwrap_or_default(),
        }
    }

    /// The PSA tenant the settings point at (credentials aside): two connections with the same
    /// tenant share one catalog. `None` where the settings do not name the tenant (Autotask:
    /// the zone is shared by many databases).
    pub fn tenant(self) -> Option<String> {
        let norm = |url: &str| url.trim().trim_end_matches('/').to_lowercase();
        match self {
            ProviderRef::ConnectWise(cw) => Some(format!(
                "connectwise|{}|{}",
                norm(&cw.url),
                cw.company_id.to_lowercase()
            )),
            ProviderRef::KaseyaBms(b) => {
                Some(format!("bms|{}|{}", norm(&b.url), b.tenant.to_lowercase()))
            }
            ProviderRef::Autotask(_) => None,
        }
    }

    /// The REST client of this PSA, with the credentials read from its Secret.
    pub fn build_client(self, credentials: &SecretData) -> Result<Arc<dyn Psa>, FactoryError> {
        let invalid = |e: psa::PsaError| FactoryError::Invalid(e.to_string());
        Ok(match self {
            ProviderRef::ConnectWise(cw) => {
                use psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
                let mut cfg = ConnectWiseConfig::new(
                    cw.url.trim_end_matches('/'),
                    cw.company_id.clone(),
                    cw.client_id.clone(),
                    credentials.require("publicKey")?,
                    credentials.require("privateKey")?,
                );
                cfg.codebase = cw.codebase.clone();
                cfg.process_notifications = cw.process_notifications.unwrap_or(false);
                Arc::new(ConnectWiseClient::new(cfg).map_err(invalid)?)
            }
            ProviderRef::KaseyaBms(bms) => {
                use psa::bms::{BmsClient, BmsConfig};
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
                let statuses: Vec<String> = bms
                    .active_contract_statuses
                    .iter()
                    .flatten()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if !statuses.is_empty() {
                    cfg.active_contract_statuses = statuses;
                }
                Arc::new(BmsClient::new(cfg).map_err(invalid)?)
            }
            ProviderRef::Autotask(at) => {
                use psa::autotask::{AutotaskClient, AutotaskConfig};
                let cfg = AutotaskConfig::new(
                    at.zone_url.clone(),
                    at.username.clone(),
                    credentials.require("secret")?,
                    credentials.require("integrationCode")?,
                );
                Arc::new(AutotaskClient::new(cfg).map_err(invalid)?)
            }
        })
    }
}

impl ProviderSpec {
    /// The member that is set (the first, see [`ProviderRef::first`]).
    pub fn selected(&self) -> Option<ProviderRef<'_>> {
        ProviderRef::first(self)
    }

    /// The configured provider, when exactly one is set.
    pub fn provider(&self) -> Option<Provider> {
        ProviderRef::only(self).map(ProviderRef::provider)
    }

    /// Display name of the configured provider.
    pub fn kind_name(&self) -> &'static str {
        self.selected().map_or("None", |p| p.provider().as_str())
    }

    /// The field naming the credentials Secret of the configured provider (for messages).
    pub fn credentials_field(&self) -> &'static str {
        match self.selected() {
            Some(ProviderRef::ConnectWise(_)) => {
                "spec.provider.connectWise.credentialsSecretRef.name"
            }
            Some(ProviderRef::KaseyaBms(_)) => "spec.provider.kaseyaBms.credentialsSecretRef.name",
            Some(ProviderRef::Autotask(_)) => "spec.provider.autotask.credentialsSecretRef.name",
            None => "spec.provider",
        }
    }

    /// Name of the credentials Secret of the configured provider.
    pub fn credentials_secret_name(&self) -> Option<&str> {
        self.selected()
            .map(|p| p.credentials_secret_ref().name.as_str())
    }

    /// The PSA's URL as configured (Autotask: the zone URL, empty when discovered).
    pub fn url(&self) -> String {
        self.selected().map(ProviderRef::url).unwrap_or_default()
    }

    /// Points the configured provider at another URL (a sandbox standing in for the PSA).
    pub fn set_url(&mut self, url: &str) {
        if let Some(cw) = self.connect_wise.as_mut() {
            cw.url = url.to_string();
        }
        if let Some(b) = self.kaseya_bms.as_mut() {
            b.url = url.to_string();
        }
        if let Some(a) = self.autotask.as_mut() {
            a.zone_url = Some(url.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_told_apart() {
        assert_eq!(
            seed_provider(crate::sandbox::connectwise::seed::DEMO_SEED_YAML),
            Ok(Provider::ConnectWise)
        );
        assert_eq!(
            seed_provider(crate::sandbox::bms::seed::DEMO_SEED_YAML),
            Ok(Provider::KaseyaBms)
        );
        assert_eq!(
            seed_provider(crate::sandbox::autotask::seed::DEMO_SEED_YAML),
            Ok(Provider::Autotask)
        );
        assert!(seed_provider("boards: []\n").is_err());
    }

    #[test]
    fn one_member_selects_the_provider_and_its_fields() {
        let mut spec = ProviderSpec::default();
        assert_eq!(spec.kind_name(), "None");
        assert_eq!(spec.provider(), None);
        assert_eq!(spec.credentials_field(), "spec.provider");
        spec.autotask = Some(AutotaskProvider {
            username: "api@msp.example".into(),
            credentials_secret_ref: SecretRef { name: "at".into() },
            ..Default::default()
        });
        assert_eq!(spec.provider(), Some(Provider::Autotask));
        assert_eq!(spec.kind_name(), "Autotask");
        assert_eq!(spec.credentials_secret_name(), Some("at"));
        assert_eq!(spec.url(), "");
        spec.set_url("http://127.0.0.1:1");
        assert_eq!(spec.url(), "http://127.0.0.1:1");
        // Two members: names follow the first, but no provider is selected for building.
        spec.connect_wise = Some(ConnectWiseProvider {
            url: "https://na.myconnectwise.net".into(),
            company_id: "Demo".into(),
            ..Default::default()
        });
        assert_eq!(spec.kind_name(), "ConnectWise");
        assert_eq!(spec.provider(), None);
        assert_eq!(
            spec.selected().and_then(ProviderRef::tenant).as_deref(),
            Some("connectwise|https://na.myconnectwise.net|demo")
        );
    }

    /// An Autotask connection's Secret needs `secret` and `integrationCode`; a missing or
    /// empty one is named (reason `SecretKeyMissing`), never shown.
    #[test]
    fn autotask_credentials_need_the_secret_and_the_tracking_identifier() {
        use crate::controller::secrets::SecretData;
        let spec = ProviderSpec {
            autotask: Some(AutotaskProvider {
                username: "api@msp.example".into(),
                credentials_secret_ref: SecretRef { name: "at".into() },
                ..Default::default()
            }),
            ..Default::default()
        };
        let secret = |pairs: &[(&str, &str)]| SecretData {
            name: "at".into(),
            resource_version: String::new(),
            entries: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), crate::secret::SecretString::new(*v)))
                .collect(),
        };
        // (Secret entries, the key the error must name; None = the client is built)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let table: [Case; 4] = [
            (&[("secret", "pw"), ("integrationCode", "TRACK")], None),
            (&[("secret", "pw")], Some("integrationCode")),
            (&[("integrationCode", "TRACK")], Some("\"secret\"")),
            (
                &[("secret", "pw"), ("integrationCode", "")],
                Some("integrationCode"),
            ),
        ];
        for (pairs, missing) in table {
            let built = ProviderRef::only(&spec)
                .unwrap()
                .build_client(&secret(pairs));
            match (built, missing) {
                (Ok(c), None) => assert_eq!(c.provider(), Provider::Autotask),
                (Err(e), Some(key)) => {
                    let shown = e.to_string();
                    assert!(shown.contains(key), "{pairs:?}: {shown}");
                    assert!(!shown.contains("pw") && !shown.contains("TRACK"), "{shown}");
                    assert_eq!(e.reason(), "SecretKeyMissing", "{pairs:?}");
                }
                (r, m) => panic!("{pairs:?}: {:?} vs {m:?}", r.map(|_| ())),
            }
        }
    }

    #[test]
    fn every_provider_has_a_distinct_kind_and_sandbox_name() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_kind_name(p.as_str()), Some(p));
            let others = Provider::ALL.into_iter().filter(|o| *o != p);
            for o in others {
                assert_ne!(p.sandbox_name(), o.sandbox_name());
            }
        }
    }
}
