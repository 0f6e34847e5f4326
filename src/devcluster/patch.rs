//! Patch types: JSON merge (RFC 7386), JSON patch (RFC 6902, with the apiserver's lenient `test`
//! of null), strategic merge treated as merge, and server-side apply with per-manager field sets.

use serde_json::{json, Map, Value};

use super::error::ApiError;

/// The patch types the server accepts, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    StrategicMerge,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

fn pointer_exists(doc: &Value, path: &str) -> bool {
    doc.pointer(path).is_some_and(|v| !v.is_null())
}

/// RFC 6902 JSON patch. A `test` for `null` passes when the member is missing, as in the
/// apiserver (kube-runtime's finalizer helper depends on it).
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, ApiError> {
    let list = ops
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("json patch must be an array".into()))?;
    let mut doc = target.clone();
    for (i, op) in list.iter().enumerate() {
        if op["op"] == "test" && op.get("value").is_some_and(Value::is_null) {
            let path = op["path"].as_str().unwrap_or("");
            if pointer_exists(&doc, path) {
                return Err(test_failed(i, path));
            }
            continue;
        }
        let one: json_patch::Patch = serde_json::from_value(json!([op]))
            .map_err(|e| ApiError::BadRequest(format!("invalid json patch operation {i}: {e}")))?;
        json_patch::patch(&mut doc, &one).map_err(|e| {
            if op["op"] == "test" {
                test_failed(i, op["path"].as_str().unwrap_or(""))
            } else {
                ApiError::Invalid {
                    message: format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ),
                    group: String::new(),
                    kind: String::new(),
                    name: String::new(),
                    causes: vec![],
                }
            }
        })?;
    }
    Ok(doc)
}

fn test_failed(i: usize, path: &str) -> ApiError {
    ApiError::Invalid {
        message: format!("the server rejected our request due to an error in our request: testing value {path} failed (operation {i})"),
        group: String::new(),
        kind: String::new(),
        name: String::new(),
        causes: vec![],
    }
}

/// Strategic merge patch applied as a merge patch: lists replace, directives are honoured where
/// they remove things (`$patch: delete`, `$deleteFromPrimitiveList/…`) and ignored otherwise.
pub fn strategic_as_merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(gone)) =
                (t.get_mut(field).and_then(Value::as_array_mut), v.as_array())
            {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
        } else if v.is_object() {
            let slot = t.entry(k.clone()).or_insert(Value::Null);
            strategic_as_merge(slot, v);
            if slot.is_null() {
                t.remove(k);
            }
        } else {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// The `fieldsV1` set of an applied configuration: every object key as `f:key`, leaves as `{}`.
/// `apiVersion`, `kind` and `metadata` (except labels and annotations) are identity, not fields.
pub fn fields_v1(applied: &Value) -> Value {
    let mut out = Map::new();
    if let Some(obj) = applied.as_object() {
        for (k, v) in obj {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    let mut meta = Map::new();
                    for key in ["labels", "annotations"] {
                        if let Some(m) = v.get(key).filter(|m| m.is_object()) {
                            meta.insert(format!("f:{key}"), subtree(m));
                        }
                    }
                    if !meta.is_empty() {
                        out.insert("f:metadata".into(), Value::Object(meta));
                    }
                }
                _ => {
                    out.insert(format!("f:{k}"), subtree(v));
                }
            }
        }
    }
    Value::Object(out)
}

fn subtree(v: &Value) -> Value {
    match v.as_object() {
        Some(obj) if !obj.is_empty() => Value::Object(
            obj.iter()
                .map(|(k, x)| (format!("f:{k}"), subtree(x)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// Paths in `old` that `new` no longer names (the fields a manager stopped applying).
pub fn dropped_paths(old: &Value, new: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    walk_dropped(old, new, &mut Vec::new(), &mut out);
    out
}

fn walk_dropped(old: &Value, new: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some(o) = old.as_object() else { return };
    for (k, sub) in o {
        let Some(name) = k.strip_prefix("f:") else {
            continue;
        };
        prefix.push(name.to_string());
        match new.get(k) {
            None => out.push(prefix.clone()),
            Some(n) => walk_dropped(sub, n, prefix, out),
        }
        prefix.pop();
    }
}

fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        match cur.get_mut(p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Server-side apply as a merge: fields this manager applied before and now omits are removed,
/// then the applied configuration is merged in. Returns the object and the manager's field set.
pub fn server_side_apply(
    existing: Option<&Value>,
    applied: &Value,
    previous_fields: Option<&Value>,
) -> (Value, Value) {
    let fields = fields_v1(applied);
    let mut obj = existing.cloned().unwrap_or_else(|| json!({}));
    if let Some(prev) = previous_fields {
        for path in dropped_paths(prev, &fields) {
            remove_path(&mut obj, &path);
        }
    }
    merge(&mut obj, applied);
    (obj, fields)
}

/// The `fieldsV1` a manager holds for one subresource (`""` = main resource).
pub fn manager_fields<'a>(obj: &'a Value, manager: &str, subresource: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| {
            e["manager"] == manager
                && e["operation"] == "Apply"
                && e["subresource"].as_str().unwrap_or("") == subresource
        })
        .map(|e| &e["fieldsV1"])
}

/// Records the manager's field set in `metadata.managedFields`, keeping the old entry (and its
/// time) when the set did not change, so a repeated identical apply stays a no-op.
pub fn record_manager(
    obj: &mut Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    fields: Value,
    now: &str,
) {
    let mut entries: Vec<Value> = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let same = |e: &Value| {
        e["manager"] == manager
            && e["operation"] == "Apply"
            && e["subresource"].as_str().unwrap_or("") == subresource
    };
    if let Some(e) = entries.iter_mut().find(|e| same(e)) {
        if e["fieldsV1"] == fields && e["apiVersion"] == api_version {
            return;
        }
        *e = managed_entry(manager, subresource, api_version, fields, now);
    } else {
        entries.push(managed_entry(
            manager,
            subresource,
            api_version,
            fields,
            now,
        ));
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
}

fn managed_entry(manager: &str, sub: &str, api_version: &str, fields: Value, now: &str) -> Value {
    let mut e = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if !sub.is_empty() {
        e["subresource"] = json!(sub);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("text/plain"), None);
    }

    #[test]
    fn json_patch_test_null_passes_on_missing_member() {
        let obj = json!({"metadata": {"name": "a"}});
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}
        ]);
        let out = json_patch(&obj, &ops).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["x"]));
        let again = json_patch(&out, &ops).unwrap_err();
        assert_eq!(again.code(), 422);
    }

    #[test]
    fn json_patch_test_and_remove_finalizer() {
        let obj = json!({"metadata": {"finalizers": ["a", "b"]}});
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "b"},
            {"op": "remove", "path": "/metadata/finalizers/1"}
        ]);
        assert_eq!(
            json_patch(&obj, &ops).unwrap()["metadata"]["finalizers"],
            json!(["a"])
        );
        let wrong = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "z"}]);
        assert_eq!(json_patch(&obj, &wrong).unwrap_err().code(), 422);
    }

    #[test]
    fn strategic_merge_ignores_order_directives_and_honours_deletes() {
        let mut t = json!({"data": {"a": "1", "b": "2"}, "list": [1, 2, 3], "sub": {"x": 1}});
        let p = json!({
            "$setElementOrder/list": [1],
            "data": {"a": null, "c": "3"},
            "$deleteFromPrimitiveList/list": [2],
            "sub": {"$patch": "delete"}
        });
        strategic_as_merge(&mut t, &p);
        assert_eq!(t, json!({"data": {"b": "2", "c": "3"}, "list": [1, 3]}));
    }

    #[test]
    fn apply_drops_fields_the_manager_stopped_applying() {
        let first = json!({"spec": {"a": 1, "b": 2}});
        let (obj, fields) = server_side_apply(None, &first, None);
        assert_eq!(obj, first);
        let mut with_other = obj.clone();
        with_other["spec"]["c"] = json!(3);
        let second = json!({"spec": {"a": 5}});
        let (obj2, fields2) = server_side_apply(Some(&with_other), &second, Some(&fields));
        assert_eq!(obj2, json!({"spec": {"a": 5, "c": 3}}));
        assert_eq!(fields2, json!({"f:spec": {"f:a": {}}}));
    }

    #[test]
    fn fields_v1_keeps_labels_but_not_identity() {
        let f = fields_v1(&json!({"apiVersion": "v1", "kind": "X",
            "metadata": {"name": "n", "labels": {"a": "b"}}, "spec": {"x": [1]}}));
        assert_eq!(
            f,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:x": {}}})
        );
    }

    #[test]
    fn record_manager_keeps_time_when_fields_unchanged() {
        let mut o = json!({"metadata": {}});
        record_manager(&mut o, "m", "", "v1", json!({"f:a": {}}), "T1");
        record_manager(&mut o, "m", "", "v1", json!({"f:a": {}}), "T2");
        assert_eq!(o["metadata"]["managedFields"][0]["time"], "T1");
        record_manager(&mut o, "m", "", "v1", json!({"f:b": {}}), "T3");
        assert_eq!(o["metadata"]["managedFields"][0]["time"], "T3");
        record_manager(&mut o, "m", "status", "v1", json!({"f:s": {}}), "T4");
        assert_eq!(o["metadata"]["managedFields"].as_array().unwrap().len(), 2);
        assert_eq!(manager_fields(&o, "m", "status"), Some(&json!({"f:s": {}})));
    }
}
