"""``Library.admin_tools()``: objects and bytes by kind and by symbol, as ArcticDB's AdminTools gives
them, counting everything stored (what a delete left for vacuum too)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import floe
from floe import KeyType, Size
from conftest import ts_frame


def test_sizes_by_kind_and_by_symbol(lib):
    tools = lib.admin_tools()
    empty = tools.get_sizes()
    assert set(empty) == set(KeyType) and all(isinstance(s, Size) for s in empty.values())
    assert all(s == Size(0, 0) for k, s in empty.items() if k is not KeyType.LIBRARY_CONFIG)
    assert tools.get_sizes_by_symbol() == {}

    lib.write("a", ts_frame(1000))
    lib.append("a", ts_frame(10, start="2030-01-01"))
    lib.write("b", pd.DataFrame({"x": np.arange(100.0)}))
    lib.snapshot("snap")
    sizes = tools.get_sizes()
    assert sizes[KeyType.VERSION_REF] == Size(sizes[KeyType.VERSION_REF].bytes_compressed, 2)
    assert sizes[KeyType.SNAPSHOT_REF].count == 1
    assert sizes[KeyType.TABLE_DATA].count >= 3 and sizes[KeyType.TABLE_INDEX].count >= 3
    by_symbol = tools.get_sizes_by_symbol()
    assert list(by_symbol) == ["a", "b"]
    a = tools.get_sizes_for_symbol("a")
    assert a == by_symbol["a"]
    assert set(a) == {KeyType.TABLE_DATA, KeyType.TABLE_INDEX, KeyType.VERSION, KeyType.VERSION_REF, KeyType.STAGED_INDEX}
    assert a[KeyType.VERSION_REF].count == 1 and a[KeyType.TABLE_DATA].bytes_compressed > 0
    for kind in a:  # the symbols' shares add up to the library's
        total = sizes[kind]
        assert Size(*(x + y for x, y in zip(a[kind], by_symbol["b"][kind]))) == total, kind
    assert tools.get_sizes_for_symbol("nothing") == {k: Size(0, 0) for k in a}

    # A delete leaves the objects a snapshot keeps: they still count, under the deleted symbol.
    lib.delete("a")
    assert "a" not in lib.list_symbols()
    assert tools.get_sizes_for_symbol("a")[KeyType.TABLE_DATA] == a[KeyType.TABLE_DATA]


def test_staged_chunks_count_as_staged_index(lib):
    tools = lib.admin_tools()
    lib.stage("s", ts_frame(50))
    staged = tools.get_sizes_for_symbol("s")
    assert staged[KeyType.STAGED_INDEX].count == 1 and staged[KeyType.VERSION_REF].count == 0
    lib.finalize_staged_data("s")
    done = tools.get_sizes_for_symbol("s")
    assert done[KeyType.STAGED_INDEX].count == 0 and done[KeyType.VERSION_REF].count == 1


def test_a_bad_symbol_name_is_invalid_input(lib):
    with pytest.raises(floe.InvalidInput):
        lib.admin_tools().get_sizes_for_symbol("")
