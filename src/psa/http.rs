//! The HTTP pieces every PSA client shares: the `reqwest` client with its timeouts, the
//! classification of a failed request (transient or permanent, never the URL in the message),
//! `Retry-After`, and the per-call trace line. Each provider's `transport.rs` builds on these and
//! keeps only what its PSA does differently (authentication, envelopes, paging, limits).

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::{PsaError, PsaResult};

/// The longest a client waits for a TCP connection, whatever its request timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `User-Agent` every client sends.
pub const USER_AGENT: &str = concat!("psa-operator/", env!("CARGO_PKG_VERSION"));

/// A `reqwest` client with the request `timeout` (a connection attempt gets at most
/// [`CONNECT_TIMEOUT`] of it).
pub fn client(timeout: Duration) -> PsaResult<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| PsaError::Permanent {
            status: None,
            message: format!("cannot build the HTTP client: {e}"),
        })
}

/// A request that got no answer, as a [`PsaError`]: `label` names the request (a method and a
/// path, never the URL: its query may hold an e-mail address) and the message keeps the cause
/// but no header.
///
/// A request that cannot be built (an invalid URL, a query too long) fails the same way every
/// time, so it is permanent; timeouts, refused connections and broken answers are transient.
pub fn transport_error(label: &str, e: reqwest::Error) -> PsaError {
    let (builder, timeout, connect) = (e.is_builder(), e.is_timeout(), e.is_connect());
    let detail = match std::error::Error::source(&e) {
        Some(cause) => cause.to_string(),
        None => e.without_url().to_string(),
    };
    if builder {
        return PsaError::Permanent {
            status: None,
            message: format!("{label} cannot be built: {detail}"),
        };
    }
    let what = if timeout {
        "timed out"
    } else if connect {
        "could not connect"
    } else {
        "failed"
    };
    PsaError::Transient {
        status: None,
        message: format!("{label} {what}: {detail}"),
        retry_after: None,
    }
}

/// `Retry-After` in seconds or as an HTTP date; a date already past means "now".
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(v)?;
    Some(
        (when - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// An HTTP date (`Tue, 24 Nov 2026 23:50:00 GMT`, RFC 2822 form) as UTC.
pub fn parse_http_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The trace line of one PSA call (`RUST_LOG=psa_operator::psa=debug`): provider, request
/// label, status and time taken; never a header or a body.
pub fn trace_call(provider: &str, label: &str, status: u16, started: Instant) {
    tracing::debug!(
        provider,
        request = %label,
        status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "PSA call"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    /// The red-team look-up with a 1.5 MB user: reqwest refuses to build the request
    /// ("Parsed Url is not a valid Uri"); retrying cannot help, so it is permanent.
    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_permanent() {
        let url = format!("http://127.0.0.1:9/x?q={}", "u".repeat(70_000));
        let e = reqwest::Client::new().get(url).send().await.unwrap_err();
        let err = transport_error("contact look-up", e);
        assert!(matches!(err, PsaError::Permanent { .. }), "{err:?}");
        assert!(!err.is_transient());
        assert!(!err.to_string().contains("uuuu"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient_and_names_the_request_not_the_url() {
        let e = reqwest::Client::new()
            .get("http://127.0.0.1:9/contacts?email=a@b.example")
            .send()
            .await
            .unwrap_err();
        let err = transport_error("GET /contacts", e);
        assert!(err.is_transient(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("GET /contacts"), "{text}");
        assert!(!text.contains("a@b.example"), "{text}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        assert!(parse_http_date("Tue, 24 Nov 2026 23:50:00 GMT").is_some());
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
