//! Command-line interface: argument types and the dispatch to each subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[cfg(feature = "dev-tools")]
pub use crate::bench::BenchArgs;
pub use crate::gitops::args::{ImportArgs, OutputFormat, PlanArgs, ValidateArgs};

/// Exit code of a subcommand whose issue has not landed yet.
pub const EXIT_NOT_AVAILABLE: i32 = 2;

/// Declarative security-alert → PSA-ticket integration for ConnectWise PSA, Kaseya BMS and Autotask.
#[derive(Parser, Debug)]
#[command(name = "psa-operator", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator: reconcilers, ticket dispatcher and intake (the in-cluster process).
    Run(RunArgs),
    /// Start everything on this machine: embedded Kubernetes API server, PSA sandboxes, operator, intake.
    #[cfg(feature = "dev-tools")]
    Dev(DevArgs),
    /// Run only the embedded Kubernetes API server (for tests and experiments).
    #[cfg(feature = "dev-tools")]
    Devcluster(DevclusterArgs),
    /// Run a stateful PSA sandbox (a ConnectWise, Kaseya BMS or Autotask emulator) seeded with demo data.
    #[cfg(feature = "dev-tools")]
    Sandbox(SandboxArgs),
    /// Print the CustomResourceDefinitions as multi-document YAML.
    Crd,
    /// Validate resource YAML offline (schemas, CEL rules, cross-references).
    Validate(ValidateArgs),
    /// Show what applying the given YAML would do in the live PSA (read-only).
    Plan(PlanArgs),
    /// Write CustomerMapping scaffolds for PSA companies not yet mapped.
    Import(ImportArgs),
    /// Send a sample alert through a connection, as the wizards' "Send Sample" button does.
    SendSample(SendSampleArgs),
    /// Re-queue dead-lettered events of a connection for delivery.
    Replay(ReplayArgs),
    /// Run a benchmark and print one JSON object with the figures.
    #[cfg(feature = "dev-tools")]
    Bench(BenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Kubeconfig file (default: in-cluster config or $KUBECONFIG).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace.
    #[arg(long, short = 'n', conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Watch all namespaces (the default when --namespace is absent).
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// Store of the event queue, grouping index and dead letters: a file path or
    /// sqlite:///path (one replica), or postgres://user@host/db?sslmode=verify-full (shared by
    /// several replicas; the password from PGPASSWORD or the URL, e.g. a Secret in PSA_STORE).
    #[arg(
        long,
        env = "PSA_STORE",
        hide_env_values = true,
        default_value = "psa-operator.db"
    )]
    pub store: String,
    /// Listen address of the alert intake.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub intake_addr: String,
    /// Listen address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_addr: String,
    /// How long events are held while their connection's settings do not resolve, or while
    /// their organization's CustomerMapping is not Ready, before they become dead letters and
    /// go out by failsafe e-mail (e.g. 15m, 90s).
    #[arg(long, env = "PSA_UNRESOLVED_HOLD", default_value = "15m")]
    pub unresolved_hold: String,
    /// How long a PSA outage keeps each resource's Ready condition as last known (Synced=False
    /// says the PSA is unreachable) before Ready becomes Unknown (e.g. 30m).
    #[arg(long, env = "PSA_READY_GRACE", default_value = "30m")]
    pub ready_grace: String,
    /// Elect one leader among the replicas (a coordination.k8s.io Lease): only the leader
    /// writes statuses and PSA objects; every replica serves the intake and dispatches.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (default: the pod's namespace from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_elect_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(long, default_value = "psa-operator-leader")]
    pub leader_elect_lease: String,
    /// This replica's name in the Lease and in lane claims (default: the pod name, HOSTNAME).
    #[arg(long, env = "POD_NAME")]
    pub replica_name: Option<String>,
    /// Seconds a leader record stays valid without renewal.
    #[arg(long, default_value_t = 15)]
    pub leader_lease_duration: u64,
    /// Seconds after which a leader that cannot renew steps down (below the lease duration).
    #[arg(long, default_value_t = 10)]
    pub leader_renew_deadline: u64,
    /// Seconds between renewals / attempts.
    #[arg(long, default_value_t = 2)]
    pub leader_retry_period: u64,
    /// Seconds a replica's claim on a lane lasts: after a replica dies, its lanes move to
    /// another replica once this has passed (the marker lookup prevents a second ticket).
    #[arg(long)]
    pub claim_lease: Option<u64>,
    /// Seconds a client may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout_secs: u64,
    /// Seconds a whole request (body included) may take; slower ones get 408.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// Most open connections per listener (intake, metrics); further ones get 503. Keep it
    /// well under the process's file limit.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_connections: u64,
}

impl RunArgs {
    /// The connection limits of the intake and metrics listeners.
    pub fn server_limits(&self) -> crate::dispatch::intake::server::ServerLimits {
        crate::dispatch::intake::server::ServerLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            max_connections: self.max_connections as usize,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Directory for the kubeconfig, store and API-server snapshot.
    #[arg(long, default_value = ".psa-dev")]
    pub state_dir: PathBuf,
    /// Port of the embedded Kubernetes API server.
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Port of the alert intake.
    #[arg(long, default_value_t = 8080)]
    pub intake_port: u16,
    /// Port of /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = 9090)]
    pub metrics_port: u16,
    /// `--connectwise-port`, `--bms-port`, …: one per PSA.
    #[command(flatten)]
    pub sandbox_ports: SandboxPorts,
    /// Do not start anything: print the samples (--samples) with the addresses of the `dev`
    /// running on --state-dir, Secrets first, ready for `kubectl apply -f -`.
    #[arg(long)]
    pub print_samples: bool,
    /// Directory of the sample resources --print-samples reads.
    #[arg(long, default_value = "config/samples", requires = "print_samples")]
    pub samples: PathBuf,
}

/// The port of each PSA's sandbox in `dev`: an option per PSA (`--connectwise-port`, …), named
/// and defaulted by the provider list (`crate::providers`), so a new PSA brings its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPorts(pub Vec<(crate::psa::Provider, u16)>);

impl clap::FromArgMatches for SandboxPorts {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let ports = crate::psa::Provider::ALL.map(|p| {
            let port = matches.get_one::<u16>(p.dev_port_option()).copied();
            (p, port.unwrap_or(p.dev_port()))
        });
        Ok(SandboxPorts(ports.to_vec()))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for SandboxPorts {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        crate::psa::Provider::ALL.into_iter().fold(cmd, |cmd, p| {
            cmd.arg(
                clap::Arg::new(p.dev_port_option())
                    .long(p.dev_port_option())
                    .value_name("PORT")
                    .value_parser(clap::value_parser!(u16))
                    .help(format!(
                        "Port of the {} sandbox (the samples use {})",
                        p.display_name(),
                        p.dev_port()
                    )),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Args, Debug, Clone)]
pub struct DevclusterArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub addr: String,
    /// Persist the object store as a snapshot in this directory.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Write a kubeconfig pointing at this server to this file.
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// Serve https with a generated CA and require a bearer token (needed for non-loopback
    /// addresses; the kubeconfig carries both).
    #[arg(long)]
    pub tls: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Which PSA to emulate.
    #[arg(long, value_enum)]
    pub flavor: crate::psa::Provider,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: String,
    /// Seed YAML (default: the built-in demo data).
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

/// What `send-sample` sends.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SampleKind {
    /// A SaaS-alert style alert (`/alerts`).
    #[default]
    Alert,
    /// A new finding (`/findings`).
    Finding,
}

#[derive(Args, Debug, Clone)]
pub struct SendSampleArgs {
    /// Namespace of the connection.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Name of the PsaConnection.
    #[arg(long)]
    pub connection: String,
    /// Organization to simulate the event from ("Simulate from").
    #[arg(long, default_value = "Contoso Ltd")]
    pub organization: String,
    /// User the sample alert is about (an e-mail finds the PSA contact).
    #[arg(long, default_value = "jane@contoso.example")]
    pub user: String,
    /// Kind of sample event.
    #[arg(long, value_enum, default_value_t = SampleKind::Alert)]
    pub kind: SampleKind,
    /// Base URL of the intake.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub intake_url: String,
    /// Intake token (default: read from the connection's intake Secret).
    #[arg(long, env = "PSA_INTAKE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Kubeconfig used to read the connection and its Secret when --token is absent.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Deliver this sample even while the connection is suspended (spec.suspend: true): try a
    /// new integration, see its ticket, then enable it. Only the sample goes out; alerts held
    /// by the suspension stay held until it ends.
    #[arg(long)]
    pub even_if_suspended: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Store of the operator: a file path, sqlite:///path or postgres://… (as `run --store`).
    #[arg(long, env = "PSA_STORE", hide_env_values = true)]
    pub store: String,
    /// Namespace/name of the connection (all when absent).
    #[arg(long)]
    pub connection: Option<String>,
}

pub mod replay;
pub mod run_cmd;

#[cfg(feature = "dev-tools")]
impl DevArgs {
    pub fn settings(&self) -> crate::dev::DevSettings {
        crate::dev::DevSettings {
            state_dir: self.state_dir.clone(),
            api_port: self.api_port,
            intake_port: self.intake_port,
            metrics_port: self.metrics_port,
            sandbox_ports: self.sandbox_ports.0.clone(),
        }
    }
}
#[cfg(feature = "dev-tools")]
pub mod sandbox_cmd;
pub mod send_sample;

/// Logs to stderr; `RUST_LOG` overrides the default level (info). `PSA_LOG_FORMAT=json` for JSON.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_runtime=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("PSA_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs an async subcommand on a multi-threaded runtime; errors print as one line, exit 1.
pub fn block_on(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => 0,
        // `psa-operator plan -o json | head`: the reader has what it wanted; say nothing.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Whether `e` is a write to a closed pipe (the reader of our standard output went away).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to standard output; a closed pipe is not an error (exit quietly).
pub fn print_stdout(text: &str) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            1
        }
    }
}

#[cfg(test)]
mod pipe_tests {
    use super::is_broken_pipe;

    #[test]
    fn broken_pipes_are_recognised_through_context_and_serde() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::from(io).context("writing the plan");
        assert!(is_broken_pipe(&e));
        let json = serde_json::Error::io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&anyhow::Error::from(json)));
        assert!(!is_broken_pipe(&anyhow::anyhow!("PSA refused")));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&anyhow::Error::from(other)));
    }
}
