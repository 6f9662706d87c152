//! The write pipeline: slice → encode, compress and hash in parallel (rayon) → hand over through a
//! bounded channel to I/O workers that store the segments concurrently → index entries in order.
//!
//! Memory is bounded: the wave being encoded, the waves queued and the waves being stored exist at a
//! time, whatever the table's size. A wave is at most `encode_wave` segments and closes once their input
//! reaches `wave_bytes`. Workers are `io_workers`, but no more than the backend serves at once
//! ([`Storage::concurrent_puts`]: one on LMDB, where more would only wait holding their waves), and the
//! queue is no longer than the workers.

use arrow_array::{ArrayRef, RecordBatch};
use bytes::Bytes;
use floe_backends::Storage;
use floe_formats::{AtomFields, AtomKey, EncodedSegment, KeyType, encode_segment_into};
use rayon::prelude::*;

use crate::deferred::Deferred;
use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::options::PipelineOptions;
use crate::pipeline::handover;
use crate::pipeline::segment_buffers::SegmentBuffers;
use crate::sync::{Arc, Ordering};
use crate::table;

/// One encoded segment on its way to storage.
struct Encoded {
    entry: IndexEntry,
    /// Its raw columns may still be the input's buffers (lent, D44).
    segment: EncodedSegment,
}

/// What to slice: where the segments go and the columns layout. The rows come separately, all at once
/// ([`write_segments`]) or as a stream ([`write_segment_stream`]).
pub(crate) struct SliceJob<'a> {
    /// The symbol the data keys are filed under.
    pub symbol: &'a str,
    /// The version the data keys carry (provenance only; a rebased commit keeps them).
    pub version: u64,
    /// Row number of the first row of the first row slice in the new version.
    pub row_base: u64,
    /// Position of the index column, if any.
    pub index_pos: Option<usize>,
    /// The data columns (every column but the index), by schema position.
    pub data_cols: Vec<usize>,
    /// Column groups over the data-column list.
    pub groups: Vec<(usize, usize)>,
    /// Columns whose values are made as each segment is encoded (the table holds stand-ins; D49).
    pub deferred: Option<&'a Deferred<'a>>,
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

/// One segment to encode: a row slice (shared by its column groups), a group and the slice's first row.
struct SegmentJob {
    rows: RecordBatch,
    group: (usize, usize),
    row_start: u64,
    input_bytes: usize,
}

/// The segments of a stream of row slices, one per (slice, column group), numbered from `row_base`.
struct SegmentJobs<'j, I> {
    slices: I,
    job: &'j SliceJob<'j>,
    current: Option<RecordBatch>,
    next_group: usize,
    row: u64,
}

impl<I: Iterator<Item = Result<RecordBatch>>> Iterator for SegmentJobs<'_, I> {
    type Item = Result<SegmentJob>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(rows) = &self.current {
                if let Some(&group) = self.job.groups.get(self.next_group) {
                    self.next_group += 1;
                    let input_bytes = table::segment_input_bytes(rows, self.job.index_pos, &self.job.data_cols, group);
                    return Some(Ok(SegmentJob { rows: rows.clone(), group, row_start: self.row, input_bytes }));
                }
                self.row += rows.num_rows() as u64;
                self.current = None;
            }
            match self.slices.next()? {
                Ok(rows) if rows.num_rows() == 0 => continue,
                Ok(rows) => {
                    self.current = Some(rows);
                    self.next_group = 0;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Groups segments into waves as they come: a wave takes segments until it holds `max_segments` or
/// their input reaches `max_bytes`, and always at least one; a wave of more than one segment then takes
/// more (within `max_segments`, while there are any) until it holds a multiple of `threads`, so that
/// encoding it in parallel leaves no thread idle at its end (three `ticks` segments on two threads
/// took as long as four). Pulls no segment beyond the wave it builds, so a streamed input is read one
/// wave ahead at most.
struct Waves<I> {
    jobs: I,
    max_segments: usize,
    max_bytes: usize,
    threads: usize,
}

impl<I: Iterator<Item = Result<SegmentJob>>> Iterator for Waves<I> {
    type Item = Result<Vec<SegmentJob>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut wave = Vec::new();
        let mut bytes = 0usize;
        let max = self.max_segments.max(1);
        let balanced = |n: usize| n == 1 || n.is_multiple_of(self.threads.max(1));
        while wave.len() < max && (wave.is_empty() || bytes < self.max_bytes || !balanced(wave.len())) {
            match self.jobs.next() {
                Some(Ok(job)) => {
                    bytes = bytes.saturating_add(job.input_bytes);
                    wave.push(job);
                }
                Some(Err(e)) => return Some(Err(e)),
                None => break,
            }
        }
        (!wave.is_empty()).then_some(Ok(wave))
    }
}

/// Encodes one segment and makes its key and index entry. The segment goes into a spare buffer of
/// `buffers` when given one. Without `buffers` (a job's
/// first wave, which may be its only one and may travel with the commit) or when the backend keeps
/// what it stores, the segment is shrunk to its length, as [`floe_formats::encode_segment`] does.
fn encode_one(job: &SliceJob<'_>, now: i64, s: &SegmentJob, buffers: Option<&SegmentBuffers>) -> Result<Encoded> {
    let mut seg = table::segment_batch(&s.rows, job.index_pos, &job.data_cols, s.group)?;
    if let Some(deferred) = job.deferred {
        seg = with_deferred_values(job, deferred, s, seg)?;
    }
    let mut segment = encode_segment_into(&seg, None, buffers.map(SegmentBuffers::take).unwrap_or_default())?;
    if buffers.is_none_or(SegmentBuffers::shrink_before_store) {
        // In place: the allocator returns the tail without a copy.
        segment.shrink_to_fit();
    }
    let row_end = s.row_start + s.rows.num_rows() as u64;
    let (index_start, index_end) = match job.index_pos {
        None => (s.row_start as i64, row_end as i64 - 1),
        Some(_) => {
            let ts = table::timestamps(seg.column(0))?;
            (ts.value(0), ts.value(ts.len() - 1))
        }
    };
    let fields = AtomFields {
        version: job.version,
        creation_ts: now,
        content_hash: segment.content_hash(),
        start: index_start,
        end: index_end,
    };
    let key = AtomKey::new(KeyType::TableData, job.symbol, fields)?;
    let col = |c: usize| u32::try_from(c).map_err(|_| Error::invalid("too many columns"));
    let entry = IndexEntry {
        row_start: s.row_start,
        row_end,
        index_start,
        index_end,
        col_start: col(s.group.0)?,
        col_end: col(s.group.1)?,
        key,
        seg_row_offset: 0,
    };
    Ok(Encoded { entry, segment })
}

/// `seg` (segment `s`'s batch) with its deferred columns' stand-ins replaced by their values, made now
/// for this segment's rows alone.
fn with_deferred_values(
    job: &SliceJob<'_>,
    deferred: &Deferred<'_>,
    s: &SegmentJob,
    seg: RecordBatch,
) -> Result<RecordBatch> {
    // The segment's deferred columns: (place in the segment, schema position).
    let wanted: Vec<(usize, usize)> = crate::table::segment_positions(job.index_pos, &job.data_cols, s.group)
        .enumerate()
        .filter(|&(_, p)| deferred.has(p))
        .collect();
    if wanted.is_empty() {
        return Ok(seg);
    }
    let first = usize::try_from(s.row_start - job.row_base).map_err(|_| Error::invalid("too many rows"))?;
    let rows = first..first + seg.num_rows();
    let stand_ins: Vec<&ArrayRef> = wanted.iter().map(|&(i, _)| seg.column(i)).collect();
    let ps: Vec<usize> = wanted.iter().map(|&(_, p)| p).collect();
    let values = deferred.fetch(&ps, rows, &stand_ins)?;
    let mut columns = seg.columns().to_vec();
    for ((i, _), v) in wanted.into_iter().zip(values) {
        columns[i] = v;
    }
    Ok(RecordBatch::try_new(seg.schema(), columns)?)
}

/// Encodes a wave: in parallel on the rayon pool, or on this thread when it is small (an append of a
/// few rows), where a trip through rayon and back costs more than encoding it.
fn encode_wave(
    job: &SliceJob<'_>,
    now: i64,
    wave: &[SegmentJob],
    buffers: Option<&SegmentBuffers>,
) -> Result<Vec<Encoded>> {
    if super::on_calling_thread(wave.len(), wave.iter().map(|s| s.input_bytes).sum()) {
        wave.iter().map(|s| encode_one(job, now, s, buffers)).collect()
    } else {
        wave.par_iter().map(|s| encode_one(job, now, s, buffers)).collect()
    }
}

/// Encodes every segment of `row_slices` and stores them, except that a small job (one wave, at most
/// [`DEFER_BYTES`]) is handed back unstored in [`Written::deferred`] for the commit to store.
///
/// # Errors
/// The first encoding or storage error; segments already stored stay (unreachable until committed).
pub(crate) fn write_segments(
    storage: &std::sync::Arc<dyn Storage>,
    options: &PipelineOptions,
    job: SliceJob<'_>,
    row_slices: Vec<RecordBatch>,
) -> Result<Written> {
    write_waves(storage, options, &job, row_slices.into_iter().map(Ok), true)
}

/// Encodes and stores the segments of a stream of row slices, pulling the stream as the pipeline has
/// room (a wave ahead of what is being stored), so memory stays bounded whatever the stream's length.
/// Everything is stored; nothing is deferred to the commit.
///
/// # Errors
/// The stream's first error, or the first encoding or storage error; segments already stored stay
/// (unreachable until committed).
pub(crate) fn write_segment_stream(
    storage: &std::sync::Arc<dyn Storage>,
    options: &PipelineOptions,
    job: &SliceJob<'_>,
    row_slices: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<Vec<IndexEntry>> {
    Ok(write_waves(storage, options, job, row_slices, false)?.entries)
}

fn write_waves(
    storage: &std::sync::Arc<dyn Storage>,
    options: &PipelineOptions,
    job: &SliceJob<'_>,
    row_slices: impl Iterator<Item = Result<RecordBatch>>,
    may_defer: bool,
) -> Result<Written> {
    super::pool::ensure_thread_pool();
    let now = crate::clock::now_ns();
    let jobs = SegmentJobs { slices: row_slices, job, current: None, next_group: 0, row: job.row_base };
    let threads = rayon::current_num_threads();
    // Segments of deferred columns are copies made for the write (D49): a wave holds about one
    // segment's worth of them, so that few exist at once (D53).
    let max_bytes =
        if job.deferred.is_some() { options.wave_bytes.min(table::SEGMENT_TARGET_BYTES) } else { options.wave_bytes };
    let mut waves = Waves { jobs, max_segments: options.encode_wave, max_bytes, threads };
    let Some(first) = waves.next().transpose()? else { return Ok(Written::default()) };
    let workers = options.io_workers.min(storage.concurrent_puts()).max(1);
    // Segments of deferred columns are copies made for the write (D49), not the input's own buffers:
    // none waits queued, so one is encoded while another is stored and no more exist at once.
    let queue = if job.deferred.is_some() { 0 } else { options.queue_capacity.min(workers) };
    // Segments in flight at most: the wave encoding, the queued ones and one per worker storing.
    let in_flight = options.encode_wave.max(1) * (2 + queue + workers);
    let buffers = Arc::new(SegmentBuffers::new(in_flight));
    let first = encode_wave(job, now, &first, None)?;
    let storage = std::sync::Arc::clone(storage);
    // Each wave of segments is encoded in parallel on the rayon pool (CPU work) and handed over whole to
    // an I/O worker, which stores it with one `put_batch_parts_before_commit`: concurrent requests on
    // S3, one transaction on LMDB, whose meta page the commit's own sync makes durable (D59). Every
    // caller writes the index naming these segments with a durable write afterwards.
    let returns = Arc::clone(&buffers);
    let store = move |wave: Vec<Encoded>| -> Result<Vec<IndexEntry>> {
        // Each segment goes as parts: slices of its own buffer and the input's buffers its raw columns
        // are still in (D44). A second reference to its own buffer (a count, not a copy) tells after
        // the store whether the backend let go of it, so that the buffer can serve a later segment.
        let mut buffers = Vec::with_capacity(wave.len());
        let (entries, items): (Vec<IndexEntry>, Vec<_>) = wave
            .into_iter()
            .map(|e| {
                let (buffer, parts) = e.segment.into_parts();
                buffers.push(buffer);
                (e.entry.clone(), (e.entry.key, parts))
            })
            .unzip();
        let results = storage.put_batch_parts_before_commit(items);
        buffers.into_iter().for_each(|b| returns.give_back(b));
        for (r, e) in results.into_iter().zip(&entries) {
            r.map_err(|err| Error::from(err).context(format!("storing segment {}", e.key)))?;
        }
        Ok(entries)
    };
    let second = waves.next().transpose()?;
    let Some(second) = second else {
        // A job of one wave (every small write and append) needs no I/O workers: if small it goes back
        // to the caller for the commit to store, else it is stored from this thread.
        if may_defer && first.iter().map(|e| e.segment.len()).sum::<usize>() <= DEFER_BYTES {
            let (entries, deferred) =
                first.into_iter().map(|e| (e.entry.clone(), (e.entry.key, Bytes::from(e.segment.into_vec())))).unzip();
            return Ok(Written { entries, deferred });
        }
        return Ok(Written { entries: store(first)?, deferred: Vec::new() });
    };
    let mut ready = vec![first];
    let mut pending = Some(second);
    let produce = |cancelled: &crate::sync::AtomicBool| -> Option<Result<Vec<Encoded>>> {
        if cancelled.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(encoded) = ready.pop() {
            return Some(Ok(encoded));
        }
        let wave = match pending.take() {
            Some(wave) => wave,
            None => match waves.next()? {
                Ok(wave) => wave,
                Err(e) => return Some(Err(e)),
            },
        };
        Some(encode_wave(job, now, &wave, Some(&buffers)))
    };
    let stored = handover::run(workers, queue, produce, store)?;
    Ok(Written { entries: stored.into_iter().flatten().collect(), deferred: Vec::new() })
}

// Not under loom: the pipeline's threads are loom threads there, which only run inside a loom model.
#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use arrow_array::{Float64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use floe_backends::Storage;

    use super::{SliceJob, write_segments};
    use crate::options::PipelineOptions;
    use crate::test_storage::TestStorage;

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

    fn job() -> SliceJob<'static> {
        SliceJob {
            symbol: "s",
            version: 0,
            row_base: 0,
            index_pos: Some(0),
            data_cols: vec![1],
            groups: vec![(0, 1)],
            deferred: None,
        }
    }

    fn store_through(limit: usize) -> (Arc<TestStorage>, usize) {
        // Each put_batch lingers 3 ms so that overlapping calls show.
        let counting =
            Arc::new(TestStorage { put_limit: limit, put_delay: Duration::from_millis(3), ..Default::default() });
        let storage: Arc<dyn Storage> = Arc::clone(&counting) as Arc<dyn Storage>;
        // Three 16,000-byte segments reach 40,000 bytes: waves of three, rounded up to a multiple of
        // the pool's threads (at most eight).
        let options = PipelineOptions {
            io_workers: 4,
            queue_capacity: 4,
            encode_wave: 8,
            wave_bytes: 40_000,
            ..Default::default()
        };
        let written = write_segments(&storage, &options, job(), slices()).expect("written");
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
        let threads = rayon::current_num_threads().clamp(1, 8);
        let most = 3usize.next_multiple_of(threads).min(8);
        assert!(sizes.iter().all(|&n| n <= most), "waves close at wave_bytes: {sizes:?}");
    }

    #[test]
    fn an_unlimited_backend_gets_up_to_io_workers_put_batches_at_once() {
        let (counting, _) = store_through(usize::MAX);
        let most = counting.most_in_flight.load(Ordering::SeqCst);
        assert!((1..=4).contains(&most), "{most} concurrent put_batch calls with 4 I/O workers");
    }

    #[test]
    fn segments_are_encoded_into_the_buffers_of_stored_ones_when_the_backend_lets_go() {
        for keep_parts in [false, true] {
            let storage = Arc::new(TestStorage { put_limit: 1, keep_parts, ..Default::default() });
            let dyn_storage: Arc<dyn Storage> = Arc::clone(&storage) as Arc<dyn Storage>;
            let options = PipelineOptions {
                io_workers: 1,
                queue_capacity: 1,
                encode_wave: 2,
                wave_bytes: 1,
                ..Default::default()
            };
            let written = write_segments(&dyn_storage, &options, job(), slices()).expect("written");
            let addresses = storage.put_addresses.lock().expect("not poisoned").clone();
            let distinct: std::collections::HashSet<_> = addresses.iter().collect();
            assert_eq!(addresses.len(), 40);
            if !keep_parts {
                // The first waves' buffers are fresh; later segments reuse those handed back.
                assert!(distinct.len() <= 12, "{} distinct buffers for 40 segments", distinct.len());
            } else {
                assert_eq!(distinct.len(), 40, "a backend keeping values keeps every buffer");
            }
            // Whatever buffer a segment was encoded into, its bytes are those of a fresh encoding.
            for (entry, slice) in written.entries.iter().zip(slices()) {
                let stored = storage.inner.get(&entry.key).expect("stored");
                assert_eq!(stored, floe_formats::encode_segment(&slice, None).expect("encodes"), "{}", entry.key);
            }
        }
    }

    #[test]
    fn incompressible_columns_reach_the_backend_as_the_inputs_own_buffers() {
        // 40 slices of 1,000 random doubles: stored raw, so lent (D44), not copied into the segments.
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("x", DataType::Float64, true),
        ]));
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let slices: Vec<RecordBatch> = (0..40i64)
            .map(|s| {
                let ts = TimestampNanosecondArray::from_iter_values((0..1000).map(|r| s * 1000 + r));
                let x = Float64Array::from_iter_values((0..1000).map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    f64::from_bits(state >> 2)
                }));
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ts), Arc::new(x)]).expect("valid batch")
            })
            .collect();
        let inputs: Vec<std::ops::Range<usize>> = slices
            .iter()
            .map(|b| {
                let values = b.column(1).to_data().buffers()[0].clone();
                values.as_ptr() as usize..values.as_ptr() as usize + values.len()
            })
            .collect();
        let storage = Arc::new(TestStorage { put_limit: 1, keep_parts: true, ..Default::default() });
        let dyn_storage: Arc<dyn Storage> = Arc::clone(&storage) as Arc<dyn Storage>;
        let options = PipelineOptions { encode_wave: 4, wave_bytes: 40_000, ..Default::default() };
        let written = write_segments(&dyn_storage, &options, job(), slices.clone()).expect("written");
        let kept = storage.kept_parts.lock().expect("not poisoned");
        let lent = kept.iter().filter(|p| inputs.iter().any(|r| r.contains(&(p.as_ptr() as usize)))).count();
        assert_eq!(lent, 40, "each segment's column is one part, the input's own buffer");
        for (entry, slice) in written.entries.iter().zip(&slices) {
            let stored = storage.inner.get(&entry.key).expect("stored");
            assert_eq!(stored, floe_formats::encode_segment(slice, None).expect("encodes"), "{}", entry.key);
        }
    }

    /// The waves `sizes` (segment input bytes, in order) are cut into, as ranges of segment numbers.
    fn wave_bounds(sizes: &[usize], max_segments: usize, max_bytes: usize) -> Vec<std::ops::Range<usize>> {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(vec![0.0]))]).expect("batch");
        let jobs = sizes.iter().enumerate().map(|(i, &input_bytes)| {
            Ok(super::SegmentJob { rows: rows.clone(), group: (0, 1), row_start: i as u64, input_bytes })
        });
        super::Waves { jobs, max_segments, max_bytes, threads: 2 }
            .map(|w| {
                let w = w.expect("no errors");
                let first = w[0].row_start as usize;
                first..first + w.len()
            })
            .collect()
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
        // A wave of several segments takes an even number of them (two threads), within the count.
        assert_eq!(wave_bounds(&[40; 7], 4, 100), vec![0..4, 4..7]);
        assert_eq!(wave_bounds(&[40; 7], 3, 100), vec![0..3, 3..6, 6..7]);
        assert_eq!(wave_bounds(&[60, 60, 60, 200, 10], 8, 100), vec![0..2, 2..4, 4..5]);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod stream_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow_array::{Float64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use floe_backends::{MemoryStorage, Storage};

    use super::{SliceJob, write_segment_stream, write_segments};
    use crate::error::Error;
    use crate::index::IndexEntry;
    use crate::options::PipelineOptions;

    fn slice(first: i64, rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("x", DataType::Float64, true),
        ]));
        let ts = TimestampNanosecondArray::from_iter_values(first..first + rows);
        let x = Float64Array::from_iter_values((first..first + rows).map(|v| v as f64));
        RecordBatch::try_new(schema, vec![Arc::new(ts), Arc::new(x)]).expect("batch")
    }

    fn job() -> SliceJob<'static> {
        SliceJob {
            symbol: "s",
            version: 3,
            row_base: 10,
            index_pos: Some(0),
            data_cols: vec![1],
            groups: vec![(0, 1)],
            deferred: None,
        }
    }

    /// Waves of one segment: a stream of a few slices already runs through the I/O workers.
    fn small_waves() -> PipelineOptions {
        PipelineOptions { encode_wave: 2, wave_bytes: 1, ..PipelineOptions::default() }
    }

    fn rows(entries: &[IndexEntry]) -> Vec<(u64, u64)> {
        entries.iter().map(|e| (e.row_start, e.row_end)).collect()
    }

    #[test]
    fn a_stream_is_stored_whole_and_numbered_like_the_same_slices_at_once() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let slices: Vec<RecordBatch> = (0..7).map(|s| slice(s * 100, 100)).collect();
        let streamed =
            write_segment_stream(&storage, &small_waves(), &job(), slices.clone().into_iter().map(Ok)).expect("stored");
        let at_once = write_segments(&storage, &small_waves(), job(), slices).expect("stored");
        assert_eq!(rows(&streamed), rows(&at_once.entries));
        assert_eq!(streamed.first().map(|e| e.row_start), Some(10));
        assert_eq!(streamed.last().map(|e| e.row_end), Some(710));
        for e in &streamed {
            assert!(storage.exists(&e.key).expect("exists"), "{} stored", e.key);
        }
    }

    #[test]
    fn a_stream_error_stops_the_write_with_that_error() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let pulled = AtomicUsize::new(0);
        let stream = (0..1000).map(|s| {
            pulled.fetch_add(1, Ordering::SeqCst);
            if s == 5 { Err(Error::invalid("batch 5 is bad")) } else { Ok(slice(s * 10, 10)) }
        });
        let err = write_segment_stream(&storage, &small_waves(), &job(), stream).expect_err("fails");
        assert!(err.to_string().contains("batch 5 is bad"), "{err}");
        assert!(pulled.load(Ordering::SeqCst) < 20, "the stream is not read on after the error");
    }

    #[test]
    fn an_empty_stream_writes_nothing() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let entries = write_segment_stream(&storage, &small_waves(), &job(), std::iter::empty()).expect("ok");
        assert!(entries.is_empty());
    }
}
