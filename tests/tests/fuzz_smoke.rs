//! Fuzz smoke test: every cargo-fuzz target in `fuzz/fuzz_targets/` runs here, in the ordinary test build,
//! over seeds taken from a real store (every object, reference and key an engine session wrote) and
//! seeded random mutations of them. It checks each target's properties without cargo-fuzz and keeps the
//! targets compiling; `scripts/fuzz.sh run TARGET SECS` does the coverage-guided fuzzing.
//!
//! Outside fuzz builds checksums are enforced, so most mutations stop at the first checksum: this is a
//! smoke test, not a substitute for the fuzzer. `FLOE_FUZZ_SMOKE_MS` sets the time per target (default
//! 2,000 ms).

#[path = "../../fuzz/fuzz_targets/engine_ops.rs"]
mod engine_ops;
#[path = "../../fuzz/fuzz_targets/key_binary.rs"]
mod key_binary;
#[path = "../../fuzz/fuzz_targets/key_object_name.rs"]
mod key_object_name;
#[path = "../../fuzz/fuzz_targets/record_decode.rs"]
mod record_decode;
#[path = "../../fuzz/fuzz_targets/segment_decode.rs"]
mod segment_decode;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_backends::{ListScope, MemoryStorage, Storage};
use floe_engine::{Library, PipelineOptions};
use floe_formats::{Key, KeyType};
use floe_tests::stress::Rng;
use floe_tests::suite::small_options;
use floe_tests::{rows, table};

/// Seeds from a real store: `(segments, records, binary keys, object names)`.
struct Seeds {
    segments: Vec<Vec<u8>>,
    records: Vec<Vec<u8>>,
    keys: Vec<Vec<u8>>,
    names: Vec<Vec<u8>>,
}

fn seeds() -> Seeds {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let lib = Library::new("smoke", Arc::clone(&storage), small_options(), PipelineOptions::default());
    lib.write("s", &table(&rows(0..20)), Some(b"meta")).expect("write");
    lib.append("s", &table(&rows(20..30)), None).expect("append");
    lib.update("s", &table(&rows([3, 4])), Some((2, 5)), None).expect("update");
    lib.write("t é", &table(&rows(0..3)), None).expect("write");
    lib.snapshot("snap", None, None, &BTreeMap::new()).expect("snapshot");
    lib.append("s", &table(&rows(30..31)), None).expect("append");
    let mut s = Seeds { segments: Vec::new(), records: Vec::new(), keys: Vec::new(), names: Vec::new() };
    for key_type in KeyType::ALL {
        for key in storage.list_all(*key_type, ListScope::All).expect("list") {
            s.keys.push(key.to_binary());
            s.names.push(key.to_object_name("smoke").expect("valid name").into_bytes());
            match &key {
                Key::Atom(k) => {
                    let bytes = storage.get(k).expect("listed object").to_vec();
                    match k.key_type() {
                        KeyType::TableData | KeyType::TableIndex => s.segments.push(bytes),
                        _ => s.records.push(bytes),
                    }
                }
                Key::Ref(r) => s.records.push(storage.read_ref(r).expect("read").expect("listed").bytes.to_vec()),
            }
        }
    }
    for golden in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../formats/tests/golden")).expect("golden") {
        let path = golden.expect("entry").path();
        if path.extension().is_some_and(|e| e == "seg") {
            s.segments.push(std::fs::read(&path).expect("golden segment"));
        }
    }
    assert!(!s.segments.is_empty() && !s.records.is_empty() && !s.keys.is_empty());
    s
}

/// A random variation of one of `seeds`: bit flips, a truncation, an inserted or deleted run, a splice
/// with another seed, or plain random bytes.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut Rng| seeds[rng.below(seeds.len() as u64) as usize].clone();
    let mut v = pick(rng);
    match rng.below(6) {
        0 => return v,
        1 => {
            for _ in 0..=rng.below(4) {
                if !v.is_empty() {
                    let at = rng.below(v.len() as u64) as usize;
                    v[at] ^= 1 << rng.below(8);
                }
            }
        }
        2 => v.truncate(rng.below(v.len() as u64 + 1) as usize),
        3 => {
            let at = rng.below(v.len() as u64 + 1) as usize;
            let run: Vec<u8> = (0..rng.below(16)).map(|_| rng.below(256) as u8).collect();
            v.splice(at..at, run);
        }
        4 => {
            let other = pick(rng);
            let cut = rng.below(v.len() as u64 + 1) as usize;
            let from = rng.below(other.len() as u64 + 1) as usize;
            v.truncate(cut);
            v.extend_from_slice(&other[from..]);
        }
        _ => v = (0..rng.below(256)).map(|_| rng.below(256) as u8).collect(),
    }
    v
}

fn budget() -> Duration {
    let ms = std::env::var("FLOE_FUZZ_SMOKE_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    Duration::from_millis(ms)
}

/// Runs `target` on every seed, then on mutations until the time budget is spent; returns the count.
fn smoke(name: &str, seeds: &[Vec<u8>], target: fn(&[u8])) -> usize {
    let mut rng = Rng::new(0x5eed ^ name.len() as u64);
    for s in seeds {
        target(s);
    }
    let start = Instant::now();
    let mut n = seeds.len();
    while start.elapsed() < budget() {
        target(&mutate(&mut rng, seeds));
        n += 1;
    }
    println!("[fuzz smoke] {name}: {n} inputs");
    n
}

#[test]
fn decoder_targets_hold_on_seeds_and_mutations() {
    let s = seeds();
    let keys_and_names: Vec<Vec<u8>> = s.keys.iter().chain(&s.names).cloned().collect();
    assert!(smoke("key_binary", &keys_and_names, key_binary::run) > 0);
    assert!(smoke("key_object_name", &keys_and_names, key_object_name::run) > 0);
    let all: Vec<Vec<u8>> = s.records.iter().chain(&s.segments).cloned().collect();
    assert!(smoke("record_decode", &all, record_decode::run) > 0);
    assert!(smoke("segment_decode", &s.segments, segment_decode::run) > 0);
}

#[test]
fn engine_ops_target_holds_on_random_operation_sequences() {
    // Inputs are a fault plan and operations, any bytes decode: random bytes of a few lengths.
    let mut rng = Rng::new(11);
    let seeds: Vec<Vec<u8>> =
        (0..32).map(|i| (0..(8 + i * 4)).map(|_| rng.below(256) as u8).collect::<Vec<u8>>()).collect();
    assert!(smoke("engine_ops", &seeds, engine_ops::run) > 0);
}
