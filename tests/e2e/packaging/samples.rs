//! config/samples: every custom resource passes the CRD schema and CEL rules, reads back through
//! the Rust types unchanged, and every reference points at an object the samples define.

use kube::core::cel::Validator;
use kube::CustomResourceExt;
use psa_operator::api::{ContractService, CustomerMapping, PsaConnection};
use serde_json::Value;

use super::schema::violations;
use super::tools::{find, generated_crds, of_kind, repo, yaml_dir};

fn samples() -> Vec<Value> {
    yaml_dir(&repo().join("config/samples"))
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

/// `K`'s OpenAPI schema as the CRD files users apply hold it (crds/; `crds.rs` and the crate's
/// drift test keep them the generated ones).
fn schema_of<K: CustomResourceExt>() -> Value {
    let crd = generated_crds()
        .into_iter()
        .find(|c| c["metadata"]["name"] == K::crd_name())
        .unwrap_or_else(|| panic!("no CRD {} in crds/", K::crd_name()));
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Schema violations, CEL failures and fields the Rust type would drop, for one object.
fn problems<K>(obj: &Value) -> Vec<String>
where
    K: CustomResourceExt + serde::de::DeserializeOwned + serde::Serialize,
{
    let schema = schema_of::<K>();
    // apiVersion, kind and metadata are the API server's own, not part of the CRD's schema.
    let mut body = obj.clone();
    for key in ["apiVersion", "kind", "metadata"] {
        body.as_object_mut().unwrap().remove(key);
    }
    let mut out = violations(&schema, &body);
    if let Err(errs) = Validator::new().validate(&schema, obj, None) {
        out.extend(errs.iter().map(|e| format!("CEL: {e}")));
    }
    match serde_json::from_value::<K>(obj.clone()) {
        Ok(typed) => {
            let back = serde_json::to_value(&typed).unwrap();
            if back["spec"] != obj["spec"] {
                out.push(format!("spec does not round-trip: {}", back["spec"]));
            }
        }
        Err(e) => out.push(format!("does not deserialize: {e}")),
    }
    out
}

#[test]
fn samples_validate_against_the_crd_schemas() {
    let docs = samples();
    let mut counted = (0, 0, 0);
    for d in &docs {
        let name = format!("{}/{}", d["kind"].as_str().unwrap(), d["metadata"]["name"]);
        let errs = match d["kind"].as_str().unwrap() {
            "PsaConnection" => {
                counted.0 += 1;
                problems::<PsaConnection>(d)
            }
            "CustomerMapping" => {
                counted.1 += 1;
                problems::<CustomerMapping>(d)
            }
            "ContractService" => {
                counted.2 += 1;
                problems::<ContractService>(d)
            }
            "Secret" | "Namespace" => vec![],
            other => vec![format!("unexpected kind {other} in config/samples")],
        };
        assert!(errs.is_empty(), "{name}: {errs:#?}");
        if d["kind"] != "Namespace" {
            assert_eq!(
                d["metadata"]["namespace"], "psa",
                "{name} belongs in namespace psa"
            );
        }
    }
    assert_eq!(
        counted,
        (3, 2, 1),
        "three connections, two mappings, one service"
    );
    let providers: Vec<String> = of_kind(&docs, "PsaConnection")
        .iter()
        .map(|c| {
            let typed: PsaConnection = serde_json::from_value((*c).clone()).unwrap();
            typed.spec.provider.kind_name().to_string()
        })
        .collect();
    assert_eq!(providers, ["Autotask", "ConnectWise", "KaseyaBMS"]);
}

/// The keys the operator reads from a referenced Secret.
fn assert_secret_keys(docs: &[Value], name: &Value, keys: &[&str], why: &str) {
    let secret = find(docs, "Secret", name.as_str().expect("secret name"));
    for key in keys {
        assert!(
            secret["stringData"].get(key).is_some() || secret["data"].get(key).is_some(),
            "Secret {name} ({why}) lacks key {key}"
        );
    }
}

#[test]
fn sample_references_resolve_within_the_samples() {
    let docs = samples();
    find(&docs, "Namespace", "psa");
    for c in of_kind(&docs, "PsaConnection") {
        let spec = &c["spec"];
        if let Some(cw) = spec["provider"].get("connectWise") {
            let keys = ["publicKey", "privateKey"];
            assert_secret_keys(
                &docs,
                &cw["credentialsSecretRef"]["name"],
                &keys,
                "ConnectWise",
            );
        }
        if let Some(bms) = spec["provider"].get("kaseyaBms") {
            let keys = ["username", "password"];
            assert_secret_keys(
                &docs,
                &bms["credentialsSecretRef"]["name"],
                &keys,
                "Kaseya BMS",
            );
        }
        if let Some(at) = spec["provider"].get("autotask") {
            let keys = ["secret", "integrationCode"];
            assert_secret_keys(
                &docs,
                &at["credentialsSecretRef"]["name"],
                &keys,
                "Autotask",
            );
        }
        let token = &spec["intake"]["tokenSecretRef"]["name"];
        assert_secret_keys(&docs, token, &["token"], "intake");
        let smtp = &spec["failsafe"]["smtpSecretRef"]["name"];
        assert_secret_keys(&docs, smtp, &["host", "port", "from"], "SMTP");
    }
    for kind in ["CustomerMapping", "ContractService"] {
        for obj in of_kind(&docs, kind) {
            let conn = obj["spec"]["connectionRef"]["name"].as_str().unwrap();
            find(&docs, "PsaConnection", conn);
        }
    }
    for m in of_kind(&docs, "CustomerMapping") {
        if let Some(line) = m["spec"].get("contractService") {
            let svc = find(
                &docs,
                "ContractService",
                line["serviceRef"]["name"].as_str().unwrap(),
            );
            assert_eq!(
                svc["spec"]["connectionRef"], m["spec"]["connectionRef"],
                "a contract line uses a service of the same connection"
            );
        }
    }
}

#[test]
fn a_broken_sample_is_caught() {
    // The checks above must be able to fail: a typo, a float price and two providers.
    let docs = samples();
    let mut conn = find(&docs, "PsaConnection", "demo-cw").clone();
    conn["spec"]["provider"]["kaseyaBms"] = serde_json::json!({"url": "http://127.0.0.1:8082", "tenant": "t", "credentialsSecretRef": {"name": "x"}});
    conn["spec"]["grouppping"] = Value::from("User");
    let errs = problems::<PsaConnection>(&conn);
    assert!(
        errs.iter().any(|e| e.contains("grouppping: unknown field")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("exactly one provider")),
        "{errs:#?}"
    );
    let mut svc = find(&docs, "ContractService", "saas-alerts-monitoring").clone();
    svc["spec"]["price"] = serde_json::json!(3.5);
    assert!(!problems::<ContractService>(&svc).is_empty());
}
