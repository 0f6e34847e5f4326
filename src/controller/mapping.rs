//! CustomerMapping reconciler: dereference → validate → resolve → apply → status.
//!
//! * validate: no other mapping claims the organization; the connection exists and is
//!   authenticated in this process.
//! * resolve: company, default contact and contract (`resolve::customer::resolve_customer`, the
//!   same function `plan` uses).
//! * apply: the routing fact goes to the publisher's index — routable, or blocked with the
//!   reason, so the organization is held instead of reaching the catch-all — and the reconcile
//!   waits until the dispatcher has it; then (leader only) the contract line is kept in step.
//! * status: Ready=True only once this process routes the organization.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::api::condition_types::*;
use crate::api::{ContractService, CustomerMapping, CustomerMappingStatus, PsaConnection};
use crate::psa::{LineKey, LineUpdate, LineValues, Psa, PsaError};
use crate::resolved::{ConnectionKey, ResolvedCustomer};

use super::claims::{Claim, Claims};
use super::context::Context;
use super::index::MappingFact;
use super::resolve::billing::{line_from_status, plan_line, wanted_line, LinePlan};
use super::resolve::customer::{
    mapped_company_ids, pick_company, resolve_customer_in, CustomerResolution, MappingContact,
};
use super::resolve::line_memory::{added_reason, line_to_plan, updated_reason};
use super::status::{finish, Conditions};
use super::ReconcileError;

/// What the reconciler reads besides the mapping itself (the controllers' caches).
#[derive(Clone)]
pub struct Watched {
    pub connections: Store<PsaConnection>,
    pub mappings: Store<CustomerMapping>,
    /// Who claims which organization (the duplicate check without a scan of every mapping).
    pub claims: Arc<Mutex<Claims>>,
}

/// A condition outcome: (reason, message) when it holds, or the reason and message why not.
type Verdict = Result<(String, String), (String, String)>;

/// Everything a reconcile learned, before it is written anywhere.
struct Evaluation {
    ids: CustomerMappingStatus,
    /// The customer the organization routes to, or why it does not.
    customer: Result<ResolvedCustomer, (String, String)>,
    contract_line: Option<Verdict>,
    /// The default contact of the organization's tickets, once the customer resolved.
    contact: Option<MappingContact>,
    /// The PSA or the API server could not be reached (message).
    transient: Option<String>,
    /// Waiting on something a watch may not report (a sibling's deletion, the connection).
    recheck_soon: bool,
}

impl Evaluation {
    fn blocked(reason: &str, message: String, recheck_soon: bool) -> Self {
        Evaluation {
            ids: CustomerMappingStatus::default(),
            customer: Err((reason.to_string(), message)),
            contract_line: None,
            contact: None,
            transient: None,
            recheck_soon,
        }
    }
}

pub async fn reconcile(
    m: Arc<CustomerMapping>,
    ctx: Arc<Context>,
    watched: Watched,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(&m, &ctx, &watched).await;
    ctx.metrics.observe(
        "CustomerMapping",
        started.elapsed().as_secs_f64(),
        result.as_ref().err().map(|e| e.category()),
    );
    result
}

async fn reconcile_inner(
    m: &CustomerMapping,
    ctx: &Context,
    watched: &Watched,
) -> Result<Action, ReconcileError> {
    // Dereference.
    let key = ConnectionKey::new(
        m.namespace().unwrap_or_default(),
        m.spec.connection_ref.name.clone(),
    );
    let name = m.name_any();
    let old = m.status.clone().unwrap_or_default();

    // Validate, resolve.
    let mut eval = match validate(m, ctx, watched, &key) {
        Err(blocked) => *blocked,
        Ok(psa) => evaluate(m, ctx, watched, &key, psa.as_ref()).await,
    };

    // Apply: the routing fact first (Ready depends on it), then billing.
    let organization: std::sync::Arc<str> = m.spec.organization.as_str().into();
    let fact = match (&eval.customer, &eval.transient) {
        (Ok(customer), _) => MappingFact::Routable {
            organization,
            customer: std::sync::Arc::new(customer.clone()),
        },
        (Err((reason, message)), Some(_)) => MappingFact::Unreachable {
            organization,
            reason: format!("{reason}: {message}"),
        },
        (Err((reason, message)), None) => MappingFact::Blocked {
            organization,
            reason: format!("{reason}: {message}"),
        },
    };
    let applied = ctx.publisher.apply_customer(&key, &name, fact);
    ctx.publisher.published(applied).await;
    if eval.customer.is_ok() && ctx.is_leader() {
        sync_contract_line(m, ctx, &key, &mut eval).await;
    }

    // Status.
    let (status, transitions) = build_status(m, &old, &eval, ctx.ready_grace);
    finish(ctx, m, "CustomerMapping", &transitions, &old, &status).await?;
    Ok(if eval.transient.is_some() || eval.recheck_soon {
        Action::requeue(Duration::from_secs(15))
    } else {
        Action::requeue(ctx.default_revalidate)
    })
}

/// The checks that need no PSA call; `Ok` carries the connection's client.
fn validate(
    m: &CustomerMapping,
    ctx: &Context,
    watched: &Watched,
    key: &ConnectionKey,
) -> Result<Arc<dyn Psa>, Box<Evaluation>> {
    let dups = watched
        .claims
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .rivals(&Claim::of(m), &m.name_any());
    if !dups.is_empty() {
        return Err(Box::new(Evaluation::blocked(
            "DuplicateOrganization",
            format!(
                "organization {:?} is also mapped by {} on connection {:?}; neither is used until one is removed",
                m.spec.organization,
                dups.join(", "),
                key.name
            ),
            // A conflict may end by a sibling's deletion the watch saw before our cache did.
            true,
        )));
    }
    let exists = watched.connections.state().iter().any(|c| {
        c.namespace().as_deref() == Some(key.namespace.as_str()) && c.name_any() == key.name
    });
    if !exists {
        return Err(Box::new(Evaluation::blocked(
            "ConnectionNotFound",
            format!("PsaConnection {:?} does not exist", key.name),
            false,
        )));
    }
    match ctx.psa_client(key) {
        Some(psa) if ctx.publisher.is_authenticated(key) => Ok(psa),
        // The connection's PSA is down: the mapping's own state is unknown, not failed.
        _ if ctx.publisher.is_unreachable(key) => {
            let message = format!("PsaConnection {:?} cannot reach its PSA", key.name);
            let mut eval = Evaluation::blocked("PsaUnavailable", message.clone(), true);
            eval.transient = Some(message);
            Err(Box::new(eval))
        }
        // The publisher triggers a new reconcile when the connection authenticates.
        _ => Err(Box::new(Evaluation::blocked(
            "ConnectionNotReady",
            format!("PsaConnection {:?} is not authenticated yet", key.name),
            true,
        ))),
    }
}

/// Resolves the customer against the PSA; a PSA failure blocks routing with its reason.
async fn evaluate(
    m: &CustomerMapping,
    ctx: &Context,
    watched: &Watched,
    key: &ConnectionKey,
    psa: &dyn Psa,
) -> Evaluation {
    match resolve(ctx, watched, key, psa, m).await {
        Ok(resolution) => {
            let mut ids = CustomerMappingStatus::default();
            if let Ok(c) = &resolution.company {
                ids.company_id = Some(c.id.clone());
                ids.company_name = Some(c.name.clone());
            }
            let contact = resolution.default_contact();
            ids.contact_id = contact.as_ref().and_then(|c| c.id().cloned());
            ids.contract_id = resolution.contract().map(|c| c.id.clone());
            let customer = match resolution.problem() {
                Some((reason, message)) => Err((reason.to_string(), message)),
                None => resolution
                    .customer(&m.name_any())
                    .ok_or_else(|| ("CompanyNotFound".to_string(), "no company".to_string())),
            };
            let mut eval = Evaluation {
                ids,
                customer,
                contract_line: None,
                contact,
                transient: None,
                recheck_soon: false,
            };
            with_ticket_overrides(m, ctx, watched, key, psa, &mut eval).await;
            eval
        }
        Err(e) => {
            let mut eval = Evaluation::blocked(e.reason(), e.to_string(), false);
            eval.transient = e.is_transient().then(|| e.to_string());
            eval
        }
    }
}

/// Adds the mapping's resolved `ticket` / `routes` to a routable customer, or blocks it with
/// the field that does not resolve.
async fn with_ticket_overrides(
    m: &CustomerMapping,
    ctx: &Context,
    watched: &Watched,
    key: &ConnectionKey,
    psa: &dyn Psa,
    eval: &mut Evaluation,
) {
    let Ok(customer) = &mut eval.customer else {
        return;
    };
    let connection = watched.connections.state().into_iter().find(|c| {
        c.namespace().as_deref() == Some(key.namespace.as_str()) && c.name_any() == key.name
    });
    let Some(connection) = connection else {
        return;
    };
    // The lists are cached for a minute; a user's re-check request was consumed by the company
    // look-up, which reads afresh.
    match super::customer_ticket::resolve(ctx, key, psa, &connection.spec, m, false).await {
        Ok(ticket) => customer.ticket = ticket,
        Err(Ok(blocked)) => eval.customer = Err(blocked),
        Err(Err(e)) => {
            eval.transient = e.is_transient().then(|| e.to_string());
            eval.customer = Err((e.reason().to_string(), e.to_string()));
        }
    }
}

/// `resolve_customer_in` against the cached company index and the connection's batched
/// directory, listing the companies again once when the company is missing (it may have been
/// created since the listing).
async fn resolve(
    ctx: &Context,
    watched: &Watched,
    key: &ConnectionKey,
    psa: &dyn Psa,
    m: &CustomerMapping,
) -> Result<CustomerResolution, PsaError> {
    let fresh = ctx.recheck_requested(m);
    let mut index = ctx.company_index(key, psa, fresh).await?;
    if pick_company(&index, &m.spec.company).is_err() && !fresh {
        index = ctx.company_index(key, psa, true).await?;
    }
    let Ok(company) = pick_company(&index, &m.spec.company) else {
        return resolve_customer_in(psa, &index, None, &m.spec).await;
    };
    let mapped =
        || mapped_company_ids(&index, &watched.mappings.state(), &key.namespace, &key.name);
    let directory = ctx.directory(key, psa, &company.id, mapped, fresh).await?;
    resolve_customer_in(psa, &index, Some(&directory), &m.spec).await
}

/// Keeps the contract line of the referenced ContractService at the mapping's quantity, cost
/// and price (leader only: it writes to the PSA).
async fn sync_contract_line(
    m: &CustomerMapping,
    ctx: &Context,
    key: &ConnectionKey,
    eval: &mut Evaluation,
) {
    let Some(line_spec) = &m.spec.contract_service else {
        eval.contract_line = Some(Ok((
            "NotRequested".into(),
            "no contractService in spec".into(),
        )));
        return;
    };
    let Some(contract_id) = eval.ids.contract_id.clone() else {
        eval.contract_line = Some(Err((
            "ContractMissing".into(),
            "contractService needs spec.contract".into(),
        )));
        return;
    };
    let Some(psa) = ctx.psa_client(key) else {
        return;
    };
    let services: Api<ContractService> =
        Api::namespaced(ctx.client.clone(), &m.namespace().unwrap_or_default());
    let service_name = &line_spec.service_ref.name;
    let service = match services.get_opt(service_name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            eval.contract_line = Some(Err((
                "ServiceNotFound".into(),
                format!("ContractService {service_name:?} does not exist"),
            )));
            return;
        }
        Err(e) => {
            eval.transient = Some(e.to_string());
            eval.contract_line = Some(Err(("ServiceUnreadable".into(), e.to_string())));
            return;
        }
    };
    let Some(service_id) = service.status.as_ref().and_then(|s| s.external_id.clone()) else {
        eval.contract_line = Some(Err((
            "ServiceNotReady".into(),
            format!("waiting for ContractService {service_name:?} to exist in the PSA"),
        )));
        return;
    };
    let wanted = wanted_line(line_spec, &service.spec.cost, &service.spec.price);
    let target = LineTarget {
        line: LineKey::new(&contract_id, &service_id),
        service_name: &service.spec.name,
    };
    match keep_line_in_step(m, ctx, psa.as_ref(), &target, wanted).await {
        Ok((line_id, quantity, reason, message)) => {
            eval.ids.contract_line_id = Some(line_id);
            eval.ids.synced_quantity = Some(quantity);
            eval.contract_line = Some(Ok((reason.to_string(), message)));
        }
        Err(e) => {
            eval.transient = e.is_transient().then(|| e.to_string());
            eval.contract_line = Some(Err((e.reason().to_string(), e.to_string())));
        }
    }
}

/// The contract and catalog service a line belongs to.
struct LineTarget<'a> {
    line: LineKey<'a>,
    service_name: &'a str,
}

/// Adds or updates the line as `plan_line` decides; returns (line id, quantity, message).
async fn keep_line_in_step(
    m: &CustomerMapping,
    ctx: &Context,
    psa: &dyn Psa,
    target: &LineTarget<'_>,
    wanted: LineValues,
) -> Result<(String, i64, &'static str, String), PsaError> {
    let LineKey {
        contract_id,
        service_id,
    } = target.line;
    let found = psa.find_contract_line(target.line).await?;
    let found_id = found.as_ref().map(|l| l.id.clone());
    let remembered = line_from_status(m.status.as_ref(), contract_id, service_id, wanted);
    let existing = line_to_plan(found, remembered, psa.lists_contract_lines());
    let (line, note, reason) = match plan_line(existing, wanted) {
        LinePlan::InStep(line) => (line, None, "InStep"),
        LinePlan::Add(v) => {
            let line = psa.add_contract_line(target.line, v).await?;
            let msg = format!("added {:?} × {}", target.service_name, v.quantity);
            ctx.event(m, false, "ContractLineAdded", "ContractSync", msg)
                .await;
            let reason = added_reason(found_id.as_deref(), &line);
            (line, None, reason)
        }
        LinePlan::Update { line, to } => {
            let from = line.quantity;
            let update = psa.update_contract_line(&line, to).await?;
            let note = match &update {
                LineUpdate::Replaced { note, .. } => Some(note.clone()),
                LineUpdate::Updated(_) => None,
            };
            let suffix = note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
            let msg = format!("quantity {from} → {}{suffix}", to.quantity);
            ctx.event(m, false, "ContractLineUpdated", "ContractSync", msg)
                .await;
            (update.line().clone(), note, updated_reason(&update))
        }
    };
    let message = match note {
        Some(n) => format!("line {} at quantity {}; {n}", line.id, line.quantity),
        None => format!("line {} at quantity {}", line.id, line.quantity),
    };
    Ok((line.id, line.quantity, reason, message))
}

/// The status an evaluation stands for, and the conditions that changed.
fn build_status(
    m: &CustomerMapping,
    old: &CustomerMappingStatus,
    eval: &Evaluation,
    grace: Duration,
) -> (
    CustomerMappingStatus,
    Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
) {
    let generation = m.metadata.generation;
    let mut conds = Conditions::new(&old.conditions, generation, Timestamp::now());
    if let (Some(message), Err(_)) = (&eval.transient, &eval.customer) {
        // An outage says nothing new about the company: keep what was known (and routed).
        conds.psa_unavailable(message, grace);
        conds.set_kstatus();
        let transitions = conds.transitions();
        let mut status = old.clone();
        status.observed_generation = generation;
        status.conditions = conds.into_vec();
        return (status, transitions);
    }
    match &eval.customer {
        Ok(c) => {
            conds.set(
                RESOLVED,
                true,
                "Resolved",
                format!("company {:?} resolved", c.company_name),
            );
            conds.set(
                READY,
                true,
                "Ready",
                "alerts of this organization are routed to the mapped company",
            );
        }
        Err((reason, message)) => {
            conds.set(RESOLVED, false, reason, message.clone());
            conds.set(
                READY,
                false,
                reason,
                format!(
                    "{message}; alerts of this organization are held, not sent to the catch-all"
                ),
            );
        }
    }
    match (&eval.customer, &eval.contact) {
        (Ok(customer), Some(contact)) => {
            let (ok, reason, message) = contact_condition(contact, &customer.company_name);
            conds.set(CONTACT_RESOLVED, ok, reason, message);
        }
        // Not routed: Resolved/Ready say why; a contact verdict of before would be stale.
        _ => conds.remove(CONTACT_RESOLVED),
    }
    match &eval.contract_line {
        Some(Ok((reason, message))) => conds.set(CONTRACT_SYNCED, true, reason, message.clone()),
        Some(Err((reason, message))) => conds.set(CONTRACT_SYNCED, false, reason, message.clone()),
        None => {}
    }
    match &eval.transient {
        Some(message) => conds.set(SYNCED, false, "PsaUnavailable", message.clone()),
        None => conds.set(SYNCED, true, "ReconcileSuccess", "status reflects the PSA"),
    }
    conds.set_kstatus();
    let transitions = conds.transitions();
    let mut status = eval.ids.clone();
    // A line the PSA cannot list is known only from status: keep it while billing is not
    // re-checked (routing failed, or another replica is the leader).
    if eval.contract_line.is_none() {
        status.contract_line_id = old.contract_line_id.clone();
        status.synced_quantity = old.synced_quantity;
    }
    status.observed_generation = generation;
    status.conditions = conds.into_vec();
    (status, transitions)
}

/// The `ContactResolved` condition (status, reason, message) for a mapping's contact chain. It
/// does not gate `Ready`: a ticket without a contact is still delivered (the PSA accepts it),
/// so `NoContact` is a warning an operator can act on, not a reason to hold alerts.
fn contact_condition(contact: &MappingContact, company: &str) -> (bool, &'static str, String) {
    match contact {
        MappingContact::Named(id) => (
            true,
            "DefaultContact",
            format!("tickets get contact {id} (spec.defaultContact) unless the alert user is a contact"),
        ),
        MappingContact::Company(id) => (
            true,
            "CompanyContact",
            format!("tickets get company {company:?}'s primary contact {id} unless the alert user is a contact"),
        ),
        MappingContact::NoContact => (
            false,
            "NoContact",
            format!(
                "no spec.defaultContact and company {company:?} has no default or primary contact in the PSA: \
                 tickets whose alert user is not a contact of the company are created without a contact; \
                 set spec.defaultContact or mark a primary contact in the PSA"
            ),
        ),
    }
}
