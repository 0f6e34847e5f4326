//! `psa-operator plan`: for the given YAML, what applying it would do in the PSA — names that
//! resolve or not, catalog services to create/adopt/correct, contract lines to add or change with
//! the billing delta per customer, organizations that fall to the catch-all. Like `terraform
//! plan`: reads only (every client sits behind [`ReadOnlyPsa`](super::read_only::ReadOnlyPsa)).

pub mod engine;
pub mod lifecycle;
pub mod model;
pub mod names;
pub mod render;
pub mod routes;
pub mod sources;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use crate::api::PsaConnection;
use crate::controller::factory::{PsaFactory, RealPsaFactory};
use crate::gitops::args::{OutputFormat, PlanArgs};
use crate::psa::Provider;

use super::credentials::{credentials_for, optional_cluster_client};
use super::offline::{self, OfflinePsa};
use super::read_only::ReadOnlyPsa;
use super::resource_set::{Located, ResourceSet};
use super::validate::{self, validate_paths};
use model::{ConnectionPlan, Plan, Problem, Summary};

/// The provider of a connection spec.
fn provider_of(c: &PsaConnection) -> Option<Provider> {
    c.spec.provider.selected().map(|p| p.provider())
}

fn url_of(c: &PsaConnection) -> String {
    c.spec.provider.url()
}

/// Where to plan a connection: the PSA of its spec, or a sandbox.
pub struct Targets {
    pub offline: Vec<OfflinePsa>,
    pub cluster: Option<kube::Client>,
}

/// Plans every connection of `set` (validated input) against its PSA or sandbox.
pub async fn plan_set(set: &ResourceSet, targets: &Targets) -> Plan {
    let mut plan = Plan::default();
    for conn in &set.connections {
        plan.connections.push(plan_one(conn, set, targets).await);
    }
    plan.summary = summarize(&plan.connections);
    plan
}

async fn plan_one(
    conn: &Located<PsaConnection>,
    set: &ResourceSet,
    targets: &Targets,
) -> ConnectionPlan {
    let provider = provider_of(&conn.obj);
    let mut cp = ConnectionPlan {
        namespace: conn.namespace().to_string(),
        name: conn.name().to_string(),
        provider: provider.map(|p| p.as_str()).unwrap_or("None").to_string(),
        url: url_of(&conn.obj),
        sources: sources::source_plans(&conn.obj.spec.sources),
        ..Default::default()
    };
    let mut spec = conn.obj.spec.provider.clone();
    let mut fallback = None;
    if !targets.offline.is_empty() {
        let Some(off) = targets
            .offline
            .iter()
            .find(|o| Some(o.provider) == provider)
        else {
            cp.error = Some(Problem {
                reason: "NoSandbox".into(),
                message: format!(
                    "planning offline, but no --offline-psa-seed is for {}",
                    cp.provider
                ),
            });
            return cp;
        };
        cp.url = off.sandbox.base_url();
        cp.sandbox_seed = Some(off.seed_file.clone());
        spec.set_url(&cp.url);
        fallback = Some((
            &off.credentials,
            format!("the credentials of seed {}", off.seed_file),
        ));
    }
    let creds = match credentials_for(
        &conn.obj,
        conn.namespace(),
        set,
        targets.cluster.as_ref(),
        fallback.as_ref().map(|(d, s)| (*d, s.as_str())),
    )
    .await
    {
        Ok(c) => c,
        Err(message) => {
            cp.error = Some(Problem {
                reason: "NoCredentials".into(),
                message,
            });
            return cp;
        }
    };
    cp.credentials = creds.source;
    let client = match RealPsaFactory.build(&spec, &creds.data) {
        Ok(c) => c,
        Err(e) => {
            cp.error = Some(Problem {
                reason: e.reason().into(),
                message: e.to_string(),
            });
            return cp;
        }
    };
    let psa = ReadOnlyPsa::new(client);
    let live = match &targets.cluster {
        Some(cluster) => live_state(cluster, conn, set).await,
        None => Default::default(),
    };
    engine::plan_connection(conn, set, &psa, &live, &mut cp).await;
    cp.psa_calls = psa.calls();
    cp
}

/// What the cluster records for the resources of `conn` in the input: the catalog id each
/// ContractService manages (`status.externalId`; such a service is not adopted again) and each
/// CustomerMapping's status (the contract line it wrote and that line's quantity). Resources not
/// in the cluster (or not readable) have none.
async fn live_state(
    cluster: &kube::Client,
    conn: &Located<PsaConnection>,
    set: &ResourceSet,
) -> engine::Live {
    let mut live = engine::Live::default();
    let services: kube::Api<crate::api::ContractService> =
        kube::Api::namespaced(cluster.clone(), conn.namespace());
    for s in set.services_of(conn) {
        let status = live_status(&services, s.name()).await;
        if let Some(id) = status.and_then(|st| st.external_id) {
            live.services.insert(s.name().to_string(), id);
        }
    }
    let mappings: kube::Api<crate::api::CustomerMapping> =
        kube::Api::namespaced(cluster.clone(), conn.namespace());
    for m in set.mappings_of(conn) {
        if let Some(status) = live_status(&mappings, m.name()).await {
            live.mappings.insert(m.name().to_string(), status);
        }
    }
    live
}

/// The status of the live resource `name`; `None` when it is not in the cluster or unreadable.
async fn live_status<K>(api: &kube::Api<K>, name: &str) -> Option<K::Status>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + kube::core::object::HasStatus,
    K::Status: Clone,
{
    match api.get_opt(name).await {
        Ok(found) => found.and_then(|live| live.status().cloned()),
        Err(e) => {
            tracing::debug!(resource = name, error = %e,
                "cannot read the live resource; planning it as unmanaged");
            None
        }
    }
}

/// Totals over the connections.
pub fn summarize(conns: &[ConnectionPlan]) -> Summary {
    use model::{LineAction, ServiceAction};
    let mut s = Summary::default();
    let (mut price, mut cost) = (0i64, 0i64);
    for c in conns {
        s.problems += usize::from(c.error.is_some());
        s.problems += c.names.iter().filter(|n| n.resolves == Some(false)).count();
        let route_rows = c
            .routes
            .iter()
            .chain(c.customers.iter().flat_map(|m| &m.ticket));
        s.problems += route_rows
            .flat_map(|r| &r.sets)
            .filter(|n| n.resolves == Some(false))
            .count();
        s.problems += c.catch_all.len();
        s.problems += c.sources.iter().filter(|p| !p.problems.is_empty()).count();
        for svc in &c.catalog {
            match svc.action {
                ServiceAction::Create => s.services_to_create += 1,
                ServiceAction::Correct => s.services_to_correct += 1,
                ServiceAction::Adopt => s.services_to_adopt += 1,
                ServiceAction::Invalid => s.problems += 1,
                ServiceAction::InStep => {}
            }
        }
        for cust in &c.customers {
            let Some(line) = &cust.line else { continue };
            match line.action {
                LineAction::Add => s.lines_to_add += 1,
                LineAction::Update => s.lines_to_change += 1,
                LineAction::Blocked => s.problems += 1,
                LineAction::Adopt => s.lines_to_adopt += 1,
                LineAction::InStep => {}
            }
            if let Some(d) = &line.delta {
                price = price.saturating_add(d.price.minor);
                cost = cost.saturating_add(d.cost.minor);
            }
        }
        s.psa_reads += c.psa_calls.values().sum::<u64>();
    }
    s.price_delta = model::signed(price);
    s.cost_delta = model::signed(cost);
    s
}

async fn execute(args: &PlanArgs, code: &AtomicI32) -> anyhow::Result<()> {
    let v = validate_paths(&args.paths);
    if !v.is_valid() {
        let mut err = std::io::stderr();
        validate::render(&v, OutputFormat::Text, &mut err)?;
        anyhow::bail!("the input is not valid; nothing was planned");
    }
    let mut targets = Targets {
        offline: vec![],
        cluster: None,
    };
    for seed in &args.offline_psa_seed {
        targets
            .offline
            .push(offline::start(seed).await.map_err(anyhow::Error::msg)?);
    }
    targets.cluster = optional_cluster_client(args.kubeconfig.as_deref()).await?;
    let plan = plan_set(&v.set, &targets).await;
    // Known before the output is written, so a reader that stops early (`| head`) keeps it.
    code.store(exit_code(&plan, args.detailed_exitcode), Ordering::SeqCst);
    let mut out = std::io::stdout().lock();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &plan)?;
            use std::io::Write;
            writeln!(out)?;
        }
        OutputFormat::Text => render::write(&plan, &mut out)?,
    }
    Ok(())
}

/// 1 with problems; with `--detailed-exitcode` 2 for changes; else 0.
fn exit_code(plan: &Plan, detailed: bool) -> i32 {
    if plan.summary.problems > 0 {
        1
    } else if detailed && plan.summary.has_changes() {
        2
    } else {
        0
    }
}

/// The subcommand: 0 when the plan has no problem, 1 when something does not resolve or the
/// input is invalid, 2 for changes with `--detailed-exitcode`.
pub fn run(args: PlanArgs) -> i32 {
    let code = Arc::new(AtomicI32::new(0));
    let c = code.clone();
    match crate::cli::block_on(async move { execute(&args, &c).await }) {
        0 => code.load(Ordering::SeqCst),
        rc => rc,
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::summarize;
    use crate::psa::LineValues;

    fn line(action: LineAction, before: Option<(i64, i64)>, after: (i64, i64)) -> LinePlanReport {
        let b = |(q, p): (i64, i64)| {
            Billing::of(LineValues {
                quantity: q,
                cost: 10_000,
                price: p,
            })
        };
        let before = before.map(b);
        let after = b(after);
        LinePlanReport {
            service: "S".into(),
            action,
            delta: Some(BillingDelta::between(before.as_ref(), &after)),
            before,
            after: Some(after),
            note: None,
        }
    }

    fn customer(l: Option<LinePlanReport>, routed: bool) -> CustomerPlan {
        CustomerPlan {
            mapping: "m".into(),
            organization: "o".into(),
            company: Resolution {
                wanted: "c".into(),
                id: None,
                found: None,
                problem: None,
            },
            contact: None,
            contract: None,
            line: l,
            routed,
            ticket: vec![],
        }
    }

    #[test]
    fn totals_count_changes_problems_and_billing() {
        let a = ConnectionPlan {
            customers: vec![
                customer(Some(line(LineAction::Add, None, (10, 30_000))), true),
                customer(
                    Some(line(LineAction::Update, Some((12, 30_000)), (10, 30_000))),
                    true,
                ),
                customer(Some(line(LineAction::InStep, Some((5, 1)), (5, 1))), true),
                customer(None, false),
            ],
            catch_all: vec![CatchAllEntry {
                organization: "o".into(),
                mapping: "m".into(),
                reason: "no company".into(),
            }],
            names: vec![NameCheck {
                field: "ticket.board".into(),
                value: "B".into(),
                resolves: Some(false),
                id: None,
                problem: Some("not found".into()),
            }],
            psa_calls: [("boards".to_string(), 2u64)].into_iter().collect(),
            ..Default::default()
        };
        let b = ConnectionPlan {
            error: Some(Problem {
                reason: "AuthenticationFailed".into(),
                message: "refused".into(),
            }),
            ..Default::default()
        };
        let s = summarize(&[a, b]);
        assert_eq!((s.lines_to_add, s.lines_to_change), (1, 1));
        // +30.00 for the new line, -6.00 for two users fewer; cost +10.00 and -2.00.
        assert_eq!(
            (s.price_delta.as_str(), s.cost_delta.as_str()),
            ("+24.00", "+8.00")
        );
        assert_eq!(s.problems, 3, "unresolved name, catch-all, unreachable PSA");
        assert_eq!(s.psa_reads, 2);
        assert!(s.has_changes());
    }
}
