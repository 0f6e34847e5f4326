//! GitOps health: the Argo CD Lua scripts (run with Lua), the Flux health expressions (run with
//! CEL) and the kstatus rules, all fed the same statuses of the three kinds; the Flux HelmRelease
//! example rendered with the chart.

use std::fmt::Write as _;

use kube::core::cel::cel::{Context, Program, Value as CelValue};
use serde_json::{json, Value};

use super::tools::{find, lua, of_kind, repo, run_ok, yaml_docs};

const KINDS: [&str; 3] = ["PsaConnection", "CustomerMapping", "ContractService"];

fn cond(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": generation, "lastTransitionTime": "2026-11-24T16:00:00Z"})
}

/// A resource at generation 3 with the given status (`None`: the operator has not written one).
fn object(kind: &str, status: Option<Value>) -> Value {
    let mut o = json!({
        "apiVersion": "psa-operator.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "demo", "namespace": "psa", "generation": 3},
        "spec": {},
    });
    if let Some(s) = status {
        o["status"] = s;
    }
    o
}

/// What each tool should conclude for one status.
struct Case {
    name: &'static str,
    status: Option<Value>,
    argo: &'static str,
    flux: &'static str,
    kstatus: &'static str,
}

/// One case: (Argo CD, Flux, kstatus) are what the three tools should conclude.
fn case(
    name: &'static str,
    status: Option<Value>,
    [argo, flux, kstatus]: [&'static str; 3],
) -> Case {
    Case {
        name,
        status,
        argo,
        flux,
        kstatus,
    }
}

/// A status the operator wrote having observed `generation`, with these conditions.
fn observed(generation: i64, conditions: Vec<Value>) -> Option<Value> {
    Some(json!({"observedGeneration": generation, "conditions": conditions}))
}

fn cases() -> Vec<Case> {
    let ready = cond(
        "Ready",
        "True",
        "Ready",
        "Tickets go to board Security Alerts",
        3,
    );
    let synced = cond("Synced", "True", "Synced", "", 3);
    vec![
        case(
            "no status yet",
            None,
            ["Progressing", "InProgress", "Current"],
        ),
        case(
            "older generation observed",
            observed(2, vec![cond("Ready", "True", "Ready", "", 2)]),
            ["Progressing", "InProgress", "InProgress"],
        ),
        case(
            "ready",
            observed(3, vec![ready.clone(), synced.clone()]),
            ["Healthy", "Current", "Current"],
        ),
        case(
            "not ready",
            observed(
                3,
                vec![
                    cond(
                        "Ready",
                        "False",
                        "AuthenticationFailed",
                        "ConnectWise answered 401",
                        3,
                    ),
                    synced.clone(),
                ],
            ),
            ["Degraded", "Failed", "Current"],
        ),
        case(
            "ready unknown",
            observed(3, vec![cond("Ready", "Unknown", "Resolving", "", 3)]),
            ["Progressing", "InProgress", "Current"],
        ),
        case(
            "no Ready condition yet",
            observed(3, vec![synced]),
            ["Progressing", "InProgress", "Current"],
        ),
        case(
            "Ready condition of an older generation",
            observed(3, vec![cond("Ready", "True", "Ready", "", 2)]),
            ["Progressing", "Current", "Current"],
        ),
        case(
            "suspended",
            observed(
                3,
                vec![
                    cond("Ready", "False", "Suspended", "spec.suspend is true", 3),
                    cond("Suspended", "True", "Suspended", "Alerts are held", 3),
                ],
            ),
            ["Suspended", "Current", "Current"],
        ),
        // A PSA outage shorter than the grace keeps the last known Ready: nothing turns red while
        // the queue holds the alerts.
        case(
            "PSA outage within the grace",
            observed(
                3,
                vec![
                    ready.clone(),
                    cond(
                        "Synced",
                        "False",
                        "PsaUnavailable",
                        "ConnectWise answered 503",
                        3,
                    ),
                ],
            ),
            ["Healthy", "Current", "Current"],
        ),
        case(
            "PSA outage past the grace",
            observed(
                3,
                vec![
                    cond(
                        "Ready",
                        "Unknown",
                        "PsaUnavailable",
                        "the PSA cannot be reached",
                        3,
                    ),
                    cond(
                        "Synced",
                        "False",
                        "PsaUnavailable",
                        "ConnectWise answered 503",
                        3,
                    ),
                    cond(
                        "Reconciling",
                        "True",
                        "PsaUnavailable",
                        "the PSA cannot be reached",
                        3,
                    ),
                ],
            ),
            ["Progressing", "InProgress", "InProgress"],
        ),
        case(
            "stalled",
            observed(
                3,
                vec![
                    cond(
                        "Ready",
                        "False",
                        "InvalidSettings",
                        "status New not on board",
                        3,
                    ),
                    cond(
                        "Stalled",
                        "True",
                        "InvalidSettings",
                        "status New not on board",
                        3,
                    ),
                ],
            ),
            ["Degraded", "Failed", "Failed"],
        ),
    ]
}

/// A Lua table constructor for a JSON value (arrays become 1-based sequences, as in Argo CD).
fn lua_literal(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            out.push('"');
            for b in s.bytes() {
                match b {
                    b'"' | b'\\' => {
                        out.push('\\');
                        out.push(b as char);
                    }
                    0x20..=0x7e => out.push(b as char),
                    _ => write!(out, "\\{b:03}").unwrap(),
                }
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('{');
            for i in items {
                lua_literal(i, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (k, val) in map {
                out.push('[');
                lua_literal(&Value::String(k.clone()), out);
                out.push_str("]=");
                lua_literal(val, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// Runs an Argo CD health script on `obj`; returns (status, message).
fn argo_health(script: &str, obj: &Value) -> (String, String) {
    let mut program = String::from("obj = ");
    lua_literal(obj, &mut program);
    program.push_str("\nlocal function health()\n");
    program.push_str(script);
    program
        .push_str("\nend\nlocal hs = health()\nio.write(hs.status, \"\\n\", hs.message or \"\")\n");
    let out = run_ok(&lua(), &["-e", &program]);
    let (status, message) = out.split_once('\n').unwrap_or((out.as_str(), ""));
    (status.to_string(), message.to_string())
}

fn argo_scripts() -> Value {
    let path = repo().join("config/gitops/argocd/argocd-cm-health.yaml");
    let cm = yaml_docs(&std::fs::read_to_string(path).unwrap()).remove(0);
    cm["data"].clone()
}

/// Argo CD's verdict (status, message) on a live object of one of our kinds, with the script
/// of config/gitops/argocd for its kind (the outage e2e feeds it what the operator wrote).
pub fn argo_verdict(obj: &Value) -> (String, String) {
    let kind = obj["kind"].as_str().expect("an object with a kind");
    let key = format!("resource.customizations.health.psa-operator.io_{kind}");
    let scripts = argo_scripts();
    let script = scripts[&key]
        .as_str()
        .unwrap_or_else(|| panic!("argocd-cm lacks {key}"));
    argo_health(script, obj)
}

/// Flux's verdict on a live object, with the healthCheckExprs of config/gitops/flux.
pub fn flux_verdict(obj: &Value) -> &'static str {
    let path = repo().join("config/gitops/flux/psa-operator.yaml");
    let docs = yaml_docs(&std::fs::read_to_string(path).unwrap());
    let config = find(&docs, "Kustomization", "psa-config");
    let entry = config["spec"]["healthCheckExprs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == obj["kind"])
        .cloned()
        .unwrap_or_else(|| panic!("no Flux expression for {}", obj["kind"]));
    flux_health(&entry, obj)
}

#[test]
fn argo_cd_health_scripts_judge_ready_and_observed_generation() {
    let data = argo_scripts();
    for kind in KINDS {
        let key = format!("resource.customizations.health.psa-operator.io_{kind}");
        let script = data[&key]
            .as_str()
            .unwrap_or_else(|| panic!("argocd-cm lacks {key}"));
        for case in cases() {
            let (status, message) = argo_health(script, &object(kind, case.status.clone()));
            assert_eq!(status, case.argo, "{kind}, {}: {message}", case.name);
        }
    }
    // A degraded resource shows why in the Argo CD UI.
    let script = data["resource.customizations.health.psa-operator.io_PsaConnection"]
        .as_str()
        .unwrap();
    let failing = cases().into_iter().find(|c| c.name == "not ready").unwrap();
    let (_, message) = argo_health(script, &object("PsaConnection", failing.status));
    assert_eq!(message, "AuthenticationFailed: ConnectWise answered 401");
}

/// Evaluates one Flux health expression; a missing field is an error, which Flux treats as
/// "keep waiting".
fn cel_true(expr: &str, obj: &Value) -> Result<bool, String> {
    let program = Program::compile(expr).map_err(|e| e.to_string())?;
    let mut ctx = Context::default();
    for (k, v) in obj.as_object().unwrap() {
        ctx.add_variable(k.as_str(), v.clone())
            .map_err(|e| e.to_string())?;
    }
    match program.execute(&ctx).map_err(|e| e.to_string())? {
        CelValue::Bool(b) => Ok(b),
        other => Err(format!("not a bool: {other:?}")),
    }
}

/// Flux's verdict from a healthCheckExprs entry: inProgress, then failed, then current.
fn flux_health(entry: &Value, obj: &Value) -> &'static str {
    let holds = |key: &str| {
        entry[key]
            .as_str()
            .is_some_and(|e| cel_true(e, obj).unwrap_or(false))
    };
    if holds("inProgress") {
        "InProgress"
    } else if holds("failed") {
        "Failed"
    } else if holds("current") {
        "Current"
    } else {
        "InProgress"
    }
}

#[test]
fn flux_health_expressions_judge_ready_and_observed_generation() {
    let path = repo().join("config/gitops/flux/psa-operator.yaml");
    let docs = yaml_docs(&std::fs::read_to_string(path).unwrap());
    assert_eq!(of_kind(&docs, "Kustomization").len(), 2);
    let config = find(&docs, "Kustomization", "psa-config");
    assert_eq!(config["spec"]["dependsOn"][0]["name"], "psa-operator");
    assert_eq!(config["spec"]["wait"], true);
    let exprs = config["spec"]["healthCheckExprs"].as_array().unwrap();
    for kind in KINDS {
        let entry = exprs
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no expression for {kind}"));
        assert_eq!(entry["apiVersion"], "psa-operator.io/v1alpha1");
        for case in cases() {
            let got = flux_health(entry, &object(kind, case.status.clone()));
            assert_eq!(got, case.flux, "{kind}, {}", case.name);
        }
    }
}

/// kstatus (sigs.k8s.io/cli-utils) for a custom resource without type-specific rules:
/// deletion → Terminating; observedGeneration present and ≠ generation → InProgress;
/// Reconciling=True → InProgress; Stalled=True → Failed; otherwise Current.
fn kstatus(obj: &Value) -> &'static str {
    if obj["metadata"]["deletionTimestamp"].is_string() {
        return "Terminating";
    }
    if let (Some(generation), Some(observed)) = (
        obj["metadata"]["generation"].as_i64(),
        obj["status"]["observedGeneration"].as_i64(),
    ) {
        if generation != observed {
            return "InProgress";
        }
    }
    for c in obj["status"]["conditions"].as_array().into_iter().flatten() {
        if c["status"] == "True" && c["type"] == "Reconciling" {
            return "InProgress";
        }
        if c["status"] == "True" && c["type"] == "Stalled" {
            return "Failed";
        }
    }
    "Current"
}

#[test]
fn statuses_follow_the_kstatus_rules() {
    for kind in KINDS {
        for case in cases() {
            let obj = object(kind, case.status.clone());
            assert_eq!(kstatus(&obj), case.kstatus, "{kind}, {}", case.name);
            // Whatever kstatus concludes, the conditions are in the shape it parses: a list of
            // {type, status} with status True/False/Unknown, and an integer observedGeneration.
            if let Some(status) = &case.status {
                assert!(status["observedGeneration"].is_i64());
                for c in status["conditions"].as_array().unwrap() {
                    assert!(["True", "False", "Unknown"].contains(&c["status"].as_str().unwrap()));
                }
            }
        }
        let mut deleting = object(kind, cases()[2].status.clone());
        deleting["metadata"]["deletionTimestamp"] = json!("2026-11-24T17:00:00Z");
        assert_eq!(kstatus(&deleting), "Terminating");
    }
}

/// The Flux HelmRelease example installs the chart of this repository: its chart path exists,
/// its values pass the chart's values schema and render the operator with the CRDs kept, from
/// the image it names.
#[test]
fn flux_helmrelease_example_renders_the_chart_with_its_values() {
    let path = repo().join("config/gitops/flux/helmrelease.yaml");
    let docs = yaml_docs(&std::fs::read_to_string(path).unwrap());
    let release = find(&docs, "HelmRelease", "psa-operator");
    let chart = release["spec"]["chart"]["spec"]["chart"].as_str().unwrap();
    assert!(repo().join(chart).join("Chart.yaml").is_file(), "{chart}");
    let source = &release["spec"]["chart"]["spec"]["sourceRef"];
    find(
        &docs,
        source["kind"].as_str().unwrap(),
        source["name"].as_str().unwrap(),
    );

    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        serde_yaml::to_string(&release["spec"]["values"]).unwrap(),
    )
    .unwrap();
    let namespace = release["spec"]["targetNamespace"].as_str().unwrap();
    let name = release["spec"]["releaseName"].as_str().unwrap();
    let rendered = yaml_docs(&super::tools::run_ok(
        &super::tools::helm(),
        &[
            "template",
            name,
            chart,
            "--namespace",
            namespace,
            "-f",
            values.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        of_kind(&rendered, "CustomResourceDefinition").len(),
        KINDS.len(),
        "crds.install renders the CRDs"
    );
    for crd in of_kind(&rendered, "CustomResourceDefinition") {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "crds.keep"
        );
    }
    let deployment = &of_kind(&rendered, "Deployment")[0];
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(
        image.starts_with("registry.example.com/psa-operator:"),
        "{image}"
    );
}
