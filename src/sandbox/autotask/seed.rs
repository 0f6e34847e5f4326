//! The Autotask sandbox seed: a YAML description of one Autotask database.
//!
//! ```yaml
//! apiUsers:                          # API-only users: the three headers must match one
//!   - {userName: api@msp.example, secret: s3cret, integrationCode: TRACKINGID}
//! settings:                          # all optional
//!   requestsPerHour: 10000           # the database threshold (all integrations); 0 = off
//!   threadsPerEndpoint: 3            # concurrent requests per endpoint per tracking identifier
//! companies:
//!   - name: Contoso Ltd              # companyName
//!     number: CONTOSO                # companyNumber (the identifier)
//!     type: Customer                 # companyType label (default Customer)
//!     parent: Some Company           # name of a parent company (optional)
//!     active: true                   # default true
//!     contacts:
//!       - {firstName: Jane, lastName: Doe, email: jane@contoso.example, email2: j@x, email3: d@y, active: true}
//!     contracts:
//!       - {name: Managed Security, type: 7, active: true}   # 7 = recurring service
//! companyTypes: [Customer, Vendor]   # picklists: labels, values 1.. in order
//! queues: [Security Alerts]
//! ticketTypes: [Alert]
//! sources: [SaaS Alerts]
//! priorities: [Critical, High]
//! statuses: [{value: 1, label: New}, {value: 5, label: Complete}, {value: 9, label: Old, active: false}]
//! issueTypes: [{name: SaaS Alerts, subIssueTypes: [General, IAM]}]
//! noteTypes: [Internal Note]
//! billingCodes: [{name: Recurring Services, useType: Recurring Contract Service}]
//! services: [{name: Backup, description: Cloud backup, unitCost: 1.5, unitPrice: 4}]
//! ```
//! Ids are assigned in the order above (companies from 1, contacts from 1, …), so a seed always
//! yields the same ids.

use serde::Deserialize;

use crate::sandbox::seed::{read_with_picklists, yes, SeedPicklists};
pub use crate::sandbox::seed::{SeedIssueType, SeedService};

/// The built-in demo database.
pub const DEMO_SEED_YAML: &str = include_str!("demo-seed.yaml");

/// A database. Read it with [`Seed::from_yaml`], which also reads the picklists and refuses
/// unknown keys; the derived `Deserialize` reads only the database's own keys.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    pub api_users: Vec<SeedUser>,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub companies: Vec<SeedCompany>,
    #[serde(default)]
    pub company_types: Vec<String>,
    /// The ticket picklists from `queues:` to `noteTypes:`, and `services:`.
    #[serde(skip)]
    pub picklists: SeedPicklists<SeedStatus>,
    #[serde(default)]
    pub billing_codes: Vec<SeedBillingCode>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedUser {
    pub user_name: String,
    pub secret: String,
    pub integration_code: String,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    pub requests_per_hour: u64,
    pub threads_per_endpoint: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            requests_per_hour: 10_000,
            threads_per_endpoint: 3,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCompany {
    pub name: String,
    pub number: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub parent: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub contacts: Vec<SeedContact>,
    #[serde(default)]
    pub contracts: Vec<SeedContract>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedContact {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub email2: Option<String>,
    pub email3: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    /// The company's primary contact (`primaryContact`).
    #[serde(default)]
    pub primary: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedContract {
    pub name: String,
    /// `contractType` (7 = recurring service).
    #[serde(default = "recurring", rename = "type")]
    pub type_: i64,
    #[serde(default = "yes")]
    pub active: bool,
}

fn recurring() -> i64 {
    7
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedStatus {
    pub value: i64,
    pub label: String,
    /// An inactive status is still listed (`isActive: false`) but refused on a ticket.
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedBillingCode {
    pub name: String,
    pub use_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("invalid Autotask seed: {0}")]
    Invalid(String),
}

impl Seed {
    pub fn demo() -> Seed {
        Seed::from_yaml(DEMO_SEED_YAML).expect("the built-in Autotask demo seed is valid")
    }

    pub fn from_yaml(text: &str) -> Result<Seed, SeedError> {
        let (seed, picklists) = read_with_picklists::<Seed, SeedStatus>(text)
            .map_err(|e| SeedError::Invalid(e.to_string()))?;
        let seed = Seed { picklists, ..seed };
        seed.check()?;
        Ok(seed)
    }

    fn check(&self) -> Result<(), SeedError> {
        if self.api_users.is_empty() {
            return Err(SeedError::Invalid(
                "apiUsers: at least one API user is needed".into(),
            ));
        }
        for c in &self.companies {
            if let Some(p) = &c.parent {
                if !self.companies.iter().any(|o| &o.name == p) {
                    return Err(SeedError::Invalid(format!(
                        "company {:?}: parent {p:?} is not a company of the seed",
                        c.name
                    )));
                }
            }
            if let Some(t) = &c.type_ {
                if !self.company_types.iter().any(|k| k == t) {
                    return Err(SeedError::Invalid(format!(
                        "company {:?}: type {t:?} is not in companyTypes",
                        c.name
                    )));
                }
            }
        }
        let mut values: Vec<i64> = self.picklists.statuses.iter().map(|s| s.value).collect();
        values.sort_unstable();
        values.dedup();
        if values.len() != self.picklists.statuses.len() {
            return Err(SeedError::Invalid("statuses: a value is used twice".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_seed_holds_the_documented_database() {
        let s = Seed::demo();
        let names: Vec<&str> = s.companies.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Default Customer", "Contoso Ltd", "Fabrikam Inc"]);
        assert_eq!(s.companies[1].contracts[0].name, "Managed Security");
        assert_eq!(s.companies[1].contracts[0].type_, 7);
        assert!(s.picklists.queues.contains(&"Security Alerts".to_string()));
        assert!(s
            .picklists
            .statuses
            .iter()
            .any(|st| st.value == 5 && st.label == "Complete"));
    }

    #[test]
    fn inconsistent_seeds_are_refused() {
        let bad = [
            "apiUsers: []\n",
            "apiUsers: [{userName: a, secret: b, integrationCode: c}]\ncompanies: [{name: A, parent: B}]\n",
            "apiUsers: [{userName: a, secret: b, integrationCode: c}]\ncompanies: [{name: A, type: Vendor}]\n",
            "apiUsers: [{userName: a, secret: b, integrationCode: c}]\nstatuses: [{value: 1, label: A}, {value: 1, label: B}]\n",
            "apiUsers: [{userName: a, secret: b, integrationCode: c}]\nboards: []\n",
        ];
        for text in bad {
            assert!(Seed::from_yaml(text).is_err(), "{text}");
        }
    }
}
