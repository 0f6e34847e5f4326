//! Wake-ups across replicas: PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Every transaction that queues or re-queues work sends `NOTIFY psa_operator_work` with the
//! sending replica's owner name as payload; PostgreSQL delivers it at commit, to every
//! listening session. Each replica keeps one dedicated (not pooled) session that `LISTEN`s and
//! bumps the store's change counter on a notification from another replica, so idle workers
//! start at once instead of at their next poll. Its own notifications are skipped: the commit
//! already woke this process's workers.
//!
//! The listening session reconnects with a capped backoff (a PostgreSQL restart, a failover);
//! after each (re)connect the workers are woken once, since notifications sent while no
//! session listened are lost. The poll (`DispatcherOptions::idle_poll`) stays the safety net.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::connect::PgConnectOptions;

/// The notification channel of the dispatch store.
pub const CHANNEL: &str = "psa_operator_work";

/// Whether a notification's payload asks this replica (`owner`) to look for work.
pub fn wakes(payload: &str, owner: &str) -> bool {
    payload != owner
}

/// Pause before the `attempt`th reconnect (1-based): 100 ms doubling, capped at 5 s.
pub fn reconnect_delay(attempt: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(5_000))
}

/// Listens until the task is aborted (the store is dropped), reconnecting as needed.
pub async fn listen_forever(
    opts: PgConnectOptions,
    owner: String,
    changes: Arc<watch::Sender<u64>>,
) {
    let mut failures = 0u32;
    loop {
        let outcome = match opts.tls_config() {
            Ok(Some(tls)) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
                listen_once(&opts.config, tls, &owner, &changes).await
            }
            Ok(None) => listen_once(&opts.config, tokio_postgres::NoTls, &owner, &changes).await,
            Err(e) => Err(e),
        };
        match outcome {
            // It listened before it broke: start the backoff afresh.
            Ok(()) => failures = 1,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(store = %opts.shown, error = %e,
                        "cannot listen for other replicas' work; polling meanwhile");
                }
            }
        }
        tokio::time::sleep(reconnect_delay(failures.max(1))).await;
    }
}

/// One listening session: `Ok` when it listened and then ended, `Err` when it never listened.
async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    owner: &str,
    changes: &watch::Sender<u64>,
) -> Result<(), String>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await.map_err(|e| e.to_string())?;
    // The connection object must be polled for the session to make progress; its messages
    // (notifications) come through this channel.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = AbortOnDrop(tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if tx.send(message).is_err() {
                break;
            }
        }
    }));
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!("listening for other replicas' work");
    // Work committed while nobody listened is found by one look now.
    changes.send_modify(|n| *n = n.wrapping_add(1));
    while let Some(message) = rx.recv().await {
        if let AsyncMessage::Notification(n) = message {
            if n.channel() == CHANNEL && wakes(n.payload(), owner) {
                changes.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
    drop((client, driver));
    tracing::warn!("lost the session listening for other replicas' work; reconnecting");
    Ok(())
}

/// Stops the session's driver task with the session (also when the store is dropped).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_replicas_notifications_wake_and_own_ones_do_not() {
        assert!(wakes("replica-b", "replica-a"));
        assert!(wakes("", "replica-a"));
        assert!(!wakes("replica-a", "replica-a"));
    }

    #[test]
    fn reconnects_back_off_up_to_five_seconds() {
        let table = [
            (1, 100),
            (2, 200),
            (3, 400),
            (6, 3_200),
            (7, 5_000),
            (40, 5_000),
        ];
        for (attempt, ms) in table {
            assert_eq!(
                reconnect_delay(attempt),
                Duration::from_millis(ms),
                "{attempt}"
            );
        }
    }
}
