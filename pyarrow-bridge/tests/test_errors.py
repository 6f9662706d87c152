"""One exception hierarchy; messages name the symbol and the problem; bad input raises before
anything is written."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import floe
from conftest import ts_frame


def test_hierarchy():
    for cls in [
        floe.NotFound,
        floe.SymbolNotFound,
        floe.VersionNotFound,
        floe.SnapshotNotFound,
        floe.LibraryNotFound,
        floe.InvalidInput,
        floe.SchemaMismatch,
        floe.UnsortedIndex,
        floe.InvalidConfig,
        floe.AlreadyExists,
        floe.CommitConflict,
        floe.CorruptData,
        floe.StorageError,
        floe.InternalError,
    ]:
        assert issubclass(cls, floe.FloeError)
    assert issubclass(floe.SymbolNotFound, LookupError) and issubclass(floe.SymbolNotFound, floe.NotFound)
    assert issubclass(floe.UnsortedIndex, ValueError) and issubclass(floe.SchemaMismatch, floe.InvalidInput)
    assert issubclass(floe.StorageError, OSError)


BAD_INPUTS = {
    "mixed object column": pd.DataFrame({"x": [1, "two", 3.0]}),
    "duplicate column names": pd.DataFrame([[1, 2]], columns=["a", "a"]),
    "timedelta": pd.DataFrame({"d": pd.to_timedelta([1, 2], unit="s")}),
    "float16": pd.DataFrame({"h": np.array([1, 2], dtype=np.float16)}),
    "dates": pd.DataFrame({"d": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]}),
    "all None": pd.DataFrame({"n": [None, None]}),
    "list column": pd.DataFrame({"l": [[1], [2, 3]]}),
    "unsorted index": pd.DataFrame({"x": [1, 2]}, index=pd.to_datetime(["2024-01-02", "2024-01-01"])),
    "NaT in index": pd.DataFrame({"x": [1, 2]}, index=pd.to_datetime(["2024-01-01", None])),
    "int categories": pd.DataFrame({"c": pd.Categorical([1, 2, 1])}),
    "MultiIndex columns": pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "b"), ("a", "c")])),
    "tuple column name": pd.DataFrame({("a", 1): [1]}),
    "not a frame": [1, 2, 3],
    "arrow decimal": pa.table({"d": pa.array([1, 2], pa.decimal128(5, 2))}),
    "arrow duplicate names": pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_before_writing(lib, case):
    data = BAD_INPUTS[case]
    lib.write("sym", ts_frame(3))
    for call in (
        lambda: lib.write("sym", data),
        lambda: lib.write("other", data),
        lambda: lib.append("sym", data),
    ):
        with pytest.raises(floe.InvalidInput) as e:
            call()
        assert str(e.value), case
    assert lib.list_symbols() == ["sym"]
    assert [v.version for v in lib.list_versions("sym")] == [0]


def test_unsorted_index_is_its_own_class(lib):
    with pytest.raises(floe.UnsortedIndex, match="not sorted"):
        lib.write("u", BAD_INPUTS["unsorted index"])


@pytest.mark.parametrize("symbol", ["", "a\x00b", "tab\there", ".", "..", "x" * 256])
def test_bad_symbol_names(lib, symbol):
    with pytest.raises(floe.InvalidInput, match="symbol"):
        lib.write(symbol, ts_frame(2))
    assert lib.list_symbols() == []


def test_bad_library_names(store):
    for name in ["", "bad\nname", ".."]:
        with pytest.raises(floe.InvalidInput):
            store.create_library(name)


def test_unpicklable_metadata_raises_before_writing(lib):
    with pytest.raises(floe.InvalidInput, match="pickle"):
        lib.write("s", ts_frame(2), metadata=threading.Lock())
    assert lib.list_symbols() == []


def test_messages_name_the_symbol(lib):
    lib.write("prices", ts_frame(5))
    with pytest.raises(floe.SymbolNotFound, match='"nothere"'):
        lib.read("nothere")
    with pytest.raises(floe.VersionNotFound, match='"prices"'):
        lib.read("prices", as_of=5)
    with pytest.raises(floe.SchemaMismatch, match='"prices".*price'):
        lib.append("prices", ts_frame(2, start="2031-01-01").drop(columns=["price"]))
    with pytest.raises(floe.InvalidInput, match='"prices"'):
        lib.read("prices", date_range=(1, 2), columns=["zzz"])
