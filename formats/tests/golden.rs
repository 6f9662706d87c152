//! Golden-byte fixtures: small segments and keys checked in under `tests/golden/`, as
//! `<name>.v<format>.seg`. A change that alters the bytes the encoder writes, or can no longer read
//! files an earlier format version wrote, fails here.
//!
//! The current format's fixtures are made by this test: `FLOE_BLESS=1 cargo test -p floe-formats --test
//! golden` rewrites them. Bless only for a deliberate format change, together with a new format version
//! and an entry in `design/format.md`'s version log (or a deliberate encoder change, see below). Older versions' fixtures are never rewritten: they
//! are the files earlier builds wrote, and must keep decoding to the same values. When only the
//! encoder's choices change (the format does not), the current version's affected fixtures are blessed
//! again and their previous bytes kept as files of an earlier encoder (`EARLIER_ENCODERS`).

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int8Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, Int8Array, Int32Array, Int64Array, LargeBinaryArray,
    LargeStringArray, RecordBatch, RecordBatchOptions, StringArray, TimestampNanosecondArray, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow_schema::{Field, Schema};
use floe_formats::segment::SEGMENT_FORMAT_VERSION;
use floe_formats::{AtomFields, AtomKey, Key, KeyType, RefKey, SegmentReader, decode_segment, encode_segment};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn blessing() -> bool {
    std::env::var_os("FLOE_BLESS").is_some()
}

fn batch(columns: Vec<(&str, ArrayRef, bool)>, rows: usize) -> RecordBatch {
    let fields: Vec<Field> = columns.iter().map(|(n, a, null)| Field::new(*n, a.data_type().clone(), *null)).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|c| c.1).collect(),
        &options,
    )
    .expect("consistent fixture")
}

/// A deterministic generator of 31-bit numbers.
fn numbers(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    }
}

/// A larger fixture whose blocks use the LZ4 and delta codecs (the small fixtures' blocks are too short
/// to compress): 1000 rows of sorted timestamps, a random-walk int64, strings from five values and
/// random floats. In format 2 the integers are shuffled and the strings dictionary-coded.
fn codecs() -> RecordBatch {
    let mut next = numbers(0x853c_49e6_748f_ea9b);
    let rows = 1000;
    let (mut t, mut px) = (1_700_000_000_000_000_000i64, 10_000i64);
    let mut ts = Vec::new();
    let mut walk = Vec::new();
    let mut floats = Vec::new();
    let mut words = StringBuilder::new();
    for _ in 0..rows {
        t += 1_000_000 + (next() % 20_000_000) as i64;
        px += (next() % 5) as i64 - 2;
        ts.push(t);
        walk.push(px);
        floats.push(f64::from_bits(next() << 31 ^ next()));
        words.append_value(["AAPL", "MSFT", "GOOG", "数据", ""][(next() % 5) as usize]);
    }
    batch(
        vec![
            ("ts", Arc::new(TimestampNanosecondArray::from(ts)), false),
            ("walk", Arc::new(Int64Array::from(walk)), false),
            ("word", Arc::new(words.finish()), false),
            ("noise", Arc::new(Float64Array::from(floats)), false),
        ],
        rows,
    )
}

/// Format 2's integer codecs at every width: 600 rows of an int8 random walk (delta, 1 byte), sorted
/// uint16 (delta), small random int32 (zigzag delta), uint32 sorted with a constant top byte (delta,
/// constant planes dropped), int64 counting in sevens (every plane of the differences constant, but
/// dropping them all would pass the 256x bound: the planes go through LZ4), nullable uint64 of a few
/// values (zigzag delta), and int16 keys of a dictionary column (no transform, shuffled).
fn integers() -> RecordBatch {
    let mut next = numbers(0x2545_f491_4f6c_dd1d);
    let rows = 600;
    let mut walk = 0i8;
    let (mut sorted, mut sorted32) = (0u16, 0x7f00_0000u32);
    let (mut walk8, mut sorted16, mut small32, mut sorted32s) = (vec![], vec![], vec![], vec![]);
    let (mut sevens, mut few) = (vec![], vec![]);
    let mut dict = StringDictionaryBuilder::<arrow_array::types::Int16Type>::new();
    for i in 0..rows {
        walk = walk.wrapping_add((next() % 3) as i8 - 1);
        sorted += (next() % 40) as u16;
        sorted32 += (next() % 1000) as u32;
        walk8.push(walk);
        sorted16.push(sorted);
        small32.push((next() % 200) as i32 - 100);
        sorted32s.push(sorted32);
        sevens.push(7 * i as i64 - 2100);
        few.push((i % 9 != 0).then(|| [3u64, 1 << 40, u64::MAX][(next() % 3) as usize]));
        dict.append_value(format!("k{}", next() % 300));
    }
    batch(
        vec![
            ("walk8", Arc::new(Int8Array::from(walk8)), false),
            ("sorted16", Arc::new(UInt16Array::from(sorted16)), false),
            ("small32", Arc::new(Int32Array::from(small32)), false),
            ("sorted32", Arc::new(UInt32Array::from(sorted32s)), false),
            ("sevens64", Arc::new(Int64Array::from(sevens)), false),
            ("few64", Arc::new(UInt64Array::from(few)), true),
            ("dict16", Arc::new(dict.finish()), false),
        ],
        rows,
    )
}

/// Format 2's dictionary-coded variable-length columns, 40 rows: UTF-8 with nulls, unicode and the
/// empty string; large UTF-8; binary with nulls; large binary; an all-null column (empty dictionary);
/// all-distinct strings (stored plain, shuffled offsets); and uint64 counting in threes (every plane of
/// the differences constant and dropped). Plus 600 distinct values among 1200 rows (2-byte keys).
fn dictionary() -> RecordBatch {
    let mut next = numbers(0x9e37_79b9_7f4a_7c15);
    let rows = 40;
    let words = ["bid", "ask", "", "数据", "🚀 launch", "naïve"];
    let pick = |next: &mut dyn FnMut() -> u64| words[(next() % words.len() as u64) as usize];
    let utf8: StringArray = (0..rows).map(|i| (i % 7 != 3).then(|| pick(&mut next))).collect();
    let large: LargeStringArray = (0..rows).map(|_| Some(pick(&mut next))).collect();
    let binary: BinaryArray = (0..rows)
        .map(|i| (i % 5 != 0).then(|| [&b"\x00\x01"[..], b"", b"\xff\xfe\xfd"][(next() % 3) as usize]))
        .collect();
    let large_binary: LargeBinaryArray = (0..rows).map(|_| Some(&b"xyz"[..(next() % 4) as usize])).collect();
    let nothing: StringArray = (0..rows).map(|_| None::<&str>).collect();
    let distinct: StringArray = (0..rows).map(|i| Some(format!("row {i} · {}", next() % 1000))).collect();
    let threes = UInt64Array::from_iter_values((0..rows as u64).map(|i| 1_000_000 + 3 * i));
    batch(
        vec![
            ("utf8", Arc::new(utf8), true),
            ("large_utf8", Arc::new(large), false),
            ("binary", Arc::new(binary), true),
            ("large_binary", Arc::new(large_binary), false),
            ("nothing", Arc::new(nothing), true),
            ("distinct", Arc::new(distinct), false),
            ("threes", Arc::new(threes), false),
        ],
        rows,
    )
}

/// 1200 rows of 600 distinct strings: dictionary-coded with 2-byte keys.
fn wide_dictionary() -> RecordBatch {
    let mut next = numbers(7);
    let values: StringArray = (0..1200).map(|i| Some(format!("v{}", if i < 600 { i } else { next() % 600 }))).collect();
    batch(vec![("v", Arc::new(values), false)], 1200)
}

/// Format 3's decimal codec: prices in cents (a random walk, zigzag-delta integers), rates in basis
/// points, whole numbers, and a column with one value that is not a decimal (its block keeps another
/// codec); 2,000 rows so that each column's blocks are chosen from samples.
fn decimals() -> RecordBatch {
    let mut next = numbers(11);
    let mut price = 10_000i64;
    let cents: Vec<f64> = (0..2000)
        .map(|_| {
            price += (next() % 7) as i64 - 3;
            price as f64 / 100.0
        })
        .collect();
    let bps: Vec<f64> = (0..2000).map(|_| (next() % 20_000) as f64 / 10_000.0).collect();
    let whole: Vec<f64> = (0..2000).map(|_| (next() % 1_000_000) as f64).collect();
    let mut mixed = cents.clone();
    mixed[1_500] = std::f64::consts::SQRT_2;
    mixed[10] = -0.0;
    batch(
        vec![
            ("cents", Arc::new(Float64Array::from(cents)), false),
            ("bps", Arc::new(Float64Array::from(bps)), false),
            ("whole", Arc::new(Float64Array::from(whole)), false),
            ("mixed", Arc::new(Float64Array::from(mixed)), false),
        ],
        2000,
    )
}

/// A fixture segment: name, batch, metadata, and the format versions it exists in.
type Fixture = (&'static str, RecordBatch, Option<&'static [u8]>, &'static [u16]);

/// The fixture segments.
fn segments() -> Vec<Fixture> {
    let mut names = StringBuilder::new();
    for v in [Some("alpha"), None, Some("数据"), Some("")] {
        names.append_option(v);
    }
    let mut dict = StringDictionaryBuilder::<Int8Type>::new();
    for v in [Some("bid"), Some("ask"), None, Some("bid")] {
        dict.append_option(v);
    }
    let ts = TimestampNanosecondArray::from(vec![
        1_700_000_000_000_000_000,
        1_700_000_000_000_001_000,
        1_700_000_000_000_001_000,
        1_700_000_000_000_009_999,
    ]);
    vec![
        ("empty", batch(vec![], 0), None, &[1, 2, 3]),
        (
            "primitives",
            batch(
                vec![
                    ("time", Arc::new(ts.with_timezone("Europe/London")), false),
                    ("px", Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-0.0), Some(f64::NAN)])), true),
                    ("qty", Arc::new(Int32Array::from(vec![1, -2, 3, i32::MIN])), false),
                    ("flag", Arc::new(BooleanArray::from(vec![Some(true), Some(false), None, Some(true)])), true),
                    ("small", Arc::new(UInt8Array::from(vec![0u8, 255, 7, 8])), false),
                ],
                4,
            ),
            Some(b"{\"user\": \"metadata\"}"),
            &[1, 2, 3],
        ),
        (
            "strings",
            batch(
                vec![
                    ("name", Arc::new(names.finish()), true),
                    ("side", Arc::new(dict.finish()), true),
                    ("blob", Arc::new(BinaryArray::from(vec![&b"\x00\x01"[..], b"", b"xyz", b"\xff"])), false),
                ],
                4,
            ),
            None,
            &[1, 2, 3],
        ),
        ("codecs", codecs(), None, &[1, 2, 3]),
        ("integers", integers(), None, &[2, 3]),
        ("dictionary", dictionary(), None, &[2, 3]),
        ("wide_dictionary", wide_dictionary(), None, &[2, 3]),
        ("decimals", decimals(), None, &[3]),
    ]
}

/// Files an earlier encoder wrote at a format version this build still writes: the format did not
/// change, the encoder's choices did (design/format.md, version log). `(fixture, version, tag)`: the
/// file `<fixture>.v<version>.<tag>.seg`, never rewritten, decodes to that fixture's batch.
const EARLIER_ENCODERS: &[(&str, u16, &str)] = &[
    // Before constant-plane runs were stored as LZ4 runs of short matches (an arithmetic sequence of
    // 600 int64 values went through plain LZ4).
    ("integers", 2, "before-lz4-runs"),
];

fn earlier_encoder_file((name, version, tag): (&str, u16, &str)) -> PathBuf {
    dir().join(format!("{name}.v{version}.{tag}.seg"))
}

/// Every fixture file: its name, format version and path.
fn fixture_files() -> Vec<(String, u16, PathBuf)> {
    let mut files: Vec<(String, u16, PathBuf)> = segments()
        .into_iter()
        .flat_map(|(name, _, _, versions)| {
            versions.iter().map(move |&v| (name.to_owned(), v, dir().join(format!("{name}.v{v}.seg"))))
        })
        .collect();
    for &(name, version, tag) in EARLIER_ENCODERS {
        files.push((format!("{name} ({tag})"), version, earlier_encoder_file((name, version, tag))));
    }
    files
}

#[test]
fn files_of_earlier_encoders_still_decode() {
    for &(name, version, tag) in EARLIER_ENCODERS {
        let (_, batch, metadata, _) = segments().into_iter().find(|f| f.0 == name).expect("a fixture of that name");
        let golden = std::fs::read(earlier_encoder_file((name, version, tag))).expect("fixture present");
        assert_eq!(u16::from_le_bytes([golden[4], golden[5]]), version, "{name} {tag}: format version");
        let decoded = decode_segment(&golden).unwrap_or_else(|e| panic!("{name} {tag}: no longer decodes: {e}"));
        assert_eq!(decoded.batch, batch, "{name} {tag}: decoded values changed");
        assert_eq!(decoded.metadata.as_deref(), metadata, "{name} {tag}: metadata changed");
        assert_ne!(encode_segment(&batch, metadata).expect("encodes"), golden, "{name} {tag}: same as today's encoder");
    }
}

fn keys() -> Vec<Key> {
    let fields = AtomFields {
        version: 42,
        creation_ts: 1_700_000_000_123_456_789,
        content_hash: 0x0123_4567_89ab_cdef,
        start: -5,
        end: 1_000,
    };
    vec![
        Key::Atom(AtomKey::new(KeyType::TableData, "AAPL", fields).expect("valid")),
        Key::Atom(AtomKey::new(KeyType::Version, "fx/EUR USD", fields).expect("valid")),
        Key::Ref(RefKey::new(KeyType::VersionRef, "数据").expect("valid")),
    ]
}

fn keys_text() -> String {
    keys()
        .iter()
        .map(|k| {
            let hex: String = k.to_binary().iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex} {}\n", k.to_object_name("lib").expect("valid"))
        })
        .collect()
}

#[test]
fn segments_match_their_golden_bytes_and_decode() {
    for (name, batch, metadata, versions) in segments() {
        for &version in versions {
            let path = dir().join(format!("{name}.v{version}.seg"));
            let encoded = encode_segment(&batch, metadata).expect("encodes");
            let current = version == SEGMENT_FORMAT_VERSION;
            if blessing() && current {
                std::fs::write(&path, &encoded).expect("write fixture");
            }
            let golden = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with FLOE_BLESS=1 to create)", path.display()));
            assert_eq!(u16::from_le_bytes([golden[4], golden[5]]), version, "{name}: format version");
            let what = format!("{name} v{version}");
            let decoded = decode_segment(&golden).unwrap_or_else(|e| panic!("{what}: no longer decodes: {e}"));
            assert_eq!(decoded.batch, batch, "{what}: decoded values changed");
            assert_eq!(decoded.metadata.as_deref(), metadata, "{what}: metadata changed");
            if current {
                assert_eq!(encoded, golden, "{what}: encoder output changed; a format change needs a new version");
            }
        }
    }
}

/// The sizes the read pipeline places segments with, and decoding into its buffers, agree with
/// decoding to Arrow for every column of every fixture (dictionary-coded columns included).
#[test]
fn golden_columns_decode_into_buffers_as_they_decode_to_arrow() {
    for (name, version, path) in fixture_files() {
        let golden = std::fs::read(&path).expect("fixture present");
        let reader = SegmentReader::new(&golden).expect("parses");
        for i in 0..reader.num_columns() {
            let expected = reader.decode_column(i).expect("decodes");
            let info = reader.column_info(i).expect("in range");
            let data = expected.to_data();
            let rows = reader.num_rows();
            let mut validity = vec![0u8; rows.div_ceil(8)];
            let validity_out = Some(floe_formats::segment::BitsOut { bytes: &mut validity, bit_offset: 0 });
            use arrow_schema::DataType as T;
            let width = match data.data_type() {
                T::Utf8 | T::Binary => 4,
                T::LargeUtf8 | T::LargeBinary => 8,
                _ => continue,
            };
            let (mut ends, mut bytes) = (vec![0u8; rows * width], vec![0u8; info.data_len as usize]);
            let values = floe_formats::segment::ValuesOut::Var { ends: &mut ends, data: &mut bytes, base: 5 };
            reader
                .decode_column_into(i, floe_formats::segment::ColumnOut { validity: validity_out, values })
                .unwrap_or_else(|e| panic!("{name} v{version} column {i}: {e}"));
            // Same values: the end offsets (less the base), and the bytes of every non-null row.
            let offsets = data.buffers()[0].as_slice();
            let read = |b: &[u8], at: usize| -> u64 {
                let mut w = [0u8; 8];
                w[..width].copy_from_slice(&b[at * width..(at + 1) * width]);
                u64::from_le_bytes(w)
            };
            let mut start = 0u64;
            for row in 0..rows {
                let end = read(&ends, row) - 5;
                let (s, e) = (read(offsets, row), read(offsets, row + 1));
                if expected.is_valid(row) {
                    assert_eq!(
                        bytes[start as usize..end as usize],
                        data.buffers()[1].as_slice()[s as usize..e as usize]
                    );
                }
                start = end;
            }
            assert_eq!(start, info.data_len, "{name} v{version} column {i}: data length");
        }
    }
}

#[test]
fn every_single_byte_flip_of_a_golden_segment_is_rejected() {
    for (name, _, path) in fixture_files() {
        let golden = std::fs::read(&path).expect("fixture present");
        for i in 0..golden.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bytes = golden.clone();
                bytes[i] ^= flip;
                assert!(decode_segment(&bytes).is_err(), "{name}: flipping byte {i} with {flip:#04x} went unnoticed");
            }
        }
        for len in 0..golden.len() {
            assert!(decode_segment(&golden[..len]).is_err(), "{name}: truncation to {len} bytes went unnoticed");
        }
    }
}

#[test]
fn keys_match_their_golden_encodings() {
    let path = dir().join("keys.v1.txt");
    if blessing() {
        std::fs::write(&path, keys_text()).expect("write fixture");
    }
    let golden = std::fs::read_to_string(&path).expect("fixture present");
    for (line, key) in golden.lines().zip(keys()) {
        let (hex, name) = line.split_once(' ').expect("two fields");
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
        assert_eq!(Key::from_binary(&bytes).expect("old binary key decodes"), key);
        assert_eq!(Key::from_object_name(name).expect("old object name parses"), ("lib".to_owned(), key));
    }
    assert_eq!(golden, keys_text(), "key encodings changed");
}
