//! Crash tests: every storage call of an operation fails in turn (before or after its effect); after each,
//! the library opens and every committed version reads back identically, and retrying the operation
//! succeeds.

use std::sync::Arc;

use floe_backends::faulty::{FaultPlan, FaultyStorage, Timing};
use floe_backends::{MemoryStorage, Storage};
use floe_engine::{AsOf, Library, PipelineOptions, ReadRequest};
use floe_tests::{Row, rows, rows_of, suite::small_options, table};

type Op = fn(&Library) -> floe_engine::Result<()>;

fn baseline() -> (Arc<FaultyStorage>, Library, Vec<Vec<Row>>) {
    let faulty = Arc::new(FaultyStorage::new(Arc::new(MemoryStorage::new()), FaultPlan::none()));
    let storage: Arc<dyn Storage> = faulty.clone();
    // Few I/O workers so that call numbering is close to deterministic.
    let pipeline = PipelineOptions { io_workers: 1, queue_capacity: 1, encode_wave: 1, ..PipelineOptions::default() };
    let lib = Library::new("crash", storage, small_options(), pipeline);
    lib.write("s", &table(&rows(0..20)), Some(b"m0")).expect("baseline write");
    lib.append("s", &table(&rows(20..24)), None).expect("baseline append");
    let mut expect = vec![rows(0..20), rows(0..24)];
    expect.truncate(2);
    (faulty, lib, expect)
}

fn committed(lib: &Library) -> Vec<(u64, Vec<Row>)> {
    let mut out: Vec<(u64, Vec<Row>)> = lib
        .list_versions(Some("s"))
        .expect("list versions after a fault")
        .into_iter()
        .filter(|v| !v.deleted)
        .map(|v| {
            let req = ReadRequest { as_of: AsOf::Version(v.version as i64), ..Default::default() };
            (v.version, rows_of(&lib.read("s", &req).expect("every committed version reads").data))
        })
        .collect();
    out.sort_by_key(|(v, _)| *v);
    out
}

/// Runs `op` with call `i` failing, for every `i` until the op makes fewer calls than that, checking
/// after each that the state is either "before" or "after" the op, and that a retry works.
fn fail_every_call(name: &str, op: Op) {
    // The outcome without faults.
    let (_, lib, _) = baseline();
    let before = committed(&lib);
    op(&lib).expect("op succeeds without faults");
    let after = committed(&lib);
    for timing in [Timing::Before, Timing::After] {
        let mut i = 0;
        loop {
            let (faulty, lib, _) = baseline();
            faulty.set_plan(FaultPlan::fail_call(i, timing));
            let result = op(&lib);
            let struck = !faulty.injected().is_empty();
            faulty.set_plan(FaultPlan::none());
            let state = committed(&lib);
            assert!(
                state == before || state == after,
                "{name}: call {i} failing {timing:?} left a state that is neither before nor after the op \
                 (result {result:?})"
            );
            if result.is_ok() {
                assert_eq!(state, after, "{name}: call {i} {timing:?}: success must mean committed");
            }
            if !struck {
                break;
            }
            if state == before {
                op(&lib).unwrap_or_else(|e| panic!("{name}: retry after call {i} failed {timing:?}: {e}"));
                assert_eq!(committed(&lib), after, "{name}: retry after call {i} {timing:?}");
            }
            i += 1;
        }
        assert!(i > 2, "{name}: expected several storage calls, saw {i}");
    }
}

#[test]
fn write_survives_every_failing_call() {
    fail_every_call("write", |lib| lib.write("s", &table(&rows(100..115)), None).map(|_| ()));
}

#[test]
fn append_survives_every_failing_call() {
    fail_every_call("append", |lib| lib.append("s", &table(&rows(24..27)), None).map(|_| ()));
}

#[test]
fn update_survives_every_failing_call() {
    fail_every_call("update", |lib| lib.update("s", &table(&rows([5, 6])), Some((3, 9)), None).map(|_| ()));
}

#[test]
fn delete_range_survives_every_failing_call() {
    fail_every_call("delete_data_in_range", |lib| lib.delete_data_in_range("s", (2, 12)).map(|_| ()));
}

#[test]
fn write_metadata_survives_every_failing_call() {
    fail_every_call("write_metadata", |lib| lib.write_metadata("s", Some(b"new")).map(|_| ()));
}

#[test]
fn prune_survives_every_failing_call() {
    fail_every_call("prune", |lib| lib.prune_previous_versions("s"));
}

#[test]
fn delete_survives_every_failing_call() {
    fail_every_call("delete", |lib| lib.delete("s"));
}

#[test]
fn delete_versions_survives_every_failing_call() {
    fail_every_call("delete_versions", |lib| lib.delete_versions("s", &[0]));
}
