//! Fault suite: what a PSA outage, a 429 storm, a slow PSA, a dead SMTP server and a SIGKILLed
//! operator do to accepted events. Everything runs on loopback against the ConnectWise sandbox
//! (faults set through its admin layer); every wait is bounded.
//!
//! Long variants (documented in docs/operations.md):
//! * `PSA_LONG_TESTS=1` — 20 kill rounds instead of 3, and the slow PSA at 5 s per call.
//! * `PSA_KILL_ROUNDS=<n>`, `PSA_KILL_EVENTS=<n>`, `PSA_KILL_SEED=<n>` — override the kill run.
//! * `PSA_SLOW_PSA_MS=<ms>` — latency of the slow-PSA test.

mod kill;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use psa_operator::api::Grouping;
use psa_operator::resolved::ConnectionKey;
use psa_operator::sandbox::Faults;

use crate::dispatch::cw::Cw;
use crate::dispatch::harness::{alert, eventually, Harness};

/// Whether the long variants were asked for.
pub fn long_tests() -> bool {
    std::env::var("PSA_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// A number from the environment, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How often each event id appears in a ConnectWise note (`Event id: <id>` lines; the ticket's
/// initial description is its first note).
pub fn event_id_counts<'a>(texts: impl IntoIterator<Item = &'a str>) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for text in texts {
        for line in text.lines() {
            if let Some(id) = line.trim().strip_prefix("Event id: ") {
                *seen.entry(id.trim().to_string()).or_default() += 1;
            }
        }
    }
    seen
}

async fn cw_event_ids(cw: &Cw) -> HashMap<String, usize> {
    let mut texts = vec![];
    for t in cw.tickets().await {
        texts.extend(cw.all_notes(&t).await);
    }
    event_id_counts(texts.iter().map(String::as_str))
}

fn key() -> ConnectionKey {
    ConnectionKey::new("psa", "faults")
}

fn outage() -> Faults {
    Faults {
        outage: true,
        ..Faults::default()
    }
}

fn set_faults(cw: &Cw, f: Faults) {
    cw.sb.admin().set_faults(f).unwrap();
}

/// `n` alerts over `users` grouping keys (one alert type, `User` grouping).
fn burst(prefix: &str, n: usize, users: usize) -> Vec<psa_operator::dispatch::event::Event> {
    (0..n)
        .map(|i| {
            alert(
                &format!("{prefix}-{i}"),
                &format!("user{}@contoso.example", i % users),
                "Too Many Downloads",
            )
        })
        .collect()
}

fn assert_each_once(seen: &HashMap<String, usize>, prefix: &str, n: usize) {
    let missing: Vec<String> = (0..n)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|id| !seen.contains_key(id))
        .collect();
    let doubled: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(doubled.is_empty(), "delivered twice: {doubled:?}");
}

/// The PSA answers 503 to everything for a while: nothing is dead-lettered, and once it is back
/// every accepted event is delivered exactly once.
#[tokio::test]
async fn psa_outage_then_recovery_delivers_every_event_once() {
    let cw = Cw::start().await;
    let mut conn = cw.snapshot(&key(), Grouping::User);
    conn.dispatch.max_attempts = 30;
    let mut h = Harness::new(conn);
    set_faults(&cw, outage());
    h.start();
    h.send(burst("out", 30, 3)).await;
    // Retries are happening (at least a few calls per lane), and nothing is given up.
    eventually("retries during the outage", || cw.calls() >= 12).await;
    let c = h.counters().await;
    assert_eq!((c.delivered, c.dead_letters), (0, 0), "{c:?}");
    set_faults(&cw, Faults::default());
    h.wait_counters("all delivered after recovery", |c| c.delivered == 30)
        .await;
    assert_eq!(h.counters().await.dead_letters, 0);
    assert_eq!(cw.tickets().await.len(), 3, "one ticket per user");
    assert_each_once(&cw_event_ids(&cw).await, "out", 30);
}

/// A rate-limited PSA (429 with Retry-After): the dispatcher stops calling until Retry-After has
/// passed — one refused call, not a hammering loop — and then delivers everything once.
#[tokio::test]
async fn rate_limit_storm_respects_retry_after() {
    let cw = Cw::start().await;
    let mut h = Harness::new(cw.snapshot(&key(), Grouping::User));
    // 10 events of one key cost 20 calls (lookup + create, then check + note each): the 13th
    // call is refused with a Retry-After of about a minute.
    set_faults(
        &cw,
        Faults {
            rate_limit_per_minute: 12,
            ..Faults::default()
        },
    );
    h.start();
    h.send(burst("rl", 10, 1)).await;
    eventually("the first 429", || cw.calls() >= 13).await;
    let refused_at = Instant::now();
    let report = cw.sb.admin().calls();
    // A few seconds into the pause: still exactly one refused call.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cw.calls(),
        13,
        "calls made during the Retry-After pause: {report:?}"
    );
    h.wait_counters("all delivered after the pause", |c| c.delivered == 10)
        .await;
    let waited = refused_at.elapsed();
    eprintln!(
        "429 storm: {} PSA calls for 10 events (1 refused), waited {waited:?}",
        cw.calls()
    );
    // 20 calls, the refused one, and at most one look at the ticket's notes on the retry.
    assert!(cw.calls() <= 22, "{:?}", cw.sb.admin().calls());
    assert!(
        waited >= Duration::from_secs(50),
        "resumed before Retry-After: {waited:?}"
    );
    assert_each_once(&cw_event_ids(&cw).await, "rl", 10);
}

/// A slow PSA: every call takes seconds. No request is repeated while the first is still in
/// flight, so each event costs exactly its two calls and one ticket per key is created.
#[tokio::test]
async fn slow_psa_makes_no_duplicate_requests() {
    let latency = env_num("PSA_SLOW_PSA_MS", if long_tests() { 5000 } else { 1500 });
    let cw = Cw::start().await;
    let mut h = Harness::new(cw.snapshot(&key(), Grouping::User));
    set_faults(
        &cw,
        Faults {
            latency_ms: latency,
            ..Faults::default()
        },
    );
    h.start();
    // Two keys, three events each: 12 calls, two lanes in parallel.
    h.send(burst("slow", 6, 2)).await;
    for _ in 0..2 {
        h.wait_counters("all delivered", |c| c.delivered == 6).await;
    }
    set_faults(&cw, Faults::default());
    let report = cw.sb.admin().calls();
    eprintln!(
        "slow PSA ({latency} ms per call): {} calls for 6 events",
        report.total
    );
    assert_eq!(
        report.count("POST", "/v4_6_release/apis/3.0/service/tickets"),
        2,
        "one create per key: {report:?}"
    );
    assert_eq!(report.total, 12, "no repeated request: {report:?}");
    assert_eq!(cw.tickets().await.len(), 2);
    assert_each_once(&cw_event_ids(&cw).await, "slow", 6);
}

/// PSA and SMTP both down: the events become dead letters (kept, counted in metrics and in the
/// numbers the status reports, the failed mail recorded); `psa-operator replay` puts them back
/// and, with the PSA up again, each is delivered once.
#[tokio::test]
async fn psa_and_smtp_down_dead_letters_are_kept_and_replayable() {
    let cw = Cw::start().await;
    let mut conn = cw.snapshot(&key(), Grouping::User);
    conn.dispatch.max_attempts = 2;
    conn.failsafe = Some(crate::dispatch::smtp::loopback_failsafe(
        crate::dispatch::smtp::free_port(),
        &["soc@msp.example"],
        None,
    ));
    let mut h = Harness::new(conn);
    set_faults(&cw, outage());
    h.start();
    h.send(burst("dl", 4, 2)).await;
    h.wait_counters("dead letters", |c| c.dead_letters == 4)
        .await;
    // The failed mail is recorded on each dead letter, which stays.
    eventually("failsafe attempts recorded", || {
        futures::executor::block_on(h.store.dead_letters(Some(h.key.clone()), 10))
            .map(|d| d.len() == 4 && d.iter().all(|d| d.failsafe_error.is_some()))
            .unwrap_or(false)
    })
    .await;
    let dead = h.store.dead_letters(Some(h.key.clone()), 10).await.unwrap();
    assert!(dead.iter().all(|d| !d.failsafe_sent));
    let metrics = h.metrics_text();
    assert!(
        metrics.contains(
            r#"psa_operator_dispatch_dead_letters_total{namespace="psa",connection="faults"} 4"#
        ),
        "{metrics}"
    );
    eventually("the numbers the status reports", || {
        h.stats.get(&h.key).dead_letters == 4
    })
    .await;

    set_faults(&cw, Faults::default());
    let out = tokio::process::Command::new(crate::support::bin())
        .args(["replay", "--store", h.path.to_str().unwrap()])
        .args(["--connection", "psa/faults"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("re-queued 4 dead letter(s)"), "{stdout}");
    h.wait_counters("replayed and delivered", |c| {
        c.delivered == 4 && c.dead_letters == 0
    })
    .await;
    assert_each_once(&cw_event_ids(&cw).await, "dl", 4);
}

/// Regression: the operator wraps every client in `InstrumentedPsa`; the wrapper used to answer
/// the trait's defaults instead of the client's, so a note re-claimed after a crash was added
/// twice (no note listing) and BMS contract lines looked listable. Found by the kill run.
#[tokio::test]
async fn instrumented_client_keeps_the_clients_capabilities() {
    use psa_operator::psa::instrumented::{InstrumentedPsa, PsaCallMetrics};
    use psa_operator::psa::Billing;
    let cw = Cw::start().await;
    let mut h = Harness::new(cw.snapshot(&key(), Grouping::User));
    h.start();
    h.send(burst("cap", 2, 1)).await;
    h.wait_counters("delivered", |c| c.delivered == 2).await;
    let ticket = cw.tickets().await[0]["id"].to_string();
    let wrapped = InstrumentedPsa::wrap(cw.client.clone(), PsaCallMetrics::default());
    let texts = wrapped
        .note_texts(&ticket)
        .await
        .unwrap()
        .expect("ConnectWise lists notes through the wrapper");
    assert_eq!(event_id_counts(texts.iter().map(String::as_str)).len(), 2);

    let bms = crate::dispatch::bms::Bms::start().await;
    assert!(!bms.client.lists_contract_lines());
    let wrapped = InstrumentedPsa::wrap(bms.client.clone(), PsaCallMetrics::default());
    assert!(!wrapped.lists_contract_lines(), "BMS cannot list lines");
}
