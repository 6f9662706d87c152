//! Resolving a request's version (latest, a number, a time or a snapshot) to its record, and the
//! cached index segments records name.

use std::sync::Arc;

use floe_formats::AtomKey;
use floe_formats::record::{Head, VersionRecord};

use crate::error::{Error, Result};
use crate::head;
use crate::index::TableIndex;

use super::{AsOf, Library, VersionedItem, item, validate_symbol};

impl Library {
    /// The newest live version of `symbol`, as an item.
    pub(super) fn current_item(&self, symbol: &str) -> Result<VersionedItem> {
        Ok(item(symbol, &self.resolve(symbol, &AsOf::Latest)?))
    }

    /// Finds the version record `as_of` names.
    pub(crate) fn resolve(&self, symbol: &str, as_of: &AsOf) -> Result<VersionRecord> {
        validate_symbol(symbol)?;
        if let AsOf::Snapshot(name) = as_of {
            let snap = self.read_snapshot(name)?;
            return snap.entries.into_iter().find(|(s, _)| s == symbol).map(|(_, r)| r).ok_or_else(|| {
                Error::snapshot_not_found(format!("snapshot {name:?} does not hold symbol {symbol:?}"))
            });
        }
        // A version given by number: its record is read with the head (one transaction, or one round
        // trip), not after it.
        let (read, fetched) = match *as_of {
            AsOf::Version(n) if n >= 0 => {
                let (read, record) = head::read_head_and_record(&*self.storage, symbol, n as u64)?;
                (read, Some(record))
            }
            _ => (head::read_head(&*self.storage, symbol)?, None),
        };
        let h = read.ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} does not exist")))?.head;
        let v = match *as_of {
            AsOf::Latest => {
                head::live_latest(&h).ok_or_else(|| Error::symbol_not_found(format!("symbol {symbol:?} is deleted")))?
            }
            AsOf::Version(n) => {
                let v = if n < 0 { (h.latest() as i64 + 1).checked_add(n).filter(|v| *v >= 0) } else { Some(n) };
                v.map(|v| v as u64)
                    .filter(|&v| v <= h.latest() && !h.tombstones.contains(v))
                    .ok_or_else(|| Error::version_not_found(format!("symbol {symbol:?} has no live version {n}")))?
            }
            AsOf::Timestamp(t) => self.version_at(symbol, &h, t)?,
            AsOf::Snapshot(_) => unreachable!("handled above"),
        };
        match fetched {
            Some(record) => head::record_given(&*self.storage, symbol, &h, v, record),
            None => head::record_of(&*self.storage, symbol, &h, v),
        }
    }

    /// The newest live version committed at or before `t`: binary search on version ids (commit times
    /// never decrease with the id), O(log n) record reads.
    fn version_at(&self, symbol: &str, h: &Head, t: i64) -> Result<u64> {
        let not_found = || Error::version_not_found(format!("symbol {symbol:?} has no version at or before {t}"));
        let (mut lo, mut hi) = (0u64, h.latest());
        let mut best = None;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let Some(v) = h.tombstones.highest_live_at_or_below(mid).filter(|&v| v >= lo) else {
                lo = mid + 1;
                continue;
            };
            let rec = head::record_of(&*self.storage, symbol, h, v)?;
            if rec.timestamp_ns <= t {
                best = Some(v);
                lo = mid + 1;
            } else if v == 0 {
                break;
            } else {
                hi = v - 1;
            }
        }
        best.ok_or_else(not_found)
    }

    pub(super) fn read_index(&self, key: &AtomKey) -> Result<TableIndex> {
        Ok(self.fetch_index(key)?.0)
    }

    /// The index `key` names, fetched, verified and decoded, with its encoded length.
    pub(super) fn fetch_index(&self, key: &AtomKey) -> Result<(TableIndex, usize)> {
        let bytes = self.storage.get(key).map_err(|e| Error::from(e).context(format!("index {key}")))?;
        crate::pipeline::read::verify_object(key, &bytes)?;
        let index = TableIndex::decode(&bytes).map_err(|e| e.context(format!("index {key}")))?;
        Ok((index, bytes.len()))
    }

    /// [`Library::read_index`] through the handle's cache of decoded indexes: reads, appends and
    /// updates name the same few versions again and again. Maintenance (prune, delete) reads indexes
    /// uncached, so that going through many old versions does not evict the ones in use.
    pub(crate) fn cached_index(&self, key: &AtomKey) -> Result<Arc<TableIndex>> {
        if let Some(index) = self.indexes.get(key) {
            return Ok(index);
        }
        let (index, encoded_len) = self.fetch_index(key)?;
        let index = Arc::new(index);
        self.indexes.insert(key, &index, encoded_len);
        Ok(index)
    }
}
