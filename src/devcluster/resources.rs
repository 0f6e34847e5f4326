//! The resource registry: built-in kinds and the custom resources registered by CRDs.

use std::collections::BTreeMap;

use serde_json::Value;

/// Where objects of a resource are stored: `(group, plural)`. Both Event APIs share one.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct StorageKey {
    pub group: String,
    pub plural: String,
}

impl StorageKey {
    pub fn new(group: &str, plural: &str) -> Self {
        StorageKey {
            group: group.into(),
            plural: plural.into(),
        }
    }
}

/// How stored objects are shown through one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Stored as served.
    Plain,
    /// Events stored in core/v1 shape, served as events.k8s.io/v1.
    EventsV1,
}

/// A printer column of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// One resource as served under one group/version.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// Custom resources and CRDs carry `metadata.generation`.
    pub has_generation: bool,
    /// Served by a CRD (schema-validated, merge-only patches).
    pub custom: bool,
    pub printer_columns: Vec<PrinterColumn>,
    /// The version's `openAPIV3Schema` (custom resources only).
    pub schema: Option<Value>,
    pub storage: StorageKey,
    pub view: View,
}

impl ResourceDef {
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Path prefix of this resource's group/version: `/api/v1` or `/apis/g/v`.
    pub fn gv_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short_names: &[&str],
    view: View,
    storage: StorageKey,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        status_subresource: false,
        has_generation: false,
        custom: false,
        printer_columns: vec![],
        schema: None,
        storage,
        view,
    }
}

/// The built-in kinds the operator and kubectl use.
pub fn builtins() -> Vec<ResourceDef> {
    // Kinds of the operator's own install (Helm chart, config/default) among them, stored as
    // given so that `kubectl apply --dry-run=server` of the rendered manifests can be checked
    // here; nothing runs them.
    let grouped = |group: &str, plural: &str, kind: &str, namespaced: bool, short: &[&str]| {
        builtin(
            group,
            "v1",
            plural,
            kind,
            namespaced,
            short,
            View::Plain,
            StorageKey::new(group, plural),
        )
    };
    let core = |plural: &str, kind: &str, namespaced: bool, short: &[&str]| {
        grouped("", plural, kind, namespaced, short)
    };
    let mut ns = core("namespaces", "Namespace", false, &["ns"]);
    ns.status_subresource = true;
    let mut crd = grouped(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
    );
    crd.status_subresource = true;
    crd.has_generation = true;
    let mut deployment = grouped("apps", "deployments", "Deployment", true, &["deploy"]);
    deployment.status_subresource = true;
    deployment.has_generation = true;
    let rbac = "rbac.authorization.k8s.io";
    vec![
        ns,
        core("secrets", "Secret", true, &[]),
        core("configmaps", "ConfigMap", true, &["cm"]),
        core("serviceaccounts", "ServiceAccount", true, &["sa"]),
        core("services", "Service", true, &["svc"]),
        core(
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
        ),
        deployment,
        grouped(rbac, "roles", "Role", true, &[]),
        grouped(rbac, "rolebindings", "RoleBinding", true, &[]),
        grouped(rbac, "clusterroles", "ClusterRole", false, &[]),
        grouped(
            rbac,
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
        ),
        grouped("networking.k8s.io", "ingresses", "Ingress", true, &["ing"]),
        core("events", "Event", true, &["ev"]),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            View::EventsV1,
            StorageKey::new("", "events"),
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            View::Plain,
            StorageKey::new("coordination.k8s.io", "leases"),
        ),
        crd,
    ]
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The resources a CRD object serves: one per served version.
pub fn defs_from_crd(crd: &Value) -> Vec<ResourceDef> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = s(&spec["group"]);
    let plural = s(&names["plural"]);
    let kind = s(&names["kind"]);
    let singular = match s(&names["singular"]) {
        x if x.is_empty() => kind.to_lowercase(),
        x => x,
    };
    let list_kind = match s(&names["listKind"]) {
        x if x.is_empty() => format!("{kind}List"),
        x => x,
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| {
            let printer_columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: s(&c["name"]),
                            type_: s(&c["type"]),
                            format: s(&c["format"]),
                            description: s(&c["description"]),
                            priority: c["priority"].as_i64().unwrap_or(0),
                            json_path: s(&c["jsonPath"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            ResourceDef {
                group: group.clone(),
                version: s(&v["name"]),
                plural: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                short_names: str_list(&names["shortNames"]),
                categories: str_list(&names["categories"]),
                status_subresource: v["subresources"].get("status").is_some(),
                has_generation: true,
                custom: true,
                printer_columns,
                schema: v["schema"].get("openAPIV3Schema").cloned(),
                storage: StorageKey::new(&group, &plural),
                view: View::Plain,
            }
        })
        .collect()
}

/// All served resources, keyed by (group, version, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    defs: BTreeMap<(String, String, String), ResourceDef>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Registry {
            defs: BTreeMap::new(),
        };
        for d in builtins() {
            r.insert(d);
        }
        r
    }
}

impl Registry {
    fn insert(&mut self, d: ResourceDef) {
        self.defs
            .insert((d.group.clone(), d.version.clone(), d.plural.clone()), d);
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// Replaces whatever the CRD served before with what it serves now.
    pub fn register_crd(&mut self, crd: &Value) {
        self.unregister_storage(&crd_storage_key(crd));
        for d in defs_from_crd(crd) {
            self.insert(d);
        }
    }

    pub fn unregister_storage(&mut self, key: &StorageKey) {
        self.defs.retain(|_, d| !(d.custom && &d.storage == key));
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceDef> {
        self.defs.values()
    }

    /// Group → versions served, core group first, in a stable order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in self.defs.values() {
            let vs = out.entry(d.group.clone()).or_default();
            if !vs.contains(&d.version) {
                vs.push(d.version.clone());
            }
        }
        out.into_iter().collect()
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceDef> + 'a {
        self.defs
            .values()
            .filter(move |d| d.group == group && d.version == version)
    }

    /// The definition through which objects of a storage key are written (for GC and snapshots).
    pub fn any_for_storage(&self, key: &StorageKey) -> Option<&ResourceDef> {
        self.defs
            .values()
            .find(|d| &d.storage == key && d.view == View::Plain)
    }
}

/// Where a CRD's custom resources are stored.
pub fn crd_storage_key(crd: &Value) -> StorageKey {
    StorageKey::new(
        crd["spec"]["group"].as_str().unwrap_or_default(),
        crd["spec"]["names"]["plural"].as_str().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.io"},
            "spec": {
                "group": "example.io",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}},
                     "additionalPrinterColumns": [{"name": "Ready", "type": "string", "jsonPath": ".status.ready"}],
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        })
    }

    #[test]
    fn crd_serves_each_served_version_with_its_names() {
        let defs = defs_from_crd(&sample_crd());
        assert_eq!(defs.len(), 1);
        let d = &defs[0];
        assert_eq!(d.singular, "widget");
        assert_eq!(d.list_kind, "WidgetList");
        assert!(d.namespaced && d.status_subresource && d.custom);
        assert_eq!(d.short_names, vec!["wd"]);
        assert_eq!(d.printer_columns[0].json_path, ".status.ready");
    }

    #[test]
    fn registry_registers_and_unregisters_crds() {
        let mut r = Registry::default();
        assert!(r.get("", "v1", "secrets").is_some());
        r.register_crd(&sample_crd());
        assert!(r.get("example.io", "v1", "widgets").is_some());
        assert!(r.groups().iter().any(|(g, _)| g == "example.io"));
        r.unregister_storage(&StorageKey::new("example.io", "widgets"));
        assert!(r.get("example.io", "v1", "widgets").is_none());
    }

    #[test]
    fn both_event_apis_share_storage() {
        let r = Registry::default();
        let core = r.get("", "v1", "events").unwrap();
        let ev = r.get("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.storage, ev.storage);
        assert_eq!(ev.view, View::EventsV1);
    }
}
