//! The plan's rows for ticket routes and per-customer overrides: what each route matches, the
//! names it sets with the ids they resolve to on its board, and the misses the reconcilers
//! would report (same rules: `controller::resolve::routes`).

use std::sync::Arc;

use crate::api::{CustomerMappingSpec, PsaConnectionSpec, TicketRoute};
use crate::controller::resolve::routes::{
    connection_combos, mapping_combos, resolve_combos, FreshCatalogs, Overrides,
};
use crate::controller::resolve::Unresolved;
use crate::psa::{Psa, PsaError};
use crate::resolved::{ResolvedValue, TicketProfile};

use super::model::{NameCheck, RoutePlan};

fn matches_text(r: &TicketRoute) -> String {
    let mut parts = vec![];
    if !r.matcher.severity.is_empty() {
        parts.push(format!("severity in [{}]", r.matcher.severity.join(", ")));
    }
    if !r.matcher.alert_type.is_empty() {
        parts.push(format!(
            "alertType in [{}]",
            r.matcher.alert_type.join(", ")
        ));
    }
    parts.join(" and ")
}

fn one(v: &ResolvedValue) -> Option<String> {
    match v {
        ResolvedValue::One(id) => Some(id.clone()),
        _ => None,
    }
}

/// The rows of what a layer sets, with ids from its resolved profile (when it resolved).
fn rows(path: &str, set: &Overrides, profile: Option<&TicketProfile>) -> Vec<NameCheck> {
    let t = profile.map(|p| &p.ticket);
    let mut out = vec![];
    let mut row = |field: &str, value: &Option<String>, id: Option<String>| {
        if let Some(v) = value {
            out.push(NameCheck {
                field: format!("{path}.{field}"),
                value: v.clone(),
                resolves: profile.map(|_| true),
                id,
                problem: None,
            });
        }
    };
    row("board", &set.board, t.and_then(|t| t.board_id.clone()));
    row("priority", &set.priority, t.and_then(|t| one(&t.priority)));
    row("type", &set.type_, t.and_then(|t| one(&t.type_)));
    row(
        "issueType",
        &set.issue_type,
        t.and_then(|t| t.issue_type_default.issue_type.clone()),
    );
    row(
        "subIssueType",
        &set.sub_issue_type,
        t.and_then(|t| t.issue_type_default.sub_issue_type.clone()),
    );
    row("summaryTemplate", &set.summary_template, None);
    out
}

/// Marks the rows the misses are about (adding a row when none is).
fn mark(plans: &mut [RoutePlan], misses: &[Unresolved]) {
    for m in misses {
        let plan = plans
            .iter_mut()
            .find(|p| m.field.starts_with(&format!("{}.", p.field)));
        let Some(plan) = plan else { continue };
        match plan.sets.iter_mut().find(|r| r.field == m.field) {
            Some(row) => {
                row.resolves = Some(false);
                row.id = None;
                let problem = match &row.problem {
                    Some(p) => format!("{p}; {}", m.problem),
                    None => m.problem.clone(),
                };
                row.problem = Some(problem);
            }
            None => plan.sets.push(NameCheck {
                field: m.field.clone(),
                value: m.value.clone(),
                resolves: Some(false),
                id: None,
                problem: Some(m.problem.clone()),
            }),
        }
    }
    for plan in plans.iter_mut() {
        if plan.sets.iter().any(|r| r.resolves == Some(false)) {
            for r in plan.sets.iter_mut().filter(|r| r.resolves == Some(true)) {
                r.resolves = None;
            }
        }
    }
}

/// The connection's routes as plan rows.
pub async fn connection_routes(
    psa: &dyn Psa,
    spec: &PsaConnectionSpec,
) -> Result<Vec<RoutePlan>, PsaError> {
    let combos = connection_combos(spec);
    let (profiles, misses) = resolve_combos(
        psa,
        &combos,
        spec.lifecycle.as_ref(),
        &FreshCatalogs::default(),
        "",
    )
    .await?;
    let mut plans: Vec<RoutePlan> = spec
        .routes
        .iter()
        .zip(&profiles)
        .enumerate()
        .map(|(j, (r, p))| RoutePlan {
            field: format!("routes[{j}]"),
            matches: Some(matches_text(r)),
            sets: rows(&format!("routes[{j}]"), &r.into(), p.as_deref()),
        })
        .collect();
    mark(&mut plans, &misses);
    Ok(plans)
}

/// A mapping's `ticket` and `routes` as plan rows, and whether they all resolve.
pub async fn mapping_overrides(
    psa: &dyn Psa,
    conn: &PsaConnectionSpec,
    m: &CustomerMappingSpec,
) -> Result<(Vec<RoutePlan>, bool), PsaError> {
    let combos = mapping_combos(conn, m);
    if combos.is_empty() {
        return Ok((vec![], true));
    }
    let (profiles, misses) = resolve_combos(
        psa,
        &combos,
        conn.lifecycle.as_ref(),
        &FreshCatalogs::default(),
        "PsaConnection ",
    )
    .await?;
    let profile = |i: usize| profiles.get(i).cloned().flatten();
    let mut plans = vec![];
    if let Some(t) = &m.ticket {
        plans.push(RoutePlan {
            field: "ticket".into(),
            matches: None,
            sets: rows("ticket", &t.into(), profile(0).as_deref()),
        });
    }
    for (i, r) in m.routes.iter().enumerate() {
        let p: Option<Arc<TicketProfile>> = profile(i + 1);
        plans.push(RoutePlan {
            field: format!("routes[{i}]"),
            matches: Some(matches_text(r)),
            sets: rows(&format!("routes[{i}]"), &r.into(), p.as_deref()),
        });
    }
    mark(&mut plans, &misses);
    let resolved = profiles.iter().all(Option::is_some);
    Ok((plans, resolved))
}
