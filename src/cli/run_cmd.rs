//! `psa-operator run`: the in-cluster operator process.

use std::net::SocketAddr;

use std::time::Duration;

use crate::controller::run::Scope;
use crate::dispatch::store::StoreLocation;
use crate::leader::ElectionTiming;
use crate::operator::{kube_client, run_operator, LeaderElection, OperatorOptions};

use super::RunArgs;

fn parse_addr(flag: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value
        .parse()
        .map_err(|_| anyhow::anyhow!("--{flag}: {value:?} is not an address like 0.0.0.0:8080"))
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let intake_addr = parse_addr("intake-addr", &args.intake_addr)?;
    let metrics_addr = parse_addr("metrics-addr", &args.metrics_addr)?;
    let unresolved_hold = crate::api::parse_duration(&args.unresolved_hold).ok_or_else(|| {
        anyhow::anyhow!(
            "--unresolved-hold: {:?} is not a duration like 15m or 90s",
            args.unresolved_hold
        )
    })?;
    let ready_grace = crate::api::parse_duration(&args.ready_grace).ok_or_else(|| {
        anyhow::anyhow!(
            "--ready-grace: {:?} is not a duration like 30m or 90s",
            args.ready_grace
        )
    })?;
    let store = StoreLocation::parse(&args.store)?;
    let leader_election = leader_election(&args)?;
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let mut opts = OperatorOptions::with_defaults(store, intake_addr, metrics_addr);
    if let Some(name) = args.replica_name.clone().filter(|n| !n.is_empty()) {
        opts.replica = name;
    }
    opts.leader_election = leader_election.map(|mut le| {
        le.identity = opts.replica.clone();
        le
    });
    opts.claim_lease = args.claim_lease.map(Duration::from_secs);
    opts.unresolved_hold = unresolved_hold;
    opts.ready_grace = ready_grace;
    opts.server = args.server_limits();
    opts.scope = match args.namespace {
        Some(ns) => Scope::Namespace(ns),
        None => Scope::All,
    };
    run_operator(client, opts, shutdown_signal()).await
}

/// The election settings from the flags (`None` without `--leader-elect`).
fn leader_election(args: &RunArgs) -> anyhow::Result<Option<LeaderElection>> {
    if !args.leader_elect {
        return Ok(None);
    }
    let timing = ElectionTiming {
        lease_duration: Duration::from_secs(args.leader_lease_duration),
        renew_deadline: Duration::from_secs(args.leader_renew_deadline),
        retry_period: Duration::from_secs(args.leader_retry_period),
    };
    timing.validate().map_err(anyhow::Error::msg)?;
    let namespace = args
        .leader_elect_namespace
        .clone()
        .or_else(|| args.namespace.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--leader-elect needs --leader-elect-namespace (or POD_NAMESPACE, or --namespace)"
            )
        })?;
    Ok(Some(LeaderElection {
        namespace,
        lease_name: args.leader_elect_lease.clone(),
        identity: String::new(),
        timing,
    }))
}
