use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, LargeBinaryBuilder, LargeStringBuilder, StringBuilder, StringDictionaryBuilder,
};
use arrow_array::types::{Int32Type, UInt16Type};
use arrow_array::*;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use proptest::prelude::*;

use super::*;
use crate::error::FormatError;

/// A small deterministic generator so that one `u64` seed describes a whole table.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const TYPES: usize = 19;

/// Builds column `kind` of `rows` rows; `nulls`: 0 none, 1 some, 2 all.
fn column(kind: usize, rows: usize, nulls: u8, rng: &mut Rng) -> (Field, ArrayRef) {
    let valid = |rng: &mut Rng| match nulls {
        0 => true,
        1 => rng.below(3) != 0,
        _ => false,
    };
    let words = ["", "a", "bc", "déf", "数据", "🚀🚀", "longer string value"];
    macro_rules! prim {
        ($arr:ty, $t:ty) => {{
            let v: $arr = (0..rows).map(|_| if valid(rng) { Some(rng.next() as $t) } else { None }).collect();
            Arc::new(v) as ArrayRef
        }};
    }
    let array: ArrayRef = match kind {
        0 => prim!(Int8Array, i8),
        1 => prim!(Int16Array, i16),
        2 => prim!(Int32Array, i32),
        3 => prim!(Int64Array, i64),
        4 => prim!(UInt8Array, u8),
        5 => prim!(UInt16Array, u16),
        6 => prim!(UInt32Array, u32),
        7 => prim!(UInt64Array, u64),
        8 => {
            let v: Float32Array = (0..rows).map(|_| valid(rng).then(|| f32::from_bits(rng.next() as u32))).collect();
            Arc::new(v)
        }
        9 => {
            let v: Float64Array = (0..rows).map(|_| valid(rng).then(|| f64::from_bits(rng.next()))).collect();
            Arc::new(v)
        }
        10 => {
            let v: BooleanArray = (0..rows).map(|_| valid(rng).then(|| rng.below(2) == 1)).collect();
            Arc::new(v)
        }
        11 | 12 => {
            // Sorted timestamps (delta-coded), optionally with a time zone.
            let mut t = 1_700_000_000_000_000_000i64;
            let v: TimestampNanosecondArray = (0..rows)
                .map(|_| {
                    t += rng.below(1_000_000) as i64;
                    valid(rng).then_some(t)
                })
                .collect();
            Arc::new(if kind == 12 { v.with_timezone("America/New_York") } else { v })
        }
        13 => {
            let mut b = StringBuilder::new();
            (0..rows)
                .for_each(|_| if valid(rng) { b.append_value(words[rng.below(7) as usize]) } else { b.append_null() });
            Arc::new(b.finish())
        }
        14 => {
            let mut b = LargeStringBuilder::new();
            (0..rows)
                .for_each(|_| if valid(rng) { b.append_value(words[rng.below(7) as usize]) } else { b.append_null() });
            Arc::new(b.finish())
        }
        15 => {
            let mut b = BinaryBuilder::new();
            (0..rows).for_each(|_| if valid(rng) { b.append_value(rng.next().to_le_bytes()) } else { b.append_null() });
            Arc::new(b.finish())
        }
        16 => {
            let mut b = LargeBinaryBuilder::new();
            (0..rows).for_each(|_| {
                if valid(rng) {
                    b.append_value(&rng.next().to_le_bytes()[..rng.below(8) as usize])
                } else {
                    b.append_null()
                }
            });
            Arc::new(b.finish())
        }
        17 => {
            let mut b = StringDictionaryBuilder::<Int32Type>::new();
            (0..rows)
                .for_each(|_| if valid(rng) { b.append_value(words[rng.below(7) as usize]) } else { b.append_null() });
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringDictionaryBuilder::<UInt16Type>::new();
            (0..rows)
                .for_each(|_| if valid(rng) { b.append_value(words[rng.below(7) as usize]) } else { b.append_null() });
            Arc::new(b.finish())
        }
    };
    let nullable = nulls > 0 || rng.below(2) == 0;
    (Field::new(format!("c{kind}_{}", rng.below(100)), array.data_type().clone(), nullable), array)
}

fn table(rows: usize, kinds: &[(usize, u8)], seed: u64) -> RecordBatch {
    let mut rng = Rng(seed | 1);
    let (fields, arrays): (Vec<_>, Vec<_>) = kinds.iter().map(|&(k, n)| column(k, rows, n, &mut rng)).unzip();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options).expect("consistent table")
}

fn kinds() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((0..TYPES, 0u8..3), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_type_and_null_pattern_round_trips(rows in 0usize..300, kinds in kinds(), seed in any::<u64>(),
                                                meta in prop::option::of(prop::collection::vec(any::<u8>(), 0..50))) {
        let batch = table(rows, &kinds, seed);
        let bytes = encode_segment(&batch, meta.as_deref()).expect("encodes");
        let decoded = decode_segment(&bytes).expect("decodes");
        prop_assert_eq!(&decoded.batch, &batch);
        prop_assert_eq!(decoded.metadata, meta);
        // Encoding is deterministic.
        prop_assert_eq!(encode_segment(&batch, None).expect("encodes"), encode_segment(&batch, None).expect("encodes"));
    }

    #[test]
    fn sliced_input_round_trips(rows in 1usize..200, kinds in kinds(), seed in any::<u64>(), cut in any::<(u16, u16)>()) {
        let batch = table(rows, &kinds, seed);
        let offset = cut.0 as usize % rows;
        let len = cut.1 as usize % (rows - offset + 1);
        let sliced = batch.slice(offset, len);
        let decoded = decode_segment(&encode_segment(&sliced, None).expect("encodes")).expect("decodes");
        prop_assert_eq!(decoded.batch, sliced);
    }

    #[test]
    fn decode_into_matches_decode(parts in prop::collection::vec(0usize..40, 1..5), kinds in kinds(), seed in any::<u64>()) {
        // Several segments of one schema decoded into one preallocated output, at row offsets.
        let whole_rows: usize = parts.iter().sum();
        let whole = table(whole_rows, &kinds, seed);
        let mut at = 0;
        let segments: Vec<Vec<u8>> = parts.iter().map(|&n| {
            let s = encode_segment(&whole.slice(at, n), None).expect("encodes");
            at += n;
            s
        }).collect();
        for col in 0..whole.num_columns() {
            let expected = whole.column(col);
            let readers: Vec<SegmentReader<'_>> = segments.iter().map(|s| SegmentReader::new(s).expect("parses")).collect();
            if let Some(got) = decode_into_one(&readers, col, expected.data_type()) {
                prop_assert_eq!(&got, expected);
            }
        }
    }

    #[test]
    fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_segment(&bytes);
    }

    #[test]
    fn corrupted_segments_are_rejected(rows in 0usize..50, kinds in kinds(), seed in any::<u64>(), at in any::<usize>(), flip in 1u8..=255) {
        let batch = table(rows, &kinds, seed);
        let mut bytes = encode_segment(&batch, Some(b"meta")).expect("encodes");
        let i = at % bytes.len();
        bytes[i] ^= flip;
        prop_assert!(decode_segment(&bytes).is_err(), "flip at {} of {} went unnoticed", i, bytes.len());
    }
}

/// Decodes column `col` of every reader into one preallocated output, the way the read pipeline does.
fn decode_into_one(readers: &[SegmentReader<'_>], col: usize, data_type: &DataType) -> Option<ArrayRef> {
    let rows: usize = readers.iter().map(SegmentReader::num_rows).sum();
    let infos: Vec<ColumnInfo> = readers.iter().map(|r| r.column_info(col).expect("in range")).collect();
    let mut validity = vec![0u8; rows.div_ceil(8)];
    let values_of = |i: usize| -> ArrayRef { readers[i].decode_column(col).expect("decodes") };
    let nulls = infos.iter().any(|i| i.has_nulls);
    let mut at = 0;
    let data = match data_type {
        DataType::Boolean => {
            let mut bits = zeroed(rows.div_ceil(8));
            for r in readers {
                let out = ColumnOut {
                    validity: Some(BitsOut { bytes: &mut validity, bit_offset: at }),
                    values: ValuesOut::Bits(BitsOut { bytes: &mut bits, bit_offset: at }),
                };
                r.decode_column_into(col, out).expect("decodes");
                at += r.num_rows();
            }
            arrow_data::ArrayData::try_new(
                data_type.clone(),
                rows,
                nulls.then(|| validity.into()),
                0,
                vec![bits.into()],
                vec![],
            )
        }
        DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary => {
            let width = if matches!(data_type, DataType::Utf8 | DataType::Binary) { 4 } else { 8 };
            let data_len: u64 = infos.iter().map(|i| i.data_len).sum();
            let mut offsets = zeroed((rows + 1) * width);
            let mut data = zeroed(data_len as usize);
            let (mut base, mut ends_at) = (0u64, width);
            for (r, info) in readers.iter().zip(&infos) {
                let ends = &mut offsets[ends_at..ends_at + r.num_rows() * width];
                let bytes = &mut data[base as usize..(base + info.data_len) as usize];
                let out = ColumnOut {
                    validity: Some(BitsOut { bytes: &mut validity, bit_offset: at }),
                    values: ValuesOut::Var { ends, data: bytes, base },
                };
                r.decode_column_into(col, out).expect("decodes");
                at += r.num_rows();
                ends_at += r.num_rows() * width;
                base += info.data_len;
            }
            arrow_data::ArrayData::try_new(
                data_type.clone(),
                rows,
                nulls.then(|| validity.into()),
                0,
                vec![offsets.into(), data.into()],
                vec![],
            )
        }
        DataType::Dictionary(..) => {
            // Dictionaries differ per segment; check the keys/dictionary pair of each segment instead.
            let parts: Vec<ArrayRef> = (0..readers.len())
                .map(|i| {
                    let r = &readers[i];
                    let width = data_type_key_width(data_type);
                    let mut keys = zeroed(r.num_rows() * width);
                    let mut v = vec![0u8; r.num_rows().div_ceil(8)];
                    r.decode_column_into(
                        col,
                        ColumnOut {
                            validity: Some(BitsOut { bytes: &mut v, bit_offset: 0 }),
                            values: ValuesOut::Fixed(&mut keys),
                        },
                    )
                    .expect("decodes");
                    let dict = r.decode_dictionary(col).expect("dictionary");
                    let DataType::Dictionary(k, _) = data_type else { unreachable!() };
                    let keys = arrow_data::ArrayData::try_new(
                        k.as_ref().clone(),
                        r.num_rows(),
                        infos[i].has_nulls.then(|| v.into()),
                        0,
                        vec![keys.into()],
                        vec![],
                    )
                    .expect("keys");
                    let data = keys
                        .into_builder()
                        .data_type(data_type.clone())
                        .child_data(vec![dict.to_data()])
                        .build()
                        .expect("dictionary array");
                    let got = make_array(data);
                    assert_eq!(&got, &values_of(i));
                    got
                })
                .collect();
            // Each segment's keys index its own dictionary: checked per segment above.
            drop(parts);
            return None;
        }
        _ => {
            let width = data_type.primitive_width().expect("fixed width");
            let mut values = zeroed(rows * width);
            for r in readers {
                let out = ColumnOut {
                    validity: Some(BitsOut { bytes: &mut validity, bit_offset: at }),
                    values: ValuesOut::Fixed(&mut values[at * width..(at + r.num_rows()) * width]),
                };
                r.decode_column_into(col, out).expect("decodes");
                at += r.num_rows();
            }
            arrow_data::ArrayData::try_new(
                data_type.clone(),
                rows,
                nulls.then(|| validity.into()),
                0,
                vec![values.into()],
                vec![],
            )
        }
    };
    Some(make_array(data.expect("valid array")))
}

/// An Arrow-aligned zeroed buffer (a `Vec<u8>` would not be aligned for wider types).
fn zeroed(len: usize) -> arrow_buffer::MutableBuffer {
    arrow_buffer::MutableBuffer::from_len_zeroed(len)
}

fn data_type_key_width(data_type: &DataType) -> usize {
    let DataType::Dictionary(k, _) = data_type else { unreachable!() };
    k.primitive_width().expect("integer key")
}

#[test]
fn unsupported_types_are_named() {
    let schema = Schema::new(vec![Field::new("when", DataType::Timestamp(TimeUnit::Millisecond, None), false)]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(TimestampMillisecondArray::from(vec![1i64]))])
        .expect("valid");
    let err = encode_segment(&batch, None).expect_err("unsupported");
    assert!(matches!(&err, FormatError::UnsupportedType { column, .. } if column == "when"), "{err}");
}

#[test]
fn errors_name_the_column_and_block() {
    let batch = table(1000, &[(9, 0), (3, 0)], 7);
    let mut bytes = encode_segment(&batch, None).expect("encodes");
    let reader = SegmentReader::new(&bytes).expect("parses");
    let c1 = reader.column_info(1).expect("in range");
    // Corrupt a body byte inside column 1, which follows column 0's blocks.
    let c0_len = reader.column_info(0).expect("in range").stored_len as usize;
    drop(reader);
    bytes[HEADER_LEN + c0_len + 1] ^= 1;
    let reader = SegmentReader::new(&bytes).expect("header and descriptor intact");
    reader.decode_column(0).expect("column 0 untouched");
    let err = reader.decode_column(1).expect_err("corrupt").to_string();
    assert!(err.contains(&format!("column {:?} block 0 (values)", c1.field.name())), "{err}");
}

#[test]
fn truncation_and_bad_magic_are_typed() {
    let bytes = encode_segment(&table(10, &[(3, 1)], 3), None).expect("encodes");
    assert!(matches!(decode_segment(&bytes[..10]), Err(FormatError::Truncated { .. })));
    assert!(matches!(decode_segment(&bytes[..bytes.len() - 1]), Err(FormatError::Malformed { .. })));
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(decode_segment(&bad), Err(FormatError::BadMagic { .. })));
    let mut bad = bytes;
    bad[4] = 9;
    assert!(matches!(decode_segment(&bad), Err(FormatError::UnsupportedVersion { found: 9, .. })));
}

#[test]
fn projection_reads_only_the_asked_columns() {
    let batch = table(100, &[(9, 0), (13, 1), (10, 2)], 11);
    let mut bytes = encode_segment(&batch, None).expect("encodes");
    let reader = SegmentReader::new(&bytes).expect("parses");
    let c0 = reader.column_info(0).expect("in range").stored_len as usize;
    drop(reader);
    // Corrupt column 0: projecting columns 1 and 2 must still work because their bytes are intact.
    bytes[HEADER_LEN + c0 / 2] ^= 0xff;
    let reader = SegmentReader::new(&bytes).expect("parses");
    let got = reader.decode(Some(&[2, 1])).expect("other columns decode");
    assert_eq!(got.column(0), batch.column(2));
    assert_eq!(got.column(1), batch.column(1));
    assert!(reader.decode(None).is_err());
}

#[test]
fn large_columns_span_several_blocks() {
    let rows = 400_000; // 3.2 MB of f64: four 1 MiB blocks
    let batch = table(rows, &[(9, 1), (11, 0), (13, 0)], 5);
    let bytes = encode_segment(&batch, None).expect("encodes");
    assert_eq!(decode_segment(&bytes).expect("decodes").batch, batch);
}

#[test]
fn non_nullable_field_with_nulls_is_refused() {
    let schema = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
    let batch =
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(vec![Some(1), None]))]).expect("valid");
    let schema = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
    // Arrow itself refuses this combination, so the encoder never sees it through RecordBatch::try_new.
    assert!(RecordBatch::try_new(Arc::new(schema), batch.columns().to_vec()).is_err());
}

#[test]
fn content_hash_covers_every_byte() {
    use arrow_array::{Float64Array, RecordBatch};
    let batch = RecordBatch::try_from_iter([(
        "x",
        std::sync::Arc::new(Float64Array::from_iter_values((0..5000).map(|i| i as f64))) as arrow_array::ArrayRef,
    )])
    .expect("batch");
    let bytes = crate::encode_segment(&batch, Some(b"m")).expect("encode");
    let h = crate::content_hash(&bytes).expect("hash");
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        // Either the header no longer parses, or the hash changes, or a block checksum no longer matches.
        let same_hash = crate::content_hash(&b).is_ok_and(|h2| h2 == h);
        if same_hash {
            assert!(crate::decode_segment(&b).is_err(), "flip at {i} undetected");
        }
    }
}
