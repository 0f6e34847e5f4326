//! Recurring contract-service lines, where BMS API v2 is at its thinnest: it can add lines to a
//! contract (`POST /v2/finance/contracts/recurringservices/{contractId}/services`) but has no call
//! that lists a contract's lines, changes a line's units, or ends a line.
//!
//! What this client does about it (see also `docs/providers/kaseya-bms.md`):
//! * It remembers the lines it added or replaced, per (contract, service), for its own lifetime
//!   ([`LineLedger`]); `find_contract_line` answers from there because the PSA cannot.
//!   [`crate::psa::Psa::lists_contract_lines`] is `false` for BMS so callers keep the line they
//!   got back (id, quantity, cost, price) in durable status and pass it to `update_contract_line`.
//! * A quantity, cost or price change is recorded the way BMS records recurring-service changes
//!   — a line for the same service with the new values, effective today — and reported as
//!   [`crate::psa::LineUpdate::Replaced`] with a note naming both lines, so the status tells a
//!   person to end the superseded line in BMS if their billing does not supersede it by date.
//!   No values changed → no call at all.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::NaiveDate;

use crate::api::common::format_decimal_4;
use crate::psa::{ContractLine, LineValues};

/// Lines this client added or replaced, by (contract id, service id).
#[derive(Default)]
pub struct LineLedger {
    lines: Mutex<HashMap<(String, String), ContractLine>>,
}

impl LineLedger {
    pub fn get(&self, contract_id: &str, service_id: &str) -> Option<ContractLine> {
        self.lock()
            .get(&(contract_id.to_string(), service_id.to_string()))
            .cloned()
    }

    pub fn remember(&self, line: &ContractLine) {
        self.lock().insert(
            (line.contract_id.clone(), line.service_id.clone()),
            line.clone(),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), ContractLine>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether a line already holds the wanted values.
pub fn unchanged(line: &ContractLine, values: LineValues) -> bool {
    line.quantity == values.quantity && line.cost == values.cost && line.price == values.price
}

/// The status text for a replacement.
pub fn replacement_note(old: &ContractLine, new: &ContractLine, effective: NaiveDate) -> String {
    format!(
        "Kaseya BMS API v2 cannot change a contract line: added line {} ({} units, cost {}, price {}) \
         effective {} to supersede line {} ({} units, cost {}, price {}); end line {} in BMS if \
         your billing does not supersede it by effective date",
        new.id,
        new.quantity,
        format_decimal_4(new.cost),
        format_decimal_4(new.price),
        effective.format("%Y-%m-%d"),
        old.id,
        old.quantity,
        format_decimal_4(old.cost),
        format_decimal_4(old.price),
        old.id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, q: i64) -> ContractLine {
        ContractLine {
            id: id.into(),
            contract_id: "7".into(),
            service_id: "9".into(),
            quantity: q,
            cost: 15_000,
            price: 40_000,
        }
    }

    #[test]
    fn only_a_real_difference_needs_a_call() {
        let l = line("1", 42);
        let same = LineValues {
            quantity: 42,
            cost: 15_000,
            price: 40_000,
        };
        assert!(unchanged(&l, same));
        for v in [
            LineValues {
                quantity: 43,
                ..same
            },
            LineValues {
                cost: 15_001,
                ..same
            },
            LineValues { price: 0, ..same },
        ] {
            assert!(!unchanged(&l, v), "{v:?}");
        }
    }

    #[test]
    fn note_names_both_lines_and_the_date() {
        let note = replacement_note(
            &line("11", 40),
            &line("12", 42),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        );
        assert!(
            note.contains("added line 12 (42 units, cost 1.50, price 4.00)"),
            "{note}"
        );
        assert!(note.contains("effective 2026-11-24"), "{note}");
        assert!(note.contains("end line 11 in BMS"), "{note}");
    }

    #[test]
    fn ledger_keeps_the_latest_line_per_contract_and_service() {
        let ledger = LineLedger::default();
        assert_eq!(ledger.get("7", "9"), None);
        ledger.remember(&line("11", 40));
        ledger.remember(&line("12", 42));
        assert_eq!(ledger.get("7", "9").map(|l| l.id), Some("12".to_string()));
        assert_eq!(ledger.get("7", "8"), None);
    }
}
