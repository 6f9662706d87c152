"""The floor of a `wide` 0.1 % read to pyarrow (10 rows x 1,001 columns): with the arrays already made,
assembling them into a `pa.Table`, and importing a batch of them through the Arrow C data interface
(as a read's result reaches Python), warm, medians of 200. Run with the bench environment:
`.venv-bench/bin/python bench/probes/wide_import.py`."""
import statistics, time
import numpy as np, pyarrow as pa

columns = [pa.array(np.arange(10).astype("datetime64[ns]"))] + [pa.array(np.random.standard_normal(10)) for _ in range(1000)]
names = ["ts"] + [f"c{i}" for i in range(1000)]
batch = pa.RecordBatch.from_arrays(columns, names=names)


class Exported:
    """Hands over `batch` only through `__arrow_c_array__`, as the extension module does."""

    def __arrow_c_array__(self, requested_schema=None):
        return batch.__arrow_c_array__()


def median_us(f) -> float:
    xs = []
    for _ in range(200):
        t = time.perf_counter()
        f()
        xs.append(time.perf_counter() - t)
    return statistics.median(xs) * 1e6


print(f"pa.Table.from_arrays of 1,001 ready arrays of 10 rows: {median_us(lambda: pa.Table.from_arrays(columns, names=names)):.0f} us")
print(f"import of the same batch through the C data interface: {median_us(lambda: pa.Table.from_batches([pa.record_batch(Exported())])):.0f} us")
