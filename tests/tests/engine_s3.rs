//! The engine suite on the S3 backend, against the server `FLOE_S3_ENDPOINT` names (started by
//! `scripts/test.sh` through `scripts/s3-server.sh`); skipped with a note when it is not set. Each test
//! gets a fresh bucket.

use floe_engine::Floe;
use floe_tests::harness::{TestStore, s3_endpoint, s3_store};

fn s3(test: &str) -> Option<(Floe, TestStore)> {
    let endpoint = s3_endpoint(test)?;
    let store = s3_store(&endpoint, "floe-engine");
    Some((Floe::open(&store.uri).expect("open the S3 store"), store))
}

macro_rules! s3_suite {
    ($($check:ident),* $(,)?) => {$(
        #[test]
        fn $check() {
            let Some((floe, _store)) = s3(stringify!($check)) else { return };
            floe_tests::suite::$check(&floe);
        }
    )*};
}

s3_suite!(
    write_read_round_trip,
    stream_writes,
    ranges_and_columns,
    appends,
    updates,
    bad_input,
    versions_snapshots_and_deletes,
    dynamic_schema,
    staged_writes,
    libraries,
    large_reads_in_parallel,
);

/// 8 threads × 10 appends to one symbol through S3 conditional writes: all present, one version each.
#[test]
fn eight_threads_append_10_each() {
    let Some((floe, _store)) = s3("eight_threads_append_10_each") else { return };
    floe_tests::suite::concurrent_appends(&floe, 8, 10);
}
