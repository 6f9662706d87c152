//! What storing a write's bytes durably costs on LMDB by itself, beside the plain-file floor: the lower
//! bound of any LMDB-backed write of that many bytes (issue 6's `wide` write, 32 segments of ~2.5 MB since D53).
//!
//! Rounds alternate five ways of storing `count` values of `bytes` bytes each (random, so nothing
//! compresses): one LMDB write transaction per value and a reference written durably after them (as
//! Floe's write pipeline stores `wide`: a wave of one segment per transaction, D45, each syncing its
//! pages and the commit syncing the meta page, D59), the same with each transaction durable on its own
//! (`put_batch`, as before D59), all of them in one transaction, the values as parts of
//! 1 MiB in one transaction (D44's lent columns), and `write(2)` + `fdatasync` of the same bytes to a
//! new file. A first round, not counted, grows the environment and warms the allocator, so the rounds
//! counted reuse pages as a store that prunes does. Prints each way's median and minimum; with `ways`
//! `per-value` only the first way is run (what the benchmark harness asks for, bench/worker.py).
//!
//! ```text
//! cargo run --release -p floe-backends --example lmdb_floor [-- <folder> <count> <bytes> <rounds> [all|per-value]]
//! ```
//! The folder defaults to a fresh one under the system temp dir and is removed afterwards; give one on
//! the disk you care about (every way includes its fsyncs).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use floe_backends::{LmdbConfig, LmdbStore, RefExpectation, Storage};
use floe_formats::{AtomFields, AtomKey, KeyType, RefKey};

fn key(round: u64, way: u64, i: u64) -> AtomKey {
    let fields = AtomFields { version: round, creation_ts: 0, content_hash: way << 32 | i, start: 0, end: 0 };
    AtomKey::new(KeyType::TableData, "floor", fields).expect("valid key")
}

/// `len` pseudo-random bytes (xorshift), different for each `seed`.
fn random_value(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args().nth(n).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn summary(name: &str, times: &mut [f64]) {
    if times.is_empty() {
        return;
    }
    times.sort_by(f64::total_cmp);
    println!("{name:<40} median {:7.2} ms  min {:7.2} ms", times[times.len() / 2] * 1e3, times[0] * 1e3);
}

fn main() {
    let given = std::env::args().nth(1).map(PathBuf::from);
    let dir =
        given.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("floe-lmdb-floor-{}", std::process::id())));
    let count: u64 = arg(2, 8);
    let bytes: usize = arg(3, 10_080_000);
    let rounds: u64 = arg(4, 15);
    std::fs::create_dir_all(&dir).expect("make folder");
    let store = LmdbStore::open(LmdbConfig::new(dir.join("lmdb"))).expect("open store");
    let lib = store.open_library("floor").expect("open library");
    let storage: &dyn Storage = &lib;
    let all_ways = arg(5, String::from("all")) != "per-value";
    // One random value stored under every key: LMDB copies each put, so sharing costs it nothing.
    let value = random_value(1, bytes);
    let values: Vec<Bytes> = (0..count).map(|_| value.clone()).collect();
    println!("folder {}, {count} values x {bytes} bytes, {rounds} rounds", dir.display());

    let mut per_value = Vec::new();
    let mut each_synced = Vec::new();
    let mut one_txn = Vec::new();
    let mut parts_txn = Vec::new();
    let mut file = Vec::new();
    for round in 0..=rounds {
        // Round 0 warms up and is not counted.
        let counted = round > 0;
        // As a write stores its segments (D59): each value's transaction syncs its pages, and the
        // meta page is synced once, by the durable reference write that ends it (as a commit does).
        let t = Instant::now();
        for (i, v) in values.iter().enumerate() {
            let results = storage.put_batch_parts_before_commit(vec![(key(round, 0, i as u64), vec![v.clone()])]);
            assert!(results.iter().all(Result::is_ok), "put");
        }
        let commit = RefKey::new(KeyType::VersionRef, &format!("floor-{round}")).expect("valid reference key");
        storage.write_ref(&commit, Bytes::from_static(b"names them"), RefExpectation::Absent).expect("write_ref");
        if counted {
            per_value.push(t.elapsed().as_secs_f64());
        }
        if all_ways {
            // Each transaction durable on its own (a `put` each), as before D59.
            let t = Instant::now();
            for (i, v) in values.iter().enumerate() {
                let results = storage.put_batch(vec![(key(round, 3, i as u64), v.clone())]);
                assert!(results.iter().all(Result::is_ok), "put");
            }
            if counted {
                each_synced.push(t.elapsed().as_secs_f64());
            }
        }
        if !all_ways {
            storage.delete_batch(&(0..count).map(|i| key(round, 0, i)).collect::<Vec<_>>()).expect("delete");
            storage.delete_ref(&commit).expect("delete_ref");
            continue;
        }

        let items = values.iter().enumerate().map(|(i, v)| (key(round, 1, i as u64), v.clone())).collect();
        let t = Instant::now();
        assert!(storage.put_batch(items).iter().all(Result::is_ok), "put_batch");
        if counted {
            one_txn.push(t.elapsed().as_secs_f64());
        }

        let items = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let parts =
                    (0..v.len()).step_by(1 << 20).map(|at| v.slice(at..(at + (1 << 20)).min(v.len()))).collect();
                (key(round, 2, i as u64), parts)
            })
            .collect();
        let t = Instant::now();
        assert!(storage.put_batch_parts(items).iter().all(Result::is_ok), "put_batch_parts");
        if counted {
            parts_txn.push(t.elapsed().as_secs_f64());
        }

        let path = dir.join(format!("file-{round}.bin"));
        let t = Instant::now();
        let mut f = std::fs::File::create(&path).expect("create file");
        values.iter().for_each(|v| f.write_all(v).expect("write"));
        f.sync_data().expect("fdatasync");
        if counted {
            file.push(t.elapsed().as_secs_f64());
        }
        drop(f);
        std::fs::remove_file(&path).expect("remove file");

        // Keep the environment from growing without bound: the next round reuses the pages.
        let keys: Vec<AtomKey> = (0..4).flat_map(|w| (0..count).map(move |i| key(round, w, i))).collect();
        storage.delete_batch(&keys).expect("delete");
        storage.delete_ref(&commit).expect("delete_ref");
    }
    summary("LMDB, one transaction per value", &mut per_value);
    if all_ways {
        summary("LMDB, one transaction per value, each synced", &mut each_synced);
        summary("LMDB, all values in one transaction", &mut one_txn);
        summary("LMDB, one transaction, 1 MiB parts", &mut parts_txn);
        summary("file: write(2) + fdatasync", &mut file);
    }
    drop(lib);
    drop(store);
    if given.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
