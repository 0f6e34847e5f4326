//! The resolved connection snapshot: what the reconcilers publish and the dispatcher reads.
//!
//! The PsaConnection reconciler turns names (board, statuses, priorities, catch-all, mapped
//! companies, contracts) into PSA ids once, and publishes an immutable `Arc<ResolvedConnection>`.
//! The dispatcher never resolves a name per alert (except a contact by e-mail, cached), so a
//! renamed status in the PSA shows up as a failing condition before tickets start failing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::api::{AccountMapping, EventField, Grouping};
use crate::psa::{PsaId, TicketDesk};
use crate::secret::SecretString;

/// Namespace and name of a PsaConnection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionKey {
    pub namespace: String,
    pub name: String,
}

impl ConnectionKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ConnectionKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ConnectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A ticket field after resolution: do not set, one id, or a map from an event value to ids.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ResolvedValue {
    #[default]
    NotSet,
    One(PsaId),
    Map {
        key: EventField,
        /// Event value (compared case-insensitively, see the dispatcher) → PSA id.
        map: BTreeMap<String, PsaId>,
        default: Option<PsaId>,
    },
}

/// Issue type and sub-issue type ids (ConnectWise subtype and item).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IssueTypeIds {
    pub issue_type: Option<PsaId>,
    pub sub_issue_type: Option<PsaId>,
}

/// Ticket settings with every name replaced by its id.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ResolvedTicket {
    pub board_id: Option<PsaId>,
    pub source: ResolvedValue,
    pub status: ResolvedValue,
    pub type_: ResolvedValue,
    pub priority: ResolvedValue,
    /// Default issue type / sub-issue type (all-`None` when not used).
    pub issue_type_default: IssueTypeIds,
    /// Alert type (as alerts name it) → issue type ids.
    pub issue_type_overrides: BTreeMap<String, IssueTypeIds>,
    pub summary_template: Option<String>,
    /// Status used to close a ticket when its finding is resolved.
    pub closed_status_id: Option<PsaId>,
}

/// `spec.lifecycle` with its closed status resolved.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ResolvedLifecycle {
    /// `onResolve: Close`: the last resolution of a ticket's alerts closes it.
    pub close_on_resolve: bool,
    /// Status a resolved group's ticket is closed with (`None` = the PSA's closed status).
    pub closed_status_id: Option<PsaId>,
    /// `reopenWithin`: a group's ticket closed less than this ago is reopened by its next
    /// alert (`None`: never; a new ticket, as the seed's worked example).
    pub reopen_within: Option<std::time::Duration>,
    /// `neverReopen`: closed statuses whose tickets are never reopened.
    pub never_reopen: std::collections::BTreeSet<PsaId>,
    /// The open status a ticket is reopened with when `ticket.status` sets none for the alert:
    /// the first open status of the board (the PSA's list order).
    pub reopen_status_id: Option<PsaId>,
}

/// The ticket values of one routing outcome (the connection's settings, or those with a
/// mapping's overrides and/or one route applied), resolved on the board they end up on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TicketProfile {
    pub ticket: ResolvedTicket,
    /// `lifecycle.closedStatus` (or the ticket's closed status) on this profile's board.
    pub lifecycle_closed_status_id: Option<PsaId>,
}

/// A route with its names resolved: alerts it matches get `profile`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRoute {
    pub matcher: crate::dispatch::decide::ticket_route::RouteMatcher,
    pub profile: Arc<TicketProfile>,
}

/// A CustomerMapping's `ticket` and `routes`, resolved. Only mappings that set either carry
/// one; the others use the connection's profiles as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerTicket {
    /// [`ResolvedConnection::ticket_fingerprint`] of the connection settings these profiles
    /// were resolved with: another value means the connection changed since, and the routing
    /// index holds the organization until the mapping is evaluated again.
    pub connection_fingerprint: u64,
    /// The connection's ticket with the mapping's `ticket` applied.
    pub base: Arc<TicketProfile>,
    /// The mapping's own routes, each applied on `base`.
    pub routes: Vec<ResolvedRoute>,
    /// Position by position, the connection's routes applied on `base` (the matchers stay the
    /// connection's: `ResolvedConnection::routes`).
    pub connection_routes: Vec<Arc<TicketProfile>>,
}

/// A company with the contact and contract tickets for it get.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ResolvedCustomer {
    /// The CustomerMapping's name, or empty for catch-all / auto-mapped customers.
    pub mapping_name: String,
    pub company_id: PsaId,
    pub company_name: String,
    pub location_id: Option<PsaId>,
    pub default_contact_id: Option<PsaId>,
    pub contract_id: Option<PsaId>,
    /// The mapping's ticket overrides and routes; `None`: the connection's settings and routes.
    pub ticket: Option<Arc<CustomerTicket>>,
}

/// SMTP settings of the failsafe e-mail (from the Secret named in `failsafe.smtpSecretRef`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub tls: SmtpTls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// Failsafe e-mail recipients and the SMTP server to reach them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failsafe {
    pub recipients: Vec<String>,
    pub smtp: SmtpSettings,
    /// `failsafe.subjectPrefix`; `None`: [`crate::dispatch::failsafe::DEFAULT_SUBJECT_PREFIX`].
    pub subject_prefix: Option<String>,
}

/// Dispatcher tuning with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchConfig {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub requests_per_hour: u32,
    pub group_wait: Duration,
}

impl DispatchConfig {
    /// The defaults for a provider: its request budget (see
    /// [`crate::psa::Provider::default_requests_per_hour`]), the rest as [`Default`].
    pub fn for_provider(provider: Option<crate::psa::Provider>) -> Self {
        let mut cfg = DispatchConfig::default();
        if let Some(p) = provider {
            cfg.requests_per_hour = p.default_requests_per_hour();
        }
        cfg
    }

    /// The budget for status: `None` when unmetered.
    pub fn shown_requests_per_hour(&self) -> Option<u32> {
        Some(self.requests_per_hour).filter(|n| *n != crate::psa::UNMETERED)
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(2),
            requests_per_hour: 1500,
            group_wait: Duration::ZERO,
        }
    }
}

/// Label names read from Alertmanager alerts, with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerLabelNames {
    pub organization: String,
    pub user: String,
    pub alert_type: String,
    pub severity: String,
}

impl Default for AlertmanagerLabelNames {
    fn default() -> Self {
        AlertmanagerLabelNames {
            organization: "organization".into(),
            user: "user".into(),
            alert_type: "alertname".into(),
            severity: "severity".into(),
        }
    }
}

/// Everything the dispatcher needs to turn an event of this connection into PSA calls.
pub struct ResolvedConnection {
    pub key: ConnectionKey,
    /// `metadata.generation` the snapshot was built from.
    pub generation: i64,
    /// The connection's PSA as the dispatcher uses it.
    pub psa: Arc<dyn TicketDesk>,
    pub grouping: Grouping,
    pub account_mapping: AccountMapping,
    pub catch_all: Option<ResolvedCustomer>,
    /// Organization (as alerts name it) → customer, from Ready CustomerMappings. Shared with
    /// the routing index and every earlier snapshot: a rebuild copies pointers, not strings.
    pub customers: HashMap<Arc<str>, Arc<ResolvedCustomer>>,
    /// Organizations (trimmed, lower-cased) that have a CustomerMapping which does not route
    /// (not evaluated yet by this process, or not Ready), with the reason. Their events are held
    /// and then dead-lettered, never sent to the catch-all.
    pub held_organizations: HashMap<String, String>,
    /// Every existing mapping of the connection has been evaluated by this process.
    pub complete: bool,
    pub ticket: ResolvedTicket,
    pub failsafe: Option<Failsafe>,
    pub dispatch: DispatchConfig,
    pub alertmanager: AlertmanagerLabelNames,
    /// Label names of Grafana alerts (`spec.grafana`), with defaults applied.
    pub grafana: AlertmanagerLabelNames,
    /// `spec.sources`, compiled (`/webhook/{source}`, `/cloudevents`).
    pub sources: crate::dispatch::intake::sources::SharedSources,
    pub lifecycle: ResolvedLifecycle,
    /// `spec.routes`, each applied on `ticket` and resolved. Shared by every snapshot.
    pub routes: Arc<[ResolvedRoute]>,
    /// Identifies the connection settings mappings' overrides are resolved against (`ticket`,
    /// `routes`, `lifecycle`; see `controller::resolve::routes::ticket_fingerprint`).
    pub ticket_fingerprint: u64,
    /// `noise.maxNewTicketsPerCustomer`: the storm breaker's limit (`None`: no limit).
    pub storm: Option<crate::dispatch::decide::storm::StormLimit>,
    /// The controllers' batched contact directory of the connection (mapped companies and the
    /// catch-all company), shared by every snapshot: the dispatcher answers an alert user's
    /// contact look-up from it while it is fresh instead of asking the PSA.
    pub directory: crate::controller::resolve::directory::SharedDirectory,
}

impl ResolvedConnection {
    /// A copy with the routing of the mappings (customers, held organizations); the settings
    /// stay.
    pub fn with_routing(
        &self,
        customers: HashMap<Arc<str>, Arc<ResolvedCustomer>>,
        held_organizations: HashMap<String, String>,
        complete: bool,
    ) -> Self {
        ResolvedConnection {
            key: self.key.clone(),
            generation: self.generation,
            psa: self.psa.clone(),
            grouping: self.grouping,
            account_mapping: self.account_mapping,
            catch_all: self.catch_all.clone(),
            customers,
            held_organizations,
            complete,
            ticket: self.ticket.clone(),
            failsafe: self.failsafe.clone(),
            dispatch: self.dispatch.clone(),
            alertmanager: self.alertmanager.clone(),
            grafana: self.grafana.clone(),
            sources: self.sources.clone(),
            lifecycle: self.lifecycle.clone(),
            routes: self.routes.clone(),
            ticket_fingerprint: self.ticket_fingerprint,
            storm: self.storm,
            directory: self.directory.clone(),
        }
    }
}

impl ResolvedConnection {
    /// Settings with nothing configured: the fixture unit tests, the e2e harness and
    /// benchmarks start from (`ResolvedConnection { grouping, ..ResolvedConnection::sample(key, psa) }`).
    pub fn sample(key: ConnectionKey, psa: Arc<dyn TicketDesk>) -> Self {
        ResolvedConnection {
            key,
            generation: 1,
            psa,
            grouping: Grouping::default(),
            account_mapping: AccountMapping::default(),
            catch_all: None,
            customers: HashMap::new(),
            held_organizations: HashMap::new(),
            complete: false,
            ticket: ResolvedTicket::default(),
            failsafe: None,
            dispatch: DispatchConfig::default(),
            alertmanager: AlertmanagerLabelNames::default(),
            grafana: AlertmanagerLabelNames::default(),
            sources: Default::default(),
            lifecycle: ResolvedLifecycle::default(),
            routes: Arc::from(Vec::new()),
            ticket_fingerprint: 0,
            storm: None,
            directory: Default::default(),
        }
    }
}

impl std::fmt::Debug for ResolvedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedConnection")
            .field("key", &self.key)
            .field("generation", &self.generation)
            .field("grouping", &self.grouping)
            .field("customers", &self.customers.len())
            .field("held", &self.held_organizations.len())
            .field("complete", &self.complete)
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

/// What the intake and the dispatcher know about one connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectionEntry {
    /// Bearer token of the intake; `None` = the Secret is not readable yet (intake answers 503).
    pub intake_token: Option<SecretString>,
    /// Events are stored and held while suspended.
    pub suspended: bool,
    /// `None` until the settings resolve (events are held meanwhile).
    pub resolved: Option<Arc<ResolvedConnection>>,
    /// How long held events of this connection wait before they are dead-lettered
    /// (`spec.dispatch.unresolvedHold`); `None` = the dispatcher's `unresolved_hold`. Known
    /// before the settings resolve: it applies exactly while they do not.
    pub unresolved_hold: Option<std::time::Duration>,
}

/// The shared, in-memory registry: the controllers' publisher (`controller::publish`) is its one
/// writer; the intake and the dispatcher read.
///
/// Each connection has a `watch` channel so a worker waiting on a held event wakes when the
/// connection resumes or resolves.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<HashMap<ConnectionKey, watch::Sender<ConnectionEntry>>>>,
    /// Failsafe settings, published even while the PSA settings do not resolve: a revoked
    /// credential or a renamed status is exactly when the failsafe e-mail is needed.
    failsafes: Arc<RwLock<HashMap<ConnectionKey, Failsafe>>>,
    /// Every connection the API server had when the controllers started has been published:
    /// before that, a connection not in the registry may simply not be loaded yet.
    synced: Arc<std::sync::atomic::AtomicBool>,
}

impl Registry {
    /// A registry its writer fills as it goes: every connection is known (intake-only uses).
    pub fn new() -> Self {
        let r = Self::default();
        r.mark_synced();
        r
    }

    /// A registry the controllers are about to fill: until `mark_synced`, a connection missing
    /// from it may still be loading (the intake asks senders to retry).
    pub fn starting() -> Self {
        Self::default()
    }

    /// Marks the registry complete (see `synced`).
    pub fn mark_synced(&self) {
        self.synced
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a connection missing from the registry is really unknown (not still loading).
    pub fn is_synced(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Publishes (replaces) the entry of a connection; watchers are notified.
    pub fn publish(&self, key: ConnectionKey, entry: ConnectionEntry) {
        let mut map = self.inner.write().expect("registry lock poisoned");
        match map.get(&key) {
            Some(tx) => {
                tx.send_replace(entry);
            }
            None => {
                let (tx, _rx) = watch::channel(entry);
                map.insert(key, tx);
            }
        }
    }

    /// Updates the entry in place (e.g. only the suspended flag).
    pub fn update(&self, key: &ConnectionKey, f: impl FnOnce(&mut ConnectionEntry)) {
        let map = self.inner.read().expect("registry lock poisoned");
        if let Some(tx) = map.get(key) {
            tx.send_modify(f);
        }
    }

    /// Removes a deleted connection.
    pub fn remove(&self, key: &ConnectionKey) {
        self.inner
            .write()
            .expect("registry lock poisoned")
            .remove(key);
        self.failsafes
            .write()
            .expect("failsafe lock poisoned")
            .remove(key);
    }

    /// Publishes (or clears) the failsafe settings of a connection.
    pub fn set_failsafe(&self, key: &ConnectionKey, failsafe: Option<Failsafe>) {
        let mut map = self.failsafes.write().expect("failsafe lock poisoned");
        match failsafe {
            Some(f) => {
                map.insert(key.clone(), f);
            }
            None => {
                map.remove(key);
            }
        }
    }

    /// The failsafe settings of a connection, whether or not its PSA settings resolve.
    pub fn failsafe(&self, key: &ConnectionKey) -> Option<Failsafe> {
        self.failsafes
            .read()
            .expect("failsafe lock poisoned")
            .get(key)
            .cloned()
    }

    /// The current entry of a connection; `None` when the connection does not exist.
    pub fn get(&self, key: &ConnectionKey) -> Option<ConnectionEntry> {
        let map = self.inner.read().expect("registry lock poisoned");
        map.get(key).map(|tx| tx.borrow().clone())
    }

    /// Subscribes to changes of a connection's entry.
    pub fn subscribe(&self, key: &ConnectionKey) -> Option<watch::Receiver<ConnectionEntry>> {
        let map = self.inner.read().expect("registry lock poisoned");
        map.get(key).map(|tx| tx.subscribe())
    }

    /// Keys of all known connections.
    pub fn keys(&self) -> Vec<ConnectionKey> {
        let map = self.inner.read().expect("registry lock poisoned");
        let mut keys: Vec<_> = map.keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_resume() {
        let reg = Registry::new();
        let key = ConnectionKey::new("psa", "acme");
        reg.publish(
            key.clone(),
            ConnectionEntry {
                suspended: true,
                ..Default::default()
            },
        );
        let mut rx = reg.subscribe(&key).expect("known");
        assert!(rx.borrow().suspended);
        reg.update(&key, |e| e.suspended = false);
        rx.changed().await.expect("sender alive");
        assert!(!rx.borrow().suspended);
        assert!(reg.get(&ConnectionKey::new("psa", "other")).is_none());
        reg.remove(&key);
        assert!(reg.get(&key).is_none());
    }
}
