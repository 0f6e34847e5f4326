//! `validate`, `plan` and `import` — the GitOps commands — on deliberately broken YAML, on the
//! samples, and against both PSA sandboxes (proving `plan` and `import` only read).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use psa_operator::api::ProviderSpec;
use psa_operator::controller::factory::{PsaFactory, RealPsaFactory};
use psa_operator::gitops::offline::{self, OfflinePsa};
use psa_operator::gitops::plan::model::{ConnectionPlan, LineAction, Plan, ServiceAction};
use psa_operator::gitops::plan::{plan_set, Targets};
use psa_operator::gitops::resource_set::ResourceSet;
use psa_operator::gitops::validate::{validate_paths, validate_sources};
use psa_operator::gitops::yaml_docs::Source;
use psa_operator::psa::Billing;
use psa_operator::psa::{
    CatalogService, CatalogServiceSpec, ContractLine, LineKey, LineValues, Psa,
};
use psa_operator::sandbox::CallReport;
use serde_json::Value;

use crate::fixtures::{mapping_yaml, monitoring_service_yaml};
use crate::sandbox_admin::{calls, clear_calls};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn broken() -> PathBuf {
    repo().join("tests/fixtures/gitops/broken")
}

fn cw_seed() -> PathBuf {
    repo().join("src/sandbox/connectwise/demo-seed.yaml")
}

fn bms_seed() -> PathBuf {
    repo().join("src/sandbox/bms/demo-seed.yaml")
}

/// Runs the real binary in the repository root.
fn psa_operator(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_psa-operator"));
    cmd.args(args)
        .current_dir(repo())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("binary starts");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The same, off the async runtime (the sandboxes it talks to serve on that runtime).
async fn psa_operator_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        psa_operator(&refs, None)
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every PSA call the sandbox saw, as `METHOD route`, for messages.
fn non_gets(report: &CallReport, allowed: &[(&str, &str)]) -> Vec<String> {
    report
        .calls
        .iter()
        .filter(|c| c.method != "GET")
        .filter(|c| !allowed.iter().any(|(m, r)| c.method == *m && c.route == *r))
        .map(|c| format!("{} {} x{}", c.method, c.route, c.count))
        .collect()
}

#[test]
fn validate_accepts_the_samples() {
    let out = psa_operator(&["validate", "config/samples"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stdout),
        "6 object(s) checked, 8 other object(s) ignored: valid\n"
    );
}

/// kustomize output: all documents of the samples as one stream on stdin.
#[test]
fn validate_reads_a_stream_from_stdin() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("config/samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let stream: String = files
        .iter()
        .map(|f| format!("---\n{}", std::fs::read_to_string(f).unwrap()))
        .collect();
    let out = psa_operator(&["validate", "-", "--output", "json"], Some(&stream));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["checked"], 6);
    assert_eq!(v["diagnostics"], serde_json::json!([]));

    // A broken object in the stream is reported against `<stdin>` with its line in the stream.
    let broken = format!(
        "{stream}---\napiVersion: psa-operator.io/v1alpha1\nkind: CustomerMapping\nmetadata: {{name: x, namespace: psa}}\nspec:\n  connectionRef: {{name: demo-cw}}\n  organization: X\n  company: {{}}\n"
    );
    let out = psa_operator(&["validate", "-"], Some(&broken));
    assert_eq!(out.status.code(), Some(1));
    let line = broken.lines().count();
    assert!(
        text(&out.stdout).contains(&format!(
            "<stdin>:{line}: CustomerMapping/x: spec.company: Invalid value: \"object\": set exactly one of identifier or name"
        )),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_reports_each_broken_thing_at_its_line() {
    let v = validate_paths(&[broken()]);
    let got: Vec<(String, usize, String, String)> = v
        .diagnostics
        .iter()
        .map(|d| {
            let file = Path::new(&d.file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, d.line, d.reason.clone(), d.field.clone())
        })
        .collect();
    let want: Vec<(&str, usize, &str, &str)> = vec![
        (
            "connections.yaml",
            13,
            "SecretKeyMissing",
            "spec.provider.connectWise.credentialsSecretRef.name",
        ),
        (
            "connections.yaml",
            15,
            "SecretNotFound",
            "spec.intake.tokenSecretRef.name",
        ),
        (
            "connections.yaml",
            17,
            "FieldValueInvalid",
            "spec.ticket.priority",
        ),
        ("connections.yaml", 32, "FieldValueInvalid", "spec.provider"),
        (
            "connections.yaml",
            33,
            "FieldValueInvalid",
            "spec.provider.kaseyaBms.url",
        ),
        (
            "connections.yaml",
            44,
            "FieldValueNotSupported",
            "spec.grouping",
        ),
        ("connections.yaml", 45, "FieldUnknown", "spec.colour"),
        ("connections.yaml", 47, "UnknownVersion", "apiVersion"),
        (
            "mappings.yaml",
            9,
            "DuplicateOrganization",
            "spec.organization",
        ),
        (
            "mappings.yaml",
            13,
            "ServiceNotFound",
            "spec.contractService.serviceRef.name",
        ),
        (
            "mappings.yaml",
            23,
            "DuplicateOrganization",
            "spec.organization",
        ),
        (
            "mappings.yaml",
            32,
            "ConnectionNotFound",
            "spec.connectionRef.name",
        ),
        ("mappings.yaml", 39, "FieldValueInvalid", "metadata.name"),
        ("mappings.yaml", 44, "FieldValueInvalid", "spec.company"),
        (
            "mappings.yaml",
            55,
            "ContractMissing",
            "spec.contractService",
        ),
        ("mappings.yaml", 68, "FieldValueInvalid", "spec.price"),
        ("mappings.yaml", 77, "DuplicateCatalogService", "spec.name"),
        ("mappings.yaml", 84, "DuplicateObject", "metadata.name"),
        ("syntax.yaml", 7, "SyntaxError", ""),
    ];
    let want: Vec<(String, usize, String, String)> = want
        .into_iter()
        .map(|(f, l, r, p)| (f.to_string(), l, r.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!((v.checked, v.ignored), (12, 2));

    let orphan = v
        .diagnostics
        .iter()
        .find(|d| d.reason == "ConnectionNotFound")
        .unwrap();
    assert_eq!(
        orphan.to_string(),
        format!(
            "{}:32: CustomerMapping/orphan: spec.connectionRef.name: PsaConnection \"cww\" is not in the input in namespace \"psa\" (did you mean \"cw\"?)",
            broken().join("mappings.yaml").display()
        )
    );
}

#[test]
fn validate_binary_exits_1_with_text_and_json() {
    let out = psa_operator(&["validate", "tests/fixtures/gitops/broken"], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(
        "tests/fixtures/gitops/broken/connections.yaml:44: PsaConnection/typos: spec.grouping: Unsupported value: \"Sometimes\": supported values: \"User\", \"UserAndAlert\"\n"
    ), "{stdout}");
    assert!(stdout.ends_with("12 object(s) checked, 2 other object(s) ignored: 19 problems\n"));

    let out = psa_operator(
        &[
            "validate",
            "-o",
            "json",
            "tests/fixtures/gitops/broken/mappings.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    // Alone, the file misses its connection: every object says so, at its connectionRef.
    let first = &v["diagnostics"][0];
    assert_eq!(first["line"], 8);
    assert_eq!(first["kind"], "CustomerMapping");
    assert_eq!(first["name"], "contoso");
    assert_eq!(first["field"], "spec.connectionRef.name");
    assert_eq!(first["reason"], "ConnectionNotFound");
}

#[test]
fn secrets_are_checked_only_when_the_input_has_some() {
    let conn =
        std::fs::read_to_string(repo().join("config/samples/02-psaconnection-connectwise.yaml"))
            .unwrap();
    let line = 1 + conn
        .lines()
        .take_while(|l| !l.contains("smtpSecretRef"))
        .count();
    let alone = validate_sources(&[Source {
        name: "c.yaml".into(),
        text: conn.clone(),
    }]);
    assert!(alone.is_valid(), "{:?}", alone.diagnostics);
    let secrets = std::fs::read_to_string(repo().join("config/samples/01-secrets.yaml")).unwrap();
    let without_smtp = secrets.replace("name: smtp", "name: smtp-relay");
    let v = validate_sources(&[
        Source {
            name: "c.yaml".into(),
            text: conn,
        },
        Source {
            name: "s.yaml".into(),
            text: without_smtp,
        },
    ]);
    let found: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        found,
        [format!("c.yaml:{line}: PsaConnection/demo-cw: spec.failsafe.smtpSecretRef.name: Secret \"smtp\" is not in the input in namespace \"psa\" (other Secrets are)")]
    );
}

/// Loads samples (plus `extra` YAML) as `plan` reads them.
fn samples_with(extra: &str) -> ResourceSet {
    let mut sources: Vec<Source> = std::fs::read_dir(repo().join("config/samples"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            Source {
                name: p.display().to_string(),
                text: std::fs::read_to_string(&p).unwrap(),
            }
        })
        .collect();
    sources.push(Source {
        name: "extra.yaml".into(),
        text: extra.into(),
    });
    let v = validate_sources(&sources);
    assert!(v.is_valid(), "{:?}", v.diagnostics);
    v.set
}

/// Plans `set` against the sandbox `off` (its call counters zeroed first).
async fn plan_offline(set: &ResourceSet, off: OfflinePsa) -> (Plan, Targets) {
    clear_calls(&off.sandbox).await;
    let targets = Targets {
        offline: vec![off],
        cluster: None,
    };
    (plan_set(set, &targets).await, targets)
}

/// The connection's plan, planned without error and with every PSA name resolving.
fn resolved_connection<'a>(plan: &'a Plan, name: &str) -> &'a ConnectionPlan {
    let c = plan.connections.iter().find(|c| c.name == name).unwrap();
    assert_eq!(c.error, None);
    assert!(
        c.names.iter().all(|n| n.resolves == Some(true)),
        "{:?}",
        c.names
    );
    c
}

/// A writing client on the sandbox, to put the PSA in a state the plan must see.
fn writer(off: &OfflinePsa, spec: &ProviderSpec) -> std::sync::Arc<dyn Psa> {
    let mut spec = spec.clone();
    if let Some(cw) = spec.connect_wise.as_mut() {
        cw.url = off.sandbox.base_url();
    }
    if let Some(b) = spec.kaseya_bms.as_mut() {
        b.url = off.sandbox.base_url();
    }
    RealPsaFactory.build(&spec, &off.credentials).unwrap()
}

/// Puts "SaaS Alerts Monitoring" into the PSA at `price` (cost 100.00) with a `line` of it on
/// Contoso's "Managed Security" contract, as an earlier run or a person left them; the service
/// and the line as the PSA answered.
async fn monitoring_line_on_contoso(
    psa: &dyn Psa,
    price: i64,
    line: LineValues,
) -> (CatalogService, ContractLine) {
    let svc = psa
        .create_catalog_service(&CatalogServiceSpec {
            name: "SaaS Alerts Monitoring".into(),
            description: "Monitoring of SaaS tenants".into(),
            cost: 10_000,
            price,
        })
        .await
        .unwrap();
    let contoso = psa
        .find_company_by_identifier("CONTOSO")
        .await
        .unwrap()
        .unwrap();
    let contract = crate::fixtures::demo::managed_security(psa, &contoso).await;
    let line = psa
        .add_contract_line(LineKey::new(&contract.id, &svc.id), line)
        .await
        .unwrap();
    (svc, line)
}

#[tokio::test]
async fn plan_against_connectwise_shows_drift_and_billing_and_only_reads() {
    let set = samples_with("");
    let off = offline::start(&cw_seed()).await.unwrap();
    // The PSA already has the service at another price and Contoso's line at 40 users.
    let cw = set.connection("psa", "demo-cw").unwrap();
    let psa = writer(&off, &cw.obj.spec.provider);
    let forty = LineValues {
        quantity: 40,
        cost: 15_000,
        price: 40_000,
    };
    let (svc, _) = monitoring_line_on_contoso(psa.as_ref(), 25_000, forty).await;
    let (plan, targets) = plan_offline(&set, off).await;
    let c = resolved_connection(&plan, "demo-cw");
    let board = c.names.iter().find(|n| n.field == "ticket.board").unwrap();
    assert_eq!(board.id.as_deref(), Some("1"));

    assert_eq!(c.catalog.len(), 1);
    assert_eq!(c.catalog[0].action, ServiceAction::Correct);
    assert_eq!(c.catalog[0].id.as_deref(), Some(svc.id.as_str()));
    let changes: Vec<(&str, &str, &str)> = c.catalog[0]
        .changes
        .iter()
        .map(|f| (f.field.as_str(), f.from.as_str(), f.to.as_str()))
        .collect();
    assert_eq!(changes, [("price", "2.50", "3.00")]);

    let contoso_plan = c.customers.iter().find(|m| m.mapping == "contoso").unwrap();
    assert!(contoso_plan.routed);
    let line = contoso_plan.line.as_ref().unwrap();
    assert_eq!(line.action, LineAction::Update);
    let before = line.before.as_ref().unwrap();
    let after = line.after.as_ref().unwrap();
    assert_eq!(
        (before.quantity, before.price.as_str(), before.cost.as_str()),
        (40, "160.00", "60.00")
    );
    assert_eq!(
        (after.quantity, after.price.as_str(), after.cost.as_str()),
        (42, "168.00", "63.00")
    );
    let delta = line.delta.as_ref().unwrap();
    assert_eq!(
        (delta.quantity, delta.price.as_str(), delta.cost.as_str()),
        (2, "+8.00", "+3.00")
    );
    assert_eq!(plan.summary.services_to_correct, 1);
    assert_eq!(plan.summary.lines_to_change, 1);
    assert_eq!(plan.summary.price_delta, "+8.00");

    // Read-only: the sandbox saw GETs only, as many as the plan says it made.
    let sb = &targets.offline[0].sandbox;
    let report = calls(sb).await;
    assert_eq!(non_gets(&report, &[]), Vec::<String>::new());
    assert_eq!(
        report.total,
        c.psa_calls.values().sum::<u64>() + 1,
        "{report:?}"
    );
}

#[tokio::test]
async fn plan_against_kaseya_bms_reports_catch_all_and_only_reads() {
    let extra = r#"
apiVersion: psa-operator.io/v1alpha1
kind: ContractService
metadata: {name: bms-monitoring, namespace: psa}
spec:
  connectionRef: {name: demo-bms}
  name: SaaS Alerts Monitoring
  cost: "1.00"
  price: "3.00"
---
apiVersion: psa-operator.io/v1alpha1
kind: CustomerMapping
metadata: {name: bms-contoso, namespace: psa}
spec:
  connectionRef: {name: demo-bms}
  organization: Contoso Ltd
  company: {identifier: CONTOSO}
  contract: {name: Managed Security}
  contractService: {serviceRef: {name: bms-monitoring}, quantity: 7, price: "4.25"}
---
apiVersion: psa-operator.io/v1alpha1
kind: CustomerMapping
metadata: {name: bms-typo, namespace: psa}
spec:
  connectionRef: {name: demo-bms}
  organization: Fabrikam
  company: {name: Fabrikam Incorporated}
"#;
    let set = samples_with(extra);
    let off = offline::start(&bms_seed()).await.unwrap();
    let (plan, targets) = plan_offline(&set, off).await;
    let c = resolved_connection(&plan, "demo-bms");
    assert_eq!(c.credentials, "Secret \"demo-bms-keys\" in the input");
    assert_eq!(c.catalog[0].action, ServiceAction::Create);

    let contoso = c
        .customers
        .iter()
        .find(|m| m.mapping == "bms-contoso")
        .unwrap();
    let line = contoso.line.as_ref().unwrap();
    assert_eq!(line.action, LineAction::Add);
    let after = line.after.as_ref().unwrap();
    assert_eq!(
        (after.price.as_str(), after.cost.as_str()),
        ("29.75", "7.00")
    );

    assert_eq!(c.catch_all.len(), 1);
    assert_eq!(c.catch_all[0].organization, "Fabrikam");
    assert_eq!(
        c.catch_all[0].reason,
        "no active company named \"Fabrikam Incorporated\" in the PSA (did you mean \"Fabrikam Inc\"?)"
    );
    // The ConnectWise connection has no seed in this run: reported, not planned.
    let cw = plan
        .connections
        .iter()
        .find(|c| c.name == "demo-cw")
        .unwrap();
    assert_eq!(cw.error.as_ref().unwrap().reason, "NoSandbox");

    let report = calls(&targets.offline[0].sandbox).await;
    assert_eq!(
        non_gets(&report, &[("POST", "/v2/security/authenticate")]),
        Vec::<String>::new(),
        "only the token request may be a POST"
    );
}

#[tokio::test]
async fn plan_binary_against_the_three_sandboxes() {
    let args: Vec<String> = [
        "plan",
        "config/samples",
        "--offline-psa-seed",
        &cw_seed().display().to_string(),
        "--offline-psa-seed",
        &bms_seed().display().to_string(),
        "--offline-psa-seed",
        &repo()
            .join("src/sandbox/autotask/demo-seed.yaml")
            .display()
            .to_string(),
        "--output",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = psa_operator_async(args.clone()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["summary"];
    assert_eq!(s["servicesToCreate"], 1);
    assert_eq!(s["linesToAdd"], 1);
    assert_eq!(s["priceDelta"], "+168.00");
    assert_eq!(s["costDelta"], "+63.00");
    assert_eq!(s["problems"], 0);
    assert_eq!(v["connections"].as_array().unwrap().len(), 3);
    let autotask = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "demo-autotask")
        .expect("the Autotask connection is planned");
    assert_eq!(autotask["provider"], "Autotask", "{autotask}");
    assert!(autotask["error"].is_null(), "{autotask}");

    // Text output and --detailed-exitcode: changes → 2.
    let mut text_args: Vec<String> = args[..8].to_vec();
    text_args.push("--detailed-exitcode".into());
    let out = psa_operator_async(text_args).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("+ add line \"SaaS Alerts Monitoring\" x 42: price 0.00 -> 168.00 (+168.00), cost 0.00 -> 63.00 (+63.00)"), "{table}");
    assert!(
        table.contains("Plan: 1 catalog service(s) to create"),
        "{table}"
    );
}

#[test]
fn plan_refuses_invalid_input() {
    let out = psa_operator(
        &[
            "plan",
            "tests/fixtures/gitops/broken/mappings.yaml",
            "--offline-psa-seed",
            "src/sandbox/connectwise/demo-seed.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("mappings.yaml:32: CustomerMapping/orphan"),
        "{err}"
    );
    assert!(
        err.contains("the input is not valid; nothing was planned"),
        "{err}"
    );
}

/// Writes a connection file pointing at `url` (with its Secret) into `dir`.
fn connection_file(dir: &Path, sample: &str, url_from: &str, url: &str) -> PathBuf {
    let conn = std::fs::read_to_string(repo().join("config/samples").join(sample))
        .unwrap()
        .replace(url_from, url);
    let path = dir.join("conn.yaml");
    std::fs::write(&path, conn).unwrap();
    path
}

#[tokio::test]
async fn import_scaffolds_unmapped_connectwise_companies() {
    let off = offline::start(&cw_seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conn = connection_file(
        dir.path(),
        "02-psaconnection-connectwise.yaml",
        "http://127.0.0.1:8081",
        &off.sandbox.base_url(),
    );
    let secrets = repo().join("config/samples/01-secrets.yaml");
    clear_calls(&off.sandbox).await;
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "import".to_string(),
            "--connection-file".into(),
            conn.display().to_string(),
            "--secret-file".into(),
            secrets.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = psa_operator_async(args(&[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    // The catch-all company is skipped; Contoso and Fabrikam are offered.
    assert!(!yaml.contains("DefaultCustomer"), "{yaml}");
    assert!(yaml.contains("name: contoso\n  namespace: psa"), "{yaml}");
    assert!(
        yaml.contains("company:\n    identifier: FABRIKAM"),
        "{yaml}"
    );
    assert!(
        yaml.contains("defaultContact:\n    name: Alert Contact"),
        "{yaml}"
    );
    assert!(text(&out.stderr).contains("3 compan(ies) listed from ConnectWise"));

    // The scaffolds are valid next to their connection.
    let conn_text = std::fs::read_to_string(&conn).unwrap();
    let v = validate_sources(&[
        Source {
            name: "conn.yaml".into(),
            text: conn_text,
        },
        Source {
            name: "import.yaml".into(),
            text: yaml,
        },
    ]);
    assert!(v.is_valid(), "{:?}", v.diagnostics);
    assert_eq!(v.set.mappings.len(), 2);

    // With the samples as the existing mappings, nothing is left to import.
    let out = psa_operator_async(args(&["--existing", "config/samples"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("3 already mapped or catch-all"),
        "{}",
        text(&out.stderr)
    );

    let report = calls(&off.sandbox).await;
    assert_eq!(non_gets(&report, &[]), Vec::<String>::new());
}

#[tokio::test]
async fn import_from_kaseya_bms_writes_files() {
    let off = offline::start(&bms_seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conn = connection_file(
        dir.path(),
        "02-psaconnection-kaseya-bms.yaml",
        "http://127.0.0.1:8082",
        &off.sandbox.base_url(),
    );
    let out_dir = dir.path().join("mappings");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("customermapping-contoso.yaml"), "# mine\n").unwrap();
    let args: Vec<String> = vec![
        "import".into(),
        "--connection-file".into(),
        conn.display().to_string(),
        "--secret-file".into(),
        repo()
            .join("config/samples/01-secrets.yaml")
            .display()
            .to_string(),
        "--filter-type".into(),
        "Customer".into(),
        "--out-dir".into(),
        out_dir.display().to_string(),
    ];
    let out = psa_operator_async(args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("customermapping-contoso.yaml: it exists already"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("customermapping-contoso.yaml")).unwrap(),
        "# mine\n",
        "an existing file is never overwritten"
    );
    let fabrikam = std::fs::read_to_string(out_dir.join("customermapping-fabrikam.yaml")).unwrap();
    assert!(
        fabrikam.contains("connectionRef:\n    name: demo-bms"),
        "{fabrikam}"
    );
    assert!(
        fabrikam.contains("# The company record names no default contact"),
        "{fabrikam}"
    );
    let report = calls(&off.sandbox).await;
    assert_eq!(
        non_gets(&report, &[("POST", "/v2/security/authenticate")]),
        Vec::<String>::new()
    );
}

/// Credentials from the cluster: the input has no Secrets, `--kubeconfig` points at an API
/// server that has them.
#[tokio::test]
async fn plan_reads_credentials_from_the_cluster() {
    let cluster = crate::support::dev_cluster().await;
    let secrets = std::fs::read_to_string(repo().join("config/samples/01-secrets.yaml")).unwrap();
    crate::support::psa_namespace_and_client(&cluster);
    cluster.apply_yaml(&secrets, "gitops-test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = crate::support::kubeconfig_in(&cluster, dir.path());
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    for f in [
        "02-psaconnection-connectwise.yaml",
        "03-contractservice-saas-alerts-monitoring.yaml",
        "04-customermapping-contoso.yaml",
    ] {
        std::fs::copy(repo().join("config/samples").join(f), input.join(f)).unwrap();
    }
    let out = psa_operator_async(vec![
        "plan".into(),
        input.display().to_string(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--offline-psa-seed".into(),
        cw_seed().display().to_string(),
        "-o".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["connections"][0];
    assert_eq!(
        c["credentials"],
        "Secret \"demo-cw-keys\" in namespace \"psa\" of the cluster"
    );
    assert_eq!(v["summary"]["linesToAdd"], 1);
    cluster.shutdown().await.unwrap();
}

/// The wrapper `plan` and `import` use refuses writes before they reach the PSA.
#[tokio::test]
async fn read_only_client_refuses_writes() {
    use psa_operator::gitops::read_only::ReadOnlyPsa;
    use psa_operator::psa::PsaError;
    let set = samples_with("");
    let off = offline::start(&cw_seed()).await.unwrap();
    let cw = set.connection("psa", "demo-cw").unwrap();
    let psa = ReadOnlyPsa::new(writer(&off, &cw.obj.spec.provider));
    clear_calls(&off.sandbox).await;
    let refused = psa
        .create_catalog_service(&CatalogServiceSpec {
            name: "X".into(),
            description: String::new(),
            cost: 0,
            price: 0,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PsaError::Permanent { message, .. } if message.contains("only reads")),
        "{refused:?}"
    );
    assert!(psa.find_catalog_service("X").await.unwrap().is_none());
    assert_eq!(
        psa.calls().into_iter().collect::<Vec<_>>(),
        [("find_catalog_service".to_string(), 1)]
    );
    let report = calls(&off.sandbox).await;
    assert_eq!(non_gets(&report, &[]), Vec::<String>::new());
    assert!(report.total >= 1);
}

/// Kaseya BMS billing in `plan`: the contract's line is read through `relatedservices/search`
/// (id, cost, price); its units come from the mapping's status in the cluster. Without that
/// status the line is adopted; with it, a units change is shown as the new line plus the old
/// line ended, as the client will do it. Only reads reach the sandbox.
#[tokio::test]
async fn plan_shows_kaseya_bms_billing_lines() {
    use kube::api::{Patch, PatchParams};
    use psa_operator::api::CustomerMapping;
    use psa_operator::gitops::plan::render;
    let extra = format!(
        "{}---{}",
        monitoring_service_yaml("bms-monitoring", "demo-bms", ""),
        mapping_yaml(
            "bms-contoso",
            "demo-bms",
            "Contoso Ltd",
            "{identifier: CONTOSO}",
            "  contract: {name: Managed Security}\n  \
             contractService: {serviceRef: {name: bms-monitoring}, quantity: 7}\n",
        )
    );
    let set = samples_with(&extra);
    let off = offline::start(&bms_seed()).await.unwrap();
    // BMS already bills Contoso 5 units of the service (the operator wrote that line earlier).
    let bms = set.connection("psa", "demo-bms").unwrap();
    let psa = writer(&off, &bms.obj.spec.provider);
    let five = LineValues {
        quantity: 5,
        cost: 10_000,
        price: 30_000,
    };
    let (_, line) = monitoring_line_on_contoso(psa.as_ref(), 30_000, five).await;
    let plan_text = |plan: &Plan| {
        let mut out = Vec::new();
        render::write(plan, &mut out).unwrap();
        text(&out)
    };

    // No cluster: nobody remembers the line's units → adopted, taken to be 7.
    let (plan, targets) = plan_offline(&set, off).await;
    let c = resolved_connection(&plan, "demo-bms");
    let contoso_plan = c
        .customers
        .iter()
        .find(|m| m.mapping == "bms-contoso")
        .unwrap();
    assert_eq!(
        contoso_plan.line.as_ref().unwrap().action,
        LineAction::Adopt
    );
    let table = plan_text(&plan);
    assert!(
        table.contains(&format!(
            "> adopt line \"SaaS Alerts Monitoring\" x 7: price 21.00 -> 21.00 (0.00), cost 7.00 -> 7.00 (0.00) \
             [line {} is on the contract but not in the mapping's status; KaseyaBMS cannot read a line's units, \
             so they are taken to be the wanted quantity]",
            line.id
        )),
        "{table}"
    );
    assert!(
        table.contains("0 contract line(s) to add, 0 to change, 1 to adopt;"),
        "{table}"
    );

    // The cluster's status of the mapping remembers the line at 5 units → 5 → 7 is shown as
    // the client makes it: a new line, the old one ended.
    let cluster = crate::support::dev_cluster().await;
    cluster
        .apply_yaml(&psa_operator::api::crdgen::all_crds_yaml(), "gitops-test")
        .unwrap();
    let mapping = set
        .mappings
        .iter()
        .find(|m| m.name() == "bms-contoso")
        .unwrap();
    let client = crate::support::psa_namespace_and_client(&cluster);
    cluster
        .apply_yaml(&serde_yaml::to_string(&mapping.obj).unwrap(), "gitops-test")
        .unwrap();
    let api: kube::Api<CustomerMapping> = kube::Api::namespaced(client.clone(), "psa");
    let status = serde_json::json!({"status": {
        "contractId": line.contract_id, "contractLineId": line.id, "syncedQuantity": 5}});
    api.patch_status(
        "bms-contoso",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .unwrap();
    let mut targets = targets;
    targets.cluster = Some(client);
    clear_calls(&targets.offline[0].sandbox).await;
    let plan = plan_set(&set, &targets).await;
    let table = plan_text(&plan);
    assert!(
        table.contains(&format!(
            "~ change line \"SaaS Alerts Monitoring\" quantity 5 -> 7: price 15.00 -> 21.00 (+6.00), cost 5.00 -> 7.00 (+2.00) \
             [Kaseya BMS cannot change a line's units: adds a line of 7 units effective today and ends line {} \
             (cost and price set to 0)]",
            line.id
        )),
        "{table}"
    );
    assert!(
        table.contains("0 contract line(s) to add, 1 to change, 0 to adopt;"),
        "{table}"
    );
    assert_eq!(plan.summary.price_delta, "+6.00");

    // Read-only: the token request and the line search are the only POSTs.
    let report = calls(&targets.offline[0].sandbox).await;
    assert_eq!(
        non_gets(
            &report,
            &[
                ("POST", "/v2/security/authenticate"),
                (
                    "POST",
                    "/v2/admin/finance/services/{id}/relatedservices/search"
                ),
            ]
        ),
        Vec::<String>::new()
    );
    assert!(
        report
            .calls
            .iter()
            .any(|c| c.route.ends_with("/relatedservices/search")),
        "{report:?}"
    );
    cluster.shutdown().await.unwrap();
}

/// `plan` lists the connection's routes and a mapping's overrides with the id each name
/// resolves to on its board, and the misses the reconcilers would report at their fields.
#[tokio::test]
async fn plan_shows_routes_and_per_customer_overrides() {
    let mut sources: Vec<Source> = std::fs::read_dir(repo().join("config/samples"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let mut text = std::fs::read_to_string(&p).unwrap();
            if text.contains("name: demo-cw\n") && text.contains("kind: PsaConnection") {
                text = text.replacen(
                    "  failsafe:\n",
                    "  routes:\n    - match: {severity: [critical]}\n      board: Escalations\n      priority: Priority 1 - Critical\n    - match: {alertType: [Password Spray]}\n      priority: Priority Low\n  failsafe:\n",
                    1,
                );
            }
            Source {
                name: p.display().to_string(),
                text,
            }
        })
        .collect();
    sources.push(Source {
        name: "extra.yaml".into(),
        text: mapping_yaml(
            "tailspin",
            "demo-cw",
            "Fabrikam Tailspin",
            "{identifier: FABRIKAM}",
            "  ticket: {board: Escalation, priority: Priority 2 - High}\n",
        ),
    });
    let v = validate_sources(&sources);
    assert!(v.is_valid(), "{:?}", v.diagnostics);
    let off = offline::start(&cw_seed()).await.unwrap();
    let (plan, _) = plan_offline(&v.set, off).await;
    let c = plan
        .connections
        .iter()
        .find(|c| c.name == "demo-cw")
        .unwrap();
    let rows: Vec<(String, String, Option<bool>, Option<String>)> = c
        .routes
        .iter()
        .flat_map(|r| &r.sets)
        .map(|n| (n.field.clone(), n.value.clone(), n.resolves, n.id.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "routes[0].board".into(),
                "Escalations".into(),
                Some(true),
                Some("2".into())
            ),
            (
                "routes[0].priority".into(),
                "Priority 1 - Critical".into(),
                Some(true),
                Some("1".into())
            ),
            (
                "routes[1].priority".into(),
                "Priority Low".into(),
                Some(false),
                None
            ),
        ]
    );
    assert_eq!(
        c.routes[0].matches.as_deref(),
        Some("severity in [critical]")
    );
    let tailspin = c
        .customers
        .iter()
        .find(|m| m.mapping == "tailspin")
        .unwrap();
    assert!(!tailspin.routed, "an unknown board holds the organization");
    let board = &tailspin.ticket[0].sets[0];
    assert_eq!(
        (board.field.as_str(), board.resolves),
        ("ticket.board", Some(false))
    );
    assert!(
        board
            .problem
            .as_deref()
            .unwrap()
            .contains("did you mean \"Escalations\""),
        "{board:?}"
    );
    assert!(plan.summary.problems >= 2, "{:?}", plan.summary);
    let mut text = Vec::new();
    psa_operator::gitops::plan::render::write(&plan, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("routes[0] when severity in [critical]:"),
        "{text}"
    );
}
