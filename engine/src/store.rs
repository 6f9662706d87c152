//! A Floe store: the libraries at one URI (ArcticDB's `Arctic` object).

use std::sync::Arc;

use bytes::Bytes;
use floe_backends::{RefExpectation, RefToken, Storage, StorageError, Store};
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

    /// Changes library `name`'s options with `change` (ArcticDB's `modify_library_option`): a
    /// compare-and-swap of its configuration, retried if another process changed it meanwhile. Writes
    /// from libraries opened afterwards use the new options; what is stored stays as it was (row and
    /// column slices of any size read alike). `dynamic_schema` cannot change: the symbols' stored
    /// schemas were checked under the old rule. Returns the new options.
    ///
    /// # Errors
    /// `NotFound` if the library does not exist; `InvalidInput` for options that fail
    /// [`LibraryOptions::validate`] or a changed `dynamic_schema` (nothing is written then);
    /// `Conflict` if the configuration kept changing under this call; storage errors.
    pub fn modify_library_options(&self, name: &str, change: impl Fn(&mut LibraryOptions)) -> Result<LibraryOptions> {
        const ATTEMPTS: usize = 16;
        let storage = self.store.library(name)?;
        let key = config_key()?;
        for _ in 0..ATTEMPTS {
            let (old, token) = read_config(&*storage).map_err(|e| e.context(format!("library {name:?}")))?;
            let mut new = old;
            change(&mut new);
            new.validate()?;
            if new.dynamic_schema != old.dynamic_schema {
                return Err(Error::invalid(format!(
                    "library {name:?}: dynamic_schema cannot change after the library is created"
                )));
            }
            if new == old {
                return Ok(new);
            }
            let bytes = Bytes::from(new.to_record().encode());
            match storage.write_ref(&key, bytes, RefExpectation::At(&token)) {
                Ok(_) => return Ok(new),
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(ErrorKind::Conflict, format!("library {name:?}: its configuration kept changing; try again")))
    }
}

fn read_options(storage: &dyn Storage) -> Result<LibraryOptions> {
    Ok(read_config(storage)?.0)
}

/// A library's options and the token of the reference holding them (for a compare-and-swap).
fn read_config(storage: &dyn Storage) -> Result<(LibraryOptions, RefToken)> {
    let v = storage.read_ref(&config_key()?)?.ok_or_else(|| {
        Error::with_detail(ErrorKind::NotFound, crate::error::Detail::LibraryNotFound, "the library does not exist")
    })?;
    Ok((LibraryOptions::from_record(&LibraryConfigRecord::decode(&v.bytes)?), v.token))
}

// The backends crate parses the URI and opens the backend its scheme names.
fn open_uri(uri: &str) -> Result<Arc<dyn Store>> {
    Ok(floe_backends::open_store(uri)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReadRequest, Table};

    fn wide(ts: std::ops::Range<i64>) -> Table {
        use arrow_array::{ArrayRef, Int64Array, RecordBatch, TimestampNanosecondArray};
        let mut columns: Vec<(String, ArrayRef)> =
            vec![("ts".into(), std::sync::Arc::new(TimestampNanosecondArray::from_iter_values(ts.clone())))];
        for c in 0..5 {
            columns.push((
                format!("c{c}"),
                std::sync::Arc::new(Int64Array::from_iter_values(ts.clone().map(|t| t * 10 + c))),
            ));
        }
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        Table::from_batch(batch, crate::IndexKind::Timestamp("ts".into())).expect("table")
    }

    #[test]
    fn modified_options_apply_to_libraries_opened_after_and_keep_the_data_readable() {
        let floe = Floe::open("mem://").expect("store");
        let opts = LibraryOptions { rows_per_segment: 4, columns_per_segment: 2, dynamic_schema: false };
        let before = floe.create_library("l", opts).expect("create");
        before.write("s", &wide(0..10), None).expect("write");
        let new = floe
            .modify_library_options("l", |o| {
                o.rows_per_segment = 3;
                o.columns_per_segment = 3;
            })
            .expect("modify");
        assert_eq!((new.rows_per_segment, new.columns_per_segment), (3, 3));
        assert_eq!(before.options().rows_per_segment, 4, "an open library keeps the options it was opened with");
        let after = floe.get_library("l").expect("open");
        assert_eq!(after.options(), new);
        // Slices of both shapes in one symbol read, append, update and compact alike.
        after.append("s", &wide(10..17), None).expect("append");
        after.update("s", &wide(5..12), None, None).expect("update");
        let read = after.read("s", &ReadRequest::default()).expect("read").data;
        let want = wide(0..17).batches()[0].clone();
        assert_eq!(read, want);
        let subset = ReadRequest { columns: Some(vec!["c4".into(), "c1".into()]), ..Default::default() };
        let got = after.read("s", &subset).expect("subset").data;
        assert_eq!(got.column_by_name("c4"), want.column_by_name("c4"));
        after.compact("s", None).expect("compact");
        assert_eq!(after.read("s", &ReadRequest::default()).expect("read").data, want);
        // Refusals write nothing.
        let err = floe.modify_library_options("l", |o| o.dynamic_schema = true).expect_err("dynamic schema");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = floe.modify_library_options("l", |o| o.rows_per_segment = 0).expect_err("zero");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(floe.get_library("l").expect("open").options(), new);
        let err = floe.modify_library_options("none", |o| o.rows_per_segment = 5).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
