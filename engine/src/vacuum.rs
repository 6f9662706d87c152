//! Vacuum: removes the objects nothing can reach any more. A crash between writing a version's segments
//! and its commit, or between a delete's commit and its garbage collection, leaves objects behind that no
//! live version or snapshot names; `vacuum` finds and deletes them (design/reliability.md, "Vacuum").
//!
//! Safety against concurrent writers rests on three orderings:
//! 1. Keys are listed **before** the head and snapshots are read, so a version record or index that was
//!    committed before the listing is also visible in the head that is read after it.
//! 2. Data and index objects younger than the grace period are never deleted: a writer in the middle of a
//!    commit has written them but not yet made them reachable.
//! 3. A version committed after the head was read only names objects it wrote itself (young) or objects
//!    the then-newest live version named, which were live when the head was read and are kept, or the
//!    segments of staged chunks it finalizes (see 4).
//! 4. Staged indexes are read **before** the heads, and every segment they name is kept (staged indexes
//!    themselves are never deleted here: they are the user's pending data). A finalize commits its
//!    version before it deletes the staged indexes, so a staged index this vacuum finds gone was
//!    committed before the head was read, and its segments are reachable from that head.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use floe_backends::ListScope;
use floe_formats::record::{Head, SnapshotRecord, VersionRecord};
use floe_formats::{AtomKey, Key, KeyType};

use crate::error::{ErrorKind, Result};
use crate::head;
use crate::index::TableIndex;
use crate::library::Library;
use crate::pipeline::read::verify_object;

/// How many times the reachable set of a symbol is recomputed when a concurrent delete removed an object
/// while it was being computed.
const SYMBOL_ATTEMPTS: usize = 3;

/// Keys deleted per storage call.
const DELETE_CHUNK: usize = 1000;

/// What [`Library::vacuum`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Symbols examined (those with at least one data, index or version object).
    pub symbols: usize,
    /// Data, index and version objects listed.
    pub examined: usize,
    /// Objects some live version or snapshot reaches (kept).
    pub reachable: usize,
    /// Unreachable data segments deleted.
    pub deleted_data: usize,
    /// Unreachable index segments deleted.
    pub deleted_index: usize,
    /// Version records of deleted (tombstoned) or never committed version ids deleted.
    pub deleted_versions: usize,
    /// Unreachable objects kept because they are younger than the grace period (a writer may be about
    /// to commit them).
    pub kept_young: usize,
    /// Symbols left untouched, with the reason (a damaged head or index: what it references is
    /// unknown, so nothing of the symbol is deleted).
    pub skipped: Vec<(String, String)>,
}

impl VacuumReport {
    /// Every object deleted.
    pub fn deleted(&self) -> usize {
        self.deleted_data + self.deleted_index + self.deleted_versions
    }
}

/// The outcome of computing one symbol's reachable set.
enum Reach {
    /// The objects to keep.
    Keys(HashSet<AtomKey>),
    /// An object named by a live version vanished meanwhile (a concurrent delete): compute again.
    Retry,
}

impl Library {
    /// Deletes the data segments, index segments and version records of `symbol` (or of every symbol,
    /// with `None`) that no live version and no snapshot reaches, and whose data and index objects were
    /// created more than `grace` ago. Version records of deleted version ids, or of ids above the head's
    /// newest, are deleted whatever their age (ids are never reused).
    ///
    /// Safe to run while other threads or processes write, as long as `grace` is longer than the
    /// longest single commit attempt plus the writers' `PipelineOptions::max_reuse_age` (clock skew
    /// included): a commit only names objects created that recently, however many races it loses.
    /// Symbols whose head or a live index does not decode are skipped whole (listed in the report).
    ///
    /// # Errors
    /// `InvalidInput` for a bad symbol name; storage errors (listing, reading, deleting).
    pub fn vacuum(&self, symbol: Option<&str>, grace: Duration) -> Result<VacuumReport> {
        if let Some(s) = symbol {
            floe_formats::names::validate_symbol(s)?;
        }
        let storage = &**self.storage();
        let grace_ns = i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX);
        let cutoff = crate::clock::now_ns().saturating_sub(grace_ns);
        let scope = symbol.map_or(ListScope::All, ListScope::Symbol);

        // 1. List first (ordering 1 of the module docs).
        let mut listed: BTreeMap<String, Vec<AtomKey>> = BTreeMap::new();
        for key_type in [KeyType::TableData, KeyType::TableIndex, KeyType::Version, KeyType::StagedIndex] {
            for key in storage.list(key_type, scope) {
                if let Key::Atom(k) = key? {
                    listed.entry(k.symbol().to_owned()).or_default().push(k);
                }
            }
        }
        // 1b. The staged chunks, before any head (ordering 4).
        let mut staged: BTreeMap<String, std::result::Result<HashSet<AtomKey>, String>> = BTreeMap::new();
        for (sym, keys) in &listed {
            let chunks: Vec<&AtomKey> = keys.iter().filter(|k| k.key_type() == KeyType::StagedIndex).collect();
            if !chunks.is_empty() {
                staged.insert(sym.clone(), staged_segments(self, &chunks)?);
            }
        }
        // 2. Then every head, and only then the snapshots (ordering 1, and: a snapshot naming a version
        //    that is deleted in the head we read existed before that head was written, so we see it).
        let mut heads = Vec::with_capacity(listed.len());
        for sym in listed.keys() {
            heads.push(read_head_or_why(self, sym)?);
        }
        let snapshots = read_snapshots(self)?;

        let mut report = VacuumReport { symbols: listed.len(), ..VacuumReport::default() };
        for ((sym, keys), head) in listed.into_iter().zip(heads) {
            report.examined += keys.len();
            let mut reach = Err("objects kept vanishing under concurrent deletes".to_owned());
            let mut head = head;
            let mut fresh_snapshots: Option<Vec<SnapshotRecord>> = None;
            for _ in 0..SYMBOL_ATTEMPTS {
                let h = match &head {
                    Ok(h) => h.as_ref(),
                    Err(why) => {
                        reach = Err(why.clone());
                        break;
                    }
                };
                let snaps = fresh_snapshots.as_deref().unwrap_or(&snapshots);
                match reachable(self, &sym, h, &keys, &snapshot_indexes(snaps, &sym)) {
                    Ok(Reach::Keys(k)) => {
                        reach = Ok(k);
                        break;
                    }
                    // Something vanished under a concurrent delete: read head and snapshots again.
                    Ok(Reach::Retry) => {
                        head = read_head_or_why(self, &sym)?;
                        fresh_snapshots = Some(read_snapshots(self)?);
                    }
                    Err(e) if e.kind() == ErrorKind::CorruptData => {
                        reach = Err(e.to_string());
                        break;
                    }
                    Err(e) => return Err(e.context(format!("vacuum of symbol {sym:?}"))),
                }
            }
            let mut keep = match reach {
                Ok(k) => k,
                Err(why) => {
                    report.skipped.push((sym, why));
                    continue;
                }
            };
            match staged.remove(&sym) {
                Some(Ok(segments)) => keep.extend(segments),
                Some(Err(why)) => {
                    report.skipped.push((sym, why));
                    continue;
                }
                None => {}
            }
            let mut victims = Vec::new();
            for k in keys {
                if keep.contains(&k) {
                    report.reachable += 1;
                    continue;
                }
                match k.key_type() {
                    KeyType::StagedIndex => report.reachable += 1,
                    KeyType::Version => {
                        // Unreachable records are those of tombstoned or uncommitted ids (see `reachable`).
                        report.deleted_versions += 1;
                        victims.push(k);
                    }
                    _ if k.creation_ts() >= cutoff => report.kept_young += 1,
                    KeyType::TableIndex => {
                        report.deleted_index += 1;
                        victims.push(k);
                    }
                    _ => {
                        report.deleted_data += 1;
                        victims.push(k);
                    }
                }
            }
            for chunk in victims.chunks(DELETE_CHUNK) {
                storage.delete_batch(chunk)?;
            }
        }
        Ok(report)
    }
}

/// The staged chunks' indexes and the data segments they name, or why they cannot be known (a staged
/// index does not decode: then nothing of the symbol is deleted). A staged index gone since it was
/// listed was finalized or deleted (ordering 4).
///
/// # Errors
/// Storage errors.
fn staged_segments(lib: &Library, chunks: &[&AtomKey]) -> Result<std::result::Result<HashSet<AtomKey>, String>> {
    let mut keep = HashSet::new();
    for &key in chunks {
        match lib.staged_index(key) {
            Ok(index) => keep.extend(index.entries.into_iter().map(|e| e.key)),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) if e.kind() == ErrorKind::CorruptData => return Ok(Err(e.to_string())),
            Err(e) => return Err(e),
        }
        keep.insert(key.clone());
    }
    Ok(Ok(keep))
}

/// The head of `symbol`, or why it cannot be used (it does not decode).
///
/// # Errors
/// Storage errors.
fn read_head_or_why(lib: &Library, symbol: &str) -> Result<std::result::Result<Option<Head>, String>> {
    match head::read_head(&**lib.storage(), symbol) {
        Ok(h) => Ok(Ok(h.map(|h| h.head))),
        Err(e) if e.kind() == ErrorKind::CorruptData => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Every snapshot record of the library.
fn read_snapshots(lib: &Library) -> Result<Vec<SnapshotRecord>> {
    let storage = &**lib.storage();
    let mut out = Vec::new();
    for key in storage.list(KeyType::SnapshotRef, ListScope::All) {
        let Key::Ref(k) = key? else { continue };
        if let Some(v) = storage.read_ref(&k)? {
            let snap = SnapshotRecord::decode(&v.bytes)
                .map_err(|e| crate::Error::from(e).context(format!("snapshot {:?}", k.symbol())))?;
            out.push(snap);
        }
    }
    Ok(out)
}

/// The index keys the snapshots hold for `symbol`.
fn snapshot_indexes(snapshots: &[SnapshotRecord], symbol: &str) -> Vec<AtomKey> {
    snapshots
        .iter()
        .flat_map(|s| s.entries.iter())
        .filter(|(s, _)| s == symbol)
        .map(|(_, r)| r.index_key.clone())
        .collect()
}

/// The objects of `symbol` to keep: live version records, the indexes of live versions and of snapshot
/// entries, and the data segments those indexes name. `listed` are the symbol's listed keys (for a
/// symbol without a head, its version records are kept and treated as live, conservatively).
fn reachable(
    lib: &Library,
    symbol: &str,
    head: Option<&Head>,
    listed: &[AtomKey],
    snapshot_indexes: &[AtomKey],
) -> Result<Reach> {
    let storage = &**lib.storage();
    let mut keep: HashSet<AtomKey> = HashSet::new();
    // Indexes that must exist (named by a live version) and those that may be gone (snapshots of
    // versions whose objects were already removed: nothing to protect then).
    let mut live_indexes: Vec<AtomKey> = Vec::new();
    match head {
        Some(h) => {
            for v in (0..=h.latest()).filter(|v| !h.tombstones.contains(*v)) {
                let record = match head::record_of(storage, symbol, h, v) {
                    Ok(r) => r,
                    // Deleted since the head was read.
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Reach::Retry),
                    Err(e) => return Err(e),
                };
                if v != h.latest() {
                    keep.insert(head::version_key(symbol, v)?);
                }
                live_indexes.push(record.index_key);
            }
            // The newest id's record is live too when its id is not deleted (it may not be written yet).
            if !h.tombstones.contains(h.latest()) {
                keep.insert(head::version_key(symbol, h.latest())?);
            }
        }
        None => {
            for k in listed.iter().filter(|k| k.key_type() == KeyType::Version) {
                keep.insert(k.clone());
                let bytes = match storage.get(k) {
                    Ok(b) => b,
                    Err(floe_backends::StorageError::NotFound { .. }) => continue,
                    Err(e) => return Err(e.into()),
                };
                let record = VersionRecord::decode(&bytes)
                    .map_err(|e| crate::Error::from(e).context(format!("version record {k}")))?;
                live_indexes.push(record.index_key);
            }
        }
    }
    let live: HashSet<AtomKey> = live_indexes.iter().cloned().collect();
    let mut indexes = live_indexes;
    indexes.extend(snapshot_indexes.iter().cloned());
    indexes.sort();
    indexes.dedup();
    for index_key in indexes {
        let bytes = match storage.get(&index_key) {
            Ok(b) => b,
            Err(floe_backends::StorageError::NotFound { .. }) if live.contains(&index_key) => {
                return Ok(Reach::Retry);
            }
            Err(floe_backends::StorageError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        verify_object(&index_key, &bytes)?;
        let index = TableIndex::decode(&bytes).map_err(|e| e.context(format!("index {index_key}")))?;
        keep.extend(index.entries.into_iter().map(|e| e.key));
        keep.insert(index_key);
    }
    Ok(Reach::Keys(keep))
}

#[cfg(test)]
mod tests;
