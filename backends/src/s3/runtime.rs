//! The tokio runtime an S3 store owns, and the bridge from the synchronous `Storage` methods to
//! object_store's async client.
//!
//! The reqwest client under object_store needs a tokio reactor (IO) and timer (retry backoff), so a
//! plain executor is not enough. Callers are rayon or std threads; each call parks its thread in
//! [`IoRuntime::block_on`] while the runtime's workers drive the sockets.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Result, StorageError};

/// Worker threads of the runtime: they only move bytes between sockets and buffers, so two are
/// plenty for hundreds of requests in flight (and this machine class has two cores).
const WORKER_THREADS: usize = 2;

/// A multi-thread tokio runtime, shut down without waiting when dropped.
pub(crate) struct IoRuntime {
    // `Option` so `Drop` can move it out: dropping a `Runtime` inside an async context panics,
    // `shutdown_background` never does.
    runtime: Option<Runtime>,
}

impl IoRuntime {
    /// Starts the runtime's worker threads.
    pub(crate) fn new() -> Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("floe-s3-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Other {
                backend: "s3",
                message: "could not start the tokio runtime for S3 IO".into(),
                source: Some(Box::new(e)),
            })?;
        Ok(IoRuntime { runtime: Some(runtime) })
    }

    /// Runs `future` to completion on this runtime, blocking the calling thread.
    ///
    /// `Runtime::block_on` panics when the calling thread is already inside a tokio runtime (a
    /// caller that is itself async, or one of our own workers). Such a call is moved to a short-lived
    /// helper thread instead, so the synchronous trait is safe to call from anywhere.
    pub(crate) fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = self.runtime.as_ref().expect("the runtime is only taken out in Drop");
        if Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        std::thread::scope(|scope| {
            scope.spawn(|| runtime.block_on(future)).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_works_from_plain_threads_and_from_inside_a_runtime() {
        let rt = IoRuntime::new().expect("runtime starts");
        assert_eq!(rt.block_on(async { 1 + 1 }), 2);
        let other = Builder::new_current_thread().build().expect("runtime starts");
        // Inside another runtime's block_on a direct Runtime::block_on would panic.
        let got = other.block_on(async { rt.block_on(async { 40 + 2 }) });
        assert_eq!(got, 42);
        let rt = &rt;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|i| s.spawn(move || rt.block_on(async move { i * 2 }))).collect();
            let sum: i32 = handles.into_iter().map(|h| h.join().expect("no panic")).sum();
            assert_eq!(sum, 12);
        });
    }
}
