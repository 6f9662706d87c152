//! [`SegmentBuffers`]: the allocations of a write's encoded segments, handed round from the I/O
//! workers back to the encoders.
//!
//! An encoded segment's buffer reserves room for its input stored raw (~9 MB for 100,000 rows of
//! eleven 8-byte columns), so glibc serves it with a fresh mapping, and every page the encoder writes
//! is a page fault that zeroes it: for a 10M-row `wide-float` write, ~115,000 faults and a third of the
//! write's CPU (`perf record -e page-faults`: 91 % of them in `encode_segment`). A backend that copies a
//! segment when storing it (LMDB copies into its own pages; S3 sends it and drops it) is done with the
//! buffer once `put_batch` returns, so the next segment can be encoded into the same, already
//! resident, pages (design/decisions.md D43).

use bytes::Bytes;

use crate::sync::{Mutex, lock};

/// Spare buffers of one write job, at most `limit` kept.
///
/// A buffer comes back only if nothing else holds it after the store (a backend that keeps the value,
/// as the in-memory one does, holds a reference): then the pool stops asking for buffers back and the
/// encoders shrink each segment to its length again, as that backend keeps whatever capacity it gets.
#[derive(Debug)]
pub(crate) struct SegmentBuffers {
    state: Mutex<State>,
    limit: usize,
}

#[derive(Debug, Default)]
struct State {
    spare: Vec<Vec<u8>>,
    /// A stored segment was still shared after its store: the backend keeps values.
    kept_by_backend: bool,
}

impl SegmentBuffers {
    /// An empty pool keeping at most `limit` spare buffers (the segments in flight at once: more would
    /// only hold memory the pipeline's bound does not count).
    pub(crate) fn new(limit: usize) -> Self {
        SegmentBuffers { state: Mutex::new(State::default()), limit }
    }

    /// A spare buffer, or an empty `Vec` (the encoder allocates) when there is none.
    pub(crate) fn take(&self) -> Vec<u8> {
        lock(&self.state).spare.pop().unwrap_or_default()
    }

    /// Whether segments should be shrunk to their length before they are stored: the backend keeps
    /// what it is given, so spare capacity would stay allocated as long as the value does.
    pub(crate) fn shrink_before_store(&self) -> bool {
        lock(&self.state).kept_by_backend
    }

    /// Takes back the buffer of a segment that has been stored, if nothing else holds it.
    pub(crate) fn give_back(&self, stored: Bytes) {
        let mut state = lock(&self.state);
        match stored.try_into_mut() {
            Ok(buffer) if state.spare.len() < self.limit => state.spare.push(Vec::from(buffer)),
            Ok(_) => {}
            Err(_) => state.kept_by_backend = true,
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_nothing_else_holds_comes_back_with_its_allocation() {
        let pool = SegmentBuffers::new(2);
        let mut v = Vec::with_capacity(1 << 20);
        v.extend_from_slice(b"segment");
        let at = v.as_ptr();
        pool.give_back(Bytes::from(v));
        let again = pool.take();
        assert_eq!(again.as_ptr(), at, "the same allocation, not a copy");
        assert!(again.capacity() >= 1 << 20);
        assert!(pool.take().is_empty() && !pool.shrink_before_store());
    }

    #[test]
    fn a_buffer_the_backend_keeps_is_left_to_it_and_later_segments_are_shrunk() {
        let pool = SegmentBuffers::new(2);
        let stored = Bytes::from(vec![1u8; 100]);
        let kept = stored.clone();
        pool.give_back(stored);
        assert!(pool.take().is_empty());
        assert!(pool.shrink_before_store());
        assert_eq!(kept.len(), 100);
    }

    #[test]
    fn at_most_limit_buffers_are_kept() {
        let pool = SegmentBuffers::new(1);
        pool.give_back(Bytes::from(vec![1u8; 10]));
        pool.give_back(Bytes::from(vec![2u8; 10]));
        assert_eq!(pool.take().len(), 10);
        assert!(pool.take().is_empty());
    }
}
