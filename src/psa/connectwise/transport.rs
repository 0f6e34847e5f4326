//! The HTTP edge of the ConnectWise client: codebase discovery, headers, errors, 429 handling,
//! paging. Everything above it speaks paths and JSON.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::RwLock;

use super::paging;
use super::rights;
use super::wire::{CompanyInfo, ErrorBody};
use super::ConnectWiseConfig;
use crate::psa::http::{self, retry_after, transport_error};
use crate::psa::{PsaError, PsaResult};

/// Largest page ConnectWise serves; lists are read in pages of this size.
pub const PAGE_SIZE: u32 = 1000;
/// Bound on pages followed for one list (a server whose `Link` never ends must not hang us).
const MAX_PAGES: usize = 1000;
/// Wait assumed when a 429 carries no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// A 404 re-reads `/login/companyinfo` at most this often: deleted tickets and companies answer
/// 404 too, and a burst of them must not become a burst of discovery calls.
const REDISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// How the client reacts to `429 Too Many Requests` (and `503` with `Retry-After`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Reads (GET) are retried after `Retry-After` this many times when the wait is short enough.
    pub read_retries: u32,
    /// Longest `Retry-After` the client waits out itself; longer ones come back as
    /// [`PsaError::Transient`] with `retry_after` so the caller can schedule the retry.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            read_retries: 2,
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Where a request goes: a path under the API base, or a `Link` URL the server handed out.
pub enum Target<'a> {
    Api {
        path: &'a str,
        query: &'a [(&'a str, String)],
    },
    Absolute(&'a str),
}

pub struct Transport {
    http: reqwest::Client,
    site: String,
    company_id: String,
    headers: HeaderMap,
    codebase_override: Option<String>,
    /// `{site}/{codebase}apis/3.0`, discovered on first use.
    base: RwLock<Option<String>>,
    /// After a 429 with `Retry-After`, no request leaves before this instant.
    not_before: Mutex<Option<Instant>>,
    /// When a 404 last made us re-read the codebase.
    last_rediscovery: Mutex<Option<Instant>>,
    retry: RetryPolicy,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Transport {
    pub fn new(cfg: &ConnectWiseConfig) -> PsaResult<Self> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&super::basic_auth(cfg)).map_err(|_| PsaError::Auth {
            status: None,
            message: "the ConnectWise company id or keys contain characters not allowed in an HTTP header".into(),
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let client_id = HeaderValue::from_str(&cfg.client_id).map_err(|_| PsaError::Permanent {
            status: None,
            message: "the ConnectWise clientId contains characters not allowed in an HTTP header"
                .into(),
        })?;
        headers.insert("clientId", client_id);
        let accept = format!(
            "application/vnd.connectwise.com+json; version={}",
            cfg.api_version
        );
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&accept).map_err(|_| PsaError::Permanent {
                status: None,
                message: format!("invalid ConnectWise API version {:?}", cfg.api_version),
            })?,
        );
        let http = http::client(cfg.timeout)?;
        Ok(Transport {
            http,
            site: api_site(&cfg.url),
            company_id: cfg.company_id.clone(),
            headers,
            codebase_override: cfg.codebase.clone().filter(|c| !c.trim().is_empty()),
            base: RwLock::new(None),
            not_before: Mutex::new(None),
            last_rediscovery: Mutex::new(None),
            retry: cfg.retry.clone(),
        })
    }

    /// `{site}/{codebase}apis/3.0`, discovering the codebase once (1 call, unauthenticated).
    pub async fn base(&self) -> PsaResult<String> {
        if let Some(b) = self.base.read().await.clone() {
            return Ok(b);
        }
        let mut slot = self.base.write().await;
        if let Some(b) = slot.clone() {
            return Ok(b);
        }
        let codebase = match &self.codebase_override {
            Some(c) => c.clone(),
            None => self.discover_codebase().await?,
        };
        let base = api_base(&self.site, &codebase);
        *slot = Some(base.clone());
        Ok(base)
    }

    async fn discover_codebase(&self) -> PsaResult<String> {
        let url = format!(
            "{}/login/companyinfo/{}",
            self.site,
            urlencoding::encode(&self.company_id)
        );
        let resp = self
            .http
            .get(&url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport_error("GET /login/companyinfo", e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error("GET /login/companyinfo", e))?;
        if !status.is_success() {
            return Err(error_from_reply(status, None, &body));
        }
        let info: Option<CompanyInfo> =
            serde_json::from_slice(&body).map_err(|e| PsaError::Permanent {
                status: Some(status.as_u16()),
                message: format!("unexpected answer from /login/companyinfo: {e}"),
            })?;
        match info.and_then(|i| i.codebase) {
            Some(c) if !c.trim().is_empty() => Ok(c),
            _ => Err(PsaError::Auth {
                status: None,
                message: format!(
                    "this ConnectWise site knows no company id {:?} (/login/companyinfo answered without a codebase)",
                    self.company_id
                ),
            }),
        }
    }

    /// After a 404: re-reads the codebase (at most once per [`REDISCOVERY_INTERVAL`]) and
    /// answers whether it moved, in which case the base now points at the new one. A cloud
    /// upgrade moves the codebase and every old path answers 404, whatever the body says.
    async fn codebase_moved(&self) -> bool {
        if self.codebase_override.is_some() {
            return false;
        }
        {
            let mut last = self
                .last_rediscovery
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < REDISCOVERY_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let Ok(codebase) = self.discover_codebase().await else {
            return false;
        };
        let fresh = api_base(&self.site, &codebase);
        let mut slot = self.base.write().await;
        if slot.as_deref() == Some(fresh.as_str()) {
            return false;
        }
        tracing::info!(api_base = %fresh, "ConnectWise codebase changed; calls follow it");
        *slot = Some(fresh);
        true
    }

    /// Sends one request, honouring `Retry-After`; non-2xx answers become [`PsaError`]s.
    pub async fn send(
        &self,
        method: Method,
        target: Target<'_>,
        body: Option<&serde_json::Value>,
    ) -> PsaResult<Reply> {
        let idempotent = method == Method::GET;
        let mut retries_left = if idempotent {
            self.retry.read_retries
        } else {
            0
        };
        let mut rediscovered = false;
        loop {
            self.wait_for_slot().await?;
            let (url, query, label) = match &target {
                Target::Api { path, query } => (
                    format!("{}{}", self.base().await?, path),
                    *query,
                    format!("{method} {path}"),
                ),
                Target::Absolute(u) => (u.to_string(), &[][..], format!("{method} (next page)")),
            };
            let mut req = self
                .http
                .request(method.clone(), &url)
                .headers(self.headers.clone())
                .query(query);
            if let Some(b) = body {
                req = req.header(CONTENT_TYPE, "application/json").json(b);
            }
            let started = Instant::now();
            let resp = req.send().await.map_err(|e| transport_error(&label, e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(|e| transport_error(&label, e))?;
            http::trace_call("ConnectWise", &label, status.as_u16(), started);
            if status.is_success() {
                return Ok(Reply {
                    status,
                    headers,
                    body: bytes,
                });
            }
            let retry_after = retry_after(&headers);
            if status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some())
            {
                let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                self.hold_off(wait);
                if retries_left > 0 && wait <= self.retry.max_wait {
                    retries_left -= 1;
                    continue;
                }
                return Err(error_from_reply(status, Some(wait), &bytes));
            }
            // A codebase that moved answers 404 on every path (with or without an error body).
            if status == StatusCode::NOT_FOUND
                && matches!(target, Target::Api { .. })
                && !rediscovered
                && self.codebase_moved().await
            {
                rediscovered = true;
                continue;
            }
            let err = error_from_reply(status, retry_after, &bytes);
            return Err(match &target {
                Target::Api { path, .. } => name_the_right(err, &method, path),
                Target::Absolute(_) => err,
            });
        }
    }

    fn hold_off(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut nb = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        if nb.is_none_or(|t| t < until) {
            *nb = Some(until);
        }
    }

    /// Waits out an earlier `Retry-After` when it is short; fails fast when it is long.
    async fn wait_for_slot(&self) -> PsaResult<()> {
        let until = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        let Some(until) = until else { return Ok(()) };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        if left > self.retry.max_wait {
            return Err(PsaError::Transient {
                status: Some(429),
                message: "ConnectWise asked to slow down; waiting for Retry-After".into(),
                retry_after: Some(left),
            });
        }
        tokio::time::sleep(left).await;
        Ok(())
    }

    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        target: Target<'_>,
        body: Option<&serde_json::Value>,
    ) -> PsaResult<T> {
        let reply = self.send(method, target, body).await?;
        parse(&reply)
    }

    /// GET returning `None` on 404.
    pub async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> PsaResult<Option<T>> {
        match self
            .send(Method::GET, Target::Api { path, query: &[] }, None)
            .await
        {
            Ok(reply) => parse(&reply).map(Some),
            Err(PsaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every record of a list, following `Link: rel="next"` (pages of [`PAGE_SIZE`]).
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> PsaResult<Vec<T>> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("pageSize", PAGE_SIZE.to_string()));
        q.push(("page", "1".to_string()));
        let mut reply = self
            .send(Method::GET, Target::Api { path, query: &q }, None)
            .await?;
        let mut out: Vec<T> = Vec::new();
        for page in 1..=MAX_PAGES {
            let items: Vec<T> = parse(&reply)?;
            let empty = items.is_empty();
            out.extend(items);
            let next = reply
                .headers
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(paging::next_link);
            let Some(next) = next.filter(|_| !empty) else {
                return Ok(out);
            };
            let base = self.base().await?;
            reply = if paging::same_origin(&next, &base) {
                self.send(Method::GET, Target::Absolute(&next), None)
                    .await?
            } else {
                // Behind a proxy the server may name another host: page on ourselves.
                let mut q = q.clone();
                if let Some(p) = q.iter_mut().find(|(k, _)| *k == "page") {
                    p.1 = (page + 1).to_string();
                }
                self.send(Method::GET, Target::Api { path, query: &q }, None)
                    .await?
            };
        }
        Err(PsaError::Permanent {
            status: None,
            message: format!("{path}: more than {MAX_PAGES} pages; refusing to read on"),
        })
    }

    /// GET of the first page only, `pageSize` records at most.
    pub async fn first_page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        page_size: u32,
    ) -> PsaResult<Vec<T>> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("pageSize", page_size.to_string()));
        self.json(Method::GET, Target::Api { path, query: &q }, None)
            .await
    }
}

/// `{site}/{codebase}apis/3.0` with the slashes normalised.
pub fn api_base(site: &str, codebase: &str) -> String {
    let cb = codebase.trim().trim_matches('/');
    if cb.is_empty() {
        format!("{}/apis/3.0", site.trim_end_matches('/'))
    } else {
        format!("{}/{cb}/apis/3.0", site.trim_end_matches('/'))
    }
}

fn parse<T: DeserializeOwned>(reply: &Reply) -> PsaResult<T> {
    serde_json::from_slice(&reply.body).map_err(|e| PsaError::Permanent {
        status: Some(reply.status.as_u16()),
        message: format!("unexpected JSON from ConnectWise: {e}"),
    })
}

/// The API host a site address stands for: ConnectWise cloud serves the web UI at
/// `{region}.myconnectwise.net` and the API at `api-{region}.myconnectwise.net`, and users
/// paste the address they log in at. Other hosts (on-premises, the sandbox) are kept as given.
pub fn api_site(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (host, tail) = match rest.find(['/', ':']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let lower = host.to_ascii_lowercase();
    let cloud = ["myconnectwise.net", "connectwisedev.com"]
        .iter()
        .any(|domain| {
            lower
                .strip_suffix(domain)
                .and_then(|p| p.strip_suffix('.'))
                .is_some_and(|region| !region.is_empty() && !region.contains('.'))
        });
    if cloud && !lower.starts_with("api-") {
        format!("{scheme}://api-{lower}{tail}")
    } else {
        url.to_string()
    }
}

/// Whether a 500 body is a conversion or validation failure (the same request fails again),
/// as opposed to ConnectWise's "A timeout has occured" and other passing trouble.
fn is_conversion_error(body: &ErrorBody) -> bool {
    let m = body.message.as_deref().unwrap_or("").to_ascii_lowercase();
    [
        "was not recognized as a valid",
        "input string was not in a correct format",
        "error converting value",
        "could not convert",
        "cannot convert",
        "is not a valid",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Maps a non-2xx answer, keeping the PSA's message.
pub fn error_from_reply(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> PsaError {
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .filter(|b| b.code.is_some() || b.message.is_some());
    let message = match &parsed {
        Some(b) => b.describe(),
        None => status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_string(),
    };
    match status.as_u16() {
        // The role lacks a right; the credentials are fine (those are 401).
        403 => PsaError::PermissionDenied { message },
        500 if parsed.as_ref().is_some_and(is_conversion_error) => PsaError::Permanent {
            status: Some(500),
            message,
        },
        s => PsaError::from_status(s, message, retry_after),
    }
}

/// A 403 names the right the call needs (module › function › level), so the message tells the
/// administrator what to grant.
pub fn name_the_right(err: PsaError, method: &Method, path: &str) -> PsaError {
    match err {
        PsaError::PermissionDenied { message } => {
            let need = rights::right_for(method, path)
                .map(|r| format!("{method} {path} needs {r} in the API member's security role"))
                .unwrap_or_else(|| format!("{method} {path} is not allowed for the API member"));
            PsaError::PermissionDenied {
                message: format!("{need}: {message}"),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_normalises_slashes() {
        let table = [
            (
                "https://na.example",
                "v4_6_release/",
                "https://na.example/v4_6_release/apis/3.0",
            ),
            (
                "https://na.example/",
                "/v2022_2/",
                "https://na.example/v2022_2/apis/3.0",
            ),
            (
                "http://127.0.0.1:9",
                "v2025_1",
                "http://127.0.0.1:9/v2025_1/apis/3.0",
            ),
            ("https://na.example", "", "https://na.example/apis/3.0"),
        ];
        for (site, cb, want) in table {
            assert_eq!(api_base(site, cb), want);
        }
    }

    #[test]
    fn errors_keep_the_psa_message_and_classify() {
        let body = br#"{"code":"InvalidObject","message":"ticket object is invalid",
            "errors":[{"code":"OutOfRange","message":"Summary is too long","resource":"ticket","field":"summary"}]}"#;
        let e = error_from_reply(StatusCode::BAD_REQUEST, None, body);
        assert_eq!(
            e,
            PsaError::Permanent {
                status: Some(400),
                message: "ticket object is invalid (summary: Summary is too long)".into()
            }
        );
        let e = error_from_reply(
            StatusCode::NOT_FOUND,
            None,
            br#"{"code":"NotFound","message":"Ticket 1255787 not found"}"#,
        );
        assert_eq!(
            e,
            PsaError::NotFound {
                message: "Ticket 1255787 not found".into()
            }
        );
        let e = error_from_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            br#"{"code":"ConnectWiseApi","message":"A timeout has occured. Please try again."}"#,
        );
        assert!(e.is_transient());
        let e = error_from_reply(StatusCode::UNAUTHORIZED, None, b"<html>nope</html>");
        assert_eq!(
            e,
            PsaError::Auth {
                status: Some(401),
                message: "Unauthorized".into()
            }
        );
    }

    #[test]
    fn site_addresses_map_to_the_cloud_api_host() {
        let table = [
            (
                "https://na.myconnectwise.net",
                "https://api-na.myconnectwise.net",
            ),
            (
                "https://EU.myconnectwise.net/",
                "https://api-eu.myconnectwise.net",
            ),
            (
                "https://au.myconnectwise.net/v4_6_release/",
                "https://api-au.myconnectwise.net/v4_6_release",
            ),
            (
                "https://api-na.myconnectwise.net",
                "https://api-na.myconnectwise.net",
            ),
            (
                "https://staging.connectwisedev.com",
                "https://api-staging.connectwisedev.com",
            ),
            ("https://cw.example.com", "https://cw.example.com"),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            // Only the region label itself is rewritten.
            ("https://myconnectwise.net", "https://myconnectwise.net"),
            (
                "https://a.b.myconnectwise.net",
                "https://a.b.myconnectwise.net",
            ),
        ];
        for (typed, want) in table {
            assert_eq!(api_site(typed), want, "{typed}");
        }
    }

    #[test]
    fn forbidden_is_a_missing_right_named_by_the_call() {
        let body = br#"{"code":"Security","message":"You do not have security permission to perform this action."}"#;
        let e = error_from_reply(StatusCode::FORBIDDEN, None, body);
        assert_eq!(e.reason(), "PermissionDenied");
        assert!(!e.is_transient());
        let e = name_the_right(e, &Method::POST, "/service/tickets");
        assert_eq!(
            e.to_string(),
            "the PSA denied permission: POST /service/tickets needs Service Desk › Service Tickets › \
             Add level in the API member's security role: You do not have security permission to \
             perform this action."
        );
        // 401 stays a credential problem.
        let e = error_from_reply(
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"code":"Unauthorized","message":"x"}"#,
        );
        assert_eq!(e.reason(), "AuthenticationFailed");
    }

    #[test]
    fn conversion_errors_are_permanent_even_as_500() {
        let table: [(&[u8], bool); 5] = [
            (br#"{"code":"ConnectWiseApi","message":"String was not recognized as a valid Boolean."}"#, false),
            (br#"{"code":"ConnectWiseApi","message":"Input string was not in a correct format."}"#, false),
            (br#"{"code":"ConnectWiseApi","message":"A timeout has occured. Please try again."}"#, true),
            (br#"{"code":"ConnectWiseApi","message":"An error has occurred."}"#, true),
            (b"<html>Bad gateway</html>", true),
        ];
        for (body, transient) in table {
            let e = error_from_reply(StatusCode::INTERNAL_SERVER_ERROR, None, body);
            assert_eq!(
                e.is_transient(),
                transient,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Gateways and timeouts in front of ConnectWise stay transient.
        for status in [StatusCode::BAD_GATEWAY, StatusCode::GATEWAY_TIMEOUT] {
            assert!(error_from_reply(status, None, b"").is_transient());
        }
    }
}
