"""Timings of the pandas conversion layer against the pyarrow path (run by hand; pytest does not
collect this file). Not a benchmark of the engine: each pandas operation is timed next to the same
operation in pyarrow, so the ratio shows what the Python conversions add.

    python pyarrow-bridge/tests/perf_conversions.py [--rows 1000000] [--reps 5] [--versions 3000]
                                                     [--store lmdb|mem] [--only write,read,versions]

Data: bench/data.py's wide-float (10 float64 columns, a datetime64[ns] index named ``ts``). Operations
run in rounds, one of each per round (so load from other jobs hits them alike); the table gives the
median and the minimum over the rounds, the CPU time of the process (all threads, median; less
sensitive than wall time to other jobs on a shared machine) and the peak RSS above the RSS before the
call (median).
``convert`` rows time the conversion alone (``_convert.normalize`` / ``_convert.to_output``), without
the engine.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Callable

import pyarrow as pa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))

import data  # noqa: E402  bench/data.py
import floe  # noqa: E402
from floe import _convert  # noqa: E402
from floe._library import _timestamps  # noqa: E402
from floe._types import SymbolVersion, VersionInfo  # noqa: E402

_LIBC = ctypes.CDLL("libc.so.6")


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _measure(fn: Callable[[], object]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the process, peak RSS above the starting RSS in MB) of one call;
    the result is dropped after."""
    pa.default_memory_pool().release_unused()
    _LIBC.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    before = _rss_kb("VmRSS:")
    t, cpu = time.perf_counter(), time.process_time()
    out = fn()
    dt, dcpu = time.perf_counter() - t, time.process_time() - cpu
    peak = _rss_kb("VmHWM:") - before
    del out
    return dt, dcpu, peak / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--versions", type=int, default=3000)
    ap.add_argument("--store", choices=["lmdb", "mem"], default="lmdb")
    ap.add_argument("--only", default="write,read,versions")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="floe-perf-")
    try:
        run(args, f"lmdb://{tmp}/store" if args.store == "lmdb" else "mem://")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, uri: str) -> None:
    """Runs the operations on a store at ``uri`` and prints the table."""
    import pandas as pd

    only = set(args.only.split(","))
    lib = floe.Store(uri).get_library("perf", create_if_missing=True)
    df = data.wide_float(args.rows)
    table = pa.Table.from_pandas(df, preserve_index=True).replace_schema_metadata(None)
    lib.write("pd", df)
    lib.write("pa", table, index_column="ts")
    read_table = lib.read("pd", output_format="pyarrow").data
    norm = floe._envelope.decode(lib._lib.read_metadata("pd", None)[1]).norm
    lo, hi = df.index[len(df) // 2], df.index[len(df) // 2 + len(df) // 10 - 1]

    ops: dict[str, Callable[[], object]] = {}
    if "write" in only:
        ops["write pyarrow"] = lambda: lib.write("pa", table, index_column="ts", prune_previous_versions=True)
        ops["write pandas"] = lambda: lib.write("pd", df, prune_previous_versions=True)
        ops["convert pandas -> arrow"] = lambda: _convert.normalize(df)
    if "read" in only:
        ops["read pyarrow"] = lambda: lib.read("pd", output_format="pyarrow").data
        ops["read pandas"] = lambda: lib.read("pd").data
        ops["read 10% pyarrow"] = lambda: lib.read("pd", date_range=(lo, hi), output_format="pyarrow").data
        ops["read 10% pandas"] = lambda: lib.read("pd", date_range=(lo, hi)).data
        ops["read 2 cols pyarrow"] = lambda: lib.read("pd", columns=["f0", "f7"], output_format="pyarrow").data
        ops["read 2 cols pandas"] = lambda: lib.read("pd", columns=["f0", "f7"]).data
        ops["convert arrow -> pandas"] = lambda: _convert.to_output(read_table, norm, "pandas")
    if "versions" in only:
        small = df.iloc[:10]
        for _ in range(args.versions):
            lib.write("v", small)
        ops[f"list_versions ({args.versions})"] = lambda: lib.list_versions("v")
        ops[f"engine list_versions ({args.versions})"] = lambda: lib._lib.list_versions("v")
        ops[f"read(as_of=0) pyarrow ({args.versions})"] = lambda: lib.read("v", as_of=0, output_format="pyarrow").data
        ops[f"read(as_of=0) pandas ({args.versions})"] = lambda: lib.read("v", as_of=0).data
        # The floor of ArcticDB's result type: building the dict of SymbolVersion -> VersionInfo (with a
        # pd.Timestamp each) from rows already in Python, as list_versions does after the engine call.
        names, versions, stamps, deleted, snaps = lib._lib.list_versions("v")
        make = tuple.__new__

        def objects_only():
            dates = _timestamps(stamps)
            return {
                make(SymbolVersion, (s, v)): make(VersionInfo, (d, x, list(n)))
                for s, v, d, x, n in zip(names, versions, dates, deleted, snaps)
            }

        ops[f"result objects alone ({args.versions})"] = objects_only

    times: dict[str, list[float]] = {k: [] for k in ops}
    cpus: dict[str, list[float]] = {k: [] for k in ops}
    peaks: dict[str, list[float]] = {k: [] for k in ops}
    for name, fn in ops.items():  # warm-up round, not counted
        fn()
    for _ in range(args.reps):
        for name, fn in ops.items():
            dt, cpu, peak = _measure(fn)
            times[name].append(dt)
            cpus[name].append(cpu)
            peaks[name].append(peak)

    print(f"pandas {pd.__version__}, pyarrow {pa.__version__}, {args.rows:,} rows, store {args.store}, {args.reps} rounds")
    print(f"{'operation':<34} {'median':>9} {'min':>9} {'CPU':>9} {'peak RSS':>10}")
    for name in ops:
        med, best, cpu = statistics.median(times[name]), min(times[name]), statistics.median(cpus[name])
        print(f"{name:<34} {med * 1000:7.1f}ms {best * 1000:7.1f}ms {cpu * 1000:7.1f}ms {statistics.median(peaks[name]):8.0f}MB")
    for a, b in [("write pandas", "write pyarrow"), ("read pandas", "read pyarrow"), ("read 10% pandas", "read 10% pyarrow"), ("read 2 cols pandas", "read 2 cols pyarrow")]:
        if a in times:
            ratio = [statistics.median(x[a]) / statistics.median(x[b]) for x in (times, cpus)] + [min(times[a]) / min(times[b])]
            print(f"ratio {a} / {b.split()[-1]}: {ratio[0]:.2f}x (medians), {ratio[2]:.2f}x (minimums), {ratio[1]:.2f}x (CPU)")


if __name__ == "__main__":
    main()
