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
