use clap::Parser;
use psa_operator::cli::{Cli, Command};

/// `psa-operator devcluster`: serve until Ctrl-C, then save the snapshot.
#[cfg(feature = "dev-tools")]
fn run_devcluster(args: psa_operator::cli::DevclusterArgs) -> i32 {
    use psa_operator::devcluster::{Config, DevCluster};
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("psa-operator devcluster: cannot start the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&args.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "psa-operator devcluster: cannot listen on {}: {e}",
                    args.addr
                );
                return 1;
            }
        };
        let config = Config {
            state_dir: args.state_dir.clone(),
            tls: args.tls,
        };
        let cluster = match DevCluster::start(listener, config).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("psa-operator devcluster: {e}");
                return 1;
            }
        };
        println!("listening on {}", cluster.url());
        if let Some(path) = &args.kubeconfig_out {
            if let Err(e) = cluster.write_kubeconfig(path) {
                eprintln!("psa-operator devcluster: {e}");
                return 1;
            }
            eprintln!("kubeconfig written to {}", path.display());
        }
        let _ = tokio::signal::ctrl_c().await;
        match cluster.shutdown().await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("psa-operator devcluster: {e}");
                1
            }
        }
    })
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Crd => {
            psa_operator::cli::print_stdout(&psa_operator::api::crdgen::all_crds_yaml())
        }
        Command::Run(args) => {
            psa_operator::cli::init_logging();
            psa_operator::cli::block_on(psa_operator::cli::run_cmd::run(args))
        }
        #[cfg(feature = "dev-tools")]
        Command::Dev(args) if args.print_samples => {
            match psa_operator::dev::print_samples(&args.state_dir, &args.samples) {
                Ok(text) => {
                    print!("{text}");
                    0
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            }
        }
        #[cfg(feature = "dev-tools")]
        Command::Dev(args) => {
            psa_operator::cli::init_logging();
            psa_operator::cli::block_on(psa_operator::dev::run_dev(
                args.settings(),
                psa_operator::cli::run_cmd::shutdown_signal(),
            ))
        }
        #[cfg(feature = "dev-tools")]
        Command::Devcluster(args) => run_devcluster(args),
        #[cfg(feature = "dev-tools")]
        Command::Sandbox(args) => {
            psa_operator::cli::init_logging();
            psa_operator::cli::block_on(psa_operator::cli::sandbox_cmd::run(args))
        }
        Command::Validate(args) => psa_operator::gitops::validate::run(&args),
        Command::Plan(args) => psa_operator::gitops::plan::run(args),
        Command::Import(args) => psa_operator::gitops::import::run(args),
        Command::SendSample(args) => {
            psa_operator::cli::block_on(psa_operator::cli::send_sample::run(args))
        }
        Command::Replay(args) => psa_operator::cli::block_on(psa_operator::cli::replay::run(args)),
        #[cfg(feature = "dev-tools")]
        Command::Bench(args) => psa_operator::bench::run(args),
    };
    std::process::exit(code);
}
