//! Verifying stored data segments whole, without decoding them: the fetch-and-verify half of the read
//! pipeline, for [`crate::Library::verify`] (a scrub of one version).
//!
//! A read verifies only what it uses: the header and descriptor of each segment it fetches (through
//! the content hash its key records) and each block it decodes. A verification checks every block of
//! every column and the metadata stream, so damage anywhere in a version shows without reading it
//! into memory.

use floe_backends::Storage;
use floe_formats::{AtomKey, SegmentReader};

use super::read::{Source, in_segment, verify_object};
use crate::error::Result;
use crate::sync::{Mutex, lock};

/// Segments fetched and verified per batch. Bounds what a backend that cannot lend its pages holds at
/// once (segments are ~2.5-10 MB) and how long LMDB keeps one read transaction open, while a batch
/// still gives both cores several segments to work on.
const SEGMENTS_PER_BATCH: usize = 16;

/// Fetches the data segments `keys` names and verifies each whole: its bytes against the content
/// hash its key records (header and descriptor), then every block's checksum. Segments are visited
/// in parallel, a batch at a time, or with `parallel` false one after another on the calling thread.
/// Returns the stored bytes verified.
///
/// # Errors
/// `NotFound` naming a key the storage does not hold; `CorruptData` naming the segment, and for a
/// block its column, on the first damage found; storage errors as they come.
pub(crate) fn verify_segments(storage: &dyn Storage, keys: &[AtomKey], parallel: bool) -> Result<u64> {
    super::pool::ensure_thread_pool();
    let verified = Mutex::new(0u64);
    for batch in keys.chunks(SEGMENTS_PER_BATCH) {
        let source = Source::fetch(storage, batch, &[])?;
        source.visit(storage, batch, !parallel, &|i, bytes| {
            verify_segment(&batch[i], bytes)?;
            *lock(&verified) += bytes.len() as u64;
            Ok(())
        })?;
    }
    Ok(verified.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// Verifies one data segment's `bytes`, stored under `key`, whole.
fn verify_segment(key: &AtomKey, bytes: &[u8]) -> Result<()> {
    verify_object(key, bytes)?;
    SegmentReader::new(bytes).and_then(|reader| reader.verify_others(&[])).map_err(|e| in_segment(e, key))
}
