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

/// Writes the snapshot atomically (temporary file, then rename). It holds every Secret: the
/// file is 0600 in a 0700 directory.
pub fn save(dir: &Path, doc: &Value) -> Result<(), PersistError> {
    let path = snapshot_path(dir);
    let io = |source| PersistError::Io {
        path: path.clone(),
        source,
    };
    create_private_dir(dir).map_err(io)?;
    let tmp = dir.join("devcluster-snapshot.json.tmp");
    write_private_file(&tmp, doc.to_string().as_bytes()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}

/// Creates `dir` (and parents) and makes it 0700: dev state holds Secrets and alerts.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `bytes` to a file readable by its owner only (created 0600, never briefly wider).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode on open: narrow it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcluster::store::WriteOpts;

    #[cfg(unix)]
    #[test]
    fn the_snapshot_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("cluster");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        save(&dir, &json!({"secrets": "all of them"})).unwrap();
        save(&dir, &json!({"secrets": "again"})).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&snapshot_path(&dir)), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

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
