//! Intake sources beyond the three built-in shapes: Grafana alerting (`/grafana`), CloudEvents
//! (`/cloudevents`) and generic JSON webhooks (`/webhook/{source}`).
//!
//! Grafana's payload is Alertmanager's with a few more fields, read by the Alertmanager
//! parser with the connection's `spec.grafana` label names. CloudEvents and webhooks are
//! mapped by `spec.sources`: CEL expressions compiled once per reconcile ([`compile`]) and
//! evaluated per request ([`CompiledSource::evaluate`]) over `payload`, `headers` and `event`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube_cel::{cel, KubeCelExt};
use serde_json::Value;

use super::alerts::{MAX_DESCRIPTION, MAX_NAME, MAX_TITLE};
use super::fields::{field_error, FieldError};
use crate::api::{parse_duration, WebhookSource};
use crate::dispatch::decide::render::{cut_bytes, one_line};
use crate::dispatch::event::{Event, EventKind};
use crate::secret::SecretString;

pub mod cloudevents;
pub mod grafana;
pub mod intake;
pub mod signature;
pub mod webhook;

use signature::{SignatureCheck, DEFAULT_SVIX_TOLERANCE};

/// Longest event id kept as the sender gave it; longer ones are replaced by their SHA-256.
const MAX_EVENT_ID: usize = 200;

/// An alert field a source maps, in the order of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Organization,
    AlertType,
    Id,
    User,
    Severity,
    Title,
    Description,
    Status,
}

impl Target {
    /// The spec field name (`spec.sources[i].<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Organization => "organization",
            Target::AlertType => "alertType",
            Target::Id => "id",
            Target::User => "user",
            Target::Severity => "severity",
            Target::Title => "title",
            Target::Description => "description",
            Target::Status => "status",
        }
    }

    /// The expressions of a source, with the field each fills.
    fn of(source: &WebhookSource) -> Vec<(Target, &str)> {
        let optional = [
            (Target::Id, &source.id),
            (Target::User, &source.user),
            (Target::Severity, &source.severity),
            (Target::Title, &source.title),
            (Target::Description, &source.description),
            (Target::Status, &source.status),
        ];
        let mut out = vec![
            (Target::Organization, source.organization.as_str()),
            (Target::AlertType, source.alert_type.as_str()),
        ];
        out.extend(
            optional
                .into_iter()
                .filter_map(|(t, e)| e.as_deref().map(|e| (t, e))),
        );
        out
    }
}

/// A compiled CEL expression and its text (for error messages).
struct Expression {
    target: Target,
    text: String,
    program: cel::Program,
}

/// One `spec.sources` entry, ready to map payloads.
pub struct CompiledSource {
    pub name: String,
    expressions: Vec<Expression>,
    cloud_event_types: Vec<String>,
    pub signature: Option<SignatureCheck>,
}

impl std::fmt::Debug for CompiledSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSource")
            .field("name", &self.name)
            .field("expressions", &self.expressions.len())
            .field("cloud_event_types", &self.cloud_event_types)
            .field("signature", &self.signature.is_some())
            .finish()
    }
}

/// Every source of a connection.
#[derive(Debug, Default)]
pub struct CompiledSources {
    pub sources: Vec<CompiledSource>,
}

impl CompiledSources {
    pub fn named(&self, name: &str) -> Option<&CompiledSource> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The first source whose `cloudEventTypes` takes `event_type`.
    pub fn for_cloud_event(&self, event_type: &str) -> Option<&CompiledSource> {
        self.sources.iter().find(|s| {
            s.cloud_event_types
                .iter()
                .any(|t| match t.strip_suffix('*') {
                    Some(prefix) => event_type.starts_with(prefix),
                    None => t == event_type,
                })
        })
    }
}

/// A source setting that cannot be used, with its path in the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    /// `sources[0].organization`.
    pub field: String,
    /// The expression, duration, name or Secret name at fault.
    pub value: String,
    pub problem: String,
}

/// Compiles one CEL expression; the error text is the parser's, on one line.
fn compile_expression(text: &str) -> Result<cel::Program, String> {
    cel::Program::compile(text).map_err(|e| one_line(&e.to_string()))
}

/// Checks every expression and setting of `sources` without reading any Secret (`validate`
/// and the reconciler share it). Pure.
pub fn check(sources: &[WebhookSource]) -> Vec<SourceError> {
    let mut errors = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        for (target, text) in Target::of(source) {
            if let Err(problem) = compile_expression(text) {
                errors.push(SourceError {
                    field: format!("sources[{i}].{}", target.name()),
                    value: text.to_string(),
                    problem: format!("invalid CEL expression: {problem}"),
                });
            }
        }
        if let Some(t) = source
            .signature
            .as_ref()
            .and_then(|s| s.svix.as_ref())
            .and_then(|s| s.tolerance.as_deref())
        {
            if parse_duration(t).is_none_or(|d| d.is_zero()) {
                errors.push(SourceError {
                    field: format!("sources[{i}].signature.svix.tolerance"),
                    value: t.to_string(),
                    problem: "is not a positive duration such as 5m".into(),
                });
            }
        }
        if sources[..i].iter().any(|s| s.name == source.name) {
            errors.push(SourceError {
                field: format!("sources[{i}].name"),
                value: source.name.clone(),
                problem: "is used by an earlier source".into(),
            });
        }
    }
    errors
}

/// The Secrets a source's signature needs (names).
pub fn secret_names(sources: &[WebhookSource]) -> Vec<String> {
    let mut names: Vec<String> = sources
        .iter()
        .filter_map(|s| s.signature.as_ref())
        .filter_map(|s| {
            s.hmac_sha256
                .as_ref()
                .map(|h| h.secret_ref.name.clone())
                .or_else(|| s.svix.as_ref().map(|v| v.secret_ref.name.clone()))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Compiles `sources` with the signing secrets read by the caller (Secret name → the `secret`
/// value, or why it cannot be read). Every problem is returned, each with its field path.
pub fn compile(
    sources: &[WebhookSource],
    secrets: &BTreeMap<String, Result<SecretString, String>>,
) -> Result<CompiledSources, Vec<SourceError>> {
    let mut errors = check(sources);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut compiled = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let expressions = Target::of(source)
            .into_iter()
            .filter_map(|(target, text)| {
                let program = compile_expression(text).ok()?;
                Some(Expression {
                    target,
                    text: text.to_string(),
                    program,
                })
            })
            .collect();
        let secret = |field: &str, name: &str| match secrets.get(name) {
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(why)) => Err(SourceError {
                field: format!("sources[{i}].signature.{field}"),
                value: name.to_string(),
                problem: why.clone(),
            }),
            None => Err(SourceError {
                field: format!("sources[{i}].signature.{field}"),
                value: name.to_string(),
                problem: "the Secret was not read".into(),
            }),
        };
        let signature = match &source.signature {
            None => None,
            Some(sig) => match (&sig.hmac_sha256, &sig.svix) {
                (Some(h), _) => match secret("hmacSha256.secretRef", &h.secret_ref.name) {
                    Ok(secret) => Some(SignatureCheck::Hmac {
                        header: h.header.to_ascii_lowercase(),
                        secret,
                    }),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                },
                (None, Some(v)) => match secret("svix.secretRef", &v.secret_ref.name) {
                    Ok(secret) => Some(SignatureCheck::Svix {
                        secret,
                        tolerance: v
                            .tolerance
                            .as_deref()
                            .and_then(parse_duration)
                            .unwrap_or(DEFAULT_SVIX_TOLERANCE),
                    }),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                },
                (None, None) => {
                    errors.push(SourceError {
                        field: format!("sources[{i}].signature"),
                        value: String::new(),
                        problem: "set hmacSha256 or svix".into(),
                    });
                    None
                }
            },
        };
        compiled.push(CompiledSource {
            name: source.name.clone(),
            expressions,
            cloud_event_types: source.cloud_event_types.clone(),
            signature,
        });
    }
    if errors.is_empty() {
        Ok(CompiledSources { sources: compiled })
    } else {
        Err(errors)
    }
}

/// What an expression reads: the payload, the request headers (lower-case names) and, for a
/// CloudEvent, its attributes.
pub struct Input<'a> {
    pub payload: &'a Value,
    pub headers: &'a BTreeMap<String, String>,
    pub event: &'a Value,
    /// JSON pointer of the payload in the body (`/0` in a batch), for error messages.
    pub at: &'a str,
}

/// The mapped alert fields of one payload.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    pub organization: String,
    pub alert_type: String,
    pub id: Option<String>,
    pub user: Option<String>,
    pub severity: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
}

impl CompiledSource {
    /// Evaluates every expression; each failure is a field error naming the spec field and
    /// the expression.
    pub fn evaluate(&self, input: &Input) -> Result<Mapped, Vec<FieldError>> {
        // Kubernetes' CEL library (lowerAscii, split, join, …): what the same users write in
        // validation rules.
        let mut ctx = cel::Context::default().with_all();
        let mut errors = Vec::new();
        for (name, value) in [("payload", input.payload), ("event", input.event)] {
            match cel::to_value(value) {
                Ok(v) => ctx.add_variable_from_value(name, v),
                Err(e) => errors.push(field_error(input.at, format!("{name} cannot be read: {e}"))),
            }
        }
        ctx.add_variable_from_value(
            "headers",
            cel::to_value(input.headers).unwrap_or(cel::Value::Null),
        );
        let mut mapped = Mapped::default();
        for expr in &self.expressions {
            let failed = |why: String| {
                field_error(
                    input.at,
                    format!(
                        "source {:?} {} = {:?}: {why}",
                        self.name,
                        expr.target.name(),
                        cut_bytes(&expr.text, 120)
                    ),
                )
            };
            let text = match expr.program.execute(&ctx) {
                Ok(v) => match as_text(&v) {
                    Ok(t) => t,
                    Err(why) => {
                        errors.push(failed(why));
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(failed(format!(
                        "evaluation failed: {}",
                        one_line(&e.to_string())
                    )));
                    continue;
                }
            };
            let required = matches!(expr.target, Target::Organization | Target::AlertType);
            let text = text.filter(|t| !t.trim().is_empty());
            if required && text.is_none() {
                errors.push(failed("gave no value; a value is required".into()));
                continue;
            }
            let line = |t: &str, max: usize| cut_bytes(&one_line(t), max);
            let slot = text.map(|t| match expr.target {
                Target::Description => cut_bytes(&t, MAX_DESCRIPTION),
                Target::Title => line(&t, MAX_TITLE),
                Target::Id => t,
                _ => line(&t, MAX_NAME),
            });
            match expr.target {
                Target::Organization => mapped.organization = slot.unwrap_or_default(),
                Target::AlertType => mapped.alert_type = slot.unwrap_or_default(),
                Target::Id => mapped.id = slot,
                Target::User => mapped.user = slot,
                Target::Severity => mapped.severity = slot.map(|s| s.to_lowercase()),
                Target::Title => mapped.title = slot,
                Target::Description => mapped.description = slot,
                Target::Status => mapped.status = slot,
            }
        }
        if errors.is_empty() {
            Ok(mapped)
        } else {
            Err(errors)
        }
    }
}

/// A CEL result as text: strings as they are, numbers and booleans written out, null as no
/// value; lists and maps are refused (an expression should pick one member).
fn as_text(v: &cel::Value) -> Result<Option<String>, String> {
    use cel::Value as V;
    Ok(Some(match v {
        V::Null => return Ok(None),
        V::String(s) => s.to_string(),
        V::Int(i) => i.to_string(),
        V::UInt(u) => u.to_string(),
        V::Float(f) => f.to_string(),
        V::Bool(b) => b.to_string(),
        V::List(_) => return Err("gave a list; pick one element, e.g. x[0]".into()),
        V::Map(_) => return Err("gave a map; pick one member, e.g. x.name".into()),
        other => return Err(format!("gave a {:?}, not a string", other.type_of())),
    }))
}

/// An event id of `prefix` + the sender's id, bounded in length.
pub fn event_id(prefix: &str, raw: &str) -> String {
    if prefix.len() + raw.len() <= MAX_EVENT_ID {
        format!("{prefix}{raw}")
    } else {
        format!("{prefix}sha256:{}", signature::sha256_hex(raw.as_bytes()))
    }
}

/// The event of a mapped payload.
pub fn to_event(
    id: String,
    mapped: Mapped,
    occurred_at: Option<String>,
    labels: BTreeMap<String, String>,
) -> Event {
    Event {
        id,
        kind: EventKind::Alert,
        title: mapped.title.unwrap_or_else(|| mapped.alert_type.clone()),
        organization: mapped.organization,
        user: mapped.user,
        alert_type: mapped.alert_type,
        severity: mapped.severity,
        description: mapped.description.unwrap_or_default(),
        occurred_at,
        url: None,
        finding_id: None,
        status: mapped.status,
        priority: None,
        comment: None,
        author: None,
        labels,
        annotations: BTreeMap::new(),
    }
}

/// Request headers as CEL sees them: lower-case names, UTF-8 values; the intake's own
/// `authorization` is left out (expressions never see the token).
pub fn header_map(headers: &axum::http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| *name != axum::http::header::AUTHORIZATION)
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect()
}

/// Checks the signature of every source in `used` against the request (deduplicated by name).
pub fn verify_signatures(
    used: &[&CompiledSource],
    headers: &BTreeMap<String, String>,
    body: &[u8],
    now_unix_secs: i64,
) -> Result<(), signature::SignatureError> {
    let mut seen: Vec<&str> = Vec::new();
    for source in used {
        if seen.contains(&source.name.as_str()) {
            continue;
        }
        seen.push(&source.name);
        if let Some(check) = &source.signature {
            check.verify(|h| headers.get(h).map(String::as_str), body, now_unix_secs)?;
        }
    }
    Ok(())
}

/// Shared handle the resolved connection keeps.
pub type SharedSources = Arc<CompiledSources>;

#[cfg(test)]
mod tests;
