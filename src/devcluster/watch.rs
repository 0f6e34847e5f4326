//! Watch streams: which changes a watcher sees (namespace and selector transitions), the event
//! lines, bookmarks, and the streaming task that writes one JSON event per line.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use super::error::ApiError;
use super::resources::ResourceDef;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{view, Change, ChangeType, WatchStart};
use super::table::{partial_metadata, table};

/// Bookmarks keep clients' idle timers quiet (kube gives up after its timeout + 5 s).
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

/// What one watch request selects and how it wants objects.
#[derive(Debug, Clone)]
pub struct Watcher {
    pub def: ResourceDef,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub metadata_only: bool,
    /// `kubectl get -w` asks for Table events: one row per event.
    pub table: bool,
    pub bookmarks: bool,
}

impl Watcher {
    fn matches(&self, obj: &Value) -> bool {
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|n| obj["metadata"]["namespace"].as_str() == Some(n));
        ns_ok && self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event type this watcher sees for a change, if any: objects entering the selection
    /// are ADDED, leaving it DELETED.
    pub fn event_type(&self, change: &Change) -> Option<&'static str> {
        if change.key != self.def.storage {
            return None;
        }
        let now = self.matches(&change.object);
        let before = change.previous.as_ref().is_some_and(|p| self.matches(p));
        match change.kind {
            ChangeType::Added => now.then_some("ADDED"),
            ChangeType::Deleted => now.then_some("DELETED"),
            ChangeType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }
    }

    /// The JSON line for a change, or None when the watcher does not see it.
    pub fn line(&self, change: &Change) -> Option<String> {
        let t = self.event_type(change)?;
        let obj = view(&self.def, &change.object);
        let obj = if self.metadata_only {
            partial_metadata(&obj)
        } else if self.table {
            table(
                &self.def,
                &[obj],
                &change.rv.to_string(),
                chrono::Utc::now(),
            )
        } else {
            obj
        };
        Some(format!("{}\n", json!({"type": t, "object": obj})))
    }

    pub fn bookmark(&self, rv: u64, initial_events_end: bool) -> String {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (kind, api_version) = if self.table {
            ("Table".to_string(), "meta.k8s.io/v1".to_string())
        } else if self.metadata_only {
            (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else {
            (self.def.kind.clone(), self.def.group_version())
        };
        format!(
            "{}\n",
            json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": metadata}})
        )
    }
}

/// The single ERROR event a too-old resourceVersion gets (on a 200 stream).
pub fn error_line(err: &ApiError) -> String {
    format!("{}\n", json!({"type": "ERROR", "object": err.to_status()}))
}

type Tx = mpsc::Sender<Result<Bytes, Infallible>>;

async fn send(tx: &mut Tx, line: String) -> bool {
    tx.send(Ok(Bytes::from(line))).await.is_ok()
}

/// Streams a watch until its timeout, the client leaving, or server shutdown.
pub fn spawn_stream(
    watcher: Watcher,
    start: WatchStart,
    initial_events_end: bool,
    timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::Receiver<Result<Bytes, Infallible>> {
    let (mut tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let WatchStart {
            initial,
            from_rv,
            mut live,
        } = start;
        let mut last_rv = from_rv;
        for change in &initial {
            if let Some(line) = watcher.line(change) {
                if !send(&mut tx, line).await {
                    return;
                }
            }
        }
        if initial_events_end && !send(&mut tx, watcher.bookmark(from_rv, true)).await {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {
                    if watcher.bookmarks && !send(&mut tx, watcher.bookmark(last_rv, false)).await {
                        return;
                    }
                    if tx.is_closed() {
                        return;
                    }
                }
                got = live.recv() => match got {
                    Ok(change) => {
                        if change.rv <= last_rv {
                            continue;
                        }
                        last_rv = change.rv;
                        if let Some(line) = watcher.line(&change) {
                            if !send(&mut tx, line).await {
                                return;
                            }
                        }
                    }
                    // A lagging watcher ends; the client resumes from the last rv it saw.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    rx
}

/// A stream holding only the ERROR event, then closing.
pub fn error_stream(err: &ApiError) -> mpsc::Receiver<Result<Bytes, Infallible>> {
    let (mut tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Ok(Bytes::from(error_line(err))));
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcluster::resources::{Registry, StorageKey};

    fn watcher(sel: &str) -> Watcher {
        let reg = Registry::default();
        Watcher {
            def: reg.get("", "v1", "configmaps").unwrap().clone(),
            namespace: Some("ns".into()),
            labels: LabelSelector::parse(sel).unwrap(),
            fields: FieldSelector::default(),
            metadata_only: false,
            table: false,
            bookmarks: true,
        }
    }

    fn change(kind: ChangeType, labels: Value, prev_labels: Option<Value>) -> Change {
        let obj = |l: Value| json!({"metadata": {"name": "c", "namespace": "ns", "labels": l}});
        Change {
            rv: 5,
            key: StorageKey::new("", "configmaps"),
            kind,
            object: obj(labels),
            previous: prev_labels.map(obj),
        }
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let w = watcher("a=1");
        let cases = [
            (
                change(ChangeType::Added, json!({"a": "1"}), None),
                Some("ADDED"),
            ),
            (change(ChangeType::Added, json!({"a": "2"}), None), None),
            (
                change(
                    ChangeType::Modified,
                    json!({"a": "1"}),
                    Some(json!({"a": "1"})),
                ),
                Some("MODIFIED"),
            ),
            (
                change(
                    ChangeType::Modified,
                    json!({"a": "1"}),
                    Some(json!({"a": "2"})),
                ),
                Some("ADDED"),
            ),
            (
                change(
                    ChangeType::Modified,
                    json!({"a": "2"}),
                    Some(json!({"a": "1"})),
                ),
                Some("DELETED"),
            ),
            (
                change(
                    ChangeType::Deleted,
                    json!({"a": "1"}),
                    Some(json!({"a": "1"})),
                ),
                Some("DELETED"),
            ),
        ];
        for (c, want) in cases {
            assert_eq!(w.event_type(&c), want, "{c:?}");
        }
        let mut other_ns = change(ChangeType::Added, json!({"a": "1"}), None);
        other_ns.object["metadata"]["namespace"] = json!("x");
        assert_eq!(w.event_type(&other_ns), None);
    }

    #[test]
    fn lines_are_one_json_event_each_and_bookmarks_carry_kind() {
        let w = watcher("");
        let line = w.line(&change(ChangeType::Added, json!({}), None)).unwrap();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["object"]["kind"], "ConfigMap");
        let b: Value = serde_json::from_str(w.bookmark(9, true).trim()).unwrap();
        assert_eq!(b["type"], "BOOKMARK");
        assert_eq!(b["object"]["apiVersion"], "v1");
        assert_eq!(b["object"]["metadata"]["resourceVersion"], "9");
        assert_eq!(
            b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        let e: Value = serde_json::from_str(
            error_line(&ApiError::Gone("too old resource version: 1 (5)".into())).trim(),
        )
        .unwrap();
        assert_eq!(e["type"], "ERROR");
        assert_eq!(e["object"]["code"], 410);
        assert_eq!(e["object"]["reason"], "Expired");
    }
}
