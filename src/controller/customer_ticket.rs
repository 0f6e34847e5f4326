//! A CustomerMapping's ticket overrides and routes, resolved when the mapping reconciles
//! (`resolve::routes` has the rules): against the connection's settings as the controllers'
//! cache holds them, with the PSA lists cached per connection (`Context::catalog`).

use std::sync::Arc;

use kube::ResourceExt;

use crate::api::{CustomerMapping, PsaConnectionSpec, TicketSettings};
use crate::psa::{Psa, PsaError, PsaResult};
use crate::resolved::{ConnectionKey, CustomerTicket};

use super::context::Context;
use super::resolve::routes::{
    customer_ticket, has_overrides, mapping_combos, resolve_combos, ticket_fingerprint, Catalogs,
};
use super::resolve::ticket::{describe_unresolved, misses_reason};
use super::resolve::PsaCatalog;

/// Why a mapping's overrides do not route: (reason, message) for its conditions.
pub type Blocked = (String, String);

struct CachedCatalogs<'a> {
    ctx: &'a Context,
    key: &'a ConnectionKey,
    force: bool,
}

#[async_trait::async_trait]
impl Catalogs for CachedCatalogs<'_> {
    async fn catalog(
        &self,
        psa: &dyn Psa,
        settings: &TicketSettings,
    ) -> PsaResult<Arc<PsaCatalog>> {
        self.ctx.catalog(self.key, psa, settings, self.force).await
    }
}

/// The mapping's resolved overrides; `Ok(None)` when it sets none; `Err(Ok(_))` when a name
/// does not resolve (`NamesNotFound` / `InvalidTemplate`, naming the field); `Err(Err(_))` when
/// the PSA could not be asked.
pub async fn resolve(
    ctx: &Context,
    key: &ConnectionKey,
    psa: &dyn Psa,
    connection: &PsaConnectionSpec,
    m: &CustomerMapping,
    force: bool,
) -> Result<Option<Arc<CustomerTicket>>, Result<Blocked, PsaError>> {
    if !has_overrides(&m.spec) {
        return Ok(None);
    }
    let combos = mapping_combos(connection, &m.spec);
    let catalogs = CachedCatalogs { ctx, key, force };
    let (profiles, misses) = resolve_combos(
        psa,
        &combos,
        connection.lifecycle.as_ref(),
        &catalogs,
        "PsaConnection ",
    )
    .await
    .map_err(Err)?;
    if !misses.is_empty() {
        return Err(Ok((
            misses_reason(&misses).to_string(),
            describe_unresolved(&misses),
        )));
    }
    match customer_ticket(&m.spec, profiles, ticket_fingerprint(connection)) {
        Some(t) => Ok(Some(Arc::new(t))),
        None => Err(Ok((
            "ConnectionSettingsNotResolved".into(),
            format!(
                "the ticket settings or routes of PsaConnection {:?} do not resolve; see its SettingsResolved condition (mapping {})",
                key.name,
                m.name_any()
            ),
        ))),
    }
}
