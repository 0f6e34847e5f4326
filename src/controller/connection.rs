//! PsaConnection reconciler: credentials → Authenticated, names → SettingsResolved, snapshot
//! published for the dispatcher, periodic re-validation to catch renames in the PSA.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::api::condition_types::*;
use crate::api::{
    find_condition, make_condition, parse_duration, set_condition, AutoMappingCounts, CatchAll,
    DispatchCounters, PsaConnection, PsaConnectionSpec, PsaConnectionStatus, ResolvedIds,
};
use crate::dispatch::failsafe::clear_text_auth_problem;
use crate::dispatch::intake::check_intake_token;
use crate::psa::instrumented::InstrumentedPsa;
use crate::psa::{Psa, PsaError};
use crate::resolved::{
    AlertmanagerLabelNames, ConnectionEntry, ConnectionKey, DispatchConfig, Failsafe,
    ResolvedConnection, ResolvedCustomer, SmtpSettings, SmtpTls,
};
use crate::secret::SecretString;

use super::context::{CachedClient, Context};
use super::factory::credentials_secret_name;
use super::resolve::{
    describe_unresolved, fetch_catalog, misses_reason, resolve_ticket, resolved_values, Unresolved,
    WEAK_TOKEN_FIELD,
};
use super::secrets::read_secret;
use super::ReconcileError;

/// Intake path of a connection.
pub fn intake_path(key: &ConnectionKey) -> String {
    format!("/v1/namespaces/{}/connections/{}", key.namespace, key.name)
}

/// Dispatcher settings with defaults applied; a bad duration is reported by name.
pub fn dispatch_config(spec: &PsaConnectionSpec) -> Result<DispatchConfig, Unresolved> {
    let mut cfg = DispatchConfig::default();
    let Some(d) = &spec.dispatch else {
        return Ok(cfg);
    };
    if let Some(n) = d.max_attempts {
        cfg.max_attempts = n;
    }
    if let Some(n) = d.requests_per_hour {
        cfg.requests_per_hour = n;
    }
    let dur = |field: &str, v: &Option<String>| -> Result<Option<Duration>, Unresolved> {
        match v {
            None => Ok(None),
            Some(s) => parse_duration(s).map(Some).ok_or_else(|| Unresolved {
                field: field.into(),
                value: s.clone(),
                problem: "is not a duration like 2s, 500ms or 1m30s".into(),
            }),
        }
    };
    if let Some(b) = dur("dispatch.initialBackoff", &d.initial_backoff)? {
        cfg.initial_backoff = b;
    }
    if let Some(w) = dur("dispatch.groupWait", &d.group_wait)? {
        cfg.group_wait = w;
    }
    Ok(cfg)
}

/// Alertmanager label names with defaults applied.
pub fn alertmanager_labels(spec: &PsaConnectionSpec) -> AlertmanagerLabelNames {
    let mut l = AlertmanagerLabelNames::default();
    if let Some(a) = &spec.alertmanager {
        if let Some(v) = &a.organization_label {
            l.organization = v.clone();
        }
        if let Some(v) = &a.user_label {
            l.user = v.clone();
        }
        if let Some(v) = &a.alert_type_label {
            l.alert_type = v.clone();
        }
        if let Some(v) = &a.severity_label {
            l.severity = v.clone();
        }
    }
    l
}

/// Parses the failsafe SMTP Secret's entries (host, port, from, username, password, tls).
pub fn smtp_settings(
    secret_name: &str,
    get: impl Fn(&str) -> Option<SecretString>,
) -> Result<SmtpSettings, Unresolved> {
    let field = |key: &str| format!("failsafe.smtpSecretRef({secret_name}).{key}");
    let need = |key: &str| {
        get(key).ok_or_else(|| Unresolved {
            field: field(key),
            value: String::new(),
            problem: "missing".into(),
        })
    };
    let host = need("host")?.expose().to_string();
    let from = need("from")?.expose().to_string();
    let port_s = get("port").map(|p| p.expose().to_string());
    let tls = match get("tls").map(|t| t.expose().to_lowercase()).as_deref() {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("none") => SmtpTls::None,
        Some("tls") => SmtpTls::Tls,
        Some(other) => {
            return Err(Unresolved {
                field: field("tls"),
                value: other.into(),
                problem: "must be none, starttls or tls".into(),
            })
        }
    };
    let default_port = match tls {
        SmtpTls::Tls => 465,
        SmtpTls::StartTls => 587,
        SmtpTls::None => 25,
    };
    let port = match port_s {
        None => default_port,
        Some(p) => p.parse().map_err(|_| Unresolved {
            field: field("port"),
            value: p.clone(),
            problem: "is not a port number".into(),
        })?,
    };
    let username = get("username").map(|u| u.expose().to_string());
    let allow = get("allowInsecureAuth").is_some_and(|v| v.expose().trim() == "true");
    if let Some(problem) = clear_text_auth_problem(tls, username.is_some(), allow) {
        return Err(Unresolved {
            field: field("tls"),
            value: "none".into(),
            problem: problem.into(),
        });
    }
    Ok(SmtpSettings {
        host,
        port,
        from,
        username,
        password: get("password"),
        tls,
    })
}

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
    match psa.verify().await {
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

/// Resolves the catch-all company (by identifier, then by name) and its contact (e-mail or name).
pub async fn resolve_catch_all(
    psa: &dyn Psa,
    ca: &CatchAll,
) -> Result<Result<ResolvedCustomer, Unresolved>, PsaError> {
    let company = match psa.find_company_by_identifier(&ca.company).await? {
        Some(c) => Some(c),
        None => psa.find_company_by_name(&ca.company).await?,
    };
    let Some(company) = company.filter(|c| c.active) else {
        return Ok(Err(Unresolved {
            field: "catchAll.company".into(),
            value: ca.company.clone(),
            problem: "no active company with this identifier or name".into(),
        }));
    };
    let mut contact_id = None;
    if let Some(contact) = &ca.contact {
        let found = if contact.contains('@') {
            psa.find_contact_by_email(&company.id, contact).await?
        } else {
            psa.find_contact_by_name(&company.id, contact).await?
        };
        match found {
            Some(c) => contact_id = Some(c.id),
            None => {
                return Ok(Err(Unresolved {
                    field: "catchAll.contact".into(),
                    value: contact.clone(),
                    problem: format!("no such contact in company {:?}", company.name),
                }))
            }
        }
    }
    Ok(Ok(ResolvedCustomer {
        mapping_name: String::new(),
        company_id: company.id.clone(),
        company_name: company.name.clone(),
        location_id: company.location_id.clone(),
        default_contact_id: contact_id.or(company.default_contact_id.clone()),
        contract_id: None,
    }))
}

/// Everything the settings step produced.
struct Settings {
    resolved: Option<ResolvedConnection>,
    ids: ResolvedIds,
    misses: Vec<Unresolved>,
}

async fn resolve_settings(
    ctx: &Context,
    key: &ConnectionKey,
    conn: &PsaConnection,
    psa: Arc<dyn Psa>,
) -> Result<Settings, PsaError> {
    let spec = &conn.spec;
    let mut misses = vec![];
    let ticket_spec = spec.ticket.clone().unwrap_or_default();
    let (catalog, _board) = fetch_catalog(psa.as_ref(), &ticket_spec).await?;
    let ticket = match resolve_ticket(&ticket_spec, &catalog) {
        Ok(t) => Some(t),
        Err(m) => {
            misses.extend(m);
            None
        }
    };
    let catch_all = match &spec.catch_all {
        None => None,
        Some(ca) => match resolve_catch_all(psa.as_ref(), ca).await? {
            Ok(c) => Some(c),
            Err(m) => {
                misses.push(m);
                None
            }
        },
    };
    let dispatch = dispatch_config(spec).map_err(|m| misses.push(m)).ok();
    let failsafe = match read_failsafe(ctx, key, spec).await {
        Some(Ok(f)) => Some(f),
        Some(Err(m)) => {
            misses.push(m);
            None
        }
        None => None,
    };
    let mut ids = ResolvedIds::default();
    if let Some(t) = &ticket {
        ids.board = t.board_id.clone();
        ids.closed_status = t.closed_status_id.clone();
        ids.values = resolved_values(t);
    }
    if let Some(c) = &catch_all {
        ids.catch_all_company = Some(c.company_id.clone());
        ids.catch_all_contact = c.default_contact_id.clone();
    }
    let resolved = match (ticket, dispatch, misses.is_empty()) {
        (Some(ticket), Some(dispatch), true) => Some(ResolvedConnection {
            key: key.clone(),
            generation: conn.metadata.generation.unwrap_or_default(),
            psa,
            grouping: spec.grouping.unwrap_or_default(),
            account_mapping: spec.account_mapping.unwrap_or_default(),
            catch_all,
            customers: customers_of(ctx, key),
            ticket,
            failsafe,
            dispatch,
            alertmanager: alertmanager_labels(spec),
        }),
        _ => None,
    };
    Ok(Settings {
        resolved,
        ids,
        misses,
    })
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
            }),
            Err(e) => Err(Unresolved {
                field: "failsafe.smtpSecretRef".into(),
                value: f.smtp_secret_ref.name.clone(),
                problem: e.to_string(),
            }),
        },
    )
}

/// The customers of Ready mappings of a connection, by organization.
pub fn customers_of(ctx: &Context, key: &ConnectionKey) -> HashMap<String, ResolvedCustomer> {
    ctx.state()
        .customers
        .get(key)
        .map(|m| {
            m.values()
                .map(|(org, c)| (org.clone(), c.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Re-publishes a connection's snapshot with the current customers (after a mapping changed).
pub fn republish_customers(ctx: &Context, key: &ConnectionKey) {
    let customers = customers_of(ctx, key);
    ctx.registry.update(key, |entry| {
        if let Some(r) = &entry.resolved {
            entry.resolved = Some(Arc::new(r.with_customers(customers)));
        }
    });
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

async fn reconcile_inner(conn: &PsaConnection, ctx: &Context) -> Result<Action, ReconcileError> {
    let ns = conn.namespace().unwrap_or_default();
    let key = ConnectionKey::new(ns.clone(), conn.name_any());
    let spec = &conn.spec;
    let generation = conn.metadata.generation;
    let old = conn.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let mut conds: Vec<Condition> = old.conditions.clone();
    let mut status = PsaConnectionStatus {
        observed_generation: generation,
        provider: Some(spec.provider.kind_name().to_string()),
        intake_path: Some(intake_path(&key)),
        ..Default::default()
    };
    let revalidate = spec
        .revalidate_interval
        .as_deref()
        .and_then(parse_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(ctx.default_revalidate);

    // Intake token: without it the intake cannot authenticate senders (it answers 503), so a
    // missing token is a setting that does not resolve.
    let mut intake_problem: Option<Unresolved> = None;
    let intake_token = match &spec.intake {
        Some(i) => match read_secret(&ctx.client, &ns, &i.token_secret_ref.name)
            .await
            .and_then(|d| d.require("token"))
        {
            Ok(t) => match check_intake_token(&t) {
                Ok(t) => Some(t),
                Err(problem) => {
                    intake_problem = Some(Unresolved {
                        field: WEAK_TOKEN_FIELD.into(),
                        value: i.token_secret_ref.name.clone(),
                        problem,
                    });
                    None
                }
            },
            Err(e) => {
                tracing::warn!(connection = %key, error = %e, "intake token unavailable");
                intake_problem = Some(Unresolved {
                    field: "intake.tokenSecretRef".into(),
                    value: i.token_secret_ref.name.clone(),
                    problem: e.to_string(),
                });
                None
            }
        },
        None => None,
    };
    // The failsafe must work when nothing else does (bad credentials, PSA down, renamed names).
    let failsafe = read_failsafe(ctx, &key, spec).await.and_then(Result::ok);
    ctx.registry.set_failsafe(&key, failsafe);
    let suspended = spec.suspended();
    set_condition(
        &mut conds,
        make_condition(
            &old.conditions,
            SUSPENDED,
            suspended,
            if suspended { "Suspended" } else { "Active" },
            if suspended {
                "spec.suspend is true: alerts are accepted and held; nothing is sent to the PSA"
            } else {
                "alerts flow to the PSA"
            },
            generation,
            now,
        ),
    );

    let mut transient: Option<String> = None;
    let mut resolved: Option<Arc<ResolvedConnection>> = None;
    match authenticate(ctx, &key, spec).await {
        Auth::Failed {
            reason,
            message,
            transient: t,
        } => {
            set_condition(
                &mut conds,
                make_condition(
                    &old.conditions,
                    AUTHENTICATED,
                    false,
                    &reason,
                    &message,
                    generation,
                    now,
                ),
            );
            set_condition(
                &mut conds,
                make_condition(
                    &old.conditions,
                    SETTINGS_RESOLVED,
                    false,
                    "NotAuthenticated",
                    "settings are checked once the PSA accepts the credentials",
                    generation,
                    now,
                ),
            );
            if t {
                transient = Some(message);
            }
        }
        Auth::Ok(psa) => {
            set_condition(
                &mut conds,
                make_condition(
                    &old.conditions,
                    AUTHENTICATED,
                    true,
                    "Authenticated",
                    format!("{} accepted the credentials", psa.provider().as_str()),
                    generation,
                    now,
                ),
            );
            match resolve_settings(ctx, &key, conn, psa).await {
                Ok(mut settings) => {
                    if let Some(p) = intake_problem.take() {
                        settings.misses.push(p);
                        settings.resolved = None;
                    }
                    status.resolved = Some(settings.ids);
                    status.last_validated = Some(now.to_string());
                    if settings.misses.is_empty() {
                        set_condition(
                            &mut conds,
                            make_condition(
                                &old.conditions,
                                SETTINGS_RESOLVED,
                                true,
                                "Resolved",
                                "every configured name exists in the PSA",
                                generation,
                                now,
                            ),
                        );
                    } else {
                        set_condition(
                            &mut conds,
                            make_condition(
                                &old.conditions,
                                SETTINGS_RESOLVED,
                                false,
                                misses_reason(&settings.misses),
                                describe_unresolved(&settings.misses),
                                generation,
                                now,
                            ),
                        );
                    }
                    resolved = settings.resolved.map(Arc::new);
                }
                Err(e) => {
                    set_condition(
                        &mut conds,
                        make_condition(
                            &old.conditions,
                            SETTINGS_RESOLVED,
                            false,
                            e.reason(),
                            e.to_string(),
                            generation,
                            now,
                        ),
                    );
                    if e.is_transient() {
                        transient = Some(e.to_string());
                    }
                }
            }
        }
    }

    // Publish for the intake and the dispatcher. Without resolved settings events are held.
    ctx.registry.publish(
        key.clone(),
        ConnectionEntry {
            intake_token,
            suspended,
            resolved: resolved.clone(),
        },
    );

    let auth_ok = find_condition(&conds, AUTHENTICATED)
        .map(|c| c.status == "True")
        .unwrap_or(false);
    let settings_ok = find_condition(&conds, SETTINGS_RESOLVED)
        .map(|c| c.status == "True")
        .unwrap_or(false);
    let synced_ok = transient.is_none();
    set_condition(
        &mut conds,
        make_condition(
            &old.conditions,
            SYNCED,
            synced_ok,
            if synced_ok {
                "ReconcileSuccess"
            } else {
                "PsaUnavailable"
            },
            transient
                .clone()
                .unwrap_or_else(|| "the PSA was reached and the status reflects it".into()),
            generation,
            now,
        ),
    );
    let (ready, reason, message) = ready_summary(&conds, suspended, auth_ok, settings_ok);
    set_condition(
        &mut conds,
        make_condition(
            &old.conditions,
            READY,
            ready,
            &reason,
            message,
            generation,
            now,
        ),
    );
    status.conditions = conds;

    let stats = ctx.registry.stats(&key);
    status.dispatch = Some(DispatchCounters {
        accepted: stats.accepted,
        pending: stats.pending,
        tickets_created: stats.tickets_created,
        notes_added: stats.notes_added,
        failsafe_emails: stats.failsafe_emails,
        dead_letters: stats.dead_letters,
    });
    if spec.account_mapping.unwrap_or_default() != crate::api::AccountMapping::Manual {
        status.auto_mapping = Some(AutoMappingCounts {
            matched: stats.auto_matched,
            unmatched: stats.auto_unmatched,
            unmatched_organizations: stats
                .unmatched_organizations
                .iter()
                .take(20)
                .cloned()
                .collect(),
        });
    }
    // Keep the previous validation time when nothing was re-validated (auth failed).
    if status.last_validated.is_none() {
        status.last_validated = old.last_validated.clone();
        status.resolved = status.resolved.or(old.resolved.clone());
    }

    emit_transition_events(ctx, conn, &old.conditions, &status.conditions).await;
    patch_status_if_changed(ctx, conn, &old, &status).await?;

    Ok(match transient {
        Some(_) => Action::requeue(Duration::from_secs(15)),
        None => Action::requeue(revalidate),
    })
}

/// Ready summarises the other conditions; the reason of the first failing one is Ready's reason.
pub fn ready_summary(
    conds: &[Condition],
    suspended: bool,
    auth_ok: bool,
    settings_ok: bool,
) -> (bool, String, String) {
    let first_false = [AUTHENTICATED, SETTINGS_RESOLVED]
        .iter()
        .filter_map(|t| find_condition(conds, t))
        .find(|c| c.status != "True");
    match (suspended, first_false) {
        (_, Some(c)) => (false, c.reason.clone(), c.message.clone()),
        (true, None) => (
            false,
            "Suspended".into(),
            "the connection is suspended (spec.suspend)".into(),
        ),
        (false, None) if auth_ok && settings_ok => {
            (true, "Ready".into(), "alerts become tickets".into())
        }
        _ => (false, "Pending".into(), "not checked yet".into()),
    }
}

async fn emit_transition_events(
    ctx: &Context,
    conn: &PsaConnection,
    old: &[Condition],
    new: &[Condition],
) {
    for c in new {
        let before = find_condition(old, &c.type_);
        let changed = before
            .map(|b| b.status != c.status || b.reason != c.reason)
            .unwrap_or(true);
        if !changed || c.type_ == SYNCED && c.status == "True" && before.is_none() {
            continue;
        }
        let warning = c.status != "True" && c.type_ != SUSPENDED;
        ctx.event(
            conn,
            warning,
            &c.reason,
            &c.type_,
            format!("{}={}: {}", c.type_, c.status, c.message),
        )
        .await;
    }
}

async fn patch_status_if_changed(
    ctx: &Context,
    conn: &PsaConnection,
    old: &PsaConnectionStatus,
    new: &PsaConnectionStatus,
) -> Result<(), ReconcileError> {
    if old == new {
        return Ok(());
    }
    let api: Api<PsaConnection> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    super::apply_status(&api, &conn.name_any(), "PsaConnection", json!(new)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DispatchSettings, ProviderSpec};
    use std::collections::BTreeMap;

    fn spec_with_dispatch(d: DispatchSettings) -> PsaConnectionSpec {
        PsaConnectionSpec {
            suspend: None,
            provider: ProviderSpec::default(),
            catch_all: None,
            account_mapping: None,
            grouping: None,
            ticket: None,
            failsafe: None,
            intake: None,
            dispatch: Some(d),
            alertmanager: None,
            revalidate_interval: None,
        }
    }

    #[test]
    fn dispatch_defaults_and_overrides() {
        let cfg = dispatch_config(&spec_with_dispatch(DispatchSettings::default())).unwrap();
        assert_eq!(cfg, DispatchConfig::default());
        assert_eq!(cfg.max_attempts, 8);
        let cfg = dispatch_config(&spec_with_dispatch(DispatchSettings {
            max_attempts: Some(3),
            initial_backoff: Some("500ms".into()),
            requests_per_hour: Some(60),
            group_wait: Some("30s".into()),
        }))
        .unwrap();
        assert_eq!(cfg.max_attempts, 3);
        assert_eq!(cfg.initial_backoff, Duration::from_millis(500));
        assert_eq!(cfg.group_wait, Duration::from_secs(30));
        let bad = dispatch_config(&spec_with_dispatch(DispatchSettings {
            group_wait: Some("soon".into()),
            ..Default::default()
        }))
        .unwrap_err();
        assert_eq!(bad.field, "dispatch.groupWait");
    }

    #[test]
    fn smtp_secret_parsing() {
        let secret = |pairs: &[(&str, &str)]| {
            let m: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| m.get(k).map(|v| SecretString::new(v.clone()))
        };
        let s = smtp_settings(
            "smtp",
            secret(&[
                ("host", "127.0.0.1"),
                ("port", "2525"),
                ("from", "psa@x"),
                ("tls", "none"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("127.0.0.1", 2525, SmtpTls::None)
        );
        assert!(s.password.is_none());
        let s = smtp_settings(
            "smtp",
            secret(&[("host", "mail"), ("from", "a@b"), ("password", "pw")]),
        )
        .unwrap();
        assert_eq!((s.port, s.tls), (587, SmtpTls::StartTls));
        assert!(
            !format!("{s:?}").contains("pw"),
            "password must not appear in Debug"
        );
        let clear = [
            ("host", "h"),
            ("from", "a@b"),
            ("tls", "none"),
            ("username", "u"),
            ("password", "pw"),
        ];
        let e = smtp_settings("smtp", secret(&clear)).unwrap_err();
        assert_eq!(e.field, "failsafe.smtpSecretRef(smtp).tls");
        assert!(e.problem.contains("allowInsecureAuth"), "{}", e.problem);
        let allowed = [&clear[..], &[("allowInsecureAuth", "true")]].concat();
        assert!(smtp_settings("smtp", secret(&allowed)).is_ok());
        let e = smtp_settings("smtp", secret(&[("from", "a@b")])).unwrap_err();
        assert_eq!(e.field, "failsafe.smtpSecretRef(smtp).host");
        let e = smtp_settings(
            "smtp",
            secret(&[("host", "h"), ("from", "a@b"), ("tls", "ssl3")]),
        )
        .unwrap_err();
        assert!(e.problem.contains("none, starttls or tls"));
        let e = smtp_settings(
            "smtp",
            secret(&[("host", "h"), ("from", "a@b"), ("port", "smtp")]),
        )
        .unwrap_err();
        assert_eq!(e.field, "failsafe.smtpSecretRef(smtp).port");
    }

    #[test]
    fn ready_takes_the_first_failing_reason() {
        let now = Timestamp::from_second(1_000).unwrap();
        let c = |t: &str, ok: bool, reason: &str| {
            make_condition(&[], t, ok, reason, format!("{t} msg"), Some(1), now)
        };
        let conds = vec![
            c(AUTHENTICATED, false, "AuthenticationFailed"),
            c(SETTINGS_RESOLVED, false, "NotAuthenticated"),
        ];
        let (ready, reason, _) = ready_summary(&conds, false, false, false);
        assert_eq!((ready, reason.as_str()), (false, "AuthenticationFailed"));
        let conds = vec![
            c(AUTHENTICATED, true, "Authenticated"),
            c(SETTINGS_RESOLVED, false, "NamesNotFound"),
        ];
        assert_eq!(ready_summary(&conds, false, true, false).1, "NamesNotFound");
        let conds = vec![
            c(AUTHENTICATED, true, "Authenticated"),
            c(SETTINGS_RESOLVED, true, "Resolved"),
        ];
        assert_eq!(ready_summary(&conds, true, true, true).1, "Suspended");
        assert_eq!(
            ready_summary(&conds, false, true, true),
            (true, "Ready".into(), "alerts become tickets".into())
        );
    }
}
