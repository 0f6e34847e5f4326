//! A dispatcher on a real SQLite store in a temp dir, with a connection snapshot in a registry,
//! and helpers to enqueue events and wait for their outcome.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use psa_operator::api::{AccountMapping, Grouping};
use psa_operator::dispatch::event::{Envelope, Event, EventKind};
use psa_operator::dispatch::grouping::group_key;
use psa_operator::dispatch::metrics::DispatchMetrics;
use psa_operator::dispatch::stats::StatsBoard;
use psa_operator::dispatch::store::{
    ConnectionCounters, NewEvent, SqliteOptions, SqliteStore, Store,
};
use psa_operator::dispatch::worker::{now_ms, Dispatcher, DispatcherOptions};
use psa_operator::psa::Psa;
use psa_operator::resolved::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ORG: &str = "Contoso Ltd";
pub const JANE: &str = "jane@contoso.example";

pub fn customer(company: &str, default_contact: Option<&str>) -> ResolvedCustomer {
    ResolvedCustomer {
        mapping_name: format!("map-{company}"),
        company_id: company.into(),
        company_name: format!("Company {company}"),
        location_id: Some(format!("loc-{company}")),
        default_contact_id: default_contact.map(Into::into),
        contract_id: None,
    }
}

/// A snapshot like the reconciler publishes: Contoso mapped to company 10 (default contact
/// 100), catch-all company 99 (contact 990), fast retries, an unlimited budget.
pub fn snapshot(key: &ConnectionKey, psa: Arc<dyn Psa>, grouping: Grouping) -> ResolvedConnection {
    let mut customers = HashMap::new();
    customers.insert(ORG.into(), Arc::new(customer("10", Some("100"))));
    ResolvedConnection {
        key: key.clone(),
        generation: 1,
        psa,
        grouping,
        account_mapping: AccountMapping::Manual,
        catch_all: Some(customer("99", Some("990"))),
        customers,
        held_organizations: Default::default(),
        complete: true,
        ticket: ResolvedTicket {
            closed_status_id: Some("closed-by-operator".into()),
            ..Default::default()
        },
        failsafe: None,
        dispatch: DispatchConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            requests_per_hour: 1_000_000,
            group_wait: Duration::ZERO,
        },
        alertmanager: AlertmanagerLabelNames::default(),
        grafana: AlertmanagerLabelNames::default(),
        sources: Default::default(),
        lifecycle: ResolvedLifecycle::default(),
    }
}

pub fn test_options() -> DispatcherOptions {
    DispatcherOptions {
        ticket_state_ttl: Duration::ZERO,
        idle_poll: Duration::from_millis(100),
        failsafe_retry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(1),
        ..Default::default()
    }
}

pub fn alert(id: &str, user: &str, alert_type: &str) -> Event {
    Event {
        id: id.into(),
        kind: EventKind::Alert,
        organization: ORG.into(),
        user: Some(user.into()),
        alert_type: alert_type.into(),
        severity: Some("critical".into()),
        title: alert_type.into(),
        description: format!("{alert_type} for {user}"),
        occurred_at: Some("2026-11-24T16:18:28Z".into()),
        url: Some(format!("https://alerts.example/e/{id}")),
        finding_id: None,
        status: None,
        priority: None,
        comment: None,
        author: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

pub fn finding(id: &str, kind: EventKind, finding_id: &str) -> Event {
    let mut e = alert(id, JANE, "Threat");
    e.kind = kind;
    e.finding_id = Some(finding_id.into());
    e.title = "Impossible travel: jane@contoso.example".into();
    e.status = Some("Open".into());
    e.priority = Some("1".into());
    e
}

pub struct Harness {
    pub _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    /// The running dispatcher's counters (replaced at each start).
    pub stats: StatsBoard,
    pub metrics: Arc<DispatchMetrics>,
    pub prometheus: prometheus_client::registry::Registry,
    pub key: ConnectionKey,
    pub grouping: Grouping,
    pub options: DispatcherOptions,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Harness {
    pub fn new(conn: ResolvedConnection) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dispatch.db");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        let registry = Registry::new();
        let key = conn.key.clone();
        let grouping = conn.grouping;
        registry.publish(
            key.clone(),
            ConnectionEntry {
                intake_token: None,
                suspended: false,
                resolved: Some(Arc::new(conn)),
                unresolved_hold: None,
            },
        );
        let mut prometheus = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(DispatchMetrics::register(&mut prometheus));
        Harness {
            _dir: dir,
            path,
            store,
            registry,
            stats: StatsBoard::default(),
            metrics,
            prometheus,
            key,
            grouping,
            options: test_options(),
            stop: None,
            task: None,
        }
    }

    pub fn start(&mut self) {
        let (tx, rx) = oneshot::channel::<()>();
        let d = Dispatcher::with_options(
            self.registry.clone(),
            self.store.clone(),
            self.metrics.clone(),
            self.options.clone(),
        );
        self.stats = d.stats();
        self.task = Some(tokio::spawn(d.run(async {
            let _ = rx.await;
        })));
        self.stop = Some(tx);
    }

    /// Ends the dispatcher like a killed process: the task is dropped mid-flight.
    pub async fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        self.stop = None;
    }

    /// Reopens the store file, as a restarted process does.
    pub fn reopen_store(&mut self) {
        self.store = Arc::new(SqliteStore::open(&self.path, SqliteOptions::default()).unwrap());
    }

    pub fn update(&self, f: impl FnOnce(&mut ConnectionEntry)) {
        self.registry.update(&self.key, f);
    }

    pub async fn send(&self, events: Vec<Event>) {
        let new = events
            .into_iter()
            .map(|event| NewEvent {
                group_key: group_key(&event, self.grouping),
                envelope: Envelope {
                    namespace: self.key.namespace.clone(),
                    connection: self.key.name.clone(),
                    accepted_at_ms: now_ms(),
                    event,
                },
            })
            .collect();
        self.store.enqueue(new).await.unwrap();
    }

    /// The metrics exposition text.
    pub fn metrics_text(&self) -> String {
        psa_operator::dispatch::metrics::encode(&self.prometheus)
    }

    pub async fn counters(&self) -> ConnectionCounters {
        self.store.counters(self.key.clone()).await.unwrap()
    }

    /// Waits (bounded) until the store's counters satisfy `pred`.
    pub async fn wait_counters(
        &self,
        what: &str,
        pred: impl Fn(&ConnectionCounters) -> bool,
    ) -> ConnectionCounters {
        for _ in 0..3000 {
            let c = self.counters().await;
            if pred(&c) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}: {:?}", self.counters().await);
    }

    /// Sends events and waits until `total` events of the connection are finished (done or
    /// dead), so steps of a scenario happen in order.
    pub async fn send_and_settle(&self, events: Vec<Event>) {
        let before = self.counters().await;
        let n = events.len() as u64;
        self.send(events).await;
        self.wait_counters("events delivered", |c| {
            c.delivered + c.dead_letters >= before.delivered + before.dead_letters + n
        })
        .await;
    }
}

/// Polls `f` (bounded: 60 s) until it holds.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
