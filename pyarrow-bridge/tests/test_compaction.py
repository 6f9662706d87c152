"""Compaction, as ArcticDB names it: ``is_symbol_fragmented``, ``defragment_symbol_data`` and
``compact_data`` rewrite the runs of small row slices appends left into full ones, as a new version
with the same rows and metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import floe
from floe.errors import InvalidInput, SymbolNotFound
from conftest import unique


@pytest.fixture
def lib4(store):
    """Slices of 4 rows: appends of 3 rows each stay their own slice (the tail merge never joins two)."""
    return store.create_library(unique("compact"), floe.LibraryOptions(rows_per_segment=4, columns_per_segment=10))


def frame(start: int, n: int) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=start + n, freq="s")[start:]
    return pd.DataFrame({"v": np.arange(start, start + n, dtype=np.int64), "s": [f"k{i % 3}" for i in range(start, start + n)]}, index=index)


def fragment(lib, appends: int) -> pd.DataFrame:
    lib.write("s", frame(0, 4), metadata={"m": 1})
    for a in range(appends):
        lib.append("s", frame(4 + 3 * a, 3), metadata={"m": 1})
    return lib.read("s").data


def test_a_fragmented_symbol_is_defragmented_into_full_slices(lib4) -> None:
    before = fragment(lib4, 150)  # 151 slices of 454 rows
    assert not lib4.is_symbol_fragmented("s"), "in 4-row slices: 151 -> 114 saves 37 of the 100 needed"
    assert lib4.is_symbol_fragmented("s", segment_size=400), "in 400-row slices: 151 -> 2"
    latest = lib4.read("s").version
    item = lib4.defragment_symbol_data("s", segment_size=400)
    assert item.version == latest + 1
    pd.testing.assert_frame_equal(lib4.read("s").data, before)
    assert lib4.read_metadata("s").metadata == {"m": 1}
    assert not lib4.is_symbol_fragmented("s", segment_size=400)
    with pytest.raises(InvalidInput, match="not fragmented"):
        lib4.defragment_symbol_data("s", segment_size=400)
    assert lib4.read("s").version == item.version, "nothing written by the refusal"
    # Older versions stay readable until pruned.
    pd.testing.assert_frame_equal(lib4.read("s", as_of=latest).data, before)
    lib4.compact_data("s", prune_previous_versions=True)
    assert [v.version for v in lib4.list_versions("s")] == [item.version]
    pd.testing.assert_frame_equal(lib4.read("s").data, before)


def test_compact_data_merges_below_the_threshold_and_is_a_no_op_when_compact(lib4) -> None:
    before = fragment(lib4, 10)
    assert not lib4.is_symbol_fragmented("s"), "10 slices to 8 saves 2 of the 100 needed"
    v = lib4.compact_data("s").version
    pd.testing.assert_frame_equal(lib4.read("s").data, before)
    assert lib4.compact_data("s").version == v, "nothing left to merge: no new version"
    assert lib4.is_symbol_fragmented("s", segment_size=4) is False


def test_explain_plan_says_what_compact_data_does(lib4) -> None:
    before = fragment(lib4, 10)  # slices of 4 then ten of 3 rows: 34 rows
    latest = lib4.read("s").version
    plan = lib4.compact_data_explain_plan("s")
    assert isinstance(plan, floe.CompactDataInfo) and plan.will_do_work
    assert plan.row_slices_before == [4] + [3] * 10 and plan.num_row_slices_before == 11
    assert plan.row_slices_after == [4] * 8 + [2] and plan.num_row_slices_after == 9
    assert (plan.version_id_before, plan.version_id_after) == (latest, latest + 1)
    assert lib4.read("s").version == latest, "a dry run writes nothing"
    assert lib4.compact_data_explain_plan("s", rows_per_segment=30).row_slices_after == [30, 4]
    item = lib4.compact_data("s")
    assert item.version == plan.version_id_after
    pd.testing.assert_frame_equal(lib4.read("s").data, before)
    done = lib4.compact_data_explain_plan("s")
    assert done.row_slices_before == plan.row_slices_after == done.row_slices_after
    assert not done.will_do_work and done.version_id_after == done.version_id_before == item.version
    with pytest.raises(InvalidInput):
        lib4.compact_data_explain_plan("s", rows_per_segment=0)
    with pytest.raises(SymbolNotFound):
        lib4.compact_data_explain_plan("nope")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4"])
def test_bad_segment_sizes_are_refused(lib4, bad) -> None:
    fragment(lib4, 2)
    with pytest.raises(InvalidInput):
        lib4.compact_data("s", rows_per_segment=bad)
    with pytest.raises(InvalidInput):
        lib4.is_symbol_fragmented("s", segment_size=bad)


def test_a_missing_symbol_is_symbol_not_found(lib4) -> None:
    with pytest.raises(SymbolNotFound):
        lib4.is_symbol_fragmented("nope")
    with pytest.raises(SymbolNotFound):
        lib4.compact_data("nope")
