"""Wall time and CPU time of writing 10M `ticks` rows from pandas and from pyarrow, and of the pandas
conversion alone (the stream the write would consume), medians of 5, two rounds. Run from the
repository root with the bench environment: `.venv-bench/bin/python bench/probes/write_cpu.py`
(design/decisions.md D26)."""
import sys, time, tempfile, gc, resource, statistics
sys.path.insert(0, "bench")
import pyarrow as pa
import data, floe
from floe import _convert

df = data.make("ticks", 10_000_000)
table = pa.Table.from_pandas(df, preserve_index=True)
table = table.select(["ts", *[c for c in table.column_names if c != "ts"]])
lib = floe.Store(f"lmdb://{tempfile.mkdtemp()}").get_library("p", create_if_missing=True)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def med(f, n=5) -> str:
    wall, used = [], []
    for _ in range(n):
        gc.collect()
        c, t = cpu(), time.perf_counter()
        f()
        wall.append(time.perf_counter() - t)
        used.append(cpu() - c)
    return f"{statistics.median(wall)*1e3:.0f} ms ({statistics.median(used)*1e3:.0f} ms CPU)"


def convert_only() -> None:
    for _ in _convert.normalize(df, stream=True).table:
        pass


for _ in range(2):
    print("pandas in", med(lambda: lib.write("p", df, prune_previous_versions=True)),
          "| pyarrow in", med(lambda: lib.write("a", table, index_column="ts", prune_previous_versions=True)),
          "| conversion only", med(convert_only))
