//! A ContractService as the PSA's catalog should hold it, and what differs. Pure; used by the
//! ContractService reconciler and by `plan`.

use crate::api::{
    ContractService, ContractServiceSpec, ContractServiceStatus, DeletionPolicy, ManagementPolicy,
    ProviderSpec,
};
use crate::psa::{CatalogService, CatalogServiceSpec};

/// `status.origin` of an item the operator created.
pub const CREATED: &str = "Created";
/// `status.origin` of an item that existed and was adopted (`spec.adopt`).
pub const ADOPTED: &str = "Adopted";

/// What to do about the PSA's catalog item of the spec's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogAction {
    Create,
    /// Keep the item in step; `full`: every field follows the spec (else only those it sets).
    Manage {
        id: String,
        full: bool,
        origin: &'static str,
    },
    /// An item of that name exists, and the spec did not ask to adopt it: leave it alone.
    RefuseAdoption {
        id: String,
    },
}

/// Decides from the item found by name and what status remembers: an item this resource created
/// (or adopted) before is managed; another existing item only when `spec.adopt` is true.
pub fn decide_catalog(
    existing: Option<&CatalogService>,
    status: &ContractServiceStatus,
    spec: &ContractServiceSpec,
) -> CatalogAction {
    let Some(item) = existing else {
        return CatalogAction::Create;
    };
    let ours = status.external_id.as_deref() == Some(item.id.as_str());
    let full_when_adopted = spec.management_policy.unwrap_or_default() == ManagementPolicy::Full;
    match (ours, status.origin.as_deref()) {
        (true, Some(CREATED)) => CatalogAction::Manage {
            id: item.id.clone(),
            full: true,
            origin: CREATED,
        },
        (true, Some(ADOPTED)) => CatalogAction::Manage {
            id: item.id.clone(),
            full: full_when_adopted,
            origin: ADOPTED,
        },
        _ if spec.adopt == Some(true) => CatalogAction::Manage {
            id: item.id.clone(),
            full: full_when_adopted,
            origin: ADOPTED,
        },
        _ => CatalogAction::RefuseAdoption {
            id: item.id.clone(),
        },
    }
}

/// The item as it should be: with partial management, a field the spec leaves unset keeps the
/// PSA's value (a hand-written description is not blanked).
pub fn target_of(
    existing: &CatalogService,
    wanted: &CatalogServiceSpec,
    full: bool,
    spec: &ContractServiceSpec,
) -> CatalogServiceSpec {
    let mut target = wanted.clone();
    if !full && spec.description.is_none() {
        target.description = existing.description.clone();
    }
    target
}

/// `deletionPolicy: Delete` removes the item only when the operator owns it: it created it, or
/// the spec says `managementPolicy: Full`.
pub fn may_delete(spec: &ContractServiceSpec, status: &ContractServiceStatus) -> bool {
    spec.deletion_policy.unwrap_or_default() == DeletionPolicy::Delete
        && (status.origin.as_deref() == Some(CREATED)
            || spec.management_policy.unwrap_or_default() == ManagementPolicy::Full)
}

/// The PSA tenant a connection's provider settings point at (credentials aside): two
/// connections with the same tenant share one catalog.
pub fn tenant_of(provider: &ProviderSpec) -> Option<String> {
    provider
        .selected()
        .and_then(crate::providers::ProviderRef::tenant)
}

/// A ContractService as a claim on a catalog item: (namespace/name, tenant, item name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub resource: String,
    pub tenant: String,
    pub item: String,
}

/// The other resources claiming the same item of the same tenant as `me`, sorted.
pub fn rival_claims(me: &Claim, all: &[Claim]) -> Vec<String> {
    let mut rivals: Vec<String> = all
        .iter()
        .filter(|c| {
            c.resource != me.resource
                && c.tenant == me.tenant
                && c.item.trim().eq_ignore_ascii_case(me.item.trim())
        })
        .map(|c| c.resource.clone())
        .collect();
    rivals.sort();
    rivals
}

/// What the spec asks for, in PSA units. `None` when a money field is not a decimal.
pub fn wanted_spec(s: &ContractService) -> Result<CatalogServiceSpec, String> {
    let cost = s
        .spec
        .cost
        .to_minor()
        .ok_or_else(|| format!("spec.cost {:?} is not a decimal", s.spec.cost.0))?;
    let price = s
        .spec
        .price
        .to_minor()
        .ok_or_else(|| format!("spec.price {:?} is not a decimal", s.spec.price.0))?;
    Ok(CatalogServiceSpec {
        name: s.spec.name.clone(),
        description: s.spec.description.clone().unwrap_or_default(),
        cost,
        price,
    })
}

/// Fields of the PSA's service that differ from the spec (drift to correct).
pub fn drift(existing: &CatalogService, wanted: &CatalogServiceSpec) -> Vec<&'static str> {
    let mut d = vec![];
    if existing.description != wanted.description {
        d.push("description");
    }
    if existing.cost != wanted.cost {
        d.push("cost");
    }
    if existing.price != wanted.price {
        d.push("price");
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LocalRef, Money};

    fn spec(adopt: Option<bool>, policy: Option<ManagementPolicy>) -> ContractServiceSpec {
        ContractServiceSpec {
            connection_ref: LocalRef { name: "cw".into() },
            name: "S".into(),
            description: None,
            cost: Money("1.00".into()),
            price: Money("3.00".into()),
            deletion_policy: Some(DeletionPolicy::Delete),
            adopt,
            management_policy: policy,
        }
    }

    fn status(id: Option<&str>, origin: Option<&str>) -> ContractServiceStatus {
        ContractServiceStatus {
            external_id: id.map(Into::into),
            origin: origin.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn adoption_only_when_asked() {
        let item = CatalogService {
            id: "7".into(),
            name: "S".into(),
            description: "hand-written".into(),
            cost: 10_000,
            price: 30_000,
        };
        let manage = |full, origin| CatalogAction::Manage {
            id: "7".into(),
            full,
            origin,
        };
        let refuse = CatalogAction::RefuseAdoption { id: "7".into() };
        use ManagementPolicy::*;
        // (item exists?, status, adopt, policy) → action
        let table = [
            (false, status(None, None), None, None, CatalogAction::Create),
            (true, status(None, None), None, None, refuse.clone()),
            (true, status(None, None), Some(false), None, refuse.clone()),
            (
                true,
                status(None, None),
                Some(true),
                None,
                manage(false, ADOPTED),
            ),
            (
                true,
                status(None, None),
                Some(true),
                Some(Full),
                manage(true, ADOPTED),
            ),
            (
                true,
                status(Some("7"), Some(CREATED)),
                None,
                None,
                manage(true, CREATED),
            ),
            (
                true,
                status(Some("7"), Some(ADOPTED)),
                None,
                Some(Partial),
                manage(false, ADOPTED),
            ),
            // Status naming another item (recreated by hand): not ours.
            (true, status(Some("6"), Some(CREATED)), None, None, refuse),
        ];
        for (exists, st, adopt, policy, want) in table {
            let got = decide_catalog(exists.then_some(&item), &st, &spec(adopt, policy));
            assert_eq!(got, want, "{exists} {st:?} {adopt:?} {policy:?}");
        }
        let wanted = CatalogServiceSpec {
            name: "S".into(),
            description: String::new(),
            cost: 10_000,
            price: 35_000,
        };
        let partial = target_of(&item, &wanted, false, &spec(Some(true), None));
        assert_eq!(partial.description, "hand-written", "not blanked");
        assert_eq!(partial.price, 35_000);
        assert_eq!(
            target_of(&item, &wanted, true, &spec(Some(true), Some(Full))).description,
            ""
        );
    }

    #[test]
    fn only_owned_items_are_deleted() {
        use ManagementPolicy::*;
        assert!(may_delete(
            &spec(None, None),
            &status(Some("7"), Some(CREATED))
        ));
        assert!(!may_delete(
            &spec(Some(true), None),
            &status(Some("7"), Some(ADOPTED))
        ));
        assert!(may_delete(
            &spec(Some(true), Some(Full)),
            &status(Some("7"), Some(ADOPTED))
        ));
        let mut orphan = spec(None, None);
        orphan.deletion_policy = Some(DeletionPolicy::Orphan);
        assert!(!may_delete(&orphan, &status(Some("7"), Some(CREATED))));
    }

    #[test]
    fn two_resources_claiming_one_item() {
        let claim = |r: &str, t: &str, i: &str| Claim {
            resource: r.into(),
            tenant: t.into(),
            item: i.into(),
        };
        let all = [
            claim("psa/a", "cw|x|demo", "SaaS Monitoring"),
            claim("psa/b", "cw|x|demo", "saas monitoring "),
            claim("psa/c", "cw|y|demo", "SaaS Monitoring"),
            claim("psa/d", "cw|x|demo", "Other"),
        ];
        assert_eq!(rival_claims(&all[0], &all), ["psa/b"]);
        assert_eq!(rival_claims(&all[1], &all), ["psa/a"]);
        assert!(rival_claims(&all[2], &all).is_empty(), "another tenant");
    }

    #[test]
    fn drift_lists_fields() {
        let existing = CatalogService {
            id: "1".into(),
            name: "S".into(),
            description: "d".into(),
            cost: 10_000,
            price: 30_000,
        };
        let mut wanted = CatalogServiceSpec {
            name: "S".into(),
            description: "d".into(),
            cost: 10_000,
            price: 30_000,
        };
        assert!(drift(&existing, &wanted).is_empty());
        wanted.price = 35_000;
        wanted.description = "new".into();
        assert_eq!(drift(&existing, &wanted), ["description", "price"]);
    }
}
