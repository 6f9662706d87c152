//! Engine errors as Python exceptions. The classes live in `floe/errors.py` (one hierarchy under
//! `floe.FloeError`, with `ValueError`/`LookupError` mixed in where Python code expects them); this
//! module only picks the class for an engine error's kind and detail.

use floe_engine::{Detail, Error, ErrorKind};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The name in `floe.errors` of the class for an engine error.
pub fn class_name(e: &Error) -> &'static str {
    match (e.kind(), e.detail()) {
        (ErrorKind::NotFound, Detail::SymbolNotFound) => "SymbolNotFound",
        (ErrorKind::NotFound, Detail::VersionNotFound) => "VersionNotFound",
        (ErrorKind::NotFound, Detail::SnapshotNotFound) => "SnapshotNotFound",
        (ErrorKind::NotFound, Detail::LibraryNotFound) => "LibraryNotFound",
        (ErrorKind::NotFound, _) => "NotFound",
        (ErrorKind::InvalidInput, Detail::SchemaMismatch) => "SchemaMismatch",
        (ErrorKind::InvalidInput, Detail::UnsortedIndex) => "UnsortedIndex",
        (ErrorKind::InvalidInput, _) => "InvalidInput",
        (ErrorKind::Conflict, _) => "CommitConflict",
        (ErrorKind::CorruptData, _) => "CorruptData",
        (ErrorKind::StorageUnavailable, _) => "StorageError",
        (ErrorKind::InvalidConfig, _) => "InvalidConfig",
        (ErrorKind::AlreadyExists, _) => "AlreadyExists",
        _ => "InternalError",
    }
}

/// The Python exception for `e`. `context` (the operation and symbol, e.g. `read "prices"`) prefixes
/// the message unless the engine's message already names the subject.
pub fn to_py(py: Python<'_>, e: &Error, context: &str) -> PyErr {
    let mut message = if context.is_empty() || mentions_subject(e.message(), context) {
        e.message().to_owned()
    } else {
        format!("{context}: {}", e.message())
    };
    // The causes (a 403, "connection refused", a timeout) are what the user acts on; the engine's
    // message holds the first level only.
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    match exception_class(py, class_name(e)) {
        Ok(cls) => PyErr::from_type(cls, (message,)),
        // Only if the pure-Python half of the package is broken; still say what failed.
        Err(_) => PyRuntimeError::new_err(format!("{}: {message}", class_name(e))),
    }
}

/// A `floe.errors` class by name.
pub fn exception_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(py.import("floe.errors")?.getattr(name)?.cast_into::<PyType>()?)
}

/// Whether `message` already names the quoted subject at the end of `context` (`read "x"` -> `"x"`).
fn mentions_subject(message: &str, context: &str) -> bool {
    context.find('"').is_some_and(|i| message.contains(&context[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_kind_and_detail() {
        assert_eq!(class_name(&Error::symbol_not_found("x")), "SymbolNotFound");
        assert_eq!(class_name(&Error::version_not_found("x")), "VersionNotFound");
        assert_eq!(class_name(&Error::snapshot_not_found("x")), "SnapshotNotFound");
        assert_eq!(class_name(&Error::not_found("x")), "NotFound");
        assert_eq!(class_name(&Error::invalid("x")), "InvalidInput");
        assert_eq!(
            class_name(&Error::with_detail(ErrorKind::InvalidInput, Detail::UnsortedIndex, "x")),
            "UnsortedIndex"
        );
        assert_eq!(
            class_name(&Error::with_detail(ErrorKind::InvalidInput, Detail::SchemaMismatch, "x")),
            "SchemaMismatch"
        );
        assert_eq!(class_name(&Error::new(ErrorKind::Conflict, "x")), "CommitConflict");
        assert_eq!(class_name(&Error::corrupt("x")), "CorruptData");
        assert_eq!(class_name(&Error::new(ErrorKind::StorageUnavailable, "x")), "StorageError");
        assert_eq!(class_name(&Error::new(ErrorKind::InvalidConfig, "x")), "InvalidConfig");
        assert_eq!(class_name(&Error::new(ErrorKind::AlreadyExists, "x")), "AlreadyExists");
        assert_eq!(class_name(&Error::internal("x")), "InternalError");
    }

    #[test]
    fn context_is_added_only_when_the_subject_is_missing() {
        assert!(mentions_subject("symbol \"a\" does not exist", "read \"a\""));
        assert!(!mentions_subject("column \"c\" has nulls", "write \"a\""));
        assert!(!mentions_subject("anything", "list_symbols"));
    }
}
