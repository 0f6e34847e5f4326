//! The seed's worked examples and the PSA-call measurement, written once for every provider.

use super::harness::{alert, Harness, JANE};
use super::view::{PsaView, TicketView};

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
