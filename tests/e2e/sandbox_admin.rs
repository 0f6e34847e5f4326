//! The shared `/_sandbox/` admin API over HTTP, as the PSA emulators' tests use it.

use psa_operator::sandbox::{CallReport, RunningSandbox};
use serde_json::Value;

/// `GET /_sandbox/calls`.
pub async fn calls(sb: &RunningSandbox) -> CallReport {
    reqwest::get(format!("{}/_sandbox/calls", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `DELETE /_sandbox/calls`: counting starts afresh.
pub async fn clear_calls(sb: &RunningSandbox) {
    let r = reqwest::Client::new()
        .delete(format!("{}/_sandbox/calls", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// `POST /_sandbox/faults`.
pub async fn set_faults(sb: &RunningSandbox, faults: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sb.base_url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `GET /_sandbox/state`.
pub async fn state(sb: &RunningSandbox) -> Value {
    reqwest::get(format!("{}/_sandbox/state", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
