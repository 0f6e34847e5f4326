//! The plan as a table for people (pull-request comments, terminals).

use std::io::{self, Write};

use super::model::*;

fn resolution(label: &str, r: &Resolution) -> String {
    match (&r.found, &r.id, &r.problem) {
        (_, _, Some(p)) => format!("{label} {}: {p}", r.wanted),
        (Some(f), Some(id), None) => format!("{label} {f:?} (id {id})"),
        _ => format!("{label} {}", r.wanted),
    }
}

fn line_text(l: &LinePlanReport) -> String {
    let money = |b: &Option<Billing>, f: fn(&Billing) -> &str| {
        b.as_ref()
            .map(|b| f(b).to_string())
            .unwrap_or("0.00".into())
    };
    let after_q = l.after.as_ref().map(|a| a.quantity).unwrap_or_default();
    let amounts = |d: &BillingDelta| {
        format!(
            "price {} -> {} ({}), cost {} -> {} ({})",
            money(&l.before, |b| b.price.as_str()),
            money(&l.after, |b| b.price.as_str()),
            d.price,
            money(&l.before, |b| b.cost.as_str()),
            money(&l.after, |b| b.cost.as_str()),
            d.cost
        )
    };
    let note = l
        .note
        .as_ref()
        .map(|n| format!(" [{n}]"))
        .unwrap_or_default();
    match (&l.action, &l.delta) {
        (LineAction::Add, Some(d)) => format!(
            "+ add line {:?} x {after_q}: {}{note}",
            l.service,
            amounts(d)
        ),
        (LineAction::Update, Some(d)) => format!(
            "~ change line {:?} quantity {} -> {after_q}: {}{note}",
            l.service,
            l.before.as_ref().map(|b| b.quantity).unwrap_or_default(),
            amounts(d)
        ),
        (LineAction::InStep, _) => format!(
            "= line {:?} x {after_q} in step (price {}, cost {})",
            l.service,
            money(&l.after, |b| b.price.as_str()),
            money(&l.after, |b| b.cost.as_str())
        ),
        (LineAction::Adopt, Some(d)) => format!(
            "> adopt line {:?} x {after_q}: {}{note}",
            l.service,
            amounts(d)
        ),
        _ => format!("! line {:?}{note}", l.service),
    }
}

fn connection(c: &ConnectionPlan, out: &mut dyn Write) -> io::Result<()> {
    let ns = if c.namespace.is_empty() {
        String::new()
    } else {
        format!("{}/", c.namespace)
    };
    let target = match &c.sandbox_seed {
        Some(seed) => format!("a sandbox seeded from {seed}"),
        None => c.url.clone(),
    };
    writeln!(
        out,
        "PsaConnection {ns}{} ({} at {target})",
        c.name, c.provider
    )?;
    if !c.credentials.is_empty() {
        writeln!(out, "  credentials: {}", c.credentials)?;
    }
    if let Some(e) = &c.error {
        writeln!(out, "  ! {}: {}", e.reason, e.message)?;
    }
    if !c.names.is_empty() {
        writeln!(out, "  PSA names:")?;
        let w = c.names.iter().map(|n| n.field.len()).max().unwrap_or(0);
        for n in &c.names {
            let (mark, tail) = match (n.resolves, &n.id, &n.problem) {
                (Some(true), Some(id), _) => ("ok", format!("id {id}")),
                (Some(true), None, _) => ("ok", String::new()),
                (_, _, Some(p)) if n.resolves.is_none() => ("--", p.clone()),
                (_, _, p) => ("MISS", p.clone().unwrap_or_default()),
            };
            writeln!(out, "    {mark:<4} {:<w$}  {:?}  {tail}", n.field, n.value)?;
        }
    }
    if !c.routes.is_empty() {
        writeln!(out, "  Routes (first match wins, after a mapping's own):")?;
        route_rows(&c.routes, "    ", out)?;
    }
    if !c.sources.is_empty() {
        writeln!(out, "  Intake sources:")?;
        for s in &c.sources {
            let mark = if s.problems.is_empty() { "ok" } else { "!" };
            let types = if s.cloud_event_types.is_empty() {
                String::new()
            } else {
                format!(", CloudEvents {}", s.cloud_event_types.join(" "))
            };
            writeln!(
                out,
                "    {mark:<4} {}  signature {}{types}",
                s.path, s.signature
            )?;
            for p in &s.problems {
                writeln!(out, "         ! {p}")?;
            }
        }
    }
    if !c.catalog.is_empty() {
        writeln!(out, "  Catalog services:")?;
        for s in &c.catalog {
            let id =
                s.id.as_ref()
                    .map(|i| format!(" (id {i})"))
                    .unwrap_or_default();
            let changes: Vec<String> = s
                .changes
                .iter()
                .map(|f| match s.action {
                    ServiceAction::Create => format!("{} {:?}", f.field, f.to),
                    _ => format!("{} {:?} -> {:?}", f.field, f.from, f.to),
                })
                .collect();
            let (mark, verb) = match s.action {
                ServiceAction::Create => ("+", "create"),
                ServiceAction::Correct => ("~", "correct"),
                ServiceAction::Adopt => ("=", "adopt"),
                ServiceAction::InStep => (" ", "in step"),
                ServiceAction::Invalid => ("!", "invalid"),
            };
            write!(
                out,
                "    {mark} {verb} {:?}{id} for ContractService {}",
                s.service, s.resource
            )?;
            if !changes.is_empty() {
                write!(out, ": {}", changes.join(", "))?;
            }
            if let Some(p) = &s.problem {
                write!(out, ": {p}")?;
            }
            writeln!(out)?;
        }
    }
    if !c.customers.is_empty() {
        writeln!(out, "  Customers:")?;
        for m in &c.customers {
            let mut parts = vec![resolution("company", &m.company)];
            parts.extend(m.contact.as_ref().map(|r| resolution("contact", r)));
            parts.extend(m.contract.as_ref().map(|r| resolution("contract", r)));
            let mark = if m.routed { " " } else { "!" };
            writeln!(
                out,
                "    {mark} {} (organization {:?}): {}",
                m.mapping,
                m.organization,
                parts.join(", ")
            )?;
            if let Some(l) = &m.line {
                writeln!(out, "        {}", line_text(l))?;
            }
            route_rows(&m.ticket, "        ", out)?;
        }
    }
    if !c.catch_all.is_empty() {
        writeln!(out, "  Falling to the catch-all company:")?;
        for e in &c.catch_all {
            writeln!(
                out,
                "    ! organization {:?} (mapping {}): {}",
                e.organization, e.mapping, e.reason
            )?;
        }
    }
    if c.error.is_none() {
        let unmapped = match c.account_mapping.as_str() {
            "ByCompanyName" => "matched to a company of the same name, else the catch-all",
            "ByCompanyIdentifier" => {
                "matched to a company with that identifier, else the catch-all"
            }
            _ => "sent to the catch-all company",
        };
        writeln!(
            out,
            "  Organizations without a mapping are {unmapped} (accountMapping {}).",
            c.account_mapping
        )?;
        let hold = match &c.unresolved_hold {
            Some(h) => format!("{h} (spec.dispatch.unresolvedHold)"),
            None => "the operator's --unresolved-hold (default 15m)".into(),
        };
        writeln!(
            out,
            "  Alerts of organizations whose mapping does not resolve wait {hold}, then go to the failsafe e-mail."
        )?;
        for line in &c.behaviour {
            writeln!(out, "  {line}")?;
        }
    }
    let reads: u64 = c.psa_calls.values().sum();
    if reads > 0 {
        let by: Vec<String> = c
            .psa_calls
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(out, "  PSA reads: {reads} ({})", by.join(", "))?;
    }
    Ok(())
}

/// Writes the plan; the last line is the summary.
pub fn write(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    for c in &plan.connections {
        connection(c, out)?;
        writeln!(out)?;
    }
    let s = &plan.summary;
    writeln!(
        out,
        "Plan: {} catalog service(s) to create, {} to correct, {} to adopt; {} contract line(s) to add, {} to change, {} to adopt; \
         billing per period: price {}, cost {}; {} problem(s); {} PSA read(s), no writes.",
        s.services_to_create,
        s.services_to_correct,
        s.services_to_adopt,
        s.lines_to_add,
        s.lines_to_change,
        s.lines_to_adopt,
        s.price_delta,
        s.cost_delta,
        s.problems,
        s.psa_reads
    )
}

/// A route or a mapping's overrides: what it matches, then each name it sets.
fn route_rows(plans: &[RoutePlan], indent: &str, out: &mut dyn Write) -> io::Result<()> {
    for r in plans {
        match &r.matches {
            Some(m) => writeln!(out, "{indent}{} when {m}:", r.field)?,
            None => writeln!(out, "{indent}{} (this customer's tickets):", r.field)?,
        }
        for n in &r.sets {
            let (mark, tail) = match (n.resolves, &n.id, &n.problem) {
                (Some(false), _, p) => ("MISS", p.clone().unwrap_or_default()),
                (_, Some(id), _) => ("ok", format!("id {id}")),
                (Some(true), None, _) => ("ok", String::new()),
                (None, _, _) => (
                    "--",
                    "not used: another name of this route does not resolve".into(),
                ),
            };
            let field = n.field.rsplit('.').next().unwrap_or(&n.field);
            writeln!(out, "{indent}  {mark:<4} {field:<15} {:?}  {tail}", n.value)?;
        }
    }
    Ok(())
}
