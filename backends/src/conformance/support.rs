//! Helpers shared by the checks: test keys and data, byte comparisons, failure messages.

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use floe_formats::{AtomFields, AtomKey, Key, KeyType, RefKey};

use crate::error::StorageError;
use crate::rng::SplitMix64;
use crate::storage::{ListScope, Storage};

/// Why a check failed: which operation, on which key, what was expected and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError(String);

impl CheckError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        CheckError(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckError {}

/// The result type of checks and their helpers.
pub(super) type Outcome<T = ()> = Result<T, CheckError>;

/// Returns a [`CheckError`] with a formatted message when the condition is false.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::conformance::CheckError::new(format!($($msg)+)));
        }
    };
}
pub(super) use ensure;

/// Names the operation a storage error came from: `op(...)?` turns an unexpected error into a failure.
pub(super) trait During<T> {
    /// Maps an error to "`what` failed: error".
    fn during(self, what: impl FnOnce() -> String) -> Outcome<T>;
}

impl<T> During<T> for Result<T, StorageError> {
    fn during(self, what: impl FnOnce() -> String) -> Outcome<T> {
        self.map_err(|e| CheckError::new(format!("{} failed unexpectedly: {e} ({e:?})", what())))
    }
}

/// Checks that a call failed with the expected kind of error.
pub(super) fn expect_error<T: fmt::Debug>(
    result: Result<T, StorageError>,
    expected: &str,
    is_expected: impl Fn(&StorageError) -> bool,
    what: impl FnOnce() -> String,
) -> Outcome {
    match result {
        Err(e) if is_expected(&e) => Ok(()),
        Err(e) => Err(CheckError::new(format!("{}: expected {expected}, got error {e} ({e:?})", what()))),
        Ok(v) => {
            let shown = format!("{v:?}");
            let shown: String = shown.chars().take(120).collect();
            Err(CheckError::new(format!("{}: expected {expected}, but it succeeded with {shown}", what())))
        }
    }
}

pub(super) fn is_not_found(e: &StorageError) -> bool {
    matches!(e, StorageError::NotFound { .. })
}

pub(super) fn is_already_exists(e: &StorageError) -> bool {
    matches!(e, StorageError::AlreadyExists { .. })
}

pub(super) fn is_conflict(e: &StorageError) -> bool {
    matches!(e, StorageError::Conflict { .. })
}

/// `None` when equal, else where the bytes first differ (never dumps megabytes into a message).
pub(super) fn byte_diff(expected: &[u8], got: &[u8]) -> Option<String> {
    if expected == got {
        return None;
    }
    let first = expected.iter().zip(got).position(|(a, b)| a != b);
    Some(match first {
        Some(i) => format!(
            "expected {} bytes, got {}; first difference at byte {i}: expected {:#04x}, got {:#04x}",
            expected.len(),
            got.len(),
            expected[i],
            got[i]
        ),
        None => format!("expected {} bytes, got {}; the shorter is a prefix of the longer", expected.len(), got.len()),
    })
}

/// Fails with "`what`: <diff>" when the bytes differ.
pub(super) fn same_bytes(expected: &[u8], got: &[u8], what: impl FnOnce() -> String) -> Outcome {
    match byte_diff(expected, got) {
        None => Ok(()),
        Some(diff) => Err(CheckError::new(format!("{}: wrong bytes: {diff}", what()))),
    }
}

/// `len` pseudo-random bytes determined by `seed` (distinct seeds give distinct data).
pub(super) fn pattern(seed: u64, len: usize) -> Bytes {
    let mut rng = SplitMix64::new(seed);
    let mut out = vec![0u8; len];
    let mut chunks = out.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let tail = chunks.into_remainder();
    let last = rng.next_u64().to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
    Bytes::from(out)
}

/// An atom key; `version` and `hash` are what tests vary to make distinct keys.
pub(super) fn atom(key_type: KeyType, symbol: &str, version: u64, hash: u64) -> AtomKey {
    let fields = AtomFields {
        version,
        creation_ts: 1_700_000_000_000_000_000 + i64::try_from(version % (1 << 40)).expect("below 2^40"),
        content_hash: hash,
        start: -5,
        end: i64::try_from(version % (1 << 40)).expect("below 2^40") * 10,
    };
    AtomKey::new(key_type, symbol, fields).expect("the suite uses valid symbols and atom key types")
}

/// A table-data key of `symbol`, the most common kind.
pub(super) fn data(symbol: &str, version: u64) -> AtomKey {
    atom(KeyType::TableData, symbol, version, version.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A reference key.
pub(super) fn reference(key_type: KeyType, symbol: &str) -> RefKey {
    RefKey::new(key_type, symbol).expect("the suite uses valid symbols and reference key types")
}

/// Puts every item, failing with the first error (through `put_batch`, so backends can overlap them).
pub(super) fn put_all(storage: &dyn Storage, items: Vec<(AtomKey, Bytes)>) -> Outcome {
    let keys: Vec<AtomKey> = items.iter().map(|(k, _)| k.clone()).collect();
    let results = storage.put_batch(items);
    ensure!(results.len() == keys.len(), "put_batch of {} items returned {} results", keys.len(), results.len());
    for (key, result) in keys.iter().zip(results) {
        result.during(|| format!("put_batch item {key}"))?;
    }
    Ok(())
}

/// Pages through a listing with page size `limit`, checking the paging contract on the way: pages
/// hold at most `limit` keys, a page that says `more` is not empty, no key repeats, every key has the
/// requested type and is in scope. Returns the keys in listing order.
pub(super) fn page_through(
    storage: &dyn Storage,
    key_type: KeyType,
    scope: ListScope<'_>,
    limit: usize,
) -> Outcome<Vec<Key>> {
    let what = || format!("listing {key_type} keys in {scope:?} with page limit {limit}");
    let mut keys: Vec<Key> = Vec::new();
    let mut seen: BTreeSet<Key> = BTreeSet::new();
    let mut after: Option<Key> = None;
    for page_no in 0usize.. {
        let page = storage
            .list_page(key_type, scope, after.as_ref(), limit)
            .during(|| format!("{} (page {page_no})", what()))?;
        ensure!(
            page.keys.len() <= limit,
            "{}: page {page_no} holds {} keys, more than the limit",
            what(),
            page.keys.len()
        );
        ensure!(
            !(page.more && page.keys.is_empty()),
            "{}: page {page_no} is empty but says more keys follow; a page must hold at least one key \
             unless the listing is over (ListIter stops at an empty page)",
            what()
        );
        for key in page.keys {
            ensure!(
                key.key_type() == key_type && scope.contains(key.symbol()),
                "{}: page {page_no} returned {key}, which is outside the listing",
                what()
            );
            ensure!(
                key_type.class() == floe_formats::KeyClass::Ref || matches!(key, Key::Atom(_)),
                "{}: page {page_no} returned {key} as the wrong key class",
                what()
            );
            ensure!(seen.insert(key.clone()), "{}: key {key} repeated (again on page {page_no})", what());
            keys.push(key);
        }
        if !page.more {
            return Ok(keys);
        }
        after = keys.last().cloned();
        // Each page adds at least one new key, so a listing can only loop forever by repeating keys,
        // which is caught above; this bound is just a backstop.
        ensure!(page_no < 10_000_000, "{}: more than 10 million pages", what());
    }
    unreachable!("the page loop only ends by returning")
}

/// Fails unless `listed` holds exactly the keys of `expected` (in any order), naming a few of the
/// missing and unexpected ones.
pub(super) fn same_keys(expected: &BTreeSet<Key>, listed: &[Key], what: impl FnOnce() -> String) -> Outcome {
    let got: BTreeSet<Key> = listed.iter().cloned().collect();
    if &got == expected && got.len() == listed.len() {
        return Ok(());
    }
    let missing: Vec<String> = expected.difference(&got).take(5).map(|k| k.to_string()).collect();
    let extra: Vec<String> = got.difference(expected).take(5).map(|k| k.to_string()).collect();
    Err(CheckError::new(format!(
        "{}: expected {} keys, listed {} ({} distinct); missing {} (first: {missing:?}); unexpected {} (first: {extra:?})",
        what(),
        expected.len(),
        listed.len(),
        got.len(),
        expected.difference(&got).count(),
        got.difference(expected).count(),
    )))
}

/// Runs `f`, turning a panic into a failure: threads of the racing checks must keep meeting at their
/// barriers even when the backend panics, or the check would hang instead of failing.
pub(super) fn no_panic<T>(what: impl FnOnce() -> String, f: impl FnOnce() -> T) -> Outcome<T> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|p| CheckError::new(format!("{} panicked: {}", what(), panic_message(&*p))))
}

/// The message of a caught panic.
pub(super) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_diff_points_at_the_first_difference() {
        assert_eq!(byte_diff(b"abc", b"abc"), None);
        let d = byte_diff(b"abcd", b"abXd").expect("differs");
        assert!(d.contains("byte 2"), "{d}");
        let d = byte_diff(b"ab", b"abc").expect("differs");
        assert!(d.contains("prefix"), "{d}");
    }

    #[test]
    fn pattern_is_deterministic_and_seed_dependent() {
        assert_eq!(pattern(1, 13), pattern(1, 13));
        assert_ne!(pattern(1, 13), pattern(2, 13));
        assert_eq!(pattern(1, 13).len(), 13);
        assert_eq!(pattern(1, 0).len(), 0);
        assert_eq!(&pattern(1, 20)[..8], &pattern(1, 9)[..8]);
    }
}
