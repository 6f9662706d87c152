"""Arrow out is zero-copy: the buffers a pyarrow read returns are the engine's own allocation,
handed over through the C data interface, and they stay valid after the store and library are gone."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pyarrow as pa

import floe


def frame(n: int = 200_000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.integers(0, 1 << 40, n), "s": pd.array([f"v{i % 97}" for i in range(n)], dtype="str")},
        index=pd.date_range("2024-01-01", periods=n, freq="1s", name="t", unit="ns"),
    )


def test_pyarrow_read_hands_over_engine_buffers(lib):
    df = frame()
    lib.write("z", df)
    before = pa.total_allocated_bytes()
    table, addresses, _ = lib._read_debug("z")
    # Nothing was allocated in pyarrow's memory pool for the data...
    assert pa.total_allocated_bytes() - before < 4096
    # ...and each column's value buffer is the very buffer the engine decoded into.
    for column, address in zip(table.columns, addresses):
        assert column.num_chunks == 1
        assert column.chunk(0).buffers()[-1].address == address, column
    assert table["a"].to_numpy().tolist() == df["a"].tolist()
    # numpy views of the result share that memory too.
    view = table["a"].chunk(0).to_numpy(zero_copy_only=True)
    assert view.ctypes.data == addresses[table.column_names.index("a")]


def test_data_outlives_store_and_library(store_uri):
    store = floe.Store(store_uri)
    lib = store.create_library("lifetime")
    df = frame(50_000)
    lib.write("z", df)
    table = lib.read("z", output_format="pyarrow").data
    batches = list(lib.iter_batches("z", output_format="pyarrow"))
    pandas_out = lib.read("z").data
    del lib, store
    gc.collect()
    # Touch every byte after the handles are gone (a use-after-free would crash or corrupt here).
    assert table["a"].to_pylist() == df["a"].tolist()
    assert table["s"].to_pylist() == df["s"].tolist()
    assert pa.concat_tables(batches)["b"].to_pylist() == df["b"].tolist()
    pd.testing.assert_frame_equal(pandas_out, df, check_freq=False)
    del table
    gc.collect()
    assert pa.concat_tables(batches).num_rows == len(df)


def test_repeated_reads_do_not_leak(lib):
    import resource

    lib.write("z", frame(100_000))
    for _ in range(5):
        lib.read("z", output_format="pyarrow")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(40):
        t = lib.read("z", output_format="pyarrow").data
        del t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # 40 reads of ~3 MB each would add >100 MB if buffers were never released.
    assert rss1 - rss0 < 60_000, (rss0, rss1)  # KiB
