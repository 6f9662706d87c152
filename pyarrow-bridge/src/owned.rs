//! Columns handed to numpy without a copy, for reads to pandas.
//!
//! A read's output buffers are fresh allocations of the engine that nothing else references. For a
//! pandas read, the null-free fixed-width columns (integers, floats, naive nanosecond timestamps) are
//! taken out of the batch before it is exported and handed over as [`OwnedColumn`]s: each owns its
//! buffer and exposes it through numpy's `__array_interface__` as a *writable* array whose base keeps
//! the owner alive. pandas then wraps those arrays without copying them (one block per column), so a
//! read to pandas costs what a read to pyarrow costs for these columns, where `Table.to_pandas` copied
//! every byte into freshly allocated blocks (and pyarrow's own zero-copy arrays are read-only, which
//! pandas < 3 frames cannot be).
//!
//! A column whose buffer is shared, sliced, or neither allocated as a plain `Vec<u8>` nor one of the
//! engine's output mappings (`floe_engine::OwnedOutput`) stays in the batch
//! (the Python layer converts it as before); nothing here copies data, except null-free booleans,
//! which Arrow keeps as bits and numpy as bytes: they are unpacked here (`to_pandas` copies them too).
//!
//! Columns of one type that the engine decoded into one allocation (`floe_engine::ColumnBlock`) are
//! handed over together as an [`OwnedBlock`], a two-dimensional array pandas takes as one block.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, make_array};
use arrow_buffer::{BooleanBuffer, Buffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_engine::{ColumnBlock, OwnedOutput};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Memory owned outright: a `Vec` or one of the engine's output mappings.
#[allow(dead_code, reason = "held only to keep the memory alive, never read")]
enum Memory {
    Heap(Vec<u8>),
    Mapped(OwnedOutput),
}

impl Memory {
    /// Takes `buffer`'s memory if nothing else refers to it (see the module documentation); returns it
    /// with the address of its first byte, taken with mutable provenance.
    fn take(buffer: Buffer) -> Result<(Self, usize), Buffer> {
        match buffer.into_vec::<u8>() {
            Ok(mut vec) => {
                let address = vec.as_mut_ptr() as usize;
                Ok((Self::Heap(vec), address))
            }
            Err(buffer) => OwnedOutput::take(buffer).map(|o| {
                let address = o.address();
                (Self::Mapped(o), address)
            }),
        }
    }

    /// `(address, length)` of the memory.
    #[cfg(test)]
    fn span(&self) -> (usize, usize) {
        match self {
            Self::Heap(v) => (v.as_ptr() as usize, v.len()),
            Self::Mapped(o) => (o.address(), o.len()),
        }
    }
}

/// One column's values, owned, for numpy (`np.asarray(column)`).
///
/// Invariant: `address` is the start of `values`' memory, taken with mutable provenance when the
/// column was built; Rust never reads or writes the bytes afterwards (numpy may write them), and the
/// memory is only freed when the owner is dropped, which numpy's base reference delays until the
/// last array over them is gone.
#[pyclass(name = "OwnedColumn", module = "floe._floe", frozen)]
pub struct OwnedColumn {
    /// Keeps the bytes alive; never touched again.
    _values: Memory,
    address: usize,
    len: usize,
    typestr: &'static str,
}

#[pymethods]
impl OwnedColumn {
    /// numpy's array interface (version 3): a writable one-dimensional array over the values.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", (self.len,))?;
        d.set_item("typestr", self.typestr)?;
        d.set_item("data", (self.address, false))?;
        Ok(d)
    }
}

/// Columns of one type in one allocation, for numpy as a two-dimensional array of shape
/// `(columns, rows)` (C order: each column's values contiguous, columns one after another), which
/// pandas takes as one block (`pd.DataFrame(array.T, copy=False)`): a frame of 1,000 columns is then
/// built in microseconds instead of ~85 ms of per-column blocks or a copy through `to_pandas`.
///
/// Invariant: as [`OwnedColumn`]'s, for the whole allocation.
#[pyclass(name = "OwnedBlock", module = "floe._floe", frozen)]
pub struct OwnedBlock {
    /// Keeps the bytes alive; never touched again.
    _values: Memory,
    address: usize,
    columns: usize,
    rows: usize,
    typestr: &'static str,
}

#[pymethods]
impl OwnedBlock {
    /// numpy's array interface (version 3): a writable `(columns, rows)` array over the values.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", (self.columns, self.rows))?;
        d.set_item("typestr", self.typestr)?;
        d.set_item("data", (self.address, false))?;
        Ok(d)
    }
}

/// Blocks taken out of a batch: `(positions in the batch, names, block)`.
pub type OwnedBlocks = Vec<(Vec<usize>, Vec<String>, OwnedBlock)>;

/// Takes the engine's column blocks out of `batch` (those of a type numpy shares and of at least one
/// row), leaving the other columns in it, in order; also returns the positions in `batch` of the
/// columns left. A block whose allocation turns out to be shared stays in the batch as its columns.
///
/// # Errors
/// Only if the remaining columns do not form a batch, which cannot happen for columns of one batch.
pub fn take_blocks(batch: RecordBatch, blocks: Vec<ColumnBlock>) -> PyResult<(RecordBatch, OwnedBlocks, Vec<usize>)> {
    if blocks.is_empty() || batch.num_rows() == 0 {
        let all = (0..batch.num_columns()).collect();
        return Ok((batch, Vec::new(), all));
    }
    let (schema, columns, rows) = batch.into_parts();
    let mut columns: Vec<Option<ArrayRef>> = columns.into_iter().map(Some).collect();
    let mut owned = Vec::new();
    for block in blocks {
        let Some((typestr, _)) = block.columns.first().and_then(|&c| numpy_type(schema.field(c).data_type())) else {
            continue;
        };
        if block.columns.iter().any(|&c| columns[c].is_none()) {
            continue; // not the engine's block layout: leave it all in the batch
        }
        // Drop the block's columns (slices of its buffer), so the buffer is the allocation's only
        // owner; if it is not after all, rebuild them as the same slices.
        block.columns.iter().for_each(|&c| columns[c] = None);
        match Memory::take(block.buffer) {
            Ok((memory, address)) => {
                let names = block.columns.iter().map(|&c| schema.field(c).name().clone()).collect();
                let owned_block = OwnedBlock { _values: memory, address, columns: block.columns.len(), rows, typestr };
                owned.push((block.columns, names, owned_block));
            }
            Err(buffer) => {
                let per_column = buffer.len() / block.columns.len();
                for (k, &c) in block.columns.iter().enumerate() {
                    let values = buffer.slice_with_length(k * per_column, per_column);
                    columns[c] = Some(array_of(schema.field(c).data_type(), rows, vec![values]));
                }
            }
        }
    }
    let left: Vec<(usize, ArrayRef)> = columns.into_iter().enumerate().filter_map(|(i, c)| c.map(|c| (i, c))).collect();
    let positions = left.iter().map(|(i, _)| *i).collect();
    Ok((remaining_batch(&schema, left, rows)?, owned, positions))
}

/// The batch of the columns `left` (positions in `schema`, in order) of a batch of `rows` rows.
///
/// # Errors
/// Only if the columns do not form a batch, which cannot happen for columns of one batch.
fn remaining_batch(schema: &SchemaRef, left: Vec<(usize, ArrayRef)>, rows: usize) -> PyResult<RecordBatch> {
    let fields: Vec<Arc<Field>> = left.iter().map(|(i, _)| Arc::clone(&schema.fields()[*i])).collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema, left.into_iter().map(|(_, c)| c).collect(), &options)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("splitting a read's columns: {e}")))
}

/// An array of `data_type` and `len` over `buffers`: a column taken apart a moment ago, put back.
fn array_of(data_type: &DataType, len: usize, buffers: Vec<arrow_buffer::Buffer>) -> ArrayRef {
    let data = ArrayData::builder(data_type.clone()).len(len).buffers(buffers);
    make_array(data.build().expect("the parts of a valid array taken apart a moment ago"))
}

/// The numpy type string of a column type this module hands over, with its width in bytes.
fn numpy_type(data_type: &DataType) -> Option<(&'static str, usize)> {
    Some(match data_type {
        DataType::Int8 => ("|i1", 1),
        DataType::Int16 => ("<i2", 2),
        DataType::Int32 => ("<i4", 4),
        DataType::Int64 => ("<i8", 8),
        DataType::UInt8 => ("|u1", 1),
        DataType::UInt16 => ("<u2", 2),
        DataType::UInt32 => ("<u4", 4),
        DataType::UInt64 => ("<u8", 8),
        DataType::Float32 => ("<f4", 4),
        DataType::Float64 => ("<f8", 8),
        // A zone would be lost on the numpy side: zoned columns go through pyarrow.
        DataType::Timestamp(TimeUnit::Nanosecond, None) => ("<M8[ns]", 8),
        _ => return None,
    })
}

/// Takes `column`'s value buffer if it can be owned: a fixed-width type numpy shares, no nulls, at
/// least one row, and the buffer's only reference, unsliced, a `Vec<u8>` or an engine output mapping; or a boolean
/// column without nulls, unpacked to bytes. Otherwise the column comes back unchanged (rebuilt around
/// the same buffers).
fn take(column: ArrayRef) -> Result<OwnedColumn, ArrayRef> {
    if let Some(bools) = column.as_boolean_opt().filter(|b| b.null_count() == 0 && !b.is_empty()) {
        // Arrow keeps booleans as bits and numpy as bytes: a copy either way, and pyarrow's
        // `to_pandas` of 10M booleans took 13-17 ms where this takes a few.
        let mut values = unpack_bits(bools.values());
        let address = values.as_mut_ptr() as usize;
        return Ok(OwnedColumn { len: values.len(), _values: Memory::Heap(values), address, typestr: "|b1" });
    }
    let Some((typestr, width)) = numpy_type(column.data_type()) else { return Err(column) };
    if column.null_count() != 0 || column.is_empty() || column.offset() != 0 {
        return Err(column);
    }
    let data = column.to_data();
    drop(column);
    let len = data.len();
    let (data_type, mut buffers) = (data.data_type().clone(), data.buffers().to_vec());
    drop(data);
    let rebuild = |buffers: Vec<arrow_buffer::Buffer>| array_of(&data_type, len, buffers);
    let Some(values) = buffers.pop().filter(|_| buffers.is_empty()) else { return Err(rebuild(buffers)) };
    if values.len() != len * width {
        buffers.push(values);
        return Err(rebuild(buffers));
    }
    match Memory::take(values) {
        Ok((memory, address)) => Ok(OwnedColumn { _values: memory, address, len, typestr }),
        Err(values) => Err(rebuild(vec![values])),
    }
}

/// `0u8`/`1u8` for each bit of a byte, least significant first, as one little-endian `u64`.
const BYTES_OF_BITS: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut bit = 0;
        while bit < 8 {
            table[byte] |= (((byte >> bit) & 1) as u64) << (8 * bit);
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// One byte (0 or 1) per bit of `bits`, as numpy's bool array holds them.
fn unpack_bits(bits: &BooleanBuffer) -> Vec<u8> {
    let mut out = Vec::with_capacity(bits.len());
    let chunks = bits.bit_chunks();
    for word in chunks.iter() {
        for byte in word.to_le_bytes() {
            out.extend_from_slice(&BYTES_OF_BITS[usize::from(byte)].to_le_bytes());
        }
    }
    let rest = chunks.remainder_bits();
    out.extend((0..chunks.remainder_len()).map(|i| ((rest >> i) & 1) as u8));
    out
}

/// Columns taken out of a batch: `(position in the batch, name, column)`.
pub type OwnedColumns = Vec<(usize, String, OwnedColumn)>;

/// Above this many columns, short batches are not split (see [`split`]).
const MANY_COLUMNS: usize = 64;
/// Rows from which a column is worth handing over whatever the number of columns (see [`split`]).
const LONG_COLUMN_ROWS: usize = 16_384;

/// Splits a read's batch for a pandas read: the columns that can be handed to numpy without a copy,
/// as `(position in the batch, name, column)`, and a batch of the rest (same row count, same order).
///
/// A batch of many short columns is returned whole: pandas spends ~50 µs per separately built column
/// (validation, one block each), more than copying a column of under ~16k rows costs, and
/// `Table.to_pandas` copies them into one block per type in C++ (measured: 10,000 rows x 1,000
/// float64 columns, 85 ms of pandas overhead handed over against ~35 ms through `to_pandas`).
///
/// # Errors
/// Only if the remaining columns do not form a batch, which cannot happen for columns of one batch.
pub fn split(batch: RecordBatch) -> PyResult<(RecordBatch, OwnedColumns)> {
    if batch.num_columns() > MANY_COLUMNS && batch.num_rows() < LONG_COLUMN_ROWS {
        return Ok((batch, Vec::new()));
    }
    let (schema, columns, rows) = batch.into_parts();
    let mut owned = Vec::new();
    let mut left = Vec::new();
    for (i, column) in columns.into_iter().enumerate() {
        match take(column) {
            Ok(c) => owned.push((i, schema.field(i).name().clone(), c)),
            Err(column) => left.push((i, column)),
        }
    }
    Ok((remaining_batch(&schema, left, rows)?, owned))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float64Array, Int32Array, StringArray};
    use arrow_buffer::Buffer;

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("valid batch")
    }

    fn from_vec(values: &[f64]) -> ArrayRef {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let data = ArrayData::builder(DataType::Float64).len(values.len()).add_buffer(Buffer::from_vec(bytes));
        make_array(data.build().expect("valid"))
    }

    #[test]
    fn owns_null_free_fixed_width_columns_it_holds_alone_and_keeps_the_rest_in_order() {
        let owned_f = from_vec(&[1.0, 2.0, 3.0]);
        let shared_f = from_vec(&[4.0, 5.0, 6.0]);
        let keep_alive = Arc::clone(&shared_f);
        let b = batch(vec![
            ("a", owned_f),
            ("s", Arc::new(StringArray::from(vec!["x", "y", "z"])) as ArrayRef),
            ("n", Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)])) as ArrayRef),
            ("shared", shared_f),
        ]);
        let (rest, owned) = split(b).expect("split");
        assert_eq!(
            owned.iter().map(|(i, n, c)| (*i, n.as_str(), c.len, c.typestr)).collect::<Vec<_>>(),
            vec![(0, "a", 3, "<f8")]
        );
        assert_eq!(rest.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["s", "n", "shared"]);
        assert_eq!(rest.num_rows(), 3);
        assert_eq!(rest.column(2).as_ref(), keep_alive.as_ref());
        assert_eq!(owned[0].2._values.span(), (owned[0].2.address, 24));
    }

    #[test]
    fn null_free_booleans_are_unpacked_to_bytes() {
        use arrow_array::BooleanArray;
        let bits: Vec<bool> = (0..203).map(|i| i % 3 == 0 || i % 7 == 1).collect();
        let whole = BooleanArray::from(bits.clone());
        // Sliced at a bit offset too: the chunks and the remainder start mid-byte.
        for (array, want) in [(whole.clone(), &bits[..]), (whole.slice(5, 190), &bits[5..195])] {
            let bytes = unpack_bits(array.values());
            assert_eq!(bytes, want.iter().map(|&b| u8::from(b)).collect::<Vec<_>>());
        }
        let with_null: ArrayRef =
            Arc::new(BooleanArray::from((0..203).map(|i| (i != 9).then_some(true)).collect::<Vec<_>>()));
        let b = batch(vec![("flag", Arc::new(whole) as ArrayRef), ("maybe", with_null)]);
        let (rest, owned) = split(b).expect("split");
        assert_eq!(owned.iter().map(|(i, _, c)| (*i, c.len, c.typestr)).collect::<Vec<_>>(), vec![(0, 203, "|b1")]);
        assert_eq!(rest.num_columns(), 1, "a boolean column with nulls stays for pyarrow");
    }

    #[test]
    fn sliced_and_foreign_buffers_stay_in_the_batch() {
        // A buffer allocated as a `Vec<i32>` (another layout than `Vec<u8>`) and a slice: not taken.
        let native: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let sliced = from_vec(&[1.0, 2.0, 3.0]).slice(1, 2);
        let b = batch(vec![("native", native), ("sliced", sliced)]);
        let (rest, owned) = split(b).expect("split");
        assert!(owned.is_empty());
        assert_eq!(rest.num_columns(), 2);
        assert_eq!(rest.column(1).len(), 2);
    }

    #[test]
    fn many_short_columns_stay_whole() {
        let columns: Vec<(String, ArrayRef)> =
            (0..=MANY_COLUMNS).map(|i| (format!("c{i}"), from_vec(&[1.0]))).collect();
        let (rest, owned) = split(RecordBatch::try_from_iter(columns).expect("valid")).expect("split");
        assert!(owned.is_empty());
        assert_eq!(rest.num_columns(), MANY_COLUMNS + 1);
    }

    #[test]
    fn a_batch_of_owned_columns_only_keeps_its_row_count() {
        let (rest, owned) = split(batch(vec![("a", from_vec(&[1.0, 2.0]))])).expect("split");
        assert_eq!((rest.num_columns(), rest.num_rows(), owned.len()), (0, 2, 1));
    }

    /// Two f64 columns as slices of one buffer, as the engine's column blocks are.
    fn block_batch(shared: bool) -> (RecordBatch, Vec<ColumnBlock>, Option<Buffer>) {
        let bytes: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let buffer = Buffer::from_vec(bytes);
        let column = |k: usize| -> ArrayRef {
            let data = ArrayData::builder(DataType::Float64).len(3).add_buffer(buffer.slice_with_length(k * 24, 24));
            make_array(data.build().expect("valid"))
        };
        let b = batch(vec![
            ("x", column(0)),
            ("s", Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef),
            ("y", column(1)),
        ]);
        let extra = shared.then(|| buffer.clone());
        (b, vec![ColumnBlock { columns: vec![0, 2], buffer }], extra)
    }

    #[test]
    fn blocks_are_taken_whole_and_shared_ones_stay_as_columns() {
        let (b, blocks, _) = block_batch(false);
        let (rest, owned, left) = take_blocks(b, blocks).expect("take");
        assert_eq!(left, vec![1]);
        assert_eq!(rest.schema().field(0).name(), "s");
        assert_eq!(owned.len(), 1);
        let (positions, names, block) = &owned[0];
        assert_eq!((positions.clone(), names.clone()), (vec![0, 2], vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!((block.columns, block.rows, block.typestr), (2, 3, "<f8"));
        assert_eq!(block._values.span().0, block.address);
        // Someone else holds the allocation: the columns stay in the batch, same values.
        let (b, blocks, keep) = block_batch(true);
        let (rest, owned, left) = take_blocks(b, blocks).expect("take");
        assert!(owned.is_empty() && keep.is_some());
        assert_eq!(left, vec![0, 1, 2]);
        assert_eq!(rest.column(2).as_any().downcast_ref::<Float64Array>().expect("f64").values(), &[4.0, 5.0, 6.0]);
    }
}
