//! Binary key decoding never panics, and whatever decodes re-encodes to the same bytes.
// Built by cargo-fuzz (cfg `fuzzing`) as a libFuzzer target, and included as a module by the test
// suite's fuzz smoke test (tests/tests/fuzz_smoke.rs), which calls `run` directly.
#![cfg_attr(fuzzing, no_main)]

use floe_formats::Key;

/// One input: checks the target's properties on `data` (panics on a violation).
pub fn run(data: &[u8]) {
    if let Ok(key) = Key::from_binary(data) {
        assert_eq!(key.to_binary(), data, "binary keys have one encoding");
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
