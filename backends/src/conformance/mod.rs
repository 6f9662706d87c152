//! The conformance suite: the executable form of the [`Storage`] contract.
//!
//! Every backend in this crate passes it, and a backend written outside the project should too
//! before the engine is pointed at it. Enable the `conformance` feature of `floe-backends` (usually
//! as a dev-dependency) and either run everything with one call:
//!
//! ```no_run
//! use std::sync::Arc;
//! use floe_backends::conformance::{ConformanceConfig, run_all};
//! use floe_backends::{MemoryStorage, Storage};
//!
//! let report = run_all(&ConformanceConfig::default(), || -> Arc<dyn Storage> {
//!     Arc::new(MemoryStorage::new()) // a fresh, empty storage on every call
//! });
//! match report {
//!     Ok(report) => println!("{report}"),
//!     Err(report) => panic!("{report}"),
//! }
//! ```
//!
//! or get one `#[test]` per check in a test file (so failures are reported and filtered one by one):
//!
//! ```ignore
//! use std::sync::Arc;
//! use floe_backends::{MemoryStorage, Storage};
//! floe_backends::conformance_tests!(|| -> Arc<dyn Storage> { Arc::new(MemoryStorage::new()) });
//! ```
//!
//! The factory is called once per check and must return a **fresh, empty** storage (a new library
//! name on a shared server is enough); each check first verifies that it got an empty one. Slow
//! network backends may scale the heavier checks down through [`ConformanceConfig`].
//!
//! Each check is also a public function (`fn(&ConformanceConfig, &dyn Storage) -> Result<(),
//! CheckError>`), listed with a one-line summary in [`CHECKS`]. Failure messages name the check, the
//! operation and the key, and say what was expected and what came back.

mod concurrency;
mod listing;
mod objects;
mod refs;
mod support;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_formats::KeyType;

use crate::storage::{ListScope, Storage};

pub use concurrency::{
    cas_counter_loses_no_update, cas_race_one_winner_per_round, commit_ref_race_one_winner_per_round,
    concurrent_put_batches_all_land, put_race_one_creator, readers_see_whole_values,
};
pub use listing::{
    list_after_deletes, list_during_writes, list_pages_without_gaps_or_duplicates, list_separates_key_types,
    list_symbol_prefix_scope, list_symbol_scope_is_exact, list_unicode_symbols, visit_listed_matches_listing,
};
pub use objects::{
    delete_batch_semantics, exists_tracks_puts_and_deletes, get_batch_results_in_order, get_range_bounds,
    missing_keys_are_not_found, put_batch_parts_before_commit_stores_like_put, put_batch_parts_stores_the_joined_bytes,
    put_batch_results_in_order, put_is_create_only, round_trip_empty, round_trip_large, round_trip_small,
    size_batch_gives_each_objects_length, visit_batch_visits_each_key,
};
pub use refs::{
    commit_ref_failures_leave_ref_unchanged, commit_ref_writes_objects_and_ref, read_ref_and_get_matches_both,
    read_ref_batch_matches_read_ref, ref_absent_reads_none, ref_create_only_once, ref_delete,
    ref_stale_token_conflicts, ref_tokens_change_on_every_write, refs_are_independent,
};
pub use support::CheckError;

/// Sizes and counts of the heavier checks. The defaults are what the issue asks of every backend in
/// this project; a slow network backend may lower the thread and round counts, but not below what
/// still exercises the behaviour (several threads, several pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceConfig {
    /// Size of the large object of [`round_trip_large`] (default 64 MiB).
    pub large_object_bytes: usize,
    /// Keys listed by [`list_pages_without_gaps_or_duplicates`] (default 2,100: more than two pages
    /// of 1,000).
    pub list_keys: usize,
    /// The small page size used besides 1,000 (default 7, so pages end at awkward places).
    pub list_small_limit: usize,
    /// Threads racing in [`cas_race_one_winner_per_round`] and [`cas_counter_loses_no_update`]
    /// (default 16).
    pub cas_threads: usize,
    /// Rounds of [`cas_race_one_winner_per_round`] (default 1,000).
    pub cas_rounds: usize,
    /// Rounds of [`commit_ref_race_one_winner_per_round`] (default 100).
    pub commit_rounds: usize,
    /// Successful increments each thread makes in [`cas_counter_loses_no_update`] (default 25).
    pub cas_increments_per_thread: usize,
    /// Reader threads of [`readers_see_whole_values`] (default 4).
    pub readers: usize,
    /// Values the writer of [`readers_see_whole_values`] writes (default 200).
    pub reader_writes: usize,
    /// Largest value written in [`readers_see_whole_values`] (default 256 KiB).
    pub reader_value_bytes: usize,
    /// Seed of the pseudo-random test data.
    pub seed: u64,
}

impl Default for ConformanceConfig {
    fn default() -> Self {
        ConformanceConfig {
            large_object_bytes: 64 << 20,
            list_keys: 2_100,
            list_small_limit: 7,
            cas_threads: 16,
            cas_rounds: 1_000,
            commit_rounds: 100,
            cas_increments_per_thread: 25,
            readers: 4,
            reader_writes: 200,
            reader_value_bytes: 256 << 10,
            seed: 0x00F1_0E5E_ED00_0001,
        }
    }
}

/// The signature of every check.
pub type CheckFn = fn(&ConformanceConfig, &dyn Storage) -> Result<(), CheckError>;

/// One check of the suite.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// The check's function name (also its `#[test]` name under [`conformance_tests!`](crate::conformance_tests)).
    pub name: &'static str,
    /// What it verifies, in one line.
    pub about: &'static str,
    /// The check itself.
    pub run: CheckFn,
}

macro_rules! checks {
    ($($name:ident: $about:literal,)*) => {
        /// Every check of the suite, in the order [`run_all`] runs them.
        pub const CHECKS: &[Check] = &[$(Check { name: stringify!($name), about: $about, run: $name },)*];
    };
}

checks! {
    round_trip_small: "small objects of every atom type read back byte for byte",
    round_trip_empty: "an empty object is stored, read and range-read as empty",
    round_trip_large: "a large object (default 64 MiB) reads back whole and by range",
    get_range_bounds: "get_range inside, at the end, clamped past the end, and past the end",
    put_is_create_only: "re-put of the same bytes succeeds; other bytes give AlreadyExists and change nothing",
    missing_keys_are_not_found: "get, get_range, get_batch, visit_batch and visit_batch_here of absent keys give NotFound",
    exists_tracks_puts_and_deletes: "exists follows put and delete",
    delete_batch_semantics: "delete_batch removes exactly its keys; missing keys and repeats are fine",
    put_batch_results_in_order: "put_batch returns one result per item, in order",
    put_batch_parts_stores_the_joined_bytes: "put_batch_parts stores each object's parts joined, create-only like put",
    put_batch_parts_before_commit_stores_like_put: "put_batch_parts_before_commit stores like put_batch_parts; the objects stay after a write_ref",
    get_batch_results_in_order: "get_batch returns one result per key, in order, duplicates included",
    visit_batch_visits_each_key: "visit_batch (and visit_batch_here, in order) visits every index once with its bytes and returns visit errors",
    size_batch_gives_each_objects_length: "size_batch gives each object's length, NotFound for absent ones, in order",
    list_pages_without_gaps_or_duplicates: "more than 2,000 keys listed in pages of 1,000 and of 7; limit 0 refused",
    list_symbol_scope_is_exact: "ListScope::Symbol(\"ab\") lists ab only, not abc, ab/x or a",
    list_symbol_prefix_scope: "ListScope::SymbolPrefix lists exactly the symbols starting with the prefix",
    list_separates_key_types: "each key type lists only its own keys; references apart from atoms",
    list_unicode_symbols: "unicode symbols list and scope correctly",
    list_after_deletes: "deleted keys and references leave listings",
    list_during_writes: "a listing racing with writes neither repeats nor skips keys",
    visit_listed_matches_listing: "visit_listed visits what a listing returns, once each with its value; errors stop it",
    ref_absent_reads_none: "reading an absent reference gives None",
    ref_create_only_once: "creating an existing reference is a Conflict and changes nothing",
    ref_stale_token_conflicts: "a write with a stale token is a Conflict; the current token works",
    ref_tokens_change_on_every_write: "every write gets a new token, even of the same bytes (no ABA)",
    ref_delete: "delete_ref removes; re-creation gets a token no old holder can use",
    refs_are_independent: "references of other types or symbols are untouched by writes",
    read_ref_batch_matches_read_ref: "read_ref_batch gives what read_ref gives, key by key, tokens included",
    read_ref_and_get_matches_both: "read_ref_and_get gives what read_ref and get give, absent objects as None",
    commit_ref_writes_objects_and_ref: "commit_ref writes its objects and the reference, creating or replacing",
    commit_ref_failures_leave_ref_unchanged: "a conflicting or clashing commit_ref leaves the reference as it was",
    cas_race_one_winner_per_round: "threads race to advance one reference: exactly one wins each round",
    commit_ref_race_one_winner_per_round: "threads race commit_ref: one winner per round, its objects readable",
    cas_counter_loses_no_update: "a read-increment-CAS counter under contention loses no update",
    put_race_one_creator: "racing create-only puts: one value wins, identical bytes all succeed",
    concurrent_put_batches_all_land: "concurrent_puts >= 1; put_batch calls racing each other all land",
    readers_see_whole_values: "readers racing a writer see only whole written values, never older ones",
}

/// A check that failed: its name and why.
#[derive(Debug, Clone)]
pub struct CheckFailure {
    /// The check's name (see [`CHECKS`]).
    pub check: &'static str,
    /// What went wrong.
    pub error: CheckError,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conformance check `{}` failed: {}", self.check, self.error)
    }
}

impl std::error::Error for CheckFailure {}

/// The outcome of [`run_all`]: every check with its time and result.
pub struct ConformanceReport {
    /// What the storage said about itself ([`Storage::describe`]) in the first check.
    pub backend: String,
    /// `(check, time taken, result)` in run order.
    pub outcomes: Vec<(&'static str, Duration, Result<(), CheckError>)>,
}

impl ConformanceReport {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = CheckFailure> + '_ {
        self.outcomes
            .iter()
            .filter_map(|(check, _, r)| r.as_ref().err().map(|e| CheckFailure { check, error: e.clone() }))
    }

    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|(_, _, r)| r.is_ok())
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.outcomes.iter().filter(|(_, _, r)| r.is_err()).count();
        writeln!(
            f,
            "conformance of {}: {} checks, {} passed, {failed} failed",
            self.backend,
            self.outcomes.len(),
            self.outcomes.len() - failed
        )?;
        for (check, took, result) in &self.outcomes {
            match result {
                Ok(()) => writeln!(f, "  ok     {check} ({:.2?})", took)?,
                Err(e) => writeln!(f, "  FAILED {check} ({:.2?}): {e}", took)?,
            }
        }
        Ok(())
    }
}

// Debug shows the readable report, which is what `main() -> Result<..>` and `expect` print.
impl fmt::Debug for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConformanceReport {}

/// Runs every check in [`CHECKS`] on a fresh storage from `factory`, continuing after failures.
///
/// # Errors
/// The report, as the error, when at least one check failed (or panicked).
pub fn run_all(
    config: &ConformanceConfig,
    factory: impl Fn() -> Arc<dyn Storage>,
) -> Result<ConformanceReport, ConformanceReport> {
    let mut report = ConformanceReport { backend: String::new(), outcomes: Vec::with_capacity(CHECKS.len()) };
    for check in CHECKS {
        let started = Instant::now();
        let result = run_on_fresh(check.run, config, &factory, &mut report.backend);
        report.outcomes.push((check.name, started.elapsed(), result));
    }
    if report.passed() { Ok(report) } else { Err(report) }
}

/// Runs one check on a fresh storage from `factory` and panics with a message naming the check if it
/// fails; this is what each `#[test]` of [`conformance_tests!`](crate::conformance_tests) calls.
///
/// # Panics
/// When the check fails.
pub fn run_check(
    name: &'static str,
    check: CheckFn,
    config: &ConformanceConfig,
    factory: impl Fn() -> Arc<dyn Storage>,
) {
    let mut backend = String::new();
    if let Err(error) = run_on_fresh(check, config, &factory, &mut backend) {
        panic!("{} (backend {backend})", CheckFailure { check: name, error });
    }
}

fn run_on_fresh(
    check: CheckFn,
    config: &ConformanceConfig,
    factory: &dyn Fn() -> Arc<dyn Storage>,
    backend: &mut String,
) -> Result<(), CheckError> {
    // A panicking backend (or check) becomes a failure of this check, so `run_all` goes on.
    catch_unwind(AssertUnwindSafe(|| {
        let storage = factory();
        if backend.is_empty() {
            *backend = storage.describe();
        }
        ensure_empty(storage.as_ref())?;
        check(config, storage.as_ref())
    }))
    .unwrap_or_else(|panic| Err(CheckError::new(format!("panicked: {}", support::panic_message(&*panic)))))
}

fn ensure_empty(storage: &dyn Storage) -> Result<(), CheckError> {
    for &key_type in KeyType::ALL {
        let page = storage
            .list_page(key_type, ListScope::All, None, 1)
            .map_err(|e| CheckError::new(format!("listing {key_type} keys of the fresh storage failed: {e}")))?;
        if let Some(key) = page.keys.first() {
            return Err(CheckError::new(format!(
                "the factory must return an empty storage, but it holds {key} (use a new library per call)"
            )));
        }
    }
    Ok(())
}

/// Expands to one `#[test]` per conformance check, each running on a fresh storage from the factory.
///
/// ```ignore
/// use std::sync::Arc;
/// use floe_backends::{MemoryStorage, Storage};
/// floe_backends::conformance_tests!(|| -> Arc<dyn Storage> { Arc::new(MemoryStorage::new()) });
///
/// // or, with a configuration:
/// floe_backends::conformance_tests!(
///     config = floe_backends::conformance::ConformanceConfig { cas_rounds: 200, ..Default::default() },
///     factory = || -> Arc<dyn Storage> { Arc::new(MemoryStorage::new()) },
/// );
/// ```
///
/// It also adds `conformance_covers_every_check`, which fails if this list and
/// [`conformance::CHECKS`](crate::conformance::CHECKS) ever disagree.
#[macro_export]
macro_rules! conformance_tests {
    (@expand ($config:expr) ($factory:expr) [$($check:ident)*]) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::run_check(stringify!($check), $crate::conformance::$check, &$config, $factory);
            }
        )*

        #[test]
        fn conformance_covers_every_check() {
            let listed: &[&str] = &[$(stringify!($check)),*];
            let all: Vec<&str> = $crate::conformance::CHECKS.iter().map(|c| c.name).collect();
            assert_eq!(listed, all.as_slice(), "conformance_tests! and conformance::CHECKS disagree");
        }
    };
    (config = $config:expr, factory = $factory:expr $(,)?) => {
        $crate::conformance_tests!(@expand ($config) ($factory) [
            round_trip_small round_trip_empty round_trip_large get_range_bounds put_is_create_only
            missing_keys_are_not_found exists_tracks_puts_and_deletes delete_batch_semantics
            put_batch_results_in_order put_batch_parts_stores_the_joined_bytes
            put_batch_parts_before_commit_stores_like_put get_batch_results_in_order
            visit_batch_visits_each_key
            size_batch_gives_each_objects_length
            list_pages_without_gaps_or_duplicates list_symbol_scope_is_exact list_symbol_prefix_scope
            list_separates_key_types list_unicode_symbols list_after_deletes list_during_writes
            visit_listed_matches_listing
            ref_absent_reads_none ref_create_only_once ref_stale_token_conflicts
            ref_tokens_change_on_every_write ref_delete refs_are_independent read_ref_batch_matches_read_ref
            read_ref_and_get_matches_both
            commit_ref_writes_objects_and_ref commit_ref_failures_leave_ref_unchanged
            cas_race_one_winner_per_round commit_ref_race_one_winner_per_round cas_counter_loses_no_update
            put_race_one_creator concurrent_put_batches_all_land
            readers_see_whole_values
        ]);
    };
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(config = $crate::conformance::ConformanceConfig::default(), factory = $factory);
    };
}

#[cfg(test)]
mod tests;
