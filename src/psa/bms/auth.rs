//! Access tokens: what `/v2/security/authenticate` and `/v2/security/refreshtoken` hand back, how
//! long a token is good for, and whether to use, refresh or replace it. Pure; the calls are in
//! `transport`.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// Used when the expiry the PSA sent cannot be trusted (absent, unparsable, in the past or more
/// than a day away — e.g. a local time read as UTC). A 401 still triggers one re-login.
pub const FALLBACK_LIFETIME: Duration = Duration::from_secs(10 * 60);
const MAX_PLAUSIBLE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Refresh tokens live for days (the BMS document gives `RefreshTokenExpireOn` and no bound);
/// a year is the most believed.
const MAX_PLAUSIBLE_REFRESH_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// A bearer token and when it stops working, on this process's monotonic clock.
/// `Debug` never prints the tokens.
#[derive(Clone)]
pub struct Token {
    pub access: String,
    pub refresh: Option<String>,
    pub expires_at: Instant,
    pub refresh_expires_at: Option<Instant>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access", &"<redacted>")
            .field("refresh", &self.refresh.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What to do before a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAction {
    Use,
    Refresh,
    Authenticate,
}

/// Use a token that outlives `margin`; otherwise refresh it while the refresh token is good;
/// otherwise log in again.
pub fn next_action(now: Instant, token: Option<&Token>, margin: Duration) -> TokenAction {
    let Some(t) = token else {
        return TokenAction::Authenticate;
    };
    if t.expires_at > now + margin {
        return TokenAction::Use;
    }
    let refresh_ok = t.refresh.is_some()
        && t.refresh_expires_at
            .map(|r| r > now + margin)
            .unwrap_or(true);
    if refresh_ok {
        TokenAction::Refresh
    } else {
        TokenAction::Authenticate
    }
}

/// How long an access token is good for, from its `…ExpireOn` time and the server's clock (the
/// response's `Date` header) when known, else ours. Times without an offset are read as UTC.
pub fn lifetime(
    expire_on: Option<&str>,
    server_now: Option<DateTime<Utc>>,
    local_now: DateTime<Utc>,
) -> Duration {
    plausible(expire_on, server_now, local_now, MAX_PLAUSIBLE_LIFETIME).unwrap_or(FALLBACK_LIFETIME)
}

/// How long a refresh token is good for: days are normal. `None` when the expiry cannot be
/// trusted — the client then tries the refresh token anyway (a refused refresh falls back to a
/// login), rather than sending the password again every access-token lifetime.
pub fn refresh_lifetime(
    expire_on: Option<&str>,
    server_now: Option<DateTime<Utc>>,
    local_now: DateTime<Utc>,
) -> Option<Duration> {
    plausible(
        expire_on,
        server_now,
        local_now,
        MAX_PLAUSIBLE_REFRESH_LIFETIME,
    )
}

fn plausible(
    expire_on: Option<&str>,
    server_now: Option<DateTime<Utc>>,
    local_now: DateTime<Utc>,
    max: Duration,
) -> Option<Duration> {
    let expiry = expire_on.and_then(parse_time)?;
    let base = server_now.unwrap_or(local_now);
    match (expiry - base).to_std() {
        Ok(d) if !d.is_zero() && d <= max => Some(d),
        _ => None,
    }
}

/// RFC 3339, or the offset-less `2024-05-01T10:15:00[.fff]` seen on the wire (taken as UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// Reads a token result (keys already lowercased). `None` when there is no access token.
pub fn token_from_result(
    result: &Value,
    now: Instant,
    server_now: Option<DateTime<Utc>>,
    local_now: DateTime<Utc>,
) -> Option<Token> {
    let access = result.get("accesstoken")?.as_str()?.trim();
    if access.is_empty() {
        return None;
    }
    let refresh = result
        .get("refreshtoken")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let access_life = lifetime(
        result.get("accesstokenexpireon").and_then(Value::as_str),
        server_now,
        local_now,
    );
    let refresh_expires_at = refresh_lifetime(
        result.get("refreshtokenexpireon").and_then(Value::as_str),
        server_now,
        local_now,
    )
    .map(|d| now + d);
    Some(Token {
        access: access.to_string(),
        refresh,
        expires_at: now + access_life,
        refresh_expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn lifetime_follows_the_expiry_and_distrusts_odd_values() {
        let now = utc("2026-11-24T10:00:00Z");
        let table = [
            (Some("2026-11-24T10:15:00"), None, Duration::from_secs(900)),
            (Some("2026-11-24T10:15:00Z"), None, Duration::from_secs(900)),
            (
                Some("2026-11-24T11:15:00+01:00"),
                None,
                Duration::from_secs(900),
            ),
            (
                Some("2026-11-24T10:15:00.250"),
                None,
                Duration::from_millis(900_250),
            ),
            // The server's clock wins over ours.
            (
                Some("2026-11-24T10:15:00"),
                Some(utc("2026-11-24T10:05:00Z")),
                Duration::from_secs(600),
            ),
            (Some("2026-11-24T09:00:00"), None, FALLBACK_LIFETIME),
            (Some("2026-11-27T10:00:00"), None, FALLBACK_LIFETIME),
            (Some("tomorrow"), None, FALLBACK_LIFETIME),
            (None, None, FALLBACK_LIFETIME),
        ];
        for (expire_on, server, want) in table {
            assert_eq!(lifetime(expire_on, server, now), want, "{expire_on:?}");
        }
    }

    #[test]
    fn action_depends_on_expiry_margin_and_refresh_token() {
        let now = Instant::now();
        let margin = Duration::from_secs(60);
        let tok = |life: u64, refresh: Option<&str>, refresh_life: Option<u64>| Token {
            access: "a".into(),
            refresh: refresh.map(str::to_string),
            expires_at: now + Duration::from_secs(life),
            refresh_expires_at: refresh_life.map(|l| now + Duration::from_secs(l)),
        };
        let table = [
            (None, TokenAction::Authenticate),
            (Some(tok(900, Some("r"), Some(3600))), TokenAction::Use),
            (Some(tok(61, Some("r"), None)), TokenAction::Use),
            (Some(tok(60, Some("r"), None)), TokenAction::Refresh),
            (Some(tok(30, Some("r"), Some(3600))), TokenAction::Refresh),
            (
                Some(tok(30, Some("r"), Some(30))),
                TokenAction::Authenticate,
            ),
            (Some(tok(30, None, None)), TokenAction::Authenticate),
        ];
        for (i, (token, want)) in table.into_iter().enumerate() {
            assert_eq!(next_action(now, token.as_ref(), margin), want, "row {i}");
        }
    }

    #[test]
    fn token_result_is_read_and_debug_hides_it() {
        let now = Instant::now();
        let local = utc("2026-11-24T10:00:00Z");
        let r = json!({"accesstoken":"eyJ-secret","refreshtoken":"r-secret",
            "accesstokenexpireon":"2026-11-24T10:15:00","refreshtokenexpireon":"2026-12-01T10:00:00"});
        let t = token_from_result(&r, now, None, local).unwrap();
        assert_eq!(t.access, "eyJ-secret");
        assert_eq!(t.expires_at, now + Duration::from_secs(900));
        // A week is beyond the plausible range for an access token but normal for a refresh token:
        // it is kept, so the client refreshes for a week instead of logging in again.
        assert_eq!(
            t.refresh_expires_at,
            Some(now + Duration::from_secs(7 * 24 * 3600))
        );
        let later = now + Duration::from_secs(3 * 3600);
        let expired_access = Token {
            expires_at: now,
            ..t.clone()
        };
        assert_eq!(
            next_action(later, Some(&expired_access), Duration::from_secs(60)),
            TokenAction::Refresh,
            "hours later the refresh token is still used, not the password"
        );
        // An untrustworthy refresh expiry: refresh anyway (a refusal falls back to a login).
        let odd = json!({"accesstoken":"a","refreshtoken":"r","refreshtokenexpireon":"never"});
        assert_eq!(
            token_from_result(&odd, now, None, local)
                .unwrap()
                .refresh_expires_at,
            None
        );
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(token_from_result(&json!({"accesstoken":""}), now, None, local).is_none());
        assert!(token_from_result(&json!({}), now, None, local).is_none());
    }
}
