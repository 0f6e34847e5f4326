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

mod billing;
mod convert;
mod directory;
mod paging;
pub(crate) mod query;
pub mod rights;
mod tickets;
mod transport;
mod wire;

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use reqwest::Method;
use serde_json::json;
use tokio::sync::Mutex;

pub use query::Lit;
pub use transport::{api_site, RetryPolicy};

use self::convert::*;
pub use self::convert::{addition_effective_date, invalid_combinations, pick_closed_status};
use self::query as cond;
use self::transport::{Target, Transport};
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

    async fn find_company(&self, key: CompanyKey, value: &str) -> PsaResult<Option<Company>> {
        let q = [("conditions", cond::eq_str(company_field(key), value))];
        let rows: Vec<CompanyRecord> = self.http.first_page("/company/companies", &q, 25).await?;
        let pick = |r: &CompanyRecord| {
            company_value(r, key).is_some_and(|v| v.eq_ignore_ascii_case(value))
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
}

#[cfg(test)]
mod tests;
