//! Seed file of the ConnectWise sandbox (YAML).
//!
//! ```yaml
//! companyId: demo                 # the login company id (Basic auth user prefix, companyinfo)
//! codebase: v4_6_release/         # optional, default v4_6_release/
//! publicKey: demo-public          # the API member's keys
//! privateKey: demo-private
//! clientIds:                      # accepted clientId header values; empty list = any non-empty value
//!   - 00000000-0000-0000-0000-000000000001
//! companies:                      # ids are assigned 1, 2, … in file order (per kind)
//!   - identifier: CONTOSO
//!     name: Contoso Ltd
//!     type: Client                # optional, default Client
//!     deleted: false              # optional
//!     contacts:
//!       - { firstName: Jane, lastName: Doe, email: jane@contoso.example }
//!     agreements:
//!       - { name: Managed Security, type: Managed Services, status: Active }   # type/status optional
//!       # Billing (all optional): start 2024-01-01, prorated, no next invoice date. Without
//!       # proration an addition must take effect on or after nextInvoiceDate (default: the
//!       # first of next month, monthly billing in advance).
//!       - { name: Backup, startDate: 2024-01-01, billStartDate: 2024-02-01, prorate: false, nextInvoiceDate: 2027-01-01 }
//! boards:
//!   - name: Security Alerts
//!     statuses:                   # in sort order; `default` = status of new tickets without one
//!       - { name: New, default: true }
//!       - { name: ">Closed", closed: true }
//!     types: [Alert, Incident]    # plain names, or { name, default, inactive }
//!     subtypes: [Identity]
//!     items: []
//!     associations:               # typeSubTypeItemAssociations (optional; none = no restriction)
//!       - { type: Alert, subType: Identity }      # item optional
//! priorities: [{ name: Priority 3 - Medium, default: true }, Priority 4 - Low]
//! sources: [SIEM]
//! procurement:                    # what catalog items need (type and subcategory)
//!   types: [{ name: Service, typeXref: Service }]
//!   subcategories: [Managed Services]
//! catalog:                        # optional existing catalog items
//!   - { identifier: Backup, description: Backup service, cost: 1.5, price: 4 }
//! ```

use serde::Deserialize;

/// The built-in demo data (`psa-operator sandbox --flavor connectwise` without `--seed`).
pub const DEMO_SEED_YAML: &str = include_str!("demo-seed.yaml");

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    pub company_id: String,
    #[serde(default = "default_codebase")]
    pub codebase: String,
    pub public_key: String,
    pub private_key: String,
    #[serde(default)]
    pub client_ids: Vec<String>,
    #[serde(default)]
    pub companies: Vec<SeedCompany>,
    #[serde(default)]
    pub boards: Vec<SeedBoard>,
    #[serde(default)]
    pub priorities: Vec<NameOr<SeedNamed>>,
    #[serde(default)]
    pub sources: Vec<NameOr<SeedNamed>>,
    #[serde(default)]
    pub procurement: SeedProcurement,
    #[serde(default)]
    pub catalog: Vec<SeedCatalogItem>,
}

fn default_codebase() -> String {
    "v4_6_release/".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCompany {
    pub identifier: String,
    pub name: String,
    #[serde(rename = "type")]
    pub company_type: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub contacts: Vec<SeedContact>,
    #[serde(default)]
    pub agreements: Vec<SeedAgreement>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedContact {
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    pub email: Option<String>,
    #[serde(default)]
    pub inactive: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAgreement {
    pub name: String,
    #[serde(rename = "type")]
    pub agreement_type: Option<String>,
    pub status: Option<String>,
    /// `yyyy-mm-dd`; default 2024-01-01.
    pub start_date: Option<String>,
    pub bill_start_date: Option<String>,
    /// Default true (any effective date on or after the start is accepted).
    pub prorate: Option<bool>,
    pub next_invoice_date: Option<String>,
}

/// An allowed type / subtype / item combination of a board, by names.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAssociation {
    #[serde(rename = "type")]
    pub type_: String,
    pub sub_type: Option<String>,
    pub item: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedBoard {
    pub name: String,
    #[serde(default)]
    pub inactive: bool,
    #[serde(default)]
    pub statuses: Vec<SeedStatus>,
    #[serde(default)]
    pub types: Vec<NameOr<SeedNamed>>,
    #[serde(default)]
    pub subtypes: Vec<NameOr<SeedNamed>>,
    #[serde(default)]
    pub items: Vec<NameOr<SeedNamed>>,
    #[serde(default)]
    pub associations: Vec<SeedAssociation>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedStatus {
    pub name: String,
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub inactive: bool,
}

/// A list entry given as a bare name or as an object.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum NameOr<T> {
    Name(String),
    Full(T),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedNamed {
    pub name: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub inactive: bool,
}

impl NameOr<SeedNamed> {
    pub fn named(&self) -> SeedNamed {
        match self {
            NameOr::Name(n) => SeedNamed {
                name: n.clone(),
                ..SeedNamed::default()
            },
            NameOr::Full(f) => f.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedProcurement {
    #[serde(default)]
    pub types: Vec<SeedProcurementType>,
    #[serde(default)]
    pub subcategories: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedProcurementType {
    pub name: String,
    #[serde(default = "service")]
    pub type_xref: String,
}

fn service() -> String {
    "Service".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCatalogItem {
    pub identifier: String,
    pub description: String,
    #[serde(default)]
    pub cost: f64,
    #[serde(default)]
    pub price: f64,
    #[serde(default)]
    pub inactive: bool,
}

/// Parses a seed and checks what YAML alone cannot (non-empty credentials, one default status).
pub fn parse(yaml: &str) -> Result<Seed, String> {
    let seed: Seed = serde_yaml::from_str(yaml).map_err(|e| format!("invalid seed: {e}"))?;
    if seed.company_id.trim().is_empty()
        || seed.public_key.is_empty()
        || seed.private_key.is_empty()
    {
        return Err("invalid seed: companyId, publicKey and privateKey must not be empty".into());
    }
    for b in &seed.boards {
        if b.statuses.iter().filter(|s| s.default).count() > 1 {
            return Err(format!(
                "invalid seed: board {:?} has more than one default status",
                b.name
            ));
        }
        check_associations(b)?;
    }
    for c in &seed.companies {
        for a in &c.agreements {
            for (field, date) in [
                ("startDate", &a.start_date),
                ("billStartDate", &a.bill_start_date),
                ("nextInvoiceDate", &a.next_invoice_date),
            ] {
                if let Some(d) = date {
                    chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                        format!(
                            "invalid seed: agreement {:?}: {field} {d:?} is not a date like 2024-01-01",
                            a.name
                        )
                    })?;
                }
            }
        }
    }
    Ok(seed)
}

/// Every name in a board's associations is a type, subtype or item of that board (a typo would
/// otherwise silently allow any subtype).
fn check_associations(b: &SeedBoard) -> Result<(), String> {
    let has = |list: &[NameOr<SeedNamed>], n: &str| {
        list.iter().any(|x| x.named().name.eq_ignore_ascii_case(n))
    };
    for a in &b.associations {
        let missing = [
            ("type", Some(&a.type_), &b.types),
            ("subType", a.sub_type.as_ref(), &b.subtypes),
            ("item", a.item.as_ref(), &b.items),
        ]
        .into_iter()
        .find_map(|(what, name, list)| name.filter(|n| !has(list, n)).map(|n| (what, n)));
        if let Some((what, name)) = missing {
            return Err(format!(
                "invalid seed: board {:?}: association {what} {name:?} is not one of the board's {what}s",
                b.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associations_and_billing_dates_are_checked() {
        let base = "companyId: d\npublicKey: p\nprivateKey: k\n";
        let board = |assoc: &str| {
            format!("{base}boards:\n  - name: B\n    types: [Alert]\n    subtypes: [Identity]\n    associations: [{assoc}]\n")
        };
        assert!(parse(&board("{ type: Alert, subType: Identity }")).is_ok());
        let e = parse(&board("{ type: Alert, subType: Identiy }")).unwrap_err();
        assert!(e.contains("subType \"Identiy\""), "{e}");
        let e = parse(&format!(
            "{base}companies:\n  - identifier: C\n    name: C\n    agreements: [{{ name: A, nextInvoiceDate: next month }}]\n"
        ))
        .unwrap_err();
        assert!(e.contains("nextInvoiceDate"), "{e}");
    }

    #[test]
    fn demo_seed_has_what_the_samples_rely_on() {
        let s = parse(DEMO_SEED_YAML).unwrap();
        assert_eq!(s.company_id, "demo");
        assert_eq!(
            (s.public_key.as_str(), s.private_key.as_str()),
            ("demo-public", "demo-private")
        );
        assert_eq!(s.client_ids, vec!["00000000-0000-0000-0000-000000000001"]);
        let ids: Vec<&str> = s.companies.iter().map(|c| c.identifier.as_str()).collect();
        assert_eq!(ids, vec!["DefaultCustomer", "CONTOSO", "FABRIKAM"]);
        let contoso = &s.companies[1];
        assert_eq!(contoso.name, "Contoso Ltd");
        assert_eq!(contoso.agreements[0].name, "Managed Security");
        let emails: Vec<_> = contoso
            .contacts
            .iter()
            .filter_map(|c| c.email.as_deref())
            .collect();
        assert_eq!(
            emails,
            vec!["alerts@contoso.example", "jane@contoso.example"]
        );
        let board = &s.boards[0];
        assert_eq!(board.name, "Security Alerts");
        let statuses: Vec<(&str, bool)> = board
            .statuses
            .iter()
            .map(|s| (s.name.as_str(), s.closed))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("New", false),
                ("In Progress", false),
                (">Closed", true),
                ("Completed", true)
            ]
        );
        let prios: Vec<String> = s.priorities.iter().map(|p| p.named().name).collect();
        assert_eq!(
            prios,
            vec![
                "Priority 1 - Critical",
                "Priority 2 - High",
                "Priority 3 - Medium",
                "Priority 4 - Low"
            ]
        );
        let sources: Vec<String> = s.sources.iter().map(|p| p.named().name).collect();
        assert_eq!(sources, vec!["SaaS Alerts", "SIEM"]);
    }

    #[test]
    fn bad_seeds_are_refused() {
        for bad in [
            "companyId: x\npublicKey: a\n",
            "companyId: ''\npublicKey: a\nprivateKey: b\n",
            "companyId: x\npublicKey: a\nprivateKey: b\nunknown: 1\n",
            "companyId: x\npublicKey: a\nprivateKey: b\nboards:\n- name: B\n  statuses:\n  - {name: A, default: true}\n  - {name: C, default: true}\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
