//! A checker for the structural OpenAPI v3 subset CRDs use, applied to sample objects the way the
//! API server prunes and validates them: unknown fields, types, required, enum, lengths, bounds,
//! patterns. CEL rules are evaluated separately (kube's CEL validator).

use serde_json::Value;

/// Every violation of `schema` by `value`, each prefixed with its JSON path.
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, "", &mut out);
    out
}

fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true
        || schema["x-kubernetes-int-or-string"] == true
    {
        return;
    }
    if value.is_null() {
        if schema["nullable"] != true && schema.get("type").is_some() {
            out.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    if let Some(t) = schema["type"].as_str() {
        if !type_matches(t, value) {
            out.push(format!("{path}: expected {t}, found {value}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    match value {
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            for (k, v) in map {
                let sub = format!("{path}.{k}");
                match (
                    props.and_then(|p| p.get(k)),
                    &schema["additionalProperties"],
                ) {
                    (Some(s), _) => check(s, v, &sub, out),
                    (None, Value::Object(_)) => {
                        check(&schema["additionalProperties"], v, &sub, out)
                    }
                    (None, Value::Bool(true)) => {}
                    (None, _) if props.is_some() => out.push(format!("{sub}: unknown field")),
                    (None, _) => {}
                }
            }
            for req in schema["required"].as_array().into_iter().flatten() {
                let key = req.as_str().unwrap_or_default();
                if !map.contains_key(key) {
                    out.push(format!("{path}: missing required field {key}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema["minItems"].as_u64() {
                if (items.len() as u64) < min {
                    out.push(format!("{path}: fewer than {min} items"));
                }
            }
            for (i, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if schema["minLength"].as_u64().is_some_and(|m| len < m) {
                out.push(format!("{path}: shorter than minLength"));
            }
            if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
                out.push(format!("{path}: longer than maxLength"));
            }
            if let Some(p) = schema["pattern"].as_str() {
                let re = regex::Regex::new(p).expect("schema pattern compiles");
                if !re.is_match(s) {
                    out.push(format!("{path}: {s:?} does not match {p}"));
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if schema["minimum"].as_f64().is_some_and(|m| x < m) {
                out.push(format!("{path}: below minimum"));
            }
            if schema["maximum"].as_f64().is_some_and(|m| x > m) {
                out.push(format!("{path}: above maximum"));
            }
        }
        _ => {}
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

#[test]
fn the_checker_reports_what_the_api_server_rejects() {
    let schema = serde_json::json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"},
            "n": {"type": "integer", "minimum": 0, "nullable": true},
            "mode": {"type": "string", "enum": ["A", "B"]},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    });
    let good = serde_json::json!({"name": "ok", "n": null, "mode": "A", "labels": {"x": "y"}});
    assert!(violations(&schema, &good).is_empty());
    let bad = serde_json::json!({"nme": "typo", "n": -1, "mode": "C", "labels": {"x": 1}});
    let v = violations(&schema, &bad);
    assert_eq!(v.len(), 5, "{v:#?}");
    assert!(v.iter().any(|m| m.contains(".nme: unknown field")));
    assert!(v.iter().any(|m| m.contains("missing required field name")));
    let bad_pattern = serde_json::json!({"name": "Upper"});
    assert_eq!(violations(&schema, &bad_pattern).len(), 1);
}
