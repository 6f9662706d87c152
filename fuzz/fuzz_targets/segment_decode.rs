//! Segment decoding never panics or over-allocates on hostile bytes; whatever decodes re-encodes to a
//! segment that decodes to the same values.
#![no_main]

use floe_formats::{SegmentReader, decode_segment, encode_segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = SegmentReader::new(data) else { return };
    for i in 0..reader.num_columns() {
        let _ = reader.column_info(i);
        let _ = reader.decode_column(i);
    }
    let _ = reader.metadata();
    if let Ok(segment) = decode_segment(data) {
        let again = encode_segment(&segment.batch, segment.metadata.as_deref()).expect("decoded data re-encodes");
        assert_eq!(decode_segment(&again).expect("re-encoded segment decodes"), segment);
    }
});
