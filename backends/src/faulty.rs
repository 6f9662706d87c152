//! [`FaultyStorage`]: a wrapper that injects seeded failures and delays, for crash and retry tests.
//!
//! Every call through the wrapper gets a **call number**, counted from the last
//! [`FaultyStorage::set_plan`] (or from creation): one per trait method call, except that `put_batch`
//! and `get_batch` number each item, in item order, because real backends run the items independently
//! and a batch can fail in part. A [`FaultPlan`] decides, from its seed and the call number alone,
//! whether that call fails, whether it fails **before** its effect (nothing happened) or **after** it
//! (the write happened, but the caller is told it failed, as when a connection drops before the
//! answer arrives), and how long it is delayed. Single-threaded callers therefore see the same faults
//! on every run with the same seed.
//!
//! `commit_ref` is not forwarded as one call: it runs as the trait's default through the wrapper
//! (`put_batch`, then `write_ref`), so its objects and its reference fail separately, as they may on
//! a backend without transactions.
//!
//! Injected errors are [`StorageError::Unavailable`] with backend `"faulty"` and a message starting
//! with `injected fault`; [`is_injected`] recognises them.
//!
//! A crash test that fails each call of an operation in turn:
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use floe_backends::faulty::{FaultPlan, FaultyStorage, Timing};
//! use floe_backends::{MemoryStorage, Storage};
//! use floe_formats::{AtomFields, AtomKey, KeyType};
//!
//! let faulty = FaultyStorage::new(Arc::new(MemoryStorage::new()), FaultPlan::none());
//! let key = AtomKey::new(KeyType::TableData, "sym", AtomFields::default())?;
//! for n in 0.. {
//!     faulty.set_plan(FaultPlan::fail_call(n, Timing::After));
//!     let result = faulty.put(&key, Bytes::from_static(b"data")); // the operation under test
//!     if faulty.injected().is_empty() {
//!         result?; // the operation made fewer than n + 1 calls: every call has been failed once
//!         break;
//!     }
//!     faulty.set_plan(FaultPlan::none());
//!     // ... check that recovery from a failure at call n works ...
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use floe_formats::{AtomKey, Key, KeyType, RefKey};

use crate::error::{Result, StorageError};
use crate::rng::{SplitMix64, mix};
use crate::storage::{ListPage, ListScope, RefExpectation, RefToken, RefValue, Storage};

/// The kinds of storage operation a [`FaultPlan`] can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// `put`, and each item of `put_batch`.
    Put,
    /// `get`, and each key of `get_batch`.
    Get,
    /// `get_range`.
    GetRange,
    /// `visit_batch` and `visit_batch_here` (one call for the whole batch).
    Visit,
    /// `exists`.
    Exists,
    /// `delete_batch` (one call for the whole batch).
    Delete,
    /// `list_page` (so each page of a listing).
    List,
    /// `read_ref`.
    ReadRef,
    /// `write_ref`.
    WriteRef,
    /// `delete_ref`.
    DeleteRef,
}

impl OpKind {
    /// Every kind.
    pub const ALL: [OpKind; 10] = [
        OpKind::Put,
        OpKind::Get,
        OpKind::GetRange,
        OpKind::Visit,
        OpKind::Exists,
        OpKind::Delete,
        OpKind::List,
        OpKind::ReadRef,
        OpKind::WriteRef,
        OpKind::DeleteRef,
    ];

    /// The operation's name, as used in injected error messages.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::GetRange => "get_range",
            OpKind::Visit => "visit_batch",
            OpKind::Exists => "exists",
            OpKind::Delete => "delete_batch",
            OpKind::List => "list_page",
            OpKind::ReadRef => "read_ref",
            OpKind::WriteRef => "write_ref",
            OpKind::DeleteRef => "delete_ref",
        }
    }

    /// True for the kinds that change storage (`put`, `delete_batch`, `write_ref`, `delete_ref`), the
    /// ones for which failing after the effect differs from failing before it.
    pub fn writes(self) -> bool {
        matches!(self, OpKind::Put | OpKind::Delete | OpKind::WriteRef | OpKind::DeleteRef)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When an injected failure strikes relative to the call's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timing {
    /// The call fails without reaching the wrapped storage: nothing happened.
    Before,
    /// The call reaches the wrapped storage (a write takes effect), then the caller gets an error.
    After,
}

/// Which calls fail and how calls are delayed. Built with [`FaultPlan::none`],
/// [`FaultPlan::random`] or [`FaultPlan::fail_call`] and the `with_*`/`and_*` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    seed: u64,
    fail_probability: [f64; OpKind::ALL.len()],
    after_effect_probability: f64,
    delay_probability: f64,
    delay: Range<Duration>,
    fail_calls: Vec<(u64, Timing)>,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::none()
    }
}

impl FaultPlan {
    /// No faults, no delays: the wrapper only counts calls.
    pub fn none() -> Self {
        FaultPlan {
            seed: 0,
            fail_probability: [0.0; OpKind::ALL.len()],
            after_effect_probability: 0.0,
            delay_probability: 0.0,
            delay: Duration::ZERO..Duration::ZERO,
            fail_calls: Vec::new(),
        }
    }

    /// Random faults from `seed`; set their rates with [`with_failures`](Self::with_failures) and
    /// friends. Faults strike before the effect until
    /// [`with_after_effect_probability`](Self::with_after_effect_probability) says otherwise.
    pub fn random(seed: u64) -> Self {
        FaultPlan { seed, ..Self::none() }
    }

    /// Exactly call number `call` (0-based, counted from when the plan is set) fails, at `timing`.
    pub fn fail_call(call: u64, timing: Timing) -> Self {
        Self::none().and_fail_call(call, timing)
    }

    /// Also fails call number `call`, at `timing`.
    pub fn and_fail_call(mut self, call: u64, timing: Timing) -> Self {
        self.fail_calls.push((call, timing));
        self
    }

    /// Calls of kind `op` fail with probability `p` (clamped to `[0, 1]`).
    pub fn with_failures(mut self, op: OpKind, p: f64) -> Self {
        self.fail_probability[op.index()] = p.clamp(0.0, 1.0);
        self
    }

    /// Calls of every kind fail with probability `p` (clamped to `[0, 1]`).
    pub fn with_failures_everywhere(mut self, p: f64) -> Self {
        self.fail_probability = [p.clamp(0.0, 1.0); OpKind::ALL.len()];
        self
    }

    /// A randomly failed call fails after its effect with probability `p` (else before it).
    pub fn with_after_effect_probability(mut self, p: f64) -> Self {
        self.after_effect_probability = p.clamp(0.0, 1.0);
        self
    }

    /// With probability `p`, a call sleeps for a duration drawn uniformly from `range` before it runs.
    /// A batch sleeps once, for the longest delay drawn for its items (they would run concurrently).
    pub fn with_delays(mut self, p: f64, range: Range<Duration>) -> Self {
        self.delay_probability = p.clamp(0.0, 1.0);
        self.delay = range;
        self
    }

    /// The fault (if any) and the delay for call number `call` of kind `op`; a pure function of the
    /// plan and its arguments.
    pub fn decide(&self, call: u64, op: OpKind) -> (Option<Timing>, Duration) {
        // An independent stream per call number, so decisions do not depend on thread interleaving.
        let mut rng = SplitMix64::new(mix(self.seed ^ call.wrapping_mul(0xA24B_AED4_963E_E407)));
        let random_fault = rng.next_f64() < self.fail_probability[op.index()];
        let random_timing = if rng.next_f64() < self.after_effect_probability { Timing::After } else { Timing::Before };
        let fault =
            self.fail_calls.iter().find(|(c, _)| *c == call).map(|&(_, t)| t).or(random_fault.then_some(random_timing));
        let delay = if rng.next_f64() < self.delay_probability {
            let span = self.delay.end.saturating_sub(self.delay.start);
            let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
            self.delay.start + Duration::from_nanos(if nanos == 0 { 0 } else { rng.below(nanos) })
        } else {
            Duration::ZERO
        };
        (fault, delay)
    }
}

/// One fault the wrapper injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// The call number (counted from the last [`FaultyStorage::set_plan`]).
    pub call: u64,
    /// The kind of call.
    pub op: OpKind,
    /// Before or after the effect.
    pub timing: Timing,
    /// The key or keys involved, for messages.
    pub target: String,
}

/// True for an error made by a [`FaultyStorage`], as opposed to one from the wrapped storage.
pub fn is_injected(e: &StorageError) -> bool {
    matches!(e, StorageError::Unavailable { backend: "faulty", .. })
}

#[derive(Debug)]
struct State {
    plan: FaultPlan,
    injected: Vec<Injected>,
}

/// A [`Storage`] that forwards to another and injects the faults and delays of a [`FaultPlan`].
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    calls: AtomicU64,
    state: Mutex<State>,
}

impl FaultyStorage {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: Arc<dyn Storage>, plan: FaultPlan) -> Self {
        FaultyStorage { inner, calls: AtomicU64::new(0), state: Mutex::new(State { plan, injected: Vec::new() }) }
    }

    /// The wrapped storage (to inspect what really happened, bypassing faults).
    pub fn inner(&self) -> &Arc<dyn Storage> {
        &self.inner
    }

    /// Replaces the plan, restarts call numbering at 0 and clears the list of injected faults.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut state = self.lock();
        state.plan = plan;
        state.injected.clear();
        self.calls.store(0, Ordering::SeqCst);
    }

    /// How many call numbers have been handed out since the last [`set_plan`](Self::set_plan).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The faults injected since the last [`set_plan`](Self::set_plan), in the order they struck.
    pub fn injected(&self) -> Vec<Injected> {
        self.lock().injected.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is a single assignment or push, so a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers `count` calls of kind `op` and decides their fate; returns each call's number and
    /// fault after sleeping the longest delay.
    fn begin(&self, op: OpKind, count: usize) -> Vec<(u64, Option<Timing>)> {
        let plan = self.lock().plan.clone();
        let first = self.calls.fetch_add(count as u64, Ordering::SeqCst);
        let mut longest = Duration::ZERO;
        let fates = (first..first + count as u64)
            .map(|call| {
                let (fault, delay) = plan.decide(call, op);
                longest = longest.max(delay);
                (call, fault)
            })
            .collect();
        if !longest.is_zero() {
            std::thread::sleep(longest);
        }
        fates
    }

    fn inject(&self, call: u64, op: OpKind, timing: Timing, target: impl fmt::Display) -> StorageError {
        let target = target.to_string();
        let when = match timing {
            Timing::Before => "before its effect",
            Timing::After => "after its effect",
        };
        let message = format!("injected fault: call #{call} ({op} {target}) failed {when}");
        self.lock().injected.push(Injected { call, op, timing, target });
        StorageError::unavailable("faulty", message)
    }

    /// Runs one call of kind `op` through the plan.
    fn one<T>(&self, op: OpKind, target: impl fmt::Display, run: impl FnOnce() -> Result<T>) -> Result<T> {
        let [(call, fault)] = self.begin(op, 1)[..] else { unreachable!("begin(_, 1) returns one fate") };
        match fault {
            None => run(),
            Some(Timing::Before) => Err(self.inject(call, op, Timing::Before, target)),
            Some(Timing::After) => {
                // The effect happens (or the real call fails); either way the caller sees the fault.
                let _ = run();
                Err(self.inject(call, op, Timing::After, target))
            }
        }
    }
}

impl Storage for FaultyStorage {
    fn describe(&self) -> String {
        format!("faulty({})", self.inner.describe())
    }

    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        self.one(OpKind::Put, key, || self.inner.put(key, value))
    }

    fn put_batch(&self, items: Vec<(AtomKey, Bytes)>) -> Vec<Result<()>> {
        let fates = self.begin(OpKind::Put, items.len());
        let mut results: Vec<Option<Result<()>>> = Vec::with_capacity(items.len());
        let mut forwarded = Vec::new();
        let mut keys = Vec::with_capacity(items.len());
        for (item, &(call, fault)) in items.into_iter().zip(&fates) {
            keys.push(item.0.clone());
            if fault == Some(Timing::Before) {
                results.push(Some(Err(self.inject(call, OpKind::Put, Timing::Before, &item.0))));
            } else {
                results.push(None);
                forwarded.push(item);
            }
        }
        // The surviving items go down as one batch, so the wrapped backend still overlaps them.
        let mut inner_results = self.inner.put_batch(forwarded).into_iter();
        results
            .into_iter()
            .zip(fates)
            .zip(keys)
            .map(|((done, (call, fault)), key)| match done {
                Some(r) => r,
                None => {
                    let r = inner_results.next().unwrap_or_else(|| {
                        Err(StorageError::other("faulty", "the wrapped put_batch returned too few results"))
                    });
                    if fault == Some(Timing::After) {
                        Err(self.inject(call, OpKind::Put, Timing::After, &key))
                    } else {
                        r
                    }
                }
            })
            .collect()
    }

    fn get(&self, key: &AtomKey) -> Result<Bytes> {
        self.one(OpKind::Get, key, || self.inner.get(key))
    }

    fn get_range(&self, key: &AtomKey, range: Range<u64>) -> Result<Bytes> {
        self.one(OpKind::GetRange, format_args!("{key} {range:?}"), || self.inner.get_range(key, range.clone()))
    }

    fn get_batch(&self, keys: &[AtomKey]) -> Vec<Result<Bytes>> {
        let fates = self.begin(OpKind::Get, keys.len());
        let forwarded: Vec<AtomKey> =
            keys.iter().zip(&fates).filter(|(_, (_, f))| *f != Some(Timing::Before)).map(|(k, _)| k.clone()).collect();
        let mut inner_results = self.inner.get_batch(&forwarded).into_iter();
        keys.iter()
            .zip(fates)
            .map(|(key, (call, fault))| match fault {
                Some(timing @ Timing::Before) => Err(self.inject(call, OpKind::Get, timing, key)),
                _ => {
                    let r = inner_results.next().unwrap_or_else(|| {
                        Err(StorageError::other("faulty", "the wrapped get_batch returned too few results"))
                    });
                    if fault.is_some() { Err(self.inject(call, OpKind::Get, Timing::After, key)) } else { r }
                }
            })
            .collect()
    }

    fn visit_batch(&self, keys: &[AtomKey], visit: &(dyn Fn(usize, &[u8]) -> Result<()> + Sync)) -> Result<()> {
        let target = format!("of {} keys", keys.len());
        self.one(OpKind::Visit, target, || self.inner.visit_batch(keys, visit))
    }

    fn visit_batch_here(&self, keys: &[AtomKey], visit: &mut dyn FnMut(usize, &[u8]) -> Result<()>) -> Result<()> {
        let target = format!("of {} keys", keys.len());
        self.one(OpKind::Visit, target, || self.inner.visit_batch_here(keys, visit))
    }

    /// As the wrapped storage: over LMDB the engine then reads through `visit_batch` and
    /// `visit_batch_here`, where `Visit` faults strike.
    fn lends_pages(&self) -> bool {
        self.inner.lends_pages()
    }

    fn concurrent_puts(&self) -> usize {
        self.inner.concurrent_puts()
    }

    fn exists(&self, key: &AtomKey) -> Result<bool> {
        self.one(OpKind::Exists, key, || self.inner.exists(key))
    }

    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()> {
        let target = match keys {
            [one] => one.to_string(),
            _ => format!("of {} keys", keys.len()),
        };
        self.one(OpKind::Delete, target, || self.inner.delete_batch(keys))
    }

    fn list_page(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<ListPage> {
        self.one(OpKind::List, format_args!("{key_type} {scope:?}"), || {
            self.inner.list_page(key_type, scope, after, limit)
        })
    }

    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>> {
        self.one(OpKind::ReadRef, key, || self.inner.read_ref(key))
    }

    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        self.one(OpKind::WriteRef, key, || self.inner.write_ref(key, value, expected))
    }

    fn delete_ref(&self, key: &RefKey) -> Result<()> {
        self.one(OpKind::DeleteRef, key, || self.inner.delete_ref(key))
    }
}

#[cfg(test)]
mod tests;
