//! Many small appends versus one write: a symbol built from `appends` appends of `rows` rows must read
//! about as fast as the same table written at once (tail merging keeps the segment count low).
//!
//! `cargo run --release -p floe-engine --example appends -- [appends] [rows] [uri]`
//! (defaults: 10,000 appends of 100 rows, an LMDB store in a temporary folder).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use floe_engine::{Floe, IndexKind, LibraryOptions, ReadRequest, Table};

fn batch(start: i64, rows: usize) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("px", DataType::Float64, false),
        Field::new("qty", DataType::Int64, false),
    ]);
    let ts = (start..start + rows as i64).map(|i| i * 1_000);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from_iter_values(ts)),
        Arc::new(Float64Array::from_iter_values((0..rows).map(|i| (start as f64 + i as f64) * 0.01))),
        Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|i| (start + i) % 977))),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).expect("valid batch")
}

fn median_read(lib: &floe_engine::Library, symbol: &str) -> Result<f64, floe_engine::Error> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        lib.read(symbol, &ReadRequest::default())?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let appends: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let rows: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let dir = std::env::temp_dir().join(format!("floe-appends-{}", std::process::id()));
    let uri = args.get(3).cloned().unwrap_or_else(|| format!("lmdb://{}", dir.display()));
    let floe = Floe::open(&uri)?;
    let lib = floe.get_or_create_library("appends", LibraryOptions::default())?;
    let index = IndexKind::Timestamp("ts".into());

    let t = Instant::now();
    for a in 0..appends {
        lib.append("appended", &Table::from_batch(batch((a * rows) as i64, rows), index.clone())?, None)?;
    }
    let per_append = t.elapsed().as_secs_f64() / appends as f64;
    lib.write("written", &Table::from_batch(batch(0, appends * rows), index)?, None)?;

    let appended = median_read(&lib, "appended")?;
    let written = median_read(&lib, "written")?;
    let seg_a = lib.get_description("appended", &Default::default())?.segment_count;
    let seg_w = lib.get_description("written", &Default::default())?.segment_count;
    println!("{appends} appends of {rows} rows on {uri}: {:.2} ms per append", per_append * 1e3);
    println!(
        "read after appends {appended:.4} s ({seg_a} segments); written at once {written:.4} s ({seg_w} segments)"
    );
    println!("ratio {:.2}", appended / written);
    drop(lib);
    floe.delete_library("appends")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
