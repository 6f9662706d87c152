"""Timing one call: wall time, this process's CPU, everybody else's CPU, and peak resident memory.

Peak memory comes from the kernel's high-water mark: writing "5" to /proc/self/clear_refs resets
VmHWM to the current resident size, so VmHWM after the call minus VmRSS before it is the most the call
added (its output included). Pages of memory-mapped files (LMDB's map, page cache) count in VmHWM too;
``file_mb`` is how much those grew, so ``peak_mb - file_mb`` estimates (from below) the anonymous
memory the call needed.

Before each call, freed memory that allocators keep (glibc's heaps, pyarrow's pool) is handed back to
the kernel, so every call pays for the fresh memory it needs, as a call in a new process would, and its
peak is not hidden by memory an earlier call left behind.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import time
from typing import Any, Callable, Dict, Tuple

MB = 1e6


def _status() -> Dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssFile", "RssShmem", "RssAnon"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def _busy_seconds() -> float:
    """CPU-seconds all cores have spent busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


_LIBC = ctypes.CDLL("libc.so.6")


def release_free_memory() -> None:
    """Return allocator-held free memory to the kernel (glibc malloc_trim, pyarrow's pool)."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:
        pass
    _LIBC.malloc_trim(0)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(fn: Callable[[], Any], fresh: bool = True) -> Tuple[Dict[str, float], Any]:
    """Run ``fn`` once and return (figures, its result). The result is kept alive until after the
    memory reading, so an output buffer counts in the peak. ``fresh=False`` skips the garbage collection
    and the hand-back of free memory first (for small per-call operations, where a full collection in
    a process with ArcticDB loaded costs ~30 ms, more than the call)."""
    if fresh:
        gc.collect()
        release_free_memory()
    gc.disable()
    try:
        before = _status()
        reset = _reset_peak()
        busy0 = _busy_seconds()
        cpu0 = os.times()
        process0 = time.process_time()
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        result = fn()
        t1 = time.perf_counter()
        process1 = time.process_time()
        cpu1 = os.times()
        faults1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        busy1 = _busy_seconds()
        after = _status()
    finally:
        gc.enable()
    wall = t1 - t0
    own = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    figures = {
        "s": wall,
        "cores": own / wall if wall > 0 else 0.0,
        # The kernel's share of those cores (page faults, madvise, I/O), and the minor page faults:
        # what tells a slow repetition that faulted its memory in slowly from one that computed more.
        "sys_cores": (cpu1.system - cpu0.system) / wall if wall > 0 else 0.0,
        # CPU seconds of every thread of the process, to the nanosecond (`os.times` counts 10 ms
        # ticks): the checksum target compares two calls' CPU.
        "cpu_s": process1 - process0,
        "faults": faults1 - faults0,
        "other": max(0.0, (busy1 - busy0) - own) / wall if wall > 0 else 0.0,
        "peak_mb": (after["VmHWM"] - before["VmRSS"]) / MB if reset else float("nan"),
        "file_mb": (after.get("RssFile", 0) + after.get("RssShmem", 0) - before.get("RssFile", 0) - before.get("RssShmem", 0)) / MB,
        "rss_mb": before["VmRSS"] / MB,
    }
    return figures, result
