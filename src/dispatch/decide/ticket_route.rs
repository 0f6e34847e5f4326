//! Which ticket values an alert gets: the connection's, a CustomerMapping's overrides, and the
//! first route that matches — the mapping's routes before the connection's (first match wins,
//! like Alertmanager routes). Every profile was resolved at reconcile time; this only picks one.

use crate::dispatch::event::Event;
use crate::psa::PsaId;
use crate::resolved::{CustomerTicket, ResolvedConnection, ResolvedTicket};

/// What a route matches, trimmed and lower-cased once when it is resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMatcher {
    /// Empty = any severity.
    pub severities: Vec<String>,
    /// Empty = any alert type.
    pub alert_types: Vec<String>,
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

impl RouteMatcher {
    pub fn new(severities: &[String], alert_types: &[String]) -> Self {
        RouteMatcher {
            severities: severities.iter().map(|s| fold(s)).collect(),
            alert_types: alert_types.iter().map(|s| fold(s)).collect(),
        }
    }

    /// Whether the alert is one this route takes. A route that names severities does not take
    /// an alert without one.
    pub fn matches(&self, severity: Option<&str>, alert_type: &str) -> bool {
        let one_of = |wanted: &[String], value: Option<&str>| {
            wanted.is_empty() || value.is_some_and(|v| wanted.contains(&fold(v)))
        };
        one_of(&self.severities, severity) && one_of(&self.alert_types, Some(alert_type))
    }
}

impl RouteMatcher {
    /// Whether every alert `later` takes is taken by `self` first (so `later` never applies).
    pub fn covers(&self, later: &RouteMatcher) -> bool {
        let covers = |mine: &[String], theirs: &[String]| {
            mine.is_empty() || (!theirs.is_empty() && theirs.iter().all(|t| mine.contains(t)))
        };
        covers(&self.severities, &later.severities) && covers(&self.alert_types, &later.alert_types)
    }
}

/// Routes that can never match because an earlier one takes all their alerts: (route,
/// the earlier route), for `validate`.
pub fn shadowed_routes(routes: &[RouteMatcher]) -> Vec<(usize, usize)> {
    (0..routes.len())
        .filter_map(|j| {
            (0..j)
                .find(|&i| routes[i].covers(&routes[j]))
                .map(|i| (j, i))
        })
        .collect()
}

/// Where the chosen values came from (for logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketSource {
    /// The connection's `ticket` settings.
    Connection,
    /// The connection's `ticket` with the mapping's `ticket` overrides.
    Mapping,
    /// The mapping's route at this position.
    MappingRoute(usize),
    /// The connection's route at this position.
    ConnectionRoute(usize),
}

/// The values a new ticket gets, and the status that closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChosenTicket<'a> {
    pub ticket: &'a ResolvedTicket,
    pub lifecycle_closed_status_id: Option<&'a PsaId>,
    pub source: TicketSource,
}

/// Chooses the ticket values for an alert of a customer (`None`: no mapping overrides, e.g.
/// the catch-all or an automatically mapped company).
pub fn choose_ticket<'a>(
    conn: &'a ResolvedConnection,
    customer: Option<&'a CustomerTicket>,
    severity: Option<&str>,
    alert_type: &str,
) -> ChosenTicket<'a> {
    let matched = |m: &RouteMatcher| m.matches(severity, alert_type);
    if let Some(c) = customer {
        if let Some((i, r)) = c
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| matched(&r.matcher))
        {
            return chosen(&r.profile, TicketSource::MappingRoute(i));
        }
    }
    let connection_route = conn.routes.iter().position(|r| matched(&r.matcher));
    match (customer, connection_route) {
        // A mapping resolved before the connection's routes changed has fewer: the index holds
        // such a mapping, so this only guards against indexing past the end.
        (Some(c), Some(j)) => match c.connection_routes.get(j) {
            Some(p) => chosen(p, TicketSource::ConnectionRoute(j)),
            None => chosen(&c.base, TicketSource::Mapping),
        },
        (Some(c), None) => chosen(&c.base, TicketSource::Mapping),
        (None, Some(j)) => chosen(&conn.routes[j].profile, TicketSource::ConnectionRoute(j)),
        (None, None) => ChosenTicket {
            ticket: &conn.ticket,
            lifecycle_closed_status_id: conn.lifecycle.closed_status_id.as_ref(),
            source: TicketSource::Connection,
        },
    }
}

fn chosen(p: &crate::resolved::TicketProfile, source: TicketSource) -> ChosenTicket<'_> {
    ChosenTicket {
        ticket: &p.ticket,
        lifecycle_closed_status_id: p.lifecycle_closed_status_id.as_ref(),
        source,
    }
}

/// [`choose_ticket`] for an event.
pub fn ticket_for<'a>(
    conn: &'a ResolvedConnection,
    customer: Option<&'a CustomerTicket>,
    event: &Event,
) -> ChosenTicket<'a> {
    let severity =
        crate::dispatch::decide::values::event_field(event, crate::api::EventField::Severity);
    choose_ticket(conn, customer, severity, &event.alert_type)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::resolved::{ResolvedRoute, TicketProfile};

    fn profile(board: &str) -> Arc<TicketProfile> {
        Arc::new(TicketProfile {
            ticket: ResolvedTicket {
                board_id: Some(board.into()),
                ..Default::default()
            },
            lifecycle_closed_status_id: Some(format!("closed-on-{board}")),
        })
    }

    fn route(sev: &[&str], types: &[&str], board: &str) -> ResolvedRoute {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ResolvedRoute {
            matcher: RouteMatcher::new(&owned(sev), &owned(types)),
            profile: profile(board),
        }
    }

    #[test]
    fn matcher_table() {
        let critical = RouteMatcher::new(&["Critical".into()], &[]);
        let both = RouteMatcher::new(&["high".into()], &[" Too Many Downloads ".into()]);
        // (matcher, severity, alert type, matches)
        let table = [
            (&critical, Some("critical"), "X", true),
            (&critical, Some(" CRITICAL "), "X", true),
            (&critical, Some("high"), "X", false),
            (&critical, None, "X", false),
            (&both, Some("High"), "too many downloads", true),
            (&both, Some("High"), "Too Many Uploads", false),
            (&both, Some("low"), "Too Many Downloads", false),
        ];
        for (m, sev, at, want) in table {
            assert_eq!(m.matches(sev, at), want, "{m:?} {sev:?} {at:?}");
        }
    }

    #[test]
    fn shadowed_routes_table() {
        let m = |sev: &[&str], types: &[&str]| {
            let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            RouteMatcher::new(&owned(sev), &owned(types))
        };
        // (routes, shadowed (route, by))
        type Case = (Vec<RouteMatcher>, Vec<(usize, usize)>);
        let table: Vec<Case> = vec![
            (vec![m(&["critical"], &[]), m(&["high"], &[])], vec![]),
            (
                vec![m(&["critical"], &[]), m(&["Critical"], &["X"])],
                vec![(1, 0)],
            ),
            (
                vec![m(&["critical", "high"], &[]), m(&["high"], &[])],
                vec![(1, 0)],
            ),
            (
                vec![m(&["high"], &[]), m(&["critical", "high"], &[])],
                vec![],
            ),
            (vec![m(&[], &["X"]), m(&["low"], &[])], vec![]),
            (vec![m(&["low"], &["X"]), m(&["low"], &[])], vec![]),
            (
                vec![m(&[], &["X", "Y"]), m(&["low"], &["y"]), m(&[], &["X"])],
                vec![(1, 0), (2, 0)],
            ),
        ];
        for (routes, want) in table {
            assert_eq!(shadowed_routes(&routes), want, "{routes:?}");
        }
    }

    /// The precedence: mapping route > connection route (on the mapping's base) > mapping
    /// base > connection; first match wins within each list.
    #[test]
    fn choice_table() {
        // A client that is never called: the snapshot only carries it.
        let cfg = crate::psa::connectwise::ConnectWiseConfig::new(
            "http://127.0.0.1:9",
            "acme",
            "client",
            crate::secret::SecretString::new("public".to_string()),
            crate::secret::SecretString::new("private".to_string()),
        );
        let psa: Arc<dyn crate::psa::TicketDesk> =
            Arc::new(crate::psa::connectwise::ConnectWiseClient::new(cfg).expect("client"));
        let conn = ResolvedConnection {
            ticket: ResolvedTicket {
                board_id: Some("conn".into()),
                ..Default::default()
            },
            routes: Arc::from(vec![
                route(&["critical"], &[], "conn-critical"),
                route(&[], &["Too Many Downloads"], "conn-downloads"),
                route(&["critical"], &["Too Many Downloads"], "never-reached"),
            ]),
            ..ResolvedConnection::sample(crate::resolved::ConnectionKey::new("psa", "c"), psa)
        };
        let mapping = CustomerTicket {
            connection_fingerprint: 0,
            base: profile("mapping"),
            routes: vec![route(
                &["critical"],
                &["Impossible Travel"],
                "mapping-travel",
            )],
            connection_routes: vec![
                profile("mapping+conn-critical"),
                profile("mapping+conn-downloads"),
                profile("mapping+never"),
            ],
        };
        let stale = CustomerTicket {
            connection_routes: vec![],
            ..mapping.clone()
        };
        use TicketSource::*;
        // (customer, severity, alert type, board, source)
        type Case<'a> = (
            Option<&'a CustomerTicket>,
            Option<&'a str>,
            &'a str,
            &'a str,
            TicketSource,
        );
        let table: Vec<Case> = vec![
            (None, Some("low"), "X", "conn", Connection),
            (
                None,
                Some("critical"),
                "X",
                "conn-critical",
                ConnectionRoute(0),
            ),
            (
                None,
                Some("critical"),
                "Too Many Downloads",
                "conn-critical",
                ConnectionRoute(0),
            ),
            (
                None,
                None,
                "Too Many Downloads",
                "conn-downloads",
                ConnectionRoute(1),
            ),
            (Some(&mapping), Some("low"), "X", "mapping", Mapping),
            (
                Some(&mapping),
                Some("critical"),
                "Impossible Travel",
                "mapping-travel",
                MappingRoute(0),
            ),
            (
                Some(&mapping),
                Some("high"),
                "Impossible Travel",
                "mapping",
                Mapping,
            ),
            (
                Some(&mapping),
                Some("critical"),
                "X",
                "mapping+conn-critical",
                ConnectionRoute(0),
            ),
            (
                Some(&mapping),
                Some("low"),
                "too many downloads",
                "mapping+conn-downloads",
                ConnectionRoute(1),
            ),
            (Some(&stale), Some("critical"), "X", "mapping", Mapping),
        ];
        for (customer, sev, at, board, source) in table {
            let got = choose_ticket(&conn, customer, sev, at);
            assert_eq!(
                got.ticket.board_id.as_deref(),
                Some(board),
                "{sev:?} {at:?}"
            );
            assert_eq!(got.source, source, "{sev:?} {at:?}");
            if board != "conn" {
                assert_eq!(
                    got.lifecycle_closed_status_id.map(String::as_str),
                    Some(format!("closed-on-{board}").as_str()),
                    "the closing status follows the board"
                );
            }
        }
    }
}
