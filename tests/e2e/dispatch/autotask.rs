//! The dispatcher against the Autotask sandbox: the real client, state read back from the
//! sandbox, a technician completing tickets through the Autotask REST API; the seed's grouping
//! examples, the contact fallback chain, issue / sub-issue types, findings, a crash mid-burst
//! and the failsafe e-mail when the database is over its threshold.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use psa_operator::api::Grouping;
use psa_operator::psa::autotask::{AutotaskClient, AutotaskConfig};
use psa_operator::psa::{CloseTicket, Directory, Psa, TicketDesk};
use psa_operator::resolved::*;
use psa_operator::sandbox::RunningSandbox;
use serde_json::{json, Value};

use super::harness::{alert, eventually, id_of, DemoIds, Harness, JANE, ORG};
use super::scenarios;
use super::smtp;
use super::view::{id_at, PsaView, TicketView};

/// The demo ids, and what only the Autotask scenarios use.
pub struct Ids {
    pub demo: DemoIds,
    /// Contoso's "Managed Security" contract.
    pub contract: String,
    pub security: String,
    pub sub_leak: String,
}

impl std::ops::Deref for Ids {
    type Target = DemoIds;
    fn deref(&self) -> &DemoIds {
        &self.demo
    }
}

pub struct At {
    pub sb: RunningSandbox,
    pub client: Arc<AutotaskClient>,
    /// The technician's own API session.
    pub technician: AutotaskClient,
    pub ids: Ids,
}

pub fn config(sb: &RunningSandbox) -> AutotaskConfig {
    crate::fixtures::demo::autotask_config(sb)
}

fn key() -> ConnectionKey {
    ConnectionKey::new("psa", "demo-autotask")
}

impl At {
    pub async fn start() -> At {
        let sb = crate::fixtures::demo::autotask_sandbox().await;
        let client = Arc::new(AutotaskClient::new(config(&sb)).unwrap());
        let technician = AutotaskClient::new(config(&sb)).unwrap();
        let c = client.as_ref();
        let contoso = crate::fixtures::demo::company_named(c, ORG).await;
        let default = crate::fixtures::demo::company_named(c, "Default Customer").await;
        let contract = crate::fixtures::demo::managed_security(c, &contoso)
            .await
            .id;
        let demo = DemoIds {
            // Autotask tickets take no location: the operator leaves it out.
            contoso_location: None,
            default_location: None,
            ..DemoIds::resolve(c, &contoso, &default, "Complete").await
        };
        let issue_types = c.issue_types(None).await.unwrap();
        let subs = c.sub_issue_types(None, &demo.issue).await.unwrap();
        let ids = Ids {
            demo,
            contract,
            security: id_of(&issue_types, "Security"),
            sub_leak: id_of(&subs, "Data Leakage"),
        };
        sb.admin().clear_calls();
        At {
            sb,
            client,
            technician,
            ids,
        }
    }

    /// The snapshot a reconciler would publish for the demo Autotask connection: Contoso mapped
    /// (default contact Alert Contact, contract Managed Security), the catch-all Default Customer.
    pub fn snapshot(&self, grouping: Grouping) -> ResolvedConnection {
        let ids = &self.ids;
        ids.snapshot(&key(), self.client.clone(), grouping, Some(&ids.contract))
    }

    /// Tickets (with their notes) as the sandbox holds them, oldest first.
    pub async fn tickets(&self) -> Vec<Value> {
        crate::sandbox_admin::tickets(&self.sb).await
    }
}

pub fn notes(ticket: &Value) -> Vec<String> {
    ticket["notes"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|n| n["description"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl PsaView for At {
    async fn tickets(&self) -> Vec<TicketView> {
        At::tickets(self)
            .await
            .into_iter()
            .map(|t| TicketView {
                id: t["id"].to_string(),
                summary: t["title"].as_str().unwrap_or_default().into(),
                closed: t["status"] == 5 && !t["completedDate"].is_null(),
                notes: notes(&t),
                description: t["description"].as_str().unwrap_or_default().into(),
                company_id: id_at(&t["companyID"]).unwrap_or_default(),
                contact_id: id_at(&t["contactID"]),
                contract_id: id_at(&t["contractID"]),
                status_id: id_at(&t["status"]),
            })
            .collect()
    }
    /// The technician sets the ticket to Complete through the REST API (with a note).
    async fn technician_closes(&self, id: &str) {
        self.technician
            .close_ticket(CloseTicket::new(&id.to_string()).note("Not an issue; limits raised."))
            .await
            .unwrap();
    }
    fn calls(&self) -> u64 {
        self.sb.admin().calls().total
    }
    fn clear_calls(&self) {
        self.sb.admin().clear_calls();
    }
}

/// Seed 000, "User", every step, on Autotask; the tickets carry the mapped company, the user's
/// contact, the queue, the mapping's contract, the default issue / sub-issue type and the
/// override for Multiple MFA Failures, and our marker in `externalID`.
#[tokio::test]
async fn seed_user_grouping_autotask() {
    let at = At::start().await;
    let mut h = Harness::new(at.snapshot(Grouping::User));
    h.start();
    scenarios::seed_user(&at, &h).await;
    let t = at.tickets().await;
    let ids = &at.ids;
    let s = |v: &Value| v.to_string();
    assert_eq!(s(&t[0]["companyID"]), ids.contoso);
    assert_eq!(s(&t[0]["contactID"]), ids.jane, "the user's own contact");
    assert_eq!(s(&t[0]["queueID"]), ids.queue);
    assert_eq!(
        s(&t[0]["contractID"]),
        ids.contract,
        "the mapping's contract"
    );
    assert_eq!(s(&t[0]["ticketType"]), ids.alert_type);
    assert_eq!(s(&t[0]["source"]), ids.source);
    assert_eq!(s(&t[0]["issueType"]), ids.issue);
    assert_eq!(s(&t[0]["subIssueType"]), ids.sub_general);
    assert_eq!(s(&t[1]["subIssueType"]), ids.sub_iam);
    assert!(
        t[0]["externalID"].as_str().unwrap().starts_with("psaop-"),
        "{}",
        t[0]
    );
    // The technician's completion note is on the closed ticket, after ours.
    let n = notes(&t[0]);
    assert_eq!(
        n.last().map(String::as_str),
        Some("Not an issue; limits raised.")
    );
}

/// The seed guide's five issue / sub-issue type combinations, as Autotask stores them: none;
/// issue type only; issue + sub-issue type; an override with its own issue type only; an
/// override with issue + sub-issue type.
#[tokio::test]
async fn the_five_issue_type_combinations_autotask() {
    let at = At::start().await;
    let ids = &at.ids;
    let both = |i: &str, s: &str| IssueTypeIds {
        issue_type: Some(i.to_string()),
        sub_issue_type: Some(s.to_string()),
    };
    let only = |i: &str| IssueTypeIds {
        issue_type: Some(i.to_string()),
        sub_issue_type: None,
    };
    type Case = (
        IssueTypeIds,
        Vec<(String, IssueTypeIds)>,
        &'static str,
        Option<String>,
        Option<String>,
    );
    let cases: Vec<Case> = vec![
        (
            IssueTypeIds::default(),
            vec![],
            "Too Many Downloads",
            None,
            None,
        ),
        (
            only(&ids.security),
            vec![],
            "Too Many Downloads",
            Some(ids.security.clone()),
            None,
        ),
        (
            both(&ids.issue, &ids.sub_general),
            vec![],
            "Too Many Downloads",
            Some(ids.issue.clone()),
            Some(ids.sub_general.clone()),
        ),
        (
            both(&ids.issue, &ids.sub_general),
            vec![("Too Many Downloads".into(), only(&ids.security))],
            "Too Many Downloads",
            Some(ids.security.clone()),
            None,
        ),
        (
            only(&ids.security),
            vec![("Too Many Downloads".into(), both(&ids.issue, &ids.sub_leak))],
            "Too Many Downloads",
            Some(ids.issue.clone()),
            Some(ids.sub_leak.clone()),
        ),
    ];
    for (n, (default, overrides, alert_type, issue, sub)) in cases.into_iter().enumerate() {
        let mut conn = at.snapshot(Grouping::UserAndAlert);
        conn.ticket.issue_type_default = default;
        conn.ticket.issue_type_overrides = overrides.into_iter().collect();
        let mut h = Harness::new(conn);
        h.start();
        let user = format!("user{n}@contoso.example");
        h.send_and_settle(vec![alert(&format!("i{n}"), &user, alert_type)])
            .await;
        let t = at.tickets().await;
        let t = t.last().unwrap();
        let got = |f: &str| t[f].as_i64().map(|v| v.to_string());
        assert_eq!(
            (got("issueType"), got("subIssueType")),
            (issue, sub),
            "case {n}: {t}"
        );
        h.kill().await;
    }
}

/// The Autotask database is over its threshold (other integrations used it up): the client
/// holds its calls, the event runs out of attempts and goes out by failsafe e-mail; nothing is
/// sent to Autotask but the threshold reading.
#[tokio::test]
async fn failsafe_email_when_the_database_is_over_its_threshold() {
    if !smtp::available() {
        return;
    }
    let at = At::start().await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_sandbox/database", at.sb.base_url()))
        .json(&json!({"requestsThisHour": 10_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let port = smtp::free_port();
    let dir = tempfile::tempdir().unwrap();
    let server = smtp::SmtpServer::start(port, dir.path()).await;
    // A fresh client (its first call reads the threshold) retrying held calls soon.
    let mut cfg = config(&at.sb);
    cfg.limits.hold_retry_after = Duration::from_millis(100);
    let client = Arc::new(AutotaskClient::new(cfg).unwrap());
    let mut conn = at.snapshot(Grouping::User);
    conn.psa = client.clone();
    conn.dispatch.max_attempts = 2;
    conn.failsafe = Some(smtp::loopback_failsafe(port, &["soc@msp.example"], None));
    let mut h = Harness::new(conn);
    h.start();
    at.sb.admin().clear_calls();
    h.send(vec![alert("t1", JANE, "Too Many Downloads")]).await;
    h.wait_counters("a dead letter", |c| c.dead_letters == 1)
        .await;
    eventually("the failsafe e-mail", || !server.messages().is_empty()).await;
    let msg = &server.messages()[0];
    assert!(smtp::subject(msg).ends_with("integration failsafe used"));
    assert!(
        smtp::body(msg).contains("request threshold"),
        "{}",
        smtp::body(msg)
    );
    assert_eq!(client.database_share(), Some(1.0));
    let calls = at.sb.admin().calls();
    assert_eq!(
        calls.total,
        calls.count("GET", "/atservicesrest/V1.0/ThresholdInformation"),
        "only threshold readings while held: {calls:?}"
    );
    assert!(at.tickets().await.is_empty());
}

/// Other integrations have used 95 % of the database's hour: the client holds its calls (a
/// rate-limit wait, no attempt spent), so the alert neither reaches Autotask nor runs out of
/// attempts into a dead letter; once the use falls, the ticket is created. The threshold is read
/// and the hold retried every 100 ms here (a minute by default).
#[tokio::test]
async fn alerts_wait_while_other_integrations_use_the_database() {
    let at = At::start().await;
    let http = reqwest::Client::new();
    let set_use = |n: u64| {
        let http = http.clone();
        let url = format!("{}/_sandbox/database", at.sb.base_url());
        async move {
            let r = http
                .post(url)
                .json(&json!({ "requestsThisHour": n }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    set_use(9_500).await;
    let mut cfg = config(&at.sb);
    cfg.limits.hold_retry_after = Duration::from_millis(100);
    cfg.limits.threshold_check_every = Duration::from_millis(100);
    let client = Arc::new(AutotaskClient::new(cfg).unwrap());
    let mut conn = at.snapshot(Grouping::User);
    conn.psa = client.clone();
    conn.dispatch.max_attempts = 2;
    let mut h = Harness::new(conn);
    h.start();
    at.sb.admin().clear_calls();
    h.send(vec![alert("held-1", JANE, "Too Many Downloads")])
        .await;
    // Far longer than two attempts with 100 ms waits would take.
    let readings = || {
        at.sb
            .admin()
            .calls()
            .count("GET", "/atservicesrest/V1.0/ThresholdInformation")
    };
    eventually("several threshold readings while held", || readings() >= 5).await;
    let c = h.counters().await;
    assert_eq!(
        (c.pending, c.dead_letters, c.delivered),
        (1, 0, 0),
        "held, not failed"
    );
    assert!(at.tickets().await.is_empty());
    let b = client.shared_budget().expect("a reading");
    assert!((0.95..1.0).contains(&b.used), "{b:?}");
    assert_eq!(b.per_hour, Some(10_000));
    let calls = at.sb.admin().calls();
    assert_eq!(
        calls.total,
        calls.count("GET", "/atservicesrest/V1.0/ThresholdInformation"),
        "nothing but threshold readings while held: {calls:?}"
    );

    set_use(0).await;
    h.wait_counters("the held alert delivered", |c| c.delivered == 1)
        .await;
    assert_eq!(h.counters().await.dead_letters, 0);
    let tickets = at.tickets().await;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0]["companyID"].to_string(), at.ids.contoso);
}

/// Seed 003's three modes per ticket field, on Autotask tickets: the ticket type unset (not
/// sent: Autotask's default applies), the status a single value, the priority a map by severity
/// with a default, the source a custom map keyed by the alert type. Read back from the
/// sandbox's tickets, as Autotask stores them.
#[tokio::test]
async fn unset_single_and_mapped_values_on_autotask_tickets() {
    use psa_operator::api::EventField;
    let at = At::start().await;
    let priorities = at.client.priorities().await.unwrap();
    let sources = at.client.sources().await.unwrap();
    let mut conn = at.snapshot(Grouping::UserAndAlert);
    conn.ticket.type_ = ResolvedValue::NotSet;
    conn.ticket.status = ResolvedValue::One(at.ids.status_new.clone());
    conn.ticket.priority = ResolvedValue::Map {
        key: EventField::Severity,
        map: [("critical".to_string(), id_of(&priorities, "Critical"))].into(),
        default: Some(id_of(&priorities, "Medium")),
    };
    conn.ticket.source = ResolvedValue::Map {
        key: EventField::AlertType,
        map: [("too many downloads".to_string(), id_of(&sources, "SIEM"))].into(),
        default: Some(id_of(&sources, "SaaS Alerts")),
    };
    let mut h = Harness::new(conn);
    h.start();
    let mut critical = alert("v1", JANE, "Too Many Downloads");
    critical.severity = Some("Critical".into());
    let mut low = alert("v2", JANE, "Multiple MFA Failures");
    low.severity = Some("Low".into());
    h.send_and_settle(vec![critical, low]).await;
    let tickets = at.tickets().await;
    assert_eq!(tickets.len(), 2, "{tickets:?}");
    let by_title = |part: &str| {
        tickets
            .iter()
            .find(|t| t["title"].as_str().unwrap_or_default().contains(part))
            .unwrap_or_else(|| panic!("no ticket titled {part}: {tickets:?}"))
    };
    let (d, m) = (by_title("Too Many Downloads"), by_title("Multiple MFA"));
    let id = |v: &Value| v.to_string();
    assert_eq!(id(&d["priority"]), id_of(&priorities, "Critical"), "mapped");
    assert_eq!(id(&m["priority"]), id_of(&priorities, "Medium"), "default");
    assert_eq!(id(&d["source"]), id_of(&sources, "SIEM"), "custom key");
    assert_eq!(id(&m["source"]), id_of(&sources, "SaaS Alerts"));
    for t in [d, m] {
        assert_eq!(id(&t["status"]), at.ids.status_new, "single value");
        assert!(t["ticketType"].is_null(), "unset is not sent: {t}");
    }
}
