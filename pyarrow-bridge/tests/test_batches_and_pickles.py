"""ArcticDB's remaining batch methods (update_batch, write_metadata_batch, delete_batch,
get_description_batch) and pickled objects (write_pickle, write_pickle_batch)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import floe
from conftest import assert_frame_equal, ts_frame


def test_update_batch_updates_each_symbol_or_reports_its_error(lib):
    base = ts_frame(10)
    for s in ("a", "b", "c"):
        lib.write(s, base)
    patch = ts_frame(3, start="2024-01-01 02:00", seed=1)
    out = lib.update_batch(
        [
            floe.UpdatePayload("a", patch, metadata={"m": 1}),
            floe.UpdatePayload("b", patch, date_range=(base.index[1], base.index[6])),
            floe.UpdatePayload("missing", patch),
            ("c", pd.DataFrame({"x": [1, "mixed"]}, index=pd.date_range("2024", periods=2, name="time"))),
        ]
    )
    assert [type(o).__name__ for o in out] == ["VersionedItem", "VersionedItem", "DataError", "DataError"]
    assert out[0].symbol == "a" and out[0].version == 1
    assert out[2].error_code == "SymbolNotFound" and isinstance(out[2].exception, floe.SymbolNotFound)
    assert out[3].error_category == "InvalidInput"
    want_a = pd.concat([base.iloc[:2], patch, base.iloc[5:]])
    assert_frame_equal(lib.read("a").data, want_a)
    assert lib.read("a").metadata == {"m": 1}
    want_b = pd.concat([base.iloc[:1], patch, base.iloc[7:]])
    assert_frame_equal(lib.read("b").data, want_b)
    assert lib.list_symbols() == ["a", "b", "c"]
    assert lib.read("c").version == 0
    # upsert creates the missing symbols.
    out = lib.update_batch([floe.UpdatePayload("new", patch)], upsert=True)
    assert isinstance(out[0], floe.VersionedItem)
    assert_frame_equal(lib.read("new").data, patch)
    with pytest.raises(floe.InvalidInput, match="more than once"):
        lib.update_batch([floe.UpdatePayload("a", patch), floe.UpdatePayload("a", patch)])
    with pytest.raises(floe.InvalidInput, match="UpdatePayload"):
        lib.update_batch([("a",)])
    assert lib.read("a").version == 1, "a refused batch writes nothing"


def test_update_batch_runs_many_symbols(lib):
    symbols = [f"s{i}" for i in range(20)]
    base = ts_frame(30)
    for s in symbols:
        lib.write(s, base)
    patch = ts_frame(5, start="2024-01-01 10:00", seed=3)
    out = lib.update_batch([floe.UpdatePayload(s, patch) for s in symbols], prune_previous_versions=True)
    assert [o.symbol for o in out] == symbols and all(isinstance(o, floe.VersionedItem) for o in out)
    want = pd.concat([base.iloc[:10], patch, base.iloc[15:]])
    for s in symbols:
        assert_frame_equal(lib.read(s).data, want)
        assert [v.version for v in lib.list_versions(s)] == [1]


def test_write_metadata_batch(lib):
    df = ts_frame(5)
    lib.write("a", df, metadata="old")
    out = lib.write_metadata_batch([floe.WriteMetadataPayload("a", {"new": True}), ("missing", 1)])
    assert isinstance(out[0], floe.VersionedItem) and out[0].version == 1
    assert isinstance(out[1], floe.DataError) and out[1].error_code == "SymbolNotFound"
    item = lib.read("a")
    assert item.metadata == {"new": True}
    assert_frame_equal(item.data, df)
    assert lib.read("a", as_of=0).metadata == "old"


def test_delete_batch(lib):
    df = ts_frame(5)
    for s in ("a", "b", "c"):
        lib.write(s, df)
        lib.write(s, df.iloc[:2])
    out = lib.delete_batch(["a", floe.DeleteRequest("b", [0]), floe.DeleteRequest("missing"), floe.DeleteRequest("c", 7)])
    assert out[0] is None and out[1] is None
    assert isinstance(out[2], floe.DataError) and out[2].error_category == "NotFound"
    assert isinstance(out[3], floe.DataError) and out[3].error_code == "VersionNotFound"
    assert lib.list_symbols() == ["b", "c"]
    assert [v.version for v in lib.list_versions("b")] == [1]
    assert [v.version for v in lib.list_versions("c")] == [1, 0]
    with pytest.raises(floe.InvalidInput, match="more than once"):
        lib.delete_batch(["b", "b"])


def test_get_description_batch(lib):
    lib.write("a", ts_frame(5))
    lib.write("a", ts_frame(7))
    out = lib.get_description_batch(["a", floe.ReadInfoRequest("a", as_of=0), "missing"])
    assert out[0].row_count == 7 and out[1].row_count == 5
    assert [c.name for c in out[0].columns] == ["price", "size", "venue"]
    assert isinstance(out[2], floe.DataError) and out[2].error_code == "SymbolNotFound"


class Point:
    """A user type that is no dataframe: what write_pickle is for."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


@pytest.mark.parametrize(
    "obj",
    [
        {"nested": [1, 2.5, "three", None], "when": dt.datetime(2024, 1, 2, 3, 4, 5)},
        Point(1, [2, 3]),
        np.arange(12).reshape(3, 4),
        b"\x00raw bytes\xff" * 1000,
        None,
    ],
    ids=["dict", "user-type", "ndarray", "bytes", "none"],
)
def test_write_pickle_round_trips_any_picklable_object(lib, obj):
    item = lib.write_pickle("p", obj, metadata={"kind": "blob"})
    assert item.version == 0
    for fmt in ("pandas", "pyarrow", "polars"):
        got = lib.read("p", output_format=fmt)
        assert got.metadata == {"kind": "blob"}
        if isinstance(obj, np.ndarray):
            np.testing.assert_array_equal(got.data, obj)
        else:
            assert got.data == obj
    batched = lib.read_batch(["p"])[0].data
    if isinstance(obj, np.ndarray):
        np.testing.assert_array_equal(batched, obj)
    else:
        assert batched == obj


def test_a_large_pickle_round_trips(lib):
    frame = pd.DataFrame({"a": np.arange(300_000), "b": ["x" * 20] * 300_000})  # ~10 MB pickled
    lib.write_pickle("big", {"frame": frame})
    assert_frame_equal(lib.read("big").data["frame"], frame)


def test_pickled_symbols_are_versioned_and_refuse_row_operations(lib):
    lib.write_pickle("p", [1, 2, 3])
    lib.write_pickle("p", {"v": 2})
    assert lib.read("p").data == {"v": 2}
    assert lib.read("p", as_of=0).data == [1, 2, 3]
    with pytest.raises(floe.InvalidInput, match="pickled object"):
        lib.append("p", ts_frame(3))
    with pytest.raises(floe.InvalidInput, match="pickled object"):
        lib.update("p", ts_frame(3))
    with pytest.raises(floe.InvalidInput, match="pickled object"):
        lib.read("p", row_range=(0, 0))
    out = lib.append_batch([floe.WritePayload("p", ts_frame(3))])
    assert isinstance(out[0], floe.DataError) and "pickled object" in out[0].exception_string
    assert lib.read("p").version == 1
    # A pickled symbol can become a frame again with write, and write_metadata keeps the object.
    lib.write_metadata("p", "meta")
    assert lib.read("p").data == {"v": 2} and lib.read("p").metadata == "meta"
    df = ts_frame(4)
    lib.write("p", df)
    assert_frame_equal(lib.read("p").data, df)


def test_write_pickle_refuses_what_cannot_be_pickled_and_writes_nothing(lib):
    with pytest.raises(floe.InvalidInput, match="cannot pickle"):
        lib.write_pickle("p", lambda: 1)
    assert not lib.has_symbol("p")
    with pytest.raises(floe.InvalidInput, match="write_pickle"):
        lib.write("p", object())


def test_write_pickle_batch(lib):
    out = lib.write_pickle_batch(
        [floe.WritePayload("a", {"a": 1}, metadata=1), floe.WritePayload("b", lambda: 0), floe.WritePayload("", 3), ("c", [3])]
    )
    assert [type(o).__name__ for o in out] == ["VersionedItem", "DataError", "DataError", "VersionedItem"]
    assert out[1].error_code == "InvalidInput"
    assert lib.read("a").data == {"a": 1} and lib.read("a").metadata == 1
    assert lib.read("c").data == [3]
    assert lib.list_symbols() == ["a", "c"]
    with pytest.raises(floe.InvalidInput, match="more than once"):
        lib.write_pickle_batch([("a", 1), ("a", 2)])
