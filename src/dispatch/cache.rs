//! A small TTL cache with separate lifetimes for hits and misses.
//!
//! The dispatcher caches two PSA lookups per connection: the contact of an alert user's e-mail,
//! and the company automatic account mapping finds for an organization. Misses are cached too
//! (negative caching), for a shorter time, so a burst of alerts from an unknown user costs one
//! lookup, and a contact created in the PSA afterwards is found soon.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lifetimes of cached answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl {
    pub hit: Duration,
    pub miss: Duration,
}

impl Default for Ttl {
    fn default() -> Self {
        Ttl {
            hit: Duration::from_secs(3600),
            miss: Duration::from_secs(600),
        }
    }
}

/// Entries beyond this are evicted (expired first, then everything) to bound memory.
const MAX_ENTRIES: usize = 50_000;

pub struct TtlCache<K, V> {
    ttl: Ttl,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Ttl) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value if it has not expired at `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Caches `value`; `hit` picks the lifetime.
    pub fn put(&self, key: K, value: V, hit: bool, now: Instant) {
        let ttl = if hit { self.ttl.hit } else { self.ttl.miss };
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (value, now + ttl));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_and_misses_expire_separately() {
        let ttl = Ttl {
            hit: Duration::from_secs(60),
            miss: Duration::from_secs(10),
        };
        let c: TtlCache<&str, Option<u32>> = TtlCache::new(ttl);
        let t0 = Instant::now();
        c.put("found", Some(1), true, t0);
        c.put("missing", None, false, t0);
        let s = Duration::from_secs;
        let table = [
            ("found", s(0), Some(Some(1))),
            ("missing", s(0), Some(None)),
            ("missing", s(9), Some(None)),
            ("missing", s(10), None),
            ("found", s(59), Some(Some(1))),
            ("found", s(60), None),
            ("never", s(0), None),
        ];
        for (k, after, want) in table {
            assert_eq!(c.get(&k, t0 + after), want, "{k} +{after:?}");
        }
        // Expired entries were dropped on read.
        assert!(c.is_empty());
    }
}
