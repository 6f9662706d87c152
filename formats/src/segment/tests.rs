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
use crate::segment::{block, layout, types};

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

const TYPES: usize = 27;

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
        19 => {
            // Low-cardinality binary (dictionary-coded when long enough).
            let mut b = BinaryBuilder::new();
            (0..rows).for_each(|_| {
                if valid(rng) { b.append_value(&b"\x00\xffab"[..rng.below(5) as usize]) } else { b.append_null() }
            });
            Arc::new(b.finish())
        }
        20 => {
            // All-distinct unicode strings (never dictionary-coded).
            let mut b = StringBuilder::new();
            (0..rows).for_each(|i| {
                if valid(rng) {
                    b.append_value(format!("{}#{i}", words[rng.below(7) as usize]))
                } else {
                    b.append_null()
                }
            });
            Arc::new(b.finish())
        }
        21 => {
            // Low-cardinality large binary, including long values (compared byte by byte).
            let long: Vec<Vec<u8>> = (0..3u8).map(|k| vec![k; 20 + usize::from(k)]).collect();
            let mut b = LargeBinaryBuilder::new();
            (0..rows)
                .for_each(|_| if valid(rng) { b.append_value(&long[rng.below(3) as usize]) } else { b.append_null() });
            Arc::new(b.finish())
        }
        22 => {
            // int16 random walk (zigzag delta).
            let mut x = 0i16;
            let v: Int16Array = (0..rows)
                .map(|_| {
                    x = x.wrapping_add(rng.below(7) as i16 - 3);
                    valid(rng).then_some(x)
                })
                .collect();
            Arc::new(v)
        }
        23 => {
            // Sorted uint32 (delta).
            let mut x = rng.next() as u32;
            let v: UInt32Array = (0..rows)
                .map(|_| {
                    x = x.wrapping_add(rng.below(300) as u32);
                    valid(rng).then_some(x)
                })
                .collect();
            Arc::new(v)
        }
        24 => {
            // An int64 arithmetic sequence (every byte plane of the differences constant).
            let (start, step) = (rng.next() as i64, rng.below(1000) as i64 - 500);
            let v: Int64Array = (0..rows as i64).map(|i| valid(rng).then_some(start.wrapping_add(i * step))).collect();
            Arc::new(v)
        }
        25 => {
            // uint8 from a few values (one-byte keys-like).
            let v: UInt8Array = (0..rows).map(|_| valid(rng).then(|| [0u8, 7, 255][rng.below(3) as usize])).collect();
            Arc::new(v)
        }
        26 => {
            // Many distinct short strings among more rows (2-byte dictionary keys past 256 values).
            let mut b = StringBuilder::new();
            (0..rows).for_each(|_| {
                if valid(rng) { b.append_value(format!("s{}", rng.below(400))) } else { b.append_null() }
            });
            Arc::new(b.finish())
        }
        17 => {
            let mut b = StringDictionaryBuilder::<Int32Type>::new();
            (0..rows)
                .for_each(|_| if valid(rng) { b.append_value(words[rng.below(7) as usize]) } else { b.append_null() });
            Arc::new(b.finish())
        }
        18 => {
            let mut b = StringDictionaryBuilder::<UInt16Type>::new();
            (0..rows)
                .for_each(|_| if valid(rng) { b.append_value(words[rng.below(7) as usize]) } else { b.append_null() });
            Arc::new(b.finish())
        }
        other => unreachable!("column kind {other}"),
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

/// The bytes of `batch`'s columns, as `encode_segment` counts its input.
fn input_bytes(batch: &RecordBatch) -> usize {
    batch.columns().iter().map(|a| a.to_data().get_slice_memory_size().unwrap_or(0)).sum()
}

/// `columns` columns of 10,000 random doubles (stored raw): a `wide`-shaped segment.
fn random_doubles(columns: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng(seed);
    let fields: Vec<Field> = (0..columns).map(|i| Field::new(format!("c{i}"), DataType::Float64, true)).collect();
    let arrays: Vec<ArrayRef> = (0..columns)
        .map(|_| {
            Arc::new(Float64Array::from_iter_values((0..10_000).map(|_| f64::from_bits(rng.next() >> 2)))) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch")
}

/// A `wide` segment (127 columns of 10,000 random floats: stored raw, ~900 blocks) reserves room for
/// its whole descriptor, and not much more.
#[test]
fn an_incompressible_wide_segment_reserves_room_for_its_descriptor() {
    let batch = random_doubles(127, 7);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let written = layout::Header::parse(&bytes).expect("header").descriptor_len as usize;
    let reserved = super::encode::descriptor_estimate(&batch, input_bytes(&batch));
    assert!(written > 12_000, "{written} bytes of descriptor: ~900 block entries expected");
    assert!(written <= reserved && reserved <= 4 * written, "descriptor of {written} bytes, {reserved} reserved");
}

/// The `wide`-shaped segment's raw columns are lent, not copied: its own buffer holds the header,
/// the descriptor and nothing of the values, and the lent parts point into the input's buffers.
#[test]
fn raw_blocks_are_lent_from_the_input_and_the_parts_join_to_the_segment() {
    let batch = random_doubles(20, 11);
    let whole = encode_segment(&batch, None).expect("encodes");
    let encoded = encode_segment_into(&batch, None, Vec::new()).expect("encodes");
    assert_eq!(encoded.len(), whole.len());
    assert!(encoded.owned_len() < 10_000, "{} bytes owned of {}", encoded.owned_len(), whole.len());
    assert_eq!(encoded.content_hash(), crate::content_hash(&whole).expect("hashes"));
    let inputs: Vec<std::ops::Range<usize>> = batch
        .columns()
        .iter()
        .map(|c| {
            let values = c.to_data().buffers()[0].clone();
            values.as_ptr() as usize..values.as_ptr() as usize + values.len()
        })
        .collect();
    let (_, parts) = encoded.into_parts();
    // One run per column (its blocks are contiguous in the input), between owned slices.
    let lent: Vec<&bytes::Bytes> =
        parts.iter().filter(|p| inputs.iter().any(|r| r.contains(&(p.as_ptr() as usize)))).collect();
    assert_eq!(lent.len(), 20);
    assert!(lent.iter().all(|p| p.len() == 80_000));
    assert_eq!(parts.concat(), whole);
}

fn kinds() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((0..TYPES, 0u8..3), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_type_and_null_pattern_round_trips(rows in prop_oneof![0usize..300, 1000usize..3000], kinds in kinds(), seed in any::<u64>(),
                                                meta in prop::option::of(prop::collection::vec(any::<u8>(), 0..50))) {
        let batch = table(rows, &kinds, seed);
        let bytes = encode_segment(&batch, meta.as_deref()).expect("encodes");
        let decoded = decode_segment(&bytes).expect("decodes");
        prop_assert_eq!(&decoded.batch, &batch);
        // The room reserved for the descriptor was enough (else the buffer grew and copied).
        let written = layout::Header::parse(&bytes).expect("header").descriptor_len as usize;
        let reserved = super::encode::descriptor_estimate(&batch, input_bytes(&batch) + meta.as_ref().map_or(0, Vec::len));
        prop_assert!(written <= reserved, "descriptor of {} bytes, {} reserved", written, reserved);
        prop_assert_eq!(decoded.metadata, meta);
        // Encoding is deterministic.
        prop_assert_eq!(encode_segment(&batch, None).expect("encodes"), encode_segment(&batch, None).expect("encodes"));
    }

    #[test]
    fn parts_join_to_the_segment_whatever_the_buffer(rows in prop_oneof![0usize..300, 1000usize..40_000], kinds in kinds(), seed in any::<u64>(),
                                                     cut in any::<u16>(), spare in prop::collection::vec(any::<u8>(), 0..100)) {
        let batch = table(rows, &kinds, seed);
        let batch = batch.slice(cut as usize % (rows + 1), rows - cut as usize % (rows + 1));
        let whole = encode_segment(&batch, None).expect("encodes");
        // A used buffer (the pipeline's) gives the same bytes as a fresh one.
        let encoded = encode_segment_into(&batch, None, spare).expect("encodes");
        prop_assert_eq!(encoded.content_hash(), crate::content_hash(&whole).expect("hashes"));
        prop_assert_eq!(encoded.len(), whole.len());
        let (_, parts) = encoded.into_parts();
        prop_assert!(parts.iter().all(|p| !p.is_empty()));
        prop_assert_eq!(parts.concat(), whole.clone());
        prop_assert_eq!(encode_segment_into(&batch, None, Vec::new()).expect("encodes").into_vec(), whole);
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
    fn row_windows_match_slices_of_the_whole(rows in 1usize..3000, kinds in kinds(), seed in any::<u64>(), cut in any::<(u16, u16)>()) {
        let (batch, bytes, window) = windowed_case(rows, &kinds, seed, cut);
        let reader = SegmentReader::new(&bytes).expect("parses");
        let (start, len) = (window.start, window.len());
        for col in 0..batch.num_columns() {
            if let Some(got) = decode_window(&reader, col, start..start + len) {
                prop_assert_eq!(&got, &batch.column(col).slice(start, len), "column {} rows {}..{}", col, start, start + len);
            }
        }
    }

    #[test]
    fn column_rows_are_slices_of_the_whole_column(rows in 1usize..3000, kinds in kinds(), seed in any::<u64>(), cut in any::<(u16, u16)>()) {
        let (batch, bytes, window) = windowed_case(rows, &kinds, seed, cut);
        let reader = SegmentReader::new(&bytes).expect("parses");
        let (start, len) = (window.start, window.len());
        for col in 0..batch.num_columns() {
            let got = reader.decode_column_rows(col, start..start + len).expect("decodes");
            prop_assert_eq!(&got, &batch.column(col).slice(start, len), "column {} rows {}..{}", col, start, start + len);
        }
    }

    #[test]
    fn coded_windows_index_their_dictionary(rows in 1usize..3000, kinds in kinds(), seed in any::<u64>(), cut in any::<(u16, u16)>()) {
        let (batch, bytes, window) = windowed_case(rows, &kinds, seed, cut);
        let reader = SegmentReader::new(&bytes).expect("parses");
        let (start, len) = (window.start, window.len());
        for col in 0..batch.num_columns() {
            let mut keys = vec![0u32; len];
            let mut validity = vec![0u8; len.div_ceil(8)];
            let out = BitsOut { bytes: &mut validity, bit_offset: 0 };
            let decoded = reader.decode_codes_into(col, start..start + len, &mut keys, Some(out));
            if !reader.column_info(col).expect("in range").dictionary_coded {
                prop_assert!(matches!(decoded, Err(FormatError::InvalidInput(_))));
                prop_assert!(reader.decode_coded_dictionary(col).is_err());
                continue;
            }
            decoded.expect("decodes");
            let dictionary = reader.decode_coded_dictionary(col).expect("dictionary");
            let original = batch.column(col);
            for (i, &k) in keys.iter().enumerate() {
                let valid = arrow_buffer::bit_util::get_bit(&validity, i);
                prop_assert_eq!(valid, original.is_valid(start + i));
                if valid {
                    prop_assert_eq!(value_bytes(&dictionary, k as usize), value_bytes(original, start + i));
                } else {
                    prop_assert_eq!(k, 0);
                }
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

/// A table of `rows` rows, its encoded segment, and a window of it chosen by `cut` (possibly empty).
fn windowed_case(
    rows: usize,
    kinds: &[(usize, u8)],
    seed: u64,
    cut: (u16, u16),
) -> (RecordBatch, Vec<u8>, std::ops::Range<usize>) {
    let batch = table(rows, kinds, seed);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let start = cut.0 as usize % rows;
    let len = cut.1 as usize % (rows - start + 1);
    (batch, bytes, start..start + len)
}

/// Decodes rows `rows` of column `col` with [`SegmentReader::decode_column_rows_into`]; `None` (after
/// checking the refusal) for the variable-length columns it does not window.
fn decode_window(reader: &SegmentReader<'_>, col: usize, rows: std::ops::Range<usize>) -> Option<ArrayRef> {
    let data_type = reader.schema().field(col).data_type().clone();
    let n = rows.len();
    let has_nulls = reader.column_info(col).expect("in range").has_nulls;
    // Start the window at bit 3 of the output, as a second segment's rows would.
    let mut validity = vec![0u8; (n + 3).div_ceil(8)];
    let values = match &data_type {
        DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary | DataType::Dictionary(..) => {
            let mut ends = vec![0u8; n * 8];
            let mut data = vec![0u8; 0];
            let out = ColumnOut {
                validity: Some(BitsOut { bytes: &mut validity, bit_offset: 3 }),
                values: ValuesOut::Var { ends: &mut ends, data: &mut data, base: 0 },
            };
            let err =
                reader.decode_column_rows_into(col, rows, out).expect_err("variable-length columns are not windowed");
            assert!(matches!(err, FormatError::InvalidInput(_)), "{err}");
            return None;
        }
        DataType::Boolean => {
            let mut bits = vec![0u8; (n + 3).div_ceil(8)];
            let out = ColumnOut {
                validity: Some(BitsOut { bytes: &mut validity, bit_offset: 3 }),
                values: ValuesOut::Bits(BitsOut { bytes: &mut bits, bit_offset: 3 }),
            };
            reader.decode_column_rows_into(col, rows, out).expect("decodes");
            let mut shifted = vec![0u8; n.div_ceil(8)];
            arrow_buffer::bit_mask::set_bits(&mut shifted, &bits, 0, 3, n);
            shifted
        }
        other => {
            let width = other.primitive_width().expect("fixed width");
            let mut values = zeroed(n * width);
            let out = ColumnOut {
                validity: Some(BitsOut { bytes: &mut validity, bit_offset: 3 }),
                values: ValuesOut::Fixed(&mut values),
            };
            reader.decode_column_rows_into(col, rows, out).expect("decodes");
            values.as_slice().to_vec()
        }
    };
    let mut nulls = vec![0u8; n.div_ceil(8)];
    arrow_buffer::bit_mask::set_bits(&mut nulls, &validity, 0, 3, n);
    let data = arrow_data::ArrayData::try_new(
        data_type,
        n,
        has_nulls.then(|| nulls.into()),
        0,
        vec![arrow_buffer::Buffer::from_slice_ref(&values)],
        vec![],
    )
    .expect("valid array");
    Some(make_array(data))
}

/// The bytes of value `i` of a variable-length array.
fn value_bytes(array: &ArrayRef, i: usize) -> Vec<u8> {
    use arrow_array::cast::AsArray;
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i).as_bytes().to_vec(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).as_bytes().to_vec(),
        DataType::Binary => array.as_binary::<i32>().value(i).to_vec(),
        DataType::LargeBinary => array.as_binary::<i64>().value(i).to_vec(),
        other => panic!("not a variable-length type: {other}"),
    }
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

/// `check_schema` accepts exactly the schemas whose zero rows `encode_segment` encodes, with the same
/// error.
#[test]
fn check_schema_agrees_with_encoding_zero_rows() {
    let long = "x".repeat(usize::from(u16::MAX) + 1);
    let schemas = [
        vec![Field::new("a", DataType::Float64, true), Field::new("b", DataType::Utf8, true)],
        vec![Field::new("t", DataType::Timestamp(TimeUnit::Nanosecond, Some("Europe/London".into())), true)],
        vec![Field::new("d", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true)],
        vec![Field::new("ok", DataType::Int64, true), Field::new("when", DataType::Date32, true)],
        vec![Field::new("when", DataType::Timestamp(TimeUnit::Millisecond, None), true)],
        vec![Field::new(long.as_str(), DataType::Int64, true)],
        vec![Field::new("t", DataType::Timestamp(TimeUnit::Nanosecond, Some(long.as_str().into())), true)],
        vec![Field::new("d", DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Int64)), true)],
    ];
    for fields in schemas {
        let schema = Arc::new(Schema::new(fields));
        let checked = check_schema(&schema).map_err(|e| e.to_string());
        let encoded =
            encode_segment(&RecordBatch::new_empty(Arc::clone(&schema)), None).map(drop).map_err(|e| e.to_string());
        assert_eq!(checked, encoded, "{schema}");
    }
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
fn row_windows_span_blocks() {
    // f64 with nulls, i64 (shuffled), bool, u8: 400,000 rows make several 256 KiB blocks per column.
    let rows = 400_000;
    let batch = table(rows, &[(9, 1), (11, 0), (10, 1), (4, 2)], 7);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let reader = SegmentReader::new(&bytes).expect("parses");
    let edge = (1 << 18) / 8; // the first block boundary of an 8-byte column
    for window in [0..rows, 0..1, edge - 1..edge + 1, edge..2 * edge, 5..3 * edge + 7, rows - 10..rows, 77..77] {
        for col in 0..batch.num_columns() {
            let got = decode_window(&reader, col, window.clone()).expect("fixed or boolean");
            assert_eq!(&got, &batch.column(col).slice(window.start, window.len()), "column {col} rows {window:?}");
        }
    }
    let mut out = vec![0u8; 16];
    let err = reader
        .decode_column_rows_into(
            1,
            rows - 1..rows + 1,
            ColumnOut { validity: None, values: ValuesOut::Fixed(&mut out) },
        )
        .expect_err("past the end");
    assert!(err.to_string().contains("rows"), "{err}");
}

#[test]
fn small_streams_are_cut_into_several_blocks() {
    // 10,000 f64 rows (80,000 bytes) make seven 12 KiB blocks, so a window of a few rows verifies and
    // decodes 12 KiB, not the whole column; 100,000 rows make 100 KiB blocks; 2 MiB and more, 256 KiB.
    assert_eq!(block::block_bytes(80_000), 12 << 10);
    assert_eq!(block::block_bytes(800_000), 100 << 10);
    assert_eq!(block::block_bytes(2 << 20), block::BLOCK_BYTES);
    assert_eq!(block::block_bytes(20_000), block::MIN_BLOCK_BYTES);
    assert_eq!(block::block_bytes(100 << 20), block::BLOCK_BYTES);
    assert_eq!(block::block_bytes(0), block::MIN_BLOCK_BYTES);
    let rows = 10_000;
    let batch = table(rows, &[(9, 1), (11, 0), (10, 1)], 3);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let values = &layouts(&bytes)[0].streams[0];
    assert_eq!(values.blocks.len(), 7, "{values:?}");
    assert!(values.blocks[..6].iter().all(|b| b.raw_len == 12 << 10));
    let reader = SegmentReader::new(&bytes).expect("parses");
    let edge = (12 << 10) / 8;
    for window in [0..rows, edge - 1..edge + 1, 3 * edge + 5..3 * edge + 15, rows - 3..rows] {
        for col in 0..batch.num_columns() {
            let got = decode_window(&reader, col, window.clone()).expect("fixed or boolean");
            assert_eq!(&got, &batch.column(col).slice(window.start, window.len()), "column {col} rows {window:?}");
        }
    }
}

#[test]
fn a_parsed_layout_serves_only_its_own_segment() {
    let batch = table(3_000, &[(9, 1), (11, 0), (13, 0)], 11);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let layout = SegmentReader::new(&bytes).expect("parses").layout();
    let again = SegmentReader::with_layout(&bytes, &layout).expect("same bytes");
    assert_eq!(again.decode(None).expect("decodes"), batch);
    // Another segment (other values, same shape), a truncated one, and a damaged block.
    let other = encode_segment(&table(3_000, &[(9, 1), (11, 0), (13, 0)], 12), None).expect("encodes");
    for bad in [other.as_slice(), &bytes[..bytes.len() - 1], &bytes[..10]] {
        let err = SegmentReader::with_layout(bad, &layout).expect_err("not the parsed segment");
        assert!(matches!(err, FormatError::Malformed { .. } | FormatError::Truncated { .. }), "{err}");
    }
    let mut damaged = bytes.clone();
    damaged[HEADER_LEN + 3] ^= 1;
    let reader = SegmentReader::with_layout(&damaged, &layout).expect("header and descriptor unchanged");
    let err = reader.decode(None).expect_err("the block checksum still catches it");
    assert!(matches!(err, FormatError::ChecksumMismatch { .. }), "{err}");
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

/// The parsed column descriptions of an encoded segment.
fn layouts(bytes: &[u8]) -> Vec<layout::ColumnDesc> {
    let header = layout::Header::parse(bytes).expect("header");
    let body_end = HEADER_LEN + header.body_len as usize;
    layout::parse_descriptor(&bytes[body_end..], &header).expect("descriptor").columns
}

/// One column to [`assemble`]: field, dictionary coding, and its streams (validity first) as raw bytes
/// with the integer width the encoder may use on them.
type RawColumn = (Field, Option<layout::DictCoding>, Vec<(types::StreamKind, Vec<u8>, Option<usize>)>);

/// Builds a segment of `version` from raw streams, with valid checksums whatever the streams hold: the
/// way to hand the decoder well-formed bytes with hostile contents.
fn assemble(version: u16, rows: usize, columns: Vec<RawColumn>) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    let mut descs = Vec::new();
    for (field, dict, streams) in columns {
        let physical = types::physical(field.name(), field.data_type()).expect("supported");
        let mut validity = None;
        let mut value_streams = Vec::new();
        for (kind, raw, ints) in streams {
            let body_offset = (out.len() - HEADER_LEN) as u64;
            let blocks =
                raw.chunks(block::block_bytes(raw.len())).map(|c| block::encode_block(c, ints, &mut out)).collect();
            let s = layout::StreamDesc { kind, raw_len: raw.len() as u64, blocks, body_offset };
            if kind == types::StreamKind::Validity { validity = Some(s) } else { value_streams.push(s) }
        }
        descs.push(layout::ColumnDesc { field: Arc::new(field), physical, dict, validity, streams: value_streams });
    }
    let body_len = (out.len() - HEADER_LEN) as u64;
    let start = out.len();
    layout::write_descriptor(&mut out, None, &descs).expect("descriptor");
    let header = layout::Header {
        version,
        flags: 0,
        rows: rows as u64,
        columns: descs.len() as u32,
        descriptor_len: (out.len() - start) as u32,
        body_len,
    };
    header.write((&mut out[..HEADER_LEN]).try_into().expect("header room"));
    out
}

fn le32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A dictionary-coded Utf8 column of `keys` (one byte each) over `entries`, declaring `data_len`.
fn dict_column(keys: &[u8], entries: &[&str], data_len: u64, validity: Option<u8>) -> RawColumn {
    use types::StreamKind as K;
    let mut ends = Vec::new();
    let mut data = Vec::new();
    for e in entries {
        data.extend_from_slice(e.as_bytes());
        ends.push(data.len() as u32);
    }
    let mut streams = vec![];
    if let Some(v) = validity {
        streams.push((K::Validity, vec![v], None));
    }
    streams.extend([
        (K::Values, keys.to_vec(), Some(1)),
        (K::DictOffsets, le32(&ends), Some(4)),
        (K::DictData, data, None),
    ]);
    (Field::new("s", DataType::Utf8, validity.is_some()), Some(layout::DictCoding { key_width: 1, data_len }), streams)
}

fn decode_err(bytes: &[u8]) -> FormatError {
    decode_segment(bytes).expect_err("refused")
}

#[test]
fn low_cardinality_variable_length_columns_are_dictionary_coded_and_read_back_plain() {
    let batch = table(2000, &[(13, 1), (14, 0), (19, 1), (21, 1), (26, 0), (20, 1), (15, 0)], 99);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let coded: Vec<bool> = layouts(&bytes).iter().map(|c| c.dict.is_some()).collect();
    // All-distinct strings and random 8-byte binary stay plain.
    assert_eq!(coded, [true, true, true, true, true, false, false]);
    let reader = SegmentReader::new(&bytes).expect("parses");
    for (i, expected) in batch.columns().iter().enumerate() {
        let got = reader.decode_column(i).expect("decodes");
        assert_eq!(got.data_type(), expected.data_type(), "logical type unchanged");
        assert_eq!(&got, expected);
        // The materialized data length is what the plain values of the non-null rows hold.
        let data = got.to_data();
        let width = if matches!(expected.data_type(), DataType::Utf8 | DataType::Binary) { 4 } else { 8 };
        let offsets = data.buffers()[0].as_slice();
        let last = offsets[rows_end(2000, width)..].iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        assert_eq!(reader.column_info(i).expect("in range").data_len, last, "column {i}");
    }
    // An all-null column is dictionary-coded with an empty dictionary, until its all-zero keys compress
    // so well that materializing them would pass the 256x bound: then it is stored plain.
    for (rows, coded) in [(100, true), (20_000, false)] {
        let nothing = table(rows, &[(13, 2)], 5);
        let bytes = encode_segment(&nothing, None).expect("encodes");
        assert_eq!(layouts(&bytes)[0].dict.is_some(), coded, "{rows} rows");
        assert_eq!(decode_segment(&bytes).expect("decodes").batch, nothing);
    }
}

/// Byte offset of the last end offset of a `rows`-row offsets buffer of `width`-byte entries.
fn rows_end(rows: usize, width: usize) -> usize {
    rows * width
}

#[test]
fn integer_streams_are_shuffled() {
    let batch = table(5000, &[(3, 0), (11, 0), (22, 1), (23, 0), (24, 0), (25, 0)], 3);
    let bytes = encode_segment(&batch, None).expect("encodes");
    let codecs: Vec<block::Codec> = layouts(&bytes).iter().map(|c| c.streams[0].blocks[0].codec).collect();
    assert_eq!(codecs[0], block::Codec::Raw, "random int64 is incompressible");
    for (i, codec) in codecs.iter().enumerate().skip(1) {
        assert!(matches!(codec, block::Codec::Shuffled { .. } | block::Codec::Lz4), "column {i}: {codec:?}");
    }
    assert_eq!(decode_segment(&bytes).expect("decodes").batch, batch);
}

#[test]
fn assembled_dictionary_segments_decode() {
    // The assembler itself: a valid dictionary-coded column with a null row decodes.
    let bytes = assemble(2, 4, vec![dict_column(&[1, 0, 0, 1], &["ab", "é"], 6, Some(0b1011))]);
    let got = decode_segment(&bytes).expect("decodes").batch;
    let expected: StringArray = vec![Some("é"), Some("ab"), None, Some("é")].into_iter().collect();
    assert_eq!(got.column(0).as_ref(), &expected as &dyn Array);
}

#[test]
fn hostile_dictionary_coded_columns_are_refused() {
    let refused = |bytes: Vec<u8>, what: &str| {
        let err = decode_err(&bytes);
        assert!(matches!(err, FormatError::Malformed { .. }), "{what}: {err}");
        // decode_column_into refuses too, whatever buffers it is given.
        if let Ok(reader) = SegmentReader::new(&bytes) {
            let info = reader.column_info(0).expect("in range");
            let mut ends = vec![0u8; reader.num_rows() * 4];
            let mut data = vec![0u8; info.data_len as usize];
            let mut validity = vec![0u8; 1];
            let out = ColumnOut {
                validity: Some(BitsOut { bytes: &mut validity, bit_offset: 0 }),
                values: ValuesOut::Var { ends: &mut ends, data: &mut data, base: 0 },
            };
            assert!(reader.decode_column_into(0, out).is_err(), "{what}: decode_column_into");
        }
    };
    // A key past the dictionary.
    refused(assemble(2, 4, vec![dict_column(&[1, 0, 2, 1], &["ab", "é"], 8, None)]), "key 2 of 2");
    // A null row with a key other than 0.
    refused(assemble(2, 4, vec![dict_column(&[1, 0, 1, 1], &["ab", "é"], 6, Some(0b1011))]), "null with key");
    // Declared data lengths that the keys do not add up to.
    refused(assemble(2, 4, vec![dict_column(&[1, 0, 0, 1], &["ab", "é"], 9, None)]), "data length too long");
    refused(assemble(2, 4, vec![dict_column(&[1, 0, 0, 1], &["ab", "é"], 7, None)]), "data length too short");
    // Dictionary offsets off a character boundary.
    let mut bad_dict = dict_column(&[0, 0, 0, 0], &["é"], 4, None);
    bad_dict.2[1].1 = le32(&[1]);
    refused(assemble(2, 4, vec![bad_dict]), "offset inside a character");
    // Dictionary offsets that decrease.
    let mut bad_dict = dict_column(&[0, 1, 0, 1], &["ab", "c"], 6, None);
    bad_dict.2[1].1 = le32(&[2, 1]);
    refused(assemble(2, 4, vec![bad_dict]), "decreasing offsets");
}

#[test]
fn dictionary_coded_descriptors_are_checked_before_anything_is_allocated() {
    // Materialized length beyond what the stored bytes can expand to (here 2^30 bytes from ~40).
    let err = decode_err(&assemble(2, 4, vec![dict_column(&[0, 0, 0, 0], &["ab"], 1 << 30, None)]));
    assert!(err.to_string().contains("256x"), "{err}");
    // Beyond 32-bit offsets.
    let err = decode_err(&assemble(2, 4, vec![dict_column(&[0, 0, 0, 0], &["ab"], 1 << 31, None)]));
    assert!(err.to_string().contains("overflow"), "{err}");
    // A key width other than 1, 2 or 4.
    let (field, _, streams) = dict_column(&[0, 0, 0, 0], &["ab"], 8, None);
    let err =
        decode_err(&assemble(2, 4, vec![(field, Some(layout::DictCoding { key_width: 3, data_len: 8 }), streams)]));
    assert!(err.to_string().contains("key width"), "{err}");
    // Keys stream of the wrong length for the rows.
    let err = decode_err(&assemble(2, 5, vec![dict_column(&[0, 0, 0, 0], &["ab"], 8, None)]));
    assert!(matches!(err, FormatError::Malformed { .. }), "{err}");
    // Dictionary coding on a fixed-width column.
    let int = (
        Field::new("i", DataType::Int32, false),
        Some(layout::DictCoding { key_width: 1, data_len: 0 }),
        vec![(types::StreamKind::Values, vec![0u8; 16], None)],
    );
    let err = decode_err(&assemble(2, 4, vec![int]));
    assert!(err.to_string().contains("only variable-length"), "{err}");
}

#[test]
fn format_1_segments_cannot_use_format_2_features() {
    // The dictionary flag in a format 1 segment.
    let err = decode_err(&assemble(1, 4, vec![dict_column(&[0, 0, 0, 0], &["ab"], 8, None)]));
    assert!(err.to_string().contains("unknown flags"), "{err}");
    // A shuffled block in a format 1 segment (small pseudo-random values: shuffling beats plain LZ4).
    let walk: Vec<u8> = (0..4000i64).flat_map(|i| (1000 + ((i * 2_654_435_761) >> 7) % 200).to_le_bytes()).collect();
    let int = (Field::new("i", DataType::Int64, false), None, vec![(types::StreamKind::Values, walk, Some(8))]);
    let v2 = assemble(2, 4000, vec![int.clone()]);
    assert!(matches!(layouts(&v2)[0].streams[0].blocks[0].codec, block::Codec::Shuffled { .. }));
    let err = decode_err(&assemble(1, 4000, vec![int]));
    assert!(err.to_string().contains("unknown block codec"), "{err}");
    // Format 4 is not read.
    let err = decode_err(&assemble(4, 0, vec![]));
    assert!(matches!(err, FormatError::UnsupportedVersion { found: 4, .. }), "{err}");
}

#[test]
fn format_2_segments_cannot_use_format_3_decimals() {
    // Prices in cents: the encoder stores them as decimal integers (format 3)...
    let cents: Vec<f64> = (0..4000).map(|i| (10_000 + (i * 7919) % 97) as f64 / 100.0).collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("px", DataType::Float64, false)])),
        vec![Arc::new(Float64Array::from(cents))],
    )
    .expect("batch");
    let mut bytes = encode_segment(&batch, None).expect("encodes");
    assert!(matches!(layouts(&bytes)[0].streams[0].blocks[0].codec, block::Codec::Decimal { .. }));
    assert_eq!(decode_segment(&bytes).expect("decodes").batch, batch);
    // ...which a segment claiming format 2 may not hold (the header re-checksummed to match).
    bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
    let sum = crate::le::checksum(&bytes[..32]).to_le_bytes();
    bytes[32..40].copy_from_slice(&sum);
    let err = decode_err(&bytes);
    assert!(err.to_string().contains("unknown block codec 3"), "{err}");
}

#[test]
fn a_row_count_whose_stream_length_overflows_is_refused() {
    // rows x 8 overflows u64: the values stream cannot match it (it used to go unchecked).
    let int = (Field::new("i", DataType::Int64, false), None, vec![(types::StreamKind::Values, vec![0u8; 16], None)]);
    let mut bytes = assemble(2, 2, vec![int]);
    let rows = (u64::MAX / 8 + 3).to_le_bytes();
    bytes[8..16].copy_from_slice(&rows);
    let sum = crate::le::checksum(&bytes[..32]).to_le_bytes();
    bytes[32..40].copy_from_slice(&sum);
    let err = decode_err(&bytes);
    assert!(err.to_string().contains("rows need"), "{err}");
}

#[test]
fn data_past_the_last_offset_is_refused() {
    use types::StreamKind as K;
    let plain = |data: &[u8]| -> RawColumn {
        (
            Field::new("s", DataType::Utf8, false),
            None,
            vec![(K::Offsets, le32(&[2, 3]), Some(4)), (K::Data, data.to_vec(), None)],
        )
    };
    assert!(decode_segment(&assemble(2, 2, vec![plain(b"abc")])).is_ok());
    let err = decode_err(&assemble(2, 2, vec![plain(b"abcd")]));
    assert!(err.to_string().contains("data has 4 bytes"), "{err}");
}

/// A one-column segment of sorted timestamps: `rows` values from `seed`, with runs of equal values.
fn sorted_stamps(rows: usize, seed: u64) -> (Vec<i64>, Vec<u8>) {
    let mut state = seed | 1;
    let mut t = 1_700_000_000_000_000_000i64;
    let stamps: Vec<i64> = (0..rows)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            t += (state % 4) as i64 * 1_000_000; // 0 (a repeated value) to 3 ms apart
            t
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false)]));
    let column = Arc::new(TimestampNanosecondArray::from(stamps.clone())) as ArrayRef;
    let batch = RecordBatch::try_new(schema, vec![column]).expect("batch");
    (stamps, encode_segment(&batch, None).expect("encodes"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn partition_point_matches_a_search_of_the_whole_column(
        rows in 1usize..120_000,
        seed in any::<u64>(),
        pick in any::<u32>(),
        offset in -2_000_000i64..2_000_000,
        inclusive in any::<bool>(),
        hint in any::<u32>(),
    ) {
        let (stamps, bytes) = sorted_stamps(rows, seed);
        let reader = SegmentReader::new(&bytes).expect("parses");
        // Values at, between, before and after the stored ones.
        let value = stamps[pick as usize % rows].saturating_add(offset);
        let want = stamps.partition_point(|&t| if inclusive { t <= value } else { t < value });
        let got = reader.partition_point_i64(0, value, inclusive, hint as usize % (rows + 10)).expect("searches");
        prop_assert_eq!(got, want);
    }
}

#[test]
fn partition_point_reads_few_blocks_and_still_verifies_them() {
    let (stamps, bytes) = sorted_stamps(100_000, 5);
    let reader = SegmentReader::new(&bytes).expect("parses");
    assert_eq!(layouts(&bytes)[0].streams[0].blocks.len(), 8);
    for v in [i64::MIN, stamps[0], stamps[54_321], stamps[99_999], i64::MAX] {
        for inclusive in [false, true] {
            let want = stamps.partition_point(|&t| if inclusive { t <= v } else { t < v });
            assert_eq!(reader.partition_point_i64(0, v, inclusive, 0).expect("searches"), want);
        }
    }
    // Damage to the block the search lands in is a checksum error; damage elsewhere is not read.
    let blocks = &layouts(&bytes)[0].streams[0].blocks;
    let first_stored = blocks[0].stored_len as usize;
    let mut damaged = bytes.clone();
    damaged[HEADER_LEN + first_stored / 2] ^= 1; // inside block 0
    let reader = SegmentReader::new(&damaged).expect("descriptor intact");
    let err = reader.partition_point_i64(0, stamps[10], false, 10).expect_err("block 0 is damaged");
    assert!(matches!(err, FormatError::ChecksumMismatch { .. }), "{err}");
    let late = stamps[95_000];
    let want = stamps.partition_point(|&t| t < late);
    assert_eq!(reader.partition_point_i64(0, late, false, 95_000).expect("block 0 not read"), want);
}

#[test]
fn partition_point_refuses_columns_it_cannot_search_and_survives_unsorted_ones() {
    let batch = table(1_000, &[(3, 1), (2, 0)], 3); // i64 with nulls; i32
    let bytes = encode_segment(&batch, None).expect("encodes");
    let reader = SegmentReader::new(&bytes).expect("parses");
    for col in 0..batch.num_columns() {
        let err = reader.partition_point_i64(col, 0, false, 0).expect_err("not searchable");
        assert!(matches!(err, FormatError::InvalidInput(_)), "{err}");
    }
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let shuffled: Vec<i64> = (0..50_000i64).map(|i| (i * 7919) % 50_000 - 25_000).collect();
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(shuffled)) as ArrayRef]).expect("batch");
    let bytes = encode_segment(&batch, None).expect("encodes");
    let reader = SegmentReader::new(&bytes).expect("parses");
    for v in [-30_000, 0, 10, 30_000] {
        let row = reader.partition_point_i64(0, v, true, 20_000).expect("an unspecified row, no error");
        assert!(row <= 50_000);
    }
}

#[test]
fn dictionary_keys_tell_apart_values_that_differ_only_in_trailing_zero_bytes_or_length() {
    // Values of up to 15 bytes are compared inline (zero-padded words plus the length); 16 bytes and
    // more through their entry. Each must keep its own key.
    let distinct = [
        "",
        "\0",
        "ab",
        "ab\0",
        "ab\0\0",
        "x",
        "xxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxx\0",
        "xxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxx",
    ];
    // Pseudo-random order: a periodic one compresses past the decoder's expansion bound and is stored plain.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let values: Vec<&str> = (0..4_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            distinct[(state % distinct.len() as u64) as usize]
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(values)) as ArrayRef]).expect("batch");
    let bytes = encode_segment(&batch, None).expect("encodes");
    assert!(layouts(&bytes)[0].dict.is_some(), "stored dictionary-coded");
    assert_eq!(decode_segment(&bytes).expect("decodes").batch, batch);
}

// ----- string columns handed over as codes (coded.rs, D28) -------------------------------------------

/// A coded string column and the plain column of the same strings (null rows holding no bytes): `rows`
/// keys into a dictionary of `entries` values of which `distinct` differ (so some values repeat under
/// two keys), nulls where `null_every` says, keys of type `key_type` (0..8).
fn coded_and_plain(
    rows: usize,
    entries: usize,
    distinct: usize,
    null_every: usize,
    key_type: u8,
    large: bool,
    seed: u64,
) -> (RecordBatch, RecordBatch) {
    use arrow_array::types::*;
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let values: Vec<String> = (0..entries).map(|e| format!("v{}{}", e % distinct.max(1), "x".repeat(e % 23))).collect();
    let values: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(e, v)| if e % 23 == 0 { format!("v{}", e % distinct.max(1)) } else { v.clone() })
        .collect();
    let codes: Vec<Option<usize>> = (0..rows)
        .map(|i| if null_every > 0 && i % null_every == 0 { None } else { Some(next() as usize % entries) })
        .collect();
    let plain: ArrayRef = if large {
        Arc::new(LargeStringArray::from(codes.iter().map(|c| c.map(|c| values[c].as_str())).collect::<Vec<_>>()))
    } else {
        Arc::new(StringArray::from(codes.iter().map(|c| c.map(|c| values[c].as_str())).collect::<Vec<_>>()))
    };
    let dictionary: ArrayRef = if large {
        Arc::new(LargeStringArray::from(values.clone()))
    } else {
        Arc::new(StringArray::from(values.clone()))
    };
    macro_rules! keyed {
        ($t:ty) => {
            Arc::new(
                DictionaryArray::<$t>::try_new(
                    PrimitiveArray::<$t>::from_iter(codes.iter().map(|c| c.map(|c| c.try_into().expect("fits")))),
                    Arc::clone(&dictionary),
                )
                .expect("keys inside the dictionary"),
            ) as ArrayRef
        };
    }
    let coded: ArrayRef = match key_type % 8 {
        0 => keyed!(Int16Type),
        1 => keyed!(Int32Type),
        2 => keyed!(Int64Type),
        3 => keyed!(UInt16Type),
        4 => keyed!(UInt32Type),
        5 => keyed!(UInt64Type),
        6 if entries <= 127 => keyed!(Int8Type),
        7 if entries <= 255 => keyed!(UInt8Type),
        _ => keyed!(Int32Type),
    };
    let mark = std::collections::HashMap::from([(CODES_METADATA_KEY.to_owned(), "utf8".to_owned())]);
    let coded_field = Field::new("s", coded.data_type().clone(), true).with_metadata(mark);
    let plain_field = Field::new("s", plain.data_type().clone(), true);
    (
        RecordBatch::try_new(Arc::new(Schema::new(vec![coded_field])), vec![coded]).expect("coded batch"),
        RecordBatch::try_new(Arc::new(Schema::new(vec![plain_field])), vec![plain]).expect("plain batch"),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The encoder's output for a column given as codes is byte for byte that of the same strings given
    /// plainly: every rule (distinct limit, the early probe, which form is smaller) decides the same way.
    #[test]
    fn coded_strings_encode_exactly_as_the_plain_strings(
        rows in prop_oneof![0usize..50, 1000usize..5000],
        entries in 1usize..3000,
        distinct in 1usize..3000,
        null_every in 0usize..5,
        key_type in any::<u8>(),
        large in any::<bool>(),
        seed in any::<u64>(),
        cut in any::<(u16, u16)>(),
    ) {
        let (coded, plain) = coded_and_plain(rows, entries, distinct, null_every, key_type, large, seed);
        prop_assert_eq!(encode_segment(&coded, None).expect("encodes"), encode_segment(&plain, None).expect("encodes"));
        let offset = if rows == 0 { 0 } else { cut.0 as usize % rows };
        let len = cut.1 as usize % (rows - offset + 1);
        let (coded, plain) = (coded.slice(offset, len), plain.slice(offset, len));
        let bytes = encode_segment(&coded, None).expect("encodes");
        prop_assert_eq!(&bytes, &encode_segment(&plain, None).expect("encodes"));
        prop_assert_eq!(decode_segment(&bytes).expect("decodes").batch, plain);
    }
}

#[test]
fn coded_strings_of_few_values_are_stored_dictionary_coded() {
    let (coded, plain) = coded_and_plain(10_000, 600, 500, 7, 1, false, 9);
    let bytes = encode_segment(&coded, None).expect("encodes");
    assert_eq!(bytes, encode_segment(&plain, None).expect("encodes"));
    let c = &layouts(&bytes)[0];
    assert!(c.dict.is_some(), "500 values in 10,000 rows are stored as keys and a dictionary");
    assert_eq!(c.field.data_type(), &DataType::Utf8);
    assert!(c.field.metadata().is_empty(), "the mark is not stored");
    // Nearly unique values: the early probe decides for the plain form, as it does for plain input;
    // and a dictionary far larger than the rows (materialized, not recoded).
    for (rows, entries) in [(30_000, 100_000), (2_000, 100_000)] {
        let (coded, plain) = coded_and_plain(rows, entries, entries, 0, 4, false, 11);
        let bytes = encode_segment(&coded, None).expect("encodes");
        assert_eq!(bytes, encode_segment(&plain, None).expect("encodes"));
        assert!(layouts(&bytes)[0].dict.is_none());
    }
}

#[test]
fn coded_strings_with_a_key_outside_the_dictionary_are_refused() {
    // Built without the dictionary array's own check, as an FFI import may hand it over.
    let keys = Int32Array::from(vec![0, 1, 5]);
    let dictionary = StringArray::from(vec!["a", "b"]);
    let data =
        arrow_data::ArrayData::builder(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)))
            .len(3)
            .add_buffer(keys.values().inner().clone())
            .add_child_data(dictionary.to_data());
    // SAFETY (test): deliberately invalid keys, to check the encoder's own bound check.
    let array = make_array(unsafe { data.build_unchecked() });
    let mark = std::collections::HashMap::from([(CODES_METADATA_KEY.to_owned(), "utf8".to_owned())]);
    let field = Field::new("s", array.data_type().clone(), true).with_metadata(mark);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array]).expect("batch");
    let err = encode_segment(&batch, None).expect_err("key 5 of 2 values");
    assert!(matches!(&err, FormatError::InvalidInput(m) if m.contains("row 2") && m.contains("\"s\"")), "{err}");
}

#[test]
fn an_unmarked_string_dictionary_stays_a_dictionary_column() {
    let (coded, _) = coded_and_plain(100, 10, 10, 0, 1, false, 3);
    let unmarked = Field::new("s", coded.column(0).data_type().clone(), true);
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(vec![unmarked])), vec![Arc::clone(coded.column(0))]).expect("batch");
    let decoded = decode_segment(&encode_segment(&batch, None).expect("encodes")).expect("decodes");
    assert_eq!(decoded.batch, batch, "a categorical round-trips as one");
}
