//! `floe._floe.Store`: the libraries at one URI (wrapped by `floe.Store` in Python).

use floe_engine::{Floe, LibraryOptions};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::library::PyLibrary;

/// The engine's [`Floe`] behind a Python handle. Every call releases the GIL.
#[pyclass(name = "Store", module = "floe._floe", frozen)]
pub struct PyStore {
    inner: Floe,
}

/// `(rows_per_segment, columns_per_segment, dynamic_schema)`.
type OptionsTuple = (usize, usize, bool);

fn options((rows_per_segment, columns_per_segment, dynamic_schema): OptionsTuple) -> LibraryOptions {
    LibraryOptions { rows_per_segment, columns_per_segment, dynamic_schema }
}

#[pymethods]
impl PyStore {
    #[new]
    fn new(py: Python<'_>, uri: &str) -> PyResult<Self> {
        let inner = py.detach(|| Floe::open(uri)).map_err(|e| to_py(py, &e, &format!("opening store {uri:?}")))?;
        Ok(PyStore { inner })
    }

    /// The URI, secrets removed.
    fn uri(&self) -> String {
        self.inner.uri()
    }

    fn create_library(&self, py: Python<'_>, name: &str, opts: OptionsTuple) -> PyResult<PyLibrary> {
        let lib = py
            .detach(|| self.inner.create_library(name, options(opts)))
            .map_err(|e| to_py(py, &e, &format!("create_library {name:?}")))?;
        Ok(PyLibrary::new(lib))
    }

    fn get_library(&self, py: Python<'_>, name: &str) -> PyResult<PyLibrary> {
        let lib =
            py.detach(|| self.inner.get_library(name)).map_err(|e| to_py(py, &e, &format!("get_library {name:?}")))?;
        Ok(PyLibrary::new(lib))
    }

    fn get_or_create_library(&self, py: Python<'_>, name: &str, opts: OptionsTuple) -> PyResult<PyLibrary> {
        let lib = py
            .detach(|| self.inner.get_or_create_library(name, options(opts)))
            .map_err(|e| to_py(py, &e, &format!("get_library {name:?}")))?;
        Ok(PyLibrary::new(lib))
    }

    fn has_library(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        py.detach(|| self.inner.has_library(name)).map_err(|e| to_py(py, &e, &format!("has_library {name:?}")))
    }

    fn list_libraries(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.list_libraries()).map_err(|e| to_py(py, &e, "list_libraries"))
    }

    /// Sets the rows and/or columns per segment of library `name` (`Floe::modify_library_options`);
    /// returns its options after.
    #[pyo3(signature = (name, rows_per_segment=None, columns_per_segment=None))]
    fn modify_library_options(
        &self,
        py: Python<'_>,
        name: &str,
        rows_per_segment: Option<usize>,
        columns_per_segment: Option<usize>,
    ) -> PyResult<OptionsTuple> {
        py.detach(|| {
            self.inner.modify_library_options(name, |o| {
                o.rows_per_segment = rows_per_segment.unwrap_or(o.rows_per_segment);
                o.columns_per_segment = columns_per_segment.unwrap_or(o.columns_per_segment);
            })
        })
        .map(|o| (o.rows_per_segment, o.columns_per_segment, o.dynamic_schema))
        .map_err(|e| to_py(py, &e, &format!("modify_library_option {name:?}")))
    }

    fn delete_library(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach(|| self.inner.delete_library(name)).map_err(|e| to_py(py, &e, &format!("delete_library {name:?}")))
    }
}
