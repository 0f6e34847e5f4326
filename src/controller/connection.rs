//! PsaConnection reconciler: dereference → validate (Secrets) → authenticate → resolve settings →
//! apply (the publisher's index) → status. Periodic re-validation catches renames in the PSA.
//! Dispatch counters in status are written by the dispatcher's status sink, not here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;

use crate::api::condition_types::*;
use crate::api::{
    parse_duration, PsaConnection, PsaConnectionSpec, PsaConnectionStatus, ResolvedIds,
};
use crate::psa::instrumented::InstrumentedPsa;
use crate::psa::{Psa, PsaError, SharedBudget};
use crate::resolved::{ConnectionKey, Failsafe, ResolvedConnection};
use crate::secret::SecretString;

use super::budget::budget_condition;
use super::context::{CachedClient, Context};
use super::factory::credentials_secret_name;
use super::index::ConnectionFacts;
use super::resolve::customer::resolve_catch_all;
use super::resolve::lifecycle::resolve_lifecycle;
use super::resolve::noise::storm_limit;
use super::resolve::routes::{
    connection_combos, connection_routes, resolve_combos, route_ids, ticket_fingerprint,
    FreshCatalogs,
};
use super::resolve::settings::{
    alertmanager_labels, dispatch_config, intake_path, label_names, smtp_settings, unresolved_hold,
};
use super::resolve::ticket::required_by_psa;
use super::resolve::ticket::{misses_reason, WEAK_TOKEN_FIELD};
use super::resolve::{
    describe_unresolved, fetch_catalog, resolve_ticket, resolved_values, Unresolved,
};
use super::secrets::read_secret;
use super::status::{finish, Conditions};
use super::ReconcileError;
use crate::dispatch::intake::check_intake_token;

/// Outcome of the credential step.
enum Auth {
    Ok(Arc<dyn Psa>),
    Failed {
        reason: String,
        message: String,
        transient: bool,
    },
}

async fn authenticate(ctx: &Context, key: &ConnectionKey, spec: &PsaConnectionSpec) -> Auth {
    let Some(secret_name) = credentials_secret_name(&spec.provider) else {
        return Auth::Failed {
            reason: "InvalidProvider".into(),
            message: "exactly one provider must be set".into(),
            transient: false,
        };
    };
    let creds = match read_secret(&ctx.client, &key.namespace, secret_name).await {
        Ok(c) => c,
        Err(e) => {
            return Auth::Failed {
                reason: e.reason().into(),
                message: e.to_string(),
                transient: e.is_transient(),
            }
        }
    };
    let fingerprint = format!(
        "{}|{}|{}",
        serde_json::to_string(&spec.provider).unwrap_or_default(),
        creds.name,
        creds.resource_version
    );
    let cached = ctx.state().clients.get(key).cloned();
    let psa = match cached {
        Some(c) if c.fingerprint == fingerprint => c.psa,
        _ => match ctx.factory.build(&spec.provider, &creds) {
            Ok(psa) => InstrumentedPsa::wrap(psa, ctx.psa_calls.clone()),
            Err(e) => {
                return Auth::Failed {
                    reason: e.reason().into(),
                    message: e.to_string(),
                    transient: false,
                }
            }
        },
    };
    // Rights before settings: a role that cannot close tickets fails here, not at the first
    // resolved finding.
    let verified = match psa.verify().await {
        Ok(()) => psa
            .missing_permissions(crate::psa::TICKET_FEATURES)
            .await
            .and_then(|m| crate::psa::permission_problem(&m).map_or(Ok(()), Err)),
        Err(e) => Err(e),
    };
    match verified {
        Ok(()) => {
            let mut st = ctx.state();
            let changed = st
                .clients
                .get(key)
                .map(|c| c.fingerprint != fingerprint)
                .unwrap_or(true);
            if changed {
                st.clients.insert(
                    key.clone(),
                    CachedClient {
                        fingerprint,
                        psa: psa.clone(),
                    },
                );
            }
            Auth::Ok(psa)
        }
        Err(e) => {
            if matches!(e, PsaError::Auth { .. }) {
                ctx.forget_connection(key);
            }
            Auth::Failed {
                reason: e.reason().into(),
                message: e.to_string(),
                transient: e.is_transient(),
            }
        }
    }
}

/// Everything the settings step produced.
struct Settings {
    /// Without customers: the publisher adds the mappings' routing.
    resolved: Option<ResolvedConnection>,
    ids: ResolvedIds,
    misses: Vec<Unresolved>,
    /// Settings the PSA requires that the spec leaves unset (reported before name misses).
    required: Vec<Unresolved>,
}

async fn resolve_settings(
    key: &ConnectionKey,
    conn: &PsaConnection,
    psa: Arc<dyn Psa>,
    failsafe: Option<Result<Failsafe, Unresolved>>,
    directory: crate::controller::resolve::directory::SharedDirectory,
) -> Result<Settings, PsaError> {
    let spec = &conn.spec;
    let mut misses = vec![];
    let ticket_spec = spec.ticket.clone().unwrap_or_default();
    let required = required_by_psa(psa.provider(), &ticket_spec);
    let (catalog, _board) = fetch_catalog(psa.as_ref(), &ticket_spec).await?;
    let ticket = resolve_ticket(&ticket_spec, &catalog)
        .map_err(|m| misses.extend(m))
        .ok();
    if let Some(t) = &ticket {
        misses.extend(super::type_combinations::check(psa.as_ref(), &ticket_spec, t).await?);
    }
    let lifecycle = ticket.as_ref().and_then(|t| {
        resolve_lifecycle(
            spec.lifecycle.as_ref(),
            &catalog.statuses,
            t.closed_status_id.as_ref(),
        )
        .map_err(|m| misses.push(m))
        .ok()
    });
    let routes = resolve_routes(psa.as_ref(), spec, &mut misses).await?;
    let catch_all = match &spec.catch_all {
        None => None,
        Some(ca) => resolve_catch_all(psa.as_ref(), ca)
            .await?
            .map_err(|m| misses.push(m))
            .ok(),
    };
    let dispatch = dispatch_config(spec).map_err(|m| misses.push(m)).ok();
    let storm = storm_limit(spec).map_err(|m| misses.push(m)).ok().flatten();
    let failsafe = failsafe.and_then(|f| f.map_err(|m| misses.push(m)).ok());
    let mut ids = ResolvedIds::default();
    if let Some(t) = &ticket {
        ids.board = t.board_id.clone();
        ids.closed_status = t.closed_status_id.clone();
        ids.values = resolved_values(t);
    }
    if let Some(r) = &routes {
        ids.values.extend(route_ids(spec, r));
    }
    if let Some(id) = lifecycle.as_ref().and_then(|l| l.closed_status_id.clone()) {
        ids.values.insert("lifecycle.closedStatus".into(), id);
    }
    if let Some(c) = &catch_all {
        ids.catch_all_company = Some(c.company_id.clone());
        ids.catch_all_contact = c.default_contact_id.clone();
    }
    let complete = misses.is_empty() && required.is_empty();
    let resolved = match (ticket, dispatch, lifecycle, routes, complete) {
        (Some(ticket), Some(dispatch), Some(lifecycle), Some(routes), true) => {
            Some(ResolvedConnection {
                key: key.clone(),
                generation: conn.metadata.generation.unwrap_or_default(),
                psa,
                grouping: spec.grouping.unwrap_or_default(),
                account_mapping: spec.account_mapping.unwrap_or_default(),
                catch_all,
                customers: Default::default(),
                held_organizations: Default::default(),
                complete: false,
                ticket,
                failsafe,
                dispatch,
                alertmanager: alertmanager_labels(spec),
                grafana: label_names(spec.grafana.as_ref()),
                sources: Default::default(),
                lifecycle,
                routes: routes.into(),
                ticket_fingerprint: ticket_fingerprint(spec),
                storm,
                directory,
            })
        }
        _ => None,
    };
    Ok(Settings {
        resolved,
        ids,
        misses,
        required,
    })
}

/// `spec.routes`, each laid over the ticket settings and resolved on its board; `None` (with
/// the misses, e.g. `routes[1].priority`) when any does not resolve.
async fn resolve_routes(
    psa: &dyn Psa,
    spec: &PsaConnectionSpec,
    misses: &mut Vec<Unresolved>,
) -> Result<Option<Vec<crate::resolved::ResolvedRoute>>, PsaError> {
    let combos = connection_combos(spec);
    let catalogs = FreshCatalogs::default();
    let (profiles, found) =
        resolve_combos(psa, &combos, spec.lifecycle.as_ref(), &catalogs, "").await?;
    let failed = !found.is_empty();
    misses.extend(found);
    Ok(connection_routes(spec, profiles).filter(|_| !failed))
}

/// Reads the failsafe SMTP Secret; `None` when no failsafe is configured.
async fn read_failsafe(
    ctx: &Context,
    key: &ConnectionKey,
    spec: &PsaConnectionSpec,
) -> Option<Result<Failsafe, Unresolved>> {
    let f = spec.failsafe.as_ref()?;
    Some(
        match read_secret(&ctx.client, &key.namespace, &f.smtp_secret_ref.name).await {
            Ok(data) => smtp_settings(&data.name, |k| data.optional(k)).map(|smtp| Failsafe {
                recipients: f.recipients.clone(),
                smtp,
                subject_prefix: f.subject_prefix.clone(),
            }),
            Err(e) => Err(Unresolved {
                field: "failsafe.smtpSecretRef".into(),
                value: f.smtp_secret_ref.name.clone(),
                problem: e.to_string(),
            }),
        },
    )
}

/// Reads the intake token; a missing or unreadable Secret is a setting that does not resolve
/// (the intake answers 503 without it).
async fn read_intake_token(
    ctx: &Context,
    key: &ConnectionKey,
    spec: &PsaConnectionSpec,
) -> (Option<SecretString>, Option<Unresolved>) {
    let Some(intake) = &spec.intake else {
        return (None, None);
    };
    let secret = &intake.token_secret_ref.name;
    match read_secret(&ctx.client, &key.namespace, secret)
        .await
        .and_then(|d| d.require("token"))
    {
        Ok(t) => match check_intake_token(&t) {
            Ok(t) => (Some(t), None),
            Err(problem) => {
                let miss = Unresolved {
                    field: WEAK_TOKEN_FIELD.into(),
                    value: secret.clone(),
                    problem,
                };
                (None, Some(miss))
            }
        },
        Err(e) => {
            tracing::warn!(connection = %key, error = %e, "intake token unavailable");
            let miss = Unresolved {
                field: "intake.tokenSecretRef".into(),
                value: secret.clone(),
                problem: e.to_string(),
            };
            (None, Some(miss))
        }
    }
}

pub async fn reconcile(
    conn: Arc<PsaConnection>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(&conn, &ctx).await;
    let category = result.as_ref().err().map(|e| e.category());
    ctx.metrics
        .observe("PsaConnection", started.elapsed().as_secs_f64(), category);
    result
}

/// What authentication and settings resolution found, before it is written anywhere.
struct Evaluation {
    authenticated: Result<String, (String, String)>,
    settings: Result<Settings, (String, String)>,
    /// The PSA or a Secret could not be read right now (message).
    transient: Option<String>,
    /// The PSA's request budget shared with other integrations, when it has one (`PsaBudget`).
    budget: Option<(String, SharedBudget)>,
}

/// Puts the catch-all company's contacts into the connection's directory, so the dispatcher
/// answers look-ups of alerts routed there without a PSA call. A refinement: a failed listing
/// only leaves those look-ups to the PSA.
async fn list_catch_all_contacts(
    ctx: &Context,
    key: &ConnectionKey,
    psa: &dyn Psa,
    settings: &Result<Settings, PsaError>,
) {
    let Some(company) = settings
        .as_ref()
        .ok()
        .and_then(|s| s.ids.catch_all_company.clone())
    else {
        return;
    };
    if let Err(e) = ctx.directory_of_catch_all(key, psa, &company).await {
        tracing::warn!(connection = %key, error = %e,
            "listing the catch-all company's contacts failed; its look-ups go to the PSA");
    }
}

async fn evaluate(
    ctx: &Context,
    key: &ConnectionKey,
    conn: &PsaConnection,
    failsafe: Option<Result<Failsafe, Unresolved>>,
) -> (Evaluation, Option<Arc<dyn Psa>>) {
    let not_checked = || {
        (
            "NotAuthenticated".to_string(),
            "settings are checked once the PSA accepts the credentials".to_string(),
        )
    };
    match authenticate(ctx, key, &conn.spec).await {
        Auth::Failed {
            reason,
            message,
            transient,
        } => (
            Evaluation {
                transient: transient.then(|| message.clone()),
                authenticated: Err((reason, message)),
                settings: Err(not_checked()),
                budget: None,
            },
            None,
        ),
        Auth::Ok(psa) => {
            let provider = psa.provider().as_str();
            let accepted = match psa.endpoint().await {
                Some(at) => format!("{provider} accepted the credentials at {at}"),
                None => format!("{provider} accepted the credentials"),
            };
            let settings =
                resolve_settings(key, conn, psa.clone(), failsafe, ctx.shared_directory(key)).await;
            list_catch_all_contacts(ctx, key, psa.as_ref(), &settings).await;
            let transient = match &settings {
                Err(e) if e.is_transient() => Some(e.to_string()),
                _ => None,
            };
            (
                Evaluation {
                    authenticated: Ok(accepted),
                    settings: settings.map_err(|e| (e.reason().to_string(), e.to_string())),
                    transient,
                    budget: psa.shared_budget().map(|b| (provider.to_string(), b)),
                },
                Some(psa),
            )
        }
    }
}

async fn reconcile_inner(conn: &PsaConnection, ctx: &Context) -> Result<Action, ReconcileError> {
    // Dereference.
    let key = ConnectionKey::new(conn.namespace().unwrap_or_default(), conn.name_any());
    let spec = &conn.spec;
    let old = conn.status.clone().unwrap_or_default();
    let revalidate = spec
        .revalidate_interval
        .as_deref()
        .and_then(parse_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(ctx.default_revalidate);

    // Validate: the Secrets the intake and the failsafe need, whatever the PSA says.
    let (intake_token, intake_problem) = read_intake_token(ctx, &key, spec).await;
    let failsafe = read_failsafe(ctx, &key, spec).await;
    let sources = super::sources::read_sources(ctx, &key, spec).await;

    // Resolve.
    let (mut eval, psa) = evaluate(ctx, &key, conn, failsafe.clone()).await;
    if let (Ok(settings), Some(miss)) = (&mut eval.settings, intake_problem) {
        settings.misses.push(miss);
        settings.resolved = None;
    }
    if let Ok(settings) = &mut eval.settings {
        super::sources::apply_sources(&mut settings.resolved, &mut settings.misses, sources);
    }

    // Apply: the dispatcher holds events until the settings resolve.
    let applied = ctx.publisher.apply_connection_settings(
        &key,
        ConnectionFacts {
            intake_token,
            suspended: spec.suspended(),
            unresolved_hold: unresolved_hold(spec).ok().flatten(),
            authenticated: psa.is_some(),
            unreachable: eval.transient.is_some(),
            failsafe: failsafe.and_then(Result::ok),
            settings: eval
                .settings
                .as_mut()
                .ok()
                .and_then(|s| s.resolved.take())
                .map(Arc::new),
        },
    );
    ctx.publisher.published(applied).await;

    // Status.
    if let Some((_, b)) = &eval.budget {
        ctx.metrics.set_budget_share(&key, b.used);
    }
    let (status, transitions) = build_status(
        conn,
        &key,
        &old,
        &eval,
        ctx.ready_grace,
        ctx.store_health.problem().as_deref(),
    );
    // Dispatch counters belong to the dispatcher's status sink (another field manager).
    let comparable_old = PsaConnectionStatus {
        dispatch: None,
        auto_mapping: None,
        ..old.clone()
    };
    finish(
        ctx,
        conn,
        "PsaConnection",
        &transitions,
        &comparable_old,
        &status,
    )
    .await?;
    Ok(match eval.transient {
        Some(_) => Action::requeue(Duration::from_secs(15)),
        None => Action::requeue(revalidate),
    })
}

fn build_status(
    conn: &PsaConnection,
    key: &ConnectionKey,
    old: &PsaConnectionStatus,
    eval: &Evaluation,
    grace: Duration,
    store_problem: Option<&str>,
) -> (
    PsaConnectionStatus,
    Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
) {
    let spec = &conn.spec;
    let now = Timestamp::now();
    let mut conds = Conditions::new(&old.conditions, conn.metadata.generation, now);
    let suspended = spec.suspended();
    if suspended {
        conds.set(
            SUSPENDED,
            true,
            "Suspended",
            "spec.suspend is true: alerts are accepted and held; nothing is sent to the PSA",
        );
    } else {
        conds.set(SUSPENDED, false, "Active", "alerts flow to the PSA");
    }
    let mut status = PsaConnectionStatus {
        observed_generation: conn.metadata.generation,
        provider: Some(spec.provider.kind_name().to_string()),
        intake_path: Some(intake_path(key)),
        ..Default::default()
    };
    if let Some((provider, b)) = &eval.budget {
        let (ok, reason, message) = budget_condition(provider, b);
        conds.set(PSA_BUDGET, ok, reason, message);
    }
    if let Some(message) = &eval.transient {
        // An outage says nothing new about the credentials or the names: keep what was known.
        conds.psa_unavailable(message, grace);
        status.resolved = old.resolved.clone();
        status.last_validated = old.last_validated.clone();
        super::store_health::apply(&mut conds, store_problem);
        conds.set_kstatus();
        let transitions = conds.transitions();
        status.conditions = conds.into_vec();
        return (status, transitions);
    }
    match &eval.authenticated {
        Ok(message) => conds.set(AUTHENTICATED, true, "Authenticated", message.clone()),
        Err((reason, message)) => conds.set(AUTHENTICATED, false, reason, message.clone()),
    }
    match &eval.settings {
        Ok(settings) if !settings.required.is_empty() => {
            let all: Vec<Unresolved> = settings
                .required
                .iter()
                .chain(&settings.misses)
                .cloned()
                .collect();
            conds.set(
                SETTINGS_RESOLVED,
                false,
                "RequiredByPsa",
                describe_unresolved(&all),
            )
        }
        Ok(settings) if settings.misses.is_empty() => conds.set(
            SETTINGS_RESOLVED,
            true,
            "Resolved",
            "every configured name exists in the PSA",
        ),
        Ok(settings) => conds.set(
            SETTINGS_RESOLVED,
            false,
            misses_reason(&settings.misses),
            describe_unresolved(&settings.misses),
        ),
        Err((reason, message)) => conds.set(SETTINGS_RESOLVED, false, reason, message.clone()),
    }
    match &eval.settings {
        Ok(settings) => {
            status.resolved = Some(settings.ids.clone());
            status.last_validated = Some(now.to_string());
        }
        // Keep the previous validation when nothing was re-validated.
        Err(_) => {
            status.resolved = old.resolved.clone();
            status.last_validated = old.last_validated.clone();
        }
    }
    conds.set(
        SYNCED,
        true,
        "ReconcileSuccess",
        "the PSA was reached and the status reflects it",
    );
    let (ready, reason, message) = ready_summary(&conds, suspended);
    conds.set(READY, ready, &reason, message);
    super::store_health::apply(&mut conds, store_problem);
    conds.set_kstatus();
    let transitions = conds.transitions();
    status.conditions = conds.into_vec();
    (status, transitions)
}

/// Ready summarises the other conditions; the reason of the first failing one is Ready's reason.
pub fn ready_summary(conds: &Conditions, suspended: bool) -> (bool, String, String) {
    let first_false = [AUTHENTICATED, SETTINGS_RESOLVED]
        .iter()
        .filter_map(|t| conds.get(t))
        .find(|c| c.status != "True");
    match (suspended, first_false) {
        (_, Some(c)) => (false, c.reason.clone(), c.message.clone()),
        (true, None) => (
            false,
            "Suspended".into(),
            "the connection is suspended (spec.suspend)".into(),
        ),
        (false, None) if conds.is_true(AUTHENTICATED) && conds.is_true(SETTINGS_RESOLVED) => {
            (true, "Ready".into(), "alerts become tickets".into())
        }
        _ => (false, "Pending".into(), "not checked yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_takes_the_first_failing_reason() {
        let now = Timestamp::from_second(1_000).unwrap();
        let conds = |pairs: &[(&str, bool, &str)]| {
            let mut c = Conditions::new(&[], Some(1), now);
            for (t, ok, reason) in pairs {
                c.set(t, *ok, reason, format!("{t} msg"));
            }
            c
        };
        let c = conds(&[
            (AUTHENTICATED, false, "AuthenticationFailed"),
            (SETTINGS_RESOLVED, false, "NotAuthenticated"),
        ]);
        let (ready, reason, _) = ready_summary(&c, false);
        assert_eq!((ready, reason.as_str()), (false, "AuthenticationFailed"));
        let c = conds(&[
            (AUTHENTICATED, true, "Authenticated"),
            (SETTINGS_RESOLVED, false, "NamesNotFound"),
        ]);
        assert_eq!(ready_summary(&c, false).1, "NamesNotFound");
        let c = conds(&[
            (AUTHENTICATED, true, "Authenticated"),
            (SETTINGS_RESOLVED, true, "Resolved"),
        ]);
        assert_eq!(ready_summary(&c, true).1, "Suspended");
        assert_eq!(
            ready_summary(&c, false),
            (true, "Ready".into(), "alerts become tickets".into())
        );
        assert_eq!(ready_summary(&conds(&[]), false).1, "Pending");
    }
}
