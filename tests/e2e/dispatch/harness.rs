//! A dispatcher on a real SQLite store in a temp dir, with a connection snapshot in a registry,
//! and helpers to enqueue events and wait for their outcome.

use std::collections::HashMap;
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
use psa_operator::psa::{ContactEmail, TicketDesk};
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
        ticket: None,
    }
}

/// A snapshot like the reconciler publishes: Contoso mapped to company 10 (default contact
/// 100), catch-all company 99 (contact 990), fast retries, an unlimited budget.
pub fn snapshot(
    key: &ConnectionKey,
    psa: Arc<dyn TicketDesk>,
    grouping: Grouping,
) -> ResolvedConnection {
    let mut customers = HashMap::new();
    customers.insert(ORG.into(), Arc::new(customer("10", Some("100"))));
    ResolvedConnection {
        grouping,
        account_mapping: AccountMapping::Manual,
        catch_all: Some(customer("99", Some("990"))),
        customers,
        complete: true,
        ticket: ResolvedTicket {
            closed_status_id: Some("closed-by-operator".into()),
            ..Default::default()
        },
        dispatch: DispatchConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            requests_per_hour: 1_000_000,
            group_wait: Duration::ZERO,
        },
        ..ResolvedConnection::sample(key.clone(), psa)
    }
}

/// The demo tenant's ids a provider's dispatch scenarios route with, read from its sandbox (the
/// Kaseya BMS and Autotask demo seeds hold the same organisations and ticket settings).
pub struct DemoIds {
    pub contoso: String,
    /// BMS: the company's main location (tickets need one).
    pub contoso_location: Option<String>,
    pub jane: String,
    pub alert_contact: String,
    pub default_customer: String,
    pub default_location: Option<String>,
    pub default_contact: String,
    pub queue: String,
    pub status_new: String,
    /// The status the operator closes tickets with.
    pub closed: String,
    pub alert_type: String,
    pub high: String,
    pub source: String,
    pub issue: String,
    pub sub_general: String,
    pub sub_iam: String,
}

/// The id of `name` in a PSA's list (a picklist, boards, types).
pub fn id_of(list: &[psa_operator::psa::Named], name: &str) -> String {
    list.iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
        .id
        .clone()
}

impl DemoIds {
    /// The demo data's ids as the client `c` finds them by name, as a reconciler would: Contoso
    /// and the catch-all company `default` (with their locations), Contoso's contacts, the
    /// catch-all's "Default Contact", the ticket settings and `closed_status`, the status the
    /// operator closes tickets with.
    pub async fn resolve(
        c: &dyn psa_operator::psa::Psa,
        contoso: &psa_operator::psa::Company,
        default: &psa_operator::psa::Company,
        closed_status: &str,
    ) -> DemoIds {
        let contact = |e: &'static str| async move {
            c.find_contact_by_email(ContactEmail::new(&contoso.id, e))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{e} at {}", contoso.name))
                .id
        };
        let default_contact = c
            .find_contact_by_name(&default.id, "Default Contact")
            .await
            .unwrap()
            .expect("the catch-all company's Default Contact")
            .id;
        let statuses = c.statuses(None).await.unwrap();
        let status = |n: &str| {
            statuses
                .iter()
                .find(|s| s.name == n)
                .unwrap_or_else(|| panic!("status {n} not in {statuses:?}"))
                .id
                .clone()
        };
        let issue_types = c.issue_types(None).await.unwrap();
        let issue = id_of(&issue_types, "SaaS Alerts");
        let subs = c.sub_issue_types(None, &issue).await.unwrap();
        DemoIds {
            contoso: contoso.id.clone(),
            contoso_location: contoso.location_id.clone(),
            jane: contact(JANE).await,
            alert_contact: contact("alerts@contoso.example").await,
            default_customer: default.id.clone(),
            default_location: default.location_id.clone(),
            default_contact,
            queue: id_of(&c.boards().await.unwrap(), "Security Alerts"),
            status_new: status("New"),
            closed: status(closed_status),
            alert_type: id_of(&c.ticket_types(None).await.unwrap(), "Alert"),
            high: id_of(&c.priorities().await.unwrap(), "High"),
            source: id_of(&c.sources().await.unwrap(), "SaaS Alerts"),
            issue,
            sub_general: id_of(&subs, "General"),
            sub_iam: id_of(&subs, "IAM"),
        }
    }

    /// The snapshot a reconciler would publish for the demo connection: Contoso mapped (default
    /// contact Alert Contact, `contract` when given), the catch-all Default Customer, the demo
    /// ticket settings with the IAM sub-issue type for Multiple MFA Failures.
    pub fn snapshot(
        &self,
        key: &ConnectionKey,
        psa: Arc<dyn TicketDesk>,
        grouping: Grouping,
        contract: Option<&String>,
    ) -> ResolvedConnection {
        let mut conn = snapshot(key, psa, grouping);
        conn.customers = [(
            ORG.into(),
            Arc::new(ResolvedCustomer {
                mapping_name: "contoso".into(),
                company_id: self.contoso.clone(),
                company_name: ORG.into(),
                location_id: self.contoso_location.clone(),
                default_contact_id: Some(self.alert_contact.clone()),
                contract_id: contract.cloned(),
                ticket: None,
            }),
        )]
        .into();
        conn.catch_all = Some(ResolvedCustomer {
            mapping_name: String::new(),
            company_id: self.default_customer.clone(),
            company_name: "Default Customer".into(),
            location_id: self.default_location.clone(),
            default_contact_id: Some(self.default_contact.clone()),
            contract_id: None,
            ticket: None,
        });
        conn.ticket = ResolvedTicket {
            board_id: Some(self.queue.clone()),
            source: ResolvedValue::One(self.source.clone()),
            status: ResolvedValue::One(self.status_new.clone()),
            type_: ResolvedValue::One(self.alert_type.clone()),
            priority: ResolvedValue::One(self.high.clone()),
            issue_type_default: IssueTypeIds {
                issue_type: Some(self.issue.clone()),
                sub_issue_type: Some(self.sub_general.clone()),
            },
            issue_type_overrides: [(
                "Multiple MFA Failures".to_string(),
                IssueTypeIds {
                    issue_type: Some(self.issue.clone()),
                    sub_issue_type: Some(self.sub_iam.clone()),
                },
            )]
            .into(),
            closed_status_id: Some(self.closed.clone()),
            ..Default::default()
        };
        conn
    }
}

pub fn test_options() -> DispatcherOptions {
    DispatcherOptions {
        ticket_state_ttl: Duration::ZERO,
        idle_poll: Duration::from_millis(100),
        failsafe_retry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(1),
        storm_sweep: Duration::from_millis(100),
        ..Default::default()
    }
}

pub fn alert(id: &str, user: &str, alert_type: &str) -> Event {
    Event {
        id: id.into(),
        organization: ORG.into(),
        user: Some(user.into()),
        alert_type: alert_type.into(),
        title: alert_type.into(),
        description: format!("{alert_type} for {user}"),
        url: Some(format!("https://alerts.example/e/{id}")),
        ..Event::sample()
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
