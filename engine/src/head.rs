//! The per-symbol head reference and the commit loop that advances it (design/concurrency.md).

use bytes::Bytes;
use floe_backends::{RefExpectation, RefToken, RefValue, Storage, StorageError};
use floe_formats::record::{Head, Operation, Tombstones, VersionRecord};
use floe_formats::{AtomFields, AtomKey, KeyType, RefKey};

use crate::commit_stats::CommitMeter;
use crate::error::{Error, ErrorKind, Result};

/// The head reference key of `symbol`.
pub(crate) fn head_key(symbol: &str) -> Result<RefKey> {
    Ok(RefKey::new(KeyType::VersionRef, symbol)?)
}

/// The deterministic key of the version record of `(symbol, version)`.
pub(crate) fn version_key(symbol: &str, version: u64) -> Result<AtomKey> {
    Ok(AtomKey::new(KeyType::Version, symbol, AtomFields { version, ..AtomFields::default() })?)
}

/// A head as read, with the token to CAS against.
#[derive(Debug, Clone)]
pub(crate) struct ReadHead {
    pub head: Head,
    pub token: RefToken,
}

/// Reads the head of `symbol`, `None` if it was never written.
///
/// # Errors
/// Storage errors; `CorruptData` if the head does not decode.
pub(crate) fn read_head(storage: &dyn Storage, symbol: &str) -> Result<Option<ReadHead>> {
    let key = head_key(symbol)?;
    let v = storage.read_ref(&key)?;
    decode_head(symbol, &key, v)
}

fn decode_head(symbol: &str, key: &RefKey, v: Option<RefValue>) -> Result<Option<ReadHead>> {
    let Some(v) = v else { return Ok(None) };
    Ok(Some(ReadHead { head: decode_head_bytes(symbol, key, &v.bytes)?, token: v.token }))
}

/// Decodes the head `bytes` of `symbol` (stored under `key`), refusing a valid head of another symbol.
///
/// # Errors
/// `CorruptData` naming the symbol and the key.
pub(crate) fn decode_head_bytes(symbol: &str, key: &RefKey, bytes: &[u8]) -> Result<Head> {
    let head = Head::decode(bytes).map_err(|e| Error::from(e).context(format!("head of symbol {symbol:?} ({key})")))?;
    if head.record.index_key.symbol() != symbol {
        return Err(Error::corrupt(format!(
            "the head of symbol {symbol:?} ({key}) holds a version of {:?} (swapped references?)",
            head.record.index_key.symbol()
        )));
    }
    Ok(head)
}

/// The newest version of the head that is not deleted.
pub(crate) fn live_latest(head: &Head) -> Option<u64> {
    head.tombstones.highest_live_at_or_below(head.latest())
}

/// The record of the newest live version of `symbol` under `head`, if it has one (none without a
/// head): what an operation building on the symbol's current rows starts from.
///
/// # Errors
/// As [`record_of`].
pub(crate) fn live_record(storage: &dyn Storage, symbol: &str, head: Option<&Head>) -> Result<Option<VersionRecord>> {
    let Some(head) = head else { return Ok(None) };
    live_latest(head).map(|v| record_of(storage, symbol, head, v)).transpose()
}

/// The record of live version `v` of `symbol` (1 request unless it is the head's own record).
///
/// # Errors
/// `NotFound` if the record is missing (deleted concurrently); storage or corruption errors.
pub(crate) fn record_of(storage: &dyn Storage, symbol: &str, head: &Head, v: u64) -> Result<VersionRecord> {
    if v == head.latest() {
        return Ok(head.record.clone());
    }
    let key = version_key(symbol, v)?;
    let bytes = storage.get(&key).map_err(|e| Error::from(e).context(record_context(symbol, v, &key)))?;
    decode_record(symbol, v, &key, &bytes)
}

/// A version record as [`read_head_and_record`] fetched it: its bytes, `None` if not stored, or the
/// storage's error (which matters only if the record is needed).
pub(crate) type FetchedRecord = std::result::Result<Option<Bytes>, StorageError>;

/// The head of `symbol` and the stored record of its version `v`, read together
/// ([`Storage::read_ref_and_get`]: one LMDB transaction, one S3 round trip instead of two), for a
/// read of a given version. Then [`record_given`] takes the record from what was fetched.
///
/// # Errors
/// As [`read_head`]; the record's own errors wait for [`record_given`], which alone knows whether the
/// record is needed.
pub(crate) fn read_head_and_record(
    storage: &dyn Storage,
    symbol: &str,
    v: u64,
) -> Result<(Option<ReadHead>, FetchedRecord)> {
    let (key, record_key) = (head_key(symbol)?, version_key(symbol, v)?);
    let (head, record) = storage.read_ref_and_get(&key, &record_key);
    Ok((decode_head(symbol, &key, head?)?, record))
}

/// [`record_of`] with the stored record as [`read_head_and_record`] fetched it beside the head. The
/// latest's record is the head's own; a record the joint read did not find is fetched again: on a
/// backend whose two requests run at once, the record may be written (by the commit that made `v`
/// older than the latest) between the two.
///
/// # Errors
/// As [`record_of`].
pub(crate) fn record_given(
    storage: &dyn Storage,
    symbol: &str,
    head: &Head,
    v: u64,
    fetched: FetchedRecord,
) -> Result<VersionRecord> {
    match fetched {
        Ok(Some(bytes)) if v != head.latest() => decode_record(symbol, v, &version_key(symbol, v)?, &bytes),
        Err(e) if v != head.latest() => {
            Err(Error::from(e).context(record_context(symbol, v, &version_key(symbol, v)?)))
        }
        _ => record_of(storage, symbol, head, v),
    }
}

fn record_context(symbol: &str, v: u64, key: &AtomKey) -> String {
    format!("version {v} of symbol {symbol:?} (record {key})")
}

/// Decodes the record stored under `key`, refusing a valid record of another version or symbol.
fn decode_record(symbol: &str, v: u64, key: &AtomKey, bytes: &[u8]) -> Result<VersionRecord> {
    let context = || record_context(symbol, v, key);
    let record = VersionRecord::decode(bytes).map_err(|e| Error::from(e).context(context()))?;
    // A valid record stored under another version's or symbol's key (swapped objects) must not be used.
    if record.version != v || record.index_key.symbol() != symbol {
        return Err(Error::corrupt(format!(
            "{}: the record says it is v{} of {:?}",
            context(),
            record.version,
            record.index_key.symbol()
        )));
    }
    Ok(record)
}

/// What a commit attempt produces, before it gets a version id.
#[derive(Debug, Clone)]
pub(crate) struct NewVersion {
    pub operation: Operation,
    pub index_key: AtomKey,
    /// The encoded index segment, stored together with the head's CAS (`Storage::commit_ref`).
    pub index_bytes: Bytes,
    /// Data segments of a small write, stored with the commit too rather than before it (one LMDB
    /// transaction per append instead of two; nothing left behind by an attempt that loses).
    pub segments: Vec<(AtomKey, Bytes)>,
    pub row_count: u64,
    pub index_start: i64,
    pub index_end: i64,
}

/// The change a commit makes to the head.
pub(crate) enum Change {
    /// Add a version.
    Append(NewVersion),
    /// Only change the tombstones (deletes); `None` means nothing to do.
    Tombstones(Option<Tombstones>),
}

/// Runs the commit loop for `symbol`: read the head, ask `attempt` for the change against it, CAS.
/// On conflict `attempt` is called again with the new head (it may reuse earlier work); after
/// `max_attempts` the error kind is `Conflict`.
///
/// Returns the committed head, or `None` when `attempt` reported nothing to do.
///
/// # Errors
/// Whatever `attempt` returns; storage errors; `Conflict` after too many lost races.
pub(crate) fn commit(
    storage: &dyn Storage,
    symbol: &str,
    max_attempts: u32,
    meter: &CommitMeter,
    mut attempt: impl FnMut(Option<&Head>) -> Result<Change>,
) -> Result<Option<Head>> {
    let key = head_key(symbol)?;
    let mut backoff = Backoff::new(symbol);
    for _ in 0..max_attempts.max(1) {
        let started = std::time::Instant::now();
        // Every exit of this iteration is the end of an attempt, however it ends.
        let timer = AttemptTimer { meter, started };
        let current = read_head(storage, symbol)?;
        let head = current.as_ref().map(|c| &c.head);
        let mut objects: Vec<(AtomKey, Bytes)> = Vec::new();
        let change = match attempt(head) {
            Ok(c) => c,
            // The attempt read objects of the head's live version (its index, segments to merge) that a
            // concurrent delete or prune removed after moving the head: a lost race like a CAS conflict,
            // so rebase on the new head rather than fail.
            Err(e) if e.kind() == ErrorKind::NotFound && head_moved(storage, symbol, current.as_ref())? => {
                backoff.wait();
                continue;
            }
            Err(e) => return Err(e),
        };
        let new_head = match change {
            Change::Tombstones(None) => return Ok(None),
            Change::Tombstones(Some(t)) => {
                let Some(h) = head else { return Err(Error::internal("tombstones for a symbol without a head")) };
                Head { record: h.record.clone(), tombstones: t }
            }
            Change::Append(nv) => {
                objects.extend(nv.segments);
                objects.push((nv.index_key.clone(), nv.index_bytes));
                if let Some(h) = head {
                    objects.extend(repair_forward(storage, symbol, h)?);
                }
                let version = head.map_or(0, |h| h.latest() + 1);
                let timestamp_ns = crate::clock::now_ns().max(head.map_or(i64::MIN, |h| h.record.timestamp_ns));
                let record = VersionRecord {
                    version,
                    timestamp_ns,
                    operation: nv.operation,
                    index_key: nv.index_key,
                    row_count: nv.row_count,
                    index_start: nv.index_start,
                    index_end: nv.index_end,
                };
                Head { record, tombstones: head.map(|h| h.tombstones.clone()).unwrap_or_default() }
            }
        };
        let expected = current.as_ref().map_or(RefExpectation::Absent, |c| RefExpectation::At(&c.token));
        match storage.commit_ref(objects, &key, Bytes::from(new_head.encode()), expected) {
            // The new version's own record is written by the next commit (repair_forward), in the same
            // transaction as that commit's CAS: until then the head holds it.
            Ok(_) => {
                meter.committed();
                return Ok(Some(new_head));
            }
            Err(StorageError::Conflict { .. }) => {
                drop(timer); // the backoff is between attempts, not part of one
                backoff.wait();
            }
            // The write may or may not have happened: find out before anyone cleans up.
            Err(e) => return settle_ambiguous(storage, symbol, head, &new_head, e.into()),
        }
    }
    Err(Error::new(
        ErrorKind::Conflict,
        format!("symbol {symbol:?}: lost the commit race {max_attempts} times in a row; nothing was committed"),
    ))
}

/// Records an attempt's duration in its meter when dropped (at any exit of the attempt).
struct AttemptTimer<'a> {
    meter: &'a CommitMeter,
    started: std::time::Instant,
}

impl Drop for AttemptTimer<'_> {
    fn drop(&mut self) {
        self.meter.attempt(self.started.elapsed());
    }
}

/// Whether the head of `symbol` is no longer the one read as `seen`.
fn head_moved(storage: &dyn Storage, symbol: &str, seen: Option<&ReadHead>) -> Result<bool> {
    let now = storage.read_ref(&head_key(symbol)?)?;
    Ok(now.map(|v| v.token) != seen.map(|s| s.token.clone()))
}

/// After a reference write failed in an unknown way, decides whether `attempted` was committed: it
/// was if the head now holds its record, or a later head's history holds it at the same id.
fn settle_ambiguous(
    storage: &dyn Storage,
    symbol: &str,
    previous: Option<&Head>,
    attempted: &Head,
    error: Error,
) -> Result<Option<Head>> {
    let unknown = |e: Error| Err(e.detailed(crate::error::Detail::CommitOutcomeUnknown));
    let now = match read_head(storage, symbol) {
        Ok(Some(h)) => h.head,
        Ok(None) => return Err(error), // nothing was ever committed
        Err(_) => return unknown(error),
    };
    let v = attempted.latest();
    if previous.is_some_and(|p| p.latest() == v) {
        // A tombstone change: committed if every id it deleted is deleted now.
        let all = attempted.tombstones.ranges().iter().all(|&(a, b)| (a..=b).all(|x| now.tombstones.contains(x)));
        return if all { Ok(Some(attempted.clone())) } else { Err(error) };
    }
    let committed = match now.latest().cmp(&v) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => now.record == attempted.record,
        std::cmp::Ordering::Greater => match record_of(storage, symbol, &now, v) {
            Ok(r) => r == attempted.record,
            Err(_) => return unknown(error),
        },
    };
    if !committed {
        return Err(error);
    }
    Ok(Some(attempted.clone()))
}

/// The object `ver(symbol, head.latest)` to store with the next CAS if it is missing and the head's
/// latest version is live: invariant I1 of design/concurrency.md. Deterministic bytes, so racing writers
/// agree.
fn repair_forward(storage: &dyn Storage, symbol: &str, head: &Head) -> Result<Option<(AtomKey, Bytes)>> {
    if head.tombstones.contains(head.latest()) {
        return Ok(None);
    }
    let key = version_key(symbol, head.latest())?;
    if storage.exists(&key)? {
        return Ok(None);
    }
    Ok(Some((key, Bytes::from(head.record.encode()))))
}

/// Jittered exponential backoff between commit attempts, so racing writers spread out. (Under loom a
/// yield is the whole backoff and the state goes unused.)
#[cfg_attr(feature = "loom", allow(dead_code))]
struct Backoff {
    step: u32,
    seed: u64,
}

impl Backoff {
    fn new(symbol: &str) -> Self {
        let seed = xxhash_rust::xxh3::xxh3_64(symbol.as_bytes())
            ^ (crate::clock::now_ns() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Backoff { step: 0, seed }
    }

    #[cfg(feature = "loom")]
    fn wait(&mut self) {
        loom::thread::yield_now();
    }

    #[cfg(not(feature = "loom"))]
    fn wait(&mut self) {
        self.step = (self.step + 1).min(10);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let cap_us = 50u64 << self.step.min(8); // 100 µs .. 12.8 ms
        std::thread::sleep(std::time::Duration::from_micros(self.seed % cap_us));
    }
}

#[cfg(all(test, feature = "loom"))]
mod loom_tests {
    //! The real commit loop over a storage whose references are a loom mutex: two writers racing on one
    //! symbol both commit, with distinct, contiguous version ids, in every interleaving.

    use std::collections::BTreeMap;

    use floe_backends::{ListPage, ListScope, RefValue};
    use floe_formats::Key;

    use super::*;
    use crate::sync::{Arc, Mutex, lock};

    #[derive(Debug, Default)]
    struct LoomStorage {
        atoms: Mutex<BTreeMap<AtomKey, Bytes>>,
        refs: Mutex<BTreeMap<RefKey, (Bytes, u64)>>,
    }

    impl Storage for LoomStorage {
        fn describe(&self) -> String {
            "loom".into()
        }
        fn put(&self, key: &AtomKey, value: Bytes) -> floe_backends::Result<()> {
            let mut a = lock(&self.atoms);
            match a.get(key) {
                Some(v) if *v != value => Err(StorageError::already_exists(key)),
                Some(_) => Ok(()),
                None => {
                    a.insert(key.clone(), value);
                    Ok(())
                }
            }
        }
        fn get(&self, key: &AtomKey) -> floe_backends::Result<Bytes> {
            lock(&self.atoms).get(key).cloned().ok_or_else(|| StorageError::not_found(key))
        }
        fn exists(&self, key: &AtomKey) -> floe_backends::Result<bool> {
            Ok(lock(&self.atoms).contains_key(key))
        }
        fn delete_batch(&self, keys: &[AtomKey]) -> floe_backends::Result<()> {
            let mut a = lock(&self.atoms);
            keys.iter().for_each(|k| {
                a.remove(k);
            });
            Ok(())
        }
        fn list_page(
            &self,
            _: KeyType,
            _: ListScope<'_>,
            _: Option<&Key>,
            _: usize,
        ) -> floe_backends::Result<ListPage> {
            Ok(ListPage::default())
        }
        fn read_ref(&self, key: &RefKey) -> floe_backends::Result<Option<RefValue>> {
            Ok(lock(&self.refs)
                .get(key)
                .map(|(b, g)| RefValue { bytes: b.clone(), token: RefToken::new(g.to_string()) }))
        }
        fn write_ref(
            &self,
            key: &RefKey,
            value: Bytes,
            expected: RefExpectation<'_>,
        ) -> floe_backends::Result<RefToken> {
            let mut r = lock(&self.refs);
            let current = r.get(key).map(|(_, g)| *g);
            let ok = match (expected, current) {
                (RefExpectation::Absent, None) => true,
                (RefExpectation::At(t), Some(g)) => t.as_str() == g.to_string(),
                _ => false,
            };
            if !ok {
                return Err(StorageError::conflict(key));
            }
            let g = current.unwrap_or(0) + 1;
            r.insert(key.clone(), (value, g));
            Ok(RefToken::new(g.to_string()))
        }
        fn delete_ref(&self, key: &RefKey) -> floe_backends::Result<()> {
            lock(&self.refs).remove(key);
            Ok(())
        }
    }

    fn new_version(n: u64) -> NewVersion {
        let fields = AtomFields { version: n, content_hash: n, ..AtomFields::default() };
        NewVersion {
            operation: Operation::Append,
            index_key: AtomKey::new(KeyType::TableIndex, "s", fields).expect("valid key"),
            index_bytes: Bytes::from_static(b"index"),
            segments: Vec::new(),
            row_count: n,
            index_start: 0,
            index_end: 0,
        }
    }

    #[test]
    fn racing_commits_are_all_kept() {
        loom::model(|| {
            let storage = Arc::new(LoomStorage::default());
            let handles: Vec<_> = (0..2u64)
                .map(|w| {
                    let storage = Arc::clone(&storage);
                    loom::thread::spawn(move || {
                        let head = commit(&*storage, "s", 10, &CommitMeter::default(), |_| {
                            Ok(Change::Append(new_version(100 + w)))
                        })
                        .expect("commit")
                        .expect("a head");
                        (w, head.latest())
                    })
                })
                .collect();
            let mut got: Vec<(u64, u64)> = handles.into_iter().map(|h| h.join().expect("no panic")).collect();
            got.sort_by_key(|&(_, v)| v);
            assert_eq!(got.iter().map(|&(_, v)| v).collect::<Vec<_>>(), vec![0, 1], "distinct, contiguous ids");
            let head = read_head(&*storage, "s").expect("read").expect("exists").head;
            assert_eq!(head.latest(), 1);
            // Version 0's record exists (I1): written by its committer or repaired by the other writer.
            let v0 = storage.get(&version_key("s", 0).expect("key")).expect("ver 0 present");
            let rec = VersionRecord::decode(&v0).expect("decodes");
            let winner0 = got[0].0;
            assert_eq!(rec.index_key, new_version(100 + winner0).index_key, "v0 is the first committer's");
            assert_eq!(head.record.index_key, new_version(100 + got[1].0).index_key);
        });
    }
}
