"""Dynamic schema through Python: appends may add columns (null for older rows) and widen types."""

from __future__ import annotations

import numpy as np
import pandas as pd

import floe

from conftest import unique


def test_append_adds_columns_and_widens(store):
    lib = store.create_library(unique("dyn"), floe.LibraryOptions(dynamic_schema=True))
    idx = pd.date_range("2024-01-01", periods=4, freq="s", name="ts")
    first = pd.DataFrame({"a": np.arange(4, dtype="int32"), "b": ["w", "x", "y", "z"]}, index=idx)
    lib.write("s", first)
    idx2 = pd.date_range("2024-01-01 00:00:10", periods=3, freq="s", name="ts")
    second = pd.DataFrame({"a": np.array([2**40, 5, 6], dtype="int64"), "c": [0.5, 1.5, 2.5]}, index=idx2)
    lib.append("s", second)
    out = lib.read("s", output_format="pyarrow").data
    assert {"a", "b", "c"} <= set(out.column_names)
    assert str(out.schema.field("a").type) == "int64"
    assert out.column("a").to_pylist() == [0, 1, 2, 3, 2**40, 5, 6]
    assert out.column("b").to_pylist() == ["w", "x", "y", "z", None, None, None]
    assert out.column("c").to_pylist() == [None] * 4 + [0.5, 1.5, 2.5]
