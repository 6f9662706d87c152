//! The one place the engine takes its concurrency primitives from, so that loom can replace them in
//! model-checking builds (the `loom` feature: `cargo test -p floe-engine --features loom --lib loom`). Engine code imports from here, never from
//! `std::sync` directly.

#[cfg(feature = "loom")]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard, atomic::AtomicBool};

#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, atomic::AtomicBool};

pub(crate) use std::sync::atomic::Ordering;

/// Not modelled under loom, in either build: a process-wide setting read once (`OnceLock`), the
/// registry of the read outputs' mappings (a `static`), and the `Arc` that Arrow's buffers take as the
/// owner of foreign memory (their API names std's).
pub(crate) use std::sync::{Arc as StdArc, Mutex as StdMutex, OnceLock};

/// [`lock`] for a std `Mutex` in a `static` (loom's cannot be made in a const context).
pub(crate) fn lock_std<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Locks `m`, treating a poisoned lock as usable: every critical section in the engine leaves its data
/// consistent before anything that could panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
