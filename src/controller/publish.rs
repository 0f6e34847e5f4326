//! The one writer of the routing snapshots.
//!
//! Reconcilers and the inventory task apply facts (`apply_connection_settings`, `apply_customer`,
//! `remove_customer`, `remove_connection`, `sync_inventory`); the publisher marks the connections
//! they touch and, every few milliseconds, rebuilds those connections' snapshots from the index
//! and publishes them to the `Registry`. Batching matters: a wave of 10,000 mappings rebuilds
//! each connection's customer map a few hundred times, not 10,000 times. A reconciler waits
//! for its fact to be published before it reports Ready, so Ready means "the dispatcher of this
//! process routes it now".
//!
//! The publisher also tells the controllers when a connection's authentication changed in this
//! process, so its mappings and services are evaluated again without depending on a status write.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures::channel::mpsc;
use tokio::sync::watch;

use crate::resolved::{ConnectionKey, Registry};

use super::index::{Completeness, ConnectionFacts, MappingFact, MappingInventory, RoutingIndex};

/// How often pending changes are published at most.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// A change that has been applied; wait for it with [`Publisher::published`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Applied(u64);

#[derive(Default)]
struct State {
    index: RoutingIndex,
    dirty: BTreeSet<ConnectionKey>,
    removed: BTreeSet<ConnectionKey>,
    applied: u64,
    /// Whether each connection was authenticated at its last publish (for the triggers).
    authenticated: HashMap<ConnectionKey, bool>,
    triggers: Vec<mpsc::UnboundedSender<ConnectionKey>>,
    /// The ticket fingerprint of each connection's last resolved settings (for the triggers of
    /// mappings with overrides).
    fingerprints: HashMap<ConnectionKey, u64>,
    fingerprint_triggers: Vec<mpsc::UnboundedSender<ConnectionKey>>,
}

pub struct Publisher {
    registry: Registry,
    state: Mutex<State>,
    published: watch::Sender<u64>,
    pending: tokio::sync::Notify,
}

impl Publisher {
    pub fn new(registry: Registry) -> Self {
        Publisher {
            registry,
            state: Mutex::new(State::default()),
            published: watch::channel(0).0,
            pending: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn change(&self, key: &ConnectionKey, f: impl FnOnce(&mut RoutingIndex)) -> Applied {
        let applied = {
            let mut st = self.state();
            f(&mut st.index);
            st.dirty.insert(key.clone());
            st.applied += 1;
            st.applied
        };
        self.pending.notify_one();
        Applied(applied)
    }

    pub fn apply_connection_settings(
        &self,
        key: &ConnectionKey,
        facts: ConnectionFacts,
    ) -> Applied {
        // The failsafe must work while nothing else does; it does not wait for a batch.
        self.registry.set_failsafe(key, facts.failsafe.clone());
        self.change(key, |idx| idx.apply_connection_settings(key, facts))
    }

    pub fn remove_connection(&self, key: &ConnectionKey) -> Applied {
        self.state().removed.insert(key.clone());
        self.change(key, |idx| idx.remove_connection(key))
    }

    pub fn apply_customer(&self, key: &ConnectionKey, mapping: &str, fact: MappingFact) -> Applied {
        self.change(key, |idx| idx.apply_customer(key, mapping, fact))
    }

    pub fn remove_customer(&self, key: &ConnectionKey, mapping: &str) -> Applied {
        self.change(key, |idx| idx.remove_customer(key, mapping))
    }

    /// Replaces what exists in the API server (see `RoutingIndex::sync_inventory`).
    pub fn sync_inventory(&self, inventory: MappingInventory) {
        {
            let mut st = self.state();
            let changed = st.index.sync_inventory(inventory);
            if changed.is_empty() {
                return;
            }
            st.dirty.extend(changed);
            st.applied += 1;
        }
        self.pending.notify_one();
    }

    /// Marks the registry complete once every connection that exists (`live`) has been applied.
    pub fn note_live_connections(&self, live: &std::collections::HashSet<ConnectionKey>) {
        if self.registry.is_synced() {
            return;
        }
        let known: BTreeSet<ConnectionKey> = self.connection_keys().into_iter().collect();
        if live.iter().all(|k| known.contains(k)) {
            // Published by the next flush at the latest: flush now so the registry has them.
            self.flush();
            self.registry.mark_synced();
        }
    }

    /// Connections the index knows (whether or not their settings resolve).
    pub fn connection_keys(&self) -> Vec<ConnectionKey> {
        self.state().index.connection_keys()
    }

    /// The connection is known and the PSA accepted its credentials in this process.
    pub fn is_authenticated(&self, key: &ConnectionKey) -> bool {
        self.state()
            .index
            .facts_of(key)
            .is_some_and(|f| f.authenticated)
    }

    /// The connection's PSA could not be reached at its last check (an outage, not a refusal).
    pub fn is_unreachable(&self, key: &ConnectionKey) -> bool {
        self.state()
            .index
            .facts_of(key)
            .is_some_and(|f| f.unreachable)
    }

    pub fn completeness(&self, key: &ConnectionKey) -> Completeness {
        self.state().index.completeness(key)
    }

    /// Connections whose routing is not complete yet (warming up); for metrics.
    pub fn incomplete_connections(&self) -> usize {
        let st = self.state();
        st.index
            .connection_keys()
            .iter()
            .filter(|k| st.index.completeness(k) != Completeness::Complete)
            .count()
    }

    /// A stream of connection keys, one each time a connection is authenticated, loses its
    /// authentication or is removed in this process.
    pub fn connection_changes(&self) -> mpsc::UnboundedReceiver<ConnectionKey> {
        let (tx, rx) = mpsc::unbounded();
        self.state().triggers.push(tx);
        rx
    }

    /// A stream of connection keys, one each time a connection's resolved ticket settings or
    /// routes change (`ResolvedConnection::ticket_fingerprint`): mappings with their own
    /// overrides resolved against the old ones are evaluated again.
    pub fn ticket_settings_changes(&self) -> mpsc::UnboundedReceiver<ConnectionKey> {
        let (tx, rx) = mpsc::unbounded();
        self.state().fingerprint_triggers.push(tx);
        rx
    }

    /// Waits until `applied` has been published to the Registry.
    pub async fn published(&self, applied: Applied) {
        let mut rx = self.published.subscribe();
        let _ = rx.wait_for(|done| *done >= applied.0).await;
    }

    /// Publishes pending changes in batches until `shutdown`.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        let work = async {
            let mut pause = FLUSH_EVERY;
            loop {
                self.pending.notified().await;
                tokio::time::sleep(pause).await;
                let started = std::time::Instant::now();
                self.flush();
                pause = pause_after_flush(started.elapsed());
            }
        };
        futures::pin_mut!(work);
        futures::pin_mut!(shutdown);
        futures::future::select(work, shutdown).await;
    }

    /// Builds and publishes the snapshots of every changed connection.
    pub fn flush(&self) {
        let mut st = self.state();
        let dirty = std::mem::take(&mut st.dirty);
        let removed = std::mem::take(&mut st.removed);
        let mut transitions = vec![];
        let mut fingerprint_changes = vec![];
        for key in &dirty {
            match st.index.entry(key) {
                Some(entry) => self.registry.publish(key.clone(), entry),
                None if removed.contains(key) => self.registry.remove(key),
                None => {}
            }
            let fingerprint = st
                .index
                .facts_of(key)
                .and_then(|f| f.settings.as_ref())
                .map(|s| s.ticket_fingerprint);
            if let Some(fp) = fingerprint {
                if st
                    .fingerprints
                    .insert(key.clone(), fp)
                    .is_some_and(|old| old != fp)
                {
                    fingerprint_changes.push(key.clone());
                }
            }
            let now = st.index.facts_of(key).is_some_and(|f| f.authenticated);
            let before = st.authenticated.insert(key.clone(), now);
            if before != Some(now) || removed.contains(key) {
                transitions.push(key.clone());
            }
        }
        for key in &removed {
            st.authenticated.remove(key);
            st.fingerprints.remove(key);
        }
        st.fingerprint_triggers.retain(|tx| {
            fingerprint_changes
                .iter()
                .all(|key| tx.unbounded_send(key.clone()).is_ok())
        });
        st.triggers.retain(|tx| {
            transitions
                .iter()
                .all(|key| tx.unbounded_send(key.clone()).is_ok())
        });
        let applied = st.applied;
        drop(st);
        self.published.send_replace(applied);
    }
}

/// How long the publisher gathers changes after a flush that took `took`. A flush rebuilds
/// each changed connection's whole snapshot, so its cost grows with the connection's mappings:
/// at a fixed 20 ms a wave of 10,000 mappings spent most of a core rebuilding. Gathering for
/// four times the rebuild keeps the publisher under a fifth of a core at any size, while a
/// small connection still publishes within [`FLUSH_EVERY`].
pub fn pause_after_flush(took: Duration) -> Duration {
    FLUSH_EVERY.max(took.saturating_mul(4)).min(MAX_FLUSH_PAUSE)
}

/// Ready waits for the publish; never make it wait longer than this for a batch.
const MAX_FLUSH_PAUSE: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn the_pause_grows_with_the_rebuild_within_bounds() {
        let ms = Duration::from_millis;
        let table = [
            (ms(0), ms(20)),
            (ms(1), ms(20)),
            (ms(5), ms(20)),
            (ms(10), ms(40)),
            (ms(60), ms(240)),
            (ms(400), ms(500)),
        ];
        for (took, want) in table {
            assert_eq!(pause_after_flush(took), want, "{took:?}");
        }
    }

    #[tokio::test]
    async fn published_means_visible_in_the_registry() {
        let registry = Registry::new();
        let publisher = Publisher::new(registry.clone());
        let key = ConnectionKey::new("psa", "cw");
        let mut changes = publisher.connection_changes();
        let applied = publisher.apply_connection_settings(
            &key,
            ConnectionFacts {
                suspended: true,
                authenticated: true,
                ..Default::default()
            },
        );
        assert!(registry.get(&key).is_none(), "not before the flush");
        publisher.flush();
        publisher.published(applied).await;
        assert!(registry.get(&key).expect("published").suspended);
        assert_eq!(changes.next().await, Some(key.clone()), "authenticated");
        // Same authentication again: no trigger; then removal triggers and unpublishes.
        publisher.apply_connection_settings(
            &key,
            ConnectionFacts {
                authenticated: true,
                ..Default::default()
            },
        );
        publisher.flush();
        assert!(!registry.get(&key).unwrap().suspended);
        publisher.remove_connection(&key);
        publisher.flush();
        assert!(registry.get(&key).is_none());
        assert_eq!(changes.next().await, Some(key));
    }
}
