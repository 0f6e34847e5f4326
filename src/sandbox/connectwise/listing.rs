//! List endpoints: `conditions`, `childConditions`, `orderBy`, `page`/`pageSize` and the `Link`
//! header, as ConnectWise serves them.

use std::cmp::Ordering;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::query;
use super::state::Table;
use super::wire::ApiError;

pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_PAGE_SIZE: usize = 1000;

/// Query parameters of a list call; names match case-insensitively (`childconditions` too).
#[derive(Debug, Default)]
pub struct ListParams {
    pub pairs: Vec<(String, String)>,
}

impl ListParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn check_fields(table: Table, e: &query::Expr, param: &str) -> Result<(), ApiError> {
    for f in query::fields(e) {
        let known = f == "_info" || table.fields().iter().any(|k| k.eq_ignore_ascii_case(f));
        if !known {
            return Err(ApiError::find_condition(format!(
                "{f} is not a recognized name. ({param} on {})",
                table.resource()
            )));
        }
    }
    Ok(())
}

/// The rows matching `conditions` and `childConditions`, in `orderBy` order (id by default).
pub fn select(table: Table, rows: Vec<Value>, params: &ListParams) -> Result<Vec<Value>, ApiError> {
    let bad = |p: &str, e: query::QueryError| ApiError::find_condition(format!("{p}: {}", e.0));
    let cond =
        query::parse(params.get("conditions").unwrap_or("")).map_err(|e| bad("conditions", e))?;
    let child = query::parse(params.get("childConditions").unwrap_or(""))
        .map_err(|e| bad("childConditions", e))?;
    if let Some(c) = &cond {
        check_fields(table, c, "conditions")?;
    }
    if let Some(c) = &child {
        check_fields(table, c, "childConditions")?;
    }
    let mut out = Vec::new();
    for r in rows {
        let keep_c = match &cond {
            Some(c) => query::matches(c, &r).map_err(|e| bad("conditions", e))?,
            None => true,
        };
        let keep_cc = match &child {
            Some(c) if keep_c => {
                query::matches_child(c, &r).map_err(|e| bad("childConditions", e))?
            }
            _ => true,
        };
        if keep_c && keep_cc {
            out.push(r);
        }
    }
    if let Some(order) = params.get("orderBy").filter(|o| !o.trim().is_empty()) {
        let mut parts = order.split_whitespace();
        let field = parts.next().unwrap_or("id");
        let desc = match parts.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "orderBy: {other} is not asc or desc"
                )))
            }
        };
        let path: Vec<&str> = field.split('/').collect();
        out.sort_by(|a, b| {
            let o = cmp_values(pointer(a, &path), pointer(b, &path));
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    Ok(out)
}

fn pointer<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for seg in path {
        cur = cur
            .as_object()
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                    .map(|(_, v)| v)
            })
            .unwrap_or(&Value::Null);
    }
    cur
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// `page` (from 1) and `pageSize` (default 25, at most 1000).
pub fn page_of(params: &ListParams) -> Result<(usize, usize), ApiError> {
    let num = |name: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(name) {
            None | Some("") => Ok(default),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{name} must be a positive whole number"))
                }),
        }
    };
    Ok((
        num("page", 1)?,
        num("pageSize", DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE),
    ))
}

/// The `Link` header value for `page` of `pages` (`None` when everything fits one page).
pub fn link_header(url_for: impl Fn(usize) -> String, page: usize, pages: usize) -> Option<String> {
    if pages <= 1 {
        return None;
    }
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url_for(1)));
        links.push(format!("<{}>; rel=\"prev\"", url_for(page - 1)));
    }
    if page < pages {
        links.push(format!("<{}>; rel=\"next\"", url_for(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url_for(pages)));
    }
    Some(links.join(", "))
}

/// The URL of this list call with `page` replaced.
fn page_url(base: &str, params: &ListParams, page: usize) -> String {
    let mut pairs: Vec<(String, String)> = params
        .pairs
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("page"))
        .cloned()
        .collect();
    pairs.push(("page".into(), page.to_string()));
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)))
        .collect();
    format!("{base}?{}", q.join("&"))
}

/// A list answer: one page of the selected rows, with `Link` when there are more pages.
/// `self_url` is `http://host/path` of the request.
pub fn respond(
    table: Table,
    rows: Vec<Value>,
    params: &ListParams,
    self_url: &str,
) -> Result<Response, ApiError> {
    let rows = select(table, rows, params)?;
    let (page, size) = page_of(params)?;
    let pages = rows.len().div_ceil(size);
    let body: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    let mut headers = HeaderMap::new();
    if let Some(link) = link_header(|p| page_url(self_url, params, p), page, pages) {
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, v);
        }
    }
    Ok((headers, Json(Value::Array(body))).into_response())
}

/// `{collection}/count`.
pub fn count(table: Table, rows: Vec<Value>, params: &ListParams) -> Result<Response, ApiError> {
    let n = select(table, rows, params)?.len();
    Ok(Json(json!({ "count": n })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &[(&str, &str)]) -> ListParams {
        ListParams {
            pairs: q
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn link_relations_follow_the_page() {
        let url = |p: usize| format!("u{p}");
        let table = [
            (1, 1, None),
            (1, 3, Some(r#"<u2>; rel="next", <u3>; rel="last""#)),
            (
                2,
                3,
                Some(r#"<u1>; rel="first", <u1>; rel="prev", <u3>; rel="next", <u3>; rel="last""#),
            ),
            (3, 3, Some(r#"<u1>; rel="first", <u2>; rel="prev""#)),
        ];
        for (page, pages, want) in table {
            assert_eq!(
                link_header(url, page, pages).as_deref(),
                want,
                "{page}/{pages}"
            );
        }
    }

    #[test]
    fn page_parameters_default_and_cap() {
        assert_eq!(page_of(&params(&[])).unwrap(), (1, 25));
        assert_eq!(
            page_of(&params(&[("PAGE", "3"), ("pagesize", "5000")])).unwrap(),
            (3, 1000)
        );
        assert!(page_of(&params(&[("page", "0")])).is_err());
        assert!(page_of(&params(&[("pageSize", "ten")])).is_err());
    }

    #[test]
    fn select_filters_orders_and_refuses_unknown_fields() {
        let rows = vec![
            json!({"id": 1, "name": "b", "inactiveFlag": false}),
            json!({"id": 2, "name": "A", "inactiveFlag": true}),
            json!({"id": 3, "name": "c", "inactiveFlag": false}),
        ];
        let got = select(
            Table::Boards,
            rows.clone(),
            &params(&[
                ("conditions", "inactiveFlag=false"),
                ("orderBy", "name desc"),
            ]),
        )
        .unwrap();
        let ids: Vec<i64> = got.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![3, 1]);
        let e = select(
            Table::Boards,
            rows,
            &params(&[("conditions", "nmae=\"x\"")]),
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn page_urls_keep_the_other_parameters() {
        let p = params(&[
            ("conditions", "name=\"A & B\""),
            ("page", "1"),
            ("pageSize", "2"),
        ]);
        assert_eq!(
            page_url("http://h/x", &p, 2),
            "http://h/x?conditions=name%3D%22A%20%26%20B%22&pageSize=2&page=2"
        );
    }
}
