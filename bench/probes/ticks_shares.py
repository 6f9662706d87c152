"""The `ticks` 10 % date range and 2-of-4-columns reads against their shares of a full read, to pyarrow,
alternating the three reads with fresh memory before each call (as the harness does); argument: rounds
(default 9). Run from the repository root: `.venv-bench/bin/python bench/probes/ticks_shares.py 9`."""
import sys, time, statistics, shutil
sys.path.insert(0, "bench")
import data, floe, pyarrow as pa
from measure import release_free_memory
path = "/tmp/floe-tshare"
shutil.rmtree(path, ignore_errors=True)
lib = floe.Store(f"lmdb://{path}").get_library("p", create_if_missing=True)
df = data.make("ticks", 10_000_000); lib.write("t", df)
idx = df.index; n = len(idx)
a = int(0.45 * n); dr10 = (idx[a], idx[a + n // 10 - 1])
cols = list(df.columns)
print(cols)
del df
ops = {
    "full": lambda: lib.read("t", output_format="pyarrow").data,
    "10%": lambda: lib.read("t", date_range=dr10, output_format="pyarrow").data,
    "2of4": lambda: lib.read("t", columns=cols[:2], output_format="pyarrow").data,
}
res = {k: [] for k in ops}
for rep in range(int(sys.argv[1]) if len(sys.argv) > 1 else 9):
    for k, f in ops.items():
        release_free_memory()
        t = time.perf_counter(); r = f(); res[k].append(time.perf_counter() - t); del r
m = {k: statistics.median(v) for k, v in res.items()}
print({k: f"{v*1e3:.1f} ms" for k, v in m.items()})
print(f"10% / share {m['10%'] / (0.1 * m['full']):.2f}; 2of4 / share(3/5) {m['2of4'] / (0.6 * m['full']):.2f}")
