//! Signature checks of signed webhooks. Pure: the caller passes the headers, the body, the
//! secret and the clock, so the decision is a table test.
//!
//! * `hmacSha256`: a header holds the hex HMAC-SHA256 of the raw body (optionally prefixed
//!   `sha256=`, as GitHub and many SaaS senders write it).
//! * Svix: `svix-signature` holds space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//!   (several during a key rotation); `svix-timestamp` (Unix seconds) must be within the
//!   tolerance of now, so a captured request cannot be replayed later, and it is signed, so a
//!   replayed request with a fresh timestamp does not verify. A replay within the window carries
//!   the same `svix-id`, the default event id: it is acknowledged as a duplicate, not stored.
//!
//! Every comparison is constant-time (`ring::hmac::verify`). Errors name the header, never
//! the secret or the expected signature.

use std::time::Duration;

use base64::Engine;
use ring::hmac;

use crate::secret::SecretString;

/// How a request's signature is checked.
#[derive(Clone, Debug)]
pub enum SignatureCheck {
    Hmac {
        /// Lower-case header name.
        header: String,
        secret: SecretString,
    },
    Svix {
        secret: SecretString,
        tolerance: Duration,
    },
}

/// Why a signature was refused (→ 401 problem naming `header`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureError {
    pub header: String,
    pub detail: String,
}

fn refuse(header: &str, detail: impl Into<String>) -> SignatureError {
    SignatureError {
        header: header.to_string(),
        detail: detail.into(),
    }
}

/// The Svix replay window when the source sets none.
pub const DEFAULT_SVIX_TOLERANCE: Duration = Duration::from_secs(5 * 60);

pub const SVIX_ID: &str = "svix-id";
pub const SVIX_TIMESTAMP: &str = "svix-timestamp";
pub const SVIX_SIGNATURE: &str = "svix-signature";

impl SignatureCheck {
    /// Checks the request; `header` looks a header up by its lower-case name.
    pub fn verify<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<(), SignatureError> {
        match self {
            SignatureCheck::Hmac {
                header: name,
                secret,
            } => {
                let presented = header(name).ok_or_else(|| refuse(name, "is missing"))?;
                verify_hmac(name, secret, body, presented)
            }
            SignatureCheck::Svix { secret, tolerance } => {
                verify_svix(&header, secret, *tolerance, body, now_unix_secs)
            }
        }
    }
}

fn verify_hmac(
    name: &str,
    secret: &SecretString,
    body: &[u8],
    presented: &str,
) -> Result<(), SignatureError> {
    let hex = presented.trim();
    let hex = hex.strip_prefix("sha256=").unwrap_or(hex);
    let tag = decode_hex(hex).ok_or_else(|| {
        refuse(
            name,
            "is not a hex HMAC-SHA256 (optionally prefixed sha256=)",
        )
    })?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    hmac::verify(&key, body, &tag).map_err(|_| {
        refuse(
            name,
            "does not match the body signed with the source's secret",
        )
    })
}

fn verify_svix<'a>(
    header: &impl Fn(&str) -> Option<&'a str>,
    secret: &SecretString,
    tolerance: Duration,
    body: &[u8],
    now_unix_secs: i64,
) -> Result<(), SignatureError> {
    let id = header(SVIX_ID).ok_or_else(|| refuse(SVIX_ID, "is missing"))?;
    let timestamp = header(SVIX_TIMESTAMP).ok_or_else(|| refuse(SVIX_TIMESTAMP, "is missing"))?;
    let signatures = header(SVIX_SIGNATURE).ok_or_else(|| refuse(SVIX_SIGNATURE, "is missing"))?;
    let sent_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| refuse(SVIX_TIMESTAMP, "is not Unix seconds"))?;
    let skew = now_unix_secs.abs_diff(sent_at);
    if skew > tolerance.as_secs() {
        return Err(refuse(
            SVIX_TIMESTAMP,
            format!(
                "is {skew} s away from now, outside the {} s replay window",
                tolerance.as_secs()
            ),
        ));
    }
    let key_bytes = svix_key(secret).ok_or_else(|| {
        refuse(
            SVIX_SIGNATURE,
            "cannot be checked: the source's secret is not whsec_<base64>",
        )
    })?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
    let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.trim().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let engine = base64::engine::general_purpose::STANDARD;
    let matches = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| engine.decode(b64).ok())
        .any(|tag| hmac::verify(&key, &signed, &tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(refuse(
            SVIX_SIGNATURE,
            "no v1 signature matches the id, timestamp and body signed with the source's secret",
        ))
    }
}

/// The HMAC key of a Svix secret: `whsec_<base64>` decoded; a secret without the prefix is
/// taken as base64 if it decodes, else as raw bytes.
fn svix_key(secret: &SecretString) -> Option<Vec<u8>> {
    let engine = base64::engine::general_purpose::STANDARD;
    let raw = secret.expose().trim();
    match raw.strip_prefix("whsec_") {
        Some(b64) => engine.decode(b64).ok(),
        None => Some(
            engine
                .decode(raw)
                .unwrap_or_else(|_| raw.as_bytes().to_vec()),
        ),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Hex of a SHA-256 digest (event ids derived from a body).
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// What a sender computes: the hex HMAC of `body`.
    pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hmac::sign(&key, body)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// What a Svix sender computes: `v1,<base64>` for `id.timestamp.body`.
    pub fn svix_sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
        let engine = base64::engine::general_purpose::STANDARD;
        let key = engine
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        let mut signed = format!("{id}.{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        format!("v1,{}", engine.encode(hmac::sign(&key, &signed).as_ref()))
    }

    const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// (case, signature header, body, expected error detail).
    type HmacCase<'a> = (&'a str, Option<String>, &'a [u8], Option<&'a str>);
    /// (case, headers, expected error header and detail).
    type SvixCase<'a> = (
        &'a str,
        BTreeMap<&'a str, String>,
        Option<(&'a str, &'a str)>,
    );
    const NOW: i64 = 1_764_700_000;

    fn check(
        scheme: &SignatureCheck,
        headers: &BTreeMap<&str, String>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        scheme.verify(|h| headers.get(h).map(String::as_str), body, NOW)
    }

    #[test]
    fn hmac_signatures() {
        let body = br#"{"event":"incident.created"}"#;
        let scheme = SignatureCheck::Hmac {
            header: "x-signature".into(),
            secret: SecretString::new("shared-signing-secret"),
        };
        let good = hmac_hex("shared-signing-secret", body);
        let cases: Vec<HmacCase> = vec![
            ("good", Some(good.clone()), body, None),
            (
                "good, sha256= prefix",
                Some(format!("sha256={good}")),
                body,
                None,
            ),
            ("upper-case hex", Some(good.to_uppercase()), body, None),
            (
                "other secret",
                Some(hmac_hex("another-secret", body)),
                body,
                Some("does not match"),
            ),
            (
                "body changed",
                Some(good.clone()),
                b"{\"event\":\"x\"}",
                Some("does not match"),
            ),
            ("not hex", Some("zz".repeat(32)), body, Some("not a hex")),
            ("missing", None, body, Some("is missing")),
        ];
        for (name, sig, body, want) in cases {
            let mut headers = BTreeMap::new();
            if let Some(sig) = sig {
                headers.insert("x-signature", sig);
            }
            match (check(&scheme, &headers, body), want) {
                (Ok(()), None) => {}
                (Err(e), Some(want)) => {
                    assert_eq!(e.header, "x-signature", "{name}");
                    assert!(e.detail.contains(want), "{name}: {}", e.detail);
                    assert!(!e.detail.contains("shared-signing-secret"), "{name}");
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn svix_signatures() {
        let body = br#"{"type":"incident.created"}"#;
        let scheme = SignatureCheck::Svix {
            secret: SecretString::new(SVIX_SECRET),
            tolerance: DEFAULT_SVIX_TOLERANCE,
        };
        let id = "msg_2Ld5pQW8k";
        let headers = |id: &str, ts: i64, sig: String| {
            BTreeMap::from([
                (SVIX_ID, id.to_string()),
                (SVIX_TIMESTAMP, ts.to_string()),
                (SVIX_SIGNATURE, sig),
            ])
        };
        let signed_now = svix_sign(SVIX_SECRET, id, NOW, body);
        let old = NOW - 6 * 60;
        let signed_old = svix_sign(SVIX_SECRET, id, old, body);
        let other_key = svix_sign("whsec_b3RoZXIta2V5LW9mLXRoZS1zZW5kZXI=", id, NOW, body);
        let cases: Vec<SvixCase> = vec![
            ("good", headers(id, NOW, signed_now.clone()), None),
            (
                "good, 4 min old",
                headers(id, NOW - 240, svix_sign(SVIX_SECRET, id, NOW - 240, body)),
                None,
            ),
            (
                "rotation: second signature matches",
                headers(id, NOW, format!("{other_key} {signed_now}")),
                None,
            ),
            (
                "bad key",
                headers(id, NOW, other_key.clone()),
                Some((SVIX_SIGNATURE, "no v1 signature")),
            ),
            (
                "expired timestamp",
                headers(id, old, signed_old.clone()),
                Some((SVIX_TIMESTAMP, "replay window")),
            ),
            (
                "future timestamp",
                headers(id, NOW + 3600, svix_sign(SVIX_SECRET, id, NOW + 3600, body)),
                Some((SVIX_TIMESTAMP, "replay window")),
            ),
            // A captured request replayed with a fresh timestamp: the timestamp is signed.
            (
                "replayed with a fresh timestamp",
                headers(id, NOW, signed_old),
                Some((SVIX_SIGNATURE, "no v1 signature")),
            ),
            (
                "another message's id",
                headers("msg_other", NOW, signed_now.clone()),
                Some((SVIX_SIGNATURE, "no v1 signature")),
            ),
            (
                "timestamp not a number",
                headers(id, 0, signed_now.clone())
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            if k == SVIX_TIMESTAMP {
                                "yesterday".into()
                            } else {
                                v
                            },
                        )
                    })
                    .collect(),
                Some((SVIX_TIMESTAMP, "Unix seconds")),
            ),
            (
                "missing id",
                {
                    let mut h = headers(id, NOW, signed_now.clone());
                    h.remove(SVIX_ID);
                    h
                },
                Some((SVIX_ID, "missing")),
            ),
            (
                "missing signature",
                {
                    let mut h = headers(id, NOW, signed_now);
                    h.remove(SVIX_SIGNATURE);
                    h
                },
                Some((SVIX_SIGNATURE, "missing")),
            ),
        ];
        for (name, headers, want) in cases {
            match (check(&scheme, &headers, body), want) {
                (Ok(()), None) => {}
                (Err(e), Some((header, detail))) => {
                    assert_eq!(e.header, header, "{name}");
                    assert!(e.detail.contains(detail), "{name}: {}", e.detail);
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}
