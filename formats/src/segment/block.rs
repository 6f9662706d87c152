//! One block: a chunk of a stream, stored raw or compressed with LZ4 (integers first delta- or
//! zigzag-delta-coded and byte-shuffled; doubles that are decimals first made integers), and
//! checksummed with xxh3-64 over the stored bytes.

use std::cell::RefCell;
use std::thread::LocalKey;

use lz4_flex::block::{CompressTable, compress_into_with_table, decompress_into, get_maximum_output_size};

use super::decimal;
use super::transform::{self, Transform};
use crate::error::{FormatError, Result};
use crate::le::{checksum, checksum_matches};

/// The largest raw block the encoder cuts a stream into. A multiple of 8 so that fixed-width values
/// never straddle blocks; 256 KiB keeps LZ4's working set in cache.
pub(crate) const BLOCK_BYTES: usize = 1 << 18;

/// The smallest raw block the encoder cuts a stream into (the last one may be shorter): smaller ones
/// would cost compression (each block is compressed on its own) and per-block work in full reads.
pub(crate) const MIN_BLOCK_BYTES: usize = 8 << 10;

/// A stream is cut into at least this many blocks when that keeps them at least [`MIN_BLOCK_BYTES`]:
/// a read of a few rows verifies and decodes only the blocks covering them, so the block is the unit
/// a row window pays for. A 10,000-row float column (80 KB) used to be one block, and a 10-row read of
/// a 1,000-column frame hashed all 80 MB.
const MIN_BLOCKS_PER_STREAM: usize = 8;

/// The raw block size for a stream of `len` bytes: `len / 8` rounded up to 4 KiB, within
/// [`MIN_BLOCK_BYTES`]..=[`BLOCK_BYTES`] (streams of 2 MiB and more keep 256 KiB blocks). A multiple of
/// 8, and a function of the length only, so the same input always encodes to the same bytes.
pub(crate) fn block_bytes(len: usize) -> usize {
    const PAGE: usize = 4 << 10;
    len.div_ceil(MIN_BLOCKS_PER_STREAM).next_multiple_of(PAGE).clamp(MIN_BLOCK_BYTES, BLOCK_BYTES)
}

/// The largest raw block a decoder accepts, whatever an encoder chose.
pub(crate) const MAX_BLOCK_RAW: u32 = 16 << 20;

/// The encoder decides whether and how to compress a block from a sample of its first bytes (the
/// whole block if it is at most twice this long). A multiple of 8.
const SAMPLE_BYTES: usize = 8 << 10;

/// The sample of `raw` the encoder decides from: its first [`SAMPLE_BYTES`], or all of it when it is
/// at most twice that long.
fn sample(raw: &[u8]) -> &[u8] {
    if raw.len() <= 2 * SAMPLE_BYTES { raw } else { &raw[..SAMPLE_BYTES] }
}

/// Bytes of a sample that LZ4 tries first ([`lz4_may_pay`]).
const PROBE_BYTES: usize = 2 << 10;

/// Whether plain LZ4 is worth trying on all of `sample`: false when LZ4 of its first [`PROBE_BYTES`]
/// does not save 1/64 of them. LZ4 finds nothing in random doubles, so a stream of them paid a trial
/// compression of a whole sample for every choice (whole 12 KiB blocks in short segments; a quarter of
/// a `wide` write's encoding); data with repeats shows some in its first 2 KiB already, and a sample
/// that would save the 1/16 a block must save ([`worth_it`]) rarely hides all of it past them. Uses
/// `out` and `table` as scratch.
fn lz4_may_pay(sample: &[u8], out: &mut Vec<u8>, table: &mut CompressTable) -> bool {
    if sample.len() <= 2 * PROBE_BYTES {
        return true;
    }
    let probe = &sample[..PROBE_BYTES];
    lz4(probe, out, table) < PROBE_BYTES - PROBE_BYTES / 64
}

/// LZ4 cannot expand more than ~255x; a compressed block claiming more is refused before allocating.
pub(crate) fn lz4_raw_len_is_plausible(raw_len: u32, stored_len: u32) -> bool {
    u64::from(raw_len) <= u64::from(stored_len) * 256 + 64
}

/// How a block's bytes are stored. Persisted as one byte (see [`Codec::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// The raw bytes (code 0).
    Raw,
    /// LZ4 block format, lz4_flex (code 1).
    Lz4,
    /// Little-endian 8-byte integers replaced by their wrapping differences (the first kept), then LZ4
    /// (code 2). Written by format 1 encoders only; still decoded.
    DeltaLz4,
    /// `width`-byte little-endian integers rewritten by `transform` and byte-shuffled; constant byte
    /// planes are replaced by their byte, the others LZ4-compressed (codes 16-27:
    /// `16 + 4 * transform + log2(width)`; format 2). See [`encode_shuffled`] for the stored layout.
    Shuffled { transform: Transform, width: u8 },
    /// Doubles that are decimals (`i / 10^k`, [`decimal`]) stored as the 8-byte integers `i`, rewritten
    /// by `transform` and byte-shuffled as [`Codec::Shuffled`] does, then the exponent `k` in one byte
    /// (codes 32-34: `32 + transform`; format 3). See [`store_decimal`].
    Decimal { transform: Transform },
}

/// The first code of [`Codec::Shuffled`].
const SHUFFLED_BASE: u8 = 16;
/// The first code of [`Codec::Decimal`].
const DECIMAL_BASE: u8 = 32;

impl Codec {
    /// The persisted code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Codec::Raw => 0,
            Codec::Lz4 => 1,
            Codec::DeltaLz4 => 2,
            Codec::Shuffled { transform, width } => SHUFFLED_BASE + 4 * transform as u8 + width.trailing_zeros() as u8,
            Codec::Decimal { transform } => DECIMAL_BASE + transform as u8,
        }
    }

    /// Parses a persisted code; format 1 segments know only codes 0-2, format 2 adds 16-27, format 3
    /// 32-34.
    pub(crate) fn from_code(code: u8, format_version: u16) -> Result<Self> {
        let codec = match code {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Lz4),
            2 => Some(Codec::DeltaLz4),
            c if format_version >= 3 && c >= DECIMAL_BASE => {
                Transform::from_code(c - DECIMAL_BASE).map(|transform| Codec::Decimal { transform })
            }
            c if format_version >= 2 && (SHUFFLED_BASE..DECIMAL_BASE).contains(&c) => {
                Transform::from_code((c - SHUFFLED_BASE) / 4)
                    .map(|transform| Codec::Shuffled { transform, width: 1 << ((c - SHUFFLED_BASE) % 4) })
            }
            _ => None,
        };
        codec.ok_or_else(|| {
            FormatError::malformed(
                "segment descriptor",
                format!("unknown block codec {code} in format {format_version}"),
            )
        })
    }

    /// The raw length must be a whole number of this many bytes.
    pub(crate) fn value_width(self) -> u32 {
        match self {
            Codec::Raw | Codec::Lz4 => 1,
            Codec::DeltaLz4 => 8,
            Codec::Shuffled { width, .. } => u32::from(width),
            Codec::Decimal { .. } => 8,
        }
    }

    /// Whether a block of this codec can hold `raw_len` bytes in `stored_len`: a raw block exactly,
    /// a compressed one within LZ4's maximum ratio, and whole values for the integer codecs.
    pub(crate) fn is_plausible(self, raw_len: u32, stored_len: u32) -> bool {
        raw_len.is_multiple_of(self.value_width())
            && match self {
                Codec::Raw => raw_len == stored_len,
                Codec::Lz4 | Codec::DeltaLz4 => lz4_raw_len_is_plausible(raw_len, stored_len),
                Codec::Shuffled { .. } | Codec::Decimal { .. } => {
                    raw_len > 0 && lz4_raw_len_is_plausible(raw_len, stored_len)
                }
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

/// Per-thread buffers reused across blocks, so encoding allocates and zero-fills nothing per block: the
/// LZ4 output goes to `compressed` (kept at the largest size needed so far) and is copied into the
/// segment only if it is kept.
struct EncodeScratch {
    shuffled: Vec<u8>,
    compressed: Vec<u8>,
    /// The integers of a decimal block ([`Codec::Decimal`]).
    decimals: Vec<u8>,
    /// Always the 32-bit-entry table, whatever the input size, so the output never depends on which
    /// blocks this thread compressed before.
    table: CompressTable,
}

thread_local! {
    static ENCODE_SCRATCH: RefCell<EncodeScratch> = RefCell::new(EncodeScratch {
        shuffled: Vec::new(),
        compressed: Vec::new(),
        decimals: Vec::new(),
        table: CompressTable::large(),
    });
    static DECODE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The whole block a partial decode ([`decode_block_part`]) needs. Kept per thread because a short
    /// read (a date range of a few rows) decodes a partial block per column: a fresh 100 KiB buffer
    /// each time is fresh pages after the allocator gave memory back, several µs a page on a VM.
    static PART_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `buf[..len]`, growing (and zero-filling only the growth of) `buf` if it is shorter.
fn at_least(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// Whether `stored` bytes are worth keeping in place of `raw` raw bytes: compression must save at
/// least 1/16 (less is not worth the decompression).
fn worth_it(raw: usize, stored: usize) -> bool {
    stored <= raw - raw / 16 && lz4_raw_len_is_plausible(u32_len(raw), u32_len(stored))
}

/// LZ4-compresses `input` into `out` (grown as needed); returns the compressed length.
fn lz4(input: &[u8], out: &mut Vec<u8>, table: &mut CompressTable) -> usize {
    let dest = at_least(out, get_maximum_output_size(input.len()));
    compress_into_with_table(input, dest, table).expect("the output holds LZ4's worst case")
}

/// The stored form of a [`Codec::Shuffled`] block of `raw` (n values of `width` bytes), written to
/// `out`; returns its length:
///
/// ```text
/// u8         constant-plane mask M: bit j set = byte plane j holds one byte throughout (bits >= width 0)
/// popcnt(M)  that byte for each plane of M, lowest plane first
/// width      the first value, little-endian (delta transforms only; they shuffle the n - 1 differences)
/// rest       LZ4 block of the other planes, lowest first, each as many bytes as values shuffled
///            (nothing when every plane is constant)
/// ```
///
/// `planes` says which constant planes are marked (see [`Planes`]).
fn encode_shuffled(
    raw: &[u8],
    transform: Transform,
    width: usize,
    planes_mode: Planes,
    shuffled: &mut Vec<u8>,
    out: &mut Vec<u8>,
    table: &mut CompressTable,
) -> usize {
    let m = transform.shuffled_count(raw.len() / width);
    let planes = at_least(shuffled, m * width);
    let stats = transform::forward(raw, width, transform, planes);
    let all = u8::try_from((1u16 << width) - 1).expect("width is at most 8");
    let constant = match planes_mode {
        Planes::Elide => stats.constant_planes(width),
        // Every plane constant: plane 0 is stored after all, as a run LZ4 decodes in strides.
        Planes::RunLowest if stats.constant_planes(width) == all && m > 0 => all & !1,
        Planes::RunLowest => 0,
    };
    let run = planes_mode == Planes::RunLowest && constant == all & !1;
    let mut header = [0u8; 1 + 8 + 8];
    header[0] = constant;
    let mut h = 1;
    let mut kept = 0;
    for j in 0..width {
        if constant & (1 << j) != 0 {
            header[h] = stats.constant_byte(j);
            h += 1;
        } else {
            if kept != j {
                planes.copy_within(j * m..(j + 1) * m, kept * m);
            }
            kept += 1;
        }
    }
    if transform.keeps_first() {
        header[h..h + width].copy_from_slice(&stats.first.to_le_bytes()[..width]);
        h += width;
    }
    let dest = at_least(out, h + get_maximum_output_size(kept * m));
    dest[..h].copy_from_slice(&header[..h]);
    if kept == 0 {
        return h;
    }
    if run {
        return h + lz4_run(stats.constant_byte(0), m, &mut dest[h..]);
    }
    h + compress_into_with_table(&planes[..kept * m], &mut dest[h..], table).expect("the output holds LZ4's worst case")
}

/// [`encode_shuffled`] with every constant plane dropped, or, where that leaves too few bytes for the
/// decoder's expansion bound (an arithmetic sequence, say), with every plane constant: plane 0 stored
/// as a run shaped for a fast decode (at most 12 x width shorter, inside the bound). Else LZ4 shortens
/// the planes. Returns the stored length in `out`.
fn shuffled_within_bound(
    raw: &[u8],
    transform: Transform,
    width: usize,
    shuffled: &mut Vec<u8>,
    out: &mut Vec<u8>,
    table: &mut CompressTable,
) -> usize {
    let n = encode_shuffled(raw, transform, width, Planes::Elide, shuffled, out, table);
    if lz4_raw_len_is_plausible(u32_len(raw.len()), u32_len(n)) {
        return n;
    }
    encode_shuffled(raw, transform, width, Planes::RunLowest, shuffled, out, table)
}

/// The integers of `raw` (little-endian doubles) in `ints` and their exponent, found from `raw`'s
/// sample, or `None` if some value is not a decimal at it.
fn decimal_integers(raw: &[u8], ints: &mut Vec<u8>) -> Option<u8> {
    let k = decimal::exponent(sample(raw))?;
    decimal::to_integers(raw, k, ints).then_some(k)
}

/// The stored form of a [`Codec::Decimal`] block in `out`, from its integers `ints` at exponent `k`
/// ([`decimal_integers`]); returns its length:
///
/// ```text
/// ...   the integers i (8-byte, little-endian), as a Codec::Shuffled block of width 8 stores them
/// u8    the exponent k (0..=18): each value is (i as f64) / 10^k
/// ```
fn store_decimal(
    ints: &[u8],
    k: u8,
    transform: Transform,
    shuffled: &mut Vec<u8>,
    out: &mut Vec<u8>,
    table: &mut CompressTable,
) -> usize {
    let n = shuffled_within_bound(ints, transform, 8, shuffled, out, table);
    at_least(out, n + 1)[n] = k;
    n + 1
}

/// What a stream's values are, for the codecs the encoder may try on its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// Bytes of no particular shape (strings, bits, metadata): LZ4 or raw.
    Bytes,
    /// Little-endian integers of this many bytes (1, 2, 4 or 8): also [`Codec::Shuffled`].
    Ints(usize),
    /// Little-endian doubles: also [`Codec::Decimal`].
    Floats64,
}

impl From<Option<usize>> for Values {
    /// `Some(width)`: integers of that width; `None`: bytes.
    fn from(ints: Option<usize>) -> Self {
        ints.map_or(Values::Bytes, Values::Ints)
    }
}

/// Which constant planes [`encode_shuffled`] marks constant (and so does not store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planes {
    /// Every constant plane.
    Elide,
    /// When every plane is constant: all but plane 0, which is stored as an LZ4 run ([`lz4_run`]);
    /// otherwise none (LZ4 gets every plane).
    RunLowest,
}

/// Longest match [`lz4_run`] writes, and the distance it copies from: lz4_flex copies a match in
/// 16-byte strides only when it lies at least `length + 15` bytes back, and byte by byte otherwise
/// (about 1 GB/s, against several for strides). A plain LZ4 encoder turns a long run into one match at
/// distance 1, the slow case: an arithmetic sequence (regular timestamps) decoded at ~0.8 GB/s.
const RUN_MATCH: usize = 49;
const RUN_DISTANCE: usize = RUN_MATCH + 15;
/// LZ4's end rules: the last match starts at least 12 bytes before the end, the last 5 are literals.
const RUN_TAIL: usize = 12;

/// Writes to `out` one LZ4 block that decodes to `len` copies of `byte`, shaped for a fast decode:
/// [`RUN_DISTANCE`] literals, then matches of at most [`RUN_MATCH`] bytes from [`RUN_DISTANCE`] back,
/// then the last literals. 4 bytes per 49 (12x), within the decoder's 256x expansion bound.
/// Returns the block's length; `out` must hold `len + len / 255 + 16` bytes (LZ4's worst case does).
fn lz4_run(byte: u8, len: usize, out: &mut [u8]) -> usize {
    fn lengths(out: &mut [u8], at: &mut usize, mut rest: usize) {
        // The bytes after a 15 in a token nibble: 255s, then the remainder.
        while rest >= 255 {
            out[*at] = 255;
            *at += 1;
            rest -= 255;
        }
        out[*at] = u8::try_from(rest).expect("below 255");
        *at += 1;
    }
    fn literals(out: &mut [u8], at: &mut usize, byte: u8, n: usize, token_low: u8) {
        out[*at] = (u8::try_from(n.min(15)).expect("at most 15") << 4) | token_low;
        *at += 1;
        if n >= 15 {
            lengths(out, at, n - 15);
        }
        out[*at..*at + n].fill(byte);
        *at += n;
    }
    let mut at = 0;
    if len < RUN_DISTANCE + RUN_MATCH + RUN_TAIL {
        literals(out, &mut at, byte, len, 0);
        return at;
    }
    let matches = (len - RUN_DISTANCE - RUN_TAIL) / RUN_MATCH;
    let distance = u16::try_from(RUN_DISTANCE).expect("small").to_le_bytes();
    let match_token = u8::try_from((RUN_MATCH - 4).min(15)).expect("at most 15");
    for i in 0..matches {
        if i == 0 {
            literals(out, &mut at, byte, RUN_DISTANCE, match_token);
        } else {
            out[at] = match_token;
            at += 1;
        }
        out[at..at + 2].copy_from_slice(&distance);
        at += 2;
        lengths(out, &mut at, RUN_MATCH - 4 - 15);
    }
    literals(out, &mut at, byte, len - RUN_DISTANCE - matches * RUN_MATCH, 0);
    at
}

impl EncodeScratch {
    /// The stored form of `raw` under `codec`, in `self.compressed[..n]`; returns `n`, or `raw.len()`
    /// (not worth keeping) for a block [`Codec::Decimal`] cannot store.
    fn compress(&mut self, raw: &[u8], codec: Codec) -> usize {
        match codec {
            Codec::Shuffled { transform, width } => {
                let (shuffled, out, table) = (&mut self.shuffled, &mut self.compressed, &mut self.table);
                shuffled_within_bound(raw, transform, usize::from(width), shuffled, out, table)
            }
            Codec::Decimal { transform } => match decimal_integers(raw, &mut self.decimals) {
                Some(k) => store_decimal(
                    &self.decimals,
                    k,
                    transform,
                    &mut self.shuffled,
                    &mut self.compressed,
                    &mut self.table,
                ),
                None => raw.len(),
            },
            _ => lz4(raw, &mut self.compressed, &mut self.table),
        }
    }

    /// The codec worth trying on `raw`, judged on its sample: plain LZ4, or for integers of `width`
    /// bytes the transform with the fewest significant bytes, shuffled, or for doubles that are
    /// decimals their integers so; `Raw` if none saves 1/16.
    fn choose(&mut self, raw: &[u8], values: Values) -> Codec {
        let sample = sample(raw);
        let mut best = (Codec::Raw, sample.len());
        // Keeps `codec` if its stored sample of `n` bytes is the smallest yet and worth it.
        let mut keep = |codec: Codec, n: usize| {
            if n < best.1 && worth_it(sample.len(), n) {
                best = (codec, n);
            }
        };
        if lz4_may_pay(sample, &mut self.compressed, &mut self.table) {
            keep(Codec::Lz4, self.compress(sample, Codec::Lz4));
        }
        match values {
            Values::Ints(width) => {
                let transform = transform::choose(sample, width);
                // One-byte values untransformed would be plain LZ4 under another name.
                if width > 1 || transform != Transform::None {
                    let codec = Codec::Shuffled { transform, width: u8::try_from(width).expect("1, 2, 4 or 8") };
                    keep(codec, self.compress(sample, codec));
                }
            }
            Values::Floats64 => {
                // Random doubles fail within their first few values (one of 17 digits is enough): a
                // cheap test for the many columns that are not decimals. The sample's integers are
                // made once, for the transform's choice and the trial.
                if let Some(k) = decimal_integers(sample, &mut self.decimals) {
                    let transform = transform::choose(&self.decimals, 8);
                    let n = store_decimal(
                        &self.decimals,
                        k,
                        transform,
                        &mut self.shuffled,
                        &mut self.compressed,
                        &mut self.table,
                    );
                    keep(Codec::Decimal { transform }, n);
                }
            }
            Values::Bytes => {}
        }
        best.0
    }
}

/// A stream's blocks are usually alike (one column of one segment): the codec chosen from a block's
/// sample is reused for the next blocks, and chosen afresh from a sample every this many blocks, or
/// after any block its codec did not shrink. Choosing costs two trial compressions of
/// [`SAMPLE_BYTES`], ~16 % more LZ4 work on a 100 KiB block (design/decisions.md D38).
const CHOOSE_EVERY: usize = 4;

/// The codec choices of one stream's blocks, in order (see [`CHOOSE_EVERY`]). A function of the
/// stream's bytes only, so the same input always encodes to the same bytes.
#[derive(Debug, Default)]
pub(crate) struct StreamChoice {
    /// The codec to reuse for the next block, if any.
    reuse: Option<Codec>,
    /// Blocks encoded since the last choice from a sample.
    since_choice: usize,
}

impl StreamChoice {
    /// The codec for the next block: the one to reuse, or `None` when a sample must decide.
    fn next(&mut self) -> Option<Codec> {
        let reuse = self.reuse.filter(|_| self.since_choice < CHOOSE_EVERY);
        if reuse.is_none() {
            self.since_choice = 0;
        }
        self.since_choice += 1;
        reuse
    }
}

/// A block encoded as a stream of its own ([`encode_stream_block`] with a fresh choice).
#[cfg(test)]
pub(crate) fn encode_block(raw: &[u8], values: impl Into<Values>, body: &mut Vec<u8>) -> BlockMeta {
    encode_stream_block(raw, values.into(), body, &mut StreamChoice::default())
}

/// [`encode_stream_block_unless_raw`], with a block stored raw copied into `body` too.
#[cfg(test)]
pub(crate) fn encode_stream_block(
    raw: &[u8],
    values: Values,
    body: &mut Vec<u8>,
    choice: &mut StreamChoice,
) -> BlockMeta {
    let (meta, stored) = encode_stream_block_unless_raw(raw, values, body, choice);
    if stored == BlockBytes::Raw {
        body.extend_from_slice(raw);
    }
    meta
}

/// Where [`encode_stream_block_unless_raw`] left a block's stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockBytes {
    /// Appended to the body.
    InBody,
    /// Not written: the block is stored raw, so its stored bytes are the input as it is, and the
    /// caller puts them in place (a copy, or the input's own buffer lent to the segment).
    Raw,
}

/// Encodes the next block (at most [`BLOCK_BYTES`]) of a stream whose earlier blocks made `choice`,
/// appending its stored bytes to `body`, except that a block stored raw is not copied there: the
/// caller stores `raw` itself, right after whatever `body` holds now (the metadata already describes
/// it there: its length and checksum are `raw`'s).
///
/// `values` says what the stream holds: little-endian integers of 1, 2, 4 or 8 bytes (`raw` is then a
/// whole number of them), whose blocks may be delta- or zigzag-delta-coded and byte-shuffled before
/// LZ4; doubles, whose blocks may be stored as decimal integers so; or bytes. Every block may also be
/// LZ4-compressed or stored raw. The codec is taken from
/// `choice` when it has one to reuse, else chosen from this block's sample; either way the block is
/// stored raw if the codec does not shrink it by 1/16, and then the next block is chosen from its own
/// sample.
pub(crate) fn encode_stream_block_unless_raw(
    raw: &[u8],
    values: Values,
    body: &mut Vec<u8>,
    choice: &mut StreamChoice,
) -> (BlockMeta, BlockBytes) {
    debug_assert!(match values {
        Values::Ints(w) => raw.len().is_multiple_of(w),
        Values::Floats64 => raw.len().is_multiple_of(8),
        Values::Bytes => true,
    });
    let start = body.len();
    let codec = if raw.is_empty() {
        Codec::Raw
    } else {
        ENCODE_SCRATCH.with_borrow_mut(|s| {
            let codec = choice.next().unwrap_or_else(|| s.choose(raw, values));
            choice.reuse = Some(codec);
            if codec == Codec::Raw {
                return Codec::Raw;
            }
            let n = s.compress(raw, codec);
            if !worth_it(raw.len(), n) {
                // The codec failed this block: the next one is chosen from its own sample.
                choice.reuse = None;
                return Codec::Raw;
            }
            body.extend_from_slice(&s.compressed[..n]);
            codec
        })
    };
    if codec == Codec::Raw {
        let meta =
            BlockMeta { codec, raw_len: u32_len(raw.len()), stored_len: u32_len(raw.len()), checksum: checksum(raw) };
        return (meta, BlockBytes::Raw);
    }
    let meta = BlockMeta {
        codec,
        raw_len: u32_len(raw.len()),
        stored_len: u32_len(body.len() - start),
        checksum: checksum(&body[start..]),
    };
    (meta, BlockBytes::InBody)
}

fn delta_decode_in_place(buf: &mut [u8]) {
    let mut acc = 0i64;
    for chunk in buf.chunks_exact_mut(8) {
        let d = i64::from_le_bytes((&*chunk).try_into().expect("chunks_exact yields 8 bytes"));
        acc = acc.wrapping_add(d);
        chunk.copy_from_slice(&acc.to_le_bytes());
    }
}

fn lz4_decode(stored: &[u8], out: &mut [u8], location: &dyn Fn() -> String) -> Result<()> {
    let n = decompress_into(stored, out)
        .map_err(|e| FormatError::malformed("segment", format!("{}: LZ4 data does not decode: {e}", location())))?;
    if n != out.len() {
        return Err(FormatError::malformed(
            "segment",
            format!("{}: decompressed to {n} bytes, expected {}", location(), out.len()),
        ));
    }
    Ok(())
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
    if !out.len().is_multiple_of(meta.codec.value_width() as usize) {
        // The descriptor parser refuses such blocks; this keeps the function safe on its own.
        return Err(FormatError::malformed("segment", format!("{}: ragged integer block", location())));
    }
    match meta.codec {
        Codec::Raw => {
            if stored.len() != out.len() {
                return Err(FormatError::malformed("segment", format!("{}: raw block of wrong length", location())));
            }
            out.copy_from_slice(stored);
        }
        Codec::Lz4 => lz4_decode(stored, out, location)?,
        Codec::DeltaLz4 => {
            lz4_decode(stored, out, location)?;
            delta_decode_in_place(out);
        }
        Codec::Shuffled { transform, width } => with_scratch(&DECODE_SCRATCH, |buf| {
            decode_shuffled(stored, transform, usize::from(width), out, buf, location)
        })?,
        Codec::Decimal { transform } => {
            let (&k, integers) = stored.split_last().ok_or_else(|| {
                FormatError::malformed("segment", format!("{}: decimal block without its exponent", location()))
            })?;
            if k > decimal::MAX_EXPONENT {
                return Err(FormatError::malformed(
                    "segment",
                    format!("{}: decimal exponent {k} over {}", location(), decimal::MAX_EXPONENT),
                ));
            }
            with_scratch(&DECODE_SCRATCH, |buf| decode_shuffled(integers, transform, 8, out, buf, location))?;
            decimal::from_integers_in_place(out, k);
        }
    }
    Ok(())
}

/// Decodes bytes `part` of a block's raw bytes into `out` (`part.len()` bytes), verifying the whole
/// block's checksum. A raw block's part is copied straight from the stored bytes; any other codec
/// decodes the whole block into a per-thread buffer first.
///
/// # Errors
/// As [`decode_block`]; [`FormatError::Malformed`] if `part` lies outside the block.
pub(crate) fn decode_block_part(
    meta: &BlockMeta,
    stored: &[u8],
    part: std::ops::Range<usize>,
    out: &mut [u8],
    location: &dyn Fn() -> String,
) -> Result<()> {
    let raw_len = meta.raw_len as usize;
    if part.start > part.end || part.end > raw_len || out.len() != part.len() {
        return Err(FormatError::malformed(
            "segment",
            format!("{}: bytes {part:?} of a {raw_len}-byte block", location()),
        ));
    }
    if meta.codec == Codec::Raw {
        let computed = checksum(stored);
        if !checksum_matches(meta.checksum, computed) {
            return Err(FormatError::ChecksumMismatch { location: location(), stored: meta.checksum, computed });
        }
        if stored.len() != raw_len {
            return Err(FormatError::malformed("segment", format!("{}: raw block of wrong length", location())));
        }
        out.copy_from_slice(&stored[part]);
        return Ok(());
    }
    with_decoded_block(meta, stored, location, |whole| out.copy_from_slice(&whole[part]))
}

/// Decodes (and verifies) a whole block into a per-thread buffer and calls `f` with its raw bytes.
///
/// # Errors
/// As [`decode_block`].
pub(crate) fn with_decoded_block<R>(
    meta: &BlockMeta,
    stored: &[u8],
    location: &dyn Fn() -> String,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R> {
    with_scratch(&PART_SCRATCH, |buf| {
        let whole = at_least(buf, meta.raw_len as usize);
        decode_block(meta, stored, whole, location).map(|()| f(whole))
    })
}

/// Runs `f` with one of this thread's decode buffers; a buffer grown past what Floe's encoder ever
/// needs (a foreign encoder's huge block) is dropped afterwards rather than kept for the thread's
/// lifetime.
fn with_scratch<R>(scratch: &'static LocalKey<RefCell<Vec<u8>>>, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    scratch.with_borrow_mut(|buf| {
        let result = f(buf);
        if buf.len() > 4 * BLOCK_BYTES {
            *buf = Vec::new();
        }
        result
    })
}

/// Decodes the layout written by [`encode_shuffled`] into `out` (a whole, non-zero number of `width`-byte
/// values), using `scratch` for the planes.
fn decode_shuffled(
    stored: &[u8],
    transform: Transform,
    width: usize,
    out: &mut [u8],
    scratch: &mut Vec<u8>,
    location: &dyn Fn() -> String,
) -> Result<()> {
    let bad = |reason: &str| FormatError::malformed("segment", format!("{}: {reason}", location()));
    let n = out.len() / width;
    if n == 0 || !out.len().is_multiple_of(width) {
        return Err(bad("empty or ragged integer block"));
    }
    let (&constant, rest) = stored.split_first().ok_or_else(|| bad("no plane mask"))?;
    if u16::from(constant) >> width != 0 {
        return Err(bad("plane mask names planes past the value width"));
    }
    let count = constant.count_ones() as usize;
    let (bytes, rest) = rest.split_at_checked(count).ok_or_else(|| bad("constant planes cut short"))?;
    let (first, payload) = if transform.keeps_first() {
        let (first, payload) = rest.split_at_checked(width).ok_or_else(|| bad("first value cut short"))?;
        let mut word = [0u8; 8];
        word[..width].copy_from_slice(first);
        (u64::from_le_bytes(word), payload)
    } else {
        (0, rest)
    };
    let m = transform.shuffled_count(n);
    let kept = width - count;
    let planes = at_least(scratch, width * m);
    let (compressed, constants) = planes.split_at_mut(kept * m);
    if kept == 0 {
        if !payload.is_empty() {
            return Err(bad("bytes after a block of constant planes"));
        }
    } else {
        lz4_decode(payload, compressed, location)?;
    }
    for (plane, &byte) in constants.chunks_exact_mut(m.max(1)).zip(bytes) {
        plane.fill(byte);
    }
    let (compressed, constants) = (&*compressed, &*constants);
    let mut refs: [&[u8]; 8] = [&[]; 8];
    let (mut next_kept, mut next_constant) = (0, 0);
    for (j, slot) in refs.iter_mut().enumerate().take(width) {
        if constant & (1 << j) != 0 {
            *slot = &constants[next_constant * m..(next_constant + 1) * m];
            next_constant += 1;
        } else {
            *slot = &compressed[next_kept * m..(next_kept + 1) * m];
            next_kept += 1;
        }
    }
    transform::inverse(&refs[..width], width, transform, first, out);
    Ok(())
}

/// Format 1's delta + LZ4 encoder, kept to test that such blocks still decode.
#[cfg(test)]
pub(crate) fn encode_delta_lz4_block(raw: &[u8], body: &mut Vec<u8>) -> BlockMeta {
    let mut deltas = Vec::with_capacity(raw.len());
    let mut prev = 0i64;
    for chunk in raw.chunks_exact(8) {
        let v = i64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        deltas.extend_from_slice(&v.wrapping_sub(prev).to_le_bytes());
        prev = v;
    }
    let start = body.len();
    body.extend_from_slice(&lz4_flex::block::compress(&deltas));
    BlockMeta {
        codec: Codec::DeltaLz4,
        raw_len: u32_len(raw.len()),
        stored_len: u32_len(body.len() - start),
        checksum: checksum(&body[start..]),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(meta: &BlockMeta, stored: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; meta.raw_len as usize];
        decode_block(meta, stored, &mut out, &|| "test".into()).expect("decodes");
        out
    }

    fn round_trip(raw: &[u8], values: impl Into<Values>) -> BlockMeta {
        let mut body = vec![7u8; 3];
        let meta = encode_block(raw, values, &mut body);
        assert_eq!(body.len(), 3 + meta.stored_len as usize);
        assert!(meta.codec.is_plausible(meta.raw_len, meta.stored_len));
        assert_eq!(Codec::from_code(meta.codec.code(), 3).expect("known code"), meta.codec);
        assert_eq!(decode(&meta, &body[3..]), raw);
        meta
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn le(values: impl Iterator<Item = i64>) -> Vec<u8> {
        values.flat_map(i64::to_le_bytes).collect()
    }

    #[test]
    fn chooses_the_right_codec() {
        let sorted = le((0..40_000i64).map(|v| v * 1_000_003 + 1_600_000_000));
        assert_eq!(round_trip(&sorted, Some(8)).codec, Codec::Shuffled { transform: Transform::Delta, width: 8 });
        assert_eq!(round_trip(&sorted, None).codec, Codec::Lz4);
        let mut x = 10_000i64;
        let steps = noise(40_000);
        let walk = le(steps.iter().map(|s| {
            x += i64::from(s % 5) - 2;
            x
        }));
        assert_eq!(round_trip(&walk, Some(8)).codec, Codec::Shuffled { transform: Transform::ZigZag, width: 8 });
        assert_eq!(round_trip(&noise(100_000), None).codec, Codec::Raw);
        assert_eq!(round_trip(&noise(100_000), Some(8)).codec, Codec::Raw);
        assert_eq!(round_trip(&noise(4096), Some(2)).codec, Codec::Raw);
        assert_eq!(round_trip(&[], Some(8)).codec, Codec::Raw);
        assert_eq!(round_trip(&[5], Some(1)).codec, Codec::Raw);
        let unsorted = le([5i64, 3, 9, 9].into_iter());
        round_trip(&unsorted, Some(8));
        assert_eq!(round_trip(&vec![0u8; 1 << 18], None).codec, Codec::Lz4);
    }

    #[test]
    fn plain_lz4_is_tried_on_a_sample_only_if_its_first_bytes_pay() {
        let (mut out, mut table) = (Vec::new(), CompressTable::default());
        // Random bytes: nothing to find, in the probe or the sample.
        assert!(!lz4_may_pay(&noise(SAMPLE_BYTES), &mut out, &mut table));
        // Doubles drawn from 500 random values: repeats show within the first 2 KiB already.
        let picks = noise(SAMPLE_BYTES);
        let values = noise(500 * 8);
        let repeats: Vec<u8> = picks
            .chunks_exact(2)
            .flat_map(|p| {
                let i = usize::from(u16::from_le_bytes([p[0], p[1]])) % 500;
                values[i * 8..i * 8 + 8].to_vec()
            })
            .take(SAMPLE_BYTES)
            .collect();
        assert!(lz4_may_pay(&repeats, &mut out, &mut table));
        assert_eq!(round_trip(&repeats, None).codec, Codec::Lz4);
        // Samples too short to probe are always tried.
        assert!(lz4_may_pay(&noise(2 * PROBE_BYTES), &mut out, &mut table));
        // The price: a sample random in its first 2 KiB and compressible after is stored raw (its
        // stream chooses again from a later block's sample).
        let mut late = noise(PROBE_BYTES);
        late.resize(SAMPLE_BYTES, 0);
        assert!(!lz4_may_pay(&late, &mut out, &mut table));
        assert_eq!(round_trip(&late, None).codec, Codec::Raw);
    }

    /// The codecs of `blocks` encoded as one stream (each block decoded back and checked).
    fn stream_codecs(blocks: &[Vec<u8>], ints: Option<usize>) -> Vec<Codec> {
        let mut choice = StreamChoice::default();
        let mut body = Vec::new();
        blocks
            .iter()
            .map(|raw| {
                let start = body.len();
                let meta = encode_stream_block(raw, ints.into(), &mut body, &mut choice);
                assert_eq!(decode(&meta, &body[start..]), *raw);
                meta.codec
            })
            .collect()
    }

    #[test]
    fn a_stream_reuses_its_choice_and_chooses_again_in_time() {
        let shuffled = Codec::Shuffled { transform: Transform::Delta, width: 8 };
        let sorted = |b: i64| le((0..4096i64).map(|v| (b * 4096 + v) * 1_000_003));
        let alike: Vec<Vec<u8>> = (0..9).map(sorted).collect();
        assert_eq!(stream_codecs(&alike, Some(8)), vec![shuffled; 9]);
        // Incompressible blocks first: a reused `Raw` lasts until the next choice from a sample, at
        // most CHOOSE_EVERY blocks in all.
        let mut mixed: Vec<Vec<u8>> = vec![noise(32_768), noise(32_768)];
        mixed.extend((0..6).map(sorted));
        let codecs = stream_codecs(&mixed, Some(8));
        assert_eq!(codecs[..CHOOSE_EVERY], [Codec::Raw; CHOOSE_EVERY]);
        assert!(codecs[CHOOSE_EVERY..].iter().all(|c| *c == shuffled), "{codecs:?}");
        // A reused codec that does not shrink a block is dropped: the next block is chosen from its
        // own sample (zigzag deltas, where the reused Lz4 would have compressed the values plainly).
        let mut walk = 0i64;
        let steps = noise(4 * 4096);
        let mut step = steps.iter();
        let mut zigzag = || {
            le((0..4096).map(|_| {
                walk += i64::from(step.next().expect("enough steps") % 5) - 2;
                walk
            }))
        };
        let text: Vec<u8> = b"abcdefgh".iter().copied().cycle().take(32_768).collect();
        let turned = vec![text, noise(32_768), zigzag(), zigzag()];
        let codecs = stream_codecs(&turned, Some(8));
        assert_eq!(codecs[..2], [Codec::Lz4, Codec::Raw]);
        assert_eq!(codecs[2..], [Codec::Shuffled { transform: Transform::ZigZag, width: 8 }; 2]);
        // The same stream always encodes to the same bytes.
        let encode = || {
            let (mut choice, mut body) = (StreamChoice::default(), Vec::new());
            for raw in &mixed {
                encode_stream_block(raw, Values::Ints(8), &mut body, &mut choice);
            }
            body
        };
        assert_eq!(encode(), encode());
    }

    #[test]
    fn constant_planes_are_dropped_within_the_expansion_bound() {
        // 100 values 7 apart: every plane of the differences is constant; 17 bytes are stored.
        let short = le((0..100i64).map(|v| 1_000_000 + 7 * v));
        let meta = round_trip(&short, Some(8));
        assert_eq!((meta.codec, meta.stored_len), (Codec::Shuffled { transform: Transform::Delta, width: 8 }, 17));
        // 32k such values would be more than 256x: plane 0 is stored after all, as an LZ4 run of
        // short matches from far enough back to decode in strides (lz4_run); still well compressed.
        let long = le((0..32_768i64).map(|v| 1_000_000 + 7 * v));
        let meta = round_trip(&long, Some(8));
        assert_eq!(meta.codec, Codec::Shuffled { transform: Transform::Delta, width: 8 });
        assert!(meta.stored_len < 3072, "{meta:?}");
        assert!(lz4_raw_len_is_plausible(meta.raw_len, meta.stored_len), "{meta:?}");
        // Constant values, and a high plane constant but not zero.
        round_trip(&le(std::iter::repeat_n(-5i64, 5000)), Some(8));
        round_trip(&le((0..5000i64).map(|v| 0x1700_0000_0000_0000 | (v * 7919 % 65_536))), Some(8));
        for width in [1, 2, 4] {
            round_trip(&vec![3u8; 4096 * width], Some(width));
        }
    }

    #[test]
    fn lz4_runs_decode_to_the_run_and_copy_from_far_enough_back() {
        for len in (0..400).chain([4095, 32_767, 1 << 18]) {
            let mut out = vec![0u8; len + len / 255 + 16];
            let n = lz4_run(0xA5, len, &mut out);
            let decoded = lz4_flex::block::decompress(&out[..n], len).expect("a valid LZ4 block");
            assert_eq!(decoded, vec![0xA5; len], "len {len}");
            assert!(n <= 2 * RUN_DISTANCE + 4 * (len / RUN_MATCH) + 8, "len {len}: {n} bytes");
        }
        // Every match of a long run: distance RUN_DISTANCE, length RUN_MATCH (token 15 + 30).
        let mut out = vec![0u8; 2000];
        let n = lz4_run(7, 1000, &mut out);
        let first = [0xFF, (RUN_DISTANCE - 15) as u8];
        assert_eq!(&out[..2], &first);
        // After the literals, the first match (distance, then the length byte), then whole sequences.
        assert_eq!(&out[2 + RUN_DISTANCE..5 + RUN_DISTANCE], &[RUN_DISTANCE as u8, 0, (RUN_MATCH - 19) as u8]);
        let seq = [0x0F, RUN_DISTANCE as u8, 0, (RUN_MATCH - 19) as u8];
        for i in 0..17 {
            assert_eq!(&out[5 + RUN_DISTANCE + 4 * i..9 + RUN_DISTANCE + 4 * i], &seq, "sequence {i}");
        }
        // 18 matches of 49 after 64 literals leave 54 bytes of literals (token 15 + 39).
        assert_eq!(&out[73 + RUN_DISTANCE..75 + RUN_DISTANCE], &[0xF0, 39]);
        assert_eq!(n, 75 + RUN_DISTANCE + 54);
    }

    #[test]
    fn malformed_shuffled_blocks_are_refused() {
        let codec = Codec::Shuffled { transform: Transform::Delta, width: 4 };
        let mut out = vec![0u8; 16];
        for stored in
            [&[][..], &[0x10], &[0b11, 1], &[0b1111, 1, 2, 3, 4, 5, 6, 7], &[0b1111, 1, 2, 3, 4, 0, 0, 0, 0, 9]]
        {
            let meta = BlockMeta { codec, raw_len: 16, stored_len: stored.len() as u32, checksum: checksum(stored) };
            let err = decode_block(&meta, stored, &mut out, &|| "test".into()).expect_err("refused");
            assert!(matches!(err, FormatError::Malformed { .. }), "{stored:?}: {err}");
        }
        // A valid block of constant planes: first value 5, then differences of 0x04030201.
        let stored = [0b1111, 1, 2, 3, 4, 5, 0, 0, 0];
        let meta = BlockMeta { codec, raw_len: 16, stored_len: 9, checksum: checksum(&stored) };
        decode_block(&meta, &stored, &mut out, &|| "test".into()).expect("valid");
        let expected: Vec<u8> = (0..4u32).flat_map(|i| (5 + i * 0x0403_0201).to_le_bytes()).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn every_code_parses_back_and_format_1_knows_only_three() {
        for code in 0..=255u8 {
            let v2 = Codec::from_code(code, 2);
            assert_eq!(v2.is_ok(), code <= 2 || (16..28).contains(&code), "code {code}");
            if let Ok(c) = v2 {
                assert_eq!(c.code(), code);
            }
            assert_eq!(Codec::from_code(code, 1).is_ok(), code <= 2, "code {code} in format 1");
        }
    }

    #[test]
    fn format_1_delta_blocks_still_decode() {
        let sorted = le((0..10_000i64).map(|v| v * 1_000 + 1_600_000_000));
        let mut body = Vec::new();
        let meta = encode_delta_lz4_block(&sorted, &mut body);
        assert_eq!(decode(&meta, &body), sorted);
    }

    #[test]
    fn checksum_catches_any_flip() {
        let raw: Vec<u8> = (0..1000u32).flat_map(|v| (v % 7).to_le_bytes()).collect();
        for ints in [None, Some(4)] {
            let mut body = Vec::new();
            let meta = encode_block(&raw, ints, &mut body);
            assert_ne!(meta.codec, Codec::Raw);
            let mut out = vec![0u8; raw.len()];
            for i in 0..body.len() {
                body[i] ^= 0x10;
                let err = decode_block(&meta, &body, &mut out, &|| "col x".into()).expect_err("flip caught");
                assert!(matches!(err, FormatError::ChecksumMismatch { .. }));
                body[i] ^= 0x10;
            }
        }
    }

    fn doubles(values: impl IntoIterator<Item = f64>) -> Vec<u8> {
        values.into_iter().flat_map(f64::to_le_bytes).collect()
    }

    #[test]
    fn decimal_doubles_are_stored_as_integers_and_come_back_bit_for_bit() {
        let mut price = 10_000i64;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let cents = doubles((0..12_800).map(|_| {
            price += (next() % 7) as i64 - 3;
            price as f64 / 100.0
        }));
        let meta = round_trip(&cents, Values::Floats64);
        assert_eq!(meta.codec, Codec::Decimal { transform: Transform::ZigZag });
        // A random walk in cents: about a byte a value, where LZ4 on the doubles keeps most of them.
        assert!(meta.stored_len < meta.raw_len / 5, "{} of {} bytes", meta.stored_len, meta.raw_len);
        let whole = doubles((0..1000).map(|_| (next() % 1_000_000) as f64));
        assert!(matches!(round_trip(&whole, Values::Floats64).codec, Codec::Decimal { .. }));
        // Doubles that are not decimals: random bits, NaN, -0.0.
        let random = doubles((0..1000).map(|_| f64::from_bits(next() >> 2)));
        assert!(!matches!(round_trip(&random, Values::Floats64).codec, Codec::Decimal { .. }));
        for odd in [f64::NAN, -0.0, f64::INFINITY] {
            let mut values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 4.0).collect();
            values[500] = odd;
            let meta = round_trip(&doubles(values), Values::Floats64);
            assert!(!matches!(meta.codec, Codec::Decimal { .. }), "{odd:?}: {:?}", meta.codec);
        }
        // The sample says decimal, a later value does not fit: the block keeps another codec.
        let mut values: Vec<f64> = (0..4000).map(|i| f64::from(i) / 100.0).collect();
        values[3999] = 0.1 + 0.2;
        assert!(!matches!(round_trip(&doubles(values), Values::Floats64).codec, Codec::Decimal { .. }));
    }

    #[test]
    fn a_decimal_block_is_refused_without_its_exponent_or_with_one_too_large() {
        let mut body = Vec::new();
        let raw = doubles((0..2000).map(|i| f64::from(i) / 8.0));
        let meta = encode_block(&raw, Values::Floats64, &mut body);
        assert!(matches!(meta.codec, Codec::Decimal { .. }));
        let mut out = vec![0u8; raw.len()];
        let mut check = |stored: &[u8]| {
            let meta = BlockMeta { stored_len: u32_len(stored.len()), checksum: checksum(stored), ..meta };
            decode_block(&meta, stored, &mut out, &|| "b".into()).expect_err("refused").to_string()
        };
        assert!(check(&[]).contains("without its exponent"));
        let mut bad = body.clone();
        *bad.last_mut().expect("an exponent") = decimal::MAX_EXPONENT + 1;
        assert!(check(&bad).contains("decimal exponent 19"));
    }

    proptest! {
        #[test]
        fn double_blocks_round_trip(ints in prop::collection::vec(-10_000_000i64..10_000_000, 1..3000),
                                    k in 0u8..=decimal::MAX_EXPONENT, noise in prop::collection::vec(any::<u64>(), 0..3)) {
            // Decimals at any exponent, sometimes with a few arbitrary doubles among them.
            let mut values: Vec<f64> = ints.iter().map(|&i| i as f64 / 10f64.powi(i32::from(k))).collect();
            for (j, &b) in noise.iter().enumerate() {
                let at = (b as usize).wrapping_add(j) % values.len();
                values[at] = f64::from_bits(b);
            }
            round_trip(&doubles(values), Values::Floats64);
        }

        #[test]
        fn integer_blocks_round_trip(values in prop::collection::vec(any::<i64>(), 0..3000), w in 0usize..4,
                                     step in 0i64..1000, walk in any::<bool>()) {
            // A mix of random, sorted and random-walk values, at every width.
            let width = 1usize << w;
            let mut acc = 0i64;
            let raw: Vec<u8> = values.iter().flat_map(|&v| {
                acc = if walk { acc.wrapping_add(v % (step + 1)) } else { v };
                acc.to_le_bytes()[..width].to_vec()
            }).collect();
            round_trip(&raw, Some(width));
        }
    }
}
