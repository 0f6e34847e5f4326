//! Adoption and deletion of catalog items, safe for GitOps: an existing item is adopted only when
//! the spec asks, an adopted item keeps what the spec does not set and survives deletion, two
//! resources never fight over one item, and deleting a connection first never leaves its services
//! stuck Terminating.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::controllers::{apply_text, patch, Env};

/// A catalog item a technician made by hand in ConnectWise.
async fn hand_made_item(env: &Env, identifier: &str, description: &str) -> i64 {
    let first_id = |v: Value| v[0]["id"].as_i64().expect("an id");
    let types: Value = env
        .cw_api(reqwest::Method::GET, "/procurement/types", Value::Null)
        .await
        .json()
        .await
        .unwrap();
    let subcategories: Value = env
        .cw_api(
            reqwest::Method::GET,
            "/procurement/subcategories",
            Value::Null,
        )
        .await
        .json()
        .await
        .unwrap();
    let r = env
        .cw_api(
            reqwest::Method::POST,
            "/procurement/catalog",
            json!({
                "identifier": identifier, "description": description,
                "customerDescription": description, "productClass": "Service",
                "type": {"id": first_id(types)}, "subcategory": {"id": first_id(subcategories)},
                "cost": 2.0, "price": 5.0, "inactiveFlag": false
            }),
        )
        .await;
    assert!(r.status().is_success(), "{:?}", r.text().await);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn item(env: &Env, id: i64) -> Option<Value> {
    Env::sandbox_state(&env.cw).await["catalog"]
        .as_array()?
        .iter()
        .find(|c| c["id"].as_i64() == Some(id))
        .cloned()
}

fn service(name: &str, item: &str, extra: &str) -> String {
    crate::fixtures::resource_yaml(
        "ContractService",
        name,
        "demo-cw",
        &format!("  name: {item}\n  cost: \"2.50\"\n  price: \"6.00\"\n{extra}"),
    )
}

/// Applies the service `name` for the catalog item `item` and waits until it is refused
/// (`Ready=False`); the condition's reason and message.
async fn service_refused(env: &Env, name: &str, item: &str, extra: &str) -> (String, String) {
    let (_, reason, message) = crate::fixtures::apply_until(
        env,
        &service(name, item, extra),
        &format!("contractservice/{name}"),
        "Ready",
        "False",
    )
    .await;
    (reason, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_item_is_adopted_only_when_asked_and_survives_deletion() {
    let env = Env::start().await;
    env.wait_condition("psaconnection/demo-cw", "Ready", "True")
        .await;
    let id = hand_made_item(&env, "Hand Made", "written by the MSP").await;

    // Not asked to adopt: reported, untouched.
    let (reason, message) =
        service_refused(&env, "hand", "Hand Made", "  deletionPolicy: Delete\n").await;
    assert_eq!(reason, "AdoptionNotRequested");
    assert!(message.contains("adopt: true"), "{message}");
    assert_eq!(item(&env, id).await.unwrap()["price"], 5.0);

    // Adopted: cost and price follow the spec, the description it does not set is kept.
    patch(
        &env,
        "contractservice/hand",
        "merge",
        r#"{"spec":{"adopt":true}}"#,
    )
    .await;
    env.eventually("the adopted item in step", || async {
        let c = item(&env, id).await?;
        (c["price"] == 6.0 && c["cost"] == 2.5).then_some(())
    })
    .await;
    env.wait_condition("contractservice/hand", "Ready", "True")
        .await;
    assert_eq!(
        env.jsonpath("contractservice/hand", "{.status.origin}")
            .await,
        "Adopted"
    );
    let c = item(&env, id).await.unwrap();
    assert_eq!(c["customerDescription"], "written by the MSP", "{c}");

    // deletionPolicy Delete does not delete what the operator did not create.
    env.cluster
        .kubectl_ok(&["delete", "-n", "psa", "contractservice/hand", "--wait=true"])
        .await;
    assert!(item(&env, id).await.is_some(), "the adopted item stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_resources_claiming_one_item_both_say_so() {
    let env = Env::start().await;
    env.wait_condition("contractservice/saas-alerts-monitoring", "Ready", "True")
        .await;
    // A second resource (through the same tenant) naming the sample's item.
    let (reason, message) =
        service_refused(&env, "twin", "SaaS Alerts Monitoring", "  adopt: true\n").await;
    assert_eq!(reason, "DuplicateClaim");
    assert!(message.contains("psa/saas-alerts-monitoring"), "{message}");
    env.cluster
        .kubectl_ok(&[
            "annotate",
            "-n",
            "psa",
            "contractservice/saas-alerts-monitoring",
            "psa-operator.io/reconcile-requested-at=twin",
        ])
        .await;
    let (_, reason, _) = env
        .wait_condition("contractservice/saas-alerts-monitoring", "Ready", "False")
        .await;
    assert_eq!(reason, "DuplicateClaim");
    // Removing the twin heals the original.
    crate::fixtures::delete_heals(
        &env,
        "contractservice/twin",
        "contractservice/saas-alerts-monitoring",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_connection_first_leaves_nothing_terminating() {
    let env = Env::start().await;
    apply_text(
        &env.cluster,
        &service("owned", "Owned Service", "  deletionPolicy: Delete\n"),
    )
    .await;
    env.wait_condition("contractservice/owned", "Ready", "True")
        .await;
    // What Argo CD's prune or a namespace deletion does: everything at once, connection first.
    for what in ["psaconnection/demo-cw", "contractservice/owned"] {
        env.cluster
            .kubectl_ok(&["delete", "-n", "psa", what, "--wait=false"])
            .await;
    }
    let started = Instant::now();
    loop {
        let left = env
            .cluster
            .kubectl(&[
                "get",
                "-n",
                "psa",
                "contractservice,psaconnection",
                "-o",
                "name",
            ])
            .await;
        let names = String::from_utf8_lossy(&left.stdout).to_string();
        if !names.contains("contractservice/owned") && !names.contains("psaconnection/demo-cw") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still there after 60 s: {names}\n{}",
            env.dump_on_failure().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The reconciler's cache may not have seen the status it wrote a moment ago (a connection change
/// triggers the next reconcile before the watch delivers the write). Deciding from that copy took
/// the item just created for a stranger's and wrote the status back without its id, for good
/// (`plan --detailed-exitcode` then planned an adoption and exited 2): a cached status that names
/// no item is read again from the API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cached_service_decides_from_the_api_servers_status() {
    use kube::api::{Patch, PatchParams, PostParams};
    use psa_operator::api::ContractService;
    use psa_operator::controller::context::Context;
    use psa_operator::controller::contract_service::remembered_status;
    use std::sync::Arc;

    let cluster = crate::support::dev_cluster().await;
    cluster
        .apply_yaml(&psa_operator::api::crdgen::all_crds_yaml(), "test")
        .unwrap();
    let client = crate::support::psa_namespace_and_client(&cluster);
    let api: kube::Api<ContractService> = kube::Api::namespaced(client.clone(), "psa");
    let doc: ContractService =
        serde_yaml::from_str(&service("svc", "SaaS Alerts Monitoring", "")).unwrap();
    let stale = api.create(&PostParams::default(), &doc).await.unwrap();
    api.patch_status(
        "svc",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"externalId": "77", "origin": "Created"}})),
    )
    .await
    .unwrap();
    assert!(stale.status.is_none(), "the copy from before the write");

    let ctx = Context::new(
        client,
        psa_operator::resolved::Registry::new(),
        Arc::new(psa_operator::controller::factory::RealPsaFactory),
        Arc::new(Default::default()),
    );
    let status = remembered_status(&stale, &ctx).await.unwrap();
    assert_eq!(status.external_id.as_deref(), Some("77"));
    assert_eq!(status.origin.as_deref(), Some("Created"));

    // Gone from the API server: the cached copy is all there is.
    api.delete("svc", &Default::default()).await.unwrap();
    let status = remembered_status(&stale, &ctx).await.unwrap();
    assert_eq!(status.external_id, None);
    cluster.shutdown().await.unwrap();
}
