"""pandas object columns of strings converted by the extension module (``_floe.strings_from_objects``,
D26): the same Arrow array as ``pa.array(values, from_pandas=True)`` for every column it accepts, a
fallback to pyarrow (``None``) for every other, and round trips through a library. Also their codes
(``_floe.codes_from_objects``, D28: what a streamed write hands the engine for columns of few distinct
strings) and the object columns made from codes on reads (``objects_from_codes``, D27)."""

from __future__ import annotations

import random
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from floe import _convert, _floe


class SubStr(str):
    pass


def objects(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def converted(values: np.ndarray, large: bool = False):
    result = _floe.strings_from_objects(values, pd.NA, large)
    return None if result is None else pa.array(result)


def expected(values: np.ndarray, large: bool = False) -> pa.Array:
    return pa.array(values, type=pa.large_string() if large else None, from_pandas=True)


POOL = ["", "a", "AAPL", "x" * 16, "y" * 17, "é", "日本語テキスト", "🙂 emoji", "long " * 40, SubStr("sub"), np.str_("npstr")]
MISSING = [None, float("nan"), np.float64("nan"), pd.NA]


def random_objects(seed: int, pool_sizes: list, fresh_chars: str, fresh_len: int) -> np.ndarray:
    """A column of 1 to 20,000 rows: 10 % missing values of every kind, 10 % fresh string objects of up
    to ``fresh_len`` characters from ``fresh_chars``, the rest drawn from ``POOL`` plus a pool of one of
    ``pool_sizes`` more strings; one row is always a string."""
    rng = random.Random(seed)
    pool = POOL + [f"s{rng.randrange(10**6)}" for _ in range(rng.choice(pool_sizes))]
    n = rng.choice([1, 7, 1000, 20_000])
    values = []
    for _ in range(n):
        r = rng.random()
        if r < 0.1:
            values.append(rng.choice(MISSING))
        elif r < 0.2:
            values.append("".join(rng.choice(fresh_chars) for _ in range(rng.randrange(fresh_len))))
        else:
            values.append(rng.choice(pool))
    values[rng.randrange(n)] = "always one string"
    return objects(values)


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_random_columns_convert_as_pyarrow_does(seed: int, large: bool) -> None:
    # A few distinct objects repeated (the cache's case) and fresh objects per row (its misses).
    arr = random_objects(seed, pool_sizes=[1, 50, 5000], fresh_chars="abcé🙂", fresh_len=40)
    got = converted(arr, large)
    assert got is not None
    want = expected(arr, large)
    assert got.type == want.type
    assert got.equals(want)
    assert got.null_count == want.null_count


def test_strided_and_reversed_views() -> None:
    arr = objects([f"v{i % 7}" if i % 5 else None for i in range(1001)])
    for view in (arr[::2], arr[::-1], arr[10:500:3], np.broadcast_to(arr[1:2], (50,))):
        got = converted(view)
        assert got is not None and got.equals(expected(view))


def test_many_distinct_objects_sharing_cache_slots() -> None:
    # 100,000 distinct objects: far more than the cache has slots, so slots are overwritten constantly.
    arr = objects([f"value-{i}" for i in range(100_000)] * 2)
    assert converted(arr).equals(expected(arr))


@pytest.mark.parametrize(
    "values",
    [
        [None, None],  # no string: pyarrow infers the null type
        [],
        ["a", b"bytes"],
        ["a", 1],
        ["a", 1.5],  # a float that is not NaN
        ["a", pd.NaT],
        ["a", "\ud800"],  # a lone surrogate has no UTF-8
        ["a", ["list"]],
    ],
    ids=["all-missing", "empty", "bytes", "int", "float", "nat", "surrogate", "list"],
)
def test_anything_else_is_left_to_pyarrow(values) -> None:
    assert converted(objects(values)) is None


def test_refuses_what_the_python_layer_never_passes() -> None:
    with pytest.raises(TypeError):
        _floe.strings_from_objects(np.array(["a"]), pd.NA, False)  # dtype <U1
    with pytest.raises(TypeError):
        _floe.strings_from_objects(["a", "b"], pd.NA, False)
    with pytest.raises(ValueError):
        _floe.strings_from_objects(objects(["a", "b", "c", "d"]).reshape(2, 2), pd.NA, False)

    class Sub(np.ndarray):
        pass

    with pytest.raises(TypeError):
        _floe.strings_from_objects(objects(["a"]).view(Sub), pd.NA, False)


def test_surrogates_still_raise_pyarrows_error_through_the_fallback() -> None:
    with pytest.raises(Exception) as info:
        _convert._pandas_array(pd.Series(["a", "\ud800"]), None)
    assert "surrogate" in str(info.value).lower() or "utf" in str(info.value).lower()


def test_the_conversion_keeps_the_type_a_later_chunk_is_given() -> None:
    s = pd.Series(["a", None, "b"], dtype=object)
    assert _convert._pandas_array(s, pa.large_string()).type == pa.large_string()
    assert _convert._pandas_array(s, pa.string()).type == pa.string()
    # A type the fast path does not make: pyarrow converts.
    cat = _convert._pandas_array(s, pa.dictionary(pa.int32(), pa.string()))
    assert cat.type == pa.dictionary(pa.int32(), pa.string())


def counted(monkeypatch, name: str) -> list:
    real, made = getattr(_floe, name), []

    def counting(*args):
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(_floe, name, counting)
    return made


def test_frames_with_object_strings_round_trip(lib, monkeypatch) -> None:
    strings, codes = counted(monkeypatch, "strings_from_objects"), counted(monkeypatch, "codes_from_objects")
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 2_000)
    monkeypatch.setattr(_convert, "STREAM_MAX_CHUNK_ROWS", 2_000)
    n = 4_500  # more than two conversion chunks: the streamed write path
    rng = np.random.default_rng(5)
    tickers = np.array(["AAPL", "MSFT", "日本", "x" * 30, None, np.nan], dtype=object)
    index = pd.date_range("2024-01-01", periods=n, freq="s")
    df = pd.DataFrame({"v": np.arange(n, dtype=np.int64)}, index=index)
    df["sym"] = pd.Series(tickers[rng.integers(0, len(tickers), n)], index=index, dtype=object)
    # Unique strings: the first chunk's first 1,024 are all distinct, so the column goes plainly.
    df["id"] = pd.Series([f"order-{i}" for i in range(n)], index=index, dtype=object)
    assert df["sym"].dtype == object  # not pandas 3's inferred str dtype
    lib.write("strs", df)
    chunks = -(-n // _convert.CONVERT_CHUNK_ROWS)
    # sym's chunks all went as codes; id's first chunk was offered and declined, its type then plain.
    assert len(codes) == chunks + 1 and sum(c is not None for c in codes) == chunks
    assert len(strings) == chunks and all(m is not None for m in strings), "id took the fast plain path"
    back = lib.read("strs").data
    want = df.copy()
    want["sym"] = want["sym"].where(want["sym"].notna(), None)
    pd.testing.assert_frame_equal(back, want, check_freq=False)
    assert back["sym"].dtype == object
    table = lib.read("strs", output_format="pyarrow").data
    assert table.schema.field("sym").type == pa.string() and not table.schema.field("sym").metadata


# ----- writes: codes_from_objects ------------------------------------------------------------------


def coded(values: np.ndarray, max_distinct: int = 1 << 20, large: bool = False):
    result = _floe.codes_from_objects(values, pd.NA, large, max_distinct)
    return None if result is None else pa.array(result)


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_codes_decode_to_what_pyarrow_converts(seed: int, large: bool) -> None:
    # Fresh objects of few distinct strings: equal strings in different objects share a code.
    arr = random_objects(seed, pool_sizes=[1, 50, 900], fresh_chars="ab", fresh_len=4)
    got = coded(arr, large=large)
    assert got is not None
    value_type = pa.large_string() if large else pa.string()
    assert got.type == pa.dictionary(pa.int32(), value_type)
    assert got.cast(value_type).equals(expected(arr, large))
    # Distinct by content, in order of first appearance.
    firsts = list(dict.fromkeys(v for v in got.cast(value_type).to_pylist() if v is not None))
    assert got.dictionary.to_pylist() == firsts


def test_codes_give_way_to_plain_strings() -> None:
    few = objects(["a", "b", None, "c"] * 10)
    assert coded(few, max_distinct=3) is not None
    assert coded(few, max_distinct=2) is None, "more distinct strings than asked for"
    unique = objects([f"u{i}" for i in range(5000)])
    assert coded(unique) is None, "the first 1,024 strings nearly all distinct"
    for values in ([None, None], [], ["a", b"bytes"], ["a", 1], ["a", "\ud800"]):
        assert coded(objects(values)) is None, values


def test_a_stream_whose_chunks_differ_in_cardinality_round_trips(lib, monkeypatch) -> None:
    """The first chunk sets the stream's type: codes, then a chunk of unique strings (converted to that
    dictionary type by pyarrow); and plain strings, then a chunk of few values (kept plain)."""
    step = 4_000
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", step)
    monkeypatch.setattr(_convert, "STREAM_MAX_CHUNK_ROWS", step)
    index = pd.date_range("2024-01-01", periods=3 * step, freq="s")
    few = np.array([f"k{i % 5}" for i in range(step)], dtype=object)
    many = np.array([f"unique-{i}" for i in range(step)], dtype=object)
    for name, parts in (("codes-first", [few, many, few]), ("plain-first", [many, few, many])):
        df = pd.DataFrame({"s": pd.Series(np.concatenate(parts), index=index, dtype=object)})
        lib.write(name, df)
        pd.testing.assert_frame_equal(lib.read(name).data, df, check_freq=False)


def test_appends_and_updates_after_a_write_of_codes(lib, monkeypatch) -> None:
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 1_000)
    n = 2 * _convert.CONVERT_CHUNK_ROWS + 10
    index = pd.date_range("2024-01-01", periods=n, freq="s")
    df = pd.DataFrame({"s": pd.Series([f"k{i % 7}" for i in range(n)], index=index, dtype=object), "v": np.arange(n)})
    lib.write("w", df)
    more_index = pd.date_range(index[-1] + pd.Timedelta(seconds=1), periods=100, freq="s")
    more = pd.DataFrame({"s": pd.Series(["new"] * 100, index=more_index, dtype=object), "v": np.arange(100)})
    lib.append("w", more)
    patch = df.iloc[1000:1010].copy()
    patch["s"] = pd.Series(["patched"] * 10, index=patch.index, dtype=object)
    lib.update("w", patch)
    want = pd.concat([df, more])
    want.iloc[1000:1010, 0] = "patched"
    pd.testing.assert_frame_equal(lib.read("w").data, want, check_freq=False)


# ----- reads: objects_from_codes ------------------------------------------------------------------


def test_objects_from_codes_indexes_the_distinct_values() -> None:
    words = ["alpha", "", "γάμμα", "x" * 40]
    codes = pa.array([0, 3, None, 1, 2, 2, None, 0], type=pa.int32())
    array = pa.DictionaryArray.from_arrays(codes, pa.array(words))
    uniques = array.dictionary.to_numpy(zero_copy_only=False)
    baseline = sys.getrefcount(uniques[0])
    out = _floe.objects_from_codes(array, uniques)
    held = sys.getrefcount(uniques[0])  # outside `assert`: pytest's rewriting holds its operands
    assert held == baseline + 2  # rows 0 and 7
    assert out.dtype == object and out.flags.writeable and out.flags.c_contiguous
    assert list(out) == ["alpha", "x" * 40, None, "", "γάμμα", "γάμμα", None, "alpha"]
    # One object per distinct value, shared by its rows, and references counted.
    assert out[4] is out[5] is uniques[2]
    del out
    released = sys.getrefcount(uniques[0])
    assert released == baseline
    empty = pa.DictionaryArray.from_arrays(pa.array([], type=pa.int32()), pa.array([], type=pa.string()))
    assert len(_floe.objects_from_codes(empty, empty.dictionary.to_numpy(zero_copy_only=False))) == 0
    all_null = pa.DictionaryArray.from_arrays(pa.array([None, None], type=pa.int32()), pa.array([], type=pa.string()))
    assert list(_floe.objects_from_codes(all_null, np.empty(0, dtype=object))) == [None, None]


def test_objects_from_codes_refuses_bad_input() -> None:
    array = pa.DictionaryArray.from_arrays(pa.array([0, 1], type=pa.int32()), pa.array(["a", "b"]))
    with pytest.raises(ValueError, match="code 1"):
        _floe.objects_from_codes(array, objects(["a"]))  # a code outside the distinct values
    with pytest.raises(ValueError, match="int32"):
        _floe.objects_from_codes(pa.array(["a"]), objects(["a"]))
    small = pa.DictionaryArray.from_arrays(pa.array([0], type=pa.int8()), pa.array(["a"]))
    with pytest.raises(ValueError, match="int32"):
        _floe.objects_from_codes(small, objects(["a"]))
    with pytest.raises(TypeError):
        _floe.objects_from_codes(array, np.array(["a", "b"]))


# ----- datetime columns without NaT -----------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        pd.date_range("2024-01-01", periods=1000, freq="ms"),
        pd.Series(pd.date_range("2024-01-01", periods=5, freq="D")),
        pd.DatetimeIndex(["2024-01-01", None, "2024-01-03"]),  # NaT: pyarrow makes it null
        pd.date_range("2024-01-01", periods=3, freq="D", tz="Europe/Paris"),  # zoned: pyarrow's way
        pd.Series(pd.date_range("2024-01-01", periods=3, freq="s").astype("datetime64[us]")),
    ],
    ids=["index", "series", "nat", "zoned", "micros"],
)
def test_datetimes_convert_as_pyarrow_does(values) -> None:
    got = _convert._pandas_array(values, None)
    want = pa.array(values, from_pandas=True)
    assert got.type == want.type and got.equals(want)


def test_a_datetime_index_without_nat_is_not_copied() -> None:
    idx = pd.date_range("2024-01-01", periods=100_000, freq="ms")
    got = _convert._pandas_array(idx, None)
    assert got.buffers()[1].address == np.asarray(idx).ctypes.data
    assert _convert._pandas_array(idx, pa.timestamp("ns")).type == pa.timestamp("ns")


def test_stream_chunks_grow_to_the_converted_bytes_they_hold() -> None:
    step = _convert.CONVERT_CHUNK_ROWS
    n = step
    index = pd.date_range("2024-01-01", periods=n, freq="s")
    few = pd.DataFrame({"v": np.arange(n), "s": pd.Series([f"k{i % 9}" for i in range(n)], index=index, dtype=object)}, index=index)
    assert _convert._stream_chunk_rows(_convert._from_pandas(few, codes=True).table) == _convert.STREAM_MAX_CHUNK_ROWS
    numeric = pd.DataFrame({"v": np.arange(n)}, index=index)
    assert _convert._stream_chunk_rows(_convert._from_pandas(numeric, codes=True).table) == _convert.STREAM_MAX_CHUNK_ROWS
    unique = pd.DataFrame({"s": pd.Series([f"a-long-unique-value-{i}" for i in range(n)], index=index, dtype=object)}, index=index)
    assert _convert._stream_chunk_rows(_convert._from_pandas(unique, codes=True).table) == step


def test_a_stream_in_large_chunks_round_trips(lib, monkeypatch) -> None:
    # The rules of the real sizes at a small scale: a first chunk of 1,000 rows, later ones of up to
    # 5,000 (codes, bools and nulls: ~4.3 bytes a row against 16 KiB), a ragged last one.
    monkeypatch.setattr(_convert, "CONVERT_CHUNK_ROWS", 1_000)
    monkeypatch.setattr(_convert, "STREAM_MAX_CHUNK_ROWS", 5_000)
    monkeypatch.setattr(_convert, "STREAM_CHUNK_BYTES", 16 << 10)
    n = 11_500
    index = pd.date_range("2024-01-01", periods=n, freq="ms")
    rng = np.random.default_rng(3)
    syms = np.array(["AAPL", "MSFT", None, "日本"], dtype=object)
    df = pd.DataFrame(
        {"s": pd.Series(syms[rng.integers(0, 4, n)], index=index, dtype=object), "b": rng.integers(0, 2, n).astype(bool), "v": np.arange(n)},
        index=index,
    )
    batches = list(_convert.normalize(df, stream=True).table)
    sizes = [b.num_rows for b in batches]
    assert sizes[0] == 1_000 and sum(sizes) == n and min(sizes[1:-1]) >= 3_000, sizes
    lib.write("big", df)
    back = lib.read("big").data
    want = df.copy()
    want["s"] = want["s"].where(want["s"].notna(), None)
    pd.testing.assert_frame_equal(back, want, check_freq=False)
