//! `psa-operator replay --store PATH [--connection ns/name]`: puts dead letters back in their
//! queues, attempts reset, after the cause (a deleted board, a wrong credential) is fixed.
//!
//! Safe while the operator runs: SQLite in WAL mode lets a second process write, and the running
//! workers pick the re-queued events up on their next look at the queue.

use anyhow::{bail, Context as _};

use super::ReplayArgs;
use crate::dispatch::store::{open, StoreLocation};
use crate::resolved::ConnectionKey;

/// `ns/name` → connection key.
pub fn parse_connection(s: &str) -> Option<ConnectionKey> {
    let (ns, name) = s.split_once('/')?;
    if ns.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    Some(ConnectionKey::new(ns, name))
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let connection = match &args.connection {
        Some(s) => match parse_connection(s) {
            Some(k) => Some(k),
            None => bail!("--connection must be namespace/name, got {s:?}"),
        },
        None => None,
    };
    let location = StoreLocation::parse(&args.store)?;
    if let StoreLocation::Sqlite(path) = &location {
        if !path.exists() {
            bail!("no store at {}", path.display());
        }
    }
    let owner = format!("psa-operator-replay-{}", std::process::id());
    let store = open(&location, &owner)
        .await
        .with_context(|| format!("opening {location}"))?;
    let dead = store.dead_letters(connection.clone(), usize::MAX).await?;
    for ev in &dead {
        let env = &ev.envelope;
        println!(
            "{}/{} {} ({} attempts): {}",
            env.namespace,
            env.connection,
            env.event.id,
            ev.attempts,
            ev.last_error.as_deref().unwrap_or("no error recorded")
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    let n = store.replay_dead_letters(connection.clone(), now).await?;
    let scope = connection.map_or_else(|| "all connections".to_string(), |k| k.to_string());
    println!("re-queued {n} dead letter(s) of {scope}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_arguments() {
        assert_eq!(
            parse_connection("psa/acme"),
            Some(ConnectionKey::new("psa", "acme"))
        );
        for bad in ["acme", "/acme", "psa/", "a/b/c", ""] {
            assert_eq!(parse_connection(bad), None, "{bad}");
        }
    }
}
