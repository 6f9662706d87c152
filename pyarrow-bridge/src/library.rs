//! `floe._floe.Library` and `floe._floe.ReadStream`: the engine's [`Library`] behind Python handles.
//!
//! Arguments arrive already normalized by the Python layer (Arrow producers, metadata as bytes, `as_of`
//! as a tagged tuple); results go back as tuples and Arrow producers that `floe/_library.py` turns into
//! ArcticDB's result types. Every engine call runs inside `py.detach`, so other Python threads run
//! meanwhile; batch calls return the exception object of a failed item in its slot instead of raising.

use std::collections::BTreeMap;
use std::sync::Mutex;

use floe_engine::deferred::Deferred;
use floe_engine::{Error, FinalizeMode, IndexKind, Library, ReadResult, ReadStream, StagedChunk, Table, VersionedItem};
use floe_formats::{AtomKey, Key};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PyRecordBatch, PySchema};

use crate::convert::{self, ItemTuple, ReadArgs};
use crate::deferred::NumpyBlocks;
use crate::dense::BorrowedBlock;
use crate::errors::to_py;
use crate::owned::{self, OwnedBlocks, OwnedColumns};
use crate::read_table::ReadTable;

/// A compaction outline for Python: `(version, next_version, rows per slice now, rows per slice after)`.
type OutlineTuple = (u64, Option<u64>, Vec<u64>, Vec<u64>);

/// A library handle. Cheap to share between threads: the engine's [`Library`] is `Sync`.
#[pyclass(name = "Library", module = "floe._floe", frozen)]
pub struct PyLibrary {
    inner: Library,
}

impl PyLibrary {
    /// Wraps an engine library.
    pub fn new(inner: Library) -> Self {
        PyLibrary { inner }
    }
}

/// A read's table for Python: its schema id, the address of its batch exported as a C struct array
/// (None without columns) and the [`ReadTable`] keeping that export alive (see `crate::read_table`).
type TableTuple = (u64, Option<usize>, ReadTable);

/// `(item, data, user metadata)` of one read.
type ReadTuple = (ItemTuple, TableTuple, Option<Py<PyBytes>>);

/// One valid item of a batch write, as the engine takes it.
type BatchItem = (String, Table, Option<Vec<u8>>);

/// Test hooks of a read: value-buffer addresses, and the engine call's `(start, end)` in ns.
type Debug = (Vec<usize>, (i64, i64));

fn now_ns() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// One write or append of a batch call: `(symbol, data, index column, metadata)`.
type WriteItem = (String, AnyRecordBatch, Option<String>, Option<Vec<u8>>);

/// What `Library.list_versions` returns: the versions column by column (see there).
type VersionColumns<'py> =
    (Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyArray1<i64>>, Bound<'py, PyList>, Bound<'py, PyList>);

/// A staged chunk for Python: its token (the staged index key in binary form), rows, index range and
/// metadata.
type ChunkTuple = (Py<PyBytes>, u64, Option<(i64, i64)>, Option<Py<PyBytes>>);

/// Staged chunk tokens back to keys.
fn staged_keys(tokens: Option<Vec<Vec<u8>>>) -> Result<Option<Vec<AtomKey>>, Error> {
    let Some(tokens) = tokens else { return Ok(None) };
    tokens
        .iter()
        .map(|t| match Key::from_binary(t) {
            Ok(Key::Atom(k)) => Ok(k),
            _ => Err(Error::invalid("a stage result token that is not one this library handed out")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn bytes_of(b: Option<&Bound<'_, PyBytes>>) -> Option<Vec<u8>> {
    b.map(|b| b.as_bytes().to_vec())
}

fn py_bytes(py: Python<'_>, b: Option<Vec<u8>>) -> Option<Py<PyBytes>> {
    b.map(|b| PyBytes::new(py, &b).unbind())
}

fn read_tuple(py: Python<'_>, r: ReadResult) -> PyResult<ReadTuple> {
    let table = ReadTable::new(r.data);
    // Exported here rather than by a second call from Python: a small read's fixed costs (D62).
    let exported = (table.schema_id(), table.array_address(), table);
    Ok((convert::item_tuple(&r.item), exported, py_bytes(py, r.metadata)))
}

/// The per-item slot of a batch result: the value, or the exception object (not raised).
fn slot<T>(
    py: Python<'_>,
    r: Result<T, Error>,
    symbol: &str,
    op: &str,
    ok: impl FnOnce(T) -> PyResult<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    match r {
        Ok(v) => ok(v),
        Err(e) => Ok(to_py(py, &e, &format!("{op} {symbol:?}")).into_value(py).into_any()),
    }
}

#[pymethods]
impl PyLibrary {
    /// The library's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// `(rows_per_segment, columns_per_segment, dynamic_schema)`.
    fn options(&self) -> (usize, usize, bool) {
        let o = self.inner.options();
        (o.rows_per_segment, o.columns_per_segment, o.dynamic_schema)
    }

    // ----- writes -------------------------------------------------------------------------------

    /// Writes `data`. `deferred`: `(block, positions)` pairs, each a 2D numpy block (viewed as unsigned
    /// integers of its element width) whose rows are the columns at schema `positions`, which `data`
    /// holds as stand-ins: each segment's share of them is copied as it is encoded (D49).
    #[pyo3(signature = (symbol, data, index, metadata, prune, deferred=None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        symbol: &str,
        data: AnyRecordBatch,
        index: Option<&str>,
        metadata: Option<&Bound<'_, PyBytes>>,
        prune: bool,
        deferred: Option<Vec<(Bound<'_, PyAny>, Vec<usize>)>>,
    ) -> PyResult<ItemTuple> {
        let ctx = format!("write {symbol:?}");
        let (schema, batches) = convert::import_batches(data)?;
        let metadata = bytes_of(metadata);
        let borrowed = deferred
            .unwrap_or_default()
            .iter()
            .map(|(block, positions)| Ok((BorrowedBlock::borrow(block, "a deferred block")?, positions.clone())))
            .collect::<PyResult<Vec<_>>>()?;
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let blocks = NumpyBlocks::new(&borrowed, &schema, rows)?;
        let plain = borrowed.is_empty();
        self.committed(py, &ctx, symbol, prune, || {
            let table = convert::make_table(&schema, batches, index)?;
            if plain {
                return self.inner.write(symbol, &table, metadata.as_deref());
            }
            let deferred = Deferred::new(&table, blocks.positions(), &blocks)?;
            self.inner.write_deferred(symbol, &table, &deferred, metadata.as_deref())
        })
    }

    /// Writes from an Arrow stream read as the engine has room for more (`Library::write_stream`): the
    /// GIL is released while the engine works and taken by the stream itself when it is implemented in
    /// Python (a generator converting pandas chunks), so the two overlap.
    #[pyo3(signature = (symbol, data, index, metadata, prune))]
    fn write_stream(
        &self,
        py: Python<'_>,
        symbol: &str,
        data: AnyRecordBatch,
        index: Option<&str>,
        metadata: Option<&Bound<'_, PyBytes>>,
        prune: bool,
    ) -> PyResult<ItemTuple> {
        let metadata = bytes_of(metadata);
        self.streamed(py, &format!("write {symbol:?}"), symbol, prune, data, |schema, batches| {
            self.inner.write_stream(symbol, schema, convert::index_kind(index), batches, metadata.as_deref())
        })
    }

    /// Appends from an Arrow stream read as the engine has room for more (`Library::append_stream`), as
    /// `write_stream` writes.
    #[pyo3(signature = (symbol, data, index, metadata, prune))]
    fn append_stream(
        &self,
        py: Python<'_>,
        symbol: &str,
        data: AnyRecordBatch,
        index: Option<&str>,
        metadata: Option<&Bound<'_, PyBytes>>,
        prune: bool,
    ) -> PyResult<ItemTuple> {
        let metadata = bytes_of(metadata);
        self.streamed(py, &format!("append {symbol:?}"), symbol, prune, data, |schema, batches| {
            self.inner.append_stream(symbol, schema, convert::index_kind(index), batches, metadata.as_deref())
        })
    }

    #[pyo3(signature = (symbol, data, index, metadata, prune))]
    fn append(
        &self,
        py: Python<'_>,
        symbol: &str,
        data: AnyRecordBatch,
        index: Option<&str>,
        metadata: Option<&Bound<'_, PyBytes>>,
        prune: bool,
    ) -> PyResult<ItemTuple> {
        let metadata = bytes_of(metadata);
        self.with_table(py, &format!("append {symbol:?}"), symbol, prune, (data, index), |table| {
            self.inner.append(symbol, table, metadata.as_deref())
        })
    }

    #[pyo3(signature = (symbol, data, index, date_range, metadata, prune))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        py: Python<'_>,
        symbol: &str,
        data: AnyRecordBatch,
        index: Option<&str>,
        date_range: Option<(i64, i64)>,
        metadata: Option<&Bound<'_, PyBytes>>,
        prune: bool,
    ) -> PyResult<ItemTuple> {
        let metadata = bytes_of(metadata);
        self.with_table(py, &format!("update {symbol:?}"), symbol, prune, (data, index), |table| {
            self.inner.update(symbol, table, date_range, metadata.as_deref())
        })
    }

    fn delete_data_in_range(
        &self,
        py: Python<'_>,
        symbol: &str,
        date_range: (i64, i64),
        prune: bool,
    ) -> PyResult<ItemTuple> {
        self.committed(py, &format!("delete_data_in_range {symbol:?}"), symbol, prune, || {
            self.inner.delete_data_in_range(symbol, date_range)
        })
    }

    fn write_metadata(
        &self,
        py: Python<'_>,
        symbol: &str,
        metadata: Option<&Bound<'_, PyBytes>>,
        prune: bool,
    ) -> PyResult<ItemTuple> {
        let metadata = bytes_of(metadata);
        self.committed(py, &format!("write_metadata {symbol:?}"), symbol, prune, || {
            self.inner.write_metadata(symbol, metadata.as_deref())
        })
    }

    /// Writes (or with `append`, appends) several symbols; one slot per item: an item tuple or the
    /// exception object. An item whose data is invalid fails alone; the others are still written.
    #[pyo3(signature = (items, append, prune))]
    fn write_batch(
        &self,
        py: Python<'_>,
        items: Vec<WriteItem>,
        append: bool,
        prune: bool,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let op = if append { "append" } else { "write" };
        let mut imported = Vec::with_capacity(items.len());
        for (symbol, data, index, metadata) in items {
            imported.push((symbol, convert::import_batches(data)?, index, metadata));
        }
        let symbols: Vec<String> = imported.iter().map(|i| i.0.clone()).collect();
        let results: Vec<Result<VersionedItem, Error>> = py.detach(|| {
            // Items whose data fails validation keep their error; the rest go to the engine together.
            let mut failed: Vec<Option<Error>> = Vec::new();
            let mut valid: Vec<BatchItem> = Vec::new();
            for (symbol, (schema, batches), index, metadata) in imported {
                match convert::make_table(&schema, batches, index.as_deref()) {
                    Ok(t) => {
                        failed.push(None);
                        valid.push((symbol, t, metadata));
                    }
                    Err(e) => failed.push(Some(e)),
                }
            }
            let done = if append { self.inner.append_batch(&valid) } else { self.inner.write_batch(&valid) };
            let mut done = done.into_iter().zip(valid.iter().map(|v| v.0.as_str()));
            failed
                .into_iter()
                .map(|f| match f {
                    Some(e) => Err(e),
                    None => {
                        let (r, symbol) = done.next().expect("one engine result per valid item");
                        r.and_then(|item| self.prune_if(symbol, prune, item))
                    }
                })
                .collect()
        });
        results
            .into_iter()
            .zip(symbols)
            .map(|(r, s)| slot(py, r, &s, op, |i| Ok(convert::item_tuple(&i).into_pyobject(py)?.into_any().unbind())))
            .collect()
    }

    // ----- reads --------------------------------------------------------------------------------

    /// Reads one version: `((item, table, metadata), debug, owned, blocks)`. With `debug`, also the value-buffer
    /// address of each column and the wall-clock span (ns since the epoch) of the engine call, measured
    /// on the thread that ran it without the GIL: the zero-copy and GIL-release tests use these. With
    /// `owned` (reads to pandas), the columns numpy can take over without a copy are left out of the
    /// table and come back as `(position, name, OwnedColumn)`, and columns of one type the engine
    /// decoded into one allocation as `(positions, names, OwnedBlock)` (see [`crate::owned`]). With
    /// `views` (reads to polars), dictionary-coded string columns come back as `Utf8View` arrays.
    /// With `codes`, dictionary-coded string columns come back as dictionary arrays marked as codes
    /// (reads asking for categorical strings).
    #[pyo3(signature = (symbol, args, debug=false, owned=false, views=false, codes=false))]
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        py: Python<'_>,
        symbol: &str,
        args: ReadArgs<'_>,
        debug: bool,
        owned: bool,
        views: bool,
        codes: bool,
    ) -> PyResult<(ReadTuple, Option<Debug>, OwnedColumns, OwnedBlocks)> {
        let mut request = convert::read_request(args)?;
        // A read for pandas takes same-typed columns as blocks (decision D20) and dictionary-coded
        // strings as codes: Python then makes one object per distinct value, not one per row, and no
        // Arrow string column sits beside the object column (`_convert._decode_codes`, decision D19).
        request.strings_as_codes = owned || codes;
        request.column_blocks = owned;
        // A read for polars takes them as string views, which polars keeps without a copy (D31).
        request.strings_as_views = views && !owned;
        let (r, span) = py.detach(|| {
            let start = now_ns();
            let r = self.inner.read(symbol, &request);
            (r, (start, now_ns()))
        });
        let r = r.map_err(|e| to_py(py, &e, &format!("read {symbol:?}")))?;
        let debug = debug.then(|| (convert::buffer_addresses(&r.data), span));
        if !owned {
            return Ok((read_tuple(py, r)?, debug, Vec::new(), Vec::new()));
        }
        let ReadResult { item, data, metadata, blocks } = r;
        let (data, blocks, left) = owned::take_blocks(data, blocks)?;
        let (rest, mut columns) = owned::split(data)?;
        // Positions in the whole read, not in what the blocks left.
        columns.iter_mut().for_each(|(pos, _, _)| *pos = left[*pos]);
        let tuple = read_tuple(py, ReadResult { item, data: rest, metadata, blocks: Vec::new() })?;
        Ok((tuple, debug, columns, blocks))
    }

    /// Reads several symbols; one slot per request: a read tuple or the exception object. `views`, if
    /// given, says per request whether dictionary-coded strings come as string views (reads to polars).
    #[pyo3(signature = (requests, views=None))]
    fn read_batch(
        &self,
        py: Python<'_>,
        requests: Vec<(String, ReadArgs<'_>)>,
        views: Option<Vec<bool>>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let mut parsed = Vec::with_capacity(requests.len());
        for (i, (symbol, args)) in requests.into_iter().enumerate() {
            let mut request = convert::read_request(args)?;
            request.strings_as_views = views.as_ref().and_then(|v| v.get(i).copied()).unwrap_or(false);
            parsed.push((symbol, request));
        }
        let results = py.detach(|| self.inner.read_batch(&parsed));
        results
            .into_iter()
            .zip(parsed)
            .map(|(r, (s, _))| {
                slot(py, r, &s, "read", |r| Ok(read_tuple(py, r)?.into_pyobject(py)?.into_any().unbind()))
            })
            .collect()
    }

    #[pyo3(signature = (symbol, n, as_of, columns))]
    fn head(
        &self,
        py: Python<'_>,
        symbol: &str,
        n: i64,
        as_of: Option<(String, Bound<'_, PyAny>)>,
        columns: Option<Vec<String>>,
    ) -> PyResult<ReadTuple> {
        let as_of = convert::as_of(as_of)?;
        let r = py
            .detach(|| self.inner.head(symbol, n, as_of, columns))
            .map_err(|e| to_py(py, &e, &format!("head {symbol:?}")))?;
        read_tuple(py, r)
    }

    #[pyo3(signature = (symbol, n, as_of, columns))]
    fn tail(
        &self,
        py: Python<'_>,
        symbol: &str,
        n: i64,
        as_of: Option<(String, Bound<'_, PyAny>)>,
        columns: Option<Vec<String>>,
    ) -> PyResult<ReadTuple> {
        let as_of = convert::as_of(as_of)?;
        let r = py
            .detach(|| self.inner.tail(symbol, n, as_of, columns))
            .map_err(|e| to_py(py, &e, &format!("tail {symbol:?}")))?;
        read_tuple(py, r)
    }

    /// A streaming read: batches of about one row slice each, fetched as they are iterated.
    fn read_stream(&self, py: Python<'_>, symbol: &str, args: ReadArgs<'_>) -> PyResult<PyReadStream> {
        let request = convert::read_request(args)?;
        let stream = py
            .detach(|| self.inner.read_stream(symbol, &request))
            .map_err(|e| to_py(py, &e, &format!("iter_batches {symbol:?}")))?;
        Ok(PyReadStream { symbol: symbol.to_owned(), inner: Mutex::new(stream) })
    }

    fn read_metadata(
        &self,
        py: Python<'_>,
        symbol: &str,
        as_of: Option<(String, Bound<'_, PyAny>)>,
    ) -> PyResult<(ItemTuple, Option<Py<PyBytes>>)> {
        let as_of = convert::as_of(as_of)?;
        let (item, meta) = py
            .detach(|| self.inner.read_metadata(symbol, &as_of))
            .map_err(|e| to_py(py, &e, &format!("read_metadata {symbol:?}")))?;
        Ok((convert::item_tuple(&item), py_bytes(py, meta)))
    }

    /// `(item, data segments verified, stored bytes verified)`: every object of a version checked
    /// against its checksums (`Library::verify`), on every core or on the calling thread.
    fn verify(
        &self,
        py: Python<'_>,
        symbol: &str,
        as_of: Option<(String, Bound<'_, PyAny>)>,
        parallel: bool,
    ) -> PyResult<(ItemTuple, usize, u64)> {
        let as_of = convert::as_of(as_of)?;
        let v = py
            .detach(|| self.inner.verify(symbol, &as_of, parallel))
            .map_err(|e| to_py(py, &e, &format!("verify {symbol:?}")))?;
        Ok((convert::item_tuple(&v.item), v.segments, v.bytes))
    }

    /// `(item, schema, index column or None, row count, index range or None, segment count, operation)`.
    #[allow(clippy::type_complexity)]
    fn get_description(
        &self,
        py: Python<'_>,
        symbol: &str,
        as_of: Option<(String, Bound<'_, PyAny>)>,
    ) -> PyResult<(ItemTuple, PySchema, Option<String>, u64, Option<(i64, i64)>, usize, String)> {
        let as_of = convert::as_of(as_of)?;
        let d = py
            .detach(|| self.inner.get_description(symbol, &as_of))
            .map_err(|e| to_py(py, &e, &format!("get_description {symbol:?}")))?;
        let index = match d.index {
            IndexKind::Timestamp(name) => Some(name),
            _ => None,
        };
        let operation = format!("{:?}", d.operation).to_lowercase();
        Ok((
            convert::item_tuple(&d.item),
            PySchema::new(d.schema),
            index,
            d.row_count,
            d.index_range,
            d.segment_count,
            operation,
        ))
    }

    // ----- symbols and versions -----------------------------------------------------------------

    fn list_symbols(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.list_symbols()).map_err(|e| to_py(py, &e, "list_symbols"))
    }

    fn has_symbol(&self, py: Python<'_>, symbol: &str, as_of: Option<(String, Bound<'_, PyAny>)>) -> PyResult<bool> {
        let as_of = convert::as_of(as_of)?;
        py.detach(|| self.inner.has_symbol(symbol, &as_of))
            .map_err(|e| to_py(py, &e, &format!("has_symbol {symbol:?}")))
    }

    /// `(symbols, versions, timestamps_ns, deleted, snapshots)`: the versions column by column, newest
    /// first per symbol. `timestamps_ns` is an int64 numpy array (converted to dates in one call, not
    /// one int object each); consecutive rows of one symbol share one string object; each row's
    /// snapshot list is its own (the caller hands them out).
    fn list_versions<'py>(&self, py: Python<'py>, symbol: Option<&str>) -> PyResult<VersionColumns<'py>> {
        let versions = py.detach(|| self.inner.list_versions(symbol)).map_err(|e| {
            to_py(py, &e, &symbol.map_or_else(|| "list_versions".to_owned(), |s| format!("list_versions {s:?}")))
        })?;
        let mut names: Vec<Bound<'py, PyString>> = Vec::with_capacity(versions.len());
        let mut previous: Option<(&str, Bound<'py, PyString>)> = None;
        for v in &versions {
            let name = match &previous {
                Some((symbol, name)) if *symbol == v.symbol => name.clone(),
                _ => PyString::new(py, &v.symbol),
            };
            previous = Some((&v.symbol, name.clone()));
            names.push(name);
        }
        Ok((
            PyList::new(py, names)?,
            PyList::new(py, versions.iter().map(|v| v.version))?,
            versions.iter().map(|v| v.timestamp_ns).collect::<Vec<i64>>().into_pyarray(py),
            PyList::new(py, versions.iter().map(|v| v.deleted))?,
            PyList::new(py, versions.into_iter().map(|v| v.snapshots))?,
        ))
    }

    fn delete(&self, py: Python<'_>, symbol: &str) -> PyResult<()> {
        py.detach(|| self.inner.delete(symbol)).map_err(|e| to_py(py, &e, &format!("delete {symbol:?}")))
    }

    fn delete_versions(&self, py: Python<'_>, symbol: &str, versions: Vec<u64>) -> PyResult<()> {
        py.detach(|| self.inner.delete_versions(symbol, &versions))
            .map_err(|e| to_py(py, &e, &format!("delete {symbol:?}")))
    }

    fn prune_previous_versions(&self, py: Python<'_>, symbol: &str) -> PyResult<()> {
        py.detach(|| self.inner.prune_previous_versions(symbol))
            .map_err(|e| to_py(py, &e, &format!("prune_previous_versions {symbol:?}")))
    }

    /// `(version, segments, compacted_segments, fragmented)` of the latest version of `symbol`
    /// (`Library::fragmentation`).
    #[pyo3(signature = (symbol, rows_per_segment))]
    fn fragmentation(
        &self,
        py: Python<'_>,
        symbol: &str,
        rows_per_segment: Option<usize>,
    ) -> PyResult<(u64, usize, usize, bool)> {
        py.detach(|| self.inner.fragmentation(symbol, rows_per_segment))
            .map(|f| (f.version, f.segments, f.compacted_segments, f.is_fragmented()))
            .map_err(|e| to_py(py, &e, &format!("is_symbol_fragmented {symbol:?}")))
    }

    /// `[(key type name, symbol or name, objects, bytes)]`: what the library stores (`Library::stored_sizes`);
    /// with `symbol`, that symbol's objects only.
    #[pyo3(signature = (symbol))]
    fn stored_sizes(&self, py: Python<'_>, symbol: Option<&str>) -> PyResult<Vec<(&'static str, String, u64, u64)>> {
        let what = symbol.map_or_else(|| "admin_tools sizes".to_owned(), |s| format!("admin_tools sizes of {s:?}"));
        py.detach(|| self.inner.stored_sizes(symbol))
            .map(|sizes| sizes.into_iter().map(|((t, name), s)| (t.name(), name, s.count, s.bytes)).collect())
            .map_err(|e| to_py(py, &e, &what))
    }

    /// `(version, next_version or None, rows per slice now, rows per slice after)`: what compacting the
    /// latest version of `symbol` would do (`Library::compaction_outline`).
    #[pyo3(signature = (symbol, rows_per_segment))]
    fn compaction_outline(
        &self,
        py: Python<'_>,
        symbol: &str,
        rows_per_segment: Option<usize>,
    ) -> PyResult<OutlineTuple> {
        py.detach(|| self.inner.compaction_outline(symbol, rows_per_segment))
            .map(|o| (o.version, o.next_version, o.slice_rows, o.compacted_slice_rows))
            .map_err(|e| to_py(py, &e, &format!("compact_data_explain_plan {symbol:?}")))
    }

    /// Compacts the latest version of `symbol` (`Library::compact`), then prunes older versions if asked.
    #[pyo3(signature = (symbol, rows_per_segment, prune))]
    fn compact(
        &self,
        py: Python<'_>,
        symbol: &str,
        rows_per_segment: Option<usize>,
        prune: bool,
    ) -> PyResult<ItemTuple> {
        self.committed(py, &format!("compact_data {symbol:?}"), symbol, prune, || {
            self.inner.compact(symbol, rows_per_segment)
        })
    }

    fn rename_symbol(&self, py: Python<'_>, from: &str, to: &str) -> PyResult<ItemTuple> {
        py.detach(|| self.inner.rename_symbol(from, to))
            .map(|i| convert::item_tuple(&i))
            .map_err(|e| to_py(py, &e, &format!("rename_symbol {from:?}")))
    }

    // ----- staged writes ------------------------------------------------------------------------

    /// Stores a chunk of rows for a later `finalize_staged` (`Library::stage`).
    #[pyo3(signature = (symbol, data, index, metadata))]
    fn stage(
        &self,
        py: Python<'_>,
        symbol: &str,
        data: AnyRecordBatch,
        index: Option<&str>,
        metadata: Option<&Bound<'_, PyBytes>>,
    ) -> PyResult<ChunkTuple> {
        let ctx = format!("stage {symbol:?}");
        let (schema, batches) = convert::import_batches(data)?;
        let metadata = bytes_of(metadata);
        let chunk = py
            .detach(|| {
                let table = convert::make_table(&schema, batches, index)?;
                self.inner.stage(symbol, &table, metadata.as_deref())
            })
            .map_err(|e| to_py(py, &e, &ctx))?;
        Ok(Self::chunk_tuple(py, chunk))
    }

    /// The chunks staged for `symbol`, oldest first.
    fn staged_chunks(&self, py: Python<'_>, symbol: &str) -> PyResult<Vec<ChunkTuple>> {
        let chunks = py
            .detach(|| self.inner.staged_chunks(symbol))
            .map_err(|e| to_py(py, &e, &format!("staged chunks of {symbol:?}")))?;
        Ok(chunks.into_iter().map(|c| Self::chunk_tuple(py, c)).collect())
    }

    fn staged_symbols(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.staged_symbols()).map_err(|e| to_py(py, &e, "get_staged_symbols"))
    }

    /// Forgets staged chunks (all, or those `tokens` name); returns how many.
    #[pyo3(signature = (symbol, tokens))]
    fn delete_staged(&self, py: Python<'_>, symbol: &str, tokens: Option<Vec<Vec<u8>>>) -> PyResult<usize> {
        let ctx = format!("delete_staged_data {symbol:?}");
        let keys = staged_keys(tokens).map_err(|e| to_py(py, &e, &ctx))?;
        py.detach(|| self.inner.delete_staged(symbol, keys.as_deref())).map_err(|e| to_py(py, &e, &ctx))
    }

    /// Commits staged chunks as one version (`Library::finalize_staged`, or with `sort`
    /// `Library::sort_and_finalize_staged`).
    #[pyo3(signature = (symbol, append, metadata, tokens, prune, sort))]
    #[allow(clippy::too_many_arguments)]
    fn finalize_staged(
        &self,
        py: Python<'_>,
        symbol: &str,
        append: bool,
        metadata: Option<&Bound<'_, PyBytes>>,
        tokens: Option<Vec<Vec<u8>>>,
        prune: bool,
        sort: bool,
    ) -> PyResult<ItemTuple> {
        let ctx = format!("finalize_staged_data {symbol:?}");
        let keys = staged_keys(tokens).map_err(|e| to_py(py, &e, &ctx))?;
        let metadata = bytes_of(metadata);
        let mode = if append { FinalizeMode::Append } else { FinalizeMode::Write };
        self.committed(py, &ctx, symbol, prune, || {
            if sort {
                return self.inner.sort_and_finalize_staged(symbol, mode, metadata.as_deref(), keys.as_deref());
            }
            self.inner.finalize_staged(symbol, mode, metadata.as_deref(), keys.as_deref())
        })
    }

    // ----- snapshots ----------------------------------------------------------------------------

    #[pyo3(signature = (name, metadata, symbols, versions))]
    fn snapshot(
        &self,
        py: Python<'_>,
        name: &str,
        metadata: Option<&Bound<'_, PyBytes>>,
        symbols: Option<Vec<String>>,
        versions: BTreeMap<String, u64>,
    ) -> PyResult<()> {
        let metadata = bytes_of(metadata);
        py.detach(|| self.inner.snapshot(name, metadata.as_deref(), symbols.as_deref(), &versions))
            .map_err(|e| to_py(py, &e, &format!("snapshot {name:?}")))
    }

    fn list_snapshots(&self, py: Python<'_>) -> PyResult<Vec<(String, Option<Py<PyBytes>>)>> {
        let snaps = py.detach(|| self.inner.list_snapshots()).map_err(|e| to_py(py, &e, "list_snapshots"))?;
        Ok(snaps.into_iter().map(|(n, m)| (n, py_bytes(py, m))).collect())
    }

    fn delete_snapshot(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach(|| self.inner.delete_snapshot(name)).map_err(|e| to_py(py, &e, &format!("delete_snapshot {name:?}")))
    }
}

impl PyLibrary {
    /// One staged chunk as Python sees it: (token, rows, index range, metadata).
    fn chunk_tuple(py: Python<'_>, c: StagedChunk) -> ChunkTuple {
        (PyBytes::new(py, &Key::Atom(c.key).to_binary()).unbind(), c.rows, c.index_range, py_bytes(py, c.metadata))
    }

    /// Runs `change` (an operation making a new version of `symbol`) without the GIL, then, if it
    /// succeeded and `prune` asks, prunes the versions before it: the new version as an item tuple, or
    /// the error as the Python exception for `ctx` (the operation and symbol, e.g. `append "s"`).
    fn committed(
        &self,
        py: Python<'_>,
        ctx: &str,
        symbol: &str,
        prune: bool,
        change: impl FnOnce() -> Result<VersionedItem, Error> + Send,
    ) -> PyResult<ItemTuple> {
        py.detach(|| self.prune_if(symbol, prune, change()?))
            .map(|i| convert::item_tuple(&i))
            .map_err(|e| to_py(py, &e, ctx))
    }

    /// `item`, a change of `symbol` just made, after pruning the versions before it if `prune` asks.
    fn prune_if(&self, symbol: &str, prune: bool, item: VersionedItem) -> Result<VersionedItem, Error> {
        if prune {
            self.inner.prune_previous_versions(symbol)?;
        }
        Ok(item)
    }

    /// [`committed`](Self::committed) for a change taking `input` (Arrow data and its index column)
    /// as the engine's table: imported holding the GIL (a stream may be Python code), then validated
    /// and made a table without it.
    fn with_table(
        &self,
        py: Python<'_>,
        ctx: &str,
        symbol: &str,
        prune: bool,
        input: (AnyRecordBatch, Option<&str>),
        change: impl FnOnce(&Table) -> Result<VersionedItem, Error> + Send,
    ) -> PyResult<ItemTuple> {
        let (data, index) = input;
        let (schema, batches) = convert::import_batches(data)?;
        self.committed(py, ctx, symbol, prune, || change(&convert::make_table(&schema, batches, index)?))
    }

    /// [`committed`](Self::committed) for a change taking the batches of the Arrow stream `data`, the
    /// stream read on its own thread one batch ahead, so a stream made in Python (which takes the GIL
    /// to convert its next chunk) works while the engine encodes and stores the last one. Dropping the
    /// receiver (the change failed) ends the thread after the batch it is making.
    fn streamed(
        &self,
        py: Python<'_>,
        ctx: &str,
        symbol: &str,
        prune: bool,
        data: AnyRecordBatch,
        change: impl FnOnce(
            arrow_schema::SchemaRef,
            &mut dyn Iterator<Item = Result<arrow_array::RecordBatch, Error>>,
        ) -> Result<VersionedItem, Error>
        + Send,
    ) -> PyResult<ItemTuple> {
        let reader = data.into_reader()?;
        let schema = convert::normalized_schema(&reader.schema());
        self.committed(py, ctx, symbol, prune, || {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            std::thread::scope(|scope| {
                scope.spawn(move || {
                    for b in reader {
                        if tx.send(b).is_err() {
                            break;
                        }
                    }
                });
                let mut batches = rx.into_iter().map(|b| {
                    let b = b.map_err(|e| Error::invalid(format!("reading the input stream failed: {e}")))?;
                    convert::conform(&schema, &b)
                });
                change(schema.clone(), &mut batches)
            })
        })
    }
}

/// The iterator `Library.iter_batches` wraps: each `__next__` fetches and decodes the next row slice
/// without the GIL.
#[pyclass(name = "ReadStream", module = "floe._floe", frozen)]
pub struct PyReadStream {
    symbol: String,
    inner: Mutex<ReadStream>,
}

#[pymethods]
impl PyReadStream {
    /// `(item, metadata)` of the version being read.
    fn info(&self, py: Python<'_>) -> PyResult<(ItemTuple, Option<Py<PyBytes>>)> {
        let s = self.inner.lock().map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("stream poisoned"))?;
        Ok((convert::item_tuple(s.item()), s.metadata().map(|m| PyBytes::new(py, m).unbind())))
    }

    /// The schema of the batches.
    fn schema(&self) -> PyResult<PySchema> {
        let s = self.inner.lock().map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("stream poisoned"))?;
        Ok(PySchema::new(s.schema()))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        let next = py.detach(|| match self.inner.lock() {
            Ok(mut s) => s.next(),
            Err(_) => Some(Err(Error::internal("a previous read of this stream panicked"))),
        });
        match next {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(PyRecordBatch::new(b))),
            Some(Err(e)) => Err(to_py(py, &e, &format!("iter_batches {:?}", self.symbol))),
        }
    }
}
