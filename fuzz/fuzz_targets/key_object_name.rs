//! Object-name parsing never panics, and whatever parses prints back to the same name.
#![no_main]

use floe_formats::Key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    if let Ok((library, key)) = Key::from_object_name(name) {
        assert_eq!(key.to_object_name(&library).expect("parsed names are valid"), name, "one spelling per key");
    }
});
