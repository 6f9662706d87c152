//! Counters of a library handle's commits: how many, how many attempts they took, and the longest
//! single attempt. The longest attempt is what a concurrent `vacuum`'s grace must outlast (plus
//! `PipelineOptions::max_reuse_age`), so operators and the reliability harness can check their grace
//! against what their writers really do.

use std::time::Duration;

use crate::sync::{Mutex, lock};

/// What a [`crate::Library`] handle (and its clones) has committed since it was made.
///
/// Counts successful commits only in `commits`; `attempts` includes every attempt of those and of
/// commits that failed, so `attempts - commits` is an upper bound on the races lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Changes committed (new versions, deletes, prunes).
    pub commits: u64,
    /// Commit attempts made, won or lost.
    pub attempts: u64,
    /// The longest single attempt: reading the head, preparing the change against it (writing its
    /// segments when not reused) and the compare-and-swap.
    pub longest_attempt: Duration,
}

/// The shared, lockable [`CommitStats`] of a library handle.
#[derive(Debug, Default)]
pub(crate) struct CommitMeter(Mutex<CommitStats>);

impl CommitMeter {
    /// Records one attempt that took `took`.
    pub(crate) fn attempt(&self, took: Duration) {
        let mut s = lock(&self.0);
        s.attempts += 1;
        s.longest_attempt = s.longest_attempt.max(took);
    }

    /// Records one successful commit.
    pub(crate) fn committed(&self) {
        lock(&self.0).commits += 1;
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> CommitStats {
        *lock(&self.0)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn counts_attempts_and_keeps_the_longest() {
        let m = CommitMeter::default();
        m.attempt(Duration::from_millis(3));
        m.attempt(Duration::from_millis(7));
        m.attempt(Duration::from_millis(5));
        m.committed();
        assert_eq!(m.snapshot(), CommitStats { commits: 1, attempts: 3, longest_attempt: Duration::from_millis(7) });
    }
}
