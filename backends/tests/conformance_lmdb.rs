//! The conformance suite on the LMDB backend: every check gets a fresh store folder (removed when
//! the check drops its storage) and opens one library in it.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use floe_backends::{
    ListPage, ListScope, LmdbConfig, LmdbStorage, LmdbStore, RefExpectation, RefToken, RefValue, Result, Storage,
};
use floe_formats::{AtomKey, Key, KeyType, RefKey};

/// An LMDB library in a temporary folder that is deleted with it.
#[derive(Debug)]
struct TempLibrary {
    storage: LmdbStorage,
    dir: PathBuf,
}

impl Drop for TempLibrary {
    fn drop(&mut self) {
        // Unlinking files of an open environment is fine on Unix; it closes right after.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fresh() -> Arc<dyn Storage> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "floe-lmdb-conformance-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    // A small initial map, so the large-object and racing checks also exercise map growth.
    let store = LmdbStore::open(LmdbConfig { path: dir.clone(), map_size: 8 << 20 }).expect("open store");
    let storage = store.open_library("conformance").expect("open library");
    Arc::new(TempLibrary { storage, dir })
}

floe_backends::conformance_tests!(fresh);

/// Plain delegation, so the suite sees the LMDB storage itself.
impl Storage for TempLibrary {
    fn describe(&self) -> String {
        self.storage.describe()
    }
    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        self.storage.put(key, value)
    }
    fn put_batch(&self, items: Vec<(AtomKey, Bytes)>) -> Vec<Result<()>> {
        self.storage.put_batch(items)
    }
    fn put_batch_parts(&self, items: Vec<(AtomKey, Vec<Bytes>)>) -> Vec<Result<()>> {
        self.storage.put_batch_parts(items)
    }
    fn get(&self, key: &AtomKey) -> Result<Bytes> {
        self.storage.get(key)
    }
    fn get_range(&self, key: &AtomKey, range: Range<u64>) -> Result<Bytes> {
        self.storage.get_range(key, range)
    }
    fn get_batch(&self, keys: &[AtomKey]) -> Vec<Result<Bytes>> {
        self.storage.get_batch(keys)
    }
    fn visit_batch(&self, keys: &[AtomKey], visit: &(dyn Fn(usize, &[u8]) -> Result<()> + Sync)) -> Result<()> {
        self.storage.visit_batch(keys, visit)
    }
    fn exists(&self, key: &AtomKey) -> Result<bool> {
        self.storage.exists(key)
    }
    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()> {
        self.storage.delete_batch(keys)
    }
    fn list_page(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<ListPage> {
        self.storage.list_page(key_type, scope, after, limit)
    }
    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>> {
        self.storage.read_ref(key)
    }
    fn read_ref_batch(&self, keys: &[RefKey]) -> Vec<Result<Option<RefValue>>> {
        self.storage.read_ref_batch(keys)
    }
    fn read_ref_and_get(&self, key: &RefKey, object: &AtomKey) -> (Result<Option<RefValue>>, Result<Option<Bytes>>) {
        self.storage.read_ref_and_get(key, object)
    }
    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        self.storage.write_ref(key, value, expected)
    }
    fn delete_ref(&self, key: &RefKey) -> Result<()> {
        self.storage.delete_ref(key)
    }
}
