//! The contract line a mapping plans against, where the PSA cannot read a line's quantity
//! (Kaseya BMS: see `Psa::lists_contract_lines`), and the `ContractSynced` reason per outcome.
//! Pure; the mapping reconciler does the I/O around it.

use crate::api::mapping::CustomerMappingStatus;
use crate::psa::{ContractLine, LineUpdate};

/// The status a mapping reconcile starts from: empty but for what was last written to the
/// contract line (contract, line id, quantity). A reconcile that stops early (connection not
/// ready yet, company not found) must not forget it: the line is still there in the PSA, and a
/// PSA that cannot read quantities knows them only from here.
pub fn billing_memory(old: Option<&CustomerMappingStatus>) -> CustomerMappingStatus {
    let Some(old) = old else {
        return CustomerMappingStatus::default();
    };
    CustomerMappingStatus {
        contract_id: old.contract_id.clone(),
        contract_line_id: old.contract_line_id.clone(),
        synced_quantity: old.synced_quantity,
        ..Default::default()
    }
}

/// The line to plan against.
///
/// * A PSA that reads quantities: the line it found.
/// * Otherwise the line the PSA found (id, cost, price as they are there) with the quantity the
///   mapping's status remembers for that same line. A line the status does not remember (added
///   by hand in the PSA, or before the status was written) is not planned against: the add call
///   adopts it. No line in the PSA → add, whatever the status remembers.
pub fn line_to_plan(
    found: Option<ContractLine>,
    remembered: Option<ContractLine>,
    quantity_readable: bool,
) -> Option<ContractLine> {
    if quantity_readable {
        return found;
    }
    match (found, remembered) {
        (Some(f), Some(r)) if f.id == r.id => Some(ContractLine {
            quantity: r.quantity,
            ..f
        }),
        _ => None,
    }
}

/// `ContractSynced` reason after an add: adopted when the PSA handed back the line it had
/// already shown (one nobody here remembered), added otherwise.
pub fn added_reason(found_before: Option<&str>, line: &ContractLine) -> &'static str {
    if found_before == Some(line.id.as_str()) {
        "LineAdopted"
    } else {
        "LineAdded"
    }
}

/// `ContractSynced` reason after an update.
pub fn updated_reason(u: &LineUpdate) -> &'static str {
    match u {
        LineUpdate::Updated(_) => "LineUpdated",
        LineUpdate::Replaced { .. } => "LineReplaced",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, q: i64, price: i64) -> ContractLine {
        ContractLine {
            id: id.into(),
            contract_id: "7".into(),
            service_id: "9".into(),
            quantity: q,
            cost: 15_000,
            price,
        }
    }

    #[test]
    fn the_planned_line_combines_the_psa_and_the_status() {
        type Row = (
            &'static str,
            Option<ContractLine>,
            Option<ContractLine>,
            bool,
            Option<ContractLine>,
        );
        let table: Vec<Row> = vec![
            (
                "readable: the PSA's line",
                Some(line("11", 5, 40_000)),
                Some(line("11", 7, 30_000)),
                true,
                Some(line("11", 5, 40_000)),
            ),
            (
                "same line: status quantity, PSA money",
                Some(line("11", 0, 40_000)),
                Some(line("11", 7, 30_000)),
                false,
                Some(line("11", 7, 40_000)),
            ),
            (
                "a line status does not remember: adopt on add",
                Some(line("12", 0, 40_000)),
                Some(line("11", 7, 40_000)),
                false,
                None,
            ),
            ("no status", Some(line("12", 0, 40_000)), None, false, None),
            (
                "the remembered line is gone",
                None,
                Some(line("11", 7, 40_000)),
                false,
                None,
            ),
        ];
        for (name, found, remembered, readable, want) in table {
            assert_eq!(line_to_plan(found, remembered, readable), want, "{name}");
        }
    }

    #[test]
    fn billing_memory_survives_an_early_return() {
        let old = CustomerMappingStatus {
            company_id: Some("4".into()),
            contract_id: Some("8".into()),
            contract_line_id: Some("33".into()),
            synced_quantity: Some(7),
            ..Default::default()
        };
        let kept = billing_memory(Some(&old));
        assert_eq!(kept.contract_line_id.as_deref(), Some("33"));
        assert_eq!(kept.synced_quantity, Some(7));
        assert_eq!(kept.contract_id.as_deref(), Some("8"));
        assert_eq!(kept.company_id, None, "the rest is recomputed");
        assert_eq!(billing_memory(None), CustomerMappingStatus::default());
    }

    #[test]
    fn reasons_say_what_was_done() {
        let l = line("12", 5, 40_000);
        assert_eq!(added_reason(Some("12"), &l), "LineAdopted");
        assert_eq!(added_reason(Some("11"), &l), "LineAdded");
        assert_eq!(added_reason(None, &l), "LineAdded");
        assert_eq!(
            updated_reason(&LineUpdate::Updated(l.clone())),
            "LineUpdated"
        );
        assert_eq!(
            updated_reason(&LineUpdate::Replaced {
                line: l,
                note: "n".into()
            }),
            "LineReplaced"
        );
    }
}
