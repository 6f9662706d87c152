//! Storing rows for a new version: laying a table out in a symbol's schema, slicing and encoding
//! it into segments, and writing the index segment that names them.

use std::sync::Arc;

use arrow_schema::SchemaRef;
use bytes::Bytes;
use floe_formats::record::{IndexKind, Operation, TableDescriptor};
use floe_formats::{AtomFields, AtomKey, KeyType};

use crate::deferred::Deferred;
use crate::error::Result;
use crate::head::NewVersion;
use crate::index::{IndexEntry, TableIndex};
use crate::pipeline::write;
use crate::table::{self, Table};

use super::{Library, check_same_index, check_same_layout, segment_keys};

impl Library {
    /// The schema after adding `table`'s rows to version `old`, and `table` laid out in it: under static
    /// schema the schemas must be equal; under dynamic schema they are merged (`table::merge_schema`).
    pub(super) fn conform(&self, symbol: &str, old: &TableIndex, table: &Table) -> Result<(SchemaRef, Table)> {
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
    pub(super) fn store_rows(
        &self,
        job: write::SliceJob<'_>,
        table: &Table,
        rows_per_segment: usize,
    ) -> Result<write::Written> {
        let slices = table.row_slices(rows_per_segment)?;
        write::write_segments(&self.storage, &self.pipeline, job, slices)
    }

    /// The slicing job of `table`'s rows, numbered from `row_base`.
    pub(super) fn slice_job<'a>(
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

    pub(super) fn write_index(
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
    /// ([`SchemaBytesMemo`](crate::index::SchemaBytesMemo), shared by clones of this handle).
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
}
