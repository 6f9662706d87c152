//! Index segments: one row per data segment of a version, plus the table descriptor. Reading a
//! version's index alone is enough to prune segments for a date range, row range or column subset.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_formats::record::{IndexKind, TableDescriptor};
use floe_formats::{AtomFields, AtomKey, KeyType, SegmentReader, encode_segment};

use crate::error::{Error, Result};
use crate::sync::{Mutex, lock};

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
    /// The segment's row that is this entry's first: an entry covers segment rows
    /// `seg_row_offset .. seg_row_offset + rows()`. Non-zero when an update or range delete kept part
    /// of an old segment by reference instead of rewriting it.
    pub seg_row_offset: u64,
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

/// The index segment's columns. Layout 1 has the first twelve; layout 2 adds `seg_row_offset`, and is
/// written only when some entry covers part of its segment, so that indexes without such entries stay
/// readable by builds that predate it.
fn index_schema(with_offsets: bool) -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    let mut fields = vec![
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
    ];
    if with_offsets {
        fields.push(f("seg_row_offset", DataType::UInt64));
    }
    Arc::new(Schema::new(fields))
}

/// The bytes of an empty segment carrying `schema`: how a schema is persisted.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] for column types the codec does not store.
pub fn schema_bytes(schema: &SchemaRef) -> Result<Vec<u8>> {
    Ok(encode_segment(&RecordBatch::new_empty(Arc::clone(schema)), None)?)
}

/// The schema a library handle persisted last and its [`schema_bytes`], so that a run of writes and
/// appends of one schema encodes it once: for 1,000 columns the encoding is ~0.6 ms, done after the
/// data is stored, on every commit. Shared by the clones of a handle; one entry, compared by value.
#[derive(Debug)]
pub(crate) struct SchemaBytesMemo(Mutex<Option<(SchemaRef, Vec<u8>)>>);

impl Default for SchemaBytesMemo {
    fn default() -> Self {
        SchemaBytesMemo(Mutex::new(None))
    }
}

impl SchemaBytesMemo {
    /// [`schema_bytes`] of `schema`, from the memo when it holds an equal schema.
    ///
    /// # Errors
    /// As [`schema_bytes`].
    pub(crate) fn get(&self, schema: &SchemaRef) -> Result<Vec<u8>> {
        if let Some((kept, bytes)) = &*lock(&self.0)
            && kept == schema
        {
            return Ok(bytes.clone());
        }
        let bytes = schema_bytes(schema)?;
        *lock(&self.0) = Some((Arc::clone(schema), bytes.clone()));
        Ok(bytes)
    }
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
        let mut cols: Vec<ArrayRef> = vec![
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
        let with_offsets = e.iter().any(|x| x.seg_row_offset != 0);
        if with_offsets {
            cols.push(u64s(|x| x.seg_row_offset));
        }
        let batch = RecordBatch::try_new(index_schema(with_offsets), cols)?;
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
        let with_offsets = batch.num_columns() == 13;
        if batch.schema().fields() != index_schema(with_offsets).fields() {
            return Err(Error::corrupt(format!(
                "index segment has columns this build does not know (damaged, or written by a newer Floe): {}",
                batch.schema()
            )));
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
        let offsets = with_offsets.then(|| u64c(12)).transpose()?;
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
                seg_row_offset: offsets.as_ref().map_or(0, |o| o.value(i)),
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

#[cfg(test)]
mod tests {
    //! Index segments of both layouts: round trips, and golden bytes (`engine/tests/golden/`, made by
    //! `FLOE_BLESS=1 cargo test -p floe-engine --lib index`) so that an index written today stays
    //! readable. The layout 1 fixture predates `seg_row_offset` in its content, not in its bytes:
    //! indexes without partial entries are still written that way. `index.layoutN.vF.seg` is what
    //! this build writes in segment format F; `index.layoutN.seg`, written in segment format 2, is
    //! never rewritten and must keep decoding.

    use std::path::PathBuf;

    use super::*;

    fn entry(row_start: u64, rows: u64, col_start: u32, seg_row_offset: u64, n: u64) -> IndexEntry {
        let fields =
            AtomFields { version: 3, creation_ts: 1_700_000_000 + n as i64, content_hash: n, start: 10, end: 20 };
        IndexEntry {
            row_start,
            row_end: row_start + rows,
            index_start: 10 * row_start as i64,
            index_end: 10 * (row_start + rows) as i64 - 1,
            col_start,
            col_end: col_start + 2,
            key: AtomKey::new(KeyType::TableData, "sym", fields).expect("valid key"),
            seg_row_offset,
        }
    }

    #[test]
    fn the_schema_memo_gives_each_schema_its_own_bytes() {
        let schema = |names: &[&str]| -> SchemaRef {
            Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Float64, true)).collect::<Vec<_>>()))
        };
        let memo = SchemaBytesMemo::default();
        let (a, b) = (schema(&["x", "y"]), schema(&["x", "z"]));
        for s in [&a, &a, &b, &schema(&["x", "y"]), &b] {
            assert_eq!(memo.get(s).expect("encodes"), schema_bytes(s).expect("encodes"), "{s}");
        }
        assert_ne!(schema_bytes(&a).expect("encodes"), schema_bytes(&b).expect("encodes"));
        let unsupported = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        assert!(memo.get(&unsupported).is_err());
        assert_eq!(memo.get(&a).expect("encodes"), schema_bytes(&a).expect("encodes"));
    }

    fn index(entries: Vec<IndexEntry>) -> TableIndex {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None), false),
            Field::new("a", DataType::Float64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        let descriptor = TableDescriptor {
            index: IndexKind::Timestamp("ts".into()),
            total_rows: entries.last().map_or(0, |e| e.row_end),
            schema_segment: schema_bytes(&schema).expect("schema"),
            user_metadata: Some(b"meta".to_vec()),
        };
        TableIndex { descriptor, schema, entries }
    }

    /// Layout 1: whole segments only. Layout 2: an update kept rows 40.. of one segment.
    fn layouts() -> [(&'static str, TableIndex, usize); 2] {
        [
            ("index.layout1", index(vec![entry(0, 100, 0, 0, 1), entry(100, 50, 0, 0, 2)]), 12),
            (
                "index.layout2",
                index(vec![
                    entry(0, 40, 0, 0, 1),
                    entry(40, 7, 0, 0, 3),
                    entry(47, 60, 0, 40, 1),
                    entry(107, 50, 0, 0, 2),
                ]),
                13,
            ),
        ]
    }

    #[test]
    fn index_segments_round_trip_in_both_layouts() {
        for (name, idx, columns) in layouts() {
            let bytes = idx.encode().expect("encodes");
            assert_eq!(SegmentReader::new(&bytes).expect("a segment").num_columns(), columns, "{name}");
            let back = TableIndex::decode(&bytes).expect("decodes");
            assert_eq!(back.entries, idx.entries, "{name}");
            assert_eq!(back.schema, idx.schema, "{name}");
            assert_eq!(back.descriptor, idx.descriptor, "{name}");
        }
    }

    #[test]
    fn golden_index_segments_still_decode() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        for (name, idx, _) in layouts() {
            let path = dir.join(format!("{name}.v{}.seg", floe_formats::segment::SEGMENT_FORMAT_VERSION));
            let encoded = idx.encode().expect("encodes");
            if std::env::var_os("FLOE_BLESS").is_some() {
                std::fs::write(&path, &encoded).expect("bless");
            }
            let golden = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with FLOE_BLESS=1 to create)", path.display()));
            assert_eq!(TableIndex::decode(&golden).expect("decodes").entries, idx.entries, "{name}: entries changed");
            assert_eq!(encoded, golden, "{name}: the index encoding changed; that needs a new layout");
            // The same index as segment format 2 wrote it.
            let older = std::fs::read(dir.join(format!("{name}.seg"))).expect("the format 2 fixture");
            assert_eq!(u16::from_le_bytes([older[4], older[5]]), 2, "{name}: the format 2 fixture");
            assert_eq!(TableIndex::decode(&older).expect("decodes").entries, idx.entries, "{name} (format 2)");
        }
    }

    #[test]
    fn unknown_index_columns_are_refused_by_name() {
        let bytes = index(vec![entry(0, 10, 0, 5, 1)]).encode().expect("encodes");
        // An index segment with a column this build does not know: the decoder says so.
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("row_start", DataType::UInt64, false)])),
            vec![Arc::new(UInt64Array::from(vec![1u64]))],
        )
        .expect("batch");
        let meta = SegmentReader::new(&bytes).expect("segment").metadata().expect("meta").expect("descriptor");
        let odd = encode_segment(&batch, Some(&meta)).expect("encodes");
        let err = TableIndex::decode(&odd).expect_err("unknown layout");
        assert!(err.to_string().contains("newer Floe"), "{err}");
    }
}
