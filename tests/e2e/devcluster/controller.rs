//! A kube-runtime Controller against the devcluster: it watches PsaConnections and the
//! ConfigMaps they own (metadata-only watch), applies status and children, records Events, and
//! takes a Lease — and a resource that does not change stops being reconciled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use psa_operator::api::PsaConnection;
use serde_json::json;

use super::Cluster;

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
    reconciles: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(obj: Arc<PsaConnection>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let pp = PatchParams::apply("psa-operator").force();
    let owner = obj.controller_owner_ref(&()).expect("has uid");
    let child = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{name}-settings"), "ownerReferences": [owner]},
        "data": {"provider": "KaseyaBMS"}
    });
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .patch(&format!("{name}-settings"), &pp, &Patch::Apply(&child))
        .await?;
    let status = json!({
        "apiVersion": "psa-operator.io/v1alpha1", "kind": "PsaConnection",
        "status": {"provider": "KaseyaBMS", "observedGeneration": obj.metadata.generation,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Connected",
                "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    Api::<PsaConnection>::namespaced(ctx.client.clone(), &ns)
        .patch_status(&name, &pp, &Patch::Apply(&status))
        .await?;
    ctx.recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Reconciled".into(),
                note: Some("settings written".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &obj.object_ref(&()),
        )
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<PsaConnection>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_converges_without_a_reconcile_storm() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let client = c.client().await;
    let conns: Api<PsaConnection> = Api::namespaced(client.clone(), "default");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), Reporter::from("psa-operator")),
        reconciles: AtomicUsize::new(0),
    });
    let controller = Controller::new(conns.clone(), watcher::Config::default())
        .owns(maps.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    let conn: PsaConnection = serde_json::from_value(json!({
        "apiVersion": "psa-operator.io/v1alpha1", "kind": "PsaConnection",
        "metadata": {"name": "main"},
        "spec": {"provider": {"kaseyaBms": {"url": "https://api.bms.kaseya.com", "tenant": "acme",
            "credentialsSecretRef": {"name": "keys"}}}}
    }))
    .expect("valid");
    conns
        .create(&PostParams::default(), &conn)
        .await
        .expect("create");
    eventually("status Ready", async || {
        conns
            .get_status("main")
            .await
            .ok()
            .and_then(|o| o.status)
            .and_then(|s| s.provider)
            .is_some()
    })
    .await;
    eventually("owned ConfigMap", async || {
        maps.get_opt("main-settings").await.ok().flatten().is_some()
    })
    .await;

    // Quiet period: nothing changes, so reconciles must stop.
    let settled = ctx.reconciles.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = ctx.reconciles.load(Ordering::SeqCst);
    eprintln!("reconciles: {settled} when converged, {after} after a 10 s quiet period");
    assert!(
        after <= 4,
        "a resource that does not change was reconciled {after} times ({settled} when it converged)"
    );

    // Deleting the owned ConfigMap reaches the controller through the metadata watch.
    maps.delete("main-settings", &DeleteParams::default())
        .await
        .expect("delete child");
    eventually("child recreated", async || {
        maps.get_opt("main-settings").await.ok().flatten().is_some()
    })
    .await;
    assert!(ctx.reconciles.load(Ordering::SeqCst) > after);

    let described = c.kubectl_ok(&["describe", "psaconnection", "main"]).await;
    assert!(described.contains("Reconciled"), "{described}");
    running.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_updates_conflict_on_a_stale_resource_version() {
    let c = Cluster::start().await;
    let leases: Api<Lease> = Api::namespaced(c.client().await, "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "psa-operator-leader"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}
    }))
    .expect("lease");
    let created = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    let mut taken = created.clone();
    taken.spec.as_mut().expect("spec").holder_identity = Some("pod-b".into());
    leases
        .replace("psa-operator-leader", &PostParams::default(), &taken)
        .await
        .expect("first replace wins");
    let mut stale = created;
    stale.spec.as_mut().expect("spec").holder_identity = Some("pod-c".into());
    let err = leases
        .replace("psa-operator-leader", &PostParams::default(), &stale)
        .await
        .expect_err("stale replace loses");
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 409),
        other => panic!("unexpected error {other}"),
    }
    let holder = leases
        .get("psa-operator-leader")
        .await
        .expect("get")
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("pod-b"));
}
