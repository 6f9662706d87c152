//! Binary key decoding never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use floe_formats::Key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = Key::from_binary(data) {
        assert_eq!(key.to_binary(), data, "binary keys have one encoding");
    }
});
