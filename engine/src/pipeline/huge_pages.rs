//! Whether output mappings ask for transparent huge pages (design/decisions.md D30, D35).
//!
//! A huge page is one fault per 2 MiB instead of 512, which made reads up to 2.3x faster on this
//! project's VM (D30) — while the memory is backed. A VM whose balloon reports free memory to its host
//! (virtio free page reporting: free blocks of 2 MiB and more, within ~2 s of their release) gets
//! such memory back only at its next touch, and a huge-page fault is served from exactly those
//! blocks: there, reads after a pause took up to 2.7x longer with huge pages than with 4 KiB pages
//! (which also come from smaller free blocks, never reported), and whether a read met backed or
//! reported blocks could not be told in advance (D35 has the measurements, including a heuristic that
//! tried). So by default huge pages are asked for unless such a balloon is present.
//!
//! `FLOE_HUGE_PAGES` (read once per process) overrides: `1` huge pages always, `0` no mappings at all
//! (every output buffer from the allocator).

use crate::sync::OnceLock;

/// The size of a transparent huge page on x86-64 and most aarch64 kernels.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// How large read outputs get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Mappings of their own with huge pages asked for (no reporting balloon, or `FLOE_HUGE_PAGES=1`).
    HugePages,
    /// Mappings of their own with 4 KiB pages (the default under a reporting balloon).
    SmallPages,
    /// From the allocator, like smaller buffers (`FLOE_HUGE_PAGES=0`).
    Allocator,
}

impl Policy {
    /// The policy for the environment's `FLOE_HUGE_PAGES` value on a machine that does or does not
    /// report free pages to a host.
    fn choose(value: Option<&std::ffi::OsStr>, reporting: bool) -> Self {
        match value.and_then(|v| v.to_str()) {
            Some("0") => Policy::Allocator,
            Some("1") => Policy::HugePages,
            _ if reporting => Policy::SmallPages,
            _ => Policy::HugePages,
        }
    }
}

/// This process's policy, decided once.
pub(crate) fn policy() -> Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    *POLICY.get_or_init(|| {
        let value = std::env::var_os("FLOE_HUGE_PAGES");
        // Only looked for when the environment leaves the choice open.
        let reporting = value.is_none() && balloon_reports_free_pages();
        Policy::choose(value.as_deref(), reporting)
    })
}

/// Whether a virtio balloon that reports free pages to the host is attached: feature bit 5
/// (`VIRTIO_BALLOON_F_REPORTING`) of any balloon device, as sysfs lists it (one `0`/`1` per bit).
fn balloon_reports_free_pages() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/bus/virtio/drivers/virtio_balloon") else { return false };
    devices.flatten().any(|d| std::fs::read_to_string(d.path().join("features")).is_ok_and(|f| reports(&f)))
}

/// Whether a sysfs `features` string has `VIRTIO_BALLOON_F_REPORTING` (bit 5) set.
fn reports(features: &str) -> bool {
    features.as_bytes().get(5) == Some(&b'1')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reporting_bit_is_read_from_sysfs_features() {
        // As read on this project's VM: must-tell-host off, stats, deflate-on-OOM, reporting, version 1.
        let vm = "01100101000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
        assert!(reports(vm));
        assert!(!reports("01100001000000000000000000000000100000000000"), "stats and deflate only");
        assert!(!reports("0110"), "too short to say");
        assert!(!reports(""));
    }

    #[test]
    fn the_environment_overrides_the_machine() {
        use std::ffi::OsStr;
        assert_eq!(Policy::choose(None, false), Policy::HugePages);
        assert_eq!(Policy::choose(None, true), Policy::SmallPages);
        assert_eq!(Policy::choose(Some(OsStr::new("1")), true), Policy::HugePages);
        assert_eq!(Policy::choose(Some(OsStr::new("0")), false), Policy::Allocator);
        assert_eq!(Policy::choose(Some(OsStr::new("auto")), true), Policy::SmallPages);
    }
}
