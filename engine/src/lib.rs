//! Floe's engine: the version store, the commit protocol and the parallel read/write pipeline.
//!
//! A [`Floe`] opens the store a URI names and hands out [`Library`] handles; a library writes,
//! appends, updates, reads, snapshots and deletes *symbols*, each change making a new immutable version.
//! Every change to a symbol is committed by one compare-and-swap of its head reference, so concurrent
//! writers, in threads or processes, never lose a commit (`design/concurrency.md`). Segments are encoded
//! and stored, fetched and decoded in parallel (`design/pipeline.md`).

mod clock;
mod commit_stats;
mod compact;
pub mod deferred;
pub mod error;
mod head;
pub mod index;
mod index_cache;
pub mod library;
mod lru;
pub mod options;
mod pipeline;
mod sizes;
pub mod staged;
pub mod store;
mod stream_append;
mod sync;
pub mod table;
#[cfg(test)]
mod test_storage;
mod vacuum;

pub use commit_stats::CommitStats;
pub use compact::{CompactionOutline, FRAGMENTED_MIN_SAVED, Fragmentation};
pub use error::{Detail, Error, ErrorKind, Result};
pub use floe_formats::record::{IndexKind, Operation};
pub use library::{
    AsOf, Description, Library, ReadRequest, ReadResult, ReadStream, Verification, VersionInfo, VersionedItem,
};
pub use options::{LibraryOptions, PipelineOptions};
pub use pipeline::codes::CODES_METADATA_KEY;
pub use pipeline::output::{OwnedOutput, output_huge_pages};
pub use pipeline::pool::{ThreadPoolSetup, ensure_thread_pool};
pub use pipeline::read::ColumnBlock;
pub use sizes::{SYMBOL_KEY_TYPES, StoredSize};
pub use staged::{FinalizeMode, StagedChunk};
pub use store::Floe;
pub use table::Table;
pub use vacuum::VacuumReport;
