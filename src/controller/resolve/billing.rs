//! Contract lines (billing): what to write, decided from what the PSA (or the status) says is
//! there. Pure; the CustomerMapping reconciler acts on the plan, `plan` reports it.

use crate::api::{ContractServiceLine, CustomerMappingStatus, Money};
use crate::psa::{ContractLine, LineValues};

/// The line values a mapping asks for: its own cost and price where set, else the service's.
pub fn wanted_line(
    line: &ContractServiceLine,
    service_cost: &Money,
    service_price: &Money,
) -> LineValues {
    let minor = |o: &Option<Money>, d: &Money| o.as_ref().unwrap_or(d).to_minor().unwrap_or(0);
    LineValues {
        quantity: line.quantity,
        cost: minor(&line.cost, service_cost),
        price: minor(&line.price, service_price),
    }
}

/// What to do with the contract line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinePlan {
    Add(LineValues),
    Update { line: ContractLine, to: LineValues },
    InStep(ContractLine),
}

/// Decides the contract-line write: add when missing, update only when something differs.
pub fn plan_line(existing: Option<ContractLine>, wanted: LineValues) -> LinePlan {
    match existing {
        None => LinePlan::Add(wanted),
        Some(line)
            if line.quantity == wanted.quantity
                && line.cost == wanted.cost
                && line.price == wanted.price =>
        {
            LinePlan::InStep(line)
        }
        Some(line) => LinePlan::Update { line, to: wanted },
    }
}

/// Where the PSA cannot read a contract line's units (Kaseya BMS API v2, see
/// `Psa::lists_contract_lines`), the quantity this operator wrote last is known only from the
/// mapping's status; without it a restart could not tell a units change. Status keeps the line id and quantity but not cost and price,
/// so the wanted ones stand in for them: after a restart only a quantity change is noticed.
pub fn line_from_status(
    status: Option<&CustomerMappingStatus>,
    contract_id: &str,
    service_id: &str,
    wanted: LineValues,
) -> Option<ContractLine> {
    let s = status?;
    if s.contract_id.as_deref() != Some(contract_id) {
        return None;
    }
    Some(ContractLine {
        id: s.contract_line_id.clone()?,
        contract_id: contract_id.to_string(),
        service_id: service_id.to_string(),
        quantity: s.synced_quantity?,
        cost: wanted.cost,
        price: wanted.price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_the_psa_cannot_list_is_recalled_from_status() {
        let wanted = LineValues {
            quantity: 43,
            cost: 15_000,
            price: 40_000,
        };
        let synced = CustomerMappingStatus {
            contract_id: Some("7".into()),
            contract_line_id: Some("11".into()),
            synced_quantity: Some(42),
            ..Default::default()
        };
        let line = line_from_status(Some(&synced), "7", "9", wanted).unwrap();
        assert_eq!((line.id.as_str(), line.quantity), ("11", 42));
        assert_eq!((line.cost, line.price), (15_000, 40_000));
        // Then the plan is an update of that line, not a second add.
        assert!(matches!(
            plan_line(Some(line), wanted),
            LinePlan::Update { .. }
        ));
        let other_contract = CustomerMappingStatus {
            contract_id: Some("8".into()),
            ..synced.clone()
        };
        let never_synced = CustomerMappingStatus {
            contract_line_id: None,
            ..synced.clone()
        };
        for s in [Some(&other_contract), Some(&never_synced), None] {
            assert_eq!(line_from_status(s, "7", "9", wanted), None);
        }
    }

    #[test]
    fn line_plans() {
        let line = ContractLine {
            id: "9".into(),
            contract_id: "1".into(),
            service_id: "2".into(),
            quantity: 42,
            cost: 15_000,
            price: 40_000,
        };
        let v = |q| LineValues {
            quantity: q,
            cost: 15_000,
            price: 40_000,
        };
        assert_eq!(plan_line(None, v(42)), LinePlan::Add(v(42)));
        assert_eq!(
            plan_line(Some(line.clone()), v(42)),
            LinePlan::InStep(line.clone())
        );
        assert_eq!(
            plan_line(Some(line.clone()), v(43)),
            LinePlan::Update {
                line: line.clone(),
                to: v(43)
            }
        );
        let price_change = LineValues {
            quantity: 42,
            cost: 15_000,
            price: 45_000,
        };
        assert!(matches!(
            plan_line(Some(line), price_change),
            LinePlan::Update { .. }
        ));
    }
}
