//! Least privilege: the roles bound to the operator's ServiceAccount grant exactly the
//! permissions in config/rbac/required-permissions.yaml — each one, in the right scope, and
//! nothing else — in the chart (both watch modes, with and without leader election) and in the
//! kustomize installs (cluster-wide, one namespace, the leader-election component).

use std::collections::BTreeSet;

use serde_json::Value;

use super::tools::{find, of_kind, repo, yaml_docs};
use super::{helm, kustomize};

/// (scope, group, resource, verb); scope is `*cluster*` or a namespace.
type Grant = (String, String, String, String);

const CLUSTER: &str = "*cluster*";

/// A permission of config/rbac/required-permissions.yaml.
pub struct Required {
    pub scope: String,
    pub group: String,
    pub resource: String,
    pub verb: String,
    /// Granted only with leader election enabled.
    pub leader_election: bool,
}

/// config/rbac/required-permissions.yaml, one entry per verb.
pub fn required_permissions() -> Vec<Required> {
    let text = std::fs::read_to_string(repo().join("config/rbac/required-permissions.yaml"))
        .expect("required-permissions.yaml");
    let doc = &yaml_docs(&text)[0];
    let mut out = Vec::new();
    for p in doc["permissions"].as_array().expect("permissions list") {
        let field = |k: &str| {
            p[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {p}"))
                .to_string()
        };
        let leader_election = match p.get("when").and_then(Value::as_str) {
            None => false,
            Some("leaderElection") => true,
            Some(other) => panic!("unknown `when: {other}` in required-permissions.yaml"),
        };
        for verb in p["verbs"].as_array().unwrap() {
            out.push(Required {
                scope: field("scope"),
                group: field("group"),
                resource: field("resource"),
                verb: verb.as_str().unwrap().to_string(),
                leader_election,
            });
        }
    }
    out
}

/// What must be granted: watched-scope permissions in `watched_scope`, operator-scope ones in
/// `operator_ns`, leader election's only when it is enabled.
fn required(watched_scope: &str, operator_ns: &str, leader_election: bool) -> BTreeSet<Grant> {
    required_permissions()
        .into_iter()
        .filter(|r| leader_election || !r.leader_election)
        .map(|r| {
            let scope = match r.scope.as_str() {
                "watched" => watched_scope,
                "operator" => operator_ns,
                other => panic!("unknown scope {other:?} in required-permissions.yaml"),
            };
            (scope.to_string(), r.group, r.resource, r.verb)
        })
        .collect()
}

fn expand(rules: &Value, scope: &str, out: &mut BTreeSet<Grant>) {
    for rule in rules.as_array().into_iter().flatten() {
        assert!(
            rule.get("resourceNames").is_none(),
            "resourceNames are not expected"
        );
        let list = |k: &str| -> Vec<String> {
            rule[k]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for g in list("apiGroups") {
            for r in list("resources") {
                for v in list("verbs") {
                    assert!(g != "*" && r != "*" && v != "*", "wildcard in {rule}");
                    out.insert((scope.to_string(), g.clone(), r.clone(), v));
                }
            }
        }
    }
}

/// Everything the rendered manifests grant to ServiceAccount `ns/sa`.
fn granted(docs: &[Value], sa: &str, ns: &str) -> BTreeSet<Grant> {
    let binds_sa = |b: &Value| {
        b["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == ns)
    };
    let mut out = BTreeSet::new();
    for b in of_kind(docs, "ClusterRoleBinding")
        .into_iter()
        .filter(|b| binds_sa(b))
    {
        assert_eq!(b["roleRef"]["kind"], "ClusterRole");
        let role = find(docs, "ClusterRole", b["roleRef"]["name"].as_str().unwrap());
        expand(&role["rules"], CLUSTER, &mut out);
    }
    for b in of_kind(docs, "RoleBinding")
        .into_iter()
        .filter(|b| binds_sa(b))
    {
        let scope = b["metadata"]["namespace"]
            .as_str()
            .expect("RoleBinding namespace");
        let name = b["roleRef"]["name"].as_str().unwrap();
        let role = match b["roleRef"]["kind"].as_str().unwrap() {
            "Role" => of_kind(docs, "Role")
                .into_iter()
                .find(|r| r["metadata"]["name"] == name && r["metadata"]["namespace"] == scope)
                .unwrap_or_else(|| panic!("Role {scope}/{name} is not rendered")),
            _ => find(docs, "ClusterRole", name),
        };
        expand(&role["rules"], scope, &mut out);
    }
    out
}

/// (required but not granted, granted but not required).
fn diff(granted: &BTreeSet<Grant>, required: &BTreeSet<Grant>) -> (Vec<Grant>, Vec<Grant>) {
    (
        required.difference(granted).cloned().collect(),
        granted.difference(required).cloned().collect(),
    )
}

fn assert_exact(what: &str, granted: BTreeSet<Grant>, required: BTreeSet<Grant>) {
    let (missing, extra) = diff(&granted, &required);
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:#?}\nnot needed {extra:#?}"
    );
}

#[test]
fn chart_grants_exactly_the_required_permissions_cluster_wide() {
    let docs = helm::render(&[]);
    let got = granted(&docs, "psa-operator", "psa-operator-system");
    assert_exact(
        "chart (all namespaces)",
        got,
        required(CLUSTER, "psa-operator-system", false),
    );
    // No Event of the core group: kube-runtime's Recorder writes events.k8s.io only.
    let docs = helm::render(&[]);
    let got = granted(&docs, "psa-operator", "psa-operator-system");
    assert!(got.iter().all(|g| !(g.1.is_empty() && g.2 == "events")));
    assert!(
        got.iter().all(|g| g.2 != "leases"),
        "no Lease without leader election"
    );
}

#[test]
fn chart_grants_leases_only_with_leader_election() {
    let docs = helm::render(&["--set", "leaderElection.enabled=true"]);
    let got = granted(&docs, "psa-operator", "psa-operator-system");
    assert_exact(
        "chart (leader election)",
        got.clone(),
        required(CLUSTER, "psa-operator-system", true),
    );
    let leases: Vec<&Grant> = got.iter().filter(|g| g.2 == "leases").collect();
    assert!(!leases.is_empty());
    assert!(
        leases.iter().all(|g| g.0 == "psa-operator-system"),
        "Leases only in the operator's namespace: {leases:?}"
    );
}

#[test]
fn chart_grants_exactly_the_required_permissions_in_one_namespace() {
    let docs = helm::render(&["-f", "charts/psa-operator/ci/namespaced-values.yaml"]);
    let got = granted(&docs, "psa-operator-sa", "psa-operator-system");
    assert_exact(
        "chart (namespace psa)",
        got,
        required("psa", "psa-operator-system", false),
    );
}

#[test]
fn kustomize_grants_exactly_the_required_permissions() {
    let docs = kustomize::render();
    let got = granted(&docs, "psa-operator", "psa-operator-system");
    assert_exact(
        "config/default",
        got,
        required(CLUSTER, "psa-operator-system", false),
    );
}

#[test]
fn kustomize_namespaced_overlay_grants_the_required_permissions_in_one_namespace() {
    let docs = kustomize::render_dir("config/namespaced");
    let got = granted(&docs, "psa-operator", "psa-operator-system");
    assert_exact(
        "config/namespaced",
        got,
        required("psa", "psa-operator-system", false),
    );
    assert!(
        of_kind(&docs, "ClusterRoleBinding").is_empty(),
        "nothing cluster-wide is bound to the operator"
    );
    let deploy = find(&docs, "Deployment", "psa-operator");
    let args = &deploy["spec"]["template"]["spec"]["containers"][0]["args"];
    let args: Vec<&str> = args
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--namespace=psa"), "{args:?}");
    assert!(!args.contains(&"--all-namespaces"), "{args:?}");
    // The same grant as the chart confined to `psa`.
    let chart = helm::render(&["--set", "watch.namespace=psa"]);
    assert_eq!(
        find(&docs, "Role", "psa-operator")["rules"],
        find(&chart, "Role", "psa-operator")["rules"]
    );
}

#[test]
fn kustomize_leader_election_component_equals_the_chart() {
    let docs = kustomize::render_dir("config/components/leader-election");
    let chart = helm::render(&["--set", "leaderElection.enabled=true"]);
    let role = "psa-operator-leader-election";
    assert_eq!(
        find(&docs, "Role", role)["rules"],
        find(&chart, "Role", role)["rules"]
    );
    let mut with = kustomize::render();
    with.extend(docs);
    assert_exact(
        "config/default + leader-election component",
        granted(&with, "psa-operator", "psa-operator-system"),
        required(CLUSTER, "psa-operator-system", true),
    );
}

#[test]
fn a_missing_or_extra_grant_is_reported() {
    // The comparison itself: drop the Secret rule and add a wildcard-free extra one.
    let mut docs = helm::render(&[]);
    let role = docs
        .iter_mut()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "psa-operator")
        .unwrap();
    let rules = role["rules"].as_array_mut().unwrap();
    rules.retain(|r| r["resources"][0] != "secrets");
    rules.push(
        serde_json::json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}),
    );
    let got = granted(&docs, "psa-operator", "psa-operator-system");
    let (missing, extra) = diff(&got, &required(CLUSTER, "psa-operator-system", false));
    let resources = |v: &[Grant]| v.iter().map(|g| g.2.clone()).collect::<BTreeSet<_>>();
    assert_eq!(resources(&missing), BTreeSet::from(["secrets".to_string()]));
    assert_eq!(
        resources(&extra),
        BTreeSet::from(["configmaps".to_string()])
    );
}
