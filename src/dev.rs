//! `psa-operator dev`: everything on one machine — the embedded Kubernetes API server with our
//! CRDs, ConnectWise, Kaseya BMS and Autotask sandboxes seeded with the demo data `config/samples/` uses,
//! and the operator (reconcilers, dispatcher, intake) pointed at them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::api::crdgen::all_crds_yaml;
use crate::devcluster::{self, DevCluster};
use crate::operator::{kube_client, run_operator, OperatorOptions};
use crate::sandbox::{self, RunningSandbox};

/// Ports and paths of a dev environment.
#[derive(Clone, Debug)]
pub struct DevSettings {
    pub state_dir: PathBuf,
    pub api_port: u16,
    pub intake_port: u16,
    pub metrics_port: u16,
    pub connectwise_port: u16,
    pub bms_port: u16,
    pub autotask_port: u16,
}

/// The running parts (for tests that start `dev` in-process).
pub struct DevEnvironment {
    pub cluster: DevCluster,
    pub connectwise: RunningSandbox,
    pub bms: RunningSandbox,
    pub autotask: RunningSandbox,
    pub kubeconfig: PathBuf,
}

async fn bind(port: u16, what: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr} for the {what} (is another `dev` running? pick another port)"
        )
    })
}

/// Starts the API server (CRDs installed) and the three sandboxes; writes the kubeconfig.
pub async fn start_environment(s: &DevSettings) -> anyhow::Result<DevEnvironment> {
    std::fs::create_dir_all(&s.state_dir)
        .with_context(|| format!("creating {}", s.state_dir.display()))?;
    let cluster = DevCluster::start(
        bind(s.api_port, "Kubernetes API server").await?,
        devcluster::Config {
            state_dir: Some(s.state_dir.join("cluster")),
            tls: false,
        },
    )
    .await?;
    cluster.apply_yaml(&all_crds_yaml(), "psa-operator-dev")?;
    let kubeconfig = s.state_dir.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig)?;
    let connectwise = sandbox::connectwise::start(
        bind(s.connectwise_port, "ConnectWise sandbox").await?,
        sandbox::connectwise::demo_seed(),
        Default::default(),
    )
    .await?;
    let bms = sandbox::bms::start(
        bind(s.bms_port, "Kaseya BMS sandbox").await?,
        sandbox::bms::demo_seed(),
        Default::default(),
    )
    .await?;
    let autotask = sandbox::autotask::start(
        bind(s.autotask_port, "Autotask sandbox").await?,
        sandbox::autotask::demo_seed(),
        Default::default(),
    )
    .await?;
    Ok(DevEnvironment {
        cluster,
        connectwise,
        bms,
        autotask,
        kubeconfig,
    })
}

fn banner(s: &DevSettings, env: &DevEnvironment, kubeconfig: &Path) -> String {
    format!(
        "psa-operator dev is running\n\
         \x20 Kubernetes API   {api}\n\
         \x20 ConnectWise PSA  {cw}  (sandbox; company demo)\n\
         \x20 Kaseya BMS       {bms}  (sandbox; tenant demo)\n\
         \x20 Autotask         {autotask}/atservicesrest  (sandbox; user demo-api@msp.example)\n\
         \x20 alert intake     http://127.0.0.1:{intake}/v1/namespaces/<ns>/connections/<name>/alerts\n\
         \x20 metrics          http://127.0.0.1:{metrics}/metrics\n\
         \n\
         Try it:\n\
         \x20 export KUBECONFIG={kc}\n\
         \x20 kubectl apply -f config/samples/\n\
         \x20 kubectl get psa -n psa\n\
         Stop with Ctrl-C.",
        api = env.cluster.url(),
        cw = env.connectwise.base_url(),
        bms = env.bms.base_url(),
        autotask = env.autotask.base_url(),
        intake = s.intake_port,
        metrics = s.metrics_port,
        kc = kubeconfig.display(),
    )
}

/// Runs `dev` until Ctrl-C.
pub async fn run_dev(
    s: DevSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let env = start_environment(&s).await?;
    let kubeconfig = std::fs::canonicalize(&env.kubeconfig).unwrap_or(env.kubeconfig.clone());
    let client = kube_client(Some(&kubeconfig)).await?;
    let opts = OperatorOptions::with_defaults(
        s.state_dir.join("store.db"),
        ([127, 0, 0, 1], s.intake_port).into(),
        ([127, 0, 0, 1], s.metrics_port).into(),
    );
    println!("{}", banner(&s, &env, &kubeconfig));
    let result = run_operator(client, opts, shutdown).await;
    env.cluster.shutdown().await?;
    result
}
