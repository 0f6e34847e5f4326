//! The intake over real HTTP on loopback, with a hand-populated registry and a real SQLite store
//! that each test reopens from disk to see what was acknowledged.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use psa_operator::api::Grouping;
use psa_operator::bench::throughput::{measure_intake, ThroughputRun};
use psa_operator::dispatch::intake::{router, IntakeLimits, IntakeState};
use psa_operator::dispatch::metrics::{track_queue_depth, DispatchMetrics};
use psa_operator::dispatch::store::{LaneScope, SqliteOptions, SqliteStore, Store};
use psa_operator::psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
use psa_operator::resolved::{ConnectionEntry, ConnectionKey, Registry, ResolvedConnection};
use psa_operator::secret::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIXTURE: &str = include_str!("../fixtures/alertmanager-0.25-webhook-firing.json");

/// A resolved connection whose PSA is never called (the intake does not talk to the PSA).
fn resolved(key: &ConnectionKey, grouping: Grouping) -> Arc<ResolvedConnection> {
    let cfg = ConnectWiseConfig::new(
        "http://127.0.0.1:9",
        "company",
        "client",
        SecretString::new("pub"),
        SecretString::new("priv"),
    );
    let psa = Arc::new(ConnectWiseClient::new(cfg).expect("client"));
    Arc::new(ResolvedConnection {
        grouping,
        complete: true,
        ..ResolvedConnection::sample(key.clone(), psa)
    })
}

struct Intake {
    _dir: tempfile::TempDir,
    db: PathBuf,
    base: String,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    metrics_url: String,
    metrics: Arc<DispatchMetrics>,
}

/// psa/acme (resolved, UserAndAlert), psa/globex (not resolved yet), psa/paused (suspended).
async fn start(busy_timeout: Duration) -> Intake {
    start_with(busy_timeout, IntakeLimits::default()).await
}

async fn start_with(busy_timeout: Duration, limits: IntakeLimits) -> Intake {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &db,
            SqliteOptions {
                busy_timeout,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let registry = Registry::new();
    // A connection `<name>` in `psa` whose intake token is `<name>-token`; `globex` is not
    // resolved (yet), `paused` is suspended.
    let publish = |name: &str, suspended: bool, grouping: Option<Grouping>| {
        let key = ConnectionKey::new("psa", name);
        let entry = ConnectionEntry {
            intake_token: Some(format!("{name}-token").into()),
            suspended,
            resolved: grouping.map(|g| resolved(&key, g)),
            unresolved_hold: None,
        };
        registry.publish(key, entry);
    };
    publish("acme", false, Some(Grouping::UserAndAlert));
    publish("globex", false, None);
    publish("paused", true, Some(Grouping::User));
    let mut prom = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(DispatchMetrics::register(&mut prom));
    let state = IntakeState {
        registry,
        store: store.clone(),
        metrics: metrics.clone(),
        limits,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", ops.local_addr().unwrap());
    let health = psa_operator::operator::health_router_with(
        Arc::new(Mutex::new(prom)),
        Arc::new(AtomicBool::new(true)),
        Some(store.clone()),
    );
    tokio::spawn(async move { axum::serve(ops, health).await });
    Intake {
        _dir: dir,
        db,
        base,
        http: reqwest::Client::new(),
        store,
        metrics_url,
        metrics,
    }
}

impl Intake {
    /// GETs `url` (an absolute address: the intake's or the ops listener's); status and body.
    async fn get(&self, url: &str) -> (u16, String) {
        let r = self.http.get(url).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, String, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        (status, ct, body)
    }

    async fn post_json(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let (status, _, body) = self
            .post(
                path,
                Some(token),
                Some("application/json"),
                body.to_string(),
            )
            .await;
        (status, body)
    }

    /// `alert` posted to the alerts endpoint of `connection` (in `psa`), whose token is
    /// `<connection>-token`.
    async fn post_alert_to(&self, connection: &str, alert: &Value) -> (u16, Value) {
        let path = format!("/v1/namespaces/psa/connections/{connection}/alerts");
        self.post_json(&path, &format!("{connection}-token"), alert)
            .await
    }
}

/// Rows of the events table, read through a separate connection to the file.
fn events_on_disk(db: &Path) -> Vec<(String, String, String, String, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT connection, event_id, group_key, kind, state FROM events ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Runs the psa-operator binary to completion.
async fn cli(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_psa-operator"))
        .args(args)
        .output()
        .await
        .expect("the binary runs")
}

/// Runs the binary, requires success, and returns its standard output.
async fn cli_ok(args: &[&str]) -> String {
    let out = cli(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const ACME_ALERTS: &str = "/v1/namespaces/psa/connections/acme/alerts";

fn alert(id: &str) -> Value {
    json!({"id": id, "organization": "Contoso Ltd", "user": "jane@contoso.example",
           "alertType": "Too Many Downloads", "severity": "critical",
           "title": "412 files downloaded", "occurredAt": "2026-11-24T16:18:28Z",
           "url": "https://saas.example/alerts/1"})
}

#[tokio::test]
async fn an_accepted_alert_is_on_disk_when_202_arrives() {
    let h = start(Duration::from_secs(5)).await;
    let (status, body) = h.post_json(ACME_ALERTS, "acme-token", &alert("sa-1")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["held"], false);
    assert_eq!(
        body["events"],
        json!([{"id": "sa-1", "status": "accepted"}])
    );
    let rows = events_on_disk(&h.db);
    assert_eq!(
        rows,
        vec![(
            "acme".to_string(),
            "sa-1".to_string(),
            r#"user+alert:["contoso ltd","jane@contoso.example","too many downloads"]"#.to_string(),
            "alert".to_string(),
            0
        )]
    );
}

#[tokio::test]
async fn a_repeated_id_is_acknowledged_and_not_stored_twice() {
    let h = start(Duration::from_secs(5)).await;
    let batch = json!([alert("sa-1"), alert("sa-2")]);
    let (status, body) = h.post_json(ACME_ALERTS, "acme-token", &batch).await;
    assert_eq!((status, body["accepted"].clone()), (202, json!(2)));
    let again = json!([alert("sa-2"), alert("sa-3")]);
    let (status, body) = h.post_json(ACME_ALERTS, "acme-token", &again).await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["duplicates"], 1);
    assert_eq!(
        body["events"],
        json!([{"id": "sa-2", "status": "duplicate"}, {"id": "sa-3", "status": "accepted"}])
    );
    let ids: Vec<_> = events_on_disk(&h.db).into_iter().map(|r| r.1).collect();
    assert_eq!(ids, ["sa-1", "sa-2", "sa-3"]);
}

#[tokio::test]
async fn every_rejection_is_a_problem_document_and_stores_nothing() {
    let h = start(Duration::from_secs(5)).await;
    let json_ct = Some("application/json");
    let valid = alert("sa-1").to_string();
    let too_big = format!(
        r#"{{"id":"x","organization":"O","alertType":"A","description":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let half_bad = json!([alert("ok-1"), {"id": "bad-1", "organization": "O"}]).to_string();
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        String,
        u16,
        Value,
    );
    let cases: Vec<Case> = vec![
        // An unknown connection answers as a wrong token does: names cannot be probed.
        (
            "/v1/namespaces/psa/connections/nope/alerts",
            Some("acme-token"),
            json_ct,
            valid.clone(),
            401,
            json!({"header": "Authorization"}),
        ),
        (
            ACME_ALERTS,
            None,
            json_ct,
            valid.clone(),
            401,
            json!({"header": "Authorization"}),
        ),
        (
            ACME_ALERTS,
            Some("globex-token"),
            json_ct,
            valid.clone(),
            401,
            json!({"header": "Authorization"}),
        ),
        (
            ACME_ALERTS,
            Some("acme-token"),
            Some("text/plain"),
            valid.clone(),
            415,
            json!({"header": "Content-Type"}),
        ),
        (
            ACME_ALERTS,
            Some("acme-token"),
            json_ct,
            too_big,
            413,
            json!({"pointer": ""}),
        ),
        (
            ACME_ALERTS,
            Some("acme-token"),
            json_ct,
            r#"{"id": "sa-1","#.to_string(),
            400,
            json!({"pointer": ""}),
        ),
        (
            ACME_ALERTS,
            Some("acme-token"),
            json_ct,
            json!({"id": "sa-1", "organization": "O", "severity": "urgent"}).to_string(),
            422,
            json!({"pointer": "/alertType"}),
        ),
        (
            ACME_ALERTS,
            Some("acme-token"),
            json_ct,
            half_bad,
            422,
            json!({"pointer": "/1/alertType", "detail": "is required"}),
        ),
        (
            "/v1/namespaces/psa/connections/acme/alertmanager",
            Some("acme-token"),
            json_ct,
            json!({"version": "3", "alerts": []}).to_string(),
            422,
            json!({"pointer": "/version"}),
        ),
        (
            "/v1/namespaces/psa/connections/acme/findings",
            Some("acme-token"),
            json_ct,
            json!({"id": "e", "findingId": "f", "event": "reopened", "organization": "O"})
                .to_string(),
            422,
            json!({"pointer": "/event"}),
        ),
    ];
    for (path, token, ct, body, want_status, want_item) in cases {
        let (status, content_type, doc) = h.post(path, token, ct, body).await;
        let what = format!("{path} token={token:?} ct={ct:?} → {status} {doc}");
        assert_eq!(status, want_status, "{what}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(doc["status"], want_status, "{what}");
        assert!(
            doc["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "{what}"
        );
        assert!(
            doc["title"].is_string() && doc["detail"].is_string(),
            "{what}"
        );
        let items = doc["errors"].as_array().expect("errors list");
        let found = items.iter().any(|item| {
            want_item
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &item[k] == v)
        });
        assert!(found, "{what}: no error item like {want_item}");
    }
    assert!(
        events_on_disk(&h.db).is_empty(),
        "a rejected request stored something"
    );
    let text = h.get(&h.metrics_url).await.1;
    assert!(
        text.contains(r#"psa_operator_dispatch_events_rejected_total{reason="Unauthorized"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"psa_operator_dispatch_events_rejected_total{reason="Invalid"} 4"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_stalled_body_is_refused_and_not_waited_for_forever() {
    let h = start_with(
        Duration::from_secs(5),
        IntakeLimits {
            body_timeout: Duration::from_millis(300),
            ..IntakeLimits::default()
        },
    )
    .await;
    // Headers promising 200 bytes, the first bytes of an alert, then nothing: the sender hangs
    // without closing.
    let addr = h.base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {ACME_ALERTS} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer acme-token\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"id\": \"sa-1\", "
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read_answer = async {
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if n == 0 || text.contains("\r\n\r\n{") && text.ends_with('}') {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_answer)
        .await
        .expect("the intake answers a stalled sender");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(events_on_disk(&h.db).is_empty());
}

#[tokio::test]
async fn suspended_and_unresolved_connections_store_and_hold() {
    let h = start(Duration::from_secs(5)).await;
    for conn in ["paused", "globex"] {
        let (status, body) = h.post_alert_to(conn, &alert("sa-1")).await;
        assert_eq!(status, 202, "{conn}: {body}");
        assert_eq!(body["held"], true, "{conn}");
        let counters = h
            .store
            .counters(ConnectionKey::new("psa", conn))
            .await
            .unwrap();
        assert_eq!((counters.accepted, counters.pending), (1, 1), "{conn}");
    }
    let rows = events_on_disk(&h.db);
    // Unresolved: the coarser User key; paused is resolved with User grouping too.
    assert!(rows
        .iter()
        .all(|r| r.2 == r#"user:["contoso ltd","jane@contoso.example"]"#));
}

#[tokio::test]
async fn the_recorded_alertmanager_webhook_is_accepted_once() {
    let h = start(Duration::from_secs(5)).await;
    let path = "/v1/namespaces/psa/connections/acme/alertmanager";
    let (status, _, body) = h
        .post(path, Some("acme-token"), Some("application/json"), FIXTURE)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    let id = "am:6d1ddaf090ad53b0:2026-11-24T16:18:28.674357769Z:firing";
    assert_eq!(body["events"][0]["id"], id);
    // Alertmanager re-sends the whole group at each group_interval: nothing new.
    let (status, _, body) = h
        .post(path, Some("acme-token"), Some("application/json"), FIXTURE)
        .await;
    assert_eq!((status, body["duplicates"].clone()), (202, json!(1)));
    let rows = events_on_disk(&h.db);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, id);
    assert_eq!(rows[0].3, "alertmanager.firing");
    assert_eq!(
        rows[0].2,
        r#"user+alert:["contoso ltd","jane@contoso.example","impossibletravel"]"#
    );
}

#[tokio::test]
async fn findings_are_keyed_by_their_finding() {
    let h = start(Duration::from_secs(5)).await;
    let body = json!([
        {"id": "f-1-created", "findingId": "f-1", "event": "created", "organization": "Contoso Ltd",
         "name": "Impossible travel", "type": "Threat", "priority": 1},
        {"id": "f-1-c1", "findingId": "f-1", "event": "commented", "organization": "Contoso Ltd",
         "comment": "Confirmed with the user", "author": "SOC"}
    ]);
    let (status, resp) = h
        .post_json(
            "/v1/namespaces/psa/connections/acme/findings",
            "acme-token",
            &body,
        )
        .await;
    assert_eq!(status, 202, "{resp}");
    let rows = events_on_disk(&h.db);
    let got: Vec<_> = rows.iter().map(|r| (r.2.as_str(), r.3.as_str())).collect();
    assert_eq!(
        got,
        [
            ("finding:f-1", "finding.created"),
            ("finding:f-1", "finding.commented")
        ]
    );
}

/// The red-team case: `store.db` and its `-wal`/`-shm` deleted while running. The next alert
/// gets 503 (not a 202 for an alert a restart would lose) and both readiness endpoints fail.
#[tokio::test]
async fn a_deleted_store_answers_503_and_fails_readiness() {
    let h = start(Duration::from_secs(5)).await;
    let (status, _) = h.post_json(ACME_ALERTS, "acme-token", &alert("sa-1")).await;
    assert_eq!(status, 202);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", h.db.display()));
    }
    let (status, doc) = h.post_json(ACME_ALERTS, "acme-token", &alert("sa-2")).await;
    assert_eq!(status, 503, "{doc}");
    assert_eq!(
        doc["type"],
        "https://psa-operator.io/problems/store-unavailable"
    );
    for url in [
        format!("{}/readyz", h.base),
        h.metrics_url.replace("/metrics", "/readyz"),
    ] {
        let (status, text) = h.get(&url).await;
        assert_eq!(status, 503, "{url}: {text}");
    }
}

#[tokio::test]
async fn an_unwritable_store_answers_503_and_keeps_nothing() {
    let h = start(Duration::from_millis(200)).await;
    let locker = rusqlite::Connection::open(&h.db).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let batch = json!([alert("sa-1"), alert("sa-2")]);
    let (status, _, doc) = h
        .post(
            ACME_ALERTS,
            Some("acme-token"),
            Some("application/json"),
            batch.to_string(),
        )
        .await;
    assert_eq!(status, 503, "{doc}");
    assert_eq!(
        doc["type"],
        "https://psa-operator.io/problems/store-unavailable"
    );
    let (ready, _) = h.get(&format!("{}/readyz", h.base)).await;
    assert_eq!(ready, 503, "readyz reports the store");
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    assert!(events_on_disk(&h.db).is_empty());
    // The sender retries (Alertmanager does on 503) and the same events go through.
    let (status, body) = h.post_json(ACME_ALERTS, "acme-token", &batch).await;
    assert_eq!((status, body["accepted"].clone()), (202, json!(2)));
    let (status, text) = h.get(&format!("{}/readyz", h.base)).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = h.get(&format!("{}/healthz", h.base)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn metrics_show_accepted_events_and_the_queue_depth() {
    let h = start(Duration::from_secs(5)).await;
    tokio::spawn(track_queue_depth(
        h.store.clone(),
        h.metrics.clone(),
        Duration::from_millis(10),
    ));
    let batch = json!([alert("sa-1"), alert("sa-2"), alert("sa-3")]);
    let (status, _) = h.post_json(ACME_ALERTS, "acme-token", &batch).await;
    assert_eq!(status, 202);
    let (status, _) = h.post_json(ACME_ALERTS, "acme-token", &alert("sa-1")).await;
    assert_eq!(status, 202);
    let want = [
        r#"psa_operator_dispatch_events_accepted_total{namespace="psa",connection="acme"} 3"#,
        r#"psa_operator_dispatch_events_duplicate_total{namespace="psa",connection="acme"} 1"#,
        "psa_operator_dispatch_queue_depth 3",
    ];
    let mut text = String::new();
    for _ in 0..200 {
        text = h.get(&h.metrics_url).await.1;
        if want.iter().all(|w| text.lines().any(|l| l == *w)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("metrics never showed {want:?}:\n{text}");
}

#[tokio::test]
async fn send_sample_posts_through_the_intake() {
    let h = start(Duration::from_secs(5)).await;
    for (kind, key_prefix) in [("alert", "user+alert:"), ("finding", "finding:sample-")] {
        let stdout = cli_ok(&[
            "send-sample",
            "--namespace",
            "psa",
            "--connection",
            "acme",
            "--organization",
            "Fabrikam",
            "--kind",
            kind,
            "--intake-url",
            &h.base,
            "--token",
            "acme-token",
        ])
        .await;
        assert!(stdout.contains("202 Accepted"), "{stdout}");
        let rows = events_on_disk(&h.db);
        let last = rows.last().expect("stored");
        assert!(last.2.starts_with(key_prefix), "{kind}: {last:?}");
    }
    let rows = events_on_disk(&h.db);
    assert!(
        rows[0].2.contains("fabrikam"),
        "simulated from the organization: {rows:?}"
    );

    let out = cli(&[
        "send-sample",
        "--namespace",
        "psa",
        "--connection",
        "acme",
        "--intake-url",
        &h.base,
        "--token",
        "wrong",
    ])
    .await;
    assert!(
        !out.status.success(),
        "a refused sample must fail the command"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("401"));
}

#[tokio::test]
async fn replay_requeues_dead_letters_of_one_connection() {
    let h = start(Duration::from_secs(5)).await;
    for conn in ["acme", "globex"] {
        let (status, _) = h.post_alert_to(conn, &alert("sa-1")).await;
        assert_eq!(status, 202);
    }
    let lanes = h
        .store
        .ready_lanes(LaneScope::All, i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(lanes.len(), 2);
    for lane in lanes {
        let ev = h
            .store
            .claim(lane.id(), i64::MAX - 1, Duration::ZERO)
            .await
            .unwrap()
            .expect("head");
        h.store
            .dead_letter(ev.seq, "permanent: board deleted".into(), 0)
            .await
            .unwrap();
    }
    let stdout = cli_ok(&[
        "replay",
        "--store",
        h.db.to_str().unwrap(),
        "--connection",
        "psa/acme",
    ])
    .await;
    assert!(stdout.contains("permanent: board deleted"), "{stdout}");
    assert!(
        stdout.contains("re-queued 1 dead letter(s) of psa/acme"),
        "{stdout}"
    );
    let acme = h
        .store
        .counters(ConnectionKey::new("psa", "acme"))
        .await
        .unwrap();
    assert_eq!((acme.pending, acme.dead_letters), (1, 0));
    let globex = h
        .store
        .counters(ConnectionKey::new("psa", "globex"))
        .await
        .unwrap();
    assert_eq!((globex.pending, globex.dead_letters), (0, 1));

    let out = cli(&["replay", "--store", "/nonexistent/store.db"]).await;
    assert!(!out.status.success());
}

/// Alerts/s durably accepted over loopback; sizes from `PSA_INTAKE_THROUGHPUT_ALERTS` (default
/// small so the suite stays quick). Prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_throughput_single_and_batched() {
    let alerts: usize = std::env::var("PSA_INTAKE_THROUGHPUT_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    for (clients, batch) in [(1, 1), (8, 1), (8, 50)] {
        let dir = tempfile::tempdir().unwrap();
        let report = measure_intake(
            dir.path(),
            ThroughputRun {
                clients,
                alerts,
                batch,
            },
        )
        .await
        .expect("every alert accepted and stored");
        println!("{}", serde_json::to_string(&report).unwrap());
        assert_eq!(report.requests, alerts.div_ceil(batch));
        assert!(report.alerts_per_second > 0.0);
    }
}

/// A connection's senders get `requests_per_minute` requests; the next is a 429 problem with
/// Retry-After and stores nothing. Another connection's budget is its own; a wrong token does
/// not spend anyone's budget.
#[tokio::test]
async fn over_the_request_rate_is_429_with_retry_after() {
    let h = start_with(
        Duration::from_secs(5),
        IntakeLimits {
            requests_per_minute: 3,
            ..IntakeLimits::default()
        },
    )
    .await;
    let acme = "/v1/namespaces/psa/connections/acme/alerts";
    for _ in 0..5 {
        let (status, _) = h.post_json(acme, "wrong-token", &alert("x")).await;
        assert_eq!(status, 401);
    }
    for i in 0..3 {
        let (status, body) = h
            .post_json(acme, "acme-token", &alert(&format!("r{i}")))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let resp = h
        .http
        .post(format!("{}{acme}", h.base))
        .bearer_auth("acme-token")
        .json(&alert("r3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["status"], 429, "{problem}");
    assert!(problem["type"].as_str().unwrap().ends_with("rate-limited"));
    let stored: Vec<String> = events_on_disk(&h.db).into_iter().map(|e| e.1).collect();
    assert!(!stored.iter().any(|id| id == "r3"), "{stored:?}");
    assert_eq!(stored.len(), 3, "{stored:?}");
    // globex has its own budget.
    let (status, _) = h
        .post_json(
            "/v1/namespaces/psa/connections/globex/alerts",
            "globex-token",
            &alert("g1"),
        )
        .await;
    assert_eq!(status, 202);
    let text = reqwest::get(&h.metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"psa_operator_dispatch_events_rejected_total{reason="RateLimited"} 1"#),
        "{text}"
    );
}
