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


def test_reads_import_against_kept_schemas_without_mixing_them(lib, monkeypatch):
    """A read to pyarrow imports its batch against the pyarrow schema kept for its schema id (D62):
    symbols of different schemas read in turn each get their own, also after the cache is cleared,
    and a read without columns keeps its row count (it goes through the stream)."""
    from floe import _library

    monkeypatch.setattr(_library, "_SCHEMAS", {})
    monkeypatch.setattr(_library, "_MAX_SCHEMAS", 2)
    index = pd.date_range("2024-01-01", periods=3, freq="1s", name="t")
    frames = {
        "f": pd.DataFrame({"x": [1.5, 2.5, 3.5]}, index=index),
        "i": pd.DataFrame({"x": [1, 2, 3]}, index=index),
        "s": pd.DataFrame({"x": ["a", "b", "c"], "y": [True, False, True]}, index=index),
    }
    for name, df in frames.items():
        lib.write(name, df)
    for _ in range(3):
        for name, df in frames.items():
            table = lib.read(name, output_format="pyarrow").data
            assert table.column_names == ["t", *df.columns], name
            assert table["x"].to_pylist() == df["x"].tolist(), name
            pd.testing.assert_frame_equal(lib.read(name).data, df, check_freq=False)
    assert 0 < len(_library._SCHEMAS) <= 2
    table = lib.read("f", columns=["x"], output_format="pyarrow").data
    assert table.column_names == ["t", "x"]
    lib.write("rows", pa.table({"a": [1, 2, 3]}))
    empty = lib.read("rows", columns=[], output_format="pyarrow").data
    assert (empty.num_rows, empty.num_columns) == (3, 0)


def test_read_table_ids_name_one_schema(lib):
    """The extension's read tables: equal schemas share an id, different ones do not, and an exported
    array that nobody imports is released with its table."""
    index = pd.date_range("2024-01-01", periods=2, freq="1s", name="t")
    lib.write("a", pd.DataFrame({"x": [1.0, 2.0]}, index=index))
    lib.write("b", pd.DataFrame({"x": [3.0, 4.0]}, index=index))
    lib.write("c", pd.DataFrame({"x": [1, 2]}, index=index))
    args = (None, None, None, None)
    (ia, aa, ta), (ib, ab, tb), (ic, _, _) = (lib._lib.read(s, args)[0][1] for s in "abc")
    assert ia == ib != ic
    assert pa.schema(ta) == pa.schema(tb)
    assert aa is not None and ab is not None and aa != ab
    assert ta.array_address() not in (None, aa)  # a second export of the same batch
    del ta
    gc.collect()
    assert pa.table(tb)["x"].to_pylist() == [3.0, 4.0]
