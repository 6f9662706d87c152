"""Staged writes (ArcticDB's stage / finalize_staged_data / delete_staged_data / get_staged_symbols):
chunks written by several writers, invisible until one call commits them as a version."""

from __future__ import annotations

import threading

import pandas as pd
import pyarrow as pa
import pytest

import floe
from conftest import assert_frame_equal, ts_frame


def chunks_of(df: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    size = -(-len(df) // n)
    return [df.iloc[i : i + size] for i in range(0, len(df), size)]


def test_chunks_staged_out_of_order_finalize_in_index_order(lib):
    df = ts_frame(100)
    parts = chunks_of(df, 4)
    results = [lib.stage("s", p) for p in reversed(parts)]
    assert [r.rows for r in results] == [len(p) for p in reversed(parts)]
    assert results[-1].date_range == (parts[0].index[0].tz_localize("UTC"), parts[0].index[-1].tz_localize("UTC"))
    assert not lib.has_symbol("s")
    assert lib.get_staged_symbols() == ["s"]
    assert len(lib.list_staged_data("s")) == 4
    item = lib.finalize_staged_data("s", metadata={"source": "staged"})
    assert item.version == 0
    got = lib.read("s")
    assert_frame_equal(got.data, df)
    assert got.metadata == {"source": "staged"}
    assert lib.get_staged_symbols() == []
    with pytest.raises(floe.NotFound):
        lib.finalize_staged_data("s")


def test_parallel_writers_stage_then_one_appends(lib):
    df = ts_frame(200)
    lib.write("s", df.iloc[:50])
    parts = chunks_of(df.iloc[50:], 6)
    errors = []

    def writer(p):
        try:
            lib.stage("s", p)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    item = lib.finalize_staged_data("s", floe.StagedDataFinalizeMethod.APPEND, prune_previous_versions=True)
    assert item.version == 1
    assert_frame_equal(lib.read("s").data, df)
    assert [v.version for v in lib.list_versions("s")] == [1]


def test_finalizing_chosen_chunks_and_deleting_the_rest(lib):
    df = ts_frame(30)
    a = lib.stage("s", df.iloc[:10])
    b = lib.stage("s", df.iloc[10:20])
    c = lib.stage("s", df.iloc[20:], sort_on_index=True)
    lib.finalize_staged_data("s", "write", stage_results=[a, b])
    assert_frame_equal(lib.read("s").data, df.iloc[:20])
    assert [r.token for r in lib.list_staged_data("s")] == [c.token]
    lib.delete_staged_data("s")
    assert lib.get_staged_symbols() == []
    with pytest.raises(floe.InvalidInput, match="stage_results"):
        lib.finalize_staged_data("s", stage_results=["not a result"])
    with pytest.raises(floe.InvalidInput, match="symbol"):
        lib.finalize_staged_data("s", stage_results=[lib.stage("t", df.iloc[:3])])


def test_overlapping_or_mismatched_chunks_commit_nothing(lib):
    df = ts_frame(20)
    lib.stage("s", df.iloc[:12])
    lib.stage("s", df.iloc[8:])
    with pytest.raises(floe.UnsortedIndex, match="overlap"):
        lib.finalize_staged_data("s")
    assert not lib.has_symbol("s")
    assert len(lib.list_staged_data("s")) == 2, "kept after the failure"
    with pytest.raises(floe.UnsortedIndex):
        lib.finalize_staged_data("s", delete_staged_data_on_failure=True)
    assert lib.list_staged_data("s") == []
    lib.stage("s", df.iloc[:5])
    lib.stage("s", df.iloc[5:10][["price", "size"]])
    with pytest.raises(floe.SchemaMismatch):
        lib.finalize_staged_data("s")
    lib.delete_staged_data("s")
    # Appending chunks that start before the symbol's end.
    lib.write("s", df.iloc[10:])
    lib.stage("s", df.iloc[:5])
    with pytest.raises(floe.UnsortedIndex, match="before"):
        lib.finalize_staged_data("s", "append")
    assert lib.read("s").version == 0


def test_stage_needs_a_sorted_timestamp_index(lib):
    unsorted = ts_frame(10).iloc[::-1]
    with pytest.raises(floe.UnsortedIndex):
        lib.stage("s", unsorted)
    result = lib.stage("s", unsorted, sort_on_index=True)
    assert result.rows == 10
    lib.finalize_staged_data("s")
    assert_frame_equal(lib.read("s").data, ts_frame(10))
    with pytest.raises(floe.InvalidInput, match="timestamp"):
        lib.stage("r", pd.DataFrame({"x": [1, 2, 3]}))
    with pytest.raises(floe.InvalidInput, match="sort_columns"):
        lib.stage("s", ts_frame(3), sort_columns=["price"])
    with pytest.raises(floe.InvalidInput, match="mode"):
        lib.finalize_staged_data("s", mode="merge")


def test_arrow_input_stages_too(lib):
    df = ts_frame(12)
    table = pa.Table.from_pandas(df.reset_index(), preserve_index=False)
    lib.stage("s", table.slice(6), index_column="time")
    lib.stage("s", table.slice(0, 6), index_column="time")
    lib.finalize_staged_data("s")
    assert lib.read("s", output_format="pyarrow").data.num_rows == 12


def test_sort_and_finalize_merges_overlapping_chunks(lib):
    df = ts_frame(40)
    lib.stage("s", df.iloc[1::2])
    lib.stage("s", df.iloc[0::2])
    with pytest.raises(floe.UnsortedIndex, match="overlap"):
        lib.finalize_staged_data("s")
    item = lib.sort_and_finalize_staged_data("s", metadata="sorted")
    assert item.version == 0
    got = lib.read("s")
    assert_frame_equal(got.data, df)
    assert got.metadata == "sorted"
    assert lib.get_staged_symbols() == []
    more = ts_frame(10, start="2030-01-01")
    lib.stage("s", more.iloc[5:])
    lib.stage("s", more.iloc[:5])
    lib.sort_and_finalize_staged_data("s", floe.StagedDataFinalizeMethod.APPEND)
    assert_frame_equal(lib.read("s").data, pd.concat([df, more]))
