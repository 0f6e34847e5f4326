//! Who a CustomerMapping routes to: company (from one listed index), default contact and contract,
//! and the catch-all customer. The reconciler and `plan` call the same `resolve_customer` and
//! differ only in what they do with its result (conditions vs. plan rows).

use std::collections::HashMap;
use std::sync::Arc;

use kube::{Resource, ResourceExt};

use crate::api::{CatchAll, CompanyRef, ContactRef, CustomerMapping, CustomerMappingSpec};
use crate::psa::{Company, Contact, Contract, Psa, PsaError};
use crate::resolved::ResolvedCustomer;

use super::Unresolved;

/// Companies of a PSA indexed by identifier and by name (lower-cased), from one paged listing.
#[derive(Clone, Debug, Default)]
pub struct CompanyIndex {
    pub by_identifier: HashMap<String, Company>,
    pub by_name: HashMap<String, Vec<Company>>,
}

impl CompanyIndex {
    pub fn build(companies: Vec<Company>) -> Self {
        let mut idx = CompanyIndex::default();
        for c in companies {
            idx.by_name
                .entry(c.name.trim().to_lowercase())
                .or_default()
                .push(c.clone());
            idx.by_identifier
                .insert(c.identifier.trim().to_lowercase(), c);
        }
        idx
    }
}

/// Finds the mapped company in the index (identifier or name, case-insensitive, active only).
pub fn pick_company(index: &CompanyIndex, company: &CompanyRef) -> Result<Company, String> {
    if let Some(id) = &company.identifier {
        return match index.by_identifier.get(&id.trim().to_lowercase()) {
            Some(c) if c.active => Ok(c.clone()),
            Some(_) => Err(format!(
                "company with identifier {id:?} is inactive in the PSA"
            )),
            None => Err(format!("no company with identifier {id:?} in the PSA")),
        };
    }
    let name = company.name.as_deref().unwrap_or_default();
    let hits: Vec<&Company> = index
        .by_name
        .get(&name.trim().to_lowercase())
        .map(|v| v.iter().filter(|c| c.active).collect())
        .unwrap_or_default();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no active company named {name:?} in the PSA")),
        many => Err(format!(
            "{} companies are named {name:?}; map by identifier instead ({})",
            many.len(),
            many.iter()
                .map(|c| c.identifier.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `candidate` names the same organization as `org_lower` (already trimmed and lower-cased).
fn same_organization(candidate: &str, org_lower: &str) -> bool {
    let c = candidate.trim();
    if c.is_ascii() && org_lower.is_ascii() {
        return c.eq_ignore_ascii_case(org_lower);
    }
    c.to_lowercase() == org_lower
}

/// Names of the other mappings of the same connection claiming the same organization.
pub fn duplicates_of(me: &CustomerMapping, all: &[Arc<CustomerMapping>]) -> Vec<String> {
    let org = me.spec.organization.trim().to_lowercase();
    let mut names: Vec<String> = all
        .iter()
        // Cheap comparisons first: this runs for every mapping of a wave (n² in all).
        .filter(|m| {
            m.spec.connection_ref.name == me.spec.connection_ref.name
                && m.metadata.namespace == me.metadata.namespace
                && m.metadata.name != me.metadata.name
                && m.meta().deletion_timestamp.is_none()
                && same_organization(&m.spec.organization, &org)
        })
        .map(|m| m.name_any())
        .collect();
    names.sort();
    names
}

/// One looked-up part of a mapping: what the spec asks for and what the PSA answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup<T> {
    /// As written in the spec (e-mail, name).
    pub wanted: String,
    /// The PSA's object, or the condition reason and message of the miss.
    pub found: Result<T, (&'static str, String)>,
}

impl<T> Lookup<T> {
    fn ok(&self) -> bool {
        self.found.is_ok()
    }
}

/// What the PSA says about a mapping's company, contact and contract. Look-ups stop at the first
/// miss: the parts after it are `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerResolution {
    pub company: Result<Company, String>,
    /// `None`: no default contact in the spec, or not reached.
    pub contact: Option<Lookup<Contact>>,
    /// `None`: no contract in the spec, or not reached.
    pub contract: Option<Lookup<Contract>>,
}

impl CustomerResolution {
    /// The first miss as a condition reason and message; `None` when everything resolved.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Err(msg) = &self.company {
            return Some(("CompanyNotFound", msg.clone()));
        }
        [
            self.contact.as_ref().and_then(|l| l.found.as_ref().err()),
            self.contract.as_ref().and_then(|l| l.found.as_ref().err()),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|(reason, msg)| (*reason, msg.clone()))
    }

    /// The contract the tickets and the billing line use, when resolved.
    pub fn contract(&self) -> Option<&Contract> {
        self.contract.as_ref().and_then(|l| l.found.as_ref().ok())
    }

    /// The routable customer, when every part resolved. The contact chain ends at the company's
    /// default contact when the mapping names none.
    pub fn customer(&self, mapping_name: &str) -> Option<ResolvedCustomer> {
        if self.problem().is_some() {
            return None;
        }
        let company = self.company.as_ref().ok()?;
        let contact = self.contact.as_ref().and_then(|l| l.found.as_ref().ok());
        Some(ResolvedCustomer {
            mapping_name: mapping_name.to_string(),
            company_id: company.id.clone(),
            company_name: company.name.clone(),
            location_id: company.location_id.clone(),
            default_contact_id: contact
                .map(|c| c.id.clone())
                .or(company.default_contact_id.clone()),
            contract_id: self.contract().map(|c| c.id.clone()),
        })
    }
}

/// Resolves a mapping's company (in `index`), then its default contact and contract (PSA look-ups).
pub async fn resolve_customer(
    psa: &dyn Psa,
    index: &CompanyIndex,
    spec: &CustomerMappingSpec,
) -> Result<CustomerResolution, PsaError> {
    let mut out = CustomerResolution {
        company: pick_company(index, &spec.company),
        contact: None,
        contract: None,
    };
    let Ok(company) = out.company.clone() else {
        return Ok(out);
    };
    if let Some(c) = &spec.default_contact {
        let lookup = find_contact(psa, &company, c).await?;
        let ok = lookup.ok();
        out.contact = Some(lookup);
        if !ok {
            return Ok(out);
        }
    }
    if let Some(c) = &spec.contract {
        let found = match psa.find_contract(&company.id, &c.name).await? {
            Some(k) if k.active => Ok(k),
            Some(_) => Err((
                "ContractInactive",
                format!("contract {:?} is not active", c.name),
            )),
            None => Err((
                "ContractNotFound",
                format!(
                    "company {:?} has no contract named {:?}",
                    company.name, c.name
                ),
            )),
        };
        out.contract = Some(Lookup {
            wanted: c.name.clone(),
            found,
        });
    }
    Ok(out)
}

async fn find_contact(
    psa: &dyn Psa,
    company: &Company,
    c: &ContactRef,
) -> Result<Lookup<Contact>, PsaError> {
    let (wanted, found, what) = match c {
        ContactRef { email: Some(e), .. } => (
            e.clone(),
            psa.find_contact_by_email(&company.id, e).await?,
            "with e-mail",
        ),
        ContactRef { name: Some(n), .. } => (
            n.clone(),
            psa.find_contact_by_name(&company.id, n).await?,
            "named",
        ),
        _ => (String::new(), None, "named"),
    };
    let found = found.ok_or_else(|| {
        (
            "ContactNotFound",
            format!("no contact {what} {wanted:?} in company {:?}", company.name),
        )
    });
    Ok(Lookup { wanted, found })
}

/// Resolves the catch-all company (by identifier, then by name) and its contact (e-mail or name).
pub async fn resolve_catch_all(
    psa: &dyn Psa,
    ca: &CatchAll,
) -> Result<Result<ResolvedCustomer, Unresolved>, PsaError> {
    let company = match psa.find_company_by_identifier(&ca.company).await? {
        Some(c) => Some(c),
        None => psa.find_company_by_name(&ca.company).await?,
    };
    let Some(company) = company.filter(|c| c.active) else {
        return Ok(Err(Unresolved {
            field: "catchAll.company".into(),
            value: ca.company.clone(),
            problem: "no active company with this identifier or name".into(),
        }));
    };
    let mut contact_id = None;
    if let Some(contact) = &ca.contact {
        let found = if contact.contains('@') {
            psa.find_contact_by_email(&company.id, contact).await?
        } else {
            psa.find_contact_by_name(&company.id, contact).await?
        };
        match found {
            Some(c) => contact_id = Some(c.id),
            None => {
                return Ok(Err(Unresolved {
                    field: "catchAll.contact".into(),
                    value: contact.clone(),
                    problem: format!("no such contact in company {:?}", company.name),
                }))
            }
        }
    }
    Ok(Ok(ResolvedCustomer {
        mapping_name: String::new(),
        company_id: company.id.clone(),
        company_name: company.name.clone(),
        location_id: company.location_id.clone(),
        default_contact_id: contact_id.or(company.default_contact_id.clone()),
        contract_id: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(id: &str, ident: &str, name: &str, active: bool) -> Company {
        Company {
            id: id.into(),
            identifier: ident.into(),
            name: name.into(),
            active,
            ..Default::default()
        }
    }

    #[test]
    fn company_picking() {
        let idx = CompanyIndex::build(vec![
            company("1", "CONTOSO", "Contoso Ltd", true),
            company("2", "OLD", "Old Co", false),
            company("3", "TWIN1", "Twin", true),
            company("4", "TWIN2", "Twin", true),
        ]);
        let by_id = |s: &str| CompanyRef {
            identifier: Some(s.into()),
            name: None,
        };
        let by_name = |s: &str| CompanyRef {
            identifier: None,
            name: Some(s.into()),
        };
        assert_eq!(pick_company(&idx, &by_id("contoso")).unwrap().id, "1");
        assert_eq!(pick_company(&idx, &by_name("Contoso Ltd")).unwrap().id, "1");
        assert!(pick_company(&idx, &by_id("OLD"))
            .unwrap_err()
            .contains("inactive"));
        assert!(pick_company(&idx, &by_name("Nope"))
            .unwrap_err()
            .contains("no active company"));
        let twin = pick_company(&idx, &by_name("Twin")).unwrap_err();
        assert!(twin.contains("TWIN1, TWIN2"), "{twin}");
    }
}
