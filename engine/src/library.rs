//! A library: the symbols of one [`Storage`] and every operation on them, following ArcticDB's
//! `Library` API (write, append, update, read, snapshots, deletes...).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use floe_backends::{ListScope, RefExpectation, Storage, StorageError};
use floe_formats::record::{Head, IndexKind, Operation, SnapshotRecord, TableDescriptor, VersionRecord};
use floe_formats::{AtomFields, AtomKey, Key, KeyType, RefKey};

use crate::commit_stats::{CommitMeter, CommitStats};
use crate::deferred::Deferred;
use crate::error::{Detail, Error, ErrorKind, Result};
use crate::head::{self, Change, NewVersion};
use crate::index::{IndexEntry, SchemaBytesMemo, TableIndex};
use crate::index_cache::IndexCache;
use crate::lru::LayoutCache;
use crate::options::{LibraryOptions, PipelineOptions};
use crate::pipeline::read::{
    ColumnBlock, Prefetched, ReadShape, Window, find_date_bounds, prefetch_index_segments, read_slices, read_windows,
    slice_rows,
};
use crate::pipeline::write;
use crate::table::{self, Table};

/// Which version to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AsOf {
    /// The newest live version.
    #[default]
    Latest,
    /// A version id; negative counts back from the newest id (-1 is the newest).
    Version(i64),
    /// The version a snapshot holds.
    Snapshot(String),
    /// The newest version committed at or before this time (ns since the epoch, UTC).
    Timestamp(i64),
}

/// What to read of a version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadRequest {
    /// Which version.
    pub as_of: AsOf,
    /// Inclusive index range (timestamp index only); `None` on either side is open.
    pub date_range: Option<(Option<i64>, Option<i64>)>,
    /// Row range `[start, end)`; negative values count from the end, as Python slices do.
    pub row_range: Option<(i64, i64)>,
    /// Columns to return (the index column is always included); `None` for all.
    pub columns: Option<Vec<String>>,
    /// Return string columns that every segment read stores dictionary-coded as Arrow dictionary
    /// arrays (`Int32` keys into one dictionary of the distinct values), their fields marked with the
    /// metadata key [`crate::CODES_METADATA_KEY`], instead of materializing every row's string: for a
    /// consumer that makes one object per distinct value (the pandas conversion, decision D19). Other
    /// columns come back as usual. Applies to [`Library::read`].
    pub strings_as_codes: bool,
    /// Decode the null-free columns of each fixed-width type (two or more of them) into one
    /// allocation, column after column, and report it in [`ReadResult::blocks`]: a consumer that
    /// takes those columns out of the batch can own the allocation as one two-dimensional array (the
    /// pandas conversion, for frames of many columns). The batch is the same either way. Applies to
    /// [`Library::read`].
    pub column_blocks: bool,
    /// Return those same string columns (see `strings_as_codes`, which this implies for them) as
    /// `Utf8View` arrays instead: each row a 16-byte view copied from the view of its distinct value,
    /// so no row's string is copied, for a consumer whose own strings are views (polars takes them
    /// without a copy). The fields keep their names and lose the codes mark. Applies to
    /// [`Library::read`].
    pub strings_as_views: bool,
}

/// The identity of a version a call made or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedItem {
    /// The symbol.
    pub symbol: String,
    /// Its version id.
    pub version: u64,
    /// Commit time, ns since the epoch (UTC).
    pub timestamp_ns: i64,
}

/// A read's result: the data, its metadata and which version it came from.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Which version.
    pub item: VersionedItem,
    /// The rows.
    pub data: RecordBatch,
    /// The user metadata of that version.
    pub metadata: Option<Vec<u8>>,
    /// Column blocks, when the request asked for them ([`ReadRequest::column_blocks`]).
    pub blocks: Vec<ColumnBlock>,
}

/// A version's description, read from its index alone (no data segments).
#[derive(Debug, Clone)]
pub struct Description {
    /// Which version.
    pub item: VersionedItem,
    /// Columns and types.
    pub schema: SchemaRef,
    /// The index.
    pub index: IndexKind,
    /// Rows.
    pub row_count: u64,
    /// First and last index value, if any rows.
    pub index_range: Option<(i64, i64)>,
    /// Index entries: data segments, or parts of one (an update keeps the untouched rows of a segment
    /// by reference, so two entries may name one segment).
    pub segment_count: usize,
    /// The operation that made it.
    pub operation: Operation,
}

/// One row of [`Library::list_versions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The symbol.
    pub symbol: String,
    /// The version id.
    pub version: u64,
    /// Commit time, ns since the epoch (UTC).
    pub timestamp_ns: i64,
    /// True when the version was deleted and only snapshots keep it.
    pub deleted: bool,
    /// Snapshots holding it.
    pub snapshots: Vec<String>,
}

/// A library handle. Cheap to clone; safe to share between threads.
#[derive(Debug, Clone)]
pub struct Library {
    name: String,
    storage: Arc<dyn Storage>,
    options: LibraryOptions,
    pipeline: PipelineOptions,
    /// Shared by clones of this handle.
    meter: Arc<CommitMeter>,
    /// Decoded indexes of the versions read lately; shared by clones of this handle.
    indexes: Arc<IndexCache>,
    /// Parsed layouts of the data segments read lately; shared by clones of this handle.
    layouts: Arc<LayoutCache>,
    /// The schema persisted last; shared by clones of this handle.
    schemas: Arc<SchemaBytesMemo>,
}

/// How many times a read of the latest version re-resolves after a concurrent delete removed objects.
const READ_RETRIES: usize = 5;

/// From this many versions on, a listing reads a symbol's version records in one walk over all of them
/// (on a backend that lends its pages) instead of one lookup each: at 10,000 versions on LMDB the
/// lookups' tree searches were a fifth of `list_versions`' time; below this a walk could visit far more
/// records (of pruned versions not yet vacuumed) than the versions asked for.
const SCAN_RECORDS_FROM: usize = 64;

/// [`Storage::visit_listed`] with a visitor that returns the engine's errors: the first one stops the
/// walk and is returned as it is (kind and message), where the storage trait's walk can only carry a
/// storage error.
///
/// # Errors
/// The visitor's first error, else the walk's storage error.
fn visit_listed(
    storage: &dyn Storage,
    key_type: KeyType,
    scope: ListScope<'_>,
    visit: &mut dyn FnMut(&Key, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut stopped: Option<Error> = None;
    let walked = storage.visit_listed(key_type, scope, &mut |key, bytes| {
        visit(key, bytes).map_err(|e| {
            let message = e.to_string();
            stopped = Some(e);
            StorageError::other("engine", message)
        })
    });
    match stopped {
        Some(e) => Err(e),
        None => Ok(walked?),
    }
}

fn validate_symbol(symbol: &str) -> Result<()> {
    floe_formats::names::validate_symbol(symbol)?;
    Ok(())
}

fn snapshot_key(name: &str) -> Result<RefKey> {
    floe_formats::names::validate_snapshot(name)?;
    Ok(RefKey::new(KeyType::SnapshotRef, name)?)
}

/// Refuses data indexed by `new` for a symbol indexed by `old` (`SchemaMismatch`).
pub(crate) fn check_same_index(symbol: &str, old: &IndexKind, new: &IndexKind) -> Result<()> {
    if old != new {
        return Err(Error::with_detail(
            ErrorKind::InvalidInput,
            Detail::SchemaMismatch,
            format!("symbol {symbol:?} is indexed by {old:?}, the data by {new:?}"),
        ));
    }
    Ok(())
}

/// Refuses rows of `schema` indexed by `index` for a symbol of `old_schema` and `old_index` (static
/// schema): the same index kind (`SchemaMismatch`), then exactly the same columns (`SchemaMismatch`,
/// naming the difference).
pub(crate) fn check_same_layout(
    symbol: &str,
    old_schema: &SchemaRef,
    old_index: &IndexKind,
    schema: &SchemaRef,
    index: &IndexKind,
) -> Result<()> {
    check_same_index(symbol, old_index, index)?;
    if let Some(diff) = table::schema_difference(old_schema, schema) {
        return Err(Error::with_detail(
            ErrorKind::InvalidInput,
            Detail::SchemaMismatch,
            format!("the data does not match the schema of symbol {symbol:?}: {diff}"),
        ));
    }
    Ok(())
}

/// Refuses rows starting at timestamp `new_start` appended after version `rec` of a timestamp-indexed
/// symbol when they would precede its last row (`UnsortedIndex`).
pub(crate) fn check_append_start(symbol: &str, rec: &VersionRecord, new_start: i64) -> Result<()> {
    if rec.row_count > 0 && new_start < rec.index_end {
        return Err(Error::with_detail(
            ErrorKind::InvalidInput,
            Detail::UnsortedIndex,
            format!(
                "cannot append to {symbol:?}: the new rows start at {new_start}, before its last index value {}",
                rec.index_end
            ),
        ));
    }
    Ok(())
}

/// What an operation that commits a version returns: the committed version's item; on a failure that
/// certainly committed nothing, `cleanup` runs first (it deletes what the operation wrote, unreachable).
pub(crate) fn committed_item(
    symbol: &str,
    operation: &str,
    result: Result<Option<Head>>,
    cleanup: impl FnOnce(),
) -> Result<VersionedItem> {
    match result {
        Ok(Some(head)) => Ok(item(symbol, &head.record)),
        Ok(None) => Err(Error::internal(format!("{operation} committed nothing"))),
        Err(e) => {
            if e.detail() != Detail::CommitOutcomeUnknown {
                cleanup();
            }
            Err(e)
        }
    }
}

/// `entries` (of rows numbered from 0) moved to start at row `base`; a row-count index moves with them.
pub(crate) fn moved_rows(
    entries: &[IndexEntry],
    base: u64,
    row_count_index: bool,
) -> impl Iterator<Item = IndexEntry> + '_ {
    entries.iter().cloned().map(move |mut e| {
        e.row_start += base;
        e.row_end += base;
        if row_count_index {
            e.index_start += base as i64;
            e.index_end += base as i64;
        }
        e
    })
}

pub(crate) fn item(symbol: &str, r: &VersionRecord) -> VersionedItem {
    VersionedItem { symbol: symbol.to_owned(), version: r.version, timestamp_ns: r.timestamp_ns }
}

impl Library {
    /// A library over `storage` with `options` (normally made by [`crate::Floe`]).
    pub fn new(name: &str, storage: Arc<dyn Storage>, options: LibraryOptions, pipeline: PipelineOptions) -> Self {
        Library {
            name: name.to_owned(),
            storage,
            options,
            pipeline,
            meter: Arc::default(),
            indexes: Arc::default(),
            layouts: Arc::default(),
            schemas: Arc::default(),
        }
    }

    /// The cache of parsed data segment layouts, for the read pipeline.
    pub(crate) fn layouts(&self) -> &LayoutCache {
        &self.layouts
    }

    /// The library's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What this handle and its clones have committed so far, and the longest single commit attempt
    /// (which a concurrent `vacuum`'s grace must outlast, with `PipelineOptions::max_reuse_age`).
    pub fn commit_stats(&self) -> CommitStats {
        self.meter.snapshot()
    }

    /// Runs the commit loop for `symbol` with this library's attempt limit, counting in its meter.
    pub(crate) fn commit(
        &self,
        symbol: &str,
        attempt: impl FnMut(Option<&Head>) -> Result<Change>,
    ) -> Result<Option<Head>> {
        head::commit(&*self.storage, symbol, self.pipeline.max_commit_attempts, &self.meter, attempt)
    }

    /// The library's options.
    pub fn options(&self) -> LibraryOptions {
        self.options
    }

    /// The storage under the library.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    // ----- writes -------------------------------------------------------------------------------

    /// Writes `table` as a new version of `symbol`, replacing its contents.
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol or table (nothing written); storage errors; `Conflict` if other
    /// writers won `max_commit_attempts` races in a row.
    pub fn write(&self, symbol: &str, table: &Table, metadata: Option<&[u8]>) -> Result<VersionedItem> {
        self.write_with(symbol, table, None, metadata)
    }

    /// Writes `table` as [`Library::write`] does, except that the columns `deferred` names are made by
    /// its source one segment at a time as they are encoded; the table's arrays at those positions are
    /// stand-ins of the right type and length whose values are never read (D49). For inputs whose
    /// columns must be copied to become contiguous (a 2D numpy block), so that only the segments being
    /// written exist as copies, not the whole table.
    ///
    /// # Errors
    /// As [`Library::write`], and the source's errors (nothing is committed then).
    pub fn write_deferred(
        &self,
        symbol: &str,
        table: &Table,
        deferred: &Deferred<'_>,
        metadata: Option<&[u8]>,
    ) -> Result<VersionedItem> {
        self.write_with(symbol, table, Some(deferred), metadata)
    }

    fn write_with(
        &self,
        symbol: &str,
        table: &Table,
        deferred: Option<&Deferred<'_>>,
        metadata: Option<&[u8]>,
    ) -> Result<VersionedItem> {
        validate_symbol(symbol)?;
        // The segments and index, written once and reused by rebased attempts while young enough
        // (`max_reuse_age`), with the time just before they were written.
        let mut prepared: Option<(i64, Vec<AtomKey>, NewVersion)> = None;
        let head = self.commit(symbol, |h| {
            if let Some((_, mut keys, _)) = prepared.take_if(|(t, _, _)| self.too_old_to_reuse(*t)) {
                self.discard(&mut keys);
            }
            if prepared.is_none() {
                let started = crate::clock::now_ns();
                let next = h.map_or(0, |h| h.latest() + 1);
                let job = self.slice_job(symbol, next, table, 0, self.options.rows_per_segment, deferred);
                let rows = self.store_rows(job, table, self.options.rows_per_segment)?;
                let keys = rows.entries.iter().map(|e| e.key.clone()).collect();
                prepared =
                    Some((started, keys, self.write_index(symbol, next, Operation::Write, table, rows, metadata)?));
            }
            Ok(Change::Append(prepared.as_ref().map(|(_, _, nv)| nv.clone()).expect("prepared above")))
        })?;
        let head = head.ok_or_else(|| Error::internal("write committed nothing"))?;
        Ok(item(symbol, &head.record))
    }

    /// Writes, then deletes every older version (ArcticDB's `prune_previous_versions=True`).
    ///
    /// # Errors
    /// As [`Library::write`] and [`Library::prune_previous_versions`].
    pub fn write_pruned(&self, symbol: &str, table: &Table, metadata: Option<&[u8]>) -> Result<VersionedItem> {
        let it = self.write(symbol, table, metadata)?;
        self.prune_previous_versions(symbol)?;
        Ok(it)
    }

    /// Writes a new version of `symbol` from a stream of record batches (all with `schema`, indexed by
    /// `index`), replacing its contents like [`Library::write`]. The stream is read only as the write
    /// pipeline has room for more (about a wave ahead of what is being stored), so memory stays bounded
    /// whatever the stream's length: this is how to write more data than fits in memory, or data made
    /// while it is written (a converter producing one chunk at a time).
    ///
    /// Each batch is checked as it arrives, as [`Table::new`] checks a table (schema; index column
    /// without nulls and sorted, across batches too). So unlike [`Library::write`], a bad batch far down
    /// the stream is found after earlier segments were stored: the write then fails with that error,
    /// nothing is committed (readers never see a partial version), and the segments already stored are
    /// unreachable leftovers that [`Library::vacuum`] removes. If the commit then loses races for longer
    /// than `max_reuse_age`, the segments are copied under fresh keys rather than written again (the
    /// stream cannot be read twice).
    ///
    /// Like any long write, the whole stream is one commit attempt: its first segments stay unreachable
    /// until the commit, so a concurrent vacuum's grace must be longer than the stream takes to write
    /// (design/reliability.md, "Vacuum").
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol, schema or index column (before anything is read or written) or
    /// a bad batch; the stream's own errors; storage errors; `Conflict` as [`Library::write`].
    pub fn write_stream(
        &self,
        symbol: &str,
        schema: SchemaRef,
        index: IndexKind,
        batches: impl Iterator<Item = Result<RecordBatch>>,
        metadata: Option<&[u8]>,
    ) -> Result<VersionedItem> {
        let (job, _) = self.stream_job(symbol, &schema, &index)?;
        let mut since = crate::clock::now_ns();
        let mut entries = self.store_stream(&job, &schema, &index, batches)?;
        let mut prepared: Option<NewVersion> = None;
        let mut attempts = 0u32;
        let head = self.commit(symbol, |h| {
            attempts += 1;
            // Writing the stream was the first attempt's work; a rebased attempt past the reuse limit
            // names fresh copies instead (the reuse guard, design/reliability.md "Vacuum").
            if attempts > 1 && self.too_old_to_reuse(since) {
                let copies = self.copy_segments(&entries, symbol)?;
                let mut old = segment_keys(&entries);
                entries = copies;
                since = crate::clock::now_ns();
                prepared = None;
                self.discard(&mut old);
            }
            if prepared.is_none() {
                let next = h.map_or(0, |h| h.latest() + 1);
                let rows = write::Written { entries: entries.clone(), deferred: Vec::new() };
                prepared = Some(self.finish_index(symbol, next, Operation::Write, &schema, &index, rows, metadata)?);
            }
            Ok(Change::Append(prepared.clone().expect("prepared above")))
        })?;
        let head = head.ok_or_else(|| Error::internal("write committed nothing"))?;
        Ok(item(symbol, &head.record))
    }

    /// The slicing job of a stream of `schema` indexed by `index` into `symbol`, after checking the
    /// symbol name, the schema (the codec's own rule decides which types are storable: it encodes zero
    /// rows of the schema) and the index column, before anything is read or written; and the symbol's
    /// head as read for the job's version.
    pub(crate) fn stream_job<'s>(
        &self,
        symbol: &'s str,
        schema: &SchemaRef,
        index: &IndexKind,
    ) -> Result<(write::SliceJob<'s>, Option<head::ReadHead>)> {
        validate_symbol(symbol)?;
        let header = Table::new(Arc::clone(schema), Vec::new(), index.clone())?;
        floe_formats::check_schema(schema)?;
        let head = head::read_head(&*self.storage, symbol)?;
        // Provenance only (a rebased commit keeps the data keys): the version this write expects to be.
        let version = head.as_ref().map_or(0, |rh| rh.head.latest() + 1);
        Ok((self.slice_job(symbol, version, &header, 0, self.options.rows_per_segment, None), head))
    }

    /// Stores the rows of `batches` as `job` slices them, numbered from row 0, reading the stream as the
    /// write pipeline has room (each batch checked as it arrives: [`table::RowSlicer`]).
    pub(crate) fn store_stream(
        &self,
        job: &write::SliceJob<'_>,
        schema: &SchemaRef,
        index: &IndexKind,
        batches: impl Iterator<Item = Result<RecordBatch>>,
    ) -> Result<Vec<IndexEntry>> {
        let slices = table::RowSlicer::new(batches, Arc::clone(schema), index.clone(), self.options.rows_per_segment);
        write::write_segment_stream(&self.storage, &self.pipeline, job, slices)
    }

    /// Appends `table`'s rows after the symbol's last row, making a new version. Creates the symbol if it
    /// has no live version. Small trailing segments are merged with the new rows (binary-counter rule,
    /// so each row is rewritten O(log n) times), so many small appends read back like one write.
    ///
    /// # Errors
    /// `InvalidInput` if the schema differs from the symbol's (naming the difference), or the new index
    /// starts before the symbol's last index value; storage errors; `Conflict`.
    pub fn append(&self, symbol: &str, table: &Table, metadata: Option<&[u8]>) -> Result<VersionedItem> {
        validate_symbol(symbol)?;
        let table = &*table.with_plain_strings()?;
        // Objects of the current attempt only (merged tail segments, index): dropped when it loses.
        let mut scratch: Vec<AtomKey> = Vec::new();
        // The new rows as plain segments numbered from row 0, written at most once and reused by every
        // rebased attempt, so that under contention a retry only writes a new index.
        let mut plain: Option<(SchemaRef, write::Written)> = None;
        // When the plain segments were written (just before): past `max_reuse_age` they are written anew.
        let mut plain_since = i64::MAX;
        let mut first_attempt = true;
        let result = self.commit(symbol, |h| {
            self.discard(&mut scratch);
            let next = h.map_or(0, |h| h.latest() + 1);
            let live = match h {
                Some(h) => head::live_latest(h).map(|v| head::record_of(&*self.storage, symbol, h, v)).transpose()?,
                None => None,
            };
            let merge_tail = std::mem::replace(&mut first_attempt, false);
            let nv = match live {
                Some(rec) if merge_tail => self.append_onto(symbol, next, &rec, table, metadata, &mut scratch)?,
                live => {
                    let (schema, conformed, index, mut entries, base) = match live {
                        None => (Arc::clone(table.schema()), table.clone(), table.index().clone(), Vec::new(), 0),
                        Some(rec) => {
                            let old = self.cached_index(&rec.index_key)?;
                            let (schema, conformed) = self.check_append(symbol, &old, &rec, table)?;
                            (schema, conformed, old.descriptor.index.clone(), old.entries.clone(), rec.row_count)
                        }
                    };
                    // Rewrite the plain segments only if the head's schema changed under us, or they
                    // are so old that a vacuum might take them for a crashed writer's garbage.
                    if plain.as_ref().is_none_or(|(s, _)| s.fields() != schema.fields())
                        || self.too_old_to_reuse(plain_since)
                    {
                        if let Some((_, old_plain)) = plain.take() {
                            let mut keys: Vec<AtomKey> = old_plain.entries.into_iter().map(|e| e.key).collect();
                            self.discard(&mut keys);
                        }
                        plain_since = crate::clock::now_ns();
                        plain = Some((Arc::clone(&schema), self.write_rows(symbol, next, &conformed, 0, None)?));
                    }
                    let (new_rows, deferred) =
                        plain.as_ref().map(|(_, w)| (&w.entries, w.deferred.clone())).expect("written above");
                    entries.extend(moved_rows(new_rows, base, matches!(index, IndexKind::RowCount)));
                    let rows = write::Written { entries, deferred };
                    self.finish_index(symbol, next, Operation::Append, &schema, &index, rows, metadata)?
                }
            };
            scratch.push(nv.index_key.clone());
            Ok(Change::Append(nv))
        });
        committed_item(symbol, "append", result, || {
            self.discard(&mut scratch);
            let mut plain_keys: Vec<AtomKey> =
                plain.iter().flat_map(|(_, w)| w.entries.iter().map(|e| e.key.clone())).collect();
            self.discard(&mut plain_keys);
        })
    }

    /// Checks that `table` may be appended to version `rec` (whose index is `old`); returns the schema
    /// after the append and the table laid out in it.
    fn check_append(
        &self,
        symbol: &str,
        old: &TableIndex,
        rec: &VersionRecord,
        table: &Table,
    ) -> Result<(SchemaRef, Table)> {
        let conformed = self.conform(symbol, old, table)?;
        if let (Some((new_start, _)), true) = (table.index_range(0), old.index_pos().is_some()) {
            check_append_start(symbol, rec, new_start)?;
        }
        Ok(conformed)
    }

    fn append_onto(
        &self,
        symbol: &str,
        next: u64,
        rec: &VersionRecord,
        table: &Table,
        metadata: Option<&[u8]>,
        written: &mut Vec<AtomKey>,
    ) -> Result<NewVersion> {
        let old = self.cached_index(&rec.index_key)?;
        let (schema, table) = self.check_append(symbol, &old, rec, table)?;
        let table = &table;
        let slices = old.row_slices();
        // Binary-counter merge: take trailing small slices while each is no bigger than what has been
        // gathered so far and the merged run still fits one segment.
        let mut acc = table.num_rows() as u64;
        let mut merge_from = slices.len();
        while merge_from > 0 {
            let s = slices[merge_from - 1];
            let rows = s[0].rows();
            if rows > acc || acc + rows > self.options.rows_per_segment as u64 {
                break;
            }
            acc += rows;
            merge_from -= 1;
        }
        let keep: Vec<IndexEntry> = slices[..merge_from].iter().flat_map(|s| s.iter().cloned()).collect();
        let row_base = keep.last().map_or(0, |e| e.row_end);
        let merged: Vec<&[IndexEntry]> = slices[merge_from..].to_vec();
        let mut batches = Vec::new();
        if !merged.is_empty() {
            let all: Vec<usize> = (0..old.schema.fields().len()).collect();
            batches.push(table::conform_batch(
                &read_slices(&*self.storage, &self.layouts, &old, &merged, &all)?,
                &schema,
            )?);
        }
        batches.extend(table.batches().iter().cloned());
        let combined = Table::new(Arc::clone(&schema), batches, old.descriptor.index.clone())?;
        let new_rows = self.write_rows(symbol, next, &combined, row_base, Some(written))?;
        let mut entries = keep;
        entries.extend(new_rows.entries);
        let rows = write::Written { entries, deferred: new_rows.deferred };
        let nv = self.finish_index(symbol, next, Operation::Append, &schema, &old.descriptor.index, rows, metadata)?;
        Ok(nv)
    }

    /// Replaces the rows whose index lies in `date_range` (default: the new rows' first to last index
    /// value) with `table`'s rows, making a new version. Only the new rows are written: the rows of
    /// segments overlapping the range that lie outside it are kept by reference (index entries naming
    /// part of their old segment), unless the symbol's schema changes, when they are rewritten in the
    /// new one. Creates the symbol if it has no live version.
    ///
    /// # Errors
    /// `InvalidInput` for a row-count-indexed symbol, a schema difference, or new rows outside the
    /// range; storage errors; `Conflict`.
    pub fn update(
        &self,
        symbol: &str,
        table: &Table,
        date_range: Option<(i64, i64)>,
        metadata: Option<&[u8]>,
    ) -> Result<VersionedItem> {
        validate_symbol(symbol)?;
        let table = &*table.with_plain_strings()?;
        if table.index_pos().is_none() {
            return Err(Error::invalid("update needs a timestamp-indexed table"));
        }
        let range = match (date_range, table.index_range(0)) {
            (Some(r), _) => r,
            (None, Some(r)) => r,
            (None, None) => return self.current_item(symbol),
        };
        if let Some((a, b)) = table.index_range(0)
            && (a < range.0 || b > range.1)
        {
            {
                return Err(Error::invalid(format!(
                    "the new rows span {a}..={b}, outside the update range {}..={}",
                    range.0, range.1
                )));
            }
        }
        self.replace_range(symbol, table, range, Operation::Update, metadata)
    }

    /// Removes the rows whose index lies in `date_range` (inclusive), making a new version.
    ///
    /// # Errors
    /// `NotFound` if the symbol has no live version; `InvalidInput` for a row-count index.
    pub fn delete_data_in_range(&self, symbol: &str, date_range: (i64, i64)) -> Result<VersionedItem> {
        validate_symbol(symbol)?;
        let rec = self.resolve(symbol, &AsOf::Latest)?;
        let idx = self.cached_index(&rec.index_key)?;
        let empty = Table::new(Arc::clone(&idx.schema), Vec::new(), idx.descriptor.index.clone())?;
        self.replace_range(symbol, &empty, date_range, Operation::DeleteRange, None)
    }

    fn replace_range(
        &self,
        symbol: &str,
        table: &Table,
        (lo, hi): (i64, i64),
        operation: Operation,
        metadata: Option<&[u8]>,
    ) -> Result<VersionedItem> {
        let mut written: Vec<AtomKey> = Vec::new();
        let result = self.commit(symbol, |h| {
            self.discard(&mut written);
            let next = h.map_or(0, |h| h.latest() + 1);
            let live = match h {
                Some(h) => head::live_latest(h).map(|v| head::record_of(&*self.storage, symbol, h, v)).transpose()?,
                None => None,
            };
            let Some(rec) = live else {
                if operation == Operation::DeleteRange {
                    return Err(Error::symbol_not_found(format!("symbol {symbol:?} has no live version")));
                }
                let rows = self.write_rows(symbol, next, table, 0, Some(&mut written))?;
                let nv = self.write_index(symbol, next, operation, table, rows, metadata)?;
                written.push(nv.index_key.clone());
                return Ok(Change::Append(nv));
            };
            let old = self.cached_index(&rec.index_key)?;
            let (schema, conformed) = self.conform(symbol, &old, table)?;
            let Some(pos) = old.index_pos() else {
                return Err(Error::invalid(format!(
                    "symbol {symbol:?} is indexed by row count; update needs timestamps"
                )));
            };
            let slices = old.row_slices();
            let before: Vec<&[IndexEntry]> = slices.iter().copied().filter(|s| s[0].index_end < lo).collect();
            let after: Vec<&[IndexEntry]> = slices.iter().copied().filter(|s| s[0].index_start > hi).collect();
            let touched: Vec<&[IndexEntry]> =
                slices.iter().copied().filter(|s| !(s[0].index_end < lo || s[0].index_start > hi)).collect();
            let mut entries: Vec<IndexEntry> = before.iter().flat_map(|s| s.iter().cloned()).collect();
            let mut row = entries.last().map_or(0, |e| e.row_end);
            // The rows of touched slices outside the range, before and after the new rows.
            let (mut kept_before, mut kept_after) = (Vec::new(), Vec::new());
            let mut batches = Vec::new();
            let mut tail_rows = Vec::new();
            if !touched.is_empty() && schema.fields() == old.schema.fields() {
                // Same schema: keep those rows by reference (entries naming part of their old
                // segments), reading only the index column to find where the range cuts.
                let stamps = read_slices(&*self.storage, &self.layouts, &old, &touched, &[pos])?;
                let ts = table::timestamps(stamps.column(0))?.values();
                let mut at = 0;
                for s in &touched {
                    let n = slice_rows(s)?;
                    let t = &ts[at..at + n];
                    at += n;
                    let (head_end, tail_start) = (t.partition_point(|&x| x < lo), t.partition_point(|&x| x <= hi));
                    if head_end > 0 {
                        kept_before.push(part_of_slice(s, 0..head_end, t));
                    }
                    if tail_start < n {
                        kept_after.push(part_of_slice(s, tail_start..n, t));
                    }
                }
            } else if !touched.is_empty() {
                // The schema changed (dynamic schema): the kept rows are rewritten in the new one.
                let all: Vec<usize> = (0..old.schema.fields().len()).collect();
                let rows = read_slices(&*self.storage, &self.layouts, &old, &touched, &all)?;
                let ts = table::timestamps(rows.column(pos))?.values().clone();
                let head_end = ts.partition_point(|&t| t < lo);
                let tail_start = ts.partition_point(|&t| t <= hi);
                let rows = table::conform_batch(&rows, &schema)?;
                batches.push(rows.slice(0, head_end));
                tail_rows.push(rows.slice(tail_start, rows.num_rows() - tail_start));
            }
            for part in kept_before {
                renumber_onto(&mut entries, &mut row, part);
            }
            batches.extend(conformed.batches().iter().cloned());
            batches.extend(tail_rows);
            let middle = Table::new(Arc::clone(&schema), batches, old.descriptor.index.clone())?;
            let mid = self.write_rows(symbol, next, &middle, row, Some(&mut written))?;
            entries.extend(mid.entries);
            row = entries.last().map_or(0, |e| e.row_end);
            for part in kept_after.into_iter().chain(after.iter().map(|s| s.to_vec())) {
                renumber_onto(&mut entries, &mut row, part);
            }
            let metadata = metadata.map(<[u8]>::to_vec).or(old.descriptor.user_metadata.clone());
            let nv = self.finish_index(
                symbol,
                next,
                operation,
                &schema,
                &old.descriptor.index,
                write::Written { entries, deferred: mid.deferred },
                metadata.as_deref(),
            )?;
            written.push(nv.index_key.clone());
            Ok(Change::Append(nv))
        });
        match result {
            Ok(Some(head)) => Ok(item(symbol, &head.record)),
            Ok(None) => Err(Error::internal("update committed nothing")),
            Err(e) => {
                if e.detail() != Detail::CommitOutcomeUnknown {
                    self.discard(&mut written);
                }
                Err(e)
            }
        }
    }

    /// Makes a new version with the same data and new user metadata.
    ///
    /// # Errors
    /// `NotFound` if the symbol has no live version; storage errors; `Conflict`.
    pub fn write_metadata(&self, symbol: &str, metadata: Option<&[u8]>) -> Result<VersionedItem> {
        validate_symbol(symbol)?;
        let head = self.commit(symbol, |h| {
            let h = h.ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} does not exist")))?;
            let v =
                head::live_latest(h).ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} is deleted")))?;
            let rec = head::record_of(&*self.storage, symbol, h, v)?;
            let old = self.cached_index(&rec.index_key)?;
            let nv = self.finish_index(
                symbol,
                h.latest() + 1,
                Operation::WriteMetadata,
                &old.schema,
                &old.descriptor.index,
                write::Written { entries: old.entries.clone(), deferred: Vec::new() },
                metadata,
            )?;
            Ok(Change::Append(nv))
        })?;
        let head = head.ok_or_else(|| Error::internal("write_metadata committed nothing"))?;
        Ok(item(symbol, &head.record))
    }

    /// Writes several symbols; one result per item, in order. Symbols are written concurrently.
    pub fn write_batch(&self, items: &[(String, Table, Option<Vec<u8>>)]) -> Vec<Result<VersionedItem>> {
        self.per_item(items, |(s, t, m)| self.write(s, t, m.as_deref()))
    }

    /// Appends to several symbols; one result per item, in order.
    pub fn append_batch(&self, items: &[(String, Table, Option<Vec<u8>>)]) -> Vec<Result<VersionedItem>> {
        self.per_item(items, |(s, t, m)| self.append(s, t, m.as_deref()))
    }

    /// Reads several symbols; one result per request, in order.
    pub fn read_batch(&self, requests: &[(String, ReadRequest)]) -> Vec<Result<ReadResult>> {
        self.per_item(requests, |(s, r)| self.read(s, r))
    }

    fn per_item<I: Sync, R: Send>(&self, items: &[I], f: impl Fn(&I) -> Result<R> + Sync) -> Vec<Result<R>> {
        // A few symbols at a time: each operation is itself parallel inside.
        const CONCURRENT: usize = 4;
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(CONCURRENT) {
            let results: Vec<Result<R>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk.iter().map(|i| s.spawn(|| f(i))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(Error::internal("a batch item panicked"))))
                    .collect()
            });
            out.extend(results);
        }
        out
    }

    // ----- reads --------------------------------------------------------------------------------

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

    // ----- symbols and versions -----------------------------------------------------------------

    /// The symbols with at least one live version, sorted.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_symbols(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        // One walk over the heads (on LMDB one cursor in one transaction, values read in place), each
        // decoded as a head is whenever it is read; a damaged one stops it.
        visit_listed(&*self.storage, KeyType::VersionRef, ListScope::All, &mut |key, bytes| {
            let Key::Ref(key) = key else { return Ok(()) };
            if head::live_latest(&head::decode_head_bytes(key.symbol(), key, bytes)?).is_some() {
                out.push(key.symbol().to_owned());
            }
            Ok(())
        })?;
        out.sort_unstable();
        Ok(out)
    }

    /// Whether `symbol` has a live version (or, with `as_of`, whether that version resolves).
    ///
    /// # Errors
    /// Storage errors other than not-found.
    pub fn has_symbol(&self, symbol: &str, as_of: &AsOf) -> Result<bool> {
        match self.resolve(symbol, as_of) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::InvalidInput => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every live version of `symbol` (or of every symbol), newest first per symbol, plus deleted
    /// versions that snapshots keep, with the snapshots holding each.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_versions(&self, symbol: Option<&str>) -> Result<Vec<VersionInfo>> {
        let symbols = match symbol {
            Some(s) => vec![s.to_owned()],
            None => self
                .storage
                .list_all(KeyType::VersionRef, ListScope::All)?
                .iter()
                .map(|k| k.symbol().to_owned())
                .collect(),
        };
        let snapshots = self.read_all_snapshots()?;
        let mut out = Vec::new();
        for sym in symbols {
            let mut held: BTreeMap<u64, (VersionRecord, Vec<String>)> = BTreeMap::new();
            for (name, snap) in &snapshots {
                for (s, r) in &snap.entries {
                    if *s == sym {
                        held.entry(r.version).or_insert_with(|| (r.clone(), Vec::new())).1.push(name.clone());
                    }
                }
            }
            let Some(rh) = head::read_head(&*self.storage, &sym)? else { continue };
            let h = &rh.head;
            let live: Vec<u64> = (0..=h.latest()).rev().filter(|v| !h.tombstones.contains(*v)).collect();
            let older: Vec<u64> = live.iter().copied().filter(|&v| v != h.latest()).collect();
            let mut fetched = self.version_timestamps(&sym, &older)?.into_iter();
            let mut seen = HashSet::new();
            for v in live {
                let timestamp_ns = if v == h.latest() {
                    h.record.timestamp_ns
                } else {
                    match fetched.next() {
                        Some(Some(t)) => t,
                        Some(None) => continue, // deleted concurrently
                        None => break,
                    }
                };
                seen.insert(v);
                let snaps = held.get(&v).map(|(_, n)| n.clone()).unwrap_or_default();
                out.push(VersionInfo {
                    symbol: sym.clone(),
                    version: v,
                    timestamp_ns,
                    deleted: false,
                    snapshots: snaps,
                });
            }
            for (v, (rec, names)) in held.into_iter().rev() {
                if !seen.contains(&v) {
                    out.push(VersionInfo {
                        symbol: sym.clone(),
                        version: v,
                        timestamp_ns: rec.timestamp_ns,
                        deleted: true,
                        snapshots: names,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The commit times of `symbol`'s versions `versions`, in order, `None` for a record deleted
    /// meanwhile. Many versions on a backend that lends its pages are read in one walk over the
    /// symbol's records ([`Storage::visit_listed`]: on LMDB one cursor, no tree search per version),
    /// decoding only each record's version and time; otherwise by key, in one batch.
    fn version_timestamps(&self, symbol: &str, versions: &[u64]) -> Result<Vec<Option<i64>>> {
        if versions.len() >= SCAN_RECORDS_FROM && self.storage.lends_pages() {
            let mut stamps: Vec<(u64, i64)> = Vec::with_capacity(versions.len());
            // A damaged record stops the walk.
            visit_listed(&*self.storage, KeyType::Version, ListScope::Symbol(symbol), &mut |key, bytes| {
                let Key::Atom(key) = key else { return Ok(()) };
                let stamp =
                    VersionRecord::decode_stamp(bytes).map_err(|e| Error::from(e).context(format!("record {key}")))?;
                if stamp.version != key.version() {
                    return Err(Error::corrupt(format!("record {key} holds version {}", stamp.version)));
                }
                stamps.push((stamp.version, stamp.timestamp_ns));
                Ok(())
            })?;
            stamps.sort_unstable_by_key(|&(v, _)| v);
            return Ok(versions
                .iter()
                .map(|v| stamps.binary_search_by_key(v, |&(v, _)| v).ok().map(|i| stamps[i].1))
                .collect());
        }
        let keys: Vec<AtomKey> = versions.iter().map(|&v| head::version_key(symbol, v)).collect::<Result<_>>()?;
        let decode = |key: &AtomKey, bytes: &[u8]| -> Result<i64> {
            let stamp =
                VersionRecord::decode_stamp(bytes).map_err(|e| Error::from(e).context(format!("record {key}")))?;
            Ok(stamp.timestamp_ns)
        };
        let mut out = Vec::with_capacity(keys.len());
        for (key, fetched) in keys.iter().zip(self.storage.get_batch(&keys)) {
            out.push(match fetched {
                Ok(b) => Some(decode(key, &b)?),
                Err(StorageError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            });
        }
        Ok(out)
    }

    /// Deletes every version of `symbol` (snapshots keep what they name).
    ///
    /// # Errors
    /// `NotFound` if the symbol has no live version; storage errors.
    pub fn delete(&self, symbol: &str) -> Result<()> {
        self.delete_versions_where(symbol, |_, _| true, true)
    }

    /// Deletes the given versions of `symbol`.
    ///
    /// # Errors
    /// `NotFound` naming a version that does not exist or is already deleted (nothing deleted then).
    pub fn delete_versions(&self, symbol: &str, versions: &[u64]) -> Result<()> {
        let wanted: BTreeSet<u64> = versions.iter().copied().collect();
        let h = head::read_head(&*self.storage, symbol)?
            .ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} does not exist")))?;
        for &v in &wanted {
            if v > h.head.latest() || h.head.tombstones.contains(v) {
                return Err(Error::version_not_found(format!("symbol {symbol:?} has no live version {v}")));
            }
        }
        self.delete_versions_where(symbol, |v, _| wanted.contains(&v), false)
    }

    /// Deletes every version of `symbol` older than its newest live one.
    ///
    /// # Errors
    /// Storage errors. A missing symbol is not an error.
    pub fn prune_previous_versions(&self, symbol: &str) -> Result<()> {
        match self.delete_versions_where(symbol, |v, live_latest| v < live_latest, false) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn delete_versions_where(&self, symbol: &str, pick: impl Fn(u64, u64) -> bool, need_live: bool) -> Result<()> {
        validate_symbol(symbol)?;
        let mut deleted: Vec<u64> = Vec::new();
        let committed = self.commit(symbol, |h| {
            deleted.clear();
            let h = h.ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} does not exist")))?;
            let Some(live_latest) = head::live_latest(h) else {
                return if need_live {
                    Err(Error::symbol_not_found(format!("symbol {symbol:?} has no live version")))
                } else {
                    Ok(Change::Tombstones(None))
                };
            };
            let mut t = h.tombstones.clone();
            for v in 0..=h.latest() {
                if !h.tombstones.contains(v) && pick(v, live_latest) {
                    t.insert(v, v);
                    deleted.push(v);
                }
            }
            Ok(Change::Tombstones((!deleted.is_empty()).then_some(t)))
        })?;
        if let Some(head) = committed {
            self.collect_garbage(symbol, &head, &deleted)?;
        }
        Ok(())
    }

    /// Removes the objects only `deleted` versions used: data and index segments no live version or
    /// snapshot references, and the deleted versions' records.
    fn collect_garbage(&self, symbol: &str, head: &Head, deleted: &[u64]) -> Result<()> {
        let records = |versions: &mut dyn Iterator<Item = u64>| -> Result<Vec<VersionRecord>> {
            let mut out = Vec::new();
            for v in versions {
                match head::record_of(&*self.storage, symbol, head, v) {
                    Ok(r) => out.push(r),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        };
        let doomed = records(&mut deleted.iter().copied())?;
        let mut keep_index: HashSet<AtomKey> = HashSet::new();
        let live = records(&mut (0..=head.latest()).filter(|v| !head.tombstones.contains(*v)))?;
        keep_index.extend(live.into_iter().map(|r| r.index_key));
        for (_, snap) in self.read_all_snapshots()? {
            keep_index.extend(snap.entries.into_iter().filter(|(s, _)| s == symbol).map(|(_, r)| r.index_key));
        }
        let mut keep_data: HashSet<AtomKey> = HashSet::new();
        for k in &keep_index {
            keep_data.extend(self.read_index(k)?.entries.into_iter().map(|e| e.key));
        }
        let mut victims: Vec<AtomKey> = Vec::new();
        for r in &doomed {
            if !keep_index.contains(&r.index_key) {
                match self.read_index(&r.index_key) {
                    Ok(idx) => {
                        victims.extend(idx.entries.into_iter().map(|e| e.key).filter(|k| !keep_data.contains(k)))
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                victims.push(r.index_key.clone());
            }
        }
        victims.sort();
        victims.dedup();
        for &v in deleted {
            victims.push(head::version_key(symbol, v)?);
        }
        self.storage.delete_batch(&victims)?;
        Ok(())
    }

    /// Renames `from` to `to`: `to` gets a copy of `from`'s newest live version (data copied under the
    /// new name, so the two symbols never share objects), then `from` is deleted.
    ///
    /// # Errors
    /// `NotFound` if `from` has no live version; `AlreadyExists` if `to` has one.
    pub fn rename_symbol(&self, from: &str, to: &str) -> Result<VersionedItem> {
        validate_symbol(from)?;
        validate_symbol(to)?;
        if self.has_symbol(to, &AsOf::Latest)? {
            return Err(Error::new(ErrorKind::AlreadyExists, format!("symbol {to:?} already exists")));
        }
        let rec = self.resolve(from, &AsOf::Latest)?;
        let idx = self.cached_index(&rec.index_key)?;
        let entries = self.copy_segments(&idx.entries, to)?;
        let mut prepared = None;
        let head = self
            .commit(to, |h| {
                if h.and_then(head::live_latest).is_some() {
                    return Err(Error::new(ErrorKind::AlreadyExists, format!("symbol {to:?} already exists")));
                }
                if prepared.is_none() {
                    let next = h.map_or(0, |h| h.latest() + 1);
                    prepared = Some(self.finish_index(
                        to,
                        next,
                        rec.operation,
                        &idx.schema,
                        &idx.descriptor.index,
                        write::Written { entries: entries.clone(), deferred: Vec::new() },
                        idx.descriptor.user_metadata.as_deref(),
                    )?);
                }
                Ok(Change::Append(prepared.clone().expect("prepared above")))
            })?
            .ok_or_else(|| Error::internal("rename committed nothing"))?;
        self.delete(from)?;
        Ok(item(to, &head.record))
    }

    // ----- snapshots ----------------------------------------------------------------------------

    /// Takes snapshot `name` of the newest live version of every symbol (or of `symbols`), with
    /// `versions` overriding the version per symbol.
    ///
    /// # Errors
    /// `AlreadyExists` if the name is taken; `NotFound` for a missing symbol or version.
    pub fn snapshot(
        &self,
        name: &str,
        metadata: Option<&[u8]>,
        symbols: Option<&[String]>,
        versions: &BTreeMap<String, u64>,
    ) -> Result<()> {
        let key = snapshot_key(name)?;
        let mut syms: BTreeSet<String> = match symbols {
            Some(s) => s.iter().cloned().collect(),
            None => self.list_symbols()?.into_iter().collect(),
        };
        syms.extend(versions.keys().cloned());
        let mut entries = Vec::new();
        for s in syms {
            let as_of = versions.get(&s).map_or(AsOf::Latest, |&v| AsOf::Version(v as i64));
            let rec = self.resolve(&s, &as_of).map_err(|e| e.context(format!("snapshot {name:?}")))?;
            entries.push((s, rec));
        }
        let record =
            SnapshotRecord { timestamp_ns: crate::clock::now_ns(), metadata: metadata.map(<[u8]>::to_vec), entries };
        match self.storage.write_ref(&key, Bytes::from(record.encode()), RefExpectation::Absent) {
            Ok(_) => {}
            Err(StorageError::Conflict { .. }) => {
                return Err(Error::new(ErrorKind::AlreadyExists, format!("snapshot {name:?} already exists")));
            }
            Err(e) => return Err(e.into()),
        }
        // A version deleted between resolving and creating the snapshot may have lost its objects.
        for (s, r) in &record.entries {
            if !self.storage.exists(&r.index_key)? {
                self.storage.delete_ref(&key)?;
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "snapshot {name:?}: version {} of {s:?} was deleted while the snapshot was taken",
                        r.version
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The snapshot names with their metadata, sorted by name.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_snapshots(&self) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        Ok(self.read_all_snapshots()?.into_iter().map(|(n, s)| (n, s.metadata)).collect())
    }

    /// Deletes snapshot `name` and the objects only it kept alive.
    ///
    /// # Errors
    /// `NotFound` if there is no such snapshot.
    pub fn delete_snapshot(&self, name: &str) -> Result<()> {
        let key = snapshot_key(name)?;
        let snap = self.read_snapshot(name)?;
        self.storage.delete_ref(&key)?;
        for (sym, rec) in snap.entries {
            let Some(rh) = head::read_head(&*self.storage, &sym)? else { continue };
            if rh.head.tombstones.contains(rec.version) {
                // Its version was deleted and this snapshot kept it: release what nothing else uses.
                self.collect_garbage_of_record(&sym, &rh.head, &rec)?;
            }
        }
        Ok(())
    }

    fn collect_garbage_of_record(&self, symbol: &str, head: &Head, rec: &VersionRecord) -> Result<()> {
        let mut keep_index: HashSet<AtomKey> = HashSet::new();
        for v in (0..=head.latest()).filter(|v| !head.tombstones.contains(*v)) {
            match head::record_of(&*self.storage, symbol, head, v) {
                Ok(r) => {
                    keep_index.insert(r.index_key);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for (_, snap) in self.read_all_snapshots()? {
            keep_index.extend(snap.entries.into_iter().filter(|(s, _)| s == symbol).map(|(_, r)| r.index_key));
        }
        if keep_index.contains(&rec.index_key) {
            return Ok(());
        }
        let mut keep_data = HashSet::new();
        for k in &keep_index {
            keep_data.extend(self.read_index(k)?.entries.into_iter().map(|e| e.key));
        }
        let mut victims: Vec<AtomKey> = match self.read_index(&rec.index_key) {
            Ok(idx) => idx.entries.into_iter().map(|e| e.key).filter(|k| !keep_data.contains(k)).collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        victims.push(rec.index_key.clone());
        victims.sort();
        victims.dedup();
        self.storage.delete_batch(&victims)?;
        Ok(())
    }

    fn read_snapshot(&self, name: &str) -> Result<SnapshotRecord> {
        let v = self
            .storage
            .read_ref(&snapshot_key(name)?)?
            .ok_or_else(|| Error::snapshot_not_found(format!("snapshot {name:?} does not exist")))?;
        SnapshotRecord::decode(&v.bytes).map_err(|e| Error::from(e).context(format!("snapshot {name:?}")))
    }

    fn read_all_snapshots(&self) -> Result<Vec<(String, SnapshotRecord)>> {
        let mut out = Vec::new();
        for k in self.storage.list_all(KeyType::SnapshotRef, ListScope::All)? {
            match self.read_snapshot(k.symbol()) {
                Ok(s) => out.push((k.symbol().to_owned(), s)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    // ----- internals ----------------------------------------------------------------------------

    fn current_item(&self, symbol: &str) -> Result<VersionedItem> {
        Ok(item(symbol, &self.resolve(symbol, &AsOf::Latest)?))
    }

    /// Finds the version record `as_of` names.
    pub(crate) fn resolve(&self, symbol: &str, as_of: &AsOf) -> Result<VersionRecord> {
        validate_symbol(symbol)?;
        if let AsOf::Snapshot(name) = as_of {
            let snap = self.read_snapshot(name)?;
            return snap.entries.into_iter().find(|(s, _)| s == symbol).map(|(_, r)| r).ok_or_else(|| {
                Error::snapshot_not_found(format!("snapshot {name:?} does not hold symbol {symbol:?}"))
            });
        }
        let h = head::read_head(&*self.storage, symbol)?
            .ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} does not exist")))?
            .head;
        let v = match *as_of {
            AsOf::Latest => {
                head::live_latest(&h).ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} is deleted")))?
            }
            AsOf::Version(n) => {
                let v = if n < 0 { (h.latest() as i64 + 1).checked_add(n).filter(|v| *v >= 0) } else { Some(n) };
                v.map(|v| v as u64)
                    .filter(|&v| v <= h.latest() && !h.tombstones.contains(v))
                    .ok_or_else(|| Error::version_not_found(format!("symbol {symbol:?} has no live version {n}")))?
            }
            AsOf::Timestamp(t) => self.version_at(symbol, &h, t)?,
            AsOf::Snapshot(_) => unreachable!("handled above"),
        };
        head::record_of(&*self.storage, symbol, &h, v)
    }

    /// The newest live version committed at or before `t`: binary search on version ids (commit times
    /// never decrease with the id), O(log n) record reads.
    fn version_at(&self, symbol: &str, h: &Head, t: i64) -> Result<u64> {
        let not_found = || Error::version_not_found(format!("symbol {symbol:?} has no version at or before {t}"));
        let (mut lo, mut hi) = (0u64, h.latest());
        let mut best = None;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let Some(v) = h.tombstones.highest_live_at_or_below(mid).filter(|&v| v >= lo) else {
                lo = mid + 1;
                continue;
            };
            let rec = head::record_of(&*self.storage, symbol, h, v)?;
            if rec.timestamp_ns <= t {
                best = Some(v);
                lo = mid + 1;
            } else if v == 0 {
                break;
            } else {
                hi = v - 1;
            }
        }
        best.ok_or_else(not_found)
    }

    fn read_index(&self, key: &AtomKey) -> Result<TableIndex> {
        Ok(self.fetch_index(key)?.0)
    }

    /// The index `key` names, fetched, verified and decoded, with its encoded length.
    fn fetch_index(&self, key: &AtomKey) -> Result<(TableIndex, usize)> {
        let bytes = self.storage.get(key).map_err(|e| Error::from(e).context(format!("index {key}")))?;
        crate::pipeline::read::verify_object(key, &bytes)?;
        let index = TableIndex::decode(&bytes).map_err(|e| e.context(format!("index {key}")))?;
        Ok((index, bytes.len()))
    }

    /// [`Library::read_index`] through the handle's cache of decoded indexes: reads, appends and
    /// updates name the same few versions again and again. Maintenance (prune, delete) reads indexes
    /// uncached, so that going through many old versions does not evict the ones in use.
    pub(crate) fn cached_index(&self, key: &AtomKey) -> Result<Arc<TableIndex>> {
        if let Some(index) = self.indexes.get(key) {
            return Ok(index);
        }
        let (index, encoded_len) = self.fetch_index(key)?;
        let index = Arc::new(index);
        self.indexes.insert(key, &index, encoded_len);
        Ok(index)
    }

    /// The schema after adding `table`'s rows to version `old`, and `table` laid out in it: under static
    /// schema the schemas must be equal; under dynamic schema they are merged (`table::merge_schema`).
    fn conform(&self, symbol: &str, old: &TableIndex, table: &Table) -> Result<(SchemaRef, Table)> {
        if self.options.dynamic_schema {
            check_same_index(symbol, &old.descriptor.index, table.index())?;
            let schema = table::merge_schema(&old.schema, table.schema(), old.index_pos())
                .map_err(|e| e.context(format!("symbol {symbol:?}")))?;
            let conformed = table.conform_to(&schema)?;
            return Ok((schema, conformed));
        }
        check_same_layout(symbol, &old.schema, &old.descriptor.index, table.schema(), table.index())?;
        Ok((Arc::clone(&old.schema), table.clone()))
    }

    /// Slices and stores `table`'s rows (numbered from `row_base`), or hands small ones back for the
    /// commit to store ([`write::Written::deferred`]); records the keys in `written`.
    pub(crate) fn write_rows(
        &self,
        symbol: &str,
        version: u64,
        table: &Table,
        row_base: u64,
        written: Option<&mut Vec<AtomKey>>,
    ) -> Result<write::Written> {
        self.write_rows_sliced(symbol, version, table, row_base, self.options.rows_per_segment as u64, written)
    }

    /// Stores `table`'s rows as `job` says, in slices of `rows_per_segment` rows.
    fn store_rows(&self, job: write::SliceJob<'_>, table: &Table, rows_per_segment: usize) -> Result<write::Written> {
        let slices = table.row_slices(rows_per_segment)?;
        write::write_segments(&self.storage, &self.pipeline, job, slices)
    }

    /// The slicing job of `table`'s rows, numbered from `row_base`.
    fn slice_job<'a>(
        &self,
        symbol: &'a str,
        version: u64,
        table: &Table,
        row_base: u64,
        rows_per_slice: usize,
        deferred: Option<&'a Deferred<'a>>,
    ) -> write::SliceJob<'a> {
        let data_cols = table::data_columns(table.schema(), table.index_pos());
        // A stream's header has no rows yet: its slices will have `rows_per_slice`.
        let rows = match table.num_rows() {
            0 => rows_per_slice,
            n => n.min(rows_per_slice),
        };
        let groups = table::segment_groups(table.schema(), &data_cols, rows, self.options.columns_per_segment);
        write::SliceJob { symbol, version, row_base, index_pos: table.index_pos(), groups, data_cols, deferred }
    }

    /// [`Library::write_rows`] in row slices of `rows_per_segment` rows.
    pub(crate) fn write_rows_sliced(
        &self,
        symbol: &str,
        version: u64,
        table: &Table,
        row_base: u64,
        rows_per_segment: u64,
        written: Option<&mut Vec<AtomKey>>,
    ) -> Result<write::Written> {
        let rows_per_slice = usize::try_from(rows_per_segment).unwrap_or(usize::MAX);
        let job = self.slice_job(symbol, version, table, row_base, rows_per_slice, None);
        let out = self.store_rows(job, table, rows_per_slice)?;
        if let Some(w) = written {
            w.extend(out.entries.iter().map(|e| e.key.clone()));
        }
        Ok(out)
    }

    fn write_index(
        &self,
        symbol: &str,
        version: u64,
        operation: Operation,
        table: &Table,
        rows: write::Written,
        metadata: Option<&[u8]>,
    ) -> Result<NewVersion> {
        self.finish_index(symbol, version, operation, table.schema(), table.index(), rows, metadata)
    }

    /// [`crate::index::schema_bytes`] of `schema`, encoded once for a run of commits of one schema
    /// ([`SchemaBytesMemo`], shared by clones of this handle).
    ///
    /// # Errors
    /// As [`crate::index::schema_bytes`].
    pub(crate) fn schema_bytes(&self, schema: &SchemaRef) -> Result<Vec<u8>> {
        self.schemas.get(schema)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish_index(
        &self,
        symbol: &str,
        version: u64,
        operation: Operation,
        schema: &SchemaRef,
        index: &IndexKind,
        rows: write::Written,
        metadata: Option<&[u8]>,
    ) -> Result<NewVersion> {
        // What the store records: string columns handed over as codes are plain string columns.
        let schema = &floe_formats::stored_schema(schema);
        let write::Written { entries, deferred } = rows;
        let row_count = entries.last().map_or(0, |e| e.row_end);
        let (index_start, index_end) = match (entries.first(), entries.last()) {
            (Some(f), Some(l)) => (f.index_start, l.index_end),
            _ => (0, -1),
        };
        let descriptor = TableDescriptor {
            index: index.clone(),
            total_rows: row_count,
            schema_segment: self.schema_bytes(schema)?,
            user_metadata: metadata.map(<[u8]>::to_vec),
        };
        let idx = TableIndex { descriptor, schema: Arc::clone(schema), entries };
        let bytes = idx.encode()?;
        let fields = AtomFields {
            version,
            creation_ts: crate::clock::now_ns(),
            content_hash: floe_formats::content_hash(&bytes)?,
            start: index_start,
            end: index_end,
        };
        let index_key = AtomKey::new(KeyType::TableIndex, symbol, fields)?;
        // Stored by the commit, together with the head's CAS.
        Ok(NewVersion {
            operation,
            index_key,
            index_bytes: Bytes::from(bytes),
            segments: deferred,
            row_count,
            index_start,
            index_end,
        })
    }

    /// Copies the data segments `entries` name under `symbol` with a fresh creation time, and returns
    /// the entries naming the copies. Each segment is copied once ([`segment_keys`]). The copies are
    /// unreachable until a commit names them, and a vacuum judges an unreachable object's age by its
    /// key: filed under the originals' old times they could be deleted before that commit lands.
    ///
    /// # Errors
    /// Storage errors (a missing segment is `NotFound`).
    pub(crate) fn copy_segments(&self, entries: &[IndexEntry], symbol: &str) -> Result<Vec<IndexEntry>> {
        let keys = segment_keys(entries);
        let now = crate::clock::now_ns();
        let mut copies = std::collections::HashMap::with_capacity(keys.len());
        for (old_key, bytes) in keys.iter().zip(self.storage.get_batch(&keys)) {
            let key = AtomKey::new(KeyType::TableData, symbol, AtomFields { creation_ts: now, ..old_key.fields() })?;
            self.storage.put(&key, bytes?)?;
            copies.insert(old_key.clone(), key);
        }
        Ok(entries
            .iter()
            .map(|e| IndexEntry { key: copies.get(&e.key).expect("every key was copied above").clone(), ..e.clone() })
            .collect())
    }

    /// Whether objects written at `since_ns` (this process's clock) are past `max_reuse_age`, so that a
    /// rebased commit must write them again rather than name them: a vacuum whose grace is shorter
    /// than the commit's whole duration could otherwise delete them just before the commit lands.
    pub(crate) fn too_old_to_reuse(&self, since_ns: i64) -> bool {
        let limit = i64::try_from(self.pipeline.max_reuse_age.as_nanos()).unwrap_or(i64::MAX);
        since_ns != i64::MAX && crate::clock::now_ns().saturating_sub(since_ns) > limit
    }

    /// Best-effort removal of objects a lost commit attempt wrote (they are unreachable either way).
    pub(crate) fn discard(&self, written: &mut Vec<AtomKey>) {
        if !written.is_empty() {
            let _ = self.storage.delete_batch(written);
            written.clear();
        }
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

/// Entries naming rows `rows` of the row slice `slice` (whose index values are `ts`): the same
/// segments, from a later row, with the index range of those rows. Row numbers are the slice's own;
/// [`renumber_onto`] places them.
fn part_of_slice(slice: &[IndexEntry], rows: std::ops::Range<usize>, ts: &[i64]) -> Vec<IndexEntry> {
    slice
        .iter()
        .map(|e| IndexEntry {
            row_start: 0,
            row_end: (rows.end - rows.start) as u64,
            index_start: ts[rows.start],
            index_end: ts[rows.end - 1],
            seg_row_offset: e.seg_row_offset + rows.start as u64,
            ..e.clone()
        })
        .collect()
}

/// Appends the entries of one row slice to `entries`, numbered from `*row`, and moves `*row` past it.
fn renumber_onto(entries: &mut Vec<IndexEntry>, row: &mut u64, slice: Vec<IndexEntry>) {
    let Some(rows) = slice.first().map(IndexEntry::rows) else { return };
    for mut e in slice {
        e.row_start = *row;
        e.row_end = *row + rows;
        entries.push(e);
    }
    *row += rows;
}

/// The rows of each row slice a read needs, and the output columns.
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

/// The data segments `entries` name, each once (after an update several entries may name parts of one),
/// in entry order.
fn segment_keys(entries: &[IndexEntry]) -> Vec<AtomKey> {
    let mut seen = HashSet::new();
    entries.iter().filter(|e| seen.insert(&e.key)).map(|e| e.key.clone()).collect()
}

#[cfg(test)]
#[path = "library_tests.rs"]
mod tests;
