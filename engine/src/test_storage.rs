//! Support for the engine's own tests: a memory storage instrumented to make commits lose their race,
//! declare a write concurrency, record how `put_batch` was called and run an action before a data
//! fetch; and the small timestamp-indexed table and library the tests share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use floe_backends::{ListPage, ListScope, MemoryStorage, RefExpectation, RefToken, RefValue, Storage, StorageError};
use floe_formats::{AtomKey, Key, KeyType, RefKey};

/// [`MemoryStorage`] with test hooks; see the fields.
#[derive(Debug, Default)]
pub(crate) struct TestStorage {
    /// Where everything is stored (shared, so a second library can act on the same objects).
    pub inner: std::sync::Arc<MemoryStorage>,
    /// The next this many reference writes fail with `Conflict` after `pause`, as commits do under
    /// heavy contention.
    pub losses: AtomicU32,
    /// How long a lost reference write takes.
    pub pause: Duration,
    /// What `concurrent_puts` declares (0: the default, unlimited).
    pub put_limit: usize,
    /// How long each `put_batch` lingers, so that overlapping calls show.
    pub put_delay: Duration,
    /// `put_batch` calls running now.
    pub in_flight: AtomicUsize,
    /// The most `put_batch` calls seen running at once.
    pub most_in_flight: AtomicUsize,
    /// The number of items of each `put_batch`, in call order.
    pub batch_sizes: Mutex<Vec<usize>>,
    /// Runs once, just before the first `get_batch` that fetches data segments: a concurrent change.
    pub before_data_read: Hook,
    /// Every data segment key fetched (`get` and `get_batch`), one batch per entry, in call order.
    pub data_fetches: Mutex<Vec<Vec<AtomKey>>>,
    /// `put_batch_parts` holds on to every part it is given, as a backend keeping the values it
    /// stores would (by default it stores a joined copy and lets go of the parts, as LMDB does).
    pub keep_parts: bool,
    /// The parts kept (see `keep_parts`).
    pub kept_parts: Mutex<Vec<Bytes>>,
    /// The address of the first part of every object `put_batch_parts` was given, in call order.
    pub put_addresses: Mutex<Vec<usize>>,
    /// Says it lends its pages (as LMDB does), so reads visit through `visit_batch` and
    /// `visit_batch_here` instead of fetching with `get_batch`.
    pub lend: bool,
    /// `visit_batch` calls (parallel visits) so far.
    pub parallel_visits: AtomicUsize,
    /// `visit_batch_here` calls (visits on the calling thread) so far.
    pub visits_here: AtomicUsize,
    /// `read_ref_and_get` calls so far.
    pub joint_reads: AtomicUsize,
    /// The next this many `read_ref_and_get` calls find no object, as two concurrent S3 requests may
    /// when the object is written between them.
    pub joint_misses: AtomicU32,
}

/// A one-shot action for [`TestStorage::before_data_read`].
#[derive(Default)]
pub(crate) struct Hook(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl Hook {
    /// Sets the action.
    pub fn set(&self, action: impl FnOnce() + Send + 'static) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(action));
    }

    fn run(&self) {
        // Taken out first: the action may call back into the storage.
        let action = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(action) = action {
            action();
        }
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl TestStorage {
    fn record(&self, keys: &[AtomKey]) {
        let data: Vec<AtomKey> = keys.iter().filter(|k| k.key_type() == KeyType::TableData).cloned().collect();
        if !data.is_empty() {
            self.data_fetches.lock().unwrap_or_else(|p| p.into_inner()).push(data);
        }
    }
}

impl Storage for TestStorage {
    fn describe(&self) -> String {
        "test storage".into()
    }
    fn put(&self, key: &AtomKey, value: Bytes) -> floe_backends::Result<()> {
        self.inner.put(key, value)
    }
    fn put_batch(&self, items: Vec<(AtomKey, Bytes)>) -> Vec<floe_backends::Result<()>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        self.batch_sizes.lock().unwrap_or_else(|p| p.into_inner()).push(items.len());
        std::thread::sleep(self.put_delay);
        let out = self.inner.put_batch(items);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        out
    }
    fn put_batch_parts(&self, items: Vec<(AtomKey, Vec<Bytes>)>) -> Vec<floe_backends::Result<()>> {
        let firsts = items.iter().map(|(_, parts)| parts.first().map_or(0, |p| p.as_ptr() as usize));
        self.put_addresses.lock().unwrap_or_else(|p| p.into_inner()).extend(firsts);
        if self.keep_parts {
            let all = items.iter().flat_map(|(_, parts)| parts.iter().cloned());
            self.kept_parts.lock().unwrap_or_else(|p| p.into_inner()).extend(all);
        }
        // Joined into a copy, as LMDB copies the parts into its pages.
        self.put_batch(items.into_iter().map(|(k, parts)| (k, Bytes::from(parts.concat()))).collect())
    }
    fn concurrent_puts(&self) -> usize {
        if self.put_limit == 0 { usize::MAX } else { self.put_limit }
    }
    fn lends_pages(&self) -> bool {
        self.lend
    }
    fn visit_batch(
        &self,
        keys: &[AtomKey],
        visit: &(dyn Fn(usize, &[u8]) -> floe_backends::Result<()> + Sync),
    ) -> floe_backends::Result<()> {
        self.parallel_visits.fetch_add(1, Ordering::SeqCst);
        self.record(keys);
        self.inner.visit_batch(keys, visit)
    }
    fn visit_batch_here(
        &self,
        keys: &[AtomKey],
        visit: &mut dyn FnMut(usize, &[u8]) -> floe_backends::Result<()>,
    ) -> floe_backends::Result<()> {
        self.visits_here.fetch_add(1, Ordering::SeqCst);
        self.record(keys);
        self.inner.visit_batch_here(keys, visit)
    }
    fn get(&self, key: &AtomKey) -> floe_backends::Result<Bytes> {
        self.record(std::slice::from_ref(key));
        self.inner.get(key)
    }
    fn get_batch(&self, keys: &[AtomKey]) -> Vec<floe_backends::Result<Bytes>> {
        if keys.iter().any(|k| k.key_type() == KeyType::TableData) {
            self.before_data_read.run();
        }
        self.record(keys);
        self.inner.get_batch(keys)
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
    fn read_ref_and_get(
        &self,
        key: &RefKey,
        object: &AtomKey,
    ) -> (floe_backends::Result<Option<RefValue>>, floe_backends::Result<Option<Bytes>>) {
        self.joint_reads.fetch_add(1, Ordering::Relaxed);
        let miss = self.joint_misses.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        let (reference, got) = self.inner.read_ref_and_get(key, object);
        (reference, if miss { Ok(None) } else { got })
    }
    fn read_ref(&self, key: &RefKey) -> floe_backends::Result<Option<RefValue>> {
        self.inner.read_ref(key)
    }
    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> floe_backends::Result<RefToken> {
        if self.losses.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            std::thread::sleep(self.pause);
            return Err(StorageError::Conflict { key: key.to_string() });
        }
        self.inner.write_ref(key, value, expected)
    }
    fn delete_ref(&self, key: &RefKey) -> floe_backends::Result<()> {
        self.inner.delete_ref(key)
    }
}

/// A table of rows `ts` (a timestamp index `ts`, and `x` = 3 x `ts`).
pub(crate) fn table(ts: std::ops::Range<i64>) -> crate::Table {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("x", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampNanosecondArray::from_iter_values(ts.clone())),
            Arc::new(Int64Array::from_iter_values(ts.map(|t| t * 3))),
        ],
    )
    .expect("batch");
    crate::Table::from_batch(batch, crate::IndexKind::Timestamp("ts".into())).expect("table")
}

/// A library over `storage` with small segments (4 rows x 1 column), so a few rows make several.
pub(crate) fn library(storage: std::sync::Arc<dyn Storage>) -> crate::Library {
    let options = crate::LibraryOptions { rows_per_segment: 4, columns_per_segment: 1, dynamic_schema: false };
    crate::Library::new("test", storage, options, crate::PipelineOptions::default())
}
