"""Writes from streams: a ``pyarrow.RecordBatchReader`` is written as the engine reads it, and a large
pandas frame with columns pyarrow must convert goes over in chunks (``_convert._pandas_stream``). A bad
batch anywhere commits nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import floe
from floe import _convert
from conftest import assert_frame_equal


def _table(start: int, n: int) -> pa.Table:
    ts = pa.array(np.arange(start, start + n, dtype=np.int64) * 1_000_000_000, pa.timestamp("ns"))
    s = pa.array([f"v{i % 3}" for i in range(start, start + n)], pa.string())
    return pa.table({"ts": ts, "x": np.arange(start, start + n, dtype=np.float64), "s": s})


def test_a_reader_is_written_as_read_and_reads_back_like_a_table(small_lib):
    parts = [_table(0, 5), _table(5, 0), _table(5, 13), _table(18, 1), _table(19, 30)]
    pulled = []

    def batches():
        for i, t in enumerate(parts):
            pulled.append(i)
            yield from t.to_batches() or [pa.RecordBatch.from_pylist([], schema=t.schema)]

    reader = pa.RecordBatchReader.from_batches(parts[0].schema, batches())
    item = small_lib.write("s", reader, index_column="ts", metadata={"m": 1})
    assert item.version == 0 and pulled == [0, 1, 2, 3, 4]
    whole = pa.concat_tables(parts)
    got = small_lib.read("s", output_format="pyarrow")
    assert got.data.equals(whole) and got.metadata == {"m": 1}
    ranged = small_lib.read("s", date_range=(pd.Timestamp(7_000_000_000), pd.Timestamp(30_000_000_000)), output_format="pyarrow").data
    assert ranged.column("x").to_pylist() == list(np.arange(7, 31, dtype=float))
    # A row-count-indexed stream too, with lossless casts applied batch by batch (timestamp[us]).
    us = pa.table({"t": pa.array([1, 2, 3], pa.timestamp("us")), "y": [1, 2, 3]})
    small_lib.write("r", pa.RecordBatchReader.from_batches(us.schema, us.to_batches()))
    assert small_lib.read("r", output_format="pyarrow").data.schema.field("t").type == pa.timestamp("ns")


def test_a_bad_batch_down_the_stream_commits_nothing(small_lib):
    small_lib.write("s", _table(0, 10), index_column="ts")
    before = small_lib.read("s", output_format="pyarrow").data

    def going_back():
        yield from _table(100, 20).to_batches()
        yield from _table(50, 5).to_batches()

    schema = _table(0, 1).schema
    with pytest.raises(floe.InvalidInput, match="not sorted"):
        small_lib.write("s", pa.RecordBatchReader.from_batches(schema, going_back()), index_column="ts")

    def failing():
        yield from _table(100, 20).to_batches()
        raise ValueError("the source went away")

    with pytest.raises(floe.InvalidInput, match="the source went away"):
        small_lib.write("s", pa.RecordBatchReader.from_batches(schema, failing()), index_column="ts")
    assert [v.version for v in small_lib.list_versions("s")] == [0]
    assert small_lib.read("s", output_format="pyarrow").data.equals(before)
    # Checked before anything is read: a missing index column, an unstorable type.
    untouched = pa.RecordBatchReader.from_batches(schema, iter(()))
    with pytest.raises(floe.InvalidInput, match="index_column"):
        small_lib.write("s", untouched, index_column="nope")
    dates = pa.table({"d": pa.array([0], pa.date32())})
    with pytest.raises(floe.InvalidInput, match="date32"):
        small_lib.write("s", pa.RecordBatchReader.from_batches(dates.schema, dates.to_batches()))


@pytest.mark.parametrize("index", ["datetime", "range"])
def test_large_frames_with_strings_convert_in_chunks(small_lib, monkeypatch, index):
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 16)
    n = 100
    df = pd.DataFrame(
        {
            "sym": pd.Series([f"S{i % 7}" for i in range(n)], dtype=object),
            "px": np.arange(n, dtype=np.float64),
            "cat": pd.Categorical([["a", "b"][i % 2] for i in range(n)]),
        }
    )
    if index == "datetime":
        df.index = pd.date_range("2024-01-01", periods=n, freq="s", name="ts")
    else:
        df.index = pd.RangeIndex(10, 10 + 3 * n, 3)
    df.loc[df.index[40:45], "sym"] = None  # nulls inside a later chunk
    assert isinstance(_convert.normalize(df, stream=True).table, pa.RecordBatchReader)
    small_lib.write("f", df)
    assert_frame_equal(small_lib.read("f").data, df)


def test_chunks_of_another_type_are_cast_or_refused(small_lib, monkeypatch):
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 16)
    idx = pd.date_range("2024-01-01", periods=48, freq="s", name="ts")
    # A later chunk of only None (infers null) is cast to the first chunk's string type.
    late_nulls = pd.DataFrame({"s": pd.Series(["a"] * 16 + [None] * 16 + ["b"] * 16, index=idx, dtype=object)})
    small_lib.write("ok", late_nulls)
    assert_frame_equal(small_lib.read("ok").data, late_nulls)
    # A first chunk of only None leaves the whole column to decide (no stream).
    early_nulls = pd.DataFrame({"s": pd.Series([None] * 16 + ["a"] * 32, index=idx, dtype=object)})
    assert not isinstance(_convert.normalize(early_nulls, stream=True).table, pa.RecordBatchReader)
    small_lib.write("early", early_nulls)
    assert_frame_equal(small_lib.read("early").data, early_nulls)
    # Strings, then integers: refused while the engine reads, nothing committed.
    mixed = pd.DataFrame({"s": pd.Series(["a"] * 16 + list(range(32)), index=idx, dtype=object)})
    with pytest.raises(floe.InvalidInput):
        small_lib.write("mixed", mixed)
    assert not small_lib.has_symbol("mixed")


def test_an_unsorted_large_frame_is_refused_before_anything_is_written(small_lib, monkeypatch):
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 16)
    idx = pd.date_range("2024-01-01", periods=48, freq="s", name="ts")
    df = pd.DataFrame({"s": pd.Series([f"v{i}" for i in range(48)], index=idx[::-1], dtype=object)})
    # Not streamed: the index is checked whole first, as for any frame.
    assert not isinstance(_convert.normalize(df, stream=True).table, pa.RecordBatchReader)
    with pytest.raises(floe.InvalidInput, match="not sorted"):
        small_lib.write("u", df)
    assert not small_lib.has_symbol("u")


# ----- appends ------------------------------------------------------------------------------------


def test_a_reader_is_appended_as_read(small_lib):
    small_lib.write("s", _table(0, 10), index_column="ts", metadata={"v": 0})
    parts = [_table(10, 4), _table(14, 0), _table(14, 25)]
    pulled = []

    def batches():
        for i, t in enumerate(parts):
            pulled.append(i)
            yield from t.to_batches() or [pa.RecordBatch.from_pylist([], schema=t.schema)]

    item = small_lib.append("s", pa.RecordBatchReader.from_batches(parts[0].schema, batches()), index_column="ts", metadata={"v": 1})
    assert item.version == 1 and pulled == [0, 1, 2]
    got = small_lib.read("s", output_format="pyarrow")
    assert got.data.equals(pa.concat_tables([_table(0, 10), *parts])) and got.metadata == {"v": 1}
    # Onto a symbol that does not exist yet: it is created.
    small_lib.append("new", pa.RecordBatchReader.from_batches(parts[0].schema, _table(0, 3).to_batches()), index_column="ts")
    assert small_lib.read("new", output_format="pyarrow").data.equals(_table(0, 3))


def test_a_streamed_append_that_does_not_fit_commits_nothing(small_lib):
    small_lib.write("s", _table(0, 10), index_column="ts")
    before = small_lib.read("s", output_format="pyarrow").data

    def other_columns():
        yield from pa.table({"ts": _table(20, 2).column("ts"), "y": [1, 2]}).to_batches()

    schema = pa.schema([("ts", pa.timestamp("ns")), ("y", pa.int64())])
    with pytest.raises(floe.SchemaMismatch):
        small_lib.append("s", pa.RecordBatchReader.from_batches(schema, other_columns()), index_column="ts")
    with pytest.raises(floe.UnsortedIndex):
        small_lib.append("s", pa.RecordBatchReader.from_batches(_table(0, 1).schema, _table(5, 20).to_batches()), index_column="ts")
    assert small_lib.read("s", output_format="pyarrow").data.equals(before)
    assert [v.version for v in small_lib.list_versions("s")] == [0]


def test_large_frames_append_in_chunks(small_lib, monkeypatch):
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 10)
    n = 95
    index = pd.date_range("2024-01-01", periods=2 * n, freq="s")
    df = pd.DataFrame({"s": pd.Series([f"k{i % 4}" if i % 7 else None for i in range(2 * n)], index=index, dtype=object), "v": np.arange(2 * n)}, index=index)
    small_lib.write("p", df.iloc[:n])
    small_lib.append("p", df.iloc[n:])
    got = small_lib.read("p").data
    want = df.copy()
    want["s"] = want["s"].where(want["s"].notna(), None)
    assert_frame_equal(got, want)


def test_a_dynamic_schema_library_appends_new_columns_from_a_reader(store):
    lib = store.create_library(unique_name(), floe.LibraryOptions(dynamic_schema=True))
    lib.write("s", _table(0, 5), index_column="ts")
    more = _table(5, 5).append_column("extra", pa.array(np.arange(5, dtype=np.int64)))
    lib.append("s", pa.RecordBatchReader.from_batches(more.schema, more.to_batches()), index_column="ts")
    got = lib.read("s", output_format="pyarrow").data
    assert got.num_rows == 10 and got.column("extra").to_pylist() == [None] * 5 + list(range(5))


def unique_name() -> str:
    from conftest import unique

    return unique("dyn")
