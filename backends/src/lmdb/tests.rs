//! Tests of the LMDB backend: round trips, CAS (threads and processes), listings, the registry,
//! library management and map growth. The shared conformance suite runs in
//! `backends/tests/conformance_lmdb.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use floe_formats::{AtomFields, AtomKey, Key, KeyType, RefKey};

use super::*;
use crate::error::StorageError;
use crate::memory::MemoryStorage;
use crate::storage::{ListScope, RefExpectation, RefToken, Storage, Store};

/// A fresh folder under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "floe-lmdb-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store_at(path: &Path, map_size: u64) -> LmdbStore {
    LmdbStore::open(LmdbConfig { path: path.to_owned(), map_size }).expect("open store")
}

fn atom(symbol: &str, version: u64) -> AtomKey {
    let fields = AtomFields { version, creation_ts: 7, content_hash: version * 31, start: 0, end: 10 };
    AtomKey::new(KeyType::TableData, symbol, fields).expect("valid key")
}

fn vref(symbol: &str) -> RefKey {
    RefKey::new(KeyType::VersionRef, symbol).expect("valid key")
}

fn value(seed: u64, len: usize) -> Bytes {
    (0..len).map(|i| (seed as usize * 131 + i * 7 % 251) as u8).collect::<Vec<u8>>().into()
}

#[test]
fn objects_round_trip_and_are_create_only() {
    let dir = TempDir::new("objects");
    let lib = store_at(dir.path(), 1 << 20).open_library("lib").expect("library");
    let (k, v) = (atom("AAPL", 1), value(1, 1000));
    assert!(!lib.exists(&k).expect("exists"));
    assert!(lib.get(&k).expect_err("absent").is_not_found());
    lib.put(&k, v.clone()).expect("put");
    lib.put(&k, v.clone()).expect("same bytes again is fine");
    let err = lib.put(&k, value(2, 1000)).expect_err("different bytes");
    assert!(matches!(err, StorageError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(lib.get(&k).expect("get"), v);
    assert!(lib.exists(&k).expect("exists"));
    assert_eq!(lib.get_range(&k, 10..20).expect("range"), v.slice(10..20));
    assert_eq!(lib.get_range(&k, 990..2000).expect("clamped"), v.slice(990..));
    assert!(lib.get_range(&k, 5000..6000).expect("past the end").is_empty());
    lib.put(&atom("AAPL", 2), Bytes::new()).expect("empty value");
    assert!(lib.get(&atom("AAPL", 2)).expect("get empty").is_empty());
    lib.delete_batch(&[k.clone(), atom("never", 1)]).expect("delete");
    assert!(!lib.exists(&k).expect("exists"));
    assert!(lib.describe().contains("library lib"), "{}", lib.describe());
}

#[test]
fn batches_report_per_item() {
    let dir = TempDir::new("batch");
    let lib = store_at(dir.path(), 1 << 20).open_library("lib").expect("library");
    lib.put(&atom("s", 1), value(1, 10)).expect("put");
    let results = lib.put_batch(vec![
        (atom("s", 1), value(1, 10)),
        (atom("s", 2), value(2, 10)),
        (atom("s", 1), value(9, 10)),
        (atom("s", 2), value(3, 10)),
    ]);
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(matches!(results[2], Err(StorageError::AlreadyExists { .. })), "{results:?}");
    assert!(matches!(results[3], Err(StorageError::AlreadyExists { .. })), "same batch sees its own writes");
    let keys = [atom("s", 2), atom("s", 5), atom("s", 1)];
    let got = lib.get_batch(&keys);
    assert_eq!(got[0].as_ref().expect("present"), &value(2, 10));
    assert!(got[1].as_ref().expect_err("absent").is_not_found());
    assert_eq!(got[2].as_ref().expect("present"), &value(1, 10));
}

#[test]
fn visit_batch_lends_mapped_slices_to_parallel_visits() {
    let dir = TempDir::new("visit");
    let lib = store_at(dir.path(), 1 << 20).open_library("lib").expect("library");
    let keys: Vec<AtomKey> = (0..64).map(|i| atom("v", i)).collect();
    let results = lib.put_batch(keys.iter().map(|k| (k.clone(), value(k.version(), 4096))).collect());
    assert!(results.iter().all(Result::is_ok));
    let seen = AtomicUsize::new(0);
    let threads = std::sync::Mutex::new(std::collections::HashSet::new());
    lib.visit_batch(&keys, &|i, bytes| {
        assert_eq!(bytes, &value(keys[i].version(), 4096)[..]);
        // A visit may read the same storage again (a nested read transaction on this thread).
        assert_eq!(lib.get(&keys[(i + 1) % keys.len()])?.len(), 4096);
        threads.lock().expect("lock").insert(std::thread::current().id());
        std::thread::sleep(Duration::from_millis(1));
        seen.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })
    .expect("visit");
    assert_eq!(seen.load(Ordering::Relaxed), keys.len());
    assert!(!threads.lock().expect("lock").is_empty());
    let missing = [atom("v", 1), atom("v", 1000)];
    assert!(lib.visit_batch(&missing, &|_, _| Ok(())).expect_err("missing key").is_not_found());
    let err = lib.visit_batch(&keys, &|i, _| if i == 3 { Err(StorageError::other("test", "stop")) } else { Ok(()) });
    assert!(err.expect_err("visit error").to_string().contains("stop"));
}

#[test]
fn reads_inside_visits_pass_a_waiting_map_growth() {
    let dir = TempDir::new("visit-grow");
    let lib = store_at(dir.path(), 64 << 10).open_library("lib").expect("library");
    let keys: Vec<AtomKey> = (0..8).map(|i| atom("v", i)).collect();
    assert!(
        lib.put_batch(keys.iter().map(|k| (k.clone(), value(k.version(), 100))).collect()).iter().all(Result::is_ok)
    );
    let visiting = std::sync::atomic::AtomicBool::new(false);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        // This write needs a bigger map, so its resize waits for the visit_batch transaction.
        let writer = s.spawn(|| {
            while !visiting.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            lib.put(&atom("big", 0), value(0, 4 << 20))
        });
        lib.visit_batch(&keys, &|i, _| {
            visiting.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            // A read on a rayon worker while the resize waits: must not queue behind it.
            assert_eq!(lib.get(&keys[i])?.len(), 100);
            Ok(())
        })
        .expect("visit");
        writer.join().expect("writer thread").expect("the write grows the map once the visits end");
    });
    assert!(started.elapsed() < Duration::from_secs(5), "stalled for {:?}", started.elapsed());
}

#[test]
fn references_compare_and_swap_with_fresh_tokens() {
    let dir = TempDir::new("refs");
    let store = store_at(dir.path(), 1 << 20);
    let lib = store.open_library("lib").expect("library");
    let r = vref("AAPL");
    assert_eq!(lib.read_ref(&r).expect("read"), None);
    let t1 = lib.write_ref(&r, Bytes::from_static(b"one"), RefExpectation::Absent).expect("create");
    assert!(lib.write_ref(&r, Bytes::from_static(b"x"), RefExpectation::Absent).expect_err("exists").is_conflict());
    let read = lib.read_ref(&r).expect("read").expect("present");
    assert_eq!((read.bytes.as_ref(), &read.token), (&b"one"[..], &t1));
    let t2 = lib.write_ref(&r, Bytes::from_static(b"two"), RefExpectation::At(&t1)).expect("swap");
    assert_ne!(t1, t2);
    assert!(lib.write_ref(&r, Bytes::new(), RefExpectation::At(&t1)).expect_err("stale").is_conflict());
    let garbage = RefToken::new("not-a-generation");
    assert!(lib.write_ref(&r, Bytes::new(), RefExpectation::At(&garbage)).expect_err("garbage").is_conflict());
    // Delete and recreate, also through delete_library: tokens are never issued twice.
    let mut tokens = BTreeSet::from([t1.as_str().to_owned(), t2.as_str().to_owned()]);
    lib.delete_ref(&r).expect("delete");
    lib.delete_ref(&r).expect("delete absent");
    let t3 = lib.write_ref(&r, Bytes::new(), RefExpectation::Absent).expect("recreate");
    assert!(tokens.insert(t3.as_str().to_owned()), "{t3:?} reissued");
    store.delete_library("lib").expect("delete library");
    assert_eq!(lib.read_ref(&r).expect("read"), None);
    let t4 = lib.write_ref(&r, Bytes::new(), RefExpectation::Absent).expect("recreate");
    assert!(tokens.insert(t4.as_str().to_owned()), "{t4:?} reissued");
    assert!(lib.write_ref(&r, Bytes::new(), RefExpectation::At(&t3)).expect_err("old token").is_conflict());
}

/// Adds one to the counter in `r` (8-byte LE, absent = 0) by read + CAS, retrying on conflicts.
fn increment(lib: &dyn Storage, r: &RefKey) -> u64 {
    loop {
        let current = lib.read_ref(r).expect("read");
        let n = current.as_ref().map_or(0, |v| u64::from_le_bytes(v.bytes[..8].try_into().expect("8 bytes")));
        let next = Bytes::copy_from_slice(&(n + 1).to_le_bytes());
        let expected = current.as_ref().map_or(RefExpectation::Absent, |v| RefExpectation::At(&v.token));
        match lib.write_ref(r, next, expected) {
            Ok(_) => return n + 1,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("write_ref failed: {e}"),
        }
    }
}

fn counter(lib: &dyn Storage, r: &RefKey) -> u64 {
    let v = lib.read_ref(r).expect("read").expect("present");
    u64::from_le_bytes(v.bytes[..8].try_into().expect("8 bytes"))
}

#[test]
fn cas_race_between_threads_loses_no_update() {
    let dir = TempDir::new("race");
    let lib: Arc<dyn Storage> = store_at(dir.path(), 1 << 20).library("lib").expect("library");
    let r = vref("counter");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    increment(lib.as_ref(), &r);
                }
            });
        }
    });
    assert_eq!(counter(lib.as_ref(), &r), 400);
}

#[test]
fn listings_page_and_match_the_memory_backend() {
    let dir = TempDir::new("list");
    let lmdb: Arc<dyn Storage> = store_at(dir.path(), 64 << 20).library("lib").expect("library");
    let memory: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let symbols = ["a", "ab", "abc", "abd", "b", "ba", "a/b", "数据", &"a".repeat(255)];
    let mut items = Vec::new();
    for (i, s) in symbols.iter().enumerate() {
        for v in 0..300 {
            items.push((atom(s, v), value(i as u64, 1)));
        }
        let index = AtomKey::new(KeyType::TableIndex, s, AtomFields::default()).expect("key");
        items.push((index, value(0, 1)));
    }
    for storage in [&lmdb, &memory] {
        assert!(storage.put_batch(items.clone()).iter().all(Result::is_ok));
        for s in &symbols[..4] {
            storage.write_ref(&vref(s), Bytes::new(), RefExpectation::Absent).expect("ref");
        }
    }
    let scopes = [
        ListScope::All,
        ListScope::Symbol("a"),
        ListScope::Symbol("ab"),
        ListScope::Symbol("zz"),
        ListScope::Symbol(""),
        ListScope::SymbolPrefix("a"),
        ListScope::SymbolPrefix("ab"),
        ListScope::SymbolPrefix("abc"),
        ListScope::SymbolPrefix(""),
        ListScope::SymbolPrefix("数"),
        ListScope::SymbolPrefix("q"),
    ];
    for key_type in [KeyType::TableData, KeyType::TableIndex, KeyType::VersionRef, KeyType::Version] {
        for scope in scopes {
            let want: BTreeSet<Key> = memory.list_all(key_type, scope).expect("memory").into_iter().collect();
            // Page by hand with an odd limit: no repeats, no gaps, pages never over the limit.
            let mut got = Vec::new();
            let mut after: Option<Key> = None;
            loop {
                let page = lmdb.list_page(key_type, scope, after.as_ref(), 7).expect("page");
                assert!(page.keys.len() <= 7);
                got.extend(page.keys.iter().cloned());
                after = page.keys.last().cloned();
                if !page.more {
                    break;
                }
            }
            let binaries: Vec<Vec<u8>> = got.iter().map(Key::to_binary).collect();
            assert!(binaries.windows(2).all(|w| w[0] < w[1]), "{key_type:?} {scope:?}: not in binary order");
            assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want, "{key_type:?} {scope:?}");
        }
    }
    assert_eq!(lmdb.list_all(KeyType::TableData, ListScope::All).expect("all").len(), 300 * symbols.len());
    let err = lmdb.list_page(KeyType::TableData, ListScope::All, None, 0).expect_err("limit 0");
    assert!(matches!(err, StorageError::InvalidConfig(_)));
}

#[test]
fn one_environment_per_folder_per_process() {
    let dir = TempDir::new("registry");
    let a = store_at(dir.path(), 1 << 20).open_library("lib").expect("library");
    // A second store on the same folder, through a different spelling of the path.
    let other_spelling = dir.path().join("..").join(dir.path().file_name().expect("name"));
    let b = store_at(&other_spelling, 1 << 20).open_library("lib").expect("library");
    assert_eq!(a.path(), b.path());
    assert_eq!(env::open_count(a.path()), 2, "both storages share one environment");
    a.put(&atom("x", 1), value(1, 10)).expect("put");
    assert_eq!(b.get(&atom("x", 1)).expect("shared state"), value(1, 10));
    let path = a.path().to_owned();
    drop((a, b));
    assert_eq!(env::open_count(&path), 0, "closed with its last user");
    // Reopening after close works, from several threads at once.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    let lib = store_at(dir.path(), 1 << 20).open_library("lib").expect("library");
                    assert_eq!(lib.get(&atom("x", 1)).expect("get"), value(1, 10));
                }
            });
        }
    });
}

#[test]
fn libraries_are_listed_by_name_and_deleted() {
    let dir = TempDir::new("libs");
    let store = store_at(dir.path(), 1 << 20);
    let long = "é".repeat(127);
    let names = ["prices", "a/b", ".dot", "with space", long.as_str()];
    for (i, name) in names.iter().enumerate() {
        store.library(name).expect("library").put(&atom("s", i as u64), value(1, 1)).expect("put");
    }
    store.library("empty").expect("created but never written");
    std::fs::create_dir(dir.path().join("not ours")).expect("foreign folder");
    let mut want: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    want.sort();
    assert_eq!(store.list_libraries().expect("list"), want);
    store.delete_library("a/b").expect("delete");
    store.delete_library(&long).expect("delete hashed");
    store.delete_library("never existed").expect("absent is fine");
    want.retain(|n| n != "a/b" && *n != long);
    assert_eq!(store.list_libraries().expect("list"), want);
    assert!(matches!(store.library("").expect_err("bad name"), StorageError::Format(_)));
    let uri = store.uri();
    let reopened = LmdbStore::open(LmdbConfig::from_uri(&uri).expect("own uri parses")).expect("reopen");
    assert_eq!(reopened.list_libraries().expect("list"), want);
}

#[test]
fn a_full_map_grows_instead_of_failing() {
    let dir = TempDir::new("grow");
    let lib = store_at(dir.path(), 64 << 10).open_library("lib").expect("library");
    let before = lib.map_size().expect("size");
    let items: Vec<(AtomKey, Bytes)> = (0..64).map(|i| (atom("g", i), value(i, 64 << 10))).collect();
    assert!(lib.put_batch(items.clone()).iter().all(Result::is_ok));
    lib.put(&atom("big", 0), value(9, 8 << 20)).expect("a value larger than the whole map");
    assert!(lib.map_size().expect("size") > before);
    for (k, v) in &items {
        assert_eq!(&lib.get(k).expect("get"), v);
    }
}

#[test]
fn readers_keep_working_while_writers_grow_the_map() {
    let dir = TempDir::new("grow-threads");
    let lib = store_at(dir.path(), 64 << 10).open_library("lib").expect("library");
    lib.put(&atom("r", 0), value(0, 1000)).expect("put");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    assert_eq!(lib.get(&atom("r", 0)).expect("get"), value(0, 1000));
                    lib.visit_batch(&[atom("r", 0)], &|_, b| {
                        assert_eq!(b.len(), 1000);
                        Ok(())
                    })
                    .expect("visit");
                }
            });
        }
        for w in 0..2u64 {
            let (lib, done) = (&lib, &done);
            s.spawn(move || {
                for i in 0..40 {
                    lib.put(&atom("w", w * 1000 + i), value(i, 32 << 10)).expect("put grows the map");
                }
                done.store(true, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(lib.list_all_len(KeyType::TableData), 81);
}

impl LmdbStorage {
    fn list_all_len(&self, key_type: KeyType) -> usize {
        let dyn_self: &dyn Storage = self;
        dyn_self.list_all(key_type, ListScope::All).expect("list").len()
    }
}

// ---- several processes on one folder ------------------------------------------------------------

/// Set in a child process: `<mode> <folder> <count>`; the child runs [`child_worker`] only.
const CHILD_ENV: &str = "FLOE_LMDB_TEST_CHILD";

/// Re-executes this test binary running only [`child_worker`] with `spec` (see [`CHILD_ENV`]).
fn spawn_child(spec: &str) -> std::process::Child {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args(["--exact", "lmdb::tests::child_worker", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child test process")
}

fn wait_ok(child: std::process::Child) {
    let out = child.wait_with_output().expect("wait for child");
    assert!(out.status.success(), "child failed: {:?}", out.status);
}

/// Runs in child processes only (a no-op in an ordinary test run).
#[test]
fn child_worker() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let parts: Vec<&str> = spec.splitn(3, ' ').collect();
    let [mode, count, folder] = parts[..] else { panic!("bad child spec {spec:?}") };
    let count: u64 = count.parse().expect("count");
    match mode {
        "cas" => {
            let lib = store_at(Path::new(folder), 1 << 20).library("shared").expect("library");
            for _ in 0..count {
                increment(lib.as_ref(), &vref("counter"));
            }
        }
        "grow" => {
            let lib = store_at(Path::new(folder), 64 << 10).open_library("shared").expect("library");
            let items = (0..count).map(|i| (atom("g", i), value(i, 64 << 10))).collect();
            assert!(lib.put_batch(items).iter().all(Result::is_ok));
        }
        "before-commit" => {
            // Segments as a write stores them (meta pages left unsynced, D59), then the reference
            // naming them; the process exits without any other sync.
            let lib = store_at(Path::new(folder), 64 << 10).open_library("shared").expect("library");
            let items = (0..count).map(|i| (atom("s", i), vec![value(i, 40_000), value(i + 1, 30_000)])).collect();
            assert!(lib.put_batch_parts_before_commit(items).iter().all(Result::is_ok));
            lib.write_ref(&vref("s"), Bytes::from_static(b"names them"), RefExpectation::Absent).expect("commit");
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn cas_race_between_processes_loses_no_update() {
    let dir = TempDir::new("procs");
    let folder = dir.path().to_str().expect("utf-8 temp path");
    let lib = store_at(dir.path(), 1 << 20).library("shared").expect("library");
    let children: Vec<_> = (0..2).map(|_| spawn_child(&format!("cas 150 {folder}"))).collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..150 {
                    increment(lib.as_ref(), &vref("counter"));
                }
            });
        }
    });
    children.into_iter().for_each(wait_ok);
    assert_eq!(counter(lib.as_ref(), &vref("counter")), 600);
}

#[test]
fn objects_stored_before_a_commit_outlive_the_process_that_stored_them() {
    let dir = TempDir::new("before-commit");
    let folder = dir.path().to_str().expect("utf-8 temp path");
    // 64 KiB of map: the child's batch grows it several times on the way.
    wait_ok(spawn_child(&format!("before-commit 20 {folder}")));
    let lib = store_at(dir.path(), 64 << 10).open_library("shared").expect("library");
    assert!(lib.read_ref(&vref("s")).expect("read_ref").is_some(), "the commit is there");
    for i in 0..20 {
        let joined: Vec<u8> = [value(i, 40_000), value(i + 1, 30_000)].concat();
        assert_eq!(lib.get(&atom("s", i)).expect("segment"), joined, "segment {i}");
    }
}

#[test]
fn a_map_grown_by_another_process_is_adopted() {
    let dir = TempDir::new("adopt");
    let folder = dir.path().to_str().expect("utf-8 temp path");
    let lib = store_at(dir.path(), 64 << 10).open_library("shared").expect("library");
    lib.put(&atom("p", 0), value(0, 100)).expect("put");
    let before = lib.map_size().expect("size");
    wait_ok(spawn_child(&format!("grow 64 {folder}")));
    // The child's data lies beyond this process's map: the next transaction must adopt the new size.
    for i in 0..64 {
        assert_eq!(lib.get(&atom("g", i)).expect("written by the child"), value(i, 64 << 10));
    }
    assert!(lib.map_size().expect("size") > before);
    lib.put(&atom("p", 1), value(1, 100)).expect("writes continue");
}
