//! CustomerMapping reconciler: company, default contact and contract resolved; the contract line
//! of the referenced ContractService kept at the mapping's quantity, cost and price.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::api::condition_types::*;
use crate::api::{
    find_condition, make_condition, set_condition, CompanyRef, ContactRef, ContractService,
    CustomerMapping, CustomerMappingStatus,
};
use crate::psa::{Company, ContractLine, LineUpdate, LineValues, Psa, PsaError};
use crate::resolved::{ConnectionKey, ResolvedCustomer};

use super::context::{CompanyIndex, Context};
use super::ReconcileError;

/// Finds the mapped company in the index (identifier or name, case-insensitive, active only).
pub fn pick_company(index: &CompanyIndex, company: &CompanyRef) -> Result<Company, String> {
    if let Some(id) = &company.identifier {
        return match index.by_identifier.get(&id.trim().to_lowercase()) {
            Some(c) if c.active => Ok(c.clone()),
            Some(_) => Err(format!(
                "company with identifier {id:?} is inactive in the PSA"
            )),
            None => Err(format!("no company with identifier {id:?} in the PSA")),
        };
    }
    let name = company.name.as_deref().unwrap_or_default();
    let hits: Vec<&Company> = index
        .by_name
        .get(&name.trim().to_lowercase())
        .map(|v| v.iter().filter(|c| c.active).collect())
        .unwrap_or_default();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no active company named {name:?} in the PSA")),
        many => Err(format!(
            "{} companies are named {name:?}; map by identifier instead ({})",
            many.len(),
            many.iter()
                .map(|c| c.identifier.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// What to do with the contract line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinePlan {
    Add(LineValues),
    Update { line: ContractLine, to: LineValues },
    InStep(ContractLine),
}

/// Decides the contract-line write: add when missing, update only when something differs.
pub fn plan_line(existing: Option<ContractLine>, wanted: LineValues) -> LinePlan {
    match existing {
        None => LinePlan::Add(wanted),
        Some(line)
            if line.quantity == wanted.quantity
                && line.cost == wanted.cost
                && line.price == wanted.price =>
        {
            LinePlan::InStep(line)
        }
        Some(line) => LinePlan::Update { line, to: wanted },
    }
}

/// Where the PSA cannot list contract lines (Kaseya BMS API v2, see `Psa::lists_contract_lines`),
/// the line this operator wrote last is known only from the mapping's status; without it a
/// restart would add a second line. Status keeps the line id and quantity but not cost and price,
/// so the wanted ones stand in for them: after a restart only a quantity change is noticed.
pub fn line_from_status(
    status: Option<&CustomerMappingStatus>,
    contract_id: &str,
    service_id: &str,
    wanted: LineValues,
) -> Option<ContractLine> {
    let s = status?;
    if s.contract_id.as_deref() != Some(contract_id) {
        return None;
    }
    Some(ContractLine {
        id: s.contract_line_id.clone()?,
        contract_id: contract_id.to_string(),
        service_id: service_id.to_string(),
        quantity: s.synced_quantity?,
        cost: wanted.cost,
        price: wanted.price,
    })
}

/// `candidate` names the same organization as `org_lower` (already trimmed and lower-cased).
fn same_organization(candidate: &str, org_lower: &str) -> bool {
    let c = candidate.trim();
    if c.is_ascii() && org_lower.is_ascii() {
        return c.eq_ignore_ascii_case(org_lower);
    }
    c.to_lowercase() == org_lower
}

/// Names of the other mappings of the same connection claiming the same organization.
pub fn duplicates_of(me: &CustomerMapping, all: &[Arc<CustomerMapping>]) -> Vec<String> {
    let org = me.spec.organization.trim().to_lowercase();
    let mut names: Vec<String> = all
        .iter()
        // Cheap comparisons first: this runs for every mapping of a wave (n² in all).
        .filter(|m| {
            m.spec.connection_ref.name == me.spec.connection_ref.name
                && m.metadata.namespace == me.metadata.namespace
                && m.metadata.name != me.metadata.name
                && m.meta().deletion_timestamp.is_none()
                && same_organization(&m.spec.organization, &org)
        })
        .map(|m| m.name_any())
        .collect();
    names.sort();
    names
}

struct Outcome {
    status: CustomerMappingStatus,
    conds: Vec<(&'static str, bool, String, String)>,
    customer: Option<(String, ResolvedCustomer)>,
    transient: bool,
    conflict: bool,
}

pub async fn reconcile(
    m: Arc<CustomerMapping>,
    ctx: Arc<Context>,
    store: Store<CustomerMapping>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(&m, &ctx, &store).await;
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
    store: &Store<CustomerMapping>,
) -> Result<Action, ReconcileError> {
    let ns = m.namespace().unwrap_or_default();
    let key = ConnectionKey::new(ns.clone(), m.spec.connection_ref.name.clone());
    let name = m.name_any();
    let generation = m.metadata.generation;
    let old = m.status.clone().unwrap_or_default();
    let now = Timestamp::now();

    let outcome = evaluate(m, ctx, store, &key).await;

    // Keep the dispatcher's view in step: only Ready mappings route alerts.
    {
        let mut st = ctx.state();
        let entry = st.customers.entry(key.clone()).or_default();
        match &outcome.customer {
            Some((org, c)) => {
                entry.insert(name.clone(), (org.clone(), c.clone()));
            }
            None => {
                entry.remove(&name);
            }
        }
    }
    ctx.publish_customers(&key).await;

    let mut conds: Vec<Condition> = old.conditions.clone();
    for (t, ok, reason, msg) in &outcome.conds {
        set_condition(
            &mut conds,
            make_condition(
                &old.conditions,
                t,
                *ok,
                reason,
                msg.clone(),
                generation,
                now,
            ),
        );
    }
    let ready_ok = outcome.customer.is_some();
    let (reason, msg) = if ready_ok {
        (
            "Ready".to_string(),
            "alerts of this organization are routed to the mapped company".to_string(),
        )
    } else {
        let first = outcome.conds.iter().find(|c| !c.1);
        first
            .map(|c| (c.2.clone(), c.3.clone()))
            .unwrap_or(("Pending".into(), "not checked yet".into()))
    };
    set_condition(
        &mut conds,
        make_condition(
            &old.conditions,
            READY,
            ready_ok,
            &reason,
            msg,
            generation,
            now,
        ),
    );
    set_condition(
        &mut conds,
        make_condition(
            &old.conditions,
            SYNCED,
            !outcome.transient,
            if outcome.transient {
                "PsaUnavailable"
            } else {
                "ReconcileSuccess"
            },
            if outcome.transient {
                "the PSA could not be reached; retrying"
            } else {
                "status reflects the PSA"
            },
            generation,
            now,
        ),
    );
    let mut status = outcome.status;
    status.observed_generation = generation;
    status.conditions = conds;

    for c in &status.conditions {
        let before = find_condition(&old.conditions, &c.type_);
        if before
            .map(|b| b.status != c.status || b.reason != c.reason)
            .unwrap_or(c.status != "True")
        {
            ctx.event(
                m,
                c.status != "True",
                &c.reason,
                &c.type_,
                format!("{}={}: {}", c.type_, c.status, c.message),
            )
            .await;
        }
    }
    if status != old {
        let api: Api<CustomerMapping> = Api::namespaced(ctx.client.clone(), &ns);
        super::apply_status(&api, &name, "CustomerMapping", json!(status)).await?;
    }
    Ok(if outcome.transient || outcome.conflict {
        // A conflict may end by a sibling's deletion the watch saw before our cache did.
        Action::requeue(Duration::from_secs(15))
    } else {
        Action::requeue(ctx.default_revalidate)
    })
}

fn fail(
    t: &'static str,
    reason: &str,
    msg: impl Into<String>,
) -> (&'static str, bool, String, String) {
    (t, false, reason.to_string(), msg.into())
}

async fn evaluate(
    m: &CustomerMapping,
    ctx: &Context,
    store: &Store<CustomerMapping>,
    key: &ConnectionKey,
) -> Outcome {
    let mut out = Outcome {
        status: super::line_memory::billing_memory(m.status.as_ref()),
        conds: vec![],
        customer: None,
        transient: false,
        conflict: false,
    };
    let dups = duplicates_of(m, &store.state());
    if !dups.is_empty() {
        out.conflict = true;
        out.conds.push(fail(
            RESOLVED,
            "DuplicateOrganization",
            format!(
                "organization {:?} is also mapped by {} on connection {:?}; neither is used until one is removed",
                m.spec.organization,
                dups.join(", "),
                key.name
            ),
        ));
        return out;
    }
    if ctx.registry.get(key).is_none() {
        out.conds.push(fail(
            RESOLVED,
            "ConnectionNotFound",
            format!("PsaConnection {:?} does not exist", key.name),
        ));
        return out;
    }
    let Some(psa) = ctx.psa_client(key) else {
        out.conds.push(fail(
            RESOLVED,
            "ConnectionNotReady",
            format!("PsaConnection {:?} is not authenticated yet", key.name),
        ));
        return out;
    };
    match evaluate_with_psa(m, ctx, key, psa.as_ref(), &mut out).await {
        Ok(()) => {}
        Err(e) => {
            out.transient = e.is_transient();
            out.conds.push(fail(RESOLVED, e.reason(), e.to_string()));
            out.customer = None;
        }
    }
    out
}

async fn evaluate_with_psa(
    m: &CustomerMapping,
    ctx: &Context,
    key: &ConnectionKey,
    psa: &dyn Psa,
    out: &mut Outcome,
) -> Result<(), PsaError> {
    let spec = &m.spec;
    let mut index = ctx.company_index(key, psa, false).await?;
    let mut company = pick_company(&index, &spec.company);
    if company.is_err() {
        // A company created since the listing: list again once before reporting.
        index = ctx.company_index(key, psa, true).await?;
        company = pick_company(&index, &spec.company);
    }
    let company = match company {
        Ok(c) => c,
        Err(msg) => {
            out.conds.push(fail(RESOLVED, "CompanyNotFound", msg));
            return Ok(());
        }
    };
    out.status.company_id = Some(company.id.clone());
    out.status.company_name = Some(company.name.clone());

    let contact = match &spec.default_contact {
        None => None,
        Some(ContactRef { email: Some(e), .. }) => {
            match psa.find_contact_by_email(&company.id, e).await? {
                Some(c) => Some(c),
                None => {
                    out.conds.push(fail(
                        RESOLVED,
                        "ContactNotFound",
                        format!("no contact with e-mail {e:?} in company {:?}", company.name),
                    ));
                    return Ok(());
                }
            }
        }
        Some(ContactRef { name: Some(n), .. }) => {
            match psa.find_contact_by_name(&company.id, n).await? {
                Some(c) => Some(c),
                None => {
                    out.conds.push(fail(
                        RESOLVED,
                        "ContactNotFound",
                        format!("no contact named {n:?} in company {:?}", company.name),
                    ));
                    return Ok(());
                }
            }
        }
        Some(_) => None,
    };
    out.status.contact_id = contact.as_ref().map(|c| c.id.clone());

    let contract = match &spec.contract {
        None => None,
        Some(c) => match psa.find_contract(&company.id, &c.name).await? {
            Some(found) if found.active => Some(found),
            Some(_) => {
                out.conds.push(fail(
                    RESOLVED,
                    "ContractInactive",
                    format!("contract {:?} is not active", c.name),
                ));
                return Ok(());
            }
            None => {
                out.conds.push(fail(
                    RESOLVED,
                    "ContractNotFound",
                    format!(
                        "company {:?} has no contract named {:?}",
                        company.name, c.name
                    ),
                ));
                return Ok(());
            }
        },
    };
    out.status.contract_id = contract.as_ref().map(|c| c.id.clone());
    out.conds.push((
        RESOLVED,
        true,
        "Resolved".into(),
        format!("company {:?} resolved", company.name),
    ));

    let customer = ResolvedCustomer {
        mapping_name: m.name_any(),
        company_id: company.id.clone(),
        company_name: company.name.clone(),
        location_id: company.location_id.clone(),
        default_contact_id: contact.map(|c| c.id).or(company.default_contact_id.clone()),
        contract_id: out.status.contract_id.clone(),
    };
    // Routing works even when billing does not: the customer is published either way.
    out.customer = Some((spec.organization.clone(), customer));

    let Some(line_spec) = &spec.contract_service else {
        out.conds.push((
            CONTRACT_SYNCED,
            true,
            "NotRequested".into(),
            "no contractService in spec".into(),
        ));
        return Ok(());
    };
    let Some(contract) = contract else {
        out.conds.push(fail(
            CONTRACT_SYNCED,
            "ContractMissing",
            "contractService needs spec.contract",
        ));
        return Ok(());
    };
    let ns = m.namespace().unwrap_or_default();
    let services: Api<ContractService> = Api::namespaced(ctx.client.clone(), &ns);
    let service = match services.get_opt(&line_spec.service_ref.name).await {
        Ok(s) => s,
        Err(e) => {
            out.transient = true;
            out.conds
                .push(fail(CONTRACT_SYNCED, "ServiceUnreadable", e.to_string()));
            return Ok(());
        }
    };
    let Some(service) = service else {
        out.conds.push(fail(
            CONTRACT_SYNCED,
            "ServiceNotFound",
            format!(
                "ContractService {:?} does not exist",
                line_spec.service_ref.name
            ),
        ));
        return Ok(());
    };
    let Some(service_id) = service.status.as_ref().and_then(|s| s.external_id.clone()) else {
        out.conds.push(fail(
            CONTRACT_SYNCED,
            "ServiceNotReady",
            format!(
                "waiting for ContractService {:?} to exist in the PSA",
                line_spec.service_ref.name
            ),
        ));
        return Ok(());
    };
    let money = |o: &Option<crate::api::Money>, d: &crate::api::Money| {
        o.as_ref().unwrap_or(d).to_minor().unwrap_or(0)
    };
    let wanted = LineValues {
        quantity: line_spec.quantity,
        cost: money(&line_spec.cost, &service.spec.cost),
        price: money(&line_spec.price, &service.spec.price),
    };
    let found = psa.find_contract_line(&contract.id, &service_id).await?;
    let found_id = found.as_ref().map(|l| l.id.clone());
    let remembered = line_from_status(m.status.as_ref(), &contract.id, &service_id, wanted);
    let existing = super::line_memory::line_to_plan(found, remembered, psa.lists_contract_lines());
    let (line, note, reason) = match plan_line(existing, wanted) {
        LinePlan::InStep(line) => (line, None, "InStep"),
        LinePlan::Add(v) => {
            let line = psa.add_contract_line(&contract.id, &service_id, v).await?;
            let reason = super::line_memory::added_reason(found_id.as_deref(), &line);
            ctx.event(
                m,
                false,
                "ContractLineAdded",
                "ContractSync",
                format!("added {:?} × {}", service.spec.name, v.quantity),
            )
            .await;
            (line, None, reason)
        }
        LinePlan::Update { line, to } => {
            let from = line.quantity;
            let upd = psa.update_contract_line(&line, to).await?;
            let note = match &upd {
                LineUpdate::Replaced { note, .. } => Some(note.clone()),
                LineUpdate::Updated(_) => None,
            };
            ctx.event(
                m,
                false,
                "ContractLineUpdated",
                "ContractSync",
                format!(
                    "quantity {from} → {}{}",
                    to.quantity,
                    note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
                ),
            )
            .await;
            (
                upd.line().clone(),
                note,
                super::line_memory::updated_reason(&upd),
            )
        }
    };
    out.status.contract_line_id = Some(line.id.clone());
    out.status.synced_quantity = Some(line.quantity);
    let msg = match note {
        Some(n) => format!("line {} at quantity {}; {n}", line.id, line.quantity),
        None => format!("line {} at quantity {}", line.id, line.quantity),
    };
    out.conds.push((CONTRACT_SYNCED, true, reason.into(), msg));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(id: &str, ident: &str, name: &str, active: bool) -> Company {
        Company {
            id: id.into(),
            identifier: ident.into(),
            name: name.into(),
            active,
            ..Default::default()
        }
    }

    #[test]
    fn company_picking() {
        let idx = CompanyIndex::build(vec![
            company("1", "CONTOSO", "Contoso Ltd", true),
            company("2", "OLD", "Old Co", false),
            company("3", "TWIN1", "Twin", true),
            company("4", "TWIN2", "Twin", true),
        ]);
        let by_id = |s: &str| CompanyRef {
            identifier: Some(s.into()),
            name: None,
        };
        let by_name = |s: &str| CompanyRef {
            identifier: None,
            name: Some(s.into()),
        };
        assert_eq!(pick_company(&idx, &by_id("contoso")).unwrap().id, "1");
        assert_eq!(pick_company(&idx, &by_name("Contoso Ltd")).unwrap().id, "1");
        assert!(pick_company(&idx, &by_id("OLD"))
            .unwrap_err()
            .contains("inactive"));
        assert!(pick_company(&idx, &by_name("Nope"))
            .unwrap_err()
            .contains("no active company"));
        let twin = pick_company(&idx, &by_name("Twin")).unwrap_err();
        assert!(twin.contains("TWIN1, TWIN2"), "{twin}");
    }

    #[test]
    fn a_line_the_psa_cannot_list_is_recalled_from_status() {
        let wanted = LineValues {
            quantity: 43,
            cost: 15_000,
            price: 40_000,
        };
        let synced = CustomerMappingStatus {
            contract_id: Some("7".into()),
            contract_line_id: Some("11".into()),
            synced_quantity: Some(42),
            ..Default::default()
        };
        let line = line_from_status(Some(&synced), "7", "9", wanted).unwrap();
        assert_eq!((line.id.as_str(), line.quantity), ("11", 42));
        assert_eq!((line.cost, line.price), (15_000, 40_000));
        // Then the plan is an update of that line, not a second add.
        assert!(matches!(
            plan_line(Some(line), wanted),
            LinePlan::Update { .. }
        ));
        let other_contract = CustomerMappingStatus {
            contract_id: Some("8".into()),
            ..synced.clone()
        };
        let never_synced = CustomerMappingStatus {
            contract_line_id: None,
            ..synced.clone()
        };
        for s in [Some(&other_contract), Some(&never_synced), None] {
            assert_eq!(line_from_status(s, "7", "9", wanted), None);
        }
    }

    #[test]
    fn line_plans() {
        let line = ContractLine {
            id: "9".into(),
            contract_id: "1".into(),
            service_id: "2".into(),
            quantity: 42,
            cost: 15_000,
            price: 40_000,
        };
        let v = |q| LineValues {
            quantity: q,
            cost: 15_000,
            price: 40_000,
        };
        assert_eq!(plan_line(None, v(42)), LinePlan::Add(v(42)));
        assert_eq!(
            plan_line(Some(line.clone()), v(42)),
            LinePlan::InStep(line.clone())
        );
        assert_eq!(
            plan_line(Some(line.clone()), v(43)),
            LinePlan::Update {
                line: line.clone(),
                to: v(43)
            }
        );
        let price_change = LineValues {
            quantity: 42,
            cost: 15_000,
            price: 45_000,
        };
        assert!(matches!(
            plan_line(Some(line), price_change),
            LinePlan::Update { .. }
        ));
    }
}
