//! Floe's on-disk formats: typed storage keys and the segment codec.
//!
//! This crate is pure: bytes in, typed values out, no I/O, no threads, no async, so that it can be
//! fuzzed and used by every layer above it (`backends`, `engine`, `pyarrow-bridge`). Every decoder
//! accepts untrusted bytes and returns a [`FormatError`] rather than panicking.
//!
//! - [`key`]: [`Key`]s naming immutable objects ([`AtomKey`]) and mutable references ([`RefKey`]), with
//!   a compact binary encoding and a printable object-store name.
//! - [`segment`]: [`encode_segment`] / [`SegmentReader`], a columnar codec over Arrow arrays with LZ4,
//!   delta and zigzag coding and byte shuffling of integers, dictionary coding of low-cardinality
//!   strings, and xxh3 checksums on every block.
//! - [`names`]: the rules for symbol and library names.
//!
//! The byte layouts are specified in `design/format.md`.

#[cfg(target_endian = "big")]
compile_error!("floe-formats reinterprets Arrow's native-endian buffers as little-endian bytes");

pub mod checksum;
pub mod error;
pub mod key;
pub mod le;
pub mod names;
pub mod record;
pub mod segment;

pub use error::{FormatError, Result};
pub use key::{AtomFields, AtomKey, Key, KeyClass, KeyType, RefKey};
pub use segment::{
    CODES_METADATA_KEY, EncodedSegment, Segment, SegmentLayout, SegmentReader, check_schema, content_hash,
    decode_segment, encode_segment, encode_segment_into, is_coded_strings, stored_field, stored_schema,
};
