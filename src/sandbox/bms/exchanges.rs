//! The sandbox's exchange log: the last requests to the emulated BMS paths and the answers the
//! sandbox gave, as sent. `GET /_sandbox/exchanges` serves it; the contract tests validate every
//! entry against Kaseya's OpenAPI document (`tests/contracts/`), so a client request or a sandbox
//! answer that the document does not describe fails a test.
//!
//! Secrets stay out: the login and refresh forms are kept as field names only, and the tokens in
//! their answers are replaced by `<redacted>`.

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::Value;

/// Exchanges kept; older ones are dropped first.
pub const CAPACITY: usize = 2_000;
/// Longest body kept, in bytes (longer ones are cut and marked `truncated`).
pub const MAX_BODY: usize = 256 * 1024;
const REDACTED: &str = "<redacted>";

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`), empty when there was none.
    pub query: String,
    pub request_content_type: Option<String>,
    pub request_body: String,
    pub status: u16,
    pub response_body: String,
    pub truncated: bool,
}

#[derive(Default)]
pub struct ExchangeLog {
    entries: VecDeque<Exchange>,
}

impl ExchangeLog {
    pub fn record(&mut self, mut e: Exchange) {
        if is_token_path(&e.path) {
            e.request_body = redact_form(&e.request_body);
            e.response_body = redact_tokens(&e.response_body);
        }
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }

    pub fn all(&self) -> Vec<Exchange> {
        self.entries.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

fn is_token_path(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p.ends_with("/security/authenticate") || p.ends_with("/security/refreshtoken")
}

/// `a=1&b=2` → `a=<redacted>&b=<redacted>`: names kept for the contract check, values dropped.
fn redact_form(body: &str) -> String {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            format!("{name}={}", urlencoding::encode(REDACTED))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn redact_tokens(body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(body) else {
        return body.to_string();
    };
    if let Some(result) = v.get_mut("result").and_then(Value::as_object_mut) {
        for key in ["accessToken", "refreshToken"] {
            if let Some(t) = result.get_mut(key).filter(|t| t.is_string()) {
                *t = Value::String(REDACTED.into());
            }
        }
    }
    v.to_string()
}

/// A body as text, cut at [`MAX_BODY`] on a character boundary.
pub fn body_text(bytes: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_BODY {
        return (text.into_owned(), false);
    }
    let mut end = MAX_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(path: &str, req: &str, resp: &str) -> Exchange {
        Exchange {
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            request_content_type: None,
            request_body: req.into(),
            status: 200,
            response_body: resp.into(),
            truncated: false,
        }
    }

    #[test]
    fn logins_are_kept_without_secrets() {
        let mut log = ExchangeLog::default();
        log.record(exchange(
            "/v2/security/authenticate",
            "GrantType=password&UserName=demo-api&Password=hunter2&Tenant=demo",
            r#"{"success":true,"result":{"accessToken":"tok-abc","refreshToken":"ref-def","accessTokenExpireOn":"2026-01-01T00:00:00"}}"#,
        ));
        let e = &log.all()[0];
        assert!(!e.request_body.contains("hunter2"), "{}", e.request_body);
        assert!(e
            .request_body
            .starts_with("GrantType=%3Credacted%3E&UserName="));
        assert!(!e.response_body.contains("tok-abc") && !e.response_body.contains("ref-def"));
        assert!(e.response_body.contains("accessTokenExpireOn"));
    }

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let mut log = ExchangeLog::default();
        for i in 0..CAPACITY + 3 {
            log.record(exchange(&format!("/v2/x/{i}"), "", ""));
        }
        let all = log.all();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].path, "/v2/x/3");
        let (cut, truncated) = body_text(&vec![b'a'; MAX_BODY + 10]);
        assert!(truncated && cut.len() == MAX_BODY);
    }
}
