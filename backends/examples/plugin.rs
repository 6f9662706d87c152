//! A complete, minimal plug-in backend: `Storage` over a `Mutex<HashMap>`, checked by the
//! conformance suite. Run it with `cargo run -p floe-backends --example plugin`.
//!
//! A real backend replaces the maps with its own storage but keeps the same shape: create-only puts,
//! exact-symbol scopes, a stable listing order to page through, and reference writes that compare
//! and swap in one atomic step with tokens that never repeat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use floe_backends::conformance::{ConformanceConfig, run_all};
use floe_backends::storage::check_page_limit;
use floe_backends::{ListPage, ListScope, RefExpectation, RefToken, RefValue, Result, Storage, StorageError};
use floe_formats::{AtomKey, Key, KeyClass, KeyType, RefKey};

#[derive(Debug, Default)]
struct Maps {
    atoms: HashMap<AtomKey, Bytes>,
    /// Each reference's value and the number of the write that stored it (its token).
    refs: HashMap<RefKey, (Bytes, u64)>,
    /// Reference writes so far: tokens count over the storage's whole life, so even a reference
    /// deleted and created again never gets a token an old holder could still use.
    ref_writes: u64,
}

/// The plug-in: one library's keys in two hash maps behind one lock.
#[derive(Debug, Default)]
pub struct HashMapStorage {
    maps: Mutex<Maps>,
}

impl HashMapStorage {
    fn lock(&self) -> MutexGuard<'_, Maps> {
        // Every change below is a single insert or remove, so a poisoned lock still guards valid maps.
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Storage for HashMapStorage {
    fn describe(&self) -> String {
        "hashmap (plug-in example)".to_owned()
    }

    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        let mut maps = self.lock();
        match maps.atoms.get(key) {
            Some(stored) if *stored == value => Ok(()), // an identical re-put is a safe retry
            Some(_) => Err(StorageError::already_exists(key)),
            None => {
                maps.atoms.insert(key.clone(), value);
                Ok(())
            }
        }
    }

    fn get(&self, key: &AtomKey) -> Result<Bytes> {
        self.lock().atoms.get(key).cloned().ok_or_else(|| StorageError::not_found(key))
    }

    fn exists(&self, key: &AtomKey) -> Result<bool> {
        Ok(self.lock().atoms.contains_key(key))
    }

    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()> {
        let mut maps = self.lock();
        for key in keys {
            maps.atoms.remove(key);
        }
        Ok(())
    }

    fn list_page(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<ListPage> {
        check_page_limit(limit)?;
        let maps = self.lock();
        let mut keys: Vec<Key> = match key_type.class() {
            KeyClass::Atom => maps.atoms.keys().map(|k| Key::Atom(k.clone())).collect(),
            KeyClass::Ref => maps.refs.keys().map(|k| Key::Ref(k.clone())).collect(),
        };
        // `Key`'s order is the listing order: resuming after the last key of a page is then exact.
        keys.retain(|k| k.key_type() == key_type && scope.contains(k.symbol()) && after.is_none_or(|a| k > a));
        keys.sort_unstable();
        let more = keys.len() > limit;
        keys.truncate(limit);
        Ok(ListPage { keys, more })
    }

    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>> {
        let maps = self.lock();
        Ok(maps.refs.get(key).map(|(bytes, write)| RefValue { bytes: bytes.clone(), token: token(*write) }))
    }

    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        // Compare and swap under one lock: that is what makes exactly one racing writer win.
        let mut maps = self.lock();
        let current = maps.refs.get(key).map(|(_, write)| token(*write));
        let matches = match expected {
            RefExpectation::Absent => current.is_none(),
            RefExpectation::At(t) => current.as_ref() == Some(t),
        };
        if !matches {
            return Err(StorageError::conflict(key));
        }
        maps.ref_writes += 1;
        let write = maps.ref_writes;
        maps.refs.insert(key.clone(), (value, write));
        Ok(token(write))
    }

    fn delete_ref(&self, key: &RefKey) -> Result<()> {
        self.lock().refs.remove(key);
        Ok(())
    }
}

fn token(write: u64) -> RefToken {
    RefToken::new(write.to_string())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    // The factory must hand out a fresh, empty storage on every call.
    let report =
        run_all(&ConformanceConfig::default(), || -> Arc<dyn Storage> { Arc::new(HashMapStorage::default()) })?;
    println!("{report}");
    Ok(())
}
