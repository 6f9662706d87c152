"""Data round-trips exactly: every dtype (with nulls), time zones, empty and wide frames, unicode
symbols, index kinds, Series, and pandas / pyarrow / polars in and out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import floe
from conftest import assert_frame_equal, ts_frame, unique


def every_dtype_frame(n: int = 9) -> pd.DataFrame:
    """One column per storable dtype; every nullable one has nulls."""
    rng = np.random.default_rng(7)
    cols: dict = {}
    for t in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]:
        info = np.iinfo(t)
        v = rng.integers(0, 100, n).astype(t)
        v[0], v[-1] = info.min, info.max  # extremes survive
        cols[t] = v
        nullable = pd.array(v, dtype=t.capitalize().replace("Ui", "UI"))
        nullable[2] = pd.NA
        cols[f"{t}_nullable"] = nullable
    for t in ["float32", "float64"]:
        v = rng.normal(size=n).astype(t)
        v[1] = np.nan
        v[2] = np.inf
        cols[t] = v
    cols["Float64_nullable"] = pd.array([1.5, None] + [0.25] * (n - 2), dtype="Float64")
    cols["bool"] = rng.integers(0, 2, n).astype(bool)
    cols["boolean_nullable"] = pd.array([True, None, False] + [True] * (n - 3), dtype="boolean")
    cols["str"] = pd.array(["a", None, "ünïcödé 📈", ""] + [f"s{i}" for i in range(n - 4)], dtype="str")
    cols["object_str"] = pd.Series(["x", None, "y"] + ["z"] * (n - 3), dtype=object)
    cols["bytes"] = pd.Series([b"\x00\x01", None, b""] + [b"b"] * (n - 3), dtype=object)
    cols["category"] = pd.Categorical(["lo", "hi", None] + ["lo"] * (n - 3), categories=["lo", "hi"])
    dt = pd.Series(pd.date_range("2000-01-01", periods=n, freq="37min", unit="ns"))
    dt[3] = pd.NaT
    cols["datetime"] = dt.to_numpy()
    cols["datetime_tz"] = pd.Series(pd.date_range("2020-03-08", periods=n, freq="1h", tz="America/New_York", unit="ns")).where(lambda s: s.index != 4)
    cols["datetime_us"] = pd.Series(pd.date_range("1900-01-01", periods=n, freq="1D", unit="us"))
    return pd.DataFrame(cols)


def test_every_dtype_with_nulls_round_trips(lib):
    df = every_dtype_frame()
    lib.write("all", df)
    assert_frame_equal(lib.read("all").data, df)
    # And with a timestamp index in another time zone.
    df.index = pd.date_range("2024-01-01", periods=len(df), freq="1s", tz="Asia/Tokyo", name="when", unit="ns")
    lib.write("all_ts", df)
    out = lib.read("all_ts").data
    assert_frame_equal(out, df)
    assert str(out.index.tz) == "Asia/Tokyo"


def test_every_dtype_across_segments(small_lib):
    df = every_dtype_frame(50)
    small_lib.write("s", df)
    assert_frame_equal(small_lib.read("s").data, df)
    assert_frame_equal(small_lib.read("s", row_range=(5, 23)).data, df.iloc[5:23])


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/London", "America/New_York"])
def test_time_zones(lib, tz):
    df = ts_frame(30, tz=tz)
    df["other_tz"] = pd.date_range("2024-06-01", periods=30, freq="1D", tz="Australia/Sydney", unit="ns")
    lib.write("tz", df)
    out = lib.read("tz").data
    assert_frame_equal(out, df)
    sub = lib.read("tz", date_range=(df.index[3], df.index[10])).data
    assert_frame_equal(sub, df.iloc[3:11])


def test_empty_frames(lib):
    # pandas < 3 reads dtype "str" as object, and an empty object column has no type to store
    # (refused): there, the empty string column is "string" and ts_frame goes without its one.
    pandas3 = int(pd.__version__.split(".")[0]) >= 3
    string = "str" if pandas3 else "string"
    frame = ts_frame if pandas3 else lambda n: ts_frame(n).drop(columns="venue")
    empty_range = pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype=string)})
    lib.write("empty_range", empty_range)
    assert_frame_equal(lib.read("empty_range").data, empty_range)

    empty_ts = frame(0)
    lib.write("empty_ts", empty_ts)
    assert_frame_equal(lib.read("empty_ts").data, empty_ts)
    # Appending to an empty symbol gives the appended rows.
    more = frame(5)
    lib.append("empty_ts", more)
    assert_frame_equal(lib.read("empty_ts").data, more)

    nothing = pd.DataFrame()
    lib.write("nothing", nothing)
    assert_frame_equal(lib.read("nothing").data, nothing, check_column_type=False, check_index_type=False)

    index_only = pd.DataFrame(index=pd.date_range("2024-01-01", periods=4, name="t", unit="ns"))
    lib.write("index_only", index_only)
    assert_frame_equal(lib.read("index_only").data, index_only, check_column_type=False)


def test_wide_frame_1000_columns(lib):
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(40, 1000)), columns=[f"c{i:04d}" for i in range(1000)])
    df.index = pd.date_range("2024-01-01", periods=40, freq="1min", name="t", unit="ns")
    lib.write("wide", df)
    assert_frame_equal(lib.read("wide").data, df)
    cols = ["c0999", "c0000", "c0500"]
    assert_frame_equal(lib.read("wide", columns=cols).data, df[cols])
    d = lib.get_description("wide")
    assert len(d.columns) == 1000 and d.segment_count == 8  # 1000 / 127 column groups


@pytest.mark.parametrize("symbol", ["日本語/シンボル", "emoji 📈 prices", "äöü-ß", "space and * < > | ?"])
def test_unicode_symbols(lib, symbol):
    df = ts_frame(5)
    lib.write(symbol, df, metadata={"name": symbol})
    assert symbol in lib.list_symbols()
    item = lib.read(symbol)
    assert item.symbol == symbol and item.metadata == {"name": symbol}
    assert_frame_equal(item.data, df)


def test_index_kinds(lib):
    base = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    cases = {
        "range_named": base.set_axis(pd.RangeIndex(10, 18, 2, name="row"), axis=0),
        "string_index": base.set_axis(pd.Index(["a", "b", "c", "d"], name="key"), axis=0),
        "int_index": base.set_axis(pd.Index([5, 3, 9, 1]), axis=0),
        "dt_unnamed": base.set_axis(pd.date_range("2024-01-01", periods=4, unit="ns"), axis=0),
        "multi": base.set_axis(
            pd.MultiIndex.from_arrays(
                [pd.date_range("2024-01-01", periods=4, unit="ns"), ["a", "b", "a", "b"]], names=["date", "id"]
            ),
            axis=0,
        ),
        "int_columns": pd.DataFrame({0: [1, 2], 1: [3.5, 4.5]}),
        "index_named_like_column": pd.DataFrame({"index": [1, 2]}, index=pd.date_range("2024", periods=2, unit="ns")),
    }
    for name, df in cases.items():
        lib.write(name, df)
        assert_frame_equal(lib.read(name).data, df, obj=name)
    # Columns subsets keep index columns and non-string names.
    assert_frame_equal(lib.read("int_columns", columns=[1]).data, cases["int_columns"][[1]])
    assert_frame_equal(lib.read("string_index", columns=["x"]).data, cases["string_index"])
    # A RangeIndex continues where the rows came from.
    assert_frame_equal(lib.read("range_named", row_range=(1, 3)).data, cases["range_named"].iloc[1:3])
    assert_frame_equal(lib.tail("range_named", 2).data, cases["range_named"].iloc[-2:])
    assert_frame_equal(lib.read("range_named", row_range=(-3, -1)).data, cases["range_named"].iloc[-3:-1])


def test_series_round_trip(lib):
    s = pd.Series([1.5, None, 3.0], name="px", index=pd.date_range("2024-01-01", periods=3, name="t", unit="ns"))
    lib.write("series", s)
    pd.testing.assert_series_equal(lib.read("series").data, s, check_freq=False)
    unnamed = pd.Series(["a", "b"], dtype="str")
    lib.write("unnamed", unnamed)
    pd.testing.assert_series_equal(lib.read("unnamed").data, unnamed)


def test_pyarrow_in_and_out(lib):
    t = pa.table(
        {
            "ts": pa.array(pd.date_range("2024-01-01", periods=6, freq="1s", unit="ns")),
            "i": pa.array([1, None, 3, 4, 5, 6], pa.int32()),
            "s": pa.array(["a", "b", None, "d", "e", "f"], pa.large_string()),
            "d": pa.array(["x", "y", "x", None, "y", "x"]).dictionary_encode(),
        }
    )
    lib.write("pa", t, index_column="ts")
    out = lib.read("pa", output_format="pyarrow").data
    assert isinstance(out, pa.Table)
    assert out.equals(t)
    # Arrow input with a timestamp index reads as pandas with that index.
    df = lib.read("pa").data
    assert df.index.name == "ts" and list(df.columns) == ["i", "s", "d"]
    sub = lib.read("pa", date_range=(t["ts"][1].as_py(), t["ts"][3].as_py()), output_format="pyarrow").data
    assert sub.equals(t.slice(1, 3))
    # A RecordBatch, and a RecordBatchReader, are accepted too.
    batch = t.to_batches()[0]
    lib.write("batch", batch)
    assert lib.read("batch", output_format="pyarrow").data.equals(t)
    lib.write("reader", pa.RecordBatchReader.from_batches(t.schema, [batch]))
    assert lib.read("reader", output_format="pyarrow").data.equals(t)


def test_pyarrow_types_converted_without_loss(lib):
    t = pa.table(
        {
            "us": pa.array([1_000, 2_000, None], pa.timestamp("us", tz="UTC")),
            "view": pa.array(["a", None, "c"], pa.string_view()),
            "bview": pa.array([b"a", None, b"c"], pa.binary_view()),
            # A second column of a converted type: each distinct type is checked once (D51).
            "us2": pa.array([5, None, 7], pa.timestamp("us", tz="UTC")),
        }
    )
    lib.write("conv", t)
    out = lib.read("conv", output_format="pyarrow").data
    for c in ("us", "us2"):
        assert out.schema.field(c).type == pa.timestamp("ns", tz="UTC")
        assert out[c].cast(pa.timestamp("us", tz="UTC")).equals(t[c])
    assert out["view"].to_pylist() == ["a", None, "c"]
    assert out["bview"].to_pylist() == [b"a", None, b"c"]


def test_an_unstorable_type_is_named_by_its_first_column(lib):
    t = pa.table({"x": [1.0, 2.0], "d1": pa.array([1, 2], pa.date32()), "y": [3, 4], "d2": pa.array([3, 4], pa.date32())})
    with pytest.raises(floe.InvalidInput, match="column 'd1' has type date32"):
        lib.write("dates", t)
    assert not lib.has_symbol("dates")


class _Tagged(pa.ExtensionType):
    """A Python extension type: unhashable, like any subclass that does not define ``__hash__``."""

    def __init__(self):
        super().__init__(pa.int64(), "floe.test.tagged")

    def __arrow_ext_serialize__(self):
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls()


def test_an_extension_type_is_refused_by_name(lib):
    storage = pa.array([1, 2], pa.int64())
    t = pa.table({"x": [1.0, 2.0], "tag": pa.ExtensionArray.from_storage(_Tagged(), storage)})
    with pytest.raises(floe.InvalidInput, match="column 'tag' has type"):
        lib.write("tagged", t)
    assert not lib.has_symbol("tagged")


def test_polars_in_and_out(lib):
    df = pl.DataFrame(
        {
            "t": pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1, 0, 0, 9), "1s", eager=True, time_unit="ns"),
            "x": [1.0, None, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            "n": pl.Series([1, 2, None, 4, 5, 6, 7, 8, 9, 10], dtype=pl.Int16),
            "s": ["a", "b", "c", None, "e", "f", "g", "h", "i", "j"],
            "c": pl.Series(["u", "v"] * 5, dtype=pl.Categorical),
            "b": [True, False, None, True, False, True, False, True, False, True],
        }
    )
    lib.write("pl", df, index_column="t")
    out = lib.read("pl", output_format="polars").data
    assert isinstance(out, pl.DataFrame)
    assert out.select(pl.exclude("c")).equals(df.select(pl.exclude("c")))
    assert out["c"].cast(pl.String).to_list() == df["c"].cast(pl.String).to_list()
    # polars microsecond timestamps are stored as ns and read back equal.
    us = pl.DataFrame({"t": df["t"].dt.cast_time_unit("us"), "x": df["x"]})
    lib.write("pl_us", us, index_column="t")
    back = lib.read("pl_us", output_format="polars").data
    assert back["t"].dt.cast_time_unit("us").equals(us["t"]) and back["x"].equals(us["x"])


def test_polars_reads_take_coded_strings_as_views(store):
    # Strings stored dictionary-coded reach polars as string views gathered from the distinct values
    # (no row's string copied; D31): the same values and dtype as a plain read, nulls, long values and
    # segments with different dictionaries included, whole and as windows.
    lib = store.create_library(unique("views"), floe.LibraryOptions(rows_per_segment=20, columns_per_segment=3))
    n = 400
    df = pl.DataFrame(
        {
            "t": pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1, 0, 6, 39), "1s", eager=True, time_unit="ns"),
            "short": [None if i % 5 == 0 else f"s{(i // 40) * 2 + i % 2}" for i in range(n)],
            "long": [f"a value longer than twelve bytes, number {i % 3}" for i in range(n)],
            "unique": [f"u{i}" for i in range(n)],
        }
    )
    lib.write("v", df, index_column="t")
    raw = pa.table(lib._lib.read("v", (None, None, None, None), False, False, True)[0][1][2])
    assert [raw.schema.field(c).type for c in ("short", "long", "unique")] == [pa.string_view(), pa.string_view(), pa.large_string()]
    out = lib.read("v", output_format="polars").data
    assert out.schema == df.schema
    assert out.equals(df)
    assert lib.read("v", row_range=(3, 350), output_format="polars").data.equals(df[3:350])
    window = lib.read("v", date_range=(df["t"][10], df["t"][200]), columns=["short"], output_format="polars").data
    assert window.equals(df[10:201].select("t", "short"))
    # read_batch: per request, polars ones as views, the others as before; a bad format fails alone.
    batch = lib.read_batch(
        [floe.ReadRequest("v", output_format="polars"), floe.ReadRequest("v", output_format="pyarrow"), floe.ReadRequest("v", output_format="nope")]
    )
    assert batch[0].data.equals(df)
    assert batch[1].data.schema.field("short").type == pa.large_string()
    assert isinstance(batch[2], floe.DataError)


def test_pandas_in_polars_and_pyarrow_out(lib):
    df = ts_frame(10)
    lib.write("p", df)
    t = lib.read("p", output_format="pyarrow").data
    assert t.column_names == ["time", "price", "size", "venue"]
    assert t["price"].to_pylist() == df["price"].tolist()
    p = lib.read("p", output_format="polars").data
    assert p["size"].to_list() == df["size"].tolist()
    # Store-wide default output format.


def test_store_default_output_format(store_uri):
    s = floe.Store(store_uri, output_format="pyarrow")
    lib = s.create_library("fmt")
    lib.write("x", ts_frame(3))
    assert isinstance(lib.read("x").data, pa.Table)
    assert isinstance(lib.read("x", output_format="pandas").data, pd.DataFrame)


class StreamOnly:
    """An object that only speaks the Arrow PyCapsule stream protocol."""

    def __init__(self, table):
        self._t = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._t.__arrow_c_stream__(requested_schema)


class ArrayOnly:
    def __init__(self, batch):
        self._b = batch

    def __arrow_c_array__(self, requested_schema=None):
        return self._b.__arrow_c_array__(requested_schema)


def test_pycapsule_producers(lib):
    t = pa.table({"a": [1, 2, 3], "b": ["x", "y", None]})
    lib.write("stream", StreamOnly(t))
    assert lib.read("stream", output_format="pyarrow").data.equals(t)
    lib.write("array", ArrayOnly(t.to_batches()[0]))
    assert lib.read("array", output_format="pyarrow").data.equals(t)


def test_iter_batches(small_lib):
    df = ts_frame(30)
    small_lib.write("it", df)
    parts = list(small_lib.iter_batches("it"))
    assert len(parts) == 5 and all(len(p) <= 7 for p in parts)  # 30 rows / 7 per segment
    assert_frame_equal(pd.concat(parts), df)
    sub = list(small_lib.iter_batches("it", date_range=(df.index[4], df.index[20]), columns=["price"], output_format="pyarrow"))
    assert pa.concat_tables(sub).to_pandas().set_index("time").equals(df.iloc[4:21][["price"]])
    # RangeIndex offsets continue across batches.
    r = pd.DataFrame({"v": np.arange(20)})
    small_lib.write("r", r)
    assert_frame_equal(pd.concat(small_lib.iter_batches("r", row_range=(3, 18))), r.iloc[3:18])
