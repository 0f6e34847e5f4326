//! OpenAPI v3 documents: enough for kubectl's field-validation check and `kubectl explain`.
//!
//! kubectl (cli-runtime) reads `/openapi/v3`, then the group/version document, and needs a path
//! whose `patch` operation carries `x-kubernetes-group-version-kind` and a `fieldValidation`
//! parameter. CRD schemas in `components.schemas` make `explain` work.

use std::hash::{Hash, Hasher};

use serde_json::{json, Map, Value};

use super::resources::{Registry, ResourceDef};

/// The key under `/openapi/v3/`: `api/v1` or `apis/g/v`.
pub fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A content digest, so clients may cache documents as immutable.
fn digest(doc: &Value) -> String {
    let text = doc.to_string();
    let mut a = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (text.len(), &text).hash(&mut b);
    format!("{:016X}{:016X}", a.finish(), b.finish())
}

/// `/openapi/v3`: one entry per group/version with a hash of its document.
pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            if let Some(doc) = gv_document(reg, &group, &v) {
                let key = gv_key(&group, &v);
                let url = format!("/openapi/v3/{key}?hash={}", digest(&doc));
                paths.insert(key, json!({"serverRelativeURL": url}));
            }
        }
    }
    json!({"paths": paths})
}

fn gvk(d: &ResourceDef) -> Value {
    json!({"group": d.group, "version": d.version, "kind": d.kind})
}

/// Schema component name as the apiserver spells it: `io.psa-operator.v1alpha1.PsaConnection`.
fn schema_name(d: &ResourceDef) -> String {
    if d.group.is_empty() {
        return format!("io.k8s.api.core.{}.{}", d.version, d.kind);
    }
    let reversed: Vec<&str> = d.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), d.version, d.kind)
}

fn item_path(d: &ResourceDef) -> String {
    if d.namespaced {
        format!(
            "{}/namespaces/{{namespace}}/{}/{{name}}",
            d.gv_path(),
            d.plural
        )
    } else {
        format!("{}/{}/{{name}}", d.gv_path(), d.plural)
    }
}

/// The schema of a custom resource as served: `metadata` made an open object, GVK tagged.
fn resource_schema(d: &ResourceDef) -> Value {
    let mut schema = d
        .schema
        .clone()
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}),
        );
        props.insert(
            "metadata".into(),
            json!({"type": "object", "description": "Standard object's metadata.", "x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    schema["x-kubernetes-group-version-kind"] = json!([gvk(d)]);
    schema
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/g/v`.
pub fn gv_document(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for d in reg.in_group_version(group, version) {
        let op = json!({
            "patch": {
                "operationId": format!("patch{}", d.kind),
                "x-kubernetes-group-version-kind": gvk(d),
                "x-kubernetes-action": "patch",
                "parameters": [
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "force", "in": "query", "schema": {"type": "boolean"}}
                ],
                "responses": {"200": {"description": "OK"}}
            }
        });
        paths.insert(item_path(d), op);
        if d.custom {
            schemas.insert(schema_name(d), resource_schema(d));
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg_with_crd() -> Registry {
        let mut r = Registry::default();
        r.register_crd(&json!({
            "spec": {"group": "psa-operator.io", "scope": "Namespaced",
                "names": {"plural": "psaconnections", "kind": "PsaConnection"},
                "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}}]}
        }));
        r
    }

    #[test]
    fn index_points_at_each_group_version_with_a_hash() {
        let idx = index(&reg_with_crd());
        let url = idx["paths"]["apis/psa-operator.io/v1alpha1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/psa-operator.io/v1alpha1?hash="));
        assert!(idx["paths"]["api/v1"].is_object());
    }

    #[test]
    fn hash_changes_with_content() {
        let a = digest(&json!({"a": 1}));
        assert_eq!(a, digest(&json!({"a": 1})));
        assert_ne!(a, digest(&json!({"a": 2})));
    }

    #[test]
    fn gv_document_has_patch_gvk_and_field_validation() {
        let r = reg_with_crd();
        let doc = gv_document(&r, "psa-operator.io", "v1alpha1").unwrap();
        let op = &doc["paths"]
            ["/apis/psa-operator.io/v1alpha1/namespaces/{namespace}/psaconnections/{name}"]
            ["patch"];
        assert_eq!(
            op["x-kubernetes-group-version-kind"]["kind"],
            "PsaConnection"
        );
        assert!(op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        let schema = &doc["components"]["schemas"]["io.psa-operator.v1alpha1.PsaConnection"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0]["version"],
            "v1alpha1"
        );
        assert!(schema["properties"]["spec"].is_object());
        let core = gv_document(&r, "", "v1").unwrap();
        assert!(core["paths"]["/api/v1/namespaces/{name}"].is_object());
    }
}
