//! Decoded index segments, kept by key so that repeated reads of a version do not fetch, verify and
//! decode its index again.
//!
//! An index segment is immutable and its key carries its content hash, so a decoded copy stays right
//! for as long as anything can name the key: no invalidation is needed. What a read of a few rows
//! costs is mostly fixed work, and for a wide table the index is a large part of it: its descriptor
//! holds the schema (an empty segment naming every column) and the user's normalization record, so a
//! 1,000-column frame's index is ~100 KB to copy out of storage, hash and parse on every read
//! (design/decisions.md D24).

use floe_formats::AtomKey;

use crate::index::TableIndex;
use crate::lru::KeyedLru;
// std's Arc even under loom: the cache hands indexes to code that does not use the shim's; only the
// lock (in `KeyedLru`) is a modelled primitive.
use std::sync::Arc;

/// The bytes of decoded indexes a library keeps. An index of a billion-row table (10,000 entries) is
/// ~2 MB decoded; most are a few KB.
pub(crate) const INDEX_CACHE_BYTES: usize = 32 << 20;

/// Indexes kept at most, whatever their size.
const INDEX_CACHE_ENTRIES: usize = 512;

/// Decoded indexes by key, least recently used evicted first. Shared by the clones of a library
/// handle.
#[derive(Debug)]
pub(crate) struct IndexCache(KeyedLru<Arc<TableIndex>>);

impl Default for IndexCache {
    fn default() -> Self {
        IndexCache::new(INDEX_CACHE_BYTES)
    }
}

impl IndexCache {
    /// A cache holding at most `budget` bytes of decoded indexes (0: keeps nothing).
    pub(crate) fn new(budget: usize) -> Self {
        IndexCache(KeyedLru::new(budget, INDEX_CACHE_ENTRIES))
    }

    /// The decoded index of `key`, if kept.
    pub(crate) fn get(&self, key: &AtomKey) -> Option<Arc<TableIndex>> {
        self.0.get(key)
    }

    /// Keeps `index` (decoded from `encoded_len` bytes) under `key`, evicting the least recently used
    /// indexes to stay within the budget. An index larger than a quarter of the budget is not kept.
    pub(crate) fn insert(&self, key: &AtomKey, index: &Arc<TableIndex>, encoded_len: usize) {
        self.0.insert(key, Arc::clone(index), estimated_size(index, encoded_len));
    }

    /// Indexes kept and their estimated bytes (tests).
    #[cfg(all(test, not(feature = "loom")))]
    pub(crate) fn usage(&self) -> (usize, usize) {
        self.0.usage()
    }
}

/// Roughly what a decoded index occupies: its descriptor's byte vectors (schema segment, metadata),
/// which dominate for wide tables, plus each entry with its key's symbol.
fn estimated_size(index: &TableIndex, encoded_len: usize) -> usize {
    let descriptor =
        index.descriptor.schema_segment.len() + index.descriptor.user_metadata.as_ref().map_or(0, Vec::len);
    let per_entry = std::mem::size_of::<crate::index::IndexEntry>() + 32;
    let schema = index.schema.fields().len() * 96;
    encoded_len + descriptor + schema + index.entries.len() * per_entry
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::index::IndexEntry;
    use arrow_schema::Schema;
    use floe_formats::record::{IndexKind, TableDescriptor};
    use floe_formats::{AtomFields, KeyType};

    fn key(version: u64) -> AtomKey {
        let fields = AtomFields { version, creation_ts: 1, content_hash: version, start: 0, end: 0 };
        AtomKey::new(KeyType::TableIndex, "s", fields).expect("a valid key")
    }

    fn index(metadata_len: usize) -> Arc<TableIndex> {
        let descriptor = TableDescriptor {
            index: IndexKind::RowCount,
            total_rows: 0,
            schema_segment: Vec::new(),
            user_metadata: Some(vec![0; metadata_len]),
        };
        Arc::new(TableIndex { descriptor, schema: Arc::new(Schema::empty()), entries: Vec::<IndexEntry>::new() })
    }

    #[test]
    fn keeps_the_most_recently_used_within_its_budget() {
        let cache = IndexCache::new(4_000);
        for v in 1..=4 {
            cache.insert(&key(v), &index(900), 0);
        }
        assert_eq!(cache.usage().0, 4, "all four fit");
        assert!(cache.get(&key(1)).is_some(), "used again: now the most recent");
        cache.insert(&key(5), &index(900), 0);
        let (count, bytes) = cache.usage();
        assert!(bytes <= 4_000, "{bytes}");
        assert_eq!(count, 3, "over the budget: the least recently used quarter (two of five) evicted");
        assert!(cache.get(&key(2)).is_none() && cache.get(&key(3)).is_none(), "the least recently used went");
        assert!([1, 4, 5].iter().all(|&v| cache.get(&key(v)).is_some()));
    }

    #[test]
    fn an_index_too_large_for_the_budget_is_not_kept() {
        let cache = IndexCache::new(4_000);
        cache.insert(&key(1), &index(2_000), 0);
        assert!(cache.get(&key(1)).is_none());
        assert_eq!(cache.usage(), (0, 0));
        let off = IndexCache::new(0);
        off.insert(&key(2), &index(0), 0);
        assert!(off.get(&key(2)).is_none());
    }

    #[test]
    fn reinserting_a_key_does_not_count_it_twice() {
        let cache = IndexCache::new(1 << 20);
        cache.insert(&key(1), &index(100), 0);
        let once = cache.usage();
        cache.insert(&key(1), &index(100), 0);
        assert_eq!(cache.usage(), once);
    }
}
