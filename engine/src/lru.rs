//! A bounded map from object key to something derived from that object, evicting the least recently
//! used: the engine's caches of decoded indexes ([`crate::index_cache`]) and of parsed segment layouts.
//!
//! Objects are immutable and their keys carry their content hash, so a derived value stays right for as
//! long as anything can name the key: no invalidation is needed, only a bound on memory.

use std::collections::HashMap;

use floe_formats::AtomKey;

use crate::sync::{Mutex, lock};

/// Parsed segment layouts by data segment key: a read of a few columns of a wide table parses eight
/// descriptors of 127 columns each, a quarter of its time when warm (design/decisions.md D33).
pub(crate) type LayoutCache = KeyedLru<floe_formats::SegmentLayout>;

/// Header and descriptor bytes of the layouts a library keeps. The parsed form takes about two to
/// three times its bytes (a block's span, a column's field), so this holds ~10 MB; a 127-column `wide`
/// segment's descriptor is some tens of KB, a 10-column one's a few KB.
pub(crate) const LAYOUT_CACHE_BYTES: usize = 4 << 20;

/// Layouts kept at most.
pub(crate) const LAYOUT_CACHE_ENTRIES: usize = 4096;

impl Default for LayoutCache {
    fn default() -> Self {
        KeyedLru::new(LAYOUT_CACHE_BYTES, LAYOUT_CACHE_ENTRIES)
    }
}

/// Values kept under their keys, within a budget of (estimated) bytes and a number of entries. Shared
/// between threads; every call takes one short lock.
#[derive(Debug)]
pub(crate) struct KeyedLru<V> {
    budget: usize,
    max_entries: usize,
    inner: Mutex<Inner<V>>,
}

#[derive(Debug)]
struct Inner<V> {
    /// Value, its estimated size, and the tick of its last use.
    map: HashMap<AtomKey, (V, usize, u64)>,
    bytes: usize,
    tick: u64,
}

impl<V: Clone> KeyedLru<V> {
    /// A cache holding at most `budget` bytes and `max_entries` values (a budget of 0 keeps nothing).
    pub(crate) fn new(budget: usize, max_entries: usize) -> Self {
        KeyedLru { budget, max_entries, inner: Mutex::new(Inner { map: HashMap::new(), bytes: 0, tick: 0 }) }
    }

    /// The value kept under `key`, if any (and it is now the most recently used).
    pub(crate) fn get(&self, key: &AtomKey) -> Option<V> {
        let mut inner = lock(&self.inner);
        inner.tick += 1;
        let tick = inner.tick;
        inner.map.get_mut(key).map(|(value, _, used)| {
            *used = tick;
            value.clone()
        })
    }

    /// Keeps `value` (about `size` bytes) under `key`. When over its bounds, drops the least recently
    /// used quarter of what it holds at once (one sort per eviction round, not a scan per insert). A
    /// value larger than a quarter of the budget is not kept.
    pub(crate) fn insert(&self, key: &AtomKey, value: V, size: usize) {
        if self.budget == 0 || size > self.budget / 4 {
            return;
        }
        let mut inner = lock(&self.inner);
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((_, old, _)) = inner.map.insert(key.clone(), (value, size, tick)) {
            inner.bytes -= old;
        }
        inner.bytes += size;
        if inner.bytes > self.budget || inner.map.len() > self.max_entries {
            let mut by_use: Vec<(u64, AtomKey)> =
                inner.map.iter().map(|(k, (_, _, used))| (*used, k.clone())).collect();
            by_use.sort_unstable_by_key(|(used, _)| *used);
            let quota = inner.map.len().div_ceil(4);
            let mut dropped = 0;
            for (_, oldest) in by_use {
                let over = inner.bytes > self.budget || inner.map.len() > self.max_entries;
                if !over && dropped >= quota {
                    break;
                }
                if let Some((_, size, _)) = inner.map.remove(&oldest) {
                    inner.bytes -= size;
                    dropped += 1;
                }
            }
        }
    }

    /// Values kept and their estimated bytes (tests).
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, usize) {
        let inner = lock(&self.inner);
        (inner.map.len(), inner.bytes)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use floe_formats::{AtomFields, KeyType};

    use super::*;

    fn key(version: u64) -> AtomKey {
        let fields = AtomFields { version, creation_ts: 1, content_hash: version, start: 0, end: 0 };
        AtomKey::new(KeyType::TableData, "s", fields).expect("a valid key")
    }

    #[test]
    fn evicts_the_least_recently_used_quarter_when_full() {
        let cache: KeyedLru<u64> = KeyedLru::new(1 << 20, 8);
        for v in 1..=8 {
            cache.insert(&key(v), v, 10);
        }
        assert_eq!(cache.get(&key(1)), Some(1), "used again: now the most recent");
        cache.insert(&key(9), 9, 10);
        let (count, bytes) = cache.usage();
        assert_eq!((count, bytes), (6, 60), "nine over a bound of eight: a quarter (three) dropped");
        for gone in [2, 3, 4] {
            assert_eq!(cache.get(&key(gone)), None, "{gone}");
        }
        for kept in [1, 5, 6, 7, 8, 9] {
            assert_eq!(cache.get(&key(kept)), Some(kept), "{kept}");
        }
    }

    #[test]
    fn the_byte_budget_bounds_it_too() {
        let cache: KeyedLru<u64> = KeyedLru::new(100, 1_000);
        for v in 1..=5 {
            cache.insert(&key(v), v, 24);
        }
        let (count, bytes) = cache.usage();
        assert!(bytes <= 100 && count < 5, "{count} values, {bytes} bytes");
        assert_eq!(cache.get(&key(5)), Some(5), "the newest stays");
        cache.insert(&key(6), 6, 26);
        assert_eq!(cache.get(&key(6)), None, "over a quarter of the budget: not kept");
        let off: KeyedLru<u64> = KeyedLru::new(0, 10);
        off.insert(&key(1), 1, 0);
        assert_eq!(off.get(&key(1)), None);
    }
}
