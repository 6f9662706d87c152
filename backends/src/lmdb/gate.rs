//! The gate every transaction of one environment passes, so the memory map can be resized safely.
//!
//! `mdb_env_set_mapsize` on an open environment unmaps and remaps the file; LMDB requires that no
//! transaction of this process is active then (it does not check). Every transaction therefore holds a
//! [`TxnGuard`] (shared), and a resize runs inside [`Gate::exclusive`], which waits until no guard is
//! held and keeps new ones out while it runs.
//!
//! Why not a plain `RwLock`: a thread that already holds a guard may enter again (a rayon worker that
//! steals another read while it waits inside `visit_batch`, or a `visit` callback that reads). With a
//! writer-preferring lock that would deadlock behind a waiting resize. Here a thread that holds any
//! guard, or works for a thread that does ([`Gate::lend`]: the rayon workers running `visit`), is
//! never kept out by a *waiting* resize, and a resize gives up after a bounded wait, so the worst case
//! (another thread blocked on something the transaction holder waits for) is a delayed write that
//! reports [`StorageError::Unavailable`](crate::StorageError::Unavailable), never a hang.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

thread_local! {
    /// Addresses of the gates this thread holds guards on (one entry per guard).
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug, Default)]
struct State {
    /// Guards alive now.
    active: usize,
    /// Resizes waiting for `active` to reach zero.
    waiting: usize,
    /// A resize is running (then `active` is zero).
    resizing: bool,
}

/// Admission control for one environment's transactions; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<State>,
    changed: Condvar,
}

/// Proof that a transaction may run: while it lives, the map is not resized. Not `Send`, like the
/// read transactions it protects.
#[derive(Debug)]
pub(crate) struct TxnGuard<'g> {
    gate: &'g Gate,
    _not_send: PhantomData<*const ()>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few counters updated in single statements; a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Waits until no resize runs (and, for a thread holding no guard, none waits), then admits.
    pub(crate) fn enter(&self) -> TxnGuard<'_> {
        let nested = HELD.with(|h| !h.borrow().is_empty());
        let mut s = self.lock();
        while s.resizing || (s.waiting > 0 && !nested) {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.active += 1;
        drop(s);
        HELD.with(|h| h.borrow_mut().push(self.id()));
        TxnGuard { gate: self, _not_send: PhantomData }
    }

    /// Marks the calling thread as working for a transaction that another thread holds open until
    /// this work returns (a rayon worker running a `visit` of `visit_batch`). While marked, the thread
    /// counts as holding a guard: it passes waiting resizes (which cannot run before the transaction
    /// ends anyway) and does not wait for a resize itself.
    pub(crate) fn lend(&self) -> Lent<'_> {
        HELD.with(|h| h.borrow_mut().push(self.id()));
        Lent { gate: self, _not_send: PhantomData }
    }

    /// Whether the calling thread holds a guard on this gate (then it cannot wait for a resize).
    pub(crate) fn held_by_this_thread(&self) -> bool {
        HELD.with(|h| h.borrow().contains(&self.id()))
    }

    /// Runs `f` while no guard is held, waiting at most `timeout` for active ones to finish.
    /// Returns `None` if they did not finish in time.
    pub(crate) fn exclusive<T>(&self, timeout: Duration, f: impl FnOnce() -> T) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        s.waiting += 1;
        while s.active > 0 || s.resizing {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                s.waiting -= 1;
                drop(s);
                self.changed.notify_all();
                return None;
            };
            s = self.changed.wait_timeout(s, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        s.waiting -= 1;
        s.resizing = true;
        drop(s);
        // Reopen the gate even if `f` panics, or every later transaction would wait forever.
        struct Reopen<'a>(&'a Gate);
        impl Drop for Reopen<'_> {
            fn drop(&mut self) {
                self.0.lock().resizing = false;
                self.0.changed.notify_all();
            }
        }
        let _reopen = Reopen(self);
        Some(f())
    }
}

/// See [`Gate::lend`]; unmarks the thread when dropped.
#[derive(Debug)]
pub(crate) struct Lent<'g> {
    gate: &'g Gate,
    _not_send: PhantomData<*const ()>,
}

fn unmark(id: usize) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|&g| g == id) {
            h.swap_remove(i);
        }
    });
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        unmark(self.gate.id());
    }
}

impl Drop for TxnGuard<'_> {
    fn drop(&mut self) {
        unmark(self.gate.id());
        let mut s = self.gate.lock();
        s.active -= 1;
        // Only a waiting resize waits for the last guard; `notify_all` is a syscall even with nobody
        // waiting (four per small read).
        let wake = s.active == 0 && s.waiting > 0;
        drop(s);
        if wake {
            self.gate.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn exclusive_waits_for_guards_and_times_out() {
        let gate = Arc::new(Gate::default());
        let guard = gate.enter();
        assert!(gate.held_by_this_thread());
        let g2 = Arc::clone(&gate);
        let timed_out = std::thread::spawn(move || g2.exclusive(Duration::from_millis(50), || ()).is_none());
        assert!(timed_out.join().expect("thread"), "a held guard must keep the resize out");
        drop(guard);
        assert!(!gate.held_by_this_thread());
        assert_eq!(gate.exclusive(Duration::from_millis(50), || 7), Some(7));
    }

    #[test]
    fn nested_entry_passes_a_waiting_resize() {
        let gate = Arc::new(Gate::default());
        let outer = gate.enter();
        let ran = Arc::new(AtomicBool::new(false));
        let (g2, r2) = (Arc::clone(&gate), Arc::clone(&ran));
        let resizer =
            std::thread::spawn(move || g2.exclusive(Duration::from_secs(5), || r2.store(true, Ordering::SeqCst)));
        // Let the resize start waiting, then enter again from this thread: must not block.
        while gate.lock().waiting == 0 {
            std::thread::yield_now();
        }
        let inner = gate.enter();
        drop(inner);
        drop(outer);
        assert_eq!(resizer.join().expect("thread"), Some(()));
        assert!(ran.load(Ordering::SeqCst));
    }
}
