//! GitOps-grade health. Honest health during a PSA outage: the connection says `Synced=False PsaUnavailable` while its
//! `Ready` stays as last known for the grace, then `Unknown` — never `False`, so Argo CD and Flux
//! do not report the integration broken during a vendor maintenance window. Mappings do not
//! cascade the connection's outage, and the alerts accepted meanwhile are delivered afterwards.

use std::time::{Duration, Instant};

use psa_operator::sandbox::Faults;
use serde_json::json;

use crate::controllers::{patch, Env};
use crate::packaging::gitops::{argo_verdict, flux_verdict};

/// A resource as the API server has it (what Argo CD and Flux read).
async fn live(env: &Env, what: &str) -> serde_json::Value {
    let out = env
        .cluster
        .kubectl_ok(&["get", "-n", "psa", what, "-o", "json"])
        .await;
    serde_json::from_str(&out).unwrap()
}

/// Asks the operator to re-check a resource now (as `kubectl annotate` would).
async fn recheck(env: &Env, what: &str, value: &str) {
    patch(
        env,
        what,
        "merge",
        &json!({"metadata": {"annotations": {"psa-operator.io/reconcile-requested-at": value}}})
            .to_string(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_synced_false_not_ready_false() {
    let grace = Duration::from_secs(8);
    let env = Env::start_with_env(&[("PSA_READY_GRACE", "8s")]).await;
    crate::fixtures::wait_ready(&env, &["psaconnection/demo-cw", "customermapping/contoso"]).await;
    patch(
        &env,
        "psaconnection/demo-cw",
        "merge",
        r#"{"spec":{"dispatch":{"requestsPerHour":1000000,"initialBackoff":"500ms","maxAttempts":30}}}"#,
    )
    .await;
    // The outage starts once the new generation is Ready: what Argo CD and Flux then read is the
    // last known state of this generation (an older one would rightly be Progressing).
    env.eventually("the patched generation Ready", || async {
        let generation = env
            .jsonpath("psaconnection/demo-cw", "{.metadata.generation}")
            .await;
        let ready_of = env
            .jsonpath(
                "psaconnection/demo-cw",
                r#"{.status.conditions[?(@.type=="Ready")].observedGeneration}"#,
            )
            .await;
        let ready = env.condition("psaconnection/demo-cw", "Ready").await.0;
        (ready == "True" && generation == ready_of).then_some(())
    })
    .await;

    crate::fixtures::psa_outage(&env.cw);
    let outage = Instant::now();
    recheck(&env, "psaconnection/demo-cw", "outage-1").await;
    recheck(&env, "customermapping/contoso", "outage-1").await;
    let (_, reason, _) = env
        .wait_condition("psaconnection/demo-cw", "Synced", "False")
        .await;
    assert_eq!(reason, "PsaUnavailable");
    let (ready, reason, _) = env.condition("psaconnection/demo-cw", "Ready").await;
    assert_eq!((ready.as_str(), reason.as_str()), ("True", "Ready"));
    let (auth, _, _) = env
        .condition("psaconnection/demo-cw", "Authenticated")
        .await;
    assert_eq!(auth, "True", "an outage says nothing about the credentials");
    env.wait_condition("customermapping/contoso", "Synced", "False")
        .await;
    let (ready, _, _) = env.condition("customermapping/contoso", "Ready").await;
    assert_eq!(ready, "True", "the mapping does not cascade the outage");
    // What Argo CD and Flux make of the live objects: still healthy, not Degraded / Failed.
    for what in ["psaconnection/demo-cw", "customermapping/contoso"] {
        let obj = live(&env, what).await;
        let (argo, message) = argo_verdict(&obj);
        assert_eq!(argo, "Healthy", "{what} in the outage: {message}");
        assert_eq!(flux_verdict(&obj), "Current", "{what} in the outage");
    }

    // An alert during the outage is accepted and queued.
    let r = crate::fixtures::post_alert(
        &env,
        "demo-cw",
        "demo-cw-intake-token",
        &json!({"id": "outage-1", "organization": "Contoso Ltd",
            "user": "outage@contoso.example", "alertType": "Too Many Downloads",
            "title": "Too Many Downloads", "description": "during the outage"}),
    )
    .await;
    assert_eq!(r.status(), 202);

    // Past the grace: Ready is Unknown (kstatus Reconciling), still not False.
    tokio::time::sleep((grace + Duration::from_secs(1)).saturating_sub(outage.elapsed())).await;
    recheck(&env, "psaconnection/demo-cw", "outage-2").await;
    let (_, reason, _) = env
        .wait_condition("psaconnection/demo-cw", "Ready", "Unknown")
        .await;
    assert_eq!(reason, "PsaUnavailable");
    let (reconciling, _, _) = env.condition("psaconnection/demo-cw", "Reconciling").await;
    assert_eq!(reconciling, "True");
    let (stalled, _, _) = env.condition("psaconnection/demo-cw", "Stalled").await;
    assert_eq!(stalled, "", "an outage is not a stall");
    let obj = live(&env, "psaconnection/demo-cw").await;
    let (argo, message) = argo_verdict(&obj);
    assert_eq!(argo, "Progressing", "past the grace: {message}");
    assert_eq!(flux_verdict(&obj), "InProgress", "past the grace");

    // The PSA is back: everything green again, the queued alert on the mapped company.
    env.cw.admin().set_faults(Faults::default()).unwrap();
    recheck(&env, "psaconnection/demo-cw", "outage-3").await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    env.wait_condition("psaconnection/demo-cw", "Synced", "True")
        .await;
    let ticket = env
        .eventually("the queued alert's ticket", || async {
            let st = Env::sandbox_state(&env.cw).await;
            st["tickets"].as_array().and_then(|t| {
                t.iter()
                    .find(|t| {
                        t["summary"]
                            .as_str()
                            .is_some_and(|s| s.contains("outage@contoso.example"))
                    })
                    .cloned()
            })
        })
        .await;
    assert_eq!(ticket["company"]["name"], "Contoso Ltd", "{ticket}");
}

/// A Kaseya BMS connection that leaves `ticket.status` unset could never create a ticket (the BMS
/// document requires StatusId): the reconciler refuses it before any alert
/// (`controllers::kaseya_bms_connection_becomes_ready`), and `validate` says the same before
/// anything is synced.
#[test]
fn validate_refuses_a_setting_the_psa_requires() {
    use psa_operator::gitops::validate::validate_sources;
    use psa_operator::gitops::yaml_docs::Source;
    let connection = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/samples/02-psaconnection-kaseya-bms.yaml"),
    )
    .unwrap();
    let without_status: String = connection
        .lines()
        .filter(|l| !l.trim_start().starts_with("status:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let v = validate_sources(&[Source {
        name: "bms.yaml".into(),
        text: without_status,
    }]);
    let d = v
        .diagnostics
        .iter()
        .find(|d| d.reason == "RequiredByPsa")
        .unwrap_or_else(|| panic!("{:#?}", v.diagnostics));
    assert_eq!(d.field, "spec.ticket.status");
    assert!(d.message.contains("StatusId"), "{}", d.message);
    assert!(d.line > 0);
}

/// The store removed under a running operator (the red-team case of [H2]): the intake answers
/// 503, and the connection says so — `StoreHealthy=False StoreUnavailable`, `Ready=False` with
/// that reason (it no longer promises "alerts become tickets"), `Reconciling` rather than
/// `Stalled`, and a Warning Event. A restart on a fresh store makes it healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_writes_shows_on_the_connection() {
    let mut env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    let (_, reason, _) = env
        .wait_condition("psaconnection/demo-cw", "StoreHealthy", "True")
        .await;
    assert_eq!(reason, "StoreAvailable");

    let db = env.cluster.dir.path().join("store.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let (_, reason, message) = env
        .wait_condition("psaconnection/demo-cw", "StoreHealthy", "False")
        .await;
    assert_eq!(reason, "StoreUnavailable");
    assert!(message.contains("503"), "{message}");
    assert!(
        !message.contains(&*env.cluster.dir.path().to_string_lossy()),
        "no store path in the condition: {message}"
    );
    let (ready, reason, _) = env.condition("psaconnection/demo-cw", "Ready").await;
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "StoreUnavailable")
    );
    let (reconciling, _, _) = env.condition("psaconnection/demo-cw", "Reconciling").await;
    assert_eq!(reconciling, "True");
    let (stalled, _, _) = env.condition("psaconnection/demo-cw", "Stalled").await;
    assert_eq!(stalled, "", "an outage of the store is not stalled");
    env.eventually("a Warning Event StoreUnavailable", || async {
        let out = env
            .cluster
            .kubectl(&["get", "events", "-n", "psa", "-o", "json"])
            .await;
        let events: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        events["items"]
            .as_array()?
            .iter()
            .any(|e| e["reason"] == "StoreUnavailable" && e["type"] == "Warning")
            .then_some(())
    })
    .await;

    env.restart_operator();
    env.wait_condition("psaconnection/demo-cw", "StoreHealthy", "True")
        .await;
    let (ready, reason, _) = env
        .wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    assert_eq!((ready.as_str(), reason.as_str()), ("True", "Ready"));
}
