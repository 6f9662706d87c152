//! The engine's one error type. Its [`ErrorKind`] tells the caller what to do; the message names the
//! symbol, version, column or key involved.

use std::fmt;

use floe_backends::StorageError;
use floe_formats::FormatError;

/// What kind of failure, i.e. what the caller should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Another writer won too many times in a row: re-read and retry later (nothing was committed).
    Conflict,
    /// The symbol, version, snapshot or library does not exist.
    NotFound,
    /// The input or arguments are wrong (schema mismatch, unsorted index, bad name...): fix the call.
    /// Nothing was written.
    InvalidInput,
    /// Stored bytes failed verification (checksum, structure): the data is damaged.
    CorruptData,
    /// The storage could not be reached or refused (after retries); the operation may succeed later.
    StorageUnavailable,
    /// The library or store configuration is invalid.
    InvalidConfig,
    /// A snapshot or library of that name already exists.
    AlreadyExists,
    /// A bug or an unexpected storage failure.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not found",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::CorruptData => "corrupt data",
            ErrorKind::StorageUnavailable => "storage unavailable",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Internal => "internal error",
        })
    }
}

/// A finer reason inside a kind, for callers that map errors to their own types (the Python module's
/// exception classes). `General` when nothing finer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Detail {
    /// Nothing finer than the kind.
    General,
    /// The symbol does not exist or has no live version (kind `NotFound`).
    SymbolNotFound,
    /// The symbol exists but not the requested version (kind `NotFound`).
    VersionNotFound,
    /// No snapshot of that name, or it does not hold the symbol (kind `NotFound`).
    SnapshotNotFound,
    /// No library of that name (kind `NotFound`).
    LibraryNotFound,
    /// The data's schema differs from the symbol's (kind `InvalidInput`).
    SchemaMismatch,
    /// The index column is not sorted ascending, or an append starts before the symbol's end
    /// (kind `InvalidInput`).
    UnsortedIndex,
    /// The storage failed while committing and it could not be determined whether the commit took
    /// effect: read the symbol to find out (kind `StorageUnavailable` or `Internal`).
    CommitOutcomeUnknown,
}

/// An engine error: a kind, a message and, where there is one, the underlying error.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    detail: Detail,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, detail: Detail::General, message: message.into(), source: None }
    }

    /// An error of `kind` with a finer `detail`.
    pub fn with_detail(kind: ErrorKind, detail: Detail, message: impl Into<String>) -> Self {
        Error { kind, detail, message: message.into(), source: None }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The finer reason, if any.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// `NotFound` / [`Detail::SymbolNotFound`].
    pub fn symbol_not_found(message: impl Into<String>) -> Self {
        Self::with_detail(ErrorKind::NotFound, Detail::SymbolNotFound, message)
    }

    /// `NotFound` / [`Detail::VersionNotFound`].
    pub fn version_not_found(message: impl Into<String>) -> Self {
        Self::with_detail(ErrorKind::NotFound, Detail::VersionNotFound, message)
    }

    /// `NotFound` / [`Detail::SnapshotNotFound`].
    pub fn snapshot_not_found(message: impl Into<String>) -> Self {
        Self::with_detail(ErrorKind::NotFound, Detail::SnapshotNotFound, message)
    }

    /// The message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Shorthand for [`ErrorKind::CorruptData`].
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CorruptData, message)
    }

    /// The same error with `detail` set.
    #[must_use]
    pub fn detailed(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// Prefixes the message with context (`"reading symbol x: "`), keeping kind and source.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        let kind = match &e {
            StorageError::NotFound { .. } => ErrorKind::NotFound,
            StorageError::AlreadyExists { .. } => ErrorKind::Internal,
            StorageError::Conflict { .. } => ErrorKind::Conflict,
            StorageError::Unavailable { .. } => ErrorKind::StorageUnavailable,
            StorageError::InvalidConfig(_) => ErrorKind::InvalidConfig,
            StorageError::Format(f) => return Error::from(f.clone()),
            _ => ErrorKind::Internal,
        };
        Error { kind, detail: Detail::General, message: e.to_string(), source: Some(Box::new(e)) }
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        let kind = match &e {
            FormatError::InvalidName { .. } | FormatError::UnsupportedType { .. } | FormatError::InvalidInput(_) => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::CorruptData,
        };
        Error { kind, detail: Detail::General, message: e.to_string(), source: Some(Box::new(e)) }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error {
            kind: ErrorKind::InvalidInput,
            detail: Detail::General,
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
