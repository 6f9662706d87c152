//! Input tables: validation of schema and index, and slicing into rows × columns segments.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_formats::record::IndexKind;

use crate::error::{Error, Result};

/// A table to write: record batches sharing one schema, and how it is indexed.
#[derive(Debug, Clone)]
pub struct Table {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    index: IndexKind,
    index_pos: Option<usize>,
}

impl Table {
    /// A table from `batches` (all with `schema`) indexed by `index`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when a batch's schema differs, the index column is missing,
    /// is not `timestamp[ns]`, has nulls or is not sorted ascending, or two columns share a name.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>, index: IndexKind) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        for f in schema.fields() {
            if !seen.insert(f.name().as_str()) {
                return Err(Error::invalid(format!("column name {:?} appears twice", f.name())));
            }
        }
        for (i, b) in batches.iter().enumerate() {
            if b.schema().fields() != schema.fields() {
                return Err(Error::invalid(format!(
                    "batch {i} has schema {} but the table's schema is {}",
                    b.schema(),
                    schema
                )));
            }
        }
        let index_pos = match &index {
            IndexKind::RowCount => None,
            IndexKind::Timestamp(name) => {
                let pos = schema
                    .index_of(name)
                    .map_err(|_| Error::invalid(format!("index column {name:?} is not in the table")))?;
                let dt = schema.field(pos).data_type();
                if !matches!(dt, DataType::Timestamp(TimeUnit::Nanosecond, _)) {
                    return Err(Error::invalid(format!("index column {name:?} has type {dt}, not timestamp[ns]")));
                }
                Some(pos)
            }
        };
        let table =
            Table { schema, batches: batches.into_iter().filter(|b| b.num_rows() > 0).collect(), index, index_pos };
        table.check_index_sorted()?;
        Ok(table)
    }

    /// A single-batch table.
    ///
    /// # Errors
    /// As [`Table::new`].
    pub fn from_batch(batch: RecordBatch, index: IndexKind) -> Result<Self> {
        Self::new(batch.schema(), vec![batch], index)
    }

    fn check_index_sorted(&self) -> Result<()> {
        let Some(pos) = self.index_pos else { return Ok(()) };
        let name = self.schema.field(pos).name();
        let mut prev: Option<i64> = None;
        let mut row = 0usize;
        for b in &self.batches {
            let col = timestamps(b.column(pos))?;
            if col.null_count() > 0 {
                return Err(Error::invalid(format!("index column {name:?} has nulls")));
            }
            for (i, &v) in col.values().iter().enumerate() {
                if prev.is_some_and(|p| v < p) {
                    return Err(Error::with_detail(
                        crate::ErrorKind::InvalidInput,
                        crate::error::Detail::UnsortedIndex,
                        format!(
                            "index column {name:?} is not sorted: row {} ({v}) is before row {} ({})",
                            row + i,
                            row + i - 1,
                            prev.unwrap_or_default()
                        ),
                    ));
                }
                prev = Some(v);
            }
            row += b.num_rows();
        }
        Ok(())
    }

    /// The schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The index kind.
    pub fn index(&self) -> &IndexKind {
        &self.index
    }

    /// Position of the index column in the schema, if any.
    pub fn index_pos(&self) -> Option<usize> {
        self.index_pos
    }

    /// The non-empty batches.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// Total rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// First and last index values (timestamps, or row numbers from `row_base`), or `None` if empty.
    pub fn index_range(&self, row_base: u64) -> Option<(i64, i64)> {
        let n = self.num_rows();
        if n == 0 {
            return None;
        }
        match self.index_pos {
            None => Some((row_base as i64, (row_base + n as u64 - 1) as i64)),
            Some(pos) => {
                let first = self.batches.first()?.column(pos);
                let last = self.batches.last()?.column(pos);
                let first = timestamps(first).ok()?.value(0);
                let last = timestamps(last).ok()?;
                Some((first, last.value(last.len() - 1)))
            }
        }
    }

    /// Splits the rows into runs of at most `rows_per_segment` rows, each one record batch (batches are
    /// concatenated only where a run spans input batches).
    ///
    /// # Errors
    /// Arrow errors from concatenation (should not happen: schemas were checked).
    pub fn row_slices(&self, rows_per_segment: usize) -> Result<Vec<RecordBatch>> {
        let mut cutter = SliceCutter::new(Arc::clone(&self.schema), rows_per_segment);
        let mut out = std::collections::VecDeque::new();
        for b in &self.batches {
            cutter.cut(b, &mut out)?;
        }
        out.extend(cutter.finish()?);
        Ok(out.into())
    }
}

/// Cuts batches, in order, into row slices of `rows_per_segment` rows (the last may be shorter),
/// concatenating only where a slice spans two batches.
struct SliceCutter {
    schema: SchemaRef,
    rows_per_segment: usize,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

impl SliceCutter {
    fn new(schema: SchemaRef, rows_per_segment: usize) -> Self {
        SliceCutter { schema, rows_per_segment: rows_per_segment.max(1), pending: Vec::new(), pending_rows: 0 }
    }

    /// Adds `batch`'s rows, moving every full slice to `out`.
    fn cut(&mut self, batch: &RecordBatch, out: &mut std::collections::VecDeque<RecordBatch>) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (self.rows_per_segment - self.pending_rows).min(batch.num_rows() - offset);
            self.pending.push(batch.slice(offset, take));
            self.pending_rows += take;
            offset += take;
            if self.pending_rows == self.rows_per_segment {
                out.push_back(self.take_pending()?);
            }
        }
        Ok(())
    }

    /// The last, partial slice, if any rows are left.
    fn finish(&mut self) -> Result<Option<RecordBatch>> {
        if self.pending_rows == 0 { Ok(None) } else { self.take_pending().map(Some) }
    }

    fn take_pending(&mut self) -> Result<RecordBatch> {
        let slice = concat(&self.schema, &self.pending);
        self.pending.clear();
        self.pending_rows = 0;
        slice
    }
}

/// Cuts a stream of input batches into row slices of `rows_per_segment` rows as they arrive (batches
/// concatenated only where a slice spans two), checking each batch as [`Table::new`] checks a table:
/// its schema, and an index column without nulls and sorted ascending, across batches too. The first
/// error ends the stream.
pub(crate) struct RowSlicer<I> {
    batches: I,
    schema: SchemaRef,
    index: IndexKind,
    cutter: SliceCutter,
    ready: std::collections::VecDeque<RecordBatch>,
    last_ts: Option<i64>,
    batch_no: usize,
    rows_seen: u64,
    done: bool,
}

impl<I: Iterator<Item = Result<RecordBatch>>> RowSlicer<I> {
    /// Slices of `rows_per_segment` rows of `batches`, which must all have `schema` and be indexed by
    /// `index` (a header checked by [`Table::new`] with no batches).
    pub(crate) fn new(batches: I, schema: SchemaRef, index: IndexKind, rows_per_segment: usize) -> Self {
        RowSlicer {
            cutter: SliceCutter::new(Arc::clone(&schema), rows_per_segment),
            batches,
            schema,
            index,
            ready: std::collections::VecDeque::new(),
            last_ts: None,
            batch_no: 0,
            rows_seen: 0,
            done: false,
        }
    }

    /// Checks `batch` alone and against the previous one's last index value.
    fn check(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = self.batch_no;
        let rows = self.rows_seen..self.rows_seen + batch.num_rows() as u64;
        let context = |e: Error| e.context(format!("input batch {n} (rows {rows:?})"));
        let alone = Table::new(Arc::clone(&self.schema), vec![batch.clone()], self.index.clone()).map_err(context)?;
        if let (Some(pos), Some(last)) = (alone.index_pos(), self.last_ts) {
            let first = timestamps(batch.column(pos))?.value(0);
            if first < last {
                let name = self.schema.field(pos).name();
                return Err(context(Error::with_detail(
                    crate::ErrorKind::InvalidInput,
                    crate::error::Detail::UnsortedIndex,
                    format!(
                        "index column {name:?} is not sorted: the batch starts at {first}, before the previous one's last value {last}"
                    ),
                )));
            }
        }
        if let Some(pos) = alone.index_pos() {
            let ts = timestamps(batch.column(pos))?;
            self.last_ts = Some(ts.value(ts.len() - 1));
        }
        Ok(())
    }
}

impl<I: Iterator<Item = Result<RecordBatch>>> Iterator for RowSlicer<I> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(slice) = self.ready.pop_front() {
                return Some(Ok(slice));
            }
            if self.done {
                return None;
            }
            match self.batches.next() {
                Some(Ok(batch)) if batch.num_rows() == 0 => self.batch_no += 1,
                Some(Ok(batch)) => {
                    let checked = self.check(&batch).and_then(|()| self.cutter.cut(&batch, &mut self.ready));
                    self.batch_no += 1;
                    self.rows_seen += batch.num_rows() as u64;
                    if let Err(e) = checked {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    if let Some(last) = self.cutter.finish().transpose() {
                        return Some(last);
                    }
                }
            }
        }
    }
}

fn concat(schema: &SchemaRef, parts: &[RecordBatch]) -> Result<RecordBatch> {
    if parts.len() == 1 {
        return Ok(parts[0].clone());
    }
    Ok(arrow_select::concat::concat_batches(schema, parts)?)
}

/// Input bytes a segment aims at: where `columns_per_segment` columns of a row slice would hold more,
/// a segment takes fewer columns (but not fewer than [`MIN_GROUP_COLUMNS`]). On LMDB a segment is
/// stored in a write transaction of its own (or with a few others), and for `wide` (10,000 rows of
/// 1,000 float64 columns) segments of 32 columns (2.5 MB) took a write from pyarrow 52-53 -> 45-47 ms
/// and from pandas 63-66 -> 49-52 ms, +32-40 -> +8-11 MB at peak, against 127 (design/decisions.md
/// D53).
pub const SEGMENT_TARGET_BYTES: usize = 5 << 19;

/// Columns per segment never fall below this for size: every segment repeats the index column, so
/// thinner groups would store it too often (a 10-column table is never split).
pub const MIN_GROUP_COLUMNS: usize = 32;

/// Data columns per segment for row slices of `rows` rows of `schema`'s data columns `data_cols`:
/// `per_segment` (the library's `columns_per_segment`, a maximum), or fewer where that many would make
/// a segment's input exceed [`SEGMENT_TARGET_BYTES`], down to [`MIN_GROUP_COLUMNS`]. Widths are those
/// of fixed-width types (booleans 1 byte) and 16 bytes a value for the others (an estimate).
pub fn columns_per_group(schema: &Schema, data_cols: &[usize], rows: usize, per_segment: usize) -> usize {
    let per_segment = per_segment.max(1);
    if data_cols.len() <= MIN_GROUP_COLUMNS.min(per_segment) {
        return per_segment;
    }
    let width = |c: usize| match schema.field(c).data_type() {
        DataType::Boolean => 1,
        t => t.primitive_width().unwrap_or(16),
    };
    let average = (data_cols.iter().map(|&c| width(c)).sum::<usize>() / data_cols.len()).max(1);
    let fit = SEGMENT_TARGET_BYTES / rows.max(1).saturating_mul(average).max(1);
    fit.max(MIN_GROUP_COLUMNS).min(per_segment)
}

/// The column groups (one segment each per row slice) of row slices of `rows` rows of `schema`'s data
/// columns `data_cols`: [`column_groups`] of [`columns_per_group`] columns each, the one rule writes and
/// compaction's estimates share.
pub fn segment_groups(schema: &Schema, data_cols: &[usize], rows: usize, per_segment: usize) -> Vec<(usize, usize)> {
    column_groups(data_cols.len(), columns_per_group(schema, data_cols, rows, per_segment))
}

/// The column groups of a schema: data columns (all but the index) in chunks of `per_segment`,
/// as ranges over the data-column list.
pub fn column_groups(num_data_columns: usize, per_segment: usize) -> Vec<(usize, usize)> {
    if num_data_columns == 0 {
        return vec![(0, 0)];
    }
    (0..num_data_columns).step_by(per_segment).map(|s| (s, (s + per_segment).min(num_data_columns))).collect()
}

/// Positions in the schema of the data columns (all but the index column).
pub fn data_columns(schema: &Schema, index_pos: Option<usize>) -> Vec<usize> {
    (0..schema.fields().len()).filter(|&i| Some(i) != index_pos).collect()
}

/// The schema positions of one segment's columns, in the order it stores them: the index column (if
/// any), then data columns `group` (positions into `data_cols`).
///
/// # Panics
/// If `group` is not a range within `data_cols` (groups come from [`column_groups`] of its length).
pub fn segment_positions<'a>(
    index_pos: Option<usize>,
    data_cols: &'a [usize],
    group: (usize, usize),
) -> impl Iterator<Item = usize> + 'a {
    index_pos.into_iter().chain(data_cols[group.0..group.1].iter().copied())
}

/// The batch stored in one segment: the index column (if any) followed by data columns `group`.
///
/// # Errors
/// Arrow errors (should not happen for a batch of the table's schema).
pub fn segment_batch(
    rows: &RecordBatch,
    index_pos: Option<usize>,
    data_cols: &[usize],
    group: (usize, usize),
) -> Result<RecordBatch> {
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let schema = rows.schema();
    for i in segment_positions(index_pos, data_cols, group) {
        fields.push(Arc::new(schema.field(i).clone()));
        cols.push(Arc::clone(rows.column(i)));
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.num_rows()));
    Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), cols, &options)?)
}

/// The bytes of input behind one segment: its columns' buffers as sliced to `rows` (what encoding
/// reads, and about what it writes).
pub fn segment_input_bytes(
    rows: &RecordBatch,
    index_pos: Option<usize>,
    data_cols: &[usize],
    group: (usize, usize),
) -> usize {
    segment_positions(index_pos, data_cols, group)
        .map(|i| {
            let data = rows.column(i).to_data();
            // Only fails for a malformed array, which the encoder will name; the whole buffers then.
            data.get_slice_memory_size().unwrap_or_else(|_| rows.column(i).get_array_memory_size())
        })
        .sum()
}

/// The array as timestamps in ns.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] if it is another type.
pub fn timestamps(a: &ArrayRef) -> Result<&TimestampNanosecondArray> {
    a.as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .ok_or_else(|| Error::invalid(format!("expected a timestamp[ns] column, found {}", a.data_type())))
}

/// Describes how two schemas differ, for error messages; `None` if they are equal.
pub fn schema_difference(existing: &Schema, new: &Schema) -> Option<String> {
    if existing.fields() == new.fields() {
        return None;
    }
    let mut diffs = Vec::new();
    for f in existing.fields() {
        match new.field_with_name(f.name()) {
            Err(_) => diffs.push(format!("column {:?} is missing", f.name())),
            Ok(g) if g.data_type() != f.data_type() => {
                diffs.push(format!("column {:?} has type {} instead of {}", f.name(), g.data_type(), f.data_type()))
            }
            Ok(g) if g.is_nullable() != f.is_nullable() => {
                diffs.push(format!("column {:?} nullability differs", f.name()))
            }
            Ok(_) => {}
        }
    }
    for g in new.fields() {
        if existing.field_with_name(g.name()).is_err() {
            diffs.push(format!("column {:?} is new", g.name()));
        }
    }
    if diffs.is_empty() {
        diffs.push("the columns are in a different order".into());
    }
    Some(bounded_list(diffs.iter(), MAX_LISTED, "differences", "; "))
}

/// How many items an error message lists before it only counts the rest: a frame of thousands of
/// columns would otherwise put all of their names in one message.
pub(crate) const MAX_LISTED: usize = 20;

/// The first `max` items, joined by `sep`, then `and N more <what>` if there are more.
pub(crate) fn bounded_list<T: std::fmt::Display>(
    items: impl ExactSizeIterator<Item = T>,
    max: usize,
    what: &str,
    sep: &str,
) -> String {
    let total = items.len();
    let mut out: Vec<String> = items.take(max).map(|i| i.to_string()).collect();
    if total > max {
        out.push(format!("and {} more {what}", total - max));
    }
    out.join(sep)
}

/// The type both `a` and `b` widen to without losing values, under dynamic schema: wider integers of
/// the same signedness, a signed integer wide enough for an unsigned one, float64 for integers mixed with
/// floats. `None` when there is no such type.
pub fn widen(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    fn int_bits(t: &DataType) -> Option<(bool, u32)> {
        Some(match t {
            Int8 => (true, 8),
            Int16 => (true, 16),
            Int32 => (true, 32),
            Int64 => (true, 64),
            UInt8 => (false, 8),
            UInt16 => (false, 16),
            UInt32 => (false, 32),
            UInt64 => (false, 64),
            _ => return None,
        })
    }
    fn signed(bits: u32) -> Option<DataType> {
        Some(match bits {
            8 => Int8,
            16 => Int16,
            32 => Int32,
            64 => Int64,
            _ => return None,
        })
    }
    fn unsigned(bits: u32) -> DataType {
        match bits {
            8 => UInt8,
            16 => UInt16,
            32 => UInt32,
            _ => UInt64,
        }
    }
    if a == b {
        return Some(a.clone());
    }
    let is_float = |t: &DataType| matches!(t, Float32 | Float64);
    match (int_bits(a), int_bits(b)) {
        (Some((sa, ba)), Some((sb, bb))) => match (sa, sb) {
            (true, true) => signed(ba.max(bb)),
            (false, false) => Some(unsigned(ba.max(bb))),
            // An unsigned n-bit value needs a signed 2n-bit integer.
            (true, false) => signed(ba.max(bb * 2)),
            (false, true) => signed(bb.max(ba * 2)),
        },
        (Some(_), None) if is_float(b) => Some(Float64),
        (None, Some(_)) if is_float(a) => Some(Float64),
        (None, None) if is_float(a) && is_float(b) => Some(Float64),
        _ => None,
    }
}

/// Under dynamic schema: the schema a symbol with `existing` has after taking rows of `new`. Existing
/// columns keep their order (widened where `new` needs it); columns only in `new` are added at the end;
/// columns missing on either side become nullable.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] / `SchemaMismatch` naming a column whose types cannot be widened,
/// or the index column changing type.
pub fn merge_schema(existing: &Schema, new: &Schema, index_pos: Option<usize>) -> Result<SchemaRef> {
    let mismatch =
        |m: String| Error::with_detail(crate::ErrorKind::InvalidInput, crate::error::Detail::SchemaMismatch, m);
    let mut fields: Vec<Field> = Vec::with_capacity(existing.fields().len() + new.fields().len());
    for (i, f) in existing.fields().iter().enumerate() {
        match new.field_with_name(f.name()) {
            Ok(g) => {
                let t = if Some(i) == index_pos {
                    if g.data_type() != f.data_type() {
                        return Err(mismatch(format!(
                            "index column {:?} has type {} instead of {}",
                            f.name(),
                            g.data_type(),
                            f.data_type()
                        )));
                    }
                    f.data_type().clone()
                } else {
                    widen(f.data_type(), g.data_type()).ok_or_else(|| {
                        mismatch(format!(
                            "column {:?} has type {} and cannot take {} values",
                            f.name(),
                            f.data_type(),
                            g.data_type()
                        ))
                    })?
                };
                fields.push(
                    Field::new(f.name(), t, f.is_nullable() || g.is_nullable()).with_metadata(f.metadata().clone()),
                );
            }
            Err(_) => fields.push(f.as_ref().clone().with_nullable(true)),
        }
    }
    for g in new.fields() {
        if existing.field_with_name(g.name()).is_err() {
            fields.push(g.as_ref().clone().with_nullable(true));
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// `batch` laid out as `target`: columns reordered, widened with a lossless cast, and missing columns
/// filled with nulls.
///
/// # Errors
/// `InvalidInput` naming the column for a cast that fails (it should not for types [`widen`]
/// produced; a string column given as codes with a key outside its dictionary does).
pub fn conform_batch(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == target.fields() {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        cols.push(match schema.index_of(f.name()) {
            Ok(i) if batch.column(i).data_type() == f.data_type() => Arc::clone(batch.column(i)),
            Ok(i) => arrow_cast::cast(batch.column(i), f.data_type())
                .map_err(|e| Error::from(e).context(format!("column {:?}", f.name())))?,
            Err(_) => arrow_array::new_null_array(f.data_type(), batch.num_rows()),
        });
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(Arc::clone(target), cols, &options)?)
}

impl Table {
    /// The table with its string columns handed over as codes (`floe_formats::is_coded_strings`) made
    /// plain; itself (no copy) when it has none. Only [`crate::Library::write`] and
    /// [`crate::Library::write_stream`] store coded columns as they come: the operations that combine new
    /// rows with stored ones (append, update, staging) take them plain.
    ///
    /// # Errors
    /// `InvalidInput` if a coded column cannot be made plain (a key outside its dictionary).
    pub fn with_plain_strings(&self) -> Result<std::borrow::Cow<'_, Table>> {
        let stored = floe_formats::stored_schema(&self.schema);
        if Arc::ptr_eq(&stored, &self.schema) {
            return Ok(std::borrow::Cow::Borrowed(self));
        }
        Ok(std::borrow::Cow::Owned(self.conform_to(&stored)?))
    }

    /// This table laid out as `target` (see [`conform_batch`]).
    ///
    /// # Errors
    /// As [`conform_batch`] and [`Table::new`].
    pub fn conform_to(&self, target: &SchemaRef) -> Result<Table> {
        if self.schema.fields() == target.fields() {
            return Ok(self.clone());
        }
        let batches = self.batches.iter().map(|b| conform_batch(b, target)).collect::<Result<Vec<_>>>()?;
        Table::new(Arc::clone(target), batches, self.index.clone())
    }
}

#[cfg(test)]
mod message_tests {
    use arrow_schema::{DataType, Field, Schema};

    use super::{MAX_LISTED, bounded_list, schema_difference};

    #[test]
    fn a_list_longer_than_its_bound_counts_the_rest() {
        assert_eq!(bounded_list(["a", "b"].iter(), 3, "names", ", "), "a, b");
        assert_eq!(bounded_list(["a", "b", "c"].iter(), 3, "names", ", "), "a, b, c");
        assert_eq!(bounded_list(["a", "b", "c", "d", "e"].iter(), 3, "names", ", "), "a, b, c, and 2 more names");
        assert_eq!(bounded_list(std::iter::empty::<&str>(), 3, "names", ", "), "");
    }

    #[test]
    fn a_schema_difference_of_many_columns_names_the_first_and_counts_the_rest() {
        let old =
            Schema::new((0..1000).map(|i| Field::new(format!("c{i}"), DataType::Float64, true)).collect::<Vec<_>>());
        let new =
            Schema::new((0..1000).map(|i| Field::new(format!("c{i}"), DataType::Int64, true)).collect::<Vec<_>>());
        let diff = schema_difference(&old, &new).expect("they differ");
        assert!(diff.starts_with("column \"c0\" has type Int64 instead of Float64; "), "{diff}");
        assert!(diff.ends_with(&format!("and {} more differences", 1000 - MAX_LISTED)), "{diff}");
        assert!(diff.len() < 2000, "{} bytes", diff.len());
        let one = Schema::new(vec![Field::new("c0", DataType::Float64, true)]);
        assert_eq!(schema_difference(&one, &Schema::empty()).as_deref(), Some("column \"c0\" is missing"));
    }
}

#[cfg(test)]
mod group_tests {
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::{MIN_GROUP_COLUMNS, column_groups, columns_per_group, data_columns};

    #[test]
    fn segments_of_long_slices_of_many_columns_take_fewer_columns() {
        let schema = |n: usize, t: DataType| {
            let mut fields = vec![Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false)];
            fields.extend((0..n).map(|i| Field::new(format!("c{i}"), t.clone(), true)));
            Schema::new(fields)
        };
        let per_group = |n: usize, t: DataType, rows: usize, per_segment: usize| {
            let s = schema(n, t);
            columns_per_group(&s, &data_columns(&s, Some(0)), rows, per_segment)
        };
        // `wide`: 80 KB a column, 32 columns make 2.5 MB.
        assert_eq!(per_group(1_000, DataType::Float64, 10_000, 127), 32);
        assert_eq!(column_groups(1_000, 32).len(), 32);
        // Short slices keep the library's count; so does a table of few columns, however tall.
        assert_eq!(per_group(1_000, DataType::Float64, 1_000, 127), 127);
        assert_eq!(per_group(10, DataType::Float64, 100_000, 127), 127);
        assert_eq!(per_group(32, DataType::Float64, 100_000, 127), 127);
        // Tall and wide: not below MIN_GROUP_COLUMNS.
        assert_eq!(per_group(100, DataType::Float64, 100_000, 127), MIN_GROUP_COLUMNS);
        // The library's count is a maximum, also when below MIN_GROUP_COLUMNS.
        assert_eq!(per_group(1_000, DataType::Float64, 10_000, 8), 8);
        assert_eq!(per_group(1_000, DataType::Float64, 10_000, 0), 1);
        // Narrower values fit more columns: int8 (1 byte) and booleans; strings count 16 bytes a value.
        assert_eq!(per_group(1_000, DataType::Int8, 10_000, 127), 127);
        assert_eq!(per_group(1_000, DataType::Boolean, 10_000, 127), 127);
        assert_eq!(per_group(1_000, DataType::Utf8, 10_000, 127), 32);
        assert_eq!(per_group(1_000, DataType::Utf8, 5_000, 127), 32);
        assert_eq!(per_group(1_000, DataType::Utf8, 2_000, 127), 81);
        // No rows known: as one row.
        assert_eq!(per_group(1_000, DataType::Float64, 0, 127), 127);
    }
}
