//! Delivery problems of the dispatcher (dead letters, failsafe e-mails) as Warning Events on the
//! PsaConnection, through the controllers' one Recorder (so a repeated problem becomes an Event
//! series, not a new object each time). Only the leader publishes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::api::{GROUP, VERSION};
use crate::dispatch::problems::{DeliveryProblem, ProblemSink};
use crate::resolved::ConnectionKey;

use super::context::truncate;

pub struct ConnectionProblemEvents {
    recorder: Recorder,
    leader: Arc<AtomicBool>,
    /// One publish at a time: the Recorder finds a series in its cache only after the first
    /// Event is created, so parallel lanes dead-lettering at once would create one Event each.
    publishing: tokio::sync::Mutex<()>,
}

impl ConnectionProblemEvents {
    pub fn new(recorder: Recorder, leader: Arc<AtomicBool>) -> Self {
        ConnectionProblemEvents {
            recorder,
            leader,
            publishing: tokio::sync::Mutex::new(()),
        }
    }
}

/// The PsaConnection an Event is about.
fn connection_ref(key: &ConnectionKey) -> ObjectReference {
    ObjectReference {
        api_version: Some(format!("{GROUP}/{VERSION}")),
        kind: Some("PsaConnection".into()),
        namespace: Some(key.namespace.clone()),
        name: Some(key.name.clone()),
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl ProblemSink for ConnectionProblemEvents {
    async fn report(&self, key: &ConnectionKey, problem: &DeliveryProblem) {
        if !self.leader.load(Ordering::Relaxed) {
            return;
        }
        let ev = Event {
            type_: EventType::Warning,
            reason: problem.reason().into(),
            note: Some(truncate(&problem.note(), 1000)),
            action: problem.action().into(),
            secondary: None,
        };
        let _one_at_a_time = self.publishing.lock().await;
        if let Err(e) = self.recorder.publish(&ev, &connection_ref(key)).await {
            tracing::warn!(connection = %key, event = problem.event_id(), error = %e,
                reason = problem.reason(), "could not publish event");
        }
    }
}
