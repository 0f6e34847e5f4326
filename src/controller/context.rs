//! State shared by the reconcilers: the kube client, the publisher of routing snapshots, PSA
//! clients, and per-connection caches that keep PSA calls down when many resources reconcile at
//! once. Routing facts live in the publisher's index, not here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::psa::instrumented::PsaCallMetrics;
use crate::psa::{CompanyFilter, Psa, PsaId, PsaResult};
use crate::resolved::{ConnectionKey, Registry};

use super::factory::PsaFactory;
use super::metrics::ControllerMetrics;
use super::publish::Publisher;
use super::resolve::customer::CompanyIndex;
use super::resolve::directory::{reuse_window, uncovered, Directory, SharedDirectory};
use super::resolve::routes::catalog_key;
use super::resolve::{fetch_catalog, PsaCatalog};

/// How long a listed company index is reused by mapping reconciles.
pub const COMPANY_INDEX_TTL: Duration = Duration::from_secs(60);

/// How long the batched directory (contacts and contracts of the mapped companies) answers
/// before the next reconcile lists every mapped company again, in batches: the periodic
/// re-validation of mappings (every `revalidateInterval`) always finds it expired, so drift in the
/// PSA (a contact moved, an agreement renamed) is seen at the cost of a few listings per wave.
pub const DIRECTORY_TTL: Duration = Duration::from_secs(120);

/// An authenticated client and what it was built from (rebuilt when that changes).
#[derive(Clone)]
pub struct CachedClient {
    pub fingerprint: String,
    pub psa: Arc<dyn Psa>,
}

#[derive(Default)]
pub struct SharedState {
    pub clients: HashMap<ConnectionKey, CachedClient>,
    /// Per connection: when the companies were listed, for how long that is reused
    /// ([`reuse_window`]), and the index.
    company_indexes: HashMap<ConnectionKey, (Instant, Duration, Arc<CompanyIndex>)>,
    /// Per connection: when every mapped company was last listed (the listing's start), for how
    /// long after that the directory is reused, and the directory.
    directories: HashMap<ConnectionKey, (Instant, Duration, Arc<Directory>)>,
    /// Per connection: the handle the routing snapshots read the directory through (the
    /// dispatcher's contact look-ups); kept across listings so every snapshot sees the newest.
    shared_directories: HashMap<ConnectionKey, SharedDirectory>,
    /// The last `reconcile-requested-at` value acted on, per object (`kind/ns/name`).
    recheck_requests: HashMap<String, String>,
    /// PSA lists mappings' ticket overrides resolve against, per connection and settings
    /// (`resolve::routes::catalog_key`), reused for `COMPANY_INDEX_TTL`.
    catalogs: HashMap<(ConnectionKey, String), (Instant, Arc<PsaCatalog>)>,
}

pub struct Context {
    pub client: Client,
    /// The one writer of the snapshots the intake and the dispatcher read.
    pub publisher: Arc<Publisher>,
    /// This replica holds the leader Lease (always, without leader election): only the leader
    /// writes statuses and changes the PSA; every replica keeps its own routing index current.
    pub leader: Arc<AtomicBool>,
    pub factory: Arc<dyn PsaFactory>,
    pub state: Mutex<SharedState>,
    pub metrics: Arc<ControllerMetrics>,
    /// Every PSA client built is wrapped to count its calls.
    pub psa_calls: PsaCallMetrics,
    pub reporter: Reporter,
    /// One Recorder for every Warning Event of this process: it remembers what it published,
    /// so a repeated Warning becomes a series (count and last time patched) instead of a new
    /// object. Normal Events are published without it (see [`Context::event`]).
    pub recorder: Recorder,
    /// Warnings already raised per object and condition (a stale cached copy must not raise
    /// the same problem twice).
    pub warned: super::warned::Warned,
    /// Re-validation interval when the connection does not set one.
    pub default_revalidate: Duration,
    /// How long a PSA outage keeps `Ready` as last known before it becomes `Unknown`.
    pub ready_grace: Duration,
    /// The dispatch store's last health probe (condition `StoreHealthy` of every connection).
    pub store_health: super::store_health::StoreHealth,
    /// Serialises company listings per connection so a wave of mappings lists once.
    index_lock: tokio::sync::Mutex<()>,
    /// Serialises directory listings so a wave of mappings lists each company once.
    directory_lock: tokio::sync::Mutex<()>,
    /// Serialises catalog listings so a wave of mappings with overrides lists each board once.
    catalog_lock: tokio::sync::Mutex<()>,
}

impl Context {
    pub fn new(
        client: Client,
        registry: Registry,
        factory: Arc<dyn PsaFactory>,
        metrics: Arc<ControllerMetrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: "psa-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            warned: Default::default(),
            client,
            publisher: Arc::new(Publisher::new(registry)),
            leader: Arc::new(AtomicBool::new(true)),
            factory,
            state: Mutex::new(SharedState::default()),
            metrics,
            psa_calls: PsaCallMetrics::default(),
            reporter,
            default_revalidate: Duration::from_secs(600),
            ready_grace: Duration::from_secs(30 * 60),
            store_health: Default::default(),
            index_lock: tokio::sync::Mutex::new(()),
            directory_lock: tokio::sync::Mutex::new(()),
            catalog_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether this replica may write statuses and change the PSA now.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// `true` once per new value of the `psa-operator.io/reconcile-requested-at` annotation:
    /// a re-check the user asked for reads the PSA afresh instead of cached listings.
    pub fn recheck_requested<K: Resource<DynamicType = ()>>(&self, obj: &K) -> bool {
        let Some(value) = obj
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::RECONCILE_REQUESTED_AT))
        else {
            return false;
        };
        let id = format!(
            "{}/{}/{}",
            K::kind(&()),
            obj.meta().namespace.as_deref().unwrap_or_default(),
            obj.meta().name.as_deref().unwrap_or_default()
        );
        let mut st = self.state();
        let seen = st.recheck_requests.get(&id) == Some(value);
        if !seen {
            st.recheck_requests.insert(id, value.clone());
        }
        !seen
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.state.lock().expect("controller state lock poisoned")
    }

    /// The authenticated client of a connection, if its reconciler has built one.
    pub fn psa_client(&self, key: &ConnectionKey) -> Option<Arc<dyn Psa>> {
        self.state().clients.get(key).map(|c| c.psa.clone())
    }

    /// The company index of a connection: listed once (paged) and reused for `COMPANY_INDEX_TTL`,
    /// so a wave of 1,000 mappings costs one listing, not 1,000 look-ups.
    pub async fn company_index(
        &self,
        key: &ConnectionKey,
        psa: &dyn Psa,
        force: bool,
    ) -> PsaResult<Arc<CompanyIndex>> {
        let _guard = self.index_lock.lock().await;
        if !force {
            if let Some((at, keep, idx)) = self.state().company_indexes.get(key) {
                if at.elapsed() < *keep {
                    return Ok(idx.clone());
                }
            }
        }
        let started = Instant::now();
        let companies = psa.list_companies(&CompanyFilter::default()).await?;
        let idx = Arc::new(CompanyIndex::build(companies));
        let keep = reuse_window(COMPANY_INDEX_TTL, started.elapsed());
        self.state()
            .company_indexes
            .insert(key.clone(), (Instant::now(), keep, idx.clone()));
        Ok(idx)
    }

    /// The batched directory of a connection, covering `company_id`. Built by listing the
    /// contacts and contracts of every company `mapped()` names (batched by the client) when
    /// there is none or it expired ([`DIRECTORY_TTL`]); extended by the companies it does not
    /// cover yet when `company_id` is new (a mapping added later costs its own listing, or
    /// shares one with the mappings that arrived with it); `force` (a re-check the user asked
    /// for) lists `company_id` afresh.
    pub async fn directory(
        &self,
        key: &ConnectionKey,
        psa: &dyn Psa,
        company_id: &PsaId,
        mapped: impl Fn() -> Vec<PsaId> + Sync,
        force: bool,
    ) -> PsaResult<Arc<Directory>> {
        self.list_directory(key, psa, company_id, Some(&mapped), force)
            .await
    }

    /// The directory extended by the catch-all company's contacts (connection reconcile), so
    /// the dispatcher answers look-ups of catch-all alerts from it too. No wave is gathered:
    /// it lists this one company when the directory does not cover it yet.
    pub async fn directory_of_catch_all(
        &self,
        key: &ConnectionKey,
        psa: &dyn Psa,
        company_id: &PsaId,
    ) -> PsaResult<Arc<Directory>> {
        self.list_directory(key, psa, company_id, None, false).await
    }

    /// The handle routing snapshots of `key` read the directory through.
    pub fn shared_directory(&self, key: &ConnectionKey) -> SharedDirectory {
        self.state()
            .shared_directories
            .entry(key.clone())
            .or_default()
            .clone()
    }

    async fn list_directory(
        &self,
        key: &ConnectionKey,
        psa: &dyn Psa,
        company_id: &PsaId,
        mapped: Option<&(dyn Fn() -> Vec<PsaId> + Sync)>,
        force: bool,
    ) -> PsaResult<Arc<Directory>> {
        let gather = || async {
            match mapped {
                Some(mapped) => gather_wave(&mapped).await,
                None => vec![],
            }
        };
        let _guard = self.directory_lock.lock().await;
        let current = self
            .state()
            .directories
            .get(key)
            .filter(|(at, keep, _)| at.elapsed() < *keep)
            .cloned();
        let with_mine = |mut ids: Vec<PsaId>| {
            ids.push(company_id.clone());
            ids
        };
        let (listed_at, wanted, base) = match current {
            None => {
                let ids = with_mine(gather().await);
                (Instant::now(), uncovered(None, ids), None)
            }
            Some((at, keep, dir)) if force => (at, vec![company_id.clone()], Some((keep, dir))),
            Some((_, _, dir)) if dir.covers(company_id) => return Ok(dir),
            Some((at, keep, dir)) => {
                let ids = with_mine(gather().await);
                (at, uncovered(Some(&dir), ids), Some((keep, dir)))
            }
        };
        // Contacts and contracts side by side: every mapping of the wave waits for both.
        let (contacts, contracts) = futures::try_join!(
            psa.contacts_of_companies(&wanted),
            psa.contracts_of_companies(&wanted)
        )?;
        let listing = Directory::from_listing(&wanted, contacts, contracts);
        // A merge keeps the first listing's window: what it answers ages from then.
        let (keep, dir) = match base {
            Some((keep, mut dir)) => {
                Arc::make_mut(&mut dir).merge(listing);
                (keep, dir)
            }
            None => {
                let took = listed_at.elapsed();
                (took + reuse_window(DIRECTORY_TTL, took), Arc::new(listing))
            }
        };
        let shared = self.shared_directory(key);
        shared.set(listed_at, dir.clone());
        self.state()
            .directories
            .insert(key.clone(), (listed_at, keep, dir.clone()));
        Ok(dir)
    }

    /// Forgets cached PSA data of a connection (credentials or PSA changed).
    pub fn forget_connection(&self, key: &ConnectionKey) {
        let mut st = self.state();
        st.clients.remove(key);
        st.company_indexes.remove(key);
        st.directories.remove(key);
        if let Some(shared) = st.shared_directories.get(key) {
            shared.clear();
        }
        st.catalogs.retain(|(k, _), _| k != key);
    }

    /// The PSA lists `settings` resolve against for a connection's mappings (see
    /// [`SharedState::catalogs`]); `force` (a re-check the user asked for) reads them afresh.
    pub async fn catalog(
        &self,
        key: &ConnectionKey,
        psa: &dyn Psa,
        settings: &crate::api::TicketSettings,
        force: bool,
    ) -> PsaResult<Arc<PsaCatalog>> {
        let _guard = self.catalog_lock.lock().await;
        let cache_key = (key.clone(), catalog_key(settings));
        if !force {
            if let Some((at, cat)) = self.state().catalogs.get(&cache_key) {
                if at.elapsed() < COMPANY_INDEX_TTL {
                    return Ok(cat.clone());
                }
            }
        }
        let (cat, _) = fetch_catalog(psa, settings).await?;
        let cat = Arc::new(cat);
        self.state()
            .catalogs
            .insert(cache_key, (Instant::now(), cat.clone()));
        Ok(cat)
    }

    /// Publishes a Kubernetes Event about `obj`; failures are logged, never fatal.
    pub async fn event<K>(&self, obj: &K, warning: bool, reason: &str, action: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        if !self.is_leader() {
            return;
        }
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(truncate(&note, 1000)),
            action: action.to_string(),
            secondary: None,
        };
        // Only Warnings go through the shared Recorder, whose cache turns a repeated problem
        // into one Event with a count. A Normal Event marks a transition (first Ready, a line
        // added), which does not repeat: through the shared Recorder each one stayed cached
        // for six minutes, and a wave of 10,000 mappings held 10,000 of them (about 40 MiB,
        // heap profile in docs/benchmarks.md). A Recorder of its own forgets it at once.
        let recorder = if warning {
            self.recorder.clone()
        } else {
            Recorder::new(self.client.clone(), self.reporter.clone())
        };
        if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// The mapped companies once the watch has stopped delivering new mappings of the connection
/// (the count unchanged for [`WAVE_QUIET`], at most [`WAVE_GATHER_MAX`]): mappings applied
/// together arrive over a moment, and listing before the last of them arrived would cost one
/// listing per arrival instead of one per wave. A single mapping changed later waits
/// `WAVE_QUIET` once.
async fn gather_wave(mapped: &impl Fn() -> Vec<PsaId>) -> Vec<PsaId> {
    let started = Instant::now();
    let mut ids = mapped();
    let mut quiet_since = Instant::now();
    while started.elapsed() < WAVE_GATHER_MAX && quiet_since.elapsed() < WAVE_QUIET {
        tokio::time::sleep(WAVE_POLL).await;
        let now = mapped();
        if now.len() != ids.len() {
            quiet_since = Instant::now();
        }
        ids = now;
    }
    ids
}

/// How long the mapping count must stay unchanged before a wave is listed.
const WAVE_QUIET: Duration = Duration::from_millis(300);
/// How often the count is looked at meanwhile.
const WAVE_POLL: Duration = Duration::from_millis(100);
/// The longest a listing waits for a wave to end (a steady trickle of new mappings).
const WAVE_GATHER_MAX: Duration = Duration::from_secs(5);

/// Cuts `s` to at most `max` bytes at a char boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
