//! The Kaseya BMS sandbox seed: a YAML description of one tenant.
//!
//! ```yaml
//! tenant: demo                       # the Tenant login field must match (any case)
//! users:                             # API users: UserName / Password at login
//!   - {userName: demo-api, password: demo-password, fullName: Demo API User}
//! settings:                          # all optional
//!   accessTokenSeconds: 900          # access token lifetime (default 900)
//!   refreshTokenSeconds: 604800      # refresh token lifetime (default one week)
//!   callsPerHourPerEndpoint: 1500    # 429 beyond this, per route template per rolling hour; 0 = off
//!   utcOffsetHours: 0                # the tenant's time zone as userinfo reports it (timeZoneValue)
//! accounts:
//!   - name: Contoso Ltd              # AccountName
//!     code: CONTOSO                  # AccountCode
//!     type: Customer                 # AccountType (default Customer)
//!     parent: Some Account           # name of a parent account (optional)
//!     active: true                   # default true
//!     locations: [Main]              # the first is the main location (default [Main])
//!     contacts:
//!       - {firstName: Jane, lastName: Doe, email: jane@contoso.example, active: true}
//!     contracts:
//!       - {name: Managed Security, active: true}
//! queues: [Security Alerts]          # picklists: names, ids assigned in order
//! ticketTypes: [Alert, Incident]
//! sources: [SaaS Alerts, SIEM]
//! priorities: [Critical, High, Medium, Low]
//! statuses: [{name: New}, {name: Completed, closed: true}]   # closed → sets completedDate
//! issueTypes: [{name: SaaS Alerts, subIssueTypes: [General, IAM]}]
//! noteTypes: [Internal Note]         # the first is the default
//! services: [{name: Backup, description: Cloud backup, unitCost: 1.5, unitPrice: 4}]
//! ```
//! Ids are assigned from 1 upward in the order above, so a seed always yields the same ids.

use serde::Deserialize;

use crate::sandbox::seed::{read_with_picklists, yes, SeedPicklists};
pub use crate::sandbox::seed::{SeedIssueType, SeedService};

/// The built-in demo tenant.
pub const DEMO_SEED_YAML: &str = include_str!("demo-seed.yaml");

/// A tenant. Read it with [`Seed::from_yaml`], which also reads the picklists and refuses unknown
/// keys; the derived `Deserialize` reads only the tenant's own keys.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    pub tenant: String,
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub accounts: Vec<SeedAccount>,
    /// The lists from `queues:` to `services:` above.
    #[serde(skip)]
    pub picklists: SeedPicklists<SeedStatus>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedUser {
    pub user_name: String,
    pub password: String,
    pub full_name: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    pub access_token_seconds: u64,
    pub refresh_token_seconds: u64,
    pub calls_per_hour_per_endpoint: u32,
    pub utc_offset_hours: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_token_seconds: 900,
            refresh_token_seconds: 7 * 24 * 3600,
            calls_per_hour_per_endpoint: 1500,
            utc_offset_hours: 0.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAccount {
    pub name: String,
    pub code: Option<String>,
    pub r#type: Option<String>,
    pub parent: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<SeedContact>,
    #[serde(default)]
    pub contracts: Vec<SeedContract>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedContact {
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    pub email: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    /// The account's point of contact (`IsPoc`).
    #[serde(default)]
    pub poc: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedContract {
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedStatus {
    pub name: String,
    #[serde(default)]
    pub closed: bool,
}

/// Why a seed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed is not valid YAML for a Kaseya BMS tenant: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("seed is inconsistent: {0}")]
    Invalid(String),
}

impl Seed {
    /// The built-in demo tenant.
    pub fn demo() -> Seed {
        Seed::from_yaml(DEMO_SEED_YAML).expect("the built-in demo seed is valid")
    }

    pub fn from_yaml(text: &str) -> Result<Seed, SeedError> {
        let (seed, picklists) = read_with_picklists::<Seed, SeedStatus>(text)?;
        let seed = Seed { picklists, ..seed };
        seed.check()?;
        Ok(seed)
    }

    /// Names that must be unique are, parents exist, a login is possible.
    fn check(&self) -> Result<(), SeedError> {
        let bad = |m: String| Err(SeedError::Invalid(m));
        if self.tenant.trim().is_empty() {
            return bad("tenant is empty".into());
        }
        if self.users.is_empty() {
            return bad("at least one user is needed to log in".into());
        }
        let mut names = std::collections::HashSet::new();
        for a in &self.accounts {
            if !names.insert(a.name.to_lowercase()) {
                return bad(format!("account {:?} appears twice", a.name));
            }
        }
        for a in &self.accounts {
            if let Some(p) = &a.parent {
                if !names.contains(&p.to_lowercase()) || p.eq_ignore_ascii_case(&a.name) {
                    return bad(format!(
                        "account {:?} names an unknown parent {p:?}",
                        a.name
                    ));
                }
            }
        }
        let mut services = std::collections::HashSet::new();
        for s in &self.picklists.services {
            if !services.insert(s.name.to_lowercase()) {
                return bad(format!("service {:?} appears twice", s.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_seed_holds_the_documented_tenant() {
        let s = Seed::demo();
        assert_eq!(s.tenant, "demo");
        assert_eq!(s.users[0].user_name, "demo-api");
        let names: Vec<&str> = s.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Default Customer", "Contoso Ltd", "Fabrikam Inc"]);
        let contoso = &s.accounts[1];
        assert_eq!(contoso.code.as_deref(), Some("CONTOSO"));
        assert_eq!(contoso.contracts[0].name, "Managed Security");
        assert_eq!(contoso.contacts.len(), 2);
        let closed: Vec<&str> = s
            .picklists
            .statuses
            .iter()
            .filter(|st| st.closed)
            .map(|st| st.name.as_str())
            .collect();
        assert_eq!(closed, ["Closed", "Completed"]);
        assert_eq!(
            s.picklists.issue_types[0].sub_issue_types,
            ["General", "Data Leakage", "IAM"]
        );
        assert_eq!(s.settings, Settings::default());
    }

    #[test]
    fn inconsistent_seeds_are_refused() {
        let table = [
            (
                "tenant: ''\nusers: [{userName: u, password: p}]",
                "tenant is empty",
            ),
            ("tenant: t\nusers: []", "at least one user"),
            (
                "tenant: t\nusers: [{userName: u, password: p}]\naccounts: [{name: A}, {name: a}]",
                "appears twice",
            ),
            (
                "tenant: t\nusers: [{userName: u, password: p}]\naccounts: [{name: A, parent: B}]",
                "unknown parent",
            ),
            (
                "tenant: t\nusers: [{userName: u, password: p}]\nqueue: [x]",
                "unknown field",
            ),
        ];
        for (yaml, want) in table {
            let e = Seed::from_yaml(yaml).unwrap_err().to_string();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }
}
