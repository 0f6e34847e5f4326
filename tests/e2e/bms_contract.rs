//! Contract tests: what the BMS client sends and what the BMS sandbox answers, checked against
//! Kaseya's own OpenAPI document (the subset in `tests/contracts/bms-v2-subset.json`, generated
//! by `tests/contracts/trim_bms_openapi.py` from the full document).
//!
//! The sandbox logs every exchange (`GET /_sandbox/exchanges`); [`assert_contract`] runs at the
//! end of each BMS test and checks, per exchange:
//! * the method and path are an operation of the document (a path the document does not have
//!   fails, whatever the sandbox answered);
//! * every query name is a parameter of that operation, and integer/boolean ones parse;
//! * the request body validates against the operation's request schema (property names, types,
//!   required properties, no properties the DTO lacks); form bodies carry only the form's fields;
//! * a 200 answer with `success: true` (or a bare DTO) validates against the 200 response schema.
//!
//! Validation uses the `jsonschema` crate (draft 7). The document is OpenAPI 3.0, so two
//! adaptations are made when the schemas are loaded: `nullable: true` becomes a `null` type, and
//! property names are compared without regard to case — the document spells them PascalCase,
//! the wire camelCase, and BMS binds any casing. Formats are not checked: BMS date-times carry
//! no offset, which `date-time` would refuse, and the document cannot say otherwise.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::{Draft, Validator};
use psa_operator::sandbox::RunningSandbox;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const SUBSET: &str = include_str!("../contracts/bms-v2-subset.json");

/// One entry of `GET /_sandbox/exchanges`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub request_body: String,
    pub status: u16,
    #[serde(default)]
    pub response_body: String,
    #[serde(default)]
    pub truncated: bool,
}

/// The operations of the subset, with their schemas made ready for validation.
pub struct Document {
    ops: Vec<Operation>,
}

struct Operation {
    method: String,
    template: Vec<String>,
    route: String,
    /// Query parameter name (lowercased) → its JSON type.
    query: HashMap<String, String>,
    body: Option<Body>,
    response: Option<Validator>,
}

enum Body {
    Json(Validator),
    /// Form fields (lowercased).
    Form(Vec<String>),
}

/// The subset, loaded once per test binary.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| Document::load(SUBSET))
}

impl Document {
    fn load(text: &str) -> Document {
        let raw: Value = serde_json::from_str(text).expect("the contract subset is JSON");
        let defs = adapt(raw["components"]["schemas"].clone());
        let mut ops = Vec::new();
        for (route, methods) in raw["paths"].as_object().expect("paths") {
            for (method, op) in methods.as_object().expect("operations") {
                ops.push(Operation::load(route, method, op, &defs));
            }
        }
        Document { ops }
    }

    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        // A literal segment beats a `{param}` one (`/tickets/search` before `/tickets/{id}`).
        self.ops
            .iter()
            .filter(|o| o.method.eq_ignore_ascii_case(method) && o.matches(&segs))
            .min_by_key(|o| o.template.iter().filter(|t| t.starts_with('{')).count())
    }

    /// Every way `e` departs from the document, as sentences.
    pub fn problems(&self, e: &Exchange) -> Vec<String> {
        let at = format!("{} {}", e.method, e.path);
        let Some(op) = self.find(&e.method, &e.path) else {
            return vec![format!(
                "{at}: no such operation in Kaseya's OpenAPI document"
            )];
        };
        let mut out = Vec::new();
        for (name, value) in query_pairs(&e.query) {
            match op.query.get(&name.to_lowercase()) {
                None => out.push(format!(
                    "{at}: query parameter {name:?} is not a parameter of {}",
                    op.route
                )),
                Some(ty) if !value_fits(ty, &value) => out.push(format!(
                    "{at}: query parameter {name}={value:?} is not a {ty}"
                )),
                Some(_) => {}
            }
        }
        match (&op.body, e.request_body.trim().is_empty()) {
            (None, false) => out.push(format!("{at}: the operation takes no body")),
            (Some(Body::Json(v)), false) => {
                match serde_json::from_str::<Value>(&e.request_body) {
                    Ok(body) => out.extend(v.iter_errors(&lower_keys(body)).map(|err| {
                        format!("{at}: request body: {err} (at {})", err.instance_path())
                    })),
                    Err(err) => out.push(format!("{at}: request body is not JSON: {err}")),
                }
            }
            (Some(Body::Form(fields)), false) => {
                for (name, _) in query_pairs(&e.request_body) {
                    if !fields.contains(&name.to_lowercase()) {
                        out.push(format!("{at}: form field {name:?} is not in the document"));
                    }
                }
            }
            (_, true) => {}
        }
        if e.status == 200 && !e.truncated {
            if let (Some(v), Ok(body)) = (
                &op.response,
                serde_json::from_str::<Value>(&e.response_body),
            ) {
                let body = lower_keys(body);
                // Refusals (`success: false`) carry a null result the success schema does not allow.
                if body.get("success") != Some(&Value::Bool(false)) {
                    out.extend(v.iter_errors(&body).map(|err| {
                        format!("{at}: response body: {err} (at {})", err.instance_path())
                    }));
                }
            }
        }
        out
    }
}

impl Operation {
    fn load(route: &str, method: &str, op: &Value, defs: &Value) -> Operation {
        let mut query = HashMap::new();
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "query" {
                let ty = p["schema"]["type"].as_str().unwrap_or("string").to_string();
                query.insert(p["name"].as_str().unwrap_or("").to_lowercase(), ty);
            }
        }
        let content = &op["requestBody"]["content"];
        let body = if let Some(s) = content.get("application/json") {
            Some(Body::Json(validator(&s["schema"], defs)))
        } else {
            content.get("multipart/form-data").map(|s| {
                Body::Form(
                    s["schema"]["properties"]
                        .as_object()
                        .map(|m| m.keys().map(|k| k.to_lowercase()).collect())
                        .unwrap_or_default(),
                )
            })
        };
        let response = op["responses"]["200"]["content"]
            .get("application/json")
            .map(|s| validator(&s["schema"], defs));
        Operation {
            method: method.to_string(),
            template: route.split('/').map(str::to_string).collect(),
            route: route.to_string(),
            query,
            body,
            response,
        }
    }

    fn matches(&self, segs: &[&str]) -> bool {
        self.template.len() == segs.len()
            && self
                .template
                .iter()
                .zip(segs)
                .all(|(t, s)| t.starts_with('{') || t.eq_ignore_ascii_case(s))
    }
}

fn validator(schema: &Value, defs: &Value) -> Validator {
    let mut root = adapt(schema.clone());
    if let Value::Object(m) = &mut root {
        m.insert("definitions".into(), defs.clone());
    } else {
        root = json!({"allOf": [root], "definitions": defs});
    }
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(false)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

/// OpenAPI 3.0 → JSON Schema draft 7: `nullable` as a null type, refs to `definitions`,
/// property names lowercased (see the module comment).
fn adapt(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let nullable = m.get("nullable") == Some(&Value::Bool(true));
            let mut out = Map::new();
            for (k, v) in m {
                match k.as_str() {
                    "nullable" => {}
                    "$ref" => {
                        let r = v.as_str().unwrap_or_default();
                        out.insert(
                            k,
                            Value::String(r.replace("#/components/schemas/", "#/definitions/")),
                        );
                    }
                    "properties" => {
                        let props = v
                            .as_object()
                            .map(|p| {
                                p.iter()
                                    .map(|(n, s)| (n.to_lowercase(), adapt(s.clone())))
                                    .collect::<Map<_, _>>()
                            })
                            .unwrap_or_default();
                        out.insert(k, Value::Object(props));
                    }
                    "required" => {
                        let req = v
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(|n| Value::String(n.to_lowercase()))
                                    .collect()
                            })
                            .unwrap_or_default();
                        out.insert(k, Value::Array(req));
                    }
                    // Property names inside `definitions` stay as they are (they are schema names).
                    _ => {
                        out.insert(k, adapt(v));
                    }
                }
            }
            if nullable {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([t, "null"]));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(adapt).collect()),
        other => other,
    }
}

fn lower_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_lowercase(), lower_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(lower_keys).collect()),
        other => other,
    }
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| s.to_string())
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn value_fits(ty: &str, value: &str) -> bool {
    match ty {
        "integer" => value.trim().parse::<i64>().is_ok(),
        "number" => value.trim().parse::<f64>().is_ok(),
        "boolean" => matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false"),
        _ => true,
    }
}

/// The sandbox's exchange log.
pub async fn exchanges(sb: &RunningSandbox) -> Vec<Exchange> {
    reqwest::get(format!("{}/_sandbox/exchanges", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Fails when any exchange the sandbox logged departs from Kaseya's document. Returns how many
/// exchanges were checked (so a test can tell it checked something).
pub async fn assert_contract(sb: &RunningSandbox) -> usize {
    let all = exchanges(sb).await;
    let doc = document();
    let problems: Vec<String> = all.iter().flat_map(|e| doc.problems(e)).collect();
    let mut unique = problems.clone();
    unique.sort();
    unique.dedup();
    assert!(
        unique.is_empty(),
        "{} of {} exchanges depart from Kaseya's OpenAPI document:\n{}",
        problems.len(),
        all.len(),
        unique.join("\n")
    );
    all.len()
}

// ---- the checker itself can fail -------------------------------------------------------------

fn exchange(method: &str, path: &str, query: &str, body: &str) -> Exchange {
    Exchange {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        request_body: body.into(),
        status: 200,
        response_body: String::new(),
        truncated: false,
    }
}

#[test]
fn a_path_the_document_lacks_fails() {
    let doc = document();
    let p = doc.problems(&exchange(
        "GET",
        "/v2/servicedesk/tickets/7/history",
        "",
        "",
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("no such operation"), "{p:?}");
    // Known path, method the document does not list for it.
    let p = doc.problems(&exchange("DELETE", "/v2/system/queues/lookup", "", ""));
    assert!(p[0].contains("no such operation"), "{p:?}");
    assert!(doc
        .problems(&exchange("GET", "/v2/servicedesk/tickets/7", "", ""))
        .is_empty());
}

#[test]
fn unknown_query_names_and_wrong_types_fail() {
    let doc = document();
    let p = doc.problems(&exchange(
        "GET",
        "/v2/servicedesk/tickets",
        "Filter.Details=abc&Filter.Reference=x&PageSize=ten",
        "",
    ));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter().any(|m| m.contains("\"Filter.Reference\"")),
        "{p:?}"
    );
    assert!(p.iter().any(|m| m.contains("PageSize=\"ten\"")), "{p:?}");
}

#[test]
fn bodies_are_checked_for_names_types_and_required_properties() {
    let doc = document();
    // Missing required AccountId etc., a property TicketInputDto does not have, a string id.
    let p = doc.problems(&exchange(
        "POST",
        "/v2/servicedesk/tickets",
        "",
        r#"{"Title":"t","Details":"d","Reference":"x","LocationId":"5"}"#,
    ));
    let all = p.join("\n");
    assert!(all.contains("accountid"), "{all}");
    assert!(all.contains("reference"), "{all}");
    assert!(all.contains("locationid"), "{all}");
    // The same ticket, complete and in the wire's camelCase, passes.
    let ok = doc.problems(&exchange(
        "POST",
        "/v2/servicedesk/tickets",
        "",
        r#"{"title":"t","details":"d","accountId":1,"locationId":2,"openDate":"2026-01-01T00:00:00",
            "priorityId":3,"sourceId":4,"statusId":5,"typeId":6,"queueId":null}"#,
    ));
    assert!(ok.is_empty(), "{ok:?}");
}

#[test]
fn answers_are_checked_against_the_response_schema() {
    let doc = document();
    let mut e = exchange("GET", "/v2/system/queues/lookup", "", "");
    e.response_body = r#"{"success":true,"result":[{"id":1,"name":"Q","color":"red"}]}"#.into();
    let p = doc.problems(&e);
    assert!(p.iter().any(|m| m.contains("color")), "{p:?}");
    e.response_body = r#"{"success":true,"result":[{"id":"1","name":"Q"}]}"#.into();
    assert!(!doc.problems(&e).is_empty());
    e.response_body = r#"{"success":true,"result":[{"id":1,"name":"Q","isActive":true}]}"#.into();
    assert!(doc.problems(&e).is_empty(), "{:?}", doc.problems(&e));
}
