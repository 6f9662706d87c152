//! The engine suite on the LMDB backend (a fresh folder per test).

use std::sync::Arc;

use floe_backends::{LmdbConfig, LmdbStore};
use floe_engine::Floe;
use floe_tests::tmp::TempDir;

fn floe() -> (Floe, TempDir) {
    let dir = TempDir::new("floe-engine-lmdb");
    let config = LmdbConfig { path: dir.path().to_path_buf(), map_size: 1 << 30 };
    let store = LmdbStore::open(config).expect("open LMDB store");
    (Floe::from_store(Arc::new(store)), dir)
}

floe_tests::engine_suite!(floe());

/// 8 threads × 25 appends to one symbol on LMDB: all 200 present, one version each. (Every LMDB commit
/// fsyncs, so the full 8 × 200 run takes minutes here; it runs on the memory backend in this suite and
/// on LMDB in the reliability harness.)
#[test]
fn eight_threads_append_25_each() {
    let (floe, _dir) = floe();
    floe_tests::suite::concurrent_appends(&floe, 8, 25);
}

/// Reads over LMDB's lent pages (D50: a small read visits through `visit_batch_here`, a large one
/// through `visit_batch`) with each storage call of the read failing in turn, before or after its
/// effect: every read either fails with a storage-unavailable error or returns exactly the rows
/// written, and the faults that struck include visits, so both visit paths were under fire.
#[test]
fn reads_over_lent_pages_fail_cleanly_whichever_call_fails() {
    use floe_backends::Storage;
    use floe_backends::faulty::{FaultPlan, FaultyStorage, OpKind, Timing};
    use floe_engine::{ErrorKind, LibraryOptions, PipelineOptions, ReadRequest};

    let dir = TempDir::new("floe-lent-faults");
    let config = LmdbConfig { path: dir.path().to_path_buf(), map_size: 1 << 30 };
    let store = LmdbStore::open(config).expect("open LMDB store");
    let lmdb: Arc<dyn Storage> = Arc::new(store.open_library("lent").expect("open library"));
    let faulty = Arc::new(FaultyStorage::new(lmdb, FaultPlan::none()));
    assert!(faulty.lends_pages(), "the wrapper lends as LMDB does");
    let options = LibraryOptions { rows_per_segment: 25_000, ..Default::default() };
    let lib = floe_engine::Library::new("lent", faulty.clone(), options, PipelineOptions::default());
    let written = floe_tests::rows(0..100_000);
    lib.write("s", &floe_tests::table(&written), None).expect("write");

    // 20 rows (a small read) and all 100,000 (over 2 MiB out: a large one).
    for (range, expect) in [(Some((49_990, 50_010)), &written[49_990..50_010]), (None, &written[..])] {
        let request = ReadRequest { row_range: range, ..Default::default() };
        let mut visits_struck = 0;
        for timing in [Timing::Before, Timing::After] {
            let mut call = 0;
            loop {
                // A library of its own each time: nothing cached, so call numbers mean the same calls.
                let fresh = floe_engine::Library::new("lent", faulty.clone(), options, PipelineOptions::default());
                faulty.set_plan(FaultPlan::fail_call(call, timing));
                let result = fresh.read("s", &request);
                let struck = faulty.injected();
                faulty.set_plan(FaultPlan::none());
                match result {
                    Ok(r) => assert_eq!(floe_tests::rows_of(&r.data), expect, "call {call} failing {timing:?}"),
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::StorageUnavailable, "call {call} failing {timing:?}: {e}")
                    }
                }
                if struck.is_empty() {
                    break;
                }
                visits_struck += struck.iter().filter(|f| f.op == OpKind::Visit).count();
                call += 1;
            }
        }
        assert!(visits_struck >= 4, "{range:?}: the read's segment visits were not faulted ({visits_struck})");
        let again = lib.read("s", &request).expect("reads once the faults stop");
        assert_eq!(floe_tests::rows_of(&again.data), expect);
    }
}
