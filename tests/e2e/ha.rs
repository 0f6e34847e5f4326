//! High availability: leader election on devcluster Leases, and two `run` replicas sharing one
//! (throwaway) PostgreSQL store while one of them is SIGKILLed mid-burst.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use psa_operator::dispatch::store::postgres::throwaway::{skip_requested, ThrowawayPostgres};
use psa_operator::leader::{run_election, ElectionSettings, ElectionTiming, LeaderMetrics};
use serde_json::{json, Value};

use crate::controllers::{patch, Env};
use crate::devcluster::Cluster;
use crate::faults::event_id_counts;
use crate::support::{bin, free_port, ChildGuard};

fn fast_timing() -> ElectionTiming {
    ElectionTiming {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
    }
}

struct Candidate {
    flag: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn candidate(cluster: &Cluster, identity: &str) -> Candidate {
    let client = psa_operator::operator::kube_client(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let f = flag.clone();
    let identity = identity.to_string();
    let task = tokio::spawn(async move {
        let settings = ElectionSettings {
            namespace: "default".into(),
            lease_name: "psa-operator-leader".into(),
            identity,
            timing: fast_timing(),
        };
        run_election(client, settings, f, LeaderMetrics::default(), async {
            let _ = stopped.await;
        })
        .await
    });
    Candidate {
        flag,
        stop: Some(stop),
        task,
    }
}

async fn wait_for(what: &str, timeout: Duration, f: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_takeover_within_the_lease() {
    let cluster = Cluster::start().await;
    let a = candidate(&cluster, "replica-a").await;
    wait_for("replica-a to lead", Duration::from_secs(10), || {
        a.flag.load(Ordering::SeqCst)
    })
    .await;
    let b = candidate(&cluster, "replica-b").await;
    // b campaigns for a few lease periods and never leads while a renews.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        assert!(
            a.flag.load(Ordering::SeqCst),
            "the leader lost a renewed lease"
        );
        assert!(!b.flag.load(Ordering::SeqCst), "two leaders at once");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leases: Api<Lease> = Api::namespaced(
        psa_operator::operator::kube_client(Some(&cluster.kubeconfig))
            .await
            .unwrap(),
        "default",
    );
    let lease = leases.get("psa-operator-leader").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(spec.lease_duration_seconds, Some(3));

    // a dies without a word (its task is aborted: no release): b takes over once the record
    // has stood still for the lease duration.
    a.task.abort();
    let took = wait_for("replica-b to take over", Duration::from_secs(15), || {
        b.flag.load(Ordering::SeqCst)
    })
    .await;
    assert!(
        took >= Duration::from_secs(2),
        "took over after {took:?}, before the lease could have run out"
    );
    eprintln!("takeover after the leader died: {took:?} (lease 3 s)");
    let spec = leases
        .get("psa-operator-leader")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));

    // A graceful stop hands the lease over at once.
    let mut b = b;
    let c = candidate(&cluster, "replica-c").await;
    let _ = b.stop.take().unwrap().send(());
    b.task.await.unwrap();
    assert!(
        !b.flag.load(Ordering::SeqCst),
        "a stopped leader is no leader"
    );
    let took = wait_for("replica-c after a release", Duration::from_secs(10), || {
        c.flag.load(Ordering::SeqCst)
    })
    .await;
    assert!(
        took < Duration::from_secs(3),
        "release did not hand over: {took:?}"
    );
}

// ---- two replicas on one PostgreSQL ----

const TOKEN: &str = "demo-cw-intake-token";

fn alert(i: usize) -> Value {
    json!({
        "id": format!("ha-{i}"), "organization": "Contoso Ltd",
        "user": format!("ha{}@contoso.example", i % 40),
        "alertType": "Too Many Downloads", "severity": "medium",
        "title": "Too Many Downloads", "description": "ha test",
        "occurredAt": "2026-11-24T10:00:00Z"
    })
}

fn start_replica(env: &Env, name: &str, store: &str) -> (ChildGuard, u16, u16) {
    let intake = free_port();
    let metrics = free_port();
    let log = env
        .cluster
        .dir
        .path()
        .join(format!("operator-{name}-{intake}.log"));
    let child = std::process::Command::new(bin())
        .args([
            "run",
            "--kubeconfig",
            env.cluster.kubeconfig.to_str().unwrap(),
            "--store",
            store,
            "--intake-addr",
            &format!("127.0.0.1:{intake}"),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
            "--replica-name",
            name,
            "--claim-lease",
            "3",
            "--leader-elect",
            "--leader-elect-namespace",
            "psa",
            "--leader-lease-duration",
            "4",
            "--leader-renew-deadline",
            "3",
            "--leader-retry-period",
            "1",
        ])
        .env(
            "RUST_LOG",
            std::env::var("PSA_HA_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("replica starts");
    (ChildGuard { child, log }, intake, metrics)
}

async fn ready(port: u16) -> bool {
    reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
}

/// Posts one alert; true on 202.
async fn post(http: &reqwest::Client, port: u16, i: usize) -> bool {
    let url = format!("http://127.0.0.1:{port}/v1/namespaces/psa/connections/demo-cw/alerts");
    matches!(
        http.post(&url).bearer_auth(TOKEN).json(&alert(i)).send().await,
        Ok(r) if r.status() == 202
    )
}

/// Whether a replica has reconciled the CustomerMappings (its routing snapshot knows them; an
/// alert it takes earlier goes to the connection's default company).
async fn mappings_loaded(port: u16) -> bool {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
        return false;
    };
    let text = r.text().await.unwrap_or_default();
    ready(port).await
        && text
            .lines()
            .any(|l| l.contains("reconciles_total{") && l.contains("CustomerMapping"))
}

async fn metric(port: u16, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_lose_and_double_nothing_when_one_is_killed() {
    if skip_requested("two_replicas_on_one_postgres") {
        return;
    }
    let pg = ThrowawayPostgres::start().expect("throwaway PostgreSQL");
    let store = pg.create_database("ha_e2e").await.unwrap();
    let mut env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"dispatch":{"requestsPerHour":1000000,"initialBackoff":"200ms"}}}"#,
    )
    .await;
    // The Env's single-replica operator (SQLite) steps aside for the two replicas.
    env.operator.kill();

    // replica-a starts first and leads; replica-b follows.
    let mut a = start_replica(&env, "replica-a", &store);
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(a.2, "psa_operator_leader").await != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "replica-a never led:\n{}",
            a.0.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = start_replica(&env, "replica-b", &store);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(mappings_loaded(a.2).await && mappings_loaded(b.2).await) {
        assert!(
            Instant::now() < deadline,
            "replicas never became ready:\n{}\n{}",
            a.0.log_text(),
            b.0.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Exactly one leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (la, lb) = (
            metric(a.2, "psa_operator_leader").await,
            metric(b.2, "psa_operator_leader").await,
        );
        if la.unwrap_or(0.0) + lb.unwrap_or(0.0) == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no single leader: {la:?} {lb:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Round-robin over both intakes; replica-a is SIGKILLed a third of the way in and
    // restarted; alerts it refused go to replica-b.
    const TOTAL: usize = 600;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let wait_routable = Instant::now() + Duration::from_secs(60);
    while !post(&http, b.1, 0).await {
        assert!(
            Instant::now() < wait_routable,
            "replica-b never took an alert"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut acked = BTreeSet::from([0usize]);
    let mut a_alive = true;
    let mut killed_at: Option<Instant> = None;
    let mut takeover: Option<Duration> = None;
    let mut restarted = false;
    for i in 1..TOTAL {
        if i == TOTAL / 3 {
            a.0.child.kill().unwrap(); // SIGKILL of the leader
            let _ = a.0.child.wait();
            a_alive = false;
            killed_at = Some(Instant::now());
        }
        if let Some(at) = killed_at {
            if metric(b.2, "psa_operator_leader").await == Some(1.0) {
                takeover = Some(at.elapsed());
                killed_at = None;
            }
        }
        // Restarted (same name) once replica-b leads: a replica-a back within the lease
        // would rightly renew its own record and lead on.
        if !restarted && i >= TOTAL / 2 && takeover.is_some() {
            a = start_replica(&env, "replica-a", &store);
            restarted = true;
        }
        if !a_alive && restarted && mappings_loaded(a.2).await {
            a_alive = true;
        }
        let first = if i % 2 == 0 && a_alive { a.1 } else { b.1 };
        let ok = post(&http, first, i).await || post(&http, b.1, i).await;
        assert!(ok, "alert {i} refused by both replicas");
        acked.insert(i);
    }
    assert_eq!(acked.len(), TOTAL);
    // replica-b leads once the killed leader's Lease ran out (4 s): well within the burst.
    let deadline = Instant::now() + Duration::from_secs(30);
    while takeover.is_none() {
        if let Some(at) = killed_at {
            if metric(b.2, "psa_operator_leader").await == Some(1.0) {
                takeover = Some(at.elapsed());
            }
        }
        assert!(
            Instant::now() < deadline,
            "replica-b never took the lead over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takeover = takeover.unwrap();
    eprintln!("two replicas: replica-b leads {takeover:?} after the leader was killed (lease 4 s)");
    assert!(
        takeover >= Duration::from_secs(2),
        "took over after {takeover:?}, before the lease could have run out"
    );
    assert_ne!(
        metric(a.2, "psa_operator_leader").await,
        Some(1.0),
        "two leaders: the restarted replica-a must follow"
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    let counts = loop {
        let st = Env::sandbox_state(&env.cw).await;
        let notes = st["notes"].as_array().cloned().unwrap_or_default();
        let counts = event_id_counts(notes.iter().filter_map(|n| n["text"].as_str()));
        let got = (0..TOTAL)
            .filter(|i| counts.contains_key(&format!("ha-{i}")))
            .count();
        if got == TOTAL {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {TOTAL} alerts in the PSA\nreplica-a:\n{}\nreplica-b:\n{}",
            a.0.log_text(),
            b.0.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Let in-flight work land, then count duplicates.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = Env::sandbox_state(&env.cw).await;
    let notes = st["notes"].as_array().cloned().unwrap_or_default();
    let counts_after = event_id_counts(notes.iter().filter_map(|n| n["text"].as_str()));
    let duplicates: usize = counts_after
        .iter()
        .filter(|(id, _)| id.starts_with("ha-"))
        .map(|(_, c)| c - 1)
        .sum();
    eprintln!(
        "two replicas: {TOTAL} alerts acknowledged, {} in the PSA, {duplicates} duplicates",
        counts.len()
    );
    assert_eq!(duplicates, 0, "an alert reached the PSA twice");
    // Every ticket of the run is on the mapped company (config/samples: Contoso → CONTOSO),
    // whichever replica took the alert and however the kill cut the run: an organization with
    // a mapping is held, not sent to the catch-all, until the replica has evaluated it.
    let ours: BTreeSet<String> = notes
        .iter()
        .filter(|n| {
            n["text"]
                .as_str()
                .is_some_and(|t| t.contains("Event id: ha-"))
        })
        .map(|n| n["ticketId"].to_string())
        .collect();
    let mut companies: std::collections::BTreeMap<String, usize> = Default::default();
    for t in st["tickets"].as_array().into_iter().flatten() {
        if ours.contains(&t["id"].to_string()) {
            *companies
                .entry(
                    t["company"]["identifier"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string(),
                )
                .or_default() += 1;
        }
    }
    eprintln!("two replicas: tickets per company {companies:?}");
    assert_eq!(
        companies.keys().map(String::as_str).collect::<Vec<_>>(),
        ["CONTOSO"],
        "tickets on another company than the mapped one: {companies:?}"
    );
    if let Ok(dir) = std::env::var("PSA_HA_KEEP_LOGS") {
        for entry in std::fs::read_dir(env.cluster.dir.path()).unwrap().flatten() {
            let _ = std::fs::copy(
                entry.path(),
                std::path::Path::new(&dir).join(entry.file_name()),
            );
        }
    }
    assert!(!companies.is_empty(), "no ticket holds the run's alerts");
}

// ---- PostgreSQL restarted under the intake ----

/// An intake on a PgStore (no cluster needed: the connection is published directly).
async fn intake_on(
    store: Arc<dyn psa_operator::dispatch::store::Store>,
) -> (u16, tokio::task::JoinHandle<()>) {
    use psa_operator::dispatch::intake::{router, IntakeLimits, IntakeState};
    use psa_operator::resolved::{ConnectionEntry, ConnectionKey, Registry};
    let registry = Registry::new();
    registry.publish(
        ConnectionKey::new("psa", "demo-cw"),
        ConnectionEntry {
            intake_token: Some(psa_operator::secret::SecretString::new(TOKEN)),
            ..Default::default()
        },
    );
    let mut metrics = prometheus_client::registry::Registry::default();
    let state = IntakeState {
        registry,
        store,
        metrics: Arc::new(psa_operator::dispatch::metrics::DispatchMetrics::register(
            &mut metrics,
        )),
        limits: IntakeLimits::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    (port, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_means_503_problems_and_nothing_acknowledged_is_lost() {
    use psa_operator::dispatch::store::{PgOptions, PgStore, Store};
    use psa_operator::resolved::ConnectionKey;
    if skip_requested("postgres_down_means_503") {
        return;
    }
    let pg = ThrowawayPostgres::start().expect("throwaway PostgreSQL");
    let url = pg.create_database("ha_restart").await.unwrap();
    let options = PgOptions {
        wait_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(&url, options).await.unwrap());
    let (port, server) = intake_on(store.clone()).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let url_alerts =
        format!("http://127.0.0.1:{port}/v1/namespaces/psa/connections/demo-cw/alerts");
    let send = |i: usize| {
        http.post(&url_alerts)
            .bearer_auth(TOKEN)
            .json(&alert(i))
            .send()
    };
    let mut acked = BTreeSet::new();
    for i in 0..20 {
        assert_eq!(send(i).await.unwrap().status(), 202);
        acked.insert(i);
    }

    pg.stop().unwrap();
    for i in 20..25 {
        let r = send(i).await.unwrap();
        assert_eq!(r.status(), 503, "no 202 without a commit");
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["status"], 503, "{problem}");
        let text = problem.to_string();
        assert!(
            !text.contains("postgres@"),
            "no store URL in the problem: {text}"
        );
    }

    pg.restart().unwrap();
    // The pool reconnects: the sender's retries get through.
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 20..40 {
        loop {
            let status = send(i).await.map(|r| r.status().as_u16()).unwrap_or(0);
            if status == 202 {
                acked.insert(i);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "intake never recovered: {status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    server.abort();
    let c = store
        .counters(ConnectionKey::new("psa", "demo-cw"))
        .await
        .unwrap();
    assert_eq!(
        c.accepted as usize,
        acked.len(),
        "every 202 is stored, once"
    );
    assert_eq!(acked.len(), 40);
    let lane_ids: BTreeSet<String> = {
        let mut ids = BTreeSet::new();
        let ready = store.ready_lanes(None, i64::MAX / 2, 1000).await.unwrap();
        for lane in ready {
            for ev in store
                .lane_events(lane.connection.clone(), lane.group_key.clone(), 1000)
                .await
                .unwrap()
            {
                ids.insert(ev.envelope.event.id.clone());
            }
        }
        ids
    };
    let want: BTreeSet<String> = acked.iter().map(|i| format!("ha-{i}")).collect();
    assert_eq!(
        lane_ids, want,
        "every acknowledged alert is queued for delivery"
    );
}
