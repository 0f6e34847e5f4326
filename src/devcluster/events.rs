//! One stored Event, two APIs: core/v1 (read by `kubectl describe`) and events.k8s.io/v1
//! (written by the kube-runtime `Recorder`). Events are stored in core/v1 shape.

use serde_json::{Map, Value};

/// (core/v1 name, events.k8s.io/v1 name) of the fields whose names differ.
const RENAMES: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(v: &Value, to_events: bool, api_version: &str) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, x) in obj {
        let name = RENAMES
            .iter()
            .find(|(core, ev)| if to_events { k == core } else { k == ev })
            .map(|(core, ev)| if to_events { *ev } else { *core })
            .unwrap_or(k.as_str());
        out.insert(name.to_string(), x.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// core/v1 → events.k8s.io/v1.
pub fn to_events_v1(core: &Value) -> Value {
    rename(core, true, "events.k8s.io/v1")
}

/// events.k8s.io/v1 → core/v1 (the stored shape).
pub fn from_events_v1(ev: &Value) -> Value {
    rename(ev, false, "v1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recorder_event_reads_as_core_event_and_back() {
        let ev = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "x.1", "namespace": "ns"},
            "action": "Reconcile", "reason": "Synced", "note": "all good", "type": "Normal",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "regarding": {"kind": "PsaConnection", "name": "main", "namespace": "ns", "uid": "u"},
            "reportingController": "psa-operator", "reportingInstance": "pod-1",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}
        });
        let core = from_events_v1(&ev);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "main");
        assert_eq!(core["message"], "all good");
        assert_eq!(core["reportingComponent"], "psa-operator");
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("note").is_none());
        assert_eq!(to_events_v1(&core), ev);
    }
}
