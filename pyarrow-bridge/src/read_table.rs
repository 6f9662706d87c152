//! A read's table on its way to pyarrow, importable without importing its schema again (D62).
//!
//! pyarrow's import of a C stream parses the schema's format strings and builds its fields on every
//! read, which is a quarter of a small read's cost with cold caches. Each distinct schema this process
//! hands out gets an id, never reused for another schema; the Python layer keeps the pyarrow schema
//! it imported for an id and imports only the batch's array against it
//! (`pa.RecordBatch._import_from_c(address, schema)`). Anything else (polars, `pa.table(obj)`) uses
//! `__arrow_c_stream__` as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::ffi::FFI_ArrowArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StructArray};
use arrow_schema::{Field, SchemaRef};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use pyo3_arrow::error::PyArrowResult;
use pyo3_arrow::ffi::{ArrayIterator, to_schema_pycapsule, to_stream_pycapsule};

/// The ids given to distinct schemas. Cleared when it holds [`MAX_SCHEMAS`] (a process reading
/// ever-new schemas); ids keep counting up, so an id names one schema for the life of the process.
struct SchemaIds {
    ids: HashMap<SchemaRef, u64>,
    next: u64,
}

/// At most this many schemas keep their ids between reads.
const MAX_SCHEMAS: usize = 1024;

fn schema_id(schema: &SchemaRef) -> u64 {
    static IDS: OnceLock<Mutex<SchemaIds>> = OnceLock::new();
    let ids = IDS.get_or_init(|| Mutex::new(SchemaIds { ids: HashMap::new(), next: 1 }));
    // A panic elsewhere while holding the lock leaves the map consistent (inserts are single calls).
    let mut ids = ids.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&id) = ids.ids.get(schema) {
        return id;
    }
    if ids.ids.len() >= MAX_SCHEMAS {
        ids.ids.clear();
    }
    let id = ids.next;
    ids.next += 1;
    ids.ids.insert(Arc::clone(schema), id);
    id
}

/// One read's record batch, for the Python layer: `schema_id`, `__arrow_c_schema__` (the schema, for
/// an id not seen before), `array_address()` (the batch as a C struct array for pyarrow to take over)
/// and `__arrow_c_stream__` (the whole table, for any other consumer).
#[pyclass(frozen, module = "floe._floe")]
pub struct ReadTable {
    batch: RecordBatch,
    id: u64,
    /// Arrays exported by `array_address`, kept until this object goes: the consumer moves each out
    /// (its `release` becomes null, so dropping it here frees nothing of the consumer's). Boxed: an
    /// address handed out must not move when the list grows.
    #[allow(clippy::vec_box)]
    exported: Mutex<Vec<Box<FFI_ArrowArray>>>,
}

impl ReadTable {
    /// The table of `batch`.
    pub fn new(batch: RecordBatch) -> Self {
        let id = schema_id(batch.schema_ref());
        ReadTable { batch, id, exported: Mutex::new(Vec::new()) }
    }
}

#[pymethods]
impl ReadTable {
    /// The id of this table's schema: the same id always names the same schema in this process.
    #[getter]
    pub fn schema_id(&self) -> u64 {
        self.id
    }

    /// The address of a C `ArrowArray` holding the batch as a struct array (the schema's fields as its
    /// children), which the caller must import (move) before this object is dropped. A batch without
    /// columns has no struct form that keeps its row count: `None`, and the caller uses the stream.
    pub fn array_address(&self) -> Option<usize> {
        if self.batch.num_columns() == 0 {
            return None;
        }
        let array = StructArray::from(self.batch.clone());
        let exported = Box::new(FFI_ArrowArray::new(&array.to_data()));
        let address = std::ptr::from_ref::<FFI_ArrowArray>(&exported) as usize;
        // The box's heap address stays put when the box itself moves into the list.
        self.exported.lock().unwrap_or_else(|p| p.into_inner()).push(exported);
        Some(address)
    }

    /// The schema, as an Arrow PyCapsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyArrowResult<Bound<'py, PyCapsule>> {
        to_schema_pycapsule(py, self.batch.schema_ref().as_ref())
    }

    /// The table as an Arrow C stream of one batch.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyArrowResult<Bound<'py, PyCapsule>> {
        let schema = self.batch.schema_ref();
        let field = Field::new_struct("", schema.fields().clone(), false).with_metadata(schema.metadata().clone());
        let array: ArrayRef = Arc::new(StructArray::from(self.batch.clone()));
        let arrays = Box::new(ArrayIterator::new(std::iter::once(Ok(array)), Arc::new(field)));
        to_stream_pycapsule(py, arrays, requested_schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    fn batch(names: &[&str]) -> RecordBatch {
        let fields: Vec<Field> = names.iter().map(|n| Field::new(*n, DataType::Float64, true)).collect();
        let columns = names.iter().map(|_| Arc::new(Float64Array::from(vec![1.0, 2.0])) as _).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("valid batch")
    }

    #[test]
    fn equal_schemas_share_an_id_and_different_ones_do_not() {
        let a = ReadTable::new(batch(&["x", "y"]));
        let b = ReadTable::new(batch(&["x", "y"]));
        let c = ReadTable::new(batch(&["x", "z"]));
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        let typed = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let d = RecordBatch::try_new(typed, vec![Arc::new(Int64Array::from(vec![1]))]).expect("valid batch");
        assert_ne!(ReadTable::new(d).id, ReadTable::new(batch(&["x"])).id);
    }

    #[test]
    fn an_exported_array_is_released_with_the_table_unless_taken() {
        let t = ReadTable::new(batch(&["x"]));
        let address = t.array_address().expect("a batch with columns");
        {
            let exported = t.exported.lock().expect("not poisoned");
            let kept = exported.last().expect("the export is kept");
            assert_eq!(std::ptr::from_ref::<FFI_ArrowArray>(kept) as usize, address);
            assert_eq!((kept.len(), kept.num_children()), (2, 1));
        }
        drop(t); // releases the export nobody took
        let empty = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(3)),
        )
        .expect("valid batch");
        assert_eq!(ReadTable::new(empty).array_address(), None);
    }
}
