//! `bench calls-per-alert`: PSA calls (counted by the sandbox) each dispatch scenario costs, on
//! ConnectWise and on Kaseya BMS. Every scenario starts from zeroed counters and ends when the
//! operator's queue is empty and the sandbox has been quiet for a second.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::env::{loopback, BenchEnv};
use super::manifests::{self, ConnectionSpec, Provider, NAMESPACE};
use super::BenchArgs;
use crate::bench::throughput::post_all;
use crate::sandbox::{self, RunningSandbox};

/// Wait used by the `groupWait` connections: long enough for a loopback burst to land in it.
const GROUP_WAIT: &str = "2s";
const QUIET: Duration = Duration::from_secs(1);
/// Quiet period after a burst on a `groupWait` connection: the whole wait passes without a PSA
/// call (and the queue-depth gauge is sampled, not exact), so quiet must outlast the wait.
const QUIET_AFTER_WAIT: Duration = Duration::from_millis(3500);

/// An alert of organization Contoso Ltd (mapped by a CustomerMapping on every connection).
pub fn alert(id: &str, user: &str) -> Value {
    json!({
        "id": id, "organization": "Contoso Ltd", "user": user,
        "alertType": "Too Many Downloads", "severity": "high",
        "title": format!("Too Many Downloads for {user}"),
        "description": "412 files downloaded from SharePoint in 10 minutes",
        "occurredAt": "2026-11-24T16:18:28Z",
    })
}

/// The Contoso mapping of a connection. Both demo PSAs hold Contoso with the contact
/// alerts@contoso.example and the contract Managed Security.
fn contoso_mapping(connection: &str) -> String {
    format!(
        "apiVersion: psa-operator.io/v1alpha1\nkind: CustomerMapping\n\
         metadata: {{name: contoso-{connection}, namespace: {NAMESPACE}}}\n\
         spec:\n  connectionRef: {{name: {connection}}}\n  organization: Contoso Ltd\n\
         \x20 company: {{identifier: CONTOSO}}\n  defaultContact: {{email: alerts@contoso.example}}\n\
         \x20 contract: {{name: Managed Security}}\n"
    )
}

struct Measured {
    calls: u64,
    alerts: usize,
    tickets: usize,
    notes: usize,
    routes: BTreeMap<String, u64>,
}

/// Tickets and notes in a sandbox's state: ConnectWise keeps notes in their own table, Kaseya
/// BMS nests them in each ticket.
pub fn tickets_and_notes(state: &Value) -> (usize, usize) {
    let tickets = state["tickets"].as_array().map(Vec::len).unwrap_or(0);
    let notes = match state["notes"].as_array() {
        Some(n) => n.len(),
        None => state["tickets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["notes"].as_array().map(Vec::len).unwrap_or(0))
            .sum(),
    };
    (tickets, notes)
}

async fn sandbox_counts(env: &BenchEnv, sb: &RunningSandbox) -> anyhow::Result<(usize, usize)> {
    let state: Value = env
        .http
        .get(format!("{}/_sandbox/state", sb.base_url()))
        .send()
        .await?
        .json()
        .await?;
    Ok(tickets_and_notes(&state))
}

impl Measured {
    fn json(&self) -> Value {
        json!({
            "alerts": self.alerts,
            "psaCalls": self.calls,
            "ticketsCreated": self.tickets,
            "notesAdded": self.notes,
            "callsPerAlert": super::intake::round(self.calls as f64 / self.alerts.max(1) as f64),
            "byRoute": self.routes,
        })
    }
}

/// Zeroes the counters, posts `bodies` (one alert each) from 4 clients, waits until settled.
async fn scenario(
    env: &BenchEnv,
    sb: &RunningSandbox,
    conn: &ConnectionSpec,
    alerts: Vec<Value>,
) -> anyhow::Result<Measured> {
    let before = sandbox_counts(env, sb).await?;
    sb.admin().clear_calls();
    let n = alerts.len();
    let bodies = alerts.iter().map(Value::to_string).collect();
    post_all(
        &env.http,
        &env.alerts_url(&conn.name),
        Some(&conn.token()),
        bodies,
        4,
        202,
    )
    .await?;
    let quiet = if conn.group_wait == GROUP_WAIT {
        QUIET_AFTER_WAIT
    } else {
        QUIET
    };
    env.settle(sb, quiet).await?;
    let report = sb.admin().calls();
    let after = sandbox_counts(env, sb).await?;
    Ok(Measured {
        calls: report.total,
        alerts: n,
        tickets: after.0.saturating_sub(before.0),
        notes: after.1.saturating_sub(before.1),
        routes: report
            .calls
            .iter()
            .map(|c| (format!("{} {}", c.method, c.route), c.count))
            .collect(),
    })
}

async fn provider_figures(
    env: &BenchEnv,
    sb: &RunningSandbox,
    plain: &ConnectionSpec,
    waiting: &ConnectionSpec,
    burst: usize,
) -> anyhow::Result<Value> {
    let p = plain.provider.label();
    let first = scenario(
        env,
        sb,
        plain,
        vec![alert(&format!("{p}-first"), "jane@contoso.example")],
    )
    .await?;
    let follow = scenario(
        env,
        sb,
        plain,
        vec![alert(&format!("{p}-follow"), "jane@contoso.example")],
    )
    .await?;
    let one_key = |tag: &str| -> Vec<Value> {
        (0..burst)
            .map(|i| alert(&format!("{p}-{tag}-{i}"), &format!("{tag}@contoso.example")))
            .collect()
    };
    let burst_plain = scenario(env, sb, plain, one_key("burst")).await?;
    let burst_wait = scenario(env, sb, waiting, one_key("burstwait")).await?;
    let many_keys = (0..burst)
        .map(|i| {
            alert(
                &format!("{p}-keys-{i}"),
                &format!("user{i}@contoso.example"),
            )
        })
        .collect();
    let keys = scenario(env, sb, plain, many_keys).await?;
    Ok(json!({
        "firstAlert": first.json(),
        "followUp": follow.json(),
        "burstOneKey": burst_plain.json(),
        "burstOneKeyGroupWait": burst_wait.json(),
        "distinctKeys": keys.json(),
    }))
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    let burst = args.burst.unwrap_or(100).max(1);
    let mut env = BenchEnv::start().await?;
    let cw = sandbox::connectwise::start(
        loopback().await?,
        manifests::connectwise_seed(0)?,
        Default::default(),
    )
    .await?;
    let bms =
        sandbox::bms::start(loopback().await?, manifests::bms_seed(), Default::default()).await?;
    let spec = |name: &str, provider, sb: &RunningSandbox, wait: &str| ConnectionSpec {
        name: name.into(),
        provider,
        url: sb.base_url(),
        group_wait: wait.into(),
        suspend: false,
    };
    let conns = [
        spec("cw", Provider::ConnectWise, &cw, "0s"),
        spec("cw-wait", Provider::ConnectWise, &cw, GROUP_WAIT),
        spec("bms", Provider::KaseyaBms, &bms, "0s"),
        spec("bms-wait", Provider::KaseyaBms, &bms, GROUP_WAIT),
    ];
    for c in &conns {
        env.apply(&manifests::connection_yaml(c))?;
    }
    for c in &conns {
        env.apply(&contoso_mapping(&c.name))?;
    }
    env.start_operator()?;
    for c in &conns {
        env.wait_connection_ready(&c.name).await?;
    }
    env.until(
        "the Contoso mappings Ready",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || async { Ok((env.mappings_ready().await? == conns.len()).then_some(())) },
    )
    .await?;
    // Start-up resolution is done; what follows is dispatch only.
    env.settle(&cw, QUIET).await?;
    env.settle(&bms, QUIET).await?;
    let connectwise = provider_figures(&env, &cw, &conns[0], &conns[1], burst).await?;
    let kaseya = provider_figures(&env, &bms, &conns[2], &conns[3], burst).await?;
    env.stop().await?;
    Ok(json!({
        "burst": burst,
        "groupWait": GROUP_WAIT,
        "grouping": "User",
        "connectWise": connectwise,
        "kaseyaBms": kaseya,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_counted_in_either_sandbox_shape() {
        let cw = json!({"tickets": [{"id": 1}, {"id": 2}], "notes": [{"ticketId": 1}]});
        assert_eq!(tickets_and_notes(&cw), (2, 1));
        let bms = json!({"tickets": [{"id": 1, "notes": [{}, {}]}, {"id": 2, "notes": []}]});
        assert_eq!(tickets_and_notes(&bms), (2, 2));
        assert_eq!(tickets_and_notes(&json!({})), (0, 0));
    }
}
