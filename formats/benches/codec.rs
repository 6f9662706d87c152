//! Encode and decode throughput of the segment codec for 1M-row columns, next to a plain memcpy of the
//! same bytes so the ratio can be read off one run: `cargo bench -p floe-formats --bench codec`.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow_buffer::MutableBuffer;
use arrow_schema::{Field, Schema};
use divan::Bencher;
use divan::counter::BytesCount;
use floe_formats::segment::{ColumnOut, SegmentReader, ValuesOut, encode_segment};

const ROWS: usize = 1_000_000;

fn main() {
    divan::main();
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The benchmark columns: random floats (incompressible), jittered sorted timestamps, an int64 random
/// walk of steps -2..=2 (prices in cents), the same walk as float64 dollars (decimals: D42's codec),
/// and strings drawn from 500 tickers.
fn column(kind: &str) -> ArrayRef {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    match kind {
        "float64" => {
            Arc::new(Float64Array::from_iter_values((0..ROWS).map(|_| xorshift(&mut s) as f64 / u64::MAX as f64)))
        }
        "timestamp" => {
            let mut t = 1_700_000_000_000_000_000i64;
            Arc::new(TimestampNanosecondArray::from_iter_values((0..ROWS).map(|_| {
                t += 1_000_000 + (xorshift(&mut s) % 1_000) as i64;
                t
            })))
        }
        "int64" => {
            let mut px = 10_000i64;
            Arc::new(Int64Array::from_iter_values((0..ROWS).map(|_| {
                px += (xorshift(&mut s) % 5) as i64 - 2;
                px
            })))
        }
        "decimal" => {
            let mut px = 10_000i64;
            Arc::new(Float64Array::from_iter_values((0..ROWS).map(|_| {
                px += (xorshift(&mut s) % 5) as i64 - 2;
                px as f64 / 100.0
            })))
        }
        _ => {
            let tickers: Vec<String> = (0..500).map(|i| format!("TICK{i:03}.X")).collect();
            let mut b = StringBuilder::new();
            for _ in 0..ROWS {
                b.append_value(&tickers[(xorshift(&mut s) % 500) as usize]);
            }
            Arc::new(b.finish())
        }
    }
}

fn batch(kind: &str) -> RecordBatch {
    let array = column(kind);
    let schema = Schema::new(vec![Field::new(kind, array.data_type().clone(), false)]);
    RecordBatch::try_new(Arc::new(schema), vec![array]).expect("valid batch")
}

fn raw_bytes(batch: &RecordBatch) -> usize {
    batch.get_array_memory_size()
}

#[divan::bench(args = ["float64", "decimal", "timestamp", "int64", "string"])]
fn encode(bencher: Bencher, kind: &str) {
    let batch = batch(kind);
    bencher.counter(BytesCount::new(raw_bytes(&batch))).bench(|| encode_segment(&batch, None).expect("encodes"));
}

/// The same 1M rows as ten segments of 100,000 rows, the engine's default row slice: the shape a
/// write encodes (100 KiB blocks for 8-byte columns, where the codec's choice per block weighs more
/// than in 1M-row streams' 256 KiB blocks; design/decisions.md D38).
#[divan::bench(args = ["float64", "decimal", "timestamp", "int64", "string"])]
fn encode_100k_row_segments(bencher: Bencher, kind: &str) {
    let batch = batch(kind);
    let slices: Vec<RecordBatch> = (0..ROWS).step_by(100_000).map(|at| batch.slice(at, 100_000)).collect();
    bencher.counter(BytesCount::new(raw_bytes(&batch))).bench(|| {
        for slice in &slices {
            encode_segment(slice, None).expect("encodes");
        }
    });
}

/// The `string` column handed over as codes (`CODES_METADATA_KEY`, D28): the same segment bytes as
/// `encode(string)`, made by remapping keys instead of hashing every row's string.
#[divan::bench]
fn encode_string_as_codes(bencher: Bencher) {
    let plain = batch("string");
    let coded = arrow_cast_free_dictionary(plain.column(0));
    let mark = std::collections::HashMap::from([(floe_formats::CODES_METADATA_KEY.to_owned(), "utf8".to_owned())]);
    let field = Field::new("string", coded.data_type().clone(), false).with_metadata(mark);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![coded]).expect("valid batch");
    assert_eq!(encode_segment(&batch, None).expect("encodes"), encode_segment(&plain, None).expect("encodes"));
    bencher.counter(BytesCount::new(raw_bytes(&plain))).bench(|| encode_segment(&batch, None).expect("encodes"));
}

/// `strings` as an `Int32` dictionary array (distinct values in order of first appearance).
fn arrow_cast_free_dictionary(strings: &ArrayRef) -> ArrayRef {
    use arrow_array::cast::AsArray;
    let strings = strings.as_string::<i32>();
    let mut seen: std::collections::HashMap<&str, i32> = std::collections::HashMap::new();
    let mut values: Vec<&str> = Vec::new();
    let keys: Vec<i32> = strings
        .iter()
        .map(|v| {
            let v = v.expect("no nulls");
            *seen.entry(v).or_insert_with(|| {
                values.push(v);
                values.len() as i32 - 1
            })
        })
        .collect();
    let dictionary = arrow_array::DictionaryArray::<arrow_array::types::Int32Type>::try_new(
        arrow_array::Int32Array::from(keys),
        Arc::new(arrow_array::StringArray::from(values)),
    )
    .expect("keys inside the dictionary");
    Arc::new(dictionary)
}

#[divan::bench(args = ["float64", "decimal", "timestamp", "int64", "string"])]
fn decode_to_arrow(bencher: Bencher, kind: &str) {
    let batch = batch(kind);
    let bytes = encode_segment(&batch, None).expect("encodes");
    bencher
        .counter(BytesCount::new(raw_bytes(&batch)))
        .bench(|| SegmentReader::new(&bytes).expect("parses").decode(None).expect("decodes"));
}

/// Decoding into an already faulted-in output buffer: the read pipeline's case. Counted in bytes
/// written (values; offsets and data for strings).
#[divan::bench(args = ["float64", "decimal", "timestamp", "int64", "string"])]
fn decode_into_buffer(bencher: Bencher, kind: &str) {
    let batch = batch(kind);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let data_len = SegmentReader::new(&bytes).expect("parses").column_info(0).expect("column 0").data_len as usize;
    let ends_len = if kind == "string" { ROWS * 4 } else { ROWS * 8 };
    let mut ends = MutableBuffer::from_len_zeroed(ends_len);
    ends.as_slice_mut().fill(1);
    let mut data = vec![1u8; data_len];
    bencher.counter(BytesCount::new(ends_len + data_len)).bench_local(|| {
        let reader = SegmentReader::new(&bytes).expect("parses");
        let values = if kind == "string" {
            ValuesOut::Var { ends: ends.as_slice_mut(), data: &mut data, base: 0 }
        } else {
            ValuesOut::Fixed(ends.as_slice_mut())
        };
        reader.decode_column_into(0, ColumnOut { validity: None, values }).expect("decodes");
    });
}

/// The physical reference: copying the same 8 MB into an already faulted-in buffer.
#[divan::bench]
fn memcpy_8mb(bencher: Bencher) {
    let src = vec![7u8; ROWS * 8];
    let mut dst = vec![1u8; ROWS * 8];
    bencher.counter(BytesCount::new(ROWS * 8)).bench_local(|| dst.copy_from_slice(divan::black_box(&src)));
}

/// Encoded size relative to the Arrow size, printed once (not timed).
#[divan::bench(args = ["float64", "decimal", "timestamp", "int64", "string"], sample_count = 1, sample_size = 1)]
fn compression_ratio(kind: &str) {
    let batch = batch(kind);
    let encoded = encode_segment(&batch, None).expect("encodes").len();
    eprintln!(
        "{kind}: arrow {} bytes, encoded {encoded} bytes, ratio {:.2}",
        raw_bytes(&batch),
        raw_bytes(&batch) as f64 / encoded as f64
    );
}
