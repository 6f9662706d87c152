"""The bad input catalogue (issue 7, item 5; design/reliability.md section 5).

Every case asserts three things:

- the exception's exact class (one of ``floe.errors``; the subclass, not just ``FloeError``);
- that its message names the thing to fix (the column, the symbol, the version, the URI part...);
- that the store is unchanged: symbols, versions (live and snapshot-held), every version's data and
  metadata, snapshots and what they hold, as seen through the public API (``observe``).

What Floe accepts where one might expect a refusal (duplicate timestamps, non-string column names)
is pinned here too. Cases that show a bug are ``xfail(strict=True)`` with the reason; the pin next
to each of them checks what already holds (the store unchanged, a typed error).

Storage failures: a full disk for LMDB (``RLIMIT_FSIZE`` in a child process), an S3 endpoint that
refuses connections, one that goes away after the store was opened (a TCP forwarder switched off),
one that accepts connections and never answers, and wrong credentials (a second moto, started by a
fixture, that enforces authentication). The S3 cases run when ``FLOE_S3_ENDPOINT`` is set, like the
rest of the suite's S3 cases.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import floe
from conftest import assert_frame_equal, ts_frame, unique

REPO = Path(__file__).resolve().parents[2]


# ----- observing a store ------------------------------------------------------------------------


def observe(lib: floe.Library) -> dict:
    """Everything a user can see of a library through the API: symbols, every version (live, or
    deleted but kept by a snapshot) with its flags, date, data and metadata, and the snapshots
    with their metadata and symbols. Data is compared as Arrow tables (exact, NaN-safe)."""
    versions = lib.list_versions()
    snapshots = lib.list_snapshots()
    data = {}
    for key, info in versions.items():
        as_of = info.snapshots[0] if info.deleted else key.version
        item = lib.read(key.symbol, as_of=as_of, output_format="pyarrow")
        assert item.version == key.version
        data[(key.symbol, key.version)] = (item.data, item.metadata)
    return {
        "symbols": lib.list_symbols(),
        "versions": {(k.symbol, k.version): (v.deleted, sorted(v.snapshots), v.date) for k, v in versions.items()},
        "data": data,
        "snapshots": snapshots,
        "snapshot_symbols": {name: lib.list_symbols(snapshot_name=name) for name in snapshots},
    }


PRICES = ts_frame(20)  # hourly, 2024-01-01 00:00 .. 19:00, columns price, size, venue, index "time"


def populate(lib: floe.Library) -> None:
    """prices: v0 (15 rows, live), v1 (v0 + 5 appended rows; deleted, kept by snapshot "snap"),
    v2 (20 rows, live); rows: v0 (row-count index, in "snap")."""
    lib.write("prices", PRICES.iloc[:15], metadata={"v": 0})
    lib.append("prices", PRICES.iloc[15:], metadata={"v": 1})
    lib.write("rows", pd.DataFrame({"v": np.arange(5, dtype=np.int64)}))
    lib.snapshot("snap", metadata="eod")
    lib.write("prices", PRICES, metadata={"v": 2})
    lib.delete("prices", versions=1)


# id(library) -> (backend, observe(), list_libraries()) of the shared libraries.
_BASELINES: dict = {}

# The backends the per-case tables run on; S3 runs each table in one test (test_tables_on_s3).
LOCAL = ["mem", "lmdb"]


@pytest.fixture(scope="module", params=["mem", "lmdb", "s3"])
def shared(request, tmp_path_factory):
    """One populated library per backend, shared by the cases of this module: each call is checked
    against the library as populated (``raises_unchanged``), and so is every test that uses it when
    it ends (``_shared_unchanged_at_end``)."""
    backend = request.param
    if backend == "mem":
        uri = "mem://"
    elif backend == "lmdb":
        uri = f"lmdb://{tmp_path_factory.mktemp('catalogue')}/floe"
    else:
        uri = f"{request.getfixturevalue('s3_bucket_uri')}&path_prefix={unique('catalogue')}"
    store = floe.Store(uri)
    lib = store.create_library("catalogue")
    populate(lib)
    _BASELINES[id(lib)] = (backend, observe(lib), store.list_libraries())
    yield store, lib
    del _BASELINES[id(lib)]


@pytest.fixture(autouse=True)
def _shared_unchanged_at_end(request):
    yield
    if "shared" in request.fixturenames:
        store, lib = request.getfixturevalue("shared")
        _, baseline, libraries = _BASELINES[id(lib)]
        assert observe(lib) == baseline
        assert store.list_libraries() == libraries


def raises_unchanged(store, lib, exc, match, call):
    """Runs ``call``; asserts it raises exactly ``exc`` with a message matching ``match`` and that
    neither the library nor the store's list of libraries changed. Returns the exception.

    On the shared S3 library the check after each call is left to the end of the test (``observe``
    costs a few hundred ms there, against a few ms on mem and LMDB)."""
    known = _BASELINES.get(id(lib))
    if known is None:
        before, libraries = observe(lib), store.list_libraries()
    else:
        _, before, libraries = known
    with pytest.raises(floe.FloeError) as info:
        call()
    e = info.value
    assert type(e) is exc, f"{type(e).__name__}: {e}"
    assert re.search(match, str(e)), f"message {str(e)!r} does not match {match!r}"
    if known is None or known[0] != "s3":
        assert observe(lib) == before
        assert store.list_libraries() == libraries
    return e


# ----- bad data on write, append and update -----------------------------------------------------


def _frame(start: str, n: int = 3) -> pd.DataFrame:
    """A frame with the schema of "prices", n hourly rows from ``start``."""
    return ts_frame(n, start=start, seed=7)


def _nat_index(f):
    return f.set_axis(pd.DatetimeIndex([f.index[0], pd.NaT, f.index[2]], name="time").as_unit("ns"))


def _renamed(f, old, new):
    return f.set_axis([new if c == old else c for c in f.columns], axis=1)


# id -> (how to spoil a well-formed frame, exception, what the message must say)
BAD_DATA = {
    "mixed object column": (
        lambda f: f.assign(price=pd.Series([1.0, "two", 3.0], dtype=object, index=f.index)),
        floe.InvalidInput,
        r"'price'",
    ),
    "duplicate column names": (lambda f: _renamed(f, "size", "price"), floe.InvalidInput, r"duplicate column names.*price"),
    "timedelta column": (
        lambda f: f.assign(size=pd.to_timedelta([1, 2, 3], unit="s")),
        floe.InvalidInput,
        r"'size'.*duration.*int64",
    ),
    "float16 column": (lambda f: f.assign(price=f.price.astype(np.float16)), floe.InvalidInput, r"'price'.*float16.*float32"),
    "date column": (
        lambda f: f.assign(venue=[dt.date(2024, 1, d) for d in (1, 2, 3)]),
        floe.InvalidInput,
        r"'venue'.*date.*datetime64",
    ),
    "decimal column": (
        lambda f: f.assign(price=[decimal.Decimal("1.5")] * 3),
        floe.InvalidInput,
        r"'price'.*decimal",
    ),
    "all-None column": (lambda f: f.assign(venue=[None] * 3), floe.InvalidInput, r"'venue'.*no type.*astype"),
    "list column": (lambda f: f.assign(venue=[[1], [2, 3], []]), floe.InvalidInput, r"'venue'.*list"),
    "int categories": (lambda f: f.assign(venue=pd.Categorical([1, 2, 1])), floe.InvalidInput, r"'venue'.*categor"),
    "tuple column name": (lambda f: _renamed(f, "price", ("price", 1)), floe.InvalidInput, r"column name \('price', 1\).*tuple"),
    "bytes column name": (lambda f: _renamed(f, "price", b"price"), floe.InvalidInput, r"column name b'price'.*bytes"),
    "NaN column name": (lambda f: _renamed(f, "price", float("nan")), floe.InvalidInput, r"column name nan"),
    "Timestamp column name": (
        lambda f: _renamed(f, "price", pd.Timestamp("2024-01-01")),
        floe.InvalidInput,
        r"column name Timestamp.*must be str, int, float or None",
    ),
    "NUL in column name": (lambda f: _renamed(f, "price", "pri\x00ce"), floe.InvalidInput, r"'pri\\x00ce'.*NUL"),
    "NUL in index name": (lambda f: f.rename_axis("ti\x00me"), floe.InvalidInput, r"'ti\\x00me'.*NUL"),
    "column name too long": (lambda f: _renamed(f, "price", "p" * 70_000), floe.InvalidInput, r"column name of 70000 bytes is too long"),
    "MultiIndex columns": (
        lambda f: f.set_axis(pd.MultiIndex.from_tuples([("a", c) for c in f.columns]), axis=1),
        floe.InvalidInput,
        r"MultiIndex columns.*flatten",
    ),
    "NaT in the index": (_nat_index, floe.InvalidInput, r'index column "time" has nulls'),
    "unsorted index": (lambda f: f.iloc[::-1], floe.UnsortedIndex, r'index column "time" is not sorted: row 1'),
    "not a frame": (lambda f: f.to_numpy(), floe.InvalidInput, r"cannot write an object of type numpy.ndarray.*pandas DataFrame"),
}

# Where each operation puts its frame: a new symbol for write, after the end of "prices" for append,
# inside it for update, so that the defect is the only thing wrong.
STARTS = {"write": "2024-03-01", "append": "2030-01-01", "update": "2024-01-01 05:00"}


def _call(lib, op, data, **kw):
    if op == "write":
        return lambda: lib.write("new", data, **kw)
    return lambda: getattr(lib, op)("prices", data, **kw)


def bad_data_case(store, lib, case, op):
    spoil, exc, match = BAD_DATA[case]
    data = spoil(_frame(STARTS[op]))
    raises_unchanged(store, lib, exc, match, _call(lib, op, data))


@pytest.mark.parametrize("shared", LOCAL, indirect=True, scope="module")
@pytest.mark.parametrize("op", ["write", "append", "update"])
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data(shared, case, op):
    bad_data_case(*shared, case, op)


def test_bad_data_in_batches_is_reported_per_item(shared):
    store, lib = shared
    before = observe(lib)
    for batch in (lib.write_batch, lib.append_batch):
        out = batch([floe.WritePayload(f"b{i}", spoil(_frame(STARTS["append"]))) for i, (spoil, _, _) in enumerate(BAD_DATA.values())])
        for (case, (_, exc, match)), item in zip(BAD_DATA.items(), out):
            assert isinstance(item, floe.DataError), case
            assert type(item.exception) is exc and re.search(match, item.exception_string), (case, item.exception_string)
    assert observe(lib) == before


def test_batch_items_must_be_payloads(shared):
    store, lib = shared
    raises_unchanged(store, lib, floe.InvalidInput, r"WritePayload\(symbol, data", lambda: lib.write_batch([("prices",)]))
    raises_unchanged(store, lib, floe.InvalidInput, r"more than once.*prices", lambda: lib.write_batch([("prices", PRICES)] * 2))


def test_unpicklable_metadata(shared):
    store, lib = shared
    meta = threading.Lock()
    for call in (
        lambda: lib.write("new", _frame("2024-03-01"), metadata=meta),
        lambda: lib.append("prices", _frame("2030-01-01"), metadata=meta),
        lambda: lib.update("prices", _frame("2024-01-01 05:00"), metadata=meta),
        lambda: lib.write_metadata("prices", meta),
        lambda: lib.snapshot("snap2", metadata=meta),
    ):
        raises_unchanged(store, lib, floe.InvalidInput, r"metadata of type lock cannot be pickled", call)


# ----- schema mismatch on append and update -----------------------------------------------------

# id -> (how to change a frame with the symbol's schema, what the message must say)
SCHEMA_MISMATCH = {
    "missing column": (lambda f: f.drop(columns=["size"]), r'symbol "prices".*column "size" is missing'),
    "extra column": (lambda f: f.assign(extra=1.0), r'symbol "prices".*column "extra" is new'),
    "renamed column": (lambda f: f.rename(columns={"price": "px"}), r'column "price" is missing; column "px" is new'),
    "int64 column as float64": (lambda f: f.astype({"size": "float64"}), r'column "size" has type Float64 instead of Int64'),
    "int64 column as int32": (lambda f: f.astype({"size": "int32"}), r'column "size" has type Int32 instead of Int64'),
    "columns reordered": (lambda f: f[["size", "price", "venue"]], r'symbol "prices".*columns are in a different order'),
    "index renamed": (lambda f: f.rename_axis("t"), r'symbol "prices" is indexed by Timestamp\("time"\), the data by Timestamp\("t"\)'),
    "tz-aware index on a naive symbol": (
        lambda f: f.tz_localize("UTC"),
        r'column "time" has type Timestamp\(ns, "UTC"\) instead of Timestamp\(ns\)',
    ),
    "a Series": (lambda f: f["price"], r'column "size" is missing; column "venue" is missing'),
}


def schema_mismatch_case(store, lib, case, op):
    change, match = SCHEMA_MISMATCH[case]
    data = change(_frame(STARTS[op]))
    raises_unchanged(store, lib, floe.SchemaMismatch, match, _call(lib, op, data))


@pytest.mark.parametrize("shared", LOCAL, indirect=True, scope="module")
@pytest.mark.parametrize("op", ["append", "update"])
@pytest.mark.parametrize("case", list(SCHEMA_MISMATCH))
def test_schema_mismatch(shared, case, op):
    schema_mismatch_case(*shared, case, op)


def test_schema_mismatch_on_row_count_data(shared):
    store, lib = shared
    rows = pd.DataFrame({"price": [1.0], "size": [1], "venue": pd.array(["a"], dtype="str")})
    raises_unchanged(store, lib, floe.SchemaMismatch, r'"prices" is indexed by Timestamp\("time"\), the data by RowCount', lambda: lib.append("prices", rows))
    raises_unchanged(store, lib, floe.InvalidInput, r'update "prices": update needs a timestamp-indexed table', lambda: lib.update("prices", rows))
    ts_rows = pd.DataFrame({"v": [9]}, index=pd.DatetimeIndex(["2024-01-01"], name="time"))
    raises_unchanged(store, lib, floe.SchemaMismatch, r'"rows" is indexed by RowCount, the data by Timestamp\("time"\)', lambda: lib.append("rows", ts_rows))


def test_object_strings_do_not_append_to_a_str_column(shared):
    """pandas 3 stores ``str`` columns as large_string, object-dtype strings as string: Floe refuses
    the mix as a schema mismatch (it names both Arrow types). Pinned as current behaviour; ArcticDB
    accepts both. Under pandas 2 both are object dtype and the append works."""
    store, lib = shared
    if lib.get_description("prices").schema.field("venue").type != pa.large_string():
        pytest.skip("the venue column is stored as string under this pandas")
    data = _frame(STARTS["append"]).astype({"venue": object})
    raises_unchanged(store, lib, floe.SchemaMismatch, r'column "venue" has type Utf8 instead of LargeUtf8', lambda: lib.append("prices", data))


def test_dynamic_schema_refuses_what_it_cannot_widen(store):
    lib = store.create_library(unique("dyn"), floe.LibraryOptions(dynamic_schema=True))
    populate(lib)
    for op in ("append", "update"):
        data = _frame(STARTS[op]).assign(venue=np.arange(3, dtype=np.int64))
        raises_unchanged(store, lib, floe.SchemaMismatch, r'"prices": column "venue" has type (Large)?Utf8 and cannot take Int64', _call(lib, op, data))
        data = _frame(STARTS[op]).rename_axis("t")
        raises_unchanged(store, lib, floe.SchemaMismatch, r'"prices" is indexed by Timestamp\("time"\), the data by Timestamp\("t"\)', _call(lib, op, data))


# ----- update ranges ----------------------------------------------------------------------------


def test_update_range_errors(shared):
    store, lib = shared
    t = PRICES.index
    patch = _frame(str(t[8]), n=1)
    raises_unchanged(
        store, lib, floe.InvalidInput, r'update "prices": the new rows span .* outside the update range',
        lambda: lib.update("prices", patch, date_range=(t[1], t[3])),
    )
    raises_unchanged(
        store, lib, floe.InvalidInput, r'update "prices": date_range starts at 2024-01-01 05:00.*after its end 2024-01-01 01:00',
        lambda: lib.update("prices", patch, date_range=(t[5], t[1])),
    )
    raises_unchanged(
        store, lib, floe.InvalidInput, r"date_range start 'noon' is not a timestamp",
        lambda: lib.update("prices", patch, date_range=("noon", None)),
    )
    raises_unchanged(
        store, lib, floe.SymbolNotFound, r'update "nothere".*does not exist.*upsert=True',
        lambda: lib.update("nothere", patch),
    )


def test_delete_data_in_range_errors(shared):
    store, lib = shared
    t = PRICES.index
    raises_unchanged(
        store, lib, floe.InvalidInput, r'delete_data_in_range "prices": date_range starts at .*after its end',
        lambda: lib.delete_data_in_range("prices", (t[10], t[2])),
    )
    raises_unchanged(store, lib, floe.InvalidInput, r"needs a date_range", lambda: lib.delete_data_in_range("prices", None))
    raises_unchanged(
        store, lib, floe.InvalidInput, r'symbol "rows" is indexed by row count',
        lambda: lib.delete_data_in_range("rows", (t[0], t[1])),
    )
    raises_unchanged(store, lib, floe.SymbolNotFound, r'symbol "nothere" does not exist', lambda: lib.delete_data_in_range("nothere", (t[0], t[1])))


# ----- duplicate timestamps: allowed, as in ArcticDB ----------------------------------------------


def test_duplicate_timestamps_are_allowed(lib):
    """Floe, like ArcticDB, allows equal timestamps on write, on append (also when the appended
    frame starts at the symbol's last timestamp) and on update; an index must only never go
    back. There is no operation that refuses them."""
    idx = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02", "2024-01-03"], name="t").as_unit("ns")
    df = pd.DataFrame({"v": np.arange(5, dtype=np.int64)}, index=idx)
    lib.write("d", df)
    assert_frame_equal(lib.read("d").data, df)
    # Read by date range: bounds are inclusive, so every row at a duplicated timestamp comes back.
    assert lib.read("d", date_range=("2024-01-02", "2024-01-02")).data["v"].tolist() == [1, 2, 3]
    # Append starting at the last timestamp (equal, not before).
    more = pd.DataFrame({"v": [5, 6]}, index=pd.DatetimeIndex(["2024-01-03", "2024-01-03"], name="t").as_unit("ns"))
    lib.append("d", more)
    assert lib.read("d").data["v"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    # Update with one row at a duplicated timestamp replaces every row at that timestamp.
    lib.update("d", pd.DataFrame({"v": [99]}, index=pd.DatetimeIndex(["2024-01-02"], name="t").as_unit("ns")))
    assert lib.read("d").data["v"].tolist() == [0, 99, 4, 5, 6]
    # Update with duplicates in the new rows.
    dup = pd.DataFrame({"v": [7, 8]}, index=pd.DatetimeIndex(["2024-01-01", "2024-01-01"], name="t").as_unit("ns"))
    lib.update("d", dup)
    assert lib.read("d").data["v"].tolist() == [7, 8, 99, 4, 5, 6]
    # What is refused is going back in time.
    before = observe(lib)
    back = pd.DataFrame({"v": [1]}, index=pd.DatetimeIndex(["2024-01-02"], name="t").as_unit("ns"))
    with pytest.raises(floe.UnsortedIndex, match=r'"d"'):
        lib.append("d", back)
    assert observe(lib) == before


def test_append_before_the_end(shared):
    store, lib = shared
    raises_unchanged(store, lib, floe.UnsortedIndex, r'cannot append to "prices": the new rows start at \d+, before its last index value \d+', lambda: lib.append("prices", _frame("2024-01-01 10:00")))


# ----- non-string column names: stored as strings and mapped back ------------------------------


def test_non_string_column_names_round_trip(lib):
    df = pd.DataFrame({0: [1, 2], 1.5: [1.0, 2.0], None: ["a", "b"], True: [3, 4], np.int64(7): [5, 6], "x": [7, 8]})
    lib.write("n", df)
    out = lib.read("n").data
    assert list(out.columns) == [0, 1.5, None, True, 7, "x"]
    assert [type(c) for c in out.columns] == [int, float, type(None), bool, int, str]
    assert_frame_equal(out, df, check_column_type=False)
    assert lib.read("n", columns=[1.5, 0]).data.columns.tolist() == [1.5, 0]
    assert [c.name for c in lib.get_description("n").columns] == [0, 1.5, None, True, 7, "x"]
    # Arrow output shows the stored (string) names.
    assert lib.read("n", output_format="pyarrow").data.column_names == ["0", "1.5", "None", "True", "7", "x"]
    # An empty name and names with newlines or unicode are fine too.
    odd = pd.DataFrame({"": [1], "a\nb": [2], "数": [3]})
    lib.write("odd", odd)
    assert_frame_equal(lib.read("odd").data, odd)


def test_non_string_column_names_that_collide_or_cannot_be_stored(shared):
    store, lib = shared
    f = _frame(STARTS["write"])
    raises_unchanged(store, lib, floe.InvalidInput, r"duplicate column names: \['1'\]", lambda: lib.write("new", pd.DataFrame([[1, 2]], columns=[1, "1"])))
    raises_unchanged(store, lib, floe.InvalidInput, r'symbol "prices" has no column "7"', lambda: lib.read("prices", columns=[7]))
    raises_unchanged(
        store, lib, floe.InvalidInput, r"columns must be a list of column names.*\['price'\]", lambda: lib.read("prices", columns="price")
    )
    raises_unchanged(store, lib, floe.InvalidInput, r"index name b'i'.*bytes", lambda: lib.write("new", f.rename_axis(b"i")))


# ----- names ------------------------------------------------------------------------------------

LONG = "x" * 256
WIDE = "é" * 128  # 128 characters, 256 bytes of UTF-8


BAD_SYMBOLS = {
    # id -> (symbol, message)
    "empty": ("", r"invalid symbol name \"\": it is empty"),
    "NUL": ("a\x00b", r"control character U\+0000 at byte 1"),
    "tab": ("tab\there", r"control character U\+0009 at byte 3"),
    "newline": ("new\nline", r"control character U\+000A"),
    "DEL": ("\x7f", r"control character U\+007F"),
    "dot": (".", r"`\.` and `\.\.` are reserved"),
    "dotdot": ("..", r"`\.` and `\.\.` are reserved"),
    "256 bytes": (LONG, r"it is 256 bytes long; the limit is 255 bytes of UTF-8"),
    "128 two-byte chars": (WIDE, r"it is 256 bytes long; the limit is 255 bytes of UTF-8"),
}


def bad_symbol_case(store, lib, case):
    symbol, match = BAD_SYMBOLS[case]
    f = _frame(STARTS["write"])
    for call in (
        lambda: lib.write(symbol, f),
        lambda: lib.append(symbol, f),
        lambda: lib.update(symbol, f, upsert=True),
        lambda: lib.read(symbol),
        lambda: lib.rename_symbol("prices", symbol),
    ):
        raises_unchanged(store, lib, floe.InvalidInput, match, call)


@pytest.mark.parametrize("shared", LOCAL, indirect=True, scope="module")
@pytest.mark.parametrize("case", list(BAD_SYMBOLS))
def test_bad_symbol_names(shared, case):
    bad_symbol_case(*shared, case)


def test_longest_names_are_accepted(lib):
    f = ts_frame(2)
    names = ["y" * 255, "é" * 127 + "y", "数/with spaces and %"]  # 255, 255 and 23 bytes
    for name in names:
        lib.write(name, f)
        assert_frame_equal(lib.read(name).data, f)
        lib.snapshot(name)
        assert_frame_equal(lib.read(name, as_of=name).data, f)
    assert lib.list_symbols() == sorted(names)
    assert lib.list_snapshots(load_metadata=False) == sorted(names)


def test_symbol_of_the_wrong_type(shared):
    """A symbol that is not a str: TypeError from the extension's argument conversion (not a
    FloeError). Pinned; the message names the type, not the argument."""
    store, lib = shared
    before = observe(lib)
    for call in (lambda: lib.write(5, PRICES), lambda: lib.read(None), lambda: lib.delete(b"prices")):
        with pytest.raises(TypeError, match=r"is not an instance of 'str'"):
            call()
    assert observe(lib) == before


@pytest.mark.parametrize(
    "name,match",
    [("", r"it is empty"), ("a\nb", r"control character U\+000A"), ("..", r"reserved"), ("s" * 256, r"256 bytes long")],
    ids=["empty", "newline", "dotdot", "256 bytes"],
)
def test_bad_snapshot_names(shared, name, match):
    store, lib = shared
    raises_unchanged(store, lib, floe.InvalidInput, match, lambda: lib.snapshot(name))
    raises_unchanged(store, lib, floe.InvalidInput, match, lambda: lib.read("prices", as_of=name))
    raises_unchanged(store, lib, floe.InvalidInput, match, lambda: lib.delete_snapshot(name))


def test_bad_snapshot_name_message_says_snapshot(shared):
    store, lib = shared
    raises_unchanged(store, lib, floe.InvalidInput, r"snapshot", lambda: lib.snapshot(""))


@pytest.mark.parametrize(
    "name,match",
    [("", r"invalid library name \"\": it is empty"), ("bad\nname", r"control character U\+000A"), ("..", r"reserved"), ("L" * 256, r"256 bytes long")],
    ids=["empty", "newline", "dotdot", "256 bytes"],
)
def test_bad_library_names(shared, name, match):
    store, lib = shared
    raises_unchanged(store, lib, floe.InvalidInput, match, lambda: store.create_library(name))
    raises_unchanged(store, lib, floe.InvalidInput, match, lambda: store.get_library(name, create_if_missing=True))
    raises_unchanged(store, lib, floe.InvalidInput, match, lambda: store.get_library(name))


def test_library_errors(shared):
    store, lib = shared
    raises_unchanged(store, lib, floe.AlreadyExists, r'library "catalogue" already exists', lambda: store.create_library("catalogue"))
    raises_unchanged(store, lib, floe.LibraryNotFound, r'library "nope"', lambda: store.get_library("nope"))
    raises_unchanged(store, lib, floe.InvalidInput, r"rows_per_segment", lambda: store.create_library("x", floe.LibraryOptions(rows_per_segment=0)))


# ----- as_of: deleted, missing, before the first version; snapshots ------------------------------


def _reads(lib, symbol, as_of):
    """Every read-only call that takes as_of."""
    return {
        "read": lambda: lib.read(symbol, as_of=as_of),
        "head": lambda: lib.head(symbol, as_of=as_of),
        "tail": lambda: lib.tail(symbol, as_of=as_of),
        "read_metadata": lambda: lib.read_metadata(symbol, as_of=as_of),
        "get_description": lambda: lib.get_description(symbol, as_of=as_of),
        "iter_batches": lambda: list(lib.iter_batches(symbol, as_of=as_of)),
        "read columns": lambda: lib.read(symbol, as_of=as_of, columns=["price"]),
    }


BEFORE_FIRST = pd.Timestamp("2000-01-01", tz="UTC")

AS_OF = {
    # id -> (as_of, exception, message)
    "deleted version": (1, floe.VersionNotFound, r'symbol "prices" has no live version 1'),
    "missing version": (99, floe.VersionNotFound, r'symbol "prices" has no live version 99'),
    "negative, past the first": (-99, floe.VersionNotFound, r'symbol "prices" has no live version -99'),
    "negative, onto a deleted version": (-2, floe.VersionNotFound, r'symbol "prices" has no live version -2'),
    "time before the first version": (BEFORE_FIRST, floe.VersionNotFound, r'symbol "prices" has no version at or before 946684800000000000'),
    "naive time before the first version": (
        dt.datetime(2000, 1, 1),
        floe.VersionNotFound,
        r'symbol "prices" has no version at or before 946684800000000000',
    ),
    "missing snapshot": ("nosnap", floe.SnapshotNotFound, r'"prices".*snapshot "nosnap" does not exist'),
    "bool": (True, floe.InvalidInput, r"as_of must be a version number, a snapshot name or a datetime, not a bool"),
    "float": (1.5, floe.InvalidInput, r"as_of 1.5 must be a version number, a snapshot name or a datetime"),
    "NaT": (pd.NaT, floe.InvalidInput, r"as_of is NaT"),
}


@pytest.mark.parametrize("shared", LOCAL, indirect=True, scope="module")
@pytest.mark.parametrize("case", list(AS_OF))
def test_as_of(shared, case):
    as_of_case(*shared, case)


def as_of_case(store, lib, case):
    as_of, exc, match = AS_OF[case]
    for name, call in _reads(lib, "prices", as_of).items():
        raises_unchanged(store, lib, exc, match, call)
    # Batch reads report the same error in the item's slot.
    (item,) = lib.read_batch([floe.ReadRequest("prices", as_of=as_of)])
    assert isinstance(item, floe.DataError) and type(item.exception) is exc and re.search(match, item.exception_string)
    if exc is floe.VersionNotFound or exc is floe.SnapshotNotFound:
        assert lib.has_symbol("prices", as_of=as_of) is False


def test_as_of_a_missing_symbol(shared):
    store, lib = shared
    for as_of in (None, 0, BEFORE_FIRST):
        for call in _reads(lib, "nothere", as_of).values():
            raises_unchanged(store, lib, floe.SymbolNotFound, r'symbol "nothere" does not exist', call)
    # A snapshot that does not hold the symbol.
    raises_unchanged(store, lib, floe.SnapshotNotFound, r'snapshot "snap" does not hold symbol "nothere"', lambda: lib.read("nothere", as_of="snap"))


def test_as_of_what_still_works(shared):
    """The other side of the cases above: the deleted version is readable through the snapshot that
    keeps it, -3 is version 0, and a time after v0 finds v0."""
    store, lib = shared
    assert lib.read("prices", as_of="snap").version == 1
    assert lib.read("prices", as_of=-3).version == 0
    assert lib.read("prices", as_of=-1).version == 2
    v0 = lib.list_versions("prices")[floe.SymbolVersion("prices", 0)].date
    assert lib.read("prices", as_of=v0).version == 0


@pytest.mark.parametrize("shared", ["s3"], indirect=True, scope="module")
def test_tables_on_s3(shared):
    """The per-case tables above (bad data, schema mismatches, bad symbols, as_of), every case on
    S3, in one test; the library is compared with its state as populated at the end."""
    for case in BAD_DATA:
        for op in STARTS:
            bad_data_case(*shared, case, op)
    for case in SCHEMA_MISMATCH:
        for op in ("append", "update"):
            schema_mismatch_case(*shared, case, op)
    for case in BAD_SYMBOLS:
        bad_symbol_case(*shared, case)
    for case in AS_OF:
        as_of_case(*shared, case)


# ----- snapshots that do not exist, and snapshots of what does not exist ------------------------


def test_missing_snapshot(shared):
    store, lib = shared
    match = r'snapshot "nosnap" does not exist'
    raises_unchanged(store, lib, floe.SnapshotNotFound, match, lambda: lib.delete_snapshot("nosnap"))
    raises_unchanged(store, lib, floe.SnapshotNotFound, match, lambda: lib.list_symbols(snapshot_name="nosnap"))
    raises_unchanged(store, lib, floe.SnapshotNotFound, match, lambda: lib.list_versions("prices", snapshot="nosnap"))
    raises_unchanged(store, lib, floe.SnapshotNotFound, match, lambda: lib.read("rows", as_of="nosnap"))
    assert lib.has_symbol("prices", as_of="nosnap") is False


def test_snapshot_errors(shared):
    store, lib = shared
    raises_unchanged(store, lib, floe.AlreadyExists, r'snapshot "snap" already exists', lambda: lib.snapshot("snap"))
    raises_unchanged(
        store, lib, floe.VersionNotFound, r'snapshot "s2": symbol "prices" has no live version 1', lambda: lib.snapshot("s2", versions={"prices": 1})
    )
    raises_unchanged(
        store, lib, floe.VersionNotFound, r'snapshot "s2": symbol "prices" has no live version 7', lambda: lib.snapshot("s2", versions={"prices": 7})
    )
    raises_unchanged(
        store, lib, floe.SymbolNotFound, r'snapshot "s2": symbol "nothere" does not exist', lambda: lib.snapshot("s2", versions={"nothere": 0})
    )
    raises_unchanged(
        store, lib, floe.InvalidInput, r"skip_symbols or versions, not both", lambda: lib.snapshot("s2", skip_symbols=["rows"], versions={"prices": 0})
    )


# ----- deletes and renames of what does not exist ------------------------------------------------


def test_missing_things_on_delete_and_rename(shared):
    store, lib = shared
    raises_unchanged(store, lib, floe.SymbolNotFound, r'symbol "nothere" does not exist', lambda: lib.delete("nothere"))
    raises_unchanged(store, lib, floe.SymbolNotFound, r'symbol "nothere" does not exist', lambda: lib.delete("nothere", versions=[0]))
    raises_unchanged(store, lib, floe.VersionNotFound, r'symbol "prices" has no live version 1', lambda: lib.delete("prices", versions=1))
    raises_unchanged(store, lib, floe.VersionNotFound, r'symbol "prices" has no live version 42', lambda: lib.delete("prices", versions=[0, 42]))
    raises_unchanged(store, lib, floe.SymbolNotFound, r'symbol "nothere" does not exist', lambda: lib.rename_symbol("nothere", "x"))
    raises_unchanged(store, lib, floe.AlreadyExists, r'"rows"', lambda: lib.rename_symbol("prices", "rows"))
    raises_unchanged(store, lib, floe.SymbolNotFound, r'write_metadata "nothere"', lambda: lib.write_metadata("nothere", 1))


def test_bad_read_arguments(shared):
    store, lib = shared
    raises_unchanged(store, lib, floe.InvalidInput, r'symbol "prices" has no column "nope"', lambda: lib.read("prices", columns=["nope"]))
    raises_unchanged(store, lib, floe.InvalidInput, r'symbol "rows" is indexed by row count; use row_range', lambda: lib.read("rows", date_range=(1, 2)))
    raises_unchanged(store, lib, floe.InvalidInput, r"row_range must be a \(start, end\) pair", lambda: lib.read("prices", row_range=(1,)))
    raises_unchanged(store, lib, floe.InvalidInput, r"date_range must be a \(start, end\) pair", lambda: lib.read("prices", date_range=5))
    raises_unchanged(store, lib, floe.InvalidInput, r"output_format 'excel' is not one of", lambda: lib.read("prices", output_format="excel"))


# ----- URIs -------------------------------------------------------------------------------------

BAD_URIS = {
    "": r"the storage URI is empty; expected mem://",
    " mem://": r"leading or trailing whitespace",
    "mem": r"has no `<scheme>://`",
    "nosuch://x": r'unknown storage URI scheme "nosuch"; expected mem://',
    "file:///tmp/x": r"file:// storage is not supported; use lmdb://<path>",
    "mem://junk": r'mem:// takes no path or options, but "junk" follows it',
    "mem://?x=1": r"mem:// takes no path or options",
    "lmdb://": r'"lmdb://" has no path: write lmdb:///absolute/path',
    "lmdb://?map_size=1GiB": r"has no path",
    "lmdb:///tmp/floe-bad?map_size=abc": r'map_size="abc": must be a whole number',
    "lmdb:///tmp/floe-bad?map_size=1.5GiB": r"fractions are not accepted",
    "lmdb:///tmp/floe-bad?map_size=1KiB": r"map_size 1024 is outside the accepted range 65536\.\.=",
    "lmdb:///tmp/floe-bad?map_size=10XB": r'unknown unit "xb"; use B, KB',
    "lmdb:///tmp/floe-bad?map_size=": r'map_size="": empty',
    "lmdb:///tmp/floe-bad?map_size=1GiB&map_size=2GiB": r"option map_size is given twice",
    "lmdb:///tmp/floe-bad?foo=1": r'unknown option "foo".*the LMDB backend knows map_size',
    "lmdb:///tmp/floe-bad%zz": r'path "/tmp/floe-bad%zz".*bad escape at byte 13: `%` must be followed by two hex digits',
    "lmdb:///dev/null": r"cannot create the LMDB folder /dev/null",
    "s3://": r"S3 URI is missing the bucket",
    "s3://host": r"S3 URI is missing the bucket: expected s3://<host>:<bucket>, got host part `host`",
    "s3://host:": r"S3 URI is missing the bucket",
    "s3://:bucket": r"S3 URI is missing the host",
    "s3://host:1234:bucket": r"give the port as the `port=` parameter",
    "s3://host:bucket?port=abc": r"`port=abc` is not a port number",
    "s3://host:bucket?port=70000": r"`port=70000` is not a port number",
    "s3://host:bucket?foo=bar": r"unknown S3 URI parameter `foo` \(known parameters: region, access",
    "s3://host:bucket?access=a": r"S3 credentials need both `access` and `secret`",
    "s3://host:bucket?https=maybe": r"`https=maybe` must be `true` or `false`",
    "s3://host:bucket?path_prefix=..": r"path_prefix `\.\.` contains a `\.` or `\.\.` segment",
    "s3://host:bucket?timeout_secs=-1": r"`timeout_secs=-1` must be a whole number of at least 1",
    "s3://host:bucket?max_retries=x": r"`max_retries=x` must be a whole number",
    "s3://host:bucket?concurrency=0": r"`concurrency=0` must be a whole number of at least 1",
    "s3s://host:bucket?https=false": r"`s3s://` \(https\) but also `https=false`",
    "s3://host:bucket?access=a&secret=SEKRET&bogus=1": r"unknown S3 URI parameter `bogus`",
    "s3://host:bucket?access=a&secret=SEKRET&secret=SEKRET2": r"parameter `secret` is given twice",
}


@pytest.mark.parametrize("uri", list(BAD_URIS))
def test_malformed_uris(uri):
    with pytest.raises(floe.FloeError) as info:
        floe.Store(uri)
    e = info.value
    assert type(e) is floe.InvalidConfig, f"{type(e).__name__}: {e}"
    assert re.search(BAD_URIS[uri], str(e)), str(e)
    assert "SEKRET" not in str(e) and e.__context__ is None and e.__cause__ is None
    assert not os.path.exists("/tmp/floe-bad")


def test_uri_of_the_wrong_type():
    """Pinned: a URI that is not a str is a TypeError from the extension's argument conversion."""
    for uri in (5, None, b"mem://"):
        with pytest.raises(TypeError):
            floe.Store(uri)


def test_lmdb_uri_naming_a_file(tmp_path):
    f = tmp_path / "a-file"
    f.write_bytes(b"not a folder")
    with pytest.raises(floe.InvalidConfig, match=r"cannot create the LMDB folder .*a-file"):
        floe.Store(f"lmdb://{f}")
    assert f.read_bytes() == b"not a folder"


# ----- LMDB: the disk fills up ------------------------------------------------------------------

_FULL_CHILD = r"""
import glob, json, os, resource, signal, sys
import numpy as np, pandas as pd
import floe
root = sys.argv[1]
# Writing past RLIMIT_FSIZE raises SIGXFSZ, which kills by default; ignored, write() returns EFBIG
# (LMDB sees a short write), as on a full disk (ENOSPC).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = max(os.path.getsize(p) for p in glob.glob(os.path.join(root, "*", "data.mdb"))) + 64 * 1024
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
lib = floe.Store(f"lmdb://{root}")["catalogue"]
n = 200_000  # about 5 MB
big = pd.DataFrame(
    {"price": np.linspace(0, 1, n), "size": np.arange(n, dtype=np.int64), "venue": pd.array(["XNAS"] * n, dtype="str")},
    index=pd.date_range("2030-01-01", periods=n, freq="s", name="time", unit="ns"),
)
out = {}
for op, call in [("append", lambda: lib.append("prices", big)), ("write", lambda: lib.write("big", big))]:
    try:
        call()
        out[op] = None
    except Exception as e:
        out[op] = [type(e).__name__, isinstance(e, floe.FloeError), str(e)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def lmdb_full(tmp_path_factory):
    """An LMDB store whose writes hit the file size limit (a child process with RLIMIT_FSIZE just
    above the data file's size): what the writes raised, and the store before and after (reopened)."""
    resource = pytest.importorskip("resource")
    if not hasattr(resource, "RLIMIT_FSIZE"):
        pytest.skip("no RLIMIT_FSIZE here")
    root = tmp_path_factory.mktemp("full") / "floe"
    store = floe.Store(f"lmdb://{root}")
    lib = store.create_library("catalogue")
    populate(lib)
    before = observe(lib)
    del lib, store
    child = subprocess.run([sys.executable, "-c", _FULL_CHILD, str(root)], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    store = floe.Store(f"lmdb://{root}")
    after = observe(store["catalogue"])
    return outcome, before, after, store


def test_lmdb_full_disk_leaves_the_store_unchanged(lmdb_full):
    outcome, before, after, store = lmdb_full
    for op, error in outcome.items():
        assert error is not None, f"{op} succeeded past the file size limit"
        assert error[1], f"{op} raised {error[0]}, not a FloeError: {error[2]}"
    assert after == before
    # And the store takes writes again once there is room.
    lib = store["catalogue"]
    lib.append("prices", _frame("2030-01-01"))
    assert lib.read("prices").data.shape[0] == 23


def test_lmdb_full_disk_is_a_storage_error_naming_the_disk(lmdb_full):
    outcome, _, _, _ = lmdb_full
    for op, (cls, _, message) in outcome.items():
        assert cls == "StorageError", f"{op}: {cls}: {message}"
        assert re.search(r"disk|space|full|size limit", message), message


# ----- S3: unreachable, black-holed, wrong credentials ------------------------------------------


def _s3_enabled():
    if not os.environ.get("FLOE_S3_ENDPOINT"):
        pytest.skip("FLOE_S3_ENDPOINT is not set (scripts/s3-server.sh start)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open_failure(uri: str):
    t = time.monotonic()
    with pytest.raises(floe.FloeError) as info:
        floe.Store(uri)
    return info.value, time.monotonic() - t


def test_s3_closed_port_is_a_storage_error_within_seconds():
    """Nothing listens on the port: every attempt is refused at once; object_store retries 10 times
    with backoff from 100 ms, about 5 s in all (4.9 s measured). The backoff is drawn at random, so
    now and then the retries outlast the open's 15 s check and the message says so instead (seen in a
    CI run of 2026-12-07): either way a StorageError naming the bucket and endpoint."""
    _s3_enabled()
    port = _free_port()
    e, elapsed = _open_failure(f"s3://127.0.0.1:bucket?port={port}&https=false&access=a&secret=SEKRET")
    assert type(e) is floe.StorageError, f"{type(e).__name__}: {e}"
    where = rf"bucket bucket at http://127\.0\.0\.1:{port}"
    assert re.search(rf"storage unavailable \(s3\): (no answer from )?{where}", str(e)), str(e)
    assert "SEKRET" not in str(e)
    assert elapsed < 30, f"took {elapsed:.1f} s"


def test_s3_black_hole_with_short_timeouts_is_a_storage_error():
    """A server that accepts connections and never answers: each attempt waits for timeout_secs."""
    _s3_enabled()
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        port = hole.getsockname()[1]
        e, elapsed = _open_failure(f"s3://127.0.0.1:b?port={port}&https=false&access=a&secret=s&timeout_secs=1&max_retries=1")
    assert type(e) is floe.StorageError, f"{type(e).__name__}: {e}"
    assert f"127.0.0.1:{port}" in str(e)
    assert elapsed < 15, f"took {elapsed:.1f} s"


@pytest.mark.skipif(not os.environ.get("FLOE_SLOW_TESTS"), reason="takes 180 s; set FLOE_SLOW_TESTS=1")
def test_s3_black_hole_with_default_timeouts_fails_within_30_s():
    _s3_enabled()
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        e, elapsed = _open_failure(f"s3://127.0.0.1:b?port={hole.getsockname()[1]}&https=false&access=a&secret=s")
    assert type(e) is floe.StorageError
    assert elapsed < 30, f"took {elapsed:.1f} s"


class _Forwarder:
    """A TCP forwarder on a fixed loopback port to another port; ``off()`` closes the listener and
    every connection (clients then get refused), ``on()`` listens again on the same port."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = _free_port()
        self.listener = None
        self.conns: list = []
        self.lock = threading.Lock()

    def on(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def off(self):
        self.listener.close()
        with self.lock:
            for c in self.conns:
                for f in (lambda: c.shutdown(socket.SHUT_RDWR), c.close):
                    try:
                        f()
                    except OSError:
                        pass
            self.conns.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                chunk = a.recv(65536)
                if not chunk:
                    break
                b.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_s3_server_gone_after_open(s3_bucket_uri):
    """The store opens, then the server becomes unreachable: every call raises StorageError within
    seconds (max_retries=2 here; about 2-5 s each with the default 10), nothing is written, and
    once the server is back the store reads as before."""
    _s3_enabled()
    port = int(re.search(r"port=(\d+)", s3_bucket_uri).group(1))
    fwd = _Forwarder(port)
    fwd.on()
    try:
        uri = re.sub(r"port=\d+", f"port={fwd.port}", s3_bucket_uri) + f"&path_prefix={unique('gone')}&max_retries=2"
        store = floe.Store(uri)
        lib = store.create_library("catalogue")
        populate(lib)
        before = observe(lib)
        fwd.off()
        for call in (
            lambda: lib.read("prices"),
            lambda: lib.write("prices", PRICES),
            lambda: lib.append("prices", _frame("2030-01-01")),
            lambda: lib.update("prices", _frame("2024-01-01 05:00")),
            lambda: lib.delete("prices"),
            lambda: lib.snapshot("s2"),
            lambda: lib.list_symbols(),
            lambda: store.list_libraries(),
            lambda: floe.Store(uri),
        ):
            t = time.monotonic()
            with pytest.raises(floe.FloeError) as info:
                call()
            assert type(info.value) is floe.StorageError, f"{type(info.value).__name__}: {info.value}"
            assert re.search(r"storage unavailable \(s3\)", str(info.value)), str(info.value)
            assert time.monotonic() - t < 30
        fwd.on()
        assert observe(lib) == before
        assert observe(floe.Store(uri)["catalogue"]) == before
    finally:
        fwd.off()


# A second moto that enforces authentication: started by the fixture below on a free port, with one
# IAM user allowed s3:*; authentication is switched on (moto-api/reset-auth) once the bucket and the
# user exist.


def _moto_python():
    venv = Path(os.environ.get("FLOE_S3_VENV", REPO / ".venv-s3"))
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"moto is not installed in {venv} (scripts/s3-server.sh install)")
    return python


def _http(endpoint, method, path, data=b"", headers=None):
    req = urllib.request.Request(endpoint + path, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory):
    """(uri without credentials, access key, secret key) of a bucket on an auth-enforcing moto."""
    _s3_enabled()
    python = _moto_python()
    log = tmp_path_factory.mktemp("moto-auth") / "log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(python), "-c", "import sys; from moto import server; server.main(sys.argv[1:])", "-H", "127.0.0.1", "-p", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        endpoint = None
        deadline = time.monotonic() + 60
        while endpoint is None and time.monotonic() < deadline:
            m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read_text())
            if m:
                endpoint = m.group(1)
            elif proc.poll() is not None:
                pytest.fail(f"moto exited: {log.read_text()}")
            else:
                time.sleep(0.1)
        assert endpoint, f"moto did not start: {log.read_text()}"
        while _http(endpoint, "GET", "/moto-api/")[0] != 200:
            time.sleep(0.1)
        assert _http(endpoint, "PUT", "/floe-auth")[0] == 200
        # IAM calls, routed to moto's IAM by the credential scope of an (unchecked, auth still off)
        # Authorization header.
        iam = {
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            "Content-Type": "application/x-www-form-urlencoded",
        }

        def call(**params):
            status, body = _http(endpoint, "POST", "/", urllib.parse.urlencode({"Version": "2010-05-08", **params}).encode(), iam)
            assert status == 200, body
            return body

        call(Action="CreateUser", UserName="floe")
        body = call(Action="CreateAccessKey", UserName="floe")
        access = re.search(r"<AccessKeyId>(.*?)</AccessKeyId>", body).group(1)
        secret = re.search(r"<SecretAccessKey>(.*?)</SecretAccessKey>", body).group(1)
        policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
        call(Action="PutUserPolicy", UserName="floe", PolicyName="all", PolicyDocument=policy)
        status, body = _http(endpoint, "POST", "/moto-api/reset-auth", b"0", {"Content-Type": "text/plain"})
        assert status == 200, body
        port = endpoint.rsplit(":", 1)[1]
        yield f"s3://127.0.0.1:floe-auth?port={port}&https=false", access, secret
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _creds(access, secret):
    return f"&access={urllib.parse.quote(access, safe='')}&secret={urllib.parse.quote(secret, safe='')}"


@pytest.fixture(scope="module")
def auth_store(auth_s3):
    """A populated library on the auth-enforcing server, written with good credentials."""
    uri, access, secret = auth_s3
    good = uri + _creds(access, secret)
    lib = floe.Store(good).create_library("catalogue")
    populate(lib)
    return good, observe(lib)


def _without_credentials(monkeypatch):
    """No AWS_* variables, and instance credentials looked up at a closed loopback port (so the
    lookup fails at once, wherever the tests run)."""
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", f"http://127.0.0.1:{_free_port()}")


CREDENTIAL_CASES = ["wrong secret", "unknown access key", "no credentials"]


def _bad_credentials_uri(auth_s3, case, monkeypatch):
    uri, access, secret = auth_s3
    if case == "wrong secret":
        return uri + _creds(access, "WRONG" + secret[5:])
    if case == "unknown access key":
        return uri + _creds("AKIANOSUCHKEY0000000", "WRONGSECRET")
    _without_credentials(monkeypatch)
    return uri


@pytest.mark.parametrize("case", CREDENTIAL_CASES)
def test_s3_bad_credentials_leave_the_store_unchanged(auth_s3, auth_store, case, monkeypatch):
    """Pinned: refused or missing credentials raise a FloeError at open, fast, without the secret in
    the message, and the store reads back as before with the right credentials."""
    good, before = auth_store
    e, elapsed = _open_failure(_bad_credentials_uri(auth_s3, case, monkeypatch))
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert "WRONG" not in str(e) and "floe-auth" in str(e), str(e)
    monkeypatch.undo()
    assert observe(floe.Store(good)["catalogue"]) == before


@pytest.mark.parametrize("case", ["wrong secret", "unknown access key"])
def test_s3_wrong_credentials_are_invalid_config_naming_the_credentials(auth_s3, auth_store, case, monkeypatch):
    e, _ = _open_failure(_bad_credentials_uri(auth_s3, case, monkeypatch))
    assert type(e) is floe.InvalidConfig, f"{type(e).__name__}: {e}"
    assert re.search(r"access|secret|credential", str(e)), str(e)


def test_s3_no_credentials_says_so(auth_s3, auth_store, monkeypatch):
    e, _ = _open_failure(_bad_credentials_uri(auth_s3, "no credentials", monkeypatch))
    assert type(e) is floe.InvalidConfig, f"{type(e).__name__}: {e}"
    assert re.search(r"credential", str(e)), str(e)


def test_s3_no_credentials_and_silent_metadata_says_so(auth_s3, monkeypatch):
    """Off a cloud, the instance-metadata address often drops packets: the lookup times out, and the
    error still names the credentials, not the bucket (short timeouts keep the test fast)."""
    uri, _, _ = auth_s3
    _without_credentials(monkeypatch)
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        monkeypatch.setenv("AWS_METADATA_ENDPOINT", f"http://127.0.0.1:{hole.getsockname()[1]}")
        e, elapsed = _open_failure(uri + "&timeout_secs=1&max_retries=1")
    assert type(e) is floe.InvalidConfig, f"{type(e).__name__}: {e}"
    assert re.search(r"no S3 credentials for bucket floe-auth", str(e)), str(e)
    assert elapsed < 20, f"took {elapsed:.1f} s"


def test_s3_missing_bucket(s3_bucket_uri):
    _s3_enabled()
    uri = re.sub(r":floe-py-[^?]*\?", ":no-such-bucket-floe?", s3_bucket_uri)
    e, elapsed = _open_failure(uri)
    assert type(e) is floe.InvalidConfig, f"{type(e).__name__}: {e}"
    assert re.search(r"S3 bucket does not exist \(while accessing bucket no-such-bucket-floe at http://", str(e)), str(e)
    assert "secret=" not in str(e) and elapsed < 30
