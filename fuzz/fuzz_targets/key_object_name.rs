//! Object-name parsing never panics, and whatever parses prints back to the same name.
// Built by cargo-fuzz (cfg `fuzzing`) as a libFuzzer target, and included as a module by the test
// suite's fuzz smoke test (tests/tests/fuzz_smoke.rs), which calls `run` directly.
#![cfg_attr(fuzzing, no_main)]

use floe_formats::Key;

/// One input: checks the target's properties on `data` (panics on a violation).
pub fn run(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else { return };
    if let Ok((library, key)) = Key::from_object_name(name) {
        assert_eq!(key.to_object_name(&library).expect("parsed names are valid"), name, "one spelling per key");
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
