//! One block: a chunk of a stream, compressed with LZ4 (after delta coding for sorted 8-byte integers)
//! or stored raw when that does not make it smaller, and checksummed with xxh3-64 over the stored bytes.

use crate::error::{FormatError, Result};
use crate::le::{checksum, checksum_matches};

/// The raw size of the blocks the encoder cuts streams into. A multiple of 8 so that fixed-width values
/// never straddle blocks; about 1 MiB keeps LZ4's working set in cache and gives readers parallelism.
pub(crate) const BLOCK_BYTES: usize = 1 << 18;

/// The largest raw block a decoder accepts, whatever an encoder chose.
pub(crate) const MAX_BLOCK_RAW: u32 = 16 << 20;

/// LZ4 cannot expand more than ~255x; a compressed block claiming more is refused before allocating.
pub(crate) fn lz4_raw_len_is_plausible(raw_len: u32, stored_len: u32) -> bool {
    u64::from(raw_len) <= u64::from(stored_len) * 256 + 64
}

/// How a block's bytes are stored. Persisted as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Codec {
    /// The raw bytes.
    Raw = 0,
    /// LZ4 block format (lz4_flex).
    Lz4 = 1,
    /// Little-endian 8-byte integers replaced by their wrapping differences (the first kept), then LZ4.
    DeltaLz4 = 2,
}

impl Codec {
    pub(crate) fn from_code(code: u8) -> Result<Self> {
        match code {
            0 => Ok(Codec::Raw),
            1 => Ok(Codec::Lz4),
            2 => Ok(Codec::DeltaLz4),
            other => Err(FormatError::malformed("segment descriptor", format!("unknown block codec {other}"))),
        }
    }
}

/// The descriptor entry of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub(crate) codec: Codec,
    pub(crate) raw_len: u32,
    pub(crate) stored_len: u32,
    pub(crate) checksum: u64,
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).expect("blocks are at most BLOCK_BYTES long, far below u32::MAX")
}

/// Whether `raw`, read as little-endian i64s, never decreases.
fn is_sorted_i64(raw: &[u8]) -> bool {
    let mut prev = i64::MIN;
    for chunk in raw.chunks_exact(8) {
        let v = i64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        if v < prev {
            return false;
        }
        prev = v;
    }
    true
}

fn delta_encode(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(raw.len());
    let mut prev = 0i64;
    for chunk in raw.chunks_exact(8) {
        let v = i64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        out.extend_from_slice(&v.wrapping_sub(prev).to_le_bytes());
        prev = v;
    }
}

fn delta_decode_in_place(buf: &mut [u8]) {
    let mut acc = 0i64;
    for chunk in buf.chunks_exact_mut(8) {
        let d = i64::from_le_bytes((&*chunk).try_into().expect("chunks_exact yields 8 bytes"));
        acc = acc.wrapping_add(d);
        chunk.copy_from_slice(&acc.to_le_bytes());
    }
}

/// Compresses `input` onto the end of `body`; returns the stored length, or `None` (and leaves `body`
/// as it was) when LZ4 does not make it smaller.
fn lz4_append(input: &[u8], body: &mut Vec<u8>) -> Option<usize> {
    let start = body.len();
    body.resize(start + lz4_flex::block::get_maximum_output_size(input.len()), 0);
    let written = lz4_flex::block::compress_into(input, &mut body[start..]);
    match written {
        Ok(n) if n < input.len() && lz4_raw_len_is_plausible(u32_len(input.len()), u32_len(n)) => {
            body.truncate(start + n);
            Some(n)
        }
        _ => {
            body.truncate(start);
            None
        }
    }
}

/// Encodes one block of at most [`BLOCK_BYTES`], appending its stored bytes to `body`.
///
/// `delta` asks for delta coding, which is applied only if the block is whole 8-byte values that never
/// decrease (sorted timestamps and the like). `scratch` is reused between calls.
pub(crate) fn encode_block(raw: &[u8], delta: bool, body: &mut Vec<u8>, scratch: &mut Vec<u8>) -> BlockMeta {
    let start = body.len();
    let (codec, stored_len) = if delta && raw.len().is_multiple_of(8) && !raw.is_empty() && is_sorted_i64(raw) {
        delta_encode(raw, scratch);
        match lz4_append(scratch, body) {
            Some(n) => (Codec::DeltaLz4, n),
            None => lz4_append(raw, body).map_or((Codec::Raw, 0), |n| (Codec::Lz4, n)),
        }
    } else {
        lz4_append(raw, body).map_or((Codec::Raw, 0), |n| (Codec::Lz4, n))
    };
    let stored_len = if codec == Codec::Raw {
        body.extend_from_slice(raw);
        raw.len()
    } else {
        stored_len
    };
    BlockMeta {
        codec,
        raw_len: u32_len(raw.len()),
        stored_len: u32_len(stored_len),
        checksum: checksum(&body[start..]),
    }
}

/// Verifies and decodes one block into `out`, which must be exactly `meta.raw_len` bytes.
///
/// `location` names the block for error messages (only called on error).
///
/// # Errors
/// [`FormatError::ChecksumMismatch`] if the stored bytes are not what was written;
/// [`FormatError::Malformed`] if they do not decompress to exactly `raw_len` bytes.
pub(crate) fn decode_block(
    meta: &BlockMeta,
    stored: &[u8],
    out: &mut [u8],
    location: &dyn Fn() -> String,
) -> Result<()> {
    debug_assert_eq!(out.len(), meta.raw_len as usize);
    let computed = checksum(stored);
    if !checksum_matches(meta.checksum, computed) {
        return Err(FormatError::ChecksumMismatch { location: location(), stored: meta.checksum, computed });
    }
    match meta.codec {
        Codec::Raw => {
            if stored.len() != out.len() {
                return Err(FormatError::malformed("segment", format!("{}: raw block of wrong length", location())));
            }
            out.copy_from_slice(stored);
        }
        Codec::Lz4 | Codec::DeltaLz4 => {
            let n = lz4_flex::block::decompress_into(stored, out).map_err(|e| {
                FormatError::malformed("segment", format!("{}: LZ4 data does not decode: {e}", location()))
            })?;
            if n != out.len() {
                return Err(FormatError::malformed(
                    "segment",
                    format!("{}: decompressed to {n} bytes, expected {}", location(), out.len()),
                ));
            }
            if meta.codec == Codec::DeltaLz4 {
                delta_decode_in_place(out);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: &[u8], delta: bool) -> BlockMeta {
        let (mut body, mut scratch) = (vec![7u8; 3], Vec::new());
        let meta = encode_block(raw, delta, &mut body, &mut scratch);
        assert_eq!(body.len(), 3 + meta.stored_len as usize);
        let mut out = vec![0u8; raw.len()];
        decode_block(&meta, &body[3..], &mut out, &|| "test".into()).expect("decodes");
        assert_eq!(out, raw);
        meta
    }

    #[test]
    fn chooses_the_right_codec() {
        let sorted: Vec<u8> = (0..10_000i64).flat_map(|v| (v * 1_000 + 1_600_000_000).to_le_bytes()).collect();
        assert_eq!(round_trip(&sorted, true).codec, Codec::DeltaLz4);
        assert_eq!(round_trip(&sorted, false).codec, Codec::Lz4);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(round_trip(&noise, false).codec, Codec::Raw);
        assert_eq!(round_trip(&[], true).codec, Codec::Raw);
        let unsorted: Vec<u8> = [5i64, 3, 9, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        round_trip(&unsorted, true);
    }

    #[test]
    fn checksum_catches_any_flip() {
        let raw: Vec<u8> = (0..1000u32).flat_map(|v| (v % 7).to_le_bytes()).collect();
        let (mut body, mut scratch) = (Vec::new(), Vec::new());
        let meta = encode_block(&raw, false, &mut body, &mut scratch);
        let mut out = vec![0u8; raw.len()];
        for i in 0..body.len() {
            body[i] ^= 0x10;
            let err = decode_block(&meta, &body, &mut out, &|| "col x".into()).expect_err("flip caught");
            assert!(matches!(err, FormatError::ChecksumMismatch { .. }));
            body[i] ^= 0x10;
        }
    }
}
