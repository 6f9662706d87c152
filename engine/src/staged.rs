//! Staged writes (ArcticDB's `stage` / `finalize_staged_data`): several writers, in any processes, store
//! chunks of one symbol's rows without making versions; one call then commits every chunk (or chosen
//! ones) as a single new version, in index order, without rewriting the data.
//!
//! A chunk is its data segments plus a staged index ([`KeyType::StagedIndex`]): an index segment like a
//! version's, naming the chunk's segments, with the chunk's metadata. Finalizing commits a version whose
//! index names those same segments, and only then deletes the staged indexes. Vacuum keeps every
//! segment a staged index names, and reads the staged indexes before the heads: a finalize that commits
//! and deletes its staged indexes meanwhile is seen either in the staged index (read before its
//! deletion) or in the head (its commit came before that deletion, so before the head was read). See
//! design/decisions.md D25.

use std::collections::HashSet;

use floe_backends::ListScope;
use floe_formats::record::{IndexKind, Operation, TableDescriptor};
use floe_formats::{AtomFields, AtomKey, Key, KeyType};

use crate::error::{Detail, Error, ErrorKind, Result};
use crate::head::{self, Change};
use crate::index::{IndexEntry, TableIndex};
use crate::library::{Library, VersionedItem};
use crate::pipeline::read::verify_object;
use crate::pipeline::write;
use crate::table::{self, Table};

/// One staged chunk, as [`Library::stage`] returns it and [`Library::staged_chunks`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedChunk {
    /// The chunk's staged index: the token [`Library::finalize_staged`] takes to commit only some chunks.
    pub key: AtomKey,
    /// Rows in the chunk.
    pub rows: u64,
    /// First and last index value (`None` for an empty chunk).
    pub index_range: Option<(i64, i64)>,
    /// The metadata it was staged with.
    pub metadata: Option<Vec<u8>>,
}

/// A staged chunk's key and its decoded staged index.
type Chunk = (AtomKey, TableIndex);

/// How [`Library::finalize_staged`] combines the chunks with the symbol's existing rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizeMode {
    /// The chunks become the symbol's whole contents (a new version replacing the old rows).
    Write,
    /// The chunks are appended after the symbol's last row (which they must not precede).
    Append,
}

impl Library {
    /// Stores `table` as a staged chunk of `symbol`: its data segments and a staged index, no version.
    /// Reads do not see it until [`Library::finalize_staged`] commits it. Many writers may stage chunks
    /// of one symbol at once; each chunk must be sorted by its timestamp index (checked), and the chunks
    /// finalized together must not overlap (checked when finalizing).
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol name or a table not indexed by timestamp; storage errors.
    pub fn stage(&self, symbol: &str, table: &Table, metadata: Option<&[u8]>) -> Result<StagedChunk> {
        floe_formats::names::validate_symbol(symbol)?;
        let table = &*table.with_plain_strings()?;
        if !matches!(table.index(), IndexKind::Timestamp(_)) {
            return Err(Error::invalid(format!(
                "stage {symbol:?}: staged chunks are ordered by their timestamps; this table has no timestamp index"
            )));
        }
        let write::Written { entries, deferred } = self.write_rows(symbol, 0, table, 0, None)?;
        // Segments first, then the staged index naming them: a listed staged index names stored data.
        for result in self.storage().put_batch(deferred) {
            result.map_err(|e| Error::from(e).context(format!("stage {symbol:?}")))?;
        }
        let index_range = table.index_range(0);
        let descriptor = TableDescriptor {
            index: table.index().clone(),
            total_rows: table.num_rows() as u64,
            schema_segment: self.schema_bytes(table.schema())?,
            user_metadata: metadata.map(<[u8]>::to_vec),
        };
        let staged = TableIndex { descriptor, schema: std::sync::Arc::clone(table.schema()), entries };
        let bytes = staged.encode()?;
        let (start, end) = index_range.unwrap_or((0, -1));
        let fields = AtomFields {
            version: 0,
            creation_ts: crate::clock::now_ns(),
            content_hash: floe_formats::content_hash(&bytes)?,
            start,
            end,
        };
        let key = AtomKey::new(KeyType::StagedIndex, symbol, fields)?;
        self.storage()
            .put(&key, bytes::Bytes::from(bytes))
            .map_err(|e| Error::from(e).context(format!("stage {symbol:?}")))?;
        Ok(StagedChunk { key, rows: table.num_rows() as u64, index_range, metadata: metadata.map(<[u8]>::to_vec) })
    }

    /// The chunks staged for `symbol` and not yet finalized or deleted, oldest first.
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol name; storage errors.
    pub fn staged_chunks(&self, symbol: &str) -> Result<Vec<StagedChunk>> {
        let mut chunks = Vec::new();
        for key in self.staged_keys(symbol)? {
            let index = match self.staged_index(&key) {
                Ok(i) => i,
                Err(e) if e.kind() == ErrorKind::NotFound => continue, // finalized or deleted meanwhile
                Err(e) => return Err(e),
            };
            let rows = index.descriptor.total_rows;
            let index_range = (rows > 0).then(|| (key.start(), key.end()));
            chunks.push(StagedChunk { key, rows, index_range, metadata: index.descriptor.user_metadata });
        }
        chunks.sort_by_key(|c| (c.key.creation_ts(), c.key.clone()));
        Ok(chunks)
    }

    /// The symbols with staged chunks, sorted.
    ///
    /// # Errors
    /// Storage errors.
    pub fn staged_symbols(&self) -> Result<Vec<String>> {
        let mut symbols = std::collections::BTreeSet::new();
        for key in self.storage().list(KeyType::StagedIndex, ListScope::All) {
            if let Key::Atom(k) = key? {
                symbols.insert(k.symbol().to_owned());
            }
        }
        Ok(symbols.into_iter().collect())
    }

    /// Forgets the staged chunks of `symbol` (all, or the `only` ones): their staged indexes are deleted,
    /// and their data segments, now unreachable, are left for [`Library::vacuum`] to remove (deleting
    /// them here could race a finalize of the same chunks that has just committed them). Returns how
    /// many chunks were forgotten.
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol name or a key that is not a staged chunk of `symbol`; storage
    /// errors.
    pub fn delete_staged(&self, symbol: &str, only: Option<&[AtomKey]>) -> Result<usize> {
        let keys = self.chosen_chunks(symbol, only)?;
        self.storage().delete_batch(&keys).map_err(|e| Error::from(e).context(format!("delete staged {symbol:?}")))?;
        Ok(keys.len())
    }

    /// Commits the staged chunks of `symbol` (all of them, or the `only` ones) as one new version, in
    /// index order, naming the chunks' segments as they are (nothing is rewritten), then forgets those
    /// chunks. With [`FinalizeMode::Write`] the chunks replace the symbol's rows; with
    /// [`FinalizeMode::Append`] they follow them. The version's metadata is `metadata`, or the first
    /// chunk's when `None`.
    ///
    /// Chunks whose segments the symbol's newest version already names (a finalize that committed and
    /// then failed before forgetting them) are forgotten, not committed twice.
    ///
    /// # Errors
    /// `NotFound` when there is nothing staged (or a chosen key is gone); `InvalidInput` with
    /// `SchemaMismatch` for chunks whose schemas differ (from each other, or in append mode from the
    /// symbol's), with `UnsortedIndex` for chunks that overlap in time or, appending, start before the
    /// symbol's last timestamp; `CorruptData` for a damaged staged index; storage errors.
    pub fn finalize_staged(
        &self,
        symbol: &str,
        mode: FinalizeMode,
        metadata: Option<&[u8]>,
        only: Option<&[AtomKey]>,
    ) -> Result<VersionedItem> {
        let (keys, mut todo) = self.chunks_to_finalize(symbol, only)?;
        todo.sort_by_key(|(k, _)| (k.start(), k.end(), k.creation_ts(), k.clone()));
        check_chunks(symbol, &todo)?;
        let (schema, index_kind) = (std::sync::Arc::clone(&todo[0].1.schema), todo[0].1.descriptor.index.clone());
        let mut already_committed = false;
        let committed = self.commit(symbol, |h| {
            already_committed = false;
            let live = match head::live_record(&**self.storage(), symbol, h)? {
                Some(rec) => {
                    let old = self.cached_index(&rec.index_key)?;
                    Some((rec, old))
                }
                None => None,
            };
            // A chunk whose segments the newest version names was committed by another finalize (or by
            // one that failed before forgetting it): never commit it twice.
            let named: HashSet<&AtomKey> =
                live.iter().flat_map(|(_, old)| old.entries.iter().map(|e| &e.key)).collect();
            let pending: Vec<&Chunk> =
                todo.iter().filter(|(_, c)| !c.entries.iter().all(|e| named.contains(&e.key))).collect();
            let Some((first_key, first)) = pending.first() else {
                already_committed = true;
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("symbol {symbol:?}: its staged data was already finalized"),
                ));
            };
            // Chunks deleted meanwhile (`delete_staged`) must not be committed: a vacuum may already be
            // removing their segments. Checked on every attempt, just before the commit.
            for (key, _) in &pending {
                if !self.storage().exists(key)? {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!("finalize {symbol:?}: staged chunk {key} was deleted while being finalized"),
                    ));
                }
            }
            let (mut entries, mut base, operation) = match (mode, &live) {
                (FinalizeMode::Append, Some((rec, old))) => {
                    crate::library::check_same_index(symbol, &old.descriptor.index, &index_kind)?;
                    if let Some(diff) = table::schema_difference(&old.schema, &schema) {
                        return Err(Error::with_detail(
                            ErrorKind::InvalidInput,
                            Detail::SchemaMismatch,
                            format!("finalize {symbol:?}: the staged data does not match the symbol's schema: {diff}"),
                        ));
                    }
                    crate::library::check_append_start(symbol, rec, first_key.start())?;
                    (old.entries.clone(), rec.row_count, Operation::Append)
                }
                _ => (Vec::new(), 0, Operation::Write),
            };
            for (_, chunk) in &pending {
                entries.extend(chunk.entries.iter().map(|e| IndexEntry {
                    row_start: e.row_start + base,
                    row_end: e.row_end + base,
                    ..e.clone()
                }));
                base += chunk.descriptor.total_rows;
            }
            let metadata = metadata.map(<[u8]>::to_vec).or_else(|| first.descriptor.user_metadata.clone());
            let next = h.map_or(0, |h| h.latest() + 1);
            let rows = write::Written { entries, deferred: Vec::new() };
            let nv = self.finish_index(symbol, next, operation, &schema, &index_kind, rows, metadata.as_deref())?;
            Ok(Change::Append(nv))
        });
        match committed {
            // Committed (by this call or, already, by another): the chunks are forgotten only now.
            Ok(head) => {
                let head = head.ok_or_else(|| Error::internal("finalize committed nothing"))?;
                self.forget(symbol, keys)?;
                Ok(crate::library::item(symbol, &head.record))
            }
            Err(e) if already_committed => {
                self.forget(symbol, keys)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Like [`Library::finalize_staged`], but for chunks that may overlap or come in any order: their
    /// rows are read, merged in timestamp order (rows with equal timestamps keep their chunks' order,
    /// oldest chunk first) and written as a new version ([`FinalizeMode::Write`]) or appended, then
    /// the chunks are forgotten. The data is rewritten and held in memory whole while it is sorted.
    ///
    /// Unlike `finalize_staged`, a crash between the commit and forgetting the chunks leaves them
    /// staged, and finalizing them again would add their rows twice.
    ///
    /// # Errors
    /// As [`Library::finalize_staged`], except that overlaps are not errors; as [`Library::write`] or
    /// [`Library::append`] for the merged rows.
    pub fn sort_and_finalize_staged(
        &self,
        symbol: &str,
        mode: FinalizeMode,
        metadata: Option<&[u8]>,
        only: Option<&[AtomKey]>,
    ) -> Result<VersionedItem> {
        let (keys, mut chunks) = self.chunks_to_finalize(symbol, only)?;
        let first = &chunks[0].1;
        let (schema, index_kind) = (std::sync::Arc::clone(&first.schema), first.descriptor.index.clone());
        for (k, c) in &chunks[1..] {
            if let Some(diff) = table::schema_difference(&schema, &c.schema) {
                return Err(Error::with_detail(
                    ErrorKind::InvalidInput,
                    Detail::SchemaMismatch,
                    format!("finalize {symbol:?}: staged chunk {k} differs from the first: {diff}"),
                ));
            }
        }
        let metadata = metadata.map(<[u8]>::to_vec).or_else(|| first.descriptor.user_metadata.clone());
        chunks.sort_by_key(|(k, _)| (k.creation_ts(), k.clone()));
        let columns: Vec<usize> = (0..schema.fields().len()).collect();
        let mut batches = Vec::with_capacity(chunks.len());
        for (k, chunk) in &chunks {
            let slices = chunk.row_slices();
            let batch = crate::pipeline::read::read_slices(&**self.storage(), self.layouts(), chunk, &slices, &columns)
                .map_err(|e| e.context(format!("staged chunk {k}")))?;
            batches.push(batch);
        }
        let merged = arrow_select::concat::concat_batches(&schema, &batches)?;
        drop(batches);
        let sorted = sort_by_index(merged, &index_kind)?;
        let table = Table::from_batch(sorted, index_kind)?;
        let item = match mode {
            FinalizeMode::Write => self.write(symbol, &table, metadata.as_deref())?,
            FinalizeMode::Append => self.append(symbol, &table, metadata.as_deref())?,
        };
        self.forget(symbol, keys)?;
        Ok(item)
    }

    /// The chosen chunks' keys (empty ones included, to be forgotten too) and the decoded chunks that
    /// hold rows (at least one).
    ///
    /// # Errors
    /// `NotFound` when nothing is staged; `InvalidInput` when no chosen chunk holds rows; as
    /// [`Library::staged_chunks`].
    fn chunks_to_finalize(&self, symbol: &str, only: Option<&[AtomKey]>) -> Result<(Vec<AtomKey>, Vec<Chunk>)> {
        let keys = self.chosen_chunks(symbol, only)?;
        let mut chunks = Vec::with_capacity(keys.len());
        let mut found = 0;
        for k in &keys {
            let chunk = match self.staged_index(k) {
                Ok(c) => c,
                // Listed, then finalized or deleted by another call: not ours to finalize. A chosen
                // chunk that is gone is an error.
                Err(e) if e.kind() == ErrorKind::NotFound && only.is_none() => continue,
                Err(e) => return Err(e),
            };
            found += 1;
            if chunk.descriptor.total_rows > 0 {
                chunks.push((k.clone(), chunk));
            }
        }
        if found == 0 {
            return Err(Error::new(ErrorKind::NotFound, format!("symbol {symbol:?} has no staged data to finalize")));
        }
        if chunks.is_empty() {
            return Err(Error::invalid(format!("finalize {symbol:?}: the staged chunks hold no rows")));
        }
        Ok((keys, chunks))
    }

    /// The staged index keys `only` names (checked to be `symbol`'s staged chunks), or every listed one.
    fn chosen_chunks(&self, symbol: &str, only: Option<&[AtomKey]>) -> Result<Vec<AtomKey>> {
        floe_formats::names::validate_symbol(symbol)?;
        match only {
            Some(keys) => {
                for k in keys {
                    if k.key_type() != KeyType::StagedIndex || k.symbol() != symbol {
                        return Err(Error::invalid(format!("{k} is not a staged chunk of symbol {symbol:?}")));
                    }
                }
                let mut keys = keys.to_vec();
                keys.sort();
                keys.dedup();
                Ok(keys)
            }
            None => self.staged_keys(symbol),
        }
    }

    /// The keys of `symbol`'s staged indexes, as listed (nothing fetched).
    fn staged_keys(&self, symbol: &str) -> Result<Vec<AtomKey>> {
        floe_formats::names::validate_symbol(symbol)?;
        let mut keys = Vec::new();
        for key in self.storage().list(KeyType::StagedIndex, ListScope::Symbol(symbol)) {
            if let Key::Atom(k) = key? {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    /// A staged index, fetched, verified and decoded.
    pub(crate) fn staged_index(&self, key: &AtomKey) -> Result<TableIndex> {
        let bytes = self.storage().get(key).map_err(|e| Error::from(e).context(format!("staged chunk {key}")))?;
        verify_object(key, &bytes)?;
        TableIndex::decode(&bytes).map_err(|e| e.context(format!("staged chunk {key}")))
    }

    /// Deletes staged indexes (their chunks are committed or abandoned).
    fn forget(&self, symbol: &str, keys: Vec<AtomKey>) -> Result<()> {
        self.storage()
            .delete_batch(&keys)
            .map_err(|e| Error::from(e).context(format!("forgetting the staged chunks of {symbol:?}")))
    }
}

/// Checks chunks sorted by start time: one schema, and no two overlapping in time (equal timestamps at
/// a boundary are allowed, as within a sorted index).
fn check_chunks(symbol: &str, chunks: &[Chunk]) -> Result<()> {
    for pair in chunks.windows(2) {
        let ((ka, a), (kb, b)) = (&pair[0], &pair[1]);
        if let Some(diff) = table::schema_difference(&a.schema, &b.schema) {
            return Err(Error::with_detail(
                ErrorKind::InvalidInput,
                Detail::SchemaMismatch,
                format!("finalize {symbol:?}: staged chunks {ka} and {kb} differ: {diff}"),
            ));
        }
        if ka.end() > kb.start() {
            return Err(Error::with_detail(
                ErrorKind::InvalidInput,
                Detail::UnsortedIndex,
                format!(
                    "finalize {symbol:?}: staged chunks {ka} (to {}) and {kb} (from {}) overlap in time",
                    ka.end(),
                    kb.start()
                ),
            ));
        }
    }
    Ok(())
}

/// `batch`'s rows in timestamp order; rows with equal timestamps keep their order (a stable sort).
fn sort_by_index(batch: arrow_array::RecordBatch, index: &IndexKind) -> Result<arrow_array::RecordBatch> {
    let IndexKind::Timestamp(name) = index else {
        return Err(Error::internal("staged chunks without a timestamp index"));
    };
    let column = batch
        .schema()
        .index_of(name)
        .map_err(|_| Error::corrupt(format!("staged chunks lack their index {name:?}")))?;
    let stamps = table::timestamps(batch.column(column))?;
    let rows = u32::try_from(stamps.len()).map_err(|_| Error::invalid("more than 2^32 staged rows to sort at once"))?;
    let mut order: Vec<u32> = (0..rows).collect();
    order.sort_by_key(|&i| stamps.value(i as usize));
    if order.iter().enumerate().all(|(i, &o)| i as u32 == o) {
        return Ok(batch);
    }
    let indices = arrow_array::UInt32Array::from(order);
    Ok(arrow_select::take::take_record_batch(&batch, &indices)?)
}
