//! Arrow in and out, and the small argument types the Python layer passes (`as_of`, ranges).
//!
//! In: any Arrow PyCapsule producer (`__arrow_c_stream__` or `__arrow_c_array__`) is imported without
//! copying. Field nullability and schema metadata are normalized (every field nullable, no metadata) so
//! that the same data from pandas, pyarrow or polars has the same schema, and the codec is asked up front
//! whether it can store every column, so an unsupported type fails before anything is written.
//!
//! Out: a read's record batch is handed over as a [`crate::read_table::ReadTable`] (a `__arrow_c_stream__` producer, and a
//! C struct array the Python layer imports against a pyarrow schema it keeps); the consumer (pyarrow,
//! polars) takes ownership of the batch's buffers through the C data interface's release callbacks,
//! so the data outlives the library and store handles that produced it.

use std::sync::Arc;

use arrow_array::{Array, RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, Schema, SchemaRef};
use floe_engine::{AsOf, Error, IndexKind, ReadRequest, Table, VersionedItem};
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;

/// Imports `data` (holding the GIL: a stream may be implemented in Python) into record batches.
pub fn import_batches(data: AnyRecordBatch) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("reading the input's Arrow stream failed: {e}"))
    })?;
    Ok((schema, batches))
}

/// Builds the engine's [`Table`]: normalizes the schema, checks every column's type against the codec
/// and validates the index. Runs without the GIL (the index check reads every timestamp).
///
/// # Errors
/// `InvalidInput` naming the column for an unsupported type, a missing or unsorted index...
pub fn make_table(schema: &SchemaRef, batches: Vec<RecordBatch>, index: Option<&str>) -> Result<Table, Error> {
    let normalized = normalized_schema(schema);
    let batches = batches.into_iter().map(|b| conform(&normalized, &b)).collect::<Result<Vec<_>, _>>()?;
    // The codec's own rule decides which types are storable.
    floe_formats::check_schema(&normalized)?;
    Table::new(normalized, batches, index_kind(index))
}

/// The schema of input of `schema` as handed to the engine: the same names and types, every field
/// nullable, and no field or schema metadata except the mark of a string column given as codes
/// (`floe_formats::CODES_METADATA_KEY`: stored as the plain string column, decision D28).
pub fn normalized_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let plain = Field::new(f.name(), f.data_type().clone(), true);
                match f.metadata().get(floe_formats::CODES_METADATA_KEY) {
                    Some(mark) if floe_formats::is_coded_strings(f) => plain.with_metadata(
                        [(floe_formats::CODES_METADATA_KEY.to_owned(), mark.clone())].into_iter().collect(),
                    ),
                    _ => plain,
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// `batch`'s columns under `normalized` (from [`normalized_schema`] of the batch's own schema).
///
/// # Errors
/// `InvalidInput` if the columns do not fit it (input whose batches change schema).
pub fn conform(normalized: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, Error> {
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(normalized), batch.columns().to_vec(), &options)
        .map_err(|e| Error::invalid(format!("a batch does not match the input's schema: {e}")))
}

/// The index of a write: a timestamp column's name, or row numbers.
pub fn index_kind(index: Option<&str>) -> IndexKind {
    match index {
        Some(name) => IndexKind::Timestamp(name.to_owned()),
        None => IndexKind::RowCount,
    }
}

/// The addresses of the value buffers of each column of `batch` (the last buffer of each array: the
/// values of a primitive array, the character data of a string array), for the zero-copy test.
pub fn buffer_addresses(batch: &RecordBatch) -> Vec<usize> {
    batch.columns().iter().filter_map(|c| c.to_data().buffers().last().map(|b| b.as_ptr() as usize)).collect()
}

/// `as_of` from the Python layer: `None`, or `("version", int)`, `("snapshot", str)`,
/// `("timestamp", int ns)`.
pub fn as_of(value: Option<(String, Bound<'_, PyAny>)>) -> PyResult<AsOf> {
    let Some((kind, value)) = value else { return Ok(AsOf::Latest) };
    Ok(match kind.as_str() {
        "version" => AsOf::Version(value.extract()?),
        "snapshot" => AsOf::Snapshot(value.extract()?),
        "timestamp" => AsOf::Timestamp(value.extract()?),
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown as_of kind {other:?}")));
        }
    })
}

/// The read arguments the Python layer passes, as one tuple per request.
pub type ReadArgs<'py> =
    (Option<(String, Bound<'py, PyAny>)>, Option<(Option<i64>, Option<i64>)>, Option<(i64, i64)>, Option<Vec<String>>);

/// A [`ReadRequest`] from [`ReadArgs`].
pub fn read_request(args: ReadArgs<'_>) -> PyResult<ReadRequest> {
    let (as_of_arg, date_range, row_range, columns) = args;
    Ok(ReadRequest {
        as_of: as_of(as_of_arg)?,
        date_range,
        row_range,
        columns,
        strings_as_codes: false,
        column_blocks: false,
        strings_as_views: false,
    })
}

/// `(symbol, version, timestamp_ns)`.
pub type ItemTuple = (String, u64, i64);

/// A [`VersionedItem`] as the tuple the Python layer turns into `floe.VersionedItem`.
pub fn item_tuple(item: &VersionedItem) -> ItemTuple {
    (item.symbol.clone(), item.version, item.timestamp_ns)
}
