//! HTTP handlers: discovery, OpenAPI, and the resource verbs, on top of the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{watch as tokio_watch, Notify};

use super::discovery;
use super::error::ApiError;
use super::openapi;
use super::patch::PatchType;
use super::protobuf;
use super::resources::ResourceDef;
use super::route::{
    flag, parse_query, parse_resource_path, representation, Representation, ResourcePath,
};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{FieldValidation, Store, Sub, WriteOpts};
use super::table;
use super::watch::{error_stream, spawn_stream, Watcher};

/// Shared server state.
pub struct AppState {
    pub store: Mutex<Store>,
    /// Woken after every committed write (snapshot persistence).
    pub changed: Arc<Notify>,
    pub shutdown: tokio_watch::Receiver<bool>,
    /// With `--tls`: the bearer token every request except `/version` and health must carry.
    pub token: Option<String>,
}

impl AppState {
    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock would be a bug; keep serving the data anyway.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

fn not_found_path(path: &str) -> Response {
    error_response(&ApiError::NotFound {
        message: format!("the server could not find the requested resource ({path})"),
        group: String::new(),
        kind: String::new(),
        name: String::new(),
    })
}

async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if !authorized(&state, &path, &headers) {
        return error_response(&ApiError::Unauthorized("Unauthorized".into()));
    }
    let query = parse_query(uri.query());
    if method == Method::GET {
        if let Some(r) = discovery_response(&state, &path) {
            return r;
        }
    }
    let Some(rp) = parse_resource_path(&path) else {
        return not_found_path(&path);
    };
    if let Some(e) = unsupported_body(&method, &headers) {
        return error_response(&e);
    }
    let result = resource_request(&state, &method, &rp, &query, &headers, &body);
    match result {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// Public paths need no token (as `system:public-info-viewer` allows); everything else must
/// present the bearer token when one is configured. Compared in constant time.
fn authorized(state: &AppState, path: &str, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    if matches!(
        path.trim_end_matches('/'),
        "/version" | "/healthz" | "/readyz" | "/livez"
    ) {
        return true;
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), token.as_bytes()).into()
}

fn discovery_response(state: &AppState, path: &str) -> Option<Response> {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    let store = state.store();
    let reg = store.registry();
    let doc = match segs.as_slice() {
        ["version"] => discovery::version(),
        ["healthz"] | ["readyz"] | ["livez"] => {
            return Some((StatusCode::OK, "ok").into_response());
        }
        ["api"] => discovery::core_versions(),
        ["apis"] => discovery::group_list(reg),
        ["api", v] => match discovery::resource_list(reg, "", v) {
            Some(d) => d,
            None => return Some(not_found_path(path)),
        },
        ["apis", g] => match discovery::group(reg, g) {
            Some(d) => d,
            None => return Some(not_found_path(path)),
        },
        ["apis", g, v] => match discovery::resource_list(reg, g, v) {
            Some(d) => d,
            None => return Some(not_found_path(path)),
        },
        ["openapi", "v3"] => openapi::index(reg),
        ["openapi", "v3", "api", v] => match openapi::gv_document(reg, "", v) {
            Some(d) => d,
            None => return Some(not_found_path(path)),
        },
        ["openapi", "v3", "apis", g, v] => match openapi::gv_document(reg, g, v) {
            Some(d) => d,
            None => return Some(not_found_path(path)),
        },
        ["openapi", ..] => return Some(not_found_path(path)),
        _ => return None,
    };
    Some(ok(&doc))
}

/// What a list, a watch or a delete-collection reads: the kind, one namespace or all, and the
/// objects the request's label and field selectors take.
struct Collection<'a> {
    def: &'a ResourceDef,
    namespace: Option<&'a str>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl<'a> Collection<'a> {
    fn of(
        def: &'a ResourceDef,
        rp: &'a ResourcePath,
        q: &HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
        let fields =
            FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), &def.kind)?;
        Ok(Collection {
            def,
            namespace: rp.namespace.as_deref(),
            labels,
            fields,
        })
    }

    /// The objects it takes now, and the store's resource version they were read at.
    fn read(&self, store: &Store) -> (Vec<Value>, u64) {
        store.list(self.def, self.namespace, &self.labels, &self.fields)
    }
}

fn write_opts(q: &HashMap<String, String>) -> WriteOpts {
    WriteOpts {
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
        validation: match q.get("fieldValidation").map(String::as_str) {
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            _ => FieldValidation::Warn,
        },
        field_manager: q.get("fieldManager").filter(|m| !m.is_empty()).cloned(),
    }
}

/// Bodies are JSON (YAML for apply) or, for the built-ins kubectl creates, protobuf; anything
/// else gets 415.
fn unsupported_body(method: &Method, headers: &HeaderMap) -> Option<ApiError> {
    if !matches!(*method, Method::POST | Method::PUT) {
        return None;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let base = ct.split(';').next().unwrap_or("").trim();
    if base.is_empty()
        || base == "application/json"
        || base == "application/vnd.kubernetes.protobuf"
        || base.ends_with("+json")
        || base.contains("yaml")
    {
        return None;
    }
    Some(ApiError::UnsupportedMediaType(format!(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {base})"
    )))
}

fn parse_body(body: &Bytes, yaml: bool) -> Result<Value, ApiError> {
    if protobuf::is_protobuf(body) {
        return protobuf::decode(body);
    }
    if yaml {
        return serde_yaml::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("Warning", v);
        }
    }
    r
}

fn represent(def: &ResourceDef, obj: Value, rep: Representation, rv: u64) -> Value {
    match rep {
        Representation::Object => obj,
        Representation::Table => table::table(def, &[obj], &rv.to_string(), chrono::Utc::now()),
        Representation::PartialMetadata => table::partial_metadata(&obj),
    }
}

fn resource_request(
    state: &AppState,
    method: &Method,
    rp: &ResourcePath,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let def = state
        .store()
        .registry()
        .get(&rp.group, &rp.version, &rp.plural)
        .cloned()
        .ok_or_else(|| ApiError::NotFound {
            message: "the server could not find the requested resource".into(),
            group: rp.group.clone(),
            kind: rp.plural.clone(),
            name: String::new(),
        })?;
    if !def.namespaced && rp.namespace.is_some() {
        return Err(ApiError::NotFound {
            message: "the server could not find the requested resource".into(),
            group: def.group.clone(),
            kind: def.plural.clone(),
            name: String::new(),
        });
    }
    let sub = match rp.subresource.as_deref() {
        None => Sub::Main,
        Some("status") if def.status_subresource => Sub::Status,
        Some("finalize") if def.kind == "Namespace" => Sub::Main,
        Some(other) => {
            return Err(ApiError::NotFound {
                message: format!("the server could not find the requested resource ({other})"),
                group: def.group.clone(),
                kind: def.plural.clone(),
                name: rp.name.clone().unwrap_or_default(),
            })
        }
    };
    let ns = rp.namespace.clone().unwrap_or_default();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let rep = representation(accept);
    let opts = write_opts(q);
    let response = match (method.clone(), rp.name.as_deref()) {
        (Method::GET, None) if flag(q, "watch") => {
            return watch(state, Collection::of(&def, rp, q)?, q, rep)
        }
        (Method::GET, None) => list(state, &Collection::of(&def, rp, q)?, rep),
        (Method::GET, Some(name)) => {
            let store = state.store();
            let obj = store.get(&def, &ns, name)?;
            ok(&represent(&def, obj, rep, store.resource_version()))
        }
        (Method::POST, None) => {
            let obj = parse_body(body, false)?;
            let res = state.store().create(&def, &ns, obj, &opts)?;
            with_warnings(
                json_response(StatusCode::CREATED, &res.object),
                &res.warnings,
            )
        }
        (Method::PUT, Some(name)) => {
            let obj = parse_body(body, false)?;
            let res = state.store().update(&def, &ns, name, obj, sub, &opts)?;
            with_warnings(ok(&res.object), &res.warnings)
        }
        (Method::PATCH, Some(name)) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ptype = PatchType::from_content_type(ct).ok_or_else(|| {
                ApiError::UnsupportedMediaType(format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"))
            })?;
            let patch = parse_body(body, ptype == PatchType::Apply)?;
            let res = state
                .store()
                .patch(&def, &ns, name, ptype, &patch, sub, &opts)?;
            let code = if res.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            with_warnings(json_response(code, &res.object), &res.warnings)
        }
        (Method::DELETE, Some(name)) => {
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(body, false)?
            };
            let obj = state
                .store()
                .delete(&def, &ns, name, &options, opts.dry_run)?;
            ok(&obj)
        }
        (Method::DELETE, None) => {
            let collection = Collection::of(&def, rp, q)?;
            let mut store = state.store();
            let (items, _) = collection.read(&store);
            let mut deleted = Vec::new();
            for item in items {
                let name = item["metadata"]["name"].as_str().unwrap_or("").to_string();
                let item_ns = item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                deleted.push(store.delete(&def, &item_ns, &name, &json!({}), opts.dry_run)?);
            }
            ok(
                &json!({"kind": def.list_kind, "apiVersion": def.group_version(),
                "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": deleted}),
            )
        }
        _ => {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )))
        }
    };
    if *method != Method::GET {
        state.changed.notify_one();
    }
    Ok(response)
}

fn list(state: &AppState, collection: &Collection, rep: Representation) -> Response {
    let def = collection.def;
    let (items, rv) = collection.read(&state.store());
    let doc = match rep {
        Representation::Table => table::table(def, &items, &rv.to_string(), chrono::Utc::now()),
        Representation::PartialMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        Representation::Object => json!({
            "kind": def.list_kind,
            "apiVersion": def.group_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    };
    ok(&doc)
}

fn watch(
    state: &AppState,
    collection: Collection,
    q: &HashMap<String, String>,
    rep: Representation,
) -> Result<Response, ApiError> {
    let def = collection.def;
    let send_initial = flag(q, "sendInitialEvents");
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let from = if send_initial || rv.is_empty() || rv == "0" {
        None
    } else {
        Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv}")))?,
        )
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let watcher = Watcher {
        def: def.clone(),
        namespace: collection.namespace.map(String::from),
        labels: collection.labels,
        fields: collection.fields,
        metadata_only: rep == Representation::PartialMetadata,
        table: rep == Representation::Table,
        bookmarks: flag(q, "allowWatchBookmarks"),
    };
    let start = state.store().watch(&def.storage, from);
    let rx = match start {
        Ok(start) => spawn_stream(
            watcher,
            start,
            send_initial,
            Duration::from_secs(timeout),
            state.shutdown.clone(),
        ),
        Err(e) => error_stream(&e),
    };
    let mut r = Response::new(Body::from_stream(rx));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
