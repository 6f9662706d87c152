//! A library: the symbols of one [`Storage`] and every operation on them, following ArcticDB's
//! `Library` API (write, append, update, read, snapshots, deletes...).

//!
//! The operations are split by what they do, one `impl Library` block each: `writes` (write, append,
//! update, range deletes, metadata), `reads` (planning and reading versions, streams), `versions`
//! (listing, deleting and pruning versions, renames), `snapshots`, `verify` (checking a version's
//! stored bytes whole), and what they share: `resolve`
//! (from a request's version to its record and index) and `rows` (storing a version's segments and
//! index). The types of the API and the checks several of them make live here.

mod reads;
mod resolve;
mod rows;
mod snapshots;
mod verify;
mod versions;
mod writes;

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use floe_backends::{ListScope, Storage, StorageError};
use floe_formats::record::{Head, IndexKind, Operation, VersionRecord};
use floe_formats::{AtomKey, Key, KeyType, RefKey};

use crate::commit_stats::{CommitMeter, CommitStats};
use crate::error::{Detail, Error, ErrorKind, Result};
use crate::head::{self, Change};
use crate::index::{IndexEntry, SchemaBytesMemo};
use crate::index_cache::IndexCache;
use crate::lru::LayoutCache;
use crate::options::{LibraryOptions, PipelineOptions};
use crate::pipeline::read::ColumnBlock;
use crate::table;

pub use reads::ReadStream;

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

/// What [`Library::verify`] checked of one version: every object it stores, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Which version.
    pub item: VersionedItem,
    /// Data segments verified, each once however many index entries name it.
    pub segments: usize,
    /// Stored bytes verified: the index segment and every data segment.
    pub bytes: u64,
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
}

/// The data segments `entries` name, each once (after an update several entries may name parts of one),
/// in entry order.
fn segment_keys(entries: &[IndexEntry]) -> Vec<AtomKey> {
    let mut seen = HashSet::new();
    entries.iter().filter(|e| seen.insert(&e.key)).map(|e| e.key.clone()).collect()
}

#[cfg(test)]
mod tests;
