//! The dispatcher end to end: worker + real SQLite store + a PSA, grouping as in the seed's
//! worked examples, routing and contact fallback, findings lifecycle, failsafe e-mail, crash
//! idempotency, held connections, groupWait, and the PSA calls each costs.

pub mod autotask;
pub mod bms;
pub mod cw;
pub mod fake_psa;
pub mod harness;
mod lifecycle;
pub mod problem_events;
mod scenarios;
pub mod smtp;
mod store_faults;
mod storm;
mod view;

use std::sync::Arc;
use std::time::Duration;

use fake_psa::FakePsa;
use harness::*;
use psa_operator::api::Grouping;
use psa_operator::dispatch::event::EventKind;
use psa_operator::psa::PsaError;
use psa_operator::resolved::ConnectionKey;

fn key() -> ConnectionKey {
    ConnectionKey::new("psa", "acme")
}

fn fake_harness(grouping: Grouping) -> (FakePsa, Harness) {
    let psa = FakePsa::new();
    let h = Harness::new(snapshot(&key(), Arc::new(psa.clone()), grouping));
    (psa, h)
}

/// The crash between "created in the PSA" and "recorded locally": the restarted dispatcher
/// finds the ticket by its marker instead of creating a second one.
#[tokio::test]
async fn crash_after_create_makes_no_duplicate() {
    let (psa, mut h) = fake_harness(Grouping::User);
    psa.with(|s| s.hang_after_create = true);
    let hung = psa.hung.clone();
    let hung = hung.notified();
    h.start();
    h.send(vec![alert("a1", JANE, "Too Many Downloads")]).await;
    tokio::time::timeout(Duration::from_secs(60), hung)
        .await
        .expect("create reached");
    h.kill().await;
    assert_eq!(psa.tickets().len(), 1, "the PSA has the ticket");
    assert_eq!(
        h.counters().await.delivered,
        0,
        "but the store never recorded it"
    );
    psa.with(|s| s.hang_after_create = false);
    h.reopen_store();
    h.start();
    h.wait_counters("the event delivered after restart", |c| c.delivered == 1)
        .await;
    assert_eq!(psa.tickets().len(), 1, "no duplicate ticket");
    assert_eq!(psa.calls("find_ticket_by_marker"), 1);
    assert_eq!(psa.calls("create_ticket"), 1);
    // The group is indexed to the recovered ticket: the next alert is a note on it.
    h.send_and_settle(vec![alert("a2", JANE, "Too Many Uploads")])
        .await;
    let t = psa.tickets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].notes.len(), 1);
}

/// The crash between "note added in the PSA" and "recorded locally": the restarted dispatcher
/// sees the note (by its event id line) and does not add it twice.
#[tokio::test]
async fn crash_after_note_makes_no_duplicate() {
    let (psa, mut h) = fake_harness(Grouping::User);
    h.start();
    h.send_and_settle(vec![alert("a1", JANE, "Too Many Downloads")])
        .await;
    psa.with(|s| s.hang_after_note = true);
    let hung = psa.hung.clone();
    let hung = hung.notified();
    h.send(vec![alert("a2", JANE, "Too Many Uploads")]).await;
    tokio::time::timeout(Duration::from_secs(60), hung)
        .await
        .expect("note reached");
    h.kill().await;
    psa.with(|s| s.hang_after_note = false);
    h.reopen_store();
    h.start();
    h.wait_counters("both delivered", |c| c.delivered == 2)
        .await;
    let t = psa.tickets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].notes.len(), 1, "the note is there once");
    assert_eq!(psa.calls("note_texts"), 1);
    assert_eq!(psa.calls("add_note"), 1);
    // A first attempt never pays for the check.
    h.send_and_settle(vec![alert("a3", JANE, "Too Many Uploads")])
        .await;
    assert_eq!(psa.calls("note_texts"), 1);
    assert_eq!(psa.tickets()[0].notes.len(), 2);
}

/// Transient errors are retried with backoff; a create that timed out after the PSA stored it
/// is found by its marker; permanent errors do not burn retries.
#[tokio::test]
async fn transient_retries_and_permanent_errors() {
    let (psa, mut h) = fake_harness(Grouping::User);
    let busy = || PsaError::Transient {
        status: Some(503),
        message: "busy".into(),
        retry_after: None,
    };
    psa.fail_next("create_ticket", vec![busy(), busy()]);
    h.start();
    h.send_and_settle(vec![alert("a1", JANE, "Too Many Downloads")])
        .await;
    assert_eq!(psa.tickets().len(), 1);
    assert_eq!(psa.calls("create_ticket"), 3);
    // Each retry looked for the marker first (an earlier attempt may have reached the PSA).
    assert_eq!(psa.calls("find_ticket_by_marker"), 2);

    // A permanent rejection: one attempt, then the dead letters.
    psa.reset_calls();
    psa.fail_next(
        "create_ticket",
        vec![PsaError::Permanent {
            status: Some(400),
            message: "board is inactive".into(),
        }],
    );
    h.send_and_settle(vec![alert(
        "b1",
        "bob@contoso.example",
        "Too Many Downloads",
    )])
    .await;
    assert_eq!(psa.calls("create_ticket"), 1);
    let dead = h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("board is inactive"));

    // Transient errors beyond maxAttempts (3): dead letter after three attempts.
    psa.reset_calls();
    psa.fail_next("create_ticket", vec![busy(), busy(), busy()]);
    h.send_and_settle(vec![alert(
        "c1",
        "carl@contoso.example",
        "Too Many Downloads",
    )])
    .await;
    assert_eq!(psa.calls("create_ticket"), 3);
    let dead = h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead[1]
        .last_error
        .as_deref()
        .unwrap()
        .starts_with("gave up after 3 attempts"));
}

/// Findings (seed 003): a ticket per finding, comments as notes, the resolution as a note that
/// closes the ticket; a ticket a technician closed still gets its comment and resolution.
#[tokio::test]
async fn findings_lifecycle_fake() {
    let (psa, mut h) = fake_harness(Grouping::User);
    h.start();
    h.send_and_settle(vec![finding("f1-created", EventKind::FindingCreated, "F1")])
        .await;
    // A replayed "created" of the same finding (other event id) makes no second ticket.
    h.send_and_settle(vec![finding(
        "f1-created-again",
        EventKind::FindingCreated,
        "F1",
    )])
    .await;
    assert_eq!(psa.tickets().len(), 1);
    let mut c = finding("f1-c1", EventKind::FindingCommented, "F1");
    c.comment = Some("Called the user: travel confirmed.".into());
    c.author = Some("Sam".into());
    h.send_and_settle(vec![c]).await;
    let mut r = finding("f1-resolved", EventKind::FindingResolved, "F1");
    r.status = Some("False Positive".into());
    h.send_and_settle(vec![r]).await;
    let t = &psa.tickets()[0];
    assert_eq!(t.notes.len(), 2);
    assert!(t.notes[0].contains("Comment on the finding by Sam"));
    assert!(t.notes[1].contains("The finding was resolved (False Positive)"));
    assert!(t.closed);
    assert_eq!(t.status_id.as_deref(), Some("closed-by-operator"));

    // Second finding: the technician closes its ticket before the comment and the resolution.
    h.send_and_settle(vec![finding("f2-created", EventKind::FindingCreated, "F2")])
        .await;
    let id2 = psa.tickets()[1].id.clone();
    psa.close(&id2);
    let mut c = finding("f2-c1", EventKind::FindingCommented, "F2");
    c.comment = Some("Still investigating".into());
    h.send_and_settle(vec![
        c,
        finding("f2-resolved", EventKind::FindingResolved, "F2"),
    ])
    .await;
    let t = &psa.tickets()[1];
    assert_eq!(
        t.notes.len(),
        2,
        "one-way sync: notes reach the closed ticket"
    );
    assert_eq!(
        t.status_id.as_deref(),
        Some("tech-closed"),
        "the technician's status stays"
    );
    assert_eq!(psa.tickets().len(), 2);

    // A comment on a finding never seen: its ticket is created first, carrying the comment.
    let mut c = finding("f3-c1", EventKind::FindingCommented, "F3");
    c.comment = Some("First we hear of it".into());
    h.send_and_settle(vec![c]).await;
    let t = &psa.tickets()[2];
    assert!(t.new.description.contains("First we hear of it"));
}

/// Alertmanager: firing opens the ticket, resolved adds the resolution note.
#[tokio::test]
async fn alertmanager_resolved_becomes_a_note() {
    let (psa, mut h) = fake_harness(Grouping::UserAndAlert);
    h.start();
    let mut firing = alert("am-1", JANE, "ImpossibleTravel");
    firing.kind = EventKind::AlertFiring;
    let mut resolved = alert("am-2", JANE, "ImpossibleTravel");
    resolved.kind = EventKind::AlertResolved;
    h.send_and_settle(vec![firing, resolved]).await;
    let t = psa.tickets();
    assert_eq!(t.len(), 1);
    assert!(t[0].notes[0].starts_with("Resolved: ImpossibleTravel"));
    // A resolved alert of a group without a ticket adds nothing anywhere.
    let mut lone = alert("am-3", JANE, "DiskFull");
    lone.kind = EventKind::AlertResolved;
    h.send_and_settle(vec![lone]).await;
    assert_eq!(psa.tickets().len(), 1);
}

/// Routing (mapping → automatic mapping → catch-all) and the contact chain (user e-mail →
/// customer default → catch-all contact; ambiguous → default), with cached lookups.
#[tokio::test]
async fn routing_and_contact_fallback_chain() {
    let psa = FakePsa::new();
    psa.add_contact("501", "10", JANE);
    psa.add_contact("502", "10", "twin@contoso.example");
    psa.add_contact("503", "10", "twin@contoso.example");
    psa.add_company("20", "FAB", "Fabrikam", None);
    let mut conn = snapshot(&key(), Arc::new(psa.clone()), Grouping::User);
    conn.account_mapping = psa_operator::api::AccountMapping::ByCompanyName;
    let mut h = Harness::new(conn);
    h.start();
    let mut fab = alert("f1", "ann@fabrikam.example", "Too Many Downloads");
    fab.organization = "Fabrikam".into();
    let mut unknown = alert("u1", "zed@nowhere.example", "Too Many Downloads");
    unknown.organization = "Nowhere Inc".into();
    let mut unknown2 = alert("u2", "zoe@nowhere.example", "Too Many Downloads");
    unknown2.organization = "Nowhere Inc".into();
    h.send_and_settle(vec![
        alert("j1", JANE, "Too Many Downloads"),
        alert("b1", "bob@contoso.example", "Too Many Downloads"),
        alert("t1", "twin@contoso.example", "Too Many Downloads"),
        alert("n1", "Jane Doe", "Too Many Downloads"),
        fab,
        unknown,
        unknown2,
    ])
    .await;
    let by_event = |id: &str| {
        psa.tickets()
            .into_iter()
            .find(|t| t.new.description.contains(&format!("Event id: {id}")))
            .unwrap_or_else(|| panic!("no ticket for {id}"))
    };
    // (event, company, contact)
    let table = [
        ("j1", "10", Some("501")), // the user's own contact
        ("b1", "10", Some("100")), // not found → the mapping's default contact
        ("t1", "10", Some("100")), // ambiguous e-mail → default
        ("n1", "10", Some("100")), // a name, not an e-mail → default
        ("f1", "20", None), // auto-mapped, no default: the catch-all contact is another company's
        ("u1", "99", Some("990")), // no match → catch-all company and contact
        ("u2", "99", Some("990")),
    ];
    for (id, company, contact) in table {
        let t = by_event(id);
        assert_eq!(t.new.company_id, company, "{id}");
        assert_eq!(t.new.contact_id.as_deref(), contact, "{id}");
    }
    // The unmatched organization was looked up once (negative caching).
    assert_eq!(psa.calls("find_company_by_name"), 2);
    let stats = h.stats.get(&h.key);
    assert_eq!((stats.auto_matched, stats.auto_unmatched), (1, 1));
    assert_eq!(
        stats.unmatched_organizations,
        vec!["Nowhere Inc".to_string()]
    );
    // A second alert of bob (new key under UserAndAlert would be needed; under User it is a
    // note) costs no second contact lookup for the same company and e-mail.
    let lookups = psa.calls("find_contacts_by_email");
    let mut bob2 = alert("b2", "bob@contoso.example", "Too Many Uploads");
    bob2.organization = "contoso ltd".into();
    h.send_and_settle(vec![bob2]).await;
    assert_eq!(psa.calls("find_contacts_by_email"), lookups);
}

/// Ticket fields from the snapshot: value maps keyed by event fields, issue types with an
/// override, the user's summary template.
#[tokio::test]
async fn ticket_fields_from_the_snapshot() {
    use psa_operator::api::EventField;
    use psa_operator::resolved::{IssueTypeIds, ResolvedValue};
    let psa = FakePsa::new();
    let mut conn = snapshot(&key(), Arc::new(psa.clone()), Grouping::UserAndAlert);
    conn.ticket.board_id = Some("B1".into());
    conn.ticket.source = ResolvedValue::One("S1".into());
    conn.ticket.priority = ResolvedValue::Map {
        key: EventField::Severity,
        map: [("critical".to_string(), "P1".to_string())].into(),
        default: Some("P3".into()),
    };
    conn.ticket.issue_type_default = IssueTypeIds {
        issue_type: Some("I1".into()),
        sub_issue_type: Some("SI1".into()),
    };
    conn.ticket.issue_type_overrides = [(
        "Too Many Downloads".to_string(),
        IssueTypeIds {
            issue_type: Some("I2".into()),
            sub_issue_type: Some("SI2".into()),
        },
    )]
    .into();
    conn.ticket.summary_template =
        Some("[{{ severity|upper }}] {{ alertType }}: {{ user }}".into());
    let mut h = Harness::new(conn);
    h.start();
    let mut low = alert("m1", JANE, "Multiple MFA Failures");
    low.severity = Some("Low".into());
    h.send_and_settle(vec![alert("d1", JANE, "Too Many Downloads"), low])
        .await;
    let t = psa.tickets();
    let find = |prefix: &str| {
        t.iter()
            .find(|t| t.new.summary.starts_with(prefix))
            .map(|t| &t.new)
            .unwrap()
    };
    let (d, m) = (
        find("[CRITICAL] Too Many Downloads"),
        find("[LOW] Multiple MFA Failures"),
    );
    assert_eq!(
        d.summary,
        "[CRITICAL] Too Many Downloads: jane@contoso.example"
    );
    assert_eq!(
        (d.board_id.as_deref(), d.source_id.as_deref()),
        (Some("B1"), Some("S1"))
    );
    assert_eq!(
        (d.priority_id.as_deref(), m.priority_id.as_deref()),
        (Some("P1"), Some("P3"))
    );
    assert_eq!(
        (d.issue_type_id.as_deref(), d.sub_issue_type_id.as_deref()),
        (Some("I2"), Some("SI2"))
    );
    assert_eq!(
        (m.issue_type_id.as_deref(), m.sub_issue_type_id.as_deref()),
        (Some("I1"), Some("SI1"))
    );
    assert_eq!((d.status_id.as_deref(), d.type_id.as_deref()), (None, None));
    assert_eq!(d.location_id.as_deref(), Some("loc-10"));
}

/// A suspended connection holds its events (nothing reaches the PSA) and they flow on resume.
#[tokio::test]
async fn suspended_connection_holds_until_resumed() {
    let (psa, mut h) = fake_harness(Grouping::User);
    h.update(|e| e.suspended = true);
    h.start();
    h.send(vec![
        alert("a1", JANE, "Too Many Downloads"),
        alert("a2", JANE, "Too Many Uploads"),
    ])
    .await;
    // Give the scheduler several rounds to (wrongly) deliver.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(psa.total_calls(), 0);
    }
    assert_eq!(h.counters().await.pending, 2);
    h.update(|e| e.suspended = false);
    h.wait_counters("delivery after resume", |c| c.delivered == 2)
        .await;
    assert_eq!(psa.tickets().len(), 1);
    assert_eq!(psa.tickets()[0].notes.len(), 1);
}

/// groupWait: alerts of one key arriving within the window become the ticket plus one note.
#[tokio::test]
async fn group_wait_merges_a_burst_into_one_note() {
    let psa = FakePsa::new();
    let mut conn = snapshot(&key(), Arc::new(psa.clone()), Grouping::User);
    conn.dispatch.group_wait = Duration::from_millis(800);
    let mut h = Harness::new(conn);
    h.start();
    let burst: Vec<_> = (0..5)
        .map(|i| alert(&format!("g{i}"), JANE, "Too Many Downloads"))
        .collect();
    h.send_and_settle(burst).await;
    let t = psa.tickets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].notes.len(), 1);
    assert!(t[0].notes[0].starts_with("4 alerts in this ticket's group"));
    assert_eq!(psa.calls("add_note"), 1);
}

/// No company to route to: the event is a dead letter and its full content goes by e-mail to
/// a real SMTP server; while SMTP is down the mail is retried, nothing is dropped.
#[tokio::test]
async fn failsafe_email_through_a_real_smtp_server() {
    if !smtp::available() {
        return;
    }
    let psa = FakePsa::new();
    let port = smtp::free_port();
    let mut conn = snapshot(&key(), Arc::new(psa.clone()), Grouping::User);
    conn.catch_all = None;
    conn.failsafe = Some(smtp::loopback_failsafe(
        port,
        &["soc@msp.example", "oncall@msp.example"],
        None,
    ));
    let mut h = Harness::new(conn);
    h.start();
    let mut lost = alert("x1", "max@unmapped.example", "Too Many Downloads");
    lost.organization = "Unmapped Org".into();
    h.send_and_settle(vec![lost]).await;
    // SMTP is down: the dead letter stays, its mail is not marked sent and is retried.
    let dead = h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("Unmapped Org"));
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..200 {
        let d = &h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap()[0];
        if d.failsafe_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = &h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap()[0];
    assert!(!d.failsafe_sent);
    assert!(
        d.failsafe_error.is_some(),
        "the failed mail attempt is recorded"
    );
    let server = smtp::SmtpServer::start(port, dir.path()).await;
    eventually("the failsafe e-mail", || !server.messages().is_empty()).await;
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1, "one mail for all recipients");
    let subject = smtp::subject(&msgs[0]);
    assert!(subject.ends_with("integration failsafe used"), "{subject}");
    assert!(subject.contains("Too Many Downloads"), "{subject}");
    let body = smtp::body(&msgs[0]);
    for part in [
        "Unmapped Org",
        "max@unmapped.example",
        "Severity: critical",
        "https://alerts.example/e/x1",
        "Reason: no PSA company",
    ] {
        assert!(body.contains(part), "missing {part:?} in\n{body}");
    }
    assert!(msgs[0].contains("soc@msp.example") && msgs[0].contains("oncall@msp.example"));
    h.wait_counters("dead letter kept", |c| c.dead_letters == 1)
        .await;
    for _ in 0..200 {
        if h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap()[0].failsafe_sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap()[0].failsafe_sent);
    assert_eq!(h.stats.get(&h.key).failsafe_emails, 1);
    let metrics = h.metrics_text();
    assert!(
        metrics.contains(
            "psa_operator_dispatch_failsafe_emails_total{namespace=\"psa\",connection=\"acme\"} 1"
        ),
        "{metrics}"
    );
}

/// A connection whose settings do not resolve holds its events, then dead-letters them after
/// the hold budget (and mails them with the last failsafe settings seen).
#[tokio::test]
async fn unresolved_connection_holds_then_dead_letters() {
    let (psa, mut h) = fake_harness(Grouping::User);
    h.options.unresolved_hold = Duration::from_millis(600);
    h.update(|e| e.resolved = None);
    h.start();
    h.send(vec![alert("a1", JANE, "Too Many Downloads")]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.counters().await.pending, 1, "held, not dropped");
    h.wait_counters("dead letter after the hold", |c| c.dead_letters == 1)
        .await;
    let d = &h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap()[0];
    assert!(d
        .last_error
        .as_deref()
        .unwrap()
        .contains("settings do not resolve"));
    assert_eq!(psa.total_calls(), 0);
}

fn cw_key() -> ConnectionKey {
    ConnectionKey::new("psa", "demo-cw")
}

/// The scenarios that hold alike on every PSA (`scenarios.rs`), each run once per sandboxed
/// provider of its row: one test per (scenario, provider), e.g.
/// `dispatch::on_each_psa::findings_lifecycle::autotask`, so they run in parallel as before.
/// Provider-specific cases stay in `cw.rs`/`bms.rs`/`autotask.rs` and below.
mod on_each_psa {
    use super::view::DemoPsa;
    use super::{autotask::At, bms::Bms, cw::Cw, scenarios};

    macro_rules! table {
        ($($scenario:ident: [$($provider:ident => $start:expr),+ $(,)?];)+) => {$(
            mod $scenario {
                use super::*;
                $(
                    #[tokio::test]
                    async fn $provider() {
                        let psa = $start;
                        scenarios::$scenario(&psa as &dyn DemoPsa).await;
                    }
                )+
            }
        )+};
    }

    table! {
        contact_fallback_chain: [
            connectwise => Cw::start().await,
            bms => Bms::start().await,
            autotask => At::start().await,
        ];
        findings_lifecycle: [
            connectwise => Cw::start().await,
            bms => Bms::start().await,
            autotask => At::start().await,
        ];
        killed_mid_burst_every_event_once: [
            connectwise => Cw::start().await,
            bms => Bms::start().await,
            autotask => At::start().await,
        ];
        seed_user_and_alert_grouping: [
            connectwise => Cw::start().await,
            autotask => At::start().await,
        ];
        auto_mapped_company_contact_chain: [
            connectwise => Cw::start().await,
            autotask => At::start().await,
        ];
    }
}

fn bms_key() -> ConnectionKey {
    ConnectionKey::new("psa", "demo-bms")
}

/// Seed 000, "User", every step: on the fake, on ConnectWise and on Kaseya BMS (the technician
/// closes through the PSA's API). Provider checks: contact, board, contract, issue types.
#[tokio::test]
async fn seed_user_grouping_fake() {
    let (psa, mut h) = fake_harness(Grouping::User);
    h.start();
    scenarios::seed_user(&psa, &h).await;
}

#[tokio::test]
async fn seed_user_grouping_connectwise() {
    let cw = cw::Cw::start().await;
    let mut h = Harness::new(cw.snapshot(&cw_key(), Grouping::User));
    h.start();
    scenarios::seed_user(&cw, &h).await;
    let t = &cw.tickets().await[0];
    let id = |v: &serde_json::Value| v["id"].to_string();
    assert_eq!(id(&t["company"]), cw.ids.contoso);
    assert_eq!(id(&t["contact"]), cw.ids.jane, "the user's own contact");
    assert_eq!(id(&t["board"]), cw.ids.board);
    assert_eq!(
        id(&t["agreement"]),
        cw.ids.agreement,
        "the mapping's contract"
    );
    assert_eq!(t["priority"]["name"], "Priority 1 - Critical");
    assert!(t["externalXRef"].as_str().unwrap().starts_with("psaop-"));
}

#[tokio::test]
async fn seed_user_grouping_bms() {
    let bms = bms::Bms::start().await;
    let mut h = Harness::new(bms.snapshot(&bms_key(), Grouping::User));
    h.start();
    scenarios::seed_user(&bms, &h).await;
    let t = bms.tickets().await;
    assert_eq!(t[0]["accountId"].to_string(), bms.ids.contoso);
    assert_eq!(t[0]["contactId"].to_string(), bms.ids.jane);
    assert_eq!(t[0]["queueId"].to_string(), bms.ids.queue);
    // Default issue / sub-issue type, and the override for Multiple MFA Failures.
    assert_eq!(t[0]["issueTypeId"].to_string(), bms.ids.issue);
    assert_eq!(t[0]["subIssueTypeId"].to_string(), bms.ids.sub_general);
    assert_eq!(t[1]["subIssueTypeId"].to_string(), bms.ids.sub_iam);
    crate::bms_contract::assert_contract(&bms.sb).await;
}

/// Seed 000, "User+Alert", every step, on each provider.
#[tokio::test]
async fn seed_user_and_alert_grouping_fake() {
    let (psa, mut h) = fake_harness(Grouping::UserAndAlert);
    h.start();
    scenarios::seed_user_and_alert(&psa, &h).await;
}

#[tokio::test]
async fn seed_user_and_alert_grouping_bms() {
    let bms = bms::Bms::start().await;
    let mut h = Harness::new(bms.snapshot(&bms_key(), Grouping::UserAndAlert));
    h.start();
    scenarios::seed_user_and_alert(&bms, &h).await;
    crate::bms_contract::assert_contract(&bms.sb).await;
}

/// PSA calls for a first alert, a follow-up alert and a burst of 100 alerts of one key, with
/// the ticket re-read before every note (ticketStateTtl 0): contact lookup + create; open
/// check + note; 100 × (check + note).
#[tokio::test]
async fn psa_calls_fake() {
    let (psa, mut h) = fake_harness(Grouping::User);
    psa.add_contact("501", "10", JANE);
    h.start();
    assert_eq!(scenarios::psa_calls(&psa, &h, "fake").await, (2, 2, 200));
}

#[tokio::test]
async fn psa_calls_connectwise() {
    let cw = cw::Cw::start().await;
    let mut h = Harness::new(cw.snapshot(&cw_key(), Grouping::User));
    h.start();
    assert_eq!(
        scenarios::psa_calls(&cw, &h, "ConnectWise sandbox").await,
        (2, 2, 200)
    );
}

/// A burst of 300 alerts (30 users × 10) on ConnectWise with the default dispatch settings:
/// ConnectWise documents no hourly limit, so no budget holds the burst back (the former
/// default of 1,500 an hour allowed 75 calls at once, then one every 2.4 s: about 25 minutes).
#[tokio::test]
async fn a_burst_of_300_alerts_on_connectwise_defaults_is_delivered_in_minutes() {
    let cw = cw::Cw::start().await;
    let mut conn = cw.snapshot(&cw_key(), Grouping::User);
    conn.dispatch = psa_operator::resolved::DispatchConfig::for_provider(Some(
        psa_operator::psa::Provider::ConnectWise,
    ));
    assert_eq!(conn.dispatch.shown_requests_per_hour(), None);
    let mut h = Harness::new(conn);
    h.start();
    cw.clear_calls();
    let started = std::time::Instant::now();
    let burst: Vec<_> = (0..300)
        .map(|i| {
            alert(
                &format!("burst-{i}"),
                &format!("user{}@contoso.example", i % 30),
                "Too Many Downloads",
            )
        })
        .collect();
    h.send(burst).await;
    loop {
        let c = h.counters().await;
        if c.delivered + c.dead_letters >= 300 {
            assert_eq!(c.dead_letters, 0);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "300 alerts not delivered in 2 minutes: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let calls = cw.calls();
    eprintln!("300 alerts on ConnectWise defaults: {took:?}, {calls} PSA calls");
    assert_eq!(cw.tickets().await.len(), 30);
    assert!(
        calls > 75,
        "more calls than the old default's burst: {calls}"
    );
}

/// BMS reads its note types once, on the client's first note.
#[tokio::test]
async fn psa_calls_bms() {
    let bms = bms::Bms::start().await;
    let mut h = Harness::new(bms.snapshot(&bms_key(), Grouping::User));
    h.start();
    assert_eq!(
        scenarios::psa_calls(&bms, &h, "Kaseya BMS sandbox").await,
        (2, 3, 200)
    );
}

/// With a ticketStateTtl of 10 s an "open" answer is trusted that long, so a burst costs about
/// one call per alert (the default is 0: always ask before a note; groupWait keeps bursts cheap).
#[tokio::test]
async fn psa_calls_connectwise_ticket_state_ttl_10s() {
    let cw = cw::Cw::start().await;
    let mut h = Harness::new(cw.snapshot(&cw_key(), Grouping::User));
    h.options.ticket_state_ttl = Duration::from_secs(10);
    h.start();
    let (first, follow, burst) = scenarios::psa_calls(&cw, &h, "ConnectWise sandbox").await;
    assert_eq!((first, follow), (2, 1));
    assert!((100..110).contains(&burst), "{burst}");
}

/// groupWait of 1 s: the burst of 100 becomes the follow-up's note plus one merged note.
#[tokio::test]
async fn psa_calls_connectwise_group_wait() {
    let cw = cw::Cw::start().await;
    let mut conn = cw.snapshot(&cw_key(), Grouping::User);
    conn.dispatch.group_wait = Duration::from_secs(1);
    let mut h = Harness::new(conn);
    h.start();
    h.send_and_settle(vec![alert("first", JANE, "Too Many Downloads")])
        .await;
    cw.clear_calls();
    let burst: Vec<_> = (0..100)
        .map(|i| alert(&format!("b{i}"), JANE, "Too Many Downloads"))
        .collect();
    h.send_and_settle(burst).await;
    let calls = cw.calls();
    eprintln!("PSA calls (ConnectWise sandbox, groupWait 1s): burst of 100 {calls}");
    let t = cw.tickets().await;
    assert_eq!(t.len(), 1);
    let notes = cw.notes(&t[0]).await;
    assert!(notes.len() <= 3, "{}", notes.len());
    assert!(calls <= 6, "{calls}");
    let ids: usize = notes.iter().map(|n| n.matches("Event id: b").count()).sum();
    assert_eq!(ids, 100, "every alert of the burst is in a note");
}

/// 429 with Retry-After: the event waits without spending attempts, however many 429s come
/// (here more than maxAttempts), and is delivered once the PSA takes it.
#[tokio::test]
async fn rate_limited_answers_do_not_spend_attempts() {
    let (psa, mut h) = fake_harness(Grouping::User);
    let slow_down = || PsaError::Transient {
        status: Some(429),
        message: "API calls quota exceeded".into(),
        retry_after: Some(Duration::from_millis(100)),
    };
    psa.fail_next("create_ticket", (0..5).map(|_| slow_down()).collect());
    h.start();
    h.send_and_settle(vec![alert("a1", JANE, "Too Many Downloads")])
        .await;
    assert_eq!(psa.tickets().len(), 1);
    assert_eq!(psa.calls("create_ticket"), 6);
    assert_eq!(h.counters().await.dead_letters, 0);
}

/// `requestsPerHour` caps the calls: 200 an hour allows a burst of 10, then one every 18 s.
#[tokio::test]
async fn requests_per_hour_caps_psa_calls() {
    let psa = FakePsa::new();
    let mut conn = snapshot(&key(), Arc::new(psa.clone()), Grouping::User);
    conn.dispatch.requests_per_hour = 200;
    let mut h = Harness::new(conn);
    h.start();
    // 1 contact lookup + 1 create, then 2 calls per follow-up: 12 calls wanted.
    let alerts: Vec<_> = (0..6)
        .map(|i| alert(&format!("r{i}"), JANE, "Too Many Downloads"))
        .collect();
    h.send(alerts).await;
    eventually("the burst allowance spent", || psa.total_calls() >= 10).await;
    // The next token is 18 s away: over two seconds nothing more reaches the PSA.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(psa.total_calls(), 10);
    assert!(h.counters().await.pending >= 1);
}
