//! `psa-operator dev`: everything on one machine — the embedded Kubernetes API server with our
//! CRDs, every PSA's sandbox (`crate::providers`) seeded with the demo data `config/samples/` uses,
//! and the operator (reconcilers, dispatcher, intake) pointed at them.
//!
//! Once every part listens, `dev` prints one JSON line on stdout (the [`ReadyLine`]: real
//! addresses, also after binding port 0) for scripts and CI jobs, a human banner on stderr, and
//! writes the same JSON to `<state-dir>/endpoints.json`, which `dev --print-samples` reads to
//! print `config/samples/` with those addresses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::net::TcpListener;

use crate::api::crdgen::all_crds_yaml;
use crate::devcluster::{self, DevCluster};
use crate::operator::{kube_client, run_operator_on, OperatorListeners, OperatorOptions};
use crate::psa::Provider;
use crate::sandbox::RunningSandbox;

/// Ports and paths of a dev environment.
#[derive(Clone, Debug)]
pub struct DevSettings {
    pub state_dir: PathBuf,
    pub api_port: u16,
    pub intake_port: u16,
    pub metrics_port: u16,
    /// The port of each PSA's sandbox, in [`Provider::ALL`] order.
    pub sandbox_ports: Vec<(Provider, u16)>,
}

/// The running parts (for tests that start `dev` in-process).
pub struct DevEnvironment {
    pub cluster: DevCluster,
    /// Each PSA's sandbox, seeded with its demo data.
    pub sandboxes: Vec<(Provider, RunningSandbox)>,
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

/// Starts the API server (CRDs installed) and every PSA's sandbox; writes the kubeconfig.
pub async fn start_environment(s: &DevSettings) -> anyhow::Result<DevEnvironment> {
    // The snapshot holds every Secret, the store alerts and user e-mails: owner only.
    devcluster::persist::create_private_dir(&s.state_dir)
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
    let mut sandboxes = Vec::new();
    for &(provider, port) in &s.sandbox_ports {
        let what = format!("{} sandbox", provider.display_name());
        let listener = bind(port, &what).await?;
        let (running, _credentials) = provider
            .start_sandbox(listener, None, Default::default())
            .await
            .map_err(anyhow::Error::msg)?;
        sandboxes.push((provider, running));
    }
    Ok(DevEnvironment {
        cluster,
        sandboxes,
        kubeconfig,
    })
}

/// The machine-readable line `dev` prints on stdout once everything listens. Field order is the
/// documented one; every URL is a base URL without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyLine {
    pub ready: bool,
    /// Path of the kubeconfig pointing at the embedded API server.
    pub kubeconfig: String,
    pub api_server: String,
    /// Base URL of the alert intake (`send-sample --intake-url` takes it as is).
    pub intake: String,
    /// Each PSA's sandbox: in the line, a key per PSA (`connectwise`, `bms`, …).
    #[serde(flatten)]
    pub sandboxes: SandboxUrls,
    /// Base URL of `/metrics`, `/healthz` and `/readyz`.
    pub metrics: String,
}

/// The base URL of each PSA's sandbox, in [`Provider::ALL`] order; in JSON one key per PSA, its
/// [`Provider::sandbox_name`]. Reading takes every PSA's key and no other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxUrls(pub Vec<(Provider, String)>);

impl SandboxUrls {
    /// The base URL of `provider`'s sandbox.
    pub fn of(&self, provider: Provider) -> &str {
        self.0
            .iter()
            .find(|(p, _)| *p == provider)
            .map_or("", |(_, url)| url.as_str())
    }
}

impl Serialize for SandboxUrls {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (provider, url) in &self.0 {
            map.serialize_entry(provider.sandbox_name(), url)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SandboxUrls {
    /// Reads the keys the line's named fields left: exactly one per PSA.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut keys = BTreeMap::<String, String>::deserialize(deserializer)?;
        let urls = Provider::ALL
            .into_iter()
            .map(|p| match keys.remove(p.sandbox_name()) {
                Some(url) => Ok((p, url)),
                None => Err(D::Error::missing_field(p.sandbox_name())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        match keys.into_keys().next() {
            Some(unknown) => Err(D::Error::custom(format!("unknown field `{unknown}`"))),
            None => Ok(SandboxUrls(urls)),
        }
    }
}

/// Name of the file in the state directory that holds the [`ReadyLine`] of the running `dev`.
pub const ENDPOINTS_FILE: &str = "endpoints.json";

fn http_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

fn banner(ready: &ReadyLine) -> String {
    let sandboxes: String = ready
        .sandboxes
        .0
        .iter()
        .map(|(p, url)| {
            format!(
                "  {:<16} {url}  ({})\n",
                p.display_name(),
                p.dev_banner_note()
            )
        })
        .collect();
    format!(
        "psa-operator dev is running\n\
         \x20 Kubernetes API   {api}\n\
         {sandboxes}\
         \x20 alert intake     {intake}/v1/namespaces/<ns>/connections/<name>/alerts\n\
         \x20 metrics          {metrics}/metrics\n\
         \n\
         Try it:\n\
         \x20 export KUBECONFIG={kc}\n\
         \x20 {apply}\n\
         \x20 kubectl get psa -n psa\n\
         \x20 psa-operator send-sample -n psa --connection demo-cw --intake-url {intake}\n\
         Stop with Ctrl-C.",
        api = ready.api_server,
        intake = ready.intake,
        metrics = ready.metrics,
        kc = ready.kubeconfig,
        apply = apply_hint(ready),
    )
}

/// How to apply the samples: as they are when the sandboxes sit on the ports the samples name,
/// otherwise rewritten with the real addresses.
fn apply_hint(ready: &ReadyLine) -> &'static str {
    let on_sample_ports = (ready.sandboxes.0.iter()).all(|(p, url)| *url == sample_url(*p));
    if on_sample_ports {
        "kubectl apply -f config/samples/"
    } else {
        "psa-operator dev --print-samples | kubectl apply -f -"
    }
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
    let listeners = OperatorListeners::bind(&opts).await?;
    let ready = ReadyLine {
        ready: true,
        kubeconfig: kubeconfig.display().to_string(),
        api_server: env.cluster.url(),
        intake: http_url(listeners.intake.local_addr()?),
        sandboxes: SandboxUrls(
            (env.sandboxes.iter())
                .map(|(p, running)| (*p, running.base_url()))
                .collect(),
        ),
        metrics: http_url(listeners.metrics.local_addr()?),
    };
    let line = serde_json::to_string(&ready)?;
    let endpoints = s.state_dir.join(ENDPOINTS_FILE);
    std::fs::write(&endpoints, format!("{line}\n"))
        .with_context(|| format!("writing {}", endpoints.display()))?;
    eprintln!("{}", banner(&ready));
    // The listeners are bound, so connections queue from here on: the line is true when printed.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    let result = run_operator_on(client, opts, listeners, shutdown).await;
    // A stale endpoints file would make --print-samples point at a stopped environment.
    let _ = std::fs::remove_file(&endpoints);
    env.cluster.shutdown().await?;
    result
}

/// The URL `config/samples/` names for a PSA's sandbox (on `dev`'s default port).
pub fn sample_url(provider: Provider) -> String {
    format!("http://127.0.0.1:{}", provider.dev_port())
}

/// `dev --print-samples`: the samples in `samples_dir` with the addresses of the `dev` running on
/// `state_dir`, in apply order.
pub fn print_samples(state_dir: &Path, samples_dir: &Path) -> anyhow::Result<String> {
    let endpoints = state_dir.join(ENDPOINTS_FILE);
    let text = std::fs::read_to_string(&endpoints).with_context(|| {
        format!(
            "no `psa-operator dev` is running with --state-dir {} ({} not found); start it first",
            state_dir.display(),
            endpoints.display()
        )
    })?;
    let ready: ReadyLine = serde_json::from_str(text.trim())
        .with_context(|| format!("{} is not a dev ready line", endpoints.display()))?;
    let files = read_samples(samples_dir)?;
    Ok(render_samples(&files, &ready))
}

/// The `.yaml` files of a directory as (file name, text), sorted by name.
fn read_samples(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the samples in {} (run from the repository root or pass --samples DIR)",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        files.push((name.into_owned(), text));
    }
    files.sort();
    Ok(files)
}

/// Where a kind goes in a first apply: what others reference comes before them, so no
/// reconciler starts on an object whose Secret or connection is not there yet.
fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "Secret" | "ConfigMap" => 1,
        "PsaConnection" => 2,
        "ContractService" => 3,
        "CustomerMapping" => 4,
        _ => 5,
    }
}

/// The top-level `kind:` of one YAML document (None for an empty or comment-only document).
fn kind_of(doc: &str) -> Option<&str> {
    doc.lines()
        .find_map(|l| l.strip_prefix("kind:"))
        .map(|k| k.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// One multi-document YAML stream: every document of `files` in apply order (stable within a
/// kind), the default sandbox URLs replaced by the real ones.
pub fn render_samples(files: &[(String, String)], ready: &ReadyLine) -> String {
    let mut docs: Vec<(u8, String)> = Vec::new();
    for (name, text) in files {
        for doc in split_documents(text) {
            let Some(kind) = kind_of(&doc) else { continue };
            let rank = apply_rank(kind);
            let doc = (ready.sandboxes.0.iter())
                .fold(doc, |doc, (p, url)| doc.replace(&sample_url(*p), url));
            docs.push((rank, format!("# from {name}\n{}", doc.trim())));
        }
    }
    docs.sort_by_key(|(rank, _)| *rank);
    let mut out = String::new();
    for (_, doc) in docs {
        out.push_str("---\n");
        out.push_str(&doc);
        out.push('\n');
    }
    out
}

/// Splits a YAML stream at its `---` separator lines.
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
            continue;
        }
        let current = docs.last_mut().expect("never empty");
        current.push_str(line);
        current.push('\n');
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(cw: &str, bms: &str) -> ReadyLine {
        ReadyLine {
            ready: true,
            kubeconfig: "/tmp/kc".into(),
            api_server: "http://127.0.0.1:40001".into(),
            intake: "http://127.0.0.1:40002".into(),
            sandboxes: SandboxUrls(vec![
                (Provider::ConnectWise, cw.into()),
                (Provider::KaseyaBms, bms.into()),
                (Provider::Autotask, "http://c".into()),
            ]),
            metrics: "http://127.0.0.1:40003".into(),
        }
    }

    #[test]
    fn ready_line_has_the_documented_keys_in_order() {
        let line = serde_json::to_string(&ready("http://a", "http://b")).unwrap();
        assert_eq!(
            line,
            r#"{"ready":true,"kubeconfig":"/tmp/kc","apiServer":"http://127.0.0.1:40001","intake":"http://127.0.0.1:40002","connectwise":"http://a","bms":"http://b","autotask":"http://c","metrics":"http://127.0.0.1:40003"}"#
        );
    }

    #[test]
    fn a_ready_line_reads_back_and_names_every_sandbox_and_no_other() {
        let line = serde_json::to_string(&ready("http://a", "http://b")).unwrap();
        let back: ReadyLine = serde_json::from_str(&line).unwrap();
        assert_eq!(back, ready("http://a", "http://b"));
        assert_eq!(back.sandboxes.of(Provider::KaseyaBms), "http://b");
        let extra = line.replace(r#""metrics""#, r#""halo":"http://d","metrics""#);
        let err = serde_json::from_str::<ReadyLine>(&extra).unwrap_err();
        assert!(err.to_string().contains("unknown field `halo`"), "{err}");
        let missing = line.replace(r#","bms":"http://b""#, "");
        let err = serde_json::from_str::<ReadyLine>(&missing).unwrap_err();
        assert!(err.to_string().contains("missing field `bms`"), "{err}");
    }

    #[test]
    fn every_sandbox_has_a_port_option_defaulting_to_the_samples_port() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["psa-operator", "dev", "--bms-port", "0"])
            .expect("parses");
        let crate::cli::Command::Dev(args) = cli.command else {
            panic!("not dev")
        };
        assert_eq!(
            args.settings().sandbox_ports,
            [
                (Provider::ConnectWise, 8081),
                (Provider::KaseyaBms, 0),
                (Provider::Autotask, 8083),
            ]
        );
        let samples = read_samples(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples"))
            .unwrap()
            .into_iter()
            .map(|(_, text)| text)
            .collect::<String>();
        for p in Provider::ALL {
            assert!(samples.contains(&sample_url(p)), "{}", sample_url(p));
        }
    }

    #[test]
    fn apply_rank_puts_what_is_referenced_first() {
        let table = [
            ("Namespace", 0),
            ("Secret", 1),
            ("PsaConnection", 2),
            ("ContractService", 3),
            ("CustomerMapping", 4),
            ("Something", 5),
        ];
        for (kind, rank) in table {
            assert_eq!(apply_rank(kind), rank, "{kind}");
        }
    }

    #[test]
    fn rendered_samples_are_ordered_and_point_at_the_real_sandboxes() {
        let files = vec![
            (
                "a-mapping.yaml".to_string(),
                "kind: CustomerMapping\nmetadata: {name: m}\n".to_string(),
            ),
            (
                "b-conn.yaml".to_string(),
                "# a comment\nkind: PsaConnection\nspec:\n  url: http://127.0.0.1:8081\n---\nkind: PsaConnection\nspec:\n  url: http://127.0.0.1:8082\n".to_string(),
            ),
            (
                "c-secrets.yaml".to_string(),
                "---\nkind: Secret\nmetadata: {name: s1}\n---\n# only a comment\n---\nkind: Secret\nmetadata: {name: s2}\n".to_string(),
            ),
        ];
        let out = render_samples(
            &files,
            &ready("http://127.0.0.1:41001", "http://127.0.0.1:41002"),
        );
        let kinds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("kind: "))
            .collect();
        assert_eq!(
            kinds,
            [
                "Secret",
                "Secret",
                "PsaConnection",
                "PsaConnection",
                "CustomerMapping"
            ]
        );
        assert!(out.contains("url: http://127.0.0.1:41001\n"), "{out}");
        assert!(out.contains("url: http://127.0.0.1:41002\n"), "{out}");
        assert!(!out.contains(":8081") && !out.contains(":8082"), "{out}");
        // s1 stays before s2: the order within a kind is the files' order.
        assert!(out.find("s1").unwrap() < out.find("s2").unwrap());
        // Every document is parseable YAML with a kind.
        for doc in serde_yaml::Deserializer::from_str(&out) {
            let v = serde_yaml::Value::deserialize(doc).unwrap();
            assert!(v.get("kind").is_some(), "{v:?}");
        }
    }

    #[test]
    fn repository_samples_list_secrets_before_what_reads_them() {
        // `kubectl apply -f config/samples/` applies files in name order.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples");
        let files = read_samples(&dir).unwrap();
        let ranks: Vec<u8> = files
            .iter()
            .flat_map(|(_, text)| split_documents(text))
            .filter_map(|d| kind_of(&d).map(apply_rank))
            .collect();
        let mut sorted = ranks.clone();
        sorted.sort();
        assert_eq!(ranks, sorted, "file order of config/samples");
        assert!(ranks.contains(&1) && ranks.contains(&4));
    }

    #[test]
    fn print_samples_without_a_running_dev_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = print_samples(dir.path(), Path::new("config/samples")).unwrap_err();
        assert!(format!("{err:#}").contains("start it first"), "{err:#}");
    }
}
