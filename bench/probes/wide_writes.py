"""The `wide` write (10,000 rows x 1,000 float64) from a pandas frame over one C-ordered 2D array, whose
columns pandas keeps strided: the columns copied to contiguous in one tiled copy (D32) against
pyarrow's copy of each column (`DENSE_BLOCK_MIN_BYTES` set out of reach), alternating, 12 writes each
to LMDB with fresh memory before each; then the Python normalization alone, both ways. Run from the
repository root: `.venv-bench/bin/python bench/probes/wide_writes.py` (design/decisions.md D32)."""
import gc, shutil, statistics, sys, tempfile, time
sys.path.insert(0, "bench")
import data, floe
from floe import _convert
from measure import release_free_memory

df = data.wide(10_000)
path = tempfile.mkdtemp(prefix="floe-wide-writes-")
lib = floe.Store(f"lmdb://{path}").get_library("w", create_if_missing=True)
ways = {"tiled copy": 1 << 20, "per-column copy": 1 << 62}


def timed(f, rounds: int = 12) -> dict:
    xs = {k: [] for k in ways}
    for _ in range(rounds):
        for way, limit in ways.items():
            _convert.DENSE_BLOCK_MIN_BYTES = limit
            gc.collect()
            release_free_memory()
            t = time.perf_counter()
            f()
            xs[way].append(time.perf_counter() - t)
    return {k: f"min {min(v) * 1e3:.0f} ms, median {statistics.median(v) * 1e3:.0f} ms" for k, v in xs.items()}


try:
    print("write:", timed(lambda: lib.write("w", df)))
    print("normalize:", timed(lambda: _convert.normalize(df)))
finally:
    shutil.rmtree(path, ignore_errors=True)
