//! `psa-operator bench <name>`: benchmarks that print one JSON object with their figures and
//! the machine's core count. Sizes have defaults matching the project's targets and flags to
//! scale them (see `docs/benchmarks.md`).
//!
//! | name              | what it measures                                                    |
//! |-------------------|---------------------------------------------------------------------|
//! | `intake`          | alerts/s accepted durably, single and batched, vs. Alertmanager      |
//! | `calls-per-alert` | PSA calls per alert scenario, ConnectWise and Kaseya BMS             |
//! | `e2e-latency`     | accepted → ticket visible in the sandbox at a steady rate            |
//! | `convergence`     | CustomerMappings applied → all Ready: wall time and PSA calls        |
//! | `memory`          | operator RSS with many mappings and stored events                    |

pub mod alertmanager;
pub mod calls;
pub mod convergence;
pub mod env;
pub mod fit;
pub mod intake;
pub mod latency;
pub mod manifests;
pub mod memory;
pub mod stats;
pub mod throughput;

use std::path::PathBuf;

use serde_json::{json, Value};

/// The arguments of `psa-operator bench` (the CLI's `Command` embeds them).
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Benchmark name: intake, calls-per-alert, e2e-latency, convergence, memory.
    pub name: String,
    /// Print JSON (the default output is JSON as well; kept for scripts).
    #[arg(long)]
    pub json: bool,
    /// intake: alerts per mode (default 2000); e2e-latency: alerts sent (default 500).
    #[arg(long)]
    pub alerts: Option<usize>,
    /// intake: concurrent HTTP clients (default 8).
    #[arg(long)]
    pub clients: Option<usize>,
    /// intake: alerts per request in the batch mode (default 100, the intake's maximum).
    #[arg(long)]
    pub batch: Option<usize>,
    /// intake: rounds per mode, ours and Alertmanager's alternated; the median is reported
    /// (default 3).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// calls-per-alert: size of the bursts (default 100).
    #[arg(long)]
    pub burst: Option<usize>,
    /// convergence (default 1000) and memory (default 10000): CustomerMappings applied. A
    /// comma-separated list (`1000,3000,10000`) measures each size and fits the growth.
    #[arg(long, value_delimiter = ',')]
    pub mappings: Vec<usize>,
    /// convergence: the PSA sandbox, `connectWise` (default), `kaseyaBms` or `autotask`.
    #[arg(long)]
    pub provider: Option<String>,
    /// memory: events stored before RSS is read (default 100000).
    #[arg(long)]
    pub events: Option<usize>,
    /// e2e-latency: alerts per second (default 100).
    #[arg(long)]
    pub rate: Option<usize>,
    /// e2e-latency: latency the sandbox adds to every PSA call, in ms (default 50).
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// intake: also measure a PostgreSQL store (postgres://…), reported beside SQLite's. Each
    /// run uses a connection name of its own, so a database can be reused.
    #[arg(long, env = "PSA_BENCH_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// intake: the Alertmanager binary to compare with.
    #[arg(long, default_value = "/usr/bin/prometheus-alertmanager")]
    pub alertmanager: PathBuf,
}

/// Every benchmark's name, as the command line takes it.
pub const NAMES: [&str; 5] = [
    "intake",
    "calls-per-alert",
    "e2e-latency",
    "convergence",
    "memory",
];

/// Runs one benchmark and returns its figures (without the machine fields).
pub async fn run_named(args: &BenchArgs) -> anyhow::Result<Value> {
    match args.name.as_str() {
        "intake" => intake::run(args).await,
        "calls-per-alert" => calls::run(args).await,
        "e2e-latency" => latency::run(args).await,
        "convergence" => convergence::run(args).await,
        "memory" => memory::run(args).await,
        other => anyhow::bail!("unknown benchmark {other:?}; one of: {}", NAMES.join(", ")),
    }
}

/// Adds the benchmark's name and the machine's core count to its figures.
pub fn with_machine(name: &str, figures: Value) -> Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut out = json!({"benchmark": name, "cores": cores});
    if let (Some(o), Value::Object(f)) = (out.as_object_mut(), figures) {
        o.extend(f);
    }
    out
}

/// `psa-operator bench`: prints one JSON object on stdout; exit 1 with the reason on stderr.
pub fn run(args: BenchArgs) -> i32 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("psa-operator bench: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run_named(&args)) {
        Ok(figures) => {
            println!("{}", with_machine(&args.name, figures));
            0
        }
        Err(e) => {
            eprintln!("psa-operator bench {}: {e:#}", args.name);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_fields_come_first_and_figures_are_kept() {
        let v = with_machine("intake", json!({"ratio": 1.5}));
        assert_eq!(v["benchmark"], "intake");
        assert!(v["cores"].as_u64().unwrap() >= 1);
        assert_eq!(v["ratio"], 1.5);
    }
}
