//! Contracts of many accounts from one paged listing (`GET /v2/finance/contracts/summary`)
//! instead of one `GET /v2/finance/contracts/lookup?AccountId=` per account: a wave of 1,000
//! mapped accounts costs ⌈contracts / 100⌉ calls, not 1,000 calls that BMS's 1,500 calls per hour
//! per endpoint would spread over 40 minutes.
//!
//! The summary row names its account by **name only** (`ClientContractSummaryOutputDto` has no
//! account id), so a row is attached to an account through the tenant's account list:
//! * an account whose name (blanks and case ignored) no other account of the tenant has gets
//!   the rows of that name;
//! * an account whose name is shared, or that the account list does not know, is answered by
//!   the per-account look-up (`ask_per_account`): the listing cannot tell whose rows they are.
//!
//! "Active, not expired" as the look-up's `ExcludeExpiredContracts=true` means it: Kaseya's
//! document says neither which `Status` texts exist nor how `ExcludeExpiredContracts` decides.
//! Here a row whose `EndDate` is a day before the tenant's today is expired and dropped (as the
//! look-up would leave it out); a row is active when its `Status` is one of the connection's
//! `activeContractStatuses` (default `Active`), else kept as inactive (the look-up's
//! `IsActive: false`), so the mapping says `ContractInactive` rather than "not found".
//! Pure: the client does the calls, this decides.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use super::wire::WContractSummary;
use crate::psa::{Contract, PsaId};

/// `Status` texts that count as active when `activeContractStatuses` is not set.
pub const DEFAULT_ACTIVE_STATUSES: &[&str] = &["Active"];

/// What the listing answered: contracts of the accounts it could attach rows to, and the
/// accounts it could not answer for (look them up one by one).
#[derive(Debug, Default, PartialEq)]
pub struct Attached {
    pub contracts: Vec<Contract>,
    pub ask_per_account: Vec<PsaId>,
}

/// A name as people mean it: blanks collapsed, case ignored.
fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether listing the tenant's contracts is cheaper than a look-up per account. The listing
/// costs about a page per 100 accounts (most accounts have a contract or two; the contract
/// count is unknown before the first page), a look-up one call per wanted account: a single
/// mapping changed later keeps costing its own look-up only.
pub fn worth_listing(wanted: usize, accounts_in_tenant: usize, page_size: usize) -> bool {
    wanted > accounts_in_tenant.div_ceil(page_size.max(1))
}

/// Whether a contract that ends on `end_date` (a BMS date-time, tenant time) has expired on
/// `today`. The end day itself still counts; a date that does not parse or BMS's empty value
/// (`0001-01-01T00:00:00`) is no end date.
pub fn expired(end_date: Option<&str>, today: NaiveDate) -> bool {
    let Some(day) = end_date
        .map(str::trim)
        .and_then(|t| t.get(..10))
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    else {
        return false;
    };
    day.year() > 1 && day < today
}

/// Attaches summary `rows` to the `wanted` accounts through the tenant's account list
/// (`roster`: id and name of every account), dropping expired rows.
pub fn attach(
    wanted: &[PsaId],
    roster: &[(PsaId, String)],
    rows: Vec<WContractSummary>,
    active_statuses: &[String],
    today: NaiveDate,
) -> Attached {
    let mut holders: HashMap<String, usize> = HashMap::new();
    let mut name_of: HashMap<&str, &str> = HashMap::new();
    for (id, name) in roster {
        *holders.entry(name_key(name)).or_default() += 1;
        name_of.insert(id.as_str(), name.as_str());
    }
    let mut by_name: HashMap<String, PsaId> = HashMap::new();
    let mut out = Attached::default();
    for id in wanted {
        match name_of.get(id.as_str()).map(|n| name_key(n)) {
            Some(key) if holders.get(&key) == Some(&1) => {
                by_name.insert(key, id.clone());
            }
            // Unknown to the account list, or a name two accounts share.
            _ => out.ask_per_account.push(id.clone()),
        }
    }
    for row in rows {
        let Some(account) = row
            .account_name
            .as_deref()
            .and_then(|n| by_name.get(&name_key(n)))
        else {
            continue;
        };
        if expired(row.end_date.as_deref(), today) {
            continue;
        }
        let active = row
            .status
            .as_deref()
            .is_some_and(|s| active_statuses.iter().any(|a| name_key(a) == name_key(s)));
        out.contracts.push(Contract {
            id: row.id,
            company_id: account.clone(),
            name: row.contract_name.unwrap_or_default(),
            active,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, account: &str, name: &str, status: &str, end: &str) -> WContractSummary {
        WContractSummary {
            id: id.into(),
            contract_name: Some(name.into()),
            account_name: Some(account.into()),
            status: Some(status.into()),
            end_date: Some(end.into()),
        }
    }

    fn ids(v: &[&str]) -> Vec<PsaId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    fn active() -> Vec<String> {
        vec!["Active".to_string()]
    }

    fn roster() -> Vec<(PsaId, String)> {
        [
            ("1", "Contoso Ltd"),
            ("2", "Fabrikam Inc"),
            // Two accounts named alike (blanks and case differ): neither can be told apart.
            ("3", "Twin Corp"),
            ("4", "twin  corp"),
            ("5", "Not Wanted"),
        ]
        .iter()
        .map(|(i, n)| (i.to_string(), n.to_string()))
        .collect()
    }

    /// (contract id, account id, active) of what was attached, in row order.
    fn attached(a: &Attached) -> Vec<(&str, &str, bool)> {
        a.contracts
            .iter()
            .map(|c| (c.id.as_str(), c.company_id.as_str(), c.active))
            .collect()
    }

    #[test]
    fn rows_attach_by_unique_account_name_and_the_rest_is_looked_up() {
        let rows = vec![
            row(
                "10",
                "CONTOSO  LTD",
                "Managed Security",
                "Active",
                "2030-12-31T00:00:00",
            ),
            row(
                "11",
                "Twin Corp",
                "Managed Security",
                "Active",
                "2030-12-31T00:00:00",
            ),
            row(
                "12",
                "Not Wanted",
                "Managed Security",
                "Active",
                "2030-12-31T00:00:00",
            ),
            row(
                "13",
                "Fabrikam Inc",
                "Backup",
                "Inactive",
                "2030-12-31T00:00:00",
            ),
            // Expired yesterday: the look-up with ExcludeExpiredContracts leaves it out.
            row(
                "14",
                "Fabrikam Inc",
                "Managed Security",
                "Active",
                "2026-12-02T00:00:00",
            ),
            // Ends today: still running.
            row(
                "15",
                "Contoso Ltd",
                "Old Plan",
                "active",
                "2026-12-03T00:00:00",
            ),
            // BMS's empty date: no end.
            row(
                "16",
                "Contoso Ltd",
                "Open Ended",
                "Active",
                "0001-01-01T00:00:00",
            ),
        ];
        let got = attach(
            &ids(&["1", "2", "3", "9"]),
            &roster(),
            rows,
            &active(),
            today(),
        );
        assert_eq!(
            attached(&got),
            [
                ("10", "1", true),
                ("13", "2", false),
                ("15", "1", true),
                ("16", "1", true),
            ]
        );
        // 3 shares its name with 4; 9 is not in the account list.
        assert_eq!(got.ask_per_account, ids(&["3", "9"]));
    }

    #[test]
    fn the_active_statuses_are_the_connections() {
        let rows = vec![
            row("20", "Contoso Ltd", "A", "Active", ""),
            row("21", "Contoso Ltd", "B", "In Effect", ""),
            row("22", "Contoso Ltd", "C", "", ""),
        ];
        let statuses = vec!["in effect".to_string(), "Active".to_string()];
        let got = attach(&ids(&["1"]), &roster(), rows, &statuses, today());
        assert_eq!(
            attached(&got),
            [("20", "1", true), ("21", "1", true), ("22", "1", false)]
        );
    }

    #[test]
    fn expiry_is_judged_by_the_end_day_in_tenant_time() {
        // (end date, expired on 2026-12-03)
        let table = [
            (Some("2026-12-02T23:59:59"), true),
            (Some("2026-12-03T00:00:00"), false),
            (Some("2027-01-01T00:00:00"), false),
            (Some("2020-01-01"), true),
            (Some("0001-01-01T00:00:00"), false),
            (Some("not a date"), false),
            (Some(""), false),
            (None, false),
        ];
        for (end, want) in table {
            assert_eq!(expired(end, today()), want, "{end:?}");
        }
    }

    #[test]
    fn a_small_wave_is_looked_up_per_account() {
        // (wanted accounts, accounts in the tenant, list?)
        let table = [
            (1, 10_000, false),
            (100, 10_000, false),
            (101, 10_000, true),
            (1_000, 1_000, true),
            (10, 1_000, false),
            (11, 1_000, true),
            (2, 50, true),
            (1, 50, false),
        ];
        for (wanted, accounts, want) in table {
            assert_eq!(
                worth_listing(wanted, accounts, 100),
                want,
                "{wanted} of {accounts}"
            );
        }
    }
}
