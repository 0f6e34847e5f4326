//! The API member's security role as the sandbox models it: every right granted (level `All`)
//! unless `POST /_sandbox/roles` denies it. A call needing a denied right answers ConnectWise's
//! 403 `{"code":"Security"}`; `GET /system/mysecurity` lists the levels.
//!
//! Rights are written `Module/Function/Level`, e.g. `Service Desk/Close Service Tickets/Edit`,
//! with the names of ConnectWise's Security Modules for Role screen (case ignored).

use std::collections::BTreeSet;

use axum::http::Method;
use serde_json::{json, Value};

/// Module functions the sandbox knows, as (module, function).
const FUNCTIONS: &[(&str, &str)] = &[
    ("Companies", "Company Maintenance"),
    ("Companies", "Contacts"),
    ("Service Desk", "Service Tickets"),
    ("Service Desk", "Close Service Tickets"),
    ("Service Desk", "Service Ticket - Dependencies"),
    ("System", "Table Setup"),
    ("Finance", "Agreements"),
    ("Procurement", "Product Catalog"),
];

const LEVELS: &[&str] = &["Add", "Edit", "Delete", "Inquire"];

/// Closing a ticket (setting a closed status) needs this besides Service Tickets edit.
pub const CLOSE_TICKETS: &str = "Service Desk/Close Service Tickets/Edit";

/// The canonical spelling of a right, or why it is not one.
pub fn canonical(right: &str) -> Result<String, String> {
    let parts: Vec<&str> = right.split('/').map(str::trim).collect();
    let [module, function, level] = parts.as_slice() else {
        return Err(format!(
            "{right:?} is not Module/Function/Level, e.g. \"{CLOSE_TICKETS}\""
        ));
    };
    let (m, f) = FUNCTIONS
        .iter()
        .find(|(m, f)| m.eq_ignore_ascii_case(module) && f.eq_ignore_ascii_case(function))
        .ok_or_else(|| {
            let known: Vec<String> = FUNCTIONS.iter().map(|(m, f)| format!("{m}/{f}")).collect();
            format!(
                "{module}/{function} is not a module function the sandbox knows ({})",
                known.join(", ")
            )
        })?;
    let l = LEVELS
        .iter()
        .find(|l| l.eq_ignore_ascii_case(level))
        .ok_or_else(|| format!("{level} is not one of {}", LEVELS.join(", ")))?;
    Ok(format!("{m}/{f}/{l}"))
}

/// The right a call needs (`path` relative to the API base), as ConnectWise checks it.
pub fn needed(method: &Method, path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && s.parse::<i64>().is_err())
        .collect();
    let get = method == Method::GET;
    Some(match segs.as_slice() {
        ["company", "contacts", ..] => "Companies/Contacts/Inquire",
        ["company", ..] => "Companies/Company Maintenance/Inquire",
        ["service", "boards", ..] | ["service", "priorities", ..] | ["service", "sources", ..] => {
            "System/Table Setup/Inquire"
        }
        ["service", "tickets", ..] if get => "Service Desk/Service Tickets/Inquire",
        ["service", "tickets"] if method == Method::POST => "Service Desk/Service Tickets/Add",
        ["service", "tickets", ..] => "Service Desk/Service Tickets/Edit",
        ["finance", "agreements", ..] if get => "Finance/Agreements/Inquire",
        ["finance", "agreements", ..] => "Finance/Agreements/Edit",
        ["procurement", "catalog", ..] => match *method {
            Method::GET => "Procurement/Product Catalog/Inquire",
            Method::POST => "Procurement/Product Catalog/Add",
            Method::DELETE => "Procurement/Product Catalog/Delete",
            _ => "Procurement/Product Catalog/Edit",
        },
        ["procurement", ..] => "System/Table Setup/Inquire",
        _ => return None,
    })
}

/// `GET /system/mysecurity`: one record per module function with its four levels.
pub fn my_security(denied: &BTreeSet<String>) -> Vec<Value> {
    FUNCTIONS
        .iter()
        .enumerate()
        .map(|(i, (m, f))| {
            let level = |l: &str| {
                if denied.contains(&format!("{m}/{f}/{l}")) {
                    "None"
                } else {
                    "All"
                }
            };
            json!({
                "id": i + 1, "moduleName": m, "moduleIdentifier": m.replace(' ', ""),
                "moduleFunctionName": f, "moduleFunctionIdentifier": f.replace([' ', '-'], ""),
                "addLevel": level("Add"), "editLevel": level("Edit"),
                "deleteLevel": level("Delete"), "inquireLevel": level("Inquire"),
                "myAllFlag": true, "sortOrder": i + 1,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_are_checked_and_spelled_canonically() {
        assert_eq!(
            canonical(" service desk / close service tickets / edit ").unwrap(),
            CLOSE_TICKETS
        );
        assert!(canonical("Service Desk/Close Service Tickets")
            .unwrap_err()
            .contains("Module/Function/Level"));
        assert!(canonical("Service Desk/Nope/Edit")
            .unwrap_err()
            .contains("not a module function"));
        assert!(canonical("System/Table Setup/Own")
            .unwrap_err()
            .contains("Add, Edit, Delete, Inquire"));
        assert_eq!(
            needed(&Method::POST, "/service/tickets/7/notes"),
            Some("Service Desk/Service Tickets/Edit")
        );
        assert_eq!(needed(&Method::GET, "/system/mysecurity"), None);
        let denied = BTreeSet::from([CLOSE_TICKETS.to_string()]);
        let rows = my_security(&denied);
        let close = rows
            .iter()
            .find(|r| r["moduleFunctionName"] == "Close Service Tickets")
            .unwrap();
        assert_eq!(
            (close["editLevel"].as_str(), close["inquireLevel"].as_str()),
            (Some("None"), Some("All"))
        );
    }
}
