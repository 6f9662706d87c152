"""The pandas conversions' contract beyond round-tripping: writes do not copy numeric columns and keep
NaN as NaN; reads give writable frames with the index restored (dtype, time zone, name) on every read
path; list_versions returns pandas Timestamps in UTC. Runs under pandas 2 and 3 alike."""

from __future__ import annotations

import datetime as dt
import gc
import os
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import floe
from floe import _convert, _floe
from conftest import assert_frame_equal, ts_frame, unique
from test_roundtrip import every_dtype_frame

# ----- writing ------------------------------------------------------------------------------------


def _value_address(table: pa.Table, column: str) -> int:
    return table.column(column).chunk(0).buffers()[1].address


def test_numeric_columns_are_not_copied_on_write():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"f": rng.normal(size=1000), "i": rng.integers(0, 100, 1000), "g": rng.normal(size=1000)},
        index=pd.date_range("2024-01-01", periods=1000, freq="1s", name="t", unit="ns"),
    )
    table = _convert.normalize(df).table
    for c in ["f", "i", "g"]:
        assert _value_address(table, c) == df[c].to_numpy().ctypes.data, c
    # Nor when the column names are not strings (stored renamed).
    df.columns = [10, 20, 30]
    table = _convert.normalize(df).table
    assert table.column_names == ["t", "10", "20", "30"]
    for c, s in zip(df.columns, table.column_names[1:]):
        assert _value_address(table, s) == df[c].to_numpy().ctypes.data, c


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32", "int16", "int8", "uint64", "uint8"])
def test_columns_of_a_strided_2d_block_are_copied_in_one_piece(lib, monkeypatch, dtype):
    """A frame over one C-ordered 2D array holds every column strided: the columns come contiguous from
    one copy of the whole block (rows of one array), and read back as written, whatever the element type,
    also when other columns (object strings, another 2D block) sit between them."""
    monkeypatch.setattr(_convert, "DENSE_BLOCK_MIN_BYTES", 1)
    rng = np.random.default_rng(7)
    values = (rng.normal(size=(301, 37)) * 100).astype(dtype)
    df = pd.DataFrame(values, columns=[f"c{i}" for i in range(37)], copy=False,
                      index=pd.date_range("2024-01-01", periods=301, freq="1min", name="t"))
    df.insert(5, "name", [f"s{i % 7}" for i in range(301)])
    df.insert(20, "other", rng.normal(size=301))
    assert not df._get_column_array(0).flags.c_contiguous  # the case this is about
    dense = _convert._contiguous_blocks(df)
    assert sorted(dense) == [i for i in range(39) if i not in (5, 20)]
    rows = {a.base.ctypes.data for a in dense.values()}
    assert len(rows) == 1 and all(a.flags.c_contiguous for a in dense.values())
    for i, a in dense.items():
        np.testing.assert_array_equal(a, df.iloc[:, i].to_numpy())
    table = _convert.normalize(df).table
    # Taken by pyarrow without a copy: c0, c1, .. are consecutive rows of one array.
    row = 301 * np.dtype(dtype).itemsize
    assert [_value_address(table, f"c{i}") - _value_address(table, "c0") for i in range(4)] == [0, row, 2 * row, 3 * row]
    lib.write("block", df)
    assert_frame_equal(lib.read("block").data, df)
    # A window of rows of such a frame is a strided view too.
    part = df.iloc[17:250]
    lib.write("block", part)
    assert_frame_equal(lib.read("block").data, part)


def test_small_or_contiguous_blocks_are_left_to_pyarrow():
    df = pd.DataFrame(np.zeros((100, 10)), copy=False)
    assert _convert._contiguous_blocks(df) == {}  # 8 KB: below DENSE_BLOCK_MIN_BYTES
    big = pd.DataFrame(np.asfortranarray(np.zeros((100_000, 10))), copy=False)
    assert big._get_column_array(0).flags.c_contiguous
    assert _convert._contiguous_blocks(big) == {}


def test_a_row_window_of_a_contiguous_block_is_not_copied():
    """A window of rows of a frame whose columns are contiguous (the chunks of a streamed write, or
    df.iloc[:n]) keeps them contiguous: pyarrow takes them as they are, nothing is copied."""
    n = 300_000
    df = pd.DataFrame({"a": np.arange(n, dtype=np.float64), "b": np.ones(n), "c": np.zeros(n)})
    window = df.iloc[1000:250_000]
    assert not window._mgr.blocks[0].values.flags.c_contiguous  # the block, not its rows
    assert _convert._contiguous_blocks(window) == {}
    table = _convert.normalize(window).table
    assert _value_address(table, "a") == window["a"].to_numpy().ctypes.data
    assert _convert._pandas_stream(df) is None, "numeric and contiguous: one table, no copy to bound"


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "uint8"])
def test_a_write_copies_strided_blocks_a_segment_at_a_time(small_lib, monkeypatch, dtype):
    """A write of a frame whose numeric columns are strided views of 2D blocks hands the blocks to the
    engine, which copies each segment's rows of its column group as it encodes that segment (D49):
    nothing is copied whole first. The frame reads back as written, with other columns between the
    block's, across many row slices and column groups, whole and in parts."""
    monkeypatch.setattr(_convert, "DENSE_BLOCK_MIN_BYTES", 1)
    rng = np.random.default_rng(11)
    n = 40
    values = (rng.normal(size=(n, 9)) * 100).astype(dtype)
    df = pd.DataFrame(values, columns=[f"c{i}" for i in range(9)], copy=False,
                      index=pd.date_range("2024-01-01", periods=n, freq="1min", name="t"))
    df.insert(4, "i", np.arange(n))
    df.insert(0, "b", rng.random(n) < 0.5)
    normalized = _convert.normalize(df, None, True, True)
    assert isinstance(normalized.table, pa.Table)
    [(block, positions)] = normalized.deferred
    assert block.shape == (9, n) and positions == [2, 3, 4, 5, 7, 8, 9, 10, 11]  # after t, b; i at 6
    small_lib.write("block", df)  # 7 rows x 3 columns a segment: 6 row slices x 4 column groups
    assert_frame_equal(small_lib.read("block").data, df)
    assert_frame_equal(small_lib.read("block", row_range=(5, 23), columns=["c3", "i", "c8"]).data,
                       df.iloc[5:23][["c3", "i", "c8"]])
    # An update or append of such a frame converts it whole (or chunk by chunk), as before.
    more = pd.DataFrame(values[:5] + 1, columns=[f"c{i}" for i in range(9)], copy=False,
                        index=pd.date_range("2024-02-01", periods=5, freq="1min", name="t"))
    more.insert(4, "i", np.arange(5))
    more.insert(0, "b", [True] * 5)
    small_lib.append("block", more)
    assert_frame_equal(small_lib.read("block").data, pd.concat([df, more]))


@pytest.mark.parametrize("index", ["range", "datetime", "multi"])
def test_deferred_positions_follow_the_index_columns(small_lib, monkeypatch, index):
    """A deferred column's position in the table is its frame position after the index columns: none
    for a RangeIndex, one for a DatetimeIndex, one per level for a MultiIndex."""
    monkeypatch.setattr(_convert, "DENSE_BLOCK_MIN_BYTES", 1)
    n = 12
    df = pd.DataFrame(np.arange(n * 3, dtype=np.float64).reshape(n, 3), columns=["x", "y", "z"], copy=False)
    if index == "datetime":
        df.index = pd.date_range("2024-01-01", periods=n, freq="1min", name="t")
    elif index == "multi":
        df.index = pd.MultiIndex.from_arrays([pd.date_range("2024-01-01", periods=n, freq="1min"), np.arange(n)], names=["t", "k"])
    levels = {"range": 0, "datetime": 1, "multi": 2}[index]
    [(block, positions)] = _convert.normalize(df, None, True, True).deferred
    assert positions == [levels, levels + 1, levels + 2]
    small_lib.write("ix", df)
    assert_frame_equal(small_lib.read("ix").data, df)


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_short_frames_of_many_columns_are_deferred(lib, rows):
    """A strided block of ``DEFER_MIN_COLUMNS`` columns or more is deferred however few its rows
    (pyarrow's per-column conversion would cost more, D56); one of fewer columns and under
    ``DENSE_BLOCK_MIN_BYTES`` is converted column by column as before. Both read back the same."""
    wide = _convert.DEFER_MIN_COLUMNS
    for width, deferred in [(wide, True), (wide - 1, False)]:
        values = np.arange(rows * width, dtype=np.float64).reshape(rows, width)
        df = pd.DataFrame(values, columns=[f"c{i}" for i in range(width)], copy=False,
                          index=pd.date_range("2024-01-01", periods=rows, freq="1min", name="t"))
        assert bool(_convert.normalize(df, None, True, True).deferred) == deferred, width
        lib.write(f"w{width}", df)
        assert_frame_equal(lib.read(f"w{width}").data, df)
        lib.append(f"w{width}", df.set_axis(df.index + pd.Timedelta(days=1)))
        assert len(lib.read(f"w{width}").data) == 2 * rows
    # No rows: nothing to defer.
    empty = pd.DataFrame(np.zeros((0, wide)), columns=[f"c{i}" for i in range(wide)], copy=False)
    assert not _convert.normalize(empty, None, True, True).deferred


def test_a_bad_frame_with_strided_blocks_writes_nothing(lib, monkeypatch):
    """The engine checks the frame (here its index) before it asks the blocks for anything."""
    monkeypatch.setattr(_convert, "DENSE_BLOCK_MIN_BYTES", 1)
    df = pd.DataFrame(np.zeros((30, 4)), copy=False,
                      index=pd.DatetimeIndex(np.arange(30)[::-1].astype("datetime64[s]"), name="t"))
    assert _convert.normalize(df, None, True, True).deferred
    with pytest.raises(floe.InvalidInput, match="not sorted"):
        lib.write("bad", df)
    assert not lib.has_symbol("bad")


def test_deferred_blocks_that_do_not_match_the_table_are_refused(lib):
    table = pa.table({"a": pa.array([0.0, 0.0]), "b": pa.array([1, 2])})
    block = np.zeros((1, 2), np.uint64)
    for deferred, says in [
        ([(block, [5])], "out of range"),
        ([(np.zeros((1, 3), np.uint64), [0])], "were named"),
        ([(np.zeros((1, 2), np.uint32), [0])], "not a type of 4 bytes"),
        ([(block, [0]), (block, [0])], "named twice"),
        ([(np.zeros((1, 2), np.float64), [0])], "uint8, 16, 32 or 64"),
    ]:
        with pytest.raises(ValueError, match=says):
            lib._lib.write("x", table, None, None, False, deferred)
    assert not lib.has_symbol("x")


def test_a_tall_strided_frame_is_converted_chunk_by_chunk(lib):
    """Copying a frame's strided columns is bounded like any conversion: a frame of more rows than a
    conversion chunk goes to the engine as a stream of chunks, each copied on its own, when it has
    columns to convert (an append's does too); a write of numbers alone defers its blocks (D49)."""
    n = _convert.CONVERT_CHUNK_ROWS * 2 + 123
    values = np.arange(n * 8, dtype=np.float64).reshape(n, 8)
    df = pd.DataFrame(values, columns=[f"c{i}" for i in range(8)], copy=False,
                      index=pd.date_range("2024-01-01", periods=n, freq="1s", name="t"))
    streamed = _convert._pandas_stream(df)
    assert streamed is not None and isinstance(streamed.table, pa.RecordBatchReader)
    lib.write("tall", df)
    assert_frame_equal(lib.read("tall").data, df)


def test_the_tiled_copy_refuses_bad_arguments():
    src = np.zeros((4, 6), dtype=np.uint64).T
    with pytest.raises(ValueError, match="shapes differ"):
        _floe.copy_rows_contiguous(src, np.empty((4, 6), np.uint64))
    with pytest.raises(ValueError, match="not C-contiguous"):
        _floe.copy_rows_contiguous(src, np.empty((4, 6), np.uint64).T)
    raw = np.zeros(6 * 4 * 8 + 1, dtype=np.uint8)
    unaligned = raw[1:].view(np.uint64).reshape(4, 6).T
    assert not unaligned.flags.aligned
    with pytest.raises(ValueError, match="not aligned"):
        _floe.copy_rows_contiguous(unaligned, np.empty((6, 4), np.uint64))
    with pytest.raises(ValueError, match="an unsigned integer type"):
        _floe.copy_rows_contiguous(src.astype(np.float64), np.empty((6, 4), np.float64))
    with pytest.raises(ValueError, match="the source's unsigned integer type"):
        _floe.copy_rows_contiguous(src, np.empty((6, 4), np.uint32))
    out = np.empty((6, 4), np.uint64)
    _floe.copy_rows_contiguous(src, out)
    np.testing.assert_array_equal(out, src)


def test_a_strided_block_of_a_type_floe_cannot_store_is_named(lib, monkeypatch):
    monkeypatch.setattr(_convert, "DENSE_BLOCK_MIN_BYTES", 1)
    df = pd.DataFrame(np.zeros((50, 4), dtype=np.float16), copy=False)
    with pytest.raises(floe.InvalidInput, match="column '0' has type float16, which Floe cannot store"):
        lib.write("half", df)
    assert not lib.has_symbol("half")


def test_frames_of_plain_numbers_have_only_their_index_type_checked(lib):
    # Plain numpy columns keep their Arrow types unlooked-at; the index is still cast to ns.
    idx = pd.date_range("2024-01-01", periods=4, freq="1s", unit="us").rename("t")
    df = pd.DataFrame(
        {
            "i8": np.arange(4, dtype=np.int8),
            "u64": np.arange(4, dtype=np.uint64),
            "b": [True, False, True, False],
            "f32": np.arange(4, dtype=np.float32),
            "f": np.linspace(0.0, 1.0, 4),
        },
        index=idx,
    )
    n = _convert.normalize(df)
    assert n.table.schema.field("t").type == pa.timestamp("ns")
    assert n.table.schema.types[1:] == [pa.int8(), pa.uint64(), pa.bool_(), pa.float32(), pa.float64()]
    lib.write("plain", df)
    assert_frame_equal(lib.read("plain").data, df)
    # A float16 column among plain ones still gets the check, which names it.
    with pytest.raises(floe.InvalidInput, match="column 'h' has type float16"):
        lib.write("half", df.assign(h=np.zeros(4, dtype=np.float16)))
    assert not lib.has_symbol("half")


def test_schemas_found_storable_are_remembered_and_others_still_checked(monkeypatch):
    monkeypatch.setattr(_convert, "_STORABLE_SCHEMAS", [])
    ok = pa.table({"t": pa.array([1, 2], pa.timestamp("ns")), "x": [1.0, 2.0]}).replace_schema_metadata({"k": "v"})
    assert _convert.normalize(ok, "t").table.schema.metadata is None
    assert len(_convert._STORABLE_SCHEMAS) == 1
    # The same schema again: taken as it is, metadata dropped as before.
    again = _convert.normalize(pa.table({"t": pa.array([3], pa.timestamp("ns")), "x": [3.0]}), "t")
    assert again.table.schema == ok.schema.remove_metadata() and len(_convert._STORABLE_SCHEMAS) == 1
    # Same names, other types: checked (and cast or refused) as ever.
    micro = _convert.normalize(pa.table({"t": pa.array([1, 2], pa.timestamp("us")), "x": [1.0, 2.0]}), "t")
    assert micro.table.schema.field("t").type == pa.timestamp("ns")
    with pytest.raises(floe.InvalidInput, match="column 'x' has type float16"):
        _convert.normalize(pa.table({"t": pa.array([1], pa.timestamp("ns")), "x": pa.array([1], pa.float16())}), "t")
    for i in range(_convert._STORABLE_SCHEMAS_KEPT + 3):
        _convert.normalize(pa.table({f"c{i}": [1]}))
    assert len(_convert._STORABLE_SCHEMAS) == _convert._STORABLE_SCHEMAS_KEPT


def test_float_nan_is_stored_as_nan_not_null(lib):
    df = pd.DataFrame(
        {
            "f64": [1.0, np.nan, np.inf],
            "f32": np.array([np.nan, 2.0, 3.0], dtype=np.float32),
            "Float64": pd.array([1.5, None, 2.5], dtype="Float64"),  # pd.NA is a null
            "when": pd.to_datetime(["2024-01-01", None, "2024-01-03"]),  # NaT is a null
        }
    )
    lib.write("nan", df)
    t = lib.read("nan", output_format="pyarrow").data
    assert t.column("f64").null_count == 0 and pc.is_nan(t.column("f64")).to_pylist() == [False, True, False]
    assert t.column("f32").null_count == 0 and pc.is_nan(t.column("f32")).to_pylist() == [True, False, False]
    assert t.column("Float64").to_pylist() == [1.5, None, 2.5]
    assert t.column("when").null_count == 1
    assert_frame_equal(lib.read("nan").data, df)
    # A Series too.
    lib.write("s", pd.Series([1.0, np.nan], name="x"))
    assert lib.read("s", output_format="pyarrow").data.column("x").null_count == 0


@pytest.mark.parametrize(
    "bad, column",
    [
        (pd.DataFrame({"ok": [1.0, 2.0], "mixed": pd.Series([1, "two"], dtype=object)}), "mixed"),
        (pd.DataFrame({5: pd.Series([b"x", 3], dtype=object)}), "5"),
    ],
)
def test_unconvertible_column_is_named(lib, bad, column):
    with pytest.raises(floe.InvalidInput, match=f"column '{column}'"):
        lib.write("bad", bad)
    assert lib.list_symbols() == []


# ----- reading ------------------------------------------------------------------------------------


def _reads(lib, symbol: str, df: pd.DataFrame):
    """(label, frame read, the rows of ``df`` it should equal) for every read path to pandas."""
    lo, hi = df.index[3], df.index[12]
    cols = [df.columns[0], df.columns[-1]]
    yield "full", lib.read(symbol).data, df
    yield "date_range", lib.read(symbol, date_range=(lo, hi)).data, df.loc[lo:hi]
    yield "row_range", lib.read(symbol, row_range=(2, 9)).data, df.iloc[2:9]
    yield "columns", lib.read(symbol, columns=cols).data, df[cols]
    yield "head", lib.head(symbol, 4).data, df.head(4)
    yield "tail", lib.tail(symbol, 4).data, df.tail(4)
    yield "read_batch", lib.read_batch([symbol])[0].data, df
    yield "iter_batches", pd.concat(list(lib.iter_batches(symbol))), df


def _same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) if pd.api.types.is_scalar(a) and pd.isna(a) else a == b


@pytest.mark.parametrize("tz", [None, "Asia/Tokyo"])
def test_pandas_reads_are_writable_and_keep_the_index(small_lib, tz):
    df = every_dtype_frame(20)
    df.index = pd.date_range("2024-01-01", periods=len(df), freq="1s", tz=tz, name="when", unit="ns")
    small_lib.write("all", df)
    for label, out, want in _reads(small_lib, "all", df):
        if label in ("tail", "iter_batches"):
            # A categorical read from later segments only has their categories (see
            # test_categories_of_later_segments): compared without it.
            out, want = out.drop(columns="category"), want.drop(columns="category")
        assert_frame_equal(out, want, obj=label)
        assert isinstance(out.index, pd.DatetimeIndex), label
        assert out.index.dtype == df.index.dtype and out.index.name == "when", label
        # Every column can be written to in place, as in a frame the user built.
        for i in range(out.shape[1]):
            out.iloc[0, i] = out.iloc[1, i]
            assert _same(out.iloc[0, i], out.iloc[1, i]), (label, out.columns[i])


def test_categories_of_later_segments(small_lib):
    # Every segment stores the whole dictionary; a read of rows that use only some categories keeps
    # them all, in the order the user gave.
    df = pd.DataFrame({"c": pd.Categorical(["lo", "hi"] + ["lo"] * 18, categories=["hi", "lo", "unused"])})
    small_lib.write("cat", df)
    assert list(small_lib.tail("cat", 4).data["c"].cat.categories) == ["hi", "lo", "unused"]
    assert list(small_lib.read("cat", row_range=(5, 7)).data["c"].cat.categories) == ["hi", "lo", "unused"]


def test_float_frame_read_is_writable_and_owned(lib):
    rng = np.random.default_rng(5)
    df = pd.DataFrame(rng.normal(size=(1000, 4)), columns=list("abcd"), index=pd.date_range("2024-01-01", periods=1000, freq="1min", name="ts", unit="ns"))
    lib.write("w", df)
    out = lib.read("w").data
    out.iloc[0, 0] = 42.0
    out["b"] *= 2
    assert out.iloc[0, 0] == 42.0 and np.array_equal(out["b"].to_numpy(), df["b"].to_numpy() * 2)
    # The next read is not affected: the frame owns its data.
    assert_frame_equal(lib.read("w").data, df)


def _owner(values: np.ndarray):
    while isinstance(values, np.ndarray) and values.base is not None:
        values = values.base
    return values


def test_numeric_columns_are_not_copied_on_read(lib):
    # Plain numeric and timestamp columns come to pandas as numpy arrays over the engine's output
    # buffers (OwnedColumn), each its own block: no copy, writable, and not shared with another read.
    rng = np.random.default_rng(6)
    n = 200_000
    df = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "i": rng.integers(-5, 5, n),
            "u8": rng.integers(0, 200, n).astype(np.uint8),
            "f32": rng.normal(size=n).astype(np.float32),
            "when": pd.date_range("2020-01-01", periods=n, freq="1s", unit="ns"),
            "s": ["x", "y"] * (n // 2),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1ms", name="ts", unit="ns"),
    )
    lib.write("w", df)
    out = lib.read("w").data
    assert_frame_equal(out, df)
    # Each over the engine's memory: a column of its own, or a row of a block of same-typed columns
    # ("when" shares a block with the index, both datetime64[ns]).
    for c in ["f", "i", "u8", "f32", "when"]:
        assert type(_owner(out[c].to_numpy())).__name__ in ("OwnedColumn", "OwnedBlock"), c
    assert type(_owner(out.index.to_numpy())).__name__ in ("OwnedColumn", "OwnedBlock")
    again = lib.read("w").data
    assert not np.shares_memory(out["f"].to_numpy(), again["f"].to_numpy())
    assert not np.shares_memory(out["when"].to_numpy(), again["when"].to_numpy())
    out.iloc[0, 0] = 42.0
    out.loc[out.index[1], "i"] = 7
    assert out.iloc[0, 0] == 42.0 and out["i"].iloc[1] == 7
    assert_frame_equal(lib.read("w").data, df)
    # Column subsets, row ranges (RangeIndex frames), frames with only owned columns, a Series.
    assert_frame_equal(lib.read("w", columns=["i", "s"]).data, df[["i", "s"]])
    plain = df.reset_index(drop=True)[["f", "i"]]
    lib.write("r", plain)
    assert_frame_equal(lib.read("r").data, plain)
    assert_frame_equal(lib.read("r", row_range=(10, 20)).data, plain.iloc[10:20])
    lib.write("series", df["f"])
    assert_frame_equal(lib.read("series").data.to_frame(), df[["f"]])


def test_large_outputs_are_mappings_that_pandas_owns(lib):
    # Output buffers of 2 MiB and more are the engine's own mappings, 2 MiB-aligned (D30); pandas reads
    # own them as they own smaller (heap) ones: writable, not shared, freed with the frame.
    rng = np.random.default_rng(7)
    n = 300_000  # 2.4 MB per column (the engine's tests cover strings read as codes from mappings)
    df = pd.DataFrame(
        {"f": rng.normal(size=n), "i": rng.integers(-5, 5, n), "s": ["ab", "cd", "ef"] * (n // 3)},
        index=pd.date_range("2024-01-01", periods=n, freq="1ms", name="ts", unit="ns"),
    )

    def same(out: pd.DataFrame, expected: pd.DataFrame) -> bool:
        # Column by column: assert_frame_equal on 300,000 strings takes seconds.
        return (
            list(out.columns) == list(expected.columns)
            and np.array_equal(out.index.to_numpy(), expected.index.to_numpy())
            and all(
                out[c].tolist() == expected[c].tolist() if c == "s" else np.array_equal(out[c].to_numpy(), expected[c].to_numpy())
                for c in expected.columns
            )
        )

    lib.write("big", df)
    table = lib.read("big", output_format="pyarrow").data
    huge = 2 << 20
    if sys.platform == "linux" and os.environ.get("FLOE_HUGE_PAGES") != "0":
        assert table["f"].chunk(0).buffers()[1].address % huge == 0
    assert np.array_equal(table["f"].to_numpy(), df["f"].to_numpy())
    out = lib.read("big").data
    assert same(out, df)
    for c in ["f", "i"]:
        assert type(_owner(out[c].to_numpy())).__name__ in ("OwnedColumn", "OwnedBlock"), c
    again = lib.read("big").data
    assert not np.shares_memory(out["f"].to_numpy(), again["f"].to_numpy())
    out.iloc[0, 0] = 42.0
    out["i"] *= 3
    del again, table
    gc.collect()
    assert out.iloc[0, 0] == 42.0 and np.array_equal(out["i"].to_numpy(), df["i"].to_numpy() * 3)
    assert same(lib.read("big").data, df)
    # Windows and subsets of the same symbol, through the same buffers.
    assert same(lib.read("big", row_range=(1000, 290_000)).data, df.iloc[1000:290_000])
    assert same(lib.read("big", columns=["f"]).data, df[["f"]])


def test_owned_columns_keep_their_pandas_dtypes(lib):
    # Stored as plain integers, but the frame said otherwise: the read gives the frame's dtypes back.
    df = pd.DataFrame({"obj": pd.Series([1, 2, 3], dtype=object), "nullable": pd.array([1, 2, 3], dtype="Int64")})
    lib.write("d", df)
    assert_frame_equal(lib.read("d").data, df)
    # Timestamps are stored in ns; an index or column of another unit comes back in its unit.
    for unit in ["s", "ms", "us", "ns"]:
        stamps = pd.date_range("2024-01-01", periods=3, freq="1s", unit=unit)
        df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "when": stamps}, index=stamps.rename("t"))
        lib.write("u", df)
        out = lib.read("u").data
        assert out.index.dtype == df.index.dtype and out["when"].dtype == df["when"].dtype, unit
        assert_frame_equal(out, df)


def test_index_of_arrow_written_symbols(lib):
    t = pa.table({"ts": pa.array([1, 2, 3], pa.timestamp("ns", tz="UTC")), "x": [1.0, 2.0, 3.0]})
    lib.write("a", t, index_column="ts")
    out = lib.read("a").data
    assert list(out.columns) == ["x"] and out.index.name == "ts" and str(out.index.dtype) == "datetime64[ns, UTC]"
    out.iloc[0, 0] = 9.0
    only_index = lib.read("a", columns=[]).data
    assert only_index.shape == (3, 0) and only_index.index.equals(out.index)


def test_index_kinds_and_empty_column_labels(lib):
    multi = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0]},
        index=pd.MultiIndex.from_arrays([pd.date_range("2024-01-01", periods=3, tz="UTC", unit="ns"), ["a", "b", "c"]], names=["t", "k"]),
    )
    lib.write("multi", multi)
    out = lib.read("multi").data
    assert_frame_equal(out, multi)
    assert out.index.names == ["t", "k"] and str(out.index.levels[0].dtype) == "datetime64[ns, UTC]"
    # Reading no columns leaves the same (empty) column labels as dropping them all from the frame.
    ts = ts_frame(5)
    lib.write("ts", ts)
    assert_frame_equal(lib.read("ts", columns=[]).data, ts[[]])


# ----- list_versions ------------------------------------------------------------------------------


def test_list_versions_types(lib):
    items = [lib.write("v", ts_frame(3)) for _ in range(5)]
    lib.snapshot("snap")
    lib.write("v", ts_frame(3))
    versions = lib.list_versions("v")
    assert list(versions) == [floe.SymbolVersion("v", i) for i in range(5, -1, -1)]
    for key, info in versions.items():
        assert type(key) is floe.SymbolVersion and type(info) is floe.VersionInfo
        assert type(info.date) is pd.Timestamp and info.date.tz is dt.timezone.utc and info.date.unit == "ns"
        assert type(info.deleted) is bool and type(info.snapshots) is list
    for item in items:
        assert versions[floe.SymbolVersion("v", item.version)].date == pd.Timestamp(item.timestamp, unit="ns", tz="UTC")
    assert versions[floe.SymbolVersion("v", 4)].snapshots == ["snap"]
    assert list(lib.list_versions("v", latest_only=True)) == [floe.SymbolVersion("v", 5)]
    assert list(lib.list_versions("v", snapshot="snap")) == [floe.SymbolVersion("v", 4)]
    assert lib.list_versions("nothing") == {}


def test_list_versions_of_many_versions_and_symbols(lib):
    # More versions than the engine looks up one by one (it then walks the symbol's records, on LMDB),
    # over two symbols, with deletions, a snapshot and every filter.
    small = ts_frame(2)
    stamps = {("a", i): lib.write("a", small).timestamp for i in range(70)}
    stamps.update({("b", i): lib.write("b", small).timestamp for i in range(3)})
    lib.snapshot("snap", versions={"a": 5, "b": 2})
    lib.delete("a", versions=[5, 6, 69])
    everything = lib.list_versions()
    live_a = [i for i in range(68, -1, -1) if i not in (5, 6)]
    expected = [floe.SymbolVersion("a", i) for i in live_a] + [floe.SymbolVersion("a", 5)]
    expected += [floe.SymbolVersion("b", i) for i in (2, 1, 0)]
    assert sorted(everything) == sorted(expected)
    assert list(lib.list_versions("a")) == expected[: len(live_a) + 1]
    for key, info in everything.items():
        assert info.date == pd.Timestamp(stamps[key], unit="ns", tz="UTC"), key
        assert info.deleted == (key == ("a", 5))
        assert info.snapshots == (["snap"] if key in (("a", 5), ("b", 2)) else [])
    infos = list(everything.values())
    assert len({id(i.snapshots) for i in infos}) == len(infos), "each version has its own snapshots list"
    assert list(lib.list_versions(latest_only=True)) == [floe.SymbolVersion("a", 68), floe.SymbolVersion("b", 2)]
    assert sorted(lib.list_versions(snapshot="snap")) == [("a", 5), ("b", 2)]
    skipped = lib.list_versions("a", skip_snapshots=True)
    assert ("a", 5) not in skipped and all(i.snapshots == [] for i in skipped.values())
    assert list(skipped) == [floe.SymbolVersion("a", i) for i in live_a]
    assert lib.list_symbols(snapshot_name="snap") == ["a", "b"]


def test_low_cardinality_strings_read_back_as_written(store):
    # Object string columns of few distinct values are stored dictionary-coded; a read to pandas takes
    # them as codes and builds one object per distinct value (objects_from_codes). The frame
    # must not tell the difference: object dtype, None for nulls, writable, whole reads and row
    # windows, and segments of which only some are dictionary-coded (the rest plain) or hold only nulls.
    lib = store.create_library(unique("codes"), floe.LibraryOptions(rows_per_segment=40, columns_per_segment=2))
    n = 200
    words = np.array(["alpha", "beta", "γάμμα", "", "delta"], dtype=object)
    low = words[np.arange(n) % 5].copy()
    low[::7] = None
    high = np.array([f"v{i}" if i < 120 else ["x", "y"][i % 2] for i in range(n)], dtype=object)
    nulls = np.array([None] * 40 + ["z"] * 160, dtype=object)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", name="ts", unit="ns")
    # Object columns holding None (pandas 3 would infer its string dtype, with NaN, from bare arrays).
    objects = {c: pd.Series(v, index=idx, dtype=object) for c, v in (("low", low), ("high", high), ("nulls", nulls))}
    df = pd.DataFrame({**objects, "n": pd.Series(np.arange(n), index=idx)})
    lib.write("s", df)
    out = lib.read("s").data
    assert_frame_equal(out, df)
    for c in ("low", "high", "nulls"):
        assert out[c].dtype == object
        assert out[c].iloc[0] is None or isinstance(out[c].iloc[0], str)
    assert out["low"].iloc[7] is None and out["nulls"].iloc[0] is None
    out.iloc[1, 0] = "changed"  # writable like any frame
    assert out["low"].iloc[1] == "changed"
    assert_frame_equal(lib.read("s", row_range=(33, 91)).data, df.iloc[33:91])
    assert_frame_equal(lib.read("s", columns=["low"], date_range=(df.index[5], df.index[6])).data, df[["low"]].iloc[5:7])
    # pyarrow output is unchanged: plain strings, not dictionaries.
    t = lib.read("s", output_format="pyarrow").data
    assert t.schema.field("low").type == pa.string() and not t.schema.field("low").metadata


def test_string_dtype_columns_keep_their_dtype_through_codes(store):
    # A column of pandas' string dtype also comes back as that dtype (codes are turned back into
    # plain strings for it), and a pyarrow-written string column reads as to_pandas makes it.
    lib = store.create_library(unique("codes"), floe.LibraryOptions(rows_per_segment=30, columns_per_segment=2))
    idx = pd.date_range("2024-01-01", periods=90, freq="1s", name="ts", unit="ns")
    df = pd.DataFrame({"s": pd.array(["a", "b", None] * 30, dtype="string")}, index=idx)
    lib.write("typed", df)
    assert_frame_equal(lib.read("typed").data, df)
    t = pa.table({"ts": pa.array(idx), "s": pa.array(["p", "q", None] * 30)})
    lib.write("arrow", t, index_column="ts")
    expected = t.to_pandas().set_index("ts")
    got = lib.read("arrow").data
    assert list(got["s"]) == list(expected["s"]) and got["s"].dtype == expected["s"].dtype


def test_columns_of_one_type_come_back_as_one_block(lib):
    # Many short float columns (the `wide` shape): the engine decodes them into one allocation and
    # the frame is built on it as one 2D block, without a copy; same-typed columns elsewhere in the
    # frame (leading, trailing, interleaved with others) come back right whichever way they are built.
    rng = np.random.default_rng(9)
    idx = pd.date_range("2024-01-01", periods=300, freq="1s", name="ts", unit="ns")
    wide = pd.DataFrame(rng.normal(size=(300, 200)), columns=[f"c{i}" for i in range(200)], index=idx)
    lib.write("wide", wide)
    out = lib.read("wide").data
    assert_frame_equal(out, wide)
    owners = {id(_owner(out[c].to_numpy())) for c in out.columns}
    assert len(owners) == 1 and type(_owner(out["c0"].to_numpy())).__name__ == "OwnedBlock"
    out.iloc[3, 5] = 1e9  # writable, and only this frame changes
    assert out.iloc[3, 5] == 1e9
    assert_frame_equal(lib.read("wide").data, wide)
    assert_frame_equal(lib.read("wide", row_range=(10, 20)).data, wide.iloc[10:20])
    assert_frame_equal(lib.read("wide", columns=["c7", "c3"]).data, wide[["c7", "c3"]])
    for name, frame in {
        "leading": wide.iloc[:, :5].assign(s=["a", "b", "c"] * 100, flag=True),
        "trailing": wide.iloc[:, :5].assign(s=["a", "b", "c"] * 100)[["s", "c0", "c1", "c2"]],
        "interleaved": wide.iloc[:, :4].assign(s=["a", "b", "c"] * 100)[["c0", "s", "c1", "c2", "c3"]],
        "two types": wide.iloc[:, :3].assign(i=np.arange(300), j=np.arange(300) * 2),
        "range index": wide.iloc[:, :3].reset_index(drop=True),
    }.items():
        lib.write(name.replace(" ", "_"), frame)
        assert_frame_equal(lib.read(name.replace(" ", "_")).data, frame, obj=name)


def test_object_columns_convert_in_chunks_with_one_type(lib, monkeypatch):
    """Columns needing pyarrow's pandas conversion go over in chunks of CONVERT_CHUNK_ROWS rows (to bound
    the builder's memory); the chunks keep one type, and a column whose chunks would infer different
    types (the first all None) is converted whole."""
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 4)
    n = 10
    df = pd.DataFrame(
        {
            "s": [f"v{i % 3}" for i in range(n)],
            "late": np.array([None] * 6 + ["x", None, "y", "z"], dtype=object),
            "cat": pd.Categorical([["a", "b"][i % 2] for i in range(n)], categories=["a", "b", "c"]),
            "f": np.arange(n, dtype=np.float64),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="s", name="ts"),
    )
    table = _convert.normalize(df).table
    assert table.column("s").num_chunks == 3
    assert pa.types.is_string(table.column("late").type) or pa.types.is_large_string(table.column("late").type)
    lib.write("chunked", df)
    assert_frame_equal(lib.read("chunked").data, df)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1001, 200_000])
def test_numpy_bools_are_packed_as_pyarrow_packs_them(n: int) -> None:
    values = np.random.default_rng(n).integers(0, 2, n).astype(bool)
    for view in (values, values[::3], values[::-1]):
        got = _convert._bools(view)
        got.validate(full=True)
        assert got.type == pa.bool_() and got.equals(pa.array(view))
