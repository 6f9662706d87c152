//! The write pipeline: slice → encode, compress and hash in parallel (rayon) → hand over through a
//! bounded channel to I/O workers that store the segments concurrently → index entries in order.
//!
//! Memory is bounded: the wave being encoded, `queue_capacity` waves queued and `io_workers` waves being
//! stored exist at a time (each wave `encode_wave` segments), whatever the table's size.

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
    // (slice number, group number, first row) for every segment, in order.
    let mut plan = Vec::new();
    let mut row = job.row_base;
    for (s, b) in job.row_slices.iter().enumerate() {
        for g in 0..job.groups.len() {
            plan.push((s, g, row));
        }
        row += b.num_rows() as u64;
    }
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
    let wave = options.encode_wave.max(1);
    let mut next = 0usize;
    let produce = |cancelled: &crate::sync::AtomicBool| -> Option<Result<Vec<Encoded>>> {
        if next >= plan.len() || cancelled.load(Ordering::SeqCst) {
            return None;
        }
        let end = (next + wave).min(plan.len());
        let encoded = plan[next..end].par_iter().map(encode_one).collect::<Result<Vec<_>>>();
        next = end;
        Some(encoded)
    };
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
    if plan.len() <= wave {
        let encoded = plan.par_iter().map(encode_one).collect::<Result<Vec<_>>>()?;
        if encoded.iter().map(|e| e.bytes.len()).sum::<usize>() <= DEFER_BYTES {
            let (entries, deferred) = encoded.into_iter().map(|e| (e.entry.clone(), (e.entry.key, e.bytes))).unzip();
            return Ok(Written { entries, deferred });
        }
        return Ok(Written { entries: store(encoded)?, deferred: Vec::new() });
    }
    let waves = handover::run(options.io_workers, options.queue_capacity, produce, store)?;
    Ok(Written { entries: waves.into_iter().flatten().collect(), deferred: Vec::new() })
}
