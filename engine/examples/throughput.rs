//! Write and read throughput of the engine on a `wide-float` table (timestamp index + 10 random float64
//! columns), with a memcpy-and-touch reference measured in the same run.
//!
//! `cargo run --release -p floe-engine --example throughput -- [rows] [uri] [writes]`
//! (defaults: 10,000,000 rows, an LMDB store in a temporary folder). With `writes` given, the table is
//! written that many times and nothing is read (for profiling the write path alone).

use std::time::Instant;

use floe_engine::{Floe, IndexKind, LibraryOptions, ReadRequest, Table};

#[path = "support/wide_float.rs"]
mod wide_float;
use wide_float::table;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10_000_000);
    let dir = std::env::temp_dir().join(format!("floe-throughput-{}", std::process::id()));
    let uri = args.get(2).cloned().unwrap_or_else(|| format!("lmdb://{}", dir.display()));
    let batch = table(rows);
    let bytes: usize = batch.columns().iter().map(|c| c.get_buffer_memory_size()).sum();
    let mb = bytes as f64 / 1e6;
    println!("{rows} rows x 11 columns = {mb:.0} MB in memory; store {uri}");

    // Reference: allocate and copy the same bytes (what any read must at least do).
    let t = Instant::now();
    let copies: Vec<Vec<u8>> = batch.columns().iter().map(|c| c.to_data().buffers()[0].as_slice().to_vec()).collect();
    let memcpy = t.elapsed().as_secs_f64();
    drop(copies);
    println!("alloc+copy            {:>8.3} s  {:>7.0} MB/s", memcpy, mb / memcpy);

    let floe = Floe::open(&uri)?;
    let lib = floe.get_or_create_library("bench", LibraryOptions::default())?;
    let table = Table::from_batch(batch, IndexKind::Timestamp("ts".into()))?;
    let t = Instant::now();
    lib.write("wide", &table, None)?;
    let write = t.elapsed().as_secs_f64();
    println!("write                 {:>8.3} s  {:>7.0} MB/s", write, mb / write);
    if let Some(writes) = args.get(3).map(|s| s.parse::<usize>()).transpose()? {
        for i in 1..writes {
            let t = Instant::now();
            lib.write("wide", &table, None)?;
            let write = t.elapsed().as_secs_f64();
            println!("write #{i}              {:>8.3} s  {:>7.0} MB/s", write, mb / write);
        }
        drop(lib);
        floe.delete_library("bench")?;
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    for i in 0..3 {
        let t = Instant::now();
        let out = lib.read("wide", &ReadRequest::default())?;
        let read = t.elapsed().as_secs_f64();
        assert_eq!(out.data.num_rows(), rows);
        println!(
            "read #{i}               {:>8.3} s  {:>7.0} MB/s  ({:.2}x alloc+copy)",
            read,
            mb / read,
            read / memcpy
        );
    }
    let d = lib.get_description("wide", &Default::default())?;
    let t = Instant::now();
    let out = lib.read(
        "wide",
        &ReadRequest {
            row_range: Some((0, (rows / 10) as i64)),
            columns: Some(vec!["f1".into(), "f2".into()]),
            ..Default::default()
        },
    )?;
    println!("read 10% rows, 2 cols {:>8.3} s  ({} rows)", t.elapsed().as_secs_f64(), out.data.num_rows());
    println!("segments: {}", d.segment_count);
    drop(lib);
    floe.delete_library("bench")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
