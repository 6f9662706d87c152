//! Throughput of the LMDB backend: `put_batch` of 1,000 x 64 KiB values (one durable write
//! transaction) against one `put` per key, and reads through `visit_batch` (zero copy) against
//! `get_batch` (one copy per value).
//!
//! ```text
//! cargo run --release -p floe-backends --example lmdb_bench [-- <folder>]
//! ```
//! The folder defaults to a fresh one under the system temp dir and is removed afterwards. Give a
//! folder on the disk you care about: the numbers include one fsync per transaction.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use floe_backends::{LmdbConfig, LmdbStore, Storage};
use floe_formats::{AtomFields, AtomKey, KeyType};

const KEYS: u64 = 1_000;
const VALUE_BYTES: usize = 64 << 10;
const ROUNDS: u64 = 5;
const SINGLE_PUTS: u64 = 200;

fn key(round: u64, i: u64) -> AtomKey {
    let fields = AtomFields { version: round, creation_ts: 0, content_hash: i, start: 0, end: 0 };
    AtomKey::new(KeyType::TableData, &format!("bench{round}"), fields).expect("valid key")
}

fn value(i: u64) -> Bytes {
    (0..VALUE_BYTES).map(|j| (i as usize).wrapping_mul(31).wrapping_add(j) as u8).collect::<Vec<u8>>().into()
}

fn report(what: &str, keys: u64, seconds: f64) {
    let mib = keys as f64 * VALUE_BYTES as f64 / f64::from(1 << 20);
    println!(
        "{what:<44} {:>10.0} keys/s {:>8.0} MiB/s  ({keys} keys in {:.1} ms)",
        keys as f64 / seconds,
        mib / seconds,
        seconds * 1e3
    );
}

fn main() {
    let arg = std::env::args().nth(1).map(PathBuf::from);
    let dir =
        arg.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("floe-lmdb-bench-{}", std::process::id())));
    let store = LmdbStore::open(LmdbConfig::new(&dir)).expect("open store");
    let lib = store.open_library("bench").expect("open library");
    let storage: &dyn Storage = &lib;
    println!(
        "folder {}, {KEYS} keys x {} KiB, {} rayon threads",
        dir.display(),
        VALUE_BYTES >> 10,
        rayon::current_num_threads()
    );

    let values: Vec<Bytes> = (0..KEYS).map(value).collect();
    for round in 0..ROUNDS {
        let items: Vec<(AtomKey, Bytes)> = (0..KEYS).map(|i| (key(round, i), values[i as usize].clone())).collect();
        let keys: Vec<AtomKey> = items.iter().map(|(k, _)| k.clone()).collect();

        let t = Instant::now();
        let results = storage.put_batch(items);
        report(&format!("round {round}: put_batch (1 txn)"), KEYS, t.elapsed().as_secs_f64());
        assert!(results.iter().all(Result::is_ok));

        let t = Instant::now();
        storage
            .visit_batch(&keys, &|_, bytes| {
                black_box(bytes.len());
                Ok(())
            })
            .expect("visit");
        report(&format!("round {round}: visit_batch, no touch"), KEYS, t.elapsed().as_secs_f64());

        let t = Instant::now();
        storage
            .visit_batch(&keys, &|i, bytes| {
                // Read every byte, as a decoder would.
                let sum =
                    bytes.chunks_exact(8).fold(0u64, |s, w| s ^ u64::from_le_bytes(w.try_into().expect("chunks of 8")));
                black_box((i, sum));
                Ok(())
            })
            .expect("visit");
        report(&format!("round {round}: visit_batch, xor every word"), KEYS, t.elapsed().as_secs_f64());

        let t = Instant::now();
        let got = storage.get_batch(&keys);
        report(&format!("round {round}: get_batch (copies)"), KEYS, t.elapsed().as_secs_f64());
        assert!(got.iter().all(Result::is_ok));
    }

    let t = Instant::now();
    for i in 0..SINGLE_PUTS {
        storage.put(&key(ROUNDS, i), values[i as usize].clone()).expect("put");
    }
    report("put, one txn per key", SINGLE_PUTS, t.elapsed().as_secs_f64());

    drop(lib);
    drop(store);
    if arg.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
