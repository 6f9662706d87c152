//! Index segments: one row per data segment of a version, plus the table descriptor. Reading a
//! version's index alone is enough to prune segments for a date range, row range or column subset.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_formats::record::{IndexKind, TableDescriptor};
use floe_formats::{AtomFields, AtomKey, KeyType, SegmentReader, encode_segment};

use crate::error::{Error, Result};

/// Where one data segment sits in its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// First row (inclusive) of the table stored in the segment.
    pub row_start: u64,
    /// End row (exclusive).
    pub row_end: u64,
    /// First index value in the segment (timestamp, or row number).
    pub index_start: i64,
    /// Last index value (inclusive).
    pub index_end: i64,
    /// First data column (inclusive) of the table's data-column list stored in the segment.
    pub col_start: u32,
    /// End data column (exclusive).
    pub col_end: u32,
    /// The data segment's key.
    pub key: AtomKey,
}

impl IndexEntry {
    /// Rows in the segment.
    pub fn rows(&self) -> u64 {
        self.row_end - self.row_start
    }
}

/// A decoded index segment: the table's descriptor and schema, and its entries sorted by
/// `(row_start, col_start)`.
#[derive(Debug, Clone)]
pub struct TableIndex {
    /// The descriptor (index kind, row count, user metadata).
    pub descriptor: TableDescriptor,
    /// The table schema.
    pub schema: SchemaRef,
    /// The entries.
    pub entries: Vec<IndexEntry>,
}

fn index_schema() -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    Arc::new(Schema::new(vec![
        f("row_start", DataType::UInt64),
        f("row_end", DataType::UInt64),
        f("index_start", DataType::Int64),
        f("index_end", DataType::Int64),
        f("col_start", DataType::UInt32),
        f("col_end", DataType::UInt32),
        f("key_symbol", DataType::Utf8),
        f("key_version", DataType::UInt64),
        f("key_creation_ts", DataType::Int64),
        f("key_hash", DataType::UInt64),
        f("key_start", DataType::Int64),
        f("key_end", DataType::Int64),
    ]))
}

/// The bytes of an empty segment carrying `schema`: how a schema is persisted.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] for column types the codec does not store.
pub fn schema_bytes(schema: &SchemaRef) -> Result<Vec<u8>> {
    Ok(encode_segment(&RecordBatch::new_empty(Arc::clone(schema)), None)?)
}

impl TableIndex {
    /// Encodes the index segment.
    ///
    /// # Errors
    /// Format errors (should not happen for a valid index).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let e = &self.entries;
        let u64s = |f: fn(&IndexEntry) -> u64| -> ArrayRef { Arc::new(UInt64Array::from_iter_values(e.iter().map(f))) };
        let i64s = |f: fn(&IndexEntry) -> i64| -> ArrayRef { Arc::new(Int64Array::from_iter_values(e.iter().map(f))) };
        let u32s = |f: fn(&IndexEntry) -> u32| -> ArrayRef { Arc::new(UInt32Array::from_iter_values(e.iter().map(f))) };
        let cols: Vec<ArrayRef> = vec![
            u64s(|x| x.row_start),
            u64s(|x| x.row_end),
            i64s(|x| x.index_start),
            i64s(|x| x.index_end),
            u32s(|x| x.col_start),
            u32s(|x| x.col_end),
            Arc::new(StringArray::from_iter_values(e.iter().map(|x| x.key.symbol()))),
            u64s(|x| x.key.version()),
            i64s(|x| x.key.creation_ts()),
            u64s(|x| x.key.content_hash()),
            i64s(|x| x.key.start()),
            i64s(|x| x.key.end()),
        ];
        let batch = RecordBatch::try_new(index_schema(), cols)?;
        Ok(encode_segment(&batch, Some(&self.descriptor.encode()))?)
    }

    /// Decodes an index segment.
    ///
    /// # Errors
    /// [`crate::ErrorKind::CorruptData`] when the bytes are damaged or not an index segment.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let reader = SegmentReader::new(bytes)?;
        let meta = reader.metadata()?.ok_or_else(|| Error::corrupt("index segment has no table descriptor"))?;
        let descriptor = TableDescriptor::decode(&meta)?;
        let schema = SegmentReader::new(&descriptor.schema_segment)?.schema();
        let batch = reader.decode(None)?;
        if batch.schema().fields() != index_schema().fields() {
            return Err(Error::corrupt(format!("index segment has unexpected columns: {}", batch.schema())));
        }
        let col = |i: usize| Arc::clone(batch.column(i));
        let u64c = |i: usize| -> Result<UInt64Array> {
            col(i).as_any().downcast_ref::<UInt64Array>().cloned().ok_or_else(|| Error::corrupt("index column type"))
        };
        let i64c = |i: usize| -> Result<Int64Array> {
            col(i).as_any().downcast_ref::<Int64Array>().cloned().ok_or_else(|| Error::corrupt("index column type"))
        };
        let u32c = |i: usize| -> Result<UInt32Array> {
            col(i).as_any().downcast_ref::<UInt32Array>().cloned().ok_or_else(|| Error::corrupt("index column type"))
        };
        let (rs, re, is, ie, cs, ce) = (u64c(0)?, u64c(1)?, i64c(2)?, i64c(3)?, u32c(4)?, u32c(5)?);
        let sym =
            col(6).as_any().downcast_ref::<StringArray>().cloned().ok_or_else(|| Error::corrupt("index symbol"))?;
        let (kv, kt, kh, ks, ke) = (u64c(7)?, i64c(8)?, u64c(9)?, i64c(10)?, i64c(11)?);
        let mut entries = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let fields = AtomFields {
                version: kv.value(i),
                creation_ts: kt.value(i),
                content_hash: kh.value(i),
                start: ks.value(i),
                end: ke.value(i),
            };
            let entry = IndexEntry {
                row_start: rs.value(i),
                row_end: re.value(i),
                index_start: is.value(i),
                index_end: ie.value(i),
                col_start: cs.value(i),
                col_end: ce.value(i),
                key: AtomKey::new(KeyType::TableData, sym.value(i), fields)?,
            };
            if entry.row_end < entry.row_start || entry.col_end < entry.col_start {
                return Err(Error::corrupt(format!("index entry {i} has reversed ranges")));
            }
            entries.push(entry);
        }
        Ok(TableIndex { descriptor, schema, entries })
    }

    /// Position of the index column in the schema.
    pub fn index_pos(&self) -> Option<usize> {
        match &self.descriptor.index {
            IndexKind::RowCount => None,
            IndexKind::Timestamp(name) => self.schema.index_of(name).ok(),
        }
    }

    /// The row slices: groups of entries sharing `(row_start, row_end)`, in row order.
    pub fn row_slices(&self) -> Vec<&[IndexEntry]> {
        self.entries.chunk_by(|a, b| a.row_start == b.row_start && a.row_end == b.row_end).collect()
    }
}
