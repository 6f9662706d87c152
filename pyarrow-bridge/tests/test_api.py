"""Every method of floe.Store and floe.Library, with ArcticDB's semantics."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import pyarrow as pa

import floe
from conftest import assert_frame_equal, ts_frame


# ----- Store --------------------------------------------------------------------------------------


def test_store_library_management(store):
    assert store.list_libraries() == []
    lib = store.create_library("a", floe.LibraryOptions(rows_per_segment=1000, columns_per_segment=10))
    assert lib.name == "a"
    assert lib.options() == floe.LibraryOptions(1000, 10, False)
    with pytest.raises(floe.AlreadyExists, match='"a"'):
        store.create_library("a")
    with pytest.raises(floe.LibraryNotFound):
        store.get_library("b")
    with pytest.raises(floe.LibraryNotFound):
        store["b"]
    b = store.get_library("b", create_if_missing=True)
    assert store.has_library("b") and "b" in store and "c" not in store
    assert store.list_libraries() == ["a", "b"]
    assert store["a"].options().rows_per_segment == 1000  # options are persisted
    b.write("x", ts_frame(3))
    store.delete_library("b")
    assert store.list_libraries() == ["a"]
    store.delete_library("never-existed")
    assert repr(store).startswith("Store(") and "secret" not in store.get_uri()


def test_bad_uri_and_options():
    with pytest.raises(floe.InvalidConfig):
        floe.Store("nosuch://x")
    with pytest.raises(floe.InvalidConfig):
        floe.Store("s3://:bucket")
    with pytest.raises(floe.InvalidInput):
        floe.Store("mem://").create_library("x", floe.LibraryOptions(rows_per_segment=0))
    with pytest.raises(floe.InvalidInput):
        floe.Store("mem://", output_format="excel")


def test_arctic_alias():
    assert floe.Arctic is floe.Store


# ----- writes and reads -------------------------------------------------------------------------


def test_write_read_versions_and_metadata(lib):
    v0 = ts_frame(10, seed=1)
    v1 = ts_frame(12, seed=2)
    w0 = lib.write("s", v0, metadata={"k": [1, 2, 3]})
    assert (w0.symbol, w0.library, w0.version, w0.data) == ("s", lib.name, 0, None)
    assert w0.metadata is None and isinstance(w0.timestamp, int)
    time.sleep(0.002)
    w1 = lib.write("s", v1, metadata=("tuple", 1.5))
    assert w1.version == 1 and w1.timestamp > w0.timestamp
    r = lib.read("s")
    assert r.version == 1 and r.metadata == ("tuple", 1.5)
    assert_frame_equal(r.data, v1)
    assert_frame_equal(lib.read("s", as_of=0).data, v0)
    assert lib.read("s", as_of=0).metadata == {"k": [1, 2, 3]}
    assert_frame_equal(lib.read("s", as_of=-2).data, v0)
    assert_frame_equal(lib.read("s", as_of=pd.Timestamp(w0.timestamp, unit="ns", tz="UTC")).data, v0)
    assert lib.read("s", as_of=pd.Timestamp(w1.timestamp, unit="ns", tz="UTC")).version == 1
    with pytest.raises(floe.VersionNotFound):
        lib.read("s", as_of=7)
    with pytest.raises(floe.VersionNotFound):
        lib.read("s", as_of=pd.Timestamp("2000-01-01", tz="UTC"))
    with pytest.raises(floe.SymbolNotFound, match='"missing"'):
        lib.read("missing")
    assert_frame_equal(lib["s"].data, v1)
    assert "s" in lib and "missing" not in lib


def test_read_ranges_columns_head_tail(small_lib):
    lib = small_lib
    df = ts_frame(40)
    lib.write("s", df)
    assert_frame_equal(lib.read("s", date_range=(df.index[5], df.index[25])).data, df.iloc[5:26])
    assert_frame_equal(lib.read("s", date_range=(None, df.index[2])).data, df.iloc[:3])
    assert_frame_equal(lib.read("s", date_range=(df.index[37], None)).data, df.iloc[37:])
    # Strings and datetimes are accepted as bounds; naive is UTC.
    assert_frame_equal(lib.read("s", date_range=("2024-01-01 02:00", "2024-01-01 04:00")).data, df.iloc[2:5])
    assert_frame_equal(lib.read("s", row_range=(8, 30)).data, df.iloc[8:30])
    assert_frame_equal(lib.read("s", row_range=(-5, None)).data, df.iloc[-5:])
    assert_frame_equal(lib.read("s", columns=["venue", "price"]).data, df[["venue", "price"]])
    assert_frame_equal(lib.read("s", columns=[]).data, df[[]])
    assert_frame_equal(lib.head("s").data, df.head(5))
    assert_frame_equal(lib.head("s", 12, columns=["size"]).data, df.head(12)[["size"]])
    assert_frame_equal(lib.head("s", -35).data, df.head(-35))
    assert_frame_equal(lib.tail("s", 9).data, df.tail(9))
    assert_frame_equal(lib.tail("s", -33).data, df.tail(-33))
    with pytest.raises(floe.InvalidInput, match="nope"):
        lib.read("s", columns=["nope"])


def test_append(small_lib):
    lib = small_lib
    df = ts_frame(30)
    lib.write("s", df.iloc[:10])
    for lo, hi in [(10, 13), (13, 14), (14, 30)]:
        lib.append("s", df.iloc[lo:hi])
    assert_frame_equal(lib.read("s").data, df)
    assert lib.read("s").version == 3
    # Appending before the end is refused, and nothing is written.
    with pytest.raises(floe.UnsortedIndex, match='"s"'):
        lib.append("s", df.iloc[:2])
    with pytest.raises(floe.SchemaMismatch, match='"s"'):
        lib.append("s", df.iloc[:2].rename(columns={"price": "px"}))
    assert lib.read("s").version == 3
    # Append creates a missing symbol; RangeIndex frames continue their range.
    r = pd.DataFrame({"v": np.arange(5)})
    lib.append("r", r)
    lib.append("r", pd.DataFrame({"v": np.arange(5, 8)}, index=pd.RangeIndex(5, 8)))
    assert_frame_equal(lib.read("r").data, pd.DataFrame({"v": np.arange(8)}))
    lib.append("s", ts_frame(2, start="2030-01-01"), metadata="appended")
    assert lib.read_metadata("s").metadata == "appended"


def test_update(small_lib):
    lib = small_lib
    df = ts_frame(30)
    lib.write("s", df, metadata="m0")
    patch = ts_frame(5, start=str(df.index[10]), seed=9)
    lib.update("s", patch)
    expected = pd.concat([df.iloc[:10], patch, df.iloc[15:]])
    assert_frame_equal(lib.read("s").data, expected)
    assert lib.read("s").metadata == "m0"  # kept when not given
    # With a date range wider than the new rows, the rows in between are removed.
    lib.update("s", patch.iloc[:1], date_range=(df.index[10], df.index[20]), metadata="m2")
    expected2 = pd.concat([df.iloc[:10], patch.iloc[:1], df.iloc[21:]])
    assert_frame_equal(lib.read("s").data, expected2)
    assert lib.read("s").metadata == "m2"
    with pytest.raises(floe.SymbolNotFound):
        lib.update("new", patch)
    lib.update("new", patch, upsert=True)
    assert_frame_equal(lib.read("new").data, patch)
    with pytest.raises(floe.InvalidInput):
        lib.write("rows", pd.DataFrame({"v": [1, 2]}))
        lib.update("rows", pd.DataFrame({"v": [1, 2]}))


def test_delete_data_in_range(small_lib):
    lib = small_lib
    df = ts_frame(30)
    lib.write("s", df, metadata={"keep": True})
    v = lib.delete_data_in_range("s", (df.index[3], df.index[17]))
    assert v.version == 1
    assert_frame_equal(lib.read("s").data, pd.concat([df.iloc[:3], df.iloc[18:]]))
    assert lib.read("s").metadata == {"keep": True}
    assert_frame_equal(lib.read("s", as_of=0).data, df)
    lib.delete_data_in_range("s", (None, df.index[25]), prune_previous_versions=True)
    assert_frame_equal(lib.read("s").data, df.iloc[26:])
    assert [k.version for k in lib.list_versions("s")] == [2]


def test_write_and_read_metadata(lib):
    df = ts_frame(5)
    lib.write("s", df, metadata=1)
    w = lib.write_metadata("s", {"new": "meta"})
    assert w.version == 1
    r = lib.read_metadata("s")
    assert (r.version, r.metadata, r.data) == (1, {"new": "meta"}, None)
    assert lib.read_metadata("s", as_of=0).metadata == 1
    assert_frame_equal(lib.read("s").data, df)  # data and index unchanged
    lib.write_metadata("s", None, prune_previous_versions=True)
    assert lib.read_metadata("s").metadata is None
    assert len(lib.list_versions("s")) == 1
    with pytest.raises(floe.SymbolNotFound):
        lib.write_metadata("missing", 1)
    out = lib.read_metadata_batch(["s", "missing"])
    assert out[0].version == 2 and isinstance(out[1], floe.DataError)


def test_get_description(lib):
    df = ts_frame(12, tz="UTC")
    w = lib.write("s", df)
    d = lib.get_description("s")
    assert [c.name for c in d.columns] == ["price", "size", "venue"]
    assert d.index[0].name == "time" and d.index_type == "index"
    assert d.row_count == 12 and d.sorted == "ASCENDING" and d.version == 0
    assert d.date_range == (df.index[0], df.index[-1])
    assert d.last_update_time == pd.Timestamp(w.timestamp, unit="ns", tz="UTC")
    lib.write("r", pd.DataFrame({0: [1, 2], "b": [1.0, 2.0]}))
    d = lib.get_description("r")
    assert d.index_type == "NA" and [c.name for c in d.columns] == [0, "b"]
    assert d.date_range == (pd.NaT, pd.NaT) or all(pd.isna(x) for x in d.date_range)


def test_verify_checks_every_object_of_a_version(small_lib):
    lib = small_lib
    # 7 rows a slice, 3 columns a segment (the fixture's options): 20 rows of 3 data columns.
    lib.write("s", ts_frame(20))
    v = lib.verify("s")
    assert isinstance(v, floe.Verification)
    assert (v.symbol, v.version) == ("s", 0)
    assert v.segments == lib.get_description("s").segment_count == 3
    sizes = lib.admin_tools().get_sizes_for_symbol("s")
    assert v.bytes == sizes[floe.KeyType.TABLE_DATA].bytes_compressed + sizes[floe.KeyType.TABLE_INDEX].bytes_compressed
    lib.append("s", ts_frame(5, start="2030-01-01"))
    lib.snapshot("snap")
    lib.write("s", ts_frame(3), prune_previous_versions=False)
    assert lib.verify("s", as_of=0) == v == lib.verify("s", as_of=0, parallel=False)
    assert lib.verify("s", as_of="snap").version == lib.verify("s", as_of=1).version == 1
    assert lib.verify("s", as_of=1).segments == 4  # the append's slice added to v0's three
    assert lib.verify("s").version == 2
    with pytest.raises(floe.SymbolNotFound):
        lib.verify("missing")
    with pytest.raises(floe.VersionNotFound):
        lib.verify("s", as_of=7)
    lib.delete("s", versions=[0])
    with pytest.raises(floe.VersionNotFound):
        lib.verify("s", as_of=0)


# ----- symbols, versions, deletes, snapshots ---------------------------------------------------


def test_symbols_versions_and_deletes(lib):
    df = ts_frame(5)
    for s in ["b", "a", "c"]:
        lib.write(s, df)
    lib.write("a", df)
    lib.write("a", df)
    assert lib.list_symbols() == ["a", "b", "c"]
    assert lib.list_symbols(regex="^[ab]$") == ["a", "b"]
    assert lib.has_symbol("a") and not lib.has_symbol("zz")
    assert lib.has_symbol("a", as_of=1) and not lib.has_symbol("a", as_of=9)
    versions = lib.list_versions("a")
    assert list(versions) == [floe.SymbolVersion("a", 2), floe.SymbolVersion("a", 1), floe.SymbolVersion("a", 0)]
    info = versions[floe.SymbolVersion("a", 2)]
    assert info.deleted is False and info.snapshots == [] and info.date.tz is not None
    assert set(lib.list_versions()) >= {floe.SymbolVersion("b", 0), floe.SymbolVersion("c", 0)}
    assert sorted(lib.list_versions(latest_only=True)) == [
        floe.SymbolVersion("a", 2),
        floe.SymbolVersion("b", 0),
        floe.SymbolVersion("c", 0),
    ]
    lib.delete("a", versions=1)
    assert [k.version for k in lib.list_versions("a")] == [2, 0]
    lib.prune_previous_versions("a")
    assert [k.version for k in lib.list_versions("a")] == [2]
    with pytest.raises(floe.VersionNotFound):
        lib.read("a", as_of=0)
    lib.delete("c")
    assert lib.list_symbols() == ["a", "b"]
    # ArcticDB's symbol-list cache calls: Floe has no cache, so both are no-ops and the list stays right.
    assert lib.reload_symbol_list() is None and lib.compact_symbol_list() == 0
    assert lib.list_symbols() == ["a", "b"]
    with pytest.raises(floe.SymbolNotFound):
        lib.read("c")
    lib.write("w", df)
    lib.write("w", df, prune_previous_versions=True)
    assert [k.version for k in lib.list_versions("w")] == [1]
    w = lib.rename_symbol("w", "w2")
    assert w.symbol == "w2" and "w" not in lib.list_symbols()
    assert_frame_equal(lib.read("w2").data, df)
    with pytest.raises(floe.AlreadyExists):
        lib.rename_symbol("a", "b")


def test_snapshots(lib):
    df1, df2 = ts_frame(5, seed=1), ts_frame(6, seed=2)
    lib.write("x", df1)
    lib.write("y", df1)
    lib.write("z", df1)
    lib.snapshot("snap1", metadata={"why": "eod"})
    lib.write("x", df2)
    lib.snapshot("snap2", skip_symbols=["z"])
    lib.snapshot("snap3", versions={"x": 0})
    assert lib.list_snapshots() == {"snap1": {"why": "eod"}, "snap2": None, "snap3": None}
    assert lib.list_snapshots(load_metadata=False) == ["snap1", "snap2", "snap3"]
    assert lib.list_symbols(snapshot_name="snap2") == ["x", "y"]
    assert lib.list_symbols(snapshot_name="snap3") == ["x"]
    assert_frame_equal(lib.read("x", as_of="snap1").data, df1)
    assert_frame_equal(lib.read("x", as_of="snap2").data, df2)
    with pytest.raises(floe.AlreadyExists):
        lib.snapshot("snap1")
    with pytest.raises(floe.SnapshotNotFound):
        lib.read("z", as_of="snap2")
    with pytest.raises(floe.SnapshotNotFound):
        lib.read("x", as_of="nosnap")
    # A deleted version held by a snapshot stays readable through it and is listed as deleted.
    lib.delete("x", versions=[0])
    assert_frame_equal(lib.read("x", as_of="snap1").data, df1)
    info = lib.list_versions("x")[floe.SymbolVersion("x", 0)]
    assert info.deleted and sorted(info.snapshots) == ["snap1", "snap3"]
    assert list(lib.list_versions("x", snapshot="snap2")) == [floe.SymbolVersion("x", 1)]
    lib.delete_snapshot("snap1")
    lib.delete_snapshot("snap3")
    assert lib.list_snapshots(load_metadata=False) == ["snap2"]
    with pytest.raises(floe.SnapshotNotFound):
        lib.delete_snapshot("snap1")
    with pytest.raises(floe.VersionNotFound):
        lib.read("x", as_of=0)


# ----- batches ----------------------------------------------------------------------------------


def test_batches_report_per_item_errors(lib):
    df = ts_frame(8)
    out = lib.write_batch(
        [
            floe.WritePayload("a", df, metadata=1),
            floe.WritePayload("bad", pd.DataFrame({"x": [1, "mixed"]})),
            floe.WritePayload("", df),
            floe.WritePayload("b", df.iloc[:3]),
        ]
    )
    assert [type(o).__name__ for o in out] == ["VersionedItem", "DataError", "DataError", "VersionedItem"]
    assert out[1].symbol == "bad" and out[1].error_code == "InvalidInput"
    assert isinstance(out[1].exception, floe.InvalidInput)
    assert out[2].error_category == "InvalidInput"
    assert lib.list_symbols() == ["a", "b"]
    with pytest.raises(floe.InvalidInput, match="more than once"):
        lib.write_batch([floe.WritePayload("a", df), floe.WritePayload("a", df)])

    more = ts_frame(4, start="2030-01-01")
    out = lib.append_batch([floe.WritePayload("a", more), floe.WritePayload("b", df.iloc[:2]), floe.WritePayload("c", more)])
    assert isinstance(out[0], floe.VersionedItem) and out[0].version == 1
    assert isinstance(out[1], floe.DataError) and out[1].error_code == "UnsortedIndex"
    assert isinstance(out[2], floe.VersionedItem)  # append creates the symbol
    assert_frame_equal(lib.read("a").data, pd.concat([df, more]))

    reads = lib.read_batch(
        [
            "a",
            floe.ReadRequest("a", as_of=0, columns=["price"]),
            floe.ReadRequest("b", row_range=(1, 2), output_format="pyarrow"),
            "missing",
            floe.ReadRequest("a", as_of=99),
        ]
    )
    assert_frame_equal(reads[0].data, pd.concat([df, more]))
    assert reads[0].metadata is None and reads[1].metadata == 1
    assert_frame_equal(reads[1].data, df[["price"]])
    assert reads[2].data.num_rows == 1
    assert isinstance(reads[3], floe.DataError) and reads[3].error_code == "SymbolNotFound"
    assert isinstance(reads[4], floe.DataError) and reads[4].error_code == "VersionNotFound"
    assert reads[4].version_request_type == "version" and reads[4].version_request_data == 99


def test_arcticdb_keywords_are_accepted_or_refused_by_name(lib):
    """ArcticDB's keyword arguments either work (validate_index, staged) or raise InvalidInput naming
    what is not supported and what to do instead, never a TypeError about an unknown keyword."""
    df = ts_frame(10)
    assert lib.write("k", df, validate_index=True).version == 0
    lib.write_batch([floe.WritePayload("k2", df)], validate_index=True)
    more = ts_frame(5, start="2030-01-01")
    assert lib.append("k", more, validate_index=True).version == 1
    lib.append_batch([floe.WritePayload("k2", more)], validate_index=True)
    staged = lib.write("st", df, staged=True)
    assert isinstance(staged, floe.StageResult) and not lib.has_symbol("st")
    assert lib.finalize_staged_data("st").version == 0
    with pytest.raises(floe.InvalidInput, match="finalize_staged_data"):
        lib.write("st2", df, metadata={"m": 1}, staged=True)
    with pytest.raises(floe.InvalidInput, match="recursive_normalizers .*write_pickle"):
        lib.write("rn", df, recursive_normalizers=True)
    with pytest.raises(floe.InvalidInput, match="compact_data=True .*after the append"):
        lib.append("k", ts_frame(5, start="2031-01-01"), compact_data=True)
    assert lib.read("k").version == 1, "nothing appended by the refusal"
    with pytest.raises(floe.InvalidInput, match="query_builder is not supported"):
        lib.read("k", query_builder=object())
    with pytest.raises(floe.InvalidInput, match="lazy reads are not supported; use iter_batches"):
        lib.read("k", lazy=True)
    with pytest.raises(floe.InvalidInput, match="arrow_string_format_default 'tiny' is not one of"):
        lib.read("k", arrow_string_format_default="tiny")
    with pytest.raises(floe.InvalidInput, match="query_builder"):
        lib.read_batch(["k"], query_builder=object())
    with pytest.raises(floe.InvalidInput, match="lazy"):
        lib.head("k", lazy=True)
    with pytest.raises(floe.InvalidInput, match="lazy"):
        lib.tail("k", lazy=True)
    # The defaults read as before.
    assert_frame_equal(lib.read("k", query_builder=None, lazy=False).data, pd.concat([df, more]))
    assert len(lib.read_batch(["k", "k2"], output_format="pyarrow")) == 2


def test_arrow_string_formats(lib):
    """ArcticDB's arrow_string_format_default / _per_column: string columns of reads to pyarrow and polars
    as large_string, string or dictionary<int32, large_string>; a per-column format wins; without them
    strings come as stored; reads to pandas are not affected."""
    n = 3000
    # Random, so that the venues are stored dictionary-coded (a short cycle compresses so well that
    # the codec stores it plain).
    venues = [None if v == "-" else str(v) for v in np.random.default_rng(5).choice(["XNAS", "XNYS", "BATS", "-"], n)]
    ids = [f"id-{i}" for i in range(n)]
    df = pd.DataFrame(
        {
            "venue": np.array(venues, dtype=object),  # few values: stored coded
            "id": np.array(ids, dtype=object),  # all distinct: stored plain
            "x": np.arange(n, dtype=np.int64),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1s", name="t"),
    )
    lib.write("str", df)
    F = floe.ArrowOutputStringFormat
    # As stored: a pandas string column (pandas 3 infers one from these objects) as large_string, an
    # object column (pandas 2 keeps one) as string.
    stored = pa.large_string() if isinstance(df["venue"].dtype, pd.StringDtype) else pa.string()
    plain = lib.read("str", output_format="pyarrow").data
    assert plain.schema.field("venue").type == stored and not plain.schema.field("venue").metadata

    coded = pa.table(lib._lib.read("str", (None, None, None, None), False, False, False, True)[0][1][2])
    assert pa.types.is_dictionary(coded.schema.field("venue").type), "the categorical read takes the stored codes"
    cat = lib.read("str", output_format="pyarrow", arrow_string_format_default=F.CATEGORICAL).data
    dictionary = pa.dictionary(pa.int32(), pa.large_string())
    assert cat.schema.field("venue").type == dictionary and cat.schema.field("id").type == dictionary
    assert not cat.schema.field("venue").metadata, "the engine's codes mark is not shown"
    assert cat.column("venue").to_pylist() == venues and cat.column("id").to_pylist() == ids
    assert cat.column("x").equals(plain.column("x"))

    mixed = lib.read(
        "str", output_format="pyarrow", arrow_string_format_default="large_string",
        arrow_string_format_per_column={"id": F.SMALL_STRING, "venue": "categorical"},
    ).data
    assert [mixed.schema.field(c).type for c in ("venue", "id")] == [dictionary, pa.string()]
    assert mixed.column("id").to_pylist() == ids
    small = lib.read("str", output_format="pyarrow", arrow_string_format_per_column={"venue": "SMALL_STRING"}).data
    assert small.schema.field("venue").type == pa.string() and small.schema.field("id").type == stored
    # A date range and a column subset too.
    part = lib.read("str", output_format="pyarrow", date_range=(df.index[10], df.index[20]), columns=["venue"],
                    arrow_string_format_default=F.DICTIONARY_ENCODED).data
    assert part.column_names == ["t", "venue"] and part.schema.field("venue").type == dictionary
    assert part.column("venue").to_pylist() == venues[10:21]

    class ArcticFormat:  # an enum member of ArcticDB's own ArrowOutputStringFormat has a name
        name = "CATEGORICAL"

    assert lib.read("str", output_format="pyarrow", arrow_string_format_default=ArcticFormat()).data.equals(cat)
    # Batches, head and tail.
    batch = lib.read_batch(["str"], output_format="pyarrow", arrow_string_format_default=F.SMALL_STRING)[0].data
    assert batch.schema.field("venue").type == pa.string()
    assert lib.head("str", 3, output_format="pyarrow", arrow_string_format_default=F.CATEGORICAL).data.schema.field("id").type == dictionary
    assert lib.tail("str", 3, output_format="pyarrow", arrow_string_format_default=F.SMALL_STRING).data.schema.field("id").type == pa.string()
    # pandas reads are not affected.
    assert_frame_equal(lib.read("str", arrow_string_format_default=F.CATEGORICAL).data, df)
    with pytest.raises(floe.InvalidInput, match="must be a dict"):
        lib.read("str", output_format="pyarrow", arrow_string_format_per_column=["venue"])
    pl = pytest.importorskip("polars")
    frame = lib.read("str", output_format="polars", arrow_string_format_per_column={"venue": F.CATEGORICAL}).data
    assert frame.schema["venue"] == pl.Categorical and frame.schema["id"] == pl.String
    assert frame["venue"].to_list() == venues


def test_modify_library_option(store):
    lib = store.create_library("modify", floe.LibraryOptions(rows_per_segment=4, columns_per_segment=2))
    df = ts_frame(10)
    lib.write("s", df)
    other = store["modify"]  # opened before the change: keeps its options until reopened
    store.modify_library_option(lib, floe.ModifiableLibraryOption.ROWS_PER_SEGMENT, 3)
    assert lib.options() == floe.LibraryOptions(3, 2, False), "the Library passed sees the change"
    assert other.options().rows_per_segment == 4
    store.modify_library_option("modify", "columns_per_segment", 5)
    assert store["modify"].options() == floe.LibraryOptions(3, 5, False)
    more = ts_frame(7, start="2030-01-01")
    reopened = store["modify"]
    reopened.append("s", more)
    assert_frame_equal(reopened.read("s").data, pd.concat([df, more]))
    assert reopened.get_description("s").segment_count > 0

    class ArcticOption:  # ArcticDB's enum members have a name
        name = "ROWS_PER_SEGMENT"

    store.modify_library_option(reopened, ArcticOption(), 6)
    assert reopened.options().rows_per_segment == 6
    for option, value, match in [
        ("DEDUP", True, "cannot be changed in Floe"),
        ("RECURSIVE_NORMALIZERS", True, "cannot be changed"),
        ("ROWS_PER_SEGMENT", 0, "positive integer"),
        ("ROWS_PER_SEGMENT", True, "positive integer"),
    ]:
        with pytest.raises(floe.InvalidInput, match=match):
            store.modify_library_option(reopened, option, value)
    assert store["modify"].options() == floe.LibraryOptions(6, 5, False)
    with pytest.raises(floe.LibraryNotFound):
        store.modify_library_option("no-such-library", "ROWS_PER_SEGMENT", 5)


def test_store_and_library_defaults_for_reads(store_uri):
    """Store(uri, encoding_version, output_format, arrow_string_format_default) and the same two
    defaults per library, as ArcticDB's Arctic takes them; a read's own arguments win."""
    s = floe.Store(store_uri, encoding_version=1, output_format="pyarrow", arrow_string_format_default="small_string")
    lib = s.get_library("defaults", create_if_missing=True)
    lib.write("s", pd.DataFrame({"v": ["a", "b"] * 50}))
    t = lib.read("s").data
    assert isinstance(t, pa.Table) and t.schema.field("v").type == pa.string()
    assert lib.read("s", arrow_string_format_default="large_string").data.schema.field("v").type == pa.large_string()
    own = s.get_library("defaults", output_format="pandas")
    assert isinstance(own.read("s").data, pd.DataFrame)
    cat = s.get_library("defaults", arrow_string_format_default="categorical")
    assert pa.types.is_dictionary(cat.read("s").data.schema.field("v").type)
    assert pa.types.is_dictionary(cat.head("s").data.schema.field("v").type)
    with pytest.raises(floe.InvalidInput, match="arrow_string_format_default"):
        floe.Store(store_uri, arrow_string_format_default="tiny")
    with pytest.raises(floe.InvalidInput, match="enterprise_library_options"):
        s.create_library("ent", enterprise_library_options=object())
