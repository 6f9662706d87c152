//! Latency of small appends to a `wide-float` table (timestamp index + 10 random float64 columns): a
//! base of `base` rows, then `appends` appends of `rows` rows each; prints the median, p90 and p99
//! append time and the time of a full read afterwards.
//!
//! `cargo run --release -p floe-engine --example append_latency -- [base] [appends] [rows]`
//! (defaults: 1,000,000, 1,000 and 1,000; an LMDB store in a temporary folder).

use std::time::Instant;

use floe_engine::{Floe, IndexKind, LibraryOptions, ReadRequest, Table};

#[path = "support/wide_float.rs"]
mod wide_float;

/// Rows `start .. start + rows` of `wide-float` as a table, the floats drawn from `state`.
fn table(start: usize, rows: usize, state: &mut u64) -> Result<Table, floe_engine::Error> {
    Table::from_batch(wide_float::batch(start, rows, state), IndexKind::Timestamp("ts".into()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).map(|s| s.parse()).collect::<Result<_, _>>()?;
    let (base, appends, rows) = (
        args.first().copied().unwrap_or(1_000_000),
        args.get(1).copied().unwrap_or(1000),
        args.get(2).copied().unwrap_or(1000),
    );
    let dir = std::env::temp_dir().join(format!("floe-append-latency-{}", std::process::id()));
    let floe = Floe::open(&format!("lmdb://{}", dir.display()))?;
    let lib = floe.get_or_create_library("bench", LibraryOptions::default())?;
    let mut state = wide_float::SEED;
    lib.write("s", &table(0, base, &mut state)?, None)?;
    let chunks: Vec<Table> =
        (0..appends).map(|i| table(base + i * rows, rows, &mut state)).collect::<Result<_, _>>()?;
    let mut times = Vec::with_capacity(appends);
    for chunk in &chunks {
        let t = Instant::now();
        lib.append("s", chunk, None)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    let t = Instant::now();
    let n = lib.read("s", &ReadRequest::default())?.data.num_rows();
    println!(
        "{appends} appends of {rows} rows onto {base}: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms; full read of \
         {n} rows {:.1} ms; {} segments",
        q(0.5),
        q(0.9),
        q(0.99),
        t.elapsed().as_secs_f64() * 1e3,
        lib.get_description("s", &Default::default())?.segment_count
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
