"""Warm and fresh-memory timings of `wide` (10,000 rows x 1,000 float columns) reads to pyarrow: whole,
a 10 % and a 0.1 % date range, 10 of the 1,000 columns (medians). Run from the repository root with the
bench environment: `.venv-bench/bin/python bench/probes/wide_reads.py` (design/decisions.md D23, D24)."""
import sys, time, statistics, shutil
sys.path.insert(0, "bench")
import data, floe, pyarrow as pa
from measure import release_free_memory
path = "/tmp/floe-wide"
shutil.rmtree(path, ignore_errors=True)
lib = floe.Store(f"lmdb://{path}").get_library("p", create_if_missing=True)
df = data.make("wide", 10_000); lib.write("w", df)
idx = df.index
n = len(idx)
dr10 = (idx[n//2], idx[n//2 + n//10 - 1])
dr01 = (idx[n//2], idx[n//2 + n//1000 - 1])
cols = list(df.columns[::100])[:10]
del df
def med(label, f, n=50, fresh=False):
    xs = []
    for _ in range(n):
        if fresh: release_free_memory()
        t = time.perf_counter(); r = f(); xs.append(time.perf_counter() - t); del r
    print(f"{label}: {statistics.median(xs)*1e3:.2f} ms")
for fresh in (False, True):
    med(f"full pyarrow fresh={fresh}", lambda: lib.read("w", output_format="pyarrow").data, n=20, fresh=fresh)
    med(f"10% pyarrow fresh={fresh}", lambda: lib.read("w", date_range=dr10, output_format="pyarrow").data, fresh=fresh)
    med(f"0.1% pyarrow fresh={fresh}", lambda: lib.read("w", date_range=dr01, output_format="pyarrow").data, fresh=fresh)
    med(f"10 cols pyarrow fresh={fresh}", lambda: lib.read("w", columns=cols, output_format="pyarrow").data, fresh=fresh)
