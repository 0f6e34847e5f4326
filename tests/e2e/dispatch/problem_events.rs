//! Dead letters and failsafe e-mails as Kubernetes Events on the PsaConnection: the operator's
//! sink and one shared Recorder against the devcluster API server, a real SMTP server, and the
//! dispatcher. Three alerts that cannot be routed make one DeadLetter Event and one
//! FailsafeEmailSent Event, each a series counting three (one Event per problem, not per alert).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Recorder, Reporter};
use psa_operator::api::Grouping;
use psa_operator::controller::problem_events::ConnectionProblemEvents;
use psa_operator::dispatch::worker::Dispatcher;
use psa_operator::resolved::ConnectionKey;

use super::fake_psa::FakePsa;
use super::harness::{alert, snapshot, Harness};
use super::smtp;

/// The Events about PsaConnection psa/acme with this reason, once they are as `done` wants
/// (bounded wait).
async fn events_with(
    api: &Api<K8sEvent>,
    reason: &str,
    done: impl Fn(&[K8sEvent]) -> bool,
) -> Vec<K8sEvent> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: Vec<K8sEvent> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("acme"))
            .collect();
        if done(&found) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {reason} events {found:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times an Event (a series) was observed.
fn observed(e: &K8sEvent) -> i32 {
    e.series.as_ref().map(|s| s.count).unwrap_or(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_series_per_problem_for_dead_letters_and_failsafe_mails() {
    let smtp_on = smtp::available();
    let cluster = crate::support::dev_cluster().await;
    let client = crate::support::psa_namespace_and_client(&cluster);

    let key = ConnectionKey::new("psa", "acme");
    let dir = tempfile::tempdir().unwrap();
    let port = smtp::free_port();
    let server = if smtp_on {
        Some(smtp::SmtpServer::start(port, dir.path()).await)
    } else {
        None
    };
    let mut conn = snapshot(&key, Arc::new(FakePsa::new()), Grouping::User);
    conn.catch_all = None; // unmapped organizations have nowhere to go: dead letters
    conn.failsafe = Some(smtp::loopback_failsafe(
        port,
        &["soc@msp.example", "oncall@msp.example"],
        Some("[SOC][acme]"),
    ));
    let h = Harness::new(conn);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "psa-operator".into(),
            instance: None,
        },
    );
    let dispatcher = Dispatcher::with_options(
        h.registry.clone(),
        h.store.clone(),
        h.metrics.clone(),
        h.options.clone(),
    )
    .with_problem_sink(Arc::new(ConnectionProblemEvents::new(
        recorder,
        Arc::new(AtomicBool::new(true)),
    )));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(dispatcher.run(async {
        let _ = stopped.await;
    }));

    let lost: Vec<_> = (0..3)
        .map(|i| {
            let mut a = alert(
                &format!("lost-{i}"),
                "max@unmapped.example",
                "Too Many Downloads",
            );
            a.organization = format!("Unmapped Org {i}");
            a
        })
        .collect();
    h.send(lost).await;

    let events: Api<K8sEvent> = Api::namespaced(client.clone(), "psa");
    let dead = events_with(&events, "DeadLetter", |found| {
        found.iter().map(observed).sum::<i32>() >= 3
    })
    .await;
    assert_eq!(
        dead.len(),
        1,
        "one Event, a series, for the dead letters: {dead:#?}"
    );
    assert_eq!(observed(&dead[0]), 3);
    let e = &dead[0];
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    let regarding = e.regarding.as_ref().unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("PsaConnection"));
    assert_eq!(
        regarding.api_version.as_deref(),
        Some("psa-operator.io/v1alpha1")
    );
    let note = e.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("dead letter") && note.contains("Unmapped Org"),
        "{note}"
    );

    if smtp_on {
        let mails = events_with(&events, "FailsafeEmailSent", |found| {
            found.iter().map(observed).sum::<i32>() >= 3
        })
        .await;
        assert_eq!(mails.len(), 1, "{mails:#?}");
        assert_eq!(observed(&mails[0]), 3);
        let note = mails[0].note.as_deref().unwrap_or_default();
        assert!(note.contains("2 recipient(s)"), "{note}");
        assert!(
            !note.contains("soc@msp.example"),
            "no addresses in Events: {note}"
        );
        // failsafe.subjectPrefix starts every subject; the suffix mail rules need stays.
        let messages = server.as_ref().unwrap().messages();
        assert_eq!(messages.len(), 3);
        for m in &messages {
            let subject = smtp::subject(m);
            assert!(
                subject.starts_with("[SOC][acme] Too Many Downloads"),
                "{subject}"
            );
            assert!(subject.ends_with("integration failsafe used"), "{subject}");
        }
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    cluster.shutdown().await.unwrap();
}
