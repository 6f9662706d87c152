"""`list_versions` of one symbol with 10,000 versions, Floe and ArcticDB alternating (both on LMDB,
`gc.collect()` before each call as the harness does), beside what the result itself costs: the
engine call alone (Floe's columns, no Python objects per version beyond ints and empty lists) and
the result objects built from those columns (10,000 tz-aware `pd.Timestamp`s, then the dict of
`SymbolVersion` -> `VersionInfo`), which both systems must build. Medians of 30. Builds its stores in
/tmp/floe-lv-probe (10,000 writes per system: ~1 minute the first time). Run from the repository
root with the bench environment: `.venv-bench/bin/python bench/probes/list_versions.py` (D36)."""
import gc, os, statistics, sys, time

import numpy as np, pandas as pd

import floe
from floe._library import _timestamps
from floe._types import SymbolVersion, VersionInfo

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
root = f"/tmp/floe-lv-probe-{N}"
fresh = not os.path.exists(root)
os.makedirs(root, exist_ok=True)
small = pd.DataFrame({"a": np.arange(10.0)}, index=pd.date_range("2024-01-01", periods=10))
flib = floe.Store(f"lmdb://{root}/floe").get_library("p", create_if_missing=True)
import arcticdb

alib = arcticdb.Arctic(f"lmdb://{root}/arcticdb").get_library("p", create_if_missing=True)
if fresh:
    for _ in range(N):
        flib.write("ver", small)
        alib.write("ver", small, prune_previous_versions=False)

cols = flib._lib.list_versions("ver")
make = tuple.__new__


def objects():
    names, versions, stamps, deleted, snaps = cols
    dates = _timestamps(stamps)
    return {make(SymbolVersion, (n, v)): make(VersionInfo, (d, g, h)) for n, v, d, g, h in zip(names, versions, dates, deleted, snaps)}


cases = {
    "floe list_versions": lambda: flib.list_versions("ver"),
    "arcticdb list_versions": lambda: alib.list_versions("ver"),
    "floe engine call (columns)": lambda: flib._lib.list_versions("ver"),
    "timestamps alone": lambda: _timestamps(cols[2]),
    "result objects alone": objects,
}
assert len(flib.list_versions("ver")) == len(alib.list_versions("ver")) == N
times = {k: [] for k in cases}
for _ in range(30):
    for name, f in cases.items():
        gc.collect()
        t = time.perf_counter()
        r = f()
        times[name].append(time.perf_counter() - t)
        del r
med = {k: statistics.median(v) for k, v in times.items()}
for name, m in med.items():
    print(f"{name:<28} {m * 1e3:8.2f} ms  (min {min(times[name]) * 1e3:.2f})")
print(f"ArcticDB / Floe: {med['arcticdb list_versions'] / med['floe list_versions']:.2f}x; "
      f"5x would need {med['arcticdb list_versions'] / 5 * 1e3:.2f} ms, the result objects alone take "
      f"{med['result objects alone'] * 1e3:.2f} ms")
