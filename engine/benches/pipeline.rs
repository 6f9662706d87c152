//! The engine's pipelines on a 1M-row `wide-float` table (timestamp index + 10 float64 columns, 88 MB),
//! on the memory backend (encode/decode and the hand-over only) and on LMDB (plus transactions, fsync
//! and the map), so a regression shows which stage it is in: `cargo bench -p floe-engine --bench pipeline`.
//! The codec alone is `cargo bench -p floe-formats --bench codec`.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use divan::Bencher;
use divan::counter::BytesCount;
use floe_engine::{AsOf, Floe, IndexKind, Library, LibraryOptions, ReadRequest, Table};

const ROWS: usize = 1_000_000;
const T0: i64 = 1_600_000_000_000_000_000;
const STEP: i64 = 60_000_000_000;

fn main() {
    divan::main();
}

/// `rows` rows starting at row `first`: random-walk prices rounded to cents and N(0,1)-like noise.
fn batch(first: usize, rows: usize) -> RecordBatch {
    let mut fields = vec![Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false)];
    let mut cols: Vec<ArrayRef> =
        vec![Arc::new(TimestampNanosecondArray::from_iter_values((first..first + rows).map(|i| T0 + i as i64 * STEP)))];
    let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ first as u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    for c in 0..10 {
        fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
        let values: Vec<f64> = if c < 5 {
            let mut p = 100.0;
            (0..rows)
                .map(|_| {
                    p += next() - 0.5;
                    (p * 100.0).round() / 100.0
                })
                .collect()
        } else {
            (0..rows).map(|_| next() * 2.0 - 1.0).collect()
        };
        cols.push(Arc::new(Float64Array::from(values)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns match the schema")
}

fn table(first: usize, rows: usize) -> Table {
    Table::from_batch(batch(first, rows), IndexKind::Timestamp("ts".into())).expect("sorted index")
}

fn bytes(t: &Table) -> usize {
    t.batches().iter().flat_map(|b| b.columns()).map(|c| c.get_buffer_memory_size()).sum()
}

/// A library on `backend` ("mem" or "lmdb", in a fresh temporary folder kept for the process).
fn library(backend: &str) -> Library {
    let uri = match backend {
        "mem" => "mem://".to_string(),
        _ => {
            let dir =
                std::env::temp_dir().join(format!("floe-bench-pipeline-{}-{}", std::process::id(), rand_suffix()));
            format!("lmdb://{}", dir.display())
        }
    };
    let floe = Floe::open(&uri).expect("store opens");
    floe.get_or_create_library("bench", LibraryOptions::default()).expect("library")
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

#[divan::bench(args = ["mem", "lmdb"], sample_count = 10)]
fn write(bencher: Bencher, backend: &str) {
    let lib = library(backend);
    let t = table(0, ROWS);
    let n = bytes(&t);
    bencher.counter(BytesCount::new(n)).bench_local(|| lib.write_pruned("w", &t, None).expect("write"));
}

#[divan::bench(args = ["mem", "lmdb"], sample_count = 20)]
fn read_full(bencher: Bencher, backend: &str) {
    let lib = library(backend);
    let t = table(0, ROWS);
    lib.write("r", &t, None).expect("write");
    bencher.counter(BytesCount::new(bytes(&t))).bench_local(|| lib.read("r", &ReadRequest::default()).expect("read"));
}

/// Every stored block of the version checked against its checksum, nothing decoded (`Library::verify`
/// on the calling thread): the checksum stage of `read_full` alone.
#[divan::bench(args = ["mem", "lmdb"], sample_count = 20)]
fn verify_full(bencher: Bencher, backend: &str) {
    let lib = library(backend);
    let t = table(0, ROWS);
    lib.write("r", &t, None).expect("write");
    bencher.counter(BytesCount::new(bytes(&t))).bench_local(|| lib.verify("r", &AsOf::Latest, false).expect("verify"));
}

#[divan::bench(args = ["mem", "lmdb"], sample_count = 20)]
fn read_date_range_10pct(bencher: Bencher, backend: &str) {
    let lib = library(backend);
    lib.write("r", &table(0, ROWS), None).expect("write");
    let lo = T0 + (ROWS as i64 * 45 / 100) * STEP;
    let hi = T0 + (ROWS as i64 * 55 / 100) * STEP;
    let req = ReadRequest { date_range: Some((Some(lo), Some(hi))), ..ReadRequest::default() };
    bencher.bench_local(|| lib.read("r", &req).expect("read"));
}

#[divan::bench(args = ["mem", "lmdb"], sample_count = 20)]
fn read_2_columns(bencher: Bencher, backend: &str) {
    let lib = library(backend);
    lib.write("r", &table(0, ROWS), None).expect("write");
    let req = ReadRequest { columns: Some(vec!["f0".into(), "f5".into()]), ..ReadRequest::default() };
    bencher.bench_local(|| lib.read("r", &req).expect("read"));
}

/// One durable 1,000-row append (the latency ArcticDB's ~4 fsyncs are compared with).
#[divan::bench(args = ["mem", "lmdb"], sample_count = 50)]
fn append_1000_rows(bencher: Bencher, backend: &str) {
    let lib = library(backend);
    lib.write("a", &table(0, 10_000), None).expect("write");
    let mut next = 10_000;
    bencher
        .with_inputs(|| {
            next += 1_000;
            table(next - 1_000, 1_000)
        })
        .bench_local_values(|t| lib.append("a", &t, None).expect("append"));
}

/// Version 0 of a symbol with 1,000 versions: the cost of resolving an old version.
#[divan::bench(args = ["mem", "lmdb"], sample_count = 20)]
fn read_as_of_0_of_1000(bencher: Bencher, backend: &str) {
    let lib = library(backend);
    let t = table(0, 10);
    for _ in 0..1_000 {
        lib.write("v", &t, None).expect("write");
    }
    let req = ReadRequest { as_of: AsOf::Version(0), ..ReadRequest::default() };
    bencher.bench_local(|| lib.read("v", &req).expect("read"));
}

/// A `wide` table: `rows` rows of 1,000 float64 columns (no index), 80 KB a column at 10,000 rows.
fn wide_table(rows: usize) -> Table {
    let fields: Vec<Field> = (0..1_000).map(|c| Field::new(format!("c{c}"), DataType::Float64, false)).collect();
    let cols: Vec<ArrayRef> = (0..1_000)
        .map(|c| Arc::new(Float64Array::from_iter_values((0..rows).map(|r| (r * 1_000 + c) as f64 / 7.0))) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns match the schema");
    Table::from_batch(batch, IndexKind::RowCount).expect("no index to check")
}

/// A full read of 1,000 short columns (10,000 rows, 80 MB): each output is allocator memory, prefaulted
/// in the read's parallel pass (design/decisions.md D52). `fresh`: the allocator's free memory is handed
/// back to the kernel before each read (`malloc_trim`, as the benchmark harness does), so every output
/// page is a first touch.
#[divan::bench(args = [false, true], sample_count = 20, sample_size = 1)]
fn read_wide(bencher: Bencher, fresh: bool) {
    let lib = library("mem");
    let t = wide_table(10_000);
    lib.write("w", &t, None).expect("write");
    bencher
        .counter(BytesCount::new(bytes(&t)))
        .with_inputs(|| {
            #[cfg(target_os = "linux")]
            if fresh {
                // SAFETY: `malloc_trim` only returns free memory of the allocator to the kernel.
                unsafe { libc::malloc_trim(0) };
            }
        })
        .bench_local_values(|()| lib.read("w", &ReadRequest::default()).expect("read"));
}
