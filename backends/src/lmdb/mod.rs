//! The LMDB backend (`lmdb://` URIs), over the `lmdb-rkv` crate.
//!
//! One LMDB environment per library, in `<root>/<encoded library name>/`, with three named databases:
//! `atoms` (binary key -> object bytes), `refs` (binary key -> 8-byte LE generation + bytes) and
//! `meta`. Layout, token scheme, threading and map growth are specified in `design/backends.md#lmdb`.
//!
//! `lmdb-rkv` leaves two LMDB rules to its users, and this module enforces both:
//! - a folder must be opened once per process: a process-wide registry shares one environment
//!   (`env.rs`);
//! - read transactions must stay on their thread: `visit_batch` keeps its transaction on the calling
//!   thread and lends the mapped slices to rayon workers (`storage.rs`).

mod config;
mod env;
mod folder;
mod gate;
mod listing;
mod storage;
mod store;

pub use config::{DEFAULT_MAP_SIZE, LmdbConfig, MAX_MAP_SIZE, MIN_MAP_SIZE};
pub use storage::LmdbStorage;
pub use store::LmdbStore;

#[cfg(test)]
mod tests;
