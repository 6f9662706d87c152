//! Floe storage backends.
//!
//! The [`Storage`] trait is the contract between the engine and persisted bytes: immutable objects
//! under [`floe_formats::AtomKey`]s plus compare-and-swap references under
//! [`floe_formats::RefKey`]s. This crate holds the trait, the memory, LMDB and S3 implementations,
//! opening a [`Store`] from a URI, a fault-injecting wrapper for tests, and (behind the `conformance`
//! feature) the conformance suite every backend must pass. See `design/backends.md`.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod error;
pub mod faulty;
pub mod lmdb;
pub mod memory;
mod rng;
#[cfg(feature = "s3")]
pub mod s3;
pub mod storage;
pub mod uri;

pub use error::{Result, StorageError};
pub use lmdb::{LmdbConfig, LmdbStorage, LmdbStore};
pub use memory::{MemoryStorage, MemoryStore};
#[cfg(feature = "s3")]
pub use s3::{S3Config, S3Storage, S3Store};
pub use storage::{ListIter, ListPage, ListScope, RefExpectation, RefToken, RefValue, Storage, Store};
pub use uri::open_store;
