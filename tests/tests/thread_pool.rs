//! The engine's rayon pool (design/decisions.md D58): built at the first parallel step, one worker per
//! allowed CPU pinned to it unless `FLOE_PIN_THREADS=0` or the machine gives nothing to pin (one CPU,
//! a CPU quota below the affinity mask, `RAYON_NUM_THREADS`). `scripts/test.sh` runs this file with
//! pinning asked and switched off. Its own test binary: the pool is process-wide.

use floe_engine::{Floe, LibraryOptions, ReadRequest, ThreadPoolSetup, ensure_thread_pool};
use floe_tests::{rows, rows_of, table};

/// The CPUs the calling thread may run on, from `/proc/thread-self/status` (`Cpus_allowed_list: 0-3,6`);
/// on a test thread (never pinned) the process's.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("procfs");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/thread-self/status")
        .trim();
    list.split(',')
        .flat_map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            a.parse::<usize>().expect("a CPU number")..=b.parse::<usize>().expect("a CPU number")
        })
        .collect()
}

/// What the pool must be in this process, decided from the outside.
#[cfg(target_os = "linux")]
fn expected_pinned() -> bool {
    let allowed = allowed_cpus().len();
    let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
    std::env::var("FLOE_PIN_THREADS").ok().as_deref().map(str::trim) != Some("0")
        && std::env::var_os("RAYON_NUM_THREADS").is_none()
        && allowed >= 2
        && parallelism == allowed
}

/// A write and a read big enough to go through the parallel pipeline, with nothing asked of the pool
/// beforehand: the engine sets it up itself, and the data comes back exact.
#[test]
fn the_first_parallel_step_sets_the_pool_up() {
    let floe = Floe::open("mem://").expect("memory store");
    let options = LibraryOptions { rows_per_segment: 50_000, columns_per_segment: 2, dynamic_schema: false };
    let lib = floe.create_library("pool", options).expect("create library");
    let all = rows(0..400_000);
    lib.write("s", &table(&all), None).expect("write");
    let read = lib.read("s", &ReadRequest::default()).expect("read");
    assert_eq!(rows_of(&read.data), all);

    let setup = ensure_thread_pool();
    #[cfg(target_os = "linux")]
    {
        if expected_pinned() {
            let ThreadPoolSetup::Pinned { cpus } = setup else {
                panic!("expected a pinned pool, got {setup:?}");
            };
            assert_eq!(cpus, &allowed_cpus(), "one worker per allowed CPU, in order");
            assert_eq!(rayon::current_num_threads(), cpus.len(), "the global pool is the engine's");
            // Each worker reports its own name and affinity.
            let seen = rayon::broadcast(|ctx| {
                let me = std::thread::current();
                let name = me.name().map(str::to_owned);
                (ctx.index(), name, allowed_cpus())
            });
            for (i, name, mask) in seen {
                assert_eq!(name.as_deref(), Some(format!("floe-worker-{i}").as_str()));
                assert_eq!(mask, vec![cpus[i]], "worker {i} runs on its CPU only");
            }
        } else {
            assert_eq!(setup, &ThreadPoolSetup::Unpinned);
        }
    }
    #[cfg(not(target_os = "linux"))]
    assert_eq!(setup, &ThreadPoolSetup::Unpinned);
}
