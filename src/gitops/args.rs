//! The arguments of `validate`, `plan` and `import` (the CLI's `Command` embeds them).

use std::path::PathBuf;

use clap::Args;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Files or directories of YAML; `-` reads standard input.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Files or directories of YAML; `-` reads standard input.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Kubeconfig to read referenced Secrets and live resources from (default: $KUBECONFIG;
    /// neither: no cluster is read).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Plan against a sandbox seeded from this file instead of the live PSA; repeat it for a
    /// ConnectWise and a Kaseya BMS seed.
    #[arg(long)]
    pub offline_psa_seed: Vec<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Exit 2 when the plan has changes and no problem (0: nothing to change, 1: problems).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// PsaConnection YAML to import from.
    #[arg(long)]
    pub connection_file: PathBuf,
    /// Only companies of this type.
    #[arg(long)]
    pub filter_type: Option<String>,
    /// Only parent companies.
    #[arg(long)]
    pub parent_only: bool,
    /// Kubeconfig to read the credentials Secret from (default: $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// YAML with the credentials Secret (instead of reading it from the cluster).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Files or directories with the CustomerMappings already in git; their companies are skipped.
    #[arg(long)]
    pub existing: Vec<PathBuf>,
    /// Write one file per scaffold into this directory (existing files are left alone)
    /// instead of printing them.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}
