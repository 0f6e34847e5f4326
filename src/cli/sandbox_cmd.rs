//! `psa-operator sandbox`: serves a PSA emulator until interrupted.
//!
//! The first line on stdout is `listening on http://ADDR`, so scripts, `dev` and tests can read
//! the bound port when `--addr` asks for port 0.

use std::io::Write;

use anyhow::Context;
use tokio::net::TcpListener;

use super::{SandboxArgs, SandboxProvider};
use crate::sandbox::{self, Faults};

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let faults = Faults {
        latency_ms: args.latency_ms,
        ..Faults::default()
    };
    let running = match args.flavor {
        SandboxProvider::Connectwise => {
            let seed = match &args.seed {
                Some(path) => sandbox::connectwise::load_seed(path).map_err(anyhow::Error::msg)?,
                None => sandbox::connectwise::demo_seed(),
            };
            sandbox::connectwise::start(listener, seed, faults).await?
        }
        SandboxProvider::Bms => {
            let seed = match &args.seed {
                Some(path) => sandbox::bms::load_seed(path).map_err(anyhow::Error::msg)?,
                None => sandbox::bms::demo_seed(),
            };
            sandbox::bms::start(listener, seed, faults).await?
        }
        SandboxProvider::Autotask => {
            let seed = match &args.seed {
                Some(path) => sandbox::autotask::load_seed(path).map_err(anyhow::Error::msg)?,
                None => sandbox::autotask::demo_seed(),
            };
            sandbox::autotask::start(listener, seed, faults).await?
        }
    };
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
