//! The segment's byte layout: header, descriptor and block placement (see `design/format.md`).
//!
//! ```text
//! +------------------+----------------------------------+------------------------------+
//! | header (40 B)    | body: every block's stored bytes | descriptor (ends in checksum)|
//! +------------------+----------------------------------+------------------------------+
//!
//! header:  0 magic "FLSG" | 4 version u16 | 6 flags u16 | 8 rows u64 | 16 columns u32
//!          20 descriptor_len u32 | 24 body_len u64 | 32 xxh3(header[0..32]) u64
//! ```
//!
//! The descriptor sits after the body so the encoder can stream blocks out and write the header last;
//! the header says where the descriptor starts (`40 + body_len`).

use std::sync::Arc;

use arrow_schema::{DataType, Field};

use super::block::{BlockMeta, Codec, MAX_BLOCK_RAW};
use super::types::{Physical, StreamKind, physical, read_type};
use crate::error::{FormatError, Result};
use crate::le::{Reader, WriteLe, checksum, checksum_matches};

/// The four bytes every segment starts with.
pub const SEGMENT_MAGIC: [u8; 4] = *b"FLSG";
/// The segment format version this build writes. It reads this one and every earlier one (1).
pub const SEGMENT_FORMAT_VERSION: u16 = 3;
/// The oldest segment format version this build reads.
const OLDEST_READABLE_VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 40;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 4;
const FLAGS_OFFSET: usize = VERSION_OFFSET + 2;
const ROWS_OFFSET: usize = FLAGS_OFFSET + 2;
const COLUMNS_OFFSET: usize = ROWS_OFFSET + 8;
const DESCRIPTOR_LEN_OFFSET: usize = COLUMNS_OFFSET + 4;
const BODY_LEN_OFFSET: usize = DESCRIPTOR_LEN_OFFSET + 4;
const HEADER_CHECKSUM_OFFSET: usize = BODY_LEN_OFFSET + 8;
const _: () = assert!(HEADER_CHECKSUM_OFFSET + 8 == HEADER_LEN);

/// Header flag: a user-metadata stream precedes the columns in the descriptor and body.
pub(crate) const FLAG_HAS_METADATA: u16 = 1;
const KNOWN_FLAGS: u16 = FLAG_HAS_METADATA;

/// Column flags in the descriptor.
const COLUMN_NULLABLE: u8 = 1;
const COLUMN_HAS_VALIDITY: u8 = 2;
/// Format 2: a variable-length column stored as keys into a dictionary of distinct values.
const COLUMN_DICTIONARY_CODED: u8 = 4;

fn known_column_flags(format_version: u16) -> u8 {
    if format_version >= 2 {
        COLUMN_NULLABLE | COLUMN_HAS_VALIDITY | COLUMN_DICTIONARY_CODED
    } else {
        COLUMN_NULLABLE | COLUMN_HAS_VALIDITY
    }
}

/// A decoder may allocate at most this many bytes per stored byte of a dictionary-coded column to
/// materialize it (LZ4's own bound, so the whole segment keeps one bound).
pub(crate) const MAX_EXPANSION: u64 = 256;

/// Bytes of one block entry in the descriptor: codec u8, raw u32, stored u32, checksum u64.
const BLOCK_ENTRY_LEN: usize = 1 + 4 + 4 + 8;

/// The decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u16,
    pub(crate) flags: u16,
    pub(crate) rows: u64,
    pub(crate) columns: u32,
    pub(crate) descriptor_len: u32,
    pub(crate) body_len: u64,
}

impl Header {
    pub(crate) fn write(&self, out: &mut [u8; HEADER_LEN]) {
        let mut v = Vec::with_capacity(HEADER_LEN);
        v.extend_from_slice(&SEGMENT_MAGIC);
        v.put_u16(self.version);
        v.put_u16(self.flags);
        v.put_u64(self.rows);
        v.put_u32(self.columns);
        v.put_u32(self.descriptor_len);
        v.put_u64(self.body_len);
        let sum = checksum(&v);
        v.put_u64(sum);
        out.copy_from_slice(&v);
    }

    /// Parses and verifies the header of a whole encoded segment, including that the total length
    /// matches what the header declares.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "segment");
        let magic = r.take(4)?;
        if magic != SEGMENT_MAGIC {
            return Err(FormatError::BadMagic {
                object: "segment",
                expected: SEGMENT_MAGIC.to_vec(),
                found: magic.to_vec(),
            });
        }
        let version = r.u16()?;
        if !(OLDEST_READABLE_VERSION..=SEGMENT_FORMAT_VERSION).contains(&version) {
            return Err(FormatError::UnsupportedVersion { object: "segment", found: version, supported: "1, 2" });
        }
        let flags = r.u16()?;
        let header =
            Header { version, flags, rows: r.u64()?, columns: r.u32()?, descriptor_len: r.u32()?, body_len: r.u64()? };
        let stored = r.u64()?;
        let computed = checksum(&bytes[..HEADER_CHECKSUM_OFFSET]);
        if !checksum_matches(stored, computed) {
            return Err(FormatError::ChecksumMismatch { location: "segment header".into(), stored, computed });
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(FormatError::malformed("segment", format!("unknown header flags {flags:#06x}")));
        }
        let declared = (HEADER_LEN as u64)
            .checked_add(header.body_len)
            .and_then(|n| n.checked_add(u64::from(header.descriptor_len)));
        if declared != Some(bytes.len() as u64) {
            return Err(FormatError::malformed(
                "segment",
                format!(
                    "header declares {HEADER_LEN} + {} body + {} descriptor bytes but the segment has {}",
                    header.body_len,
                    header.descriptor_len,
                    bytes.len()
                ),
            ));
        }
        Ok(header)
    }
}

/// One stream of a column (or the metadata stream): its blocks and where they start in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamDesc {
    pub(crate) kind: StreamKind,
    pub(crate) raw_len: u64,
    pub(crate) blocks: Vec<BlockMeta>,
    /// Offset of the first block's stored bytes, relative to the start of the body.
    pub(crate) body_offset: u64,
}

/// One block of a stream, located: its raw bytes' range within the stream's raw bytes, and its stored
/// bytes' range within the segment body.
#[derive(Debug, Clone)]
pub(crate) struct BlockSpan<'a> {
    /// The block's position in its stream.
    pub(crate) index: usize,
    pub(crate) meta: &'a BlockMeta,
    pub(crate) raw: std::ops::Range<usize>,
    pub(crate) stored: std::ops::Range<usize>,
}

impl StreamDesc {
    /// The stream's blocks in order, each located ([`BlockSpan`]).
    pub(crate) fn spans(&self) -> impl Iterator<Item = BlockSpan<'_>> {
        let (mut raw_at, mut stored_at) = (0usize, self.body_offset as usize);
        self.blocks.iter().enumerate().map(move |(index, meta)| {
            let raw = raw_at..raw_at + meta.raw_len as usize;
            let stored = stored_at..stored_at + meta.stored_len as usize;
            (raw_at, stored_at) = (raw.end, stored.end);
            BlockSpan { index, meta, raw, stored }
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.kind as u8);
        out.put_u64(self.raw_len);
        out.put_u32(u32::try_from(self.blocks.len()).expect("a stream has far fewer than 2^32 blocks"));
        for b in &self.blocks {
            out.put_u8(b.codec.code());
            out.put_u32(b.raw_len);
            out.put_u32(b.stored_len);
            out.put_u64(b.checksum);
        }
    }

    /// Total stored bytes of the stream's blocks.
    pub(crate) fn stored_len(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.stored_len)).sum()
    }

    /// Reads a stream entry, checking its kind and that its blocks add up and are plausible, so that
    /// decoding it can allocate `raw_len` bytes safely. `body_offset` is where its blocks start.
    fn read(
        r: &mut Reader<'_>,
        expected: StreamKind,
        body_offset: u64,
        format_version: u16,
        what: &dyn Fn() -> String,
    ) -> Result<Self> {
        let bad = |reason: String| FormatError::malformed("segment descriptor", format!("{}: {reason}", what()));
        let kind = r.u8()?;
        if kind != expected as u8 {
            return Err(bad(format!("stream kind {kind}, expected {} ({})", expected as u8, expected.name())));
        }
        let raw_len = r.u64()?;
        let count = r.u32()? as usize;
        if count > r.remaining() / BLOCK_ENTRY_LEN {
            return Err(bad(format!("{count} blocks cannot fit in the descriptor")));
        }
        let mut blocks = Vec::with_capacity(count);
        let mut sum = 0u64;
        for i in 0..count {
            let meta = BlockMeta {
                codec: Codec::from_code(r.u8()?, format_version)?,
                raw_len: r.u32()?,
                stored_len: r.u32()?,
                checksum: r.u64()?,
            };
            if meta.raw_len > MAX_BLOCK_RAW {
                return Err(bad(format!("block {i} is {} bytes raw, over the {MAX_BLOCK_RAW} limit", meta.raw_len)));
            }
            if !meta.codec.is_plausible(meta.raw_len, meta.stored_len) {
                return Err(bad(format!(
                    "block {i} ({:?}) claims {} raw bytes from {} stored",
                    meta.codec, meta.raw_len, meta.stored_len
                )));
            }
            sum += u64::from(meta.raw_len);
            blocks.push(meta);
        }
        if sum != raw_len {
            return Err(bad(format!("blocks hold {sum} bytes but the stream declares {raw_len}")));
        }
        Ok(Self { kind: expected, raw_len, blocks, body_offset })
    }
}

/// How a dictionary-coded variable-length column is stored (format 2, column flag bit 2): each row's
/// value is the dictionary entry its key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DictCoding {
    /// Bytes per key: 1, 2 or 4.
    pub(crate) key_width: usize,
    /// Bytes of the values once materialized: the data length of the plain layout.
    pub(crate) data_len: u64,
}

/// One column: its schema field, layout and streams.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnDesc {
    pub(crate) field: Arc<Field>,
    pub(crate) physical: Physical,
    /// `Some` for a variable-length column stored as keys and a dictionary.
    pub(crate) dict: Option<DictCoding>,
    /// `Some` when the column has a validity stream (it has nulls).
    pub(crate) validity: Option<StreamDesc>,
    /// The value streams, in the order of `value_streams(physical, dict.is_some())`.
    pub(crate) streams: Vec<StreamDesc>,
}

impl ColumnDesc {
    pub(crate) fn stream(&self, kind: StreamKind) -> Option<&StreamDesc> {
        self.streams.iter().find(|s| s.kind == kind)
    }

    /// Total stored bytes of the column.
    pub(crate) fn stored_len(&self) -> u64 {
        self.validity.iter().chain(&self.streams).map(StreamDesc::stored_len).sum()
    }
}

fn value_streams(physical: Physical, dictionary_coded: bool) -> &'static [StreamKind] {
    if dictionary_coded {
        &[StreamKind::Values, StreamKind::DictOffsets, StreamKind::DictData]
    } else {
        physical.value_streams()
    }
}

/// The parsed descriptor: the metadata stream and every column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Descriptor {
    pub(crate) metadata: Option<StreamDesc>,
    pub(crate) columns: Vec<ColumnDesc>,
}

/// Writes the descriptor of `columns` (and the metadata stream), ending in its checksum.
pub(crate) fn write_descriptor(out: &mut Vec<u8>, metadata: Option<&StreamDesc>, columns: &[ColumnDesc]) -> Result<()> {
    let start = out.len();
    if let Some(m) = metadata {
        m.write(out);
    }
    for c in columns {
        let field = &c.field;
        out.put_str16(field.name());
        let mut flags = 0;
        if field.is_nullable() {
            flags |= COLUMN_NULLABLE;
        }
        if c.validity.is_some() {
            flags |= COLUMN_HAS_VALIDITY;
        }
        if c.dict.is_some() {
            flags |= COLUMN_DICTIONARY_CODED;
        }
        out.put_u8(flags);
        super::types::write_type(out, field.name(), field.data_type())?;
        if let Some(d) = c.dict {
            out.put_u8(u8::try_from(d.key_width).expect("1, 2 or 4"));
            out.put_u64(d.data_len);
        }
        for s in c.validity.iter().chain(&c.streams) {
            s.write(out);
        }
    }
    let sum = checksum(&out[start..]);
    out.put_u64(sum);
    Ok(())
}

/// The raw length a stream must have, when the row count determines it. In `u128`, so that a row
/// count whose stream length would overflow `u64` is a mismatch, not an unchecked stream.
fn expected_raw_len(kind: StreamKind, physical: Physical, dict: Option<DictCoding>, rows: u64) -> Option<u128> {
    let rows = u128::from(rows);
    match (kind, physical) {
        (StreamKind::Validity, _) | (StreamKind::Values, Physical::Bits) => Some(rows.div_ceil(8)),
        (StreamKind::Values, Physical::Var { .. }) => Some(rows * dict?.key_width as u128),
        (StreamKind::Values, Physical::Fixed { width }) => Some(rows * width as u128),
        (StreamKind::Values, Physical::Dict { key_width, .. }) => Some(rows * key_width as u128),
        (StreamKind::Offsets, Physical::Var { offset_width }) => Some(rows * offset_width as u128),
        _ => None,
    }
}

/// Parses and verifies the descriptor (`bytes` is the descriptor alone, checksum included).
pub(crate) fn parse_descriptor(bytes: &[u8], header: &Header) -> Result<Descriptor> {
    let Some(split) = bytes.len().checked_sub(8) else {
        return Err(FormatError::Truncated {
            object: "segment descriptor",
            offset: 0,
            needed: 8,
            available: bytes.len(),
        });
    };
    let (content, sum) = bytes.split_at(split);
    let stored = u64::from_le_bytes(sum.try_into().expect("split leaves exactly 8 bytes"));
    let computed = checksum(content);
    if !checksum_matches(stored, computed) {
        return Err(FormatError::ChecksumMismatch { location: "segment descriptor".into(), stored, computed });
    }
    let mut r = Reader::new(content, "segment descriptor");
    let mut body_offset = 0u64;
    let version = header.version;
    let mut next = |r: &mut Reader<'_>, kind, what: &dyn Fn() -> String| -> Result<StreamDesc> {
        let s = StreamDesc::read(r, kind, body_offset, version, what)?;
        body_offset += s.stored_len();
        Ok(s)
    };
    let metadata = if header.flags & FLAG_HAS_METADATA != 0 {
        Some(next(&mut r, StreamKind::Metadata, &|| "metadata".into())?)
    } else {
        None
    };
    // Each column takes at least 4 descriptor bytes, which bounds the allocation below.
    let columns_len = header.columns as usize;
    if columns_len > r.remaining() / 4 + 1 {
        return Err(FormatError::malformed("segment descriptor", format!("{columns_len} columns cannot fit")));
    }
    let mut columns = Vec::with_capacity(columns_len);
    for index in 0..columns_len {
        let name = r.str16("column name")?.to_owned();
        let what = || format!("column {index} ({name:?})");
        let flags = r.u8()?;
        if flags & !known_column_flags(version) != 0 {
            return Err(FormatError::malformed(
                "segment descriptor",
                format!("{}: unknown flags {flags:#04x}", what()),
            ));
        }
        let nullable = flags & COLUMN_NULLABLE != 0;
        let has_validity = flags & COLUMN_HAS_VALIDITY != 0;
        if has_validity && !nullable {
            return Err(FormatError::malformed(
                "segment descriptor",
                format!("{}: nulls in a non-nullable column", what()),
            ));
        }
        let data_type: DataType = read_type(&mut r)?;
        let physical = physical(&name, &data_type)?;
        let dict = if flags & COLUMN_DICTIONARY_CODED != 0 {
            let Physical::Var { .. } = physical else {
                return Err(FormatError::malformed(
                    "segment descriptor",
                    format!("{}: only variable-length columns can be dictionary-coded", what()),
                ));
            };
            let key_width = usize::from(r.u8()?);
            if ![1, 2, 4].contains(&key_width) {
                return Err(FormatError::malformed(
                    "segment descriptor",
                    format!("{}: dictionary key width {key_width} is not 1, 2 or 4", what()),
                ));
            }
            Some(DictCoding { key_width, data_len: r.u64()? })
        } else {
            None
        };
        let validity = if has_validity { Some(next(&mut r, StreamKind::Validity, &what)?) } else { None };
        let mut streams = Vec::with_capacity(3);
        for &kind in value_streams(physical, dict.is_some()) {
            streams.push(next(&mut r, kind, &what)?);
        }
        for s in validity.iter().chain(&streams) {
            if let Some(expected) = expected_raw_len(s.kind, physical, dict, header.rows)
                && u128::from(s.raw_len) != expected
            {
                return Err(FormatError::malformed(
                    "segment descriptor",
                    format!(
                        "{}: {} stream has {} bytes, {} rows need {expected}",
                        what(),
                        s.kind.name(),
                        s.raw_len,
                        header.rows
                    ),
                ));
            }
        }
        let offset_width = match physical {
            Physical::Dict { offset_width, .. } | Physical::Var { offset_width } => offset_width as u64,
            _ => 1,
        };
        if let Some(s) = streams.iter().find(|s| s.kind == StreamKind::DictOffsets)
            && s.raw_len % offset_width != 0
        {
            return Err(FormatError::malformed("segment descriptor", format!("{}: ragged dictionary offsets", what())));
        }
        if let Some(d) = dict {
            check_dictionary_bounds(d, offset_width, header.rows, &streams)
                .map_err(|reason| FormatError::malformed("segment descriptor", format!("{}: {reason}", what())))?;
        }
        columns.push(ColumnDesc {
            field: Arc::new(Field::new(name, data_type, nullable)),
            physical,
            dict,
            validity,
            streams,
        });
    }
    r.finish()?;
    if body_offset != header.body_len {
        return Err(FormatError::malformed(
            "segment descriptor",
            format!("blocks hold {body_offset} bytes but the header declares a {}-byte body", header.body_len),
        ));
    }
    Ok(Descriptor { metadata, columns })
}

/// The checks on a dictionary-coded column that bound what materializing it allocates: the data length
/// fits the type's offsets, and the materialized offsets and data together are at most
/// [`MAX_EXPANSION`] times the bytes the column's value streams occupy in the segment.
fn check_dictionary_bounds(
    dict: DictCoding,
    offset_width: u64,
    rows: u64,
    streams: &[StreamDesc],
) -> std::result::Result<(), String> {
    let limit = if offset_width == 4 { i32::MAX as u64 } else { i64::MAX as u64 };
    if dict.data_len > limit {
        return Err(format!("{} data bytes overflow {offset_width}-byte offsets", dict.data_len));
    }
    let stored: u64 = streams.iter().map(StreamDesc::stored_len).sum();
    let materialized = u128::from(rows) * u128::from(offset_width) + u128::from(dict.data_len);
    if materialized > u128::from(stored) * u128::from(MAX_EXPANSION) {
        return Err(format!(
            "{rows} rows of {} data bytes materialize to more than {MAX_EXPANSION}x the {stored} stored bytes",
            dict.data_len
        ));
    }
    Ok(())
}
