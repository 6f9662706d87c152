//! The engine suite: every check runs against any store, so memory, LMDB and S3 run the same code.
//! [`engine_suite!`](crate::engine_suite) expands to one `#[test]` per check for a store factory.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_backends::ListScope;
use floe_engine::{AsOf, ErrorKind, Floe, IndexKind, Library, LibraryOptions, ReadRequest, Table};
use floe_formats::KeyType;

use crate::model::SymbolModel;
use crate::{Row, batch, rows, rows_of, table};

/// Small segments (7 rows × 2 columns) so every test crosses segment boundaries.
pub fn small_options() -> LibraryOptions {
    LibraryOptions { rows_per_segment: 7, columns_per_segment: 2, dynamic_schema: false }
}

fn lib(floe: &Floe, name: &str) -> Library {
    floe.create_library(name, small_options()).expect("create library")
}

fn read_all(lib: &Library, symbol: &str, as_of: AsOf) -> Vec<Row> {
    rows_of(&lib.read(symbol, &ReadRequest { as_of, ..Default::default() }).expect("read").data)
}

/// Write then read back, whole and by version.
pub fn write_read_round_trip(floe: &Floe) {
    let lib = lib(floe, "round_trip");
    let r = rows(0..50);
    let v0 = lib.write("s", &table(&r), Some(b"meta")).expect("write");
    assert_eq!(v0.version, 0);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), r);
    let res = lib.read("s", &ReadRequest::default()).expect("read");
    assert_eq!(res.metadata.as_deref(), Some(&b"meta"[..]));
    let r2 = rows(100..103);
    assert_eq!(lib.write("s", &table(&r2), None).expect("write").version, 1);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), r2);
    assert_eq!(read_all(&lib, "s", AsOf::Version(0)), r);
    assert_eq!(read_all(&lib, "s", AsOf::Version(-2)), r);
    assert_eq!(read_all(&lib, "s", AsOf::Version(-1)), r2);
    // An empty table is a valid version.
    let v2 = lib.write("s", &table(&[]), None).expect("write empty");
    assert!(read_all(&lib, "s", AsOf::Version(v2.version as i64)).is_empty());
}

/// Writes from a stream of batches: uneven batch sizes (empty ones too) read back like the same rows
/// written at once, across segment boundaries; a bad batch or a failing stream anywhere commits
/// nothing; an empty stream is an empty version; a row-count index works too.
pub fn stream_writes(floe: &Floe) {
    let lib = lib(floe, "stream");
    let r = rows(0..60);
    let sizes = [3usize, 10, 0, 1, 25, 7, 14];
    let mut at = 0;
    let batches: Vec<_> = sizes
        .iter()
        .map(|&n| {
            let b = batch(&r[at..at + n]);
            at += n;
            b
        })
        .collect();
    let stream = |bs: Vec<arrow_array::RecordBatch>| bs.into_iter().map(Ok);
    let ts = IndexKind::Timestamp("ts".into());
    let v0 = lib.write_stream("s", crate::schema(), ts.clone(), stream(batches.clone()), Some(b"m")).expect("write");
    assert_eq!(v0.version, 0);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), r);
    assert_eq!(lib.read("s", &ReadRequest::default()).expect("read").metadata.as_deref(), Some(&b"m"[..]));
    let got = rows_of(
        &lib.read("s", &ReadRequest { date_range: Some((Some(12), Some(40))), ..Default::default() })
            .expect("read")
            .data,
    );
    assert_eq!(got, r[12..=40].to_vec());
    // An index going back across a batch boundary: InvalidInput naming the batch, nothing committed.
    let back = vec![batch(&rows(100..120)), batch(&rows(110..130))];
    let err = lib.write_stream("s", crate::schema(), ts.clone(), stream(back), None).expect_err("unsorted");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("input batch 1"), "{err}");
    // A batch of another schema, and a stream that fails: the same.
    let other = arrow_array::RecordBatch::try_new(
        Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "ts",
            arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None),
            false,
        )])),
        vec![Arc::new(arrow_array::TimestampNanosecondArray::from_iter_values(200..210))],
    )
    .expect("batch");
    let err = lib.write_stream("s", crate::schema(), ts.clone(), stream(vec![batch(&rows(200..220)), other]), None);
    assert_eq!(err.expect_err("schema").kind(), ErrorKind::InvalidInput);
    let failing = (0..100).map(|i| {
        if i == 9 {
            Err(floe_engine::Error::invalid("the converter failed"))
        } else {
            Ok(batch(&rows(i * 10..i * 10 + 10)))
        }
    });
    let err = lib.write_stream("s", crate::schema(), ts.clone(), failing, None).expect_err("fails");
    assert!(err.to_string().contains("the converter failed"), "{err}");
    assert_eq!(lib.list_versions(Some("s")).expect("versions").len(), 1, "no failed stream made a version");
    assert_eq!(read_all(&lib, "s", AsOf::Latest), r);
    // An empty stream is an empty version; then a row-count-indexed one.
    let v1 = lib.write_stream("s", crate::schema(), ts, std::iter::empty(), None).expect("empty");
    assert_eq!(v1.version, 1);
    assert!(read_all(&lib, "s", AsOf::Latest).is_empty());
    let v2 = lib.write_stream("s", crate::schema(), IndexKind::RowCount, stream(batches), None).expect("row count");
    assert_eq!(v2.version, 2);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), r);
    let got =
        rows_of(&lib.read("s", &ReadRequest { row_range: Some((5, 33)), ..Default::default() }).expect("read").data);
    assert_eq!(got, r[5..33].to_vec());
    // A header naming no such index column is refused before the stream is read.
    let err = lib.write_stream("s", crate::schema(), IndexKind::Timestamp("nope".into()), std::iter::empty(), None);
    assert_eq!(err.expect_err("bad index").kind(), ErrorKind::InvalidInput);
}

/// Date range, row range, column subsets, head and tail.
pub fn ranges_and_columns(floe: &Floe) {
    let lib = lib(floe, "ranges");
    let r = rows((0..60).map(|i| i * 10));
    lib.write("s", &table(&r), None).expect("write");
    let read = |req: ReadRequest| lib.read("s", &req).expect("read").data;
    let got = rows_of(&read(ReadRequest { date_range: Some((Some(95), Some(300))), ..Default::default() }));
    assert_eq!(got, r.iter().filter(|x| (95..=300).contains(&x.ts)).cloned().collect::<Vec<_>>());
    let got = rows_of(&read(ReadRequest { date_range: Some((None, Some(35))), ..Default::default() }));
    assert_eq!(got, r[..4].to_vec());
    let got = rows_of(&read(ReadRequest { row_range: Some((13, 29)), ..Default::default() }));
    assert_eq!(got, r[13..29].to_vec());
    let got = rows_of(&read(ReadRequest { row_range: Some((-5, i64::MAX)), ..Default::default() }));
    assert_eq!(got, r[55..].to_vec());
    let cols = read(ReadRequest { columns: Some(vec!["qty".into()]), row_range: Some((3, 9)), ..Default::default() });
    assert_eq!(cols.num_columns(), 2, "index column plus qty");
    assert_eq!(cols.schema().field(1).name(), "qty");
    assert_eq!(cols.num_rows(), 6);
    let h = lib.head("s", 3, AsOf::Latest, None).expect("head");
    assert_eq!(rows_of(&h.data), r[..3].to_vec());
    let t = lib.tail("s", 4, AsOf::Latest, None).expect("tail");
    assert_eq!(rows_of(&t.data), r[56..].to_vec());
    let t = lib.tail("s", -58, AsOf::Latest, None).expect("tail negative");
    assert_eq!(rows_of(&t.data), r[58..].to_vec());
    let err = lib
        .read("s", &ReadRequest { columns: Some(vec!["nope".into()]), ..Default::default() })
        .expect_err("unknown column");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("nope"), "{err}");
    let d = lib.get_description("s", &AsOf::Latest).expect("describe");
    assert_eq!(d.row_count, 60);
    assert_eq!(d.index_range, Some((0, 590)));
    assert_eq!(d.segment_count, 9 * 2, "9 row slices x 2 column groups");
    // Streaming read returns the same rows in order.
    let streamed: Vec<Row> = lib
        .read_stream("s", &ReadRequest { date_range: Some((Some(95), Some(300))), ..Default::default() })
        .expect("stream")
        .flat_map(|b| rows_of(&b.expect("batch")))
        .collect();
    assert_eq!(streamed, r.iter().filter(|x| (95..=300).contains(&x.ts)).cloned().collect::<Vec<_>>());
}

/// Appends, including many small ones (tail merging), and rejected appends.
pub fn appends(floe: &Floe) {
    let lib = lib(floe, "appends");
    let mut model = SymbolModel::default();
    for i in 0..40 {
        let r = rows(i * 3..i * 3 + 3);
        let v = lib.append("s", &table(&r), None).expect("append");
        assert_eq!(v.version as usize, model.append(&r));
    }
    let latest = model.latest().expect("versions");
    assert_eq!(read_all(&lib, "s", AsOf::Latest), model.versions[latest]);
    assert_eq!(read_all(&lib, "s", AsOf::Version(10)), model.versions[10]);
    let d = lib.get_description("s", &AsOf::Latest).expect("describe");
    // 120 rows at 7 rows per slice: at least 18 slices; tail merging keeps it near that.
    assert!(d.segment_count <= 2 * 30, "{} segments after 40 small appends", d.segment_count);
    let err = lib.append("s", &table(&rows(5..6)), None).expect_err("append before the end");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(lib.get_description("s", &AsOf::Latest).expect("describe").item.version as usize, latest);
    let mut bad = batch(&rows(500..501));
    bad = bad.project(&[0, 1, 2, 3]).expect("project");
    let err = lib
        .append("s", &Table::from_batch(bad, IndexKind::Timestamp("ts".into())).expect("table"), None)
        .expect_err("schema mismatch");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"flag\" is missing"), "{err}");
}

/// Update and delete_data_in_range against the model.
pub fn updates(floe: &Floe) {
    let lib = lib(floe, "updates");
    let mut model = SymbolModel::default();
    let r = rows((0..40).map(|i| i * 10));
    lib.write("s", &table(&r), None).expect("write");
    model.write(r);
    let new = rows([105, 106, 107]);
    lib.update("s", &table(&new), Some((100, 200)), None).expect("update");
    model.update(&new, 100, 200);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), model.versions[1]);
    lib.delete_data_in_range("s", (0, 55)).expect("delete range");
    model.update(&[], 0, 55);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), model.versions[2]);
    let new = rows([1000, 1001]);
    lib.update("s", &table(&new), None, None).expect("update at the end");
    model.update(&new, 1000, 1001);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), model.versions[3]);
    assert_eq!(read_all(&lib, "s", AsOf::Version(1)), model.versions[1]);
}

/// Unsorted index, bad names: typed errors, nothing written.
pub fn bad_input(floe: &Floe) {
    let lib = lib(floe, "bad_input");
    let mut r = rows(0..10);
    r.swap(2, 5);
    let err = Table::from_batch(batch(&r), IndexKind::Timestamp("ts".into())).expect_err("unsorted");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("not sorted"), "{err}");
    let err = lib.write("", &table(&rows(0..3)), None).expect_err("empty symbol");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = Table::from_batch(batch(&rows(0..3)), IndexKind::Timestamp("px".into())).expect_err("float index");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!lib.has_symbol("s", &AsOf::Latest).expect("has_symbol"));
    let err = lib.read("missing", &ReadRequest::default()).expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// Versions, deletes, prune, snapshots, rename; deleted objects are really removed.
pub fn versions_snapshots_and_deletes(floe: &Floe) {
    let lib = lib(floe, "versions");
    for i in 0..5 {
        lib.write("s", &table(&rows(i * 100..i * 100 + 10)), None).expect("write");
    }
    let ts2 = lib.list_versions(Some("s")).expect("versions").iter().find(|v| v.version == 2).expect("v2").timestamp_ns;
    assert_eq!(read_all(&lib, "s", AsOf::Timestamp(ts2)), rows(200..210));
    lib.snapshot("snap1", Some(b"sm"), None, &BTreeMap::new()).expect("snapshot");
    let err = lib.snapshot("snap1", None, None, &BTreeMap::new()).expect_err("duplicate snapshot");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let mut pinned = BTreeMap::new();
    pinned.insert("s".to_string(), 1u64);
    lib.snapshot("snap_v1", None, Some(&[]), &pinned).expect("snapshot of v1");
    lib.delete_versions("s", &[1, 3]).expect("delete versions");
    let err = lib.read("s", &ReadRequest { as_of: AsOf::Version(3), ..Default::default() }).expect_err("deleted");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(read_all(&lib, "s", AsOf::Snapshot("snap_v1".into())), rows(100..110));
    let versions = lib.list_versions(Some("s")).expect("versions");
    let ids: Vec<(u64, bool)> = versions.iter().map(|v| (v.version, v.deleted)).collect();
    assert_eq!(ids, vec![(4, false), (2, false), (0, false), (1, true)]);
    lib.prune_previous_versions("s").expect("prune");
    assert_eq!(read_all(&lib, "s", AsOf::Latest), rows(400..410));
    assert_eq!(read_all(&lib, "s", AsOf::Snapshot("snap1".into())), rows(400..410));
    lib.delete_snapshot("snap_v1").expect("delete snapshot");
    let err = lib.read("s", &ReadRequest { as_of: AsOf::Snapshot("snap_v1".into()), ..Default::default() });
    assert_eq!(err.expect_err("gone").kind(), ErrorKind::NotFound);
    // Only version 4's objects remain: one index, 2 row slices x 3 column groups... count them.
    let storage = lib.storage();
    let indexes = storage.list_all(KeyType::TableIndex, ListScope::Symbol("s")).expect("list");
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    let records = storage.list_all(KeyType::Version, ListScope::Symbol("s")).expect("list");
    assert!(records.len() <= 1, "{records:?}");
    let data = storage.list_all(KeyType::TableData, ListScope::Symbol("s")).expect("list");
    assert_eq!(data.len(), 2 * 2, "10 rows = 2 slices of 7, 4 data columns = 2 groups");
    lib.rename_symbol("s", "t").expect("rename");
    assert_eq!(read_all(&lib, "t", AsOf::Latest), rows(400..410));
    assert!(!lib.has_symbol("s", &AsOf::Latest).expect("has"));
    lib.delete_snapshot("snap1").expect("delete snapshot");
    assert_eq!(lib.list_symbols().expect("list"), vec!["t".to_string()]);
    let v = lib.write("s", &table(&rows(0..2)), None).expect("write after delete");
    assert_eq!(v.version, 5, "version ids are never reused");
    lib.delete("t").expect("delete");
    assert!(storage.list_all(KeyType::TableData, ListScope::Symbol("t")).expect("list").is_empty());
    assert_eq!(lib.list_symbols().expect("list"), vec!["s".to_string()]);
    lib.write_metadata("s", Some(b"m2")).expect("write_metadata");
    let (it, m) = lib.read_metadata("s", &AsOf::Latest).expect("read_metadata");
    assert_eq!((it.version, m.as_deref()), (6, Some(&b"m2"[..])));
    assert_eq!(read_all(&lib, "s", AsOf::Latest), rows(0..2));
}

/// `list_versions` of a symbol with more versions than a listing reads by key (a walk over the records
/// where the backend lends its pages): ids newest first, deleted ones left out unless a snapshot keeps
/// them, each with its commit time; a damaged record is reported as corrupt, naming it.
pub fn many_versions(floe: &Floe) {
    let lib = lib(floe, "many_versions");
    let written: Vec<i64> =
        (0..90).map(|i| lib.write("s", &table(&rows(i * 10..i * 10 + 2)), None).expect("write").timestamp_ns).collect();
    lib.write("other", &table(&rows(0..2)), None).expect("write another symbol");
    let mut pinned = BTreeMap::new();
    pinned.insert("s".to_string(), 12u64);
    lib.snapshot("keeps_12", None, Some(&[]), &pinned).expect("snapshot");
    lib.delete_versions("s", &(10..20).chain([75]).collect::<Vec<u64>>()).expect("delete versions");
    let listed: Vec<(u64, i64, bool)> = lib
        .list_versions(Some("s"))
        .expect("versions")
        .iter()
        .map(|v| (v.version, v.timestamp_ns, v.deleted))
        .collect();
    let mut expected: Vec<(u64, i64, bool)> = (0..90u64)
        .rev()
        .filter(|v| !(10..20).contains(v) && *v != 75)
        .map(|v| (v, written[v as usize], false))
        .collect();
    expected.push((12, written[12], true));
    assert_eq!(listed, expected);

    // Damage version 40's record (the latest's copy lives in the head, so pick an older one).
    let storage = lib.storage();
    let key = storage
        .list_all(KeyType::Version, ListScope::Symbol("s"))
        .expect("list")
        .into_iter()
        .find_map(|k| match k {
            floe_formats::Key::Atom(a) if a.version() == 40 => Some(a),
            _ => None,
        })
        .expect("version 40's record");
    let mut bytes = storage.get(&key).expect("record").to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    storage.delete_batch(std::slice::from_ref(&key)).expect("delete record");
    storage.put(&key, bytes.into()).expect("put damaged record");
    let err = lib.list_versions(Some("s")).expect_err("damaged record");
    assert_eq!(err.kind(), ErrorKind::CorruptData, "{err}");
    assert!(err.to_string().contains(&key.to_string()), "the error names the record {key}: {err}");
}

/// `list_symbols` lists exactly the symbols with a live version, sorted by name (not by the storage's
/// key order, which puts shorter names first), and reports a damaged or swapped head as corrupt.
pub fn list_symbols_reads_every_head(floe: &Floe) {
    use floe_backends::RefExpectation;
    use floe_formats::RefKey;
    let lib = lib(floe, "list_symbols");
    for symbol in ["zeta", "b", "alpha", "gone", "held", "数"] {
        lib.write(symbol, &table(&rows(0..2)), None).expect("write");
    }
    lib.delete("gone").expect("delete");
    let mut pinned = BTreeMap::new();
    pinned.insert("held".to_string(), 0u64);
    lib.snapshot("keeps_held", None, Some(&[]), &pinned).expect("snapshot");
    lib.delete("held").expect("delete a symbol a snapshot keeps");
    assert_eq!(lib.list_symbols().expect("list"), ["alpha", "b", "zeta", "数"]);

    let storage = lib.storage();
    let head = |s: &str| RefKey::new(KeyType::VersionRef, s).expect("valid name");
    let overwrite = |key: &RefKey, value| {
        let now = storage.read_ref(key).expect("read").expect("exists");
        storage.write_ref(key, value, RefExpectation::At(&now.token)).expect("overwrite");
    };
    let good = storage.read_ref(&head("b")).expect("read").expect("exists").bytes;
    let mut flipped = good.to_vec();
    flipped[10] ^= 0x04;
    overwrite(&head("b"), flipped.into());
    let err = lib.list_symbols().expect_err("damaged head");
    assert_eq!(err.kind(), ErrorKind::CorruptData, "{err}");
    assert!(err.to_string().contains("\"b\""), "names the symbol: {err}");
    // A valid head of another symbol under b's key.
    overwrite(&head("b"), storage.read_ref(&head("alpha")).expect("read").expect("exists").bytes);
    assert_eq!(lib.list_symbols().expect_err("swapped head").kind(), ErrorKind::CorruptData);
    overwrite(&head("b"), good);
    assert_eq!(lib.list_symbols().expect("list"), ["alpha", "b", "zeta", "数"]);
}

/// Library management.
pub fn libraries(floe: &Floe) {
    floe.create_library("lib_a", LibraryOptions::default()).expect("create");
    let err = floe.create_library("lib_a", LibraryOptions::default()).expect_err("exists");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(floe.list_libraries().expect("list").contains(&"lib_a".to_string()));
    let l = floe.get_library("lib_a").expect("get");
    l.write("x", &table(&rows(0..3)), None).expect("write");
    floe.delete_library("lib_a").expect("delete");
    assert!(!floe.list_libraries().expect("list").contains(&"lib_a".to_string()));
    assert_eq!(floe.get_library("lib_a").expect_err("gone").kind(), ErrorKind::NotFound);
}

/// Threads append to one symbol concurrently: every append is present, ids contiguous.
pub fn concurrent_appends(floe: &Floe, threads: usize, per_thread: usize) {
    let lib = Arc::new(lib(floe, "concurrent"));
    std::thread::scope(|s| {
        for t in 0..threads {
            let lib = Arc::clone(&lib);
            s.spawn(move || {
                for i in 0..per_thread {
                    // Every append carries a unique qty; index values only grow, so appends stay valid
                    // whatever the interleaving: use a shared clock-like value.
                    let ts = NEXT_TS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut r = rows([ts]);
                    r[0].qty = (t * 1_000_000 + i) as i64;
                    loop {
                        match lib.append("s", &table(&r), None) {
                            Ok(_) => break,
                            // Another thread committed a later timestamp first: take a new one.
                            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                                r[0].ts = NEXT_TS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            Err(e) => panic!("append failed: {e}"),
                        }
                    }
                }
            });
        }
    });
    let all = read_all(&lib, "s", AsOf::Latest);
    assert_eq!(all.len(), threads * per_thread, "every successful append is present");
    let mut qty: Vec<i64> = all.iter().map(|r| r.qty).collect();
    qty.sort_unstable();
    qty.dedup();
    assert_eq!(qty.len(), threads * per_thread, "no append duplicated or lost");
    let versions = lib.list_versions(Some("s")).expect("versions");
    assert_eq!(versions.len(), threads * per_thread, "one version per append, ids contiguous");
    assert_eq!(versions[0].version as usize, threads * per_thread - 1);
}

/// Reads large enough to run on a rayon worker from the start (the engine's estimate, rows x columns
/// x 8 bytes, at least 8 MiB: 400,000 and 300,000 rows x 4 columns): whole and by date range, from
/// three threads at once and from inside the rayon pool (the read then runs where it is), while
/// another thread writes another symbol. Every result exact, none waiting on another.
pub fn large_reads_in_parallel(floe: &Floe) {
    let lib = Arc::new(floe.create_library("large_reads", LibraryOptions::default()).expect("create library"));
    let r = rows(0..400_000);
    lib.write("big", &table(&r), None).expect("write");
    let range = ReadRequest { date_range: Some((Some(50_000), Some(349_999))), ..Default::default() };
    let check = |lib: &Library| {
        assert_eq!(rows_of(&lib.read("big", &ReadRequest::default()).expect("read").data), r);
        assert_eq!(rows_of(&lib.read("big", &range).expect("date range").data), r[50_000..350_000]);
    };
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| check(&lib));
        }
        s.spawn(|| rayon::scope(|_| check(&lib)));
        s.spawn(|| {
            for i in 0..3 {
                lib.write("other", &table(&rows(i * 100_000..(i + 1) * 100_000)), None).expect("write other");
            }
        });
    });
    assert_eq!(read_all(&lib, "other", AsOf::Latest), rows(200_000..300_000));
}

static NEXT_TS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// One `#[test]` per suite check for the store `$make` returns: an expression giving `(Floe, guard)`,
/// the guard living as long as the test (a temporary folder, or `()`).
#[macro_export]
macro_rules! engine_suite {
    ($make:expr) => {
        #[test]
        fn write_read_round_trip() {
            let (floe, _guard) = $make;
            $crate::suite::write_read_round_trip(&floe);
        }
        #[test]
        fn stream_writes() {
            let (floe, _guard) = $make;
            $crate::suite::stream_writes(&floe);
        }
        #[test]
        fn ranges_and_columns() {
            let (floe, _guard) = $make;
            $crate::suite::ranges_and_columns(&floe);
        }
        #[test]
        fn appends() {
            let (floe, _guard) = $make;
            $crate::suite::appends(&floe);
        }
        #[test]
        fn updates() {
            let (floe, _guard) = $make;
            $crate::suite::updates(&floe);
        }
        #[test]
        fn bad_input() {
            let (floe, _guard) = $make;
            $crate::suite::bad_input(&floe);
        }
        #[test]
        fn versions_snapshots_and_deletes() {
            let (floe, _guard) = $make;
            $crate::suite::versions_snapshots_and_deletes(&floe);
        }
        #[test]
        fn staged_writes() {
            let (floe, _guard) = $make;
            $crate::suite::staged_writes(&floe);
        }
        #[test]
        fn dynamic_schema() {
            let (floe, _guard) = $make;
            $crate::suite::dynamic_schema(&floe);
        }
        #[test]
        fn many_versions() {
            let (floe, _guard) = $make;
            $crate::suite::many_versions(&floe);
        }
        #[test]
        fn list_symbols_reads_every_head() {
            let (floe, _guard) = $make;
            $crate::suite::list_symbols_reads_every_head(&floe);
        }
        #[test]
        fn large_reads_in_parallel() {
            let (floe, _guard) = $make;
            $crate::suite::large_reads_in_parallel(&floe);
        }
        #[test]
        fn libraries() {
            let (floe, _guard) = $make;
            $crate::suite::libraries(&floe);
        }
    };
}

/// Staged writes: chunks staged out of order (by several writers) commit as one version in index order,
/// invisible until then; appending finalizes after the existing rows; overlapping chunks, a schema that
/// differs and chunks before the symbol's end are refused with nothing committed; a vacuum keeps staged
/// segments however old, and drops them once the chunks are deleted; finalizing only chosen chunks
/// leaves the others staged.
pub fn staged_writes(floe: &Floe) {
    use floe_engine::FinalizeMode;
    use std::time::Duration;

    let lib = lib(floe, "staged");
    let r = rows(0..60);
    // Three writers' chunks, staged out of order; one is empty.
    let c2 = lib.stage("s", &table(&r[40..60]), None).expect("stage");
    let c0 = lib.stage("s", &table(&r[0..15]), Some(b"first")).expect("stage");
    let empty = lib.stage("s", &table(&[]), None).expect("stage an empty chunk");
    let c1 = lib.stage("s", &table(&r[15..40]), None).expect("stage");
    assert_eq!((c0.rows, c0.index_range), (15, Some((0, 14))));
    assert_eq!(empty.index_range, None);
    assert!(!lib.has_symbol("s", &AsOf::Latest).expect("has"), "staged data is no version");
    assert_eq!(lib.staged_symbols().expect("staged symbols"), ["s"]);
    assert_eq!(lib.staged_chunks("s").expect("chunks").len(), 4);
    // Vacuum with no grace keeps every staged segment.
    lib.vacuum(Some("s"), Duration::ZERO).expect("vacuum");
    let v = lib.finalize_staged("s", FinalizeMode::Write, None, None).expect("finalize");
    assert_eq!(v.version, 0);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), r);
    // A date range across the chunks' slices (the empty chunk's among them) finds exactly its rows.
    let req = ReadRequest { date_range: Some((Some(10), Some(44))), ..Default::default() };
    assert_eq!(rows_of(&lib.read("s", &req).expect("date range").data), r[10..45]);
    let res = lib.read("s", &ReadRequest::default()).expect("read");
    assert_eq!(res.metadata.as_deref(), Some(&b"first"[..]), "the first chunk's metadata");
    assert!(lib.staged_symbols().expect("staged symbols").is_empty(), "finalized chunks are forgotten");
    let err = lib.finalize_staged("s", FinalizeMode::Write, None, None).expect_err("nothing staged");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    drop((c1, c2));

    // Append mode, chosen chunks only, metadata given.
    let a = lib.stage("s", &table(&rows(60..70)), None).expect("stage");
    let b = lib.stage("s", &table(&rows(70..75)), None).expect("stage");
    let v = lib
        .finalize_staged("s", FinalizeMode::Append, Some(b"m"), Some(std::slice::from_ref(&a.key)))
        .expect("finalize a");
    assert_eq!(v.version, 1);
    assert_eq!(read_all(&lib, "s", AsOf::Latest), rows(0..70));
    let left: Vec<_> = lib.staged_chunks("s").expect("chunks").into_iter().map(|c| c.key).collect();
    assert_eq!(left, std::slice::from_ref(&b.key));
    // A chunk before the symbol's end, then overlapping chunks, then a different schema: refused.
    let early = lib.stage("s", &table(&rows(50..52)), None).expect("stage");
    let err = lib.finalize_staged("s", FinalizeMode::Append, None, None).expect_err("before the end");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("overlap") || err.to_string().contains("before"), "{err}");
    lib.delete_staged("s", Some(&[early.key])).expect("delete the early chunk");
    let over = lib.stage("s", &table(&rows(73..80)), None).expect("stage");
    let err = lib.finalize_staged("s", FinalizeMode::Append, None, None).expect_err("overlap");
    assert!(err.to_string().contains("overlap"), "{err}");
    assert_eq!(lib.get_description("s", &AsOf::Latest).expect("describe").item.version, 1, "nothing committed");
    lib.delete_staged("s", Some(&[over.key])).expect("delete");
    let narrow = batch(&rows(75..78)).project(&[0, 1, 2, 3]).expect("project");
    lib.stage("s", &Table::from_batch(narrow, IndexKind::Timestamp("ts".into())).expect("table"), None).expect("stage");
    let err = lib.finalize_staged("s", FinalizeMode::Append, None, None).expect_err("schemas differ");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(lib.delete_staged("s", None).expect("delete all"), 2);
    assert!(lib.staged_chunks("s").expect("chunks").is_empty());
    // The deleted chunks' segments are garbage for the vacuum; the symbol's data is not.
    let report = lib.vacuum(Some("s"), Duration::ZERO).expect("vacuum");
    assert!(report.deleted_data > 0, "{report:?}");
    assert_eq!(read_all(&lib, "s", AsOf::Latest), rows(0..70));
    // Row-count-indexed data cannot be staged; a bad name is refused.
    let plain = Table::from_batch(batch(&rows(0..3)), IndexKind::RowCount).expect("table");
    assert_eq!(lib.stage("s", &plain, None).expect_err("row count").kind(), ErrorKind::InvalidInput);
    assert_eq!(lib.stage("", &table(&r), None).expect_err("bad name").kind(), ErrorKind::InvalidInput);

    // A finalize that committed but crashed before forgetting its chunks: finalizing again commits
    // nothing twice, and forgets them.
    let c = lib.stage("t", &table(&rows(0..10)), None).expect("stage");
    let staged_bytes = lib.storage().get(&c.key).expect("staged index");
    lib.finalize_staged("t", FinalizeMode::Write, None, None).expect("finalize");
    lib.storage().put(&c.key, staged_bytes).expect("the staged index as the crash left it");
    let err = lib.finalize_staged("t", FinalizeMode::Append, None, None).expect_err("already committed");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("already finalized"), "{err}");
    assert!(lib.staged_chunks("t").expect("chunks").is_empty());
    assert_eq!(read_all(&lib, "t", AsOf::Latest), rows(0..10));

    // Two finalizes of the same chunks at once: one version, each row once.
    for i in 0..4i64 {
        lib.stage("u", &table(&rows(i * 10..i * 10 + 10)), None).expect("stage");
    }
    let outcomes = std::thread::scope(|s| {
        let a = s.spawn(|| lib.finalize_staged("u", FinalizeMode::Append, None, None));
        let b = s.spawn(|| lib.finalize_staged("u", FinalizeMode::Append, None, None));
        [a.join().expect("a"), b.join().expect("b")]
    });
    let committed = outcomes.iter().filter(|o| o.is_ok()).count();
    assert!(committed >= 1, "{outcomes:?}");
    for o in &outcomes {
        if let Err(e) = o {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        }
    }
    assert_eq!(read_all(&lib, "u", AsOf::Latest), rows(0..40));
    assert_eq!(lib.list_versions(Some("u")).expect("versions").len(), 1);

    // Overlapping chunks in any order: sort_and_finalize merges their rows by timestamp (ties in
    // staging order), rewritten as a new version; appending merges after the existing rows.
    let evens: Vec<Row> = rows((0..40).step_by(2));
    let odds: Vec<Row> = rows((1..40).step_by(2));
    lib.stage("v", &table(&odds), None).expect("stage");
    lib.stage("v", &table(&evens), Some(b"e")).expect("stage");
    let err = lib.finalize_staged("v", FinalizeMode::Write, None, None).expect_err("overlap");
    assert!(err.to_string().contains("overlap"), "{err}");
    let v = lib.sort_and_finalize_staged("v", FinalizeMode::Write, None, None).expect("sort and finalize");
    assert_eq!(v.version, 0);
    assert_eq!(read_all(&lib, "v", AsOf::Latest), rows(0..40));
    assert!(lib.staged_chunks("v").expect("chunks").is_empty());
    lib.stage("v", &table(&rows([45, 50])), None).expect("stage");
    lib.stage("v", &table(&rows([41, 50, 60])), None).expect("stage");
    lib.sort_and_finalize_staged("v", FinalizeMode::Append, None, None).expect("sort and append");
    let got: Vec<i64> = read_all(&lib, "v", AsOf::Latest).iter().map(|r| r.ts).collect();
    let want: Vec<i64> = (0..40).chain([41, 45, 50, 50, 60]).collect();
    assert_eq!(got, want);
    lib.stage("v", &table(&rows([1, 2])), None).expect("stage");
    let err = lib.sort_and_finalize_staged("v", FinalizeMode::Append, None, None).expect_err("before the end");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(lib.staged_chunks("v").expect("chunks").len(), 1, "a refused finalize forgets nothing");
}

/// Dynamic schema: new columns appear with nulls for old rows, integers widen, ints promote to float.
pub fn dynamic_schema(floe: &Floe) {
    use arrow_array::{
        Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    let options = LibraryOptions { dynamic_schema: true, ..small_options() };
    let lib = floe.create_library("dynamic", options).expect("create library");
    let ts_field = Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false);
    let first = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            ts_field.clone(),
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8, true),
            Field::new("q", DataType::Int64, false),
        ])),
        vec![
            Arc::new(TimestampNanosecondArray::from_iter_values(0..10)),
            Arc::new(Int32Array::from_iter_values(0..10)),
            Arc::new(StringArray::from_iter_values((0..10).map(|i| format!("b{i}")))),
            Arc::new(Int64Array::from_iter_values(0..10)),
        ],
    )
    .expect("batch");
    let index = IndexKind::Timestamp("ts".into());
    lib.write("s", &Table::from_batch(first, index.clone()).expect("table"), None).expect("write");
    let second = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            ts_field,
            Field::new("c", DataType::Float64, false),
            Field::new("a", DataType::Int64, false),
            Field::new("q", DataType::Float64, false),
        ])),
        vec![
            Arc::new(TimestampNanosecondArray::from_iter_values(10..15)),
            Arc::new(Float64Array::from_iter_values((10..15).map(|i| i as f64 + 0.5))),
            Arc::new(Int64Array::from_iter_values((10..15).map(|i| i + (1 << 40)))),
            Arc::new(Float64Array::from_iter_values((10..15).map(|i| i as f64 * 0.25))),
        ],
    )
    .expect("batch");
    lib.append("s", &Table::from_batch(second, index).expect("table"), None).expect("append with new columns");
    let out = lib.read("s", &ReadRequest::default()).expect("read").data;
    let names: Vec<String> = out.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["ts", "a", "b", "q", "c"]);
    assert_eq!(out.num_rows(), 15);
    let a = out.column(1).as_any().downcast_ref::<Int64Array>().expect("a widened to int64");
    assert_eq!(a.value(3), 3);
    assert_eq!(a.value(12), 12 + (1 << 40));
    let b = out.column(2).as_any().downcast_ref::<StringArray>().expect("b");
    assert_eq!((b.value(4), b.is_null(11)), ("b4", true));
    let q = out.column(3).as_any().downcast_ref::<Float64Array>().expect("q promoted to float64");
    assert_eq!((q.value(9), q.value(14)), (9.0, 3.5));
    let c = out.column(4).as_any().downcast_ref::<Float64Array>().expect("c");
    assert!(c.is_null(0) && c.is_valid(10));
    assert_eq!(c.value(10), 10.5);
    assert_eq!(c.null_count(), 10);
    // Older versions still read with their own schema.
    let v0 = lib.read("s", &ReadRequest { as_of: AsOf::Version(0), ..Default::default() }).expect("v0").data;
    assert_eq!(v0.num_columns(), 4);
    // A type that does not widen is refused, naming the column.
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
            Field::new("a", DataType::Utf8, false),
        ])),
        vec![Arc::new(TimestampNanosecondArray::from_iter_values(20..21)), Arc::new(StringArray::from(vec!["x"]))],
    )
    .expect("batch");
    let err = lib
        .append("s", &Table::from_batch(bad, IndexKind::Timestamp("ts".into())).expect("table"), None)
        .expect_err("utf8 into int64");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"a\""), "{err}");
}
