//! Storm breaker (`noise.maxNewTicketsPerCustomer: {count, per}`): beyond `count` new tickets
//! of one customer within a window of `per`, new groups of that customer go as notes on one
//! roll-up ticket; the roll-up closes itself once a whole `per` passes with nothing added.
//!
//! The state lives in the store (both backends apply these same rules inside one transaction),
//! so it holds across a restart and across replicas: the window's count, which groups of the
//! window got a ticket or went to the roll-up (a retried event gets the same answer), the
//! roll-up's ticket id, and a lease on creating it, so two replicas never open two roll-ups.
//!
//! Windows are fixed, not sliding: a window opens with the customer's first new ticket after
//! the previous one ended, and counts for `per`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::dispatch::event::Event;

/// The limit as resolved from the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StormLimit {
    pub count: u32,
    pub per: Duration,
}

/// One customer's storm state (per connection and PSA company).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StormWindow {
    /// For the roll-up's texts (the sweep that closes it has no alert at hand).
    pub customer_name: String,
    pub window_start_ms: i64,
    /// The window length in force when it opened (also how long a roll-up must stay quiet).
    pub per_ms: i64,
    /// New tickets of this window.
    pub tickets: u32,
    /// The open roll-up ticket.
    pub rollup_ticket_id: Option<String>,
    /// Generation of the roll-up: its marker, so a crashed creation is found, not repeated.
    pub rollup_seq: i64,
    /// Who is creating the roll-up (the group key) and until when (a lease).
    pub creating: Option<(String, i64)>,
    /// When the last alert went to the roll-up.
    pub last_overflow_ms: Option<i64>,
    /// A sweep's lease on closing the roll-up.
    pub closing_until_ms: Option<i64>,
    /// Alerts noted on the open roll-up, by `user · alert type`.
    pub overflow: BTreeMap<String, u64>,
}

/// Where a group of the window went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    Ticket,
    Rollup,
}

impl Member {
    pub fn as_str(self) -> &'static str {
        match self {
            Member::Ticket => "ticket",
            Member::Rollup => "rollup",
        }
    }

    pub fn parse(s: &str) -> Option<Member> {
        match s {
            "ticket" => Some(Member::Ticket),
            "rollup" => Some(Member::Rollup),
            _ => None,
        }
    }
}

/// A new group of a customer asks for a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmitRequest {
    pub connection: crate::resolved::ConnectionKey,
    pub customer_id: String,
    pub customer_name: String,
    pub group_key: String,
    pub now_ms: i64,
    pub limit_count: u32,
    pub per_ms: i64,
    /// How long a roll-up creation may take before another group may try.
    pub lease_ms: i64,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Under the limit: a ticket of its own.
    Ticket,
    /// Over it: a note on the open roll-up.
    Note { rollup_ticket_id: String },
    /// Over it, and no roll-up yet: this group creates it (generation `seq`).
    CreateRollup { seq: i64 },
    /// Another group is creating the roll-up: try again at `until_ms`.
    Wait { until_ms: i64 },
}

/// The decision, with the state and this group's membership to write back. `member` is the
/// group's recorded membership `(window start, member)`; one of an earlier window is stale.
pub fn admit(
    before: Option<&StormWindow>,
    member: Option<(i64, Member)>,
    req: &AdmitRequest,
) -> (StormWindow, Option<Member>, Admission) {
    let mut w = before.cloned().unwrap_or_default();
    w.customer_name = req.customer_name.clone();
    let expired = before.is_none_or(|b| req.now_ms >= b.window_start_ms + b.per_ms);
    if expired {
        w.window_start_ms = req.now_ms;
        w.per_ms = req.per_ms;
        w.tickets = 0;
    }
    let member = member
        .filter(|(start, _)| !expired && *start == w.window_start_ms)
        .map(|(_, m)| m);
    let member = match member {
        Some(m) => m,
        None if w.tickets < req.limit_count => {
            w.tickets += 1;
            return (w, Some(Member::Ticket), Admission::Ticket);
        }
        None => Member::Rollup,
    };
    if member == Member::Ticket {
        return (w, None, Admission::Ticket);
    }
    let admission = match (&w.rollup_ticket_id, &w.creating) {
        (Some(id), _) => Admission::Note {
            rollup_ticket_id: id.clone(),
        },
        (None, Some((who, until))) if who != &req.group_key && *until > req.now_ms => {
            Admission::Wait { until_ms: *until }
        }
        (None, _) => {
            w.creating = Some((req.group_key.clone(), req.now_ms + req.lease_ms));
            Admission::CreateRollup { seq: w.rollup_seq }
        }
    };
    // The roll-up stays open while alerts keep coming.
    w.last_overflow_ms = Some(req.now_ms);
    (w, Some(Member::Rollup), admission)
}

/// After an alert was delivered to the roll-up (`created`: it created it): the roll-up's id,
/// and the alert counted under its `label`.
pub fn noted(before: &StormWindow, created: Option<&str>, label: &str) -> StormWindow {
    let mut w = before.clone();
    if let Some(id) = created {
        w.rollup_ticket_id = Some(id.to_string());
        w.creating = None;
    }
    *w.overflow.entry(label.to_string()).or_default() += 1;
    w
}

/// Whether the roll-up is due to close at `now_ms`: a whole window without an alert added,
/// and no other sweep closing it.
pub fn closable(w: &StormWindow, now_ms: i64) -> bool {
    w.rollup_ticket_id.is_some()
        && w.last_overflow_ms.is_none_or(|t| t + w.per_ms <= now_ms)
        && w.closing_until_ms.is_none_or(|c| c <= now_ms)
}

/// After the roll-up `ticket_id` was closed; `None` when the state moved on (another roll-up).
pub fn closed(before: &StormWindow, ticket_id: &str) -> Option<StormWindow> {
    if before.rollup_ticket_id.as_deref() != Some(ticket_id) {
        return None;
    }
    Some(StormWindow {
        rollup_ticket_id: None,
        rollup_seq: before.rollup_seq + 1,
        creating: None,
        last_overflow_ms: None,
        closing_until_ms: None,
        overflow: BTreeMap::new(),
        ..before.clone()
    })
}

/// How an alert is listed on the roll-up: `user · alert type`.
pub fn label(event: &Event) -> String {
    let user = event
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or("(no user)");
    format!("{user} · {}", event.alert_type.trim())
}

/// The roll-up ticket's summary.
pub fn rollup_summary(customer_name: &str) -> String {
    format!("More alerts for {customer_name} (storm breaker)")
}

/// The roll-up ticket's description: why it exists (its alerts are its notes).
pub fn rollup_description(limit: StormLimit, customer_name: &str) -> String {
    format!(
        "More than {} new tickets for {customer_name} within {}: further new alerts of this \
         customer are added here as notes (noise.maxNewTicketsPerCustomer). This ticket closes \
         itself once {} pass without one.",
        limit.count,
        human(limit.per),
        human(limit.per)
    )
}

/// A note of one alert on the roll-up.
pub fn rollup_note(event: &Event, note: &str) -> String {
    format!("Storm breaker: {}\n\n{note}", label(event))
}

/// The note the roll-up closes with: "N more alerts for Contoso Ltd", listed by user and
/// alert type.
pub fn closing_note(w: &StormWindow) -> String {
    let total: u64 = w.overflow.values().sum();
    let mut text = format!(
        "{total} more alerts for {} went to this ticket; none for {}, so it closes.\n\nBy user and alert type:",
        w.customer_name,
        human(Duration::from_millis(u64::try_from(w.per_ms).unwrap_or(0)))
    );
    for (label, n) in &w.overflow {
        text.push_str(&format!("\n- {label}: {n}"));
    }
    text
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(group: &str, now_ms: i64) -> AdmitRequest {
        AdmitRequest {
            connection: crate::resolved::ConnectionKey::new("psa", "acme"),
            customer_id: "10".into(),
            customer_name: "Contoso Ltd".into(),
            group_key: group.into(),
            now_ms,
            limit_count: 2,
            per_ms: 1000,
            lease_ms: 100,
        }
    }

    /// Runs admissions through the rule as a store would (state and memberships kept).
    struct Fake {
        w: Option<StormWindow>,
        members: BTreeMap<String, (i64, Member)>,
    }

    impl Fake {
        fn admit(&mut self, group: &str, now: i64) -> Admission {
            let (w, m, a) = admit(
                self.w.as_ref(),
                self.members.get(group).copied(),
                &req(group, now),
            );
            if let Some(m) = m {
                self.members.insert(group.into(), (w.window_start_ms, m));
            }
            self.w = Some(w);
            a
        }
    }

    #[test]
    fn admission_table() {
        use Admission::*;
        let mut f = Fake {
            w: None,
            members: BTreeMap::new(),
        };
        // (group, now, answer): limit 2 per 1000 ms.
        let table: Vec<(&str, i64, Admission)> = vec![
            ("u1", 0, Ticket),
            ("u2", 10, Ticket),
            // A retry of an admitted group: the same answer, not a second slot.
            ("u1", 20, Ticket),
            ("u3", 30, CreateRollup { seq: 0 }),
            // Another group while u3 creates the roll-up: wait for its lease.
            ("u4", 40, Wait { until_ms: 130 }),
            // u3 retrying its creation keeps the lease.
            ("u3", 50, CreateRollup { seq: 0 }),
            // The lease ran out (u3 crashed): u4 takes over, same generation (same marker).
            ("u4", 200, CreateRollup { seq: 0 }),
        ];
        for (group, now, want) in table {
            assert_eq!(f.admit(group, now), want, "{group} at {now}");
        }
        let w = noted(f.w.as_ref().unwrap(), Some("R1"), "jane · Downloads");
        f.w = Some(w);
        assert_eq!(
            f.admit("u5", 300),
            Note {
                rollup_ticket_id: "R1".into()
            }
        );
        assert_eq!(f.w.as_ref().unwrap().last_overflow_ms, Some(300));
        // The window ended: tickets again, the roll-up stays until it has been quiet.
        assert_eq!(f.admit("u6", 1000), Ticket);
        assert_eq!(
            f.admit("u3", 1001),
            Ticket,
            "a new window forgets memberships"
        );
        assert_eq!(
            f.admit("u7", 1002),
            Note {
                rollup_ticket_id: "R1".into()
            },
            "over the limit again: the same roll-up"
        );
    }

    #[test]
    fn the_roll_up_closes_after_a_quiet_window_and_the_next_is_a_new_generation() {
        let w = StormWindow {
            customer_name: "Contoso Ltd".into(),
            per_ms: 1000,
            rollup_ticket_id: Some("R1".into()),
            last_overflow_ms: Some(500),
            overflow: [
                ("jane · Downloads".to_string(), 3),
                ("bob · MFA".to_string(), 1),
            ]
            .into(),
            ..Default::default()
        };
        let table = [
            (1499, None, false),
            (1500, None, true),
            (1500, Some(1600), false),
            (1600, Some(1600), true),
        ];
        for (now, closing, want) in table {
            let w = StormWindow {
                closing_until_ms: closing,
                ..w.clone()
            };
            assert_eq!(closable(&w, now), want, "{now} {closing:?}");
        }
        assert!(!closable(&StormWindow::default(), 10_000), "no roll-up");
        let note = closing_note(&w);
        assert!(
            note.starts_with("4 more alerts for Contoso Ltd went to this ticket; none for 1s"),
            "{note}"
        );
        assert!(
            note.contains("\n- bob · MFA: 1\n- jane · Downloads: 3"),
            "{note}"
        );
        let after = closed(&w, "R1").unwrap();
        assert_eq!((after.rollup_ticket_id, after.rollup_seq), (None, 1));
        assert!(after.overflow.is_empty());
        assert_eq!(closed(&w, "R2"), None, "another roll-up: left alone");
    }

    #[test]
    fn texts() {
        let mut e = Event::sample();
        e.user = Some("jane@contoso.example".into());
        e.alert_type = "Too Many Downloads".into();
        assert_eq!(label(&e), "jane@contoso.example · Too Many Downloads");
        e.user = None;
        assert_eq!(label(&e), "(no user) · Too Many Downloads");
        let limit = StormLimit {
            count: 20,
            per: Duration::from_secs(600),
        };
        let d = rollup_description(limit, "Contoso Ltd");
        assert!(
            d.starts_with("More than 20 new tickets for Contoso Ltd within 10m"),
            "{d}"
        );
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_millis(300)), "300ms");
    }
}
