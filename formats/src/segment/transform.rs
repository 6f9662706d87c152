//! Integer block transforms applied before LZ4 (segment format 2): delta or zigzag delta, then a byte
//! shuffle that stores byte 0 of every value, then byte 1 of every value, and so on, so that the
//! high bytes of small numbers form constant planes the block codec drops and runs LZ4 can shorten
//! (see `design/format.md` 2.5).
//!
//! Every function works on `W`-byte little-endian unsigned integers (`W` in 1, 2, 4, 8) held in a
//! `u64`, with arithmetic modulo 2^(8W).

/// How the integers of a block are rewritten before the byte shuffle. Persisted in the block codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Transform {
    /// The values as they are.
    None = 0,
    /// The first value is kept aside; then `v[i] - v[i-1]` (wrapping) for every later value: small for
    /// sorted values with small gaps.
    Delta = 1,
    /// The differences of `Delta`, read as signed and zigzag-mapped (0, -1, 1, -2, .. to 0, 1, 2,
    /// 3, ..): small for any series with small steps, such as random walks.
    ZigZag = 2,
}

impl Transform {
    pub(crate) const ALL: [Transform; 3] = [Transform::None, Transform::Delta, Transform::ZigZag];

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Whether the first value is kept aside (and `n - 1` differences shuffled).
    pub(crate) fn keeps_first(self) -> bool {
        self != Transform::None
    }

    /// How many values the shuffled planes hold for a block of `n` values.
    pub(crate) fn shuffled_count(self, n: usize) -> usize {
        if self.keeps_first() { n.saturating_sub(1) } else { n }
    }
}

/// What [`forward`] learnt about the transformed values: the first value (kept aside by delta
/// transforms), and the OR and AND of all shuffled values, whose bytes tell which byte planes are
/// constant (a plane is constant where OR and AND agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlaneStats {
    pub(crate) first: u64,
    pub(crate) or: u64,
    pub(crate) and: u64,
}

impl PlaneStats {
    /// Bit `j` set: byte plane `j` holds one value throughout (`constant_byte(j)`).
    pub(crate) fn constant_planes(&self, width: usize) -> u8 {
        let differ = self.or ^ self.and;
        (0..width).filter(|&j| (differ >> (8 * j)) & 0xff == 0).fold(0u8, |m, j| m | 1 << j)
    }

    pub(crate) fn constant_byte(&self, plane: usize) -> u8 {
        (self.or >> (8 * plane)) as u8
    }
}

const fn mask<const W: usize>() -> u64 {
    if W == 8 { u64::MAX } else { (1u64 << (8 * W)) - 1 }
}

#[inline(always)]
fn load<const W: usize>(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..W].copy_from_slice(&bytes[..W]);
    u64::from_le_bytes(word)
}

/// Maps the `W`-byte two's-complement value `d` to its zigzag code.
#[inline(always)]
fn zigzag<const W: usize>(d: u64) -> u64 {
    let shift = 64 - 8 * W as u32;
    let signed = ((d << shift) as i64) >> shift; // sign-extend from W bytes
    ((signed << 1) ^ (signed >> 63)) as u64 & mask::<W>()
}

#[inline(always)]
fn unzigzag<const W: usize>(z: u64) -> u64 {
    ((z >> 1) ^ (z & 1).wrapping_neg()) & mask::<W>()
}

#[inline(always)]
fn forward_one<const W: usize>(t: Transform, v: u64, prev: u64) -> u64 {
    match t {
        Transform::None => v,
        Transform::Delta => v.wrapping_sub(prev) & mask::<W>(),
        Transform::ZigZag => zigzag::<W>(v.wrapping_sub(prev) & mask::<W>()),
    }
}

/// Bytes needed to write `x` without its leading zero bytes (0 for 0).
#[inline(always)]
fn significant_bytes(x: u64) -> u64 {
    u64::from(64 - x.leading_zeros()).div_ceil(8)
}

fn costs_w<const W: usize>(raw: &[u8]) -> [u64; 3] {
    let (mut none, mut delta, mut zz) = (0u64, 0u64, 0u64);
    let mut prev = if raw.len() >= W { load::<W>(raw) } else { 0 };
    for chunk in raw.chunks_exact(W) {
        // The first difference is 0: delta transforms keep the first value aside.
        let v = load::<W>(chunk);
        let d = v.wrapping_sub(prev) & mask::<W>();
        none += significant_bytes(v);
        delta += significant_bytes(d);
        zz += significant_bytes(zigzag::<W>(d));
        prev = v;
    }
    [none, delta, zz]
}

/// The transform whose output has the fewest significant bytes in total over `raw` (whole `width`-byte
/// values): a cheap, exact stand-in for "which one the byte shuffle and LZ4 will squeeze most". Ties go
/// to the simpler transform.
pub(crate) fn choose(raw: &[u8], width: usize) -> Transform {
    let costs = match width {
        1 => costs_w::<1>(raw),
        2 => costs_w::<2>(raw),
        4 => costs_w::<4>(raw),
        _ => costs_w::<8>(raw),
    };
    let mut best = 0;
    for i in 1..3 {
        if costs[i] < costs[best] {
            best = i;
        }
    }
    Transform::ALL[best]
}

/// Without SSE2, values are shuffled eight at a time: eight values make one little-endian `u64` word per
/// byte plane.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    allow(dead_code, reason = "the fallback of other CPUs, tested here")
)]
const LANES: usize = 8;

/// Transposes the byte matrix held in `W` words, within lanes of `W` bytes: with 8 words, byte `c` of
/// word `r` trades places with byte `r` of word `c`; with fewer, each `W`-byte lane of the words is a
/// `W x W` matrix transposed the same way. Recursive block swaps with shifts and masks (a SWAR 8x8
/// transpose); its own inverse.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    allow(dead_code, reason = "the fallback of other CPUs, tested here")
)]
#[inline(always)]
fn transpose<const W: usize>(m: &mut [u64; W]) {
    let mut half = W / 2;
    while half >= 1 {
        let shift = 8 * half as u32;
        let mask = match half {
            4 => 0x0000_0000_ffff_ffff,
            2 => 0x0000_ffff_0000_ffff,
            _ => 0x00ff_00ff_00ff_00ff,
        };
        for r in 0..W {
            if r & half == 0 {
                let t = ((m[r] >> shift) ^ m[r + half]) & mask;
                m[r + half] ^= t;
                m[r] ^= t << shift;
            }
        }
        half /= 2;
    }
}

/// The words that eight `W`-byte values `d` occupy once packed into `W` words lane by lane, so that
/// [`transpose`] turns them into byte planes: word `r` holds, in lane `l`, value `l * W + r`.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    allow(dead_code, reason = "the fallback of other CPUs, tested here")
)]
#[inline(always)]
fn pack<const W: usize>(d: &[u64; LANES]) -> [u64; W] {
    std::array::from_fn(|r| (0..LANES / W).fold(0u64, |w, lane| w | d[lane * W + r] << (8 * W * lane)))
}

/// Undoes [`pack`].
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    allow(dead_code, reason = "the fallback of other CPUs, tested here")
)]
#[inline(always)]
fn unpack<const W: usize>(m: &[u64; W]) -> [u64; LANES] {
    std::array::from_fn(|k| (m[k % W] >> (8 * W * (k / W))) & mask::<W>())
}

fn forward_w<const W: usize>(raw: &[u8], t: Transform, out: &mut [u8]) -> PlaneStats {
    let n = raw.len() / W;
    let (first, skip) = if t.keeps_first() && n > 0 { (load::<W>(raw), 1) } else { (0, 0) };
    let values = &raw[skip * W..];
    let m = n - skip;
    let (mut prev, mut or, mut and) = (first, 0u64, u64::MAX);
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let whole = if W > 1 {
        // Sixteen values at a time: transformed into a small buffer, then transposed into 16 bytes of
        // each plane with SSE2 byte interleaves.
        let whole = m / sse2::VALUES * sse2::VALUES;
        let mut bytes = [0u8; sse2::VALUES * 8];
        for (c, chunk) in values[..whole * W].chunks_exact(W * sse2::VALUES).enumerate() {
            for (k, value) in chunk.chunks_exact(W).enumerate() {
                let v = load::<W>(value);
                let d = forward_one::<W>(t, v, prev);
                prev = v;
                or |= d;
                and &= d;
                bytes[k * W..(k + 1) * W].copy_from_slice(&d.to_le_bytes()[..W]);
            }
            let planes = sse2::to_planes::<W>(&bytes[..W * sse2::VALUES]);
            let at = c * sse2::VALUES;
            for (j, plane) in planes.iter().enumerate() {
                out[j * m + at..j * m + at + sse2::VALUES].copy_from_slice(plane);
            }
        }
        whole
    } else {
        0
    };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let whole = {
        let whole = m / LANES * LANES;
        for (c, chunk) in values[..whole * W].chunks_exact(W * LANES).enumerate() {
            let mut d = [0u64; LANES];
            for (k, value) in chunk.chunks_exact(W).enumerate() {
                let v = load::<W>(value);
                d[k] = forward_one::<W>(t, v, prev);
                prev = v;
                or |= d[k];
                and &= d[k];
            }
            // words[j] holds byte j of the eight transformed values, value k in byte k.
            let mut words = pack::<W>(&d);
            transpose::<W>(&mut words);
            let at = c * LANES;
            for (j, word) in words.iter().enumerate() {
                out[j * m + at..j * m + at + LANES].copy_from_slice(&word.to_le_bytes());
            }
        }
        whole
    };
    for i in whole..m {
        let v = load::<W>(&values[i * W..]);
        let d = forward_one::<W>(t, v, prev);
        prev = v;
        or |= d;
        and &= d;
        for j in 0..W {
            out[j * m + i] = (d >> (8 * j)) as u8;
        }
    }
    PlaneStats { first, or, and: and & mask::<W>() }
}

/// Writes `t` applied to the `width`-byte values of `raw`, byte-shuffled, into `out`, which holds
/// `m = t.shuffled_count(n)` values for `n = raw.len() / width` (`m * width` bytes): `out[j * m + i]`
/// is byte `j` of transformed value `i`. The first value, kept aside by delta transforms, is returned
/// in the [`PlaneStats`].
pub(crate) fn forward(raw: &[u8], width: usize, t: Transform, out: &mut [u8]) -> PlaneStats {
    debug_assert!(raw.len().is_multiple_of(width));
    debug_assert_eq!(out.len(), t.shuffled_count(raw.len() / width) * width);
    match width {
        1 => forward_w::<1>(raw, t, out),
        2 => forward_w::<2>(raw, t, out),
        4 => forward_w::<4>(raw, t, out),
        _ => forward_w::<8>(raw, t, out),
    }
}

#[inline(always)]
fn inverse_one<const W: usize>(t: Transform, d: u64, prev: u64) -> u64 {
    match t {
        Transform::None => d,
        Transform::Delta => prev.wrapping_add(d) & mask::<W>(),
        Transform::ZigZag => prev.wrapping_add(unzigzag::<W>(d)) & mask::<W>(),
    }
}

fn inverse_w<const W: usize>(planes: &[&[u8]], t: Transform, first: u64, out: &mut [u8]) {
    let n = out.len() / W;
    let skip = usize::from(t.keeps_first() && n > 0);
    if skip == 1 {
        out[..W].copy_from_slice(&first.to_le_bytes()[..W]);
    }
    let out = &mut out[skip * W..];
    let m = n - skip;
    let planes: [&[u8]; W] = std::array::from_fn(|j| &planes[j][..m]);
    let mut prev = first;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let whole = if W > 1 {
        // Sixteen values at a time: 16 bytes of each plane transposed with SSE2 byte interleaves,
        // straight into the output when untransformed.
        let whole = m / sse2::VALUES * sse2::VALUES;
        let mut bytes = [0u8; sse2::VALUES * 8];
        for (c, chunk) in out[..whole * W].chunks_exact_mut(W * sse2::VALUES).enumerate() {
            let at = c * sse2::VALUES;
            let pieces: [&[u8]; W] = std::array::from_fn(|j| &planes[j][at..at + sse2::VALUES]);
            if t == Transform::None {
                sse2::from_planes::<W>(&pieces, chunk);
                continue;
            }
            sse2::from_planes::<W>(&pieces, &mut bytes[..W * sse2::VALUES]);
            for (k, value) in chunk.chunks_exact_mut(W).enumerate() {
                let v = inverse_one::<W>(t, load::<W>(&bytes[k * W..]), prev);
                prev = v;
                value.copy_from_slice(&v.to_le_bytes()[..W]);
            }
        }
        whole
    } else {
        0
    };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let whole = {
        let whole = m / LANES * LANES;
        for (c, chunk) in out[..whole * W].chunks_exact_mut(W * LANES).enumerate() {
            let at = c * LANES;
            let mut words: [u64; W] =
                std::array::from_fn(|j| u64::from_le_bytes(planes[j][at..at + LANES].try_into().expect("LANES bytes")));
            transpose::<W>(&mut words);
            let d = unpack::<W>(&words);
            for (k, value) in chunk.chunks_exact_mut(W).enumerate() {
                let v = inverse_one::<W>(t, d[k], prev);
                prev = v;
                value.copy_from_slice(&v.to_le_bytes()[..W]);
            }
        }
        whole
    };
    for i in whole..m {
        let mut d = 0u64;
        for (j, plane) in planes.iter().enumerate() {
            d |= u64::from(plane[i]) << (8 * j);
        }
        let v = inverse_one::<W>(t, d, prev);
        prev = v;
        out[i * W..(i + 1) * W].copy_from_slice(&v.to_le_bytes()[..W]);
    }
}

/// Byte-matrix transposes of sixteen `W`-byte values (`W` in 2, 4, 8) held in `W` SSE2 registers,
/// which every x86-64 CPU has: three to four times fewer instructions than the SWAR transpose (the
/// shuffle was 17-19 % of the CPU of reads and writes of integer columns; design/decisions.md D39).
///
/// The `16 * W` bytes are numbered by address bits: value-major (value `k`, byte `j` at `k * W + j`)
/// or plane-major (`j * 16 + k`). One `interleave` rotates every address left by one bit, so four
/// rotations (the bits of `k`) take value-major to plane-major, and `log2(W)` (the bits of `j`) take
/// plane-major back to value-major.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128, _mm_unpackhi_epi8, _mm_unpacklo_epi8};

    /// Values per transpose: one register per byte plane.
    pub(super) const VALUES: usize = 16;

    fn load(bytes: &[u8]) -> __m128i {
        let bytes: &[u8; 16] = bytes.try_into().expect("callers pass 16 bytes");
        // SAFETY: `bytes` is 16 readable bytes, and the load has no alignment requirement.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }

    fn store(reg: __m128i, bytes: &mut [u8]) {
        let bytes: &mut [u8; 16] = bytes.try_into().expect("callers pass 16 bytes");
        // SAFETY: `bytes` is 16 writable bytes, and the store has no alignment requirement.
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), reg) }
    }

    /// The perfect shuffle of the `16 * W` bytes: byte `t` of the first half goes to `2t`, byte `t` of
    /// the second half to `2t + 1`.
    #[inline(always)]
    fn interleave<const W: usize>(regs: [__m128i; W]) -> [__m128i; W] {
        std::array::from_fn(|i| {
            let (a, b) = (regs[i / 2], regs[W / 2 + i / 2]);
            // SAFETY: register-only instructions of SSE2, which this module is compiled only with.
            unsafe { if i % 2 == 0 { _mm_unpacklo_epi8(a, b) } else { _mm_unpackhi_epi8(a, b) } }
        })
    }

    /// The `W` planes of 16 bytes of the sixteen values in `values` (`16 * W` bytes, value-major).
    #[inline(always)]
    pub(super) fn to_planes<const W: usize>(values: &[u8]) -> [[u8; 16]; W] {
        let mut regs: [__m128i; W] = std::array::from_fn(|i| load(&values[16 * i..16 * (i + 1)]));
        for _ in 0..4 {
            regs = interleave(regs);
        }
        let mut planes = [[0u8; 16]; W];
        for (plane, reg) in planes.iter_mut().zip(regs) {
            store(reg, plane);
        }
        planes
    }

    /// Writes the sixteen values whose `W` planes of 16 bytes are `planes` into `values` (`16 * W`
    /// bytes, value-major).
    #[inline(always)]
    pub(super) fn from_planes<const W: usize>(planes: &[&[u8]; W], values: &mut [u8]) {
        let mut regs: [__m128i; W] = std::array::from_fn(|j| load(planes[j]));
        for _ in 0..W.trailing_zeros() {
            regs = interleave(regs);
        }
        for (i, reg) in regs.into_iter().enumerate() {
            store(reg, &mut values[16 * i..16 * (i + 1)]);
        }
    }
}

/// Undoes [`forward`]: `planes` are the `width` byte planes of `t.shuffled_count(n)` values each and
/// `first` the value kept aside (ignored by [`Transform::None`]); writes the `n = out.len() / width`
/// original little-endian values into `out`.
pub(crate) fn inverse(planes: &[&[u8]], width: usize, t: Transform, first: u64, out: &mut [u8]) {
    debug_assert!(out.len().is_multiple_of(width) && planes.len() == width);
    debug_assert!(planes.iter().all(|p| p.len() == t.shuffled_count(out.len() / width)));
    match width {
        1 => inverse_w::<1>(planes, t, first, out),
        2 => inverse_w::<2>(planes, t, first, out),
        4 => inverse_w::<4>(planes, t, first, out),
        _ => inverse_w::<8>(planes, t, first, out),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn zigzag_maps_small_signed_to_small_unsigned() {
        assert_eq!(zigzag::<8>(0), 0);
        assert_eq!(zigzag::<8>(u64::MAX), 1); // -1
        assert_eq!(zigzag::<8>(1), 2);
        assert_eq!(zigzag::<2>(0xffff), 1); // -1 in 2 bytes
        assert_eq!(zigzag::<2>(0x8000), 0xffff); // i16::MIN
        assert_eq!(zigzag::<1>(0x7f), 0xfe);
        for w in [0u64, 1, 2, 0x7f, 0x80, 0xff] {
            assert_eq!(unzigzag::<1>(zigzag::<1>(w)), w);
        }
    }

    #[test]
    fn shuffle_layout_is_byte_planes() {
        let raw: Vec<u8> = [0x0102u16, 0x0304, 0x0507].iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = vec![0u8; 6];
        let stats = forward(&raw, 2, Transform::None, &mut out);
        assert_eq!(out, [0x02, 0x04, 0x07, 0x01, 0x03, 0x05]);
        assert_eq!(stats.constant_planes(2), 0);
        let mut out = vec![0u8; 4];
        let stats = forward(&raw, 2, Transform::Delta, &mut out);
        assert_eq!(out, [0x02, 0x03, 0x02, 0x02]);
        assert_eq!((stats.first, stats.constant_planes(2), stats.constant_byte(1)), (0x0102, 0b10, 0x02));
    }

    #[test]
    fn choose_prefers_what_shrinks() {
        let sorted: Vec<u8> = (0..1000i64).flat_map(|v| (1_700_000_000_000 + v * 977).to_le_bytes()).collect();
        assert_eq!(choose(&sorted, 8), Transform::Delta);
        let mut x = 10_000i64;
        let walk: Vec<u8> = (0..1000i64)
            .flat_map(|i| {
                x += i % 5 - 2;
                x.to_le_bytes()
            })
            .collect();
        assert_eq!(choose(&walk, 8), Transform::ZigZag);
        let keys: Vec<u8> =
            (0..1000u32).flat_map(|i| ((i.wrapping_mul(2_654_435_761) >> 13) as u16 % 500).to_le_bytes()).collect();
        assert_eq!(choose(&keys, 2), Transform::None);
    }

    /// The SWAR transpose other CPUs use makes the same planes as the SSE2 one.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[test]
    fn the_swar_fallback_matches_the_sse2_transpose() {
        fn check<const W: usize>(seed: u64) {
            let mut x = seed;
            let values: Vec<u64> = (0..16)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x & mask::<W>()
                })
                .collect();
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()[..W].to_vec()).collect();
            let planes = sse2::to_planes::<W>(&bytes);
            for half in 0..2 {
                let d: [u64; LANES] = std::array::from_fn(|k| values[half * LANES + k]);
                let mut words = pack::<W>(&d);
                transpose::<W>(&mut words);
                for (j, word) in words.iter().enumerate() {
                    assert_eq!(word.to_le_bytes(), planes[j][half * LANES..(half + 1) * LANES], "W {W} plane {j}");
                }
                assert_eq!(
                    unpack::<W>(&{
                        let mut w = words;
                        transpose::<W>(&mut w);
                        w
                    }),
                    d
                );
            }
            let mut back = vec![0u8; 16 * W];
            let pieces: [&[u8]; W] = std::array::from_fn(|j| &planes[j][..]);
            sse2::from_planes::<W>(&pieces, &mut back);
            assert_eq!(back, bytes);
        }
        for seed in 1..20 {
            check::<2>(seed);
            check::<4>(seed);
            check::<8>(seed);
        }
    }

    /// The byte shuffle by its definition, one byte at a time.
    fn naive_shuffle(raw: &[u8], width: usize) -> Vec<u8> {
        let n = raw.len() / width;
        (0..width).flat_map(|j| (0..n).map(move |i| raw[i * width + j])).collect()
    }

    proptest! {
        #[test]
        fn the_fast_shuffle_matches_its_definition(bytes in prop::collection::vec(any::<u8>(), 0..1200), w in 0usize..4) {
            let width = 1 << w;
            let raw = &bytes[..bytes.len() / width * width];
            let mut out = vec![0u8; raw.len()];
            forward(raw, width, Transform::None, &mut out);
            prop_assert_eq!(out, naive_shuffle(raw, width));
        }

        #[test]
        fn every_transform_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..1200), w in 0usize..4, t in 0u8..3) {
            let width = 1 << w;
            let raw = &bytes[..bytes.len() / width * width];
            let t = Transform::from_code(t).expect("in range");
            let m = t.shuffled_count(raw.len() / width);
            let mut shuffled = vec![0u8; m * width];
            let stats = forward(raw, width, t, &mut shuffled);
            let planes: Vec<&[u8]> = shuffled.chunks(m.max(1)).take(width).collect();
            let planes = if m == 0 { vec![&[][..]; width] } else { planes };
            let mut back = vec![0u8; raw.len()];
            inverse(&planes, width, t, stats.first, &mut back);
            prop_assert_eq!(back.as_slice(), raw);
            // The statistics describe the planes.
            let constant = stats.constant_planes(width);
            for (j, plane) in planes.iter().enumerate().filter(|_| m > 0) {
                if constant & (1 << j) != 0 {
                    prop_assert!(plane.iter().all(|&b| b == stats.constant_byte(j)));
                } else {
                    prop_assert!(plane.iter().any(|&b| b != plane[0]));
                }
            }
        }
    }
}
