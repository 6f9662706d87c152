//! Segment decoding never panics or over-allocates on hostile bytes; whatever decodes re-encodes to a
//! segment that decodes to the same values.
// Built by cargo-fuzz (cfg `fuzzing`) as a libFuzzer target, and included as a module by the test
// suite's fuzz smoke test (tests/tests/fuzz_smoke.rs), which calls `run` directly.
#![cfg_attr(fuzzing, no_main)]

use floe_formats::{SegmentReader, decode_segment, encode_segment};

/// One input: checks the target's properties on `data` (panics on a violation).
pub fn run(data: &[u8]) {
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
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
