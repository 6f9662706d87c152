//! Symbols and versions: listing them, deleting and pruning versions (and collecting what only
//! they named), renaming a symbol.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use floe_backends::{ListScope, StorageError};
use floe_formats::record::{Head, VersionRecord};
use floe_formats::{AtomKey, Key, KeyType};

use crate::error::{Error, ErrorKind, Result};
use crate::head::{self, Change};
use crate::pipeline::write;

use super::{AsOf, Library, SCAN_RECORDS_FROM, VersionInfo, VersionedItem, item, validate_symbol, visit_listed};

impl Library {
    /// The symbols with at least one live version, sorted.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_symbols(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        // One walk over the heads (on LMDB one cursor in one transaction, values read in place), each
        // decoded as a head is whenever it is read; a damaged one stops it.
        visit_listed(&*self.storage, KeyType::VersionRef, ListScope::All, &mut |key, bytes| {
            let Key::Ref(key) = key else { return Ok(()) };
            if head::live_latest(&head::decode_head_bytes(key.symbol(), key, bytes)?).is_some() {
                out.push(key.symbol().to_owned());
            }
            Ok(())
        })?;
        out.sort_unstable();
        Ok(out)
    }

    /// Whether `symbol` has a live version (or, with `as_of`, whether that version resolves).
    ///
    /// # Errors
    /// Storage errors other than not-found.
    pub fn has_symbol(&self, symbol: &str, as_of: &AsOf) -> Result<bool> {
        match self.resolve(symbol, as_of) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::InvalidInput => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every live version of `symbol` (or of every symbol), newest first per symbol, plus deleted
    /// versions that snapshots keep, with the snapshots holding each.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_versions(&self, symbol: Option<&str>) -> Result<Vec<VersionInfo>> {
        let symbols = match symbol {
            Some(s) => vec![s.to_owned()],
            None => self
                .storage
                .list_all(KeyType::VersionRef, ListScope::All)?
                .iter()
                .map(|k| k.symbol().to_owned())
                .collect(),
        };
        let snapshots = self.read_all_snapshots()?;
        let mut out = Vec::new();
        for sym in symbols {
            let mut held: BTreeMap<u64, (VersionRecord, Vec<String>)> = BTreeMap::new();
            for (name, snap) in &snapshots {
                for (s, r) in &snap.entries {
                    if *s == sym {
                        held.entry(r.version).or_insert_with(|| (r.clone(), Vec::new())).1.push(name.clone());
                    }
                }
            }
            let Some(rh) = head::read_head(&*self.storage, &sym)? else { continue };
            let h = &rh.head;
            let live: Vec<u64> = (0..=h.latest()).rev().filter(|v| !h.tombstones.contains(*v)).collect();
            let older: Vec<u64> = live.iter().copied().filter(|&v| v != h.latest()).collect();
            let mut fetched = self.version_timestamps(&sym, &older)?.into_iter();
            let mut seen = HashSet::new();
            for v in live {
                let timestamp_ns = if v == h.latest() {
                    h.record.timestamp_ns
                } else {
                    match fetched.next() {
                        Some(Some(t)) => t,
                        Some(None) => continue, // deleted concurrently
                        None => break,
                    }
                };
                seen.insert(v);
                let snaps = held.get(&v).map(|(_, n)| n.clone()).unwrap_or_default();
                out.push(VersionInfo {
                    symbol: sym.clone(),
                    version: v,
                    timestamp_ns,
                    deleted: false,
                    snapshots: snaps,
                });
            }
            for (v, (rec, names)) in held.into_iter().rev() {
                if !seen.contains(&v) {
                    out.push(VersionInfo {
                        symbol: sym.clone(),
                        version: v,
                        timestamp_ns: rec.timestamp_ns,
                        deleted: true,
                        snapshots: names,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The commit times of `symbol`'s versions `versions`, in order, `None` for a record deleted
    /// meanwhile. Many versions on a backend that lends its pages are read in one walk over the
    /// symbol's records ([`Storage::visit_listed`](floe_backends::Storage::visit_listed): on LMDB one
    /// cursor, no tree search per version), decoding only each record's version and time; otherwise by
    /// key, in one batch.
    fn version_timestamps(&self, symbol: &str, versions: &[u64]) -> Result<Vec<Option<i64>>> {
        if versions.len() >= SCAN_RECORDS_FROM && self.storage.lends_pages() {
            let mut stamps: Vec<(u64, i64)> = Vec::with_capacity(versions.len());
            // A damaged record stops the walk.
            visit_listed(&*self.storage, KeyType::Version, ListScope::Symbol(symbol), &mut |key, bytes| {
                let Key::Atom(key) = key else { return Ok(()) };
                let stamp =
                    VersionRecord::decode_stamp(bytes).map_err(|e| Error::from(e).context(format!("record {key}")))?;
                if stamp.version != key.version() {
                    return Err(Error::corrupt(format!("record {key} holds version {}", stamp.version)));
                }
                stamps.push((stamp.version, stamp.timestamp_ns));
                Ok(())
            })?;
            stamps.sort_unstable_by_key(|&(v, _)| v);
            return Ok(versions
                .iter()
                .map(|v| stamps.binary_search_by_key(v, |&(v, _)| v).ok().map(|i| stamps[i].1))
                .collect());
        }
        let keys: Vec<AtomKey> = versions.iter().map(|&v| head::version_key(symbol, v)).collect::<Result<_>>()?;
        let decode = |key: &AtomKey, bytes: &[u8]| -> Result<i64> {
            let stamp =
                VersionRecord::decode_stamp(bytes).map_err(|e| Error::from(e).context(format!("record {key}")))?;
            Ok(stamp.timestamp_ns)
        };
        let mut out = Vec::with_capacity(keys.len());
        for (key, fetched) in keys.iter().zip(self.storage.get_batch(&keys)) {
            out.push(match fetched {
                Ok(b) => Some(decode(key, &b)?),
                Err(StorageError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            });
        }
        Ok(out)
    }

    /// Deletes every version of `symbol` (snapshots keep what they name).
    ///
    /// # Errors
    /// `NotFound` if the symbol has no live version; storage errors.
    pub fn delete(&self, symbol: &str) -> Result<()> {
        self.delete_versions_where(symbol, |_, _| true, true)
    }

    /// Deletes the given versions of `symbol`.
    ///
    /// # Errors
    /// `NotFound` naming a version that does not exist or is already deleted (nothing deleted then).
    pub fn delete_versions(&self, symbol: &str, versions: &[u64]) -> Result<()> {
        let wanted: BTreeSet<u64> = versions.iter().copied().collect();
        let h = head::read_head(&*self.storage, symbol)?
            .ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} does not exist")))?;
        for &v in &wanted {
            if v > h.head.latest() || h.head.tombstones.contains(v) {
                return Err(Error::version_not_found(format!("symbol {symbol:?} has no live version {v}")));
            }
        }
        self.delete_versions_where(symbol, |v, _| wanted.contains(&v), false)
    }

    /// Deletes every version of `symbol` older than its newest live one.
    ///
    /// # Errors
    /// Storage errors. A missing symbol is not an error.
    pub fn prune_previous_versions(&self, symbol: &str) -> Result<()> {
        match self.delete_versions_where(symbol, |v, live_latest| v < live_latest, false) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn delete_versions_where(&self, symbol: &str, pick: impl Fn(u64, u64) -> bool, need_live: bool) -> Result<()> {
        validate_symbol(symbol)?;
        let mut deleted: Vec<u64> = Vec::new();
        let committed = self.commit(symbol, |h| {
            deleted.clear();
            let h = h.ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} does not exist")))?;
            let Some(live_latest) = head::live_latest(h) else {
                return if need_live {
                    Err(Error::symbol_not_found(format!("symbol {symbol:?} has no live version")))
                } else {
                    Ok(Change::Tombstones(None))
                };
            };
            let mut t = h.tombstones.clone();
            for v in 0..=h.latest() {
                if !h.tombstones.contains(v) && pick(v, live_latest) {
                    t.insert(v, v);
                    deleted.push(v);
                }
            }
            Ok(Change::Tombstones((!deleted.is_empty()).then_some(t)))
        })?;
        if let Some(head) = committed {
            self.collect_garbage(symbol, &head, &deleted)?;
        }
        Ok(())
    }

    /// Removes the objects only `deleted` versions used: data and index segments no live version or
    /// snapshot references, and the deleted versions' records.
    fn collect_garbage(&self, symbol: &str, head: &Head, deleted: &[u64]) -> Result<()> {
        let records = |versions: &mut dyn Iterator<Item = u64>| -> Result<Vec<VersionRecord>> {
            let mut out = Vec::new();
            for v in versions {
                match head::record_of(&*self.storage, symbol, head, v) {
                    Ok(r) => out.push(r),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        };
        let doomed = records(&mut deleted.iter().copied())?;
        let mut keep_index: HashSet<AtomKey> = HashSet::new();
        let live = records(&mut (0..=head.latest()).filter(|v| !head.tombstones.contains(*v)))?;
        keep_index.extend(live.into_iter().map(|r| r.index_key));
        for (_, snap) in self.read_all_snapshots()? {
            keep_index.extend(snap.entries.into_iter().filter(|(s, _)| s == symbol).map(|(_, r)| r.index_key));
        }
        let mut keep_data: HashSet<AtomKey> = HashSet::new();
        for k in &keep_index {
            keep_data.extend(self.read_index(k)?.entries.into_iter().map(|e| e.key));
        }
        let mut victims: Vec<AtomKey> = Vec::new();
        for r in &doomed {
            if !keep_index.contains(&r.index_key) {
                match self.read_index(&r.index_key) {
                    Ok(idx) => {
                        victims.extend(idx.entries.into_iter().map(|e| e.key).filter(|k| !keep_data.contains(k)))
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                victims.push(r.index_key.clone());
            }
        }
        victims.sort();
        victims.dedup();
        for &v in deleted {
            victims.push(head::version_key(symbol, v)?);
        }
        self.storage.delete_batch(&victims)?;
        Ok(())
    }

    /// Renames `from` to `to`: `to` gets a copy of `from`'s newest live version (data copied under the
    /// new name, so the two symbols never share objects), then `from` is deleted.
    ///
    /// # Errors
    /// `NotFound` if `from` has no live version; `AlreadyExists` if `to` has one.
    pub fn rename_symbol(&self, from: &str, to: &str) -> Result<VersionedItem> {
        validate_symbol(from)?;
        validate_symbol(to)?;
        if self.has_symbol(to, &AsOf::Latest)? {
            return Err(Error::new(ErrorKind::AlreadyExists, format!("symbol {to:?} already exists")));
        }
        let rec = self.resolve(from, &AsOf::Latest)?;
        let idx = self.cached_index(&rec.index_key)?;
        let entries = self.copy_segments(&idx.entries, to)?;
        let mut prepared = None;
        let head = self
            .commit(to, |h| {
                if h.and_then(head::live_latest).is_some() {
                    return Err(Error::new(ErrorKind::AlreadyExists, format!("symbol {to:?} already exists")));
                }
                if prepared.is_none() {
                    let next = h.map_or(0, |h| h.latest() + 1);
                    prepared = Some(self.finish_index(
                        to,
                        next,
                        rec.operation,
                        &idx.schema,
                        &idx.descriptor.index,
                        write::Written { entries: entries.clone(), deferred: Vec::new() },
                        idx.descriptor.user_metadata.as_deref(),
                    )?);
                }
                Ok(Change::Append(prepared.clone().expect("prepared above")))
            })?
            .ok_or_else(|| Error::internal("rename committed nothing"))?;
        self.delete(from)?;
        Ok(item(to, &head.record))
    }
}
