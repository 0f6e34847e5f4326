//! Recurring contract-service lines ("related services" of a catalog service), from Kaseya's
//! OpenAPI document:
//! * `POST /v2/finance/contracts/recurringservices/{contractId}/services` adds lines (service,
//!   units, cost, price, effective date);
//! * `POST /v2/admin/finance/services/{serviceId}/relatedservices/search` lists a service's lines
//!   across contracts: id, contract, account, effective date, cost, price — **no units**;
//! * `POST …/relatedservices/bulkupdate` sets cost, price and effective date of chosen lines.
//!
//! No call reads or changes a line's units, and none ends or removes a line. So:
//! * cost or price differ → the line is updated in place (bulk update);
//! * units differ → a line with the new values is added, effective today, and the old line is
//!   ended the only way the API allows — its cost and price set to zero — so exactly one line
//!   bills; the status note names both;
//! * a line found on the contract that this operator did not write (the wizard's "Add Service to
//!   Contract") is adopted: its cost and price are brought in step, and its units — which cannot
//!   be read — are taken to be the wanted quantity (said in the note, so a person can check);
//! * a second billing line of the same service on the same contract (e.g. from an earlier
//!   version that added a line per change) is ended.
//!
//! Units are remembered, not read: the client's [`LineLedger`] (this process) and the mapping's
//! status (across restarts, see `Psa::lists_contract_lines`).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::api::common::format_decimal_4;
use crate::psa::{ContractLine, LineValues, MinorUnits};
use async_trait::async_trait;

use super::*;
use crate::psa::{Billing, LineKey};

/// One line of a service, as the related-services search shows it (money in minor units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub id: String,
    pub contract_id: String,
    pub effective_date: String,
    pub cost: MinorUnits,
    pub price: MinorUnits,
}

impl Related {
    /// A line with zero cost and price bills nothing: ended (or a free service).
    pub fn bills(&self) -> bool {
        self.cost != 0 || self.price != 0
    }
}

/// The contract's current line of a service and the other lines that still bill.
#[derive(Debug, PartialEq, Eq)]
pub struct OnContract<'a> {
    pub current: Option<&'a Related>,
    pub extra_billing: Vec<&'a Related>,
}

/// Picks the current line among a service's lines on one contract: the newest billing line
/// (effective date, then id), or the newest line when none bills.
pub fn on_contract<'a>(rows: &'a [Related], contract_id: &str) -> OnContract<'a> {
    let mine: Vec<&Related> = rows
        .iter()
        .filter(|r| r.contract_id == contract_id)
        .collect();
    let newest = |a: &&Related, b: &&Related| {
        (a.bills(), a.effective_date.as_str(), id_num(&a.id)).cmp(&(
            b.bills(),
            b.effective_date.as_str(),
            id_num(&b.id),
        ))
    };
    let current = mine.iter().copied().max_by(newest);
    let extra_billing = mine
        .iter()
        .copied()
        .filter(|r| r.bills() && Some(r.id.as_str()) != current.map(|c| c.id.as_str()))
        .collect();
    OnContract {
        current,
        extra_billing,
    }
}

fn id_num(id: &str) -> i64 {
    id.parse().unwrap_or(0)
}

/// What to write to bring a contract's line of a service to the wanted values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineWrite {
    /// Nothing differs.
    Nothing,
    /// Cost or price differ: bulk-update the line in place.
    InPlace { line_id: String },
    /// Units differ (or no line bills): add a line, then end the listed ones.
    Replace { end: Vec<String> },
    /// No line at all: add one.
    Add,
}

/// Decides the write. `known_units` are the units of `current` as remembered (ledger or status);
/// `None` = a line nobody here wrote, whose units are taken to be the wanted ones (adoption).
/// Extra billing lines are always ended.
pub fn decide(
    found: &OnContract<'_>,
    known_units: Option<i64>,
    wanted: LineValues,
) -> (LineWrite, Vec<String>) {
    let extras: Vec<String> = found.extra_billing.iter().map(|r| r.id.clone()).collect();
    let Some(cur) = found.current else {
        return (LineWrite::Add, extras);
    };
    let units_differ = known_units.is_some_and(|u| u != wanted.quantity);
    // A current line that no longer bills while the wanted one does was ended: start anew.
    let ended = !cur.bills() && (wanted.cost != 0 || wanted.price != 0);
    if units_differ || ended {
        let mut end = vec![];
        if cur.bills() {
            end.push(cur.id.clone());
        }
        end.extend(extras);
        return (LineWrite::Replace { end }, Vec::new());
    }
    if cur.cost != wanted.cost || cur.price != wanted.price {
        return (
            LineWrite::InPlace {
                line_id: cur.id.clone(),
            },
            extras,
        );
    }
    (LineWrite::Nothing, extras)
}

/// Units of the lines this client wrote or adopted, by line id, for its own lifetime.
#[derive(Default)]
pub struct LineLedger {
    units: Mutex<HashMap<String, i64>>,
}

impl LineLedger {
    pub fn units(&self, line_id: &str) -> Option<i64> {
        self.lock().get(line_id).copied()
    }

    pub fn remember(&self, line: &ContractLine) {
        self.lock().insert(line.id.clone(), line.quantity);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.units.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn values_text(quantity: i64, cost: MinorUnits, price: MinorUnits) -> String {
    format!(
        "{quantity} units, cost {}, price {}",
        format_decimal_4(cost),
        format_decimal_4(price)
    )
}

/// Status note for a units change: the new line and the ended ones.
pub fn replacement_note(new: &ContractLine, ended: &[String], effective: &str) -> String {
    let mut note = format!(
        "added line {} ({}) effective {effective}",
        new.id,
        values_text(new.quantity, new.cost, new.price)
    );
    if !ended.is_empty() {
        note.push_str(&format!(
            "; ended line {} (cost and price set to 0: Kaseya BMS API v2 cannot change a line's \
             units or end a line otherwise)",
            ended.join(", ")
        ));
    }
    note
}

/// How an update of `line` to `to` is carried out (the same rule as [`decide`]), for `plan`.
pub fn update_method(line: &ContractLine, to: LineValues) -> String {
    if line.quantity != to.quantity {
        format!(
            "Kaseya BMS cannot change a line's units: adds a line of {} units effective today \
             and ends line {} (cost and price set to 0)",
            to.quantity, line.id
        )
    } else {
        format!("line {} updated in place (cost and price)", line.id)
    }
}

/// Status note for adopting a line this operator did not write.
pub fn adoption_note(line: &ContractLine) -> String {
    format!(
        "adopted line {} found on the contract; its units cannot be read through Kaseya BMS API \
         v2 and are taken to be {} — check the line in BMS if it was added with other units",
        line.id, line.quantity
    )
}

/// Status note for extra billing lines that were ended.
pub fn extras_note(ended: &[String]) -> String {
    format!(
        "ended duplicate line {} of the same service (cost and price set to 0)",
        ended.join(", ")
    )
}

impl BmsClient {
    /// The account's contracts that have not expired: 1 call,
    /// `GET /v2/finance/contracts/lookup?AccountId=&ExcludeExpiredContracts=true`.
    async fn contracts_by_lookup(&self, company_id: &PsaId) -> PsaResult<Vec<Contract>> {
        let account = convert::num_id("account", company_id)?;
        let req = Req::get("/v2/finance/contracts/lookup")
            .q("AccountId", account)
            .q("ExcludeExpiredContracts", "true");
        let rows: Vec<WLookup> = decode_list("contract", self.result(req).await?)?;
        Ok(rows
            .into_iter()
            .map(|c| Contract {
                id: c.id,
                company_id: company_id.clone(),
                name: c.name.unwrap_or_default(),
                active: c.is_active != Some(false),
            })
            .collect())
    }
}

#[async_trait]
impl Billing for BmsClient {
    /// 1 call: `GET /v2/finance/contracts/lookup?AccountId=&ExcludeExpiredContracts=true`.
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>> {
        let contract = self
            .contracts_by_lookup(company_id)
            .await?
            .into_iter()
            .filter(|c| convert::same_name(&c.name, name))
            .max_by_key(|c| c.active);
        if let Some(c) = &contract {
            self.remember_name(format!("contract:{}", c.id), &c.name);
            self.remember_name(format!("contract-account:{}", c.id), &c.company_id);
        }
        Ok(contract)
    }
    /// A wave of more accounts than the tenant has pages of accounts: ⌈contracts / 100⌉ calls
    /// to `GET /v2/finance/contracts/summary` (paged), rows attached to accounts by name through
    /// the account list (⌈accounts / 100⌉ calls more if this client has not listed accounts
    /// yet), plus 1 look-up per account whose name another account shares (see
    /// [`contract_summary`]). A smaller wave: 1 look-up per account.
    async fn contracts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<Contract>>> {
        if company_ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let roster = self.roster().await?;
        let mut per_account = company_ids.to_vec();
        let mut out = Vec::new();
        if contract_summary::worth_listing(company_ids.len(), roster.len(), PAGE_SIZE) {
            let rows: Vec<WContractSummary> = self
                .pages(
                    "contract",
                    Req::get("/v2/finance/contracts/summary"),
                    false,
                    |_: &WContractSummary| true,
                )
                .await?;
            let today = self.tenant_now().await?.date();
            let attached = contract_summary::attach(
                company_ids,
                &roster,
                rows,
                &self.active_contract_statuses,
                today,
            );
            out = attached.contracts;
            per_account = attached.ask_per_account;
        }
        for account in &per_account {
            out.extend(self.contracts_by_lookup(account).await?);
        }
        Ok(Some(out))
    }
    /// 2 calls when found (`GET …/services/lookup?Filter.Name=` then `GET …/services/{id}` for
    /// cost and price, which the lookup does not carry), 1 when not.
    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>> {
        let req = Req::get("/v2/admin/finance/services/lookup").q("Filter.Name", name);
        let rows: Vec<WLookup> = self
            .pages("service", req, true, |s: &WLookup| {
                s.name
                    .as_deref()
                    .is_some_and(|n| convert::same_name(n, name))
            })
            .await?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(row) => match self.get_service(&row.id).await {
                Ok(s) => Ok(Some(catalog(s))),
                Err(PsaError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
    /// 1 call: `POST /v2/admin/finance/services/services`.
    async fn create_catalog_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService> {
        let body = json!({
            "Name": spec.name,
            "Description": spec.description,
            "UnitCost": convert::money_to_wire(spec.cost),
            "UnitPrice": convert::money_to_wire(spec.price),
            "IsActive": true,
            "IsTaxable": false,
        });
        let v = self
            .result(Req::with_body(
                Method::POST,
                "/v2/admin/finance/services/services",
                body,
            ))
            .await?;
        if v.is_null() {
            return Err(empty_answer("service"));
        }
        Ok(catalog(decode("service", v)?))
    }
    /// 2 calls: `GET …/services/{id}` then `PUT …/services/{id}`. The PUT replaces the whole
    /// service, so category, unit of measure, accounts, tax and margin are read first and sent
    /// back unchanged: only name, description, cost and price are ours.
    async fn update_catalog_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        let current = self.get_service(id).await?;
        let sid = convert::num_id("service", id)?;
        let body = json!({
            "Id": sid,
            "Name": spec.name,
            "Description": spec.description,
            "UnitCost": convert::money_to_wire(spec.cost),
            "UnitPrice": convert::money_to_wire(spec.price),
            "CategoryId": current.category_id,
            "SubCategoryId": current.sub_category_id,
            "UnitOfMeasureId": current.unit_of_measure_id,
            "IncomeAccountId": current.income_account_id,
            "ExpenseAccountId": current.expense_account_id,
            "IsActive": current.is_active.unwrap_or(true),
            "IsTaxable": current.is_taxable.unwrap_or(false),
            "Margin": current.margin,
            "MarginType": current.margin_type,
        });
        let path = format!("/v2/admin/finance/services/{sid}");
        let v = self.result(Req::with_body(Method::PUT, path, body)).await?;
        if v.is_null() {
            return Ok(CatalogService {
                id: id.clone(),
                name: spec.name.clone(),
                description: spec.description.clone(),
                cost: spec.cost,
                price: spec.price,
            });
        }
        Ok(catalog(decode("service", v)?))
    }
    /// 1 call: `DELETE /v2/admin/finance/services/{id}`; already gone counts as done.
    async fn delete_catalog_service(&self, id: &PsaId) -> PsaResult<()> {
        let path = format!(
            "/v2/admin/finance/services/{}",
            convert::num_id("service", id)?
        );
        let req = Req {
            method: Method::DELETE,
            ..Req::get(path)
        };
        match self.result(req).await {
            Ok(_) | Err(PsaError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
    /// `false`: BMS finds a contract's line of a service but cannot read its units, so the
    /// caller supplies the units it remembers for that line (see [`lines`]).
    fn lists_contract_lines(&self) -> bool {
        false
    }
    /// 1 call per 100 lines of the service (usually 1): `POST …/services/{id}/relatedservices/
    /// search`, narrowed by contract and account name when known. The line is the contract's
    /// current one (the newest that bills); its quantity is what this client wrote, or 0 when it
    /// did not write it (the caller's memory decides then).
    async fn find_contract_line(&self, key: LineKey<'_>) -> PsaResult<Option<ContractLine>> {
        let LineKey {
            contract_id,
            service_id,
        } = key;
        let rows = self.service_lines(contract_id, service_id).await?;
        let found = billing::on_contract(&rows, contract_id);
        Ok(found.current.map(|cur| {
            let units = self.ledger.units(&cur.id).unwrap_or(0);
            line_of(cur, contract_id, service_id, units)
        }))
    }
    /// 1 search; then either 1 call to add the line (`POST /v2/finance/contracts/
    /// recurringservices/{contractId}/services`, effective today for the tenant) or, when the
    /// contract already has a line of the service (added in BMS by hand), its adoption: 0–2 bulk
    /// updates (cost and price in step, duplicates ended).
    async fn add_contract_line(
        &self,
        key: LineKey<'_>,
        values: LineValues,
    ) -> PsaResult<ContractLine> {
        Ok(self
            .sync_line(key.contract_id, key.service_id, None, values)
            .await?
            .line()
            .clone())
    }
    /// 1 search, then: nothing when the line is in step; 1 bulk update when cost or price differ
    /// (in place); when units differ, 1 call adding a line effective today and 1 bulk update
    /// ending the old one (cost and price 0), returned as [`LineUpdate::Replaced`] with a note.
    async fn update_contract_line(
        &self,
        line: &ContractLine,
        values: LineValues,
    ) -> PsaResult<LineUpdate> {
        self.sync_line(&line.contract_id, &line.service_id, Some(line), values)
            .await
    }
    /// Units differ → a new line plus the old one ended; cost or price only → in place.
    fn line_update_method(&self, line: &ContractLine, to: LineValues) -> Option<String> {
        Some(update_method(line, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, contract: &str, date: &str, cost: i64, price: i64) -> Related {
        Related {
            id: id.into(),
            contract_id: contract.into(),
            effective_date: date.into(),
            cost,
            price,
        }
    }

    const WANT: LineValues = LineValues {
        quantity: 7,
        cost: 15_000,
        price: 40_000,
    };

    #[test]
    fn the_current_line_is_the_newest_that_bills() {
        let rows = vec![
            row("10", "7", "2026-01-01T00:00:00", 15_000, 40_000),
            row("11", "7", "2026-03-01T00:00:00", 0, 0),
            row("12", "8", "2026-04-01T00:00:00", 15_000, 40_000),
            row("13", "7", "2026-02-01T00:00:00", 15_000, 40_000),
        ];
        let f = on_contract(&rows, "7");
        assert_eq!(f.current.map(|r| r.id.as_str()), Some("13"));
        assert_eq!(
            f.extra_billing
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["10"]
        );
        let ended_only = vec![row("11", "7", "2026-03-01T00:00:00", 0, 0)];
        assert_eq!(
            on_contract(&ended_only, "7").current.map(|r| r.id.as_str()),
            Some("11")
        );
        assert_eq!(on_contract(&rows, "9").current, None);
    }

    #[test]
    fn writes_follow_what_differs() {
        let same = row("13", "7", "2026-02-01T00:00:00", 15_000, 40_000);
        let cheaper = row("13", "7", "2026-02-01T00:00:00", 15_000, 30_000);
        let ended = row("13", "7", "2026-02-01T00:00:00", 0, 0);
        let dup = row("10", "7", "2026-01-01T00:00:00", 15_000, 40_000);
        let one = |r: &Related| vec![r.clone()];
        type Row = (
            &'static str,
            Vec<Related>,
            Option<i64>,
            LineWrite,
            Vec<&'static str>,
        );
        let table: Vec<Row> = vec![
            (
                "nothing on the contract",
                vec![],
                None,
                LineWrite::Add,
                vec![],
            ),
            ("in step", one(&same), Some(7), LineWrite::Nothing, vec![]),
            (
                "adopted, units unknown, money in step",
                one(&same),
                None,
                LineWrite::Nothing,
                vec![],
            ),
            (
                "price differs",
                one(&cheaper),
                Some(7),
                LineWrite::InPlace {
                    line_id: "13".into(),
                },
                vec![],
            ),
            (
                "units differ",
                one(&cheaper),
                Some(5),
                LineWrite::Replace {
                    end: vec!["13".into()],
                },
                vec![],
            ),
            (
                "current line was ended",
                one(&ended),
                Some(7),
                LineWrite::Replace { end: vec![] },
                vec![],
            ),
            (
                "a duplicate bills too",
                vec![same.clone(), dup.clone()],
                Some(7),
                LineWrite::Nothing,
                vec!["10"],
            ),
            (
                "units differ with a duplicate",
                vec![same.clone(), dup],
                Some(5),
                LineWrite::Replace {
                    end: vec!["13".into(), "10".into()],
                },
                vec![],
            ),
        ];
        for (name, rows, units, want_write, want_end) in table {
            let f = on_contract(&rows, "7");
            let (write, end) = decide(&f, units, WANT);
            assert_eq!(write, want_write, "{name}");
            assert_eq!(end, want_end, "{name}");
        }
    }

    #[test]
    fn notes_name_the_lines() {
        let new = ContractLine {
            id: "14".into(),
            contract_id: "7".into(),
            service_id: "9".into(),
            quantity: 7,
            cost: 15_000,
            price: 40_000,
        };
        let note = replacement_note(&new, &["13".into()], "2026-12-02");
        assert!(
            note.starts_with("added line 14 (7 units, cost 1.50, price 4.00) effective 2026-12-02"),
            "{note}"
        );
        assert!(note.contains("ended line 13"), "{note}");
        assert!(adoption_note(&new).contains("taken to be 7"));
        let five = ContractLine {
            quantity: 5,
            ..new.clone()
        };
        let seven = LineValues {
            quantity: 7,
            cost: 15_000,
            price: 40_000,
        };
        assert_eq!(
            update_method(&five, seven),
            "Kaseya BMS cannot change a line's units: adds a line of 7 units effective today and \
             ends line 14 (cost and price set to 0)"
        );
        let dearer = LineValues {
            quantity: 7,
            price: 45_000,
            ..seven
        };
        assert_eq!(
            update_method(&new, dearer),
            "line 14 updated in place (cost and price)"
        );
        let ledger = LineLedger::default();
        ledger.remember(&new);
        assert_eq!(ledger.units("14"), Some(7));
        assert_eq!(ledger.units("13"), None);
    }
}
