//! Plans one connection against its PSA with the operator's own decisions: ticket-settings
//! resolution (`controller::resolve`), catch-all resolution, catalog adopt/create/drift
//! (`controller::contract_service`), company picking and contract-line planning
//! (`controller::mapping`). Only reads are made; the caller hands in a read-only client.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{
    CustomerMapping, CustomerMappingStatus, LifecycleSettings, PsaConnection, TicketSettings,
};
use crate::controller::resolve::billing::{line_from_status, plan_line, wanted_line, LinePlan};
use crate::controller::resolve::catalog::{drift, wanted_spec};
use crate::controller::resolve::customer::{
    duplicates_of, resolve_catch_all, resolve_customer, CompanyIndex, Lookup,
};
use crate::controller::resolve::lifecycle::resolve_lifecycle;
use crate::controller::resolve::line_memory::line_to_plan;
use crate::controller::resolve::names::nearest;
use crate::controller::resolve::ticket::required_by_psa;
use crate::controller::resolve::{fetch_catalog, resolve_ticket, PsaCatalog};
use crate::psa::{CompanyFilter, ContractLine, LineKey, LineValues, Psa, PsaError, PsaId};

use super::super::resource_set::{Located, ResourceSet};
use super::model::*;
use super::names::name_checks;

/// Catalog service of a ContractService resource as the plan sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CatalogState {
    /// In the PSA with this id (adopted or corrected).
    Exists(PsaId),
    /// Created by the operator on apply.
    ToCreate,
    /// Cannot be applied.
    Invalid,
}

/// What the cluster already records for the resources being planned (empty without a cluster).
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// ContractService name → the catalog id its status records (`status.externalId`).
    pub services: BTreeMap<String, String>,
    /// CustomerMapping name → its status: the contract line it wrote and that line's quantity,
    /// which a PSA that cannot read a line's units (Kaseya BMS) knows only from there.
    pub mappings: BTreeMap<String, CustomerMappingStatus>,
}

fn problem(e: &PsaError) -> Problem {
    Problem {
        reason: e.reason().to_string(),
        message: e.to_string(),
    }
}

/// The row of `lifecycle.closedStatus`, resolved as the reconciler does (none when unset).
fn lifecycle_names(
    lifecycle: Option<&LifecycleSettings>,
    catalog: &PsaCatalog,
    ticket: &TicketSettings,
) -> Option<NameCheck> {
    let name = lifecycle?.closed_status.clone()?;
    let ticket_closed = resolve_ticket(ticket, catalog)
        .ok()
        .and_then(|t| t.closed_status_id);
    let resolved = resolve_lifecycle(lifecycle, &catalog.statuses, ticket_closed.as_ref());
    Some(NameCheck {
        field: "lifecycle.closedStatus".into(),
        value: name,
        resolves: Some(resolved.is_ok()),
        id: resolved
            .as_ref()
            .ok()
            .and_then(|l| l.closed_status_id.clone()),
        problem: resolved.err().map(|u| u.problem),
    })
}

/// Fills `plan` for `conn`; a PSA error stops the connection's plan and is recorded in it.
pub async fn plan_connection(
    conn: &Located<PsaConnection>,
    set: &ResourceSet,
    psa: &dyn Psa,
    live: &Live,
    plan: &mut ConnectionPlan,
) {
    plan.account_mapping = format!("{:?}", conn.obj.spec.account_mapping.unwrap_or_default());
    plan.behaviour = super::lifecycle::behaviour(&conn.obj.spec);
    plan.unresolved_hold = conn
        .obj
        .spec
        .dispatch
        .as_ref()
        .and_then(|d| d.unresolved_hold.clone());
    if let Err(e) = run(conn, set, psa, live, plan).await {
        plan.error = Some(problem(&e));
    }
}

async fn run(
    conn: &Located<PsaConnection>,
    set: &ResourceSet,
    psa: &dyn Psa,
    live: &Live,
    plan: &mut ConnectionPlan,
) -> Result<(), PsaError> {
    let spec = &conn.obj.spec;
    psa.verify().await?;
    let ticket = spec.ticket.clone().unwrap_or_default();
    let (catalog, _) = fetch_catalog(psa, &ticket).await?;
    plan.names = name_checks(&ticket, &resolve_ticket(&ticket, &catalog));
    // Settings the PSA requires but the spec leaves unset: a problem row each (no ticket could
    // be created), as the reconciler's `RequiredByPsa`.
    plan.names.extend(
        required_by_psa(psa.provider(), &ticket)
            .into_iter()
            .map(|u| NameCheck {
                field: u.field,
                value: u.value,
                resolves: Some(false),
                id: None,
                problem: Some(u.problem),
            }),
    );
    plan.names
        .extend(lifecycle_names(spec.lifecycle.as_ref(), &catalog, &ticket));
    plan.names.extend(super::lifecycle::never_reopen_names(
        spec.lifecycle.as_ref(),
        &catalog.statuses,
    ));
    if let Some(ca) = &spec.catch_all {
        plan.names.extend(catch_all_names(psa, ca).await?);
    }
    plan.routes = super::routes::connection_routes(psa, spec).await?;

    let mut services: BTreeMap<String, CatalogState> = BTreeMap::new();
    for s in set.services_of(conn) {
        let (sp, state) = plan_service(psa, s, live.services.get(s.name())).await?;
        services.insert(s.name().to_string(), state);
        plan.catalog.push(sp);
    }

    let mappings: Vec<&Located<CustomerMapping>> = set.mappings_of(conn).collect();
    if mappings.is_empty() {
        return Ok(());
    }
    let index = CompanyIndex::build(psa.list_companies(&CompanyFilter::default()).await?);
    let all: Vec<Arc<CustomerMapping>> = set
        .mappings
        .iter()
        .map(|m| Arc::new(m.obj.clone()))
        .collect();
    for m in mappings {
        let dups = duplicates_of(&m.obj, &all);
        let customer = if dups.is_empty() {
            let remembered = live.mappings.get(m.name());
            plan_customer(psa, set, &index, &services, m, remembered, spec).await?
        } else {
            duplicate_customer(m, &dups)
        };
        if let Some(reason) = catch_all_reason(&customer) {
            plan.catch_all.push(CatchAllEntry {
                organization: customer.organization.clone(),
                mapping: customer.mapping.clone(),
                reason,
            });
        }
        plan.customers.push(customer);
    }
    Ok(())
}

async fn catch_all_names(
    psa: &dyn Psa,
    ca: &crate::api::CatchAll,
) -> Result<Vec<NameCheck>, PsaError> {
    let check = |field: &str, value: &str| NameCheck {
        field: field.into(),
        value: value.into(),
        resolves: Some(true),
        id: None,
        problem: None,
    };
    let mut company = check("catchAll.company", &ca.company);
    let mut contact = ca.contact.as_deref().map(|c| check("catchAll.contact", c));
    match resolve_catch_all(psa, ca).await? {
        Ok(c) => {
            company.id = Some(c.company_id);
            if let Some(ct) = contact.as_mut() {
                ct.id = c.default_contact_id;
            }
        }
        Err(u) if u.field == "catchAll.company" => {
            company.resolves = Some(false);
            company.problem = Some(u.problem);
            if let Some(ct) = contact.as_mut() {
                ct.resolves = None;
                ct.problem = Some("not looked up: the company does not resolve".into());
            }
        }
        Err(u) => {
            if let Some(ct) = contact.as_mut() {
                ct.resolves = Some(false);
                ct.problem = Some(u.problem);
            }
        }
    }
    Ok(std::iter::once(company).chain(contact).collect())
}

async fn plan_service(
    psa: &dyn Psa,
    s: &Located<crate::api::ContractService>,
    managed_id: Option<&String>,
) -> Result<(ServicePlan, CatalogState), PsaError> {
    let mut sp = ServicePlan {
        resource: s.name().to_string(),
        service: s.obj.spec.name.clone(),
        action: ServiceAction::Invalid,
        id: None,
        changes: vec![],
        problem: None,
    };
    let wanted = match wanted_spec(&s.obj) {
        Ok(w) => w,
        Err(msg) => {
            sp.problem = Some(msg);
            return Ok((sp, CatalogState::Invalid));
        }
    };
    let money = crate::api::format_decimal_4;
    let state = match psa.find_catalog_service(&wanted.name).await? {
        None => {
            sp.action = ServiceAction::Create;
            sp.changes = vec![
                change("description", "", &wanted.description),
                change("cost", "", &money(wanted.cost)),
                change("price", "", &money(wanted.price)),
            ];
            CatalogState::ToCreate
        }
        Some(found) => {
            let fields = drift(&found, &wanted);
            sp.id = Some(found.id.clone());
            sp.action = existing_service_action(fields.is_empty(), managed_id == Some(&found.id));
            sp.changes = fields
                .into_iter()
                .map(|f| match f {
                    "description" => change(f, &found.description, &wanted.description),
                    "cost" => change(f, &money(found.cost), &money(wanted.cost)),
                    _ => change(f, &money(found.price), &money(wanted.price)),
                })
                .collect();
            CatalogState::Exists(found.id)
        }
    };
    Ok((sp, state))
}

/// What applying does to a catalog service found in the PSA: nothing when this resource already
/// manages it and nothing drifted, adopt it when not yet managed, else correct the drift.
fn existing_service_action(in_step: bool, managed_by_this_resource: bool) -> ServiceAction {
    match (in_step, managed_by_this_resource) {
        (true, true) => ServiceAction::InStep,
        (true, false) => ServiceAction::Adopt,
        (false, _) => ServiceAction::Correct,
    }
}

/// A plan row of one looked-up part: wanted, and the id and name found or the problem.
fn lookup_row<T>(l: &Lookup<T>, id_and_name: impl Fn(&T) -> (String, String)) -> Resolution {
    let mut r = wanted_only(&l.wanted);
    match &l.found {
        Ok(t) => {
            let (id, name) = id_and_name(t);
            r.id = Some(id);
            r.found = Some(name);
        }
        Err((_, message)) => r.problem = Some(message.clone()),
    }
    r
}

fn change(field: &str, from: &str, to: &str) -> FieldChange {
    FieldChange {
        field: field.into(),
        from: from.into(),
        to: to.into(),
    }
}

fn wanted_only(wanted: &str) -> Resolution {
    Resolution {
        wanted: wanted.to_string(),
        id: None,
        found: None,
        problem: None,
    }
}

fn company_wanted(m: &CustomerMapping) -> String {
    match (&m.spec.company.identifier, &m.spec.company.name) {
        (Some(i), _) => format!("identifier {i}"),
        (None, Some(n)) => format!("name {n:?}"),
        _ => String::new(),
    }
}

fn duplicate_customer(m: &Located<CustomerMapping>, dups: &[String]) -> CustomerPlan {
    let mut company = wanted_only(&company_wanted(&m.obj));
    company.problem = Some(format!(
        "organization is also mapped by {}; the operator uses neither",
        dups.join(", ")
    ));
    CustomerPlan {
        mapping: m.name().to_string(),
        organization: m.obj.spec.organization.clone(),
        company,
        contact: None,
        contract: None,
        line: None,
        routed: false,
        ticket: vec![],
    }
}

/// Why alerts of a customer would land on the catch-all company; `None` when routed.
fn catch_all_reason(c: &CustomerPlan) -> Option<String> {
    if c.routed {
        return None;
    }
    [Some(&c.company), c.contact.as_ref(), c.contract.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|r| r.problem.clone())
}

/// Company names and identifiers nearest to what the mapping asks for.
fn company_hint(index: &CompanyIndex, m: &CustomerMapping) -> String {
    let (wanted, names): (&str, Vec<&str>) =
        match (&m.spec.company.identifier, &m.spec.company.name) {
            (Some(i), _) => (
                i,
                index
                    .by_identifier
                    .values()
                    .map(|c| c.identifier.as_str())
                    .collect(),
            ),
            (None, Some(n)) => (
                n,
                index
                    .by_name
                    .values()
                    .flatten()
                    .map(|c| c.name.as_str())
                    .collect(),
            ),
            _ => return String::new(),
        };
    let near = nearest(names.into_iter(), wanted, 3);
    if near.is_empty() {
        String::new()
    } else {
        let q: Vec<String> = near.iter().map(|n| format!("{n:?}")).collect();
        format!(" (did you mean {}?)", q.join(", "))
    }
}

async fn plan_customer(
    psa: &dyn Psa,
    set: &ResourceSet,
    index: &CompanyIndex,
    services: &BTreeMap<String, CatalogState>,
    m: &Located<CustomerMapping>,
    remembered: Option<&CustomerMappingStatus>,
    conn: &crate::api::PsaConnectionSpec,
) -> Result<CustomerPlan, PsaError> {
    let spec = &m.obj.spec;
    let mut out = CustomerPlan {
        mapping: m.name().to_string(),
        organization: spec.organization.clone(),
        company: wanted_only(&company_wanted(&m.obj)),
        contact: None,
        contract: None,
        line: None,
        routed: false,
        ticket: vec![],
    };
    // The same resolution the mapping reconciler makes; here its result becomes plan rows.
    let resolution = resolve_customer(psa, index, spec).await?;
    let company = match &resolution.company {
        Ok(c) => c.clone(),
        Err(msg) => {
            out.company.problem = Some(format!("{msg}{}", company_hint(index, &m.obj)));
            return Ok(out);
        }
    };
    out.company.id = Some(company.id.clone());
    out.company.found = Some(company.name.clone());
    out.contact = resolution
        .contact
        .as_ref()
        .map(|l| lookup_row(l, |c| (c.id.clone(), c.full_name())));
    out.contract = resolution
        .contract
        .as_ref()
        .map(|l| lookup_row(l, |k| (k.id.clone(), k.name.clone())));
    if resolution.problem().is_some() {
        return Ok(out);
    }
    let contract = resolution.contract().cloned();
    let (ticket, overrides_resolve) = super::routes::mapping_overrides(psa, conn, spec).await?;
    out.ticket = ticket;
    out.routed = overrides_resolve;

    let Some(line_spec) = &spec.contract_service else {
        return Ok(out);
    };
    let svc_name = &line_spec.service_ref.name;
    let blocked = |service: &str, note: &str| LinePlanReport {
        service: service.to_string(),
        action: LineAction::Blocked,
        before: None,
        after: None,
        delta: None,
        note: Some(note.to_string()),
    };
    let Some(contract) = contract else {
        out.line = Some(blocked(svc_name, "contractService needs spec.contract"));
        return Ok(out);
    };
    let Some(service) = set.service(m.namespace(), svc_name) else {
        out.line = Some(blocked(
            svc_name,
            &format!("ContractService {svc_name:?} is not in the input"),
        ));
        return Ok(out);
    };
    let wanted = wanted_line(line_spec, &service.obj.spec.cost, &service.obj.spec.price);
    let catalog_name = service.obj.spec.name.clone();
    let after = Billing::of(wanted);
    let report = match services.get(svc_name) {
        Some(CatalogState::Exists(id)) => {
            let found = psa
                .find_contract_line(LineKey::new(&contract.id, id))
                .await?;
            let remembered = line_from_status(remembered, &contract.id, id, wanted);
            existing_line_report(psa, catalog_name, found, remembered, wanted)
        }
        Some(CatalogState::ToCreate) => LinePlanReport {
            service: catalog_name,
            action: LineAction::Add,
            delta: Some(BillingDelta::between(None, &after)),
            before: None,
            after: Some(after),
            note: Some("after the catalog service is created".into()),
        },
        Some(CatalogState::Invalid) | None => blocked(
            &catalog_name,
            &format!("ContractService {svc_name:?} cannot be applied"),
        ),
    };
    out.line = Some(report);
    Ok(out)
}

/// The line row of a catalog service that exists: the line as the PSA shows it (with the
/// quantity the mapping's status remembers where the PSA cannot read units) and the change the
/// operator would make, as the mapping reconciler decides it.
fn existing_line_report(
    psa: &dyn Psa,
    service: String,
    found: Option<ContractLine>,
    remembered: Option<ContractLine>,
    wanted: LineValues,
) -> LinePlanReport {
    let after = Billing::of(wanted);
    let units_readable = psa.lists_contract_lines();
    if let (Some(line), None) = (
        &found,
        line_to_plan(found.clone(), remembered.clone(), units_readable),
    ) {
        // Found, but its units are neither readable nor remembered: the add call adopts it,
        // taking its units to be the wanted ones and bringing cost and price in step.
        let before = Billing::of(LineValues {
            quantity: wanted.quantity,
            cost: line.cost,
            price: line.price,
        });
        return LinePlanReport {
            service,
            action: LineAction::Adopt,
            delta: Some(BillingDelta::between(Some(&before), &after)),
            before: Some(before),
            after: Some(after),
            note: Some(adoption_note(psa, line)),
        };
    }
    let existing = line_to_plan(found, remembered, units_readable);
    let (action, before, note) = match plan_line(existing, wanted) {
        LinePlan::Add(_) => (LineAction::Add, None, None),
        LinePlan::Update { line, to } => {
            let how = psa.line_update_method(&line, to);
            (LineAction::Update, Some(line), how)
        }
        LinePlan::InStep(line) => (LineAction::InStep, Some(line), None),
    };
    let before = before.map(|l| {
        Billing::of(LineValues {
            quantity: l.quantity,
            cost: l.cost,
            price: l.price,
        })
    });
    LinePlanReport {
        service,
        action,
        delta: Some(BillingDelta::between(before.as_ref(), &after)),
        before,
        after: Some(after),
        note,
    }
}

fn adoption_note(psa: &dyn Psa, line: &ContractLine) -> String {
    format!(
        "line {} is on the contract but not in the mapping's status; {} cannot read a line's \
         units, so they are taken to be the wanted quantity",
        line.id,
        psa.provider().as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OnResolve;
    use crate::psa::StatusInfo;

    #[test]
    fn plan_shows_the_lifecycle_closed_status() {
        let catalog = PsaCatalog {
            statuses: StatusInfo::list(&[("1", "New", false), ("14", "Completed", true)]),
            ..Default::default()
        };
        let ticket = TicketSettings::default();
        let spec = |closed: &str| LifecycleSettings {
            on_resolve: Some(OnResolve::Close),
            closed_status: Some(closed.into()),
            ..Default::default()
        };
        assert_eq!(lifecycle_names(None, &catalog, &ticket), None);
        let no_status = LifecycleSettings {
            on_resolve: Some(OnResolve::Close),
            closed_status: None,
            ..Default::default()
        };
        assert_eq!(lifecycle_names(Some(&no_status), &catalog, &ticket), None);
        let row = lifecycle_names(Some(&spec("Completed")), &catalog, &ticket).unwrap();
        assert_eq!(
            (row.field.as_str(), row.resolves, row.id.as_deref()),
            ("lifecycle.closedStatus", Some(true), Some("14"))
        );
        let row = lifecycle_names(Some(&spec("Complete")), &catalog, &ticket).unwrap();
        assert_eq!((row.resolves, row.id), (Some(false), None));
        assert!(row.problem.unwrap().contains("Completed"));
        let row = lifecycle_names(Some(&spec("New")), &catalog, &ticket).unwrap();
        assert_eq!(
            row.problem.as_deref(),
            Some("is not a closed status in the PSA")
        );
    }

    #[test]
    fn a_service_this_resource_already_manages_is_not_adopted_again() {
        let table = [
            // (as the spec says, managed by this resource) → action
            ((true, true), ServiceAction::InStep),
            ((true, false), ServiceAction::Adopt),
            ((false, true), ServiceAction::Correct),
            ((false, false), ServiceAction::Correct),
        ];
        for ((in_step, managed), want) in table {
            assert_eq!(
                existing_service_action(in_step, managed),
                want,
                "in step {in_step}, managed {managed}"
            );
        }
    }
}
