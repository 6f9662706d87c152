//! Segment decoding never panics or over-allocates on hostile bytes; whatever decodes re-encodes to a
//! segment that decodes to the same values; decoding into caller buffers (sized by `column_info`, as the
//! read pipeline does) agrees with decoding to Arrow.
// Built by cargo-fuzz (cfg `fuzzing`) as a libFuzzer target, and included as a module by the test
// suite's fuzz smoke test (tests/tests/fuzz_smoke.rs), which calls `run` directly.
#![cfg_attr(fuzzing, no_main)]

use arrow_array::Array;
use arrow_schema::DataType;
use floe_formats::segment::{BitsOut, ColumnOut, ValuesOut};
use floe_formats::{SegmentReader, decode_segment, encode_segment};

/// One input: checks the target's properties on `data` (panics on a violation).
pub fn run(data: &[u8]) {
    let Ok(reader) = SegmentReader::new(data) else { return };
    for i in 0..reader.num_columns() {
        let _ = reader.column_info(i);
        let _ = reader.decode_column(i);
        decode_into(&reader, i);
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

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
