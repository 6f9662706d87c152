//! [`LmdbStorage`]: the [`Storage`] of one library, over its shared environment.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use floe_formats::{AtomKey, Key, KeyClass, KeyType, RefKey};
use lmdb::{Database, RwTransaction, Transaction, WriteFlags};
use rayon::prelude::*;

use super::env::{BACKEND, Durability, Env, TxnError, le_u64, next_generation, optional};
use super::listing;
use crate::error::{Result, StorageError};
use crate::storage::{ListPage, ListScope, RefExpectation, RefToken, RefValue, Storage, check_page_limit};

/// Values of one `put_batch` write transaction, at most (a single larger value goes alone); a larger
/// batch commits in several. LMDB is slow to place several large values in one transaction: storing
/// 32 values of 2.5 MB durably took 34 ms in transactions of one or two values and 71 ms in
/// transactions of four (10 MB), 8 values of 10 MB 36-44 ms one per transaction and 69 ms two by two
/// (`backends/examples/lmdb_floor.rs`-style, design/decisions.md D53). Also bounds the work redone
/// when a full map forces a retry.
const BATCH_TXN_BYTES: usize = 6 << 20;

/// `visit_batch` visits on the calling thread when there is one value, or the values add up to at
/// most this: handing work to rayon and back costs ~20-40 µs on a busy 2-core VM, more than visiting
/// a small read's segments takes (a 10-row read of one version: an engine span of ~64 µs).
const INLINE_VISIT_BYTES: usize = 128 << 10;

/// The storage of one library in an LMDB store (see `design/backends.md#lmdb`).
///
/// Cheap to clone; every clone and every storage of the same library in this process shares one
/// environment. All methods may be called from any thread.
#[derive(Debug, Clone)]
pub struct LmdbStorage {
    env: Arc<Env>,
    library: String,
}

impl LmdbStorage {
    pub(crate) fn new(env: Arc<Env>, library: String) -> Self {
        LmdbStorage { env, library }
    }

    /// The library name.
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The folder holding this library's environment.
    pub fn path(&self) -> &std::path::Path {
        self.env.path()
    }

    /// The size of this process's memory map of the environment now, in bytes (it grows when full).
    ///
    /// # Errors
    /// Backend errors reading the environment info.
    pub fn map_size(&self) -> Result<u64> {
        self.env.map_size()
    }

    /// `put_batch_parts`, one write transaction per `BATCH_TXN_BYTES` of values, each as durable as
    /// `durability` says (`Env::write_with`).
    fn put_parts(&self, items: Vec<(AtomKey, Vec<Bytes>)>, durability: Durability) -> Vec<Result<()>> {
        let binaries: Vec<Vec<u8>> = items.iter().map(|(k, _)| atom_binary(k)).collect();
        let lens: Vec<usize> = items.iter().map(|(_, parts)| parts.iter().map(Bytes::len).sum()).collect();
        let mut results = Vec::with_capacity(items.len());
        let mut start = 0;
        while start < items.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < items.len() && (end == start || bytes + lens[end] <= BATCH_TXN_BYTES) {
                bytes += lens[end];
                end += 1;
            }
            let body = |txn: &mut RwTransaction<'_>| {
                let mut out = Vec::with_capacity(end - start);
                for ((key, value), binary) in items[start..end].iter().zip(&binaries[start..end]) {
                    out.push(match put_one(txn, self.env.atoms, binary, key, value) {
                        Ok(()) => Ok(()),
                        Err(TxnError::Storage(e)) => Err(e),
                        Err(e @ TxnError::Lmdb(_)) => return Err(e),
                    });
                }
                Ok(out)
            };
            let chunk = self.env.write_with("put_batch", durability, body);
            match chunk {
                Ok(out) => results.extend(out),
                Err(e) => results.extend((start..end).map(|_| Err(batch_error(&e)))),
            }
            start = end;
        }
        results
    }
}

fn atom_binary(key: &AtomKey) -> Vec<u8> {
    Key::Atom(key.clone()).to_binary()
}

fn ref_binary(key: &RefKey) -> Vec<u8> {
    Key::Ref(key.clone()).to_binary()
}

/// Create-only write of one object, given as `parts` joined, inside `txn`; equal bytes already
/// present are a success. The parts are copied straight into the space LMDB reserves for the value
/// (`MDB_RESERVE`), which it would otherwise fill by copying a joined value: one copy either way.
fn put_one(
    txn: &mut RwTransaction<'_>,
    db: Database,
    binary: &[u8],
    key: &AtomKey,
    parts: &[Bytes],
) -> std::result::Result<(), TxnError> {
    let len: usize = parts.iter().map(Bytes::len).sum();
    match optional(txn.get(db, &binary))? {
        Some(existing) if existing.len() == len && same_as_parts(existing, parts) => Ok(()),
        Some(_) => Err(StorageError::already_exists(key).into()),
        None => {
            // Valid until the next update of this transaction: filled before anything else happens.
            let space = txn.reserve(db, &binary, len, WriteFlags::empty())?;
            let mut at = 0;
            for part in parts {
                space[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            Ok(())
        }
    }
}

/// The value stored under `key` in `db`, borrowed from the memory map for as long as `txn` lives;
/// `NotFound` naming the key if there is none.
fn value_in<'t>(txn: &'t impl Transaction, db: Database, key: &AtomKey) -> std::result::Result<&'t [u8], TxnError> {
    optional(txn.get(db, &atom_binary(key)))?.ok_or_else(|| TxnError::Storage(StorageError::not_found(key)))
}

/// Whether `stored` is `parts` joined (the lengths already match).
fn same_as_parts(stored: &[u8], parts: &[Bytes]) -> bool {
    let mut at = 0;
    parts.iter().all(|part| {
        let same = stored[at..at + part.len()] == part[..];
        at += part.len();
        same
    })
}

/// A copy of a whole-batch error for each item (`StorageError` is not `Clone`).
fn batch_error(e: &StorageError) -> StorageError {
    match e {
        StorageError::Unavailable { message, .. } => StorageError::unavailable(BACKEND, message.clone()),
        other => StorageError::other(BACKEND, other.to_string()),
    }
}

/// Decodes a stored reference value: 8-byte LE generation, then the bytes.
fn decode_ref<'s>(key: &RefKey, stored: &'s [u8]) -> Result<(u64, &'s [u8])> {
    let generation = le_u64(stored)
        .ok_or_else(|| StorageError::other(BACKEND, format!("reference {key} is stored in fewer than 8 bytes")))?;
    Ok((generation, &stored[8..]))
}

/// A stored reference value as read: its bytes copied out of the map, its generation as the token.
fn ref_value(key: &RefKey, stored: &[u8]) -> Result<RefValue> {
    let (generation, bytes) = decode_ref(key, stored)?;
    Ok(RefValue { bytes: Bytes::copy_from_slice(bytes), token: RefToken::new(generation.to_string()) })
}

fn clamp(range: &Range<u64>, len: usize) -> Range<usize> {
    let len64 = len as u64;
    let start = range.start.min(len64);
    let end = range.end.min(len64).max(start);
    // Both are at most `len`, a usize.
    usize::try_from(start).unwrap_or(len)..usize::try_from(end).unwrap_or(len)
}

impl Storage for LmdbStorage {
    fn describe(&self) -> String {
        format!("lmdb://{} (library {})", self.env.path().display(), self.library)
    }

    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        let binary = atom_binary(key);
        self.env.write("put", |txn| put_one(txn, self.env.atoms, &binary, key, std::slice::from_ref(&value)))
    }

    fn put_batch(&self, items: Vec<(AtomKey, Bytes)>) -> Vec<Result<()>> {
        self.put_batch_parts(items.into_iter().map(|(k, v)| (k, vec![v])).collect())
    }

    /// One write transaction (durable: its pages and its meta page synced) per `BATCH_TXN_BYTES` (6 MiB)
    /// of values rather than per key; each value's parts are copied into LMDB's pages directly (see
    /// `put_one`).
    fn put_batch_parts(&self, items: Vec<(AtomKey, Vec<Bytes>)>) -> Vec<Result<()>> {
        self.put_parts(items, Durability::Now)
    }

    /// As `put_batch_parts`, but each transaction's meta page is left for the next durable write to
    /// sync (`Durability::WithNextWrite`): one sync per transaction instead of two.
    fn put_batch_parts_before_commit(&self, items: Vec<(AtomKey, Vec<Bytes>)>) -> Vec<Result<()>> {
        self.put_parts(items, Durability::WithNextWrite)
    }

    /// `visit_batch` hands out slices of the memory map.
    fn lends_pages(&self) -> bool {
        true
    }

    /// One write transaction at a time: a second concurrent `put_batch` would only wait for the lock.
    fn concurrent_puts(&self) -> usize {
        1
    }

    fn get(&self, key: &AtomKey) -> Result<Bytes> {
        let binary = atom_binary(key);
        self.env.read("get", |txn| match optional(txn.get(self.env.atoms, &binary))? {
            Some(v) => Ok(Bytes::copy_from_slice(v)),
            None => Err(StorageError::not_found(key).into()),
        })
    }

    /// Copies only the requested bytes out of the map.
    fn get_range(&self, key: &AtomKey, range: Range<u64>) -> Result<Bytes> {
        let binary = atom_binary(key);
        self.env.read("get_range", |txn| match optional(txn.get(self.env.atoms, &binary))? {
            Some(v) => Ok(Bytes::copy_from_slice(&v[clamp(&range, v.len())])),
            None => Err(StorageError::not_found(key).into()),
        })
    }

    /// One read transaction for all keys.
    fn get_batch(&self, keys: &[AtomKey]) -> Vec<Result<Bytes>> {
        let outcome = self.env.read("get_batch", |txn| {
            Ok(keys
                .iter()
                .map(|key| match txn.get(self.env.atoms, &atom_binary(key)) {
                    Ok(v) => Ok(Bytes::copy_from_slice(v)),
                    Err(lmdb::Error::NotFound) => Err(StorageError::not_found(key)),
                    Err(e) => Err(super::env::lmdb_error(self.env.path(), "get_batch", e)),
                })
                .collect())
        });
        outcome.unwrap_or_else(|e| keys.iter().map(|_| Err(batch_error(&e))).collect())
    }

    /// Zero copy: one read transaction stays on the calling thread (LMDB read transactions are
    /// `!Send`) while rayon workers run `visit` on slices borrowed straight from the memory map. The
    /// transaction, and so the slices, live until every visit has returned.
    fn visit_batch(&self, keys: &[AtomKey], visit: &(dyn Fn(usize, &[u8]) -> Result<()> + Sync)) -> Result<()> {
        self.env.read("visit_batch", |txn| {
            let slices = keys
                .iter()
                .map(|key| value_in(txn, self.env.atoms, key))
                .collect::<std::result::Result<Vec<&[u8]>, TxnError>>()?;
            let visit_one = |(i, bytes): (usize, &&[u8])| {
                // The worker acts for this transaction: a read inside `visit` must not queue behind a
                // map resize, which waits for this very transaction to end.
                let _lent = self.env.lend();
                visit(i, bytes)
            };
            let small = slices.iter().map(|s| s.len()).sum::<usize>() <= INLINE_VISIT_BYTES;
            if slices.len() <= 1 || small {
                slices.iter().enumerate().try_for_each(visit_one).map_err(TxnError::Storage)
            } else {
                slices.par_iter().enumerate().try_for_each(visit_one).map_err(TxnError::Storage)
            }
        })
    }

    /// One read transaction, the values visited in place in key order on this thread.
    fn visit_batch_here(&self, keys: &[AtomKey], visit: &mut dyn FnMut(usize, &[u8]) -> Result<()>) -> Result<()> {
        self.env.read("visit_batch_here", |txn| {
            for (i, key) in keys.iter().enumerate() {
                visit(i, value_in(txn, self.env.atoms, key)?).map_err(TxnError::Storage)?;
            }
            Ok(())
        })
    }

    /// One read transaction and one cursor walk per range (see `listing.rs`), visiting values in place
    /// in the memory map: no tree search per key, no copy.
    fn visit_listed(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        visit: &mut dyn FnMut(&Key, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let ranges = listing::ranges(key_type, scope);
        let db = match key_type.class() {
            KeyClass::Atom => self.env.atoms,
            KeyClass::Ref => self.env.refs,
        };
        self.env.read("visit_listed", |txn| {
            listing::visit(txn, db, &ranges, &mut |key, stored| match key {
                Key::Atom(_) => visit(key, stored),
                // A reference is stored behind its generation (the token), which a walk does not give.
                Key::Ref(r) => visit(key, decode_ref(r, stored)?.1),
            })
        })
    }

    fn exists(&self, key: &AtomKey) -> Result<bool> {
        let binary = atom_binary(key);
        self.env.read("exists", |txn| Ok(optional(txn.get(self.env.atoms, &binary))?.is_some()))
    }

    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()> {
        let binaries: Vec<Vec<u8>> = keys.iter().map(atom_binary).collect();
        self.env.write("delete_batch", |txn| {
            for binary in &binaries {
                optional(txn.del(self.env.atoms, binary, None))?;
            }
            Ok(())
        })
    }

    /// Keys come in binary-key order (see `listing.rs`); prefix scopes seek one range per symbol
    /// length.
    fn list_page(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<ListPage> {
        check_page_limit(limit)?;
        let db = match key_type.class() {
            KeyClass::Atom => self.env.atoms,
            KeyClass::Ref => self.env.refs,
        };
        let ranges = listing::ranges(key_type, scope);
        let after = after.map(Key::to_binary);
        self.env.read("list_page", |txn| listing::scan(txn, db, &ranges, after.as_deref(), limit))
    }

    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>> {
        let binary = ref_binary(key);
        self.env.read("read_ref", |txn| {
            let Some(stored) = optional(txn.get(self.env.refs, &binary))? else {
                return Ok(None);
            };
            Ok(Some(ref_value(key, stored)?))
        })
    }

    /// One read transaction for both (one snapshot: the object as of the reference read).
    fn read_ref_and_get(&self, key: &RefKey, object: &AtomKey) -> (Result<Option<RefValue>>, Result<Option<Bytes>>) {
        let (ref_binary, object_binary) = (ref_binary(key), atom_binary(object));
        let read = self.env.read("read_ref_and_get", |txn| {
            let reference = match optional(txn.get(self.env.refs, &ref_binary))? {
                None => Ok(None),
                Some(stored) => ref_value(key, stored).map(Some),
            };
            let got = optional(txn.get(self.env.atoms, &object_binary))?.map(Bytes::copy_from_slice);
            Ok((reference, got))
        });
        match read {
            Ok((reference, got)) => (reference, Ok(got)),
            Err(e) => (Err(batch_error(&e)), Err(e)),
        }
    }

    /// One read transaction for all the keys (one reader slot and one snapshot, instead of one each).
    fn read_ref_batch(&self, keys: &[RefKey]) -> Vec<Result<Option<RefValue>>> {
        let read = self.env.read("read_ref_batch", |txn| {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(match optional(txn.get(self.env.refs, &ref_binary(key)))? {
                    None => Ok(None),
                    Some(stored) => ref_value(key, stored).map(Some),
                });
            }
            Ok(out)
        });
        match read {
            Ok(results) => results,
            Err(e) => keys.iter().map(|_| Err(batch_error(&e))).collect(),
        }
    }

    /// The compare and the swap happen in one write transaction, which LMDB serializes across
    /// threads and processes.
    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        self.commit_ref(Vec::new(), key, value, expected)
    }

    /// The objects and the reference in one durable write transaction, all or nothing.
    fn commit_ref(
        &self,
        objects: Vec<(AtomKey, Bytes)>,
        key: &RefKey,
        value: Bytes,
        expected: RefExpectation<'_>,
    ) -> Result<RefToken> {
        let binaries: Vec<Vec<u8>> = objects.iter().map(|(k, _)| atom_binary(k)).collect();
        let binary = ref_binary(key);
        // A token this backend never issued matches nothing: a conflict, like a stale one.
        let expected_generation = match expected {
            RefExpectation::Absent => None,
            RefExpectation::At(token) => Some(token.as_str().parse::<u64>().ok()),
        };
        let generation = self.env.write("write_ref", |txn| {
            for ((k, v), b) in objects.iter().zip(&binaries) {
                put_one(txn, self.env.atoms, b, k, std::slice::from_ref(v))?;
            }
            let current = match optional(txn.get(self.env.refs, &binary))? {
                Some(stored) => Some(decode_ref(key, stored)?.0),
                None => None,
            };
            let matches = match (expected_generation, current) {
                (None, None) => true,
                (Some(Some(want)), Some(have)) => want == have,
                _ => false,
            };
            if !matches {
                return Err(StorageError::conflict(key).into());
            }
            let generation = next_generation(txn, self.env.meta, current)?;
            let mut stored = Vec::with_capacity(8 + value.len());
            stored.extend_from_slice(&generation.to_le_bytes());
            stored.extend_from_slice(&value);
            txn.put(self.env.refs, &binary, &stored, WriteFlags::empty())?;
            Ok(generation)
        })?;
        Ok(RefToken::new(generation.to_string()))
    }

    fn delete_ref(&self, key: &RefKey) -> Result<()> {
        let binary = ref_binary(key);
        self.env.write("delete_ref", |txn| {
            optional(txn.del(self.env.refs, &binary, None))?;
            Ok(())
        })
    }
}
