//! Bounded randomised fuzzing of everything that reads text from outside: the three intake
//! parsers, the ConnectWise conditions builder, ticket templates and the Kaseya BMS response
//! envelope. Inputs are valid samples mutated byte-wise plus generated JSON and strings rich in
//! syntax characters. Properties: no panic, and every rejection is a problem document (intake)
//! or a bounded, classified error (PSA envelope).
//!
//! Cases per target: `PSA_FUZZ_CASES` (default 3,000, a few seconds each in CI); the seed is
//! printed and can be fixed with `PSA_FUZZ_SEED`. Longer runs: see docs/security.md.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn cases() -> usize {
    std::env::var("PSA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

fn rng(target: &str) -> StdRng {
    let seed = std::env::var("PSA_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("fuzz {target}: {} cases, seed {seed}", cases());
    StdRng::seed_from_u64(seed)
}

const PIECES: &[&str] = &[
    "\"", "'", "\\", "{", "}", "[", "]", ":", ",", "{{", "}}", "{%", "%}", "{#", " and ", " or ",
    "=", "like", "null", "true", "1e999", "-0", "\u{0}", "\n", "\r", "é", "💥", "\u{202e}", "%",
    "<", ">", "&", "(", ")", " ",
];

/// A short string mixing ASCII letters with syntax characters of every grammar under test.
fn text(r: &mut StdRng) -> String {
    let n = r.random_range(0..24);
    (0..n)
        .map(|_| {
            if r.random_bool(0.5) {
                PIECES[r.random_range(0..PIECES.len())].to_string()
            } else {
                char::from(r.random_range(b'a'..=b'z')).to_string()
            }
        })
        .collect()
}

/// Arbitrary JSON, nested up to `depth`.
fn value(r: &mut StdRng, depth: u32) -> Value {
    match r.random_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(r.random_bool(0.5)),
        2 => json!(r.random::<i64>()),
        3 => json!(r.random::<f64>() * 1e6),
        4 => json!(text(r)),
        5 => Value::Array(
            (0..r.random_range(0..4))
                .map(|_| value(r, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.random_range(0..5) {
                m.insert(text(r), value(r, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// A valid sample with some fields replaced by arbitrary JSON.
fn mutate_fields(r: &mut StdRng, sample: &Value) -> Value {
    match sample {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match r.random_range(0..6) {
                        0 => value(r, 2),
                        1 => mutate_fields(r, v),
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| mutate_fields(r, v)).collect()),
        other => {
            if r.random_bool(0.2) {
                value(r, 1)
            } else {
                other.clone()
            }
        }
    }
}

/// Bytes of `sample` flipped, cut, duplicated or spliced with syntax characters.
fn mutate_bytes(r: &mut StdRng, sample: &[u8]) -> Vec<u8> {
    let mut b = sample.to_vec();
    for _ in 0..r.random_range(1..6) {
        if b.is_empty() {
            b.extend_from_slice(text(r).as_bytes());
            continue;
        }
        let at = r.random_range(0..b.len());
        match r.random_range(0..5) {
            0 => b[at] = r.random(),
            1 => b.truncate(at),
            2 => {
                let piece = text(r);
                b.splice(at..at, piece.bytes());
            }
            3 => {
                let end = (at + r.random_range(0..16)).min(b.len());
                let dup = b[at..end].to_vec();
                b.splice(at..at, dup);
            }
            _ => {
                b.remove(at);
            }
        }
    }
    b
}

/// Nesting far deeper than any real payload.
fn deep(r: &mut StdRng) -> Vec<u8> {
    let n = r.random_range(100..5_000);
    let mut s = "[".repeat(n);
    s.push_str(&"]".repeat(r.random_range(0..=n)));
    s.into_bytes()
}

mod intake {
    use super::*;
    use crate::dispatch::intake::fields::ParseError;
    use crate::dispatch::intake::{Endpoint, IntakeLimits, Rejection};
    use crate::resolved::AlertmanagerLabelNames;

    fn samples() -> Vec<(Endpoint, Value)> {
        let alert = json!({
            "id": "a1", "organization": "Contoso Ltd", "user": "jane@contoso.example",
            "alertType": "Too Many Downloads", "severity": "high", "title": "t",
            "description": "d", "occurredAt": "2026-11-24T10:00:00Z",
            "url": "https://alerts.example/1"
        });
        let finding = json!({
            "id": "f1-created", "findingId": "f1", "event": "created",
            "organization": "Contoso Ltd", "name": "Impossible travel", "type": "Threat",
            "priority": 1, "status": "Open", "description": "d"
        });
        let am: Value = serde_json::from_str(include_str!(
            "../tests/fixtures/alertmanager-0.25-webhook-firing.json"
        ))
        .unwrap();
        vec![
            (Endpoint::Alerts, alert.clone()),
            (Endpoint::Alerts, json!([alert.clone(), alert])),
            (Endpoint::Findings, finding),
            (Endpoint::Alertmanager, am.clone()),
            // A message with many alerts: mutations push it over the per-request limit.
            (Endpoint::Alertmanager, {
                let mut many = am;
                let one = many["alerts"][0].clone();
                many["alerts"] = Value::Array(vec![one; 100]);
                many
            }),
        ]
    }

    /// Parses and, on a rejection, renders the problem document the client would get.
    fn check(endpoint: Endpoint, body: &[u8], limits: &IntakeLimits) -> bool {
        match endpoint.parse(body, limits, &AlertmanagerLabelNames::default()) {
            Ok(events) => {
                assert!(events.len() <= limits.max_batch.max(1000));
                assert!(events.iter().all(|e| !e.id.is_empty()));
                true
            }
            Err(e) => {
                let rej = match e {
                    ParseError::Malformed(why) => Rejection::Malformed(why),
                    ParseError::Invalid(errors) => {
                        assert!(!errors.is_empty(), "a 422 names at least one field");
                        Rejection::Invalid(errors)
                    }
                };
                let p = rej.problem();
                assert!(p.status == 400 || p.status == 422, "{p:?}");
                assert!(!p.title.is_empty() && !p.detail.is_empty(), "{p:?}");
                let doc = serde_json::to_value(&p).unwrap();
                assert!(doc["type"].is_string() && doc["status"].is_u64(), "{doc}");
                assert!(
                    doc.to_string().len() < 64 * 1024,
                    "a problem document stays small"
                );
                false
            }
        }
    }

    #[test]
    fn intake_parsers_never_panic_and_reject_with_a_problem() {
        let mut r = rng("intake parsers");
        let limits = IntakeLimits::default();
        let samples = samples();
        for (endpoint, sample) in &samples {
            assert!(
                check(*endpoint, sample.to_string().as_bytes(), &limits),
                "{endpoint:?} sample must parse"
            );
        }
        let (mut accepted, mut rejected) = (0, 0);
        for i in 0..cases() {
            let (endpoint, sample) = &samples[i % samples.len()];
            let body = match r.random_range(0..4) {
                0 => mutate_bytes(&mut r, sample.to_string().as_bytes()),
                1 => mutate_fields(&mut r, sample).to_string().into_bytes(),
                2 => value(&mut r, 4).to_string().into_bytes(),
                _ => deep(&mut r),
            };
            if check(*endpoint, &body, &limits) {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        eprintln!("intake parsers: {accepted} accepted, {rejected} rejected with a problem");
        assert!(
            rejected > 0 && accepted > 0,
            "the generator covers both sides"
        );
    }
}

mod conditions {
    use super::*;
    use crate::psa::connectwise::query::{and, eq_id, eq_str, or};
    use crate::sandbox::connectwise::query;

    /// Whatever the value, the condition parses and an exact-value record matches it (the
    /// `like` fallback may match more; callers re-check, see the builder's docs).
    #[test]
    fn conditions_builder_always_yields_a_parseable_query() {
        let mut r = rng("conditions builder");
        for _ in 0..cases() {
            let value = text(&mut r);
            let cond = eq_str("name", &value);
            let expr = query::parse(&cond)
                .unwrap_or_else(|e| panic!("{value:?} → {cond:?} does not parse: {e:?}"))
                .expect("a condition");
            let record = json!({ "name": value, "id": 7 });
            assert!(
                query::matches(&expr, &record).unwrap(),
                "{value:?} → {cond:?} does not match the exact value"
            );
            let other = json!({ "name": format!("{value}x"), "id": 7 });
            if !(value.contains('"') && value.contains('\'')) {
                assert!(!query::matches(&expr, &other).unwrap(), "{cond:?}");
            }
            let combined = and([cond.clone(), or([cond.clone(), "id=7".to_string()])]);
            assert!(query::parse(&combined).is_ok(), "{combined:?}");
            // Ids that are not integers are refused, never spliced into the query.
            if value.trim().parse::<i64>().is_err() {
                assert_eq!(eq_id("id", &value), None);
            }
        }
    }
}

mod templates {
    use super::*;
    use crate::dispatch::decide::render::{
        combined_note, description, note, summary, SUMMARY_LIMIT,
    };
    use crate::dispatch::event::{Event, EventKind};

    fn event(r: &mut StdRng) -> Event {
        Event {
            id: text(r),
            kind: EventKind::Alert,
            organization: text(r),
            user: r.random_bool(0.7).then(|| text(r)),
            alert_type: text(r),
            severity: r.random_bool(0.5).then(|| text(r)),
            title: text(r),
            description: text(r),
            occurred_at: r.random_bool(0.5).then(|| text(r)),
            url: r.random_bool(0.5).then(|| text(r)),
            finding_id: None,
            status: None,
            priority: None,
            comment: None,
            author: None,
            labels: [(text(r), text(r))].into(),
            annotations: Default::default(),
        }
    }

    /// Arbitrary user templates (half of them built from template syntax) and arbitrary
    /// events: a one-line summary within the PSA limit, and a template error instead of a panic.
    #[test]
    fn templates_never_panic_and_stay_within_limits() {
        let mut r = rng("templates");
        let mut errors = 0;
        for _ in 0..cases() {
            let ev = event(&mut r);
            let template = match r.random_range(0..3) {
                0 => text(&mut r),
                1 => format!("{{{{ {} }}}} {}", text(&mut r), text(&mut r)),
                _ => format!(
                    "{{{{ organization }}}}{}{{{{ title|upper }}}}",
                    text(&mut r)
                ),
            };
            let s = summary(Some(&template), &ev);
            assert!(s.text.chars().count() <= SUMMARY_LIMIT, "{s:?}");
            assert!(!s.text.contains('\u{202e}'), "{s:?}");
            assert!(!s.text.contains('\n'), "{s:?}");
            errors += usize::from(s.template_error.is_some());
            let _ = description(&ev);
            let _ = note(&ev);
            let _ = combined_note(&[&ev, &ev]);
        }
        eprintln!("templates: {errors} template errors reported (default summary used)");
    }

    /// Costly templates built from loops, nesting and amplifying constructs over an event with
    /// the most labels the intake allows: every render ends quickly, within the output cap.
    #[test]
    fn costly_templates_stay_bounded() {
        use crate::dispatch::decide::render::check_template;
        let mut r = rng("costly templates");
        let mut ev = event(&mut r);
        ev.labels = (0..64)
            .map(|i| (format!("l{i}"), "v".repeat(1024)))
            .collect();
        let parts = [
            "{% for a in labels %}",
            "{% for b in labels|items %}",
            "{% if a %}",
            "{{ labels|join(title) }}",
            "{{ title ~ title }}",
            "{{ 'x' * 1000000 }}",
            "{{ range(100000)|join }}",
            "{{ a }}",
            "{% set t = title %}",
        ];
        for _ in 0..cases().min(300) {
            let mut template = String::new();
            let mut open = Vec::new();
            for _ in 0..r.random_range(1..8) {
                let p = parts[r.random_range(0..parts.len())];
                template.push_str(p);
                if p.starts_with("{% for") {
                    open.push("{% endfor %}");
                } else if p.starts_with("{% if") {
                    open.push("{% endif %}");
                }
            }
            while let Some(end) = open.pop() {
                template.push_str(end);
            }
            let started = std::time::Instant::now();
            let s = summary(Some(&template), &ev);
            let _ = check_template(&template);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{template}"
            );
            assert!(s.text.chars().count() <= SUMMARY_LIMIT, "{template}");
        }
    }
}

mod bms_envelope {
    use super::*;
    use crate::psa::bms::envelope::parse_response;

    #[test]
    fn bms_envelope_never_panics_and_bounds_error_texts() {
        let mut r = rng("BMS envelope");
        let samples = [
            json!({"Result": {"Id": 5, "Name": "x"}, "TotalRecords": 1, "Success": true}),
            json!({"success": false, "error": {"code": 404, "message": "not found"}}),
            json!({"Message": "The request is invalid.", "ModelState": {"a": ["b"]}}),
        ];
        let mut oks = 0;
        for i in 0..cases() {
            let sample = &samples[i % samples.len()];
            let body = match r.random_range(0..4) {
                0 => mutate_bytes(&mut r, sample.to_string().as_bytes()),
                1 => mutate_fields(&mut r, sample).to_string().into_bytes(),
                2 => value(&mut r, 4).to_string().into_bytes(),
                _ => {
                    let mut b = vec![0u8; r.random_range(0..20_000)];
                    r.fill(&mut b[..]);
                    b
                }
            };
            let status =
                [200, 201, 204, 400, 401, 403, 404, 409, 429, 500, 503][r.random_range(0..11)];
            match parse_response(status, &body, None) {
                Ok(_) => {
                    assert!((200..300).contains(&status));
                    oks += 1;
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.chars().count() <= 1_000, "unbounded error text: {msg}");
                    if !(200..300).contains(&status) {
                        assert_eq!(
                            e.is_transient(),
                            matches!(status, 429 | 500 | 503),
                            "{status}: {e:?}"
                        );
                    }
                }
            }
        }
        eprintln!("BMS envelope: {oks} successes");
    }
}
