//! HTTP handlers of the BMS sandbox: the v2 paths the client uses and a few a technician's tools
//! would (ticket PATCH, note list), with auth and the per-endpoint throttle as route layers.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, RawQuery, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::exchanges;
use super::session::LoginError;
use super::state::{Fail, Pick, Store};
use super::wire::{self, fail, ok, ok_paged};
use super::BmsSandbox;

type S = State<Arc<BmsSandbox>>;

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 100;

pub fn api(s: Arc<BmsSandbox>) -> Router {
    let protected = protected_routes()
        .into_iter()
        .fold(Router::new(), |r, (path, methods)| r.route(path, methods))
        .route_layer(middleware::from_fn_with_state(s.clone(), authenticated));
    Router::new()
        .route("/v2/security/authenticate", post(authenticate))
        .route("/v2/security/refreshtoken", post(refresh))
        .merge(protected)
        .route_layer(middleware::from_fn_with_state(s.clone(), throttled))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(s.clone(), recorded))
        .with_state(s)
}

/// The paths that need a bearer token, each with the methods it serves.
fn protected_routes() -> Vec<(&'static str, MethodRouter<Arc<BmsSandbox>>)> {
    vec![
        ("/v2/security/userinfo", get(userinfo)),
        ("/v2/crm/accounts/summary", get(accounts_summary)),
        ("/v2/crm/accounts/summary/{id}", get(account_summary)),
        ("/v2/crm/accounts/lookup", get(accounts_lookup)),
        (
            "/v2/crm/accounts/{id}/locations/lookup",
            get(locations_lookup),
        ),
        (
            "/v2/crm/accounts/{id}/contacts/lookup",
            get(account_contacts),
        ),
        ("/v2/crm/contacts/search", get(contacts_search)),
        ("/v2/system/queues/lookup", get(queues)),
        ("/v2/system/statuses/lookup", get(statuses)),
        ("/v2/system/priorities/lookup", get(priorities)),
        ("/v2/system/issuetypes/lookup", get(issue_types)),
        (
            "/v2/system/issuetypes/{id}/issuesubtypes/lookup",
            get(sub_issue_types),
        ),
        ("/v2/system/tenantlookup/{table}", get(tenant_lookup)),
        (
            "/v2/servicedesk/tickets",
            get(tickets_list).post(ticket_create),
        ),
        ("/v2/servicedesk/tickets/search", post(tickets_search)),
        (
            "/v2/servicedesk/tickets/{id}",
            get(ticket_get).patch(ticket_patch),
        ),
        (
            "/v2/servicedesk/tickets/{id}/notes",
            get(notes_list).post(note_create),
        ),
        ("/v2/servicedesk/tickets/{id}/resolve", post(ticket_resolve)),
        ("/v2/admin/finance/services/services", post(service_create)),
        ("/v2/admin/finance/services/lookup", get(services_lookup)),
        (
            "/v2/admin/finance/services/{id}",
            get(service_get).put(service_put).delete(service_delete),
        ),
        (
            "/v2/admin/finance/services/{id}/relatedservices/search",
            post(related_search),
        ),
        (
            "/v2/admin/finance/services/{id}/relatedservices/bulkupdate",
            post(related_bulk_update),
        ),
        ("/v2/finance/contracts/lookup", get(contracts_lookup)),
        ("/v2/finance/contracts/summary", get(contracts_summary)),
        (
            "/v2/finance/contracts/recurringservices/{id}/services",
            post(lines_add),
        ),
    ]
}

/// What ASP.NET answers for a path it has no route for: 404 with an empty body. (A known path
/// with another method gets axum's 405, as ASP.NET's does.)
async fn unknown_route() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Keeps the request and the answer in the exchange log, bodies as sent.
async fn recorded(State(s): S, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let req_bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let (request_body, req_cut) = exchanges::body_text(&req_bytes);
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let request_content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resp = next
        .run(Request::from_parts(parts, Body::from(req_bytes)))
        .await;
    let (rparts, rbody) = resp.into_parts();
    let resp_bytes = axum::body::to_bytes(rbody, usize::MAX)
        .await
        .unwrap_or_default();
    let (response_body, resp_cut) = exchanges::body_text(&resp_bytes);
    s.lock().exchanges.record(exchanges::Exchange {
        method,
        path,
        query,
        request_content_type,
        request_body,
        status: rparts.status.as_u16(),
        response_body,
        truncated: req_cut || resp_cut,
    });
    Response::from_parts(rparts, Body::from(resp_bytes))
}

async fn authenticated(State(s): S, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let ok = token.is_some_and(|t| s.lock().sessions.authorized(&t, Instant::now()));
    if !ok {
        return wire::unauthorized();
    }
    next.run(req).await
}

async fn throttled(State(s): S, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let verdict = {
        let mut inner = s.lock();
        let limit = inner.store.settings.calls_per_hour_per_endpoint;
        inner
            .limiter
            .admit(&route, limit, Instant::now())
            .map_err(|secs| (limit, secs))
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err((limit, secs)) => wire::too_many(limit, secs),
    }
}

// ---- query strings ---------------------------------------------------------------------------

/// Query parameters with lowercased names (BMS binds `Filter.AccountCode` in any casing).
struct Params(Vec<(String, String)>);

impl Params {
    fn new(raw: Option<String>) -> Params {
        Params(wire::pairs(raw.unwrap_or_default().as_bytes()))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A search body as the query parameters of the matching list call (`Filter.X` → `filter.x`).
    fn from_search(search: &wire::SearchIn) -> Params {
        let mut pairs: Vec<(String, String)> = search
            .filter
            .iter()
            .filter_map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((format!("filter.{k}"), text))
            })
            .collect();
        if let Some(n) = search.page_size {
            pairs.push(("pagesize".into(), n.to_string()));
        }
        if let Some(n) = search.page_number {
            pairs.push(("pagenumber".into(), n.to_string()));
        }
        Params(pairs)
    }

    /// Ids given repeated or comma-separated.
    fn ids(&self, key: &str) -> Vec<i64> {
        self.0
            .iter()
            .filter(|(k, _)| k == key || k.strip_suffix("[]") == Some(key))
            .flat_map(|(_, v)| {
                v.split(',')
                    .filter_map(|x| x.trim().parse().ok())
                    .collect::<Vec<i64>>()
            })
            .collect()
    }

    fn flag(&self, key: &str) -> Option<bool> {
        match self.get(key)?.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }

    /// `PageSize` (default 50, at most 100) and 1-based `PageNumber`.
    fn page<T>(&self, rows: Vec<T>) -> Vec<T> {
        let size = self
            .get("pagesize")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .min(MAX_PAGE_SIZE);
        let number = self
            .get("pagenumber")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        rows.into_iter()
            .skip((number - 1) * size)
            .take(size)
            .collect()
    }
}

fn contains(hay: &str, needle: Option<&str>) -> bool {
    needle.is_none_or(|n| hay.to_lowercase().contains(&n.to_lowercase()))
}

fn path_id(raw: &str) -> Result<i64, wire::Refusal> {
    raw.parse::<i64>().map_err(|_| {
        wire::refuse(vec![(
            "id".into(),
            format!("The value '{raw}' is not valid."),
        )])
    })
}

/// The record id in a route's path, bound as BMS binds it: a non-number is refused (400, `id`).
struct RecordId(i64);

impl<St: Send + Sync> FromRequestParts<St> for RecordId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Response> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        path_id(&raw)
            .map(RecordId)
            .map_err(IntoResponse::into_response)
    }
}

/// A JSON request body with its keys folded ([`wire::body_json`]); unreadable JSON is refused.
struct FoldedJson(Value);

impl<St: Send + Sync> FromRequest<St> for FoldedJson {
    type Rejection = Response;

    async fn from_request(req: Request, state: &St) -> Result<Self, Response> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        wire::body_json(&body)
            .map(FoldedJson)
            .map_err(IntoResponse::into_response)
    }
}

/// The body of a `POST …/search`: filters and paging, where an empty body means neither.
struct SearchBody(wire::SearchIn);

impl<St: Send + Sync> FromRequest<St> for SearchBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &St) -> Result<Self, Response> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let v = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            wire::body_json(&body).map_err(IntoResponse::into_response)?
        };
        wire::search_in(&v)
            .map(SearchBody)
            .map_err(|errors| wire::refuse(errors).into_response())
    }
}

/// Unwraps a binding step or answers with its refusal.
macro_rules! bound {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(refusal) => return refusal.into_response(),
        }
    };
}

// ---- security --------------------------------------------------------------------------------

fn token_answer(g: super::session::Grant) -> Response {
    ok(json!({
        "accessToken": g.access,
        "refreshToken": g.refresh,
        "accessTokenExpireOn": g.access_expire_on.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "refreshTokenExpireOn": g.refresh_expire_on.format("%Y-%m-%dT%H:%M:%S").to_string(),
    }))
}

fn login_failed(e: LoginError) -> Response {
    let code = match e {
        LoginError::MissingField(_) | LoginError::UnsupportedGrant(_) => 400,
        LoginError::BadCredentials | LoginError::BadRefresh => 401,
    };
    Json(json!({ "success": false, "error": { "code": code, "message": e.message() }, "result": null }))
        .into_response()
}

async fn authenticate(State(s): S, body: Bytes) -> Response {
    let form = wire::form(&body);
    let mut inner = s.lock();
    let inner = &mut *inner;
    let w = &inner.store;
    match inner
        .sessions
        .login(&w.tenant, &s.seed.users, &w.settings, &form, Instant::now())
    {
        Ok(g) => token_answer(g),
        Err(e) => login_failed(e),
    }
}

async fn refresh(State(s): S, body: Bytes) -> Response {
    let form = wire::form(&body);
    let mut inner = s.lock();
    let inner = &mut *inner;
    match inner
        .sessions
        .refresh(&inner.store.settings, &form, Instant::now())
    {
        Ok(g) => token_answer(g),
        Err(e) => login_failed(e),
    }
}

async fn userinfo(State(s): S) -> Response {
    let inner = s.lock();
    let user = s.seed.users.first();
    ok(json!({
        "userId": 1,
        "fullName": user.and_then(|u| u.full_name.clone()).unwrap_or_else(|| "API User".into()),
        "emailAddress": null,
        "tenantId": inner.store.tenant_id,
        "businessName": inner.store.tenant,
        "timeZoneName": time_zone_name(inner.store.settings.utc_offset_hours),
        "timeZoneValue": inner.store.settings.utc_offset_hours,
        "currencyCode": "USD",
    }))
}

/// *Sandbox*: the tenant's zone named by its offset (`UTC`, `UTC+05:30`).
fn time_zone_name(hours: f64) -> String {
    if hours == 0.0 {
        return "UTC".into();
    }
    let minutes = (hours * 60.0).round() as i64;
    let sign = if minutes < 0 { '-' } else { '+' };
    format!(
        "UTC{sign}{:02}:{:02}",
        minutes.abs() / 60,
        minutes.abs() % 60
    )
}

// ---- accounts and contacts -------------------------------------------------------------------

async fn accounts_summary(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let inner = s.lock();
    let rows: Vec<Value> = inner
        .store
        .accounts
        .iter()
        .filter(|a| contains(&a.name, p.get("filter.accountname")))
        .filter(|a| contains(&a.code, p.get("filter.accountcode")))
        .filter(|a| contains(&a.type_name, p.get("filter.accounttypename")))
        .filter(|a| p.flag("filter.isactive").is_none_or(|f| a.active == f))
        .map(wire::account_summary)
        .collect();
    let total = rows.len();
    ok_paged(p.page(rows), total)
}

/// Swagger: this one answers with the bare DTO, no envelope. Unknown id → 404, empty body.
async fn account_summary(State(s): S, RecordId(id): RecordId) -> Response {
    let inner = s.lock();
    match inner.store.account(id) {
        Some(a) => Json(wire::account_summary(a)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn accounts_lookup(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let ids = p.ids("filter.ids");
    let with_inactive = p.flag("filter.withinactiveaccounts").unwrap_or(false);
    let inner = s.lock();
    let rows: Vec<Value> = inner
        .store
        .accounts
        .iter()
        .filter(|a| contains(&a.name, p.get("filter.name")))
        .filter(|a| ids.is_empty() || ids.contains(&a.id))
        .filter(|a| with_inactive || a.active)
        .map(|a| json!({"id": a.id, "name": a.name, "tenantName": inner.store.tenant, "isActive": a.active}))
        .collect();
    ok(Value::Array(rows))
}

async fn locations_lookup(State(s): S, RecordId(id): RecordId) -> Response {
    let inner = s.lock();
    let Some(a) = inner.store.account(id) else {
        return fail(Fail::NotFound("Account not found.".into()));
    };
    let rows: Vec<Value> = a
        .locations
        .iter()
        .filter(|l| l.active)
        .map(|l| json!({"id": l.id, "name": l.name, "accountId": a.id, "isMain": l.is_main}))
        .collect();
    ok(Value::Array(rows))
}

async fn account_contacts(State(s): S, RecordId(id): RecordId) -> Response {
    let inner = s.lock();
    if inner.store.account(id).is_none() {
        return fail(Fail::NotFound("Account not found.".into()));
    }
    let rows: Vec<Value> = inner
        .store
        .contacts
        .iter()
        .filter(|c| c.account_id == id && c.active)
        .map(|c| {
            json!({"id": c.id, "name": format!("{} {}", c.first_name, c.last_name).trim(),
                   "locationId": c.location_id, "phone": null, "emailAddress": c.email})
        })
        .collect();
    ok(Value::Array(rows))
}

/// `GET /v2/crm/contacts/search`: a plain list (no `totalRecords`) that still pages.
async fn contacts_search(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let accounts = p.ids("filter.accountids");
    let ids = p.ids("filter.ids");
    let inner = s.lock();
    let w = &inner.store;
    let rows: Vec<Value> = w
        .contacts
        .iter()
        .filter(|c| accounts.is_empty() || accounts.contains(&c.account_id))
        .filter(|c| ids.is_empty() || ids.contains(&c.id))
        .filter(|c| {
            contains(
                c.email.as_deref().unwrap_or(""),
                p.get("filter.emailaddress"),
            )
        })
        .filter(|c| contains(&c.first_name, p.get("filter.firstname")))
        .filter(|c| contains(&c.last_name, p.get("filter.lastname")))
        .filter(|c| p.flag("filter.isactive").is_none_or(|f| c.active == f))
        .filter(|c| p.flag("filter.ispoc").is_none_or(|f| c.poc == f))
        .map(|c| wire::contact_row(w, c))
        .collect();
    ok(Value::Array(p.page(rows)))
}

// ---- picklists -------------------------------------------------------------------------------

/// Picklist rows in the shape of each lookup's DTO (the document gives each its own fields).
#[derive(Clone, Copy)]
enum PickShape {
    /// `QueueLookupOutputDto`: id, name, isActive.
    Queue,
    /// `PriorityLookupOutputDto`: id, name, color, isDefault.
    Priority,
    /// `TenantLookupOutputDto`: id, name, isActive, isDefault.
    TenantLookup,
}

fn picks(list: &[Pick], shape: PickShape) -> Response {
    ok(Value::Array(
        list.iter()
            .map(|p| match shape {
                PickShape::Queue => json!({"id": p.id, "name": p.name, "isActive": p.active}),
                PickShape::Priority => {
                    json!({"id": p.id, "name": p.name, "color": "#ffffff", "isDefault": p.default})
                }
                PickShape::TenantLookup => {
                    json!({"id": p.id, "name": p.name, "isActive": p.active, "isDefault": p.default})
                }
            })
            .collect(),
    ))
}

async fn queues(State(s): S) -> Response {
    picks(&s.lock().store.queues, PickShape::Queue)
}

async fn priorities(State(s): S) -> Response {
    picks(&s.lock().store.priorities, PickShape::Priority)
}

/// *Sandbox*: open statuses have `typeId` 1, closed ones 3 (Kaseya does not document the types).
async fn statuses(State(s): S) -> Response {
    let inner = s.lock();
    ok(Value::Array(
        inner
            .store
            .statuses
            .iter()
            .map(|st| {
                json!({"id": st.id, "name": st.name, "fontColor": "#000000", "color": "#ffffff",
                       "statusOrder": st.order, "typeId": if st.closed { 3 } else { 1 },
                       "isSystemStatus": 0, "slaEventId": null, "isActive": true})
            })
            .collect(),
    ))
}

async fn issue_types(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let inner = s.lock();
    ok(Value::Array(
        inner
            .store
            .issue_types
            .iter()
            .filter(|i| contains(&i.name, p.get("filter.name")))
            .map(|i| json!({"id": i.id, "name": i.name, "isActive": true}))
            .collect(),
    ))
}

async fn sub_issue_types(State(s): S, RecordId(id): RecordId) -> Response {
    let inner = s.lock();
    match inner.store.issue_type(id) {
        Some(it) => ok(Value::Array(
            it.subs
                .iter()
                .map(|x| json!({"id": x.id, "name": x.name}))
                .collect(),
        )),
        None => fail(Fail::NotFound("Issue type not found.".into())),
    }
}

/// The generic tenant lookup tables. Kaseya does not publish the names; the sandbox serves
/// `TicketType`, `TicketSource` and `TicketNoteType` (any case).
async fn tenant_lookup(State(s): S, Path(table): Path<String>) -> Response {
    let inner = s.lock();
    let w = &inner.store;
    match table.to_ascii_lowercase().as_str() {
        "tickettype" => picks(&w.ticket_types, PickShape::TenantLookup),
        "ticketsource" => picks(&w.sources, PickShape::TenantLookup),
        "ticketnotetype" => picks(&w.note_types, PickShape::TenantLookup),
        _ => fail(Fail::Invalid(vec![format!(
            "Invalid table name '{table}'."
        )])),
    }
}

// ---- tickets ---------------------------------------------------------------------------------

async fn tickets_list(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let inner = s.lock();
    ticket_page(&inner.store, &p)
}

/// `POST /v2/servicedesk/tickets/search`: the list's filters and paging, in a body.
async fn tickets_search(State(s): S, SearchBody(search): SearchBody) -> Response {
    let p = Params::from_search(&search);
    let inner = s.lock();
    ticket_page(&inner.store, &p)
}

/// Tickets matching the list filters (`Filter.*`, "contains", any case), one page of them.
fn ticket_page(w: &Store, p: &Params) -> Response {
    let accounts = p.ids("filter.accountids");
    let exclude_completed = p.flag("filter.excludecompleted").unwrap_or(false);
    let names = |key: &str| -> Vec<String> {
        p.get(key)
            .map(|v| v.split(',').map(|x| x.trim().to_lowercase()).collect())
            .unwrap_or_default()
    };
    let statuses = names("filter.statusnames");
    let queues = names("filter.queuenames");
    let rows: Vec<Value> = w
        .tickets
        .iter()
        .filter(|t| contains(&t.title, p.get("filter.title")))
        .filter(|t| contains(&t.details, p.get("filter.details")))
        .filter(|t| contains(&t.number, p.get("filter.ticketnumber")))
        .filter(|t| {
            let account = w.account(t.account_id);
            contains(
                account.map_or("", |a| a.name.as_str()),
                p.get("filter.account"),
            ) && contains(
                account.map_or("", |a| a.code.as_str()),
                p.get("filter.accountcode"),
            )
        })
        .filter(|t| accounts.is_empty() || accounts.contains(&t.account_id))
        .filter(|t| !exclude_completed || t.completed_date.is_none())
        .filter(|t| {
            statuses.is_empty()
                || w.status(t.status_id)
                    .is_some_and(|st| statuses.contains(&st.name.to_lowercase()))
        })
        .filter(|t| {
            queues.is_empty()
                || t.queue_id
                    .and_then(|q| w.queues.iter().find(|x| x.id == q))
                    .is_some_and(|q| queues.contains(&q.name.to_lowercase()))
        })
        .map(|t| wire::ticket_row(w, t))
        .collect();
    let total = rows.len();
    ok_paged(p.page(rows), total)
}

async fn ticket_create(State(s): S, FoldedJson(v): FoldedJson) -> Response {
    let input = bound!(wire::ticket_in(&v).map_err(wire::refuse));
    let mut inner = s.lock();
    match inner.store.create_ticket(input) {
        Ok(id) => ticket_answer(&inner.store, id),
        Err(f) => fail(f),
    }
}

fn ticket_answer(w: &Store, id: i64) -> Response {
    match w.ticket(id) {
        Some(t) => ok(wire::ticket_out(w, t)),
        None => fail(Fail::NotFound("Ticket not found.".into())),
    }
}

async fn ticket_get(State(s): S, RecordId(id): RecordId) -> Response {
    ticket_answer(&s.lock().store, id)
}

/// JSON Patch `replace` of `/StatusId`, `/PriorityId`, `/QueueId`, `/Title` (as a technician's
/// tool would close or reopen a ticket).
async fn ticket_patch(State(s): S, RecordId(id): RecordId, FoldedJson(v): FoldedJson) -> Response {
    let Some(ops) = v.as_array() else {
        return wire::bad_request(vec![("$".into(), "A JSON Patch array is expected.".into())]);
    };
    let mut inner = s.lock();
    let w = &mut inner.store;
    if w.ticket(id).is_none() {
        return fail(Fail::NotFound("Ticket not found.".into()));
    }
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        if !kind.eq_ignore_ascii_case("replace") {
            return fail(Fail::Invalid(vec![format!(
                "Operation '{kind}' is not supported."
            )]));
        }
        let result = match (path.as_str(), value.as_i64(), value.as_str()) {
            ("/statusid", Some(st), _) => w.set_status(id, st),
            ("/priorityid", Some(p), _) if w.priorities.iter().any(|x| x.id == p) => {
                edit(w, id, |t| t.priority_id = p)
            }
            ("/queueid", Some(q), _) if w.queues.iter().any(|x| x.id == q) => {
                edit(w, id, |t| t.queue_id = Some(q))
            }
            ("/title", _, Some(title)) if !title.trim().is_empty() => {
                let title = title.to_string();
                edit(w, id, move |t| t.title = title)
            }
            _ => Err(Fail::Invalid(vec![format!(
                "Cannot replace '{path}' with {value}."
            )])),
        };
        if let Err(f) = result {
            return fail(f);
        }
    }
    ticket_answer(w, id)
}

fn edit(w: &mut Store, id: i64, f: impl FnOnce(&mut super::state::Ticket)) -> Result<(), Fail> {
    let t = w
        .tickets
        .iter_mut()
        .find(|t| t.id == id)
        .ok_or_else(|| Fail::NotFound("Ticket not found.".into()))?;
    f(t);
    Ok(())
}

async fn ticket_resolve(
    State(s): S,
    RecordId(id): RecordId,
    FoldedJson(v): FoldedJson,
) -> Response {
    let (comment, status, internal) = bound!(wire::resolve_in(&v).map_err(wire::refuse));
    let mut inner = s.lock();
    match inner.store.resolve(id, comment, status, internal) {
        Ok(()) => ticket_answer(&inner.store, id),
        Err(f) => fail(f),
    }
}

async fn notes_list(State(s): S, RecordId(id): RecordId, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let inner = s.lock();
    let w = &inner.store;
    if w.ticket(id).is_none() {
        return fail(Fail::NotFound("Ticket not found.".into()));
    }
    let rows: Vec<Value> = w
        .notes
        .iter()
        .filter(|n| n.ticket_id == id)
        .map(|n| wire::note_out(w, n))
        .collect();
    ok(Value::Array(p.page(rows)))
}

async fn note_create(State(s): S, RecordId(id): RecordId, FoldedJson(v): FoldedJson) -> Response {
    let input = bound!(wire::note_in(&v).map_err(wire::refuse));
    let mut inner = s.lock();
    match inner.store.add_note(id, input) {
        Ok(note) => {
            let w = &inner.store;
            match w.notes.iter().find(|n| n.id == note) {
                Some(n) => ok(wire::note_out(w, n)),
                None => fail(Fail::NotFound("Note not found.".into())),
            }
        }
        Err(f) => fail(f),
    }
}

// ---- services and contracts ------------------------------------------------------------------

fn service_answer(w: &Store, id: i64) -> Response {
    match w.service(id) {
        Some(s) => ok(wire::service_out(s)),
        None => fail(Fail::NotFound("Service not found.".into())),
    }
}

async fn service_create(State(s): S, FoldedJson(v): FoldedJson) -> Response {
    let input = bound!(wire::service_in(&v).map_err(wire::refuse));
    let mut inner = s.lock();
    match inner.store.create_service(input) {
        Ok(id) => service_answer(&inner.store, id),
        Err(f) => fail(f),
    }
}

async fn services_lookup(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let only = p.get("filter.id").and_then(|v| v.parse::<i64>().ok());
    let inner = s.lock();
    let rows: Vec<Value> = inner
        .store
        .services
        .iter()
        .filter(|x| contains(&x.name, p.get("filter.name")))
        .filter(|x| only.is_none_or(|i| x.id == i))
        .map(|x| json!({"id": x.id, "name": x.name, "description": x.description}))
        .collect();
    let total = rows.len();
    ok_paged(p.page(rows), total)
}

async fn service_get(State(s): S, RecordId(id): RecordId) -> Response {
    service_answer(&s.lock().store, id)
}

async fn service_put(State(s): S, RecordId(id): RecordId, FoldedJson(v): FoldedJson) -> Response {
    let input = bound!(wire::service_in(&v).map_err(wire::refuse));
    let mut inner = s.lock();
    match inner.store.replace_service(id, input) {
        Ok(()) => service_answer(&inner.store, id),
        Err(f) => fail(f),
    }
}

async fn service_delete(State(s): S, RecordId(id): RecordId) -> Response {
    match s.lock().store.delete_service(id) {
        Ok(()) => ok(Value::Bool(true)),
        Err(f) => fail(f),
    }
}

/// `GET /v2/finance/contracts/lookup?AccountId=&ExcludeExpiredContracts=` (no `Filter.` prefix).
async fn contracts_lookup(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let account = p.get("accountid").and_then(|v| v.parse::<i64>().ok());
    let exclude_expired = p.flag("excludeexpiredcontracts").unwrap_or(false);
    let inner = s.lock();
    let rows: Vec<Value> = inner
        .store
        .contracts
        .iter()
        .filter(|k| account.is_none_or(|a| k.account_id == a))
        .filter(|k| contains(&k.name, p.get("name")))
        .filter(|k| !exclude_expired || k.active)
        .map(|k| {
            json!({"id": k.id, "name": k.name, "isDefault": false, "slaId": null,
                   "slaName": null, "isActive": k.active, "endDate": null})
        })
        .collect();
    ok(Value::Array(rows))
}

/// `GET /v2/finance/contracts/summary`: every contract of the tenant, paged, with
/// `totalRecords`; `Filter.` texts match as "contains", case ignored, like the other lists.
async fn contracts_summary(State(s): S, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q);
    let inner = s.lock();
    let w = &inner.store;
    let rows: Vec<Value> = w
        .contracts
        .iter()
        .filter(|k| contains(&k.name, p.get("filter.contractname")))
        .filter(|k| {
            let account = w.account(k.account_id).map_or("", |a| a.name.as_str());
            contains(account, p.get("filter.accountname"))
        })
        .filter(|k| contains(wire::contract_status(k), p.get("filter.status")))
        .filter(|_| contains(wire::CONTRACT_TYPE, p.get("filter.contracttype")))
        .filter(|_| contains(wire::BILLING_CYCLE, p.get("filter.billingcycle")))
        .map(|k| wire::contract_summary(w, k))
        .collect();
    let total = rows.len();
    ok_paged(p.page(rows), total)
}

/// `POST /v2/admin/finance/services/{id}/relatedservices/search`: the service's lines across
/// contracts, paged, with `totalRecords`.
async fn related_search(
    State(s): S,
    RecordId(id): RecordId,
    SearchBody(search): SearchBody,
) -> Response {
    let p = Params::from_search(&search);
    let filter = wire::related_filter(&search.filter);
    let inner = s.lock();
    let w = &inner.store;
    match w.related_lines(id, &filter) {
        Ok(lines) => {
            let rows: Vec<Value> = lines.into_iter().map(|l| wire::related_row(w, l)).collect();
            let total = rows.len();
            ok_paged(p.page(rows), total)
        }
        Err(f) => fail(f),
    }
}

/// `POST /v2/admin/finance/services/{id}/relatedservices/bulkupdate`: cost, price and effective
/// date of the chosen lines; the result is a message (`StringResponse`).
async fn related_bulk_update(
    State(s): S,
    RecordId(id): RecordId,
    FoldedJson(v): FoldedJson,
) -> Response {
    let (chosen, values) = bound!(wire::bulk_update_in(&v).map_err(wire::refuse));
    let mut inner = s.lock();
    match inner.store.bulk_update_lines(id, &chosen, &values) {
        Ok(n) => ok(Value::String(format!("{n} contract service(s) updated."))),
        Err(f) => fail(f),
    }
}

/// Adds lines; the answer is one line (the last added), as the Swagger declares.
async fn lines_add(State(s): S, RecordId(id): RecordId, FoldedJson(v): FoldedJson) -> Response {
    let input = bound!(wire::lines_in(&v).map_err(wire::refuse));
    let mut inner = s.lock();
    match inner.store.add_lines(id, input) {
        Ok(ids) => {
            let w = &inner.store;
            match ids.last().and_then(|l| w.lines.iter().find(|x| x.id == *l)) {
                Some(l) => ok(wire::line_out(w, l)),
                None => fail(Fail::NotFound("Line not found.".into())),
            }
        }
        Err(f) => fail(f),
    }
}

// ---- state dump ------------------------------------------------------------------------------

/// `GET /_sandbox/state`: everything, camelCase, with each contract's lines (which the BMS API
/// itself cannot list) and each ticket's notes.
pub fn state_json(w: &Store, sessions: usize) -> Value {
    let names = |l: &[Pick]| {
        l.iter()
            .map(|p| json!({"id": p.id, "name": p.name}))
            .collect::<Vec<_>>()
    };
    json!({
        "tenant": w.tenant,
        "sessions": sessions,
        "accounts": w.accounts.iter().map(wire::account_summary).collect::<Vec<_>>(),
        "contacts": w.contacts.iter().map(|c| wire::contact_row(w, c)).collect::<Vec<_>>(),
        "queues": names(&w.queues),
        "ticketTypes": names(&w.ticket_types),
        "sources": names(&w.sources),
        "priorities": names(&w.priorities),
        "noteTypes": names(&w.note_types),
        "statuses": w.statuses.iter().map(|s| json!({"id": s.id, "name": s.name, "closed": s.closed})).collect::<Vec<_>>(),
        "issueTypes": w.issue_types.iter().map(|i| json!({"id": i.id, "name": i.name, "subIssueTypes": names(&i.subs)})).collect::<Vec<_>>(),
        "tickets": w.tickets.iter().map(|t| {
            let mut v = wire::ticket_out(w, t);
            v["notes"] = Value::Array(w.notes.iter().filter(|n| n.ticket_id == t.id).map(|n| wire::note_out(w, n)).collect());
            v
        }).collect::<Vec<_>>(),
        "services": w.services.iter().map(wire::service_out).collect::<Vec<_>>(),
        "contracts": w.contracts.iter().map(|k| json!({
            "id": k.id, "accountId": k.account_id, "name": k.name, "isActive": k.active,
            "lines": w.lines.iter().filter(|l| l.contract_id == k.id).map(|l| wire::line_out(w, l)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "ticketsPerAccount": w.ticket_counts(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn search_body(text: &'static str) -> Result<wire::SearchIn, Response> {
        let req = Request::new(Body::from(text));
        SearchBody::from_request(req, &())
            .await
            .map(|SearchBody(s)| s)
    }

    #[tokio::test]
    async fn a_search_body_may_be_empty_but_not_unreadable() {
        let Ok(empty) = search_body(" \n").await else {
            panic!("a blank body is a search without filters")
        };
        assert!(empty.filter.is_empty() && empty.page_size.is_none());
        let Ok(full) = search_body(r#"{"PageSize": 5, "Filter": {"AccountCode": "C"}}"#).await
        else {
            panic!("a search body is read")
        };
        assert_eq!(full.page_size, Some(5));
        assert_eq!(full.filter["accountcode"], "C");
        for bad in ["{", r#"{"Filter": 3}"#] {
            let refused = search_body(bad).await.err().expect(bad);
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
