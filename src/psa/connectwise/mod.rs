//! ConnectWise PSA (Manage) REST API 3.0 client implementing [`Psa`].
//!
//! Vendor facts: `shared/reference/psa-apis/connectwise.md`. Every call carries Basic auth
//! `companyId+publicKey:privateKey`, the `clientId` header and a versioned `Accept` header; the
//! API base is `{site}/{codebase}apis/3.0`, the codebase discovered once per client from
//! `GET /login/companyinfo/{companyId}` (unless configured).
//!
//! ## Calls per method
//! Counted in HTTP requests to the PSA, excluding the one-time codebase discovery (1 call on the
//! client's first request when no codebase is configured) and retries after a 429. "paged" means
//! one call per 1000 records (1 for every realistic lookup list).
//!
//! | method | calls |
//! |--------|-------|
//! | `verify` | 1 (`GET /system/info`) |
//! | `missing_permissions` | paged (1) (`GET /system/mysecurity`) |
//! | `invalid_type_combinations` | paged (1) (`GET /service/boards/{id}/typeSubTypeItemAssociations`), 0 without a subtype or item |
//! | `find_company_by_identifier`, `find_company_by_name` | 1 |
//! | `get_company` | 1 |
//! | `list_companies` | paged |
//! | `find_contact_by_email`, `find_contact_by_name` | 1 |
//! | `boards`, `statuses`, `ticket_types`, `issue_types`, `sub_issue_types`, `priorities`, `sources` | paged (1) |
//! | `create_ticket` | 1 (`POST /service/tickets`; the description goes in as `initialDescription`) |
//! | `find_ticket_by_marker` | 1 |
//! | `get_ticket` | 1 |
//! | `add_note` | 1 |
//! | `close_ticket` | 1 (PATCH) + 1 with a note + 2 without a status id (read the ticket's board, its statuses) |
//! | `find_contract` | 1 |
//! | `find_catalog_service` | 1 |
//! | `create_catalog_service` | 1, + 2 once per client when the procurement type and subcategory are not configured |
//! | `update_catalog_service` | 1 (PATCH) |
//! | `delete_catalog_service` | 1, or 2 when the item is in use (409) and is deactivated instead |
//! | `find_contract_line` | 1 |
//! | `add_contract_line` | 2 (read the agreement's billing dates, then add) |
//! | `update_contract_line` | 1 (PATCH) |

pub(crate) mod conditions;
mod http;
mod paging;
pub mod rights;
mod wire;

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use reqwest::Method;
use serde_json::json;
use tokio::sync::Mutex;

pub use conditions::Lit;
pub use http::{api_site, RetryPolicy};

use self::conditions as cond;
use self::http::{Target, Transport};
use self::wire::*;
use super::*;
use crate::secret::SecretString;

/// ConnectWise fills board, status, type and priority from the company's and board's defaults
/// when a ticket leaves them out; only the summary and the company are required, and the
/// dispatcher always sends both.
pub const REQUIRED_TICKET_SETTINGS: &[crate::psa::RequiredTicketSetting] = &[];

/// `summary` longer than this is rejected by ConnectWise; the client cuts it. Like every
/// ConnectWise length limit it counts UTF-16 code units (.NET string length): an emoji is two.
pub const SUMMARY_MAX: usize = 100;
/// `externalXRef` limit.
pub const MARKER_MAX: usize = 100;
/// Catalog `identifier` and `description` limits.
pub const CATALOG_IDENTIFIER_MAX: usize = 60;
pub const CATALOG_DESCRIPTION_MAX: usize = 60;
/// Catalog `customerDescription` limit.
pub const CATALOG_CUSTOMER_DESCRIPTION_MAX: usize = 6000;
/// `Accept: application/vnd.connectwise.com+json; version=…` sent by default.
pub const DEFAULT_API_VERSION: &str = "2022.1";

/// Everything needed to talk to one ConnectWise site, built from a `PsaConnection` and its Secret.
/// `Debug` shows no key (they are [`SecretString`]s).
#[derive(Clone, Debug)]
pub struct ConnectWiseConfig {
    /// Site URL, e.g. `https://api-na.myconnectwise.net` (no codebase).
    pub url: String,
    /// The company id used at login.
    pub company_id: String,
    /// The integration's clientId.
    pub client_id: String,
    pub public_key: SecretString,
    pub private_key: SecretString,
    /// Codebase such as `v2025_1/`; discovered when `None`.
    pub codebase: Option<String>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Version in the `Accept` header.
    pub api_version: String,
    pub retry: RetryPolicy,
    /// Procurement type id for new catalog items; the first `typeXref="Service"` type when `None`.
    pub catalog_type_id: Option<i64>,
    /// Procurement subcategory id for new catalog items; the first subcategory when `None`.
    pub catalog_subcategory_id: Option<i64>,
    /// `processNotifications` on new tickets and notes. `false` (the default) keeps ConnectWise
    /// from e-mailing the customer's contact about every alert follow-up.
    pub process_notifications: bool,
}

impl ConnectWiseConfig {
    /// A configuration with the defaults for everything but the site and the credentials.
    pub fn new(
        url: impl Into<String>,
        company_id: impl Into<String>,
        client_id: impl Into<String>,
        public_key: SecretString,
        private_key: SecretString,
    ) -> Self {
        ConnectWiseConfig {
            url: url.into(),
            company_id: company_id.into(),
            client_id: client_id.into(),
            public_key,
            private_key,
            codebase: None,
            timeout: DEFAULT_TIMEOUT,
            api_version: DEFAULT_API_VERSION.to_string(),
            retry: RetryPolicy::default(),
            catalog_type_id: None,
            catalog_subcategory_id: None,
            process_notifications: false,
        }
    }
}

/// `Basic base64("{companyId}+{publicKey}:{privateKey}")`.
fn basic_auth(cfg: &ConnectWiseConfig) -> String {
    let raw = format!(
        "{}+{}:{}",
        cfg.company_id,
        cfg.public_key.expose(),
        cfg.private_key.expose()
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The ConnectWise client. Cheap to share behind an `Arc`.
pub struct ConnectWiseClient {
    http: Transport,
    catalog_type_id: Option<i64>,
    catalog_subcategory_id: Option<i64>,
    /// (type id, subcategory id) for new catalog items, discovered once.
    catalog_defaults: Mutex<Option<(i64, i64)>>,
    process_notifications: bool,
}

impl std::fmt::Debug for ConnectWiseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectWiseClient").finish_non_exhaustive()
    }
}

impl ConnectWiseClient {
    pub fn new(cfg: ConnectWiseConfig) -> PsaResult<Self> {
        Ok(ConnectWiseClient {
            http: Transport::new(&cfg)?,
            catalog_type_id: cfg.catalog_type_id,
            catalog_subcategory_id: cfg.catalog_subcategory_id,
            catalog_defaults: Mutex::new(None),
            process_notifications: cfg.process_notifications,
        })
    }

    /// The API base in use (`{site}/{codebase}apis/3.0`), discovering the codebase if needed.
    pub async fn api_base(&self) -> PsaResult<String> {
        self.http.base().await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> PsaResult<T> {
        self.http
            .json(Method::GET, Target::Api { path, query }, None)
            .await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> PsaResult<T> {
        self.http
            .json(Method::POST, Target::Api { path, query: &[] }, Some(&body))
            .await
    }

    async fn patch<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        ops: &[PatchOp],
    ) -> PsaResult<T> {
        let body = serde_json::to_value(ops).map_err(internal)?;
        self.http
            .json(Method::PATCH, Target::Api { path, query: &[] }, Some(&body))
            .await
    }

    async fn find_company(&self, field: &str, value: &str) -> PsaResult<Option<Company>> {
        let q = [("conditions", cond::eq_str(field, value))];
        let rows: Vec<CompanyRecord> = self.http.first_page("/company/companies", &q, 25).await?;
        let pick = |r: &CompanyRecord| {
            let v = if field == "identifier" {
                &r.identifier
            } else {
                &r.name
            };
            v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(value))
        };
        // Prefer a live company when a deleted one shares the name.
        let mut matches: Vec<Company> = rows
            .into_iter()
            .filter(pick)
            .map(CompanyRecord::into_company)
            .collect();
        matches.sort_by_key(|c| !c.active);
        Ok(matches.into_iter().next())
    }

    async fn find_contact(
        &self,
        company_id: &PsaId,
        extra: Vec<(&str, String)>,
        accept: impl Fn(&ContactRecord) -> bool,
        preferred_email: Option<&str>,
    ) -> PsaResult<Option<Contact>> {
        let company = id_cond("company/id", company_id)?;
        let mut conditions = vec![company, cond::eq("inactiveFlag", Lit::Bool(false))];
        let mut query: Vec<(&str, String)> = Vec::new();
        for (k, v) in extra {
            if k == "conditions" {
                conditions.push(v);
            } else {
                query.push((k, v));
            }
        }
        query.push(("conditions", cond::and(conditions)));
        query.push(("orderBy", "id asc".into()));
        let rows: Vec<ContactRecord> = self
            .http
            .first_page("/company/contacts", &query, 25)
            .await?;
        Ok(rows
            .into_iter()
            .find(|r| accept(r))
            .map(|r| r.into_contact(preferred_email)))
    }

    async fn board_list<T: serde::de::DeserializeOwned>(
        &self,
        board_id: Option<&PsaId>,
        what: &str,
    ) -> PsaResult<Vec<T>> {
        let board = board_id.ok_or_else(|| PsaError::Permanent {
            status: None,
            message: format!("ConnectWise {what} belong to a service board: set the board"),
        })?;
        let board = numeric_id(board)?;
        self.http
            .list(&format!("/service/boards/{board}/{what}"), &[])
            .await
    }

    async fn named_list(&self, path: &str) -> PsaResult<Vec<Named>> {
        let rows: Vec<NamedRecord> = self.http.list(path, &[]).await?;
        Ok(rows
            .into_iter()
            .filter(NamedRecord::is_active)
            .map(NamedRecord::into_named)
            .collect())
    }

    async fn board_named(&self, board_id: Option<&PsaId>, what: &str) -> PsaResult<Vec<Named>> {
        let rows: Vec<NamedRecord> = self.board_list(board_id, what).await?;
        Ok(rows
            .into_iter()
            .filter(NamedRecord::is_active)
            .map(NamedRecord::into_named)
            .collect())
    }

    /// The closed status of the ticket's board [`pick_closed_status`] prefers (2 calls).
    async fn closed_status_of(&self, ticket_id: i64) -> PsaResult<i64> {
        let t: TicketRecord = self
            .get(&format!("/service/tickets/{ticket_id}"), &[])
            .await?;
        let board = t
            .board
            .and_then(|b| b.id)
            .ok_or_else(|| PsaError::Permanent {
                status: None,
                message: format!(
                    "ticket {ticket_id} has no service board to take a closed status from"
                ),
            })?;
        let mut statuses: Vec<BoardStatus> = self
            .board_list(Some(&board.to_string()), "statuses")
            .await?;
        statuses.retain(|s| s.inactive != Some(true));
        statuses.sort_by_key(|s| (s.sort_order.unwrap_or(i64::MAX), s.id));
        let listed: Vec<StatusInfo> = statuses.into_iter().map(BoardStatus::into_status).collect();
        pick_closed_status(&listed)
            .and_then(|s| s.id.parse::<i64>().ok())
            .ok_or_else(|| PsaError::Permanent {
                status: None,
                message: format!("service board {board} has no closed status"),
            })
    }

    /// Procurement type and subcategory for new catalog items (2 calls once, unless configured).
    async fn catalog_defaults(&self) -> PsaResult<(i64, i64)> {
        let mut slot = self.catalog_defaults.lock().await;
        if let Some(d) = *slot {
            return Ok(d);
        }
        let type_id = match self.catalog_type_id {
            Some(t) => t,
            None => {
                let q = [
                    ("conditions", cond::eq_str("typeXref", "Service")),
                    ("orderBy", "id asc".to_string()),
                ];
                let rows: Vec<IdOnly> = self.http.first_page("/procurement/types", &q, 1).await?;
                rows.first().and_then(|r| r.id).ok_or_else(|| PsaError::Permanent {
                    status: None,
                    message: "ConnectWise has no procurement type with typeXref Service for catalog services".into(),
                })?
            }
        };
        let sub_id = match self.catalog_subcategory_id {
            Some(s) => s,
            None => {
                let q = [("orderBy", "id asc".to_string())];
                let rows: Vec<IdOnly> = self
                    .http
                    .first_page("/procurement/subcategories", &q, 1)
                    .await?;
                rows.first()
                    .and_then(|r| r.id)
                    .ok_or_else(|| PsaError::Permanent {
                        status: None,
                        message: "ConnectWise has no procurement subcategory for catalog services"
                            .into(),
                    })?
            }
        };
        *slot = Some((type_id, sub_id));
        Ok((type_id, sub_id))
    }
}

fn internal(e: serde_json::Error) -> PsaError {
    PsaError::Permanent {
        status: None,
        message: format!("cannot encode the request: {e}"),
    }
}

/// ConnectWise ids are integers; anything else is our mistake, not a query to send.
fn numeric_id(id: &str) -> PsaResult<i64> {
    id.trim().parse::<i64>().map_err(|_| PsaError::Permanent {
        status: None,
        message: format!("{id:?} is not a ConnectWise id"),
    })
}

fn id_cond(field: &str, id: &str) -> PsaResult<String> {
    cond::eq_id(field, id).ok_or_else(|| PsaError::Permanent {
        status: None,
        message: format!("{id:?} is not a ConnectWise id"),
    })
}

/// Ids per `in (…)` condition: 400 ids of up to 7 digits keep the query string near 3 KB, well
/// inside the 8 KB request line common web servers accept.
const IDS_PER_CONDITION: usize = 400;

fn in_cond(field: &str, ids: &[PsaId]) -> PsaResult<String> {
    cond::in_ids(field, ids).ok_or_else(|| PsaError::Permanent {
        status: None,
        message: format!("{ids:?} are not ConnectWise ids"),
    })
}

fn opt_ref(id: &Option<PsaId>) -> PsaResult<Option<Ref>> {
    id.as_deref()
        .map(numeric_id)
        .transpose()
        .map(|o| o.map(Ref::id))
}

/// Length as ConnectWise counts it: UTF-16 code units.
fn cw_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The longest prefix of `s` within `max` UTF-16 code units, never splitting a character.
fn cut(s: &str, max: usize) -> String {
    let mut used = 0;
    s.chars()
        .take_while(|c| {
            used += c.len_utf16();
            used <= max
        })
        .collect()
}

/// The closed status a ticket is closed with when the settings name none: one called
/// "Closed" (also ">Closed", ConnectWise's convention to sort it last) before any other closed
/// status; otherwise the first closed one in board order.
pub fn pick_closed_status(statuses: &[StatusInfo]) -> Option<&StatusInfo> {
    crate::psa::preferred_closed_status(statuses)
}

/// The first day an addition to this agreement may take effect, on or after `today`: not
/// before the agreement (or its billing) starts, and, without proration, not inside a period
/// that is already invoiced (ConnectWise refuses both with 400 "addition object is invalid").
pub fn addition_effective_date(
    agreement: &AgreementRecord,
    today: chrono::NaiveDate,
) -> chrono::NaiveDate {
    let date = |d: &Option<String>| d.as_deref().and_then(parse_date);
    let mut earliest = today;
    for floor in [
        date(&agreement.start_date),
        date(&agreement.bill_start_date),
    ]
    .into_iter()
    .flatten()
    {
        earliest = earliest.max(floor);
    }
    if agreement.prorate_flag != Some(true) {
        if let Some(next) = date(&agreement.next_invoice_date) {
            earliest = earliest.max(next);
        }
    }
    earliest
}

/// The positions in `wanted` of type / subtype / item combinations the board's associations
/// do not allow. A board without associations restricts nothing we can check.
pub fn invalid_combinations(assocs: &[TypeAssociation], wanted: &[TypeCombination]) -> Vec<usize> {
    if assocs.is_empty() {
        return Vec::new();
    }
    let id = |r: &Option<Ref>| r.as_ref().and_then(|r| r.id).map(|i| i.to_string());
    let matches = |want: &Option<PsaId>, have: Option<String>| match want {
        None => true,
        Some(w) => have.as_deref() == Some(w.trim()),
    };
    wanted
        .iter()
        .enumerate()
        // Only a subtype or an item is restricted; a type alone is always allowed.
        .filter(|(_, w)| w.issue_type_id.is_some() || w.sub_issue_type_id.is_some())
        .filter(|(_, w)| {
            !assocs.iter().any(|a| {
                matches(&w.type_id, id(&a.type_))
                    && matches(&w.issue_type_id, id(&a.sub_type))
                    && matches(&w.sub_issue_type_id, id(&a.item))
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// The `POST /service/tickets` body for a neutral ticket (pure).
fn ticket_body(t: &NewTicket, process_notifications: bool) -> PsaResult<NewTicketBody> {
    if cw_len(&t.marker) > MARKER_MAX {
        return Err(PsaError::Permanent {
            status: None,
            message: format!("ticket marker longer than {MARKER_MAX} characters"),
        });
    }
    Ok(NewTicketBody {
        summary: cut(t.summary.trim(), SUMMARY_MAX),
        record_type: "ServiceTicket",
        company: Ref::id(numeric_id(&t.company_id)?),
        external_x_ref: t.marker.clone(),
        initial_description: Some(t.description.clone()).filter(|d| !d.is_empty()),
        process_notifications,
        contact: opt_ref(&t.contact_id)?,
        site: opt_ref(&t.location_id)?,
        board: opt_ref(&t.board_id)?,
        status: opt_ref(&t.status_id)?,
        type_: opt_ref(&t.type_id)?,
        sub_type: opt_ref(&t.issue_type_id)?,
        item: opt_ref(&t.sub_issue_type_id)?,
        priority: opt_ref(&t.priority_id)?,
        source: opt_ref(&t.source_id)?,
        agreement: opt_ref(&t.contract_id)?,
    })
}

/// JSON-Patch operations bringing a catalog item to `spec` (pure).
fn catalog_patch(spec: &CatalogServiceSpec) -> Vec<PatchOp> {
    vec![
        PatchOp::replace("identifier", json!(cut(&spec.name, CATALOG_IDENTIFIER_MAX))),
        PatchOp::replace(
            "description",
            json!(cut(&catalog_description(spec), CATALOG_DESCRIPTION_MAX)),
        ),
        PatchOp::replace(
            "customerDescription",
            json!(cut(
                &catalog_description(spec),
                CATALOG_CUSTOMER_DESCRIPTION_MAX
            )),
        ),
        PatchOp::replace("cost", json!(to_units(spec.cost))),
        PatchOp::replace("price", json!(to_units(spec.price))),
        PatchOp::replace("inactiveFlag", json!(false)),
    ]
}

/// ConnectWise requires a description; the name stands in for an empty one.
fn catalog_description(spec: &CatalogServiceSpec) -> String {
    if spec.description.trim().is_empty() {
        spec.name.clone()
    } else {
        spec.description.clone()
    }
}

fn line_patch(values: LineValues) -> Vec<PatchOp> {
    vec![
        PatchOp::replace("quantity", json!(values.quantity)),
        PatchOp::replace("unitCost", json!(to_units(values.cost))),
        PatchOp::replace("unitPrice", json!(to_units(values.price))),
    ]
}

#[async_trait]
impl Psa for ConnectWiseClient {
    fn provider(&self) -> Provider {
        Provider::ConnectWise
    }

    /// 1 call: `GET /system/info`.
    async fn verify(&self) -> PsaResult<()> {
        let _: serde_json::Value = self.get("/system/info", &[]).await?;
        Ok(())
    }

    /// No call once the codebase is known: the API base (`https://api-na…/v2025_1/apis/3.0`).
    async fn endpoint(&self) -> Option<String> {
        self.http.base().await.ok()
    }

    /// Paged (1): `GET /system/mysecurity`, the API member's own levels per module function.
    /// Instances that do not answer it (403, 404, older versions) are taken as unknown.
    async fn missing_permissions(&self, features: &[Feature]) -> PsaResult<Vec<MissingPermission>> {
        let granted: Vec<rights::MySecurity> = match self.http.list("/system/mysecurity", &[]).await
        {
            Ok(rows) => rows,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "ConnectWise rights cannot be read up front");
                return Ok(Vec::new());
            }
        };
        Ok(rights::missing_rights(features, &granted)
            .into_iter()
            .map(|m| MissingPermission {
                feature: m.feature,
                right: m.right.to_string(),
            })
            .collect())
    }

    /// Paged (1): `GET /service/boards/{id}/typeSubTypeItemAssociations`.
    async fn invalid_type_combinations(
        &self,
        board_id: Option<&PsaId>,
        wanted: &[TypeCombination],
    ) -> PsaResult<Vec<usize>> {
        if board_id.is_none()
            || wanted
                .iter()
                .all(|w| w.issue_type_id.is_none() && w.sub_issue_type_id.is_none())
        {
            return Ok(Vec::new());
        }
        let assocs: Vec<TypeAssociation> = self
            .board_list(board_id, "typeSubTypeItemAssociations")
            .await?;
        Ok(invalid_combinations(&assocs, wanted))
    }

    /// 1 call: `GET /company/companies?conditions=identifier="…"`.
    async fn find_company_by_identifier(&self, identifier: &str) -> PsaResult<Option<Company>> {
        self.find_company("identifier", identifier).await
    }

    /// 1 call: `GET /company/companies?conditions=name="…"`.
    async fn find_company_by_name(&self, name: &str) -> PsaResult<Option<Company>> {
        self.find_company("name", name).await
    }

    /// 1 call: `GET /company/companies/{id}`.
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>> {
        let id = numeric_id(id)?;
        let rec: Option<CompanyRecord> = self
            .http
            .get_opt(&format!("/company/companies/{id}"))
            .await?;
        Ok(rec.map(CompanyRecord::into_company))
    }

    /// Paged: `GET /company/companies?conditions=deletedFlag=false[&childConditions=types/name="…"]`.
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>> {
        let mut q = vec![
            ("conditions", cond::eq("deletedFlag", Lit::Bool(false))),
            ("orderBy", "id asc".to_string()),
        ];
        if let Some(t) = &filter.company_type {
            q.push(("childConditions", cond::eq_str("types/name", t)));
        }
        let rows: Vec<CompanyRecord> = self.http.list("/company/companies", &q).await?;
        Ok(rows
            .into_iter()
            .map(CompanyRecord::into_company)
            .filter(|c| !filter.parent_only || c.parent_id.is_none())
            .filter(|c| match &filter.company_type {
                // Re-checked here: the child condition may match loosely (see `conditions`).
                Some(t) => c
                    .company_type
                    .as_deref()
                    .is_some_and(|ct| ct.eq_ignore_ascii_case(t)),
                None => true,
            })
            .collect())
    }

    /// 1 call: `GET /company/contacts?conditions=company/id=… and inactiveFlag=false
    /// &childConditions=communicationItems/value="…" and communicationItems/communicationType="Email"`.
    async fn find_contact_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Option<Contact>> {
        let extra = vec![("childConditions", cond::contact_email(email))];
        let accept = |r: &ContactRecord| r.emails().iter().any(|e| e.eq_ignore_ascii_case(email));
        self.find_contact(company_id, extra, accept, Some(email))
            .await
    }

    /// 1 call: `GET /company/contacts?conditions=company/id=… and (firstName/lastName splits)`.
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>> {
        let wanted = name.split_whitespace().collect::<Vec<_>>().join(" ");
        let extra = vec![("conditions", cond::full_name(&wanted))];
        let accept = |r: &ContactRecord| {
            let full = format!(
                "{} {}",
                r.first_name.as_deref().unwrap_or(""),
                r.last_name.as_deref().unwrap_or("")
            );
            full.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .eq_ignore_ascii_case(&wanted)
        };
        self.find_contact(company_id, extra, accept, None).await
    }

    /// Paged (1): `GET /service/boards`; inactive boards left out.
    async fn boards(&self) -> PsaResult<Vec<Named>> {
        self.named_list("/service/boards").await
    }

    /// Paged (1): `GET /service/boards/{id}/statuses`; inactive statuses left out.
    async fn statuses(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<StatusInfo>> {
        let mut rows: Vec<BoardStatus> = self.board_list(board_id, "statuses").await?;
        rows.retain(|s| s.inactive != Some(true));
        rows.sort_by_key(|s| (s.sort_order.unwrap_or(i64::MAX), s.id));
        Ok(rows.into_iter().map(BoardStatus::into_status).collect())
    }

    /// Paged (1): `GET /service/boards/{id}/types`.
    async fn ticket_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.board_named(board_id, "types").await
    }

    /// Paged (1): `GET /service/boards/{id}/subtypes`.
    async fn issue_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.board_named(board_id, "subtypes").await
    }

    /// Paged (1): `GET /service/boards/{id}/items`. ConnectWise items belong to the board, not
    /// to a subtype (valid combinations live in `typeSubTypeItemAssociations`), so the issue
    /// type does not narrow the list.
    async fn sub_issue_types(
        &self,
        board_id: Option<&PsaId>,
        _issue_type_id: &PsaId,
    ) -> PsaResult<Vec<Named>> {
        self.board_named(board_id, "items").await
    }

    /// Paged (1): `GET /service/priorities`.
    async fn priorities(&self) -> PsaResult<Vec<Named>> {
        self.named_list("/service/priorities").await
    }

    /// Paged (1): `GET /service/sources`.
    async fn sources(&self) -> PsaResult<Vec<Named>> {
        self.named_list("/service/sources").await
    }

    /// 1 call: `POST /service/tickets` (summary cut to 100 characters, marker in `externalXRef`).
    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        let body =
            serde_json::to_value(ticket_body(t, self.process_notifications)?).map_err(internal)?;
        let rec: TicketRecord = self.post("/service/tickets", body).await?;
        Ok(rec.into_ticket())
    }

    /// 1 call: `GET /service/tickets?conditions=externalXRef="…"&orderBy=id desc`.
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        let q = [
            ("conditions", cond::eq_str("externalXRef", marker)),
            ("orderBy", "id desc".to_string()),
        ];
        let rows: Vec<TicketRecord> = self.http.first_page("/service/tickets", &q, 25).await?;
        Ok(rows
            .into_iter()
            .find(|r| r.external_x_ref.as_deref() == Some(marker))
            .map(TicketRecord::into_ticket))
    }

    /// 1 call: `GET /service/tickets/{id}`.
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        let id = numeric_id(id)?;
        let rec: Option<TicketRecord> =
            self.http.get_opt(&format!("/service/tickets/{id}")).await?;
        Ok(rec.map(TicketRecord::into_ticket))
    }

    /// 1 call per page: `GET /service/tickets/{id}/notes` (the initial description included).
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        #[derive(serde::Deserialize)]
        struct NoteText {
            #[serde(default)]
            text: Option<String>,
        }
        let id = numeric_id(ticket_id)?;
        let rows: Vec<NoteText> = self
            .http
            .list(&format!("/service/tickets/{id}/notes"), &[])
            .await?;
        Ok(Some(rows.into_iter().filter_map(|n| n.text).collect()))
    }

    /// 1 call: `POST /service/tickets/{id}/notes` (a discussion note).
    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        let id = numeric_id(ticket_id)?;
        let body = NewNoteBody {
            text,
            detail_description_flag: true,
            internal_analysis_flag: false,
            resolution_flag: false,
            process_notifications: self.process_notifications,
        };
        let body = serde_json::to_value(body).map_err(internal)?;
        let rec: IdOnly = self
            .post(&format!("/service/tickets/{id}/notes"), body)
            .await?;
        rec.id
            .map(|i| i.to_string())
            .ok_or_else(|| PsaError::Permanent {
                status: None,
                message: "ConnectWise answered the note without an id".into(),
            })
    }

    /// 1 call (`PATCH /service/tickets/{id}` status), +1 for the note (a resolution note,
    /// posted once the ticket is closed, so a role that may not close leaves no half-done
    /// close behind), +2 without `status_id` (the ticket, then its board's statuses).
    async fn close_ticket(
        &self,
        ticket_id: &PsaId,
        status_id: Option<&PsaId>,
        note: Option<&str>,
    ) -> PsaResult<()> {
        let id = numeric_id(ticket_id)?;
        let status = match status_id {
            Some(s) => numeric_id(s)?,
            None => self.closed_status_of(id).await?,
        };
        let ops = [PatchOp::replace("status", json!({ "id": status }))];
        let closed: PsaResult<TicketRecord> =
            self.patch(&format!("/service/tickets/{id}"), &ops).await;
        if let Err(PsaError::PermissionDenied { message }) = closed {
            return Err(PsaError::PermissionDenied {
                message: format!(
                    "closing a ticket needs {} (and {}) in the API member's security role: {message}",
                    rights::CLOSE_EDIT,
                    rights::TICKETS_EDIT
                ),
            });
        }
        closed?;
        if let Some(text) = note.filter(|n| !n.trim().is_empty()) {
            let body = NewNoteBody {
                text,
                detail_description_flag: true,
                internal_analysis_flag: false,
                resolution_flag: true,
                process_notifications: self.process_notifications,
            };
            let body = serde_json::to_value(body).map_err(internal)?;
            let _: IdOnly = self
                .post(&format!("/service/tickets/{id}/notes"), body)
                .await?;
        }
        Ok(())
    }

    /// 1 call: `GET /finance/agreements?conditions=company/id=… and name="…"`; an active
    /// agreement wins over a cancelled one of the same name.
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>> {
        let q = [(
            "conditions",
            cond::and([
                id_cond("company/id", company_id)?,
                cond::eq_str("name", name),
            ]),
        )];
        let rows: Vec<AgreementRecord> =
            self.http.first_page("/finance/agreements", &q, 25).await?;
        let mut found: Vec<Contract> = rows
            .into_iter()
            .filter(|a| {
                a.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(AgreementRecord::into_contract)
            .collect();
        found.sort_by_key(|c| !c.active);
        Ok(found.into_iter().next())
    }

    /// ⌈companies / 400⌉ × pages of 1,000: `GET /company/contacts?conditions=company/id in (…)
    /// and inactiveFlag=false`. ConnectWise marks the primary contact on the company
    /// (`defaultContact`), not on the contact, so `primary` stays `false` here.
    async fn contacts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<DirectoryContact>>> {
        let mut out = Vec::new();
        for batch in company_ids.chunks(IDS_PER_CONDITION) {
            let q = [
                (
                    "conditions",
                    cond::and([
                        in_cond("company/id", batch)?,
                        cond::eq("inactiveFlag", Lit::Bool(false)),
                    ]),
                ),
                ("orderBy", "id asc".to_string()),
            ];
            let rows: Vec<ContactRecord> = self.http.list("/company/contacts", &q).await?;
            out.extend(rows.into_iter().map(|r| {
                let emails = r.emails().into_iter().map(str::to_string).collect();
                DirectoryContact {
                    contact: r.into_contact(None),
                    emails,
                    primary: false,
                }
            }));
        }
        Ok(Some(out))
    }

    /// ⌈companies / 400⌉ × pages of 1,000: `GET /finance/agreements?conditions=company/id in (…)`.
    async fn contracts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<Contract>>> {
        let mut out = Vec::new();
        for batch in company_ids.chunks(IDS_PER_CONDITION) {
            let q = [
                ("conditions", in_cond("company/id", batch)?),
                ("orderBy", "id asc".to_string()),
            ];
            let rows: Vec<AgreementRecord> = self.http.list("/finance/agreements", &q).await?;
            out.extend(rows.into_iter().map(AgreementRecord::into_contract));
        }
        Ok(Some(out))
    }

    /// 1 call: `GET /procurement/catalog?conditions=identifier="…"`.
    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>> {
        let q = [("conditions", cond::eq_str("identifier", name))];
        let rows: Vec<CatalogRecord> = self.http.first_page("/procurement/catalog", &q, 25).await?;
        Ok(rows
            .into_iter()
            .find(|r| {
                r.identifier
                    .as_deref()
                    .is_some_and(|i| i.eq_ignore_ascii_case(name))
            })
            .map(CatalogRecord::into_service))
    }

    /// 1 call: `POST /procurement/catalog` (+2 once: procurement type and subcategory lookups).
    async fn create_catalog_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService> {
        if cw_len(&spec.name) > CATALOG_IDENTIFIER_MAX {
            return Err(PsaError::Permanent {
                status: None,
                message: format!(
                    "ConnectWise catalog identifiers are at most {CATALOG_IDENTIFIER_MAX} characters: {:?}",
                    spec.name
                ),
            });
        }
        let (type_id, sub_id) = self.catalog_defaults().await?;
        let description = catalog_description(spec);
        let body = NewCatalogBody {
            identifier: spec.name.clone(),
            description: cut(&description, CATALOG_DESCRIPTION_MAX),
            customer_description: cut(&description, CATALOG_CUSTOMER_DESCRIPTION_MAX),
            subcategory: Ref::id(sub_id),
            type_: Ref::id(type_id),
            product_class: "Service",
            price: to_units(spec.price),
            cost: to_units(spec.cost),
            inactive_flag: false,
        };
        let body = serde_json::to_value(body).map_err(internal)?;
        let rec: CatalogRecord = self.post("/procurement/catalog", body).await?;
        Ok(rec.into_service())
    }

    /// 1 call: `PATCH /procurement/catalog/{id}` (identifier, descriptions, cost, price, active).
    async fn update_catalog_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        let id = numeric_id(id)?;
        let rec: CatalogRecord = self
            .patch(&format!("/procurement/catalog/{id}"), &catalog_patch(spec))
            .await?;
        Ok(rec.into_service())
    }

    /// 1 call: `DELETE /procurement/catalog/{id}`; when ConnectWise answers 409 (in use on an
    /// agreement) a second call deactivates it (`inactiveFlag=true`). Already gone counts as done.
    async fn delete_catalog_service(&self, id: &PsaId) -> PsaResult<()> {
        let id = numeric_id(id)?;
        let path = format!("/procurement/catalog/{id}");
        match self
            .http
            .send(
                Method::DELETE,
                Target::Api {
                    path: &path,
                    query: &[],
                },
                None,
            )
            .await
        {
            Ok(_) | Err(PsaError::NotFound { .. }) => Ok(()),
            Err(PsaError::Permanent {
                status: Some(409), ..
            }) => {
                let ops = [PatchOp::replace("inactiveFlag", json!(true))];
                let _: CatalogRecord = self.patch(&path, &ops).await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// 1 call: `GET /finance/agreements/{id}/additions?conditions=product/id=…`; additions
    /// cancelled as of today are ignored (one cancelled for a later date still bills).
    async fn find_contract_line(
        &self,
        contract_id: &PsaId,
        service_id: &PsaId,
    ) -> PsaResult<Option<ContractLine>> {
        let agreement = numeric_id(contract_id)?;
        let q = [
            ("conditions", id_cond("product/id", service_id)?),
            ("orderBy", "id asc".to_string()),
        ];
        let rows: Vec<AdditionRecord> = self
            .http
            .first_page(
                &format!("/finance/agreements/{agreement}/additions"),
                &q,
                25,
            )
            .await?;
        let today = chrono::Utc::now().date_naive();
        Ok(rows
            .into_iter()
            .filter(|a| !a.is_cancelled(today))
            .find(|a| {
                a.product
                    .as_ref()
                    .and_then(|p| p.id)
                    .map(|i| i.to_string())
                    .as_deref()
                    == Some(service_id.trim())
            })
            .map(|a| a.into_line(contract_id)))
    }

    /// 2 calls: `GET /finance/agreements/{id}` (start, billing start, proration, next invoice
    /// date), then `POST /finance/agreements/{id}/additions` (billable, effective on the first
    /// date the agreement accepts: [`addition_effective_date`]).
    async fn add_contract_line(
        &self,
        contract_id: &PsaId,
        service_id: &PsaId,
        values: LineValues,
    ) -> PsaResult<ContractLine> {
        let agreement = numeric_id(contract_id)?;
        let record: AgreementRecord = self
            .get(&format!("/finance/agreements/{agreement}"), &[])
            .await?;
        let effective = addition_effective_date(&record, chrono::Utc::now().date_naive());
        let body = NewAdditionBody {
            product: Ref::id(numeric_id(service_id)?),
            quantity: values.quantity as f64,
            unit_price: to_units(values.price),
            unit_cost: to_units(values.cost),
            bill_customer: "Billable",
            effective_date: effective.format("%Y-%m-%dT00:00:00Z").to_string(),
        };
        let body = serde_json::to_value(body).map_err(internal)?;
        let rec: AdditionRecord = self
            .post(&format!("/finance/agreements/{agreement}/additions"), body)
            .await?;
        Ok(rec.into_line(contract_id))
    }

    /// 1 call: `PATCH /finance/agreements/{id}/additions/{additionId}` (quantity, unit cost and price).
    async fn update_contract_line(
        &self,
        line: &ContractLine,
        values: LineValues,
    ) -> PsaResult<LineUpdate> {
        let agreement = numeric_id(&line.contract_id)?;
        let addition = numeric_id(&line.id)?;
        let rec: AdditionRecord = self
            .patch(
                &format!("/finance/agreements/{agreement}/additions/{addition}"),
                &line_patch(values),
            )
            .await?;
        Ok(LineUpdate::Updated(rec.into_line(&line.contract_id)))
    }
}

#[cfg(test)]
mod tests;
