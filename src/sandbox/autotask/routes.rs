//! The Autotask REST routes (`/atservicesrest/V1.0/...`) over [`Store`], and the layer that
//! checks the credential headers, counts the database's hourly threshold and the concurrent
//! requests per endpoint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::query::{self, matches_all};
use super::state::{entity, Entity, Refusal, Store, ENTITIES};
use super::wire::{
    self, AdjustmentIn, ContractServiceIn, NoteIn, PatchIn, QueryIn, ServiceIn, TicketIn,
};
use super::AutotaskSandbox;

pub const ROOT: &str = "/atservicesrest/V1.0";
/// Most rows per page.
const PAGE_MAX: i64 = 500;

type Sb = Arc<AutotaskSandbox>;

fn error(status: u16, message: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(wire::errors(message))).into_response()
}

fn refused(r: Refusal) -> Response {
    error(r.status, r.message)
}

fn created(id: i64) -> Response {
    Json(json!({ "itemId": id })).into_response()
}

/// Binds a JSON body as Autotask's model binder would: a wrong type is a 400 naming the problem.
fn bind<T: DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal {
        status: 400,
        message: format!("The request is invalid: {e}"),
    })
}

/// `http://HOST/atservicesrest`, from the Host the client used (for zone and page URLs).
fn rest_root(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/atservicesrest")
}

pub fn api(sb: Sb) -> Router {
    let mut r: Router<Sb> = Router::new()
        .route(&format!("{ROOT}/ZoneInformation"), get(zone))
        .route(&format!("{ROOT}/ThresholdInformation"), get(threshold))
        .route(&format!("{ROOT}/Version"), get(|| async { Json(json!({"majorVersion": "1", "minorVersion": "0", "build": "sandbox", "customerType": "sandbox"})) }));
    for e in ENTITIES {
        let name = e.name;
        r = r
            .route(
                &format!("{ROOT}/{name}/query"),
                get(move |s: AxState<Sb>, h: HeaderMap, q: Query<SearchParam>| {
                    query_get(s, h, q, name)
                })
                .post(move |s: AxState<Sb>, h: HeaderMap, b: Bytes| query_post(s, h, b, name)),
            )
            .route(
                &format!("{ROOT}/{name}/entityInformation/fields"),
                get(move |s: AxState<Sb>| fields(s, name)),
            );
        r = r.route(
            &format!("{ROOT}/{name}/{{id}}"),
            get(move |s: AxState<Sb>, p: Path<String>| item(s, p, name)),
        );
    }
    r.route(
        &format!("{ROOT}/Tickets"),
        post(create_ticket).patch(patch_ticket),
    )
    .route(
        &format!("{ROOT}/Tickets/{{id}}/Notes"),
        get(ticket_notes).post(create_note),
    )
    .route(
        &format!("{ROOT}/Services"),
        post(create_service).patch(patch_service),
    )
    .route(
        &format!("{ROOT}/Contracts/{{id}}/Services"),
        get(contract_services)
            .post(create_contract_service)
            .patch(patch_contract_service),
    )
    .route(
        &format!("{ROOT}/ContractServiceAdjustments"),
        post(create_adjustment),
    )
    .route_layer(middleware::from_fn_with_state(sb.clone(), limits))
    .with_state(sb)
}

/// Credentials, database threshold, concurrent requests per endpoint, in that order.
/// `ZoneInformation` needs none of them (zone look-ups are exempt); `ThresholdInformation` is
/// answered even at 100 % so an integration can see why it is refused (*sandbox* choice).
async fn limits(AxState(sb): AxState<Sb>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.ends_with("/ZoneInformation") {
        return next.run(req).await;
    }
    let h = req.headers();
    let header = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (user, secret, code) = (
        header("UserName"),
        header("Secret"),
        header("ApiIntegrationCode"),
    );
    let known = sb.seed.api_users.iter().any(|u| {
        u.user_name.eq_ignore_ascii_case(&user) && u.secret == secret && u.integration_code == code
    });
    if !known {
        return error(401, "Unauthorized: the UserName, Secret and ApiIntegrationCode headers do not match an API user.");
    }
    if !path.ends_with("/ThresholdInformation") {
        if let Err(r) = sb.count_request() {
            return refused(r);
        }
    }
    let endpoint = path
        .trim_start_matches(ROOT)
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    let Some(_slot) = sb.enter(&code, &endpoint) else {
        return error(
            429,
            format!(
                "Too many concurrent requests: at most {} requests per endpoint ({endpoint}) may run at once for one tracking identifier.",
                sb.seed.settings.threads_per_endpoint
            ),
        );
    };
    let hold = sb.processing();
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    next.run(req).await
}

#[derive(serde::Deserialize)]
struct UserParam {
    user: Option<String>,
}

async fn zone(AxState(sb): AxState<Sb>, h: HeaderMap, Query(q): Query<UserParam>) -> Response {
    let user = q.user.unwrap_or_default();
    if !sb
        .seed
        .api_users
        .iter()
        .any(|u| u.user_name.eq_ignore_ascii_case(&user))
    {
        return error(
            404,
            format!("Zone information could not be determined for user {user}."),
        );
    }
    let root = rest_root(&h);
    Json(json!({
        "zoneName": "Sandbox",
        "url": format!("{root}/"),
        "webUrl": root.replace("/atservicesrest", "/"),
        "ci": 0,
    }))
    .into_response()
}

async fn threshold(AxState(sb): AxState<Sb>) -> Response {
    let st = sb.lock();
    Json(json!({
        "externalRequestThreshold": sb.seed.settings.requests_per_hour,
        "requestThresholdTimeframe": 60,
        "currentTimeframeRequestCount": st.requests_this_hour,
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
struct SearchParam {
    search: Option<String>,
}

async fn query_get(
    AxState(sb): AxState<Sb>,
    h: HeaderMap,
    Query(q): Query<SearchParam>,
    name: &'static str,
) -> Response {
    let Some(search) = q.search else {
        return error(400, "The search parameter is required.");
    };
    match serde_json::from_str::<QueryIn>(&search) {
        Ok(model) => run_query(&sb, &h, name, model),
        Err(e) => error(
            400,
            format!("The search parameter is not a valid query: {e}"),
        ),
    }
}

async fn query_post(
    AxState(sb): AxState<Sb>,
    h: HeaderMap,
    body: Bytes,
    name: &'static str,
) -> Response {
    match bind::<QueryIn>(&body) {
        Ok(model) => run_query(&sb, &h, name, model),
        Err(r) => refused(r),
    }
}

/// Rows matching the filter, by id, at most `maxRecords` (≤ 500); when more remain,
/// `nextPageUrl` asks for the same filter with `id gt` the last id (a GET `search` URL).
fn run_query(sb: &AutotaskSandbox, h: &HeaderMap, name: &'static str, model: QueryIn) -> Response {
    let Some(e) = entity(name) else {
        return error(404, format!("Unknown entity {name}."));
    };
    if model.filter.is_empty() {
        return error(400, "A query needs at least one filter condition.");
    }
    if let Err(m) = query::check(&model.filter, e.name, e.fields) {
        return error(500, m);
    }
    let limit = model.max_records.unwrap_or(PAGE_MAX).clamp(1, PAGE_MAX) as usize;
    let st = sb.lock();
    let matching: Vec<&Value> = st
        .rows
        .get(e.name)
        .map(|r| {
            r.values()
                .filter(|v| matches_all(v, &model.filter))
                .collect()
        })
        .unwrap_or_default();
    let page: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|v| project(v, &model.include_fields))
        .collect();
    let next = (matching.len() > limit).then(|| {
        let last = page.last().and_then(|v| v["id"].as_i64()).unwrap_or(0);
        let mut filter: Vec<Value> = serde_json::to_value(search_of(&model))
            .ok()
            .and_then(|v| v["filter"].as_array().cloned())
            .unwrap_or_default();
        filter.push(json!({"op": "gt", "field": "id", "value": last}));
        let search = json!({"filter": filter, "maxRecords": limit}).to_string();
        format!(
            "{}/V1.0/{}/query?search={}",
            rest_root(h),
            e.name,
            urlencoding::encode(&search)
        )
    });
    Json(json!({
        "items": page,
        "pageDetails": {
            "count": page.len(),
            "requestCount": limit,
            "prevPageUrl": null,
            "nextPageUrl": next,
        },
    }))
    .into_response()
}

/// The filter of a query as JSON again (for the next page's URL).
fn search_of(model: &QueryIn) -> Value {
    fn one(f: &wire::FilterIn) -> Value {
        let mut v = json!({"op": f.op});
        if let Some(field) = &f.field {
            v["field"] = json!(field);
        }
        if let Some(value) = &f.value {
            v["value"] = value.clone();
        }
        if let Some(u) = f.udf {
            v["udf"] = json!(u);
        }
        if !f.items.is_empty() {
            v["items"] = Value::Array(f.items.iter().map(one).collect());
        }
        v
    }
    json!({"filter": model.filter.iter().map(one).collect::<Vec<_>>()})
}

/// `includeFields` limits the answer to those fields (and `id`).
fn project(v: &Value, include: &Option<Vec<String>>) -> Value {
    match (include, v.as_object()) {
        (Some(list), Some(obj)) if !list.is_empty() => Value::Object(
            obj.iter()
                .filter(|(k, _)| *k == "id" || list.iter().any(|f| f.eq_ignore_ascii_case(k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => v.clone(),
    }
}

async fn fields(AxState(sb): AxState<Sb>, name: &'static str) -> Response {
    let e: &'static Entity = match entity(name) {
        Some(e) => e,
        None => return error(404, format!("Unknown entity {name}.")),
    };
    Json(sb.lock().fields_of(e)).into_response()
}

/// `GET /{Entity}/{id}`: `{"item": …}`, `{"item": null}` when there is none (as Autotask answers).
async fn item(AxState(sb): AxState<Sb>, Path(id): Path<String>, name: &'static str) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(400, format!("The value '{id}' is not valid for id."));
    };
    let st = sb.lock();
    Json(json!({ "item": st.get(name, id).cloned() })).into_response()
}

async fn create_ticket(AxState(sb): AxState<Sb>, body: Bytes) -> Response {
    let t: TicketIn = match bind(&body) {
        Ok(t) => t,
        Err(r) => return refused(r),
    };
    match sb.lock().create_ticket(t) {
        Ok(id) => created(id),
        Err(r) => refused(r),
    }
}

async fn patch_ticket(AxState(sb): AxState<Sb>, body: Bytes) -> Response {
    let p: PatchIn = match bind(&body) {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    match sb.lock().patch_ticket(p) {
        Ok(id) => created(id),
        Err(r) => refused(r),
    }
}

fn parent(id: &str) -> Result<i64, Refusal> {
    id.parse::<i64>().map_err(|_| Refusal {
        status: 400,
        message: format!("The value '{id}' is not valid for parentId."),
    })
}

async fn create_note(AxState(sb): AxState<Sb>, Path(id): Path<String>, body: Bytes) -> Response {
    let (ticket, n) = match (parent(&id), bind::<NoteIn>(&body)) {
        (Ok(t), Ok(n)) => (t, n),
        (Err(r), _) | (_, Err(r)) => return refused(r),
    };
    match sb.lock().create_note(ticket, n) {
        Ok(id) => created(id),
        Err(r) => refused(r),
    }
}

/// Child query of a parent (`GET /Tickets/{id}/Notes`, `GET /Contracts/{id}/Services`).
fn children(st: &Store, entity: &str, parent_field: &str, parent: i64) -> Response {
    let items: Vec<Value> = st
        .rows
        .get(entity)
        .map(|r| {
            r.values()
                .filter(|v| v[parent_field] == parent)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Json(json!({
        "items": items,
        "pageDetails": {"count": items.len(), "requestCount": PAGE_MAX, "prevPageUrl": null, "nextPageUrl": null},
    }))
    .into_response()
}

async fn ticket_notes(AxState(sb): AxState<Sb>, Path(id): Path<String>) -> Response {
    match parent(&id) {
        Ok(t) => children(&sb.lock(), "TicketNotes", "ticketID", t),
        Err(r) => refused(r),
    }
}

async fn create_service(AxState(sb): AxState<Sb>, body: Bytes) -> Response {
    match bind::<ServiceIn>(&body) {
        Ok(s) => match sb.lock().create_service(s) {
            Ok(id) => created(id),
            Err(r) => refused(r),
        },
        Err(r) => refused(r),
    }
}

async fn patch_service(AxState(sb): AxState<Sb>, body: Bytes) -> Response {
    match bind::<PatchIn>(&body) {
        Ok(p) => match sb.lock().patch_row(
            "Services",
            &[
                "name",
                "description",
                "unitCost",
                "unitPrice",
                "isActive",
                "periodType",
            ],
            p,
        ) {
            Ok(id) => created(id),
            Err(r) => refused(r),
        },
        Err(r) => refused(r),
    }
}

async fn contract_services(AxState(sb): AxState<Sb>, Path(id): Path<String>) -> Response {
    match parent(&id) {
        Ok(c) => children(&sb.lock(), "ContractServices", "contractID", c),
        Err(r) => refused(r),
    }
}

async fn create_contract_service(
    AxState(sb): AxState<Sb>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (contract, c) = match (parent(&id), bind::<ContractServiceIn>(&body)) {
        (Ok(k), Ok(c)) => (k, c),
        (Err(r), _) | (_, Err(r)) => return refused(r),
    };
    match sb.lock().create_contract_service(contract, c) {
        Ok(id) => created(id),
        Err(r) => refused(r),
    }
}

async fn patch_contract_service(
    AxState(sb): AxState<Sb>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (contract, p) = match (parent(&id), bind::<PatchIn>(&body)) {
        (Ok(k), Ok(p)) => (k, p),
        (Err(r), _) | (_, Err(r)) => return refused(r),
    };
    let mut st = sb.lock();
    let cs = p.get("id").and_then(Value::as_i64).unwrap_or(-1);
    if st
        .get("ContractServices", cs)
        .is_none_or(|v| v["contractID"] != contract)
    {
        return error(
            404,
            format!("Contract service {cs} is not on contract {contract}."),
        );
    }
    match st.patch_row(
        "ContractServices",
        &[
            "unitCost",
            "unitPrice",
            "invoiceDescription",
            "internalDescription",
        ],
        p,
    ) {
        Ok(id) => created(id),
        Err(r) => refused(r),
    }
}

async fn create_adjustment(AxState(sb): AxState<Sb>, body: Bytes) -> Response {
    match bind::<AdjustmentIn>(&body) {
        Ok(a) => match sb.lock().create_adjustment(a) {
            Ok(id) => created(id),
            Err(r) => refused(r),
        },
        Err(r) => refused(r),
    }
}

/// `GET /_sandbox/state`: every entity, tickets with their notes, contract services with their
/// adjustments and units, and the database's request count.
pub fn state_json(st: &Store, threshold: u64) -> Value {
    let all = |e: &str| -> Vec<Value> {
        st.rows
            .get(e)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    };
    let tickets: Vec<Value> = all("Tickets")
        .into_iter()
        .map(|mut t| {
            let id = t["id"].clone();
            t["notes"] = Value::Array(
                all("TicketNotes")
                    .into_iter()
                    .filter(|n| n["ticketID"] == id)
                    .collect(),
            );
            t
        })
        .collect();
    let contract_services: Vec<Value> = all("ContractServices")
        .into_iter()
        .map(|mut c| {
            let id = c["id"].clone();
            c["adjustments"] = Value::Array(
                st.adjustments
                    .iter()
                    .filter(|a| a["contractServiceID"] == id)
                    .cloned()
                    .collect(),
            );
            c["units"] = Value::Array(
                all("ContractServiceUnits")
                    .into_iter()
                    .filter(|u| u["contractServiceID"] == id)
                    .collect(),
            );
            c
        })
        .collect();
    let picklists: serde_json::Map<String, Value> = st
        .picklists
        .iter()
        .map(|((e, f), l)| {
            (format!("{e}.{f}"), Value::Array(l.iter().map(|p| json!({"value": p.value, "label": p.label, "parentValue": p.parent})).collect()))
        })
        .collect();
    json!({
        "companies": all("Companies"),
        "contacts": all("Contacts"),
        "contracts": all("Contracts"),
        "services": all("Services"),
        "billingCodes": all("BillingCodes"),
        "contractServices": contract_services,
        "tickets": tickets,
        "picklists": picklists,
        "database": {"requestsThisHour": st.requests_this_hour, "threshold": threshold},
    })
}
