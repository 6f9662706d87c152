//! Stored size of each column of the benchmark's `ticks` dataset, as the engine would write it (segments
//! of 100,000 rows), next to the Parquet-zstd figures of `bench/RESULTS.findings.md` section 7.
//!
//! `cargo run --release -p floe-formats --example ticks_sizes [rows]` (default 1M rows).
//!
//! The columns follow `bench/data.py::ticks` (same distributions, a different generator, so the bytes
//! differ from the benchmark's): jittered strictly increasing timestamps ~10 ms apart, an int64 price in
//! cents doing a random walk of steps -2..=2, int64 sizes (round lots plus 10 % odd lots), a symbol
//! drawn Zipf-like from 500 tickers of 2-5 letters, and a buy flag.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{Field, Schema};
use floe_formats::{decode_segment, encode_segment};

/// Rows per segment: the engine's default `rows_per_segment`.
const SEGMENT_ROWS: usize = 100_000;

/// Parquet-zstd per 1M rows, from `bench/RESULTS.findings.md` section 7 (MB).
const PARQUET_MB: [(&str, f64); 5] = [("ts", 6.1), ("price", 1.2), ("size", 0.8), ("symbol", 1.0), ("is_buy", 0.1)];

/// splitmix64: deterministic, so every run sees the same table.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ticks(rows: usize) -> RecordBatch {
    let mut rng = Rng(2);
    let mut t = 1_577_836_800_000_000_000i64; // 2020-01-01
    let ts: Vec<i64> = (0..rows)
        .map(|_| {
            t += 1_000_000 + (-rng.unit().ln() * 9_000_000.0) as i64;
            t
        })
        .collect();
    let mut px = 10_000i64;
    let price: Vec<i64> = (0..rows)
        .map(|_| {
            px += rng.below(5) as i64 - 2;
            px
        })
        .collect();
    let size: Vec<i64> = (0..rows)
        .map(|_| {
            let lots = (rng.unit().ln() / 0.7f64.ln()).floor() as i64 + 1; // geometric(0.3), >= 1
            let odd = if rng.unit() < 0.1 { rng.below(99) as i64 + 1 } else { 0 };
            lots * 100 + odd
        })
        .collect();
    let mut names = BTreeSet::new();
    while names.len() < 500 {
        let n = 2 + rng.below(4) as usize;
        names.insert((0..n).map(|_| (b'A' + rng.below(26) as u8) as char).collect::<String>());
    }
    let tickers: Vec<String> = names.into_iter().collect();
    // Zipf-like popularity: weight 1/k for the k-th ticker.
    let cumulative: Vec<f64> = (1..=500)
        .scan(0.0, |acc, k| {
            *acc += 1.0 / f64::from(k);
            Some(*acc)
        })
        .collect();
    let total = cumulative[499];
    let symbol: StringArray = (0..rows)
        .map(|_| {
            let x = rng.unit() * total;
            Some(tickers[cumulative.partition_point(|&c| c < x).min(499)].as_str())
        })
        .collect();
    let is_buy: BooleanArray = (0..rows).map(|_| Some(rng.below(2) == 1)).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("ts", Arc::new(TimestampNanosecondArray::from(ts))),
        ("price", Arc::new(Int64Array::from(price))),
        ("size", Arc::new(Int64Array::from(size))),
        ("symbol", Arc::new(symbol)),
        ("is_buy", Arc::new(is_buy)),
    ];
    let schema =
        Schema::new(columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), false)).collect::<Vec<_>>());
    RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect()).expect("consistent table")
}

/// What [`measure`] found: stored bytes (whole segments) and seconds spent encoding and decoding.
struct Measured {
    stored: usize,
    encode_s: f64,
    decode_s: f64,
}

/// Seconds this thread has spent on a CPU (`/proc/thread-self/schedstat`), so that figures taken on a
/// shared machine count this work only; wall-clock seconds where that file is missing.
fn cpu_seconds() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| START.get_or_init(Instant::now).elapsed().as_secs_f64(), |ns| ns as f64 / 1e9)
}

/// Each encode and decode pass repeats until it has used this much CPU time (the scheduler updates
/// the counter every few milliseconds); the mean counts.
const MIN_CPU_SECONDS: f64 = 0.5;

/// Runs `pass` until it has used [`MIN_CPU_SECONDS`]; returns its mean CPU seconds and last result.
fn timed<T>(mut pass: impl FnMut() -> T) -> (f64, T) {
    let start = cpu_seconds();
    let mut n = 1;
    let mut out = pass();
    while cpu_seconds() - start < MIN_CPU_SECONDS {
        out = pass();
        n += 1;
    }
    ((cpu_seconds() - start) / f64::from(n), out)
}

/// Encodes `batch` in segments of [`SEGMENT_ROWS`], decodes them back and checks them; times in CPU
/// seconds per pass.
fn measure(batch: &RecordBatch) -> Result<Measured, Box<dyn std::error::Error>> {
    let rows = batch.num_rows();
    let parts: Vec<RecordBatch> =
        (0..rows).step_by(SEGMENT_ROWS).map(|start| batch.slice(start, SEGMENT_ROWS.min(rows - start))).collect();
    let (encode_s, segments) = timed(|| parts.iter().map(|p| encode_segment(p, None)).collect::<Result<Vec<_>, _>>());
    let segments = segments?;
    let (decode_s, decoded) = timed(|| segments.iter().map(|s| decode_segment(s)).collect::<Result<Vec<_>, _>>());
    for (d, p) in decoded?.iter().zip(&parts) {
        assert_eq!(&d.batch, p, "round trip must be exact");
    }
    Ok(Measured { stored: segments.iter().map(Vec::len).sum(), encode_s, decode_s })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let batch = ticks(rows);
    let scale = 1_000_000.0 / rows as f64;
    println!("ticks: {rows} rows in segments of {SEGMENT_ROWS}; MB per 1M rows; MB/s of Arrow bytes per CPU-second");
    println!("{:<8} {:>8} {:>8} {:>8} {:>9} {:>9}", "column", "floe", "parquet", "ratio", "encode", "decode");
    for (i, (name, parquet)) in PARQUET_MB.iter().enumerate() {
        let column = batch.project(&[i])?;
        let Measured { stored, encode_s, decode_s } = measure(&column)?;
        let floe = stored as f64 * scale / 1e6;
        let arrow = column.get_array_memory_size() as f64 / 1e6;
        println!(
            "{name:<8} {floe:>8.2} {parquet:>8.1} {:>8.2} {:>9.0} {:>9.0}",
            floe / parquet,
            arrow / encode_s,
            arrow / decode_s
        );
    }
    let Measured { stored, encode_s, decode_s } = measure(&batch)?;
    let parquet_total: f64 = PARQUET_MB.iter().map(|(_, p)| p).sum();
    let floe_total = stored as f64 * scale / 1e6;
    let arrow = batch.get_array_memory_size() as f64 / 1e6;
    println!(
        "{:<8} {floe_total:>8.2} {parquet_total:>8.1} {:>8.2} {:>9.0} {:>9.0}",
        "table",
        floe_total / parquet_total,
        arrow / encode_s,
        arrow / decode_s
    );
    println!("(a column's row: that column alone in its segments; table: all five in each segment)");
    Ok(())
}
