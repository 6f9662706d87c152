//! The segment codec: a set of named, typed Arrow columns of one row count, plus an optional user
//! metadata blob, encoded into one checksummed, self-describing object.
//!
//! Supported types: `Int8`..`Int64`, `UInt8`..`UInt64`, `Float32`, `Float64`, `Boolean`,
//! `Timestamp(Nanosecond, tz)`, `Utf8`, `LargeUtf8`, `Binary`, `LargeBinary`, and
//! `Dictionary(<integer>, Utf8 | LargeUtf8)`; nulls in every type. The byte layout is specified in
//! `design/format.md`.

mod block;
mod decode;
mod encode;
mod layout;
mod types;

pub use decode::{BitsOut, ColumnInfo, ColumnOut, SegmentReader, ValuesOut};
pub use encode::encode_segment;
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
