//! The request side of the mapped endpoints: pick the source, verify its signature over the
//! raw body, map the payload. Signatures are checked before anything is mapped for a named
//! webhook source; for CloudEvents the source is known only once the body names the type, so
//! the check follows the mapping (and nothing is stored before both pass).

use axum::http::{header, HeaderMap};

use super::{cloudevents, header_map, verify_signatures, webhook, CompiledSources};
use crate::dispatch::event::Event;
use crate::dispatch::intake::{parse_rejection, IntakeLimits, Rejection};

/// An endpoint whose payloads `spec.sources` maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappedRoute {
    /// `/cloudevents`: mapped by the source whose `cloudEventTypes` takes the event type.
    CloudEvents,
    /// `/webhook/{source}`: mapped by the named source.
    Webhook(String),
}

/// The events of a `/cloudevents` or `/webhook/{source}` request.
pub fn map_request(
    route: &MappedRoute,
    sources: &CompiledSources,
    headers: &HeaderMap,
    body: &[u8],
    limits: &IntakeLimits,
) -> Result<Vec<Event>, Rejection> {
    let lowered = header_map(headers);
    let now = chrono::Utc::now().timestamp();
    let bad = |e: super::signature::SignatureError| Rejection::BadSignature {
        header: e.header,
        detail: e.detail,
    };
    match route {
        MappedRoute::Webhook(name) => {
            let source = sources
                .named(name)
                .ok_or_else(|| Rejection::UnknownSource(name.clone()))?;
            verify_signatures(&[source], &lowered, body, now).map_err(bad)?;
            webhook::parse_webhook(source, &lowered, body, limits.max_batch)
                .map_err(parse_rejection)
        }
        MappedRoute::CloudEvents => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let (events, used) = cloudevents::parse_cloudevents(
                sources,
                &content_type,
                &lowered,
                body,
                limits.max_batch,
            )
            .map_err(parse_rejection)?;
            verify_signatures(&used, &lowered, body, now).map_err(bad)?;
            Ok(events)
        }
    }
}
