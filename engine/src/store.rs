//! A Floe store: the libraries at one URI (ArcticDB's `Arctic` object).

use std::sync::Arc;

use bytes::Bytes;
use floe_backends::{RefExpectation, Storage, StorageError, Store};
use floe_formats::record::LibraryConfigRecord;
use floe_formats::{KeyType, RefKey};

use crate::error::{Error, ErrorKind, Result};
use crate::library::Library;
use crate::options::{LibraryOptions, PipelineOptions};

/// The symbol under which a library keeps its configuration reference.
const CONFIG_NAME: &str = "_floe_library_config";

fn config_key() -> Result<RefKey> {
    Ok(RefKey::new(KeyType::LibraryConfig, CONFIG_NAME)?)
}

/// The libraries at one storage URI.
#[derive(Debug, Clone)]
pub struct Floe {
    store: Arc<dyn Store>,
    pipeline: PipelineOptions,
}

impl Floe {
    /// Opens the store a URI names: `mem://`, `lmdb:///path?map_size=...`, `s3://host:bucket?...`.
    ///
    /// # Errors
    /// `InvalidConfig` for a bad URI (the message says which part); `StorageUnavailable`.
    pub fn open(uri: &str) -> Result<Self> {
        Ok(Self::from_store(open_uri(uri)?))
    }

    /// A store over an already opened backend.
    pub fn from_store(store: Arc<dyn Store>) -> Self {
        Floe { store, pipeline: PipelineOptions::default() }
    }

    /// Replaces the pipeline options of libraries opened from now on.
    #[must_use]
    pub fn with_pipeline(mut self, pipeline: PipelineOptions) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// The store's URI, secrets removed.
    pub fn uri(&self) -> String {
        self.store.uri()
    }

    /// Creates library `name`.
    ///
    /// # Errors
    /// `AlreadyExists` if it exists; `InvalidInput` for a bad name or options.
    pub fn create_library(&self, name: &str, options: LibraryOptions) -> Result<Library> {
        options.validate()?;
        let storage = self.store.library(name)?;
        let bytes = Bytes::from(options.to_record().encode());
        match storage.write_ref(&config_key()?, bytes, RefExpectation::Absent) {
            Ok(_) => Ok(Library::new(name, storage, options, self.pipeline)),
            Err(StorageError::Conflict { .. }) => {
                Err(Error::new(ErrorKind::AlreadyExists, format!("library {name:?} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens library `name`.
    ///
    /// # Errors
    /// `NotFound` if it does not exist.
    pub fn get_library(&self, name: &str) -> Result<Library> {
        let storage = self.store.library(name)?;
        let options = read_options(&*storage).map_err(|e| e.context(format!("library {name:?}")))?;
        Ok(Library::new(name, storage, options, self.pipeline))
    }

    /// Opens library `name`, creating it with `options` if it does not exist.
    ///
    /// # Errors
    /// As [`Floe::create_library`] and [`Floe::get_library`].
    pub fn get_or_create_library(&self, name: &str, options: LibraryOptions) -> Result<Library> {
        match self.create_library(name, options) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.get_library(name),
            other => other,
        }
    }

    /// Whether library `name` exists.
    ///
    /// # Errors
    /// Storage errors.
    pub fn has_library(&self, name: &str) -> Result<bool> {
        Ok(self.store.library(name)?.read_ref(&config_key()?)?.is_some())
    }

    /// The libraries, sorted.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_libraries(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for name in self.store.list_libraries()? {
            if self.has_library(&name)? {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Deletes library `name` and everything in it. Absent is not an error.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete_library(&self, name: &str) -> Result<()> {
        Ok(self.store.delete_library(name)?)
    }
}

fn read_options(storage: &dyn Storage) -> Result<LibraryOptions> {
    let v = storage.read_ref(&config_key()?)?.ok_or_else(|| {
        Error::with_detail(ErrorKind::NotFound, crate::error::Detail::LibraryNotFound, "the library does not exist")
    })?;
    Ok(LibraryOptions::from_record(&LibraryConfigRecord::decode(&v.bytes)?))
}

// The backends crate parses the URI and opens the backend its scheme names.
fn open_uri(uri: &str) -> Result<Arc<dyn Store>> {
    Ok(floe_backends::open_store(uri)?)
}
