//! Who a CustomerMapping routes to: company (from one listed index), default contact and contract,
//! and the catch-all customer. The reconciler and `plan` call the same `resolve_customer` and
//! differ only in what they do with its result (conditions vs. plan rows).

use std::collections::HashMap;
use std::sync::Arc;

use kube::{Resource, ResourceExt};

use crate::api::{CatchAll, CompanyRef, ContactRef, CustomerMapping, CustomerMappingSpec};
use crate::psa::{Company, Contact, ContactEmail, Contract, Psa, PsaError, PsaId};
use crate::resolved::ResolvedCustomer;

use super::directory::Directory;
use super::Unresolved;

/// Companies of a PSA indexed by identifier and by name (lower-cased), from one paged listing.
/// Both maps share each company (one copy per company, not two: about 5 MiB at 10,000).
#[derive(Clone, Debug, Default)]
pub struct CompanyIndex {
    pub by_identifier: HashMap<String, Arc<Company>>,
    pub by_name: HashMap<String, Vec<Arc<Company>>>,
}

impl CompanyIndex {
    pub fn build(companies: Vec<Company>) -> Self {
        let mut idx = CompanyIndex::default();
        for c in companies {
            let c = Arc::new(c);
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
            Some(c) if c.active => Ok(Company::clone(c)),
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
        .map(|v| v.iter().map(|c| &**c).filter(|c| c.active).collect())
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

/// The companies the mappings of one connection (`namespace`/`connection`) resolve to in
/// `index`: what a batched directory listing covers. Mappings being deleted and mappings whose
/// company does not resolve are left out.
pub fn mapped_company_ids(
    index: &CompanyIndex,
    mappings: &[Arc<CustomerMapping>],
    namespace: &str,
    connection: &str,
) -> Vec<crate::psa::PsaId> {
    mappings
        .iter()
        .filter(|m| {
            m.spec.connection_ref.name == connection
                && m.metadata.namespace.as_deref() == Some(namespace)
                && m.meta().deletion_timestamp.is_none()
        })
        .filter_map(|m| pick_company(index, &m.spec.company).ok())
        .map(|c| c.id)
        .collect()
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
    /// Where the chain ends when the spec names no default contact: the company's default
    /// (ConnectWise) or primary (BMS `IsPoc`, Autotask `primaryContact`) contact, if it has one.
    pub company_contact: Option<Contact>,
}

/// Which link of a mapping's contact chain gives its tickets' default contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappingContact {
    /// `spec.defaultContact`.
    Named(PsaId),
    /// The company's default/primary contact in the PSA.
    Company(PsaId),
    /// Nothing to give: tickets without an alert user's contact get none.
    NoContact,
}

impl MappingContact {
    pub fn id(&self) -> Option<&PsaId> {
        match self {
            MappingContact::Named(id) | MappingContact::Company(id) => Some(id),
            MappingContact::NoContact => None,
        }
    }
}

/// The contact chain of a mapping (pure): the spec's default contact → the company's default
/// contact on its record (ConnectWise `defaultContact`) → the primary contact the PSA marks among
/// its contacts → none. The catch-all contact is not part of it: it belongs to the catch-all
/// company, and the dispatcher adds it only for that company's tickets.
pub fn mapping_contact(
    named: Option<&Contact>,
    company: &Company,
    primary: Option<&Contact>,
) -> MappingContact {
    if let Some(c) = named {
        return MappingContact::Named(c.id.clone());
    }
    if let Some(id) = &company.default_contact_id {
        return MappingContact::Company(id.clone());
    }
    match primary {
        Some(c) => MappingContact::Company(c.id.clone()),
        None => MappingContact::NoContact,
    }
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

    /// The default contact of the mapping's tickets and where it comes from; `None` while the
    /// company does not resolve.
    pub fn default_contact(&self) -> Option<MappingContact> {
        let company = self.company.as_ref().ok()?;
        let named = self.contact.as_ref().and_then(|l| l.found.as_ref().ok());
        Some(mapping_contact(
            named,
            company,
            self.company_contact.as_ref(),
        ))
    }

    /// The routable customer, when every part resolved. The contact chain ends at the company's
    /// default or primary contact when the mapping names none.
    pub fn customer(&self, mapping_name: &str) -> Option<ResolvedCustomer> {
        if self.problem().is_some() {
            return None;
        }
        let company = self.company.as_ref().ok()?;
        Some(ResolvedCustomer {
            mapping_name: mapping_name.to_string(),
            company_id: company.id.clone(),
            company_name: company.name.clone(),
            location_id: company.location_id.clone(),
            default_contact_id: self.default_contact().and_then(|c| c.id().cloned()),
            contract_id: self.contract().map(|c| c.id.clone()),
            ticket: None,
        })
    }
}

/// Resolves a mapping's company (in `index`), then its default contact and contract (PSA look-ups).
pub async fn resolve_customer(
    psa: &dyn Psa,
    index: &CompanyIndex,
    spec: &CustomerMappingSpec,
) -> Result<CustomerResolution, PsaError> {
    resolve_customer_in(psa, index, None, spec).await
}

/// As [`resolve_customer`], answering contacts and contracts from the batched `directory` where it
/// lists the company; only what it cannot answer costs PSA calls.
pub async fn resolve_customer_in(
    psa: &dyn Psa,
    index: &CompanyIndex,
    directory: Option<&Directory>,
    spec: &CustomerMappingSpec,
) -> Result<CustomerResolution, PsaError> {
    let mut out = CustomerResolution {
        company: pick_company(index, &spec.company),
        contact: None,
        contract: None,
        company_contact: None,
    };
    let Ok(company) = out.company.clone() else {
        return Ok(out);
    };
    if let Some(c) = &spec.default_contact {
        let lookup = find_contact(psa, directory, &company, c).await?;
        let ok = lookup.ok();
        out.contact = Some(lookup);
        if !ok {
            return Ok(out);
        }
    } else if company.default_contact_id.is_none() {
        out.company_contact = match directory.and_then(|d| d.primary_contact(&company.id)) {
            Some(listed) => listed,
            None => psa.primary_contact(&company).await?,
        };
    }
    if let Some(c) = &spec.contract {
        let found = match directory.and_then(|d| d.contract(&company.id, &c.name)) {
            Some(listed) => listed,
            None => psa.find_contract(&company.id, &c.name).await?,
        };
        let found = match found {
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
    directory: Option<&Directory>,
    company: &Company,
    c: &ContactRef,
) -> Result<Lookup<Contact>, PsaError> {
    let listed = |f: &dyn Fn(&Directory) -> Option<Option<Contact>>| directory.and_then(f);
    let (wanted, found, what) = match c {
        ContactRef { email: Some(e), .. } => {
            let found = match listed(&|d| d.contact_by_email(&company.id, e)) {
                Some(answer) => answer,
                None => {
                    psa.find_contact_by_email(ContactEmail::new(&company.id, e))
                        .await?
                }
            };
            (e.clone(), found, "with e-mail")
        }
        ContactRef { name: Some(n), .. } => {
            let found = match listed(&|d| d.contact_by_name(&company.id, n)) {
                Some(answer) => answer,
                None => psa.find_contact_by_name(&company.id, n).await?,
            };
            (n.clone(), found, "named")
        }
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
            psa.find_contact_by_email(ContactEmail::new(&company.id, contact))
                .await?
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
    // No catch-all contact configured: the catch-all company's own default/primary contact.
    let contact_id = match contact_id.or(company.default_contact_id.clone()) {
        Some(id) => Some(id),
        None => psa.primary_contact(&company).await?.map(|c| c.id),
    };
    Ok(Ok(ResolvedCustomer {
        mapping_name: String::new(),
        company_id: company.id.clone(),
        company_name: company.name.clone(),
        location_id: company.location_id.clone(),
        default_contact_id: contact_id,
        contract_id: None,
        ticket: None,
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
    fn the_contact_chain_ends_at_the_company_contact_or_says_none() {
        let named = Contact {
            id: "10".into(),
            ..Default::default()
        };
        let primary = Contact {
            id: "30".into(),
            ..Default::default()
        };
        let plain = company("1", "A", "A", true);
        let with_default = Company {
            default_contact_id: Some("20".into()),
            ..plain.clone()
        };
        let table = [
            (
                "spec contact first",
                Some(&named),
                &with_default,
                Some(&primary),
                MappingContact::Named("10".into()),
            ),
            (
                "company record default",
                None,
                &with_default,
                Some(&primary),
                MappingContact::Company("20".into()),
            ),
            (
                "primary among contacts",
                None,
                &plain,
                Some(&primary),
                MappingContact::Company("30".into()),
            ),
            (
                "nothing to give",
                None,
                &plain,
                None,
                MappingContact::NoContact,
            ),
        ];
        for (what, spec, company, primary, want) in table {
            assert_eq!(mapping_contact(spec, company, primary), want, "{what}");
        }
        assert_eq!(MappingContact::NoContact.id(), None);
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
