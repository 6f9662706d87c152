//! Which output mappings get transparent huge pages (design/decisions.md D30, D35).
//!
//! A huge page is one fault per 2 MiB instead of 512, which made reads up to 2.3x faster on this
//! project's VM (D30) — while the memory is backed. A VM whose balloon reports free memory to its
//! host (virtio free page reporting: free blocks of 2 MiB and more, within ~2 s of their release)
//! gets such memory back only page by page at its next touch, and a huge-page fault can only be
//! served from those reported blocks: measured here, reads after a 2.5 s pause took up to 2.3x longer
//! with huge pages than with 4 KiB pages (which come from smaller free blocks, never reported), and
//! their times spread twice as wide. Memory this process released a moment ago is still backed. So by
//! default an output mapping asks for huge pages only over as many bytes as output mappings released
//! within the last [`RECENT`] (half a second): a loop of reads recycles its memory with huge pages; a read after a
//! pause takes 4 KiB pages.
//!
//! `FLOE_HUGE_PAGES` (read once per process) overrides: `1` huge pages always (hosts without a
//! reporting balloon), `0` never and no mappings either (every buffer from the allocator).

use std::time::{Duration, Instant};

use crate::sync::{OnceLock, StdMutex as Mutex, lock_std as lock};

/// The size of a transparent huge page on x86-64 and most aarch64 kernels.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// How long released output memory counts as still backed. A reporting balloon hands free blocks to
/// its host in a pass every ~2 s, so a block freed at a random moment is reported within 0-2 s.
/// Measured (D30, D35): huge pages won 2x with no pause between reads, still ~1.6x after 1 s, and lost
/// up to 2.7x after 2.5 s; half a second keeps to the winning side.
const RECENT: Duration = Duration::from_millis(500);

/// What the environment asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Huge pages over recently released bytes only (the default).
    Recent,
    /// Huge pages for every mapping (`FLOE_HUGE_PAGES=1`).
    Always,
    /// No mappings: every output buffer from the allocator (`FLOE_HUGE_PAGES=0`).
    Never,
}

impl Policy {
    fn from_env(value: Option<&std::ffi::OsStr>) -> Self {
        match value.and_then(|v| v.to_str()) {
            Some("0") => Policy::Never,
            Some("1") => Policy::Always,
            _ => Policy::Recent,
        }
    }
}

/// This process's policy, read from `FLOE_HUGE_PAGES` once.
pub(crate) fn policy() -> Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    *POLICY.get_or_init(|| Policy::from_env(std::env::var_os("FLOE_HUGE_PAGES").as_deref()))
}

/// Bytes of output mappings released lately, spent by the mappings made after them.
#[derive(Debug, Default)]
pub(crate) struct Released {
    /// When the last mapping was released (`None`: never).
    last: Option<Instant>,
    /// Bytes released since the ledger last went stale, less those spent.
    bytes: usize,
}

impl Released {
    /// Notes `bytes` released at `now`. Bytes released more than [`RECENT`] before are forgotten:
    /// memory counts as backed only while releases keep coming.
    pub(crate) fn release(&mut self, bytes: usize, now: Instant) {
        if self.last.is_none_or(|t| now.saturating_duration_since(t) > RECENT) {
            self.bytes = 0;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        self.last = Some(now);
    }

    /// How many of `wanted` bytes (whole huge pages) a mapping made at `now` may ask huge pages for.
    pub(crate) fn available(&self, wanted: usize, now: Instant) -> usize {
        if self.last.is_none_or(|t| now.saturating_duration_since(t) > RECENT) {
            return 0;
        }
        wanted.min(self.bytes) / HUGE_PAGE * HUGE_PAGE
    }

    /// [`Self::available`], and spends them.
    pub(crate) fn spend(&mut self, wanted: usize, now: Instant) -> usize {
        let granted = self.available(wanted, now);
        self.bytes -= granted;
        granted
    }
}

static RELEASED: Mutex<Released> = Mutex::new(Released { last: None, bytes: 0 });

/// Notes that an output mapping of `bytes` is being unmapped.
pub(crate) fn note_release(bytes: usize) {
    if policy() == Policy::Recent {
        lock(&RELEASED).release(bytes, Instant::now());
    }
}

/// How many bytes from the start of a new mapping's `huge` whole huge pages to ask huge pages for
/// (spent: the next mapping gets what is left).
pub(crate) fn huge_bytes(huge: usize) -> usize {
    match policy() {
        Policy::Always => huge,
        Policy::Never => 0,
        Policy::Recent => lock(&RELEASED).spend(huge, Instant::now()),
    }
}

/// Whether a mapping of `huge` whole huge pages made now would get huge pages over all of them (nothing
/// spent).
pub(crate) fn all_huge(huge: usize) -> bool {
    match policy() {
        Policy::Always => true,
        Policy::Never => false,
        Policy::Recent => lock(&RELEASED).available(huge, Instant::now()) == huge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn recently_released_bytes_are_spent_in_whole_huge_pages() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut r = Released::default();
        assert_eq!(r.spend(8 * MIB, t0), 0, "nothing released yet");
        r.release(11 * MIB, t0);
        r.release(2 * MIB, ms(200));
        assert_eq!(r.available(8 * MIB, ms(300)), 8 * MIB, "13 MiB released, the last 100 ms ago");
        assert_eq!(r.spend(8 * MIB, ms(300)), 8 * MIB, "available until spent");
        assert_eq!(r.spend(8 * MIB, ms(300)), 4 * MIB, "5 MiB left: two whole huge pages");
        assert_eq!(r.spend(8 * MIB, ms(300)), 0, "1 MiB left: less than a huge page");
    }

    #[test]
    fn released_bytes_go_stale() {
        let t0 = Instant::now();
        let mut r = Released::default();
        r.release(100 * MIB, t0);
        assert_eq!(r.spend(4 * MIB, t0 + RECENT + Duration::from_millis(1)), 0, "released too long ago");
        r.release(2 * MIB, t0 + Duration::from_secs(5));
        assert_eq!(r.spend(100 * MIB, t0 + Duration::from_secs(5)), 2 * MIB, "the stale bytes are forgotten");
    }

    #[test]
    fn the_environment_picks_the_policy() {
        use std::ffi::OsStr;
        assert_eq!(Policy::from_env(None), Policy::Recent);
        assert_eq!(Policy::from_env(Some(OsStr::new("1"))), Policy::Always);
        assert_eq!(Policy::from_env(Some(OsStr::new("0"))), Policy::Never);
        assert_eq!(Policy::from_env(Some(OsStr::new("auto"))), Policy::Recent);
    }
}
