//! Reliability item 6: load. 16 threads run a mix of reads and writes over 100 symbols of one LMDB
//! library for a fixed time. No operation may fail, every read must be intact (whole appends, every row's
//! values consistent), and throughput and latency percentiles per operation are printed.
//!
//! Mix per operation, symbol chosen uniformly: 45% read the latest version whole, 15% read its last 100
//! rows, 10% read an older version, 25% append 10 rows, 4% rewrite the symbol (1,000 rows), 1% prune.
//! Short (2 s) by default; `FLOE_FULL=1` runs 60 s (design/reliability.md has the figures, measured with
//! `--release`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use floe_engine::{AsOf, Floe, LibraryOptions, ReadRequest};
use floe_tests::harness::lmdb_store;
use floe_tests::stress::{Rng, appends_of, full_mode, tagged_table, tags_of};

const THREADS: usize = 16;
const SYMBOLS: usize = 100;
const APPEND_ROWS: usize = 10;
const WRITE_ROWS: usize = 1000;
const KINDS: [&str; 6] = ["read", "read_tail", "read_old", "append", "write", "prune"];

fn symbol(i: usize) -> String {
    format!("sym{i:03}")
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn lmdb_sixteen_threads_mixed_load() {
    let seconds = if full_mode() { 60 } else { 2 };
    let store = lmdb_store("floe-rel-load");
    let floe = Floe::open(&store.uri).expect("open store");
    let options = LibraryOptions { rows_per_segment: 10_000, ..LibraryOptions::default() };
    let lib = floe.create_library("load", options).expect("create library");
    // Writer numbers identify each append's rows; the seq counters only need to be unique.
    let seq = Arc::new(AtomicI64::new(0));
    for i in 0..SYMBOLS {
        let s = seq.fetch_add(1, Ordering::Relaxed);
        lib.write(&symbol(i), &tagged_table(i as i64, s, WRITE_ROWS), None).expect("seed write");
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let t0 = Instant::now();
    let results: Vec<Vec<Vec<u32>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (lib, seq) = (lib.clone(), Arc::clone(&seq));
                scope.spawn(move || {
                    let mut rng = Rng::new(1000 + t as u64);
                    let mut lat: Vec<Vec<u32>> = vec![Vec::new(); KINDS.len()];
                    while Instant::now() < deadline {
                        let sym = symbol(rng.below(SYMBOLS as u64) as usize);
                        let roll = rng.below(100);
                        let start = Instant::now();
                        let kind = match roll {
                            0..45 => {
                                let r = lib.read(&sym, &ReadRequest::default()).expect("read");
                                tags_of(&r.data).expect("intact rows");
                                0
                            }
                            45..60 => {
                                let req = ReadRequest { row_range: Some((-100, i64::MAX)), ..Default::default() };
                                let r = lib.read(&sym, &req).expect("read tail");
                                tags_of(&r.data).expect("intact rows");
                                1
                            }
                            60..70 => {
                                let req = ReadRequest { as_of: AsOf::Version(-3), ..Default::default() };
                                match lib.read(&sym, &req) {
                                    Ok(r) => {
                                        tags_of(&r.data).expect("intact rows");
                                    }
                                    // Fewer than 3 versions, or pruned: a clean not-found.
                                    Err(e) if e.kind() == floe_engine::ErrorKind::NotFound => {}
                                    Err(e) => panic!("read old {sym}: {e}"),
                                }
                                2
                            }
                            70..95 => {
                                let s = seq.fetch_add(1, Ordering::Relaxed);
                                lib.append(&sym, &tagged_table(t as i64, s, APPEND_ROWS), None).expect("append");
                                3
                            }
                            95..99 => {
                                let s = seq.fetch_add(1, Ordering::Relaxed);
                                lib.write(&sym, &tagged_table(t as i64, s, WRITE_ROWS), None).expect("write");
                                4
                            }
                            _ => {
                                lib.prune_previous_versions(&sym).expect("prune");
                                5
                            }
                        };
                        let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                        lat[kind].push(us);
                    }
                    lat
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a load thread panicked")).collect()
    });
    let elapsed = t0.elapsed().as_secs_f64();
    // Every symbol still reads whole: a write followed by whole appends.
    for i in 0..SYMBOLS {
        let r = lib.read(&symbol(i), &ReadRequest::default()).expect("final read");
        let tags = tags_of(&r.data).expect("intact");
        let (first, rest) = tags.split_at(WRITE_ROWS);
        appends_of(first, WRITE_ROWS).expect("one whole write first");
        appends_of(rest, APPEND_ROWS).expect("then whole appends");
    }
    let mut all: Vec<u32> = Vec::new();
    let mut lines = Vec::new();
    for (k, name) in KINDS.iter().enumerate() {
        let mut v: Vec<u32> = results.iter().flat_map(|t| t[k].iter().copied()).collect();
        v.sort_unstable();
        lines.push(format!(
            "{name}: {} ops, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            v.len(),
            percentile(&v, 0.50) as f64 / 1000.0,
            percentile(&v, 0.99) as f64 / 1000.0,
            v.last().copied().unwrap_or(0) as f64 / 1000.0
        ));
        all.extend(v);
    }
    all.sort_unstable();
    eprintln!(
        "[reliability] lmdb load: {THREADS} threads, {SYMBOLS} symbols, {elapsed:.1} s: {} ops ({:.0} ops/s), all \
         ops p50 {:.2} ms p99 {:.2} ms; {}",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.50) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0,
        lines.join("; ")
    );
    assert!(all.len() > THREADS, "the load ran");
}
