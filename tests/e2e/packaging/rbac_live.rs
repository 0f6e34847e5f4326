//! The operator's real API calls: run it against devcluster with the samples, record every
//! request its client sends, and check each against config/rbac/required-permissions.yaml.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kube::api::Api;
use psa_operator::api::{ContractService, PsaConnection};
use psa_operator::operator::{run_operator, OperatorOptions};

use super::tools::repo;

/// (method, URI, Accept header) of each request.
type Log = Arc<Mutex<Vec<(String, String, String)>>>;

/// A tower layer that notes the method and URI of every request.
#[derive(Clone)]
struct Record(Log);

struct Recording<S> {
    inner: S,
    log: Log,
}

impl<S> tower::Layer<S> for Record {
    type Service = Recording<S>;
    fn layer(&self, inner: S) -> Recording<S> {
        Recording {
            inner,
            log: self.0.clone(),
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Recording<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let entry = (req.method().to_string(), req.uri().to_string(), accept);
        self.log.lock().unwrap().push(entry);
        self.inner.call(req)
    }
}

/// (group, resource[/subresource], verb) of an API request; `None` for discovery and OpenAPI.
fn permission(method: &str, uri: &str) -> Option<(String, String, String)> {
    let url: http::Uri = uri.parse().ok()?;
    let segs: Vec<&str> = url.path().trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let rest: &[&str] = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (resource, name, sub) = match rest {
        [] => return None,
        [r] => (*r, None, None),
        [r, n] => (*r, Some(*n), None),
        [r, n, s, ..] => (*r, Some(*n), Some(*s)),
    };
    let query = url.query().unwrap_or("");
    let watching = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match (method, name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if watching => "watch",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => return None,
    };
    let resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource.to_string(),
    };
    Some((group.to_string(), resource, verb.to_string()))
}

/// What the chart grants by default (no leader election).
fn required() -> BTreeSet<(String, String, String)> {
    super::rbac::required_permissions()
        .into_iter()
        .filter(|r| !r.leader_election)
        .map(|r| (r.group, r.resource, r.verb))
        .collect()
}

#[test]
fn requests_map_to_rbac_permissions() {
    let cases = [
        ("GET", "/apis/psa-operator.io/v1alpha1/psaconnections?&watch=true&timeoutSeconds=290", "psaconnections", "watch"),
        ("GET", "/apis/psa-operator.io/v1alpha1/psaconnections?&limit=500", "psaconnections", "list"),
        ("PATCH", "/apis/psa-operator.io/v1alpha1/namespaces/psa/psaconnections/demo-cw/status?&fieldManager=x", "psaconnections/status", "patch"),
        ("GET", "/api/v1/namespaces/psa/secrets/demo-cw-keys", "secrets", "get"),
        ("POST", "/apis/events.k8s.io/v1/namespaces/psa/events", "events", "create"),
        ("GET", "/api/v1/namespaces/psa", "namespaces", "get"),
    ];
    for (method, uri, resource, verb) in cases {
        let (_, r, v) = permission(method, uri).unwrap();
        assert_eq!((r.as_str(), v.as_str()), (resource, verb), "{method} {uri}");
    }
    assert_eq!(permission("GET", "/apis/psa-operator.io/v1alpha1"), None);
    assert_eq!(permission("GET", "/version"), None);
}

/// Waits (bounded) until `done` holds.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_call_of_the_operator_is_granted() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = crate::support::dev_cluster().await;
    let crds = std::fs::read_to_string(
        repo().join("charts/psa-operator/files/crds/psa-operator.io_psaconnections.yaml"),
    )
    .unwrap()
        + &std::fs::read_to_string(
            repo().join("charts/psa-operator/files/crds/psa-operator.io_customermappings.yaml"),
        )
        .unwrap()
        + &std::fs::read_to_string(
            repo().join("charts/psa-operator/files/crds/psa-operator.io_contractservices.yaml"),
        )
        .unwrap();
    cluster.apply_yaml(&crds, "test").unwrap();
    let mut samples = String::new();
    for file in [
        "00-namespace.yaml",
        "01-secrets.yaml",
        "02-psaconnection-connectwise.yaml",
        "02-psaconnection-kaseya-bms.yaml",
        "04-customermapping-contoso.yaml",
        "04-customermapping-fabrikam.yaml",
        "03-contractservice-saas-alerts-monitoring.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join("config/samples").join(file)).unwrap();
        // No PSA answers here: point the connections at a closed loopback port.
        samples.push_str("---\n");
        samples.push_str(
            &text
                .replace("http://127.0.0.1:8081", "http://127.0.0.1:9")
                .replace("http://127.0.0.1:8082", "http://127.0.0.1:9"),
        );
    }
    cluster.apply_yaml(&samples, "test").unwrap();

    let config = kube::Config::new(cluster.url().parse().unwrap());
    let log: Log = Arc::default();
    let recorded = kube::client::ClientBuilder::try_from(config.clone())
        .unwrap()
        .with_layer(&Record(log.clone()))
        .build();
    let observer = kube::Client::try_from(config).unwrap();
    let mut opts = OperatorOptions::with_defaults(
        dir.path().join("store.db"),
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    );
    opts.scope = psa_operator::controller::run::Scope::All;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(run_operator(recorded, opts, async move {
        let _ = stopped.await;
    }));

    // Wait for the work whose calls matter: status on the connections, the service's finalizer.
    let conns: Api<PsaConnection> = Api::namespaced(observer.clone(), "psa");
    let services: Api<ContractService> = Api::namespaced(observer.clone(), "psa");
    eventually("connection status", || async {
        conns
            .get("demo-cw")
            .await
            .ok()
            .and_then(|c| c.status)
            .is_some_and(|s| !s.conditions.is_empty())
    })
    .await;
    eventually("contract service finalizer", || async {
        services
            .get("saas-alerts-monitoring")
            .await
            .ok()
            .is_some_and(|s| s.metadata.finalizers.is_some_and(|f| !f.is_empty()))
    })
    .await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), operator).await;
    cluster.shutdown().await.unwrap();

    let used: BTreeSet<(String, String, String)> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(m, u, _)| permission(m, u))
        .collect();
    let granted = required();
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "the operator called APIs its RBAC does not grant: {missing:#?}"
    );
    // The calls that happened must include the core of the job, or the run proved nothing.
    for (group, resource, verb) in [
        ("psa-operator.io", "psaconnections", "watch"),
        ("psa-operator.io", "psaconnections/status", "patch"),
        ("psa-operator.io", "contractservices", "patch"),
        ("", "secrets", "watch"),
    ] {
        assert!(
            used.contains(&(group.into(), resource.into(), verb.into())),
            "{group} {resource} {verb} not seen: {used:#?}"
        );
    }
    // Secrets are listed and watched as metadata only: no Secret of the cluster (Helm release
    // Secrets included) is cached with its data; the ones a resource references are read by
    // name (`get`).
    let secret_streams: Vec<(String, String, String)> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, u, _)| {
            permission(m, u).is_some_and(|(g, r, v)| {
                g.is_empty() && r == "secrets" && (v == "list" || v == "watch")
            })
        })
        .cloned()
        .collect();
    assert!(!secret_streams.is_empty(), "the Secret watch was not seen");
    for (m, u, accept) in &secret_streams {
        assert!(
            accept.contains("as=PartialObjectMetadata"),
            "{m} {u} asks for whole Secrets (Accept: {accept:?})"
        );
    }
    // And nothing is granted that the operator does not call: every grant was used in this run,
    // or is one of the few whose call needs a PSA that answers (none does here).
    let unused: BTreeSet<(String, String, String)> = granted.difference(&used).cloned().collect();
    let explained: BTreeSet<(String, String, String)> = NOT_CALLED_WITHOUT_A_PSA
        .iter()
        .map(|(g, r, v, _why)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    let unexplained: Vec<_> = unused.difference(&explained).collect();
    assert!(
        unexplained.is_empty(),
        "granted but never called (remove them from required-permissions.yaml and the roles): \
         {unexplained:#?}"
    );
}

/// Granted permissions this run cannot exercise, and the call that needs each.
const NOT_CALLED_WITHOUT_A_PSA: [(&str, &str, &str, &str); 2] = [
    (
        "events.k8s.io",
        "events",
        "patch",
        "the Recorder patches an Event series when the same Event repeats",
    ),
    (
        "psa-operator.io",
        "contractservices",
        "get",
        "a mapping's contractService is read once its connection authenticates",
    ),
];
