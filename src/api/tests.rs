//! Tests of the generated CRDs: drift against `crds/`, the CEL rules, and the reference YAML.

use kube::core::cel::Validator;
use kube::CustomResourceExt;
use serde_json::{json, Value};

use super::crdgen::{all_crds, all_crds_yaml, crd_yaml, CRD_FILES};
use super::{
    ContractService, ContractServiceStatus, CustomerMapping, CustomerMappingStatus,
    DispatchCounters, PsaConnection, PsaConnectionStatus,
};

fn schema_of<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

fn cel_errors<K: CustomResourceExt>(obj: Value) -> Vec<String> {
    match Validator::new().validate(&schema_of::<K>(), &obj, None) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

fn cw_provider() -> Value {
    json!({"url": "https://api-na.myconnectwise.net", "companyId": "acme", "clientId": "c",
           "credentialsSecretRef": {"name": "keys"}})
}

fn bms_provider() -> Value {
    json!({"url": "https://api.bms.kaseya.com", "tenant": "acme", "credentialsSecretRef": {"name": "bms"}})
}

fn connection(provider: Value, ticket: Value) -> Value {
    json!({"apiVersion": "psa-operator.io/v1alpha1", "kind": "PsaConnection",
           "metadata": {"name": "c", "namespace": "psa"},
           "spec": {"provider": provider, "ticket": ticket}})
}

#[test]
fn committed_crds_match_generated() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut on_disk = String::new();
    for (crd, file) in all_crds().iter().zip(CRD_FILES) {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| {
            panic!("crds/{file} missing ({e}); run `psa-operator crd` and split it into crds/")
        });
        assert_eq!(
            text,
            format!("---\n{}", crd_yaml(crd)),
            "crds/{file} is stale: regenerate with `psa-operator crd`"
        );
        on_disk.push_str(&text);
    }
    assert_eq!(on_disk, all_crds_yaml());
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        CRD_FILES.len(),
        "unexpected files in crds/: {names:?}"
    );
}

/// Paths of `default` keywords in a schema (a property *named* `default` is not one).
fn schema_defaults(v: &Value, path: &str, in_properties: bool) -> Vec<String> {
    let mut out = vec![];
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "default" && !in_properties {
                    out.push(path.to_string());
                }
                out.extend(schema_defaults(
                    child,
                    &format!("{path}/{k}"),
                    k == "properties",
                ));
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|c| out.extend(schema_defaults(c, path, false))),
        _ => {}
    }
    out
}

#[test]
fn crds_have_the_promised_shape() {
    for crd in all_crds() {
        let spec = &crd.spec;
        assert_eq!(spec.group, "psa-operator.io");
        assert_eq!(spec.scope, "Namespaced");
        assert_eq!(
            spec.names.categories.as_deref(),
            Some(&["psa".to_string()][..])
        );
        let v = &spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources.as_ref().unwrap().status.is_some(),
            "{} lacks status subresource",
            spec.names.kind
        );
        let cols: Vec<_> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for want in ["Ready", "Synced", "Reason", "Age"] {
            assert!(
                cols.contains(&want),
                "{} lacks column {want}: {cols:?}",
                spec.names.kind
            );
        }
        let extra = match spec.names.kind.as_str() {
            "PsaConnection" => ("psaconn", "Provider"),
            "CustomerMapping" => ("custmap", "Company"),
            "ContractService" => ("csvc", "ExternalID"),
            other => panic!("unexpected kind {other}"),
        };
        assert_eq!(
            spec.names.short_names.as_deref(),
            Some(&[extra.0.to_string()][..])
        );
        assert!(cols.contains(&extra.1));
        // No schema defaults: Argo CD would show drift for every defaulted field.
        let schema = serde_json::to_value(&v.schema).unwrap();
        assert_eq!(
            schema_defaults(&schema, "", false),
            Vec::<String>::new(),
            "{} has schema defaults",
            spec.names.kind
        );
    }
}

#[test]
fn cel_rejects_two_providers_and_no_provider() {
    let two = json!({"connectWise": cw_provider(), "kaseyaBms": bms_provider()});
    let errs = cel_errors::<PsaConnection>(connection(two, json!({})));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("exactly one provider"), "{errs:?}");
    assert!(
        errs[0].contains("spec.provider"),
        "error names the field: {errs:?}"
    );

    let none = cel_errors::<PsaConnection>(connection(json!({}), json!({})));
    assert!(
        none.iter().any(|e| e.contains("exactly one provider")),
        "{none:?}"
    );

    assert!(cel_errors::<PsaConnection>(connection(
        json!({"connectWise": cw_provider()}),
        json!({})
    ))
    .is_empty());
    assert!(cel_errors::<PsaConnection>(connection(
        json!({"kaseyaBms": bms_provider()}),
        json!({})
    ))
    .is_empty());
}

#[test]
fn cel_rejects_value_and_map_together() {
    let p = json!({"connectWise": cw_provider()});
    let table = [
        (json!({"status": {"value": "New"}}), None),
        (
            json!({"priority": {"map": {"high": "P2"}, "default": "P3"}}),
            None,
        ),
        (
            json!({"priority": {"value": "P1", "map": {"high": "P2"}}}),
            Some("set exactly one of value or map"),
        ),
        (
            json!({"priority": {}}),
            Some("set exactly one of value or map"),
        ),
        (
            json!({"type": {"value": "Alert", "default": "X"}}),
            Some("default is only used with map"),
        ),
        (
            json!({"issueType": {"subIssueType": "General"}}),
            Some("subIssueType needs a default issue type"),
        ),
        (
            json!({"issueType": {"default": "SaaS Alerts", "subIssueType": "General"}}),
            None,
        ),
    ];
    for (ticket, want) in table {
        let errs = cel_errors::<PsaConnection>(connection(p.clone(), ticket.clone()));
        match want {
            None => assert!(errs.is_empty(), "{ticket}: {errs:?}"),
            Some(msg) => assert!(
                errs.iter().any(|e| e.contains(msg)),
                "{ticket}: want {msg}, got {errs:?}"
            ),
        }
    }
}

/// The CEL rule (the enum and length limits are schema checks, see the CRD).
#[test]
fn cel_checks_the_lifecycle() {
    let table = [
        (
            json!({"onResolve": "Close", "closedStatus": "Completed"}),
            None,
        ),
        (json!({"onResolve": "Note"}), None),
        (json!({}), None),
        (
            json!({"closedStatus": "Completed"}),
            Some("closedStatus is only used with onResolve: Close"),
        ),
        (
            json!({"onResolve": "Note", "closedStatus": "Completed"}),
            Some("closedStatus is only used with onResolve: Close"),
        ),
        (
            json!({"reopenWithin": "24h", "neverReopen": ["Closed - Won't fix"]}),
            None,
        ),
        (json!({"reopenWithin": "24h"}), None),
        (
            json!({"neverReopen": ["Closed - Won't fix"]}),
            Some("neverReopen is only used with reopenWithin"),
        ),
        (
            json!({"reopenWithin": "24h", "neverReopen": [""]}),
            Some("neverReopen names are 1 to 256 characters"),
        ),
    ];
    for (lifecycle, want) in table {
        let mut obj = connection(json!({"connectWise": cw_provider()}), json!({}));
        obj["spec"]["lifecycle"] = lifecycle.clone();
        let errs = cel_errors::<PsaConnection>(obj);
        match want {
            None => assert!(errs.is_empty(), "{lifecycle}: {errs:?}"),
            Some(msg) => assert!(
                errs.iter().any(|e| e.contains(msg)),
                "{lifecycle}: want {msg}, got {errs:?}"
            ),
        }
    }
}

#[test]
fn cel_rules_of_mappings() {
    let base = |company: Value, quantity: i64| {
        json!({"apiVersion": "psa-operator.io/v1alpha1", "kind": "CustomerMapping",
               "metadata": {"name": "m", "namespace": "psa"},
               "spec": {"connectionRef": {"name": "c"}, "organization": "Contoso Ltd", "company": company,
                        "contractService": {"serviceRef": {"name": "s"}, "quantity": quantity}}})
    };
    assert!(cel_errors::<CustomerMapping>(base(json!({"identifier": "CONTOSO"}), 42)).is_empty());
    let both = cel_errors::<CustomerMapping>(base(json!({"identifier": "A", "name": "B"}), 1));
    assert!(
        both.iter()
            .any(|e| e.contains("exactly one of identifier or name")),
        "{both:?}"
    );
    let neg = cel_errors::<CustomerMapping>(base(json!({"name": "Contoso"}), -1));
    assert!(
        neg.iter().any(|e| e.contains("quantity must be >= 0")),
        "{neg:?}"
    );
}

/// The reference YAML (the fixed user-facing shape) deserialises into our types and passes CEL.
#[test]
fn reference_yaml_round_trips() {
    let text = include_str!("../../tests/fixtures/api-v1alpha1.yaml");
    let mut kinds = vec![];
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        let kind = v["kind"].as_str().unwrap().to_string();
        let errs = match kind.as_str() {
            "PsaConnection" => {
                let c: PsaConnection = serde_json::from_value(v.clone()).unwrap();
                assert_eq!(c.spec.provider.kind_name(), "ConnectWise");
                // serde keeps every field the user wrote: nothing is silently dropped.
                assert_eq!(serde_json::to_value(&c.spec).unwrap(), v["spec"]);
                cel_errors::<PsaConnection>(v)
            }
            "CustomerMapping" => {
                let m: CustomerMapping = serde_json::from_value(v.clone()).unwrap();
                assert_eq!(serde_json::to_value(&m.spec).unwrap(), v["spec"]);
                cel_errors::<CustomerMapping>(v)
            }
            "ContractService" => {
                let s: ContractService = serde_json::from_value(v.clone()).unwrap();
                assert_eq!(s.spec.cost.to_minor(), Some(10_000));
                assert_eq!(serde_json::to_value(&s.spec).unwrap(), v["spec"]);
                cel_errors::<ContractService>(v)
            }
            other => panic!("unexpected kind {other}"),
        };
        assert!(errs.is_empty(), "{kind}: {errs:?}");
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        ["PsaConnection", "CustomerMapping", "ContractService"]
    );
}

/// Statuses are written by server-side apply from two field managers (the reconciler and the
/// dispatcher's counters): a field the writer does not know must be absent from its patch, not
/// `null`, or it would take the field from the other manager.
#[test]
fn statuses_leave_out_what_is_not_known() {
    let connection = PsaConnectionStatus {
        observed_generation: Some(3),
        provider: Some("ConnectWise".into()),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&connection).unwrap(),
        json!({"observedGeneration": 3, "provider": "ConnectWise"})
    );
    let mapping = CustomerMappingStatus {
        company_id: Some("19".into()),
        synced_quantity: Some(0),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&mapping).unwrap(),
        json!({"companyId": "19", "syncedQuantity": 0})
    );
    assert_eq!(
        serde_json::to_value(ContractServiceStatus::default()).unwrap(),
        json!({})
    );
    let counters = DispatchCounters {
        accepted: 2,
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&counters).unwrap(),
        json!({"accepted": 2, "pending": 0, "ticketsCreated": 0, "notesAdded": 0,
               "failsafeEmails": 0, "deadLetters": 0})
    );
}

/// Every string the intake bounds and a resource compares against has the same bound in the
/// schema, so a value that can never match is refused by the API server instead of reporting
/// Ready (a 300-character organization).
#[test]
fn schema_limits_match_the_intake() {
    use crate::dispatch::decide::render::TEMPLATE_SOURCE_LIMIT;
    use crate::dispatch::intake::alerts::MAX_NAME;
    let mapping = schema_of::<CustomerMapping>();
    let conn = schema_of::<PsaConnection>();
    let spec = |s: &Value| s["properties"]["spec"]["properties"].clone();
    let ticket = spec(&conn)["ticket"]["properties"].clone();
    let labels = spec(&conn)["alertmanager"]["properties"].clone();
    let cases = [
        (spec(&mapping)["organization"].clone(), MAX_NAME),
        (
            ticket["issueType"]["properties"]["overrides"]["items"]["properties"]["alertType"]
                .clone(),
            MAX_NAME,
        ),
        (ticket["summaryTemplate"].clone(), TEMPLATE_SOURCE_LIMIT),
        (labels["organizationLabel"].clone(), MAX_NAME),
        (labels["userLabel"].clone(), MAX_NAME),
        (labels["alertTypeLabel"].clone(), MAX_NAME),
        (labels["severityLabel"].clone(), MAX_NAME),
    ];
    for (field, max) in cases {
        assert_eq!(field["maxLength"], json!(max), "{field}");
    }
}

#[test]
fn cel_rules_of_sources() {
    let with_sources = |sources: Value| {
        let mut c = connection(json!({"connectWise": cw_provider()}), json!({}));
        c["spec"]["sources"] = sources;
        cel_errors::<PsaConnection>(c)
    };
    let source = |name: &str, signature: Value| {
        json!({"name": name, "organization": "payload.org", "alertType": "payload.type",
               "signature": signature})
    };
    let hmac = json!({"hmacSha256": {"header": "X-Signature", "secretRef": {"name": "s"}}});
    let svix = json!({"svix": {"secretRef": {"name": "s"}, "tolerance": "5m"}});
    assert!(with_sources(json!([
        source("a", hmac.clone()),
        source("b", svix.clone())
    ]))
    .is_empty());
    let dup = with_sources(json!([
        source("a", hmac.clone()),
        source("a", svix.clone())
    ]));
    assert!(
        dup.iter()
            .any(|e| e.contains("source names must be unique")),
        "{dup:?}"
    );
    let both = json!({"hmacSha256": hmac["hmacSha256"], "svix": svix["svix"]});
    let errs = with_sources(json!([source("a", both)]));
    assert!(
        errs.iter()
            .any(|e| e.contains("exactly one signature scheme")),
        "{errs:?}"
    );
    let errs = with_sources(json!([source("a", json!({}))]));
    assert!(
        errs.iter()
            .any(|e| e.contains("exactly one signature scheme")),
        "{errs:?}"
    );
}

/// The CEL rules of routes and per-customer ticket overrides.
#[test]
fn cel_rules_of_routes_and_overrides() {
    let routes = [
        (
            json!({"match": {"severity": ["critical"]}, "priority": "P1"}),
            None,
        ),
        (
            json!({"match": {"alertType": ["Too Many Downloads"]}, "board": "Escalations", "type": "Incident"}),
            None,
        ),
        (
            json!({"match": {"severity": ["critical"]}}),
            Some("a route sets at least one of board, priority or type"),
        ),
        (
            json!({"match": {}, "priority": "P1"}),
            Some("a route matches on severity, alertType or both"),
        ),
        (
            json!({"match": {"severity": []}, "priority": "P1"}),
            Some("a route matches on severity, alertType or both"),
        ),
    ];
    for (route, want) in routes {
        let mut conn = connection(json!({"connectWise": cw_provider()}), json!({}));
        conn["spec"]["routes"] = json!([route.clone()]);
        let mut mapping = json!({"apiVersion": "psa-operator.io/v1alpha1", "kind": "CustomerMapping",
            "metadata": {"name": "m", "namespace": "psa"},
            "spec": {"connectionRef": {"name": "c"}, "organization": "Contoso Ltd",
                     "company": {"identifier": "CONTOSO"}}});
        mapping["spec"]["routes"] = json!([route.clone()]);
        for errs in [
            cel_errors::<PsaConnection>(conn),
            cel_errors::<CustomerMapping>(mapping),
        ] {
            match want {
                None => assert!(errs.is_empty(), "{route}: {errs:?}"),
                Some(msg) => assert!(
                    errs.iter().any(|e| e.contains(msg)),
                    "{route}: want {msg}, got {errs:?}"
                ),
            }
        }
    }
    let mapping = |ticket: Value| {
        json!({"apiVersion": "psa-operator.io/v1alpha1", "kind": "CustomerMapping",
            "metadata": {"name": "m", "namespace": "psa"},
            "spec": {"connectionRef": {"name": "c"}, "organization": "Contoso Ltd",
                     "company": {"identifier": "CONTOSO"}, "ticket": ticket}})
    };
    assert!(cel_errors::<CustomerMapping>(mapping(
        json!({"board": "Help Desk", "issueType": "Security", "subIssueType": "General"})
    ))
    .is_empty());
    let errs = cel_errors::<CustomerMapping>(mapping(json!({"subIssueType": "General"})));
    assert!(
        errs.iter()
            .any(|e| e.contains("subIssueType needs issueType")),
        "{errs:?}"
    );
}
