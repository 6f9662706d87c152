//! Appends from a stream of record batches ([`Library::append_stream`]): the rows are encoded and stored
//! as the stream is read, so an append of more data than fits in memory holds about a wave of segments
//! at a time, as [`Library::write_stream`] does.
//!
//! Unlike [`Library::append`], the symbol's trailing small slices are not merged with the new rows (that
//! would need the rows again when a concurrent commit moves the tail, and a stream cannot be read
//! twice): the new rows are stored once, numbered from row 0, and every commit attempt places them
//! after the rows of whatever version is then the latest, checking the schema and the index order
//! against it. `compact_data` merges small slices left behind.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use floe_formats::AtomKey;
use floe_formats::record::{IndexKind, Operation};

use crate::error::Result;
use crate::head::{self, Change};
use crate::library::{Library, VersionedItem, check_append_start, check_same_layout, committed_item, moved_rows};
use crate::pipeline::write;

impl Library {
    /// Appends the rows of a stream of record batches (all with `schema`, indexed by `index`) after the
    /// symbol's last row, making a new version; creates the symbol if it has no live version. The
    /// stream is read as the write pipeline has room for more, and each batch is checked as it arrives
    /// (schema; index column without nulls and sorted, across batches too), as in
    /// [`Library::write_stream`]. The symbol's schema must be the stream's (string columns given as
    /// codes count as the plain strings they are); under dynamic schema the stream must still match
    /// exactly (use [`Library::append`] to add or widen columns).
    ///
    /// The new rows are committed after the rows of the version that is the latest at commit time: a
    /// concurrent append that lands first is kept, and this one follows it if its rows still come
    /// after. A bad batch far down the stream fails the append after earlier segments were stored;
    /// nothing is committed then, and what was stored is deleted.
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol, schema or index column (before anything is read or written), a
    /// bad batch, a schema other than the symbol's (`SchemaMismatch`), or rows starting before the
    /// symbol's last index value (`UnsortedIndex`, found when committing); the stream's own errors;
    /// storage errors; `Conflict` as [`Library::write`].
    pub fn append_stream(
        &self,
        symbol: &str,
        schema: SchemaRef,
        index: IndexKind,
        batches: impl Iterator<Item = Result<RecordBatch>>,
        metadata: Option<&[u8]>,
    ) -> Result<VersionedItem> {
        let (job, head) = self.stream_job(symbol, &schema, &index)?;
        let stored = floe_formats::stored_schema(&schema);
        // Refused before anything is read when the latest version already tells (it is checked again
        // against whatever is the latest at commit time).
        if let Some(rh) = head
            && let Some(v) = head::live_latest(&rh.head)
        {
            let rec = head::record_of(self.storage().as_ref(), symbol, &rh.head, v)?;
            let old = self.cached_index(&rec.index_key)?;
            check_same_layout(symbol, &old.schema, &old.descriptor.index, &stored, &index)?;
        }
        let mut since = crate::clock::now_ns();
        let mut new_rows = self.store_stream(&job, &schema, &index, batches)?;
        let mut attempt_keys: Vec<AtomKey> = Vec::new();
        let mut attempts = 0u32;
        let result = self.commit(symbol, |h| {
            attempts += 1;
            self.discard(&mut attempt_keys);
            if attempts > 1 && self.too_old_to_reuse(since) {
                let copies = self.copy_segments(&new_rows, symbol)?;
                let mut old: Vec<AtomKey> = new_rows.iter().map(|e| e.key.clone()).collect();
                new_rows = copies;
                since = crate::clock::now_ns();
                self.discard(&mut old);
            }
            let next = h.map_or(0, |h| h.latest() + 1);
            let live = head::live_record(self.storage().as_ref(), symbol, h)?;
            let (entries, base) = match &live {
                None => (Vec::new(), 0),
                Some(rec) => {
                    let old = self.cached_index(&rec.index_key)?;
                    check_same_layout(symbol, &old.schema, &old.descriptor.index, &stored, &index)?;
                    if let (Some(first), IndexKind::Timestamp(_)) = (new_rows.first(), &index) {
                        check_append_start(symbol, rec, first.index_start)?;
                    }
                    (old.entries.clone(), rec.row_count)
                }
            };
            let mut entries = entries;
            entries.extend(moved_rows(&new_rows, base, matches!(index, IndexKind::RowCount)));
            let rows = write::Written { entries, deferred: Vec::new() };
            let nv = self.finish_index(symbol, next, Operation::Append, &stored, &index, rows, metadata)?;
            attempt_keys.push(nv.index_key.clone());
            Ok(Change::Append(nv))
        });
        committed_item(symbol, "append", result, || {
            self.discard(&mut attempt_keys);
            let mut keys: Vec<AtomKey> = new_rows.iter().map(|e| e.key.clone()).collect();
            self.discard(&mut keys);
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow_array::RecordBatch;
    use floe_backends::{ListScope, Storage};
    use floe_formats::KeyType;
    use floe_formats::record::IndexKind;

    use crate::test_storage::{library, table};
    use crate::{Detail, ErrorKind, ReadRequest};

    fn batches(ts: std::ops::Range<i64>, per: i64) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut a = ts.start;
        while a < ts.end {
            let b = (a + per).min(ts.end);
            out.push(table(a..b).batches()[0].clone());
            a = b;
        }
        out
    }

    /// `source` as a stream that runs `meanwhile` (another writer's commit) just before handing out
    /// its `at`-th batch (counting from 1).
    fn appending_at(
        source: Vec<RecordBatch>,
        at: usize,
        mut meanwhile: impl FnMut(),
    ) -> impl Iterator<Item = crate::Result<RecordBatch>> {
        let mut source = source.into_iter();
        let mut n = 0;
        std::iter::from_fn(move || {
            n += 1;
            if n == at {
                meanwhile();
            }
            source.next().map(Ok)
        })
    }

    fn ts() -> IndexKind {
        IndexKind::Timestamp("ts".into())
    }

    fn read_all(lib: &crate::Library) -> RecordBatch {
        lib.read("s", &ReadRequest::default()).expect("reads").data
    }

    fn data_keys(storage: &Arc<dyn Storage>) -> usize {
        storage.list_all(KeyType::TableData, ListScope::Symbol("s")).expect("list").len()
    }

    #[test]
    fn a_stream_appends_like_a_table_and_creates_the_symbol() {
        let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
        let lib = library(Arc::clone(&storage)); // 4 rows a slice
        let schema = table(0..1).schema().clone();
        let it = lib.append_stream("s", Arc::clone(&schema), ts(), batches(0..10, 3).into_iter().map(Ok), None);
        assert_eq!(it.expect("creates").version, 0);
        let v1 = lib.append_stream("s", Arc::clone(&schema), ts(), batches(10..33, 5).into_iter().map(Ok), Some(b"m"));
        assert_eq!(v1.expect("appends").version, 1);
        assert_eq!(read_all(&lib), table(0..33).batches()[0].clone());
        assert_eq!(lib.read_metadata("s", &crate::AsOf::Latest).expect("meta").1.as_deref(), Some(&b"m"[..]));
        // An empty stream makes a version with the same rows.
        lib.append_stream("s", Arc::clone(&schema), ts(), std::iter::empty(), None).expect("empty");
        assert_eq!(read_all(&lib).num_rows(), 33);
    }

    #[test]
    fn a_stream_that_does_not_fit_is_refused_and_leaves_nothing() {
        let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
        let lib = library(Arc::clone(&storage));
        lib.write("s", &table(0..10), None).expect("write");
        let before = data_keys(&storage);
        // Another schema: refused before the stream is read.
        let pulled = AtomicUsize::new(0);
        let other = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "ts",
            arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None),
            false,
        )]));
        let stream = std::iter::from_fn(|| {
            pulled.fetch_add(1, Ordering::SeqCst);
            None
        });
        let err = lib.append_stream("s", other, ts(), stream, None).expect_err("schema");
        assert_eq!((err.kind(), err.detail()), (ErrorKind::InvalidInput, Detail::SchemaMismatch), "{err}");
        assert_eq!(pulled.load(Ordering::SeqCst), 0);
        // Rows before the symbol's end: found at commit, after the stream was stored; all of it deleted.
        let schema = table(0..1).schema().clone();
        let err = lib.append_stream("s", schema, ts(), batches(5..20, 4).into_iter().map(Ok), None).expect_err("order");
        assert_eq!((err.kind(), err.detail()), (ErrorKind::InvalidInput, Detail::UnsortedIndex), "{err}");
        assert_eq!(data_keys(&storage), before);
        assert_eq!(read_all(&lib), table(0..10).batches()[0].clone());
    }

    #[test]
    fn an_append_that_lands_during_the_stream_is_kept_and_followed() {
        let storage: Arc<dyn Storage> = Arc::new(floe_backends::MemoryStorage::default());
        let lib = library(Arc::clone(&storage));
        lib.write("s", &table(0..10), None).expect("write");
        let other = library(Arc::clone(&storage));
        let schema = table(0..1).schema().clone();
        // Halfway through the stream another writer appends rows 10..12; the stream's rows 20..40 follow.
        let stream = appending_at(batches(20..40, 4), 3, || {
            other.append("s", &table(10..12), None).expect("concurrent append");
        });
        let item = lib.append_stream("s", Arc::clone(&schema), ts(), stream, None).expect("appends after it");
        assert_eq!(item.version, 2);
        let got = read_all(&lib);
        let want = arrow_select::concat::concat_batches(
            &schema,
            [table(0..12).batches()[0].clone(), table(20..40).batches()[0].clone()].iter(),
        )
        .expect("concat");
        assert_eq!(got, want);
        // One that lands with rows after the stream's: this append can no longer follow it.
        let stream = appending_at(batches(50..60, 4), 2, || {
            other.append("s", &table(70..72), None).expect("concurrent append");
        });
        let err = lib.append_stream("s", schema, ts(), stream, None).expect_err("now out of order");
        assert_eq!(err.detail(), Detail::UnsortedIndex, "{err}");
        assert_eq!(read_all(&lib).num_rows(), 12 + 20 + 2);
    }
}
