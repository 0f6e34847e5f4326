//! Auto-resolve (`lifecycle.onResolve: Close`) on the ConnectWise and Kaseya BMS sandboxes:
//! a group's ticket closes with the configured status when the last alert that fed it resolves.
//! Reopen window (`lifecycle.reopenWithin`, `neverReopen`) on ConnectWise, Kaseya BMS and
//! Autotask, with the dispatcher's window clock moved ahead instead of waiting.

use std::time::Duration;

use psa_operator::api::{Grouping, LifecycleSettings};
use psa_operator::controller::resolve::lifecycle::resolve_lifecycle;
use psa_operator::dispatch::event::{Event, EventKind};
use psa_operator::psa::Directory;
use psa_operator::resolved::{ConnectionKey, ResolvedConnection, ResolvedLifecycle};

use super::harness::{alert, Harness, JANE};
use super::view::PsaView;

/// An Alertmanager alert of the "DiskFull" group with fingerprint `fp`.
fn am(id: &str, kind: EventKind, fp: &str) -> Event {
    let mut e = alert(id, JANE, "DiskFull");
    e.kind = kind;
    e.finding_id = Some(fp.into());
    e
}

/// `onResolve: Close` with the PSA's "Completed" status (not the `ticket.closedStatus`, so the
/// test sees which one was used).
async fn close_on_resolve(
    directory: &dyn Directory,
    mut conn: ResolvedConnection,
) -> ResolvedConnection {
    let statuses = directory
        .statuses(conn.ticket.board_id.as_ref())
        .await
        .unwrap();
    let completed = statuses
        .iter()
        .find(|s| s.name == "Completed")
        .expect("a Completed status")
        .id
        .clone();
    conn.lifecycle = ResolvedLifecycle {
        close_on_resolve: true,
        closed_status_id: Some(completed),
        ..conn.lifecycle.clone()
    };
    conn
}

/// Fires then resolves one alert (closed), then three alerts of one group: two resolved → still
/// open with two resolution notes, the third → closed. Returns the two tickets' ids.
async fn fire_and_resolve(psa: &dyn PsaView, h: &Harness) -> (String, String) {
    h.send_and_settle(vec![am("f0", EventKind::AlertFiring, "fp-0")])
        .await;
    h.send_and_settle(vec![am("r0", EventKind::AlertResolved, "fp-0")])
        .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 1);
    assert!(t[0].closed, "one alert fired and resolved: closed");
    assert!(
        t[0].notes
            .iter()
            .any(|n| n.starts_with("Resolved: DiskFull")),
        "{:?}",
        t[0].notes
    );
    let first = t[0].id.clone();

    h.send_and_settle(vec![
        am("f1", EventKind::AlertFiring, "fp-1"),
        am("f2", EventKind::AlertFiring, "fp-2"),
        am("f3", EventKind::AlertFiring, "fp-3"),
    ])
    .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 2, "the closed ticket is not reused: a new one");
    h.send_and_settle(vec![
        am("r1", EventKind::AlertResolved, "fp-1"),
        am("r2", EventKind::AlertResolved, "fp-2"),
        // The same alert resolving twice still leaves fp-3 firing.
        am("r1b", EventKind::AlertResolved, "fp-1"),
    ])
    .await;
    let t = psa.tickets().await;
    assert!(!t[1].closed, "fp-3 still fires: the ticket stays open");
    let resolved_notes =
        |notes: &[String]| notes.iter().filter(|n| n.starts_with("Resolved:")).count();
    assert_eq!(resolved_notes(&t[1].notes), 3);
    h.send_and_settle(vec![am("r3", EventKind::AlertResolved, "fp-3")])
        .await;
    let t = psa.tickets().await;
    assert!(t[1].closed, "the last alert resolved: closed");
    assert_eq!(resolved_notes(&t[1].notes), 4);
    (first, t[1].id.clone())
}

fn key(name: &str) -> ConnectionKey {
    ConnectionKey::new("psa", name)
}

#[tokio::test]
async fn auto_resolve_closes_with_the_last_alert_connectwise() {
    let cw = super::cw::Cw::start().await;
    let conn = close_on_resolve(
        cw.client.as_ref(),
        cw.snapshot(&key("demo-cw"), Grouping::UserAndAlert),
    )
    .await;
    let completed = conn.lifecycle.closed_status_id.clone().unwrap();
    let mut h = Harness::new(conn);
    h.start();
    fire_and_resolve(&cw, &h).await;
    for t in cw.tickets().await {
        assert_eq!(t["company"]["id"].to_string(), cw.ids.contoso);
        assert_eq!(
            t["status"]["id"].to_string(),
            completed,
            "lifecycle.closedStatus"
        );
        assert_eq!(t["closedFlag"], true);
    }
}

#[tokio::test]
async fn auto_resolve_closes_with_the_last_alert_bms() {
    let bms = super::bms::Bms::start().await;
    let conn = close_on_resolve(
        bms.client.as_ref(),
        bms.snapshot(&key("demo-bms"), Grouping::UserAndAlert),
    )
    .await;
    let completed = conn.lifecycle.closed_status_id.clone().unwrap();
    let mut h = Harness::new(conn);
    h.start();
    fire_and_resolve(&bms, &h).await;
    for t in bms.tickets().await {
        assert_eq!(t["accountId"].to_string(), bms.ids.contoso);
        assert_eq!(
            t["statusId"].to_string(),
            completed,
            "lifecycle.closedStatus"
        );
    }
    crate::bms_contract::assert_contract(&bms.sb).await;
}

/// Without `onResolve: Close` (today's behaviour) the resolution is a note and the ticket stays
/// open; with it, a ticket a technician moved to another status is left alone.
#[tokio::test]
async fn resolutions_stay_notes_by_default_and_on_a_moved_ticket_connectwise() {
    let cw = super::cw::Cw::start().await;
    let mut h = Harness::new(cw.snapshot(&key("demo-cw"), Grouping::UserAndAlert));
    h.start();
    h.send_and_settle(vec![
        am("f0", EventKind::AlertFiring, "fp-0"),
        am("r0", EventKind::AlertResolved, "fp-0"),
    ])
    .await;
    let t = PsaView::tickets(&cw).await;
    assert_eq!(t.len(), 1);
    assert!(!t[0].closed, "onResolve Note: open");
    assert_eq!(t[0].notes.len(), 1);

    let mut h = Harness::new(
        close_on_resolve(
            cw.client.as_ref(),
            cw.snapshot(&key("demo-cw-close"), Grouping::UserAndAlert),
        )
        .await,
    );
    h.start();
    let mut moved = am("m1", EventKind::AlertFiring, "fp-m");
    moved.alert_type = "CpuHot".into();
    h.send_and_settle(vec![moved]).await;
    let ticket = cw.tickets().await.pop().unwrap();
    let id = ticket["id"].to_string();
    // A technician moves the ticket to another open status by hand.
    let board = cw.ids.board.clone();
    let statuses = cw.client.statuses(Some(&board)).await.unwrap();
    let other = statuses
        .iter()
        .find(|s| {
            !s.closed
                && Some(s.id.to_string()) != ticket["status"]["id"].as_i64().map(|i| i.to_string())
        })
        .expect("a second open status");
    cw.set_status(&id, &other.id).await;
    let mut resolved = am("m2", EventKind::AlertResolved, "fp-m");
    resolved.alert_type = "CpuHot".into();
    h.send_and_settle(vec![resolved]).await;
    let t = cw.tickets().await.pop().unwrap();
    assert_eq!(
        t["status"]["id"].to_string(),
        other.id,
        "the technician's status stays"
    );
    assert_eq!(t["closedFlag"], false);
    assert_eq!(t["company"]["id"].to_string(), cw.ids.contoso);
    assert_eq!(cw.notes(&t).await.len(), 1, "the resolution is a note");
}

/// `lifecycle.reopenWithin` (and `neverReopen`) resolved by the reconciler's own rule against
/// the board's statuses in the PSA.
async fn reopen_within(
    directory: &dyn Directory,
    mut conn: ResolvedConnection,
    within: &str,
    never_reopen: &[&str],
) -> ResolvedConnection {
    let statuses = directory
        .statuses(conn.ticket.board_id.as_ref())
        .await
        .unwrap();
    let spec = LifecycleSettings {
        reopen_within: Some(within.into()),
        never_reopen: never_reopen.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    conn.lifecycle = resolve_lifecycle(
        Some(&spec),
        &statuses,
        conn.ticket.closed_status_id.as_ref(),
    )
    .unwrap();
    conn
}

/// The worked example with an injected clock: a technician closes the ticket; the same
/// alert 1 h later (reopenWithin 24h) reopens it with a "re-occurred" note; closed again, the
/// alert 25 h later opens a new ticket. Returns the two tickets' ids.
async fn reopen_then_new(psa: &dyn PsaView, h: &Harness) -> (String, String) {
    let downloads = |id: &str| alert(id, JANE, "Too Many Downloads");
    h.send_and_settle(vec![downloads("d1")]).await;
    let first = psa.tickets().await[0].id.clone();
    psa.technician_closes(&first).await;
    assert!(psa.tickets().await[0].closed);

    h.options.clock.advance(Duration::from_secs(3600));
    h.send_and_settle(vec![downloads("d2")]).await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 1, "reopened, not a new ticket: {t:?}");
    assert!(!t[0].closed, "the ticket is open again");
    let last = t[0].notes.last().expect("a note");
    assert!(
        last.starts_with("Re-occurred 1h 0m after it was closed"),
        "{last}"
    );
    assert!(last.contains("Event id: d2"), "{last}");

    psa.technician_closes(&first).await;
    h.options.clock.advance(Duration::from_secs(25 * 3600));
    h.send_and_settle(vec![downloads("d3")]).await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 2, "closed 25 h ago: a new ticket");
    assert!(t[0].closed && !t[1].closed);
    assert!(
        !t[0].notes.iter().any(|n| n.contains("Event id: d3")),
        "nothing reached the old ticket"
    );
    (first, t[1].id.clone())
}

#[tokio::test]
async fn reopen_window_connectwise() {
    let cw = super::cw::Cw::start().await;
    let conn = reopen_within(
        cw.client.as_ref(),
        cw.snapshot(&key("demo-cw"), Grouping::User),
        "24h",
        &[],
    )
    .await;
    let open_status = conn.lifecycle.reopen_status_id.clone().unwrap();
    let mut h = Harness::new(conn);
    h.start();
    let (first, _) = reopen_then_new(&cw, &h).await;
    let t = cw.tickets().await;
    let reopened = t
        .iter()
        .find(|t| t["id"].as_i64() == first.parse::<i64>().ok())
        .unwrap();
    assert_eq!(reopened["company"]["id"].to_string(), cw.ids.contoso);
    // Reopened into the board's open status, then closed by the technician again.
    assert_eq!(reopened["closedFlag"], true);
    assert_eq!(t[1]["status"]["id"].to_string(), open_status);
}

#[tokio::test]
async fn reopen_window_bms() {
    let bms = super::bms::Bms::start().await;
    let conn = reopen_within(
        bms.client.as_ref(),
        bms.snapshot(&key("demo-bms"), Grouping::User),
        "24h",
        &[],
    )
    .await;
    let mut h = Harness::new(conn);
    h.start();
    reopen_then_new(&bms, &h).await;
    for t in bms.tickets().await {
        assert_eq!(t["accountId"].to_string(), bms.ids.contoso);
    }
    crate::bms_contract::assert_contract(&bms.sb).await;
}

#[tokio::test]
async fn reopen_window_autotask() {
    let at = super::autotask::At::start().await;
    let conn = reopen_within(at.client.as_ref(), at.snapshot(Grouping::User), "24h", &[]).await;
    let mut h = Harness::new(conn);
    h.start();
    reopen_then_new(&at, &h).await;
    let t = at.tickets().await;
    assert_eq!(t[1]["status"].to_string(), at.ids.status_new);
}

/// A ticket closed with a `neverReopen` status is not reopened, even within the window; one
/// closed by `onResolve: Close` with another status is, and the reopened ticket closes again
/// with its alerts.
#[tokio::test]
async fn never_reopen_and_auto_resolved_tickets_connectwise() {
    let cw = super::cw::Cw::start().await;
    let statuses = cw.client.statuses(Some(&cw.ids.board)).await.unwrap();
    let technician_closed = statuses
        .iter()
        .find(|s| s.id == cw.ids.closed_status)
        .unwrap()
        .name
        .clone();
    let conn = reopen_within(
        cw.client.as_ref(),
        cw.snapshot(&key("demo-cw"), Grouping::UserAndAlert),
        "24h",
        &[technician_closed.as_str()],
    )
    .await;
    let conn = close_on_resolve(cw.client.as_ref(), conn).await;
    let mut h = Harness::new(conn);
    h.start();

    // Won't fix: the technician's closed status is listed in neverReopen.
    h.send_and_settle(vec![alert("w1", JANE, "Too Many Uploads")])
        .await;
    let wont_fix = PsaView::tickets(&cw).await[0].id.clone();
    cw.close_by_id(&wont_fix).await;
    h.send_and_settle(vec![alert("w2", JANE, "Too Many Uploads")])
        .await;
    let t = PsaView::tickets(&cw).await;
    assert_eq!(t.len(), 2, "a neverReopen status: a new ticket");
    assert!(t[0].closed);

    // Auto-resolved (Completed, not listed): the alert firing again reopens it, and its
    // resolution closes it again.
    h.send_and_settle(vec![am("f1", EventKind::AlertFiring, "fp-1")])
        .await;
    h.send_and_settle(vec![am("r1", EventKind::AlertResolved, "fp-1")])
        .await;
    let t = PsaView::tickets(&cw).await;
    assert_eq!(t.len(), 3);
    assert!(t[2].closed, "auto-resolved");
    h.send_and_settle(vec![am("f2", EventKind::AlertFiring, "fp-1")])
        .await;
    let t = PsaView::tickets(&cw).await;
    assert_eq!(t.len(), 3, "reopened: {t:?}");
    assert!(!t[2].closed);
    h.send_and_settle(vec![am("r2", EventKind::AlertResolved, "fp-1")])
        .await;
    let t = PsaView::tickets(&cw).await;
    assert!(
        t[2].closed,
        "the reopened ticket closes with its alert again"
    );
}

/// A customer whose overrides put tickets on another board ("Escalations"): a re-occurring alert
/// reopens its ticket with an open status of *that* board (ConnectWise scopes statuses by
/// board), not with the connection board's status.
#[tokio::test]
async fn reopen_on_a_customers_board_uses_that_boards_open_status_connectwise() {
    use psa_operator::resolved::{CustomerTicket, ResolvedCustomer, ResolvedValue, TicketProfile};
    use std::sync::Arc;
    let cw = super::cw::Cw::start().await;
    let mut conn = reopen_within(
        cw.client.as_ref(),
        cw.snapshot(&key("demo-cw"), Grouping::User),
        "24h",
        &[],
    )
    .await;
    let boards = cw.client.boards().await.unwrap();
    let escalations = boards
        .iter()
        .find(|b| b.name == "Escalations")
        .expect("the demo data's second board")
        .id
        .clone();
    let statuses = cw.client.statuses(Some(&escalations)).await.unwrap();
    let open_there = statuses.iter().find(|s| !s.closed).unwrap().id.clone();
    let mut ticket = conn.ticket.clone();
    ticket.board_id = Some(escalations.clone());
    ticket.status = ResolvedValue::One(open_there.clone());
    let closed_there = statuses.iter().find(|s| s.closed).unwrap().id.clone();
    ticket.closed_status_id = Some(closed_there.clone());
    let base = Arc::new(TicketProfile {
        ticket,
        lifecycle_closed_status_id: None,
    });
    let overrides = Arc::new(CustomerTicket {
        connection_fingerprint: conn.ticket_fingerprint,
        base: base.clone(),
        routes: Vec::new(),
        connection_routes: conn.routes.iter().map(|_| base.clone()).collect(),
    });
    for customer in conn.customers.values_mut() {
        let mut with = ResolvedCustomer::clone(customer);
        with.ticket = Some(overrides.clone());
        *customer = Arc::new(with);
    }
    assert_ne!(
        conn.lifecycle.reopen_status_id.as_ref(),
        Some(&open_there),
        "the boards' open statuses differ"
    );
    let mut h = Harness::new(conn);
    h.start();
    let downloads = |id: &str| alert(id, JANE, "Too Many Downloads");
    h.send_and_settle(vec![downloads("d1")]).await;
    let first = PsaView::tickets(&cw).await[0].id.clone();
    // The technician closes it on its board (the sandbox, like ConnectWise, refuses a status
    // of another board).
    cw.set_status(&first, &closed_there).await;
    h.options.clock.advance(Duration::from_secs(3600));
    h.send_and_settle(vec![downloads("d2")]).await;
    let t = cw.tickets().await;
    assert_eq!(t.len(), 1, "reopened, not a new ticket: {t:#?}");
    assert_eq!(t[0]["company"]["id"].to_string(), cw.ids.contoso);
    assert_eq!(t[0]["board"]["id"].to_string(), escalations);
    assert_eq!(t[0]["closedFlag"], false, "{:#?}", t[0]);
    assert_eq!(t[0]["status"]["id"].to_string(), open_there);
}
