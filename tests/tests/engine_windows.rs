//! Partial reads decode only the rows they return (row windows of each row slice), and updates and
//! range deletes keep the untouched rows of a segment by reference (entries naming part of a
//! segment): every combination of row range, date range and column subset, over tables cut into
//! slices of every size and then edited, must give exactly the rows of the model that the request
//! names, whole or streamed.

use arrow_array::RecordBatch;
use floe_engine::{AsOf, Floe, LibraryOptions, ReadRequest};
use floe_tests::{Row, batch, rows, table};
use proptest::prelude::*;

/// Sorted timestamps with repeats (steps 0-2), so date bounds fall inside runs of equal stamps.
fn stamps(steps: &[u8]) -> Vec<i64> {
    let mut t = 100;
    steps
        .iter()
        .map(|&s| {
            t += i64::from(s % 3);
            t
        })
        .collect()
}

/// What a request must return, computed from the whole table: the row range first (negative bounds
/// count from the end), then the date range, then the columns (the index first).
fn expected(all: &RecordBatch, ts: &[i64], req: &ReadRequest) -> RecordBatch {
    let total = ts.len() as i64;
    let norm = |x: i64| if x < 0 { (total + x).max(0) } else { x.min(total) };
    let (mut start, mut end) = req.row_range.map_or((0, total), |(a, b)| (norm(a), norm(b).max(norm(a))));
    if let Some((a, b)) = req.date_range {
        let (a, b) = (a.unwrap_or(i64::MIN), b.unwrap_or(i64::MAX));
        start = start.max(ts.partition_point(|&t| t < a) as i64);
        end = end.min(ts.partition_point(|&t| t <= b) as i64).max(start);
    }
    let rows = all.slice(start as usize, (end - start) as usize);
    match &req.columns {
        None => rows,
        Some(names) => {
            let mut cols = vec![0];
            for n in names {
                let c = all.schema().index_of(n).expect("a test column");
                if !cols.contains(&c) {
                    cols.push(c);
                }
            }
            rows.project(&cols).expect("projection")
        }
    }
}

/// `batch` with every column read as codes (`floe.codes` metadata) or as string views turned back into
/// plain strings.
fn plain_strings(batch: &RecordBatch) -> RecordBatch {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_array::{ArrayRef, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if f.data_type() == &DataType::Utf8View {
            // Strings read as views: the same strings (this property's columns are `utf8`).
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
            columns.push(Arc::new(c.as_string_view().iter().collect::<StringArray>()));
        } else if f.metadata().get(floe_engine::CODES_METADATA_KEY).map(String::as_str) == Some("utf8") {
            let d = c.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            let plain: StringArray = d.keys().iter().map(|k| k.map(|k| values.value(k as usize))).collect();
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
            columns.push(Arc::new(plain));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(Arc::clone(c));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("same rows")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn partial_reads_return_exactly_the_named_rows(
        steps in prop::collection::vec(any::<u8>(), 1..600),
        appends in prop::collection::vec(1usize..80, 0..4),
        rows_per_segment in 1usize..120,
        columns_per_segment in 1usize..4,
        edits in prop::collection::vec((any::<bool>(), 0u16..1300, 0u16..1300, 0u16..40), 0..4),
        requests in prop::collection::vec(
            (
                prop::option::of((-700i64..700, -700i64..700)),
                prop::option::of((prop::option::of(90i64..1400), prop::option::of(90i64..1400))),
                prop::option::of(prop::sample::subsequence(vec!["px", "qty", "name", "flag"], 0..4)),
            ),
            1..6,
        ),
    ) {
        let floe = Floe::open("mem://").expect("memory store");
        let options = LibraryOptions { rows_per_segment, columns_per_segment, dynamic_schema: false };
        let lib = floe.create_library("windows", options).expect("create library");
        let all_rows: Vec<Row> = rows(stamps(&steps));
        // One write, then appends of the last rows: slices of uneven sizes.
        let cut: usize = all_rows.len() - appends.iter().sum::<usize>().min(all_rows.len() - 1);
        lib.write("s", &table(&all_rows[..cut]), None).expect("write");
        let mut at = cut;
        for n in appends {
            let end = (at + n).min(all_rows.len());
            if end > at {
                lib.append("s", &table(&all_rows[at..end]), None).expect("append");
            }
            at = end;
        }
        // Updates and range deletes then keep parts of segments by reference: reads must still see
        // exactly the model's rows.
        let mut model = all_rows;
        for (delete, a, b, n) in edits {
            let (lo, hi) = (100 + i64::from(a.min(b)), 100 + i64::from(a.max(b)));
            let fresh: Vec<Row> = if delete {
                Vec::new()
            } else {
                rows((0..n).map(|i| lo + (hi - lo) * i64::from(i) / i64::from(n.max(1))))
            };
            if delete {
                lib.delete_data_in_range("s", (lo, hi)).expect("delete range");
            } else {
                lib.update("s", &table(&fresh), Some((lo, hi)), None).expect("update");
            }
            let split = |m: &[Row]| (m.partition_point(|r| r.ts < lo), m.partition_point(|r| r.ts <= hi));
            let (p, q) = split(&model);
            model = model[..p].iter().cloned().chain(fresh).chain(model[q..].iter().cloned()).collect();
        }
        let ts: Vec<i64> = model.iter().map(|r| r.ts).collect();
        let all = batch(&model);
        for (row_range, date_range, columns) in requests {
            let req = ReadRequest {
                as_of: AsOf::Latest,
                row_range,
                date_range,
                columns: columns.map(|c| c.into_iter().map(String::from).collect()),
                strings_as_codes: false,
                column_blocks: false,
                strings_as_views: false,
            };
            let want = expected(&all, &ts, &req);
            let got = lib.read("s", &req).expect("read").data;
            prop_assert_eq!(&got, &want, "read {:?}", req);
            let streamed: Vec<RecordBatch> =
                lib.read_stream("s", &req).expect("stream").collect::<Result<_, _>>().expect("stream reads");
            // The same read with strings as codes: equal once the codes are looked up.
            let coded = lib.read("s", &ReadRequest { strings_as_codes: true, ..req.clone() }).expect("read codes").data;
            prop_assert_eq!(&plain_strings(&coded), &want, "codes {:?}", req);
            let viewed = lib.read("s", &ReadRequest { strings_as_views: true, ..req.clone() }).expect("read views").data;
            prop_assert_eq!(&plain_strings(&viewed), &want, "views {:?}", req);
            let mut off = 0;
            for b in &streamed {
                prop_assert!(b.num_rows() > 0, "the stream yields no empty batches");
                prop_assert_eq!(b, &want.slice(off, b.num_rows()), "stream {:?} at row {}", req, off);
                off += b.num_rows();
            }
            prop_assert_eq!(off, want.num_rows(), "stream {:?}", req);
        }
    }
}

/// Column blocks: the null-free columns of one fixed-width type share one allocation, column after
/// column, whatever windows and slices the read covers; the batch is the same as without blocks.
#[test]
fn column_blocks_hold_same_typed_null_free_columns_in_order() {
    use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use floe_engine::{IndexKind, Table};
    use std::sync::Arc;

    let n = 500usize;
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("a", DataType::Float64, false),
        Field::new("gappy", DataType::Float64, true),
        Field::new("i", DataType::Int32, false),
        Field::new("b", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from_iter_values((0..n as i64).map(|t| t * 10))),
        Arc::new(Float64Array::from_iter_values((0..n).map(|x| x as f64))),
        Arc::new(Float64Array::from_iter((0..n).map(|x| (x % 3 != 0).then_some(x as f64)))),
        Arc::new(Int32Array::from_iter_values((0..n as i32).map(|x| -x))),
        Arc::new(Float64Array::from_iter_values((0..n).map(|x| x as f64 * 0.5))),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("batch");
    let floe = Floe::open("mem://").expect("memory store");
    let options = LibraryOptions { rows_per_segment: 64, columns_per_segment: 2, dynamic_schema: false };
    let lib = floe.create_library("blocks", options).expect("library");
    lib.write("s", &Table::from_batch(batch.clone(), IndexKind::Timestamp("ts".into())).expect("table"), None)
        .expect("write");
    for row_range in [None, Some((37, 301))] {
        let plain = ReadRequest { row_range, ..Default::default() };
        let want = lib.read("s", &plain).expect("read").data;
        let got = lib.read("s", &ReadRequest { column_blocks: true, ..plain.clone() }).expect("read blocks");
        assert_eq!(got.data, want);
        assert_eq!(got.blocks.len(), 1, "one block: a and b (gappy has nulls, i is alone)");
        let block = &got.blocks[0];
        assert_eq!(block.columns, vec![1, 4]);
        let rows = want.num_rows();
        assert_eq!(block.buffer.len(), 2 * rows * 8);
        for (k, &c) in block.columns.iter().enumerate() {
            let values = got.data.column(c).to_data().buffers()[0].clone();
            assert_eq!(values.as_ptr() as usize, block.buffer.as_ptr() as usize + k * rows * 8, "column {c}");
        }
        assert!(lib.read("s", &plain).expect("read").blocks.is_empty(), "no blocks unless asked");
    }
}

/// Short null-free columns of one type share allocations even when no blocks are asked for. Where
/// read outputs get huge pages, one huge-page mapping once together they fill one (D34, D35); where
/// they get 4 KiB pages (the default under a balloon that reports free pages), allocator blocks of at
/// most 4 MiB, for reads of at most 8 MiB of such columns (D54); with `FLOE_HUGE_PAGES=0`, none. The
/// columns are slices of their block, in order, with the same values; columns with nulls keep
/// buffers of their own.
#[cfg(target_os = "linux")]
#[test]
fn short_columns_share_allocations_unasked() {
    use arrow_array::{Array, ArrayRef, Float64Array, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use floe_engine::{IndexKind, Table, output_huge_pages};
    use std::sync::Arc;

    let (n, width) = (4_000usize, 300usize); // 32,000 bytes a column, 9.6 MB in all
    let mut fields = vec![Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false)];
    let mut columns: Vec<ArrayRef> =
        vec![Arc::new(TimestampNanosecondArray::from_iter_values((0..n as i64).map(|t| t * 10)))];
    for c in 0..width {
        fields.push(Field::new(format!("c{c}"), DataType::Float64, c == 7));
        columns.push(if c == 7 {
            Arc::new(Float64Array::from_iter((0..n).map(|r| (r % 2 == 0).then_some(r as f64))))
        } else {
            Arc::new(Float64Array::from_iter_values((0..n).map(|r| (r * width + c) as f64)))
        });
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
    let floe = Floe::open("mem://").expect("memory store");
    let lib = floe.create_library("short", LibraryOptions::default()).expect("library");
    lib.write("s", &Table::from_batch(batch.clone(), IndexKind::Timestamp("ts".into())).expect("table"), None)
        .expect("write");
    let floats: Vec<usize> = (1..=width).filter(|&c| c != 8).collect(); // column 8 is c7, with nulls
    let starts = |b: &RecordBatch| -> Vec<usize> {
        floats.iter().map(|&c| b.column(c).to_data().buffers()[0].as_ptr() as usize).collect()
    };
    // How many columns each run of columns lying one after the other holds.
    let runs = |starts: &[usize], rows: usize| -> Vec<usize> {
        let mut runs = vec![1];
        for p in starts.windows(2) {
            match runs.last_mut() {
                Some(run) if p[1] == p[0] + rows * 8 => *run += 1,
                _ => runs.push(1),
            }
        }
        runs
    };
    let allocator_only = std::env::var("FLOE_HUGE_PAGES").is_ok_and(|v| v == "0");
    let everything = vec![floats.len()];
    let apart = |runs: &[usize]| runs.iter().all(|&r| r == 1);

    let read = |rows: usize| {
        let got =
            lib.read("s", &ReadRequest { row_range: Some((0, rows as i64)), ..Default::default() }).expect("read");
        assert_eq!(got.data, batch.slice(0, rows));
        assert!(got.blocks.is_empty(), "blocks not asked for are not reported");
        let runs = runs(&starts(&got.data), rows);
        (got, runs)
    };

    // All 4,000 rows: 9.6 MB of short columns.
    let (got, all) = read(n);
    if output_huge_pages() {
        assert_eq!(all, everything, "the float columns lie one after the other");
        assert_eq!(starts(&got.data)[0] % (2 << 20), 0, "the block starts on a huge-page boundary");
    } else {
        assert!(apart(&all), "more than 8 MiB of columns from the allocator keep buffers of their own");
    }
    // 2,000 rows: 4.8 MB, in allocator blocks of at most 4 MiB.
    let (_, half) = read(2_000);
    if output_huge_pages() {
        assert_eq!(half, everything);
    } else if allocator_only {
        assert!(apart(&half), "every column keeps a buffer of its own");
    } else {
        let per_block = (4 << 20) / (2_000 * 8);
        assert_eq!(half, vec![per_block, floats.len() - per_block], "blocks of at most 4 MiB");
    }
    // 100 rows: 240 KB, below one huge page: buffers of their own, or one allocator block.
    let (small, small_runs) = read(100);
    if output_huge_pages() || allocator_only {
        assert!(apart(&small_runs), "small reads are not cut from one huge-page block");
    } else {
        assert_eq!(small_runs, everything, "one allocator block");
    }
    // A column taken out of its block outlives the read's other columns.
    let kept = small.data.column(2).clone();
    drop(small);
    assert_eq!(kept.to_data(), batch.column(2).slice(0, 100).to_data());
}
