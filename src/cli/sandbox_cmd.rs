//! `psa-operator sandbox`: serves a PSA emulator until interrupted.
//!
//! The first line on stdout is `listening on http://ADDR`, so scripts, `dev` and tests can read
//! the bound port when `--addr` asks for port 0.

use std::io::Write;

use anyhow::Context;
use tokio::net::TcpListener;

use super::SandboxArgs;
use crate::sandbox::Faults;

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let faults = Faults {
        latency_ms: args.latency_ms,
        ..Faults::default()
    };
    let seed_text = match &args.seed {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read seed {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let shown = args.seed.as_ref().map(|p| p.display().to_string());
    let (running, _) = args
        .flavor
        .start_sandbox(listener, seed_text.as_deref(), faults)
        .await
        .map_err(|e| match &shown {
            Some(path) => anyhow::anyhow!("{path}: {e}"),
            None => anyhow::anyhow!(e),
        })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", running.base_url())?;
    out.flush()?;
    drop(out);
    tracing::info!(addr = %running.addr(), flavor = ?args.flavor, "sandbox serving");
    tokio::select! {
        r = running.wait() => r.context("sandbox server failed"),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
