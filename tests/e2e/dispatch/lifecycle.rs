//! Auto-resolve (`lifecycle.onResolve: Close`) on the ConnectWise and Kaseya BMS sandboxes:
//! a group's ticket closes with the configured status when the last alert that fed it resolves.

use psa_operator::api::Grouping;
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
