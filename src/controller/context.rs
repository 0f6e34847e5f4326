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
use crate::psa::{CompanyFilter, Psa, PsaResult};
use crate::resolved::{ConnectionKey, Registry};

use super::factory::PsaFactory;
use super::metrics::ControllerMetrics;
use super::publish::Publisher;
use super::resolve::customer::CompanyIndex;

/// How long a listed company index is reused by mapping reconciles.
pub const COMPANY_INDEX_TTL: Duration = Duration::from_secs(60);

/// An authenticated client and what it was built from (rebuilt when that changes).
#[derive(Clone)]
pub struct CachedClient {
    pub fingerprint: String,
    pub psa: Arc<dyn Psa>,
}

#[derive(Default)]
pub struct SharedState {
    pub clients: HashMap<ConnectionKey, CachedClient>,
    company_indexes: HashMap<ConnectionKey, (Instant, Arc<CompanyIndex>)>,
    /// The last `reconcile-requested-at` value acted on, per object (`kind/ns/name`).
    recheck_requests: HashMap<String, String>,
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
    /// One Recorder for every Event of this process: it remembers what it published, so a
    /// repeated Event becomes a series (count and last time patched) instead of a new object.
    pub recorder: Recorder,
    /// Re-validation interval when the connection does not set one.
    pub default_revalidate: Duration,
    /// How long a PSA outage keeps `Ready` as last known before it becomes `Unknown`.
    pub ready_grace: Duration,
    /// The dispatch store's last health probe (condition `StoreHealthy` of every connection).
    pub store_health: super::store_health::StoreHealth,
    /// Serialises company listings per connection so a wave of mappings lists once.
    index_lock: tokio::sync::Mutex<()>,
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
            if let Some((at, idx)) = self.state().company_indexes.get(key) {
                if at.elapsed() < COMPANY_INDEX_TTL {
                    return Ok(idx.clone());
                }
            }
        }
        let companies = psa.list_companies(&CompanyFilter::default()).await?;
        let idx = Arc::new(CompanyIndex::build(companies));
        self.state()
            .company_indexes
            .insert(key.clone(), (Instant::now(), idx.clone()));
        Ok(idx)
    }

    /// Forgets cached PSA data of a connection (credentials or PSA changed).
    pub fn forget_connection(&self, key: &ConnectionKey) {
        let mut st = self.state();
        st.clients.remove(key);
        st.company_indexes.remove(key);
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
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}

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
