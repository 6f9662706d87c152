//! The per-symbol head reference and the commit loop that advances it (design/concurrency.md).

use std::time::Duration;

use bytes::Bytes;
use floe_backends::{RefExpectation, RefToken, Storage, StorageError};
use floe_formats::record::{Head, Operation, Tombstones, VersionRecord};
use floe_formats::{AtomFields, AtomKey, KeyType, RefKey};

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
    let Some(v) = storage.read_ref(&head_key(symbol)?)? else { return Ok(None) };
    let head = Head::decode(&v.bytes).map_err(|e| Error::from(e).context(format!("head of symbol {symbol:?}")))?;
    Ok(Some(ReadHead { head, token: v.token }))
}

/// The newest version of the head that is not deleted.
pub(crate) fn live_latest(head: &Head) -> Option<u64> {
    head.tombstones.highest_live_at_or_below(head.latest())
}

/// The record of live version `v` of `symbol` (1 request unless it is the head's own record).
///
/// # Errors
/// `NotFound` if the record is missing (deleted concurrently); storage or corruption errors.
pub(crate) fn record_of(storage: &dyn Storage, symbol: &str, head: &Head, v: u64) -> Result<VersionRecord> {
    if v == head.latest() {
        return Ok(head.record.clone());
    }
    let bytes = storage
        .get(&version_key(symbol, v)?)
        .map_err(|e| Error::from(e).context(format!("version {v} of symbol {symbol:?}")))?;
    let record = VersionRecord::decode(&bytes)?;
    if record.version != v {
        return Err(Error::corrupt(format!("version record of {symbol:?} v{v} says it is v{}", record.version)));
    }
    Ok(record)
}

/// What a commit attempt produces, before it gets a version id.
#[derive(Debug, Clone)]
pub(crate) struct NewVersion {
    pub operation: Operation,
    pub index_key: AtomKey,
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
    mut attempt: impl FnMut(Option<&Head>) -> Result<Change>,
) -> Result<Option<Head>> {
    let key = head_key(symbol)?;
    let mut backoff = Backoff::new(symbol);
    for _ in 0..max_attempts.max(1) {
        let current = read_head(storage, symbol)?;
        let head = current.as_ref().map(|c| &c.head);
        let new_head = match attempt(head)? {
            Change::Tombstones(None) => return Ok(None),
            Change::Tombstones(Some(t)) => {
                let Some(h) = head else { return Err(Error::internal("tombstones for a symbol without a head")) };
                Head { record: h.record.clone(), tombstones: t }
            }
            Change::Append(nv) => {
                if let Some(h) = head {
                    repair_forward(storage, symbol, h)?;
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
        match storage.write_ref(&key, Bytes::from(new_head.encode()), expected) {
            Ok(_) => {
                // Best effort: if this fails the next writer's repair_forward writes it.
                if head.is_none_or(|h| h.latest() != new_head.latest()) {
                    let _ = put_version_record(storage, symbol, &new_head.record);
                }
                return Ok(Some(new_head));
            }
            Err(StorageError::Conflict { .. }) => backoff.wait(),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::new(
        ErrorKind::Conflict,
        format!("symbol {symbol:?}: lost the commit race {max_attempts} times in a row; nothing was committed"),
    ))
}

/// Writes `ver(symbol, latest)` from the copy in the head if the head's latest version is live
/// (invariant I1 of design/concurrency.md). Deterministic bytes, so racing writers agree.
fn repair_forward(storage: &dyn Storage, symbol: &str, head: &Head) -> Result<()> {
    if head.tombstones.contains(head.latest()) {
        return Ok(());
    }
    let key = version_key(symbol, head.latest())?;
    if storage.exists(&key)? {
        return Ok(());
    }
    put_version_record(storage, symbol, &head.record)
}

fn put_version_record(storage: &dyn Storage, symbol: &str, record: &VersionRecord) -> Result<()> {
    storage.put(&version_key(symbol, record.version)?, Bytes::from(record.encode()))?;
    Ok(())
}

/// Jittered exponential backoff between commit attempts, so racing writers spread out.
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

    fn wait(&mut self) {
        self.step = (self.step + 1).min(10);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let cap_us = 50u64 << self.step.min(8); // 100 µs .. 12.8 ms
        std::thread::sleep(Duration::from_micros(self.seed % cap_us));
    }
}
