//! Storage accounting (ArcticDB's `admin_tools().get_sizes*`): how many objects of each key type a
//! library holds, and their bytes, per symbol. Everything stored counts, reachable or not (objects a
//! delete left for [`Library::vacuum`] too): it is what the storage bills.

use std::collections::BTreeMap;

use floe_backends::ListScope;
use floe_formats::{AtomKey, Key, KeyType, RefKey};

use crate::error::{ErrorKind, Result};
use crate::library::Library;

/// The key types whose objects belong to one symbol; the others (snapshots, the library's
/// configuration) are the library's.
pub const SYMBOL_KEY_TYPES: [KeyType; 5] =
    [KeyType::TableData, KeyType::TableIndex, KeyType::Version, KeyType::StagedIndex, KeyType::VersionRef];

/// Objects sized per storage call: bounds the keys held at once on a library of millions of objects.
const SIZE_CHUNK: usize = 10_000;

/// The objects of one key type filed under one name, and their stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredSize {
    /// Objects (or references).
    pub count: u64,
    /// Their bytes as stored (compressed segments, encoded records and references).
    pub bytes: u64,
}

impl StoredSize {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

impl Library {
    /// Sizes of what the library stores, by key type and by the name the objects are filed under (a
    /// symbol; a snapshot's name for snapshots; the library's configuration under its own name). With
    /// `symbol`, only that symbol's objects of the [`SYMBOL_KEY_TYPES`]. Lists every key and asks the
    /// backend for sizes only (LMDB reads its pages in place; S3 answers HEAD requests; nothing is
    /// downloaded); an object deleted while this runs is left out.
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol name; storage errors.
    pub fn stored_sizes(&self, symbol: Option<&str>) -> Result<BTreeMap<(KeyType, String), StoredSize>> {
        if let Some(s) = symbol {
            floe_formats::names::validate_symbol(s)?;
        }
        let (types, scope): (&[KeyType], ListScope<'_>) = match symbol {
            Some(s) => (&SYMBOL_KEY_TYPES, ListScope::Symbol(s)),
            None => (KeyType::ALL, ListScope::All),
        };
        let mut sizes: BTreeMap<(KeyType, String), StoredSize> = BTreeMap::new();
        for &key_type in types {
            let mut atoms: Vec<AtomKey> = Vec::new();
            let mut refs: Vec<RefKey> = Vec::new();
            for key in self.storage().list(key_type, scope) {
                match key? {
                    Key::Atom(k) => atoms.push(k),
                    Key::Ref(k) => refs.push(k),
                }
                if atoms.len() >= SIZE_CHUNK || refs.len() >= SIZE_CHUNK {
                    self.size_atoms(&mut atoms, &mut sizes)?;
                    self.size_refs(&mut refs, &mut sizes)?;
                }
            }
            self.size_atoms(&mut atoms, &mut sizes)?;
            self.size_refs(&mut refs, &mut sizes)?;
        }
        Ok(sizes)
    }

    /// Adds the sizes of `keys` to `sizes` and empties `keys`.
    fn size_atoms(&self, keys: &mut Vec<AtomKey>, sizes: &mut BTreeMap<(KeyType, String), StoredSize>) -> Result<()> {
        for (key, size) in keys.iter().zip(self.storage().size_batch(keys)) {
            match size {
                Ok(bytes) => sizes.entry((key.key_type(), key.symbol().to_owned())).or_default().add(bytes),
                Err(e) => {
                    let e = crate::Error::from(e);
                    if e.kind() != ErrorKind::NotFound {
                        return Err(e);
                    }
                }
            }
        }
        keys.clear();
        Ok(())
    }

    /// Adds the sizes of the references `keys` to `sizes` and empties `keys`.
    fn size_refs(&self, keys: &mut Vec<RefKey>, sizes: &mut BTreeMap<(KeyType, String), StoredSize>) -> Result<()> {
        for (key, value) in keys.iter().zip(self.storage().read_ref_batch(keys)) {
            if let Some(value) = value? {
                sizes.entry((key.key_type(), key.symbol().to_owned())).or_default().add(value.bytes.len() as u64);
            }
        }
        keys.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use floe_backends::Storage;

    use super::*;
    use crate::test_storage::{library, table};

    #[test]
    fn sizes_count_every_stored_object_by_type_and_symbol() {
        let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
        let lib = library(Arc::clone(&storage));
        lib.write("a", &table(0..10), None).expect("write");
        lib.append("a", &table(10..13), None).expect("append");
        lib.write("b", &table(0..3), None).expect("write");
        lib.snapshot("snap", None, None, &BTreeMap::new()).expect("snapshot");
        let all = lib.stored_sizes(None).expect("sizes");
        // Every object of every type is counted once, with its stored length.
        for &key_type in KeyType::ALL {
            for key in storage.list_all(key_type, ListScope::All).expect("list") {
                let bytes = match &key {
                    Key::Atom(k) => storage.get(k).expect("get").len(),
                    Key::Ref(k) => storage.read_ref(k).expect("read").expect("present").bytes.len(),
                };
                assert!(bytes > 0, "{key}");
            }
            let listed = storage.list_all(key_type, ListScope::All).expect("list");
            let counted: u64 = all.iter().filter(|((t, _), _)| *t == key_type).map(|(_, s)| s.count).sum();
            assert_eq!(counted, listed.len() as u64, "{key_type}");
        }
        let a = lib.stored_sizes(Some("a")).expect("sizes of a");
        assert_eq!(a.get(&(KeyType::VersionRef, "a".to_owned())).map(|s| s.count), Some(1));
        let records = storage.list_all(KeyType::Version, ListScope::Symbol("a")).expect("list").len() as u64;
        assert_eq!(a.get(&(KeyType::Version, "a".to_owned())).map(|s| s.count), Some(records));
        assert!(a.keys().all(|(t, s)| s == "a" && SYMBOL_KEY_TYPES.contains(t)), "{a:?}");
        for (k, v) in &a {
            assert_eq!(all.get(k), Some(v), "{k:?}: the same as in the whole library's sizes");
        }
        let data_bytes: u64 = storage
            .list_all(KeyType::TableData, ListScope::Symbol("a"))
            .expect("list")
            .iter()
            .map(|k| match k {
                Key::Atom(k) => storage.get(k).expect("get").len() as u64,
                Key::Ref(_) => unreachable!("data keys are atoms"),
            })
            .sum();
        assert_eq!(a[&(KeyType::TableData, "a".to_owned())].bytes, data_bytes);
        assert!(all.contains_key(&(KeyType::SnapshotRef, "snap".to_owned())), "a snapshot is a reference");
        assert!(lib.stored_sizes(Some("none")).expect("no objects").is_empty());
        assert_eq!(lib.stored_sizes(Some("")).expect_err("bad name").kind(), ErrorKind::InvalidInput);
    }
}
