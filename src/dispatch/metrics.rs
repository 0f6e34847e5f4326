//! Prometheus metrics of the dispatcher, served at `/metrics` (OpenMetrics text).
//!
//! One `DispatchMetrics` per process, registered in the process's metrics registry under
//! `psa_operator_dispatch_*` and shared as `Arc<DispatchMetrics>`: the intake counts accepted,
//! duplicate and rejected events; the workers count tickets, notes, failsafe e-mails, dead letters
//! and PSA calls per event through the methods below. Rejections are labelled by reason only —
//! never by the connection named in the URL, which an unauthenticated caller chooses freely.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::store::{Store, StoreError};
use crate::metrics::register_at_zero;
use crate::resolved::ConnectionKey;

/// Content type of the text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    namespace: String,
    connection: String,
}

impl From<&ConnectionKey> for ConnectionLabels {
    fn from(k: &ConnectionKey) -> Self {
        ConnectionLabels {
            namespace: k.namespace.clone(),
            connection: k.name.clone(),
        }
    }
}

/// Why the intake refused a request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum RejectReason {
    Unauthorized,
    UnknownConnection,
    PayloadTooLarge,
    UnsupportedMediaType,
    MalformedJson,
    Invalid,
    StoreUnavailable,
    NotReady,
    RateLimited,
}

impl RejectReason {
    /// Every reason, so that each has a series (at 0) from the start: a rate over a series that
    /// does not exist yet is no rate at all, and an alert on it stays silent.
    pub const ALL: [RejectReason; 9] = [
        RejectReason::Unauthorized,
        RejectReason::UnknownConnection,
        RejectReason::PayloadTooLarge,
        RejectReason::UnsupportedMediaType,
        RejectReason::MalformedJson,
        RejectReason::Invalid,
        RejectReason::StoreUnavailable,
        RejectReason::NotReady,
        RejectReason::RateLimited,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    reason: RejectReason,
}

/// The dispatcher's metrics.
pub struct DispatchMetrics {
    accepted: Family<ConnectionLabels, Counter>,
    duplicates: Family<ConnectionLabels, Counter>,
    rejected: Family<RejectLabels, Counter>,
    tickets_created: Family<ConnectionLabels, Counter>,
    notes_added: Family<ConnectionLabels, Counter>,
    /// Storm breaker: alerts sent to a roll-up, roll-ups opened and closed.
    alerts_rolled_up: Family<ConnectionLabels, Counter>,
    rollups_opened: Family<ConnectionLabels, Counter>,
    rollups_closed: Family<ConnectionLabels, Counter>,
    failsafe_emails: Family<ConnectionLabels, Counter>,
    dead_letters: Family<ConnectionLabels, Counter>,
    /// PSA calls the dispatcher spent per connection (what `dispatch.requestsPerHour` limits).
    psa_calls: Family<ConnectionLabels, Counter>,
    queue_depth: Gauge,
    psa_calls_per_event: Histogram,
}

impl std::fmt::Debug for DispatchMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchMetrics").finish_non_exhaustive()
    }
}

impl DispatchMetrics {
    /// Creates the metrics and registers them under `psa_operator_dispatch_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("psa_operator_dispatch");
        let accepted = Family::default();
        let duplicates = Family::default();
        let rejected = Family::default();
        let tickets_created = Family::default();
        let notes_added = Family::default();
        let alerts_rolled_up = Family::default();
        let rollups_opened = Family::default();
        let rollups_closed = Family::default();
        let failsafe_emails = Family::default();
        let dead_letters = Family::default();
        let psa_calls = Family::default();
        let queue_depth = Gauge::default();
        // 1 call is the floor (one create or note); a burst merged into one note, a contact
        // lookup, a closed-ticket check and retries push it up.
        let psa_calls_per_event =
            Histogram::new([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0]);
        registry.register(
            "events_accepted",
            "Events durably stored by the intake (duplicates not counted)",
            accepted.clone(),
        );
        registry.register(
            "events_duplicate",
            "Events whose id was already stored: acknowledged, not stored again",
            duplicates.clone(),
        );
        register_at_zero(
            registry,
            "events_rejected",
            "Intake requests refused, by reason",
            &rejected,
            RejectReason::ALL.map(|reason| RejectLabels { reason }),
        );
        registry.register(
            "tickets_created",
            "PSA tickets created by the dispatcher",
            tickets_created.clone(),
        );
        registry.register(
            "notes_added",
            "Notes added to existing PSA tickets",
            notes_added.clone(),
        );
        registry.register(
            "storm_alerts_rolled_up",
            "Alerts the storm breaker added to a customer's roll-up ticket instead of a ticket of their own",
            alerts_rolled_up.clone(),
        );
        registry.register(
            "storm_rollups_opened",
            "Roll-up tickets the storm breaker opened",
            rollups_opened.clone(),
        );
        registry.register(
            "storm_rollups_closed",
            "Roll-up tickets the storm breaker closed after a quiet window",
            rollups_closed.clone(),
        );
        registry.register(
            "failsafe_emails",
            "Failsafe e-mails sent for events that could not become tickets",
            failsafe_emails.clone(),
        );
        registry.register(
            "dead_letters",
            "Events moved to the dead letters",
            dead_letters.clone(),
        );
        registry.register(
            "psa_calls",
            "PSA API calls the dispatcher made, per connection (counted against requestsPerHour)",
            psa_calls.clone(),
        );
        registry.register(
            "queue_depth",
            "Events queued for delivery (held ones included)",
            queue_depth.clone(),
        );
        registry.register(
            "psa_calls_per_event",
            "PSA API calls spent delivering one event",
            psa_calls_per_event.clone(),
        );
        DispatchMetrics {
            psa_calls,
            accepted,
            duplicates,
            rejected,
            tickets_created,
            notes_added,
            alerts_rolled_up,
            rollups_opened,
            rollups_closed,
            failsafe_emails,
            dead_letters,
            queue_depth,
            psa_calls_per_event,
        }
    }

    pub fn events_accepted(&self, conn: &ConnectionKey, n: u64) {
        self.accepted.get_or_create(&conn.into()).inc_by(n);
    }

    pub fn events_duplicate(&self, conn: &ConnectionKey, n: u64) {
        self.duplicates.get_or_create(&conn.into()).inc_by(n);
    }

    pub fn rejected(&self, reason: RejectReason) {
        self.rejected.get_or_create(&RejectLabels { reason }).inc();
    }

    pub fn ticket_created(&self, conn: &ConnectionKey) {
        self.tickets_created.get_or_create(&conn.into()).inc();
    }

    pub fn note_added(&self, conn: &ConnectionKey) {
        self.notes_added.get_or_create(&conn.into()).inc();
    }

    /// An alert went to a roll-up (`opened`: it opened the roll-up).
    pub fn rolled_up(&self, conn: &ConnectionKey, opened: bool) {
        self.alerts_rolled_up.get_or_create(&conn.into()).inc();
        if opened {
            self.rollups_opened.get_or_create(&conn.into()).inc();
        }
    }

    pub fn rollup_closed(&self, conn: &ConnectionKey) {
        self.rollups_closed.get_or_create(&conn.into()).inc();
    }

    pub fn failsafe_email(&self, conn: &ConnectionKey) {
        self.failsafe_emails.get_or_create(&conn.into()).inc();
    }

    pub fn dead_letter(&self, conn: &ConnectionKey) {
        self.dead_letters.get_or_create(&conn.into()).inc();
    }

    /// Records how many PSA calls delivering one event of `conn` took.
    pub fn psa_calls_for_event(&self, conn: &ConnectionKey, calls: u32) {
        self.psa_calls_per_event.observe(f64::from(calls));
        self.psa_calls
            .get_or_create(&conn.into())
            .inc_by(u64::from(calls));
    }

    /// Creates every per-connection series of `conn` (at 0) so that dashboards and alert rules
    /// see the connection before its first ticket, failsafe e-mail or dead letter.
    pub fn init_connection(&self, conn: &ConnectionKey) {
        let labels: ConnectionLabels = conn.into();
        for family in [
            &self.accepted,
            &self.duplicates,
            &self.tickets_created,
            &self.notes_added,
            &self.alerts_rolled_up,
            &self.rollups_opened,
            &self.rollups_closed,
            &self.failsafe_emails,
            &self.dead_letters,
            &self.psa_calls,
        ] {
            let _ = family.get_or_create(&labels);
        }
    }

    pub fn set_queue_depth(&self, depth: u64) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
}

/// Keeps the queue-depth gauge current: re-reads the depth after each store change that queued
/// or finished work (at most once per `min_interval`). Runs until the store is dropped.
pub async fn track_queue_depth(
    store: Arc<dyn Store>,
    metrics: Arc<DispatchMetrics>,
    min_interval: Duration,
) {
    let mut changes = store.subscribe();
    loop {
        match store.queue_depth().await {
            Ok(depth) => metrics.set_queue_depth(depth),
            Err(StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "reading the queue depth failed"),
        }
        if changes.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(min_interval).await;
    }
}

/// Text exposition of a registry (OpenMetrics).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_labelled_in_the_exposition() {
        let mut registry = Registry::default();
        let m = DispatchMetrics::register(&mut registry);
        let acme = ConnectionKey::new("psa", "acme");
        m.events_accepted(&acme, 3);
        m.rejected(RejectReason::Unauthorized);
        m.rejected(RejectReason::Unauthorized);
        m.ticket_created(&acme);
        m.note_added(&acme);
        m.failsafe_email(&acme);
        m.dead_letter(&acme);
        m.psa_calls_for_event(&acme, 2);
        m.set_queue_depth(7);
        let text = encode(&registry);
        for line in [
            r#"psa_operator_dispatch_events_accepted_total{namespace="psa",connection="acme"} 3"#,
            r#"psa_operator_dispatch_events_rejected_total{reason="Unauthorized"} 2"#,
            r#"psa_operator_dispatch_events_rejected_total{reason="StoreUnavailable"} 0"#,
            r#"psa_operator_dispatch_psa_calls_total{namespace="psa",connection="acme"} 2"#,
            r#"psa_operator_dispatch_tickets_created_total{namespace="psa",connection="acme"} 1"#,
            r#"psa_operator_dispatch_notes_added_total{namespace="psa",connection="acme"} 1"#,
            r#"psa_operator_dispatch_failsafe_emails_total{namespace="psa",connection="acme"} 1"#,
            r#"psa_operator_dispatch_dead_letters_total{namespace="psa",connection="acme"} 1"#,
            "psa_operator_dispatch_queue_depth 7",
            "psa_operator_dispatch_psa_calls_per_event_count 1",
            "psa_operator_dispatch_psa_calls_per_event_sum 2.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
