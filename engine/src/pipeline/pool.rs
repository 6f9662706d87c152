//! The rayon pool the engine's parallel steps run on: one worker per CPU the process may use, each
//! pinned to its own CPU (design/decisions.md D58).
//!
//! Why pin: on a KVM guest like this project's machine, a worker woken by another worker is placed on
//! the waker's CPU although the other CPU is idle, and the two then share one CPU for tens of
//! milliseconds while the other idles (`perf` scheduler traces of a 12 ms read that took 21 ms: both
//! workers on CPU 0, preempting each other every tick, CPU 1 idle). Pinned, two workers can never
//! share a CPU. The cost is on a machine where another process keeps one CPU busy: the worker pinned
//! there cannot move away, so its share of the work runs at that CPU's pace (D58 has both sides'
//! measurements). `FLOE_PIN_THREADS=0` (read once per process) keeps rayon's own unpinned pool.
//!
//! Pinning applies only where one worker per allowed CPU is what rayon would start anyway: not when
//! `RAYON_NUM_THREADS` asks another count, not when a CPU quota (cgroup) leaves fewer CPUs than the
//! affinity mask names, not on one CPU, and not outside Linux. It never changes how many workers
//! there are.
//!
//! The pool is built at the engine's first parallel step ([`ensure_thread_pool`] is called where the
//! read and write pipelines start, `read::read_windows` and `write::write_waves`, under which every
//! engine use of rayon runs, and by the Python module's tiled copy), which is when rayon would build its default pool: opening a store or a library starts
//! no thread, so a process may still fork after that (rayon's pool does not survive a fork). A host
//! program that built rayon's global pool itself keeps it ([`ThreadPoolSetup::External`]).

use crate::sync::OnceLock;

/// How the engine's rayon pool was set up, as [`ensure_thread_pool`] found or made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadPoolSetup {
    /// The engine built the global pool, worker `i` pinned to CPU `cpus[i]` and named `floe-worker-i`.
    Pinned {
        /// The CPU of each worker, in worker order; all distinct.
        cpus: Vec<usize>,
    },
    /// Rayon's default pool, unpinned: pinning was switched off or does not apply here (module docs).
    Unpinned,
    /// The global pool existed before the engine's first parallel step (built by the host program, or
    /// by rayon for an earlier caller in the process); the engine uses it as it is. Also the answer
    /// if the pinned pool could not be built (its threads failed to start): rayon then builds its
    /// default pool at the first parallel step, as without this module.
    External,
}

static SETUP: OnceLock<ThreadPoolSetup> = OnceLock::new();

/// Sets the engine's rayon pool up if no parallel step has run yet, and says how it is set up. Cheap
/// after the first call (one atomic load); every entry of the engine's pipelines calls it first.
pub fn ensure_thread_pool() -> &'static ThreadPoolSetup {
    SETUP.get_or_init(build)
}

/// Whether the environment's `FLOE_PIN_THREADS` value asks pinning: anything but `0` does.
fn pin_requested(value: Option<&std::ffi::OsStr>) -> bool {
    value.and_then(|v| v.to_str()).map(str::trim) != Some("0")
}

/// The CPU of each worker if the pool should be pinned: `workers` threads (rayon's count), the CPUs
/// the affinity mask allows in ascending order, and the CPUs the process may use at once (the
/// standard library's `available_parallelism`, which counts a cgroup quota). Pins only when the
/// workers, the allowed CPUs and that parallelism are one and the same number, at least two.
fn pin_plan(requested: bool, workers: usize, allowed: &[usize], parallelism: usize) -> Option<Vec<usize>> {
    let n = allowed.len();
    (requested && n >= 2 && workers == n && parallelism == n).then(|| allowed.to_vec())
}

/// Rayon's worker count for its default pool: `RAYON_NUM_THREADS` if it names a positive number,
/// else the available parallelism.
fn rayon_workers(parallelism: usize) -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(parallelism)
}

fn build() -> ThreadPoolSetup {
    let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
    let allowed = affinity::allowed_cpus().unwrap_or_default();
    let requested = pin_requested(std::env::var_os("FLOE_PIN_THREADS").as_deref());
    let Some(cpus) = pin_plan(requested, rayon_workers(parallelism), &allowed, parallelism) else {
        return ThreadPoolSetup::Unpinned;
    };
    let pinned = cpus.clone();
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(cpus.len())
        .thread_name(|i| format!("floe-worker-{i}"))
        // A worker that cannot be pinned (the mask changed since) runs unpinned: pinning is a
        // placement hint, never a condition for correctness.
        .start_handler(move |i| affinity::pin_current_thread(pinned[i]))
        .build_global();
    match built {
        Ok(()) => ThreadPoolSetup::Pinned { cpus },
        Err(_) => ThreadPoolSetup::External,
    }
}

#[cfg(target_os = "linux")]
mod affinity {
    /// The CPUs this process's threads may run on (the calling thread's affinity mask), ascending.
    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        // SAFETY: `set` is a plain bit set, zeroed, of the size passed; `sched_getaffinity` writes at
        // most that many bytes into it, and `CPU_ISSET` reads it within `CPU_SETSIZE`.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return None;
            }
            let size = usize::try_from(libc::CPU_SETSIZE).expect("CPU_SETSIZE is a small positive constant");
            Some((0..size).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
        }
    }

    /// Restricts the calling thread to `cpu`; leaves it as it was if the kernel refuses.
    pub(super) fn pin_current_thread(cpu: usize) {
        // SAFETY: as above; `CPU_SET` writes one bit of the zeroed set within `CPU_SETSIZE` (the
        // caller's CPU came from `allowed_cpus`, so it is below it), and pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        None
    }

    pub(super) fn pin_current_thread(_cpu: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn pinning_is_on_unless_switched_off() {
        assert!(pin_requested(None));
        assert!(pin_requested(Some(OsStr::new("1"))));
        assert!(pin_requested(Some(OsStr::new(""))));
        assert!(!pin_requested(Some(OsStr::new("0"))));
        assert!(!pin_requested(Some(OsStr::new(" 0 "))));
    }

    #[test]
    fn pins_one_worker_per_allowed_cpu_only() {
        assert_eq!(pin_plan(true, 2, &[0, 1], 2), Some(vec![0, 1]));
        assert_eq!(pin_plan(true, 3, &[2, 5, 7], 3), Some(vec![2, 5, 7]), "a mask with gaps");
        assert_eq!(pin_plan(false, 2, &[0, 1], 2), None, "switched off");
        assert_eq!(pin_plan(true, 1, &[0], 1), None, "one CPU: nothing to keep apart");
        assert_eq!(pin_plan(true, 4, &[0, 1], 2), None, "RAYON_NUM_THREADS asks more workers than CPUs");
        assert_eq!(pin_plan(true, 2, &[0, 1, 2, 3], 2), None, "a quota of two CPUs out of four allowed");
        assert_eq!(pin_plan(true, 2, &[], 2), None, "the mask could not be read");
    }
}
