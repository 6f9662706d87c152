//! The one error type of the `backends` crate.

use std::fmt;

use thiserror::Error;

/// A boxed, thread-safe source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a storage operation can fail with. The variant tells the caller what to do:
/// `NotFound`/`AlreadyExists`/`Conflict` are answers about the data, `Unavailable` may succeed if retried
/// later, `InvalidConfig` needs the caller to fix the URI or options, `Other` is a bug or an unexpected
/// backend failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The key does not exist.
    #[error("not found: {key}")]
    NotFound {
        /// The key, as printed by its `Display`.
        key: String,
    },
    /// A create-only write found the key already present with different bytes.
    #[error("already exists with different content: {key}")]
    AlreadyExists {
        /// The key, as printed by its `Display`.
        key: String,
    },
    /// A reference compare-and-swap lost: the reference is not at the expected token (or exists when
    /// absence was expected). Re-read and retry.
    #[error("conflict on reference {key}: it changed since it was read")]
    Conflict {
        /// The reference key, as printed by its `Display`.
        key: String,
    },
    /// The backend could not be reached or refused for a reason that may pass (network, throttling,
    /// timeouts, a full LMDB map that could not grow). The S3 backend has already retried.
    #[error("storage unavailable ({backend}): {message}")]
    Unavailable {
        /// Which backend.
        backend: &'static str,
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The URI or options are wrong; the message says which part and why.
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),
    /// A key or name could not be encoded for this backend.
    #[error(transparent)]
    Format(#[from] floe_formats::FormatError),
    /// Anything else: an unexpected failure of the backend.
    #[error("storage error ({backend}): {message}")]
    Other {
        /// Which backend.
        backend: &'static str,
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl StorageError {
    /// A [`StorageError::NotFound`] for `key`.
    pub fn not_found(key: impl fmt::Display) -> Self {
        StorageError::NotFound { key: key.to_string() }
    }

    /// A [`StorageError::AlreadyExists`] for `key`.
    pub fn already_exists(key: impl fmt::Display) -> Self {
        StorageError::AlreadyExists { key: key.to_string() }
    }

    /// A [`StorageError::Conflict`] for `key`.
    pub fn conflict(key: impl fmt::Display) -> Self {
        StorageError::Conflict { key: key.to_string() }
    }

    /// A [`StorageError::Unavailable`] without a source.
    pub fn unavailable(backend: &'static str, message: impl Into<String>) -> Self {
        StorageError::Unavailable { backend, message: message.into(), source: None }
    }

    /// A [`StorageError::Other`] without a source.
    pub fn other(backend: &'static str, message: impl Into<String>) -> Self {
        StorageError::Other { backend, message: message.into(), source: None }
    }

    /// True for [`StorageError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// True for [`StorageError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict { .. })
    }
}

/// `Result` with [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
