//! State shared by the reconcilers: the kube client, the snapshot registry, PSA clients, and
//! per-connection caches that keep PSA calls down when many resources reconcile at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::psa::instrumented::PsaCallMetrics;
use crate::psa::{Company, CompanyFilter, Psa, PsaResult};
use crate::resolved::{ConnectionKey, Registry, ResolvedCustomer};

use super::factory::PsaFactory;
use super::metrics::ControllerMetrics;

/// How long a listed company index is reused by mapping reconciles.
pub const COMPANY_INDEX_TTL: Duration = Duration::from_secs(60);

/// An authenticated client and what it was built from (rebuilt when that changes).
#[derive(Clone)]
pub struct CachedClient {
    pub fingerprint: String,
    pub psa: Arc<dyn Psa>,
}

/// Companies of a PSA indexed by identifier and by name (lower-cased), from one paged listing.
#[derive(Clone, Debug, Default)]
pub struct CompanyIndex {
    pub by_identifier: HashMap<String, Company>,
    pub by_name: HashMap<String, Vec<Company>>,
}

impl CompanyIndex {
    pub fn build(companies: Vec<Company>) -> Self {
        let mut idx = CompanyIndex::default();
        for c in companies {
            idx.by_name
                .entry(c.name.trim().to_lowercase())
                .or_default()
                .push(c.clone());
            idx.by_identifier
                .insert(c.identifier.trim().to_lowercase(), c);
        }
        idx
    }
}

#[derive(Default)]
pub struct SharedState {
    pub clients: HashMap<ConnectionKey, CachedClient>,
    /// Connection → mapping name → (organization, customer) of Ready mappings.
    pub customers: HashMap<ConnectionKey, BTreeMap<String, (String, ResolvedCustomer)>>,
    company_indexes: HashMap<ConnectionKey, (Instant, Arc<CompanyIndex>)>,
    /// Connections whose customers changed since the last publish, and the request counter.
    dirty_customers: std::collections::HashSet<ConnectionKey>,
    publish_requested: u64,
}

pub struct Context {
    pub client: Client,
    pub registry: Registry,
    pub factory: Arc<dyn PsaFactory>,
    pub state: Mutex<SharedState>,
    pub metrics: Arc<ControllerMetrics>,
    /// Every PSA client built is wrapped to count its calls.
    pub psa_calls: PsaCallMetrics,
    pub reporter: Reporter,
    /// Re-validation interval when the connection does not set one.
    pub default_revalidate: Duration,
    /// Serialises company listings per connection so a wave of mappings lists once.
    index_lock: tokio::sync::Mutex<()>,
    /// The last publish request the customer publisher has carried out.
    published: tokio::sync::watch::Sender<u64>,
}

impl Context {
    pub fn new(
        client: Client,
        registry: Registry,
        factory: Arc<dyn PsaFactory>,
        metrics: Arc<ControllerMetrics>,
    ) -> Self {
        Context {
            client,
            registry,
            factory,
            state: Mutex::new(SharedState::default()),
            metrics,
            psa_calls: PsaCallMetrics::default(),
            reporter: Reporter {
                controller: "psa-operator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
            default_revalidate: Duration::from_secs(600),
            index_lock: tokio::sync::Mutex::new(()),
            published: tokio::sync::watch::channel(0).0,
        }
    }

    /// Asks for the customers of `key` to be re-published and waits until they are. Publishing
    /// rebuilds the connection's customer map, so a wave of N mappings publishes in batches
    /// (every few milliseconds) instead of N times — and a mapping still reports Ready only
    /// once the dispatcher can route its organization.
    pub async fn publish_customers(&self, key: &ConnectionKey) {
        let want = {
            let mut st = self.state();
            st.dirty_customers.insert(key.clone());
            st.publish_requested += 1;
            st.publish_requested
        };
        let mut rx = self.published.subscribe();
        let _ = rx.wait_for(|done| *done >= want).await;
    }

    /// Carries out publish requests in batches until `shutdown`.
    pub async fn customer_publisher(&self, shutdown: impl std::future::Future<Output = ()>) {
        let work = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let (keys, upto) = {
                    let mut st = self.state();
                    if st.dirty_customers.is_empty() {
                        continue;
                    }
                    (
                        std::mem::take(&mut st.dirty_customers),
                        st.publish_requested,
                    )
                };
                for key in keys {
                    super::connection::republish_customers(self, &key);
                }
                self.published.send_replace(upto);
            }
        };
        futures::pin_mut!(work);
        futures::pin_mut!(shutdown);
        futures::future::select(work, shutdown).await;
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
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
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
        if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
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
