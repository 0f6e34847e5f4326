//! The README's tour as a newcomer runs it: `psa-operator dev` on free ports, its JSON ready line,
//! the samples with the real addresses applied in one go without a single Warning Event,
//! `send-sample`, and the ticket read in the ConnectWise sandbox's page by a real (headless)
//! Chromium. The same running operator's `/metrics` carries every metric the chart's alert rules
//! and dashboard use.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::packaging::tools::{chromium_dom, kubectl};
use crate::support::{bin, eventually, ChildGuard};

const READY_KEYS: [&str; 8] = [
    "ready",
    "kubeconfig",
    "apiServer",
    "intake",
    "connectwise",
    "bms",
    "autotask",
    "metrics",
];

/// Starts `dev` with every port 0; returns it and its ready line.
async fn start_dev(state: &Path) -> (ChildGuard, Value) {
    let log = state.join("dev.log");
    let mut cmd = Command::new(bin());
    cmd.args(["dev", "--state-dir", state.to_str().unwrap()]);
    for port in [
        "--api-port",
        "--intake-port",
        "--metrics-port",
        "--connectwise-port",
        "--bms-port",
        "--autotask-port",
    ] {
        cmd.args([port, "0"]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("dev starts");
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard { child, log };
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(60), first_line)
        .await
        .unwrap_or_else(|_| panic!("no ready line within 60 s:\n{}", guard.log_text()))
        .unwrap()
        .unwrap();
    let ready: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("stdout's first line is not JSON ({e}): {line:?}"));
    (guard, ready)
}

fn url<'a>(ready: &'a Value, key: &str) -> &'a str {
    ready[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {ready}"))
}

fn kubectl_cmd(kubeconfig: &str) -> Command {
    let mut c = Command::new(kubectl());
    c.env("KUBECONFIG", kubeconfig);
    c
}

fn kubectl_json(kubeconfig: &str, args: &[&str]) -> Value {
    let out = kubectl_cmd(kubeconfig)
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `dev --print-samples | kubectl apply -f -`, as the banner says.
fn apply_samples(state: &Path, kubeconfig: &str) {
    let samples = Command::new(bin())
        .args([
            "dev",
            "--print-samples",
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        samples.status.success(),
        "{}",
        String::from_utf8_lossy(&samples.stderr)
    );
    let mut apply = kubectl_cmd(kubeconfig)
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(&samples.stdout)
        .unwrap();
    let out = apply.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `send-sample` through the real intake, as the banner suggests.
fn send_sample(ready: &Value, connection: &str, user: &str) {
    let sent = Command::new(bin())
        .args(["send-sample", "-n", "psa", "--connection", connection])
        .args(["--user", user, "--intake-url", url(ready, "intake")])
        .env("KUBECONFIG", url(ready, "kubeconfig"))
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
}

/// The first ticket the sandbox at `base` holds (its `/_sandbox/state`), once `ready` says it
/// is as the test needs it.
async fn first_ticket(
    http: &reqwest::Client,
    base: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let state_url = format!("{base}/_sandbox/state");
    let ready = &ready;
    eventually(Duration::from_secs(60), what, || {
        let (http, state_url) = (http.clone(), state_url.clone());
        async move {
            let s: Value = http.get(&state_url).send().await.ok()?.json().await.ok()?;
            let t = s["tickets"].as_array()?.first()?.clone();
            ready(&t).then_some(t)
        }
    })
    .await
}

/// The sandbox's own page at `base`, as Chromium renders it.
async fn sandbox_page(base: &str) -> String {
    let url = format!("{base}/");
    tokio::task::spawn_blocking(move || chromium_dom(&url))
        .await
        .unwrap()
}

/// The `<article>` of ticket `id` in a sandbox page.
fn ticket_article<'a>(page: &'a str, id: &Value) -> &'a str {
    let start = page
        .find(&format!("id=\"ticket-{id}\""))
        .unwrap_or_else(|| panic!("no ticket {id} in the page:\n{page}"));
    let article = &page[start..];
    &article[..article.find("</article>").unwrap()]
}

async fn wait_all_ready(kubeconfig: &str) {
    eventually(Duration::from_secs(90), "every sample Ready", || async {
        let list = kubectl_json(
            kubeconfig,
            &[
                "get",
                "psaconnection,customermapping,contractservice",
                "-n",
                "psa",
            ],
        );
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let ready = |o: &Value| {
            o["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        };
        (items.len() == 6 && items.iter().all(ready)).then_some(())
    })
    .await;
}

/// The metric family names in an OpenMetrics/Prometheus text exposition, with the sample
/// suffixes a query may use (`_total`, `_bucket`, `_sum`, `_count`).
fn exposed_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_tour_from_dev_to_the_ticket_in_the_browser() {
    let state = tempfile::tempdir().unwrap();
    let (dev, ready) = start_dev(state.path()).await;

    // 1. One JSON line with exactly the documented keys, every address a real, listening one.
    let keys: Vec<&str> = ready
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = READY_KEYS.to_vec();
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want, "{ready}");
    assert_eq!(ready["ready"], true);
    let http = reqwest::Client::new();
    // Every address the ready line reports (all but `ready` and `kubeconfig`).
    for &key in &READY_KEYS[2..] {
        let base = url(&ready, key);
        assert!(!base.ends_with(":0"), "{key} reports port 0: {base}");
        let path = if key == "metrics" { "/healthz" } else { "/" };
        http.get(format!("{base}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key} at {base} does not answer: {e}"));
    }
    let kubeconfig = url(&ready, "kubeconfig").to_string();
    assert!(Path::new(&kubeconfig).is_file());
    let banner = dev.log_text();
    assert!(banner.contains(url(&ready, "intake")), "{banner}");
    assert!(banner.contains("--print-samples"), "{banner}");

    // 2. The samples with the real sandbox addresses, applied at once: Ready, no Warning.
    apply_samples(state.path(), &kubeconfig);
    wait_all_ready(&kubeconfig).await;
    let events = kubectl_json(&kubeconfig, &["get", "events", "-n", "psa"]);
    let warnings: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "Warning")
        .map(|e| {
            format!(
                "{} {}: {}",
                e["involvedObject"]["name"], e["reason"], e["message"]
            )
        })
        .collect();
    assert!(
        warnings.is_empty(),
        "a first apply shows Warnings: {warnings:#?}"
    );
    assert!(
        events["items"].as_array().unwrap().len() >= 5,
        "the reconcilers did report (Normal events): {events}"
    );

    // 3. send-sample through the real intake; the ticket appears on the sandbox's page.
    send_sample(&ready, "demo-cw", "jane@contoso.example");
    let cw = url(&ready, "connectwise").to_string();
    let ticket = first_ticket(&http, &cw, "the sample's ticket", |_| true).await;
    let summary = ticket["summary"].as_str().unwrap().to_string();
    let page = sandbox_page(&cw).await;
    let article = ticket_article(&page, &ticket["id"]);
    assert!(
        article.contains(&summary),
        "summary {summary:?} not in {article}"
    );
    assert!(article.contains("Contoso Ltd"), "{article}");
    assert!(article.contains("Jane Doe"), "{article}");
    assert!(
        article.contains("Managed Security"),
        "the contract: {article}"
    );
    assert!(
        article.contains("Sample alert sent by"),
        "the note is on the page: {article}"
    );
    assert!(
        page.contains("http-equiv=\"refresh\""),
        "the page reloads itself"
    );
    assert!(
        page.contains("service/tickets"),
        "the ticket's POST is among the recent calls"
    );

    // The Kaseya BMS page: two samples of one user → one ticket with a note (User grouping).
    send_sample(&ready, "demo-bms", "jane@contoso.example");
    send_sample(&ready, "demo-bms", "jane@contoso.example");
    let bms = url(&ready, "bms").to_string();
    let ticket = first_ticket(&http, &bms, "the BMS ticket's note", |t| {
        t["notes"].as_array().is_some_and(|n| !n.is_empty())
    })
    .await;
    let page = sandbox_page(&bms).await;
    let article = ticket_article(&page, &ticket["id"]);
    let title = ticket["title"].as_str().unwrap();
    let note = ticket["notes"][0]["details"].as_str().unwrap();
    let note_line = note.lines().next().unwrap();
    assert!(article.contains(title), "title {title:?} not in {article}");
    assert!(article.contains("Security Alerts"), "the queue: {article}");
    assert!(
        article.contains(note_line),
        "note {note_line:?} not in {article}"
    );

    // 4. Every metric the chart's rules and dashboard use is exposed by this operator.
    let metrics =
        crate::support::send_for_text(http.get(format!("{}/metrics", url(&ready, "metrics"))))
            .await;
    let exposed = exposed_names(&metrics);
    let used = crate::packaging::monitoring::metric_names_used();
    assert!(used.len() >= 8, "{used:?}");
    let missing: Vec<&String> = used.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "used by rules/dashboard but not in /metrics: {missing:?}\nexposed: {exposed:?}"
    );

    // 5. `kubectl get` shows the tickets and dead letters per connection; after a PSA outage,
    //    `kubectl describe` shows the budget in force and the last delivery error.
    let cw_faults = format!("{}/_sandbox/faults", url(&ready, "connectwise"));
    http.post(&cw_faults)
        .json(&serde_json::json!({"outage": true}))
        .send()
        .await
        .unwrap();
    send_sample(&ready, "demo-cw", "joe@contoso.example");
    let mut nudge = 0;
    let described = eventually(Duration::from_secs(60), "status with the last error", || {
        nudge += 1;
        let kubeconfig = kubeconfig.clone();
        async move {
            // The dispatcher's status sink writes the counters every few seconds.
            let patch = format!(
                r#"{{"metadata":{{"annotations":{{"psa-operator.io/reconcile-requested-at":"{nudge}"}}}}}}"#
            );
            kubectl_cmd(&kubeconfig)
                .args(["patch", "psaconnection", "demo-cw", "-n", "psa", "--type=merge", "-p", &patch])
                .output()
                .ok()?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let out = kubectl_cmd(&kubeconfig)
                .args(["describe", "psaconnection", "demo-cw", "-n", "psa"])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("Last Error").then_some(text)
        }
    })
    .await;
    // ConnectWise has no hourly budget by default (its 429 Retry-After paces the calls): none
    // is shown as in force.
    assert!(!described.contains("Requests Per Hour"), "{described}");
    assert!(
        described.contains("503"),
        "the outage's status code: {described}"
    );
    assert!(!described.contains("demo-private"), "{described}");
    http.post(&cw_faults)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let table = kubectl_cmd(&kubeconfig)
        .args(["get", "psaconnection", "-n", "psa"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert!(
        header.contains(&"TICKETS") && header.contains(&"DEAD LETTERS"),
        "{table}"
    );
    let cw_row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("demo-cw "))
        .unwrap()
        .split_whitespace()
        .collect();
    // NAME PROVIDER READY SYNCED REASON TICKETS DEAD-LETTERS AGE
    assert_eq!(cw_row[5], "1", "one ticket so far: {table}");
    assert_eq!(cw_row[6], "0", "{table}");
    drop(dev);
}
