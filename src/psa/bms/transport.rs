//! One BMS call: budget, bearer token (log in or refresh first when needed), request, one
//! re-login on 401, envelope. Credentials travel only in the login form and the bearer header;
//! neither reaches a log or an error.

use std::time::Instant;

use chrono::Utc;
use reqwest::header::{HeaderMap, AUTHORIZATION, DATE};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Mutex;

use super::auth::{self, Token, TokenAction};
use super::envelope::{self, Envelope};
use super::limits::{endpoint_of, Budget};
use super::BmsConfig;
use crate::psa::http::{self, retry_after, transport_error};
use crate::psa::{PsaError, PsaResult};

pub const AUTHENTICATE: &str = "/v2/security/authenticate";
pub const REFRESH: &str = "/v2/security/refreshtoken";

/// A request relative to the API host.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Self {
        Req {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }
    pub fn with_body(method: Method, path: impl Into<String>, body: Value) -> Self {
        Req {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
        }
    }
    pub fn q(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }
}

pub struct Transport {
    http: reqwest::Client,
    base: String,
    config: BmsConfig,
    budget: Budget,
    /// Held across a login so concurrent callers wait for one login instead of starting many.
    token: Mutex<Option<Token>>,
}

impl Transport {
    pub fn new(config: BmsConfig) -> PsaResult<Self> {
        let http = http::client(config.timeout)?;
        let base = config.url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(PsaError::Permanent {
                status: None,
                message: format!("BMS url must start with https:// or http://, got {base:?}"),
            });
        }
        Ok(Transport {
            http,
            base,
            budget: Budget::new(config.budget),
            config,
            token: Mutex::new(None),
        })
    }

    /// Runs an authenticated call. On a 401 the token is dropped, a fresh login made and the call
    /// repeated once; a second 401 is an authentication error.
    pub async fn call(&self, req: Req) -> PsaResult<Envelope> {
        let token = self.bearer().await?;
        match self.send_authorized(&req, &token).await {
            Err(PsaError::Auth {
                status: Some(401), ..
            }) => {
                self.forget(&token).await;
                let token = self.bearer().await?;
                self.send_authorized(&req, &token).await
            }
            other => other,
        }
    }

    async fn send_authorized(&self, req: &Req, token: &str) -> PsaResult<Envelope> {
        self.budget.acquire(&endpoint_of(&req.path)).await?;
        let mut rb = self
            .http
            .request(req.method.clone(), format!("{}{}", self.base, req.path))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .query(&req.query);
        if let Some(body) = &req.body {
            rb = rb.json(body);
        }
        let (status, headers, bytes) = self.send(rb, &req.path).await?;
        envelope::parse_response(status, &bytes, retry_after(&headers))
    }

    async fn send(
        &self,
        rb: reqwest::RequestBuilder,
        path: &str,
    ) -> PsaResult<(u16, HeaderMap, bytes::Bytes)> {
        let label = format!("request to {path}");
        let started = Instant::now();
        let resp = rb.send().await.map_err(|e| transport_error(&label, e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| transport_error(&label, e))?;
        http::trace_call("KaseyaBMS", &label, status, started);
        Ok((status, headers, bytes))
    }

    /// A usable access token: the cached one, a refreshed one, or a fresh login.
    async fn bearer(&self) -> PsaResult<String> {
        let mut slot = self.token.lock().await;
        match auth::next_action(Instant::now(), slot.as_ref(), self.config.refresh_margin) {
            TokenAction::Use => {}
            TokenAction::Refresh => {
                let old = slot.take();
                let refreshed = match &old {
                    Some(t) => self.refresh(t).await,
                    None => Err(auth_error("no token to refresh")),
                };
                *slot = Some(match refreshed {
                    Ok(t) => t,
                    // A refused or failed refresh falls back to logging in with the password.
                    Err(e) if !e.is_transient() => self.authenticate().await?,
                    Err(e) => return Err(e),
                });
            }
            TokenAction::Authenticate => {
                *slot = Some(self.authenticate().await?);
            }
        }
        slot.as_ref()
            .map(|t| t.access.clone())
            .ok_or_else(|| auth_error("no access token"))
    }

    /// Drops the cached token if it is still the one the PSA refused.
    async fn forget(&self, refused: &str) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.access == refused) {
            *slot = None;
        }
    }

    async fn authenticate(&self) -> PsaResult<Token> {
        let c = &self.config;
        let form = [
            ("GrantType", "password"),
            ("UserName", c.credentials.username.as_str()),
            ("Password", c.credentials.password.expose()),
            ("Tenant", c.tenant.as_str()),
        ];
        self.token_call(AUTHENTICATE, &form).await
    }

    async fn refresh(&self, old: &Token) -> PsaResult<Token> {
        let refresh = old.refresh.as_deref().unwrap_or_default();
        let form = [
            ("AccessToken", old.access.as_str()),
            ("RefreshToken", refresh),
        ];
        self.token_call(REFRESH, &form).await
    }

    /// Posts a token form. Any refusal becomes `PsaError::Auth` with the PSA's message.
    async fn token_call(&self, path: &str, form: &[(&str, &str)]) -> PsaResult<Token> {
        self.budget.acquire(&endpoint_of(path)).await?;
        let rb = self.http.post(format!("{}{}", self.base, path)).form(form);
        let (status, headers, bytes) = self.send(rb, path).await?;
        let now = Instant::now();
        let server_now = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(http::parse_http_date);
        let env =
            envelope::parse_response(status, &bytes, retry_after(&headers)).map_err(
                |e| match e {
                    PsaError::Transient { .. } => e,
                    PsaError::Auth { status, message }
                    | PsaError::Permanent { status, message } => PsaError::Auth { status, message },
                    PsaError::NotFound { message }
                    | PsaError::PermissionDenied { message }
                    | PsaError::LookupUnavailable { message, .. } => PsaError::Auth {
                        status: Some(status),
                        message,
                    },
                },
            )?;
        auth::token_from_result(&env.result, now, server_now, Utc::now())
            .ok_or_else(|| auth_error("the login answer carries no access token"))
    }
}

fn auth_error(message: &str) -> PsaError {
    PsaError::Auth {
        status: None,
        message: message.to_string(),
    }
}
