//! Record decoding (head, version record and its stamp alone, snapshot, library config, table
//! descriptor) never panics on hostile bytes, whatever decodes re-encodes to bytes that decode to the
//! same record, and a version record's stamp agrees with the whole record. (Byte equality
//! is not asserted: fuzz builds accept any checksum, so the input's checksum field may differ.)
// Built by cargo-fuzz (cfg `fuzzing`) as a libFuzzer target, and included as a module by the test
// suite's fuzz smoke test (tests/tests/fuzz_smoke.rs), which calls `run` directly.
#![cfg_attr(fuzzing, no_main)]

use floe_formats::record::{Head, LibraryConfigRecord, SnapshotRecord, TableDescriptor, VersionRecord};

/// One input: checks the target's properties on `data` (panics on a violation).
pub fn run(data: &[u8]) {
    let stamp = VersionRecord::decode_stamp(data);
    if let Ok(r) = VersionRecord::decode(data) {
        assert_eq!(VersionRecord::decode(&r.encode()).expect("re-encoded record decodes"), r);
        let stamp = stamp.expect("a record that decodes has a stamp");
        assert_eq!((stamp.version, stamp.timestamp_ns), (r.version, r.timestamp_ns));
    }
    if let Ok(h) = Head::decode(data) {
        assert_eq!(Head::decode(&h.encode()).expect("re-encoded record decodes"), h);
    }
    if let Ok(s) = SnapshotRecord::decode(data) {
        assert_eq!(SnapshotRecord::decode(&s.encode()).expect("re-encoded record decodes"), s);
    }
    if let Ok(c) = LibraryConfigRecord::decode(data) {
        assert_eq!(LibraryConfigRecord::decode(&c.encode()).expect("re-encoded record decodes"), c);
    }
    if let Ok(d) = TableDescriptor::decode(data) {
        assert_eq!(TableDescriptor::decode(&d.encode()).expect("re-encoded record decodes"), d);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
