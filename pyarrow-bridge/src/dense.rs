//! Copies a two-dimensional numpy array with strided rows into a row-contiguous one, in parallel tiles,
//! for writes of pandas frames built from one 2D array.
//!
//! `pd.DataFrame(values)` of a C-ordered `(rows, columns)` array keeps it as one block whose columns
//! are strided views (one value every `columns` values). Arrow needs each column contiguous, and
//! pyarrow's per-column copy walks the whole block once per column: writing `wide` (10,000 rows x
//! 1,000 float64 columns) from such a frame took 288-408 ms against 174-180 ms from the same frame with
//! contiguous columns (normalization alone 70 ms against 14). Copying tile by tile, so that every cache
//! line read serves a whole tile, and on the rayon pool with the GIL released, makes the columns of the
//! whole block in one allocation that pyarrow then wraps without a copy.

use numpy::ndarray::{ArrayView2, ArrayViewMut2, AssignElem, Axis, s};
use numpy::{Element, PyReadonlyArray2, PyReadwriteArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;

/// Output rows (frame columns) per task: a band is copied by one thread.
const BAND_ROWS: usize = 16;
/// Columns (frame rows) of one tile: `BAND_ROWS x TILE_COLUMNS` values of 8 bytes are 32 KiB, so a
/// tile's source lines stay in the L1/L2 cache while its band rows are written.
const TILE_COLUMNS: usize = 256;

/// Copies `src` into `out` (same shape), element by element: `out[r, c] = src[r, c]`. `out` must be
/// C-contiguous; `src` may have any strides. The two arrays are viewed as unsigned integers of their
/// element width by the caller, so one function serves every numeric type.
///
/// # Errors
/// `ValueError` if the shapes differ, `out` is not C-contiguous, an array is not aligned, or the arrays'
/// element type is not an unsigned integer of 1, 2, 4 or 8 bytes (both the same).
#[pyfunction]
pub fn copy_rows_contiguous(py: Python<'_>, src: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>) -> PyResult<()> {
    const WHAT: &str = "copy_rows_contiguous";
    match BorrowedBlock::borrow(src, WHAT)? {
        BorrowedBlock::U8(src) => copy_into(py, &src, out),
        BorrowedBlock::U16(src) => copy_into(py, &src, out),
        BorrowedBlock::U32(src) => copy_into(py, &src, out),
        BorrowedBlock::U64(src) => copy_into(py, &src, out),
    }
}

/// Copies `src` into `out`, which must be a C-contiguous, aligned `T` array of `src`'s shape.
fn copy_into<T: Element + Copy + Send + Sync>(
    py: Python<'_>,
    src: &PyReadonlyArray2<'_, T>,
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let Ok(mut out) = out.extract::<PyReadwriteArray2<'_, T>>() else {
        return Err(PyValueError::new_err(
            "copy_rows_contiguous: the output is not a 2D array of the source's unsigned integer type",
        ));
    };
    if src.shape() != out.shape() {
        return Err(PyValueError::new_err(format!(
            "copy_rows_contiguous: shapes differ ({:?} and {:?})",
            src.shape(),
            out.shape()
        )));
    }
    if !out.is_c_contiguous() {
        return Err(PyValueError::new_err("copy_rows_contiguous: the output is not C-contiguous"));
    }
    if !out.is_aligned() {
        return Err(PyValueError::new_err("copy_rows_contiguous: an array is not aligned to its element size"));
    }
    let from = src.as_array();
    let to = out.as_array_mut();
    py.detach(|| copy_tiled(from, to));
    Ok(())
}

/// A 2D numpy array borrowed (read-only) and viewed as unsigned integers of its element width, so one
/// copy serves every numeric type of that width.
pub(crate) enum BorrowedBlock<'py> {
    U8(PyReadonlyArray2<'py, u8>),
    U16(PyReadonlyArray2<'py, u16>),
    U32(PyReadonlyArray2<'py, u32>),
    U64(PyReadonlyArray2<'py, u64>),
}

impl<'py> BorrowedBlock<'py> {
    /// Borrows `block`, a 2D aligned array of uint8, 16, 32 or 64; `what` names the caller in errors.
    ///
    /// # Errors
    /// `ValueError` for any other array, and for an unaligned one (numpy allows those, e.g. over a
    /// byte buffer at an odd offset; the views read whole elements).
    pub(crate) fn borrow(block: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        let block = if let Ok(b) = block.extract::<PyReadonlyArray2<'py, u64>>() {
            Self::U64(b)
        } else if let Ok(b) = block.extract::<PyReadonlyArray2<'py, u32>>() {
            Self::U32(b)
        } else if let Ok(b) = block.extract::<PyReadonlyArray2<'py, u16>>() {
            Self::U16(b)
        } else if let Ok(b) = block.extract::<PyReadonlyArray2<'py, u8>>() {
            Self::U8(b)
        } else {
            return Err(PyValueError::new_err(format!(
                "{what}: needs a 2D array of an unsigned integer type (uint8, 16, 32 or 64)"
            )));
        };
        let aligned = match &block {
            Self::U8(b) => b.is_aligned(),
            Self::U16(b) => b.is_aligned(),
            Self::U32(b) => b.is_aligned(),
            Self::U64(b) => b.is_aligned(),
        };
        if !aligned {
            return Err(PyValueError::new_err(format!("{what}: an array is not aligned to its element size")));
        }
        Ok(block)
    }
}

/// `from.assign_to(to)`, in bands of output rows on the rayon pool and tiles within a band. `U` is `T`,
/// or `MaybeUninit<T>` for a destination not yet written (every element of `to` is written).
pub(crate) fn copy_tiled<T, U>(from: ArrayView2<'_, T>, mut to: ArrayViewMut2<'_, U>)
where
    T: Copy + Send + Sync,
    U: Send,
    for<'x> &'x mut U: AssignElem<T>,
{
    floe_engine::ensure_thread_pool();
    let columns = from.ncols();
    let bands: Vec<(ArrayView2<'_, T>, ArrayViewMut2<'_, U>)> =
        from.axis_chunks_iter(Axis(0), BAND_ROWS).zip(to.axis_chunks_iter_mut(Axis(0), BAND_ROWS)).collect();
    bands.into_par_iter().for_each(|(from, mut to)| {
        for start in (0..columns).step_by(TILE_COLUMNS) {
            let end = (start + TILE_COLUMNS).min(columns);
            from.slice(s![.., start..end]).assign_to(to.slice_mut(s![.., start..end]));
        }
    });
}

#[cfg(test)]
mod tests {
    use numpy::ndarray::{Array2, ShapeBuilder};

    use super::*;

    #[test]
    fn copies_strided_rows_of_any_shape() {
        for (rows, columns) in [(1, 1), (3, 5), (16, 256), (17, 257), (40, 1000), (1000, 3)] {
            // Column-major storage: each row is strided, as a pandas block over a C-ordered 2D array.
            let src = Array2::from_shape_fn((rows, columns).f(), |(r, c)| (r * 1_000_003 + c) as u64);
            let mut out = Array2::<u64>::zeros((rows, columns));
            copy_tiled(src.view(), out.view_mut());
            assert_eq!(out, src, "{rows} x {columns}");
            assert!(out.is_standard_layout());
        }
    }

    #[test]
    fn fills_an_uninitialized_destination() {
        for (rows, columns) in [(1, 1), (17, 257), (40, 1000)] {
            let src = Array2::from_shape_fn((rows, columns).f(), |(r, c)| (r * 1_000_003 + c) as u32);
            let mut out = Array2::<u32>::uninit((rows, columns));
            copy_tiled(src.view(), out.view_mut());
            // SAFETY: copy_tiled writes every element (what this test checks).
            let out = unsafe { out.assume_init() };
            assert_eq!(out, src, "{rows} x {columns}");
        }
    }

    #[test]
    fn copies_a_sliced_view() {
        let base = Array2::from_shape_fn((50, 70).f(), |(r, c)| (r * 100 + c) as u16);
        let view = base.slice(s![3..40;2, 5..66]);
        let mut out = Array2::<u16>::zeros(view.raw_dim());
        copy_tiled(view, out.view_mut());
        assert_eq!(out, view);
    }
}
