//! The segment codec: a set of named, typed Arrow columns of one row count, plus an optional user
//! metadata blob, encoded into one checksummed, self-describing object.
//!
//! Supported types: `Int8`..`Int64`, `UInt8`..`UInt64`, `Float32`, `Float64`, `Boolean`,
//! `Timestamp(Nanosecond, tz)`, `Utf8`, `LargeUtf8`, `Binary`, `LargeBinary`, and
//! `Dictionary(<integer>, Utf8 | LargeUtf8)`; nulls in every type. The byte layout is specified in
//! `design/format.md`.
//!
//! The encoder picks the stored form: integer blocks may be delta- or zigzag-delta-coded and
//! byte-shuffled before LZ4 (`transform`, `block`), and a string or binary column with few distinct
//! values is stored as keys into a dictionary (`dict`). Decoders hide both: they return the column's
//! own type with plain offsets and data, and [`ColumnInfo::data_len`] is the plain data length.

mod block;
mod coded;
mod decimal;
mod decode;
mod dict;
mod encode;
mod layout;
mod transform;
mod types;

pub use coded::{CODES_METADATA_KEY, is_coded_strings, stored_field, stored_schema};
pub use decode::{BitsOut, ColumnInfo, ColumnOut, SegmentLayout, SegmentReader, ValuesOut};
pub use encode::{EncodedSegment, check_schema, encode_segment, encode_segment_into};

pub use layout::{HEADER_LEN, SEGMENT_FORMAT_VERSION, SEGMENT_MAGIC};

use arrow_array::RecordBatch;

use crate::error::Result;

/// A decoded segment: its columns and its user metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The columns.
    pub batch: RecordBatch,
    /// The user metadata blob, if one was stored.
    pub metadata: Option<Vec<u8>>,
}

/// The segment's *content hash*: xxh3-64 of its header and its descriptor, the parts that name every
/// block's length and checksum. Any change to any stored byte changes a block checksum, hence the
/// descriptor, hence this hash; yet computing it reads ~100 bytes per column instead of the whole
/// segment. Storage keys carry it, so a reader that checks it (and then each block it decodes against
/// the descriptor) has verified everything it uses, including that the object is the one its key
/// names.
///
/// # Errors
/// [`crate::FormatError`] if the header is invalid or the length does not match it.
pub fn content_hash(bytes: &[u8]) -> Result<u64> {
    let header = layout::Header::parse(bytes)?;
    // Header::parse checked that HEADER_LEN + body_len + descriptor_len == bytes.len().
    let body_end = HEADER_LEN + usize::try_from(header.body_len).expect("bounded by the input length");
    Ok(crate::checksum::checksum_of_parts(&[&bytes[..HEADER_LEN], &bytes[body_end..]]))
}

/// Decodes a whole segment: every column and the metadata.
///
/// # Errors
/// Any [`crate::FormatError`] describing why the bytes are not a valid segment.
pub fn decode_segment(bytes: &[u8]) -> Result<Segment> {
    let reader = SegmentReader::new(bytes)?;
    Ok(Segment { batch: reader.decode(None)?, metadata: reader.metadata()? })
}

#[cfg(test)]
mod tests;
