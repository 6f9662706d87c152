//! Vacuum: crash leftovers of every kind are removed, young objects and everything live or held by a
//! snapshot are kept, damaged symbols are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::Int64Array;
use bytes::Bytes;
use floe_backends::faulty::{FaultPlan, FaultyStorage, OpKind};
use floe_backends::{ListScope, MemoryStorage, Storage};
use floe_formats::{AtomFields, AtomKey, KeyType};

use crate::{AsOf, ErrorKind, Library, LibraryOptions, PipelineOptions, ReadRequest};

const HOUR: Duration = Duration::from_secs(3600);

use crate::test_storage::{library, table};

fn memory_library() -> (Arc<MemoryStorage>, Library) {
    let storage = Arc::new(MemoryStorage::new());
    (Arc::clone(&storage), library(storage))
}

/// Every live version's rows, as `(version, x column)`.
fn contents(lib: &Library, symbol: &str) -> Vec<(u64, Vec<i64>)> {
    let mut out = Vec::new();
    for v in lib.list_versions(Some(symbol)).expect("list versions") {
        let as_of = if v.deleted { AsOf::Snapshot(v.snapshots[0].clone()) } else { AsOf::Version(v.version as i64) };
        let data = lib.read(symbol, &ReadRequest { as_of, ..Default::default() }).expect("version reads").data;
        let x = data.column(1).as_any().downcast_ref::<Int64Array>().expect("x").values().to_vec();
        out.push((v.version, x));
    }
    out
}

fn keys(storage: &dyn Storage, key_type: KeyType, symbol: &str) -> usize {
    storage.list_all(key_type, ListScope::Symbol(symbol)).expect("list").len()
}

/// An object as a crashed writer would leave it: a data or index key created at `creation_ts`.
fn leftover(storage: &dyn Storage, key_type: KeyType, symbol: &str, creation_ts: i64, n: u64) -> AtomKey {
    let bytes = Bytes::from(format!("leftover {n}"));
    let fields = AtomFields {
        version: 100 + n,
        creation_ts,
        content_hash: xxhash_rust::xxh3::xxh3_64(&bytes),
        ..AtomFields::default()
    };
    let key = AtomKey::new(key_type, symbol, fields).expect("key");
    storage.put(&key, bytes).expect("put leftover");
    key
}

#[test]
fn removes_old_unreachable_objects_and_keeps_young_ones_and_everything_live() {
    let (storage, lib) = memory_library();
    lib.write("s", &table(0..10), None).expect("write");
    lib.append("s", &table(10..13), None).expect("append");
    lib.update("s", &table(4..6), Some((3, 7)), None).expect("update");
    let before = contents(&lib, "s");
    let old = [
        leftover(&*storage, KeyType::TableData, "s", 1, 0),
        leftover(&*storage, KeyType::TableData, "s", 2, 1),
        leftover(&*storage, KeyType::TableIndex, "s", 3, 2),
    ];
    let young = leftover(&*storage, KeyType::TableData, "s", crate::clock::now_ns(), 3);
    // A version record beyond the head's newest id (never committed).
    let stray = crate::head::version_key("s", 57).expect("key");
    storage.put(&stray, Bytes::from_static(b"stray")).expect("put");

    let report = lib.vacuum(Some("s"), HOUR).expect("vacuum");
    assert_eq!((report.deleted_data, report.deleted_index, report.deleted_versions), (2, 1, 1), "{report:?}");
    assert_eq!(report.kept_young, 1, "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    for k in &old {
        assert!(!storage.exists(k).expect("exists"), "{k} removed");
    }
    assert!(storage.exists(&young).expect("exists"), "young leftover kept");
    assert!(!storage.exists(&stray).expect("exists"));
    assert_eq!(contents(&lib, "s"), before, "every version reads the same");

    // With no grace the young one goes too; a second pass then finds nothing.
    assert_eq!(lib.vacuum(Some("s"), Duration::ZERO).expect("vacuum").deleted_data, 1);
    let again = lib.vacuum(Some("s"), Duration::ZERO).expect("vacuum");
    assert_eq!((again.deleted(), again.kept_young), (0, 0), "{again:?}");
    assert_eq!(again.reachable, again.examined);
    assert_eq!(contents(&lib, "s"), before);
}

#[test]
fn finishes_a_delete_that_crashed_before_its_garbage_collection() {
    let faulty = Arc::new(FaultyStorage::new(Arc::new(MemoryStorage::new()), FaultPlan::none()));
    let lib = library(faulty.clone());
    for i in 0..4 {
        lib.write("s", &table(i * 10..i * 10 + 9), None).expect("write");
    }
    let data_before = keys(faulty.inner().as_ref(), KeyType::TableData, "s");
    // The prune commits, then every delete fails: its garbage stays behind.
    faulty.set_plan(FaultPlan::random(7).with_failures(OpKind::Delete, 1.0));
    assert!(lib.prune_previous_versions("s").is_err(), "the collection failed");
    faulty.set_plan(FaultPlan::none());
    let live = contents(&lib, "s");
    assert_eq!(live.iter().map(|(v, _)| *v).collect::<Vec<_>>(), vec![3]);
    assert_eq!(keys(faulty.inner().as_ref(), KeyType::TableData, "s"), data_before, "nothing was collected");

    let report = lib.vacuum(None, Duration::ZERO).expect("vacuum");
    assert_eq!(report.deleted_index, 3, "{report:?}");
    assert_eq!(report.deleted_data, data_before / 4 * 3, "{report:?}");
    assert_eq!(report.deleted_versions, 3, "records of the pruned ids: {report:?}");
    assert_eq!(contents(&lib, "s"), live);
    assert_eq!(keys(faulty.inner().as_ref(), KeyType::TableData, "s"), data_before / 4);
}

#[test]
fn snapshots_keep_deleted_versions_alive() {
    let (storage, lib) = memory_library();
    lib.write("s", &table(0..9), None).expect("write");
    lib.write("s", &table(20..25), None).expect("write");
    let mut pin = BTreeMap::new();
    pin.insert("s".to_owned(), 0u64);
    lib.snapshot("keep0", None, Some(&[]), &pin).expect("snapshot");
    lib.prune_previous_versions("s").expect("prune");
    let before = contents(&lib, "s");
    assert_eq!(before.len(), 2, "v1 live, v0 held by the snapshot");
    let report = lib.vacuum(None, Duration::ZERO).expect("vacuum");
    assert_eq!(report.deleted(), 0, "{report:?}");
    assert_eq!(contents(&lib, "s"), before);
    // Once the snapshot is gone (and its collection lost), vacuum removes v0's objects.
    let snap = lib.storage().list_all(KeyType::SnapshotRef, ListScope::All).expect("list");
    assert_eq!(snap.len(), 1);
    storage.delete_ref(&floe_formats::RefKey::new(KeyType::SnapshotRef, "keep0").expect("key")).expect("drop ref");
    let report = lib.vacuum(None, Duration::ZERO).expect("vacuum");
    assert!(report.deleted_index == 1 && report.deleted_data > 0, "{report:?}");
    assert_eq!(contents(&lib, "s"), before[..1].to_vec());
}

#[test]
fn a_symbol_whose_index_is_damaged_is_left_alone() {
    let (storage, lib) = memory_library();
    lib.write("a", &table(0..9), None).expect("write a");
    lib.write("b", &table(0..9), None).expect("write b");
    let dyn_storage: &dyn Storage = &*storage;
    let index = dyn_storage.list_all(KeyType::TableIndex, ListScope::Symbol("a")).expect("list");
    let floe_formats::Key::Atom(index) = index[0].clone() else { panic!("atom key") };
    storage.delete_batch(std::slice::from_ref(&index)).expect("delete");
    storage.put(&index, Bytes::from_static(b"not an index")).expect("put damaged copy");
    leftover(&*storage, KeyType::TableData, "a", 1, 0);
    leftover(&*storage, KeyType::TableData, "b", 1, 1);
    let data_a = keys(&*storage, KeyType::TableData, "a");

    let report = lib.vacuum(None, Duration::ZERO).expect("vacuum");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.skipped[0].0, "a");
    assert!(report.skipped[0].1.contains(&index.to_string()), "names the damaged key: {report:?}");
    assert_eq!(keys(&*storage, KeyType::TableData, "a"), data_a, "nothing of a deleted");
    assert_eq!(report.deleted_data, 1, "b's leftover removed: {report:?}");
    let err = lib.read("a", &ReadRequest::default()).expect_err("damaged");
    assert_eq!(err.kind(), ErrorKind::CorruptData);
    assert!(lib.read("b", &ReadRequest::default()).is_ok());
}

#[test]
fn objects_of_a_symbol_that_never_committed_are_removed() {
    let (storage, lib) = memory_library();
    lib.write("kept", &table(0..3), None).expect("write");
    leftover(&*storage, KeyType::TableData, "never", 1, 0);
    leftover(&*storage, KeyType::TableIndex, "never", 1, 1);
    let report = lib.vacuum(None, Duration::ZERO).expect("vacuum");
    assert_eq!((report.symbols, report.deleted_data, report.deleted_index), (2, 1, 1), "{report:?}");
    assert_eq!(keys(&*storage, KeyType::TableData, "never"), 0);
    assert!(lib.read("kept", &ReadRequest::default()).is_ok());
    assert_eq!(lib.vacuum(Some("kept"), Duration::ZERO).expect("vacuum").deleted(), 0);
}

#[test]
fn a_long_commit_loop_rewrites_what_it_wrote_instead_of_naming_old_objects() {
    // Four lost races of 300 ms each: without the reuse limit the committed version would name
    // segments written 1.2 s before the commit, which a vacuum with a 1 s grace could have deleted.
    for op in ["write", "append", "write_stream"] {
        let storage =
            Arc::new(crate::test_storage::TestStorage { pause: Duration::from_millis(300), ..Default::default() });
        let pipeline = PipelineOptions { max_reuse_age: Duration::from_millis(100), ..PipelineOptions::default() };
        let options = LibraryOptions { rows_per_segment: 4, columns_per_segment: 1, dynamic_schema: false };
        let lib = Library::new("vacuum", Arc::clone(&storage) as Arc<dyn Storage>, options, pipeline);
        lib.write("s", &table(0..10), None).expect("first write");
        storage.losses.store(4, std::sync::atomic::Ordering::SeqCst);
        match op {
            "write" => lib.write("s", &table(0..10), None).expect("write commits after losing 4 races"),
            // The stream cannot be read again: its segments are copied under fresh keys instead.
            "write_stream" => {
                let t = table(0..10);
                let batches = t.batches().to_vec().into_iter().map(Ok);
                lib.write_stream("s", Arc::clone(t.schema()), t.index().clone(), batches, None)
                    .expect("stream write commits after losing 4 races")
            }
            _ => lib.append("s", &table(10..20), None).expect("append commits after losing 4 races"),
        };
        // Objects kept from the previous version are older, by design (they were live all along, so a
        // vacuum keeps them); look at the new version's own segments.
        let own_age = {
            let head = crate::head::read_head(&*storage, "s").expect("head").expect("committed").head;
            let idx = crate::index::TableIndex::decode(&storage.get(&head.record.index_key).expect("index"))
                .expect("decodes");
            let now = crate::clock::now_ns();
            idx.entries.iter().filter(|e| e.key.version() == 1).map(|e| now - e.key.creation_ts()).max()
        };
        let own_age = own_age.expect("the new version wrote segments");
        assert!(own_age < 900_000_000, "{op}: the commit named segments written {own_age} ns before it");
        // Everything the losing attempts wrote is garbage a vacuum removes; the version reads back.
        lib.vacuum(Some("s"), Duration::ZERO).expect("vacuum");
        let rows = lib.read("s", &ReadRequest::default()).expect("reads").data.num_rows();
        assert_eq!(rows, if op == "append" { 20 } else { 10 });
        assert_eq!(lib.vacuum(Some("s"), Duration::ZERO).expect("vacuum").deleted(), 0);
    }
}

#[test]
fn a_rename_copies_data_under_young_keys() {
    // The copies are unreachable until the rename commits; were they filed under the source's old
    // creation times, a vacuum running meanwhile could delete them as old leftovers.
    let (storage, lib) = memory_library();
    lib.write("old", &table(0..10), None).expect("write");
    std::thread::sleep(Duration::from_millis(20));
    let before = crate::clock::now_ns();
    lib.rename_symbol("old", "new").expect("rename");
    let copies = (&*storage as &dyn Storage).list_all(KeyType::TableData, ListScope::Symbol("new")).expect("list");
    assert_eq!(copies.len(), 3, "10 rows in segments of 4");
    for key in copies {
        let floe_formats::Key::Atom(atom) = key else { panic!("data keys are atoms") };
        assert!(atom.creation_ts() >= before, "{atom} was filed as created before the rename");
    }
    // The source's objects are garbage now; the copies are live.
    lib.vacuum(None, Duration::from_millis(1)).expect("vacuum");
    assert_eq!(keys(&*storage, KeyType::TableData, "old"), 0);
    assert_eq!(contents(&lib, "new"), vec![(0, (0..10).map(|t| t * 3).collect())]);
}
