//! Floe's Python module, `floe._floe` (issue 5): thin pyo3 wrappers over the engine's [`floe_engine::Floe`]
//! and [`floe_engine::Library`], with Arrow in and out through the PyCapsule interface (pyo3-arrow).
//!
//! The public Python API (`floe.Store`, `floe.Library`: ArcticDB's, method for method) and the pandas
//! conversions live in the pure-Python half of the package (`python/floe`); this crate only moves Arrow
//! data and calls the engine, releasing the GIL around every call that does storage or compute work.
//! See `design/python.md`.

mod convert;
mod deferred;
mod dense;
mod errors;
mod library;
mod owned;
mod read_table;
mod store;
mod strings;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _floe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::PyStore>()?;
    m.add_class::<library::PyLibrary>()?;
    m.add_class::<library::PyReadStream>()?;
    m.add_class::<owned::OwnedColumn>()?;
    m.add_class::<owned::OwnedBlock>()?;
    m.add_class::<read_table::ReadTable>()?;
    m.add_function(wrap_pyfunction!(strings::strings_from_objects, m)?)?;
    m.add_function(wrap_pyfunction!(dense::copy_rows_contiguous, m)?)?;
    m.add_function(wrap_pyfunction!(strings::codes_from_objects, m)?)?;
    m.add_function(wrap_pyfunction!(strings::objects_from_codes, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
