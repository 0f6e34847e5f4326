//! Snapshot persistence (`--state-dir`): the whole store as one JSON file, written atomically.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::resources::StorageKey;
use super::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read or write snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {path} is not a devcluster snapshot: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// The snapshot file inside a state directory.
pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("devcluster-snapshot.json")
}

/// The snapshot document of a store.
pub fn encode(store: &Store) -> Value {
    let (rv, objects) = store.snapshot();
    let objects: Vec<Value> = objects
        .into_iter()
        .map(|(k, o)| json!({"group": k.group, "plural": k.plural, "object": o}))
        .collect();
    json!({"resourceVersion": rv, "objects": objects})
}

/// A store from a snapshot document.
pub fn decode(doc: &Value) -> Result<Store, String> {
    let rv = doc["resourceVersion"]
        .as_u64()
        .ok_or("resourceVersion missing")?;
    let items = doc["objects"].as_array().ok_or("objects missing")?;
    let mut objects = Vec::with_capacity(items.len());
    for item in items {
        let group = item["group"].as_str().ok_or("object without group")?;
        let plural = item["plural"].as_str().ok_or("object without plural")?;
        objects.push((StorageKey::new(group, plural), item["object"].clone()));
    }
    Ok(Store::from_snapshot(rv, objects))
}

/// Loads the store from `dir`, or a fresh one when no snapshot exists yet.
pub fn load(dir: &Path) -> Result<Store, PersistError> {
    let path = snapshot_path(dir);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::new()),
        Err(source) => return Err(PersistError::Io { path, source }),
    };
    let doc: Value = serde_json::from_slice(&text).map_err(|e| PersistError::Format {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    decode(&doc).map_err(|reason| PersistError::Format { path, reason })
}

/// Writes the snapshot atomically (temporary file, then rename).
pub fn save(dir: &Path, doc: &Value) -> Result<(), PersistError> {
    let path = snapshot_path(dir);
    let io = |source| PersistError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join("devcluster-snapshot.json.tmp");
    std::fs::write(&tmp, doc.to_string()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcluster::store::WriteOpts;

    #[test]
    fn snapshot_round_trip_keeps_objects_and_counter() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::new();
        let cm = store
            .registry()
            .get("", "v1", "configmaps")
            .cloned()
            .unwrap();
        store
            .create(
                &cm,
                "default",
                json!({"metadata": {"name": "c"}, "data": {"a": "b"}}),
                &WriteOpts::default(),
            )
            .unwrap();
        let rv = store.resource_version();
        save(dir.path(), &encode(&store)).unwrap();
        let back = load(dir.path()).unwrap();
        assert_eq!(back.resource_version(), rv);
        assert_eq!(back.get(&cm, "default", "c").unwrap()["data"]["a"], "b");
    }

    #[test]
    fn missing_snapshot_is_a_fresh_store_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_ok());
        std::fs::write(snapshot_path(dir.path()), "nope").unwrap();
        assert!(matches!(load(dir.path()), Err(PersistError::Format { .. })));
    }
}
