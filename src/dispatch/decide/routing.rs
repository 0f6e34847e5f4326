//! Which PSA company a ticket goes to.
//!
//! Order (seed 003 "Account Mapping", seed 000 "catch-all customer"): a Ready CustomerMapping for
//! the organization; else, when `accountMapping` is automatic, a company whose identifier or
//! name equals the organization (one PSA lookup, cached by the worker, misses too); else the
//! catch-all company; with none of these the event cannot get a ticket and goes to the failsafe.

use std::collections::HashMap;
use std::sync::Arc;

use crate::api::AccountMapping;
use crate::psa::Company;
use crate::resolved::ResolvedCustomer;

/// The PSA lookup automatic account mapping needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AutoLookup {
    ByIdentifier(String),
    ByName(String),
}

/// A (possibly cached) answer of that lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutoAnswer {
    Found(ResolvedCustomer),
    NotFound,
}

/// Where the ticket goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A CustomerMapping names the company.
    Mapped(ResolvedCustomer),
    /// Automatic account mapping found a company of that identifier / name.
    AutoMapped(ResolvedCustomer),
    /// Nothing matched: the catch-all company.
    CatchAll(ResolvedCustomer),
    /// Automatic mapping is on and the PSA has not been asked yet.
    NeedLookup(AutoLookup),
    /// No mapping, no automatic match, no catch-all: only the failsafe e-mail is left.
    Unroutable,
    /// A CustomerMapping names the organization but does not route it (not evaluated yet by this
    /// process, or not Ready): wait, then the failsafe — never the catch-all.
    Held(String),
}

impl Route {
    pub fn customer(&self) -> Option<&ResolvedCustomer> {
        match self {
            Route::Mapped(c) | Route::AutoMapped(c) | Route::CatchAll(c) => Some(c),
            Route::NeedLookup(_) | Route::Unroutable | Route::Held(_) => None,
        }
    }

    /// Short name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Mapped(_) => "mapped",
            Route::AutoMapped(_) => "auto",
            Route::CatchAll(_) => "catchAll",
            Route::NeedLookup(_) => "lookup",
            Route::Unroutable => "unroutable",
            Route::Held(_) => "held",
        }
    }
}

/// The routing inputs taken from the connection snapshot.
pub struct RoutingTable<'a> {
    pub customers: &'a HashMap<Arc<str>, Arc<ResolvedCustomer>>,
    /// Organizations (trimmed, lower-cased) whose mapping does not route, with the reason.
    pub held: &'a HashMap<String, String>,
    pub account_mapping: AccountMapping,
    pub catch_all: Option<&'a ResolvedCustomer>,
}

/// Decides the company for `organization`; `auto` is the cached answer of the automatic lookup.
pub fn route(table: &RoutingTable<'_>, organization: &str, auto: Option<&AutoAnswer>) -> Route {
    if let Some(c) = find_mapping(table.customers, organization) {
        return Route::Mapped(c.clone());
    }
    if let Some(reason) = table.held.get(&organization.trim().to_lowercase()) {
        return Route::Held(reason.clone());
    }
    let org = organization.trim();
    if !org.is_empty() {
        let lookup = match table.account_mapping {
            AccountMapping::Manual => None,
            AccountMapping::ByCompanyIdentifier => Some(AutoLookup::ByIdentifier(org.to_string())),
            AccountMapping::ByCompanyName => Some(AutoLookup::ByName(org.to_string())),
        };
        if let Some(lookup) = lookup {
            match auto {
                None => return Route::NeedLookup(lookup),
                Some(AutoAnswer::Found(c)) => return Route::AutoMapped(c.clone()),
                Some(AutoAnswer::NotFound) => {}
            }
        }
    }
    match table.catch_all {
        Some(c) => Route::CatchAll(c.clone()),
        None => Route::Unroutable,
    }
}

/// Mappings name the organization "exactly as alerts do"; senders are not always consistent in
/// case or surrounding blanks, so an exact match wins and a case-insensitive one is accepted.
fn find_mapping<'a>(
    customers: &'a HashMap<Arc<str>, Arc<ResolvedCustomer>>,
    organization: &str,
) -> Option<&'a ResolvedCustomer> {
    if let Some(c) = customers.get(organization) {
        return Some(c);
    }
    let wanted = organization.trim().to_lowercase();
    // Two mappings differing only in case: take the one sorting first, so the choice does not
    // depend on hash order.
    customers
        .iter()
        .filter(|(org, _)| org.trim().to_lowercase() == wanted)
        .min_by(|a, b| a.0.cmp(b.0))
        .map(|(_, c)| &**c)
}

/// An automatically matched company as a customer (no mapping, so no contract).
pub fn auto_customer(company: &Company) -> ResolvedCustomer {
    ResolvedCustomer {
        mapping_name: String::new(),
        company_id: company.id.clone(),
        company_name: company.name.clone(),
        location_id: company.location_id.clone(),
        default_contact_id: company.default_contact_id.clone(),
        contract_id: None,
        ticket: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cust(id: &str) -> ResolvedCustomer {
        ResolvedCustomer {
            company_id: id.into(),
            company_name: format!("company {id}"),
            ..Default::default()
        }
    }

    #[test]
    fn routing_table() {
        let mut customers = HashMap::new();
        customers.insert("Contoso Ltd".into(), Arc::new(cust("10")));
        let catch = cust("99");
        let found = AutoAnswer::Found(cust("20"));
        use AccountMapping::*;
        // (organization, accountMapping, catch-all?, cached auto answer, expected)
        let table: Vec<(&str, AccountMapping, bool, Option<&AutoAnswer>, Route)> = vec![
            ("Contoso Ltd", Manual, true, None, Route::Mapped(cust("10"))),
            (
                "contoso ltd ",
                Manual,
                true,
                None,
                Route::Mapped(cust("10")),
            ),
            // A mapping wins over automatic mapping, no lookup needed.
            (
                "Contoso Ltd",
                ByCompanyName,
                true,
                None,
                Route::Mapped(cust("10")),
            ),
            ("Fabrikam", Manual, true, None, Route::CatchAll(cust("99"))),
            ("Fabrikam", Manual, false, None, Route::Unroutable),
            (
                "Fabrikam",
                ByCompanyName,
                true,
                None,
                Route::NeedLookup(AutoLookup::ByName("Fabrikam".into())),
            ),
            (
                " FAB01 ",
                ByCompanyIdentifier,
                true,
                None,
                Route::NeedLookup(AutoLookup::ByIdentifier("FAB01".into())),
            ),
            (
                "Fabrikam",
                ByCompanyName,
                true,
                Some(&found),
                Route::AutoMapped(cust("20")),
            ),
            (
                "FAB01",
                ByCompanyIdentifier,
                false,
                Some(&found),
                Route::AutoMapped(cust("20")),
            ),
            // A cached miss (negative caching) goes straight to the catch-all.
            (
                "Fabrikam",
                ByCompanyName,
                true,
                Some(&AutoAnswer::NotFound),
                Route::CatchAll(cust("99")),
            ),
            (
                "Fabrikam",
                ByCompanyName,
                false,
                Some(&AutoAnswer::NotFound),
                Route::Unroutable,
            ),
            // An event without organization is never looked up.
            ("", ByCompanyName, true, None, Route::CatchAll(cust("99"))),
            // A mapping that exists but does not route holds its organization, whatever the
            // catch-all or automatic mapping would say.
            (
                " Tailspin ",
                Manual,
                true,
                None,
                Route::Held("company gone".into()),
            ),
            (
                "TAILSPIN",
                ByCompanyName,
                true,
                Some(&found),
                Route::Held("company gone".into()),
            ),
        ];
        let held = HashMap::from([("tailspin".to_string(), "company gone".to_string())]);
        for (org, mode, with_catch_all, auto, want) in table {
            let t = RoutingTable {
                customers: &customers,
                held: &held,
                account_mapping: mode,
                catch_all: with_catch_all.then_some(&catch),
            };
            assert_eq!(
                route(&t, org, auto),
                want,
                "{org:?} {mode:?} {with_catch_all}"
            );
        }
    }

    #[test]
    fn case_twins_pick_a_stable_mapping() {
        let mut customers = HashMap::new();
        customers.insert("ACME".into(), Arc::new(cust("1")));
        customers.insert("Acme".into(), Arc::new(cust("2")));
        let t = RoutingTable {
            customers: &customers,
            held: &HashMap::new(),
            account_mapping: AccountMapping::Manual,
            catch_all: None,
        };
        assert_eq!(route(&t, "Acme", None), Route::Mapped(cust("2")));
        assert_eq!(route(&t, "acme", None), Route::Mapped(cust("1")));
    }

    #[test]
    fn auto_customer_keeps_company_defaults() {
        let c = Company {
            id: "7".into(),
            name: "Fabrikam".into(),
            default_contact_id: Some("70".into()),
            location_id: Some("71".into()),
            ..Default::default()
        };
        let r = auto_customer(&c);
        assert_eq!(r.company_id, "7");
        assert_eq!(r.default_contact_id.as_deref(), Some("70"));
        assert_eq!(r.location_id.as_deref(), Some("71"));
        assert_eq!(r.contract_id, None);
    }
}
