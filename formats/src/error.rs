//! The one error type of the `formats` crate.

use thiserror::Error;

/// Everything that can go wrong while validating a name, encoding or decoding a key or a segment.
///
/// Decoding never panics on hostile input; every malformed byte sequence maps to one of these variants.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// A symbol or library name breaks the naming rules (see [`crate::names`]).
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// `"symbol"`, `"snapshot"` or `"library"`.
        what: &'static str,
        /// The offending name (possibly truncated for display by the caller).
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// The bytes do not start with the magic of the object they claim to be.
    #[error("bad magic for {object}: expected {expected:02x?}, found {found:02x?}")]
    BadMagic {
        /// What was being decoded (`"segment"`, `"key"`).
        object: &'static str,
        /// The magic that was expected.
        expected: Vec<u8>,
        /// The bytes found instead.
        found: Vec<u8>,
    },
    /// The object was written by a format version this build cannot read.
    #[error("unsupported {object} format version {found} (this build reads {supported})")]
    UnsupportedVersion {
        /// What was being decoded.
        object: &'static str,
        /// The version found in the bytes.
        found: u16,
        /// The versions this build reads, for the message.
        supported: &'static str,
    },
    /// The input ended before the structure it declares.
    #[error("truncated {object}: needed {needed} bytes at offset {offset}, only {available} available")]
    Truncated {
        /// What was being decoded.
        object: &'static str,
        /// Offset at which the read was attempted.
        offset: usize,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A checksum did not match: the bytes were corrupted after they were written.
    #[error("checksum mismatch in {location}: stored {stored:#018x}, computed {computed:#018x}")]
    ChecksumMismatch {
        /// Where: `"segment header"`, `"segment descriptor"`, or `column "px" block 3 (values)`.
        location: String,
        /// The checksum stored in the bytes.
        stored: u64,
        /// The checksum of the bytes as read.
        computed: u64,
    },
    /// A structurally invalid field (unknown tag, impossible length, bad offsets, ...).
    #[error("malformed {object}: {reason}")]
    Malformed {
        /// What was being decoded.
        object: &'static str,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// An Arrow type that the segment codec does not store.
    #[error("column {column:?} has unsupported type {data_type}")]
    UnsupportedType {
        /// Column name.
        column: String,
        /// The Arrow type, displayed.
        data_type: String,
    },
    /// Input to the encoder or a decode request that does not fit the segment (bad column index,
    /// output buffer of the wrong size, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl FormatError {
    /// Shorthand for [`FormatError::Malformed`].
    pub(crate) fn malformed(object: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed { object, reason: reason.into() }
    }
}

/// Result alias of this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
