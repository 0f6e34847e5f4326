//! The object store: one global resourceVersion, objects per storage key, a bounded change log
//! for watches, and every write rule (metadata, finalizers, status subresource, generation,
//! no-op detection, validation, CRD registration, garbage collection).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::error::{qualified, ApiError, Cause};
use super::events;
use super::meta;
use super::patch::{self, PatchType};
use super::resources::{crd_storage_key, Registry, ResourceDef, StorageKey, View};
use super::selectors::{FieldSelector, LabelSelector};
use super::validation;

/// Changes kept for watches that resume from a resourceVersion; older ones get 410.
const LOG_CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watches see it (stored shape).
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub key: StorageKey,
    pub kind: ChangeType,
    pub object: Value,
    /// The object before the change (for selector transitions).
    pub previous: Option<Value>,
}

/// Main resource or the `status` subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::Main => "",
            Sub::Status => "status",
        }
    }
}

/// `fieldValidation`: kube omits it (Warn), kubectl sends Strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub validation: FieldValidation,
    pub field_manager: Option<String>,
}

/// What a write returns: the object as served, whether it was created, warnings for the client.
#[derive(Debug, Clone)]
pub struct WriteResult {
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

impl WriteResult {
    /// The answer to a write: `obj` as `def`'s clients see it.
    fn viewed(def: &ResourceDef, obj: &Value, created: bool, warnings: Vec<String>) -> Self {
        WriteResult {
            object: view(def, obj),
            created,
            warnings,
        }
    }
}

/// How a watch starts: the changes to send first, and the live feed after them.
pub struct WatchStart {
    pub initial: Vec<Arc<Change>>,
    pub from_rv: u64,
    pub live: broadcast::Receiver<Arc<Change>>,
}

/// The whole state. Callers hold it behind a mutex for the duration of one operation.
pub struct Store {
    rv: u64,
    objects: BTreeMap<StorageKey, BTreeMap<(String, String), Value>>,
    log: VecDeque<Arc<Change>>,
    /// Changes with rv > log_start are in the log.
    log_start: u64,
    registry: Registry,
    tx: broadcast::Sender<Arc<Change>>,
    /// How long a terminating namespace keeps its contents before they are deleted (the
    /// apiserver's namespace controller is asynchronous too; `kubectl delete -f dir/` relies on it).
    namespace_grace: Duration,
    terminating_since: HashMap<String, Instant>,
}

/// The object as served through `def` (apiVersion and Event shape).
pub fn view(def: &ResourceDef, stored: &Value) -> Value {
    match def.view {
        View::EventsV1 => events::to_events_v1(stored),
        View::Plain => {
            let mut v = stored.clone();
            v["apiVersion"] = json!(def.group_version());
            v["kind"] = json!(def.kind);
            v
        }
    }
}

fn unview(def: &ResourceDef, served: Value) -> Value {
    match def.view {
        View::EventsV1 => events::from_events_v1(&served),
        View::Plain => served,
    }
}

/// Objects and most patch bodies must be JSON objects (indexing anything else would be a bug).
fn require_object(v: &Value, what: &str) -> Result<(), ApiError> {
    if v.is_object() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{what} must be a JSON object"
        )))
    }
}

fn bad_kind(def: &ResourceDef, obj: &Value) -> Option<ApiError> {
    let kind = obj["kind"].as_str().unwrap_or("");
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    if (!kind.is_empty() && kind != def.kind)
        || (!api_version.is_empty() && api_version != def.group_version())
    {
        return Some(ApiError::BadRequest(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({}) or the kind ({kind}) does not match {}",
            def.group_version(),
            def.kind
        )));
    }
    None
}

fn fold_string_data(obj: &mut Value) {
    if let Some(sd) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        if let Some(map) = sd.as_object() {
            if !obj["data"].is_object() {
                obj["data"] = json!({});
            }
            for (k, v) in map {
                let text = v.as_str().unwrap_or_default();
                obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
            }
        }
    }
    if obj["type"].as_str().is_none_or(str::is_empty) {
        obj["type"] = json!("Opaque");
    }
}

/// The status the apiserver gives an accepted CRD, keeping transition times it already had.
fn crd_status(crd: &Value, old: Option<&Value>) -> Value {
    let versions: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let time = |t: &str| {
        old.and_then(|o| o["status"]["conditions"].as_array())
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
            .unwrap_or_else(meta::now_rfc3339)
    };
    json!({
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": versions,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": time("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": time("Established")}
        ]
    })
}

fn check_crd(crd: &Value) -> Result<(), ApiError> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let plural = spec["names"]["plural"].as_str().unwrap_or("");
    let name = meta::name(crd);
    let mut causes = Vec::new();
    if group.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.group",
            "Required value",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if spec["names"]["kind"].as_str().unwrap_or("").is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    if causes.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            name,
            causes,
        ))
    }
}

/// The latest of an Event's timestamps.
fn event_last_seen(e: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    [
        &e["series"]["lastObservedTime"],
        &e["lastTimestamp"],
        &e["eventTime"],
        &e["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .filter_map(|v| v.as_str())
    .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    .map(|t| t.with_timezone(&chrono::Utc))
    .max()
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut s = Store {
            rv: 0,
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            log_start: 0,
            registry: Registry::default(),
            tx,
            namespace_grace: Duration::ZERO,
            terminating_since: HashMap::new(),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let def = s.registry.get("", "v1", "namespaces").cloned();
            if let Some(def) = def {
                let _ = s.create(&def, "", obj, &WriteOpts::default());
            }
        }
        s
    }

    /// Rebuilds a store from a snapshot: objects, counter, and the CRDs' resources.
    pub fn from_snapshot(rv: u64, objects: Vec<(StorageKey, Value)>) -> Self {
        let mut s = Store::new();
        s.objects.clear();
        s.log.clear();
        for (key, obj) in objects {
            let id = (
                meta::namespace(&obj).to_string(),
                meta::name(&obj).to_string(),
            );
            if key.group == "apiextensions.k8s.io" {
                s.registry.register_crd(&obj);
            }
            s.objects.entry(key).or_default().insert(id, obj);
        }
        s.rv = rv.max(s.rv);
        s.log_start = s.rv;
        s
    }

    /// Everything a snapshot needs.
    pub fn snapshot(&self) -> (u64, Vec<(StorageKey, Value)>) {
        let objs = self
            .objects
            .iter()
            .flat_map(|(k, m)| m.values().map(move |o| (k.clone(), o.clone())))
            .collect();
        (self.rv, objs)
    }

    /// Sets how long terminating namespaces wait before their contents are deleted.
    pub fn set_namespace_grace(&mut self, grace: Duration) {
        self.namespace_grace = grace;
    }

    /// Whether a namespace is terminating (the reaper then calls [`Store::collect_garbage`]).
    pub fn has_terminating_namespaces(&self) -> bool {
        self.objects
            .get(&StorageKey::new("", "namespaces"))
            .is_some_and(|m| m.values().any(meta::is_deleting))
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn stored(&self, key: &StorageKey, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    fn not_found(def: &ResourceDef, name: &str) -> ApiError {
        ApiError::not_found(&def.plural, &def.group, name)
    }

    /// The stored object `name` of `def` (a copy) with the namespace it is kept under (none
    /// for cluster-scoped kinds); not found when there is none.
    fn existing<'n>(
        &self,
        def: &ResourceDef,
        ns: &'n str,
        name: &str,
    ) -> Result<(&'n str, Value), ApiError> {
        let ns_key = if def.namespaced { ns } else { "" };
        let old = self
            .stored(&def.storage, ns_key, name)
            .cloned()
            .ok_or_else(|| Self::not_found(def, name))?;
        Ok((ns_key, old))
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.stored(&def.storage, ns, name)
            .map(|o| view(def, o))
            .ok_or_else(|| Self::not_found(def, name))
    }

    /// Matching objects in (namespace, name) order, and the list's resourceVersion.
    pub fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let items = self
            .objects
            .get(&def.storage)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|((o_ns, _), _)| ns.is_none_or(|n| n == o_ns))
            .filter(|(_, o)| labels.matches(o) && fields.matches(o))
            .map(|(_, o)| view(def, o))
            .collect();
        (items, self.rv)
    }

    /// How many stored objects of `key` (in namespace `ns`, or all) satisfy `pred`, without
    /// copying or serialising any: what a benchmark polls while it waits for thousands of
    /// objects, where a list per poll would cost the API server more than the operator's work.
    pub fn count(
        &self,
        key: &StorageKey,
        ns: Option<&str>,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        self.objects
            .get(key)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|((o_ns, _), o)| ns.is_none_or(|n| n == o_ns) && pred(o))
            .count()
    }

    fn emit(&mut self, key: &StorageKey, kind: ChangeType, object: Value, previous: Option<Value>) {
        let change = Arc::new(Change {
            rv: self.rv,
            key: key.clone(),
            kind,
            object,
            previous,
        });
        self.log.push_back(change.clone());
        while self.log.len() > LOG_CAPACITY {
            if let Some(old) = self.log.pop_front() {
                self.log_start = old.rv;
            }
        }
        let _ = self.tx.send(change);
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Starts a watch: replay after `rv` (or every current object when `rv` is None), then live.
    pub fn watch(&self, key: &StorageKey, rv: Option<u64>) -> Result<WatchStart, ApiError> {
        let live = self.tx.subscribe();
        let initial = match rv {
            None => self
                .objects
                .get(key)
                .into_iter()
                .flat_map(|m| m.values())
                .map(|o| {
                    Arc::new(Change {
                        rv: meta::resource_version(o).parse().unwrap_or(0),
                        key: key.clone(),
                        kind: ChangeType::Added,
                        object: o.clone(),
                        previous: None,
                    })
                })
                .collect(),
            Some(n) if n < self.log_start => {
                return Err(ApiError::Gone(format!(
                    "too old resource version: {n} ({})",
                    self.log_start + 1
                )))
            }
            Some(n) => self
                .log
                .iter()
                .filter(|c| c.rv > n && &c.key == key)
                .cloned()
                .collect(),
        };
        Ok(WatchStart {
            initial,
            from_rv: self.rv,
            live,
        })
    }

    fn namespace_ready(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<(), ApiError> {
        if !def.namespaced {
            return Ok(());
        }
        let key = StorageKey::new("", "namespaces");
        match self.stored(&key, "", ns) {
            None => Err(ApiError::not_found("namespaces", "", ns)),
            Some(n) if meta::is_deleting(n) => Err(ApiError::Forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                qualified(&def.plural, &def.group),
                name,
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Kind-specific admission: Secret folding, Namespace phase, CRD checks, CR schema and CEL.
    fn admit(
        &self,
        def: &ResourceDef,
        mut obj: Value,
        old: Option<&Value>,
        opts: &WriteOpts,
        is_patch: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        match (def.group.as_str(), def.kind.as_str()) {
            ("", "Secret") => fold_string_data(&mut obj),
            ("", "Namespace") if obj["status"]["phase"].as_str().is_none() => {
                obj["status"] = json!({"phase": "Active"});
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                check_crd(&obj)?;
                obj["status"] = crd_status(&obj, old);
            }
            _ => {}
        }
        let Some(schema) = def.schema.as_ref().filter(|_| def.custom) else {
            return Ok(obj);
        };
        let (obj, unknown, causes) = validation::admit(schema, obj, old);
        if !unknown.is_empty() {
            match opts.validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|u| format!("unknown field \"{u}\""))
                        .collect();
                    let msg = format!(
                        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                        def.kind,
                        def.version,
                        def.kind,
                        list.join(", ")
                    );
                    return Err(if is_patch {
                        ApiError::Invalid {
                            message: msg,
                            group: def.group.clone(),
                            kind: def.kind.clone(),
                            name: meta::name(&obj).to_string(),
                            causes: vec![],
                        }
                    } else {
                        ApiError::BadRequest(msg)
                    });
                }
                FieldValidation::Warn => {
                    warnings.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")))
                }
                FieldValidation::Ignore => {}
            }
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                meta::name(&obj),
                causes,
            ));
        }
        Ok(obj)
    }

    /// POST.
    pub fn create(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<WriteResult, ApiError> {
        require_object(&body, "the object")?;
        if let Some(e) = bad_kind(def, &body) {
            return Err(e);
        }
        let mut obj = unview(def, body);
        if def.view == View::Plain {
            obj["apiVersion"] = json!(def.group_version());
            obj["kind"] = json!(def.kind);
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        if meta::name(&obj).is_empty() {
            let prefix = obj["metadata"]["generateName"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &def.kind,
                    &def.group,
                    "",
                    vec![Cause::new(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )],
                ));
            }
            meta::set_meta(&mut obj, "name", json!(meta::generated_name(&prefix)));
        }
        if def.namespaced {
            let body_ns = meta::namespace(&obj);
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            meta::set_meta(&mut obj, "namespace", json!(ns));
        } else {
            meta::remove_meta(&mut obj, "namespace");
        }
        let name = meta::name(&obj).to_string();
        let ns_key = if def.namespaced { ns } else { "" };
        self.namespace_ready(def, ns_key, &name)?;
        if self.stored(&def.storage, ns_key, &name).is_some() {
            return Err(ApiError::already_exists(&def.plural, &def.group, &name));
        }
        if def.status_subresource && def.custom {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        let mut warnings = Vec::new();
        let mut obj = self.admit(def, obj, None, opts, false, &mut warnings)?;
        meta::set_meta(&mut obj, "uid", json!(meta::new_uid()));
        meta::set_meta(&mut obj, "creationTimestamp", json!(meta::now_rfc3339()));
        for k in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            meta::remove_meta(&mut obj, k);
        }
        if def.has_generation {
            meta::set_meta(&mut obj, "generation", json!(1));
        }
        if opts.dry_run {
            meta::set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
            return Ok(WriteResult::viewed(def, &obj, true, warnings));
        }
        let rv = self.bump();
        meta::set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        self.objects
            .entry(def.storage.clone())
            .or_default()
            .insert((ns_key.to_string(), name), obj.clone());
        self.emit(&def.storage, ChangeType::Added, obj.clone(), None);
        if def.kind == "CustomResourceDefinition" {
            self.registry.register_crd(&obj);
        }
        Ok(WriteResult::viewed(def, &obj, true, warnings))
    }

    /// PUT (main or status). `require_rv`: custom resources refuse updates without a resourceVersion.
    pub fn update(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        body: Value,
        sub: Sub,
        opts: &WriteOpts,
    ) -> Result<WriteResult, ApiError> {
        require_object(&body, "the object")?;
        if let Some(e) = bad_kind(def, &body) {
            return Err(e);
        }
        let body_name = meta::name(&body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if def.custom && meta::resource_version(&body).is_empty() {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                name,
                vec![Cause::new(
                    "FieldValueInvalid",
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )],
            ));
        }
        self.commit(def, ns, name, body, sub, opts, false)
    }

    /// PATCH of any supported type; an apply of a missing object creates it.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        ptype: PatchType,
        body: &Value,
        sub: Sub,
        opts: &WriteOpts,
    ) -> Result<WriteResult, ApiError> {
        let ns_key = if def.namespaced { ns } else { "" };
        let current = self
            .stored(&def.storage, ns_key, name)
            .map(|o| view(def, o));
        if ptype == PatchType::Apply {
            let manager = opts.field_manager.clone().ok_or_else(|| {
                ApiError::BadRequest(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
                )
            })?;
            if let Some(e) = bad_kind(def, body) {
                return Err(e);
            }
            let prev = current
                .as_ref()
                .and_then(|c| patch::manager_fields(c, &manager, sub.name()).cloned());
            let (mut obj, fields) = patch::server_side_apply(current.as_ref(), body, prev.as_ref());
            patch::record_manager(
                &mut obj,
                &manager,
                sub.name(),
                &def.group_version(),
                fields,
                &meta::now_rfc3339(),
            );
            return match current {
                None if sub == Sub::Status => Err(Self::not_found(def, name)),
                None => {
                    meta::set_meta(&mut obj, "name", json!(name));
                    let managed = obj["metadata"]["managedFields"].clone();
                    let mut res = self.create(def, ns, obj, opts)?;
                    if !opts.dry_run {
                        self.set_managed_fields(def, ns_key, name, managed);
                        res.object = self.get(def, ns_key, name)?;
                    }
                    Ok(res)
                }
                Some(_) => self.commit(def, ns, name, obj, sub, opts, true),
            };
        }
        let current = current.ok_or_else(|| Self::not_found(def, name))?;
        let patched = match ptype {
            PatchType::Merge => {
                let mut o = current;
                patch::merge(&mut o, body);
                o
            }
            PatchType::Json => patch::json_patch(&current, body)?,
            PatchType::StrategicMerge if def.custom => {
                return Err(ApiError::UnsupportedMediaType(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                ))
            }
            PatchType::StrategicMerge => {
                let mut o = current;
                patch::strategic_as_merge(&mut o, body);
                o
            }
            PatchType::Apply => unreachable!("handled above"),
        };
        self.commit(def, ns, name, patched, sub, opts, true)
    }

    /// Puts the apply field sets on a freshly created object without a new resourceVersion
    /// (create strips client-sent managedFields).
    fn set_managed_fields(&mut self, def: &ResourceDef, ns: &str, name: &str, managed: Value) {
        if let Some(o) = self
            .objects
            .get_mut(&def.storage)
            .and_then(|m| m.get_mut(&(ns.to_string(), name.to_string())))
        {
            meta::set_meta(o, "managedFields", managed);
        }
    }

    /// The shared update path of PUT and PATCH.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        new: Value,
        sub: Sub,
        opts: &WriteOpts,
        is_patch: bool,
    ) -> Result<WriteResult, ApiError> {
        let (ns_key, old) = self.existing(def, ns, name)?;
        require_object(&new, "the patched object")?;
        let sent_rv = meta::resource_version(&new).to_string();
        if !sent_rv.is_empty() && sent_rv != meta::resource_version(&old) {
            return Err(ApiError::conflict(&def.plural, &def.group, name));
        }
        let new = unview(def, new);
        let mut obj = match sub {
            Sub::Status => {
                let mut o = old.clone();
                match new.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                if let Some(mf) = new["metadata"].get("managedFields") {
                    meta::set_meta(&mut o, "managedFields", mf.clone());
                }
                o
            }
            Sub::Main => {
                let mut o = new;
                if def.status_subresource {
                    match old.get("status") {
                        Some(s) => o["status"] = s.clone(),
                        None => {
                            if let Some(m) = o.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                o
            }
        };
        if def.view == View::Plain {
            obj["apiVersion"] = old["apiVersion"].clone();
            obj["kind"] = json!(def.kind);
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old["metadata"].get(k) {
                Some(v) => meta::set_meta(&mut obj, k, v.clone()),
                None => meta::remove_meta(&mut obj, k),
            }
        }
        if obj["metadata"].get("managedFields").is_none() {
            if let Some(mf) = old["metadata"].get("managedFields") {
                meta::set_meta(&mut obj, "managedFields", mf.clone());
            }
        }
        let mut warnings = Vec::new();
        let mut obj = self.admit(def, obj, Some(&old), opts, is_patch, &mut warnings)?;
        if def.has_generation && meta::spec_changed(&old, &obj) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta::set_meta(&mut obj, "generation", json!(g));
        }
        meta::set_meta(
            &mut obj,
            "resourceVersion",
            old["metadata"]["resourceVersion"].clone(),
        );
        let finished = meta::is_deleting(&obj) && meta::finalizers(&obj).is_empty();
        if obj == old && !finished {
            return Ok(WriteResult::viewed(def, &old, false, warnings));
        }
        if opts.dry_run {
            return Ok(WriteResult::viewed(def, &obj, false, warnings));
        }
        let rv = self.bump();
        meta::set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        let id = (ns_key.to_string(), name.to_string());
        if finished {
            self.remove(&def.storage, &id, obj.clone(), old);
        } else {
            self.objects
                .entry(def.storage.clone())
                .or_default()
                .insert(id, obj.clone());
            self.emit(&def.storage, ChangeType::Modified, obj.clone(), Some(old));
            if def.kind == "CustomResourceDefinition" {
                self.registry.register_crd(&obj);
            }
        }
        if self.may_leave_garbage(finished, &obj) {
            self.collect_garbage();
        }
        Ok(WriteResult::viewed(def, &obj, false, warnings))
    }

    /// Removes an object for good (rv already bumped and set on `last`): DELETED, CRD cleanup.
    fn remove(&mut self, key: &StorageKey, id: &(String, String), last: Value, previous: Value) {
        if let Some(m) = self.objects.get_mut(key) {
            m.remove(id);
        }
        self.emit(key, ChangeType::Deleted, last.clone(), Some(previous));
        if key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions" {
            let cr_key = crd_storage_key(&last);
            let ids: Vec<(String, String)> = self
                .objects
                .get(&cr_key)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for cr_id in ids {
                self.drop_now(&cr_key, &cr_id);
            }
            self.objects.remove(&cr_key);
            self.registry.unregister_storage(&cr_key);
        }
    }

    fn drop_now(&mut self, key: &StorageKey, id: &(String, String)) {
        let Some(old) = self.objects.get(key).and_then(|m| m.get(id)).cloned() else {
            return;
        };
        let rv = self.bump();
        let mut last = old.clone();
        meta::set_meta(&mut last, "resourceVersion", json!(rv.to_string()));
        self.remove(key, id, last, old);
    }

    /// Starts deletion: finalizers (or a namespace's contents) hold it with a deletionTimestamp,
    /// otherwise the object goes at once. Returns the object as last seen.
    fn delete_stored(&mut self, key: &StorageKey, id: &(String, String)) -> Option<Value> {
        let old = self.objects.get(key).and_then(|m| m.get(id)).cloned()?;
        let is_namespace = key.group.is_empty() && key.plural == "namespaces";
        if meta::finalizers(&old).is_empty() && !is_namespace {
            let rv = self.bump();
            let mut last = old.clone();
            meta::set_meta(&mut last, "resourceVersion", json!(rv.to_string()));
            self.remove(key, id, last.clone(), old);
            return Some(last);
        }
        if meta::is_deleting(&old) {
            return Some(old);
        }
        let mut obj = old.clone();
        meta::set_meta(&mut obj, "deletionTimestamp", json!(meta::now_rfc3339()));
        meta::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(0));
        if is_namespace {
            obj["status"]["phase"] = json!("Terminating");
        }
        let rv = self.bump();
        meta::set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        self.objects
            .entry(key.clone())
            .or_default()
            .insert(id.clone(), obj.clone());
        self.emit(key, ChangeType::Modified, obj.clone(), Some(old));
        Some(obj)
    }

    /// DELETE with optional preconditions (`{"preconditions":{"uid","resourceVersion"}}`).
    pub fn delete(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let (ns_key, old) = self.existing(def, ns, name)?;
        let pre = &options["preconditions"];
        let uid_ok = pre["uid"].as_str().is_none_or(|u| u == meta::uid(&old));
        let rv_ok = pre["resourceVersion"]
            .as_str()
            .is_none_or(|r| r == meta::resource_version(&old));
        if !uid_ok || !rv_ok {
            return Err(ApiError::conflict(&def.plural, &def.group, name));
        }
        if dry_run {
            return Ok(view(def, &old));
        }
        let id = (ns_key.to_string(), name.to_string());
        let last = self
            .delete_stored(&def.storage, &id)
            .ok_or_else(|| Self::not_found(def, name))?;
        self.collect_garbage();
        Ok(view(def, &last))
    }

    /// Deletes Events last seen more than `ttl` ago (the apiserver keeps them for an hour), so a
    /// long `dev` session does not grow without bound. Returns how many went.
    pub fn expire_events(
        &mut self,
        ttl: chrono::Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> usize {
        let key = StorageKey::new("", "events");
        let old: Vec<(String, String)> = self
            .objects
            .get(&key)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, e)| event_last_seen(e).is_some_and(|t| now - t > ttl))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            self.drop_now(&key, id);
        }
        old.len()
    }

    /// Whether a committed write can have made garbage: an object went for good (its dependents
    /// may have lost their last owner), the written object names owners (one may be gone), or a
    /// namespace is terminating. Other writes skip the collection, which walks every stored
    /// object: run after each of 10,000 status writes it made a wave of them quadratic.
    fn may_leave_garbage(&self, removed: bool, written: &Value) -> bool {
        removed
            || written["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| !o.is_empty())
            || self.has_terminating_namespaces()
    }

    /// Empties terminating namespaces and deletes objects whose owners are all gone.
    pub fn collect_garbage(&mut self) {
        let now = Instant::now();
        let ns_key = StorageKey::new("", "namespaces");
        let deleting: Vec<String> = self
            .objects
            .get(&ns_key)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|n| meta::is_deleting(n))
            .map(|n| meta::name(n).to_string())
            .collect();
        self.terminating_since.retain(|n, _| deleting.contains(n));
        for n in &deleting {
            self.terminating_since.entry(n.clone()).or_insert(now);
        }
        let grace = self.namespace_grace;
        let terminating: HashSet<String> = self
            .terminating_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= grace)
            .map(|(n, _)| n.clone())
            .collect();
        for _ in 0..64 {
            let mut todo: Vec<(StorageKey, (String, String))> = Vec::new();
            let live_uids: HashSet<String> = self
                .objects
                .values()
                .flat_map(|m| m.values())
                .map(|o| meta::uid(o).to_string())
                .collect();
            let mut busy_namespaces: HashSet<String> = HashSet::new();
            for (key, m) in &self.objects {
                for (id, o) in m {
                    if !id.0.is_empty() && terminating.contains(&id.0) {
                        busy_namespaces.insert(id.0.clone());
                        if !meta::is_deleting(o) {
                            todo.push((key.clone(), id.clone()));
                        }
                        continue;
                    }
                    let owners = o["metadata"]["ownerReferences"].as_array();
                    if let Some(owners) = owners.filter(|a| !a.is_empty()) {
                        let any_live = owners
                            .iter()
                            .any(|r| r["uid"].as_str().is_some_and(|u| live_uids.contains(u)));
                        if !any_live && !meta::is_deleting(o) {
                            todo.push((key.clone(), id.clone()));
                        }
                    }
                }
            }
            for ns in &terminating {
                if !busy_namespaces.contains(ns) {
                    todo.push((ns_key.clone(), (String::new(), ns.clone())));
                }
            }
            if todo.is_empty() {
                return;
            }
            for (key, id) in todo {
                if key == ns_key {
                    self.drop_now(&key, &id);
                } else {
                    self.delete_stored(&key, &id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(store: &Store, g: &str, v: &str, p: &str) -> ResourceDef {
        store.registry().get(g, v, p).cloned().unwrap()
    }

    fn with_crd() -> (Store, ResourceDef) {
        let mut s = Store::new();
        let crd_def = def(
            &s,
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
        );
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.io"},
            "spec": {"group": "example.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                        "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}}}]}});
        let res = s.put(&crd_def, "", crd);
        assert_eq!(res["status"]["conditions"][1]["type"], "Established");
        let w = def(&s, "example.io", "v1", "widgets");
        (s, w)
    }

    impl Store {
        /// Replaces an object (not its status) with the default options: what the store serves.
        fn update_main(
            &mut self,
            def: &ResourceDef,
            ns: &str,
            name: &str,
            body: Value,
        ) -> Result<Value, ApiError> {
            self.update(def, ns, name, body, Sub::Main, &WriteOpts::default())
                .map(|r| r.object)
        }

        /// Creates an object with the default options; the test fails if the store refuses it.
        fn put(&mut self, def: &ResourceDef, ns: &str, body: Value) -> Value {
            self.create(def, ns, body, &WriteOpts::default())
                .unwrap()
                .object
        }
    }

    fn widget(name: &str, size: i64) -> Value {
        json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}})
    }

    #[test]
    fn create_sets_identity_and_conflicts_on_duplicates() {
        let (mut s, w) = with_crd();
        let o = s.put(&w, "default", widget("a", 1));
        assert_eq!(o["metadata"]["generation"], 1);
        assert_eq!(o["metadata"]["namespace"], "default");
        assert!(!meta::uid(&o).is_empty());
        let e = s
            .create(&w, "default", widget("a", 1), &WriteOpts::default())
            .unwrap_err();
        assert_eq!(e.code(), 409);
        let e = s
            .create(&w, "nope", widget("b", 1), &WriteOpts::default())
            .unwrap_err();
        assert_eq!(e.to_string(), "namespaces \"nope\" not found");
    }

    #[test]
    fn update_rules_rv_generation_and_no_op() {
        let (mut s, w) = with_crd();
        let o = s.put(&w, "default", widget("a", 1));
        let rv = meta::resource_version(&o).to_string();
        let same = s.update_main(&w, "default", "a", o.clone()).unwrap();
        assert_eq!(meta::resource_version(&same), rv, "no-op keeps rv");
        let mut labelled = o.clone();
        labelled["metadata"]["labels"] = json!({"x": "y"});
        let l = s.update_main(&w, "default", "a", labelled).unwrap();
        assert_ne!(meta::resource_version(&l), rv);
        assert_eq!(
            l["metadata"]["generation"], 1,
            "label change keeps generation"
        );
        let stale = s.update_main(&w, "default", "a", o.clone()).unwrap_err();
        assert_eq!(stale.code(), 409);
        let mut bigger = l.clone();
        bigger["spec"]["size"] = json!(2);
        let b = s.update_main(&w, "default", "a", bigger).unwrap();
        assert_eq!(b["metadata"]["generation"], 2);
        let mut no_rv = b.clone();
        meta::remove_meta(&mut no_rv, "resourceVersion");
        assert_eq!(
            s.update_main(&w, "default", "a", no_rv).unwrap_err().code(),
            422
        );
    }

    #[test]
    fn status_subresource_separates_writes() {
        let (mut s, w) = with_crd();
        let mut body = widget("a", 1);
        body["status"] = json!({"ok": true});
        let o = s.put(&w, "default", body);
        assert!(o.get("status").is_none(), "create drops status");
        let st = s
            .patch(
                &w,
                "default",
                "a",
                PatchType::Merge,
                &json!({"status": {"ok": true}, "spec": {"size": 9}}),
                Sub::Status,
                &WriteOpts::default(),
            )
            .unwrap()
            .object;
        assert_eq!(st["status"]["ok"], true);
        assert_eq!(st["spec"]["size"], 1, "status write ignores spec");
        assert_eq!(st["metadata"]["generation"], 1);
        let main = s
            .patch(
                &w,
                "default",
                "a",
                PatchType::Merge,
                &json!({"status": {"ok": false}}),
                Sub::Main,
                &WriteOpts::default(),
            )
            .unwrap()
            .object;
        assert_eq!(main["status"]["ok"], true, "main write keeps status");
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let (mut s, w) = with_crd();
        let mut body = widget("a", 1);
        body["metadata"]["finalizers"] = json!(["example.io/cleanup"]);
        s.put(&w, "default", body);
        let start = s.resource_version();
        let held = s.delete(&w, "default", "a", &json!({}), false).unwrap();
        assert!(meta::is_deleting(&held));
        assert!(s.get(&w, "default", "a").is_ok());
        let done = s
            .patch(
                &w,
                "default",
                "a",
                PatchType::Merge,
                &json!({"metadata": {"finalizers": null}}),
                Sub::Main,
                &WriteOpts::default(),
            )
            .unwrap();
        assert!(s.get(&w, "default", "a").is_err());
        let ws = s.watch(&w.storage, Some(start)).unwrap();
        let kinds: Vec<ChangeType> = ws.initial.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec![ChangeType::Modified, ChangeType::Deleted]);
        assert_eq!(
            meta::resource_version(&done.object),
            ws.initial[1].rv.to_string()
        );
    }

    #[test]
    fn schema_rejects_wrong_types_and_strict_unknown_fields() {
        let (mut s, w) = with_crd();
        let mut bad = widget("a", 1);
        bad["spec"]["size"] = json!("big");
        let e = s
            .create(&w, "default", bad, &WriteOpts::default())
            .unwrap_err();
        assert_eq!(e.code(), 422);
        assert!(e.to_string().contains("spec.size"), "{e}");
        let mut extra = widget("b", 1);
        extra["spec"]["foo"] = json!(1);
        let strict = WriteOpts {
            validation: FieldValidation::Strict,
            ..Default::default()
        };
        let e = s.create(&w, "default", extra.clone(), &strict).unwrap_err();
        assert_eq!(e.code(), 400);
        assert!(e.to_string().contains("unknown field \"spec.foo\""));
        let ok = s
            .create(&w, "default", extra, &WriteOpts::default())
            .unwrap();
        assert_eq!(ok.warnings, vec!["unknown field \"spec.foo\""]);
        assert!(ok.object["spec"].get("foo").is_none());
    }

    #[test]
    fn apply_creates_then_is_a_no_op_when_repeated() {
        let (mut s, w) = with_crd();
        let opts = WriteOpts {
            field_manager: Some("op".into()),
            ..Default::default()
        };
        // Server-side apply of `obj` to widget "a" (its main part or its status) as "op".
        let mut apply = |obj: &Value, sub: Sub| {
            s.patch(&w, "default", "a", PatchType::Apply, obj, sub, &opts)
                .unwrap()
        };
        let r = apply(&widget("a", 3), Sub::Main);
        assert!(r.created);
        let rv = meta::resource_version(&r.object).to_string();
        assert_eq!(r.object["metadata"]["managedFields"][0]["manager"], "op");
        let again = apply(&widget("a", 3), Sub::Main);
        assert_eq!(meta::resource_version(&again.object), rv);
        let status = json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "a"}, "status": {"ok": true}});
        let st = apply(&status, Sub::Status);
        assert_eq!(st.object["status"]["ok"], true);
        let st2 = apply(&status, Sub::Status);
        assert_eq!(
            meta::resource_version(&st2.object),
            meta::resource_version(&st.object)
        );
    }

    #[test]
    fn smp_is_refused_for_custom_resources_and_merged_for_secrets() {
        let (mut s, w) = with_crd();
        s.put(&w, "default", widget("a", 1));
        let e = s
            .patch(
                &w,
                "default",
                "a",
                PatchType::StrategicMerge,
                &json!({}),
                Sub::Main,
                &WriteOpts::default(),
            )
            .unwrap_err();
        assert_eq!(e.code(), 415);
        let sec = def(&s, "", "v1", "secrets");
        let o = s.put(
            &sec,
            "default",
            json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
        );
        assert_eq!(o["data"]["k"], "dg==");
        assert_eq!(o["type"], "Opaque");
        assert!(o.get("stringData").is_none());
        let p = s
            .patch(
                &sec,
                "default",
                "s",
                PatchType::StrategicMerge,
                &json!({"data": {"j": "dw=="}}),
                Sub::Main,
                &WriteOpts::default(),
            )
            .unwrap()
            .object;
        assert_eq!(p["data"], json!({"k": "dg==", "j": "dw=="}));
    }

    #[test]
    fn deleting_a_namespace_or_owner_or_crd_cascades() {
        let (mut s, w) = with_crd();
        let nsd = def(&s, "", "v1", "namespaces");
        s.put(&nsd, "", json!({"metadata": {"name": "t"}}));
        let owner = s.put(&w, "t", widget("owner", 1));
        let cm = def(&s, "", "v1", "configmaps");
        s.put(&cm, "t", json!({"metadata": {"name": "c", "ownerReferences": [
            {"apiVersion": "example.io/v1", "kind": "Widget", "name": "owner", "uid": meta::uid(&owner)}]}}));
        s.delete(&w, "t", "owner", &json!({}), false).unwrap();
        assert!(s.get(&cm, "t", "c").is_err(), "dependent collected");
        s.put(&w, "t", widget("x", 1));
        s.delete(&nsd, "", "t", &json!({}), false).unwrap();
        assert!(s.get(&w, "t", "x").is_err());
        assert!(s.get(&nsd, "", "t").is_err());
        s.put(&w, "default", widget("y", 1));
        let crd_def = def(
            &s,
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
        );
        s.delete(&crd_def, "", "widgets.example.io", &json!({}), false)
            .unwrap();
        assert!(s.registry().get("example.io", "v1", "widgets").is_none());
        assert!(s
            .list(&w, None, &Default::default(), &Default::default())
            .0
            .is_empty());
    }

    #[test]
    fn a_write_naming_a_gone_owner_is_collected_and_other_writes_keep_their_objects() {
        let (mut s, w) = with_crd();
        let cm = def(&s, "", "v1", "configmaps");
        s.put(&cm, "default", json!({"metadata": {"name": "c"}}));
        s.put(&w, "default", widget("plain", 1));
        // A write that removes nothing and names no owner leaves everything in place.
        let bigger = json!({"spec": {"size": 2}});
        s.patch(
            &w,
            "default",
            "plain",
            PatchType::Merge,
            &bigger,
            Sub::Main,
            &WriteOpts::default(),
        )
        .unwrap();
        assert!(!s.may_leave_garbage(false, &s.get(&w, "default", "plain").unwrap()));
        assert!(s.get(&cm, "default", "c").is_ok());
        // Naming an owner that does not exist makes the object garbage at once.
        let orphan = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "no-such-uid"}]}});
        s.patch(
            &cm,
            "default",
            "c",
            PatchType::Merge,
            &orphan,
            Sub::Main,
            &WriteOpts::default(),
        )
        .unwrap();
        assert!(s.get(&cm, "default", "c").is_err(), "collected");
        assert!(s.get(&w, "default", "plain").is_ok());
    }

    #[test]
    fn terminating_namespace_keeps_contents_during_grace_and_refuses_new_ones() {
        let (mut s, w) = with_crd();
        s.set_namespace_grace(Duration::from_secs(3600));
        let nsd = def(&s, "", "v1", "namespaces");
        s.put(&nsd, "", json!({"metadata": {"name": "t"}}));
        s.put(&w, "t", widget("x", 1));
        let ns = s.delete(&nsd, "", "t", &json!({}), false).unwrap();
        assert_eq!(ns["status"]["phase"], "Terminating");
        assert!(s.has_terminating_namespaces());
        assert!(
            s.get(&w, "t", "x").is_ok(),
            "contents stay during the grace"
        );
        let e = s
            .create(&w, "t", widget("y", 1), &WriteOpts::default())
            .unwrap_err();
        assert_eq!(e.code(), 403);
        s.set_namespace_grace(Duration::ZERO);
        s.collect_garbage();
        assert!(s.get(&w, "t", "x").is_err());
        assert!(s.get(&nsd, "", "t").is_err());
        assert!(!s.has_terminating_namespaces());
    }

    #[test]
    fn events_expire_after_their_last_sighting() {
        let mut s = Store::new();
        let ev = def(&s, "events.k8s.io", "v1", "events");
        let now = chrono::Utc::now();
        let later = |mins: i64| (now + chrono::Duration::minutes(mins)).to_rfc3339();
        s.put(
            &ev,
            "default",
            json!({"metadata": {"name": "once"}, "reason": "R",
            "eventTime": later(0), "regarding": {"name": "x"}}),
        );
        s.put(
            &ev,
            "default",
            json!({"metadata": {"name": "repeated"}, "reason": "R",
            "eventTime": later(0), "series": {"count": 3, "lastObservedTime": later(30)}}),
        );
        let hour = chrono::Duration::hours(1);
        assert_eq!(
            s.expire_events(hour, now + chrono::Duration::minutes(30)),
            0
        );
        assert_eq!(
            s.expire_events(hour, now + chrono::Duration::minutes(61)),
            1
        );
        assert!(s.get(&ev, "default", "once").is_err());
        assert!(s.get(&ev, "default", "repeated").is_ok());
    }

    #[test]
    fn non_object_bodies_are_bad_requests_not_panics() {
        let (mut s, w) = with_crd();
        s.put(&w, "default", widget("a", 1));
        let o = WriteOpts::default();
        assert_eq!(
            s.create(&w, "default", json!([1]), &o).unwrap_err().code(),
            400
        );
        assert_eq!(
            s.update(&w, "default", "a", json!("x"), Sub::Main, &o)
                .unwrap_err()
                .code(),
            400
        );
        for (t, body) in [
            (PatchType::Merge, json!([1])),
            (PatchType::Merge, json!(null)),
            (
                PatchType::Json,
                json!([{"op": "replace", "path": "", "value": [1]}]),
            ),
            (PatchType::StrategicMerge, json!(3)),
        ] {
            let e = s
                .patch(&w, "default", "a", t, &body, Sub::Main, &o)
                .unwrap_err();
            assert!(matches!(e.code(), 400 | 415 | 422), "{t:?}: {e}");
        }
        assert!(s.get(&w, "default", "a").is_ok());
    }

    #[test]
    fn old_resource_versions_are_gone_after_a_restart() {
        let (s, w) = with_crd();
        let (rv, objs) = s.snapshot();
        let restored = Store::from_snapshot(rv, objs);
        assert!(restored
            .registry()
            .get("example.io", "v1", "widgets")
            .is_some());
        assert_eq!(
            restored.watch(&w.storage, Some(1)).err().unwrap().code(),
            410
        );
        assert!(restored.watch(&w.storage, Some(rv)).is_ok());
    }
}
