//! Storm breaker (`noise.maxNewTicketsPerCustomer`) on the ConnectWise and Kaseya BMS sandboxes:
//! 100 new users of one customer at once with the limit at 20 → 20 tickets and one roll-up with
//! 80 notes; the roll-up closes itself after a quiet window (the dispatcher's window clock is
//! moved ahead instead of waiting); a restart mid-storm opens no second roll-up.

use std::time::Duration;

use psa_operator::api::Grouping;
use psa_operator::dispatch::decide::storm::StormLimit;
use psa_operator::dispatch::event::Event;
use psa_operator::resolved::{ConnectionKey, ResolvedConnection};

use super::harness::{alert, Harness, ORG};
use super::view::{PsaView, TicketView};

const PER: Duration = Duration::from_secs(600);

fn limited(mut conn: ResolvedConnection, count: u32) -> ResolvedConnection {
    conn.storm = Some(StormLimit { count, per: PER });
    conn
}

/// `n` new users of Contoso, alternating two alert types.
fn new_users(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let kind = if i % 2 == 0 {
                "Too Many Downloads"
            } else {
                "Multiple MFA Failures"
            };
            alert(
                &format!("storm-{i}"),
                &format!("user{i}@contoso.example"),
                kind,
            )
        })
        .collect()
}

/// The roll-up among the tickets (exactly one) and the others.
fn split(tickets: Vec<TicketView>, customer: &str) -> (TicketView, Vec<TicketView>) {
    let summary = format!("More alerts for {customer} (storm breaker)");
    let (rollups, others): (Vec<_>, Vec<_>) =
        tickets.into_iter().partition(|t| t.summary == summary);
    assert_eq!(rollups.len(), 1, "one roll-up: {rollups:?}");
    (rollups.into_iter().next().unwrap(), others)
}

/// 100 users at a limit of 20; then a quiet window closes the roll-up with its summary.
async fn hundred_users(psa: &dyn PsaView, h: &Harness) {
    let customer = customer_name(h);
    h.send_and_settle(new_users(100)).await;
    let (rollup, others) = split(psa.tickets().await, &customer);
    assert_eq!(others.len(), 20, "20 tickets of their own");
    assert!(others.iter().all(|t| !t.closed && t.notes.is_empty()));
    assert_eq!(rollup.notes.len(), 80, "one note per alert over the limit");
    assert!(rollup
        .notes
        .iter()
        .all(|n| n.starts_with("Storm breaker: user")));
    assert!(!rollup.closed);
    let stats = h.stats.get(&h.key);
    assert_eq!((stats.alerts_rolled_up, stats.rollups_opened), (80, 1));
    let metrics = h.metrics_text();
    assert!(
        metrics.contains(
            r#"psa_operator_dispatch_storm_alerts_rolled_up_total{namespace="psa",connection="storm"} 80"#
        ),
        "{metrics}"
    );

    // Ten minutes later (the clock moved) without another alert over the limit: closed.
    h.options.clock.advance(PER + Duration::from_secs(1));
    let closing = format!("80 more alerts for {customer} went to this ticket");
    let mut closed = None;
    for _ in 0..200 {
        let (r, _) = split(psa.tickets().await, &customer);
        if r.closed {
            closed = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rollup = closed.expect("the quiet roll-up closes itself");
    let last = rollup.notes.last().unwrap();
    assert!(last.starts_with(&closing), "{last}");
    // Listed by user and alert type: exactly the 80 users without a ticket of their own.
    let listed: Vec<&str> = last.lines().filter(|l| l.starts_with("- user")).collect();
    assert_eq!(listed.len(), 80, "{last}");
    for t in &others {
        let user = t.summary.split_whitespace().find(|w| w.contains('@'));
        if let Some(user) = user {
            assert!(
                !listed.iter().any(|l| l.starts_with(&format!("- {user} "))),
                "{user} had a ticket of its own"
            );
        }
    }
    assert!(listed
        .iter()
        .all(|l| l.ends_with(" · Too Many Downloads: 1")
            || l.ends_with(" · Multiple MFA Failures: 1")));

    // A new window: new users get tickets of their own again.
    h.send_and_settle(vec![alert(
        "after-1",
        "late@contoso.example",
        "Too Many Uploads",
    )])
    .await;
    let t = psa.tickets().await;
    assert_eq!(t.len(), 22);
    assert!(!t[21].closed && t[21].summary != rollup.summary);
}

fn customer_name(h: &Harness) -> String {
    let conn = h.registry.get(&h.key).unwrap().resolved.unwrap();
    conn.customers[ORG].company_name.clone()
}

fn key() -> ConnectionKey {
    ConnectionKey::new("psa", "storm")
}

#[tokio::test]
async fn storm_breaker_hundred_users_connectwise() {
    let cw = super::cw::Cw::start().await;
    let mut h = Harness::new(limited(cw.snapshot(&key(), Grouping::User), 20));
    h.start();
    hundred_users(&cw, &h).await;
    for t in cw.tickets().await {
        assert_eq!(t["company"]["id"].to_string(), cw.ids.contoso);
    }
}

#[tokio::test]
async fn storm_breaker_hundred_users_bms() {
    let bms = super::bms::Bms::start().await;
    let mut h = Harness::new(limited(bms.snapshot(&key(), Grouping::User), 20));
    h.start();
    hundred_users(&bms, &h).await;
    for t in bms.tickets().await {
        assert_eq!(t["accountId"].to_string(), bms.ids.contoso);
    }
    crate::bms_contract::assert_contract(&bms.sb).await;
}

/// The operator is killed mid-storm and restarted on the same store: still 20 tickets and one
/// roll-up, every alert once.
#[tokio::test]
async fn storm_breaker_survives_a_restart_connectwise() {
    let cw = super::cw::Cw::start().await;
    let mut h = Harness::new(limited(cw.snapshot(&key(), Grouping::User), 20));
    h.start();
    let customer = customer_name(&h);
    h.send(new_users(100)).await;
    h.wait_counters("a third delivered", |c| c.delivered >= 35)
        .await;
    h.kill().await;
    h.reopen_store();
    h.start();
    h.wait_counters("all delivered", |c| c.delivered == 100)
        .await;
    let (rollup, others) = split(PsaView::tickets(&cw).await, &customer);
    assert_eq!(others.len(), 20);
    assert_eq!(rollup.notes.len(), 80, "each alert once");
}
