//! Writes: write, append, update, range deletes, metadata-only versions and their batch forms.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use floe_formats::AtomKey;
use floe_formats::record::{IndexKind, Operation, VersionRecord};

use crate::deferred::Deferred;
use crate::error::{Detail, Error, Result};
use crate::head::{self, Change, NewVersion};
use crate::index::{IndexEntry, TableIndex};
use crate::pipeline::read::{read_slices, slice_rows};
use crate::pipeline::write;
use crate::table::{self, Table};

use super::{
    AsOf, Library, VersionedItem, check_append_start, committed_item, item, moved_rows, segment_keys, validate_symbol,
};

impl Library {
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
            let live = head::live_record(&*self.storage, symbol, h)?;
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
            let live = head::live_record(&*self.storage, symbol, h)?;
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

    pub(super) fn per_item<I: Sync, R: Send>(&self, items: &[I], f: impl Fn(&I) -> Result<R> + Sync) -> Vec<Result<R>> {
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
