"""Small reads warm and as the harness runs them (after `gc.collect()` and `malloc_trim` /
pyarrow's pool release), medians of 60: `read(as_of=0)` of a 10-row symbol with 10,000 versions to
pyarrow and pandas, and a 0.1 % date range of 10M `ticks` rows to pyarrow, with the page faults each call took. Builds its stores in
/tmp/floe-small (the 10,000 versions take ~15 s the first time). Run from the repository root with
the bench environment: `.venv-bench/bin/python bench/probes/small_reads.py` (bench/RESULTS.md)."""
import sys, os, time, gc, statistics, resource
sys.path.insert(0, "bench")
import numpy as np, pandas as pd
import data, floe
from measure import release_free_memory

path = "/tmp/floe-small"
fresh_store = not os.path.exists(path)
lib = floe.Store(f"lmdb://{path}").get_library("p", create_if_missing=True)
if fresh_store:
    small = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10)}, index=pd.date_range("2024-01-01", periods=10))
    for _ in range(10_000):
        lib.write("ver", small)
    lib.write("ticks", data.make("ticks", 10_000_000))
n = 10_000_000
lo = lib.read("ticks", row_range=(n * 45 // 100, n * 45 // 100 + 1), output_format="pyarrow").data.column(0)[0]
hi = lib.read("ticks", row_range=(n * 451 // 1000 - 1, n * 451 // 1000), output_format="pyarrow").data.column(0)[0]


def med(f, mode: str, k: int = 60) -> str:
    xs, faults = [], []
    for _ in range(k):
        if mode != "warm":
            gc.collect()
        if mode == "harness":
            release_free_memory()
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        f()
        xs.append(time.perf_counter() - t)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return f"{statistics.median(xs)*1e6:.0f} us ({statistics.median(faults):.0f} page faults)"


cases = {
    "read(as_of=0) -> pyarrow": lambda: lib.read("ver", as_of=0, output_format="pyarrow"),
    "read(as_of=0) -> pandas": lambda: lib.read("ver", as_of=0, output_format="pandas"),
    "ticks 0.1 % date range -> pyarrow": lambda: lib.read("ticks", date_range=(lo.as_py(), hi.as_py()), output_format="pyarrow"),
}
for name, f in cases.items():
    print(f"{name}: warm {med(f, 'warm')}, after gc {med(f, 'gc')}, after gc + trim {med(f, 'harness')}")
