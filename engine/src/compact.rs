//! Compaction (ArcticDB's `compact_data`, `is_symbol_fragmented` and `defragment_symbol_data`): runs of
//! small row slices that appends and updates left in the latest version are rewritten as full slices,
//! in a new version holding the same rows, schema and metadata (its version record says `Write`: a
//! whole table, partly by reference). Full slices are kept by reference (their segments are not read
//! or written again), so compacting a mostly compact symbol costs little.
//!
//! A compaction commits only over the version it read: if another writer committed meanwhile, it fails
//! with `Conflict` and deletes what it wrote, rather than replace the newer rows with older ones.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use floe_formats::record::Operation;

use crate::error::{Error, ErrorKind, Result};
use crate::head::{self, Change};
use crate::library::{AsOf, Library, VersionedItem, committed_item};
use crate::pipeline::read::read_slices;
use crate::pipeline::write;
use crate::table::{self, Table};

/// ArcticDB's default threshold (its `SymbolDataCompact.SegmentCount` option): a symbol is fragmented
/// when compacting it would save at least this many data segments.
pub const FRAGMENTED_MIN_SAVED: usize = 100;

/// A merged run is read at most this many full slices' worth of rows at a time (plus the rows the part
/// before left over), which bounds a compaction's memory whatever the run's length.
const READ_MAX_SLICES: u64 = 16;

/// How the latest version of a symbol lies in data segments, now and after [`Library::compact`] with the
/// same rows per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragmentation {
    /// The version described (the latest live one).
    pub version: u64,
    /// Data segments its index names.
    pub segments: usize,
    /// Data segments it would name after compaction.
    pub compacted_segments: usize,
}

impl Fragmentation {
    /// Segments compaction would save.
    pub fn reducible(&self) -> usize {
        self.segments.saturating_sub(self.compacted_segments)
    }

    /// Whether compaction would save at least [`FRAGMENTED_MIN_SAVED`] segments.
    pub fn is_fragmented(&self) -> bool {
        self.reducible() >= FRAGMENTED_MIN_SAVED
    }
}

/// What [`Library::compact`] would do to the latest version of a symbol, slice by slice (ArcticDB's
/// `compact_data_explain_plan`), made from the symbol's head and the version's index; nothing is
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionOutline {
    /// The version described (the latest live one).
    pub version: u64,
    /// The version a compaction would commit (after the newest version, deleted ones included), or
    /// `None` when it would write nothing and return `version` as it is.
    pub next_version: Option<u64>,
    /// Rows of each row slice of `version`, in row order.
    pub slice_rows: Vec<u64>,
    /// Rows of each row slice after compaction, in row order (the same as `slice_rows` when
    /// `next_version` is `None`).
    pub compacted_slice_rows: Vec<u64>,
}

/// Rows of each slice once `merges` of `slice_rows` are rewritten as slices of `target` rows: each
/// merged run becomes full slices and, for a remainder, one partial slice at its end.
fn compacted_rows(slice_rows: &[u64], merges: &[Merge], target: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(slice_rows.len());
    let mut at = 0;
    for m in merges {
        out.extend_from_slice(&slice_rows[at..m.slices.start]);
        out.extend(std::iter::repeat_n(target, (m.rows / target) as usize));
        if m.rows % target > 0 {
            out.push(m.rows % target);
        }
        at = m.slices.end;
    }
    out.extend_from_slice(&slice_rows[at..]);
    out
}

/// What a compaction of the latest version would do: the rows per slice it aims at, the version, its
/// index, and the runs of its slices to merge.
struct CompactionPlan {
    target: u64,
    record: floe_formats::record::VersionRecord,
    index: Arc<crate::index::TableIndex>,
    merges: Vec<Merge>,
}

/// A run of consecutive row slices (positions in the version's slices) to merge, and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Merge {
    slices: Range<usize>,
    rows: u64,
}

/// The runs worth merging: consecutive slices of fewer than `target` rows each, kept only where
/// merging makes fewer slices than the run has.
fn plan_merges(slice_rows: &[u64], target: u64) -> Vec<Merge> {
    let mut merges = Vec::new();
    let mut i = 0;
    while i < slice_rows.len() {
        if slice_rows[i] >= target {
            i += 1;
            continue;
        }
        let (start, mut rows) = (i, 0u64);
        while i < slice_rows.len() && slice_rows[i] < target {
            rows += slice_rows[i];
            i += 1;
        }
        if rows.div_ceil(target) < (i - start) as u64 {
            merges.push(Merge { slices: start..i, rows });
        }
    }
    merges
}

/// Cuts a run's slices into parts of at most `max_rows` rows (a slice bigger than that alone), for
/// reading one part at a time.
fn parts(slice_rows: &[u64], max_rows: u64) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0usize, 0u64);
    for (i, &r) in slice_rows.iter().enumerate() {
        if i > start && rows + r > max_rows {
            out.push(start..i);
            (start, rows) = (i, 0);
        }
        rows += r;
    }
    if start < slice_rows.len() {
        out.push(start..slice_rows.len());
    }
    out
}

impl Library {
    /// How fragmented the latest version of `symbol` is: its data segments now and after compaction to
    /// `rows_per_segment` rows per slice (default: the library's). Reads only the version's index.
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol or `rows_per_segment` of 0; `NotFound` if the symbol has no live
    /// version; storage errors.
    pub fn fragmentation(&self, symbol: &str, rows_per_segment: Option<usize>) -> Result<Fragmentation> {
        let plan = self.compaction_plan(symbol, rows_per_segment)?;
        let slices = plan.index.row_slices();
        // Full slices of `target` rows, and a last partial one whose narrower segments may take more
        // columns each (`table::columns_per_group`).
        let groups = |rows: u64| self.groups_of(&plan.index, rows) as u64;
        let segments = slices.iter().map(|s| s.len()).sum::<usize>();
        let mut compacted = segments as u64;
        for m in &plan.merges {
            compacted -= slices[m.slices.clone()].iter().map(|s| s.len() as u64).sum::<u64>();
            compacted += m.rows / plan.target * groups(plan.target);
            if m.rows % plan.target > 0 {
                compacted += groups(m.rows % plan.target);
            }
        }
        Ok(Fragmentation {
            version: plan.record.version,
            segments,
            compacted_segments: usize::try_from(compacted).unwrap_or(usize::MAX),
        })
    }

    /// What [`Library::compact`] with the same `rows_per_segment` would do to the latest version of
    /// `symbol` (rows per slice before and after, and the version it would commit). Reads the head and
    /// the version's index; writes nothing. Another writer may change the symbol before a compaction.
    ///
    /// # Errors
    /// As [`Library::fragmentation`].
    pub fn compaction_outline(&self, symbol: &str, rows_per_segment: Option<usize>) -> Result<CompactionOutline> {
        let plan = self.compaction_plan(symbol, rows_per_segment)?;
        let slice_rows: Vec<u64> = plan.index.row_slices().iter().map(|s| s[0].rows()).collect();
        let next_version = if plan.merges.is_empty() {
            None
        } else {
            let newest =
                head::read_head(self.storage().as_ref(), symbol)?.map_or(plan.record.version, |rh| rh.head.latest());
            Some(newest.max(plan.record.version) + 1)
        };
        Ok(CompactionOutline {
            version: plan.record.version,
            next_version,
            compacted_slice_rows: compacted_rows(&slice_rows, &plan.merges, plan.target),
            slice_rows,
        })
    }

    /// Rewrites the runs of small row slices of `symbol`'s latest version as full slices of
    /// `rows_per_segment` rows (default: the library's), keeping the other slices by reference, and
    /// commits the result as a new version with the same rows, schema and metadata. Returns that version,
    /// or the latest one unchanged when no run is worth merging (nothing is written then).
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol or `rows_per_segment` of 0; `NotFound` if the symbol has no live
    /// version; `Conflict` if another writer committed a version meanwhile (nothing is committed, and
    /// what was written is deleted); storage and corruption errors.
    pub fn compact(&self, symbol: &str, rows_per_segment: Option<usize>) -> Result<VersionedItem> {
        floe_formats::names::validate_symbol(symbol)?;
        // The newest version id (deleted ones too): the new version's number follows it, and the commit
        // requires that nothing was committed after it.
        let newest = head::read_head(self.storage().as_ref(), symbol)?.map(|rh| rh.head.latest());
        let CompactionPlan { target, record: rec, index: idx, merges } =
            self.compaction_plan(symbol, rows_per_segment)?;
        let newest = newest.filter(|&n| n >= rec.version).ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                format!("symbol {symbol:?} changed while compaction started; compact it again"),
            )
        })?;
        if merges.is_empty() {
            return Ok(crate::library::item(symbol, &rec));
        }
        let slices = idx.row_slices();
        let rows: Vec<u64> = slices.iter().map(|s| s[0].rows()).collect();
        let next = newest + 1;
        let all: Vec<usize> = (0..idx.schema.fields().len()).collect();
        let mut written: Vec<floe_formats::AtomKey> = Vec::new();
        let rewritten = (|| -> Result<write::Written> {
            let mut out = write::Written::default();
            let mut at = 0;
            for m in &merges {
                out.entries.extend(slices[at..m.slices.start].iter().flat_map(|s| s.iter().cloned()));
                let run = &slices[m.slices.clone()];
                // Read in parts; each part writes only full slices and hands its last rows on, so only
                // the run's very end can make a partial slice.
                let mut row_base = run[0][0].row_start;
                let mut carry: Option<RecordBatch> = None;
                for part in parts(&rows[m.slices.clone()], target * READ_MAX_SLICES) {
                    let batch = read_slices(self.storage().as_ref(), self.layouts(), &idx, &run[part], &all)?;
                    let batch = match carry.take() {
                        Some(c) => arrow_select::concat::concat_batches(&idx.schema, [&c, &batch])?,
                        None => batch,
                    };
                    let full = (batch.num_rows() as u64 / target * target) as usize;
                    if full < batch.num_rows() {
                        carry = Some(batch.slice(full, batch.num_rows() - full));
                    }
                    row_base = self.rewrite(
                        symbol,
                        next,
                        &idx,
                        batch.slice(0, full),
                        row_base,
                        target,
                        &mut written,
                        &mut out,
                    )?;
                }
                if let Some(c) = carry {
                    self.rewrite(symbol, next, &idx, c, row_base, target, &mut written, &mut out)?;
                }
                at = m.slices.end;
            }
            out.entries.extend(slices[at..].iter().flat_map(|s| s.iter().cloned()));
            Ok(out)
        })();
        let committed = rewritten.and_then(|rows| {
            let metadata = idx.descriptor.user_metadata.as_deref();
            let schema = &idx.schema;
            let nv =
                self.finish_index(symbol, next, Operation::Write, schema, &idx.descriptor.index, rows, metadata)?;
            // Only over the head read above: a version committed meanwhile (or the compacted one
            // deleted) would be overwritten by older rows.
            self.commit(symbol, |h| match h {
                Some(h) if h.latest() == newest && head::live_latest(h) == Some(rec.version) => {
                    Ok(Change::Append(nv.clone()))
                }
                _ => Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "symbol {symbol:?} changed while it was being compacted (from version {}): nothing was \
                         committed; compact it again",
                        rec.version
                    ),
                )),
            })
        });
        committed_item(symbol, "compaction", committed, || self.discard(&mut written))
    }

    /// The latest version of `symbol`, its index and the runs worth merging into slices of
    /// `rows_per_segment` rows (default: the library's).
    fn compaction_plan(&self, symbol: &str, rows_per_segment: Option<usize>) -> Result<CompactionPlan> {
        floe_formats::names::validate_symbol(symbol)?;
        let target = match rows_per_segment.unwrap_or(self.options().rows_per_segment) {
            0 => return Err(Error::invalid("rows per segment must be at least 1")),
            n => n as u64,
        };
        let record = self.resolve(symbol, &AsOf::Latest)?;
        let index = self.cached_index(&record.index_key)?;
        let rows: Vec<u64> = index.row_slices().iter().map(|s| s[0].rows()).collect();
        let merges = plan_merges(&rows, target);
        Ok(CompactionPlan { target, record, index, merges })
    }

    /// Writes `rows` (of `idx`'s schema) as slices of `target` rows numbered from `row_base`, adding
    /// their entries to `out`; returns the row after them.
    #[allow(clippy::too_many_arguments)]
    fn rewrite(
        &self,
        symbol: &str,
        version: u64,
        idx: &crate::index::TableIndex,
        rows: RecordBatch,
        row_base: u64,
        target: u64,
        written: &mut Vec<floe_formats::AtomKey>,
        out: &mut write::Written,
    ) -> Result<u64> {
        let n = rows.num_rows() as u64;
        if n == 0 {
            return Ok(row_base);
        }
        let table = Table::new(Arc::clone(&idx.schema), vec![rows], idx.descriptor.index.clone())?;
        let w = self.write_rows_sliced(symbol, version, &table, row_base, target, Some(written))?;
        out.entries.extend(w.entries);
        out.deferred.extend(w.deferred);
        Ok(row_base + n)
    }

    /// Column groups (segments per row slice) of slices of `rows` rows written now in `idx`'s schema.
    fn groups_of(&self, idx: &crate::index::TableIndex, rows: u64) -> usize {
        let data_cols = table::data_columns(&idx.schema, idx.index_pos());
        let rows = usize::try_from(rows).unwrap_or(usize::MAX);
        table::segment_groups(&idx.schema, &data_cols, rows, self.options().columns_per_segment).len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runs_of_small_slices_that_shrink_are_merged() {
        let m = |r: &[u64]| plan_merges(r, 10);
        assert_eq!(m(&[10, 10, 10]), vec![]);
        assert_eq!(m(&[10, 3, 10]), vec![], "a lone small slice stays");
        assert_eq!(m(&[10, 3, 4, 10]), vec![Merge { slices: 1..3, rows: 7 }]);
        assert_eq!(m(&[6, 6, 10]), vec![], "two slices of 12 rows make two slices");
        assert_eq!(m(&[6, 6, 6, 10, 1, 1]), vec![Merge { slices: 0..3, rows: 18 }, Merge { slices: 4..6, rows: 2 }]);
        assert_eq!(m(&[9; 10]), vec![Merge { slices: 0..10, rows: 90 }]);
        assert_eq!(m(&[]), vec![]);
        assert_eq!(m(&[0, 0]), vec![Merge { slices: 0..2, rows: 0 }], "empty slices merge into none");
    }

    #[test]
    fn merged_runs_become_full_slices_and_one_remainder() {
        let after = |r: &[u64]| compacted_rows(r, &plan_merges(r, 10), 10);
        assert_eq!(after(&[10, 3, 4, 10]), vec![10, 7, 10]);
        assert_eq!(after(&[6, 6, 6, 10, 1, 1]), vec![10, 8, 10, 2]);
        assert_eq!(after(&[9; 10]), vec![10; 9]);
        assert_eq!(after(&[10, 3, 10]), vec![10, 3, 10], "nothing merged");
        assert_eq!(after(&[0, 0]), Vec::<u64>::new(), "empty slices merge into none");
        assert_eq!(after(&[]), Vec::<u64>::new());
    }

    #[test]
    fn runs_are_read_in_bounded_parts() {
        assert_eq!(parts(&[9; 10], 40), vec![0..4, 4..8, 8..10]);
        assert_eq!(parts(&[50, 1, 1], 40), vec![0..1, 1..3], "a slice over the bound is a part alone");
        assert_eq!(parts(&[], 40), Vec::<Range<usize>>::new());
    }
}

#[cfg(test)]
mod library_tests {
    use std::sync::Arc;

    use floe_backends::Storage;

    use crate::test_storage::{TestStorage, library, table};
    use crate::{ErrorKind, ReadRequest};

    /// A symbol of one full slice and `appends` appends of 3 rows, each its own slice (the binary-counter
    /// tail merge never merges two 3-row slices into 4-row segments).
    fn fragmented(lib: &crate::Library, appends: i64) {
        lib.write("s", &table(0..4), None).expect("write");
        for a in 0..appends {
            lib.append("s", &table(4 + 3 * a..7 + 3 * a), None).expect("append");
        }
    }

    #[test]
    fn compaction_keeps_the_rows_and_full_slices_and_merges_the_small_ones() {
        let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
        let lib = library(Arc::clone(&storage)); // 4 rows a slice, one data column a segment
        fragmented(&lib, 20);
        let before = lib.read("s", &ReadRequest::default()).expect("reads").data;
        let f = lib.fragmentation("s", None).expect("fragmentation");
        assert_eq!((f.segments, f.compacted_segments, f.reducible()), (21, 16, 5), "{f:?}");
        assert!(!f.is_fragmented(), "5 saved is under ArcticDB's threshold of 100");
        let old_first =
            lib.cached_index(&lib.resolve("s", &crate::AsOf::Latest).expect("latest").index_key).expect("idx");
        let outline = lib.compaction_outline("s", None).expect("outline");
        assert_eq!((outline.version, outline.next_version), (f.version, Some(f.version + 1)));
        assert_eq!(outline.slice_rows, [&[4][..], &[3; 20][..]].concat());
        assert_eq!(outline.compacted_slice_rows, vec![4; 16]);
        let item = lib.compact("s", None).expect("compacts");
        assert_eq!(item.version, f.version + 1);
        assert_eq!(lib.read("s", &ReadRequest::default()).expect("reads").data, before);
        let after = lib.fragmentation("s", None).expect("fragmentation");
        assert_eq!((after.segments, after.compacted_segments), (16, 16));
        let done = lib.compaction_outline("s", None).expect("outline");
        assert_eq!(done.slice_rows, outline.compacted_slice_rows, "the outline said what compact did");
        assert_eq!((done.version, done.next_version), (item.version, None));
        assert_eq!(done.compacted_slice_rows, done.slice_rows);
        let idx = lib.cached_index(&lib.resolve("s", &crate::AsOf::Latest).expect("latest").index_key).expect("idx");
        assert_eq!(idx.entries[0].key, old_first.entries[0].key, "the full first slice is kept by reference");
        assert_eq!(idx.descriptor.user_metadata, old_first.descriptor.user_metadata);
        // Nothing more to merge: the latest version comes back and nothing is written.
        assert_eq!(lib.compact("s", None).expect("no-op").version, item.version);
        // Another size: slices of 8 rows (64 rows in 8, against 16 slices now).
        assert_eq!(lib.fragmentation("s", Some(8)).expect("f").compacted_segments, 8);
        lib.compact("s", Some(8)).expect("compacts");
        assert_eq!(lib.read("s", &ReadRequest::default()).expect("reads").data, before);
        let err = lib.compact("s", Some(0)).expect_err("zero rows");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(lib.compact("missing", None).expect_err("no symbol").kind(), ErrorKind::NotFound);
    }

    #[test]
    fn compaction_under_a_deleted_newer_version_numbers_after_it() {
        let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
        let lib = library(storage);
        fragmented(&lib, 5); // versions 0..=5
        let live = lib.read("s", &ReadRequest::default()).expect("reads").data;
        lib.write("s", &table(0..2), None).expect("v6");
        lib.delete_versions("s", &[6]).expect("delete v6");
        assert_eq!(lib.compaction_outline("s", None).expect("outline").next_version, Some(7));
        let item = lib.compact("s", None).expect("compacts v5");
        assert_eq!(item.version, 7, "after the deleted version 6, not over it");
        assert_eq!(lib.read("s", &ReadRequest::default()).expect("reads").data, live);
    }

    #[test]
    fn a_compaction_overtaken_by_a_commit_commits_nothing_and_cleans_up() {
        let storage = Arc::new(TestStorage::default());
        let lib = library(Arc::clone(&storage) as Arc<dyn Storage>);
        fragmented(&lib, 6);
        let data_keys = || {
            (&*storage.inner as &dyn Storage)
                .list_all(floe_formats::KeyType::TableData, floe_backends::ListScope::Symbol("s"))
                .expect("list")
                .len()
        };
        // Just as the compaction reads the rows it merges, another process appends.
        let other = library(Arc::clone(&storage.inner) as Arc<dyn Storage>);
        storage.before_data_read.set(move || {
            other.append("s", &table(100..103), None).expect("append");
        });
        let before = data_keys();
        let err = lib.compact("s", None).expect_err("overtaken");
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        let rows = lib.read("s", &ReadRequest::default()).expect("reads").data.num_rows();
        assert_eq!(rows, 4 + 18 + 3, "the append stands");
        assert_eq!(data_keys(), before + 1, "only the append's segment remains of what was written meanwhile");
    }
}
