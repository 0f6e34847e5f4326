//! `PsaConnection.spec.sources`: generic JSON webhooks (`/webhook/{source}`) and CloudEvents
//! (`/cloudevents`) turned into alerts by CEL expressions, with optional signature checks.
//!
//! Kept apart from the other connection settings: the expressions are compiled at reconcile
//! time (`dispatch::intake::sources::compile`), so a typo shows as `InvalidSource` on the
//! connection and as a `validate` error with the field path, never as a failing alert.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::SecretRef;

/// One sender of JSON webhooks and how its payload becomes an alert. Every expression is CEL
/// over `payload` (the JSON body, or a CloudEvent's `data`), `headers` (request headers,
/// lower-case names) and `event` (a CloudEvent's attributes; empty for webhooks), and must
/// give a string (numbers are turned into text).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSource {
    /// Name in the path: `/webhook/{name}`. Lower-case letters, digits and dashes.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Organization (the CustomerMapping's `organization`), e.g. `payload.organization.name`.
    #[schemars(length(min = 1, max = 1024))]
    pub organization: String,
    /// Alert type (grouping, issue-type overrides), e.g. `payload.incident_report.name`.
    #[schemars(length(min = 1, max = 1024))]
    pub alert_type: String,
    /// Event id (idempotency). Default: the `svix-id` header when present, else the CloudEvent
    /// `id`, else a SHA-256 of the body.
    #[schemars(length(min = 1, max = 1024))]
    pub id: Option<String>,
    /// User the alert is about (its e-mail finds the ticket contact).
    #[schemars(length(min = 1, max = 1024))]
    pub user: Option<String>,
    /// Severity (the default key of `ticket.priority.map`), e.g. `payload.severity`.
    #[schemars(length(min = 1, max = 1024))]
    pub severity: Option<String>,
    /// Title (ticket summary input). Default: the alert type.
    #[schemars(length(min = 1, max = 1024))]
    pub title: Option<String>,
    /// Description (ticket text).
    #[schemars(length(min = 1, max = 1024))]
    pub description: Option<String>,
    /// Status as the sender names it (kept for value maps and the ticket text); `resolved`
    /// marks a resolution.
    #[schemars(length(min = 1, max = 1024))]
    pub status: Option<String>,
    /// CloudEvents `type`s this source maps on `/cloudevents` (exact, or a prefix ending in
    /// `*`). The first source whose list matches an event's type maps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    pub cloud_event_types: Vec<String>,
    /// Signature check of each request (besides the intake's bearer token).
    pub signature: Option<SourceSignature>,
}

/// How a source signs its requests. Exactly one member is set.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("(has(self.hmacSha256) ? 1 : 0) + (has(self.svix) ? 1 : 0) == 1")
        .message("exactly one signature scheme must be set: hmacSha256 or svix")
        .reason(Reason::FieldValueInvalid)
)]
pub struct SourceSignature {
    /// Hex (or `sha256=`-prefixed hex) HMAC-SHA256 of the raw body in a header.
    pub hmac_sha256: Option<HmacSignature>,
    /// Svix-style: `svix-id`, `svix-timestamp`, `svix-signature` (`v1,<base64>` HMAC-SHA256 of
    /// `id.timestamp.body`), refused outside the replay window.
    pub svix: Option<SvixSignature>,
}

/// HMAC-SHA256 of the body, hex-encoded in a request header.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HmacSignature {
    /// Header holding the signature, e.g. `X-Hub-Signature-256` or `X-Signature`.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9-]+$"))]
    pub header: String,
    /// Secret with the key `secret` (the shared signing secret).
    pub secret_ref: SecretRef,
}

/// Svix-style signed webhooks (Svix, and the many SaaS senders built on it).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SvixSignature {
    /// Secret with the key `secret`: the endpoint's signing secret (`whsec_<base64>`, or the
    /// raw key).
    pub secret_ref: SecretRef,
    /// Largest difference between `svix-timestamp` and now (default 5m).
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub tolerance: Option<String>,
}
