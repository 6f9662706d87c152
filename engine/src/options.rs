//! Library and pipeline options.

use floe_formats::record::LibraryConfigRecord;

use crate::error::{Error, Result};

/// Per-library options, fixed when the library is created (stored in its config reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibraryOptions {
    /// Rows per data segment (default 100,000).
    pub rows_per_segment: usize,
    /// Data columns per segment at most, not counting the index column every segment repeats (default
    /// 127). Row slices long enough that this many columns would exceed
    /// [`crate::table::SEGMENT_TARGET_BYTES`] of input take fewer, down to
    /// [`crate::table::MIN_GROUP_COLUMNS`] (design/decisions.md D53).
    pub columns_per_segment: usize,
    /// Whether appends and updates may change the schema (default false: they must match).
    pub dynamic_schema: bool,
}

impl Default for LibraryOptions {
    fn default() -> Self {
        LibraryOptions { rows_per_segment: 100_000, columns_per_segment: 127, dynamic_schema: false }
    }
}

impl LibraryOptions {
    /// Checks the options.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for zero sizes.
    pub fn validate(&self) -> Result<()> {
        if self.rows_per_segment == 0 || self.columns_per_segment == 0 {
            return Err(Error::invalid("rows_per_segment and columns_per_segment must be at least 1"));
        }
        Ok(())
    }

    pub(crate) fn to_record(self) -> LibraryConfigRecord {
        LibraryConfigRecord {
            rows_per_segment: self.rows_per_segment as u64,
            columns_per_segment: u32::try_from(self.columns_per_segment).unwrap_or(u32::MAX),
            dynamic_schema: self.dynamic_schema,
        }
    }

    pub(crate) fn from_record(r: &LibraryConfigRecord) -> Self {
        LibraryOptions {
            rows_per_segment: usize::try_from(r.rows_per_segment).unwrap_or(usize::MAX),
            columns_per_segment: r.columns_per_segment as usize,
            dynamic_schema: r.dynamic_schema,
        }
    }
}

/// How many threads and how much buffering the pipelines use. Defaults follow the core count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Threads storing waves of segments concurrently (each wave is itself one concurrent batch).
    pub io_workers: usize,
    /// Encoded waves that may wait between the encoders and the I/O workers.
    pub queue_capacity: usize,
    /// Segments encoded in parallel per wave on the rayon pool, at most.
    pub encode_wave: usize,
    /// A wave stops taking segments once their input reaches this many bytes (it always takes one,
    /// and a wave of several rounds up to a multiple of the encoding threads, within `encode_wave`).
    /// With `queue_capacity` and the workers this bounds the write pipeline's memory: on LMDB (one
    /// writer) about four waves exist at a time, each also one write transaction (its pages synced,
    /// its meta page left to the commit, D59).
    /// Default 8 MiB: a segment of that much input or more is a wave of its own (design/decisions.md
    /// D45).
    pub wave_bytes: usize,
    /// Commit attempts before a write gives up with a conflict error.
    pub max_commit_attempts: u32,
    /// How old the segments and index an operation wrote may grow while it keeps losing commit races
    /// and rebasing: past this age a rebased attempt writes them again under fresh keys instead of
    /// reusing them. This bounds how long before its commit any object a commit names was created
    /// (the longest single attempt plus this limit), which is what [`crate::Library::vacuum`]'s grace
    /// period must exceed (default 10 s; design/reliability.md, "Vacuum").
    pub max_reuse_age: std::time::Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        PipelineOptions {
            io_workers: (cores * 2).clamp(2, 16),
            queue_capacity: 2,
            encode_wave: cores * 2,
            wave_bytes: 8 << 20,
            max_commit_attempts: 200,
            max_reuse_age: std::time::Duration::from_secs(10),
        }
    }
}
