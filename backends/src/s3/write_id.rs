//! The write id appended to every reference object, which makes S3 e-tags unique per write.
//!
//! A reference's token is its e-tag, and S3's e-tag of a single-part object is the MD5 of its
//! bytes: two writes of the same value would get the same token, and a writer holding a token from
//! the first write could then replace the second (the ABA problem the `Storage` contract rules out).
//! So each stored reference is `value ++ write id` (16 bytes, unique per write); readers strip it.
//! The id also lets a writer whose CAS "lost" check whether the stored object is in fact its own
//! write (a retried request whose first attempt succeeded).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

/// Length of the write id at the end of a stored reference.
pub(crate) const WRITE_ID_LEN: usize = 16;

/// A fresh write id: 8 bytes fixed per process (random), then an 8-byte per-process counter.
fn next_write_id() -> [u8; WRITE_ID_LEN] {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| {
        // RandomState is seeded from the OS's randomness; mixing in pid and time guards against a
        // platform where it is not.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.finish()
    });
    let mut id = [0u8; WRITE_ID_LEN];
    id[..8].copy_from_slice(&process.to_le_bytes());
    id[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    id
}

/// `value` followed by a fresh write id: the bytes to store for one reference write.
pub(crate) fn stamp(value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + WRITE_ID_LEN);
    out.extend_from_slice(value);
    out.extend_from_slice(&next_write_id());
    out.freeze()
}

/// The value of a stored reference (its bytes without the write id), or `None` if the object is
/// too short to carry one (not written by this backend).
pub(crate) fn strip(stored: Bytes) -> Option<Bytes> {
    let len = stored.len().checked_sub(WRITE_ID_LEN)?;
    Some(stored.slice(..len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_differ_and_strip_restores_the_value() {
        let a = stamp(b"head");
        let b = stamp(b"head");
        assert_ne!(a, b);
        assert_eq!(strip(a).expect("long enough"), Bytes::from_static(b"head"));
        assert_eq!(strip(stamp(b"")).expect("long enough"), Bytes::new());
        assert_eq!(strip(Bytes::from_static(b"short")), None);
    }
}
