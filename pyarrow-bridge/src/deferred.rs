//! The columns of 2D numpy blocks (a pandas frame made from one C-ordered array) as a write's deferred
//! columns (`floe_engine::deferred`, design/decisions.md D49): each segment's rows of its column group
//! are copied contiguous as the engine encodes that segment, instead of the whole block before the
//! write (D32's copy, which doubled the frame in memory).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::{ArrayRef, make_array};
use arrow_buffer::{ArrowNativeType, Buffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, SchemaRef};
use floe_engine::Error;
use floe_engine::deferred::ColumnSource;
use numpy::Element;
use numpy::ndarray::{Array2, ArrayView2, s};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::dense::{BorrowedBlock, copy_tiled};

/// A block's elements, readable from any thread while the block is borrowed.
enum BlockView<'a> {
    U8(ArrayView2<'a, u8>),
    U16(ArrayView2<'a, u16>),
    U32(ArrayView2<'a, u32>),
    U64(ArrayView2<'a, u64>),
}

impl<'a> BlockView<'a> {
    /// `block`'s elements.
    fn of(block: &'a BorrowedBlock<'_>) -> Self {
        match block {
            BorrowedBlock::U8(b) => Self::U8(b.as_array()),
            BorrowedBlock::U16(b) => Self::U16(b.as_array()),
            BorrowedBlock::U32(b) => Self::U32(b.as_array()),
            BorrowedBlock::U64(b) => Self::U64(b.as_array()),
        }
    }

    fn width(&self) -> usize {
        match self {
            Self::U8(_) => 1,
            Self::U16(_) => 2,
            Self::U32(_) => 4,
            Self::U64(_) => 8,
        }
    }

    fn shape(&self) -> (usize, usize) {
        match self {
            Self::U8(v) => v.dim(),
            Self::U16(v) => v.dim(),
            Self::U32(v) => v.dim(),
            Self::U64(v) => v.dim(),
        }
    }

    /// Block rows `block_rows`, elements `rows` of each, as arrays of `types` (one per block row).
    fn columns(
        &self,
        block_rows: Range<usize>,
        rows: Range<usize>,
        types: &[&DataType],
    ) -> Result<Vec<ArrayRef>, Error> {
        match self {
            Self::U8(v) => copy_columns(v, block_rows, rows, types),
            Self::U16(v) => copy_columns(v, block_rows, rows, types),
            Self::U32(v) => copy_columns(v, block_rows, rows, types),
            Self::U64(v) => copy_columns(v, block_rows, rows, types),
        }
    }
}

/// Copies `view[block_rows, rows]` into one allocation, tile by tile (D32), and makes each of its rows
/// an array of its type over that allocation (no further copy).
fn copy_columns<T: Element + ArrowNativeType + Send + Sync>(
    view: &ArrayView2<'_, T>,
    block_rows: Range<usize>,
    rows: Range<usize>,
    types: &[&DataType],
) -> Result<Vec<ArrayRef>, Error> {
    let n = rows.len();
    let from = view.slice(s![block_rows, rows]);
    // Not zeroed first: filling 10 MB with zeros before copying over them was a sixth of the calling
    // thread's time in a `wide` write from pandas (`perf`), and where the memory is fresh its page
    // faults fall in the parallel copy instead.
    let mut to = Array2::<T>::uninit(from.raw_dim());
    copy_tiled(from, to.view_mut());
    // SAFETY: `copy_tiled` assigns every element of `to`, which has `from`'s shape.
    let to = unsafe { to.assume_init() };
    let (values, offset) = to.into_raw_vec_and_offset();
    debug_assert_eq!(offset.unwrap_or(0), 0, "a fresh standard-layout array starts at its allocation");
    let buffer = Buffer::from_vec(values);
    let width = std::mem::size_of::<T>();
    types
        .iter()
        .enumerate()
        .map(|(c, &t)| {
            let data = ArrayData::builder(t.clone())
                .len(n)
                .add_buffer(buffer.slice_with_length(c * n * width, n * width))
                .build()?;
            Ok(make_array(data))
        })
        .collect()
}

/// The deferred columns of a write: where each schema position's values are in the borrowed blocks.
pub(crate) struct NumpyBlocks<'a> {
    blocks: Vec<BlockView<'a>>,
    /// Schema position -> (block, row of the block).
    at: HashMap<usize, (usize, usize)>,
    schema: SchemaRef,
    rows: usize,
}

impl<'a> NumpyBlocks<'a> {
    /// `blocks[i]`'s rows are the columns at schema positions `positions[i]` of a table of `schema` with
    /// `rows` rows.
    ///
    /// # Errors
    /// `ValueError` if a block's shape does not match its positions and the rows, a position is out of
    /// range or named twice, or a column's type is not a fixed-width type of the block's element width.
    pub(crate) fn new(
        blocks: &'a [(BorrowedBlock<'_>, Vec<usize>)],
        schema: &SchemaRef,
        rows: usize,
    ) -> PyResult<Self> {
        let mut at = HashMap::new();
        let mut views = Vec::with_capacity(blocks.len());
        for (b, (block, positions)) in blocks.iter().enumerate() {
            let view = BlockView::of(block);
            if view.shape() != (positions.len(), rows) {
                return Err(PyValueError::new_err(format!(
                    "a deferred block is {:?}; {} columns of {rows} rows were named",
                    view.shape(),
                    positions.len()
                )));
            }
            for (j, &p) in positions.iter().enumerate() {
                let field = schema
                    .fields()
                    .get(p)
                    .ok_or_else(|| PyValueError::new_err(format!("deferred column {p} is out of range")))?;
                if field.data_type().primitive_width() != Some(view.width()) {
                    return Err(PyValueError::new_err(format!(
                        "deferred column {:?} is {}, not a type of {} bytes",
                        field.name(),
                        field.data_type(),
                        view.width()
                    )));
                }
                if at.insert(p, (b, j)).is_some() {
                    return Err(PyValueError::new_err(format!("deferred column {:?} is named twice", field.name())));
                }
            }
            views.push(view);
        }
        Ok(Self { blocks: views, at, schema: Arc::clone(schema), rows })
    }

    /// The schema positions these blocks make.
    pub(crate) fn positions(&self) -> Vec<usize> {
        self.at.keys().copied().collect()
    }
}

impl ColumnSource for NumpyBlocks<'_> {
    fn columns(&self, positions: &[usize], rows: Range<usize>) -> floe_engine::Result<Vec<ArrayRef>> {
        if rows.end > self.rows {
            return Err(Error::internal(format!("rows {rows:?} asked of a block of {} rows", self.rows)));
        }
        let mut out = Vec::with_capacity(positions.len());
        let mut i = 0;
        while i < positions.len() {
            let Some(&(b, first)) = self.at.get(&positions[i]) else {
                return Err(Error::internal(format!("column {} is not deferred", positions[i])));
            };
            // A run of positions that are consecutive rows of one block is copied at once.
            let mut k = 1;
            while i + k < positions.len() && self.at.get(&positions[i + k]) == Some(&(b, first + k)) {
                k += 1;
            }
            let types: Vec<&DataType> = positions[i..i + k].iter().map(|&p| self.schema.field(p).data_type()).collect();
            out.extend(self.blocks[b].columns(first..first + k, rows.clone(), &types)?);
            i += k;
        }
        Ok(out)
    }
}
