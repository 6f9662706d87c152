//! xxh3-64, the checksum of every persisted Floe object and the content hash of segments.
//!
//! Two crates compute the same function here, each where it is faster (design/decisions.md D46):
//! `twox-hash` for inputs longer than xxh3's 240-byte short path, because it picks AVX2 at run time
//! while `xxhash-rust` picks its vector width when compiled (SSE2 for a portable build), and
//! `xxhash-rust` for short inputs, where its code is quicker. A block of a few KiB or more hashes at
//! about twice the speed (`cargo run --release` of a scratch bench: 12 KiB 26 -> 58 GB/s, 1 MiB 31 -> 56
//! GB/s, hot in cache). The value never depends on the choice: tests compare the two at every length
//! around the boundaries.

use core::hash::Hasher;

/// Longest input xxh3 hashes without its striped long loop; above it the vector code runs.
const SHORT_INPUT: usize = 240;

/// xxh3-64 (seed 0) of `bytes`.
pub fn checksum(bytes: &[u8]) -> u64 {
    if bytes.len() > SHORT_INPUT { twox_hash::XxHash3_64::oneshot(bytes) } else { xxhash_rust::xxh3::xxh3_64(bytes) }
}

/// xxh3-64 (seed 0) of `parts` joined, without joining them.
pub fn checksum_of_parts(parts: &[&[u8]]) -> u64 {
    match parts {
        [] => checksum(&[]),
        [one] => checksum(one),
        _ => {
            let total: usize = parts.iter().map(|p| p.len()).sum();
            if total > SHORT_INPUT {
                let mut h = twox_hash::XxHash3_64::new();
                parts.iter().for_each(|p| h.write(p));
                h.finish()
            } else {
                let mut h = xxhash_rust::xxh3::Xxh3::new();
                parts.iter().for_each(|p| h.update(p));
                h.digest()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect()
    }

    #[test]
    fn both_crates_agree_at_every_length_near_the_boundaries() {
        let data = bytes(20_000);
        let lengths = (0..600).chain(1_000..1_100).chain([4_096, 12_288, 16_383, 16_384, 16_385, 20_000]);
        for len in lengths {
            let d = &data[..len];
            let reference = xxhash_rust::xxh3::xxh3_64(d);
            assert_eq!(checksum(d), reference, "length {len}");
            assert_eq!(twox_hash::XxHash3_64::oneshot(d), reference, "length {len}");
        }
    }

    #[test]
    fn known_values() {
        // xxh3-64 of the empty input and of "abc" (the reference implementation's values).
        assert_eq!(checksum(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(checksum(b"abc"), 0x78af_5f94_892f_3950);
    }

    proptest! {
        #[test]
        fn parts_hash_as_if_joined(data in proptest::collection::vec(any::<u8>(), 0..3_000), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4)) {
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            at.sort_unstable();
            let mut parts = Vec::new();
            let mut from = 0;
            for &to in &at {
                parts.push(&data[from..to]);
                from = to;
            }
            parts.push(&data[from..]);
            prop_assert_eq!(checksum_of_parts(&parts), xxhash_rust::xxh3::xxh3_64(&data));
            prop_assert_eq!(checksum(&data), xxhash_rust::xxh3::xxh3_64(&data));
        }
    }
}
