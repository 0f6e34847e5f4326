//! A ContractService as the PSA's catalog should hold it, and what differs. Pure; used by the
//! ContractService reconciler and by `plan`.

use crate::api::ContractService;
use crate::psa::{CatalogService, CatalogServiceSpec};

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
