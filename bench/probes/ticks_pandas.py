"""The `ticks` full read to pandas against the same read to pyarrow, alternating, fresh memory before
each call; needs the store `ticks_shares.py` leaves in /tmp/floe-tshare. Argument: rounds (default 7).
Run from the repository root: `.venv-bench/bin/python bench/probes/ticks_pandas.py`."""
import sys, time, statistics, cProfile, pstats
sys.path.insert(0, "bench")
import floe
from measure import release_free_memory
lib = floe.Store("lmdb:///tmp/floe-tshare").get_library("p")
for _ in range(2): lib.read("t").data
res = {"pyarrow": [], "pandas": []}
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 7):
    for fmt in res:
        release_free_memory()
        t = time.perf_counter(); r = lib.read("t", output_format=fmt).data; res[fmt].append(time.perf_counter() - t); del r
m = {k: statistics.median(v) for k, v in res.items()}
print({k: f"{v*1e3:.1f} ms" for k, v in m.items()}, f"pandas/pyarrow {m['pandas']/m['pyarrow']:.2f}")
