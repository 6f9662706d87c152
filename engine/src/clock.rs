//! Wall-clock time for version timestamps.

/// Nanoseconds since the Unix epoch (UTC); 0 if the clock is before 1970.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
