//! `psa-operator run`: the in-cluster operator process.

use std::net::SocketAddr;

use crate::controller::run::Scope;
use crate::operator::{kube_client, run_operator, OperatorOptions};

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
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let mut opts = OperatorOptions::with_defaults(args.store.clone(), intake_addr, metrics_addr);
    opts.server = args.server_limits();
    opts.scope = match args.namespace {
        Some(ns) => Scope::Namespace(ns),
        None => Scope::All,
    };
    run_operator(client, opts, shutdown_signal()).await
}
