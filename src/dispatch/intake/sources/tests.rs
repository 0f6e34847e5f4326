//! Table tests of the mapped sources: compiling, Grafana, webhooks, CloudEvents, and the
//! request side (signatures) — each against a fixture written from the producer's documented
//! payload.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use super::cloudevents::parse_cloudevents;
use super::grafana::Grafana;
use super::intake::{map_request, MappedRoute};
use super::signature::tests::{hmac_hex, svix_sign};
use super::webhook::parse_webhook;
use super::*;
use crate::dispatch::intake::alertmanager::parse_message;
use crate::dispatch::intake::fields::ParseError;
use crate::dispatch::intake::{IntakeLimits, Rejection};
use crate::resolved::AlertmanagerLabelNames;

const GRAFANA: &str = include_str!("../../../../tests/fixtures/grafana-11-webhook-firing.json");
const CLOUDEVENT: &str = include_str!("../../../../tests/fixtures/cloudevents-1.0-structured.json");
const SAAS: &str = include_str!("../../../../tests/fixtures/saas-webhook-incident.json");

const HMAC_SECRET: &str = "edr-webhook-signing-secret";
const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn sources_spec() -> Vec<WebhookSource> {
    serde_json::from_value(json!([
        {"name": "edr",
         "organization": "payload.organization.name",
         "alertType": "payload.type == 'incident_report.sent' ? 'EDR incident' : payload.type",
         "id": "payload.id",
         "user": "payload.incident_report.user",
         "severity": "payload.incident_report.severity",
         "title": "payload.incident_report.subject",
         "description": "payload.incident_report.summary + '\\n' + payload.incident_report.url",
         "status": "payload.incident_report.status",
         "signature": {"hmacSha256": {"header": "X-EDR-Signature", "secretRef": {"name": "edr-signing"}}}},
        {"name": "saas",
         "organization": "payload.organization.name",
         "alertType": "payload.type",
         "signature": {"svix": {"secretRef": {"name": "saas-signing"}}}},
        {"name": "siem",
         "organization": "payload.customer.name",
         "alertType": "payload.rule",
         "user": "payload.account",
         "severity": "payload.severity.lowerAscii()",
         "title": "event.subject + ': ' + payload.rule",
         "description": "payload.summary",
         "cloudEventTypes": ["com.example.siem.*"]}
    ]))
    .unwrap()
}

fn secrets() -> BTreeMap<String, Result<SecretString, String>> {
    BTreeMap::from([
        (
            "edr-signing".to_string(),
            Ok(SecretString::new(HMAC_SECRET)),
        ),
        (
            "saas-signing".to_string(),
            Ok(SecretString::new(SVIX_SECRET)),
        ),
    ])
}

fn compiled() -> CompiledSources {
    compile(&sources_spec(), &secrets()).unwrap()
}

fn invalid(r: Result<Vec<Event>, ParseError>) -> Vec<FieldError> {
    match r {
        Err(ParseError::Invalid(e)) => e,
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn compile_errors_name_the_field_path() {
    let mut spec = sources_spec();
    spec[0].organization = "payload.organization.".into();
    spec[1].user = Some("payload.user ==".into());
    spec[2].name = "edr".into();
    spec[1]
        .signature
        .as_mut()
        .unwrap()
        .svix
        .as_mut()
        .unwrap()
        .tolerance = Some("0s".into());
    let errors = check(&spec);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "sources[0].organization",
            "sources[1].user",
            "sources[1].signature.svix.tolerance",
            "sources[2].name"
        ],
        "{errors:?}"
    );
    assert_eq!(errors[0].value, "payload.organization.");
    assert!(
        errors[0].problem.starts_with("invalid CEL expression"),
        "{}",
        errors[0].problem
    );
    // A Secret that cannot be read is named, its value never.
    let mut unreadable = secrets();
    unreadable.insert(
        "edr-signing".into(),
        Err("Secret edr-signing not found".into()),
    );
    let errors = compile(&sources_spec(), &unreadable).unwrap_err();
    assert_eq!(errors[0].field, "sources[0].signature.hmacSha256.secretRef");
    assert_eq!(errors[0].value, "edr-signing");
    assert!(check(&sources_spec()).is_empty());
}

#[test]
fn grafana_webhook_fixture_becomes_a_firing_and_a_resolved_event() {
    let events =
        parse_message::<Grafana>(GRAFANA.as_bytes(), &AlertmanagerLabelNames::default(), 100)
            .unwrap();
    assert_eq!(events.len(), 2);
    let firing = &events[0];
    assert_eq!(firing.kind, EventKind::AlertFiring);
    assert_eq!(
        firing.id,
        "grafana:1:c6eadffa33fcdf37:2026-11-24T16:18:28.157076Z:firing"
    );
    assert_eq!(firing.organization, "Contoso Ltd");
    assert_eq!(firing.user.as_deref(), Some("jane@contoso.example"));
    assert_eq!(firing.alert_type, "Impossible travel");
    assert_eq!(firing.severity.as_deref(), Some("high"));
    assert_eq!(firing.title, "Impossible travel: jane@contoso.example");
    assert!(firing.description.starts_with("Successful sign-ins"));
    assert_eq!(
        firing.url.as_deref(),
        Some("https://grafana.example/alerting/grafana/b8f2c1e0/view?orgId=1")
    );
    let resolved = &events[1];
    assert_eq!(resolved.kind, EventKind::AlertResolved);
    assert_eq!(
        resolved.occurred_at.as_deref(),
        Some("2026-11-24T16:10:00Z")
    );
    assert_eq!(
        resolved.description,
        "38 failed sign-ins for sam@contoso.example in 10 minutes"
    );
}

#[test]
fn grafana_label_names_and_rejections() {
    let names = AlertmanagerLabelNames {
        organization: "grafana_folder".into(),
        ..Default::default()
    };
    let events = parse_message::<Grafana>(GRAFANA.as_bytes(), &names, 100).unwrap();
    assert_eq!(events[0].organization, "Security");
    // More alerts than the batch limit, a wrong orgId, an alert without a fingerprint.
    let cases: Vec<(serde_json::Value, usize, &str)> = vec![
        (json!({"alerts": [{}, {}]}), 1, "/alerts"),
        (json!({"orgId": "one", "alerts": []}), 100, "/orgId"),
        (json!({"version": "1"}), 100, "/alerts"),
        (
            json!({"alerts": [{"status": "firing", "labels": {}, "startsAt": "2026-11-24T15:40:00Z"}]}),
            100,
            "/alerts/0/fingerprint",
        ),
        (
            json!({"alerts": [{"status": "pending", "labels": {}, "fingerprint": "f", "startsAt": "2026-11-24T15:40:00Z"}]}),
            100,
            "/alerts/0/status",
        ),
    ];
    for (body, max, pointer) in cases {
        let errors = invalid(parse_message::<Grafana>(
            body.to_string().as_bytes(),
            &names,
            max,
        ));
        assert!(
            errors.iter().any(|e| e.pointer == pointer),
            "{pointer}: {errors:?}"
        );
    }
}

#[test]
fn a_saas_webhook_fixture_is_mapped_by_its_expressions() {
    let sources = compiled();
    let events = parse_webhook(
        sources.named("edr").unwrap(),
        &BTreeMap::new(),
        SAAS.as_bytes(),
        100,
    )
    .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.id, "webhook:edr:inc_01JD4W7Q2M8X9K3V5T6Y");
    assert_eq!(e.organization, "Contoso Ltd");
    assert_eq!(e.alert_type, "EDR incident");
    assert_eq!(e.user.as_deref(), Some("bob@contoso.example"));
    assert_eq!(e.severity.as_deref(), Some("critical"));
    assert_eq!(e.title, "CRITICAL - Incident on WKS-0042 (Contoso Ltd)");
    assert!(
        e.description.ends_with("/incident_reports/1187254"),
        "{}",
        e.description
    );
    assert_eq!(e.status.as_deref(), Some("sent"));
}

#[test]
fn webhook_mapping_failures_name_the_field_and_the_expression() {
    let sources = compiled();
    let edr = sources.named("edr").unwrap();
    let saas = sources.named("saas").unwrap();
    let headers = BTreeMap::from([("svix-id".to_string(), "msg_1".to_string())]);
    let cases: Vec<(&CompiledSource, serde_json::Value, &str, &str)> = vec![
        (
            edr,
            json!({"type": "x", "organization": {"name": "C"}}),
            "",
            "id = \"payload.id\": evaluation failed",
        ),
        (
            saas,
            json!({"type": "x"}),
            "",
            "organization = \"payload.organization.name\"",
        ),
        (
            saas,
            json!({"type": "x", "organization": {"name": "  "}}),
            "",
            "gave no value",
        ),
        (
            saas,
            json!({"type": ["a"], "organization": {"name": "C"}}),
            "",
            "gave a list",
        ),
        (
            saas,
            json!([{"type": "x", "organization": {"name": "C"}}, {"type": "x"}]),
            "/1",
            "organization",
        ),
        (saas, json!("text"), "", "must be a JSON object"),
    ];
    for (source, body, pointer, detail) in cases {
        let errors = invalid(parse_webhook(
            source,
            &headers,
            body.to_string().as_bytes(),
            100,
        ));
        assert_eq!(errors[0].pointer, pointer, "{body}: {errors:?}");
        assert!(
            errors[0].detail.contains(detail),
            "{body}: {}",
            errors[0].detail
        );
    }
    // Ids: the svix-id of a single payload; numbers as text; a batch item's hash.
    let one = json!({"type": 42, "organization": {"name": "Contoso Ltd"}});
    let events = parse_webhook(saas, &headers, one.to_string().as_bytes(), 100).unwrap();
    assert_eq!(events[0].id, "webhook:saas:msg_1");
    assert_eq!(events[0].alert_type, "42");
    let batch = json!([one, one]);
    let events = parse_webhook(saas, &headers, batch.to_string().as_bytes(), 100).unwrap();
    assert!(events[0].id.starts_with("webhook:saas:") && events[0].id != "webhook:saas:msg_1");
    assert_eq!(
        events[0].id, events[1].id,
        "the same payload is the same event"
    );
    let too_many = json!(vec![one; 3]);
    let errors = invalid(parse_webhook(
        saas,
        &headers,
        too_many.to_string().as_bytes(),
        2,
    ));
    assert!(errors[0].detail.contains("at most 2"));
}

fn ce_headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn cloudevents_in_structured_binary_and_batch_mode() {
    let sources = compiled();
    let (events, used) = parse_cloudevents(
        &sources,
        "application/cloudevents+json",
        &BTreeMap::new(),
        CLOUDEVENT.as_bytes(),
        100,
    )
    .unwrap();
    assert_eq!(used[0].name, "siem");
    let e = &events[0];
    assert_eq!(
        e.id,
        "ce:siem:https://siem.example/tenants/7f3c:3f9a6c1e-8d2b-4f57-a1c0-7e5b9d04c2aa"
    );
    assert_eq!(e.organization, "Contoso Ltd");
    assert_eq!(e.alert_type, "Impossible travel");
    assert_eq!(e.user.as_deref(), Some("jane@contoso.example"));
    assert_eq!(e.severity.as_deref(), Some("high"));
    assert_eq!(e.title, "finding/3f9a6c1e: Impossible travel");
    assert_eq!(e.occurred_at.as_deref(), Some("2026-11-24T16:20:00Z"));
    assert_eq!(e.labels["ce_type"], "com.example.siem.finding.created");

    // Binary mode: the same event, attributes in headers (percent-encoded), data as the body.
    let structured: serde_json::Value = serde_json::from_str(CLOUDEVENT).unwrap();
    let headers = ce_headers(&[
        ("ce-specversion", "1.0"),
        ("ce-type", "com.example.siem.finding.created"),
        ("ce-source", "https://siem.example/tenants/7f3c"),
        ("ce-subject", "finding%2F3f9a6c1e"),
        ("ce-id", "3f9a6c1e-8d2b-4f57-a1c0-7e5b9d04c2aa"),
        ("ce-time", "2026-11-24T16:20:00Z"),
    ]);
    let (binary, _) = parse_cloudevents(
        &sources,
        "application/json",
        &headers,
        structured["data"].to_string().as_bytes(),
        100,
    )
    .unwrap();
    assert_eq!(binary[0].id, e.id);
    assert_eq!(binary[0].title, e.title);

    // Batch mode.
    let batch = json!([structured, structured]);
    let (events, _) = parse_cloudevents(
        &sources,
        "application/cloudevents-batch+json",
        &BTreeMap::new(),
        batch.to_string().as_bytes(),
        100,
    )
    .unwrap();
    assert_eq!(events.len(), 2);
}

#[test]
fn cloudevents_rejections_name_the_attribute() {
    let sources = compiled();
    let structured: serde_json::Value = serde_json::from_str(CLOUDEVENT).unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut e = structured.clone();
        if value.is_null() {
            e.as_object_mut().unwrap().remove(key);
        } else {
            e[key] = value;
        }
        e
    };
    let cases: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        (
            "application/cloudevents+json",
            with("id", json!(null)),
            "/id",
            "is required",
        ),
        (
            "application/cloudevents+json",
            with("specversion", json!("0.3")),
            "/specversion",
            "not 1.0",
        ),
        (
            "application/cloudevents+json",
            with("type", json!("org.other.event")),
            "/type",
            "no spec.sources entry",
        ),
        (
            "application/cloudevents+json",
            with("time", json!("yesterday")),
            "/time",
            "RFC 3339",
        ),
        (
            "application/cloudevents+json",
            with("data_base64", json!("AAAA")),
            "/data_base64",
            "JSON data",
        ),
        (
            "application/cloudevents+json",
            with("data", json!({"rule": "x"})),
            "",
            "organization",
        ),
        (
            "application/cloudevents-batch+json",
            json!([structured, 7]),
            "/1",
            "CloudEvent object",
        ),
        (
            "application/json",
            json!({"rule": "x"}),
            "",
            "ce-specversion",
        ),
    ];
    for (content_type, body, pointer, detail) in cases {
        let errors = match parse_cloudevents(
            &sources,
            content_type,
            &BTreeMap::new(),
            body.to_string().as_bytes(),
            100,
        ) {
            Err(ParseError::Invalid(e)) => e,
            other => panic!("{pointer}: {:?}", other.map(|(e, _)| e)),
        };
        assert_eq!(errors[0].pointer, pointer, "{errors:?}");
        assert!(
            errors[0].detail.contains(detail),
            "{pointer}: {}",
            errors[0].detail
        );
    }
}

fn header_map_of(pairs: &[(&str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// The request side: a signed source's payload is mapped only with a good signature; the
/// rejection is a 401 problem naming the header.
#[test]
fn signed_requests_are_verified_before_mapping() {
    let sources = compiled();
    let limits = IntakeLimits::default();
    let edr = MappedRoute::Webhook("edr".into());
    let good = header_map_of(&[(
        "x-edr-signature",
        format!("sha256={}", hmac_hex(HMAC_SECRET, SAAS.as_bytes())),
    )]);
    assert_eq!(
        map_request(&edr, &sources, &good, SAAS.as_bytes(), &limits)
            .unwrap()
            .len(),
        1
    );
    let forged = header_map_of(&[("x-edr-signature", hmac_hex("guessed", SAAS.as_bytes()))]);
    let rejection = map_request(&edr, &sources, &forged, SAAS.as_bytes(), &limits).unwrap_err();
    assert_eq!(rejection.status().as_u16(), 401);
    let problem = serde_json::to_value(rejection.problem()).unwrap();
    assert_eq!(
        problem["type"],
        "https://psa-operator.io/problems/bad-signature"
    );
    assert_eq!(problem["errors"][0]["header"], "x-edr-signature");

    let body =
        json!({"type": "user.compromised", "organization": {"name": "Contoso Ltd"}}).to_string();
    let now = chrono::Utc::now().timestamp();
    let svix = |ts: i64, signed_ts: i64| {
        header_map_of(&[
            ("svix-id", "msg_2Ld5".to_string()),
            ("svix-timestamp", ts.to_string()),
            (
                "svix-signature",
                svix_sign(SVIX_SECRET, "msg_2Ld5", signed_ts, body.as_bytes()),
            ),
        ])
    };
    let saas = MappedRoute::Webhook("saas".into());
    let events = map_request(&saas, &sources, &svix(now, now), body.as_bytes(), &limits).unwrap();
    assert_eq!(events[0].id, "webhook:saas:msg_2Ld5");
    for (name, headers) in [
        ("expired", svix(now - 600, now - 600)),
        ("replayed", svix(now, now - 600)),
    ] {
        let r = map_request(&saas, &sources, &headers, body.as_bytes(), &limits).unwrap_err();
        assert!(matches!(r, Rejection::BadSignature { .. }), "{name}: {r:?}");
    }
    let unknown = map_request(
        &MappedRoute::Webhook("nope".into()),
        &sources,
        &good,
        b"{}",
        &limits,
    )
    .unwrap_err();
    assert_eq!(unknown.status().as_u16(), 404);
}
