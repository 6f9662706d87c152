//! The suite checked against deliberately broken backends: each bug must be caught by the check meant
//! for it, with a message that says what differed.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use floe_formats::{AtomKey, Key, KeyType, RefKey};

use super::*;
use crate::error::{Result, StorageError};
use crate::memory::MemoryStorage;
use crate::storage::{ListPage, RefExpectation, RefToken, RefValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    /// `put` overwrites existing keys.
    PutOverwrites,
    /// `write_ref` ignores the expectation.
    CasIgnored,
    /// `write_ref` checks, then writes without holding a lock across both.
    CasNotAtomic,
    /// Tokens are derived from the value, so A -> B -> A reuses a token.
    TokenFromContent,
    /// `Symbol(s)` behaves like `SymbolPrefix(s)`.
    SymbolIsPrefix,
    /// The second page of a listing says no more keys follow when some do.
    LosesLastPage,
    /// `get_range` returns the whole object.
    RangeIgnored,
    /// `exists` always says true.
    ExistsAlways,
    /// `delete_ref` does nothing.
    DeleteRefIgnored,
    /// `get_batch` returns results in reverse order.
    BatchReversed,
    /// `commit_ref` writes the reference but forgets the objects.
    CommitDropsObjects,
    /// `commit_ref` writes the reference even when an object clashes.
    CommitIgnoresObjectErrors,
}

#[derive(Debug)]
struct Broken {
    inner: MemoryStorage,
    bug: Bug,
}

fn broken(bug: Bug) -> impl Fn() -> Arc<dyn Storage> {
    move || Arc::new(Broken { inner: MemoryStorage::new(), bug })
}

impl Storage for Broken {
    fn describe(&self) -> String {
        format!("broken ({:?})", self.bug)
    }

    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        if self.bug == Bug::PutOverwrites {
            self.inner.delete_batch(std::slice::from_ref(key))?;
        }
        self.inner.put(key, value)
    }

    fn get(&self, key: &AtomKey) -> Result<Bytes> {
        self.inner.get(key)
    }

    fn get_range(&self, key: &AtomKey, range: Range<u64>) -> Result<Bytes> {
        if self.bug == Bug::RangeIgnored { self.inner.get(key) } else { self.inner.get_range(key, range) }
    }

    fn get_batch(&self, keys: &[AtomKey]) -> Vec<Result<Bytes>> {
        let mut out = self.inner.get_batch(keys);
        if self.bug == Bug::BatchReversed {
            out.reverse();
        }
        out
    }

    fn exists(&self, key: &AtomKey) -> Result<bool> {
        if self.bug == Bug::ExistsAlways { Ok(true) } else { self.inner.exists(key) }
    }

    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()> {
        self.inner.delete_batch(keys)
    }

    fn list_page(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<ListPage> {
        let scope = match (self.bug, scope) {
            (Bug::SymbolIsPrefix, ListScope::Symbol(s)) => ListScope::SymbolPrefix(s),
            (_, s) => s,
        };
        if self.bug == Bug::LosesLastPage {
            let mut page = self.inner.list_page(key_type, scope, after, limit)?;
            if page.more && page.keys.len() > 2 && after.is_some() {
                page.more = false;
            }
            return Ok(page);
        }
        self.inner.list_page(key_type, scope, after, limit)
    }

    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>> {
        let value = self.inner.read_ref(key)?;
        if self.bug == Bug::TokenFromContent {
            return Ok(value.map(|v| RefValue { token: content_token(&v.bytes), bytes: v.bytes }));
        }
        Ok(value)
    }

    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        match self.bug {
            Bug::CasIgnored => {
                let current = self.inner.read_ref(key)?;
                let at = current.map(|v| v.token);
                self.inner.write_ref(key, value, at.as_ref().map_or(RefExpectation::Absent, RefExpectation::At))
            }
            Bug::CasNotAtomic => {
                let current = self.inner.read_ref(key)?;
                let ok = match (expected, &current) {
                    (RefExpectation::Absent, None) => true,
                    (RefExpectation::At(t), Some(v)) => *t == v.token,
                    _ => false,
                };
                if !ok {
                    return Err(StorageError::conflict(key));
                }
                // A window between check and write that racing threads reliably fall into: a bare
                // yield let one CI run (2 cores, other test binaries running) pass the check by luck.
                std::thread::sleep(std::time::Duration::from_micros(200));
                // Write over whatever is there now: the check above may be stale.
                let now = self.inner.read_ref(key)?.map(|v| v.token);
                self.inner.write_ref(key, value, now.as_ref().map_or(RefExpectation::Absent, RefExpectation::At))
            }
            Bug::TokenFromContent => {
                let current = self.inner.read_ref(key)?;
                let ok = match (expected, &current) {
                    (RefExpectation::Absent, None) => true,
                    (RefExpectation::At(t), Some(v)) => *t == content_token(&v.bytes),
                    _ => false,
                };
                if !ok {
                    return Err(StorageError::conflict(key));
                }
                let token = content_token(&value);
                let at = current.map(|v| v.token);
                self.inner.write_ref(key, value, at.as_ref().map_or(RefExpectation::Absent, RefExpectation::At))?;
                Ok(token)
            }
            _ => self.inner.write_ref(key, value, expected),
        }
    }

    fn commit_ref(
        &self,
        objects: Vec<(AtomKey, Bytes)>,
        key: &RefKey,
        value: Bytes,
        expected: RefExpectation<'_>,
    ) -> Result<RefToken> {
        match self.bug {
            Bug::CommitDropsObjects => self.inner.write_ref(key, value, expected),
            Bug::CommitIgnoresObjectErrors => {
                let _ = self.inner.put_batch(objects);
                self.inner.write_ref(key, value, expected)
            }
            _ => self.inner.commit_ref(objects, key, value, expected),
        }
    }

    fn delete_ref(&self, key: &RefKey) -> Result<()> {
        if self.bug == Bug::DeleteRefIgnored { Ok(()) } else { self.inner.delete_ref(key) }
    }
}

fn content_token(bytes: &[u8]) -> RefToken {
    RefToken::new(format!(
        "{:016x}",
        crate::rng::mix(bytes.iter().fold(0u64, |h, &b| h.wrapping_mul(31) ^ u64::from(b)))
    ))
}

fn small() -> ConformanceConfig {
    ConformanceConfig {
        large_object_bytes: 1 << 20,
        list_keys: 1_100,
        cas_threads: 4,
        cas_rounds: 100,
        commit_rounds: 20,
        cas_increments_per_thread: 10,
        readers: 2,
        reader_writes: 50,
        reader_value_bytes: 4096,
        ..ConformanceConfig::default()
    }
}

/// Runs `check` against `bug` and returns the failure message, panicking if the check passed.
fn caught(bug: Bug, check: CheckFn) -> String {
    let factory = broken(bug);
    let storage = factory();
    match check(&small(), storage.as_ref()) {
        Ok(()) => panic!("the check passed despite {bug:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(message: &str, part: &str) {
    assert!(message.contains(part), "expected {part:?} in the failure message:\n{message}");
}

#[test]
fn overwriting_puts_are_caught() {
    let m = caught(Bug::PutOverwrites, put_is_create_only);
    assert_contains(&m, "expected AlreadyExists, but it succeeded");
}

#[test]
fn ignored_cas_is_caught_by_the_race_and_the_stale_token_check() {
    assert_contains(&caught(Bug::CasIgnored, cas_race_one_winner_per_round), "exactly one must");
    assert_contains(&caught(Bug::CasIgnored, ref_stale_token_conflicts), "expected Conflict");
    assert_contains(&caught(Bug::CasIgnored, ref_create_only_once), "expected Conflict");
}

#[test]
fn non_atomic_cas_is_caught_by_the_races() {
    // Both races are probabilistic; with a 200 µs pause between check and write, 100 rounds of 4
    // threads (or a 40-increment counter) let it through practically never (a bare yield did once).
    let race = caught(Bug::CasNotAtomic, cas_race_one_winner_per_round);
    assert!(race.contains("exactly one must") || race.contains("update was lost"), "{race}");
    let counter = caught(Bug::CasNotAtomic, cas_counter_loses_no_update);
    assert!(counter.contains("lost") || counter.contains("holds"), "{counter}");
}

#[test]
fn content_derived_tokens_are_caught() {
    assert_contains(&caught(Bug::TokenFromContent, ref_tokens_change_on_every_write), "ABA");
}

#[test]
fn symbol_scope_acting_as_prefix_is_caught() {
    let m = caught(Bug::SymbolIsPrefix, list_symbol_scope_is_exact);
    assert_contains(&m, "outside the listing");
}

#[test]
fn a_lost_last_page_is_caught() {
    let m = caught(Bug::LosesLastPage, list_pages_without_gaps_or_duplicates);
    assert_contains(&m, "missing");
}

#[test]
fn ignored_ranges_are_caught() {
    assert_contains(&caught(Bug::RangeIgnored, get_range_bounds), "wrong bytes");
}

#[test]
fn a_lying_exists_is_caught() {
    assert_contains(&caught(Bug::ExistsAlways, exists_tracks_puts_and_deletes), "is true before any put");
    assert_contains(&caught(Bug::ExistsAlways, missing_keys_are_not_found), "exists of absent");
}

#[test]
fn an_ignored_delete_ref_is_caught() {
    assert_contains(&caught(Bug::DeleteRefIgnored, ref_delete), "expected no reference");
}

#[test]
fn reordered_batches_are_caught() {
    assert_contains(&caught(Bug::BatchReversed, get_batch_results_in_order), "get_batch item 0");
}

#[test]
fn careless_commits_are_caught() {
    assert_contains(
        &caught(Bug::CommitDropsObjects, commit_ref_writes_objects_and_ref),
        "failed unexpectedly: not found",
    );
    assert_contains(&caught(Bug::CommitDropsObjects, commit_ref_race_one_winner_per_round), "committed by the winner");
    assert_contains(
        &caught(Bug::CommitIgnoresObjectErrors, commit_ref_failures_leave_ref_unchanged),
        "expected AlreadyExists, but it succeeded",
    );
}

#[test]
fn run_all_passes_on_memory_and_reports_every_check() {
    let report = run_all(&small(), || -> Arc<dyn Storage> { Arc::new(MemoryStorage::new()) }).expect("memory conforms");
    assert_eq!(report.outcomes.len(), CHECKS.len());
    let text = report.to_string();
    assert!(text.contains(&format!("{} checks, {} passed, 0 failed", CHECKS.len(), CHECKS.len())), "{text}");
    assert!(text.contains("ok     cas_race_one_winner_per_round"), "{text}");
}

#[test]
fn run_all_reports_failures_and_goes_on() {
    let report = run_all(&small(), broken(Bug::ExistsAlways)).expect_err("a broken backend fails");
    let failed: Vec<&str> = report.failures().map(|f| f.check).collect();
    assert!(failed.contains(&"exists_tracks_puts_and_deletes"), "{failed:?}");
    assert!(report.outcomes.iter().any(|(name, _, r)| *name == "round_trip_large" && r.is_ok()));
    assert!(format!("{report:?}").contains("FAILED exists_tracks_puts_and_deletes"));
}

#[test]
fn a_non_empty_factory_and_a_panicking_backend_are_reported() {
    let shared = Arc::new(MemoryStorage::new());
    let factory = move || -> Arc<dyn Storage> { shared.clone() };
    run_check("round_trip_small", round_trip_small, &small(), &factory);
    let second = std::panic::catch_unwind(|| run_check("round_trip_small", round_trip_small, &small(), &factory));
    let message = super::support::panic_message(&*second.expect_err("the storage is no longer empty"));
    assert_contains(&message, "must return an empty storage");
    assert_contains(&message, "round_trip_small");

    let report =
        run_all(&small(), || -> Arc<dyn Storage> { panic!("cannot build the storage") }).expect_err("panics fail");
    assert!(report.failures().all(|f| f.error.message().contains("panicked: cannot build the storage")));
}
