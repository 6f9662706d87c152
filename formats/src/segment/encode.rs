//! Encoding a record batch (plus optional user metadata) into segment bytes.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_buffer::BooleanBuffer;
use arrow_data::ArrayData;
use arrow_schema::Field;

use super::block::{BLOCK_BYTES, encode_block};
use super::layout::{FLAG_HAS_METADATA, HEADER_LEN, Header, StreamDesc, write_descriptor};
use super::types::{Physical, StreamKind, is_delta_candidate, physical};
use crate::error::{FormatError, Result};

/// Cuts a stream into blocks and appends them to the body.
struct BodyWriter {
    out: Vec<u8>,
    scratch: Vec<u8>,
}

impl BodyWriter {
    fn stream(&mut self, kind: StreamKind, raw: &[u8], delta: bool) -> StreamDesc {
        let body_offset = (self.out.len() - HEADER_LEN) as u64;
        let blocks =
            raw.chunks(BLOCK_BYTES).map(|chunk| encode_block(chunk, delta, &mut self.out, &mut self.scratch)).collect();
        StreamDesc { kind, raw_len: raw.len() as u64, blocks, body_offset }
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
    let buffer = data.buffers().first().ok_or_else(|| internal(column, "no values buffer"))?;
    let (start, len) = (data.offset() * width, data.len() * width);
    buffer.as_slice().get(start..start + len).ok_or_else(|| internal(column, "values"))
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

fn encode_column(
    body: &mut BodyWriter,
    field: &Arc<Field>,
    array: &dyn Array,
) -> Result<(Option<StreamDesc>, Vec<StreamDesc>)> {
    let name = field.name();
    let data = array.to_data();
    let physical = physical(name, data.data_type())?;
    let validity = match data.nulls() {
        Some(nulls) if nulls.null_count() > 0 => {
            if !field.is_nullable() {
                return Err(FormatError::InvalidInput(format!("column {name:?} is not nullable but has nulls")));
            }
            let inner = nulls.inner();
            let raw = bits(name, inner.inner(), inner.offset(), inner.len())?;
            Some(body.stream(StreamKind::Validity, &raw, false))
        }
        _ => None,
    };
    let delta = is_delta_candidate(data.data_type());
    let streams = match physical {
        Physical::Fixed { width } => vec![body.stream(StreamKind::Values, fixed(name, &data, width)?, delta)],
        Physical::Bits => {
            let buffer = data.buffers().first().ok_or_else(|| internal(name, "no values buffer"))?;
            vec![body.stream(StreamKind::Values, &bits(name, buffer, data.offset(), data.len())?, false)]
        }
        Physical::Var { offset_width } => {
            let (ends, values) = var(name, &data, offset_width)?;
            vec![body.stream(StreamKind::Offsets, &ends, false), body.stream(StreamKind::Data, values, false)]
        }
        Physical::Dict { key_width, offset_width } => {
            let dictionary = data.child_data().first().ok_or_else(|| internal(name, "no dictionary"))?;
            if dictionary.null_count() > 0 {
                return Err(FormatError::InvalidInput(format!(
                    "column {name:?}: null dictionary values are not supported; use null keys"
                )));
            }
            let keys = body.stream(StreamKind::Values, fixed(name, &data, key_width)?, false);
            let (ends, values) = var(name, dictionary, offset_width)?;
            vec![
                keys,
                body.stream(StreamKind::DictOffsets, &ends, false),
                body.stream(StreamKind::DictData, values, false),
            ]
        }
    };
    Ok((validity, streams))
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
    let schema = batch.schema();
    for field in schema.fields() {
        if field.name().len() > usize::from(u16::MAX) {
            return Err(FormatError::InvalidInput(format!("column name of {} bytes is too long", field.name().len())));
        }
        physical(field.name(), field.data_type())?;
    }
    let estimate = batch.get_array_memory_size() / 2 + 4096;
    let mut body = BodyWriter { out: vec![0u8; HEADER_LEN], scratch: Vec::new() };
    body.out.reserve(estimate);
    let metadata = metadata.map(|m| body.stream(StreamKind::Metadata, m, false));
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let (validity, streams) = encode_column(&mut body, field, array.as_ref())?;
        columns.push((Arc::clone(field), validity, streams));
    }
    let mut out = body.out;
    let body_len = (out.len() - HEADER_LEN) as u64;
    let descriptor_start = out.len();
    write_descriptor(&mut out, metadata.as_ref(), &columns)?;
    let header = Header {
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
    Ok(out)
}
