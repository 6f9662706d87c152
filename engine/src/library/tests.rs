//! Reads (whole and streamed) racing deletes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use floe_backends::Storage;

use crate::test_storage::{TestStorage, library, table};
use crate::{AsOf, Detail, ErrorKind, ReadRequest};

#[test]
fn a_version_pruned_while_it_is_read_is_version_not_found_not_a_missing_object() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>);
    lib.write("s", &table(0..10), None).expect("v0");
    lib.write("s", &table(100..110), None).expect("v1");
    // Between resolving version 0 and fetching its data, another process prunes it.
    let other = library(Arc::clone(&storage.inner) as Arc<dyn Storage>);
    storage.before_data_read.set(move || other.prune_previous_versions("s").expect("prune"));
    let old = ReadRequest { as_of: AsOf::Version(0), ..Default::default() };
    let err = lib.read("s", &old).expect_err("pruned");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
    assert!(err.to_string().contains("deleted while it was being read"), "{err}");
    // A live version whose data is really missing still says so: the object is named.
    let live = lib.read("s", &ReadRequest::default()).expect("v1 reads").data;
    assert_eq!(live.num_rows(), 10);
    let data = (&*storage.inner as &dyn Storage)
        .list_all(floe_formats::KeyType::TableData, floe_backends::ListScope::Symbol("s"))
        .expect("list");
    let floe_formats::Key::Atom(first) = &data[0] else { panic!("data keys are atoms") };
    storage.inner.delete_batch(std::slice::from_ref(first)).expect("delete");
    let err = lib.read("s", &ReadRequest { as_of: AsOf::Version(1), ..Default::default() }).expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_ne!(err.detail(), Detail::VersionNotFound, "{err}");
}

#[test]
fn a_version_pruned_while_it_streams_is_version_not_found_not_a_missing_object() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>);
    lib.write("s", &table(0..10), None).expect("v0"); // three row slices of at most 4 rows
    lib.write("s", &table(100..110), None).expect("v1");
    let mut stream = lib.read_stream("s", &ReadRequest { as_of: AsOf::Version(0), ..Default::default() }).expect("v0");
    assert_eq!(stream.next().expect("a first batch").expect("reads").num_rows(), 4);
    // After the first batch another process prunes version 0: the stream cannot go on.
    library(Arc::clone(&storage.inner) as Arc<dyn Storage>).prune_previous_versions("s").expect("prune");
    let err = stream.next().expect("a second item").expect_err("pruned");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
    assert!(err.to_string().contains("deleted while it was being read"), "{err}");
    // A stream of the latest version stays on the version it resolved: a newer one landing and the
    // old one pruned end it the same way (it does not switch versions half-way).
    let mut stream = lib.read_stream("s", &ReadRequest::default()).expect("resolves");
    assert_eq!(stream.item().version, 1);
    stream.next().expect("a first batch").expect("reads");
    lib.write("s", &table(200..210), None).expect("v2");
    lib.prune_previous_versions("s").expect("prune");
    let err = stream.next().expect("a second item").expect_err("v1 pruned");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
}

/// Windows that cut a segment of a variable-length column (strings, large strings, binary, large
/// binary; with nulls, dictionary-coded or not) are decoded once and copied into place: every row
/// range reads exactly the rows a whole read has there, as values and as codes.
#[test]
fn windows_of_variable_length_columns_read_exactly_their_rows() {
    use arrow_array::{
        ArrayRef, BinaryArray, LargeBinaryArray, LargeStringArray, RecordBatch, StringArray, TimestampNanosecondArray,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let n = 50i64;
    let text = |i: i64| (i % 7 != 3).then(|| format!("v{}", (i * 37) % 11).repeat(1 + (i % 3) as usize));
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("s", DataType::Utf8, true),
        Field::new("ls", DataType::LargeUtf8, true),
        Field::new("b", DataType::Binary, true),
        Field::new("lb", DataType::LargeBinary, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from_iter_values(0..n)),
        Arc::new((0..n).map(text).collect::<StringArray>()),
        Arc::new((0..n).map(|i| text(i + 1)).collect::<LargeStringArray>()),
        Arc::new((0..n).map(|i| text(i + 2).map(String::into_bytes)).collect::<BinaryArray>()),
        Arc::new((0..n).map(|i| Some(vec![i as u8; (i % 5) as usize])).collect::<LargeBinaryArray>()),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("batch");
    let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
    let options = crate::LibraryOptions { rows_per_segment: 8, columns_per_segment: 2, dynamic_schema: false };
    let lib = crate::Library::new("test", storage, options, crate::PipelineOptions::default());
    let table = crate::Table::from_batch(batch.clone(), crate::IndexKind::Timestamp("ts".into())).expect("table");
    lib.write("s", &table, None).expect("write");
    for (a, b) in [(0, 50), (3, 5), (3, 13), (7, 9), (5, 45), (9, 16), (49, 50), (1, 2)] {
        for codes in [false, true] {
            let req = ReadRequest { row_range: Some((a, b)), strings_as_codes: codes, ..Default::default() };
            let got = lib.read("s", &req).expect("reads").data;
            let want = batch.slice(a as usize, (b - a) as usize);
            assert_eq!(got.num_rows(), want.num_rows());
            for (i, field) in want.schema().fields().iter().enumerate() {
                let column = got.column(i);
                let column = match column.data_type() {
                    DataType::Dictionary(_, value) => arrow_cast::cast(column, value).expect("codes to values"),
                    _ => Arc::clone(column),
                };
                assert_eq!(&column, want.column(i), "rows {a}..{b}, codes {codes}, column {}", field.name());
            }
        }
    }
}

/// A string column read as codes (`floe.codes`) and given back to a write, an append, an update, a
/// stage or a stream is stored as the plain string column it is: every later read, as values or as
/// codes, matches the plain strings, and the stored schema says `utf8`.
#[test]
fn strings_read_as_codes_write_back_as_plain_strings() {
    use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let plain_batch = |range: std::ops::Range<i64>| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from_iter_values(range.clone())),
            Arc::new(range.map(|i| (i % 5 != 0).then(|| format!("sym{}", i % 3))).collect::<StringArray>()),
        ];
        RecordBatch::try_new(schema, columns).expect("batch")
    };
    let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
    let options = crate::LibraryOptions { rows_per_segment: 20, columns_per_segment: 2, dynamic_schema: false };
    let lib = crate::Library::new("test", storage, options, crate::PipelineOptions::default());
    let ts = || crate::IndexKind::Timestamp("ts".into());
    lib.write("src", &crate::Table::from_batch(plain_batch(0..60), ts()).expect("table"), None).expect("write");
    // Rows 0..60 read as codes: a dictionary column marked `floe.codes`.
    let codes = |range: (i64, i64)| {
        let req = ReadRequest { row_range: Some(range), strings_as_codes: true, ..Default::default() };
        let coded = lib.read("src", &req).expect("reads").data;
        assert!(floe_formats::is_coded_strings(coded.schema().field(1)), "{:?}", coded.schema());
        coded
    };
    let read_plain = |symbol: &str| lib.read(symbol, &ReadRequest::default()).expect("reads").data;
    let coded_table = |range: (i64, i64)| crate::Table::from_batch(codes(range), ts()).expect("table");

    lib.write("w", &coded_table((0, 30)), None).expect("write codes");
    assert_eq!(read_plain("w"), plain_batch(0..30));
    lib.append("w", &coded_table((30, 45)), None).expect("append codes");
    assert_eq!(read_plain("w"), plain_batch(0..45));
    lib.update("w", &coded_table((10, 20)), None, None).expect("update codes");
    assert_eq!(read_plain("w"), plain_batch(0..45));
    let idx = lib.read("w", &ReadRequest { strings_as_codes: true, ..Default::default() }).expect("codes").data;
    let back = arrow_cast::cast(idx.column(1), &DataType::Utf8).expect("values");
    assert_eq!(&back, plain_batch(0..45).column(1));

    let coded = codes((0, 60));
    let stream = coded.schema();
    let slices = (0..60).step_by(7).map(|a| Ok(coded.slice(a, 7.min(60 - a))));
    lib.write_stream("ws", stream, ts(), slices, None).expect("stream of codes");
    let got = read_plain("ws");
    assert_eq!(got, plain_batch(0..60));
    assert_eq!(got.schema().field(1).data_type(), &DataType::Utf8);
    assert!(got.schema().field(1).metadata().is_empty());

    lib.stage("st", &coded_table((0, 20)), None).expect("stage codes");
    lib.stage("st", &coded_table((20, 60)), None).expect("stage codes");
    lib.finalize_staged("st", crate::FinalizeMode::Write, None, None).expect("finalize");
    assert_eq!(read_plain("st"), plain_batch(0..60));
    assert_eq!(codes((0, 1)).column(1).len(), 1);
}

/// On a backend that does not lend its pages (an object store), a date range cutting two row slices
/// fetches each segment once, in two round trips: the two boundary slices' index segments together
/// (to find the rows), then the rest; the read reuses the first two.
#[test]
fn a_date_range_fetches_each_segment_once() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>); // 4 rows a slice, 1 column a segment
    lib.write("s", &table(0..40), None).expect("write");
    storage.data_fetches.lock().expect("lock").clear();
    let req = ReadRequest { date_range: Some((Some(6), Some(29))), ..Default::default() };
    let got = lib.read("s", &req).expect("reads").data;
    assert_eq!(got.num_rows(), 24);
    let ts = got.column(0).as_any().downcast_ref::<arrow_array::TimestampNanosecondArray>().expect("ts");
    assert_eq!((ts.value(0), ts.value(23)), (6, 29));
    let fetches = storage.data_fetches.lock().expect("lock").clone();
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    assert_eq!(fetches[0].len(), 2, "the two boundary slices' index segments, together");
    let mut all: Vec<_> = fetches.concat();
    let n = all.len();
    all.sort_by_key(|k| k.to_string());
    all.dedup();
    assert_eq!(all.len(), n, "no segment fetched twice");
    assert_eq!(n, 7, "slices 4..8 to 28..32, one segment each (the index travels with every group)");
    // Reads of whole slices search nothing and prefetch nothing.
    storage.data_fetches.lock().expect("lock").clear();
    lib.read("s", &ReadRequest { date_range: Some((Some(4), Some(31))), ..Default::default() }).expect("reads");
    assert_eq!(storage.data_fetches.lock().expect("lock").len(), 1);
}

/// Outputs of 2 MiB and more are mappings of their own (D30): values, string offsets and data,
/// validity and keys read as codes come back the same as from the heap, whole and as windows.
#[test]
fn large_outputs_read_back_the_same_from_mappings() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let rows = 600_000i64; // 4.8 MB per 8-byte column, 2.4 MB of keys as codes
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("x", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from_iter_values(0..rows)),
        Arc::new((0..rows).map(|i| (i % 11 != 0).then_some(i as f64 * 0.5)).collect::<Float64Array>()),
        Arc::new((0..rows).map(|i| (i % 7 != 0).then(|| format!("sym{}", i % 300))).collect::<StringArray>()),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("batch");
    let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
    let lib = crate::Library::new("test", storage, crate::LibraryOptions::default(), crate::PipelineOptions::default());
    let ts = crate::IndexKind::Timestamp("ts".into());
    lib.write("big", &crate::Table::from_batch(batch.clone(), ts).expect("table"), None).expect("write");

    let whole = lib.read("big", &ReadRequest::default()).expect("read").data;
    assert_eq!(whole, batch);
    let values = whole.column(1).to_data().buffers()[0].clone();
    if cfg!(target_os = "linux") && std::env::var_os("FLOE_HUGE_PAGES").is_none_or(|v| v != "0") {
        assert_eq!(values.as_ptr() as usize % (2 << 20), 0, "a mapping starts on a huge-page boundary");
    }
    let window =
        lib.read("big", &ReadRequest { row_range: Some((123, 590_000)), ..Default::default() }).expect("window");
    assert_eq!(window.data, batch.slice(123, 590_000 - 123));

    let codes = ReadRequest { strings_as_codes: true, ..Default::default() };
    let coded = lib.read("big", &codes).expect("codes").data;
    let dictionary = coded.column(2).as_dictionary::<Int32Type>();
    assert_eq!(dictionary.keys().len(), rows as usize);
    let plain = arrow_cast::cast(coded.column(2), &DataType::Utf8).expect("values");
    assert_eq!(&plain, batch.column(2));
    let views = ReadRequest { strings_as_views: true, ..Default::default() };
    let viewed = lib.read("big", &views).expect("views").data;
    assert_eq!(viewed.schema().field(2).data_type(), &DataType::Utf8View);
    assert_eq!(&arrow_cast::cast(viewed.column(2), &DataType::Utf8).expect("values"), batch.column(2));
    // The mapping outlives the batch it came in: an array kept alone still reads.
    let kept = whole.column(1).clone();
    drop(whole);
    assert_eq!(&kept, batch.column(1));
}

/// Strings read as views (`strings_as_views`): the same strings as a plain read, row for row, nulls
/// included, over segments with different dictionaries, for short (inline) and long values, whole and
/// as windows; columns that are not dictionary-coded come back as they are.
#[test]
fn strings_read_as_views_are_the_plain_strings() {
    use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let rows = 300i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("short", DataType::Utf8, true),
        Field::new("long", DataType::Utf8, false),
        Field::new("unique", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from_iter_values(0..rows)),
        // Later slices hold values the first ones do not (the dictionaries differ by segment).
        Arc::new(
            (0..rows).map(|i| (i % 6 != 0).then(|| format!("s{}", (i / 50) * 3 + i % 3))).collect::<StringArray>(),
        ),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("a value longer than twelve bytes #{}", i % 4)),
        )),
        Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("u{i}")))),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("batch");
    let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
    let options = crate::LibraryOptions { rows_per_segment: 40, columns_per_segment: 2, dynamic_schema: false };
    let lib = crate::Library::new("test", storage, options, crate::PipelineOptions::default());
    let ts = crate::IndexKind::Timestamp("ts".into());
    lib.write("v", &crate::Table::from_batch(batch.clone(), ts).expect("table"), None).expect("write");
    for range in [None, Some((0, rows)), Some((17, 233)), Some((41, 42)), Some((100, 100))] {
        let req = ReadRequest { row_range: range, strings_as_views: true, ..Default::default() };
        let got = lib.read("v", &req).expect("read").data;
        let (a, b) = range.map_or((0, rows), |r| r);
        let expected = batch.slice(a as usize, (b - a) as usize);
        if b > a {
            // (An empty read has no segments to take a dictionary from: plain strings.)
            assert_eq!(got.schema().field(1).data_type(), &DataType::Utf8View, "{range:?}");
            assert_eq!(got.schema().field(2).data_type(), &DataType::Utf8View, "{range:?}");
        }
        assert_eq!(got.schema().field(3).data_type(), &DataType::Utf8, "not dictionary-coded: {range:?}");
        for c in 0..4 {
            let plain = arrow_cast::cast(got.column(c), expected.schema().field(c).data_type()).expect("cast");
            assert_eq!(&plain, expected.column(c), "column {c}, rows {range:?}");
        }
    }
}

/// Data segment layouts are parsed once and reused by later reads (D33), and a segment damaged after its
/// layout was kept is still caught: in its descriptor by the content hash, in a block by the block's
/// checksum.
#[test]
fn kept_segment_layouts_are_reused_and_damage_is_still_caught() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>); // 4 rows a slice, 1 column a segment
    lib.write("s", &table(0..40), None).expect("write");
    let first = lib.read("s", &ReadRequest::default()).expect("reads").data;
    let keys: Vec<floe_formats::AtomKey> = storage.data_fetches.lock().expect("lock").concat();
    assert_eq!(lib.layouts().usage().0, keys.len(), "one layout per data segment read");
    assert_eq!(lib.read("s", &ReadRequest::default()).expect("reads again").data, first);
    let part = ReadRequest { date_range: Some((Some(6), Some(29))), ..Default::default() };
    assert_eq!(lib.read("s", &part).expect("a range").data, first.slice(6, 24));
    assert_eq!(lib.layouts().usage().0, keys.len(), "no segment parsed and kept twice");

    let inner: &dyn Storage = &*storage.inner;
    let damage = |key: &floe_formats::AtomKey, at: usize| {
        let mut bytes = inner.get(key).expect("get").to_vec();
        bytes[at] ^= 0x40;
        inner.delete_batch(std::slice::from_ref(key)).expect("delete");
        inner.put(key, bytes.into()).expect("put the damaged bytes back under the same key");
    };
    let key = &keys[3];
    let original = inner.get(key).expect("get");
    // A byte of the first block (right after the header): its checksum catches it.
    damage(key, floe_formats::segment::HEADER_LEN + 1);
    let err = lib.read("s", &ReadRequest::default()).expect_err("a damaged block");
    assert_eq!(err.kind(), ErrorKind::CorruptData, "{err}");
    // A byte of the descriptor: the content hash catches it before any kept layout is used.
    inner.delete_batch(std::slice::from_ref(key)).expect("delete");
    inner.put(key, original.clone()).expect("restore");
    assert_eq!(lib.read("s", &ReadRequest::default()).expect("restored").data, first);
    damage(key, original.len() - 12);
    let err = lib.read("s", &ReadRequest::default()).expect_err("a damaged descriptor");
    assert_eq!(err.kind(), ErrorKind::CorruptData, "{err}");
}

/// Asking a 500-column symbol for a column it lacks names the column and the first of the symbol's
/// columns, and counts the rest (the message of a 1,000-column frame used to list every name).
#[test]
fn a_missing_column_of_a_wide_symbol_is_named_in_a_short_message() {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let storage = Arc::new(TestStorage::default());
    let lib = crate::Library::new("test", storage, crate::LibraryOptions::default(), crate::PipelineOptions::default());
    let mut fields = vec![Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(TimestampNanosecondArray::from_iter_values(0..3))];
    for i in 0..500 {
        fields.push(Field::new(format!("c{i}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from_iter_values([1.0, 2.0, 3.0])));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
    let table = crate::Table::from_batch(batch, crate::IndexKind::Timestamp("ts".into())).expect("table");
    lib.write("wide", &table, None).expect("written");
    let request = ReadRequest { columns: Some(vec!["c7".into(), "nope".into()]), ..ReadRequest::default() };
    let err = lib.read("wide", &request).expect_err("no such column");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(msg.contains("has no column \"nope\"; its 501 columns are [\"ts\", \"c0\", "), "{msg}");
    assert!(msg.contains("and 481 more columns]"), "{msg}");
    assert!(msg.len() < 600, "{} bytes: {msg}", msg.len());
}

/// D50: a small read visits its segments on the calling thread (`visit_batch_here`), a large one in
/// parallel (`visit_batch`); both give the same rows, and a segment missing under either is named.
#[test]
fn small_reads_visit_on_the_calling_thread_and_large_ones_in_parallel() {
    let storage = Arc::new(TestStorage { lend: true, ..Default::default() });
    let options = crate::LibraryOptions { rows_per_segment: 50_000, ..Default::default() };
    let lib = crate::Library::new("test", Arc::clone(&storage) as Arc<dyn Storage>, options, Default::default());
    // 200,000 rows of two 8-byte columns: 3.2 MB out of four segments of 800 KB each.
    lib.write("s", &table(0..200_000), None).expect("write");
    let counts = || (storage.visits_here.load(Ordering::SeqCst), storage.parallel_visits.load(Ordering::SeqCst));

    let small = ReadRequest { row_range: Some((49_990, 50_010)), ..Default::default() };
    let got = lib.read("s", &small).expect("small read").data;
    assert_eq!(got.num_rows(), 20);
    let ts = got.column(0).as_any().downcast_ref::<arrow_array::TimestampNanosecondArray>().expect("ts");
    assert_eq!((ts.value(0), ts.value(19)), (49_990, 50_009));
    assert_eq!(counts(), (2, 0), "both passes of a small read visit on the calling thread");

    let whole = lib.read("s", &ReadRequest::default()).expect("whole read").data;
    assert_eq!(whole.num_rows(), 200_000);
    assert_eq!(counts(), (2, 2), "a read of 3.2 MB visits in parallel");

    // A segment deleted under the store: the small read names it, as the large one does.
    let data = (&*storage.inner as &dyn Storage)
        .list_all(floe_formats::KeyType::TableData, floe_backends::ListScope::Symbol("s"))
        .expect("list");
    let second = data
        .iter()
        .find_map(|k| match k {
            floe_formats::Key::Atom(a) if a.start() == 50_000 => Some(a.clone()),
            _ => None,
        })
        .expect("the segment of rows from 50,000");
    storage.inner.delete_batch(std::slice::from_ref(&second)).expect("delete");
    for request in [small, ReadRequest::default()] {
        let err = lib.read("s", &request).expect_err("a segment is missing");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains(&second.to_string()), "{err}");
    }
}

/// Long row slices of many columns are stored in narrower segments (D53); an append of short slices
/// keeps the library's count, so one symbol holds both layouts and reads back whole, by column and
/// by row range; compaction's estimate of the segments it makes is what it makes.
#[test]
fn long_slices_of_many_columns_take_narrower_segments() {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let schema = Arc::new(Schema::new(
        std::iter::once(Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false))
            .chain((0..100).map(|c| Field::new(format!("c{c}"), DataType::Float64, false)))
            .collect::<Vec<_>>(),
    ));
    let batch = |first: i64, rows: i64| {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(TimestampNanosecondArray::from_iter_values(first..first + rows))];
        columns.extend((0..100).map(|c| {
            Arc::new(Float64Array::from_iter_values((first..first + rows).map(|r| (r * 100 + c) as f64))) as ArrayRef
        }));
        RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch")
    };
    let table =
        |b: &RecordBatch| crate::Table::from_batch(b.clone(), crate::IndexKind::Timestamp("ts".into())).expect("table");
    let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
    let lib = crate::Library::new("test", storage, crate::LibraryOptions::default(), crate::PipelineOptions::default());
    let segments = |lib: &crate::Library| lib.fragmentation("w", None).expect("fragmentation").segments;

    let (first, second) = (batch(0, 10_000), batch(10_000, 1_000));
    lib.write("w", &table(&first), None).expect("write");
    // 10,000 rows of 80 KB a column: 32 columns a segment (2.5 MB), so 32 + 32 + 32 + 4.
    assert_eq!(segments(&lib), 4);
    lib.append("w", &table(&second), None).expect("append");
    // 1,000 rows: all 100 columns in one segment, as the library's 127 allow.
    assert_eq!(segments(&lib), 5);

    let whole = arrow_select::concat::concat_batches(&schema, [&first, &second]).expect("concat");
    let read = |req: &ReadRequest| lib.read("w", req).expect("reads").data;
    assert_eq!(read(&ReadRequest::default()), whole);
    let columns = ReadRequest { columns: Some(vec!["c5".into(), "c40".into(), "c99".into()]), ..Default::default() };
    assert_eq!(read(&columns), whole.project(&[0, 6, 41, 100]).expect("project"));
    let rows = ReadRequest { row_range: Some((9_990, 10_020)), ..Default::default() };
    assert_eq!(read(&rows), whole.slice(9_990, 30));

    let estimate = lib.fragmentation("w", None).expect("fragmentation").compacted_segments;
    lib.compact("w", None).expect("compact");
    assert_eq!(segments(&lib), estimate, "compaction made what it estimated");
    assert_eq!(read(&ReadRequest::default()), whole);
}

/// The data segment keys version `as_of` of `symbol` names, each once, and the index's stored length.
fn stored_objects(lib: &crate::Library, symbol: &str, as_of: &AsOf) -> (Vec<floe_formats::AtomKey>, usize) {
    let rec = lib.resolve(symbol, as_of).expect("resolves");
    let (index, index_len) = lib.fetch_index(&rec.index_key).expect("index");
    let mut keys: Vec<floe_formats::AtomKey> = index.entries.iter().map(|e| e.key.clone()).collect();
    keys.sort_by_key(|k| k.to_string());
    keys.dedup();
    (keys, index_len)
}

/// `verify` checks every segment of a version whole, each once (an update's entries share segments),
/// and counts the bytes stored; on a backend that lends its pages and on one that does not, in parallel
/// and on the calling thread.
#[test]
fn verify_counts_every_segment_of_a_version_once() {
    for lend in [false, true] {
        let storage = Arc::new(TestStorage { lend, ..Default::default() });
        let lib = library(Arc::clone(&storage) as Arc<dyn Storage>); // 4 rows a slice, 1 column a segment
        lib.write("s", &table(0..40), None).expect("write");
        lib.update("s", &table(5..7), Some((5, 6)), None).expect("update keeps parts of a segment");
        for v in [0, 1] {
            let as_of = AsOf::Version(v);
            let (keys, index_len) = stored_objects(&lib, "s", &as_of);
            let stored: u64 = keys.iter().map(|k| storage.inner.get(k).expect("stored").len() as u64).sum();
            let report = lib.verify("s", &as_of, true).expect("an undamaged version verifies");
            assert_eq!(report.item.version, v as u64);
            assert_eq!(report.segments, keys.len(), "lend {lend}, v{v}");
            assert_eq!(report.bytes, stored + index_len as u64, "lend {lend}, v{v}");
            assert_eq!(lib.verify("s", &as_of, false).expect("on this thread"), report, "lend {lend}, v{v}");
        }
        let rec = lib.resolve("s", &AsOf::Latest).expect("latest");
        let index = lib.fetch_index(&rec.index_key).expect("index").0;
        assert!(index.entries.len() > stored_objects(&lib, "s", &AsOf::Latest).0.len(), "entries share segments");
    }
}

/// Damage a read of part of a version never touches is found by `verify`, named by segment and column;
/// a segment lost from a live version is damage too (`CorruptData`), while a version deleted before or
/// while it is verified is `VersionNotFound`, and a latest version replaced and pruned meanwhile gives
/// way to the new latest.
#[test]
fn verify_finds_damage_reads_do_not_touch() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>);
    lib.write("s", &table(0..40), None).expect("write");
    let inner: &dyn Storage = &*storage.inner;
    let (keys, _) = stored_objects(&lib, "s", &AsOf::Latest);
    // The segment of column `x` for rows 36..40 (the last slice).
    let rec = lib.resolve("s", &AsOf::Latest).expect("latest");
    let index = lib.fetch_index(&rec.index_key).expect("index").0;
    let last = index.entries.iter().rfind(|e| e.row_start == 36).expect("last slice").key.clone();
    let mut bytes = inner.get(&last).expect("get").to_vec();
    bytes[floe_formats::segment::HEADER_LEN + 1] ^= 0x40; // in its first block
    inner.delete_batch(std::slice::from_ref(&last)).expect("delete");
    inner.put(&last, bytes.into()).expect("put the damaged bytes back under the same key");

    let early = ReadRequest { row_range: Some((0, 8)), ..Default::default() };
    assert_eq!(lib.read("s", &early).expect("the damage is outside these rows").data.num_rows(), 8);
    let err = lib.verify("s", &AsOf::Latest, true).expect_err("damaged");
    assert_eq!(err.kind(), ErrorKind::CorruptData, "{err}");
    assert!(err.to_string().contains(&last.to_string()), "names the segment: {err}");

    inner.delete_batch(std::slice::from_ref(&last)).expect("lose the segment");
    let err = lib.verify("s", &AsOf::Latest, false).expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::CorruptData, "{err}");
    assert!(err.to_string().contains("storage does not hold"), "{err}");
    assert!(keys.contains(&last));

    // Version 0 pruned between resolving it and fetching its data: deleted, nothing damaged.
    lib.write("s", &table(100..110), None).expect("v1");
    let other = library(Arc::clone(&storage.inner) as Arc<dyn Storage>);
    storage.before_data_read.set(move || other.prune_previous_versions("s").expect("prune"));
    let err = lib.verify("s", &AsOf::Version(0), true).expect_err("pruned");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
    assert!(err.to_string().contains("deleted while it was being verified"), "{err}");
    let err = lib.verify("s", &AsOf::Version(0), false).expect_err("gone");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
    // The latest version replaced and pruned while it is verified: the new latest is verified.
    let other = library(Arc::clone(&storage.inner) as Arc<dyn Storage>);
    storage.before_data_read.set(move || {
        other.write("s", &table(200..230), None).expect("v2");
        other.prune_previous_versions("s").expect("prune");
    });
    let report = lib.verify("s", &AsOf::Latest, true).expect("the newer latest verifies");
    assert_eq!((report.item.version, report.segments), (2, stored_objects(&lib, "s", &AsOf::Latest).0.len()));
    let live = stored_objects(&lib, "s", &AsOf::Latest).0.len();
    assert_eq!(lib.verify("s", &AsOf::Latest, true).expect("v1 verifies").segments, live);
}

/// D63: a read of a version given by number fetches the head and that version's record together
/// (`Storage::read_ref_and_get`); a record the joint read did not find (two concurrent S3 requests,
/// the record written between them) is fetched again, and versions the head rules out are refused as
/// before, whatever the joint read found.
#[test]
fn a_version_given_by_number_is_resolved_with_one_joint_read() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>);
    for v in 0..3i64 {
        lib.write("s", &table(v * 100..v * 100 + 10), None).expect("write");
    }
    let first_ts = |r: &crate::ReadResult| {
        let ts = r.data.column(0).as_any().downcast_ref::<arrow_array::TimestampNanosecondArray>().expect("ts");
        ts.value(0)
    };
    let at = |n: i64| ReadRequest { as_of: AsOf::Version(n), ..Default::default() };
    for v in 0..3i64 {
        let got = lib.read("s", &at(v)).expect("reads");
        assert_eq!((got.item.version, first_ts(&got)), (v as u64, v * 100));
    }
    assert_eq!(storage.joint_reads.load(Ordering::SeqCst), 3, "one joint read per version read");

    storage.joint_misses.store(1, Ordering::SeqCst);
    let got = lib.read("s", &at(1)).expect("the record is fetched again");
    assert_eq!((got.item.version, first_ts(&got)), (1, 100));

    // The latest version's record is the head's own; counting back still reads the head first.
    assert_eq!(lib.read("s", &at(2)).expect("latest").item.version, 2);
    let before = storage.joint_reads.load(Ordering::SeqCst);
    assert_eq!(lib.read("s", &at(-2)).expect("counted back").item.version, 1);
    assert_eq!(storage.joint_reads.load(Ordering::SeqCst), before);

    // Versions the head rules out: deleted (its record still stored until vacuumed) or not yet made.
    lib.delete_versions("s", &[0]).expect("delete v0");
    for n in [0, 3] {
        let err = lib.read("s", &at(n)).expect_err("no such live version");
        assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
    }
    let err = lib.read("t", &at(0)).expect_err("no such symbol");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::SymbolNotFound), "{err}");
}
