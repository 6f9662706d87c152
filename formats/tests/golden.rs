//! Golden-byte fixtures: small segments and keys encoded by this format version and checked in under
//! `tests/golden/`. A change that alters the bytes, or can no longer read old files, fails here.
//!
//! The fixtures are made by this test: `FLOE_BLESS=1 cargo test -p floe-formats --test golden` rewrites
//! them. Bless only for a deliberate format change, together with a new format version and an entry in
//! `design/format.md`'s version log; old fixtures must stay readable.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int8Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, RecordBatchOptions,
    TimestampNanosecondArray, UInt8Array,
};
use arrow_schema::{Field, Schema};
use floe_formats::{AtomFields, AtomKey, Key, KeyType, RefKey, decode_segment, encode_segment};

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

/// A larger fixture whose blocks use the LZ4 and delta codecs (the small fixtures' blocks are too short
/// to compress): 1000 rows of sorted timestamps, a random-walk int64, strings from five values and
/// random floats.
fn codecs() -> RecordBatch {
    let mut state = 0x853c_49e6_748f_ea9bu64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
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

/// The fixture segments: name, batch, metadata.
fn segments() -> Vec<(&'static str, RecordBatch, Option<&'static [u8]>)> {
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
        ("empty", batch(vec![], 0), None),
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
        ),
        ("codecs", codecs(), None),
    ]
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
    for (name, batch, metadata) in segments() {
        let path = dir().join(format!("{name}.v1.seg"));
        let encoded = encode_segment(&batch, metadata).expect("encodes");
        if blessing() {
            std::fs::write(&path, &encoded).expect("write fixture");
        }
        let golden = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with FLOE_BLESS=1 to create)", path.display()));
        let decoded = decode_segment(&golden).unwrap_or_else(|e| panic!("{name}: old file no longer decodes: {e}"));
        assert_eq!(decoded.batch, batch, "{name}: decoded values changed");
        assert_eq!(decoded.metadata.as_deref(), metadata, "{name}: metadata changed");
        assert_eq!(encoded, golden, "{name}: encoder output changed; a format change needs a new version");
    }
}

#[test]
fn every_single_byte_flip_of_a_golden_segment_is_rejected() {
    for (name, _, _) in segments() {
        let path = dir().join(format!("{name}.v1.seg"));
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
