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

// Not under loom: the pipeline's threads are loom threads there, which only run inside a loom model.
#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use arrow_array::{Float64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use bytes::Bytes;
    use floe_backends::{ListPage, ListScope, MemoryStorage, RefExpectation, RefToken, RefValue, Storage};
    use floe_formats::{AtomKey, Key, KeyType, RefKey};

    use super::{SliceJob, wave_bounds, write_segments};
    use crate::options::PipelineOptions;

    /// Memory storage that declares `limit` concurrent puts and records how many `put_batch` calls
    /// ran at once (each lingers a little so overlaps show) and how many items each carried.
    #[derive(Debug)]
    struct CountingPuts {
        inner: MemoryStorage,
        limit: usize,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        batch_sizes: Mutex<Vec<usize>>,
    }

    impl CountingPuts {
        fn new(limit: usize) -> Self {
            CountingPuts {
                inner: MemoryStorage::new(),
                limit,
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
                batch_sizes: Mutex::new(Vec::new()),
            }
        }
    }

    impl Storage for CountingPuts {
        fn describe(&self) -> String {
            "counting-puts".into()
        }
        fn put(&self, key: &AtomKey, value: Bytes) -> floe_backends::Result<()> {
            self.inner.put(key, value)
        }
        fn put_batch(&self, items: Vec<(AtomKey, Bytes)>) -> Vec<floe_backends::Result<()>> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            self.batch_sizes.lock().expect("not poisoned").push(items.len());
            std::thread::sleep(Duration::from_millis(3));
            let out = self.inner.put_batch(items);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            out
        }
        fn concurrent_puts(&self) -> usize {
            self.limit
        }
        fn get(&self, key: &AtomKey) -> floe_backends::Result<Bytes> {
            self.inner.get(key)
        }
        fn exists(&self, key: &AtomKey) -> floe_backends::Result<bool> {
            self.inner.exists(key)
        }
        fn delete_batch(&self, keys: &[AtomKey]) -> floe_backends::Result<()> {
            self.inner.delete_batch(keys)
        }
        fn list_page(
            &self,
            key_type: KeyType,
            scope: ListScope<'_>,
            after: Option<&Key>,
            limit: usize,
        ) -> floe_backends::Result<ListPage> {
            self.inner.list_page(key_type, scope, after, limit)
        }
        fn read_ref(&self, key: &RefKey) -> floe_backends::Result<Option<RefValue>> {
            self.inner.read_ref(key)
        }
        fn write_ref(
            &self,
            key: &RefKey,
            value: Bytes,
            expected: RefExpectation<'_>,
        ) -> floe_backends::Result<RefToken> {
            self.inner.write_ref(key, value, expected)
        }
        fn delete_ref(&self, key: &RefKey) -> floe_backends::Result<()> {
            self.inner.delete_ref(key)
        }
    }

    /// 40 row slices of 1,000 rows (a timestamp and a float column: 16,000 bytes of input each).
    fn slices() -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("x", DataType::Float64, true),
        ]));
        (0..40i64)
            .map(|s| {
                let ts = TimestampNanosecondArray::from_iter_values((0..1000).map(|r| s * 1000 + r));
                let x = Float64Array::from_iter_values((0..1000).map(|r| (s * 1000 + r) as f64));
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ts), Arc::new(x)]).expect("valid batch")
            })
            .collect()
    }

    fn store_through(limit: usize) -> (Arc<CountingPuts>, usize) {
        let counting = Arc::new(CountingPuts::new(limit));
        let storage: Arc<dyn Storage> = Arc::clone(&counting) as Arc<dyn Storage>;
        // Three 16,000-byte segments reach 40,000 bytes: waves of three.
        let options = PipelineOptions {
            io_workers: 4,
            queue_capacity: 4,
            encode_wave: 8,
            wave_bytes: 40_000,
            ..Default::default()
        };
        let job = SliceJob {
            symbol: "s",
            version: 0,
            row_slices: slices(),
            row_base: 0,
            index_pos: Some(0),
            groups: vec![(0, 1)],
        };
        let written = write_segments(&storage, &options, job).expect("written");
        assert!(written.deferred.is_empty(), "a job of many waves is stored by the pipeline");
        assert_eq!(written.entries.len(), 40);
        assert!(written.entries.windows(2).all(|w| w[0].row_end == w[1].row_start), "entries in row order");
        (counting, written.entries.len())
    }

    #[test]
    fn a_backend_with_one_writer_gets_one_put_batch_at_a_time() {
        let (counting, _) = store_through(1);
        assert_eq!(counting.most_in_flight.load(Ordering::SeqCst), 1);
        let sizes = counting.batch_sizes.lock().expect("not poisoned").clone();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|&n| n <= 3), "waves close at wave_bytes: {sizes:?}");
    }

    #[test]
    fn an_unlimited_backend_gets_up_to_io_workers_put_batches_at_once() {
        let (counting, _) = store_through(usize::MAX);
        let most = counting.most_in_flight.load(Ordering::SeqCst);
        assert!((1..=4).contains(&most), "{most} concurrent put_batch calls with 4 I/O workers");
    }

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
