use clap::Parser;
use psa_operator::cli::{Cli, Command, EXIT_NOT_AVAILABLE};

fn not_available(name: &str) -> i32 {
    eprintln!("psa-operator {name}: not available yet in this build");
    EXIT_NOT_AVAILABLE
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Crd => {
            print!("{}", psa_operator::api::crdgen::all_crds_yaml());
            0
        }
        Command::Run(args) => {
            psa_operator::cli::init_logging();
            psa_operator::cli::block_on(psa_operator::cli::run_cmd::run(args))
        }
        Command::Dev(_) => not_available("dev"),
        Command::Devcluster(_) => not_available("devcluster"),
        Command::Sandbox(_) => not_available("sandbox"),
        Command::Validate(_) => not_available("validate"),
        Command::Plan(_) => not_available("plan"),
        Command::Import(_) => not_available("import"),
        Command::SendSample(_) => not_available("send-sample"),
        Command::Replay(_) => not_available("replay"),
        Command::Bench(_) => not_available("bench"),
    };
    std::process::exit(code);
}
