//! Verifying a version's stored bytes whole (a scrub): its index segment and every block of every data
//! segment it names, without decoding anything into memory.

use std::collections::HashSet;

use floe_formats::AtomKey;
use floe_formats::record::VersionRecord;

use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::verify::verify_segments;

use super::{AsOf, Library, READ_RETRIES, Verification, item, validate_symbol};

impl Library {
    /// Verifies every object a version stores against its checksums: the version record (as it is
    /// resolved), the index segment fetched afresh (not from the handle's cache), and each data
    /// segment whole (the content hash its key records, then every block of every column and the
    /// metadata). A read verifies only the blocks it decodes; this finds damage anywhere in the
    /// version, e.g. after a disk fault or a restore from backup, without holding its data. With
    /// `parallel` the segments are checked on every core; without, one after another on the calling
    /// thread (slower, but it leaves the other cores to other work).
    ///
    /// # Errors
    /// `NotFound` for a missing symbol, version or snapshot (also when the version is deleted while
    /// being verified); `CorruptData` naming the object (and for a block its column) on the first
    /// damage found, or when an object the version names is missing from storage;
    /// `StorageUnavailable` as a read.
    pub fn verify(&self, symbol: &str, as_of: &AsOf, parallel: bool) -> Result<Verification> {
        validate_symbol(symbol)?;
        let mut rec = self.resolve(symbol, as_of)?;
        let mut attempt = 0;
        loop {
            let e = match self.verify_record(symbol, &rec, parallel) {
                Err(e) if e.kind() == ErrorKind::NotFound => e,
                other => return other,
            };
            match self.resolve(symbol, as_of) {
                // Pruned or deleted meanwhile: what the caller asked for is gone, nothing is damaged.
                Err(gone) if gone.kind() == ErrorKind::NotFound => {
                    return Err(gone.context("deleted while it was being verified"));
                }
                Err(other) => return Err(other),
                // The request names another version now (a newer latest, the version current at a time
                // after a prune): verify that one, as a read would read it.
                Ok(now) if now.version != rec.version && attempt < READ_RETRIES => {
                    attempt += 1;
                    rec = now;
                }
                // Still the same live version, so an object it names is lost: damage, not a missing version.
                Ok(_) => {
                    return Err(Error::corrupt(format!(
                        "version {} of symbol {symbol:?} names an object storage does not hold: {e}",
                        rec.version
                    )));
                }
            }
        }
    }

    fn verify_record(&self, symbol: &str, rec: &VersionRecord, parallel: bool) -> Result<Verification> {
        let (index, index_bytes) = self.fetch_index(&rec.index_key)?;
        // An update keeps untouched rows of a segment by reference: two entries may name one segment.
        let mut seen = HashSet::with_capacity(index.entries.len());
        let keys: Vec<AtomKey> = index.entries.iter().map(|e| &e.key).filter(|k| seen.insert(*k)).cloned().collect();
        let data_bytes = verify_segments(&*self.storage, &keys, parallel)?;
        Ok(Verification { item: item(symbol, rec), segments: keys.len(), bytes: data_bytes + index_bytes as u64 })
    }
}
