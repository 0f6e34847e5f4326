//! What the dispatcher tells about events it could not deliver: one notice per dead letter and
//! one per failsafe e-mail sent, handed to a sink the operator wires (Kubernetes Events on the
//! PsaConnection); nothing in benchmarks and unit tests.

use crate::resolved::ConnectionKey;

/// One delivery problem of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryProblem {
    /// The event became a dead letter (`reason` says why; it holds no secret).
    DeadLetter { event_id: String, reason: String },
    /// The failsafe e-mail of a dead letter went out to this many recipients.
    FailsafeSent { event_id: String, recipients: usize },
}

impl DeliveryProblem {
    /// Event reason (CamelCase) of the problem.
    pub fn reason(&self) -> &'static str {
        match self {
            DeliveryProblem::DeadLetter { .. } => "DeadLetter",
            DeliveryProblem::FailsafeSent { .. } => "FailsafeEmailSent",
        }
    }

    /// Event action (what the dispatcher did).
    pub fn action(&self) -> &'static str {
        match self {
            DeliveryProblem::DeadLetter { .. } => "Dispatch",
            DeliveryProblem::FailsafeSent { .. } => "SendFailsafe",
        }
    }

    /// The human sentence of the Event. It names the first event only in the logs: Kubernetes
    /// keeps one Event per (reason, object) as a series whose count grows with each repeat.
    pub fn note(&self) -> String {
        match self {
            DeliveryProblem::DeadLetter { reason, .. } => format!(
                "an alert became a dead letter: {reason} (status.dispatch.deadLetters counts them; \
                 `psa-operator replay` re-queues them once fixed)"
            ),
            DeliveryProblem::FailsafeSent { recipients, .. } => format!(
                "no ticket could be made for an alert; its failsafe e-mail went to {recipients} recipient(s)"
            ),
        }
    }

    pub fn event_id(&self) -> &str {
        match self {
            DeliveryProblem::DeadLetter { event_id, .. }
            | DeliveryProblem::FailsafeSent { event_id, .. } => event_id,
        }
    }
}

/// Where delivery problems go.
#[async_trait::async_trait]
pub trait ProblemSink: Send + Sync {
    async fn report(&self, key: &ConnectionKey, problem: &DeliveryProblem);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_has_its_reason_and_a_sentence_naming_the_event() {
        let dead = DeliveryProblem::DeadLetter {
            event_id: "a-1".into(),
            reason: "'StatusId' is required".into(),
        };
        assert_eq!(dead.reason(), "DeadLetter");
        assert!(dead.note().contains("StatusId"), "{}", dead.note());
        assert_eq!(dead.event_id(), "a-1");
        let mail = DeliveryProblem::FailsafeSent {
            event_id: "a-1".into(),
            recipients: 2,
        };
        assert_eq!(mail.reason(), "FailsafeEmailSent");
        assert!(mail.note().contains("2 recipient(s)"), "{}", mail.note());
    }
}
