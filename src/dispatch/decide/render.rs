//! Ticket summary, description and note texts, rendered with minijinja.
//!
//! The summary template is the user's (`ticket.summaryTemplate`); everything else uses built-in
//! templates so one context shape serves all texts. A user template that fails to render falls
//! back to the default summary (the ticket matters more than the wording) and the error is
//! reported to the caller for logging.

use minijinja::{context, Environment, Value};

use crate::dispatch::event::{Event, EventKind};

/// Both PSAs cap the summary/title at 100 characters (ConnectWise `summary`, BMS `Title`).
pub const SUMMARY_LIMIT: usize = 100;

/// Default summary: "Too Many Downloads — jane@contoso.example (Contoso Ltd)"; findings lead with
/// their type and name.
pub const DEFAULT_SUMMARY: &str = "{% if finding %}{{ alertType }}: {{ title }}\
{% else %}{{ alertType }}{% if user %} — {{ user }}{% endif %}{% endif %}\
{% if organization %} ({{ organization }}){% endif %}";

const DETAILS: &str = "{% if title and title != alertType %}{{ title }}\n\n{% endif %}\
{% if description %}{{ description }}\n\n{% endif %}\
Alert type: {{ alertType }}\n\
Organization: {{ organization or '-' }}\n\
User: {{ user or '-' }}\n\
{% if severity %}Severity: {{ severity }}\n{% endif %}\
{% if priority %}Priority: {{ priority }}\n{% endif %}\
{% if status %}Status: {{ status }}\n{% endif %}\
Time: {{ occurredAt or 'not given' }}\n\
{% if url %}Link: {{ url }}\n{% endif %}\
{% for k, v in labels|items %}{% if loop.first %}Labels:\n{% endif %}  {{ k }}={{ v }}\n{% endfor %}\
{% for k, v in annotations|items %}{% if loop.first %}Annotations:\n{% endif %}  {{ k }}: {{ v }}\n{% endfor %}\
Event id: {{ id }}";

const FOLLOW_UP: &str = "Another alert in this ticket's group: {{ alertType }}\n\n{{ details }}";

const COMMENT: &str = "Comment on the finding{% if author %} by {{ author }}{% endif %}:\n\
{{ comment or '(empty)' }}\n\n{% if url %}Link: {{ url }}\n{% endif %}Event id: {{ id }}";

const FINDING_RESOLVED: &str = "The finding was resolved{% if status %} ({{ status }}){% endif %}\
{% if author %} by {{ author }}{% endif %}.\n\
{% if comment %}{{ comment }}\n{% endif %}\n{% if url %}Link: {{ url }}\n{% endif %}Event id: {{ id }}";

const ALERT_RESOLVED: &str = "Resolved: {{ alertType }}{% if user %} — {{ user }}{% endif %}\
{% if occurredAt %} at {{ occurredAt }}{% endif %}\n\n{{ details }}";

/// A failed user template, reported by the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("summary template does not render: {0}")]
pub struct TemplateError(pub String);

/// A rendered summary and, when the user template failed, why the default was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub text: String,
    pub template_error: Option<TemplateError>,
}

fn event_context(event: &Event) -> Value {
    context! {
        id => &event.id,
        kind => event.kind.as_str(),
        finding => event.kind.is_finding(),
        organization => &event.organization,
        user => &event.user,
        alertType => &event.alert_type,
        severity => &event.severity,
        title => &event.title,
        description => &event.description,
        occurredAt => &event.occurred_at,
        url => &event.url,
        findingId => &event.finding_id,
        status => &event.status,
        priority => &event.priority,
        comment => &event.comment,
        author => &event.author,
        labels => &event.labels,
        annotations => &event.annotations,
    }
}

fn render(template: &str, ctx: Value) -> Result<String, minijinja::Error> {
    // A fresh environment has no file-name based auto-escaping: tickets are plain text.
    let env = Environment::new();
    env.render_str(template, ctx)
}

/// Renders a built-in template; they are tested, so a failure only means a bug in this file,
/// and the event's raw fields are still better than nothing.
fn render_builtin(template: &str, ctx: Value, event: &Event) -> String {
    render(template, ctx).unwrap_or_else(|e| {
        tracing::error!(error = %e, "built-in ticket template failed");
        format!(
            "{} / {} / {}\n{}",
            event.alert_type, event.organization, event.title, event.description
        )
    })
}

/// The ticket summary: the user template (or the default), on one line, cut to the PSA limit.
pub fn summary(template: Option<&str>, event: &Event) -> Summary {
    let (raw, template_error) = match template {
        Some(t) if !t.trim().is_empty() => match render(t, event_context(event)) {
            Ok(s) if !s.trim().is_empty() => (s, None),
            Ok(_) => (
                render_builtin(DEFAULT_SUMMARY, event_context(event), event),
                Some(TemplateError("renders to an empty text".into())),
            ),
            Err(e) => (
                render_builtin(DEFAULT_SUMMARY, event_context(event), event),
                Some(TemplateError(e.to_string())),
            ),
        },
        _ => (
            render_builtin(DEFAULT_SUMMARY, event_context(event), event),
            None,
        ),
    };
    Summary {
        text: cut_chars(&one_line(&raw), SUMMARY_LIMIT),
        template_error,
    }
}

/// The description of a new ticket: everything the sender told us, with a link back.
pub fn description(event: &Event) -> String {
    let details = render_builtin(DETAILS, event_context(event), event);
    match event.kind {
        EventKind::FindingCommented => format!(
            "{details}\n\n{}",
            render_builtin(COMMENT, event_context(event), event)
        ),
        EventKind::FindingResolved => format!(
            "{details}\n\n{}",
            render_builtin(FINDING_RESOLVED, event_context(event), event)
        ),
        _ => details,
    }
}

/// The note text an event adds to an existing ticket.
pub fn note(event: &Event) -> String {
    let details = render_builtin(DETAILS, event_context(event), event);
    let ctx = context! { details => details, ..event_context(event) };
    let template = match event.kind {
        EventKind::Alert | EventKind::AlertFiring | EventKind::FindingCreated => FOLLOW_UP,
        EventKind::AlertResolved => ALERT_RESOLVED,
        EventKind::FindingCommented => COMMENT,
        EventKind::FindingResolved => FINDING_RESOLVED,
    };
    render_builtin(template, ctx, event)
}

/// One note for several alerts collected within `groupWait`.
pub fn combined_note(events: &[&Event]) -> String {
    match events {
        [one] => note(one),
        _ => {
            let parts: Vec<String> = events.iter().map(|e| note(e)).collect();
            format!(
                "{} alerts in this ticket's group:\n\n{}",
                events.len(),
                parts.join("\n\n----------\n\n")
            )
        }
    }
}

/// Control characters and line breaks become spaces, runs of blanks one space.
pub fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `limit` characters (not bytes), ending in "…" when something was cut.
pub fn cut_chars(s: &str, limit: usize) -> String {
    if s.chars().count() <= limit {
        return s.to_string();
    }
    let keep: String = s.chars().take(limit.saturating_sub(1)).collect();
    format!("{}…", keep.trim_end())
}

#[cfg(test)]
mod tests {

    use super::*;

    fn alert() -> Event {
        crate::dispatch::decide::sample_alert()
    }

    #[test]
    fn summaries() {
        let mut no_user = alert();
        no_user.user = None;
        let mut finding = alert();
        finding.kind = EventKind::FindingCreated;
        finding.alert_type = "Threat".into();
        finding.title = "Impossible travel: jane@contoso.example".into();
        let mut long = alert();
        long.alert_type = "é".repeat(150);
        let plain = alert();
        // (event, template, expected text, template error?)
        let table: Vec<(&Event, Option<&str>, String, bool)> = vec![
            (
                &plain,
                None,
                "Too Many Downloads — jane@contoso.example (Contoso Ltd)".into(),
                false,
            ),
            (
                &no_user,
                None,
                "Too Many Downloads (Contoso Ltd)".into(),
                false,
            ),
            (
                &finding,
                None,
                "Threat: Impossible travel: jane@contoso.example (Contoso Ltd)".into(),
                false,
            ),
            (
                &plain,
                Some("[{{ severity|upper }}] {{ alertType }}\nfor {{ user }}"),
                "[CRITICAL] Too Many Downloads for jane@contoso.example".into(),
                false,
            ),
            // A broken or empty user template falls back to the default, and says so.
            (
                &plain,
                Some("{{ alertType "),
                "Too Many Downloads — jane@contoso.example (Contoso Ltd)".into(),
                true,
            ),
            (
                &plain,
                Some("{{ nothing }}"),
                "Too Many Downloads — jane@contoso.example (Contoso Ltd)".into(),
                true,
            ),
            (
                &long,
                Some("{{ alertType }}"),
                format!("{}…", "é".repeat(99)),
                false,
            ),
        ];
        for (event, template, want, err) in table {
            let s = summary(template, event);
            assert_eq!(s.text, want, "{template:?}");
            assert_eq!(s.template_error.is_some(), err, "{template:?}");
            assert!(s.text.chars().count() <= SUMMARY_LIMIT);
        }
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut_chars("abc", 3), "abc");
        assert_eq!(cut_chars("abcd", 3), "ab…");
        assert_eq!(cut_chars("ab d", 3), "ab…");
        let s = "👍".repeat(101);
        let cut = cut_chars(&s, 100);
        assert_eq!(cut.chars().count(), 100);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn description_has_everything_and_a_link_back() {
        let mut e = alert();
        e.labels
            .insert("alertname".into(), "ImpossibleTravel".into());
        let d = description(&e);
        for part in [
            "412 files downloaded from SharePoint in 10 minutes",
            "Alert type: Too Many Downloads",
            "Organization: Contoso Ltd",
            "User: jane@contoso.example",
            "Severity: critical",
            "Time: 2026-11-24T16:18:28Z",
            "Link: https://alerts.example/e/sa-1",
            "alertname=ImpossibleTravel",
            "Event id: sa-1",
        ] {
            assert!(d.contains(part), "missing {part:?} in\n{d}");
        }
        // The title equal to the alert type is not repeated.
        assert!(!d.starts_with("Too Many Downloads\n"));
    }

    #[test]
    fn notes_per_kind() {
        let mut comment = alert();
        comment.kind = EventKind::FindingCommented;
        comment.comment = Some("Called the user, travel confirmed.".into());
        comment.author = Some("Sam".into());
        let mut resolved = alert();
        resolved.kind = EventKind::FindingResolved;
        resolved.status = Some("False Positive".into());
        let mut am_resolved = alert();
        am_resolved.kind = EventKind::AlertResolved;
        let table = [
            (
                alert(),
                "Another alert in this ticket's group: Too Many Downloads",
            ),
            (
                comment,
                "Comment on the finding by Sam:\nCalled the user, travel confirmed.",
            ),
            (resolved, "The finding was resolved (False Positive)."),
            (
                am_resolved,
                "Resolved: Too Many Downloads — jane@contoso.example at 2026-11-24T16:18:28Z",
            ),
        ];
        for (e, start) in table {
            let n = note(&e);
            assert!(n.starts_with(start), "{:?}: {n}", e.kind);
            assert!(n.contains("Event id: sa-1"), "{n}");
        }
    }

    #[test]
    fn combined_note_lists_each_alert() {
        let a = alert();
        let mut b = alert();
        b.id = "sa-2".into();
        b.alert_type = "Too Many Uploads".into();
        let n = combined_note(&[&a, &b]);
        assert!(n.starts_with("2 alerts in this ticket's group"));
        assert!(n.contains("Event id: sa-1") && n.contains("Event id: sa-2"));
        assert_eq!(combined_note(&[&a]), note(&a));
    }
}
