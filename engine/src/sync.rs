//! The one place the engine takes its concurrency primitives from, so that loom can replace them in
//! model-checking builds (the `loom` feature: `cargo test -p floe-engine --features loom --lib loom`). Engine code imports from here, never from
//! `std::sync` directly.

#[cfg(feature = "loom")]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard, atomic::AtomicBool};

#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, atomic::AtomicBool};

pub(crate) use std::sync::atomic::Ordering;

/// Locks `m`, treating a poisoned lock as usable: every critical section in the engine leaves its data
/// consistent before anything that could panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
