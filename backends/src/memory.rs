//! The in-memory backend: thread-safe, for tests and the `mem://` URI. State lives as long as the
//! [`MemoryStore`] (and the storages it handed out).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use floe_formats::{AtomKey, Key, KeyType, RefKey, names::validate_library};

use crate::error::{Result, StorageError};
use crate::storage::{ListPage, ListScope, RefExpectation, RefToken, RefValue, Storage, Store, check_page_limit};

#[derive(Debug, Default)]
struct State {
    atoms: BTreeMap<Key, Bytes>,
    refs: BTreeMap<Key, (Bytes, u64)>,
    next_generation: u64,
}

/// The storage of one in-memory library.
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    name: String,
    state: Arc<Mutex<State>>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// A new, empty library storage.
    pub fn new() -> Self {
        MemoryStorage { name: "default".into(), state: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every update is one insert or
        // remove), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_empty(&self) -> bool {
        let s = self.lock();
        s.atoms.is_empty() && s.refs.is_empty()
    }
}

impl Storage for MemoryStorage {
    fn describe(&self) -> String {
        format!("mem:// (library {})", self.name)
    }

    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        let mut s = self.lock();
        let k = Key::Atom(key.clone());
        match s.atoms.get(&k) {
            Some(existing) if *existing == value => Ok(()),
            Some(_) => Err(StorageError::already_exists(key)),
            None => {
                s.atoms.insert(k, value);
                Ok(())
            }
        }
    }

    fn get(&self, key: &AtomKey) -> Result<Bytes> {
        self.lock().atoms.get(&Key::Atom(key.clone())).cloned().ok_or_else(|| StorageError::not_found(key))
    }

    fn exists(&self, key: &AtomKey) -> Result<bool> {
        Ok(self.lock().atoms.contains_key(&Key::Atom(key.clone())))
    }

    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()> {
        let mut s = self.lock();
        for k in keys {
            s.atoms.remove(&Key::Atom(k.clone()));
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
        let s = self.lock();
        let map_keys: Box<dyn Iterator<Item = &Key>> = if key_type.class() == floe_formats::KeyClass::Ref {
            Box::new(s.refs.keys())
        } else {
            Box::new(s.atoms.keys())
        };
        let mut keys = Vec::new();
        let mut more = false;
        for k in map_keys.filter(|k| k.key_type() == key_type && scope.contains(k.symbol())) {
            if after.is_some_and(|a| k <= a) {
                continue;
            }
            if keys.len() == limit {
                more = true;
                break;
            }
            keys.push(k.clone());
        }
        Ok(ListPage { keys, more })
    }

    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>> {
        Ok(self
            .lock()
            .refs
            .get(&Key::Ref(key.clone()))
            .map(|(bytes, generation)| RefValue { bytes: bytes.clone(), token: RefToken::new(generation.to_string()) }))
    }

    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        let mut s = self.lock();
        let k = Key::Ref(key.clone());
        let current = s.refs.get(&k).map(|(_, g)| g.to_string());
        let matches = match (expected, &current) {
            (RefExpectation::Absent, None) => true,
            (RefExpectation::At(t), Some(g)) => t.as_str() == g,
            _ => false,
        };
        if !matches {
            return Err(StorageError::conflict(key));
        }
        s.next_generation += 1;
        let generation = s.next_generation;
        s.refs.insert(k, (value, generation));
        Ok(RefToken::new(generation.to_string()))
    }

    fn delete_ref(&self, key: &RefKey) -> Result<()> {
        self.lock().refs.remove(&Key::Ref(key.clone()));
        Ok(())
    }
}

/// A `mem://` store: libraries live in this process for as long as the store does.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    libraries: Arc<Mutex<BTreeMap<String, MemoryStorage>>>,
}

impl MemoryStore {
    /// A new, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, MemoryStorage>> {
        self.libraries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn uri(&self) -> String {
        "mem://".into()
    }

    fn library(&self, name: &str) -> Result<Arc<dyn Storage>> {
        validate_library(name)?;
        let storage = self
            .lock()
            .entry(name.to_owned())
            .or_insert_with(|| MemoryStorage { name: name.to_owned(), state: Arc::default() })
            .clone();
        Ok(Arc::new(storage))
    }

    fn list_libraries(&self) -> Result<Vec<String>> {
        Ok(self.lock().iter().filter(|(_, s)| !s.is_empty()).map(|(n, _)| n.clone()).collect())
    }

    fn delete_library(&self, name: &str) -> Result<()> {
        if let Some(s) = self.lock().remove(name) {
            let mut state = s.lock();
            state.atoms.clear();
            state.refs.clear();
        }
        Ok(())
    }
}
