//! `Table` responses (`kubectl get`): printer columns, a JSONPath subset and human ages.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::resources::{PrinterColumn, ResourceDef};

/// One step of a printer-column JSONPath.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    /// `[?(@.a.b=="v")]`: array items whose field path equals the literal.
    Filter(Vec<String>, Value),
}

/// Parses the subset CRDs use: `.a.b`, `.a[0]`, `.a[?(@.type=="Ready")].status`.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Field(r[..end].to_string()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("[?(") {
            let end = r.find(")]")?;
            let expr = &r[..end];
            rest = &r[end + 2..];
            let (lhs, rhs) = expr.split_once("==")?;
            let fields = lhs
                .trim()
                .strip_prefix("@.")?
                .split('.')
                .map(String::from)
                .collect();
            let rhs = rhs.trim();
            let lit = if let Some(s) = rhs
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| rhs.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            {
                Value::String(s.to_string())
            } else {
                serde_json::from_str(rhs).ok()?
            };
            steps.push(Step::Filter(fields, lit));
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim_matches(['\'', '"']);
            match inner.parse::<usize>() {
                Ok(i) => steps.push(Step::Index(i)),
                Err(_) => steps.push(Step::Field(inner.to_string())),
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Every value a JSONPath selects in `obj`.
pub fn select(obj: &Value, path: &str) -> Vec<Value> {
    let Some(steps) = parse_path(path) else {
        return vec![];
    };
    let mut cur = vec![obj.clone()];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match &step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f) {
                        next.push(x.clone());
                    }
                }
                Step::Index(i) => {
                    if let Some(x) = v.get(*i) {
                        next.push(x.clone());
                    }
                }
                Step::Filter(fields, lit) => {
                    for item in v.as_array().into_iter().flatten() {
                        let mut probe = Some(item);
                        for f in fields {
                            probe = probe.and_then(|p| p.get(f));
                        }
                        if probe == Some(lit) {
                            next.push(item.clone());
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur.retain(|v| !v.is_null());
    cur
}

/// apimachinery's `HumanDuration`: `45s`, `5m30s`, `3h12m`, `2d4h`, `3y10d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age_of(ts: &str, now: DateTime<Utc>) -> Option<String> {
    let t = DateTime::parse_from_rfc3339(ts).ok()?;
    Some(human_duration((now - t.with_timezone(&Utc)).num_seconds()))
}

fn column(name: &str, type_: &str, path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: path.into(),
    }
}

/// Marks a column whose cell is the number of keys under the path (Secret and ConfigMap DATA).
const COUNT_PREFIX: &str = "#count";

/// The columns after NAME: the CRD's printer columns, or those kubectl shows for built-ins.
fn columns_for(d: &ResourceDef) -> Vec<PrinterColumn> {
    if d.custom {
        let mut cols = d.printer_columns.clone();
        if cols.is_empty() {
            cols.push(column("Age", "date", ".metadata.creationTimestamp"));
        }
        return cols;
    }
    let age = column("Age", "date", ".metadata.creationTimestamp");
    match d.kind.as_str() {
        "Secret" => vec![
            column("Type", "string", ".type"),
            column("Data", "integer", &format!("{COUNT_PREFIX}.data")),
            age,
        ],
        "ConfigMap" => vec![
            column("Data", "integer", &format!("{COUNT_PREFIX}.data")),
            age,
        ],
        "Namespace" => vec![column("Status", "string", ".status.phase"), age],
        "Lease" => vec![column("Holder", "string", ".spec.holderIdentity"), age],
        "Event" => vec![
            column("Type", "string", ".type"),
            column("Reason", "string", ".reason"),
            column("Object", "string", ".involvedObject.name"),
            column("Message", "string", ".message"),
            age,
        ],
        "CustomResourceDefinition" => vec![column(
            "Created At",
            "string",
            ".metadata.creationTimestamp",
        )],
        _ => vec![age],
    }
}

fn cell(col: &PrinterColumn, obj: &Value, now: DateTime<Utc>) -> Value {
    if let Some(path) = col.json_path.strip_prefix(COUNT_PREFIX) {
        let n = select(obj, path)
            .first()
            .and_then(Value::as_object)
            .map_or(0, |m| m.len());
        return json!(n);
    }
    let found = select(obj, &col.json_path);
    let Some(first) = found.first() else {
        return Value::Null;
    };
    if col.type_ == "date" {
        if let Some(age) = first.as_str().and_then(|s| age_of(s, now)) {
            return json!(age);
        }
    }
    if found.len() == 1 {
        return first.clone();
    }
    let texts: Vec<String> = found
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    json!(texts.join(","))
}

/// `PartialObjectMetadata` of an object (Table rows, metadata-only lists).
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A `meta.k8s.io/v1` Table of the objects, NAME first.
pub fn table(d: &ResourceDef, objects: &[Value], list_rv: &str, now: DateTime<Utc>) -> Value {
    let cols = columns_for(d);
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace."
    })];
    for c in &cols {
        defs.push(json!({
            "name": c.name, "type": c.type_, "format": c.format,
            "description": c.description, "priority": c.priority,
        }));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            cells.extend(cols.iter().map(|c| cell(c, o, now)));
            json!({"cells": cells, "object": partial_metadata(o)})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": list_rv},
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcluster::resources::Registry;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"status": {"conditions": [
            {"type": "Synced", "status": "False", "reason": "Down"},
            {"type": "Ready", "status": "True", "reason": "Ok"}
        ]}, "a": [{"b": 1}]});
        assert_eq!(
            select(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(select(&o, ".a[0].b"), vec![json!(1)]);
        assert!(select(&o, ".missing.x").is_empty());
        assert_eq!(select(&o, "{.a[0].b}"), vec![json!(1)]);
    }

    #[test]
    fn human_durations_match_apimachinery() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (330, "5m30s"),
            (600, "10m"),
            (3 * 3600 + 12 * 60, "3h12m"),
            (30 * 3600, "30h"),
            (52 * 3600, "2d4h"),
            (100 * 86400, "100d"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (-5, "<invalid>"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn crd_table_has_printer_columns_and_ages() {
        let mut reg = Registry::default();
        reg.register_crd(&json!({"spec": {"group": "g.io", "names": {"plural": "ws", "kind": "W"},
            "versions": [{"name": "v1", "served": true, "additionalPrinterColumns": [
                {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}}));
        let d = reg.get("g.io", "v1", "ws").unwrap();
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:05:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let objs = vec![
            json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"metadata": {"name": "b", "creationTimestamp": "2026-01-01T00:00:00Z"}}),
        ];
        let t = table(d, &objs, "7", now);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["Name", "Ready", "Age"]);
        assert_eq!(t["rows"][0]["cells"], json!(["a", "True", "5m30s"]));
        assert_eq!(t["rows"][1]["cells"], json!(["b", null, "5m30s"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn secret_table_counts_data_keys() {
        let reg = Registry::default();
        let d = reg.get("", "v1", "secrets").unwrap();
        let t = table(
            d,
            &[json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}})],
            "1",
            Utc::now(),
        );
        assert_eq!(t["rows"][0]["cells"][1], "Opaque");
        assert_eq!(t["rows"][0]["cells"][2], 2);
    }
}
