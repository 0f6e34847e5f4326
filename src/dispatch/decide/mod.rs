//! Pure decisions of the dispatcher, each with its table tests. No I/O here: the worker gathers
//! the facts (snapshot, index, PSA answers, caches) and acts on what these functions return.

pub mod action;
pub mod batch;
pub mod contact;
pub mod lifecycle;
pub mod marker;
pub mod render;
pub mod retry;
pub mod routing;
pub mod values;

/// A sample alert for the unit tests of the decisions and the failsafe e-mail.
#[cfg(test)]
pub(crate) fn sample_alert() -> crate::dispatch::event::Event {
    crate::dispatch::event::Event {
        id: "sa-1".into(),
        kind: crate::dispatch::event::EventKind::Alert,
        organization: "Contoso Ltd".into(),
        user: Some("jane@contoso.example".into()),
        alert_type: "Too Many Downloads".into(),
        severity: Some("critical".into()),
        title: "Too Many Downloads".into(),
        description: "412 files downloaded from SharePoint in 10 minutes".into(),
        occurred_at: Some("2026-11-24T16:18:28Z".into()),
        url: Some("https://alerts.example/e/sa-1".into()),
        finding_id: None,
        status: None,
        priority: None,
        comment: None,
        author: None,
        labels: Default::default(),
        annotations: Default::default(),
    }
}
