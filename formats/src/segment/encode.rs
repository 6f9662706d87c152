//! Encoding a record batch (plus optional user metadata) into segment bytes.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_buffer::{ArrowNativeType, BooleanBuffer, Buffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;

use super::block::{BlockBytes, MIN_BLOCK_BYTES, StreamChoice, Values, block_bytes, encode_stream_block_unless_raw};
use super::coded::{is_coded_strings, stored_field};
use super::dict;
use super::layout::{
    ColumnDesc, DictCoding, FLAG_HAS_METADATA, HEADER_LEN, Header, MAX_EXPANSION, SEGMENT_FORMAT_VERSION, StreamDesc,
    write_descriptor,
};
use super::types::{Physical, StreamKind, is_integer, physical, write_type};
use crate::error::{FormatError, Result};

/// Cuts streams into blocks and appends them to the body.
struct BodyWriter {
    /// The segment's bytes so far, but for the lent blocks.
    out: Vec<u8>,
    /// Raw blocks left in the input's buffers, in order.
    lent: Vec<Lent>,
    /// Their bytes in all.
    lent_len: usize,
}

/// Raw blocks of a fixed-width values stream that stay in the input's Arrow buffer (see
/// [`EncodedSegment`]): `buffer[range]`, which goes in the segment right before `out[at]`.
#[derive(Debug, Clone)]
struct Lent {
    at: usize,
    buffer: Buffer,
    range: Range<usize>,
}

impl BodyWriter {
    fn body_len(&self) -> usize {
        self.out.len() + self.lent_len - HEADER_LEN
    }

    /// Appends the blocks of one stream. `values`: what the stream holds (`Option<usize>`: integers of
    /// that width, or bytes).
    fn stream(&mut self, kind: StreamKind, raw: &[u8], values: impl Into<Values>) -> StreamDesc {
        self.stream_from(kind, raw, values.into(), None)
    }

    /// [`BodyWriter::stream`], and with `source` (the buffer `raw` lies in and where it starts there)
    /// the blocks stored raw are lent from that buffer, not copied.
    fn stream_from(
        &mut self,
        kind: StreamKind,
        raw: &[u8],
        values: Values,
        source: Option<(&Buffer, usize)>,
    ) -> StreamDesc {
        let body_offset = self.body_len() as u64;
        let mut choice = StreamChoice::default();
        let size = block_bytes(raw.len());
        let mut blocks = Vec::with_capacity(raw.len().div_ceil(size.max(1)));
        for (i, chunk) in raw.chunks(size).enumerate() {
            let (meta, stored) = encode_stream_block_unless_raw(chunk, values, &mut self.out, &mut choice);
            if stored == BlockBytes::Raw {
                match source {
                    Some((buffer, start)) => self.lend(buffer, start + i * size, chunk.len()),
                    None => self.out.extend_from_slice(chunk),
                }
            }
            blocks.push(meta);
        }
        StreamDesc { kind, raw_len: raw.len() as u64, blocks, body_offset }
    }

    /// Lends `buffer[start..start + len]`, extending the last lent run when this one continues it.
    fn lend(&mut self, buffer: &Buffer, start: usize, len: usize) {
        self.lent_len += len;
        if let Some(last) = self.lent.last_mut()
            && last.at == self.out.len()
            && last.buffer.as_ptr() == buffer.as_ptr()
            && last.range.end == start
        {
            last.range.end += len;
            return;
        }
        self.lent.push(Lent { at: self.out.len(), buffer: buffer.clone(), range: start..start + len });
    }
}

/// An encoded segment whose raw blocks of fixed-width columns may still be in the input's Arrow
/// buffers: its bytes are the parts of [`EncodedSegment::into_parts`] in order. Storing the parts saves copying
/// incompressible columns into the segment only for the backend to copy them again (design/decisions.md
/// D44); [`EncodedSegment::into_vec`] joins them. Either way the bytes are the same as
/// [`encode_segment`]'s. Holds references to the input's buffers (not copies) while it lives.
#[derive(Debug)]
pub struct EncodedSegment {
    /// The header, the blocks not lent and the descriptor.
    owned: Vec<u8>,
    lent: Vec<Lent>,
    len: usize,
    /// Where the descriptor starts in `owned`.
    descriptor_at: usize,
}

impl EncodedSegment {
    /// The segment's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment has no bytes (never: it has at least a header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the segment held in its own buffer (all but the lent blocks).
    pub fn owned_len(&self) -> usize {
        self.owned.len()
    }

    /// [`crate::content_hash`] of the segment's bytes, without joining them.
    pub fn content_hash(&self) -> u64 {
        crate::checksum::checksum_of_parts(&[&self.owned[..HEADER_LEN], &self.owned[self.descriptor_at..]])
    }

    /// Gives back the spare capacity of the segment's own buffer (in place; see [`encode_segment`]).
    pub fn shrink_to_fit(&mut self) {
        self.owned.shrink_to_fit();
    }

    /// The segment's bytes in one buffer: its own when nothing is lent, else the parts joined.
    pub fn into_vec(self) -> Vec<u8> {
        if self.lent.is_empty() {
            return self.owned;
        }
        self.into_parts().1.concat()
    }

    /// The segment's own buffer as `Bytes` (for the caller to reuse once every part is dropped), and
    /// the segment's bytes as parts in order: slices of that buffer between the lent runs, which are
    /// views of the input's Arrow buffers (no copy; empty parts are left out).
    pub fn into_parts(self) -> (Bytes, Vec<Bytes>) {
        let owned = Bytes::from(self.owned);
        let mut parts = Vec::with_capacity(2 * self.lent.len() + 1);
        let mut from = 0;
        for l in self.lent {
            if l.at > from {
                parts.push(owned.slice(from..l.at));
            }
            parts.push(Bytes::from_owner(LentBytes(l.buffer.slice_with_length(l.range.start, l.range.len()))));
            from = l.at;
        }
        if owned.len() > from {
            parts.push(owned.slice(from..));
        }
        (owned, parts)
    }
}

/// An Arrow buffer as the owner of `Bytes` (which needs `AsRef<[u8]>`).
struct LentBytes(Buffer);

impl AsRef<[u8]> for LentBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

fn internal(column: &str, what: &str) -> FormatError {
    FormatError::InvalidInput(format!("column {column:?}: array buffers are inconsistent ({what})"))
}

/// The bytes of `len` bits starting at bit `offset` of `buffer`, shifted to start at bit 0.
fn bits<'a>(column: &str, buffer: &'a arrow_buffer::Buffer, offset: usize, len: usize) -> Result<Cow<'a, [u8]>> {
    let nbytes = len.div_ceil(8);
    if offset.is_multiple_of(8) {
        let start = offset / 8;
        buffer.as_slice().get(start..start + nbytes).map(Cow::Borrowed).ok_or_else(|| internal(column, "bits"))
    } else {
        if buffer.len() * 8 < offset + len {
            return Err(internal(column, "bits"));
        }
        let shifted = BooleanBuffer::new(buffer.clone(), offset, len).sliced();
        Ok(Cow::Owned(shifted.as_slice().get(..nbytes).ok_or_else(|| internal(column, "bits"))?.to_vec()))
    }
}

/// Fixed-width values `offset..offset + len` of buffer 0.
fn fixed<'a>(column: &str, data: &'a ArrayData, width: usize) -> Result<&'a [u8]> {
    fixed_in_buffer(column, data, width).map(|(_, _, values)| values)
}

/// [`fixed`], with the buffer the values lie in and where they start there (to lend them).
fn fixed_in_buffer<'a>(column: &str, data: &'a ArrayData, width: usize) -> Result<(&'a Buffer, usize, &'a [u8])> {
    let buffer = data.buffers().first().ok_or_else(|| internal(column, "no values buffer"))?;
    let (start, len) = (data.offset() * width, data.len() * width);
    let values = buffer.as_slice().get(start..start + len).ok_or_else(|| internal(column, "values"))?;
    Ok((buffer, start, values))
}

/// End offsets (rebased to start at 0) and data bytes of a variable-length array.
fn var<'a>(column: &str, data: &'a ArrayData, offset_width: usize) -> Result<(Cow<'a, [u8]>, &'a [u8])> {
    let (first, ends): (usize, Vec<u8>) = match offset_width {
        4 => {
            let o = data.buffer::<i32>(0).get(..=data.len()).ok_or_else(|| internal(column, "offsets"))?;
            let first = o[0];
            let ends = o[1..].iter().flat_map(|&e| (e - first).to_le_bytes()).collect();
            (usize::try_from(first).map_err(|_| internal(column, "negative offset"))?, ends)
        }
        _ => {
            let o = data.buffer::<i64>(0).get(..=data.len()).ok_or_else(|| internal(column, "offsets"))?;
            let first = o[0];
            let ends = o[1..].iter().flat_map(|&e| (e - first).to_le_bytes()).collect();
            (usize::try_from(first).map_err(|_| internal(column, "negative offset"))?, ends)
        }
    };
    let last = if data.is_empty() {
        first
    } else {
        let tail = ends.get(ends.len() - offset_width..).ok_or_else(|| internal(column, "offsets"))?;
        let mut word = [0u8; 8];
        word[..offset_width].copy_from_slice(tail);
        first + usize::try_from(u64::from_le_bytes(word)).map_err(|_| internal(column, "offsets"))?
    };
    let bytes = data.buffers().get(1).ok_or_else(|| internal(column, "no data buffer"))?;
    let values = bytes.as_slice().get(first..last).ok_or_else(|| internal(column, "data"))?;
    Ok((Cow::Owned(ends), values))
}

/// Stores a variable-length column as keys and a dictionary if [`dict::build`] finds that worth it and
/// the result stays within the decoder's expansion bound; otherwise leaves `body` as it was.
fn encode_dictionary_coded(
    body: &mut BodyWriter,
    data: &ArrayData,
    ends: &[u8],
    values: &[u8],
    offset_width: usize,
) -> Option<(DictCoding, Vec<StreamDesc>)> {
    let nulls = data.nulls().filter(|n| n.null_count() > 0);
    let d = dict::build(ends, offset_width, values, nulls.map(|n| n.inner()))?;
    dictionary_streams(body, data.len(), d, offset_width)
}

/// Appends the streams of dictionary `d` of a column of `rows` rows, unless the decoder would refuse to
/// expand it (then `body` is left as it was and the caller stores the plain form).
fn dictionary_streams(
    body: &mut BodyWriter,
    rows: usize,
    d: dict::Dictionary,
    offset_width: usize,
) -> Option<(DictCoding, Vec<StreamDesc>)> {
    let mark = body.out.len();
    let streams = vec![
        body.stream(StreamKind::Values, &d.keys, Some(d.key_width)),
        body.stream(StreamKind::DictOffsets, &d.ends, Some(offset_width)),
        body.stream(StreamKind::DictData, &d.data, None),
    ];
    let stored: u64 = streams.iter().map(StreamDesc::stored_len).sum();
    let materialized = u128::from(rows as u64) * offset_width as u128 + u128::from(d.data_len);
    if materialized > u128::from(stored) * u128::from(MAX_EXPANSION) {
        // So repetitive that the decoder would refuse to expand it this far; the plain form is stored
        // within LZ4's own ratio instead.
        body.out.truncate(mark);
        return None;
    }
    Some((DictCoding { key_width: d.key_width, data_len: d.data_len }, streams))
}

/// The plain streams of a variable-length column.
fn plain_streams(body: &mut BodyWriter, ends: &[u8], values: &[u8], offset_width: usize) -> Vec<StreamDesc> {
    vec![body.stream(StreamKind::Offsets, ends, Some(offset_width)), body.stream(StreamKind::Data, values, None)]
}

/// A dictionary larger than this many times the rows is materialized rather than recoded (a table per
/// dictionary entry would cost more than reading the rows' strings).
const RECODE_MAX_ENTRIES_PER_ROW: usize = 4;

/// The value streams of a string column handed over as codes ([`super::coded`]), stored as the plain
/// column of the same strings would be: dictionary-coded by [`dict::recode`] (the same bytes that
/// [`dict::build`] makes of the plain strings, from the keys), or plain.
fn encode_coded_strings(
    body: &mut BodyWriter,
    name: &str,
    data: &ArrayData,
    offset_width: usize,
) -> Result<(Option<DictCoding>, Vec<StreamDesc>)> {
    let dictionary = data.child_data().first().ok_or_else(|| internal(name, "no dictionary"))?;
    if dictionary.null_count() > 0 {
        return Err(FormatError::InvalidInput(format!(
            "column {name:?}: null dictionary values are not supported; use null keys"
        )));
    }
    let (ends, values) = var(name, dictionary, offset_width)?;
    let entries = dict::CodedValues { ends: &ends, offset_width, values };
    let validity = data.nulls().filter(|n| n.null_count() > 0).map(|n| n.inner());
    macro_rules! with_keys {
        ($t:ty) => {{
            let keys = data.buffer::<$t>(0).get(..data.len()).ok_or_else(|| internal(name, "keys"))?;
            coded_with_keys(body, name, keys, &entries, validity, data)
        }};
    }
    match data.data_type() {
        DataType::Dictionary(k, _) => match **k {
            DataType::Int8 => with_keys!(i8),
            DataType::Int16 => with_keys!(i16),
            DataType::Int32 => with_keys!(i32),
            DataType::Int64 => with_keys!(i64),
            DataType::UInt8 => with_keys!(u8),
            DataType::UInt16 => with_keys!(u16),
            DataType::UInt32 => with_keys!(u32),
            DataType::UInt64 => with_keys!(u64),
            _ => Err(internal(name, "dictionary key type")),
        },
        _ => Err(internal(name, "not a dictionary")),
    }
}

fn coded_with_keys<K: ArrowNativeType>(
    body: &mut BodyWriter,
    name: &str,
    keys: &[K],
    entries: &dict::CodedValues<'_>,
    validity: Option<&BooleanBuffer>,
    data: &ArrayData,
) -> Result<(Option<DictCoding>, Vec<StreamDesc>)> {
    let offset_width = entries.offset_width;
    if entries.len() <= keys.len().saturating_mul(RECODE_MAX_ENTRIES_PER_ROW).max(1024) {
        match dict::recode(name, keys, entries, validity)? {
            dict::Recoded::Coded(d) => {
                if let Some((coding, streams)) = dictionary_streams(body, keys.len(), d, offset_width) {
                    return Ok((Some(coding), streams));
                }
            }
            dict::Recoded::Plain => {}
        }
        let (ends, values) = materialize(name, keys, entries, validity)?;
        return Ok((None, plain_streams(body, &ends, &values, offset_width)));
    }
    let (ends, values) = materialize(name, keys, entries, validity)?;
    Ok(match encode_dictionary_coded(body, data, &ends, &values, offset_width) {
        Some((coding, streams)) => (Some(coding), streams),
        None => (None, plain_streams(body, &ends, &values, offset_width)),
    })
}

/// The plain form (end offsets from 0, data) of a string column given as codes; null rows hold no bytes.
fn materialize<K: ArrowNativeType>(
    name: &str,
    keys: &[K],
    entries: &dict::CodedValues<'_>,
    validity: Option<&BooleanBuffer>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let offset_width = entries.offset_width;
    let limit = if offset_width == 4 { i32::MAX as usize } else { i64::MAX as usize };
    let mut ends = Vec::with_capacity(keys.len() * offset_width);
    let mut data = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if validity.is_none_or(|v| v.value(i)) {
            let value = key.to_usize().and_then(|c| entries.get(c)).ok_or_else(|| {
                FormatError::InvalidInput(format!(
                    "column {name:?} (strings as codes): row {i}: key {key:?} outside the dictionary of {}",
                    entries.len()
                ))
            })?;
            data.extend_from_slice(value);
            if data.len() > limit {
                return Err(FormatError::InvalidInput(format!(
                    "column {name:?}: more string bytes in one segment than its offsets can address"
                )));
            }
        }
        ends.extend_from_slice(&(data.len() as u64).to_le_bytes()[..offset_width]);
    }
    Ok((ends, data))
}

fn encode_column(body: &mut BodyWriter, field: &Arc<Field>, array: &dyn Array) -> Result<ColumnDesc> {
    let name = field.name();
    let data = array.to_data();
    // A string column handed over as codes is described, and stored, as the plain column.
    let coded = is_coded_strings(field);
    let field = if coded { Arc::new(stored_field(field)) } else { Arc::clone(field) };
    let physical = physical(name, field.data_type())?;
    let validity = match data.nulls() {
        Some(nulls) if nulls.null_count() > 0 => {
            if !field.is_nullable() {
                return Err(FormatError::InvalidInput(format!("column {name:?} is not nullable but has nulls")));
            }
            let inner = nulls.inner();
            let raw = bits(name, inner.inner(), inner.offset(), inner.len())?;
            Some(body.stream(StreamKind::Validity, &raw, None))
        }
        _ => None,
    };
    let mut dict = None;
    let streams = match physical {
        Physical::Fixed { width } => {
            let values = match data.data_type() {
                DataType::Float64 => Values::Floats64,
                t if is_integer(t) => Values::Ints(width),
                _ => Values::Bytes,
            };
            let (buffer, start, raw) = fixed_in_buffer(name, &data, width)?;
            vec![body.stream_from(StreamKind::Values, raw, values, Some((buffer, start)))]
        }
        Physical::Bits => {
            let buffer = data.buffers().first().ok_or_else(|| internal(name, "no values buffer"))?;
            vec![body.stream(StreamKind::Values, &bits(name, buffer, data.offset(), data.len())?, None)]
        }
        Physical::Var { offset_width } if coded => {
            let (coding, streams) = encode_coded_strings(body, name, &data, offset_width)?;
            dict = coding;
            streams
        }
        Physical::Var { offset_width } => {
            let (ends, values) = var(name, &data, offset_width)?;
            match encode_dictionary_coded(body, &data, &ends, values, offset_width) {
                Some((coding, streams)) => {
                    dict = Some(coding);
                    streams
                }
                None => vec![
                    body.stream(StreamKind::Offsets, &ends, Some(offset_width)),
                    body.stream(StreamKind::Data, values, None),
                ],
            }
        }
        Physical::Dict { key_width, offset_width } => {
            let dictionary = data.child_data().first().ok_or_else(|| internal(name, "no dictionary"))?;
            if dictionary.null_count() > 0 {
                return Err(FormatError::InvalidInput(format!(
                    "column {name:?}: null dictionary values are not supported; use null keys"
                )));
            }
            let keys = body.stream(StreamKind::Values, fixed(name, &data, key_width)?, Some(key_width));
            let (ends, values) = var(name, dictionary, offset_width)?;
            vec![
                keys,
                body.stream(StreamKind::DictOffsets, &ends, Some(offset_width)),
                body.stream(StreamKind::DictData, values, None),
            ]
        }
    };
    Ok(ColumnDesc { field, physical, dict, validity, streams })
}

/// An upper estimate of the descriptor's length for `batch` with `input` bytes of columns and
/// metadata: a column entry each (its name, flags, type and dictionary coding in
/// [`DESCRIPTOR_COLUMN_BYTES`] besides the name) with up to four stream entries, and a block entry per
/// [`MIN_BLOCK_BYTES`] of input plus one per stream for the last, shorter block. Reserved with the
/// body: written after an incompressible body, a descriptor that did not fit made the buffer grow,
/// which copied the whole segment (a `wide` segment of 127 float columns of 10,000 rows has ~900 block
/// entries, ~16 KB of descriptor). Too low an estimate costs that copy, never correctness.
pub(crate) fn descriptor_estimate(batch: &RecordBatch, input: usize) -> usize {
    /// Stream entries a column has at most: validity, then values, offsets and data, or keys and a
    /// dictionary's offsets and data.
    const STREAMS_PER_COLUMN: usize = 4;
    // Bytes of a stream entry (kind, raw length, block count) and of a block entry (codec, raw and
    // stored lengths, checksum): format.md 2.2.
    const STREAM_ENTRY: usize = 1 + 8 + 4;
    const BLOCK_ENTRY: usize = 1 + 4 + 4 + 8;
    let schema = batch.schema();
    let names: usize = schema.fields().iter().map(|f| f.name().len()).sum();
    // The metadata stream counts as one more column.
    let columns = batch.num_columns() + 1;
    let blocks = input / MIN_BLOCK_BYTES + columns * STREAMS_PER_COLUMN;
    names + columns * (DESCRIPTOR_COLUMN_BYTES + STREAMS_PER_COLUMN * STREAM_ENTRY) + blocks * BLOCK_ENTRY + 8
}

/// [`descriptor_estimate`]'s allowance for a column entry's bytes other than its name and streams:
/// name length, flags, the type (a timestamp's time zone is its longest part) and dictionary coding.
const DESCRIPTOR_COLUMN_BYTES: usize = 128;

/// Checks that the codec stores columns of `schema`: the checks of [`encode_segment`] that depend on
/// the schema alone, without encoding anything (a schema of 1,000 columns checked by encoding zero rows
/// of it took ~0.5 ms per write).
///
/// # Errors
/// [`FormatError::UnsupportedType`] naming the first column of a type the codec does not store;
/// [`FormatError::InvalidInput`] for a column name longer than 65,535 bytes or a time zone name longer
/// than 65,535 bytes.
pub fn check_schema(schema: &Schema) -> Result<()> {
    let mut scratch = Vec::new();
    for field in schema.fields() {
        if field.name().len() > usize::from(u16::MAX) {
            return Err(FormatError::InvalidInput(format!("column name of {} bytes is too long", field.name().len())));
        }
        physical(field.name(), field.data_type())?;
        scratch.clear();
        write_type(&mut scratch, field.name(), field.data_type())?;
    }
    Ok(())
}

/// Encodes `batch` and optional user `metadata` into one segment (layout in `design/format.md`).
///
/// The result is deterministic: the same batch and metadata always give the same bytes, so its xxh3
/// can serve as the key's content hash.
///
/// # Errors
/// [`FormatError::UnsupportedType`] naming the first column of a type the codec does not store;
/// [`FormatError::InvalidInput`] for a column name longer than 65,535 bytes, a non-nullable field with
/// nulls, or a dictionary with null values.
pub fn encode_segment(batch: &RecordBatch, metadata: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut out = encode_segment_into(batch, metadata, Vec::new())?.into_vec();
    if out.capacity() > out.len() + out.len() / 4 {
        // Return the reserve the compression did not need (in place: no copy).
        out.shrink_to_fit();
    }
    Ok(out)
}

/// [`encode_segment`] into `buffer`, whose contents are discarded and whose allocation is reused
/// (replaced if it is short of the room the encoder reserves: the whole input stored raw plus the
/// descriptor), with the raw blocks of fixed-width columns lent from `batch`'s buffers rather than
/// copied ([`EncodedSegment`]). The result's buffer keeps whatever capacity it has, so a caller
/// encoding many segments can hand the same allocations round instead of faulting in fresh memory
/// for each (the write pipeline's `SegmentBuffers`). The bytes are the same whatever buffer is passed
/// in.
///
/// # Errors
/// As [`encode_segment`].
pub fn encode_segment_into(
    batch: &RecordBatch,
    metadata: Option<&[u8]>,
    mut buffer: Vec<u8>,
) -> Result<EncodedSegment> {
    let schema = batch.schema();
    check_schema(&schema)?;
    // Room for the whole input stored raw and then the descriptor: reserved, not touched, so the
    // pages the segment does not use are never faulted in, and incompressible columns never make the
    // buffer grow and copy.
    let slices: usize = batch.columns().iter().map(|a| a.to_data().get_slice_memory_size().unwrap_or(0)).sum();
    let metadata_len = metadata.map_or(0, <[u8]>::len);
    let estimate = slices + metadata_len + descriptor_estimate(batch, slices + metadata_len);
    if buffer.capacity() < HEADER_LEN + estimate {
        // A fresh allocation: growing `buffer` would have the allocator copy its old contents.
        buffer = Vec::with_capacity(HEADER_LEN + estimate);
    }
    buffer.clear();
    buffer.resize(HEADER_LEN, 0);
    let mut body = BodyWriter { out: buffer, lent: Vec::new(), lent_len: 0 };
    let metadata = metadata.map(|m| body.stream(StreamKind::Metadata, m, None));
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        columns.push(encode_column(&mut body, field, array.as_ref())?);
    }
    let body_len = body.body_len() as u64;
    let BodyWriter { mut out, lent, lent_len } = body;
    let descriptor_start = out.len();
    write_descriptor(&mut out, metadata.as_ref(), &columns)?;
    let header = Header {
        version: SEGMENT_FORMAT_VERSION,
        flags: if metadata.is_some() { FLAG_HAS_METADATA } else { 0 },
        rows: batch.num_rows() as u64,
        columns: u32::try_from(columns.len())
            .map_err(|_| FormatError::InvalidInput("more than 2^32 columns".into()))?,
        descriptor_len: u32::try_from(out.len() - descriptor_start)
            .map_err(|_| FormatError::InvalidInput("segment descriptor over 4 GiB".into()))?,
        body_len,
    };
    let head: &mut [u8; HEADER_LEN] =
        (&mut out[..HEADER_LEN]).try_into().expect("the buffer starts with HEADER_LEN reserved bytes");
    header.write(head);
    Ok(EncodedSegment { len: out.len() + lent_len, owned: out, lent, descriptor_at: descriptor_start })
}
