//! The README's main job for now: builds a realistic 1M-row market-data table, encodes it into one
//! Floe segment, decodes it back, checks it is identical, and prints sizes and speeds.
//!
//! `cargo run --release -p floe-formats --example roundtrip [rows]`

use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int16Type;
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{Field, Schema};
use floe_formats::{SegmentReader, decode_segment, encode_segment};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let batch = ticks(rows);
    let arrow_bytes = batch.get_array_memory_size();
    println!("table: {rows} rows x {} columns, {:.1} MB in Arrow", batch.num_columns(), mb(arrow_bytes));

    let t = Instant::now();
    let encoded = encode_segment(&batch, Some(b"{\"source\": \"example\"}"))?;
    let encode_s = t.elapsed().as_secs_f64();
    println!(
        "encode: {:.1} MB -> {:.1} MB (ratio {:.2}) in {:.1} ms, {:.0} MB/s",
        mb(arrow_bytes),
        mb(encoded.len()),
        arrow_bytes as f64 / encoded.len() as f64,
        encode_s * 1e3,
        mb(arrow_bytes) / encode_s
    );

    let t = Instant::now();
    let decoded = decode_segment(&encoded)?;
    let decode_s = t.elapsed().as_secs_f64();
    println!(
        "decode: all columns, checksums verified, in {:.1} ms, {:.0} MB/s",
        decode_s * 1e3,
        mb(arrow_bytes) / decode_s
    );
    assert_eq!(decoded.batch, batch, "round trip must be exact");

    let reader = SegmentReader::new(&encoded)?;
    for i in 0..reader.num_columns() {
        let info = reader.column_info(i)?;
        println!(
            "  column {:<6} {:<42} stored {:>9} bytes",
            info.field.name(),
            info.field.data_type().to_string(),
            info.stored_len
        );
    }
    let t = Instant::now();
    let price = reader.column_index("price").ok_or("price column")?;
    let subset = reader.decode(Some(&[0, price]))?;
    println!("decode: 2 of {} columns in {:.1} ms", reader.num_columns(), t.elapsed().as_secs_f64() * 1e3);
    assert_eq!(subset.column(1), batch.column(price));
    println!("round trip exact: yes");
    Ok(())
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// A market-data-like table: jittered timestamps, a random-walk price, integer sizes, a ticker from
/// 500 values (dictionary-encoded) and a side flag.
fn ticks(rows: usize) -> RecordBatch {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut t = 1_700_000_000_000_000_000i64;
    let mut px = 10_000i64;
    let (mut ts, mut prices, mut sizes, mut sides) = (vec![], vec![], vec![], vec![]);
    let mut tickers = StringDictionaryBuilder::<Int16Type>::new();
    for _ in 0..rows {
        let r = next();
        t += 1_000 + (r % 50_000) as i64;
        px += (r >> 20) as i64 % 5 - 2;
        ts.push(t);
        prices.push(px as f64 / 100.0);
        sizes.push(((r >> 40) % 100 + 1) as i64 * 100);
        sides.push(r & 1 == 1);
        tickers.append_value(format!("T{:03}", (r >> 8) % 500));
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("time", Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC"))),
        ("price", Arc::new(Float64Array::from(prices))),
        ("size", Arc::new(Int64Array::from(sizes))),
        ("ticker", Arc::new(tickers.finish())),
        ("buy", Arc::new(BooleanArray::from(sides))),
    ];
    let schema =
        Schema::new(columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), false)).collect::<Vec<_>>());
    RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect()).expect("consistent table")
}
