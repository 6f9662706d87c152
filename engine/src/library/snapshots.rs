//! Snapshots: taking, listing and deleting them.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::Bytes;
use floe_backends::{ListScope, RefExpectation, StorageError};
use floe_formats::record::{Head, SnapshotRecord, VersionRecord};
use floe_formats::{AtomKey, KeyType};

use crate::error::{Error, ErrorKind, Result};
use crate::head;

use super::{AsOf, Library, snapshot_key};

impl Library {
    /// Takes snapshot `name` of the newest live version of every symbol (or of `symbols`), with
    /// `versions` overriding the version per symbol.
    ///
    /// # Errors
    /// `AlreadyExists` if the name is taken; `NotFound` for a missing symbol or version.
    pub fn snapshot(
        &self,
        name: &str,
        metadata: Option<&[u8]>,
        symbols: Option<&[String]>,
        versions: &BTreeMap<String, u64>,
    ) -> Result<()> {
        let key = snapshot_key(name)?;
        let mut syms: BTreeSet<String> = match symbols {
            Some(s) => s.iter().cloned().collect(),
            None => self.list_symbols()?.into_iter().collect(),
        };
        syms.extend(versions.keys().cloned());
        let mut entries = Vec::new();
        for s in syms {
            let as_of = versions.get(&s).map_or(AsOf::Latest, |&v| AsOf::Version(v as i64));
            let rec = self.resolve(&s, &as_of).map_err(|e| e.context(format!("snapshot {name:?}")))?;
            entries.push((s, rec));
        }
        let record =
            SnapshotRecord { timestamp_ns: crate::clock::now_ns(), metadata: metadata.map(<[u8]>::to_vec), entries };
        match self.storage.write_ref(&key, Bytes::from(record.encode()), RefExpectation::Absent) {
            Ok(_) => {}
            Err(StorageError::Conflict { .. }) => {
                return Err(Error::new(ErrorKind::AlreadyExists, format!("snapshot {name:?} already exists")));
            }
            Err(e) => return Err(e.into()),
        }
        // A version deleted between resolving and creating the snapshot may have lost its objects.
        for (s, r) in &record.entries {
            if !self.storage.exists(&r.index_key)? {
                self.storage.delete_ref(&key)?;
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "snapshot {name:?}: version {} of {s:?} was deleted while the snapshot was taken",
                        r.version
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The snapshot names with their metadata, sorted by name.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_snapshots(&self) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        Ok(self.read_all_snapshots()?.into_iter().map(|(n, s)| (n, s.metadata)).collect())
    }

    /// Deletes snapshot `name` and the objects only it kept alive.
    ///
    /// # Errors
    /// `NotFound` if there is no such snapshot.
    pub fn delete_snapshot(&self, name: &str) -> Result<()> {
        let key = snapshot_key(name)?;
        let snap = self.read_snapshot(name)?;
        self.storage.delete_ref(&key)?;
        for (sym, rec) in snap.entries {
            let Some(rh) = head::read_head(&*self.storage, &sym)? else { continue };
            if rh.head.tombstones.contains(rec.version) {
                // Its version was deleted and this snapshot kept it: release what nothing else uses.
                self.collect_garbage_of_record(&sym, &rh.head, &rec)?;
            }
        }
        Ok(())
    }

    fn collect_garbage_of_record(&self, symbol: &str, head: &Head, rec: &VersionRecord) -> Result<()> {
        let mut keep_index: HashSet<AtomKey> = HashSet::new();
        for v in (0..=head.latest()).filter(|v| !head.tombstones.contains(*v)) {
            match head::record_of(&*self.storage, symbol, head, v) {
                Ok(r) => {
                    keep_index.insert(r.index_key);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for (_, snap) in self.read_all_snapshots()? {
            keep_index.extend(snap.entries.into_iter().filter(|(s, _)| s == symbol).map(|(_, r)| r.index_key));
        }
        if keep_index.contains(&rec.index_key) {
            return Ok(());
        }
        let mut keep_data = HashSet::new();
        for k in &keep_index {
            keep_data.extend(self.read_index(k)?.entries.into_iter().map(|e| e.key));
        }
        let mut victims: Vec<AtomKey> = match self.read_index(&rec.index_key) {
            Ok(idx) => idx.entries.into_iter().map(|e| e.key).filter(|k| !keep_data.contains(k)).collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        victims.push(rec.index_key.clone());
        victims.sort();
        victims.dedup();
        self.storage.delete_batch(&victims)?;
        Ok(())
    }

    pub(super) fn read_snapshot(&self, name: &str) -> Result<SnapshotRecord> {
        let v = self
            .storage
            .read_ref(&snapshot_key(name)?)?
            .ok_or_else(|| Error::snapshot_not_found(format!("snapshot {name:?} does not exist")))?;
        SnapshotRecord::decode(&v.bytes).map_err(|e| Error::from(e).context(format!("snapshot {name:?}")))
    }

    pub(super) fn read_all_snapshots(&self) -> Result<Vec<(String, SnapshotRecord)>> {
        let mut out = Vec::new();
        for k in self.storage.list_all(KeyType::SnapshotRef, ListScope::All)? {
            match self.read_snapshot(k.symbol()) {
                Ok(s) => out.push((k.symbol().to_owned(), s)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
