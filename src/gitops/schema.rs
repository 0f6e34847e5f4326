//! Per-object checks of our three kinds: apiVersion and kind, metadata.name, then the CRD's
//! structural schema and CEL rules through the devcluster's validator — the same code that
//! admits these objects into the embedded API server, so `validate` and `kubectl apply` against
//! `dev` reject the same things.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::api::{crdgen::all_crds, GROUP, VERSION};
use crate::devcluster::validation::{check_cel, check_structure, prune};

use super::diagnostic::Diagnostic;
use super::yaml_docs::Document;

/// Our kinds, as written in `kind:`.
pub const KINDS: [&str; 3] = ["PsaConnection", "CustomerMapping", "ContractService"];

/// kind → the CRD's OpenAPI v3 schema as JSON.
fn schemas() -> &'static HashMap<String, Value> {
    static SCHEMAS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        all_crds()
            .into_iter()
            .filter_map(|crd| {
                let kind = crd.spec.names.kind.clone();
                let schema = crd
                    .spec
                    .versions
                    .into_iter()
                    .find(|v| v.name == VERSION)?
                    .schema?
                    .open_api_v3_schema?;
                Some((kind, serde_json::to_value(schema).ok()?))
            })
            .collect()
    })
}

/// Whether the object belongs to our API group (any version).
pub fn is_ours(doc: &Document) -> bool {
    doc.api_version().split('/').next() == Some(GROUP)
}

/// Checks one object of our group. Empty = the API server would admit it.
pub fn check_object(doc: &Document) -> Vec<Diagnostic> {
    let mut out = vec![];
    let want_api = format!("{GROUP}/{VERSION}");
    if doc.api_version() != want_api {
        out.push(Diagnostic::at(
            doc,
            "apiVersion",
            "UnknownVersion",
            format!("{:?} is not served; use {want_api}", doc.api_version()),
        ));
        return out;
    }
    let Some(schema) = schemas().get(doc.kind()) else {
        out.push(Diagnostic::at(
            doc,
            "kind",
            "UnknownKind",
            format!(
                "{:?} is not a kind of {GROUP} (known: {})",
                doc.kind(),
                KINDS.join(", ")
            ),
        ));
        return out;
    };
    out.extend(check_name(doc));
    if doc.value.get("spec").is_none() {
        out.push(Diagnostic::at(
            doc,
            "spec",
            "FieldValueRequired",
            "Required value",
        ));
        return out;
    }
    let mut pruned = doc.value.clone();
    for field in prune(schema, &mut pruned) {
        out.push(Diagnostic::at(
            doc,
            &field,
            "FieldUnknown",
            "unknown field (the API server would drop it, or reject it with strict field validation)",
        ));
    }
    let mut causes = check_structure(schema, &pruned);
    // CEL rules assume a structurally valid object; the API server evaluates them only then.
    if causes.is_empty() {
        causes = check_cel(schema, &pruned, None);
    }
    out.extend(
        causes
            .into_iter()
            .map(|c| Diagnostic::at(doc, &c.field, c.reason, c.message)),
    );
    out
}

/// `metadata.name` must be a DNS subdomain (lower-case alphanumerics, `-` and `.`).
fn check_name(doc: &Document) -> Option<Diagnostic> {
    let name = doc.name();
    let problem = if name.is_empty() {
        Some(("FieldValueRequired", "name is required".to_string()))
    } else if !is_dns_subdomain(name) {
        Some((
            "FieldValueInvalid",
            format!(
                "{name:?} is not a valid name: lower-case letters, digits, '-' and '.', starting \
                 and ending with a letter or digit, at most 253 characters"
            ),
        ))
    } else {
        None
    };
    problem.map(|(reason, msg)| Diagnostic::at(doc, "metadata.name", reason, msg))
}

/// RFC 1123 subdomain, as the API server checks object names.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::yaml_docs::{parse_documents, Source};

    fn check(text: &str) -> Vec<String> {
        let docs = parse_documents(&Source {
            name: "t.yaml".into(),
            text: text.into(),
        })
        .unwrap();
        check_object(&docs[0])
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    const HEAD: &str =
        "apiVersion: psa-operator.io/v1alpha1\nkind: ContractService\nmetadata:\n  name: svc\n";

    #[test]
    fn a_valid_service_passes() {
        let ok = format!("{HEAD}spec:\n  connectionRef: {{name: c}}\n  name: S\n  cost: \"1.00\"\n  price: \"3\"\n");
        assert_eq!(check(&ok), Vec::<String>::new());
    }

    #[test]
    fn structural_problems_point_at_their_line() {
        let bad = format!(
            "{HEAD}spec:\n  connectionRef: {{name: c}}\n  name: S\n  cost: \"1.234567\"\n  price: 3\n  deletionPolicy: Keep\n  colour: red\n"
        );
        let got = check(&bad);
        assert!(got.contains(&"t.yaml:11: ContractService/svc: spec.colour: unknown field (the API server would drop it, or reject it with strict field validation)".to_string()), "{got:#?}");
        assert!(
            got.iter().any(|d| d.starts_with(
                "t.yaml:8: ContractService/svc: spec.cost: Invalid value: \"1.234567\""
            )),
            "{got:#?}"
        );
        assert!(
            got.iter().any(|d| d.starts_with(
                "t.yaml:9: ContractService/svc: spec.price: Invalid value: \"integer\""
            )),
            "{got:#?}"
        );
        assert!(
            got.iter().any(|d| d.starts_with(
                "t.yaml:10: ContractService/svc: spec.deletionPolicy: Unsupported value: \"Keep\""
            )),
            "{got:#?}"
        );
    }

    #[test]
    fn cel_rules_and_names() {
        let text = "apiVersion: psa-operator.io/v1alpha1\nkind: CustomerMapping\nmetadata:\n  name: Bad_Name\nspec:\n  connectionRef: {name: c}\n  organization: Org\n  company: {identifier: A, name: B}\n";
        let got = check(text);
        assert!(got.contains(&"t.yaml:4: CustomerMapping/Bad_Name: metadata.name: \"Bad_Name\" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters".to_string()), "{got:#?}");
        assert!(
            got.iter().any(
                |d| d.starts_with("t.yaml:8: CustomerMapping/Bad_Name: spec.company: ")
                    && d.contains("set exactly one of identifier or name")
            ),
            "{got:#?}"
        );
    }

    #[test]
    fn unknown_kind_and_version() {
        let got = check(
            "apiVersion: psa-operator.io/v1\nkind: PsaConnection\nmetadata: {name: a}\nspec: {}\n",
        );
        assert_eq!(got, ["t.yaml:1: PsaConnection/a: apiVersion: \"psa-operator.io/v1\" is not served; use psa-operator.io/v1alpha1"]);
        let got =
            check("apiVersion: psa-operator.io/v1alpha1\nkind: Ticket\nmetadata: {name: a}\n");
        assert!(
            got[0].starts_with("t.yaml:2: Ticket/a: kind: \"Ticket\" is not a kind"),
            "{got:?}"
        );
    }

    #[test]
    fn dns_names() {
        for ok in ["a", "demo-cw", "a.b-c", "x1"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a_b"] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }
}
