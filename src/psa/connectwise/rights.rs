//! Security-role rights of the ConnectWise API member: which right each call needs, which rights
//! each feature needs, and which of them the member's role lacks (pure functions).
//!
//! ConnectWise answers 403 `{"code":"Security"}` when the API member's security role lacks a
//! right; the role is edited under System › Security Roles, one row per module function with
//! Add/Edit/Delete/Inquire levels (`All`, `Mine`, `None`, …). The rights of the second seed's
//! role table are the ticket features; contracts and the catalog need Finance › Agreements and
//! Procurement › Product Catalog.
//!
//! `GET /system/mysecurity` lists the calling member's own levels (one record per module
//! function: `moduleName`, `moduleFunctionName`, `addLevel`, `editLevel`, `deleteLevel`,
//! `inquireLevel`), which lets a connection check its rights without writing anything.

use std::fmt;

use reqwest::Method;
use serde::Deserialize;

use crate::psa::Feature;

/// A column of the security-role table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Add,
    Edit,
    Delete,
    Inquire,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Add => "Add",
            Level::Edit => "Edit",
            Level::Delete => "Delete",
            Level::Inquire => "Inquire",
        }
    }
}

/// One right: module › function › level, as the Security Modules for Role screen names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Right {
    pub module: &'static str,
    pub function: &'static str,
    pub level: Level,
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} › {} › {} level",
            self.module,
            self.function,
            self.level.as_str()
        )
    }
}

const fn right(module: &'static str, function: &'static str, level: Level) -> Right {
    Right {
        module,
        function,
        level,
    }
}

pub const COMPANY_INQUIRE: Right = right("Companies", "Company Maintenance", Level::Inquire);
pub const CONTACTS_INQUIRE: Right = right("Companies", "Contacts", Level::Inquire);
pub const TICKETS_ADD: Right = right("Service Desk", "Service Tickets", Level::Add);
pub const TICKETS_EDIT: Right = right("Service Desk", "Service Tickets", Level::Edit);
pub const TICKETS_INQUIRE: Right = right("Service Desk", "Service Tickets", Level::Inquire);
pub const CLOSE_EDIT: Right = right("Service Desk", "Close Service Tickets", Level::Edit);
pub const CLOSE_INQUIRE: Right = right("Service Desk", "Close Service Tickets", Level::Inquire);
pub const DEPENDENCIES_ADD: Right =
    right("Service Desk", "Service Ticket - Dependencies", Level::Add);
pub const DEPENDENCIES_EDIT: Right =
    right("Service Desk", "Service Ticket - Dependencies", Level::Edit);
pub const DEPENDENCIES_INQUIRE: Right = right(
    "Service Desk",
    "Service Ticket - Dependencies",
    Level::Inquire,
);
/// Service Board, Priority, Source, Severity, Company Status and the procurement lookups.
pub const TABLE_SETUP_INQUIRE: Right = right("System", "Table Setup", Level::Inquire);
pub const AGREEMENTS_INQUIRE: Right = right("Finance", "Agreements", Level::Inquire);
pub const AGREEMENTS_EDIT: Right = right("Finance", "Agreements", Level::Edit);
pub const CATALOG_INQUIRE: Right = right("Procurement", "Product Catalog", Level::Inquire);
pub const CATALOG_ADD: Right = right("Procurement", "Product Catalog", Level::Add);
pub const CATALOG_EDIT: Right = right("Procurement", "Product Catalog", Level::Edit);
pub const CATALOG_DELETE: Right = right("Procurement", "Product Catalog", Level::Delete);

/// The rights a feature needs (the seed's role table for tickets, ours for the rest).
pub fn rights_of(feature: Feature) -> &'static [Right] {
    match feature {
        Feature::Tickets => &[
            COMPANY_INQUIRE,
            TICKETS_ADD,
            TICKETS_EDIT,
            TICKETS_INQUIRE,
            DEPENDENCIES_ADD,
            DEPENDENCIES_EDIT,
            DEPENDENCIES_INQUIRE,
            TABLE_SETUP_INQUIRE,
        ],
        Feature::CloseTickets => &[CLOSE_EDIT, CLOSE_INQUIRE],
        Feature::Contracts => &[AGREEMENTS_INQUIRE, AGREEMENTS_EDIT],
        Feature::Catalog => &[
            CATALOG_INQUIRE,
            CATALOG_ADD,
            CATALOG_EDIT,
            CATALOG_DELETE,
            TABLE_SETUP_INQUIRE,
        ],
    }
}

/// The right a call needs, from its method and its path under the API base (ids anywhere in
/// the path are ignored). `None` for calls no role restricts (`/system/info`, `mysecurity`).
pub fn right_for(method: &Method, path: &str) -> Option<Right> {
    let path = path.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && s.parse::<i64>().is_err())
        .collect();
    let read = *method == Method::GET;
    match segments.as_slice() {
        ["company", "contacts", ..] => Some(CONTACTS_INQUIRE),
        ["company", ..] => Some(COMPANY_INQUIRE),
        ["service", "boards", ..] | ["service", "priorities", ..] | ["service", "sources", ..] => {
            Some(TABLE_SETUP_INQUIRE)
        }
        ["service", "tickets", ..] if read => Some(TICKETS_INQUIRE),
        ["service", "tickets"] if *method == Method::POST => Some(TICKETS_ADD),
        ["service", "tickets", ..] => Some(TICKETS_EDIT),
        ["finance", "agreements", ..] if read => Some(AGREEMENTS_INQUIRE),
        ["finance", "agreements", ..] => Some(AGREEMENTS_EDIT),
        ["procurement", "catalog", ..] => Some(match *method {
            Method::GET => CATALOG_INQUIRE,
            Method::POST => CATALOG_ADD,
            Method::DELETE => CATALOG_DELETE,
            _ => CATALOG_EDIT,
        }),
        ["procurement", ..] => Some(TABLE_SETUP_INQUIRE),
        _ => None,
    }
}

/// One record of `GET /system/mysecurity`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MySecurity {
    pub module_name: Option<String>,
    pub module_function_name: Option<String>,
    pub add_level: Option<String>,
    pub edit_level: Option<String>,
    pub delete_level: Option<String>,
    pub inquire_level: Option<String>,
}

impl MySecurity {
    fn is(&self, r: &Right) -> bool {
        let same = |a: &Option<String>, b: &str| {
            a.as_deref().is_some_and(|a| normalise(a) == normalise(b))
        };
        same(&self.module_name, r.module) && same(&self.module_function_name, r.function)
    }

    fn level(&self, l: Level) -> Option<&str> {
        match l {
            Level::Add => self.add_level.as_deref(),
            Level::Edit => self.edit_level.as_deref(),
            Level::Delete => self.delete_level.as_deref(),
            Level::Inquire => self.inquire_level.as_deref(),
        }
    }
}

/// Names compared without case and with any dash style ("Service Ticket – Dependencies").
fn normalise(s: &str) -> String {
    s.chars()
        .map(|c| if matches!(c, '–' | '—') { '-' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A right the member's role lacks, and the feature that needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRight {
    pub feature: Feature,
    pub right: Right,
}

/// The rights `features` need that `granted` shows at level `None`. A right whose module
/// function is not in the list at all is not reported: function names differ between
/// ConnectWise versions, and an unknown row must not block a connection that works.
pub fn missing_rights(features: &[Feature], granted: &[MySecurity]) -> Vec<MissingRight> {
    let mut out: Vec<MissingRight> = Vec::new();
    for &feature in features {
        for r in rights_of(feature) {
            if out.iter().any(|m| m.right == *r) {
                continue;
            }
            let Some(row) = granted.iter().find(|g| g.is(r)) else {
                continue;
            };
            let denied = row
                .level(r.level)
                .is_none_or(|l| l.trim().is_empty() || l.eq_ignore_ascii_case("none"));
            if denied {
                out.push(MissingRight { feature, right: *r });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_map_to_the_rights_connectwise_checks() {
        let table = [
            (Method::GET, "/company/companies", Some(COMPANY_INQUIRE)),
            (
                Method::GET,
                "/company/companies/19297",
                Some(COMPANY_INQUIRE),
            ),
            (Method::GET, "/company/contacts", Some(CONTACTS_INQUIRE)),
            (
                Method::GET,
                "/service/boards/1/statuses",
                Some(TABLE_SETUP_INQUIRE),
            ),
            (
                Method::GET,
                "/service/priorities",
                Some(TABLE_SETUP_INQUIRE),
            ),
            (Method::POST, "/service/tickets", Some(TICKETS_ADD)),
            (Method::GET, "/service/tickets/12", Some(TICKETS_INQUIRE)),
            (Method::PATCH, "/service/tickets/12", Some(TICKETS_EDIT)),
            (
                Method::POST,
                "/service/tickets/12/notes",
                Some(TICKETS_EDIT),
            ),
            (Method::GET, "/finance/agreements", Some(AGREEMENTS_INQUIRE)),
            (
                Method::POST,
                "/finance/agreements/3/additions",
                Some(AGREEMENTS_EDIT),
            ),
            (Method::POST, "/procurement/catalog", Some(CATALOG_ADD)),
            (
                Method::DELETE,
                "/procurement/catalog/5",
                Some(CATALOG_DELETE),
            ),
            (Method::PATCH, "/procurement/catalog/5", Some(CATALOG_EDIT)),
            (Method::GET, "/procurement/types", Some(TABLE_SETUP_INQUIRE)),
            (Method::GET, "/system/info", None),
            (Method::GET, "/system/mysecurity", None),
        ];
        for (m, path, want) in table {
            assert_eq!(right_for(&m, path), want, "{m} {path}");
        }
        assert_eq!(
            CLOSE_EDIT.to_string(),
            "Service Desk › Close Service Tickets › Edit level"
        );
    }

    fn row(module: &str, function: &str, add: &str, edit: &str, inquire: &str) -> MySecurity {
        MySecurity {
            module_name: Some(module.into()),
            module_function_name: Some(function.into()),
            add_level: Some(add.into()),
            edit_level: Some(edit.into()),
            delete_level: Some("None".into()),
            inquire_level: Some(inquire.into()),
        }
    }

    #[test]
    fn missing_rights_are_the_none_levels_of_known_rows() {
        // The seed's role with Close Service Tickets left at None.
        let granted = vec![
            row("Companies", "Company Maintenance", "None", "None", "All"),
            row("Service Desk", "Service Tickets", "All", "All", "All"),
            row(
                "Service Desk",
                "Close Service Tickets",
                "None",
                "None",
                "All",
            ),
            row(
                "Service Desk",
                "Service Ticket – Dependencies",
                "All",
                "All",
                "All",
            ),
            row("System", "Table Setup", "None", "None", "All"),
        ];
        let missing = missing_rights(&[Feature::Tickets, Feature::CloseTickets], &granted);
        assert_eq!(
            missing,
            vec![MissingRight {
                feature: Feature::CloseTickets,
                right: CLOSE_EDIT
            }]
        );
        // Rows ConnectWise does not list are not guessed at.
        assert!(missing_rights(&[Feature::Contracts], &granted).is_empty());
        // A role with nothing in Finance.
        let mut no_finance = granted.clone();
        no_finance.push(row("Finance", "Agreements", "None", "None", "None"));
        let m = missing_rights(&[Feature::Contracts], &no_finance);
        assert_eq!(
            m.iter().map(|m| m.right).collect::<Vec<_>>(),
            vec![AGREEMENTS_INQUIRE, AGREEMENTS_EDIT]
        );
        // Mine / MyCompany levels count as granted; a level left out counts as none.
        let mine = vec![MySecurity {
            edit_level: None,
            ..row("service desk", "close service tickets", "", "", "Mine")
        }];
        assert_eq!(
            missing_rights(&[Feature::CloseTickets], &mine)
                .iter()
                .map(|m| m.right)
                .collect::<Vec<_>>(),
            vec![CLOSE_EDIT]
        );
    }
}
