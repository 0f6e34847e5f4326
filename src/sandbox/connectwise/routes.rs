//! Handlers of the emulated ConnectWise REST API (paths relative to `/{codebase}apis/3.0`).

use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

use super::listing::{self, ListParams};
use super::state::{Store, Table};
use super::wire::ApiError;
use super::{billing, tickets, CwSandbox};

type Shared = Arc<CwSandbox>;
type ApiResult = Result<Response, ApiError>;

/// Query parameters and the absolute URL of a list call (for `Link`).
pub struct ListReq {
    params: ListParams,
    self_url: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ListReq {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|e| {
                ApiError::bad_request(format!("invalid query string: {}", e.body_text()))
            })?;
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.path().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        Ok(ListReq {
            params: ListParams { pairs },
            self_url: format!("http://{host}{path}"),
        })
    }
}

fn id(raw: &str, what: Table) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("{} {raw} not found", what.resource())))
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn rows(s: &CwSandbox, table: Table, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    s.lock().all(table).filter(|r| keep(r)).cloned().collect()
}

fn on_board(board: i64) -> impl Fn(&Value) -> bool {
    move |r| r["board"]["id"].as_i64() == Some(board)
}

/// Routes of a plain collection: list, count, get by id.
fn collection(router: Router<Shared>, path: &str, table: Table) -> Router<Shared> {
    router
        .route(
            path,
            get(move |State(s): State<Shared>, req: ListReq| async move {
                listing::respond(table, rows(&s, table, |_| true), &req.params, &req.self_url)
            }),
        )
        .route(
            &format!("{path}/count"),
            get(move |State(s): State<Shared>, req: ListReq| async move {
                listing::count(table, rows(&s, table, |_| true), &req.params)
            }),
        )
        .route(
            &format!("{path}/{{id}}"),
            get(
                move |State(s): State<Shared>, Path(raw): Path<String>| async move {
                    let n = id(&raw, table)?;
                    let st = s.lock();
                    Ok::<_, ApiError>(Json(st.get_or_404(table, n)?.clone()).into_response())
                },
            ),
        )
}

/// Routes of a board-scoped lookup list (`/service/boards/{id}/statuses` …).
fn board_collection(router: Router<Shared>, what: &str, table: Table) -> Router<Shared> {
    router
        .route(
            &format!("/service/boards/{{id}}/{what}"),
            get(
                move |State(s): State<Shared>, Path(raw): Path<String>, req: ListReq| async move {
                    let board = id(&raw, Table::Boards)?;
                    s.lock().get_or_404(Table::Boards, board)?;
                    listing::respond(
                        table,
                        rows(&s, table, on_board(board)),
                        &req.params,
                        &req.self_url,
                    )
                },
            ),
        )
        .route(
            &format!("/service/boards/{{id}}/{what}/{{child}}"),
            get(
                move |State(s): State<Shared>, Path((b, c)): Path<(String, String)>| async move {
                    let (board, child) = (id(&b, Table::Boards)?, id(&c, table)?);
                    let st = s.lock();
                    st.get_or_404(Table::Boards, board)?;
                    let r = st
                        .get(table, child)
                        .filter(|r| on_board(board)(r))
                        .ok_or_else(|| {
                            ApiError::not_found(format!("{} {child} not found", table.resource()))
                        })?;
                    Ok::<_, ApiError>(Json(r.clone()).into_response())
                },
            ),
        )
}

async fn system_info() -> Json<Value> {
    Json(json!({
        "version": "v2025.1.100000", "isCloud": false, "serverTimeZone": "Eastern Standard Time",
        "cloudRegion": "NA", "licenseBits": [{"name": "EmailConnector", "activeFlag": true}],
    }))
}

async fn create_ticket(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    Ok(created(tickets::create(&mut s.lock(), &body)?))
}

async fn patch_ticket(State(s): State<Shared>, Path(raw): Path<String>, body: Bytes) -> ApiResult {
    let n = id(&raw, Table::Tickets)?;
    let ops = json_body(&body)?;
    let may_close = s.may(super::security::CLOSE_TICKETS);
    Ok(Json(tickets::update(&mut s.lock(), n, &ops, may_close)?).into_response())
}

async fn my_security(State(s): State<Shared>) -> Json<Value> {
    Json(Value::Array(super::security::my_security(&s.denied())))
}

async fn delete_ticket(State(s): State<Shared>, Path(raw): Path<String>) -> ApiResult {
    let n = id(&raw, Table::Tickets)?;
    let mut st = s.lock();
    st.get_or_404(Table::Tickets, n)?;
    st.remove(Table::Tickets, n);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn notes_of(st: &Store, ticket: i64) -> Vec<Value> {
    st.all(Table::Notes)
        .filter(|n| n["ticketId"].as_i64() == Some(ticket))
        .cloned()
        .collect()
}

async fn list_notes(State(s): State<Shared>, Path(raw): Path<String>, req: ListReq) -> ApiResult {
    let n = id(&raw, Table::Tickets)?;
    let notes = {
        let st = s.lock();
        st.get_or_404(Table::Tickets, n)?;
        notes_of(&st, n)
    };
    listing::respond(Table::Notes, notes, &req.params, &req.self_url)
}

async fn get_note(State(s): State<Shared>, Path((t, n)): Path<(String, String)>) -> ApiResult {
    let (ticket, note) = (id(&t, Table::Tickets)?, id(&n, Table::Notes)?);
    let st = s.lock();
    st.get_or_404(Table::Tickets, ticket)?;
    let r = st
        .get(Table::Notes, note)
        .filter(|r| r["ticketId"].as_i64() == Some(ticket))
        .ok_or_else(|| ApiError::not_found(format!("Note {note} not found")))?;
    Ok(Json(r.clone()).into_response())
}

async fn add_note(State(s): State<Shared>, Path(raw): Path<String>, body: Bytes) -> ApiResult {
    let n = id(&raw, Table::Tickets)?;
    let body = json_body(&body)?;
    Ok(created(tickets::add_note(&mut s.lock(), n, &body)?))
}

async fn create_catalog(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    Ok(created(billing::create_catalog(&mut s.lock(), &body)?))
}

async fn patch_catalog(State(s): State<Shared>, Path(raw): Path<String>, body: Bytes) -> ApiResult {
    let n = id(&raw, Table::Catalog)?;
    let ops = json_body(&body)?;
    Ok(Json(billing::update_catalog(&mut s.lock(), n, &ops)?).into_response())
}

async fn patch_board_status(
    State(s): State<Shared>,
    Path((b, c)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let (board, child) = (id(&b, Table::Boards)?, id(&c, Table::Statuses)?);
    let ops = json_body(&body)?;
    let mut st = s.lock();
    st.get_or_404(Table::Boards, board)?;
    let mut record = st
        .get(Table::Statuses, child)
        .filter(|r| on_board(board)(r))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("Status {child} not found on board {board}")))?;
    super::patch::apply(&mut record, &ops)?;
    record["id"] = json!(child);
    record["board"] = st.reference(Table::Boards, board);
    if record["name"].as_str().is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid(
            "status",
            vec![super::wire::FieldError::new(
                "Required",
                "name",
                "name is required",
            )],
        ));
    }
    st.replace(Table::Statuses, child, record.clone());
    Ok(Json(record).into_response())
}

/// An administrator editing a company, e.g. deleting it (`deletedFlag`) or marking it inactive.
async fn patch_company(State(s): State<Shared>, Path(raw): Path<String>, body: Bytes) -> ApiResult {
    let n = id(&raw, Table::Companies)?;
    let ops = json_body(&body)?;
    let mut st = s.lock();
    let mut record = st.get_or_404(Table::Companies, n)?.clone();
    super::patch::apply(&mut record, &ops)?;
    record["id"] = json!(n);
    st.replace(Table::Companies, n, record.clone());
    Ok(Json(record).into_response())
}

async fn delete_catalog(State(s): State<Shared>, Path(raw): Path<String>) -> ApiResult {
    let n = id(&raw, Table::Catalog)?;
    billing::delete_catalog(&mut s.lock(), n)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_additions(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    req: ListReq,
) -> ApiResult {
    let a = id(&raw, Table::Agreements)?;
    s.lock().get_or_404(Table::Agreements, a)?;
    let rows = rows(&s, Table::Additions, |r| {
        r["agreementId"].as_i64() == Some(a)
    });
    listing::respond(Table::Additions, rows, &req.params, &req.self_url)
}

async fn create_addition(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    body: Bytes,
) -> ApiResult {
    let a = id(&raw, Table::Agreements)?;
    let body = json_body(&body)?;
    Ok(created(billing::create_addition(&mut s.lock(), a, &body)?))
}

async fn get_addition(State(s): State<Shared>, Path((a, n)): Path<(String, String)>) -> ApiResult {
    let (a, n) = (id(&a, Table::Agreements)?, id(&n, Table::Additions)?);
    Ok(Json(billing::addition_of(&s.lock(), a, n)?).into_response())
}

async fn patch_addition(
    State(s): State<Shared>,
    Path((a, n)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let (a, n) = (id(&a, Table::Agreements)?, id(&n, Table::Additions)?);
    let ops = json_body(&body)?;
    Ok(Json(billing::update_addition(&mut s.lock(), a, n, &ops)?).into_response())
}

async fn delete_addition(
    State(s): State<Shared>,
    Path((a, n)): Path<(String, String)>,
) -> ApiResult {
    let (a, n) = (id(&a, Table::Agreements)?, id(&n, Table::Additions)?);
    billing::delete_addition(&mut s.lock(), a, n)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every API route; the caller nests it under the codebase and adds authentication.
pub fn api() -> Router<Shared> {
    let mut r = Router::new()
        .route("/system/info", get(system_info))
        .route("/system/mysecurity", get(my_security));
    for (path, table) in [
        ("/company/companies", Table::Companies),
        ("/company/contacts", Table::Contacts),
        ("/service/boards", Table::Boards),
        ("/service/priorities", Table::Priorities),
        ("/service/sources", Table::Sources),
        ("/finance/agreements", Table::Agreements),
        ("/procurement/types", Table::ProcurementTypes),
        ("/procurement/subcategories", Table::Subcategories),
    ] {
        r = collection(r, path, table);
    }
    for (what, table) in [
        ("statuses", Table::Statuses),
        ("types", Table::Types),
        ("subtypes", Table::Subtypes),
        ("items", Table::Items),
        ("typeSubTypeItemAssociations", Table::TypeAssociations),
    ] {
        r = board_collection(r, what, table);
    }
    // Tickets and catalog: the collection routes plus writes on the same paths.
    let tickets = collection(Router::new(), "/service/tickets", Table::Tickets)
        .route("/service/tickets", axum::routing::post(create_ticket))
        .route(
            "/service/tickets/{id}",
            axum::routing::patch(patch_ticket).delete(delete_ticket),
        )
        .route(
            "/service/tickets/{id}/notes",
            get(list_notes).post(add_note),
        )
        .route("/service/tickets/{id}/notes/{note}", get(get_note));
    let catalog = collection(Router::new(), "/procurement/catalog", Table::Catalog)
        .route("/procurement/catalog", axum::routing::post(create_catalog))
        .route(
            "/procurement/catalog/{id}",
            axum::routing::patch(patch_catalog).delete(delete_catalog),
        );
    r = r.route(
        "/company/companies/{id}",
        axum::routing::patch(patch_company),
    );
    // An administrator renaming a status (the drift the operator's re-validation must notice).
    r = r.route(
        "/service/boards/{id}/statuses/{child}",
        axum::routing::patch(patch_board_status),
    );
    r.merge(tickets)
        .merge(catalog)
        .route(
            "/finance/agreements/{id}/additions",
            get(list_additions).post(create_addition),
        )
        .route(
            "/finance/agreements/{id}/additions/{addition}",
            get(get_addition)
                .patch(patch_addition)
                .delete(delete_addition),
        )
}
