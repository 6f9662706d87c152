//! A bounded hand-over between one producer and several workers, with results collected in
//! production order and the first error cancelling the rest.
//!
//! Production builds use `crossbeam-channel`'s bounded channel; under `cfg(feature = "loom")` a small Mutex +
//! Condvar channel from the `sync` shim stands in, so loom can check the hand-over and collection
//! logic (`tests` below).

use crate::sync::{Arc, AtomicBool, Mutex, Ordering, lock};

#[cfg(not(feature = "loom"))]
mod channel {
    pub(crate) use crossbeam_channel::bounded;
}

#[cfg(feature = "loom")]
mod channel {
    //! A minimal bounded MPMC channel over the loom primitives (same semantics as crossbeam's for the
    //! calls used here: `send` blocks while full and fails once every receiver is gone; `recv` blocks
    //! while empty and fails once every sender is gone and the queue is drained).
    use std::collections::VecDeque;

    use crate::sync::{Arc, Condvar, Mutex, lock};

    struct State<T> {
        queue: VecDeque<T>,
        senders: usize,
        receivers: usize,
    }

    struct Shared<T> {
        state: Mutex<State<T>>,
        changed: Condvar,
        cap: usize,
    }

    pub(crate) struct Sender<T>(Arc<Shared<T>>);
    pub(crate) struct Receiver<T>(Arc<Shared<T>>);

    pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { queue: VecDeque::new(), senders: 1, receivers: 1 }),
            changed: Condvar::new(),
            cap: cap.max(1),
        });
        (Sender(Arc::clone(&shared)), Receiver(shared))
    }

    impl<T> Sender<T> {
        pub(crate) fn send(&self, item: T) -> Result<(), T> {
            let mut s = lock(&self.0.state);
            loop {
                if s.receivers == 0 {
                    return Err(item);
                }
                if s.queue.len() < self.0.cap {
                    s.queue.push_back(item);
                    self.0.changed.notify_all();
                    return Ok(());
                }
                s = self.0.changed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn recv(&self) -> Result<T, ()> {
            let mut s = lock(&self.0.state);
            loop {
                if let Some(item) = s.queue.pop_front() {
                    self.0.changed.notify_all();
                    return Ok(item);
                }
                if s.senders == 0 {
                    return Err(());
                }
                s = self.0.changed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
        }
    }

    impl<T> Clone for Receiver<T> {
        fn clone(&self) -> Self {
            lock(&self.0.state).receivers += 1;
            Receiver(Arc::clone(&self.0))
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            lock(&self.0.state).senders -= 1;
            self.0.changed.notify_all();
        }
    }

    impl<T> Drop for Receiver<T> {
        fn drop(&mut self) {
            lock(&self.0.state).receivers -= 1;
            self.0.changed.notify_all();
        }
    }
}

#[cfg(not(feature = "loom"))]
use std::thread::{JoinHandle, spawn};

#[cfg(feature = "loom")]
use loom::thread::{JoinHandle, spawn};

/// Runs `work` on `workers` threads over the items `produce` yields on the calling thread, with at
/// most `capacity` items waiting in between (so memory stays bounded by `capacity + workers` items in
/// flight). Returns the results in production order, or the first error; after an error the producer
/// is stopped at its next item and workers skip what is still queued.
///
/// `produce` is called with a "cancelled" flag it may poll between expensive steps; it returns
/// `None` when done.
pub(crate) fn run<T, R, E, W>(
    workers: usize,
    capacity: usize,
    mut produce: impl FnMut(&AtomicBool) -> Option<Result<T, E>>,
    work: W,
) -> Result<Vec<R>, E>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    W: Fn(T) -> Result<R, E> + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let (tx, rx) = channel::bounded::<(usize, T)>(capacity);
    let cancelled = Arc::new(AtomicBool::new(false));
    let first_error: Arc<Mutex<Option<E>>> = Arc::new(Mutex::new(None));
    let fail = {
        let cancelled = Arc::clone(&cancelled);
        let first_error = Arc::clone(&first_error);
        move |e: E| {
            let mut slot = lock(&first_error);
            if slot.is_none() {
                *slot = Some(e);
            }
            cancelled.store(true, Ordering::SeqCst);
        }
    };
    let handles: Vec<JoinHandle<Vec<(usize, R)>>> = (0..workers.max(1))
        .map(|_| {
            let rx = rx.clone();
            let work = Arc::clone(&work);
            let cancelled = Arc::clone(&cancelled);
            let fail = fail.clone();
            spawn(move || {
                let mut done = Vec::new();
                while let Ok((seq, item)) = rx.recv() {
                    if cancelled.load(Ordering::SeqCst) {
                        continue; // drain without working so the producer never blocks forever
                    }
                    match work(item) {
                        Ok(r) => done.push((seq, r)),
                        Err(e) => fail(e),
                    }
                }
                done
            })
        })
        .collect();
    drop(rx);
    let mut seq = 0;
    while !cancelled.load(Ordering::SeqCst) {
        match produce(&cancelled) {
            None => break,
            Some(Err(e)) => {
                fail(e);
                break;
            }
            Some(Ok(item)) => {
                if tx.send((seq, item)).is_err() {
                    break;
                }
                seq += 1;
            }
        }
    }
    drop(tx);
    let mut results = Vec::with_capacity(seq);
    for h in handles {
        match h.join() {
            Ok(part) => results.extend(part),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    if let Some(e) = lock(&first_error).take() {
        return Err(e);
    }
    results.sort_unstable_by_key(|(s, _)| *s);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order() {
        let mut next = 0u32;
        let out = run(
            4,
            2,
            |_| {
                next += 1;
                (next <= 100).then_some(Ok::<u32, String>(next))
            },
            |x: u32| Ok(x * 2),
        )
        .expect("no errors");
        assert_eq!(out, (1..=100).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn first_error_cancels() {
        let produced = std::sync::atomic::AtomicUsize::new(0);
        let err = run(
            2,
            1,
            |_| {
                let n = produced.fetch_add(1, Ordering::SeqCst);
                (n < 1_000_000).then_some(Ok::<usize, String>(n))
            },
            |x: usize| if x == 10 { Err(format!("boom at {x}")) } else { Ok(x) },
        )
        .expect_err("item 10 fails");
        assert_eq!(err, "boom at 10");
        assert!(produced.load(Ordering::SeqCst) < 1_000, "producer stopped early");
    }

    #[test]
    fn producer_error_is_returned() {
        let mut n = 0;
        let err = run(
            2,
            1,
            |_| {
                n += 1;
                Some(if n == 3 { Err("bad input".to_string()) } else { Ok(n) })
            },
            Ok,
        )
        .expect_err("producer fails");
        assert_eq!(err, "bad input");
    }
}

#[cfg(all(test, feature = "loom"))]
mod loom_tests {
    use super::*;

    /// Two workers, capacity 1, three items: every interleaving delivers all results in order. Explored
    /// up to 2 preemptions by default (seconds; 3 took 100 s here, unbounded many minutes); set
    /// `LOOM_MAX_PREEMPTIONS` for a deeper run.
    #[test]
    fn bounded_handover_collects_in_order() {
        let mut model = loom::model::Builder::new();
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            model.preemption_bound = Some(2);
        }
        model.check(|| {
            let mut next = 0u32;
            let out = run(
                2,
                1,
                |_| {
                    next += 1;
                    (next <= 3).then_some(Ok::<u32, ()>(next))
                },
                |x: u32| Ok(x + 10),
            )
            .expect("no errors");
            assert_eq!(out, vec![11, 12, 13]);
        });
    }

    /// A failing item cancels the rest and never deadlocks the producer.
    #[test]
    fn error_cancels_without_deadlock() {
        loom::model(|| {
            let mut next = 0u32;
            let r = run(
                1,
                1,
                |_| {
                    next += 1;
                    (next <= 3).then_some(Ok::<u32, u32>(next))
                },
                |x: u32| if x == 1 { Err(x) } else { Ok(x) },
            );
            assert_eq!(r, Err(1));
        });
    }
}
