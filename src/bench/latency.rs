//! `bench e2e-latency`: from the intake's 202 to the ticket being visible in the PSA sandbox, at
//! a steady alert rate with latency added to every PSA call. Every alert has its own grouping
//! key, so every alert creates a ticket. Visibility is observed by polling the sandbox's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use super::calls::alert;
use super::convergence::ready_connection;
use super::env::BenchEnv;
use super::stats::summarize;
use super::BenchArgs;
use crate::sandbox::admin::Faults;

const POLL: Duration = Duration::from_millis(20);

fn user(i: usize) -> String {
    format!("latency{i}@contoso.example")
}

/// Index of the alert a ConnectWise ticket summary ("{alertType} — {user}") belongs to.
fn alert_of(summary: &str) -> Option<usize> {
    summary
        .rsplit(' ')
        .next()?
        .strip_prefix("latency")?
        .strip_suffix("@contoso.example")?
        .parse()
        .ok()
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let alerts = args.alerts.unwrap_or(500).max(1);
    let rate = args.rate.unwrap_or(100).max(1);
    let latency_ms = args.latency_ms.unwrap_or(50);
    let mut env = BenchEnv::start().await?;
    let (cw, conn) = ready_connection(&mut env, 0, &[]).await?;
    cw.admin()
        .set_faults(Faults {
            latency_ms,
            ..Default::default()
        })
        .map_err(anyhow::Error::msg)?;
    cw.admin().clear_calls();

    // Sender: one alert every 1/rate s, each POST on its own task so a slow answer does not
    // delay the schedule; the 202's arrival time is the start of the measured interval.
    let accepted: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let url = env.alerts_url(&conn.name);
    let token = conn.token();
    let http = env.http.clone();
    let sender = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut posts = Vec::with_capacity(alerts);
            for i in 0..alerts {
                tick.tick().await;
                let (http, url, token, accepted) =
                    (http.clone(), url.clone(), token.clone(), accepted.clone());
                posts.push(tokio::spawn(async move {
                    let body = alert(&format!("lat-{i}"), &user(i));
                    let resp = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    if resp.status() != reqwest::StatusCode::ACCEPTED {
                        bail!("intake answered {}", resp.status());
                    }
                    accepted
                        .lock()
                        .expect("accepted map")
                        .insert(i, Instant::now());
                    anyhow::Ok(())
                }));
            }
            for p in posts {
                p.await??;
            }
            anyhow::Ok(())
        })
    };

    // Observer: polls the sandbox state and notes when each alert's ticket first appears.
    let state_url = format!("{}/_sandbox/state", cw.base_url());
    let mut seen: HashMap<usize, Instant> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120 + (alerts / rate) as u64);
    while seen.len() < alerts {
        if Instant::now() > deadline {
            bail!(
                "{} of {alerts} tickets visible before the deadline; operator log:\n{}",
                seen.len(),
                env.operator_log_tail()
            );
        }
        let state: Value = env.http.get(&state_url).send().await?.json().await?;
        let now = Instant::now();
        for t in state["tickets"].as_array().into_iter().flatten() {
            if let Some(i) = t["summary"].as_str().and_then(alert_of) {
                seen.entry(i).or_insert(now);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    sender.await??;
    let accepted = accepted.lock().expect("accepted map").clone();
    let latencies = (0..alerts)
        .filter_map(|i| Some(seen.get(&i)?.saturating_duration_since(*accepted.get(&i)?)))
        .collect();
    let summary = summarize(latencies);
    let calls = cw.admin().calls().total;
    env.stop().await?;
    Ok(json!({
        "provider": "connectWise",
        "alerts": alerts,
        "alertsPerSecond": rate,
        "psaLatencyMs": latency_ms,
        "pollIntervalMs": POLL.as_millis() as u64,
        "latency": summary,
        "targetP99Ms": 2 * latency_ms + 50,
        "psaCalls": calls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_map_back_to_their_alert() {
        assert_eq!(
            alert_of("Too Many Downloads — latency17@contoso.example"),
            Some(17)
        );
        assert_eq!(alert_of("Too Many Downloads — jane@contoso.example"), None);
        assert_eq!(alert_of(""), None);
    }
}
