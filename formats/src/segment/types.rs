//! The column types a segment stores, their persisted tags and their physical layout.

use std::sync::Arc;

use arrow_schema::{DataType, TimeUnit};

use crate::error::{FormatError, Result};
use crate::le::{Reader, WriteLe};

/// How a column's values are laid out in streams (besides the optional validity stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Physical {
    /// One fixed-width little-endian value per row (`width` bytes).
    Fixed { width: usize },
    /// One bit per row.
    Bits,
    /// End offsets (`offset_width` bytes each, one per row) plus a data stream.
    Var { offset_width: usize },
    /// Fixed-width keys per row, plus the dictionary's end offsets and data.
    Dict { key_width: usize, offset_width: usize },
}

/// What one stream of a column holds. The persisted code is checked against the expected sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum StreamKind {
    Validity = 0,
    Values = 1,
    Offsets = 2,
    Data = 3,
    DictOffsets = 4,
    DictData = 5,
    Metadata = 6,
}

impl StreamKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StreamKind::Validity => "validity",
            StreamKind::Values => "values",
            StreamKind::Offsets => "offsets",
            StreamKind::Data => "data",
            StreamKind::DictOffsets => "dictionary offsets",
            StreamKind::DictData => "dictionary data",
            StreamKind::Metadata => "metadata",
        }
    }
}

impl Physical {
    /// The value streams of this layout, in persisted order (the validity stream, if any, comes first).
    pub(crate) fn value_streams(self) -> &'static [StreamKind] {
        match self {
            Physical::Fixed { .. } | Physical::Bits => &[StreamKind::Values],
            Physical::Var { .. } => &[StreamKind::Offsets, StreamKind::Data],
            Physical::Dict { .. } => &[StreamKind::Values, StreamKind::DictOffsets, StreamKind::DictData],
        }
    }
}

// Persisted type tags. Never reuse a number.
const T_INT8: u8 = 1;
const T_INT16: u8 = 2;
const T_INT32: u8 = 3;
const T_INT64: u8 = 4;
const T_UINT8: u8 = 5;
const T_UINT16: u8 = 6;
const T_UINT32: u8 = 7;
const T_UINT64: u8 = 8;
const T_FLOAT32: u8 = 9;
const T_FLOAT64: u8 = 10;
const T_BOOL: u8 = 11;
const T_TIMESTAMP_NS: u8 = 12;
const T_UTF8: u8 = 13;
const T_LARGE_UTF8: u8 = 14;
const T_BINARY: u8 = 15;
const T_LARGE_BINARY: u8 = 16;
const T_DICTIONARY: u8 = 17;

fn unsupported(column: &str, data_type: &DataType) -> FormatError {
    FormatError::UnsupportedType { column: column.to_owned(), data_type: data_type.to_string() }
}

fn simple_tag(data_type: &DataType) -> Option<u8> {
    Some(match data_type {
        DataType::Int8 => T_INT8,
        DataType::Int16 => T_INT16,
        DataType::Int32 => T_INT32,
        DataType::Int64 => T_INT64,
        DataType::UInt8 => T_UINT8,
        DataType::UInt16 => T_UINT16,
        DataType::UInt32 => T_UINT32,
        DataType::UInt64 => T_UINT64,
        DataType::Float32 => T_FLOAT32,
        DataType::Float64 => T_FLOAT64,
        DataType::Boolean => T_BOOL,
        DataType::Utf8 => T_UTF8,
        DataType::LargeUtf8 => T_LARGE_UTF8,
        DataType::Binary => T_BINARY,
        DataType::LargeBinary => T_LARGE_BINARY,
        _ => return None,
    })
}

fn simple_type(tag: u8) -> Option<DataType> {
    Some(match tag {
        T_INT8 => DataType::Int8,
        T_INT16 => DataType::Int16,
        T_INT32 => DataType::Int32,
        T_INT64 => DataType::Int64,
        T_UINT8 => DataType::UInt8,
        T_UINT16 => DataType::UInt16,
        T_UINT32 => DataType::UInt32,
        T_UINT64 => DataType::UInt64,
        T_FLOAT32 => DataType::Float32,
        T_FLOAT64 => DataType::Float64,
        T_BOOL => DataType::Boolean,
        T_UTF8 => DataType::Utf8,
        T_LARGE_UTF8 => DataType::LargeUtf8,
        T_BINARY => DataType::Binary,
        T_LARGE_BINARY => DataType::LargeBinary,
        _ => return None,
    })
}

fn is_dictionary_key(data_type: &DataType) -> bool {
    data_type.is_dictionary_key_type()
}

fn is_dictionary_value(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8)
}

/// The physical layout of a supported type.
///
/// # Errors
/// [`FormatError::UnsupportedType`] naming `column` for any type the codec does not store.
pub(crate) fn physical(column: &str, data_type: &DataType) -> Result<Physical> {
    Ok(match data_type {
        DataType::Boolean => Physical::Bits,
        DataType::Utf8 | DataType::Binary => Physical::Var { offset_width: 4 },
        DataType::LargeUtf8 | DataType::LargeBinary => Physical::Var { offset_width: 8 },
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Physical::Fixed { width: 8 },
        DataType::Dictionary(k, v) if is_dictionary_key(k) && is_dictionary_value(v) => Physical::Dict {
            key_width: k.primitive_width().ok_or_else(|| unsupported(column, data_type))?,
            offset_width: if **v == DataType::Utf8 { 4 } else { 8 },
        },
        other if simple_tag(other).is_some() => {
            Physical::Fixed { width: other.primitive_width().ok_or_else(|| unsupported(column, data_type))? }
        }
        _ => return Err(unsupported(column, data_type)),
    })
}

/// Whether the values of this type are integers, which the encoder may delta-code and byte-shuffle.
pub(crate) fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer() || matches!(data_type, DataType::Timestamp(TimeUnit::Nanosecond, _))
}

/// Appends the persisted type descriptor of `data_type`.
///
/// # Errors
/// [`FormatError::UnsupportedType`] naming `column`; [`FormatError::InvalidInput`] for a time zone
/// longer than `u16::MAX` bytes.
pub(crate) fn write_type(out: &mut Vec<u8>, column: &str, data_type: &DataType) -> Result<()> {
    match data_type {
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            out.put_u8(T_TIMESTAMP_NS);
            match tz {
                None => out.put_u8(0),
                Some(tz) => {
                    if tz.len() > usize::from(u16::MAX) {
                        return Err(FormatError::InvalidInput(format!("column {column:?}: time zone too long")));
                    }
                    out.put_u8(1);
                    out.put_str16(tz);
                }
            }
        }
        DataType::Dictionary(k, v) if is_dictionary_key(k) && is_dictionary_value(v) => {
            out.put_u8(T_DICTIONARY);
            out.put_u8(simple_tag(k).ok_or_else(|| unsupported(column, data_type))?);
            out.put_u8(simple_tag(v).ok_or_else(|| unsupported(column, data_type))?);
        }
        other => out.put_u8(simple_tag(other).ok_or_else(|| unsupported(column, data_type))?),
    }
    Ok(())
}

/// Reads a type descriptor written by [`write_type`].
///
/// # Errors
/// [`FormatError::Malformed`] for unknown tags or bad flags; [`FormatError::Truncated`].
pub(crate) fn read_type(r: &mut Reader<'_>) -> Result<DataType> {
    let bad = |reason: String| FormatError::malformed("segment descriptor", reason);
    let tag = r.u8()?;
    match tag {
        T_TIMESTAMP_NS => {
            let tz = match r.u8()? {
                0 => None,
                1 => Some(Arc::from(r.str16("time zone")?)),
                other => return Err(bad(format!("time zone flag {other} is neither 0 nor 1"))),
            };
            Ok(DataType::Timestamp(TimeUnit::Nanosecond, tz))
        }
        T_DICTIONARY => {
            let key =
                simple_type(r.u8()?).filter(is_dictionary_key).ok_or_else(|| bad("bad dictionary key type".into()))?;
            let value = simple_type(r.u8()?)
                .filter(is_dictionary_value)
                .ok_or_else(|| bad("bad dictionary value type".into()))?;
            Ok(DataType::Dictionary(Box::new(key), Box::new(value)))
        }
        other => simple_type(other).ok_or_else(|| bad(format!("unknown type tag {other}"))),
    }
}
