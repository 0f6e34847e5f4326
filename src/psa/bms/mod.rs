//! Kaseya BMS (formerly Vorex) REST API v2 client behind the neutral [`Psa`] trait.
//!
//! Facts this relies on are in `reference/psa-apis/kaseya-bms.md`; choices where the API is
//! silent or thin are in `docs/providers/kaseya-bms.md`. In short:
//! * login `POST /v2/security/authenticate` (form: `GrantType=password`, `UserName`, `Password`,
//!   `Tenant`), Bearer token, renewed with `/v2/security/refreshtoken` a minute before its
//!   `accessTokenExpireOn`, and once more by a fresh login when a call meets a 401;
//! * every answer goes through [`envelope::parse_response`]: `success: false` behind HTTP 200 is
//!   an error carrying the PSA's message, never a success;
//! * a per-endpoint call budget ([`RateBudget`], 1,500 calls per hour per endpoint by default);
//! * contract lines are found and updated through the catalog service's related services; their
//!   units can be neither read nor changed, so a units change adds a line and ends the old one:
//!   see [`lines`];
//! * date-times are written in the tenant's time zone (`userinfo.timeZoneValue`), read once;
//! * paged lists stop at `totalRecords` where the answer carries it, else at a short page.
//!
//! # Calls per operation
//! Each method's doc gives the HTTP calls it makes once a token is held. Add one login call
//! (`authenticate`) for the first call of a client and whenever the token has lapsed, or one
//! `refreshtoken` call when it is about to; a 401 adds one login and the call once more.

mod auth;
mod billing;
mod contract_summary;
mod convert;
mod directory;
pub(crate) mod envelope;
mod limits;
mod tickets;
mod transport;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

pub use envelope::{parse_response, Envelope};

use self::billing::{LineWrite, Related};
use self::transport::{Req, Transport};
use self::wire::{
    decode, decode_list, WAccount, WContact, WContractSummary, WIdOnly, WLine, WLocationLookup,
    WLookup, WRelated, WService, WTicket, WUserInfo,
};
use super::{
    CatalogService, CatalogServiceSpec, Company, CompanyFilter, CompanyKey, Contact, Contract,
    ContractLine, DirectoryContact, LineUpdate, LineValues, Named, NewTicket, Provider, Psa,
    PsaError, PsaId, PsaResult, StatusInfo, Ticket,
};
use crate::psa::{Directory, RequiredTicketSetting};
use crate::secret::SecretString;

/// Rows asked for per page (what Kaseya's own samples use).
/// `TicketInputDto` of the BMS v2 document requires PriorityId, SourceId, StatusId and TypeId
/// besides what the dispatcher always sends (AccountId, LocationId, Title, Details, OpenDate).
/// Clients written against live tenants report that a queue or an assignee is needed too;
/// psa-operator assigns no one, so the queue (`ticket.board`) is required.
pub const REQUIRED_TICKET_SETTINGS: &[RequiredTicketSetting] = &[
    RequiredTicketSetting::new("board", "QueueId")
        .because(" (a queue: BMS refuses a ticket without a queue or an assignee, and psa-operator assigns no one)"),
    RequiredTicketSetting::new("status", "StatusId"),
    RequiredTicketSetting::new("priority", "PriorityId"),
    RequiredTicketSetting::new("type", "TypeId"),
    RequiredTicketSetting::new("source", "SourceId"),
];

/// The API user's login. `Debug` never prints the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BmsCredentials {
    pub username: String,
    pub password: SecretString,
}

/// Calls allowed per endpoint. Kaseya documents 1,500 calls per hour per endpoint for API v2.
///
/// The budget is a token bucket per endpoint: `burst` calls may go at once, the rest trickle in
/// so that no rolling hour ever holds more than `calls_per_hour` calls to one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateBudget {
    pub calls_per_hour: u32,
    pub burst: u32,
    /// How long a call may wait for budget before it fails as transient (with `retry_after`).
    pub max_wait: Duration,
}

impl Default for RateBudget {
    fn default() -> Self {
        RateBudget {
            calls_per_hour: 1_500,
            burst: 100,
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Names of the tenant lookup tables (`GET /v2/system/tenantlookup/{tableName}`) for the
/// picklists Kaseya's document has no dedicated path for. The document names no table; these
/// defaults are guesses kept overridable (`spec.provider.kaseyaBms.lookupTables`). A table the
/// tenant does not know is reported as `LookupUnavailable` naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupTables {
    pub ticket_type: String,
    pub ticket_source: String,
    pub note_type: String,
}

impl Default for LookupTables {
    fn default() -> Self {
        LookupTables {
            ticket_type: "TicketType".into(),
            ticket_source: "TicketSource".into(),
            note_type: "TicketNoteType".into(),
        }
    }
}

/// Everything [`BmsClient::new`] needs; reconcilers fill it from a `PsaConnection` and its
/// Secret (`username`, `password`).
#[derive(Clone, Debug)]
pub struct BmsConfig {
    /// API host, e.g. `https://api.bms.kaseya.com` (paths start with `/v2/`).
    pub url: String,
    /// The BMS tenant (company name as typed at login).
    pub tenant: String,
    pub credentials: BmsCredentials,
    pub budget: RateBudget,
    /// Per-request timeout.
    pub timeout: Duration,
    /// A token this close to its expiry is renewed before use.
    pub refresh_margin: Duration,
    pub lookup_tables: LookupTables,
    /// Contract summary `Status` texts that count as active when contracts are listed for many
    /// accounts at once (`spec.provider.kaseyaBms.activeContractStatuses`; Kaseya's document
    /// does not enumerate them). See [`contract_summary`].
    pub active_contract_statuses: Vec<String>,
}

impl BmsConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        url: impl Into<String>,
        tenant: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        BmsConfig {
            url: url.into(),
            tenant: tenant.into(),
            credentials: BmsCredentials {
                username: username.into(),
                password: password.into(),
            },
            budget: RateBudget::default(),
            timeout: crate::psa::DEFAULT_TIMEOUT,
            refresh_margin: Duration::from_secs(60),
            lookup_tables: LookupTables::default(),
            active_contract_statuses: contract_summary::DEFAULT_ACTIVE_STATUSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

pub const PAGE_SIZE: usize = 100;
/// Upper bound on pages read by one listing (100,000 rows).
const MAX_PAGES: usize = 1_000;

/// Accounts per contact search: 100 repeated `Filter.AccountIds` keys keep the query near 3 KB.
const ACCOUNTS_PER_SEARCH: usize = 100;
/// Pages read looking for a marker: the token is unique, so one row is expected; a few pages
/// allow for "contains" matches on other text without reading the whole ticket list.
const MARKER_PAGES: usize = 3;

/// Comment BMS requires when resolving a ticket and none was given.
const DEFAULT_CLOSE_COMMENT: &str = "Closed by psa-operator.";

/// A Kaseya BMS client. Cheap to share behind `Arc<dyn Psa>`; holds the token, the call budget,
/// values read once (note type, closed status, the tenant's time zone), the units of the contract
/// lines it wrote, and the names of the contracts and accounts it has seen (to narrow searches).
pub struct BmsClient {
    t: Transport,
    tables: LookupTables,
    note_type: OnceCell<i64>,
    closed_status: OnceCell<i64>,
    time_zone: OnceCell<Option<f64>>,
    ledger: billing::LineLedger,
    /// `contract:{id}` / `account:{id}` → name.
    names: Mutex<HashMap<String, String>>,
    active_contract_statuses: Vec<String>,
    /// Id and name of every account of the tenant, from the last unfiltered account listing:
    /// contract summary rows name their account by name only (see [`contract_summary`]).
    roster: Mutex<Option<Roster>>,
}

/// Id and name of every account of the tenant.
type Roster = Arc<Vec<(PsaId, String)>>;

impl BmsClient {
    /// Builds a client; nothing is sent until the first call.
    pub fn new(config: BmsConfig) -> PsaResult<Self> {
        Ok(BmsClient {
            tables: config.lookup_tables.clone(),
            active_contract_statuses: config.active_contract_statuses.clone(),
            t: Transport::new(config)?,
            note_type: OnceCell::new(),
            closed_status: OnceCell::new(),
            time_zone: OnceCell::new(),
            ledger: billing::LineLedger::default(),
            names: Mutex::new(HashMap::new()),
            roster: Mutex::new(None),
        })
    }

    fn remember_name(&self, key: String, name: &str) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, name.to_string());
    }

    fn name_of(&self, key: &str) -> Option<String> {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn remember_company(&self, c: &Company) {
        self.remember_name(format!("account:{}", c.id), &c.name);
    }

    /// Keeps every account's id and name from an unfiltered listing.
    fn set_roster(&self, companies: &[Company]) {
        let roster = companies
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        *self.roster.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(roster));
    }

    /// The tenant's accounts (id, name): the last unfiltered listing, or a new one
    /// (⌈accounts / 100⌉ calls) when the client has not listed them yet.
    async fn roster(&self) -> PsaResult<Roster> {
        let known = self
            .roster
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(r) = known {
            return Ok(r);
        }
        self.list_companies(&CompanyFilter::default()).await?;
        Ok(self
            .roster
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default())
    }

    /// The tenant's wall clock now (one `userinfo` call per client, on first use).
    async fn tenant_now(&self) -> PsaResult<NaiveDateTime> {
        Ok(convert::tenant_time(
            Utc::now(),
            self.tenant_offset().await?,
        ))
    }

    /// The tenant's time zone as hours from UTC (one `userinfo` call per client, on first use).
    async fn tenant_offset(&self) -> PsaResult<Option<f64>> {
        let offset = self
            .time_zone
            .get_or_try_init(|| async {
                let v = self.result(Req::get("/v2/security/userinfo")).await?;
                let info: WUserInfo = serde_json::from_value(v).unwrap_or_default();
                Ok::<_, PsaError>(info.time_zone_value)
            })
            .await?;
        Ok(*offset)
    }

    /// Reads a tenant lookup table; a table the tenant does not know is `LookupUnavailable`
    /// naming it (the table names are not published, see [`LookupTables`]).
    async fn tenant_lookup(&self, what: &str, table: &str) -> PsaResult<Vec<WLookup>> {
        let path = format!("/v2/system/tenantlookup/{}", urlencoding::encode(table));
        match self.result(Req::get(path)).await {
            Ok(v) => decode_list(what, v),
            Err(PsaError::Permanent { message, .. }) | Err(PsaError::NotFound { message }) => {
                Err(PsaError::LookupUnavailable {
                    table: table.to_string(),
                    message: format!(
                        "the tenant has no {what} lookup table {table:?} ({message}); Kaseya \
                         does not publish these names — set \
                         spec.provider.kaseyaBms.lookupTables to the tenant's table"
                    ),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn result(&self, req: Req) -> PsaResult<Value> {
        Ok(self.t.call(req).await?.result)
    }

    /// Pages through a paged or page-able list, keeping rows `keep` accepts; stops at the first
    /// kept row when `first_only`, on a short page, or when `totalRecords` is reached.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        req: Req,
        first_only: bool,
        keep: impl FnMut(&T) -> bool,
    ) -> PsaResult<Vec<T>> {
        self.pages_up_to(what, req, first_only, MAX_PAGES, keep)
            .await
    }

    async fn pages_up_to<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        req: Req,
        first_only: bool,
        max_pages: usize,
        mut keep: impl FnMut(&T) -> bool,
    ) -> PsaResult<Vec<T>> {
        let mut out = Vec::new();
        let mut seen = 0usize;
        for page in 1..=max_pages {
            let env = self
                .t
                .call(req.clone().q("PageSize", PAGE_SIZE).q("PageNumber", page))
                .await?;
            let rows: Vec<T> = decode_list(what, env.result)?;
            let n = rows.len();
            seen += n;
            for r in rows {
                if keep(&r) {
                    out.push(r);
                    if first_only {
                        return Ok(out);
                    }
                }
            }
            if last_page(n, seen, env.total_records) {
                break;
            }
        }
        Ok(out)
    }

    async fn lookup(&self, what: &str, path: &str) -> PsaResult<Vec<Named>> {
        let rows: Vec<WLookup> = decode_list(what, self.result(Req::get(path)).await?)?;
        Ok(active_named(rows))
    }

    async fn find_account(&self, key: CompanyKey, value: &str) -> PsaResult<Option<Company>> {
        // The PSA filter matches literally: send the name as people mean it (single spaces).
        let needle = value.split_whitespace().collect::<Vec<_>>().join(" ");
        let req = Req::get("/v2/crm/accounts/summary").q(convert::company_filter(key), &needle);
        let rows: Vec<WAccount> = self
            .pages("account", req, true, |a: &WAccount| {
                convert::company_value(a, key).is_some_and(|f| convert::same_name(f, value))
            })
            .await?;
        let company = rows.into_iter().next().map(convert::company);
        if let Some(c) = &company {
            self.remember_company(c);
        }
        Ok(company)
    }

    /// The account's main location: one call to the locations lookup.
    async fn main_location(&self, account_id: i64) -> PsaResult<i64> {
        let path = format!("/v2/crm/accounts/{account_id}/locations/lookup");
        let rows: Vec<WLocationLookup> =
            decode_list("location", self.result(Req::get(path)).await?)?;
        let best = rows.iter().max_by_key(|l| l.is_main == Some(true));
        match best {
            Some(l) => convert::num_id("location", &l.id),
            None => Err(PsaError::Permanent {
                status: None,
                message: format!(
                    "account {account_id} has no location; Kaseya BMS needs one on every ticket"
                ),
            }),
        }
    }

    /// The note type for our notes: the tenant's default (or first) active note type, read once.
    async fn note_type(&self) -> PsaResult<i64> {
        self.note_type
            .get_or_try_init(|| async {
                let rows = self
                    .tenant_lookup("ticket note type", &self.tables.note_type)
                    .await?;
                let active: Vec<&WLookup> =
                    rows.iter().filter(|r| r.is_active != Some(false)).collect();
                let pick = active
                    .iter()
                    .find(|r| r.is_default == Some(true))
                    .or_else(|| active.first())
                    .ok_or_else(|| PsaError::Permanent {
                        status: None,
                        message: "the BMS tenant has no active ticket note type".to_string(),
                    })?;
                convert::num_id("note type", &pick.id)
            })
            .await
            .copied()
    }

    async fn get_service(&self, id: &str) -> PsaResult<WService> {
        let path = format!(
            "/v2/admin/finance/services/{}",
            convert::num_id("service", id)?
        );
        decode("service", self.result(Req::get(path)).await?)
    }

    /// Posts one recurring-service line effective today (one call).
    async fn post_line(
        &self,
        contract_id: &str,
        service_id: &str,
        values: LineValues,
    ) -> PsaResult<ContractLine> {
        let cid = convert::num_id("contract", contract_id)?;
        let sid = convert::num_id("service", service_id)?;
        let effective = convert::wire_day(self.tenant_now().await?);
        let body = json!([{
            "ServiceId": sid,
            "Units": values.quantity,
            "UnitCost": convert::money_to_wire(values.cost),
            "UnitPrice": convert::money_to_wire(values.price),
            "EffectiveDate": effective,
            "SortOrder": 0,
        }]);
        let path = format!("/v2/finance/contracts/recurringservices/{cid}/services");
        let result = self
            .result(Req::with_body(Method::POST, path, body))
            .await?;
        // Swagger says one line; accept a list too and take the line for our service.
        let wl: WLine = match result {
            Value::Array(rows) => {
                let mut lines: Vec<WLine> = decode_list("contract line", Value::Array(rows))?;
                let pos = lines
                    .iter()
                    .rposition(|l| l.service_id.as_deref() == Some(service_id))
                    .or(lines.len().checked_sub(1));
                match pos {
                    Some(i) => lines.swap_remove(i),
                    None => return Err(empty_answer("contract line")),
                }
            }
            Value::Null => return Err(empty_answer("contract line")),
            other => decode("contract line", other)?,
        };
        let line = convert::line(wl, contract_id, service_id);
        self.ledger.remember(&line);
        Ok(line)
    }
}

fn empty_answer(what: &str) -> PsaError {
    PsaError::Permanent {
        status: None,
        message: format!("the BMS answer to the {what} call carries no {what}"),
    }
}

/// Whether a paged listing is done: at `totalRecords` when the answer carries it (a server may
/// cap pages below what we ask), else at a short page.
fn last_page(rows_in_page: usize, seen: usize, total: Option<u64>) -> bool {
    match total {
        Some(t) => rows_in_page == 0 || seen as u64 >= t,
        None => rows_in_page < PAGE_SIZE,
    }
}

fn active_named(rows: Vec<WLookup>) -> Vec<Named> {
    rows.into_iter()
        .filter(|r| r.is_active != Some(false))
        .map(|r| Named {
            id: r.id,
            name: r.name.unwrap_or_default(),
        })
        .collect()
}

fn set_opt(body: &mut Value, key: &str, what: &str, id: Option<&PsaId>) -> PsaResult<()> {
    if let Some(id) = id {
        body[key] = json!(convert::num_id(what, id)?);
    }
    Ok(())
}

fn catalog(s: WService) -> CatalogService {
    CatalogService {
        id: s.id,
        name: s.name.unwrap_or_default(),
        description: s.description.unwrap_or_default(),
        cost: convert::money_from_wire(s.unit_cost),
        price: convert::money_from_wire(s.unit_price),
    }
}

#[async_trait]
impl Psa for BmsClient {
    fn provider(&self) -> Provider {
        Provider::KaseyaBms
    }
    /// 1 call: `GET /v2/security/userinfo` (plus the login every first call makes); keeps the
    /// tenant's time zone for the dates this client writes.
    async fn verify(&self) -> PsaResult<()> {
        let v = self.result(Req::get("/v2/security/userinfo")).await?;
        let info: WUserInfo = serde_json::from_value(v).unwrap_or_default();
        let _ = self.time_zone.set(info.time_zone_value);
        Ok(())
    }
}

impl BmsClient {
    /// The closed status for resolving without one from the settings: the first closed status.
    async fn closed_status(&self) -> PsaResult<i64> {
        self.closed_status
            .get_or_try_init(|| async {
                let statuses = self.statuses(None).await?;
                let closed =
                    statuses
                        .iter()
                        .find(|s| s.closed)
                        .ok_or_else(|| PsaError::Permanent {
                            status: None,
                            message: "the BMS tenant has no closed status to resolve tickets with"
                                .to_string(),
                        })?;
                convert::num_id("status", &closed.id)
            })
            .await
            .copied()
    }

    /// Every line of a catalog service on `contract_id` (paged by `totalRecords`). Contract and
    /// account names narrow the search when this client has seen them and they hold no `LIKE`
    /// metacharacter; rows are matched on the contract id either way.
    async fn service_lines(&self, contract_id: &str, service_id: &str) -> PsaResult<Vec<Related>> {
        let sid = convert::num_id("service", service_id)?;
        let mut filter = serde_json::Map::new();
        let contract_name = self.name_of(&format!("contract:{contract_id}"));
        let account_name = self
            .name_of(&format!("contract-account:{contract_id}"))
            .and_then(|a| self.name_of(&format!("account:{a}")));
        for (key, name) in [
            ("ContractName", contract_name),
            ("AccountName", account_name),
        ] {
            if let Some(n) = name.filter(|n| convert::like_safe(n) && !n.trim().is_empty()) {
                filter.insert(key.into(), Value::String(n));
            }
        }
        let path = format!("/v2/admin/finance/services/{sid}/relatedservices/search");
        let mut out = Vec::new();
        let mut seen = 0usize;
        for page in 1..=MAX_PAGES {
            let body = json!({"PageSize": PAGE_SIZE, "PageNumber": page, "Filter": filter});
            let env = self
                .t
                .call(Req::with_body(Method::POST, path.clone(), body))
                .await?;
            let rows: Vec<WRelated> = decode_list("contract line", env.result)?;
            let n = rows.len();
            seen += n;
            out.extend(
                rows.into_iter()
                    .filter_map(convert::related)
                    .filter(|r| r.contract_id == contract_id),
            );
            if last_page(n, seen, env.total_records) {
                break;
            }
        }
        Ok(out)
    }

    /// Brings the contract's line of a service to `values`; `remembered` is the line (and units)
    /// the caller believes current, `None` when it knows of none.
    async fn sync_line(
        &self,
        contract_id: &str,
        service_id: &str,
        remembered: Option<&ContractLine>,
        values: LineValues,
    ) -> PsaResult<LineUpdate> {
        let rows = self.service_lines(contract_id, service_id).await?;
        let found = billing::on_contract(&rows, contract_id);
        let current_id = found.current.map(|c| c.id.clone());
        // Units are known for the remembered line, or for one this client wrote.
        let known_units = current_id.as_deref().and_then(|id| {
            remembered
                .filter(|r| r.id == id)
                .map(|r| r.quantity)
                .or_else(|| self.ledger.units(id))
        });
        let adopting = found.current.is_some() && known_units.is_none();
        let (write, end) = billing::decide(&found, known_units, values);
        let mut notes = Vec::new();
        let line = match write {
            LineWrite::Nothing | LineWrite::InPlace { .. } => {
                let cur = found.current.expect("a current line to keep");
                if let LineWrite::InPlace { line_id } = &write {
                    self.bulk_update(
                        contract_id,
                        service_id,
                        std::slice::from_ref(line_id),
                        values,
                    )
                    .await?;
                }
                let line = ContractLine {
                    id: cur.id.clone(),
                    contract_id: contract_id.to_string(),
                    service_id: service_id.to_string(),
                    quantity: values.quantity,
                    cost: values.cost,
                    price: values.price,
                };
                if adopting {
                    notes.push(billing::adoption_note(&line));
                }
                line
            }
            LineWrite::Add | LineWrite::Replace { .. } => {
                let new = self.post_line(contract_id, service_id, values).await?;
                if let LineWrite::Replace { end } = &write {
                    if !end.is_empty() {
                        let zero = LineValues {
                            quantity: 0,
                            cost: 0,
                            price: 0,
                        };
                        self.bulk_update(contract_id, service_id, end, zero).await?;
                    }
                    let day = self.tenant_now().await?.format("%Y-%m-%d").to_string();
                    notes.push(billing::replacement_note(&new, end, &day));
                } else if remembered.is_some() {
                    notes.push(format!(
                        "the remembered line no longer bills in BMS; added line {}",
                        new.id
                    ));
                }
                new
            }
        };
        if !end.is_empty() {
            let zero = LineValues {
                quantity: 0,
                cost: 0,
                price: 0,
            };
            self.bulk_update(contract_id, service_id, &end, zero)
                .await?;
            notes.push(billing::extras_note(&end));
        }
        self.ledger.remember(&line);
        Ok(if notes.is_empty() {
            LineUpdate::Updated(line)
        } else {
            LineUpdate::Replaced {
                line,
                note: notes.join("; "),
            }
        })
    }

    /// 1 call: `POST …/services/{id}/relatedservices/bulkupdate` setting cost and price of the
    /// listed lines (units are not part of the call).
    async fn bulk_update(
        &self,
        contract_id: &str,
        service_id: &str,
        line_ids: &[String],
        values: LineValues,
    ) -> PsaResult<()> {
        let sid = convert::num_id("service", service_id)?;
        let cid = convert::num_id("contract", contract_id)?;
        let selected = line_ids
            .iter()
            .map(|id| {
                Ok(json!({"ClientContractId": cid,
                          "ClientContractServiceId": convert::num_id("contract line", id)?}))
            })
            .collect::<PsaResult<Vec<Value>>>()?;
        let body = json!({
            "SelectedClientContractServices": selected,
            "Values": {
                "UnitCost": convert::money_to_wire(values.cost),
                "UnitPrice": convert::money_to_wire(values.price),
            },
        });
        let path = format!("/v2/admin/finance/services/{sid}/relatedservices/bulkupdate");
        self.result(Req::with_body(Method::POST, path, body))
            .await
            .map(|_| ())
    }
}

fn line_of(r: &Related, contract_id: &str, service_id: &str, units: i64) -> ContractLine {
    ContractLine {
        id: r.id.clone(),
        contract_id: contract_id.to_string(),
        service_id: service_id.to_string(),
        quantity: units,
        cost: r.cost,
        price: r.price,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let c = BmsConfig::new("https://x", "Acme MSP", "api-user", "s3cr3t-pw");
        let shown = format!("{c:?}");
        assert!(shown.contains("api-user"), "{shown}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
