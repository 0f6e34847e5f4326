//! JSON-Patch bodies as ConnectWise takes them: `[{op, path, value}]`, `op` one of
//! add/replace/remove, `path` usually without the leading `/`.

use serde_json::Value;

use super::wire::ApiError;

/// Applies ConnectWise-style patch operations to `doc`.
///
/// `replace` of a member that is absent (ConnectWise omits null fields) sets it, as the real
/// API does; a path ending in `/name` or `/identifier` drops the sibling `id` first, so a
/// reference can be changed by name.
pub fn apply(doc: &mut Value, body: &Value) -> Result<(), ApiError> {
    let Some(ops) = body.as_array() else {
        return Err(ApiError::bad_request(
            "a PATCH body is a JSON array of operations {op, path, value}",
        ));
    };
    let mut normalised = Vec::with_capacity(ops.len());
    for op in ops {
        let kind = op["op"].as_str().unwrap_or("").to_ascii_lowercase();
        let Some(path) = op["path"].as_str() else {
            return Err(ApiError::bad_request("every patch operation needs a path"));
        };
        let pointer = format!("/{}", path.trim_start_matches('/'));
        let last = pointer.rsplit('/').next().unwrap_or("");
        let kind = match kind.as_str() {
            "replace" if last.parse::<usize>().is_err() => "add",
            "add" | "replace" | "remove" => kind.as_str(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "patch op {other:?} is not supported (add, replace, remove)"
                )))
            }
        };
        if matches!(last.to_ascii_lowercase().as_str(), "name" | "identifier") {
            let parent = &pointer[..pointer.len() - last.len() - 1];
            if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
                m.remove("id");
            }
        }
        let mut entry = serde_json::json!({"op": kind, "path": pointer});
        if kind != "remove" {
            entry["value"] = op.get("value").cloned().unwrap_or(Value::Null);
        }
        normalised.push(entry);
    }
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(normalised))
        .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
    json_patch::patch(doc, &patch).map_err(|e| ApiError::bad_request(format!("patch failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_the_documented_forms() {
        let table = [
            (
                json!([{"op":"replace","path":"status","value":{"id":123}}]),
                json!({"status":{"id":123},"summary":"a"}),
            ),
            (
                json!([{"op":"replace","path":"status/id","value":123}]),
                json!({"status":{"id":123,"name":"New"},"summary":"a"}),
            ),
            (
                json!([{"op":"replace","path":"status/name","value":">Closed"}]),
                json!({"status":{"name":">Closed"},"summary":"a"}),
            ),
            (
                json!([{"op":"replace","path":"/summary","value":"b"}]),
                json!({"status":{"id":1,"name":"New"},"summary":"b"}),
            ),
            (
                json!([{"op":"replace","path":"source","value":{"id":2}}]),
                json!({"status":{"id":1,"name":"New"},"summary":"a","source":{"id":2}}),
            ),
            (
                json!([{"op":"remove","path":"summary"}]),
                json!({"status":{"id":1,"name":"New"}}),
            ),
        ];
        for (ops, want) in table {
            let mut doc = json!({"status":{"id":1,"name":"New"},"summary":"a"});
            apply(&mut doc, &ops).unwrap();
            assert_eq!(doc, want, "{ops}");
        }
    }

    #[test]
    fn refuses_what_connectwise_does_not_take() {
        for ops in [
            json!({"op":"replace","path":"summary","value":"x"}),
            json!([{"op":"move","from":"a","path":"summary"}]),
            json!([{"op":"replace","value":"x"}]),
            json!([{"op":"remove","path":"nope"}]),
        ] {
            let mut doc = json!({"summary":"a"});
            let e = apply(&mut doc, &ops).unwrap_err();
            assert_eq!(e.status, 400, "{ops}");
        }
    }
}
