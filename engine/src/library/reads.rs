//! Reads: planning which row slices and columns a request needs, then reading them whole, as a
//! stream, or just their metadata and description.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use floe_formats::record::VersionRecord;

use crate::error::{Error, ErrorKind, Result};
use crate::index::{IndexEntry, TableIndex};
use crate::pipeline::read::{Prefetched, ReadShape, Window, find_date_bounds, prefetch_index_segments, read_windows};
use crate::table;

use super::{AsOf, Description, Library, READ_RETRIES, ReadRequest, ReadResult, VersionedItem, item, validate_symbol};

impl Library {
    /// Reads several symbols; one result per request, in order.
    pub fn read_batch(&self, requests: &[(String, ReadRequest)]) -> Vec<Result<ReadResult>> {
        self.per_item(requests, |(s, r)| self.read(s, r))
    }

    /// Reads a version of `symbol` (see [`ReadRequest`]).
    ///
    /// # Errors
    /// `NotFound` for a missing symbol, version or snapshot; `InvalidInput` for unknown columns or a
    /// date range on a row-count index; `CorruptData` if stored bytes fail verification.
    pub fn read(&self, symbol: &str, request: &ReadRequest) -> Result<ReadResult> {
        validate_symbol(symbol)?;
        let mut attempt = 0;
        loop {
            let rec = self.resolve(symbol, &request.as_of)?;
            match self.read_record(symbol, &rec, request) {
                // A concurrent delete removed what we resolved: re-resolve the latest version.
                Err(e)
                    if e.kind() == ErrorKind::NotFound && request.as_of == AsOf::Latest && attempt < READ_RETRIES =>
                {
                    attempt += 1;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(self.deleted_while_read(symbol, &request.as_of, e));
                }
                other => return other,
            }
        }
    }

    /// The error for a read of a specific version (or snapshot) that met a missing object: if the
    /// version was deleted (pruned) meanwhile, that (`VersionNotFound`, `SnapshotNotFound`...) is what
    /// happened, not a missing object; if it still resolves, the object is really missing: `e`.
    fn deleted_while_read(&self, symbol: &str, as_of: &AsOf, e: Error) -> Error {
        match self.resolve(symbol, as_of) {
            Err(gone) if gone.kind() == ErrorKind::NotFound => gone.context("deleted while it was being read"),
            _ => e,
        }
    }

    fn read_record(&self, symbol: &str, rec: &VersionRecord, request: &ReadRequest) -> Result<ReadResult> {
        let idx = self.cached_index(&rec.index_key)?;
        let (windows, columns, prefetched) = self.plan(symbol, &idx, request)?;
        let shape = ReadShape {
            codes: request.strings_as_codes || request.strings_as_views,
            views: request.strings_as_views,
            blocks: request.column_blocks,
        };
        let (data, blocks) = read_windows(&*self.storage, &self.layouts, &idx, &windows, &columns, shape, &prefetched)?;
        Ok(ReadResult { item: item(symbol, rec), data, metadata: idx.descriptor.user_metadata.clone(), blocks })
    }

    /// The first `n` rows (all but the last `-n` if negative).
    ///
    /// # Errors
    /// As [`Library::read`].
    pub fn head(&self, symbol: &str, n: i64, as_of: AsOf, columns: Option<Vec<String>>) -> Result<ReadResult> {
        // Negative `n` normalizes to `total + n`, i.e. all but the last `-n` rows.
        let row_range = (0, n);
        self.read(symbol, &ReadRequest { as_of, row_range: Some(row_range), columns, ..Default::default() })
    }

    /// The last `n` rows (all but the first `-n` if negative).
    ///
    /// # Errors
    /// As [`Library::read`].
    pub fn tail(&self, symbol: &str, n: i64, as_of: AsOf, columns: Option<Vec<String>>) -> Result<ReadResult> {
        // `-n` is "the last n" for positive n and "from row -n on" for negative n.
        let row_range = if n == 0 { (i64::MAX, i64::MAX) } else { (-n, i64::MAX) };
        self.read(symbol, &ReadRequest { as_of, row_range: Some(row_range), columns, ..Default::default() })
    }

    /// A streaming read: batches in index order, about one row slice (`rows_per_segment` rows) each,
    /// holding only the segments of the current batch in memory.
    ///
    /// # Errors
    /// Resolution errors up front; each item may carry a storage or corruption error.
    pub fn read_stream(&self, symbol: &str, request: &ReadRequest) -> Result<ReadStream> {
        validate_symbol(symbol)?;
        let rec = self.resolve(symbol, &request.as_of)?;
        let idx = self.cached_index(&rec.index_key)?;
        // A stream fetches each slice when it is reached: the boundary slices' prefetched index
        // segments are not kept (a stream holds one slice at a time).
        let (windows, columns, _) = self.plan(symbol, &idx, request)?;
        let groups: Vec<(Vec<IndexEntry>, usize, usize)> =
            windows.iter().map(|w| (w.entries.to_vec(), w.skip, w.rows)).collect();
        // A stream cannot start again once it has handed out batches: it stays on the version it
        // resolved, and a missing object mid-stream is checked against that version.
        let pinned = match &request.as_of {
            AsOf::Snapshot(name) => AsOf::Snapshot(name.clone()),
            _ => AsOf::Version(i64::try_from(rec.version).unwrap_or(i64::MAX)),
        };
        Ok(ReadStream {
            library: self.clone(),
            symbol: symbol.to_owned(),
            pinned,
            item: item(symbol, &rec),
            metadata: idx.descriptor.user_metadata.clone(),
            index: idx,
            groups,
            columns,
            next: 0,
        })
    }

    /// The user metadata of a version, reading only its index.
    ///
    /// # Errors
    /// As [`Library::read`].
    pub fn read_metadata(&self, symbol: &str, as_of: &AsOf) -> Result<(VersionedItem, Option<Vec<u8>>)> {
        validate_symbol(symbol)?;
        let rec = self.resolve(symbol, as_of)?;
        let idx = self.cached_index(&rec.index_key)?;
        Ok((item(symbol, &rec), idx.descriptor.user_metadata.clone()))
    }

    /// Columns, types, row count and index range of a version, without touching data segments.
    ///
    /// # Errors
    /// As [`Library::read`].
    pub fn get_description(&self, symbol: &str, as_of: &AsOf) -> Result<Description> {
        validate_symbol(symbol)?;
        let rec = self.resolve(symbol, as_of)?;
        let idx = self.cached_index(&rec.index_key)?;
        Ok(Description {
            item: item(symbol, &rec),
            schema: Arc::clone(&idx.schema),
            index: idx.descriptor.index.clone(),
            row_count: rec.row_count,
            index_range: (rec.row_count > 0).then_some((rec.index_start, rec.index_end)),
            segment_count: idx.entries.len(),
            operation: rec.operation,
        })
    }

    /// Chooses the row slices and columns a request needs, from the index alone.
    fn plan<'i>(&self, symbol: &str, idx: &'i TableIndex, request: &ReadRequest) -> Result<Plan<'i>> {
        let index_pos = idx.index_pos();
        let columns: Vec<usize> = match &request.columns {
            None => (0..idx.schema.fields().len()).collect(),
            Some(names) => {
                let mut cols: Vec<usize> = index_pos.into_iter().collect();
                for n in names {
                    let c = idx.schema.index_of(n).map_err(|_| {
                        let fields = idx.schema.fields();
                        let names = fields.iter().map(|f| format!("{:?}", f.name()));
                        Error::invalid(format!(
                            "symbol {symbol:?} has no column {n:?}; its {} columns are [{}]",
                            fields.len(),
                            table::bounded_list(names, table::MAX_LISTED, "columns", ", ")
                        ))
                    })?;
                    if !cols.contains(&c) {
                        cols.push(c);
                    }
                }
                cols
            }
        };
        let total = idx.descriptor.total_rows as i64;
        let (mut r0, mut r1) = (0i64, total);
        if let Some((a, b)) = request.row_range {
            let norm = |x: i64| if x < 0 { (total + x).max(0) } else { x.min(total) };
            r0 = norm(a);
            r1 = norm(b).max(r0);
        }
        let date = match (request.date_range, index_pos) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::invalid(format!("symbol {symbol:?} is indexed by row count; use row_range")));
            }
            (Some((a, b)), Some(_)) => Some((a.unwrap_or(i64::MIN), b.unwrap_or(i64::MAX))),
        };
        let overlaps = |s: &&[IndexEntry]| {
            let (start, end) = (s[0].row_start as i64, s[0].row_end as i64);
            !(start >= r1 || end <= r0 || date.is_some_and(|(a, b)| s[0].index_end < a || s[0].index_start > b))
        };
        // The range starts or ends inside these slices (at most two): their index columns are searched.
        let cut = |s: &[IndexEntry]| match (date, index_pos) {
            (Some((a, b)), Some(_)) if s[0].index_start < a || s[0].index_end > b => {
                Some(((s[0].index_start < a).then_some(a), (s[0].index_end > b).then_some(b)))
            }
            _ => None,
        };
        let slices: Vec<&[IndexEntry]> = idx.row_slices().into_iter().filter(overlaps).collect();
        let searched: Vec<&[IndexEntry]> = slices.iter().copied().filter(|s| cut(s).is_some()).collect();
        // Fetched together (one round trip on an object store), and kept for the read itself.
        let prefetched = prefetch_index_segments(&*self.storage, &searched)?;
        let mut windows = Vec::new();
        for s in slices {
            let (start, end) = (s[0].row_start as i64, s[0].row_end as i64);
            let mut skip = usize::try_from((r0 - start).max(0)).map_err(|_| Error::corrupt("row range"))?;
            let mut stop = usize::try_from(r1.min(end) - start).map_err(|_| Error::corrupt("row range"))?;
            if let Some((a, b)) = cut(s) {
                let (first, end) = find_date_bounds(&*self.storage, &self.layouts, s, a, b, &prefetched)?;
                skip = skip.max(first.unwrap_or(0));
                stop = stop.min(end.unwrap_or(usize::MAX));
            }
            if stop > skip {
                windows.push(Window { entries: s, skip, rows: stop - skip });
            }
        }
        Ok((windows, columns, prefetched))
    }
}

/// The windows and columns a read needs, and the segments fetched to plan it (see [`Prefetched`]).
type Plan<'i> = (Vec<Window<'i>>, Vec<usize>, Vec<Prefetched>);

/// The iterator [`Library::read_stream`] returns.
#[derive(Debug)]
pub struct ReadStream {
    library: Library,
    symbol: String,
    /// What the stream reads, as a request that resolves to the same version (or snapshot) again.
    pinned: AsOf,
    item: VersionedItem,
    metadata: Option<Vec<u8>>,
    index: Arc<TableIndex>,
    /// Each row slice's entries, and the window of its rows to read (skip, rows).
    groups: Vec<(Vec<IndexEntry>, usize, usize)>,
    columns: Vec<usize>,
    next: usize,
}

impl ReadStream {
    /// The version being read.
    pub fn item(&self) -> &VersionedItem {
        &self.item
    }

    /// Its user metadata.
    pub fn metadata(&self) -> Option<&[u8]> {
        self.metadata.as_deref()
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<_> = self.columns.iter().map(|&c| self.index.schema.field(c).clone()).collect();
        Arc::new(Schema::new(fields))
    }
}

impl Iterator for ReadStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.groups.len() {
            let i = self.next;
            self.next += 1;
            let (entries, skip, rows) = &self.groups[i];
            let window = Window { entries, skip: *skip, rows: *rows };
            let (storage, layouts) = (&*self.library.storage, &*self.library.layouts);
            let result =
                read_windows(storage, layouts, &self.index, &[window], &self.columns, ReadShape::default(), &[])
                    .map(|r| r.0);
            match result {
                Ok(b) if b.num_rows() == 0 => continue,
                // A prune or delete took the version while it streamed: say so, not "missing object".
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Some(Err(self.library.deleted_while_read(&self.symbol, &self.pinned, e)));
                }
                other => return Some(other),
            }
        }
        None
    }
}
