//! config/samples names only what the sandboxes' demo data holds (src/sandbox/*/demo-seed.yaml),
//! so that `kubectl apply -f config/samples/` under `psa-operator dev` can become Ready. Read
//! from the seed YAML itself, not through the sandbox's types.

use serde_json::Value;

use super::tools::{find, repo, yaml_dir, yaml_docs};

fn seed(flavor: &str) -> Value {
    let path = repo().join(format!("src/sandbox/{flavor}/demo-seed.yaml"));
    yaml_docs(&std::fs::read_to_string(path).expect("demo seed")).remove(0)
}

fn samples() -> Vec<Value> {
    yaml_dir(&repo().join("config/samples"))
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

/// Names in a seed list whose entries are strings or objects with `name`.
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().or(v["name"].as_str()).map(String::from))
        .collect()
}

fn contact_matches(contact: &Value, by: &str) -> bool {
    let full = format!(
        "{} {}",
        contact["firstName"].as_str().unwrap_or(""),
        contact["lastName"].as_str().unwrap_or("")
    );
    full == by || contact["email"] == by
}

/// A company / account by name or identifier (`code` in BMS).
fn company<'a>(companies: &'a Value, by: &str) -> &'a Value {
    companies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == by || c["identifier"] == by || c["code"] == by)
        .unwrap_or_else(|| panic!("no company {by:?} in the demo seed"))
}

fn assert_contact(company: &Value, by: &str) {
    let contacts = company["contacts"].as_array().unwrap();
    assert!(
        contacts.iter().any(|c| contact_matches(c, by)),
        "no contact {by:?} in {}",
        company["name"]
    );
}

fn assert_in(value: &Value, allowed: &[String], what: &str) {
    let v = value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {value} is not a string"));
    assert!(
        allowed.iter().any(|a| a == v),
        "{what} {v:?} is not one of {allowed:?}"
    );
}

/// Every PSA value a `{value}` or `{map, default}` setting can produce.
fn mapped_values(setting: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = setting["map"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, v)| v.clone())
        .collect();
    for key in ["value", "default"] {
        if !setting[key].is_null() {
            out.push(setting[key].clone());
        }
    }
    out
}

/// Every value the ticket's `{value}` / `{map, default}` settings can produce is one of the
/// names the seed allows: (setting, allowed names, what the message calls it).
fn assert_mapped_in(ticket: &Value, settings: [(&str, Vec<String>, &str); 4]) {
    for (setting, allowed, what) in settings {
        for v in mapped_values(&ticket[setting]) {
            assert_in(&v, &allowed, what);
        }
    }
}

/// The catch-all names a company of the seed and one of its contacts.
fn assert_catch_all(companies: &Value, conn: &Value) {
    let catch_all = company(companies, conn["catchAll"]["company"].as_str().unwrap());
    assert_contact(catch_all, conn["catchAll"]["contact"].as_str().unwrap());
}

/// `closedStatus` names a status the seed marks closed.
fn assert_closed_status(statuses: &Value, ticket: &Value) {
    let closed = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == ticket["closedStatus"]);
    assert!(
        closed.is_some_and(|s| s["closed"] == true),
        "closedStatus must be a closed status"
    );
}

/// The ticket's per-alert-type issue type overrides.
fn overrides(ticket: &Value) -> impl Iterator<Item = &Value> {
    ticket["issueType"]["overrides"]
        .as_array()
        .into_iter()
        .flatten()
}

fn secret_value<'a>(docs: &'a [Value], name: &Value, key: &str) -> &'a Value {
    &find(docs, "Secret", name.as_str().unwrap())["stringData"][key]
}

#[test]
fn connectwise_sample_matches_the_connectwise_demo_seed() {
    let seed = seed("connectwise");
    let docs = samples();
    let conn = &find(&docs, "PsaConnection", "demo-cw")["spec"];
    let cw = &conn["provider"]["connectWise"];
    assert_eq!(cw["companyId"], seed["companyId"]);
    assert!(seed["clientIds"]
        .as_array()
        .unwrap()
        .contains(&cw["clientId"]));
    let creds = &cw["credentialsSecretRef"]["name"];
    assert_eq!(secret_value(&docs, creds, "publicKey"), &seed["publicKey"]);
    assert_eq!(
        secret_value(&docs, creds, "privateKey"),
        &seed["privateKey"]
    );
    assert_catch_all(&seed["companies"], conn);
    let ticket = &conn["ticket"];
    let board = seed["boards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == ticket["board"])
        .expect("board in the seed");
    assert_mapped_in(
        ticket,
        [
            ("status", names(&board["statuses"]), "status"),
            ("type", names(&board["types"]), "type"),
            ("priority", names(&seed["priorities"]), "priority"),
            ("source", names(&seed["sources"]), "source"),
        ],
    );
    // ConnectWise: the issue type is the board's subtype.
    let subtypes = names(&board["subtypes"]);
    assert_in(&ticket["issueType"]["default"], &subtypes, "subtype");
    for o in overrides(ticket) {
        assert_in(&o["issueType"], &subtypes, "subtype override");
    }
    assert_closed_status(&board["statuses"], ticket);

    for m in docs.iter().filter(|d| {
        d["kind"] == "CustomerMapping" && d["spec"]["connectionRef"]["name"] == "demo-cw"
    }) {
        let spec = &m["spec"];
        let by = spec["company"]["identifier"]
            .as_str()
            .or(spec["company"]["name"].as_str())
            .unwrap();
        let c = company(&seed["companies"], by);
        assert_eq!(
            c["name"], spec["organization"],
            "alerts name the organization as the PSA does"
        );
        let contact = &spec["defaultContact"];
        assert_contact(
            c,
            contact["email"]
                .as_str()
                .or(contact["name"].as_str())
                .unwrap(),
        );
        if let Some(contract) = spec["contract"]["name"].as_str() {
            assert!(
                names(&c["agreements"]).iter().any(|a| a == contract),
                "agreement {contract}"
            );
        }
    }
}

#[test]
fn kaseya_bms_sample_matches_the_bms_demo_seed() {
    let seed = seed("bms");
    let docs = samples();
    let conn = &find(&docs, "PsaConnection", "demo-bms")["spec"];
    let bms = &conn["provider"]["kaseyaBms"];
    assert_eq!(bms["tenant"], seed["tenant"]);
    let creds = &bms["credentialsSecretRef"]["name"];
    let user = secret_value(&docs, creds, "username");
    let password = secret_value(&docs, creds, "password");
    let users = seed["users"].as_array().unwrap();
    assert!(users
        .iter()
        .any(|u| &u["userName"] == user && &u["password"] == password));
    assert_catch_all(&seed["accounts"], conn);
    let ticket = &conn["ticket"];
    assert_in(&ticket["board"], &names(&seed["queues"]), "queue");
    assert_mapped_in(
        ticket,
        [
            ("status", names(&seed["statuses"]), "status"),
            ("type", names(&seed["ticketTypes"]), "ticket type"),
            ("priority", names(&seed["priorities"]), "priority"),
            ("source", names(&seed["sources"]), "source"),
        ],
    );
    let issue_types = seed["issueTypes"].as_array().unwrap();
    let check_combo = |issue: &Value, sub: &Value| {
        let it = issue_types
            .iter()
            .find(|t| t["name"] == *issue)
            .unwrap_or_else(|| panic!("issue type {issue}"));
        if !sub.is_null() {
            assert_in(sub, &names(&it["subIssueTypes"]), "sub-issue type");
        }
    };
    check_combo(
        &ticket["issueType"]["default"],
        &ticket["issueType"]["subIssueType"],
    );
    for o in overrides(ticket) {
        check_combo(&o["issueType"], &o["subIssueType"]);
    }
    assert_closed_status(&seed["statuses"], ticket);
    // ByCompanyName: the organizations of the demo alerts are account names.
    assert_eq!(conn["accountMapping"], "ByCompanyName");
    for org in ["Contoso Ltd", "Fabrikam Inc"] {
        company(&seed["accounts"], org);
    }
}
