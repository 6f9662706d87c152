//! Segment decoding never panics or over-allocates on hostile bytes; whatever decodes re-encodes to a
//! segment that decodes to the same values; decoding into caller buffers (sized by `column_info`, as the
//! read pipeline does) agrees with decoding to Arrow, and so do row windows and the keys and
//! dictionary of dictionary-coded columns; a reader made from a layout parsed earlier accepts the same
//! bytes; the block search of a sorted column agrees with a search of the decoded column; verifying
//! every block (`verify_others`, what `Library::verify` runs) finds any checksum a decode finds wrong.
// Built by cargo-fuzz (cfg `fuzzing`) as a libFuzzer target, and included as a module by the test
// suite's fuzz smoke test (tests/tests/fuzz_smoke.rs), which calls `run` directly.
#![cfg_attr(fuzzing, no_main)]

use arrow_array::Array;
use arrow_schema::DataType;
use floe_formats::segment::{BitsOut, ColumnOut, ValuesOut};
use floe_formats::{FormatError, SegmentReader, decode_segment, encode_segment};

/// One input: checks the target's properties on `data` (panics on a violation).
pub fn run(data: &[u8]) {
    let Ok(parsed) = SegmentReader::new(data) else { return };
    // A second pass's reader over the same bytes (as the read pipeline makes) behaves the same.
    let reader = SegmentReader::with_layout(data, &parsed.layout()).expect("the bytes it was parsed from");
    let verified = reader.verify_others(&[]);
    for i in 0..reader.num_columns() {
        let _ = reader.column_info(i);
        if let Err(e @ FormatError::ChecksumMismatch { .. }) = reader.decode_column(i) {
            assert!(verified.is_err(), "column {i} decodes with {e}, yet every block verified");
        }
        decode_into(&reader, i);
        windows_and_codes(&reader, i);
        search(&reader, i);
    }
    let _ = reader.metadata();
    if let Ok(segment) = decode_segment(data) {
        let again = encode_segment(&segment.batch, segment.metadata.as_deref()).expect("decoded data re-encodes");
        assert_eq!(decode_segment(&again).expect("re-encoded segment decodes"), segment);
    }
}

/// Decodes column `i` into fresh buffers, at bit offset 3 and data base 7 so that offsets are rebased.
fn decode_into(reader: &SegmentReader<'_>, i: usize) {
    let Ok(info) = reader.column_info(i) else { return };
    let rows = reader.num_rows();
    let mut validity = vec![0u8; rows.div_ceil(8) + 1];
    let validity_out = Some(BitsOut { bytes: &mut validity, bit_offset: 3 });
    let offset_width = match info.field.data_type() {
        DataType::Utf8 | DataType::Binary => 4,
        DataType::LargeUtf8 | DataType::LargeBinary => 8,
        DataType::Boolean => {
            let mut bits = vec![0u8; rows.div_ceil(8) + 1];
            let values = ValuesOut::Bits(BitsOut { bytes: &mut bits, bit_offset: 3 });
            let _ = reader.decode_column_into(i, ColumnOut { validity: validity_out, values });
            return;
        }
        DataType::Dictionary(key, _) => key.primitive_width().unwrap_or(1),
        other => other.primitive_width().unwrap_or(1),
    };
    if !matches!(
        info.field.data_type(),
        DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary
    ) {
        let mut values = vec![0u8; rows * offset_width];
        let _ =
            reader.decode_column_into(i, ColumnOut { validity: validity_out, values: ValuesOut::Fixed(&mut values) });
        return;
    }
    let mut ends = vec![0u8; rows * offset_width];
    let mut data = vec![0u8; info.data_len as usize];
    let values = ValuesOut::Var { ends: &mut ends, data: &mut data, base: 7 };
    let into = reader.decode_column_into(i, ColumnOut { validity: validity_out, values });
    let Ok(array) = reader.decode_column(i) else { return };
    into.expect("a column that decodes to Arrow decodes into buffers");
    // Same bytes for every non-null row.
    let arrow = array.to_data();
    let read = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w[..offset_width].copy_from_slice(&b[at * offset_width..(at + 1) * offset_width]);
        u64::from_le_bytes(w) as usize
    };
    let (offsets, bytes) = (arrow.buffers()[0].as_slice(), arrow.buffers()[1].as_slice());
    let mut start = 0;
    for row in 0..rows {
        let end = read(&ends, row) - 7;
        if array.is_valid(row) {
            assert_eq!(data[start..end], bytes[read(offsets, row)..read(offsets, row + 1)], "row {row}");
        }
        start = end;
    }
}

/// Rows `rows / 3 .. rows - rows / 4` of column `i` through `decode_column_rows_into` (fixed width and
/// booleans) and `decode_codes_into` (dictionary-coded): where the whole column decodes, each must
/// decode too and agree with it row by row.
fn windows_and_codes(reader: &SegmentReader<'_>, i: usize) {
    let Ok(info) = reader.column_info(i) else { return };
    let rows = reader.num_rows();
    let window = rows / 3..rows - rows / 4;
    let n = window.len();
    let whole = reader.decode_column(i);
    // Any column's rows as an array: where the whole column decodes, they decode and equal its slice.
    let rows_array = reader.decode_column_rows(i, window.clone());
    if let Ok(whole) = &whole {
        let got = rows_array.expect("rows of a column that decodes whole decode");
        assert_eq!(got.to_data(), whole.slice(window.start, n).to_data(), "rows {window:?} of column {i}");
    }
    if info.dictionary_coded {
        let mut keys = vec![0u32; n];
        let mut validity = vec![0u8; n.div_ceil(8)];
        let codes = reader.decode_codes_into(
            i,
            window.clone(),
            &mut keys,
            Some(BitsOut { bytes: &mut validity, bit_offset: 0 }),
        );
        let dictionary = reader.decode_coded_dictionary(i);
        let (Ok(whole), Ok(dictionary)) = (whole, dictionary) else { return };
        codes.expect("keys of a column that decodes whole decode");
        for (r, &k) in keys.iter().enumerate() {
            let valid = bit(&validity, r);
            assert_eq!(valid, whole.is_valid(window.start + r), "row {}", window.start + r);
            if valid {
                assert_eq!(value(&dictionary, k as usize), value(&whole, window.start + r), "row {}", window.start + r);
            }
        }
        return;
    }
    let width = match info.field.data_type() {
        DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary => return,
        DataType::Boolean => 0,
        DataType::Dictionary(key, _) => key.primitive_width().unwrap_or(1),
        other => other.primitive_width().unwrap_or(1),
    };
    let mut validity = vec![0u8; n.div_ceil(8)];
    let mut values = vec![0u8; if width == 0 { n.div_ceil(8) } else { n * width }];
    let out = ColumnOut {
        validity: Some(BitsOut { bytes: &mut validity, bit_offset: 0 }),
        values: if width == 0 {
            ValuesOut::Bits(BitsOut { bytes: &mut values, bit_offset: 0 })
        } else {
            ValuesOut::Fixed(&mut values)
        },
    };
    let windowed = reader.decode_column_rows_into(i, window.clone(), out);
    let Ok(whole) = whole else { return };
    windowed.expect("a window of a column that decodes whole decodes");
    let data = whole.to_data();
    for r in 0..n {
        let row = window.start + r;
        assert_eq!(bit(&validity, r), whole.is_valid(row), "row {row} validity");
        if !whole.is_valid(row) {
            continue;
        }
        let stored = data.buffers()[0].as_slice();
        if width == 0 {
            let expected = bit(stored, data.offset() + row);
            assert_eq!(bit(&values, r), expected, "row {row}");
        } else {
            let at = (data.offset() + row) * width;
            assert_eq!(values[r * width..(r + 1) * width], stored[at..at + width], "row {row}");
        }
    }
}

/// Bit `i` of an Arrow bitmap (least significant first).
fn bit(bytes: &[u8], i: usize) -> bool {
    bytes[i / 8] >> (i % 8) & 1 == 1
}

/// The bytes of value `i` of a string or binary array.
fn value(array: &arrow_array::ArrayRef, i: usize) -> Vec<u8> {
    use arrow_array::cast::AsArray;
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i).as_bytes().to_vec(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).as_bytes().to_vec(),
        DataType::Binary => array.as_binary::<i32>().value(i).to_vec(),
        _ => array.as_binary::<i64>().value(i).to_vec(),
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// `partition_point_i64` never panics, returns a row in range, and on a column that decodes sorted
/// agrees with `partition_point` over the decoded values.
fn search(reader: &SegmentReader<'_>, i: usize) {
    let rows = reader.num_rows();
    let decoded = reader.decode_column(i).ok();
    let values: Option<Vec<i64>> = decoded.as_ref().and_then(|a| {
        if a.null_count() != 0 || a.data_type().primitive_width() != Some(8) {
            return None;
        }
        let data = a.to_data();
        let raw = &data.buffers()[0].as_slice()[a.offset() * 8..(a.offset() + a.len()) * 8];
        Some(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    });
    let probes = values.as_ref().map_or_else(
        || vec![0, -1, i64::MAX],
        |v| v.iter().step_by((v.len() / 4).max(1)).flat_map(|&x| [x, x.wrapping_add(1)]).collect(),
    );
    for (k, &value) in probes.iter().enumerate() {
        for inclusive in [false, true] {
            let Ok(row) = reader.partition_point_i64(i, value, inclusive, k.wrapping_mul(7919) % (rows + 1)) else {
                continue;
            };
            assert!(row <= rows, "a row past the column");
            if let Some(v) = values.as_ref().filter(|v| v.is_sorted()) {
                let want = v.partition_point(|&t| if inclusive { t <= value } else { t < value });
                assert_eq!(row, want, "block search of a sorted column");
            }
        }
    }
}
