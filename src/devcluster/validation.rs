//! Custom-resource validation against the CRD's OpenAPI schema: pruning of unknown fields,
//! defaults, structural checks and CEL rules (`x-kubernetes-validations`), reported as causes.

use serde_json::{Map, Value};

use super::error::Cause;

/// Fields every object has whatever its schema says.
const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn preserves_unknown(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes fields the schema does not know (returning their paths) and nulls in fields that are
/// not nullable, as the apiserver prunes them.
pub fn prune(schema: &Value, value: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    prune_at(schema, value, "", true, &mut unknown);
    unknown
}

fn prune_at(schema: &Value, value: &mut Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keep_unknown = preserves_unknown(schema) || additional.is_some();
            let keys: Vec<String> = obj.keys().cloned().collect();
            for k in keys {
                if root && ROOT_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let child_schema = props.and_then(|p| p.get(&k)).or(additional);
                match child_schema {
                    Some(cs) => {
                        let child_path = join(path, &k);
                        let is_null = obj.get(&k).is_some_and(Value::is_null);
                        if is_null && cs["nullable"].as_bool() != Some(true) {
                            obj.remove(&k);
                            continue;
                        }
                        if let Some(child) = obj.get_mut(&k) {
                            prune_at(cs, child, &child_path, false, unknown);
                        }
                    }
                    None if keep_unknown => {}
                    None => {
                        obj.remove(&k);
                        unknown.push(join(path, &k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item_schema, item, &format!("{path}[{i}]"), false, unknown);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// How the apiserver prints an invalid value: strings quoted, numbers bare, the rest by type.
fn shown(v: &Value) -> String {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => v.to_string(),
        other => format!("\"{}\"", type_name(other)),
    }
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}

fn type_ok(want: &str, v: &Value, int_or_string: bool) -> bool {
    if int_or_string {
        return v.is_string() || v.as_f64().is_some_and(|f| f.fract() == 0.0);
    }
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Structural checks: type, required, enum, pattern, bounds, lengths, item counts.
pub fn check_structure(schema: &Value, value: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    check_at(schema, value, "", &mut causes);
    causes
}

fn check_at(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() && schema["nullable"].as_bool() == Some(true) {
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    if let Some(want) = schema["type"].as_str() {
        if !type_ok(want, value, int_or_string) {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{}\": {path} in body must be of type {want}: \"{}\"",
                    type_name(value),
                    type_name(value)
                ),
            ));
            return;
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            causes.push(Cause::new(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    value,
                    list.join(", ")
                ),
            ));
        }
    }
    match value {
        Value::String(s) => check_string(schema, s, value, path, causes),
        Value::Number(_) => check_number(schema, value, path, causes),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema["minItems"].as_u64().filter(|m| n < *m) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    path,
                    format!("Invalid value: {n}: {path} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = schema["maxItems"].as_u64().filter(|m| n > *m) {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_at(item_schema, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(obj) => check_object(schema, obj, path, causes),
        _ => {}
    }
}

fn check_string(schema: &Value, s: &str, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema["minLength"].as_u64().filter(|m| len < *m) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body should be at least {min} chars long",
                shown(value)
            ),
        ));
    }
    if let Some(max) = schema["maxLength"].as_u64().filter(|m| len > *m) {
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        let matched = regex::Regex::new(pattern).map(|re| re.is_match(s));
        if matched != Ok(true) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body should match '{pattern}'",
                    shown(value)
                ),
            ));
        }
    }
}

fn check_number(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(x) = value.as_f64() else { return };
    let exclusive = |key: &str| schema[key].as_bool() == Some(true);
    let (exclusive_min, exclusive_max) =
        (exclusive("exclusiveMinimum"), exclusive("exclusiveMaximum"));
    let mut out_of_bound = |bound: &str, rel: &str| {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body should be {rel} {}",
                shown(value),
                num(&schema[bound])
            ),
        ))
    };
    if let Some(min) = schema["minimum"].as_f64() {
        if x < min || (exclusive_min && x == min) {
            let rel = if exclusive_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out_of_bound("minimum", rel);
        }
    }
    if let Some(max) = schema["maximum"].as_f64() {
        if x > max || (exclusive_max && x == max) {
            let rel = if exclusive_max {
                "less than"
            } else {
                "less than or equal to"
            };
            out_of_bound("maximum", rel);
        }
    }
}

fn check_object(schema: &Value, obj: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    for req in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = req.as_str() {
            if obj.get(name).is_none_or(Value::is_null) {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    join(path, name),
                    "Required value",
                ));
            }
        }
    }
    let props = schema["properties"].as_object();
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in obj {
        if path.is_empty() && ROOT_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if let Some(cs) = props.and_then(|p| p.get(k)).or(additional) {
            check_at(cs, v, &join(path, k), causes);
        }
    }
}

/// Drops null members so CEL `has()` sees an unset optional field as absent.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn value_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(name)?;
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// The schema's CEL rules compiled once per thread and schema: compiling them for every write
/// was most of the cost of a status write to a custom resource (a wave of 10,000 mappings
/// writes 10,000 statuses).
fn compiled_schema(schema: &Value) -> std::rc::Rc<kube::core::cel::CompiledSchema> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    /// Few schemas exist (one per served CRD version); more means CRDs were replaced often.
    const KEEP_AT_MOST: usize = 64;
    thread_local! {
        static COMPILED: RefCell<HashMap<String, std::rc::Rc<kube::core::cel::CompiledSchema>>> =
            RefCell::new(HashMap::new());
    }
    let text = schema.to_string();
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(c) = cache.get(&text) {
            return c.clone();
        }
        if cache.len() >= KEEP_AT_MOST {
            cache.clear();
        }
        let compiled = std::rc::Rc::new(kube::core::cel::compile_schema(schema));
        cache.insert(text, compiled.clone());
        compiled
    })
}

/// CEL rules (`x-kubernetes-validations`), through kube's validator.
pub fn check_cel(schema: &Value, value: &Value, old: Option<&Value>) -> Vec<Cause> {
    let obj = without_nulls(value);
    let old = old.map(without_nulls);
    let compiled = compiled_schema(schema);
    match kube::core::cel::validate_compiled(&compiled, &obj, old.as_ref()) {
        Ok(()) => vec![],
        Err(errors) => errors
            .iter()
            .map(|e| {
                let field = e.field_path.trim_start_matches('.').to_string();
                let at = value_at(&obj, &field).map_or("\"object\"".to_string(), shown);
                Cause::new(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {at}: {}", e.message),
                )
            })
            .collect(),
    }
}

/// The whole admission of a custom resource: prune, default, check. Returns the object as it
/// will be stored, the pruned unknown fields, and the causes (empty = valid).
pub fn admit(
    schema: &Value,
    value: Value,
    old: Option<&Value>,
) -> (Value, Vec<String>, Vec<Cause>) {
    let mut value = value;
    let unknown = prune(schema, &mut value);
    let value = kube::core::cel::apply_defaults(schema, &value);
    let mut causes = check_structure(schema, &value);
    if causes.is_empty() {
        causes = check_cel(schema, &value, old);
    }
    (value, unknown, causes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["q"], "properties": {
                "q": {"type": "integer", "minimum": 1.0},
                "grouping": {"type": "string", "enum": ["User", "UserAndAlert"], "nullable": true},
                "wait": {"type": "string", "pattern": "^[0-9]+s$"},
                "mode": {"type": "string", "default": "fast"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "provider": {"type": "object", "properties": {
                    "a": {"type": "object", "nullable": true, "properties": {"url": {"type": "string"}}},
                    "b": {"type": "object", "nullable": true}
                }, "x-kubernetes-validations": [{
                    "rule": "(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) == 1",
                    "message": "exactly one provider must be set"}]}
            }},
            "status": {"type": "object", "properties": {"n": {"type": "integer"}}}
        }})
    }

    #[test]
    fn prune_reports_unknown_fields_and_keeps_preserved_ones() {
        let mut v = json!({"apiVersion": "x", "metadata": {"name": "n"},
            "spec": {"q": 1, "foo": 1, "free": {"any": 1}, "grouping": null, "wait": null}});
        let unknown = prune(&schema(), &mut v);
        assert_eq!(unknown, vec!["spec.foo"]);
        assert_eq!(v["spec"]["free"]["any"], 1);
        assert!(v["spec"]["grouping"].is_null() && v["spec"].get("grouping").is_some());
        assert!(
            v["spec"].get("wait").is_none(),
            "non-nullable null is pruned"
        );
    }

    #[test]
    fn structural_errors_name_the_field() {
        let causes = check_structure(
            &schema(),
            &json!({"spec": {"q": "string", "grouping": "X", "wait": "5m"}}),
        );
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        assert!(rendered.contains(&"spec.q: Invalid value: \"string\": spec.q in body must be of type integer: \"string\"".to_string()), "{rendered:?}");
        assert!(rendered.contains(&"spec.grouping: Unsupported value: \"X\": supported values: \"User\", \"UserAndAlert\"".to_string()));
        assert!(rendered.contains(
            &"spec.wait: Invalid value: \"5m\": spec.wait in body should match '^[0-9]+s$'"
                .to_string()
        ));
        let missing = check_structure(&schema(), &json!({"spec": {}}));
        assert_eq!(missing[0].render(), "spec.q: Required value");
        let low = check_structure(&schema(), &json!({"spec": {"q": 0}}));
        assert_eq!(
            low[0].render(),
            "spec.q: Invalid value: 0: spec.q in body should be greater than or equal to 1"
        );
    }

    #[test]
    fn cel_rule_failure_names_the_field() {
        let two = json!({"spec": {"q": 1, "provider": {"a": {"url": "x"}, "b": {}}}});
        let causes = check_cel(&schema(), &two, None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.provider");
        assert!(causes[0]
            .render()
            .contains("Invalid value: \"object\": exactly one provider must be set"));
        let one_with_null = json!({"spec": {"q": 1, "provider": {"a": {"url": "x"}, "b": null}}});
        assert!(check_cel(&schema(), &one_with_null, None).is_empty());
    }

    #[test]
    fn admit_defaults_then_validates() {
        let (v, unknown, causes) = admit(&schema(), json!({"spec": {"q": 2, "zz": 1}}), None);
        assert_eq!(v["spec"]["mode"], "fast");
        assert_eq!(unknown, vec!["spec.zz"]);
        assert!(causes.is_empty());
    }
}
