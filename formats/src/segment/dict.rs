//! Dictionary coding of variable-length columns (segment format 2): a `Utf8`, `LargeUtf8`, `Binary` or
//! `LargeBinary` column with few distinct values is stored as one key per row plus the distinct values,
//! and materialized back into plain offsets and data when decoded (see `design/format.md` 2.4).

use arrow_buffer::{BooleanBuffer, bit_util};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{FormatError, Result};

/// A column's values as keys into a dictionary of its distinct values (in order of first appearance).
#[derive(Debug)]
pub(crate) struct Dictionary {
    /// One little-endian key of `key_width` bytes per row; 0 for null rows.
    pub(crate) keys: Vec<u8>,
    /// 1, 2 or 4.
    pub(crate) key_width: usize,
    /// The end offset of each dictionary entry (`offset_width` bytes each), the leading 0 implied.
    pub(crate) ends: Vec<u8>,
    /// The entries' bytes.
    pub(crate) data: Vec<u8>,
    /// Bytes of the non-null values once materialized.
    pub(crate) data_len: u64,
}

/// The `i`-th `W`-byte little-endian unsigned integer of `bytes`.
#[inline(always)]
fn read_uint<const W: usize>(bytes: &[u8], i: usize) -> u64 {
    let mut word = [0u8; 8];
    word[..W].copy_from_slice(&bytes[i * W..(i + 1) * W]);
    u64::from_le_bytes(word)
}

/// Checks only within the first rows: a column whose first `PROBE_ROWS` non-null values hold more
/// than `PROBE_MAX_DISTINCT` distinct ones is taken to be high-cardinality, and hashing stops there.
const PROBE_ROWS: usize = 1024;
const PROBE_MAX_DISTINCT: usize = 1000;

/// Builds the dictionary form of a variable-length column whose row `i` is
/// `values[end(i - 1)..end(i)]` (`ends`: one `offset_width`-byte end offset per row, the leading 0
/// implied), or `None` when the encoder's rule says the plain form is better:
///
/// - at most `rows / 2` distinct non-null values (and the first 1024 non-null values not nearly all
///   distinct, which stops the count early on unique columns), and
/// - keys plus dictionary fewer raw bytes than offsets plus data.
///
/// `validity`: one bit per row, `None` when no row is null.
pub(crate) fn build(
    ends: &[u8],
    offset_width: usize,
    values: &[u8],
    validity: Option<&BooleanBuffer>,
) -> Option<Dictionary> {
    if offset_width == 4 { build_w::<4>(ends, values, validity) } else { build_w::<8>(ends, values, validity) }
}

fn build_w<const O: usize>(ends: &[u8], values: &[u8], validity: Option<&BooleanBuffer>) -> Option<Dictionary> {
    let offset_width = O;
    let rows = ends.len() / offset_width;
    if validity.is_some_and(|v| v.len() != rows) {
        return None;
    }
    let max_distinct = rows / 2;
    // Open addressing, at most a quarter full so that most lookups end at the first slot. A slot holds
    // the high 32 bits of the value's hash and its entry index + 1 (0 = empty), and for a value of at
    // most 15 bytes the value itself (`Entry::inline`): such a lookup reads one slot and no entry.
    let mut slots = vec![Slot::EMPTY; 64];
    let mut entries: Vec<Entry> = Vec::new();
    let mut keys: Vec<u32> = Vec::with_capacity(rows);
    let (mut start, mut seen, mut data_len) = (0usize, 0usize, 0u64);
    for i in 0..rows {
        let end = usize::try_from(read_uint::<O>(ends, i)).ok()?;
        let value = values.get(start..end)?;
        start = end;
        if validity.is_some_and(|v| !v.value(i)) {
            keys.push(0);
            continue;
        }
        seen += 1;
        data_len += value.len() as u64;
        let probe = Entry::new(values, end - value.len(), end);
        let inline = probe.inline();
        let mask = slots.len() - 1;
        let mut slot = probe.slot(slots.len());
        let tag = probe.hash & TAG;
        let key = loop {
            let held = slots[slot];
            if held.meta == 0 {
                if entries.len() >= max_distinct {
                    return None;
                }
                entries.push(probe);
                slots[slot] = Slot { meta: tag | entries.len() as u64, inline };
                if entries.len() * 4 > slots.len() {
                    slots = rehash(&entries, slots.len() * 2);
                }
                break entries.len() - 1;
            }
            let index = (held.meta & !TAG) as usize - 1;
            if held.meta & TAG == tag
                && if inline[1] == NOT_INLINE { entries[index].same(&probe, values) } else { held.inline == inline }
            {
                break index;
            }
            slot = (slot + 1) & mask;
        };
        keys.push(u32::try_from(key).ok()?);
        if seen == PROBE_ROWS && entries.len() > PROBE_MAX_DISTINCT {
            return None;
        }
    }
    let distinct: Vec<&[u8]> = entries.iter().map(|e| &values[e.start..e.end]).collect();
    finish(&keys, &distinct, offset_width, data_len, values.len())
}

/// The dictionary form of a column already reduced to `keys` (one per row, 0 for null rows) into its
/// `distinct` values in order of first appearance, or `None` if it takes at least as many raw bytes as
/// the plain form (`plain_data_len` bytes of data); `data_len`: bytes of the non-null values.
fn finish(
    keys: &[u32],
    distinct: &[&[u8]],
    offset_width: usize,
    data_len: u64,
    plain_data_len: usize,
) -> Option<Dictionary> {
    let rows = keys.len();
    let key_width = if distinct.len() <= 1 << 8 {
        1
    } else if distinct.len() <= 1 << 16 {
        2
    } else {
        4
    };
    let dict_bytes: usize = distinct.iter().map(|v| v.len()).sum();
    let coded = rows * key_width + distinct.len() * offset_width + dict_bytes;
    let plain = rows * offset_width + plain_data_len;
    if coded >= plain {
        return None;
    }
    let mut out = Dictionary {
        keys: Vec::with_capacity(rows * key_width),
        key_width,
        ends: Vec::with_capacity(distinct.len() * offset_width),
        data: Vec::with_capacity(dict_bytes),
        data_len,
    };
    for v in distinct {
        out.data.extend_from_slice(v);
        out.ends.extend_from_slice(&(out.data.len() as u64).to_le_bytes()[..offset_width]);
    }
    match key_width {
        1 => out.keys.extend(keys.iter().map(|&k| k as u8)),
        2 => out.keys.extend(keys.iter().flat_map(|&k| (k as u16).to_le_bytes())),
        _ => out.keys.extend(keys.iter().flat_map(|&k| k.to_le_bytes())),
    }
    Some(out)
}

/// A dictionary array's values: entry `c` is `values[end(c - 1)..end(c)]` (`ends`: one `offset_width`-byte
/// end offset per entry, rebased to start at 0, the leading 0 implied).
pub(crate) struct CodedValues<'a> {
    pub(crate) ends: &'a [u8],
    pub(crate) offset_width: usize,
    pub(crate) values: &'a [u8],
}

impl CodedValues<'_> {
    pub(crate) fn len(&self) -> usize {
        self.ends.len() / self.offset_width
    }

    /// Entry `c`, or `None` if the offsets do not delimit one inside `values`.
    pub(crate) fn get(&self, c: usize) -> Option<&[u8]> {
        let end = |i: usize| -> Option<usize> {
            let at = i.checked_mul(self.offset_width)?;
            let word = self.ends.get(at..at + self.offset_width)?;
            let mut le = [0u8; 8];
            le[..self.offset_width].copy_from_slice(word);
            usize::try_from(u64::from_le_bytes(le)).ok()
        };
        let start = if c == 0 { 0 } else { end(c - 1)? };
        self.values.get(start..end(c)?)
    }
}

/// What [`recode`] made of a column given as codes.
pub(crate) enum Recoded {
    /// The dictionary form, byte for byte what [`build`] makes of the same strings given plainly.
    Coded(Dictionary),
    /// [`build`] of the same strings would return `None`: the plain form is the one to store.
    Plain,
}

/// The dictionary form of a string column given as `keys` (one per row, any integer type) into
/// `dictionary`, exactly as [`build`] makes it from the same strings given plainly (null rows holding no
/// bytes): same rule, same keys in order of first appearance, equal strings under different keys
/// merged. The difference is the work: a key seen before costs one table lookup instead of hashing
/// its row's string. `validity`: one bit per row, `None` when no row is null.
///
/// # Errors
/// [`FormatError::InvalidInput`] naming `column` for a non-null row whose key is negative or outside the
/// dictionary, or a dictionary entry its offsets do not delimit.
pub(crate) fn recode<K: arrow_buffer::ArrowNativeType>(
    column: &str,
    keys: &[K],
    dictionary: &CodedValues<'_>,
    validity: Option<&BooleanBuffer>,
) -> Result<Recoded> {
    let rows = keys.len();
    let bad = |reason: String| FormatError::InvalidInput(format!("column {column:?} (strings as codes): {reason}"));
    if validity.is_some_and(|v| v.len() != rows) {
        return Err(bad(format!("validity of {} rows for {rows} keys", validity.map_or(0, BooleanBuffer::len))));
    }
    let max_distinct = rows / 2;
    // Input key -> output key (u32::MAX: not seen yet); equal strings under two input keys are found by
    // content the first time each input key is met.
    let mut local = vec![u32::MAX; dictionary.len()];
    let mut by_content: std::collections::HashMap<&[u8], u32> = std::collections::HashMap::new();
    let mut distinct: Vec<&[u8]> = Vec::new();
    let mut out: Vec<u32> = Vec::with_capacity(rows);
    let (mut seen, mut data_len) = (0usize, 0u64);
    for (i, key) in keys.iter().enumerate() {
        if validity.is_some_and(|v| !v.value(i)) {
            out.push(0);
            continue;
        }
        let code = key
            .to_usize()
            .filter(|&c| c < local.len())
            .ok_or_else(|| bad(format!("row {i}: key {key:?} outside the dictionary of {}", local.len())))?;
        seen += 1;
        let mut k = local[code];
        if k == u32::MAX {
            let value = dictionary.get(code).ok_or_else(|| bad(format!("dictionary entry {code}: bad offsets")))?;
            k = match by_content.get(value) {
                Some(&k) => k,
                None => {
                    if distinct.len() >= max_distinct {
                        return Ok(Recoded::Plain);
                    }
                    let k = u32::try_from(distinct.len()).map_err(|_| bad("too many distinct values".into()))?;
                    distinct.push(value);
                    by_content.insert(value, k);
                    k
                }
            };
            local[code] = k;
        }
        data_len += distinct[k as usize].len() as u64;
        out.push(k);
        if seen == PROBE_ROWS && distinct.len() > PROBE_MAX_DISTINCT {
            return Ok(Recoded::Plain);
        }
    }
    let plain_data_len = usize::try_from(data_len).map_err(|_| bad("too many bytes".into()))?;
    Ok(match finish(&out, &distinct, dictionary.offset_width, data_len, plain_data_len) {
        Some(d) => Recoded::Coded(d),
        None => Recoded::Plain,
    })
}

/// One distinct value while building: `values[start..end]`, its hash, and for values of at most 16
/// bytes the value itself in two zero-padded words, so that most comparisons touch no bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    words: [u64; 2],
    start: usize,
    end: usize,
}

/// Longer values are hashed with xxh3 and compared byte by byte.
const SHORT: usize = 16;

/// The bits of a hash kept in a slot beside the entry index.
const TAG: u64 = 0xffff_ffff_0000_0000;

impl Entry {
    #[inline(always)]
    fn new(values: &[u8], start: usize, end: usize) -> Self {
        let len = end - start;
        if len > SHORT {
            return Entry { hash: xxh3_64(&values[start..end]), words: [0; 2], start, end };
        }
        let mut padded = [0u8; SHORT];
        match values.get(start..start + SHORT) {
            // Load 16 bytes and clear those past the value: no variable-length copy.
            Some(window) => padded.copy_from_slice(window),
            None => padded[..len].copy_from_slice(&values[start..end]),
        }
        let mut words = [
            u64::from_le_bytes(padded[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(padded[8..].try_into().expect("8 bytes")),
        ];
        // Keep the value's bytes only (`len <= 16`): branch-free masks.
        let keep = u128::MAX.checked_shr(128 - 8 * len as u32).unwrap_or(0);
        words[0] &= keep as u64;
        words[1] &= (keep >> 64) as u64;
        // Folded 128-bit multiply (as in wyhash): cheap and well mixed in the low bits used for slots.
        let mix = u128::from(words[0] ^ 0xa076_1d64_78bd_642f)
            * u128::from(words[1] ^ 0xe703_7ed1_a0b4_28db ^ ((len as u64) << 56));
        Entry { hash: (mix as u64) ^ ((mix >> 64) as u64), words, start, end }
    }

    /// The first slot to probe in a table of `len` (a power of two) slots: the top bits of a
    /// Fibonacci-hashing multiply, which mixes every bit of the hash in.
    #[inline(always)]
    fn slot(&self, len: usize) -> usize {
        (self.hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - len.trailing_zeros())) as usize
    }

    /// A value of at most 15 bytes as two words that identify it exactly: its zero-padded bytes, with
    /// the length in the (otherwise zero) top byte of the second; `[0, NOT_INLINE]` for a longer one.
    #[inline(always)]
    fn inline(&self) -> [u64; 2] {
        let len = self.end - self.start;
        if len < SHORT { [self.words[0], self.words[1] | (len as u64) << 56] } else { [0, NOT_INLINE] }
    }

    #[inline(always)]
    fn same(&self, other: &Entry, values: &[u8]) -> bool {
        let len = self.end - self.start;
        self.hash == other.hash
            && len == other.end - other.start
            && if len <= SHORT {
                self.words == other.words
            } else {
                values[self.start..self.end] == values[other.start..other.end]
            }
    }
}

/// A slot of the table: `meta` is the hash's high 32 bits and the entry index + 1 (0: empty);
/// `inline` is [`Entry::inline`] of the entry's value.
#[derive(Debug, Clone, Copy)]
struct Slot {
    meta: u64,
    inline: [u64; 2],
}

impl Slot {
    const EMPTY: Slot = Slot { meta: 0, inline: [0, NOT_INLINE] };
}

/// [`Entry::inline`]'s second word for a value of 16 bytes or more, compared through its entry. The
/// second word of an inlined value has its length (at most 15) in the top byte, so it is never this.
const NOT_INLINE: u64 = u64::MAX;

fn rehash(entries: &[Entry], len: usize) -> Vec<Slot> {
    let mut slots = vec![Slot::EMPTY; len];
    for (i, e) in entries.iter().enumerate() {
        let mut slot = e.slot(len);
        while slots[slot].meta != 0 {
            slot = (slot + 1) & (len - 1);
        }
        slots[slot] = Slot { meta: e.hash & TAG | (i as u64 + 1), inline: e.inline() };
    }
    slots
}

/// Bytes of zeros after a dictionary's data, so that short values are copied 16 bytes at a time.
const PAD: usize = 16;

/// A decoded dictionary, checked: entry `k` is `data[starts[k]..starts[k + 1]]`; `data` ends in
/// [`PAD`] zero bytes past the last entry.
pub(crate) struct Entries {
    starts: Vec<usize>,
    data: Vec<u8>,
}

impl Entries {
    /// Checks the decoded dictionary end offsets (`offset_width` bytes each) against `data`: they never
    /// decrease and end at `data.len()`; for UTF-8, `data` is valid UTF-8 and every offset falls on a
    /// character boundary, so every entry, and any concatenation of entries, is valid UTF-8.
    pub(crate) fn new(ends: &[u8], offset_width: usize, mut data: Vec<u8>, utf8: bool, column: &str) -> Result<Self> {
        let bad = |reason: String| FormatError::malformed("segment", format!("column {column:?} dictionary: {reason}"));
        let text =
            if utf8 { Some(std::str::from_utf8(&data).map_err(|e| bad(format!("invalid UTF-8: {e}")))?) } else { None };
        let count = ends.len() / offset_width;
        let mut starts = Vec::with_capacity(count + 1);
        starts.push(0usize);
        let mut prev = 0usize;
        for i in 0..count {
            let end = if offset_width == 4 { read_uint::<4>(ends, i) } else { read_uint::<8>(ends, i) };
            let end = usize::try_from(end).map_err(|_| bad("offset out of range".into()))?;
            if end < prev || end > data.len() || text.is_some_and(|t| !t.is_char_boundary(end)) {
                return Err(bad(format!("bad end offset {end} after {prev} ({} data bytes)", data.len())));
            }
            starts.push(end);
            prev = end;
        }
        if prev != data.len() {
            return Err(bad(format!("offsets end at {prev}, data has {} bytes", data.len())));
        }
        data.resize(data.len() + PAD, 0);
        Ok(Self { starts, data })
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// The bytes the rows with `keys` (`key_width` bytes each) take once materialized: the sum of their
    /// entries' lengths, null rows (`validity` bit clear) counting 0. Sizes a window's data buffer.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] for a non-null row's key outside the dictionary.
    pub(crate) fn materialized_len(
        &self,
        keys: &[u8],
        key_width: usize,
        validity: Option<&[u8]>,
        column: &str,
    ) -> Result<usize> {
        let mut total = 0usize;
        for i in 0..keys.len() / key_width {
            if validity.is_some_and(|v| !bit_util::get_bit(v, i)) {
                continue;
            }
            let key = match key_width {
                1 => read_uint::<1>(keys, i),
                2 => read_uint::<2>(keys, i),
                _ => read_uint::<4>(keys, i),
            } as usize;
            if key >= self.len() {
                return Err(FormatError::malformed(
                    "segment",
                    format!("column {column:?}: row {i}: key {key} outside the dictionary of {}", self.len()),
                ));
            }
            total += self.starts[key + 1] - self.starts[key];
        }
        Ok(total)
    }
}

/// Writes the plain form of a dictionary-coded column: for each row, its entry's bytes into `data` and
/// its end offset plus `base` into `ends` (`offset_width` bytes per row). `data` must be exactly the
/// declared materialized length. `validity` holds one bit per row from bit 0 (`None`: no nulls).
///
/// # Errors
/// [`FormatError::Malformed`] for a key of a non-null row outside the dictionary, a key other than 0 on
/// a null row, or values that do not add up to exactly `data.len()` bytes;
/// [`FormatError::InvalidInput`] if `base + data.len()` overflows the offsets.
#[allow(clippy::too_many_arguments)]
pub(crate) fn materialize(
    keys: &[u8],
    key_width: usize,
    dictionary: &Entries,
    validity: Option<&[u8]>,
    ends: &mut [u8],
    offset_width: usize,
    data: &mut [u8],
    base: u64,
    column: &str,
) -> Result<()> {
    let bad = |reason: String| FormatError::malformed("segment", format!("column {column:?}: {reason}"));
    let limit = if offset_width == 4 { i32::MAX as u64 } else { i64::MAX as u64 };
    if base.checked_add(data.len() as u64).is_none_or(|end| end > limit) {
        return Err(FormatError::InvalidInput(format!(
            "column {column:?}: data base {base} overflows {offset_width}-byte offsets"
        )));
    }
    let rows = ends.len() / offset_width;
    if keys.len() != rows * key_width || validity.is_some_and(|v| v.len() * 8 < rows) {
        return Err(FormatError::InvalidInput(format!("column {column:?}: keys and offsets disagree on rows")));
    }
    let written = match (key_width, offset_width) {
        (1, 4) => materialize_w::<1, 4>(keys, dictionary, validity, ends, data, base),
        (2, 4) => materialize_w::<2, 4>(keys, dictionary, validity, ends, data, base),
        (4, 4) => materialize_w::<4, 4>(keys, dictionary, validity, ends, data, base),
        (1, 8) => materialize_w::<1, 8>(keys, dictionary, validity, ends, data, base),
        (2, 8) => materialize_w::<2, 8>(keys, dictionary, validity, ends, data, base),
        _ => materialize_w::<4, 8>(keys, dictionary, validity, ends, data, base),
    };
    match written {
        Ok(at) if at == data.len() => Ok(()),
        Ok(at) => Err(bad(format!("values hold {at} bytes, {} declared", data.len()))),
        Err(Refused::OutsideDictionary { row, key }) => {
            Err(bad(format!("row {row}: key {key} outside the dictionary of {}", dictionary.len())))
        }
        Err(Refused::NullWithKey { row, key }) => Err(bad(format!("row {row} is null but has key {key}"))),
        Err(Refused::TooLong) => Err(bad(format!("values exceed the declared {} bytes", data.len()))),
    }
}

/// Why [`materialize_w`] stopped.
enum Refused {
    OutsideDictionary { row: usize, key: usize },
    NullWithKey { row: usize, key: usize },
    TooLong,
}

/// [`materialize`] for `K`-byte keys and `O`-byte offsets; returns the data bytes written.
fn materialize_w<const K: usize, const O: usize>(
    keys: &[u8],
    dictionary: &Entries,
    validity: Option<&[u8]>,
    ends: &mut [u8],
    data: &mut [u8],
    base: u64,
) -> std::result::Result<usize, Refused> {
    let entries = dictionary.len();
    let mut at = 0usize;
    for (i, end) in ends.chunks_exact_mut(O).enumerate() {
        let key = read_uint::<K>(keys, i) as usize;
        if validity.is_none_or(|v| bit_util::get_bit(v, i)) {
            if key >= entries {
                return Err(Refused::OutsideDictionary { row: i, key });
            }
            let (start, end) = (dictionary.starts[key], dictionary.starts[key + 1]);
            let len = end - start;
            if len <= PAD && at + PAD <= data.len() {
                // A fixed 16-byte copy (the dictionary is padded): bytes past this value are written
                // over by the next ones, which fill `data` up to its end.
                data[at..at + PAD].copy_from_slice(&dictionary.data[start..start + PAD]);
            } else {
                data.get_mut(at..at + len).ok_or(Refused::TooLong)?.copy_from_slice(&dictionary.data[start..end]);
            }
            at += len;
        } else if key != 0 {
            return Err(Refused::NullWithKey { row: i, key });
        }
        end.copy_from_slice(&(base + at as u64).to_le_bytes()[..O]);
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends4(lengths: &[usize]) -> Vec<u8> {
        let mut at = 0u32;
        lengths
            .iter()
            .flat_map(|&l| {
                at += l as u32;
                at.to_le_bytes()
            })
            .collect()
    }

    #[test]
    fn builds_in_first_seen_order_and_materializes_back() {
        let values = b"bidaskbidbidask";
        let ends = ends4(&[3, 3, 3, 3, 3]);
        let d = build(&ends, 4, values, None).expect("two distinct of five");
        assert_eq!((d.key_width, d.keys.as_slice(), d.data.as_slice()), (1, &[0u8, 1, 0, 0, 1][..], &b"bidask"[..]));
        let entries = Entries::new(&d.ends, 4, d.data.clone(), true, "c").expect("valid");
        let (mut out_ends, mut out_data) = (vec![0u8; 20], vec![0u8; 15]);
        materialize(&d.keys, 1, &entries, None, &mut out_ends, 4, &mut out_data, 100, "c").expect("materializes");
        assert_eq!(out_data, values);
        let expected: Vec<u8> = [103u32, 106, 109, 112, 115].iter().flat_map(|e| e.to_le_bytes()).collect();
        assert_eq!(out_ends, expected);
    }

    #[test]
    fn values_of_every_length_around_the_short_limit_round_trip() {
        // Lengths 0..=40 (16 bytes is the short-value limit), each value twice, in a buffer whose last
        // values end near its end (the 16-byte loads must not read past it).
        let mut distinct: Vec<Vec<u8>> = (0..=40u8).map(|n| (0..n).map(|i| i ^ n).collect()).collect();
        distinct.extend([vec![0xaa; 16], vec![0xab; 16], vec![0xaa; 8], vec![0xaa; 9]]);
        let mut rows: Vec<&Vec<u8>> = distinct.iter().chain(distinct.iter().rev()).collect();
        rows.push(&distinct[16]);
        let values: Vec<u8> = rows.iter().flat_map(|v| v.iter().copied()).collect();
        let mut at = 0u32;
        let ends: Vec<u8> = rows
            .iter()
            .flat_map(|v| {
                at += v.len() as u32;
                at.to_le_bytes()
            })
            .collect();
        let d = build(&ends, 4, &values, None).expect("each value twice");
        assert_eq!(d.ends.len() / 4, distinct.len());
        let entries = Entries::new(&d.ends, 4, d.data.clone(), false, "c").expect("valid");
        let (mut out_ends, mut out_data) = (vec![0u8; ends.len()], vec![0u8; values.len()]);
        materialize(&d.keys, 1, &entries, None, &mut out_ends, 4, &mut out_data, 0, "c").expect("materializes");
        assert_eq!((out_ends, out_data), (ends, values));
    }

    #[test]
    fn refuses_what_the_rule_refuses() {
        // All distinct; more than rows / 2 distinct.
        assert!(build(&ends4(&[1, 1, 1, 1]), 4, b"abcd", None).is_none());
        assert!(build(&ends4(&[1, 1, 1, 1]), 4, b"abca", None).is_none());
        assert!(build(&ends4(&[1, 1, 1, 1]), 4, b"abab", None).is_some());
        // Nulls count as rows but not as values; empty strings are values.
        let validity = BooleanBuffer::from(vec![true, false, false, true]);
        assert!(build(&ends4(&[1, 0, 0, 1]), 4, b"ab", Some(&validity)).is_some());
        assert!(build(&ends4(&[0; 8]), 4, b"", None).is_some());
        // Early stop on a unique column.
        let many: Vec<u8> = (0..3000u32).flat_map(|i| i.to_le_bytes()).collect();
        let ends: Vec<u8> = (1..=3000u32).flat_map(|i| (i * 4).to_le_bytes()).collect();
        assert!(build(&ends, 4, &many, None).is_none());
    }

    #[test]
    fn hostile_keys_and_lengths_are_refused() {
        let entries = Entries::new(&4u32.to_le_bytes(), 4, b"abcd".to_vec(), true, "c").expect("valid");
        let (mut ends, mut data) = (vec![0u8; 8], vec![0u8; 8]);
        let err = materialize(&[0, 1], 1, &entries, None, &mut ends, 4, &mut data, 0, "c");
        assert!(matches!(err, Err(FormatError::Malformed { .. })), "{err:?}");
        let mut short = vec![0u8; 7];
        let err = materialize(&[0, 0], 1, &entries, None, &mut ends, 4, &mut short, 0, "c");
        assert!(matches!(err, Err(FormatError::Malformed { .. })), "{err:?}");
        let mut long = vec![0u8; 9];
        let err = materialize(&[0, 0], 1, &entries, None, &mut ends, 4, &mut long, 0, "c");
        assert!(matches!(err, Err(FormatError::Malformed { .. })), "{err:?}");
        // A null row must have key 0.
        let err = materialize(&[0, 3], 1, &entries, Some(&[0b01]), &mut ends, 4, &mut data[..4], 0, "c");
        assert!(matches!(err, Err(FormatError::Malformed { .. })), "{err:?}");
        // Dictionary offsets off a character boundary, or past the data.
        assert!(Entries::new(&1u32.to_le_bytes(), 4, "é".as_bytes().to_vec(), true, "c").is_err());
        assert!(Entries::new(&3u32.to_le_bytes(), 4, b"ab".to_vec(), false, "c").is_err());
        assert!(Entries::new(&[], 4, b"ab".to_vec(), false, "c").is_err());
    }
}
