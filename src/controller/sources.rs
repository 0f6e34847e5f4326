//! `spec.sources` in the PsaConnection reconcile: the signing Secrets are read, the CEL
//! expressions compiled (`dispatch::intake::sources::compile`), and the result either goes
//! into the resolved connection or becomes misses with their field paths (reason
//! `InvalidSource`). Secret values stay in `SecretString`s; errors name the Secret, never
//! its value.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::context::Context;
use super::resolve::ticket::Unresolved;
use super::secrets::read_secret;
use crate::api::PsaConnectionSpec;
use crate::dispatch::intake::sources::{compile, secret_names, SharedSources, SourceError};
use crate::resolved::{ConnectionKey, ResolvedConnection};
use crate::secret::SecretString;

/// Key of a signing Secret that holds the secret.
pub const SIGNING_SECRET_KEY: &str = "secret";

/// Reads the signing Secrets `spec.sources` names and compiles the sources.
pub async fn read_sources(
    ctx: &Context,
    key: &ConnectionKey,
    spec: &PsaConnectionSpec,
) -> Result<SharedSources, Vec<SourceError>> {
    if spec.sources.is_empty() {
        return Ok(Default::default());
    }
    let mut secrets: BTreeMap<String, Result<SecretString, String>> = BTreeMap::new();
    for name in secret_names(&spec.sources) {
        let value = read_secret(&ctx.client, &key.namespace, &name)
            .await
            .and_then(|d| d.require(SIGNING_SECRET_KEY))
            .map_err(|e| e.to_string());
        secrets.insert(name, value);
    }
    compile(&spec.sources, &secrets).map(Arc::new)
}

/// Puts compiled sources into the resolved settings, or their errors into `misses` (and the
/// settings do not resolve: a sender's payloads would not map).
pub fn apply_sources(
    resolved: &mut Option<ResolvedConnection>,
    misses: &mut Vec<Unresolved>,
    sources: Result<SharedSources, Vec<SourceError>>,
) {
    match sources {
        Ok(compiled) => {
            if let Some(r) = resolved.as_mut() {
                r.sources = compiled;
            }
        }
        Err(errors) => {
            misses.extend(errors.into_iter().map(|e| Unresolved {
                field: e.field,
                value: e.value,
                problem: e.problem,
            }));
            *resolved = None;
        }
    }
}
