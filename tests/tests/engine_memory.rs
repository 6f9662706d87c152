//! The engine suite on the memory backend.

use floe_engine::Floe;

floe_tests::engine_suite!((Floe::open("mem://").expect("memory store"), ()));

/// 8 threads × 200 appends to one symbol: all 1,600 present, one version each.
#[test]
fn eight_threads_append_200_each() {
    floe_tests::suite::concurrent_appends(&Floe::open("mem://").expect("memory store"), 8, 200);
}
