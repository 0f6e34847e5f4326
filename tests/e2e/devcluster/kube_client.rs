//! kube-rs against the devcluster: list, watch (both LIST+WATCH and streaming lists), status
//! apply without a no-op storm, the finalizer helper's JSON patches, and Recorder events.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use psa_operator::api::PsaConnection;
use serde_json::json;
use tokio::sync::mpsc;

use super::Cluster;

const WAIT: Duration = Duration::from_secs(30);

fn connection(name: &str) -> PsaConnection {
    serde_json::from_value(json!({
        "apiVersion": "psa-operator.io/v1alpha1",
        "kind": "PsaConnection",
        "metadata": {"name": name, "labels": {"tier": "gold"}},
        "spec": {"provider": {"kaseyaBms": {
            "url": "https://api.bms.kaseya.com", "tenant": "acme",
            "credentialsSecretRef": {"name": "keys"}}}}
    }))
    .expect("valid PsaConnection")
}

/// Collects `(event kind, object name)` from a watcher until the test ends.
fn spawn_watcher(
    api: Api<PsaConnection>,
    config: watcher::Config,
) -> mpsc::UnboundedReceiver<(String, String)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = watcher(api, config).boxed();
        while let Some(ev) = stream.next().await {
            let item = match ev {
                Ok(watcher::Event::Apply(o)) => ("Apply".to_string(), o.name_any()),
                Ok(watcher::Event::Delete(o)) => ("Delete".to_string(), o.name_any()),
                Ok(watcher::Event::InitApply(o)) => ("InitApply".to_string(), o.name_any()),
                Ok(watcher::Event::Init) => ("Init".to_string(), String::new()),
                Ok(watcher::Event::InitDone) => ("InitDone".to_string(), String::new()),
                Err(e) => ("Error".to_string(), e.to_string()),
            };
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

async fn expect_event(rx: &mut mpsc::UnboundedReceiver<(String, String)>, kind: &str, name: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} {name} within {WAIT:?}"))
            .expect("watcher running");
        assert_ne!(got.0, "Error", "watcher error: {}", got.1);
        if got.0 == kind && got.1 == name {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_list_watch_status_finalizer_and_events() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let client = c.client().await;
    let api: Api<PsaConnection> = Api::namespaced(client.clone(), "default");

    let mut events = spawn_watcher(api.clone(), watcher::Config::default());
    expect_event(&mut events, "InitDone", "").await;

    let created = api
        .create(&PostParams::default(), &connection("main"))
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    expect_event(&mut events, "Apply", "main").await;

    let listed = api
        .list(&ListParams::default().labels("tier=gold"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert!(api
        .list(&ListParams::default().labels("tier=silver"))
        .await
        .expect("list")
        .items
        .is_empty());

    // Status through server-side apply, as the controllers write it; the repeat is a no-op.
    let status = json!({
        "apiVersion": "psa-operator.io/v1alpha1", "kind": "PsaConnection",
        "status": {"provider": "KaseyaBMS", "observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "False", "reason": "AuthenticationFailed",
             "message": "credentials rejected", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    let pp = PatchParams::apply("psa-operator").force();
    let first = api
        .patch_status("main", &pp, &Patch::Apply(&status))
        .await
        .expect("status apply");
    let second = api
        .patch_status("main", &pp, &Patch::Apply(&status))
        .await
        .expect("status apply again");
    assert_eq!(first.resource_version(), second.resource_version());
    assert_eq!(
        second.status.as_ref().and_then(|s| s.provider.as_deref()),
        Some("KaseyaBMS")
    );
    assert_eq!(
        second.metadata.generation,
        Some(1),
        "status does not bump generation"
    );

    // A Recorder event (events.k8s.io/v1) is readable as a core/v1 Event.
    let recorder = Recorder::new(client.clone(), Reporter::from("psa-operator"));
    let auth_failed = Event {
        type_: EventType::Warning,
        reason: "AuthenticationFailed".into(),
        note: Some("credentials rejected".into()),
        action: "Validate".into(),
        secondary: None,
    };
    recorder
        .publish(&auth_failed, &second.object_ref(&()))
        .await
        .expect("event published");
    // The same event again: the Recorder merge-patches a `series` onto the stored Event.
    recorder
        .publish(&auth_failed, &second.object_ref(&()))
        .await
        .expect("event published again");
    let core_events: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let found = core_events
        .list(
            &ListParams::default()
                .fields("involvedObject.name=main,involvedObject.kind=PsaConnection"),
        )
        .await
        .expect("events list");
    assert_eq!(found.items.len(), 1);
    assert_eq!(
        found.items[0].reason.as_deref(),
        Some("AuthenticationFailed")
    );
    let described = c.kubectl_ok(&["describe", "psaconnection", "main"]).await;
    assert!(described.contains("AuthenticationFailed"), "{described}");
    assert!(described.contains("credentials rejected"), "{described}");

    // The finalizer helper: add (JSON patch `test` null), then clean up on deletion.
    let fin = "psa-operator.io/cleanup";
    let obj = std::sync::Arc::new(api.get("main").await.expect("get"));
    finalizer(&api, fin, obj, |ev| async move {
        match ev {
            FinalizerEvent::Apply(_) | FinalizerEvent::Cleanup(_) => {
                Ok::<_, std::convert::Infallible>(kube::runtime::controller::Action::await_change())
            }
        }
    })
    .await
    .expect("finalizer added");
    let held = api.get("main").await.expect("get");
    assert_eq!(held.finalizers(), &[fin.to_string()]);

    api.delete("main", &DeleteParams::default())
        .await
        .expect("delete");
    let deleting = std::sync::Arc::new(api.get("main").await.expect("still there"));
    assert!(deleting.meta().deletion_timestamp.is_some());
    finalizer(&api, fin, deleting, |ev| async move {
        assert!(matches!(ev, FinalizerEvent::Cleanup(_)));
        Ok::<_, std::convert::Infallible>(kube::runtime::controller::Action::await_change())
    })
    .await
    .expect("finalizer removed");
    expect_event(&mut events, "Delete", "main").await;
    assert!(api.get_opt("main").await.expect("get_opt").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher_gets_initial_objects() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let api: Api<PsaConnection> = Api::namespaced(c.client().await, "default");
    api.create(&PostParams::default(), &connection("early"))
        .await
        .expect("create");
    let mut events = spawn_watcher(api.clone(), watcher::Config::default().streaming_lists());
    expect_event(&mut events, "InitApply", "early").await;
    expect_event(&mut events, "InitDone", "").await;
    api.create(&PostParams::default(), &connection("late"))
        .await
        .expect("create");
    expect_event(&mut events, "Apply", "late").await;
}

/// A watch from a resourceVersion older than the change log answers 200 with one ERROR 410
/// event (an HTTP 410 would make kube retry the same version forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_old_watch_gets_an_error_event_and_kube_relists() {
    let state = tempfile::tempdir().expect("temp dir");
    let config = super::persistent(state.path());
    let c = Cluster::start_with(config.clone()).await;
    c.install_crds().await;
    let api: Api<PsaConnection> = Api::namespaced(c.client().await, "default");
    api.create(&PostParams::default(), &connection("kept"))
        .await
        .expect("create");
    c.server.shutdown().await.expect("shutdown");

    let c = Cluster::start_with(config).await;
    let url = format!(
        "{}/apis/psa-operator.io/v1alpha1/namespaces/default/psaconnections?watch=true&resourceVersion=1",
        c.server.url()
    );
    let resp = reqwest::get(&url).await.expect("watch request");
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(WAIT, resp.text())
        .await
        .expect("stream closes after the error")
        .expect("body");
    let event: serde_json::Value = serde_json::from_str(body.trim()).expect("one JSON event");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");

    let api: Api<PsaConnection> = Api::namespaced(c.client().await, "default");
    let mut events = spawn_watcher(api, watcher::Config::default());
    expect_event(&mut events, "InitApply", "kept").await;
}
