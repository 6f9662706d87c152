//! The S3 backend: [`S3Store`] and [`S3Storage`] on object_store's S3 client.
//!
//! - Object names are `<path_prefix>/` + [`floe_formats::Key::to_object_name`], references included.
//! - Immutable puts send `If-None-Match: *`; reference writes send `If-None-Match: *` (create) or
//!   `If-Match: <e-tag>` (replace). A reference's token is its e-tag; every stored reference carries a
//!   16-byte write id after its value so that e-tags never repeat (see `write_id.rs`).
//! - The store owns a small tokio runtime; the synchronous [`crate::Storage`] methods block on it.
//!   Batched reads and writes keep [`S3Config::concurrency`] requests in flight.
//! - object_store retries network errors, throttling and 5xx with exponential backoff; what still
//!   fails becomes [`crate::StorageError::Unavailable`].
//!
//! Design notes: `design/backends.md#s3`.

mod config;
mod errors;
mod runtime;
mod store;
mod write_id;

pub use config::{DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_REGION, DEFAULT_TIMEOUT, S3Config};
pub use store::{S3Storage, S3Store};
