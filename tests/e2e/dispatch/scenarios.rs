//! The seed's worked examples, the PSA-call measurement and the dispatcher scenarios that hold
//! alike on every PSA, written once; `dispatch.rs` runs them per provider from one table.

use std::collections::HashMap;

use psa_operator::api::Grouping;
use psa_operator::dispatch::event::EventKind;
use psa_operator::psa::ContactEmail;

use super::harness::{alert, eventually, finding, Harness, JANE};
use super::view::{DemoPsa, PsaView, TicketView};

/// Seed 000, "User": returns the tickets at the end for provider-specific checks.
pub async fn seed_user(psa: &dyn PsaView, h: &Harness) -> Vec<TicketView> {
    // user@domain triggers Too Many Downloads: the first alert ever → a ticket.
    h.send_and_settle(vec![alert("a1", JANE, "Too Many Downloads")])
        .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 1);
    assert_eq!(
        t[0].summary,
        "Too Many Downloads — jane@contoso.example (Contoso Ltd)"
    );
    // 15 minutes later Too Many Uploads: the user has an open ticket → a note on it.
    h.send_and_settle(vec![alert("a2", JANE, "Too Many Uploads")])
        .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].notes.len(), 1);
    assert!(t[0].notes[0].contains("Too Many Uploads"));
    // A technician reviews it and closes the ticket.
    psa.technician_closes(&t[0].id).await;
    let closed_notes = psa.tickets().await[0].notes.len();
    // Multiple MFA Failures: the original ticket is closed → a new ticket.
    h.send_and_settle(vec![alert("a3", JANE, "Multiple MFA Failures")])
        .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 2);
    assert!(t[0].closed && !t[1].closed);
    assert!(
        t[1].summary.starts_with("Multiple MFA Failures"),
        "{}",
        t[1].summary
    );
    assert_eq!(
        t[0].notes.len(),
        closed_notes,
        "nothing added to the closed ticket"
    );
    t
}

/// Seed 000, "User+Alert".
pub async fn seed_user_and_alert(psa: &dyn PsaView, h: &Harness) -> Vec<TicketView> {
    h.send_and_settle(vec![alert("a1", JANE, "Too Many Downloads")])
        .await;
    assert_eq!(psa.tickets().await.len(), 1);
    // Another alert type → a new ticket although the first one is open.
    h.send_and_settle(vec![alert("a2", JANE, "Too Many Uploads")])
        .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 2);
    assert!(t[1].summary.starts_with("Too Many Uploads"));
    // The technician closes the downloads ticket.
    psa.technician_closes(&t[0].id).await;
    let closed_notes = psa.tickets().await[0].notes.len();
    // Another Too Many Uploads: its ticket is still open → a note on it.
    h.send_and_settle(vec![alert("a3", JANE, "Too Many Uploads")])
        .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 2);
    assert_eq!(t[1].notes.len(), 1);
    assert!(t[1].notes[0].contains("Too Many Uploads"));
    assert_eq!(t[0].notes.len(), closed_notes);
    t
}

/// Seed 000, "User+Alert", every step, on a sandboxed PSA.
pub async fn seed_user_and_alert_grouping(psa: &dyn DemoPsa) {
    let mut h = Harness::new(psa.demo_snapshot(Grouping::UserAndAlert));
    h.start();
    seed_user_and_alert(psa, &h).await;
}

/// PSA calls of a first alert, a follow-up alert and a burst of 100 alerts of one key; checks
/// the burst became 100 notes on one ticket, in arrival order.
pub async fn psa_calls(psa: &dyn PsaView, h: &Harness, label: &str) -> (u64, u64, u64) {
    psa.clear_calls();
    h.send_and_settle(vec![alert("first", JANE, "Too Many Downloads")])
        .await;
    let first = psa.calls();
    psa.clear_calls();
    h.send_and_settle(vec![alert("follow", JANE, "Too Many Uploads")])
        .await;
    let follow = psa.calls();
    psa.clear_calls();
    let burst: Vec<_> = (0..100)
        .map(|i| alert(&format!("b{i}"), JANE, "Too Many Downloads"))
        .collect();
    h.send_and_settle(burst).await;
    let burst_calls = psa.calls();
    eprintln!(
        "PSA calls ({label}, ticketStateTtl {:?}): first alert {first}, follow-up {follow}, burst of 100 {burst_calls}",
        h.options.ticket_state_ttl
    );
    let t = psa.tickets().await;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].notes.len(), 101);
    let order: Vec<usize> = t[0].notes[1..]
        .iter()
        .map(|n| {
            n.rsplit("Event id: b")
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        order,
        (0..100).collect::<Vec<_>>(),
        "notes in arrival order"
    );
    (first, follow, burst_calls)
}

/// The event ids a ticket's texts name (its description and every note), each once per mention.
fn event_ids(t: &TicketView) -> impl Iterator<Item = String> + '_ {
    std::iter::once(&t.description)
        .chain(&t.notes)
        .flat_map(|text| text.lines())
        .filter_map(|line| line.trim().strip_prefix("Event id: "))
        .map(str::to_string)
}

/// Contact by the user's e-mail → the mapping's default contact → the catch-all's contact
/// (unmapped organization on the catch-all company, without the mapping's contract).
pub async fn contact_fallback_chain(psa: &dyn DemoPsa) {
    let mut h = Harness::new(psa.demo_snapshot(Grouping::User));
    h.start();
    let mut stranger = alert("s1", "who@elsewhere.example", "Too Many Downloads");
    stranger.organization = "Unmapped Org".into();
    h.send_and_settle(vec![
        alert("j1", JANE, "Too Many Downloads"),
        alert("b1", "bob@contoso.example", "Too Many Downloads"),
        stranger,
    ])
    .await;
    let by_event: HashMap<String, TicketView> = psa
        .tickets()
        .await
        .into_iter()
        .map(|t| {
            let event = event_ids(&t).next().unwrap_or_default();
            (event, t)
        })
        .collect();
    let ids = psa.routing();
    let table = [
        ("j1", ids.contoso, ids.jane),
        ("b1", ids.contoso, ids.alert_contact),
        ("s1", ids.default_customer, ids.default_contact),
    ];
    for (event, company, contact) in table {
        let t = by_event
            .get(event)
            .unwrap_or_else(|| panic!("no ticket for {event}"));
        assert_eq!(t.company_id, company, "{event}");
        assert_eq!(t.contact_id.as_deref(), Some(contact), "{event}");
    }
    assert_eq!(
        by_event["s1"].contract_id, None,
        "no contract on the catch-all"
    );
}

/// Findings lifecycle: a ticket, the comment as a note, the resolution as a note and the
/// operator's closed status.
pub async fn findings_lifecycle(psa: &dyn DemoPsa) {
    let mut h = Harness::new(psa.demo_snapshot(Grouping::User));
    h.start();
    let mut c = finding("c1", EventKind::FindingCommented, "F1");
    c.comment = Some("Looking into it".into());
    h.send_and_settle(vec![finding("cr", EventKind::FindingCreated, "F1"), c])
        .await;
    h.send_and_settle(vec![finding("rs", EventKind::FindingResolved, "F1")])
        .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 1);
    assert!(t[0].closed, "{:?}", t[0]);
    assert_eq!(t[0].status_id.as_deref(), Some(psa.routing().closed_status));
    assert_eq!(t[0].notes.len(), 2, "{:?}", t[0].notes);
    assert!(t[0].notes[0].contains("Looking into it"));
    assert!(t[0].notes[1].contains("The finding was resolved"));
}

/// The dispatcher killed in the middle of a burst over several keys and restarted on the same
/// store: every event ends up as exactly one ticket or one note (the marker finds a ticket that
/// was created before the crash was recorded).
pub async fn killed_mid_burst_every_event_once(psa: &dyn DemoPsa) {
    let mut h = Harness::new(psa.demo_snapshot(Grouping::UserAndAlert));
    h.start();
    let types = ["T1", "T2", "T3", "T4", "T5"];
    let burst: Vec<_> = (0..10)
        .flat_map(|i| types.map(|t| alert(&format!("{t}-{i}"), JANE, t)))
        .collect();
    h.send(burst).await;
    // Kill once a part of the burst reached the PSA (some lanes are mid-call).
    eventually("part of the burst delivered", || psa.calls() >= 20).await;
    h.kill().await;
    let before = h.counters().await.delivered;
    assert!(before < 50, "killed too late to mean anything: {before}");
    h.reopen_store();
    h.start();
    h.wait_counters("the whole burst", |c| c.delivered == 50)
        .await;
    let tickets = psa.tickets().await;
    assert_eq!(tickets.len(), 5, "one ticket per alert type");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for id in tickets.iter().flat_map(event_ids) {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), 50, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "an event twice: {seen:?}");
}

/// An organization without a CustomerMapping, matched to a company by name (`accountMapping:
/// ByCompanyName`): a user the company has no contact for gets the company's own contact
/// (ConnectWise keeps it on the company as its default contact, Autotask flags it as the primary
/// contact), the company's contact keeps theirs — never the catch-all's contact, which belongs to
/// another company.
pub async fn auto_mapped_company_contact_chain(psa: &dyn DemoPsa) {
    use psa_operator::api::AccountMapping;
    let mut conn = psa.demo_snapshot(Grouping::User);
    conn.account_mapping = AccountMapping::ByCompanyName;
    let fabrikam = conn
        .psa
        .find_company_by_name("Fabrikam Inc")
        .await
        .unwrap()
        .expect("Fabrikam Inc in the demo data")
        .id;
    let alert_contact = conn
        .psa
        .find_contact_by_email(ContactEmail::new(&fabrikam, "alerts@fabrikam.example"))
        .await
        .unwrap()
        .expect("Fabrikam's contact")
        .id;
    let mut h = Harness::new(conn);
    h.start();
    let mut stranger = alert("f1", "someone@fabrikam.example", "Too Many Downloads");
    stranger.organization = "Fabrikam Inc".into();
    let mut known = alert("f2", "alerts@fabrikam.example", "Too Many Downloads");
    known.organization = "Fabrikam Inc".into();
    h.send_and_settle(vec![stranger, known]).await;
    let tickets = psa.tickets().await;
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    for t in &tickets {
        assert_eq!(t.company_id, fabrikam, "{t:?}");
        assert_eq!(
            t.contact_id.as_deref(),
            Some(alert_contact.as_str()),
            "{t:?}"
        );
    }
    assert_ne!(alert_contact, psa.routing().default_contact);
}
