//! The shared `/_sandbox/` admin API over HTTP, as the PSA emulators' tests use it.

use psa_operator::sandbox::{CallReport, RunningSandbox};
use serde_json::Value;

fn admin(sb: &RunningSandbox, what: &str) -> String {
    format!("{}/_sandbox/{what}", sb.base_url())
}

/// `GET /_sandbox/calls`.
pub async fn calls(sb: &RunningSandbox) -> CallReport {
    crate::support::get_json(&admin(sb, "calls")).await
}

/// `DELETE /_sandbox/calls`: counting starts afresh.
pub async fn clear_calls(sb: &RunningSandbox) {
    let r = reqwest::Client::new()
        .delete(admin(sb, "calls"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// `POST /_sandbox/faults`.
pub async fn set_faults(sb: &RunningSandbox, faults: Value) {
    post_ok(sb, "faults", faults).await;
}

/// `POST /_sandbox/database` (Autotask's database-wide settings: processing time, request
/// counters).
pub async fn set_database(sb: &RunningSandbox, body: Value) {
    post_ok(sb, "database", body).await;
}

async fn post_ok(sb: &RunningSandbox, what: &str, body: Value) {
    let r = reqwest::Client::new()
        .post(admin(sb, what))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "POST /_sandbox/{what}");
}

/// `GET /_sandbox/state`.
pub async fn state(sb: &RunningSandbox) -> Value {
    crate::support::get_json(&admin(sb, "state")).await
}

/// The sandbox's tickets (with their notes) as it holds them, oldest first.
pub async fn tickets(sb: &RunningSandbox) -> Vec<Value> {
    state(sb).await["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
