//! The operator as a process, SIGKILLed at random points while 1,000 events of 100 users of two
//! mapped organizations are posted to its intake and dispatched to the ConnectWise sandbox,
//! restarted on the same store each round. Afterwards the sandbox holds every acknowledged event
//! exactly once, one ticket per user, each on its organization's mapped company.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{env_num, event_id_counts, long_tests};
use crate::controllers::Env;

const TOKEN: &str = "demo-cw-intake-token";
const USERS: usize = 100;
/// Users alternate between the two sample mappings: (organization, mapped company name).
const ORGANIZATIONS: [(&str, &str); 2] = [
    ("Contoso Ltd", "Contoso Ltd"),
    ("Fabrikam Inc", "Fabrikam Inc"),
];
const BATCH: usize = 50;

/// The organization of event `i` (by its user, so a user's events share a ticket).
fn organization(i: usize) -> (&'static str, &'static str) {
    ORGANIZATIONS[(i % USERS) % ORGANIZATIONS.len()]
}

fn event(i: usize) -> Value {
    json!({
        "id": format!("k-{i}"), "organization": organization(i).0,
        "user": format!("kill{}@users.example", i % USERS),
        "alertType": "Too Many Downloads", "severity": "medium",
        "title": "Too Many Downloads", "description": "kill test",
        "occurredAt": "2026-11-24T10:00:00Z"
    })
}

/// Posts batches until every event is acknowledged or a post fails (the operator is gone);
/// returns the acknowledged indexes.
async fn post_until_gone(port: u16, pending: Vec<usize>) -> Vec<usize> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/namespaces/psa/connections/demo-cw/alerts");
    let mut acked = vec![];
    for chunk in pending.chunks(BATCH) {
        let body: Vec<Value> = chunk.iter().map(|i| event(*i)).collect();
        match http.post(&url).bearer_auth(TOKEN).json(&body).send().await {
            Ok(r) if r.status() == 202 => acked.extend_from_slice(chunk),
            Ok(r) if r.status() == 401 || r.status() == 503 => {
                // Not loaded yet after a restart (an unknown connection answers 401, as a
                // wrong token does): try again shortly.
                tokio::time::sleep(Duration::from_millis(200)).await;
                return acked;
            }
            Ok(r) => panic!("intake refused a valid batch: {}", r.status()),
            Err(_) => return acked,
        }
    }
    acked
}

async fn wait_intake(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "intake never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id_counts(state: &Value) -> HashMap<String, usize> {
    let notes = state["notes"].as_array().cloned().unwrap_or_default();
    event_id_counts(notes.iter().filter_map(|n| n["text"].as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_operator_loses_nothing_and_doubles_nothing() {
    let rounds = env_num("PSA_KILL_ROUNDS", if long_tests() { 20 } else { 3 }) as usize;
    let total = env_num("PSA_KILL_EVENTS", 1000) as usize;
    let seed = env_num("PSA_KILL_SEED", rand::random::<u32>() as u64);
    eprintln!("kill run: {rounds} rounds, {total} events, seed {seed} (PSA_KILL_SEED)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    // The connection's own dispatch settings: ConnectWise has no hourly budget by default.

    let mut pending: BTreeSet<usize> = (0..total).collect();
    let per_round = total.div_ceil(rounds.max(1));
    for round in 0..rounds {
        env.restart_operator();
        wait_intake(env.intake_port).await;
        // This round offers its share of the events (plus any the last kill cut off).
        let offer: Vec<usize> = pending.range(..per_round * (round + 1)).copied().collect();
        let port = env.intake_port;
        let poster = tokio::spawn(async move {
            let mut acked = vec![];
            let mut left = offer;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !left.is_empty() && Instant::now() < deadline {
                let got = post_until_gone(port, left.clone()).await;
                left.retain(|i| !got.contains(i));
                acked.extend(got);
            }
            acked
        });
        let kill_after = Duration::from_millis(rng.random_range(300..4000));
        tokio::time::sleep(kill_after).await;
        env.operator.kill();
        let acked = poster.await.unwrap();
        for i in &acked {
            pending.remove(i);
        }
        let st = Env::sandbox_state(&env.cw).await;
        eprintln!(
            "round {}: killed after {kill_after:?}, {} acknowledged, {} in the PSA so far",
            round + 1,
            total - pending.len(),
            id_counts(&st).len()
        );
    }

    // The last start: post what is left and let it finish.
    env.restart_operator();
    wait_intake(env.intake_port).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pending.is_empty() {
        assert!(Instant::now() < deadline, "intake never took the rest");
        let got = post_until_gone(env.intake_port, pending.iter().copied().collect()).await;
        for i in got {
            pending.remove(&i);
        }
    }
    env.eventually("every event in the PSA", || async {
        let st = Env::sandbox_state(&env.cw).await;
        (id_counts(&st).len() >= total).then_some(())
    })
    .await;
    // Let anything still in flight land before counting duplicates.
    env.eventually("queue drained", || async {
        let m = reqwest::get(format!("http://127.0.0.1:{}/metrics", env.metrics_port))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        m.lines()
            .any(|l| l == "psa_operator_dispatch_queue_depth 0")
            .then_some(())
    })
    .await;
    let state = Env::sandbox_state(&env.cw).await;
    let counts = id_counts(&state);
    let lost: Vec<usize> = (0..total)
        .filter(|i| !counts.contains_key(&format!("k-{i}")))
        .collect();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let tickets = state["tickets"].as_array().map(|t| t.len()).unwrap_or(0);
    let calls = env.cw.admin().calls();
    eprintln!(
        "note listings {}, note posts {}, ticket gets {}",
        calls.count("GET", "/v4_6_release/apis/3.0/service/tickets/{id}/notes"),
        calls.count("POST", "/v4_6_release/apis/3.0/service/tickets/{id}/notes"),
        calls.count("GET", "/v4_6_release/apis/3.0/service/tickets/{id}")
    );
    eprintln!(
        "kill run result: rounds {rounds}, events {total}, lost {}, duplicates {duplicates}, tickets {tickets}",
        lost.len()
    );
    for (id, _) in counts.iter().filter(|(_, c)| **c > 1) {
        let line = format!("Event id: {id}");
        let notes: Vec<&Value> = state["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| {
                n["text"]
                    .as_str()
                    .is_some_and(|t| t.lines().any(|l| l.trim() == line))
            })
            .collect();
        eprintln!("{id} delivered more than once: {notes:#?}");
        let mut logs: Vec<_> = std::fs::read_dir(env.cluster.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("operator-"))
            .collect();
        logs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for l in text.lines().filter(|l| {
                l.contains(&format!("{id} "))
                    || l.contains(&format!("{id}\""))
                    || l.ends_with(id.as_str())
            }) {
                eprintln!("{}: {l}", log.display());
            }
        }
    }
    let misrouted = misrouted(&state);
    eprintln!("misrouted events: {}", misrouted.len());
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(duplicates, 0, "duplicate deliveries");
    assert_eq!(tickets, USERS, "one ticket per user, no duplicate ticket");
    assert!(
        misrouted.is_empty(),
        "events on the wrong company: {misrouted:#?}"
    );
}

/// Events whose note sits on a ticket of another company than their organization's mapping.
fn misrouted(state: &Value) -> Vec<String> {
    let company_of: HashMap<i64, &str> = state["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["id"].as_i64()?, t["company"]["name"].as_str()?)))
        .collect();
    let mut wrong = vec![];
    for note in state["notes"].as_array().into_iter().flatten() {
        let Some(text) = note["text"].as_str() else {
            continue;
        };
        let company = note["ticketId"]
            .as_i64()
            .and_then(|t| company_of.get(&t))
            .copied()
            .unwrap_or("?");
        for id in event_id_counts([text]).keys() {
            let Some(i) = id.strip_prefix("k-").and_then(|n| n.parse::<usize>().ok()) else {
                continue;
            };
            let wanted = organization(i).1;
            if company != wanted {
                wrong.push(format!("{id}: on {company:?}, wanted {wanted:?}"));
            }
        }
    }
    wrong
}
