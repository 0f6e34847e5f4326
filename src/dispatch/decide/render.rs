//! Ticket summary, description and note texts, rendered with minijinja.
//!
//! The summary template is the user's (`ticket.summaryTemplate`); everything else uses built-in
//! templates so one context shape serves all texts. A user template that fails to render falls
//! back to the default summary (the ticket matters more than the wording) and the error is
//! reported to the caller for logging.
//!
//! A user template is untrusted work: it runs in an environment without the functions and
//! operators that can build large values from small ones (`range`, `replace`, `*`, `~`, …),
//! with minijinja fuel (an instruction budget), a recursion limit and an output cap, on a
//! blocking thread under a deadline (`summary_bounded`). `check_template` compiles and
//! dry-renders one at reconcile time, so a template that cannot run never goes live.

use std::time::Duration;

use minijinja::{context, Environment, Value};

use crate::dispatch::event::{strip_bidi_controls, Event, EventKind};

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

/// The template context. Single-line fields are put on one line here too (events stored
/// before the intake refused line breaks, Alertmanager labels), so no value can start a line
/// of its own in a description, a note or a failsafe e-mail.
fn event_context(event: &Event) -> Value {
    let line = |s: &Option<String>| s.as_deref().map(one_line);
    context! {
        id => one_line(&event.id),
        kind => event.kind.as_str(),
        finding => event.kind.is_finding(),
        organization => one_line(&event.organization),
        user => line(&event.user),
        alertType => one_line(&event.alert_type),
        severity => line(&event.severity),
        title => &event.title,
        description => &event.description,
        occurredAt => &event.occurred_at,
        url => &event.url,
        findingId => &event.finding_id,
        status => line(&event.status),
        priority => line(&event.priority),
        comment => &event.comment,
        author => line(&event.author),
        labels => &event.labels,
        annotations => &event.annotations,
    }
}

fn render(template: &str, ctx: Value) -> Result<String, minijinja::Error> {
    // A fresh environment has no file-name based auto-escaping: tickets are plain text.
    let env = Environment::new();
    env.render_str(template, ctx)
}

/// Instructions one user-template render may execute. A summary template needs a few hundred;
/// `{% for i in … %}{% for j in … %}` runs out in milliseconds instead of spinning for minutes.
pub const TEMPLATE_FUEL: u64 = 20_000;
/// Longest text a user template may produce (the summary keeps 100 characters of it).
pub const TEMPLATE_OUTPUT_LIMIT: usize = 4 * 1024;
/// Deepest nesting of blocks and loops.
pub const TEMPLATE_RECURSION_LIMIT: usize = 16;
/// Longest template source.
pub const TEMPLATE_SOURCE_LIMIT: usize = 2 * 1024;
/// How long a delivery waits for a user template before it uses the default summary.
pub const TEMPLATE_DEADLINE: Duration = Duration::from_secs(2);

/// Filters and globals that turn a small input into a large value (`replace("", x)` is
/// quadratic, `range` and `namespace` feed loops and accumulators): not offered to user
/// templates.
const AMPLIFYING_FILTERS: &[&str] = &["replace", "indent", "format", "center", "batch", "pprint"];
const AMPLIFYING_GLOBALS: &[&str] = &["range", "namespace", "dict", "cycler", "joiner"];

/// Operators that repeat or concatenate strings (`"x" * 100000000`, `{% set a = a ~ a %}`).
/// Output is written piece by piece, so `{{ a }}{{ b }}` does what `a ~ b` would.
const AMPLIFYING_OPERATORS: &[char] = &['*', '~', '+'];

fn user_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION_LIMIT);
    for f in AMPLIFYING_FILTERS {
        env.remove_filter(f);
    }
    for g in AMPLIFYING_GLOBALS {
        env.remove_global(g);
    }
    env
}

/// The first amplifying operator used inside a `{{ … }}` or `{% … %}` tag, string literals
/// skipped.
fn amplifying_operator(template: &str) -> Option<char> {
    let mut rest = template;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let end = body.find(close).unwrap_or(body.len());
        let mut quote: Option<char> = None;
        for c in body[..end].chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote = Some(c),
                None if AMPLIFYING_OPERATORS.contains(&c) => return Some(c),
                None => {}
            }
        }
        rest = &body[end..];
    }
    None
}

/// An `io::Write` that refuses to grow past `limit` bytes.
struct CappedOutput {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("template output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders a user template within every bound above.
fn render_user(template: &str, ctx: Value) -> Result<String, TemplateError> {
    if template.len() > TEMPLATE_SOURCE_LIMIT {
        return Err(TemplateError(format!(
            "is longer than {TEMPLATE_SOURCE_LIMIT} bytes"
        )));
    }
    if let Some(op) = amplifying_operator(template) {
        return Err(TemplateError(format!(
            "uses the {op:?} operator, which summary templates do not offer \
             (write {{{{ a }}}}{{{{ b }}}} to join values)"
        )));
    }
    let env = user_environment();
    let compiled = env
        .template_from_str(template)
        .map_err(|e| TemplateError(e.to_string()))?;
    let mut out = CappedOutput {
        bytes: Vec::new(),
        limit: TEMPLATE_OUTPUT_LIMIT,
        overflowed: false,
    };
    let rendered = compiled.render_captured_to(ctx, &mut out).map(|_| ());
    match rendered {
        Ok(()) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
        Err(_) if out.overflowed => Err(TemplateError(format!(
            "renders more than {TEMPLATE_OUTPUT_LIMIT} bytes"
        ))),
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(TemplateError(format!(
            "does more than {TEMPLATE_FUEL} steps of work (loops too large)"
        ))),
        Err(e) => Err(TemplateError(e.to_string())),
    }
}

/// Whether a summary template can go live: it compiles, stays within the bounds and renders a
/// non-empty text for a sample of each event shape. Pure; the connection reconciler reports a
/// failure as `InvalidTemplate`.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    if template.trim().is_empty() {
        return Ok(());
    }
    for event in sample_events() {
        let text = render_user(template, event_context(&event))?;
        if text.trim().is_empty() {
            return Err(TemplateError(format!(
                "renders to an empty text for a {} event",
                event.kind.as_str()
            )));
        }
    }
    Ok(())
}

/// One event of each shape with every field filled, for `check_template`; as many labels as
/// the intake lets an Alertmanager alert carry, so a loop over them is tried at full size.
fn sample_events() -> Vec<Event> {
    let labels = (0..64)
        .map(|i| (format!("label{i}"), "v".repeat(256)))
        .chain([("alertname".to_string(), "TooManyDownloads".to_string())])
        .collect();
    let alert = Event {
        id: "sample-1".into(),
        severity: Some("high".into()),
        title: "412 files downloaded".into(),
        url: Some("https://alerts.example/e/1".into()),
        labels,
        annotations: [("summary".to_string(), "412 files".to_string())].into(),
        ..Event::sample()
    };
    let finding = Event {
        kind: EventKind::FindingCreated,
        finding_id: Some("f-1".into()),
        status: Some("Open".into()),
        priority: Some("1".into()),
        user: None,
        ..alert.clone()
    };
    let firing = Event {
        kind: EventKind::AlertFiring,
        finding_id: Some("6d1ddaf090ad53b0".into()),
        status: Some("firing".into()),
        ..alert.clone()
    };
    vec![alert, finding, firing]
}

/// Renders a built-in template; they are tested, so a failure only means a bug in this file,
/// and the event's raw fields are still better than nothing. Bidirectional controls dropped.
fn render_builtin(template: &str, ctx: Value, event: &Event) -> String {
    let text = render(template, ctx).unwrap_or_else(|e| {
        tracing::error!(error = %e, "built-in ticket template failed");
        format!(
            "{} / {} / {}\n{}",
            event.alert_type, event.organization, event.title, event.description
        )
    });
    strip_bidi_controls(&text)
}

/// The ticket summary: the user template (or the default), on one line, cut to the PSA limit.
/// Runs on the calling thread: from async code use `summary_bounded`.
pub fn summary(template: Option<&str>, event: &Event) -> Summary {
    let (raw, template_error) = match template {
        Some(t) if !t.trim().is_empty() => match render_user(t, event_context(event)) {
            Ok(s) if !s.trim().is_empty() => (s, None),
            Ok(_) => (
                render_builtin(DEFAULT_SUMMARY, event_context(event), event),
                Some(TemplateError("renders to an empty text".into())),
            ),
            Err(e) => (
                render_builtin(DEFAULT_SUMMARY, event_context(event), event),
                Some(e),
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

/// `summary` on a blocking thread, so a slow template never holds an async worker (and the
/// PSA calls of other connections behind it); past `TEMPLATE_DEADLINE` the default summary is
/// used. Fuel ends the abandoned render soon after.
pub async fn summary_bounded(template: Option<String>, event: &Event) -> Summary {
    let Some(template) = template.filter(|t| !t.trim().is_empty()) else {
        return summary(None, event);
    };
    let owned = event.clone();
    let job = tokio::task::spawn_blocking(move || summary(Some(&template), &owned));
    match tokio::time::timeout(TEMPLATE_DEADLINE, job).await {
        Ok(Ok(s)) => s,
        Ok(Err(join)) => Summary {
            template_error: Some(TemplateError(format!("render failed: {join}"))),
            ..summary(None, event)
        },
        Err(_) => Summary {
            template_error: Some(TemplateError(format!(
                "took longer than {} s",
                TEMPLATE_DEADLINE.as_secs()
            ))),
            ..summary(None, event)
        },
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
        EventKind::AlertResolved | EventKind::AlertCleared => ALERT_RESOLVED,
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

/// Control characters and line breaks become spaces, runs of blanks one space; bidirectional
/// controls are dropped.
pub fn one_line(s: &str) -> String {
    strip_bidi_controls(s)
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub fn cut_bytes(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
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
        crate::dispatch::event::Event::sample()
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

    /// The red-team template (nested loops) and other ways to make one render expensive: each
    /// is refused by `check_template` and, at delivery, falls back to the default summary
    /// quickly instead of spinning a thread.
    #[test]
    fn hostile_templates_are_bounded() {
        let mut e = alert();
        for i in 0..64 {
            e.labels.insert(format!("l{i}"), "v".repeat(1000));
        }
        let nested = "{% for a in labels %}{% for b in labels %}{% for c in labels %}\
                      {% for d in labels %}{{ a }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
        let cases: &[(&str, &str)] = &[
            (
                "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
                "range",
            ),
            (nested, "bytes"),
            (
                "{% for a in labels %}{% for b in labels %}{% if a == b %}{% endif %}\
                 {% endfor %}{% endfor %}{% for a in labels %}{% for b in labels %}\
                 {% for c in labels %}{% if a == c %}{% endif %}{% endfor %}{% endfor %}{% endfor %}",
                "steps of work",
            ),
            ("{{ 'x' * 100000000 }}", "operator"),
            ("{% set a = title ~ title %}{{ a }}", "operator"),
            ("{{ title|replace('', title) }}", "replace"),
            ("{{ alertType }}", ""),
        ];
        for (template, why) in cases {
            let started = std::time::Instant::now();
            let s = summary(Some(template), &e);
            assert!(started.elapsed() < Duration::from_secs(2), "{template}");
            let checked = check_template(template);
            if why.is_empty() {
                assert_eq!(s.template_error, None);
                assert_eq!(checked, Ok(()));
                continue;
            }
            let err = s.template_error.expect(template).0;
            assert!(err.contains(why), "{template}: {err}");
            assert_eq!(
                s.text,
                "Too Many Downloads — jane@contoso.example (Contoso Ltd)"
            );
            assert!(checked.is_err(), "{template}");
        }
        let long = "{{ alertType }}".repeat(200);
        assert!(check_template(&long).unwrap_err().0.contains("longer than"));
        // Operators inside string literals are text, not operators.
        assert_eq!(check_template("{{ alertType }} {{ '*' }} ~ +"), Ok(()));
        assert!(check_template("{{ nothing }}").is_err(), "empty render");
    }

    #[tokio::test]
    async fn bounded_summaries_render_off_the_async_workers() {
        let s = summary_bounded(
            Some("[{{ severity|upper }}] {{ alertType }}".into()),
            &alert(),
        )
        .await;
        assert_eq!(s.text, "[CRITICAL] Too Many Downloads");
        let s = summary_bounded(Some("{% for i in range(9) %}{% endfor %}".into()), &alert()).await;
        assert!(s.template_error.is_some());
        assert_eq!(
            s.text,
            "Too Many Downloads — jane@contoso.example (Contoso Ltd)"
        );
    }

    #[test]
    fn bidi_controls_and_line_breaks_never_reach_ticket_texts() {
        let mut e = alert();
        e.organization = "Contoso\r\nBcc: x@evil.example".into();
        e.alert_type = "invoice\u{202E}fdp.exe".into();
        e.user = Some("jane\nTo: all@contoso.example".into());
        let s = summary(Some("{{ alertType }} {{ organization }}"), &e).text;
        assert!(!s.contains('\u{202E}') && !s.contains('\n'), "{s:?}");
        let d = description(&e);
        assert!(!d.contains('\u{202E}'), "{d:?}");
        for line in d.lines() {
            assert!(!line.starts_with("Bcc:") && !line.starts_with("To:"), "{d}");
        }
        assert!(
            d.contains("Organization: Contoso Bcc: x@evil.example"),
            "{d}"
        );
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
