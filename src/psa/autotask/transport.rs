//! One Autotask call: zone (configured or discovered once), the three credential headers, the
//! limits (endpoint slot, database threshold, our hourly share), the request, and the error
//! classification. Queries page through `pageDetails.nextPageUrl`.
//!
//! The credential headers are marked sensitive and never reach a log or an error; error texts
//! name the path, never the URL (a query string may hold an e-mail address).

use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::convert::{self, endpoint_of};
use super::limits::Limits;
use super::wire::{WPage, WThreshold, WZone};
use super::AutotaskConfig;
use crate::psa::http::{self, retry_after, transport_error};
use crate::psa::{PsaError, PsaResult};

/// Rows per query page (Autotask's maximum).
pub const PAGE_SIZE: usize = 500;
/// Upper bound on pages read by one query (100,000 rows).
const MAX_PAGES: usize = 200;

pub const ZONE_INFORMATION: &str = "/V1.0/ZoneInformation";
pub const THRESHOLD_INFORMATION: &str = "/V1.0/ThresholdInformation";

pub struct Transport {
    http: reqwest::Client,
    config: AutotaskConfig,
    zone: OnceCell<String>,
    pub(super) limits: Limits,
}

impl Transport {
    pub fn new(config: AutotaskConfig) -> PsaResult<Self> {
        let http = http::client(config.timeout)?;
        let zone = OnceCell::new();
        if let Some(url) = &config.zone_url {
            zone.set(convert::zone_base(url)?)
                .map_err(|_| PsaError::Permanent {
                    status: None,
                    message: "zone set twice".into(),
                })?;
        }
        // Checked now so a bad discovery URL is a clear error before the first call.
        convert::zone_base(&config.discovery_url)?;
        Ok(Transport {
            http,
            limits: Limits::new(config.limits),
            config,
            zone,
        })
    }

    /// The zone's REST root: configured, or discovered once from the API user's e-mail.
    pub async fn base(&self) -> PsaResult<&str> {
        self.zone
            .get_or_try_init(|| self.discover())
            .await
            .map(String::as_str)
    }

    /// `GET {discovery}/V1.0/ZoneInformation?user=` (exempt from the thread limits).
    async fn discover(&self) -> PsaResult<String> {
        let root = convert::zone_base(&self.config.discovery_url)?;
        let rb = self
            .http
            .get(format!("{root}{ZONE_INFORMATION}"))
            .query(&[("user", self.config.username.as_str())]);
        // Autotask knowing no zone for the user is a credentials problem, not a missing object.
        let v = self
            .exchange(rb, ZONE_INFORMATION)
            .await
            .map_err(|e| match e {
                PsaError::NotFound { message } => PsaError::Auth {
                    status: Some(404),
                    message,
                },
                other => other,
            })?;
        let zone: WZone = decode("zone information", v)?;
        match zone.url.filter(|u| !u.trim().is_empty()) {
            Some(url) => convert::zone_base(&url),
            None => Err(PsaError::Auth {
                status: None,
                message: format!(
                    "Autotask knows no zone for the API user {:?} (is the user name the API user's e-mail?)",
                    self.config.username
                ),
            }),
        }
    }

    fn credentials(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        let pairs = [
            ("ApiIntegrationCode", self.config.integration_code.expose()),
            ("UserName", self.config.username.as_str()),
            ("Secret", self.config.secret.expose()),
        ];
        for (name, value) in pairs {
            if let Ok(mut v) = HeaderValue::from_str(value) {
                v.set_sensitive(true);
                headers.insert(name, v);
            }
        }
        rb.headers(headers)
    }

    /// Sends with the credentials; an error answer becomes a classified `PsaError`.
    async fn exchange(&self, rb: reqwest::RequestBuilder, path: &str) -> PsaResult<Value> {
        let label = format!("request to {path}");
        let started = Instant::now();
        let resp = self
            .credentials(rb)
            .send()
            .await
            .map_err(|e| transport_error(&label, e))?;
        let status = resp.status().as_u16();
        let retry = retry_after(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| transport_error(&label, e))?;
        http::trace_call("Autotask", &label, status, started);
        if !(200..300).contains(&status) {
            return Err(convert::classify(status, &bytes, retry));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| PsaError::Permanent {
            status: Some(status),
            message: format!("Autotask answered {path} with JSON we cannot read: {e}"),
        })
    }

    /// Reads `ThresholdInformation` when the last reading is due. A 429 there means the
    /// database is at its threshold: recorded as 100 %.
    async fn refresh_threshold(&self, base: &str) -> PsaResult<()> {
        if !self.limits.reading_due(Instant::now()) {
            return Ok(());
        }
        let _one = self.limits.threshold_refresh.lock().await;
        if !self.limits.reading_due(Instant::now()) {
            return Ok(());
        }
        let rb = self.http.get(format!("{base}{THRESHOLD_INFORMATION}"));
        match self.exchange(rb, THRESHOLD_INFORMATION).await {
            Ok(v) => {
                let t: WThreshold = decode("threshold information", v)?;
                self.limits.record_threshold(&t, Instant::now());
                Ok(())
            }
            Err(PsaError::Transient {
                status: Some(429), ..
            }) => {
                self.limits.record(Some(1.0), Instant::now());
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads `ThresholdInformation` now, whatever the last reading said: the credential check.
    /// It takes an endpoint slot but is never held by the database's use (it is how that use
    /// is known) and takes nothing from our hourly share, like the periodic reading.
    pub async fn read_threshold(&self) -> PsaResult<()> {
        let base = self.base().await?.to_string();
        let _slot = self.limits.slot(&endpoint_of(THRESHOLD_INFORMATION)).await;
        let _one = self.limits.threshold_refresh.lock().await;
        let rb = self.http.get(format!("{base}{THRESHOLD_INFORMATION}"));
        let v = self.exchange(rb, THRESHOLD_INFORMATION).await?;
        let t: WThreshold = decode("threshold information", v)?;
        self.limits.record_threshold(&t, Instant::now());
        Ok(())
    }

    /// One limited call to a path under the zone's root (`/V1.0/...`).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> PsaResult<Value> {
        let base = self.base().await?.to_string();
        self.call_url(method, format!("{base}{path}"), path, body)
            .await
    }

    async fn call_url(
        &self,
        method: Method,
        url: String,
        path: &str,
        body: Option<&Value>,
    ) -> PsaResult<Value> {
        let base = self.base().await?.to_string();
        let _slot = self.limits.slot(&endpoint_of(path)).await;
        self.refresh_threshold(&base).await?;
        self.limits.check_threshold()?;
        self.limits.hourly().await?;
        let mut rb = self.http.request(method, url);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        match self.exchange(rb, path).await {
            // Autotask refuses at 100 %: remember it so the next calls hold without asking.
            Err(
                e @ PsaError::Transient {
                    status: Some(429), ..
                },
            ) => {
                if e.to_string().to_ascii_lowercase().contains("threshold") {
                    self.limits.record(Some(1.0), Instant::now());
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Every row of `entity` matching `filter` (`POST /V1.0/{entity}/query`, then each
    /// `nextPageUrl`), stopping at the first row `stop_at` accepts when given.
    pub async fn query<T: DeserializeOwned>(
        &self,
        entity: &str,
        filter: Vec<Value>,
        stop_at: Option<&(dyn Fn(&T) -> bool + Sync)>,
    ) -> PsaResult<Vec<T>> {
        let path = format!("/V1.0/{entity}/query");
        let body = json!({ "filter": filter, "maxRecords": PAGE_SIZE });
        let mut page: WPage<T> =
            decode(entity, self.call(Method::POST, &path, Some(&body)).await?)?;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            for row in page.items {
                let done = stop_at.is_some_and(|f| f(&row));
                out.push(row);
                if done {
                    return Ok(out);
                }
            }
            let next = page
                .page_details
                .and_then(|p| p.next_page_url)
                .filter(|u| !u.trim().is_empty());
            let Some(next) = next else { break };
            let url = self.same_zone(&next).await?;
            page = decode(entity, self.call_url(Method::GET, url, &path, None).await?)?;
        }
        Ok(out)
    }

    /// A next-page URL must point into our zone: the credentials go with it.
    async fn same_zone(&self, url: &str) -> PsaResult<String> {
        let base = self.base().await?;
        let lower = url.to_ascii_lowercase();
        if lower.starts_with(&format!("{}/", base.to_ascii_lowercase())) {
            Ok(url.to_string())
        } else {
            Err(PsaError::Permanent {
                status: None,
                message: "Autotask sent a next-page URL outside the zone; not following it with our credentials".into(),
            })
        }
    }
}

pub fn decode<T: DeserializeOwned>(what: &str, v: Value) -> PsaResult<T> {
    serde_json::from_value(v).map_err(|e| PsaError::Permanent {
        status: None,
        message: format!("cannot read the Autotask {what} answer: {e}"),
    })
}
