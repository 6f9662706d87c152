//! The write pipeline: slice → encode, compress and hash in parallel (rayon) → hand over through a
//! bounded channel to I/O workers that store the segments concurrently → index entries in order.
//!
//! Memory is bounded: the wave being encoded, the waves queued and the waves being stored exist at a
//! time, whatever the table's size. A wave is at most `encode_wave` segments and closes once their input
//! reaches `wave_bytes`. Workers are `io_workers`, but no more than the backend serves at once
//! ([`Storage::concurrent_puts`]: one on LMDB, where more would only wait holding their waves), and the
//! queue is no longer than the workers.

use std::ops::Range;

use arrow_array::RecordBatch;
use bytes::Bytes;
use floe_backends::Storage;
use floe_formats::{AtomFields, AtomKey, KeyType, encode_segment};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::options::PipelineOptions;
use crate::pipeline::handover;
use crate::sync::Ordering;
use crate::table;

/// One encoded segment on its way to storage.
struct Encoded {
    entry: IndexEntry,
    bytes: Bytes,
}

/// What to slice: rows already cut into row slices, and the columns layout.
pub(crate) struct SliceJob<'a> {
    /// The symbol the data keys are filed under.
    pub symbol: &'a str,
    /// The version the data keys carry (provenance only; a rebased commit keeps them).
    pub version: u64,
    /// Row slices in order; each becomes `groups.len()` segments.
    pub row_slices: Vec<RecordBatch>,
    /// Row number of the first row of `row_slices[0]` in the new version.
    pub row_base: u64,
    /// Position of the index column, if any.
    pub index_pos: Option<usize>,
    /// Column groups over the data-column list.
    pub groups: Vec<(usize, usize)>,
}

/// Encoded segments up to this many bytes in all (and one wave) are not stored by the pipeline but handed
/// back to travel with the commit.
pub(crate) const DEFER_BYTES: usize = 8 << 20;

/// Jobs of at most this many input bytes encode on the calling thread (see `write_segments`).
const INLINE_ENCODE_BYTES: usize = 128 << 10;

/// What [`write_segments`] produced.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Index entries of every segment, in row then column order.
    pub entries: Vec<IndexEntry>,
    /// Segments not stored yet (a small job): the commit stores them with the head's CAS.
    pub deferred: Vec<(AtomKey, Bytes)>,
}

/// Encodes every segment of `job` and stores them, except that a small job (one wave, at most
/// [`DEFER_BYTES`]) is handed back unstored in [`Written::deferred`] for the commit to store.
///
/// # Errors
/// The first encoding or storage error; segments already stored stay (unreachable until committed).
pub(crate) fn write_segments(
    storage: &std::sync::Arc<dyn Storage>,
    options: &PipelineOptions,
    job: SliceJob<'_>,
) -> Result<Written> {
    let Some(first) = job.row_slices.first() else { return Ok(Written::default()) };
    let data_cols = table::data_columns(&first.schema(), job.index_pos);
    let now = crate::clock::now_ns();
    // (slice number, group number, first row) for every segment, in order, and its input bytes.
    let mut plan = Vec::new();
    let mut sizes = Vec::new();
    let mut row = job.row_base;
    for (s, b) in job.row_slices.iter().enumerate() {
        for (g, &group) in job.groups.iter().enumerate() {
            plan.push((s, g, row));
            sizes.push(table::segment_input_bytes(b, job.index_pos, &data_cols, group));
        }
        row += b.num_rows() as u64;
    }
    let waves = wave_bounds(&sizes, options.encode_wave, options.wave_bytes);
    let encode_one = |&(s, g, row_start): &(usize, usize, u64)| -> Result<Encoded> {
        let rows = &job.row_slices[s];
        let (c0, c1) = job.groups[g];
        let seg = table::segment_batch(rows, job.index_pos, &data_cols, (c0, c1))?;
        let bytes = encode_segment(&seg, None)?;
        let row_end = row_start + rows.num_rows() as u64;
        let (index_start, index_end) = match job.index_pos {
            None => (row_start as i64, row_end as i64 - 1),
            Some(_) => {
                let ts = table::timestamps(seg.column(0))?;
                (ts.value(0), ts.value(ts.len() - 1))
            }
        };
        let fields = AtomFields {
            version: job.version,
            creation_ts: now,
            content_hash: floe_formats::content_hash(&bytes)?,
            start: index_start,
            end: index_end,
        };
        let key = AtomKey::new(KeyType::TableData, job.symbol, fields)?;
        let col = |c: usize| u32::try_from(c).map_err(|_| Error::invalid("too many columns"));
        let entry = IndexEntry {
            row_start,
            row_end,
            index_start,
            index_end,
            col_start: col(c0)?,
            col_end: col(c1)?,
            key,
            seg_row_offset: 0,
        };
        Ok(Encoded { entry, bytes: Bytes::from(bytes) })
    };

    // Each wave of segments is encoded in parallel on the rayon pool (CPU work) and handed over whole to
    // an I/O worker, which stores it with one `put_batch`: concurrent requests on S3, one transaction
    // (one fsync) on LMDB.
    let mut next_wave = waves.iter();
    let produce = |cancelled: &crate::sync::AtomicBool| -> Option<Result<Vec<Encoded>>> {
        if cancelled.load(Ordering::SeqCst) {
            return None;
        }
        let wave = next_wave.next()?;
        Some(plan[wave.clone()].par_iter().map(encode_one).collect::<Result<Vec<_>>>())
    };
    let storage_puts = storage.concurrent_puts();
    let storage = std::sync::Arc::clone(storage);
    let store = move |wave: Vec<Encoded>| -> Result<Vec<IndexEntry>> {
        let (entries, items): (Vec<IndexEntry>, Vec<_>) =
            wave.into_iter().map(|e| (e.entry.clone(), (e.entry.key, e.bytes))).unzip();
        for (r, e) in storage.put_batch(items).into_iter().zip(&entries) {
            r.map_err(|err| Error::from(err).context(format!("storing segment {}", e.key)))?;
        }
        Ok(entries)
    };
    // A job of one wave (every small write and append) needs no I/O workers: if small it goes back to
    // the caller for the commit to store, else it is stored from this thread.
    if waves.len() <= 1 {
        // A small job (an append of a few rows) encodes on this thread: a trip through rayon and back
        // costs more than encoding it.
        let encoded = if plan.len() <= 1 || sizes.iter().sum::<usize>() <= INLINE_ENCODE_BYTES {
            plan.iter().map(encode_one).collect::<Result<Vec<_>>>()?
        } else {
            plan.par_iter().map(encode_one).collect::<Result<Vec<_>>>()?
        };
        if encoded.iter().map(|e| e.bytes.len()).sum::<usize>() <= DEFER_BYTES {
            let (entries, deferred) = encoded.into_iter().map(|e| (e.entry.clone(), (e.entry.key, e.bytes))).unzip();
            return Ok(Written { entries, deferred });
        }
        return Ok(Written { entries: store(encoded)?, deferred: Vec::new() });
    }
    let workers = options.io_workers.min(storage_puts).max(1);
    let stored = handover::run(workers, options.queue_capacity.min(workers), produce, store)?;
    Ok(Written { entries: stored.into_iter().flatten().collect(), deferred: Vec::new() })
}

/// Cuts segments of input sizes `sizes` into consecutive waves: each takes segments until it holds
/// `max_segments` or their sizes reach `max_bytes`, and always at least one.
fn wave_bounds(sizes: &[usize], max_segments: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut waves = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut end = start;
        let mut bytes = 0usize;
        while end < sizes.len() && end - start < max_segments.max(1) && (end == start || bytes < max_bytes) {
            bytes = bytes.saturating_add(sizes[end]);
            end += 1;
        }
        waves.push(start..end);
        start = end;
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::wave_bounds;

    #[test]
    fn waves_close_at_the_segment_count_or_the_byte_budget() {
        assert_eq!(wave_bounds(&[], 4, 100), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(wave_bounds(&[10; 9], 4, 1000), vec![0..4, 4..8, 8..9]);
        // 60 + 60 reaches 100: two a wave.
        assert_eq!(wave_bounds(&[60; 5], 4, 100), vec![0..2, 2..4, 4..5]);
        // A segment over the budget is a wave of its own; small ones after it share one.
        assert_eq!(wave_bounds(&[500, 10, 10, 500], 4, 100), vec![0..1, 1..4]);
        assert_eq!(wave_bounds(&[1; 3], 0, 0), vec![0..1, 1..2, 2..3]);
    }
}
