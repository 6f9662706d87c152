//! Doubles that are decimals: each value is `i / 10^k` for an integer `i` and one exponent `k` per
//! block, so the block can be stored as those integers (format 3's decimal codec, design/format.md
//! 2.5). Prices in cents, quantities in lots, rates in basis points: such columns are decimals written
//! as doubles, and as integers their small steps shuffle and compress far better, and far faster,
//! than their IEEE bytes do under LZ4.
//!
//! Exactness is the whole contract: a block is stored this way only if every value comes back
//! bit for bit, `(i as f64) / 10^k`, with IEEE division (correctly rounded, so the same on every
//! platform). That holds for a decimal read from text (the nearest double to `i / 10^k`, which is
//! what the division gives) and for numpy's `round(x, k)` (which divides the rounded integer by
//! `10^k`). `-0.0`, NaN, infinities and values with more digits than `k` allows are not decimals: their
//! block keeps another codec.

/// The largest decimal exponent a block may have: `10^18` is exact as a double, and larger scales
/// leave no integers within `2^53`, where every integer is exact as a double, for values above 1.
pub(crate) const MAX_EXPONENT: u8 = 18;

/// `10^k` for `k` in `0..=MAX_EXPONENT`, each exact as a double.
const POW10: [f64; MAX_EXPONENT as usize + 1] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/// Integers of at most this magnitude are exact as doubles.
const EXACT_INT: f64 = (1u64 << 53) as f64;

/// The value a stored integer `i` at exponent `k` decodes to.
fn value(i: i64, k: u8) -> f64 {
    // `i` is within 2^53 when the encoder wrote it; any other i64 still decodes to some double (a
    // damaged block is caught by its checksum before this runs).
    i as f64 / POW10[usize::from(k)]
}

/// The integer `v` is at exponent `k`, if `v` is exactly `value(i, k)` for an `i` within `2^53`.
fn integer(v: f64, k: u8) -> Option<i64> {
    let scaled = v * POW10[usize::from(k)];
    // Also refuses NaN and infinities.
    if scaled.is_nan() || scaled.abs() > EXACT_INT {
        return None;
    }
    // The nearest integer, without `f64::round` (a libm call on baseline x86-64, a fifth of a decimal
    // block's encoding): truncate, then step by the fraction, which is exact (`scaled` and its
    // truncation are within a factor of two, or the truncation is 0). Only one integer can pass the
    // check below, so how ties round does not matter.
    let t = scaled as i64;
    let fraction = scaled - t as f64;
    let i = if fraction >= 0.5 {
        t + 1
    } else if fraction <= -0.5 {
        t - 1
    } else {
        t
    };
    (value(i, k).to_bits() == v.to_bits()).then_some(i)
}

fn doubles(raw: &[u8]) -> impl Iterator<Item = f64> + '_ {
    raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("chunks_exact yields 8 bytes")))
}

/// The smallest exponent at which every double of `raw` (little-endian, a whole number of them) is a
/// decimal, or `None` (also for no values). Each value raises the exponent until it fits, so the
/// search is one pass; a value that fits no exponent ends it at once (random doubles: one of their
/// first few, those whose shortest decimal has 17 digits).
pub(crate) fn exponent(raw: &[u8]) -> Option<u8> {
    let mut k = 0u8;
    let mut any = false;
    for v in doubles(raw) {
        any = true;
        while integer(v, k).is_none() {
            k += 1;
            if k > MAX_EXPONENT {
                return None;
            }
        }
    }
    // A value that fit a smaller exponent may not fit the final one (past 2^53): `to_integers`
    // checks every value again.
    any.then_some(k)
}

/// Values converted per step of the fast paths: enough for the loop to vectorize and amortize the
/// check that ends it, few enough that a run falling back to the exact path redoes little.
const RUN: usize = 64;

/// `1.5 * 2^52`. For a double `x` of magnitude below `2^51`, `x + ROUNDER` lands in `[2^52, 2^53)`, where
/// doubles are the integers, so the addition rounds `x` to an integer (nearest, ties to even), the sum's
/// bits minus `ROUNDER`'s are that integer, and subtracting `ROUNDER` again gives it as a double.
/// Plain SSE2 arithmetic, where `f64 <-> i64` conversions have no packed instruction before AVX-512.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// The fast encoding path takes values whose scaled magnitude is below this. A value that is a
/// decimal is within `|i| * 2^-52` of its integer `i` once scaled (two correctly rounded steps), so
/// below `2^50` it is within a quarter of it: the nearest integer is the same whichever way ties round,
/// and the fast path finds exactly the integer [`integer`] does.
const FAST_SCALED: f64 = (1u64 << 50) as f64;

/// [`integer`] for every value of `run` into `out`, or `false` if any value is not a decimal at `k`
/// with a scaled magnitude below [`FAST_SCALED`] (then `out` is unspecified; the caller redoes the run
/// with [`integer`], which decides). Branch-free, so the loop vectorizes.
fn run_to_integers(run: &[u8], k: u8, out: &mut [u8]) -> bool {
    let scale = POW10[usize::from(k)];
    let rounder_bits = ROUNDER.to_bits() as i64;
    let mut ok = true;
    for (v, slot) in doubles(run).zip(out.chunks_exact_mut(8)) {
        let scaled = v * scale;
        let shifted = scaled + ROUNDER;
        let i = (shifted.to_bits() as i64).wrapping_sub(rounder_bits);
        let back = (shifted - ROUNDER) / scale;
        // `abs() < FAST_SCALED` is false for NaN and infinities too.
        ok &= (scaled.abs() < FAST_SCALED) & (back.to_bits() == v.to_bits());
        slot.copy_from_slice(&i.to_le_bytes());
    }
    ok
}

/// The integers of the doubles of `raw` at exponent `k`, as little-endian `i64`s in `out` (resized to
/// `raw`'s length); `false` (and `out` unspecified) if any value is not a decimal at `k`.
pub(crate) fn to_integers(raw: &[u8], k: u8, out: &mut Vec<u8>) -> bool {
    out.resize(raw.len(), 0);
    for (run, dest) in raw.chunks(RUN * 8).zip(out.chunks_mut(RUN * 8)) {
        if run_to_integers(run, k, dest) {
            continue;
        }
        for (v, slot) in doubles(run).zip(dest.chunks_exact_mut(8)) {
            match integer(v, k) {
                Some(i) => slot.copy_from_slice(&i.to_le_bytes()),
                None => return false,
            }
        }
    }
    true
}

/// Turns little-endian `i64`s in `buf` into the doubles they stand for at exponent `k`, in place.
/// (This loop vectorizes as it is, and the division bounds it: the [`ROUNDER`] conversion measured
/// slower here, with its range check.)
pub(crate) fn from_integers_in_place(buf: &mut [u8], k: u8) {
    for slot in buf.chunks_exact_mut(8) {
        let i = i64::from_le_bytes((&*slot).try_into().expect("chunks_exact yields 8 bytes"));
        slot.copy_from_slice(&value(i, k).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bytes(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn round_trip(values: &[f64]) -> Option<u8> {
        let raw = bytes(values);
        let k = exponent(&raw)?;
        let mut ints = Vec::new();
        if !to_integers(&raw, k, &mut ints) {
            return None;
        }
        from_integers_in_place(&mut ints, k);
        assert_eq!(ints, raw, "{values:?} at 10^-{k}");
        Some(k)
    }

    #[test]
    fn decimals_find_their_smallest_exponent() {
        assert_eq!(round_trip(&[1.0, -3.0, 0.0, 1e15]), Some(0));
        assert_eq!(round_trip(&[100.23, 99.5, 100.0]), Some(2));
        assert_eq!(round_trip(&[0.1, 0.25, 1.125]), Some(3));
        assert_eq!(round_trip(&[0.0001, 12.5]), Some(4));
        assert_eq!(round_trip(&[123_456.789_012]), Some(6));
    }

    #[test]
    fn what_is_not_a_decimal_is_refused() {
        for v in [-0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.1 + 0.2, std::f64::consts::SQRT_2, 1e-300, 1e300]
        {
            assert_eq!(round_trip(&[1.5, v]), None, "{v:?}");
        }
        assert_eq!(exponent(&[]), None);
        // A double whose shortest decimal has 16 digits is one, at 10^-15 when below 9.007.
        assert_eq!(round_trip(&[std::f64::consts::PI]), Some(15));
        // Beyond 2^53 integers are not all exact.
        assert_eq!(round_trip(&[9_007_199_254_740_993.0]), Some(0), "rounds to 2^53 exactly, which is exact");
        assert_eq!(integer(1.0e16 + 2.0, 0), None);
    }

    #[test]
    fn numpy_style_rounding_is_exact() {
        // numpy's round(x, 2): rint(x * 100) / 100.
        let mut x = 100.0f64;
        let values: Vec<f64> = (0..1000)
            .map(|i| {
                x += ((i * 7919 % 13) as f64 - 6.0) * 0.013;
                (x * 100.0).round_ties_even() / 100.0
            })
            .collect();
        assert_eq!(round_trip(&values), Some(2));
    }

    /// The one-value path over all of `raw`: what [`to_integers`] must agree with.
    fn exact_integers(raw: &[u8], k: u8) -> Option<Vec<u8>> {
        doubles(raw).map(|v| integer(v, k).map(i64::to_le_bytes)).collect::<Option<Vec<_>>>().map(|v| v.concat())
    }

    #[test]
    fn the_fast_path_hands_over_at_its_bounds() {
        // Around 2^50 once scaled, at 2^51 and 2^53, mixed into runs of ordinary decimals.
        for k in [0u8, 2, 6] {
            let edge = FAST_SCALED / POW10[usize::from(k)];
            let specials = [edge, -edge, edge * 2.0, edge * 8.0, 2.5, -0.0, f64::NAN, 12.34, 1e-3];
            for (at, special) in specials.iter().enumerate() {
                let mut values: Vec<f64> = (0..3 * RUN as i64).map(|i| value(i * 37 - 1000, k)).collect();
                values[RUN + at * 5] = *special;
                let raw = bytes(&values);
                let mut out = Vec::new();
                let fast = to_integers(&raw, k, &mut out).then_some(out);
                assert_eq!(fast, exact_integers(&raw, k), "{special:?} at 10^-{k}");
            }
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_exact_one(
            ints in prop::collection::vec(-(1i64 << 53)..(1i64 << 53), 1..200),
            scale_bits in prop::collection::vec(0u32..54, 1..200),
            k in 0u8..=MAX_EXPONENT,
            noise in prop::collection::vec((0usize..200, any::<u64>()), 0..2),
        ) {
            // Integers of every magnitude up to 2^53 (so values on both sides of the fast path's
            // bound), as decimals at `k`, and now and then arbitrary bits.
            let mut values: Vec<f64> = ints.iter().zip(scale_bits.iter().cycle()).map(|(&i, &b)| value(i >> (53 - b.min(53)), k)).collect();
            for (at, bits) in noise {
                let len = values.len();
                values[at % len] = f64::from_bits(bits);
            }
            let raw = bytes(&values);
            let mut out = Vec::new();
            let fast = to_integers(&raw, k, &mut out).then_some(out);
            prop_assert_eq!(fast, exact_integers(&raw, k));
        }

        #[test]
        fn any_doubles_either_round_trip_exactly_or_are_refused(bits in prop::collection::vec(any::<u64>(), 1..50)) {
            let values: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
            round_trip(&values);
        }

        #[test]
        fn decimals_of_any_scale_round_trip(ints in prop::collection::vec(-1_000_000_000_000i64..1_000_000_000_000, 1..50), k in 0u8..=MAX_EXPONENT) {
            let values: Vec<f64> = ints.iter().map(|&i| value(i, k)).collect();
            let found = round_trip(&values);
            prop_assert!(found.is_some_and(|f| f <= k), "{:?} at 10^-{}: {:?}", values, k, found);
        }
    }
}
