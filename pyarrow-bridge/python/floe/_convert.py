"""Input normalization and output restoration: pandas / pyarrow / polars / PyCapsule producers to the
Arrow table the engine stores, and back.

Writing: a pandas DataFrame's index becomes the engine's index (a DatetimeIndex -> a timestamp index
column, a RangeIndex -> a row count, any other index -> ordinary columns); the normalization record
(see ``_envelope``) keeps what is needed to give the frame back. Arrow types the codec cannot store
but that convert without loss (timestamp[us] -> [ns], string_view -> large_string) are converted; the
rest raise ``InvalidInput`` naming the column, before anything is written. Numeric numpy columns are
handed to Arrow without a copy, NaN kept as NaN.

Reading: the engine's Arrow table comes in without a copy; ``pyarrow`` output is that table,
``polars`` output is converted by polars, ``pandas`` output restores index, names and dtypes: plain
numeric and timestamp columns are taken over from the engine as writable numpy arrays without a copy
(``OwnedColumn``), the others are copied once (``to_pandas``), and nothing copies the whole frame after.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _floe
from .errors import InvalidInput

# Names the index columns of a pandas frame get in storage when the index has no usable name.
DEFAULT_INDEX_COLUMN = "index"
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Normalized:
    """An input ready for the engine: the Arrow table (or, from ``normalize(..., stream=True)``, a
    ``pa.RecordBatchReader`` producing it), its timestamp index column (or None) and the normalization
    record for the metadata envelope."""

    table: Any
    index: Optional[str]
    norm: dict
    #: ``(block, positions)``: 2D numpy blocks (as unsigned integers of their width) whose rows are the
    #: table's columns at ``positions``, held in ``table`` as stand-ins; the engine copies each
    #: segment's share as it writes it (``_from_pandas(..., defer=True)``, D49).
    deferred: list = dataclasses.field(default_factory=list)


# ----- writing --------------------------------------------------------------------------------------


def normalize(data: Any, index_column: Optional[str] = None, stream: bool = False, defer: bool = False) -> Normalized:
    """Converts any supported input to an Arrow table the engine can store.

    ``index_column`` names the timestamp index column of Arrow-like input (ArcticDB's
    ``index_column``); pandas input takes its index from the frame itself. With ``stream``, a
    ``pa.RecordBatchReader`` stays a reader (checked and cast batch by batch as the engine reads it),
    and a large pandas frame with columns that pyarrow must convert (strings, objects, categoricals)
    becomes a reader converting ``CONVERT_CHUNK_ROWS`` rows at a time (``_pandas_stream``). With
    ``defer`` (a write), a frame of numeric columns some of which are strided views of a 2D block comes
    whole with those columns deferred (``Normalized.deferred``, D49) rather than copied.
    """
    if isinstance(data, pd.Series):
        if index_column is not None:
            raise InvalidInput("index_column applies to Arrow and polars input, not to a pandas Series")
        return _from_pandas(data.to_frame(name=_series_column(data.name)), series=True, series_name=data.name)
    if isinstance(data, pd.DataFrame):
        if index_column is not None:
            raise InvalidInput("index_column applies to Arrow and polars input; a pandas frame's index is its index")
        if defer and _deferrable(data):
            return _from_pandas(data, defer=True)
        streamed = _pandas_stream(data) if stream else None
        return streamed if streamed is not None else _from_pandas(data)
    if stream and isinstance(data, pa.RecordBatchReader):
        return _arrow_stream(data, index_column)
    table = _arrow_table(data)
    names = table.schema.names
    table = _storable(table, names)
    if index_column is not None and index_column not in names:
        raise InvalidInput(f"index_column {index_column!r} is not a column; the columns are {names}")
    _check_unique(names)
    return Normalized(table, index_column, {"kind": "arrow", "index_column": index_column})


def _arrow_stream(reader: pa.RecordBatchReader, index_column: Optional[str]) -> Normalized:
    """A reader checked like a table up front (names, storable types, the index column) and cast batch
    by batch as the engine reads it."""
    schema = reader.schema
    _check_names(schema.names)
    if index_column is not None and index_column not in schema.names:
        raise InvalidInput(f"index_column {index_column!r} is not a column; the columns are {schema.names}")
    _check_unique(schema.names)
    target = pa.schema([pa.field(f.name, _storable_type(f.name, f.type)) for f in schema])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            if batch.schema.equals(target):
                yield batch
                continue
            try:
                yield batch.cast(target, safe=True)
            except _ARROW_ERRORS as e:
                raise InvalidInput(f"a batch of the stream cannot be converted to a storable type: {e}") from e

    out = pa.RecordBatchReader.from_batches(target, batches())
    return Normalized(out, index_column, {"kind": "arrow", "index_column": index_column})


def _pandas_stream(df: pd.DataFrame) -> Optional[Normalized]:
    """A frame of more than ``CONVERT_CHUNK_ROWS`` rows with columns pyarrow must convert (objects,
    strings, categoricals, extension types) or numeric columns that must be copied (strided, D32), as a
    reader converting one chunk of rows at a time while the engine stores the previous ones, or None
    (the frame converts whole as a table).

    Converting 10M strings at once held the 75 MB Arrow column beside the frame for the whole write
    (peak 1.34x the frame); chunk by chunk, about two chunks exist at a time. The first chunk fixes the
    schema and the normalization record (a RangeIndex's start and step come from the whole frame's
    first rows, as they would); later chunks are converted to those types, not inferred (a chunk of only
    None in an object column stays a string column), and one that cannot be is InvalidInput, raised
    while the engine reads the stream: the write then commits nothing. When the first chunk does not
    convert on its own (a column of only None there has no type), or the timestamp index is unsorted or
    has NaT, the result is None: the frame then goes the table way, where its whole columns decide their
    types and a bad index is refused before anything is written."""
    n = len(df)
    if n <= CONVERT_CHUNK_ROWS or isinstance(df.columns, pd.MultiIndex):
        return None
    strided = [v for v in (getattr(b, "values", None) for b in _blocks(df)) if _is_strided_block(v)]
    if _all_plain_numbers(df) and not strided:
        return None  # every column goes over without a copy: nothing to bound
    index = df.index.get_level_values(0) if isinstance(df.index, pd.MultiIndex) else df.index
    if isinstance(index, pd.DatetimeIndex) and (index.hasnans or not index.is_monotonic_increasing):
        return None  # the table path refuses it before anything is written
    try:
        first = _from_pandas(df.iloc[:CONVERT_CHUNK_ROWS], codes=True)
    except InvalidInput:
        return None
    schema = first.table.schema
    step = _stream_chunk_rows(first.table, sum(v.shape[0] * v.itemsize for v in strided))

    head = [first.table]

    def batches() -> Iterator[pa.RecordBatch]:
        yield from head.pop().to_batches()  # not kept for the rest of the stream
        for start in range(CONVERT_CHUNK_ROWS, n, step):
            table = _from_pandas(df.iloc[start : start + step], types=schema, codes=True).table
            if not table.schema.equals(schema):
                try:
                    table = table.cast(schema, safe=True)
                except _ARROW_ERRORS as e:
                    raise InvalidInput(
                        f"rows {start}.. of the frame convert to {table.schema}, which does not fit the first rows' "
                        f"{schema}: {e}"
                    ) from e
            yield from table.to_batches()

    return Normalized(pa.RecordBatchReader.from_batches(schema, batches()), first.index, first.norm)


#: What the later chunks of a stream (``_pandas_stream``) may hold in memory the conversion made (codes,
#: strings, packed bools; not the numeric columns, which are the frame's own arrays): their rows are
#: chosen from the first chunk's bytes per row to fill this, within ``CONVERT_CHUNK_ROWS`` ..
#: ``STREAM_MAX_CHUNK_ROWS``, and their columns are converted whole. Each chunk costs Python on the
#: converting thread and a hand-over to the engine: writing 10M ``ticks`` rows (codes, ~4 bytes a row:
#: chunks of 1M rows) took 254 ms against 290 ms in chunks of 200,000 rows, peak memory +19 against +8 MB
#: (medians of 7, alternating, D28); a column of unique strings (~19 bytes a row) keeps 200,000.
STREAM_CHUNK_BYTES = 4 << 20
STREAM_MAX_CHUNK_ROWS = 1_000_000


def _stream_chunk_rows(first: pa.Table, copied_per_row: int = 0) -> int:
    """Rows per later chunk of a stream whose first converted chunk is ``first`` (see
    ``STREAM_CHUNK_BYTES``); a multiple of ``CONVERT_CHUNK_ROWS``. ``copied_per_row``: bytes a row of the
    numeric columns that conversion copies (strided ones, D32); the others go over without a copy."""
    made = copied_per_row * first.num_rows + sum(
        c.nbytes for c in first.columns if not (pa.types.is_integer(c.type) or pa.types.is_floating(c.type) or pa.types.is_timestamp(c.type))
    )
    rows = STREAM_MAX_CHUNK_ROWS if made == 0 else int(STREAM_CHUNK_BYTES * first.num_rows / made)
    rows = min(STREAM_MAX_CHUNK_ROWS, rows)
    return max(CONVERT_CHUNK_ROWS, rows - rows % CONVERT_CHUNK_ROWS)


def _series_column(name: Any) -> str:
    return name if isinstance(name, str) else "__series__"


def _arrow_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    try:
        if hasattr(data, "__arrow_c_stream__"):
            return pa.table(data)
        if hasattr(data, "__arrow_c_array__"):
            return pa.Table.from_batches([pa.record_batch(data)])
    except _ARROW_ERRORS as e:
        raise InvalidInput(f"the input's Arrow data cannot be read: {e}") from e
    raise InvalidInput(
        f"cannot write an object of type {type(data).__module__}.{type(data).__name__}: pass a pandas DataFrame or "
        "Series, a pyarrow Table or RecordBatch, a polars DataFrame, or any object with __arrow_c_stream__ or "
        "__arrow_c_array__ (other Python objects: write_pickle)"
    )


def _json_name(name: Any, what: str) -> Any:
    if isinstance(name, _JSON_SCALARS) and not (isinstance(name, float) and not np.isfinite(name)):
        return name
    if isinstance(name, np.generic):
        return name.item()
    raise InvalidInput(f"{what} {name!r} has type {type(name).__name__}; names must be str, int, float or None")


def _check_unique(names: list) -> None:
    dups = sorted(n for n, c in Counter(names).items() if c > 1)
    if dups:
        raise InvalidInput(f"duplicate column names: {dups}")


def _free_name(preferred: Any, taken: set) -> str:
    """A storage column name for an index level: its own name if that is a free string, else
    ``index``, ``__index__``, ``__index_1__``..."""
    if isinstance(preferred, str) and preferred and preferred not in taken:
        return preferred
    for candidate in (DEFAULT_INDEX_COLUMN, "__index__"):
        if candidate not in taken:
            return candidate
    i = 1
    while f"__index_{i}__" in taken:
        i += 1
    return f"__index_{i}__"


_NUMPY_DTYPE_NAMES: dict[np.dtype, str] = {}


def dtype_name(dtype: Any) -> str:
    """``str(dtype)``, the name the normalization record keeps. numpy computes a dtype's name in Python
    (~4 us); a 10-column append spent ~90 us there. numpy dtypes are cached (a handful exist); any
    other dtype (pandas extension types) is named each time."""
    if isinstance(dtype, np.dtype):
        name = _NUMPY_DTYPE_NAMES.get(dtype)
        if name is None:
            name = _NUMPY_DTYPE_NAMES[dtype] = str(dtype)
        return name
    return str(dtype)


def _columns(df: pd.DataFrame, dtypes: Sequence[Any], deferred: Optional[list] = None) -> list[Any]:
    """The frame's columns by position: plain numpy columns as their arrays, the rest as Series.
    ``df.iloc[:, i]`` costs ~40 µs a column (a Series each); a 1,000-row append of 10 columns spent
    1 ms here. pandas' ``_get_column_array`` (internal, in pandas 1.3 to 3) hands over the array
    itself in ~1 µs; without it, ``iloc``. Numeric columns that are strided views of one 2D block come
    contiguous from ``_contiguous_blocks``, or, given a ``deferred`` list, as Arrow stand-ins with the
    block and the columns' frame positions appended to it (``_deferred_blocks``)."""
    get = getattr(df, "_get_column_array", None)
    if get is None:
        dense = {}
    elif deferred is not None:
        dense = _deferred_blocks(df, deferred)
    else:
        dense = _contiguous_blocks(df)
    return [
        dense[i] if i in dense
        else get(i) if get is not None and isinstance(dtype, np.dtype) and dtype.kind in "iufb"
        else df.iloc[:, i]
        for i, dtype in enumerate(dtypes)
    ]


#: Strided 2D blocks of at least this many bytes are copied by ``_contiguous_blocks``; below it,
#: pyarrow's copy of each column costs less than the hand-over to Rust.
DENSE_BLOCK_MIN_BYTES = 1 << 20

#: A write defers the columns of strided 2D blocks of this many columns or more whatever their size
#: (D56): pyarrow's conversion costs ~4 µs a column, so a short frame of 1,000 columns spent ~4 ms
#: there, while the hand-over of a block is one step. Below ~200 columns the hand-over cost more.
DEFER_MIN_COLUMNS = 256

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _is_strided_block(values: Any, deferring: bool = False) -> bool:
    """Whether a pandas block's values are a numeric 2D array of at least ``DENSE_BLOCK_MIN_BYTES`` (or,
    ``deferring``, of rows and at least ``DEFER_MIN_COLUMNS`` columns) whose columns (the block's rows)
    are strided, as ``pd.DataFrame(values)`` of a C-ordered array makes them: each such column needs a
    copy to become an Arrow column. (A row window of a contiguous block, a chunk of a streamed write,
    has contiguous columns.)"""
    return (
        isinstance(values, np.ndarray) and values.ndim == 2 and values.strides[1] != values.itemsize
        and values.dtype.kind in "iuf" and values.dtype.isnative and values.flags.aligned
        and (
            values.nbytes >= DENSE_BLOCK_MIN_BYTES
            or (deferring and values.shape[0] >= DEFER_MIN_COLUMNS and values.shape[1] > 0)
        )
    )


def _blocks(df: pd.DataFrame) -> list[Any]:
    """pandas' internal blocks of ``df`` (``_mgr.blocks``, pandas 1.3 to 3), or none."""
    return list(getattr(getattr(df, "_mgr", None), "blocks", None) or ())


def _strided_blocks(df: pd.DataFrame, deferring: bool = False) -> Iterator[tuple[np.ndarray, Any]]:
    """``(values, frame positions)`` of each block of ``df`` that ``_is_strided_block`` (for deferring,
    if ``deferring``) and whose values can be viewed as unsigned integers of their width."""
    for block in _blocks(df):
        values = getattr(block, "values", None)
        locs = getattr(getattr(block, "mgr_locs", None), "as_array", None)
        if not _is_strided_block(values, deferring) or locs is None or values.shape != (len(locs), len(df)):
            continue
        if values.dtype.itemsize in _UNSIGNED:  # not 16-byte floats: pyarrow refuses them later
            yield values, locs


def _all_plain_numbers(df: pd.DataFrame) -> bool:
    """Whether every column of ``df`` is a plain numpy number or bool (pyarrow takes such a column
    without converting its values)."""
    return all(isinstance(t, np.dtype) and t.kind in "iufb" for t in _distinct(df.dtypes))


def _distinct(dtypes: Iterable[Any]) -> Iterable[Any]:
    """``dtypes`` without repeats (a frame of 1,000 float columns has one), or all of them if one is
    not hashable (an extension dtype may not be)."""
    dtypes = list(dtypes)
    try:
        return set(dtypes)
    except TypeError:
        return dtypes


def _stored_as_they_are(dtypes: Iterable[Any]) -> bool:
    """Whether columns of these dtypes become Arrow columns that ``_storable`` keeps as they are:
    plain numpy integers, bools and 32- or 64-bit floats (float16 is refused)."""
    return all(
        isinstance(t, np.dtype) and (t.kind in "iub" or (t.kind == "f" and t.itemsize in (4, 8))) for t in dtypes
    )


def _deferrable(df: pd.DataFrame) -> bool:
    """Whether a write of ``df`` goes with deferred columns (D49): it has strided blocks and every column
    is a plain numpy number or bool (no column needs the chunked conversion of ``_pandas_stream``)."""
    if isinstance(df.columns, pd.MultiIndex) or getattr(df, "_get_column_array", None) is None:
        return False
    if not _all_plain_numbers(df):
        return False
    return next(_strided_blocks(df, deferring=True), None) is not None


def _deferred_blocks(df: pd.DataFrame, deferred: list) -> dict[int, pa.Array]:
    """Stand-ins for the columns of ``df``'s strided blocks, by frame position: Arrow arrays of the
    column's type over one shared zero buffer (never read: the engine asks the block for each
    segment's values as it encodes it, D49). Appends ``(block as unsigned integers, frame positions)``
    to ``deferred`` for each block."""
    stand_ins: dict[int, pa.Array] = {}
    zeros: dict[int, Any] = {}
    n = len(df)
    for values, locs in _strided_blocks(df, deferring=True):
        width = values.dtype.itemsize
        if width not in zeros:
            zeros[width] = pa.py_buffer(np.zeros(n * width, np.uint8))
        stand_in = pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), n, [None, zeros[width]])
        positions = [int(p) for p in locs]
        deferred.append((values.view(_UNSIGNED[width]), positions))
        for p in positions:
            stand_ins[p] = stand_in
    return stand_ins


def _contiguous_blocks(df: pd.DataFrame) -> dict[int, np.ndarray]:
    """Contiguous copies of the numeric columns that pandas holds as strided views of one 2D block
    (``_is_strided_block``), by column position. pyarrow copies such a column by walking the whole block:
    writing 10,000 x 1,000 floats from one took 288-408 ms against 174-180 ms with contiguous columns.
    The Rust module copies the whole block tile by tile on both cores into one allocation whose rows the
    columns then are (D32). A frame of many rows is converted a chunk of rows at a time
    (``_pandas_stream``), so only a chunk's block is copied at once."""
    dense: dict[int, np.ndarray] = {}
    for values, locs in _strided_blocks(df):
        unsigned = _UNSIGNED[values.dtype.itemsize]
        out = np.empty(values.shape, values.dtype)
        _floe.copy_rows_contiguous(values.view(unsigned), out.view(unsigned))
        for row, position in enumerate(locs):
            dense[int(position)] = out[row]
    return dense


def _column_array(col: Any, name: str, type: Optional[pa.DataType] = None, codes: bool = False) -> Any:
    """One pandas column (a Series, or a plain numeric column's numpy array) as Arrow.

    numpy integer, float and bool columns go straight to ``pa.array`` (integers and floats without a
    copy) and NaN stays NaN, as in ArcticDB: ``from_pandas=True`` would scan every float column for
    NaN and store it as null. Every other dtype (objects, strings, categoricals, datetimes with NaT,
    pandas extension arrays with ``pd.NA``) takes pyarrow's pandas conversion, as
    ``pa.Table.from_pandas`` does, so missing values become nulls.
    """
    try:
        dtype = col.dtype
        if isinstance(dtype, np.dtype) and dtype.kind == "b":
            return _bools(np.asarray(col))
        if isinstance(dtype, np.dtype) and dtype.kind in "iuf" and dtype.isnative:
            return pa.array(np.asarray(col))
        if codes:  # a chunk of a stream: already bounded in size (``STREAM_CHUNK_BYTES``)
            return _pandas_array(col, type, codes)
        return _converted_in_chunks(col, type)
    except _ARROW_ERRORS as e:
        raise InvalidInput(f"column {name!r} cannot be stored: {e}") from e


def _bools(values: np.ndarray) -> pa.Array:
    """``pa.array(values)`` of a numpy bool array: its bits packed by numpy (16 us for 200,000 rows,
    where pyarrow's conversion took 259 us), handed to Arrow without a copy."""
    if values.ndim != 1:
        return pa.array(values)
    packed = np.packbits(values, bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(packed)])


#: Rows converted at a time by pyarrow's pandas conversion, in a table (``_converted_in_chunks``) and in
#: a stream (``_pandas_stream``). A multiple of the default 100,000 rows per segment, so no segment
#: straddles two chunks. Writing 10M `ticks` rows from pandas as a stream, peak memory over the frame:
#: chunks of 1M rows +74-82 MB, 500,000 +53, 200,000 +42, 100,000 +36, at about the same speed.
CONVERT_CHUNK_ROWS = 200_000


def _converted_in_chunks(col: Any, type: Optional[pa.DataType] = None) -> Any:
    """A column that needs pyarrow's pandas conversion (objects, strings, categoricals, NaT, pd.NA),
    converted ``CONVERT_CHUNK_ROWS`` rows at a time. Converting 10M strings at once grows the builder by
    doubling and peaked at 2.3x the result (+176 MB for a 75 MB column); in chunks, +100 MB, no slower.
    When chunks infer different types (the first all None, say), the whole column is converted at once
    so pyarrow picks one type as it would have."""
    if len(col) <= CONVERT_CHUNK_ROWS:
        return _pandas_array(col, type)
    chunks = []
    for start in range(0, len(col), CONVERT_CHUNK_ROWS):
        part = _pandas_array(col.iloc[start : start + CONVERT_CHUNK_ROWS], type)
        chunks.extend(part.chunks if isinstance(part, pa.ChunkedArray) else [part])
        if chunks[-1].type != chunks[0].type:
            return pa.array(col, type=type, from_pandas=True)
    return pa.chunked_array(chunks, type=chunks[0].type)


_NS = np.dtype("datetime64[ns]")
_ARROW_NS = pa.timestamp("ns")


def _pandas_array(col: Any, type: Optional[pa.DataType], codes: bool = False) -> Any:
    """``pa.array(col, type=type, from_pandas=True)`` of a Series or Index. Two kinds are converted
    faster to the same array: a tz-naive nanosecond datetime column without NaT is taken over without
    a copy, and an object column of strings and missing values (None, NaN, ``pd.NA``) is converted by
    the extension module (``strings_from_objects``, ~5x faster; D26). Any other object column (bytes,
    numbers, a mix, no string at all) is left to pyarrow, which decides its type or raises.

    With ``codes``, an object column of strings with few distinct values comes back as a dictionary
    array of codes (``codes_from_objects``, D28), which the caller marks with ``CODES_KEY``: the engine
    stores it as the plain string column. ``type`` is then the dictionary type of the stream's first
    chunk, if that went as codes."""
    if col.dtype == _NS and (type is None or type == _ARROW_NS) and not col.hasnans:
        # No NaT to turn into nulls: the int64 values as timestamps, without a copy or a null scan
        # (pyarrow's pandas conversion took 26 ms for a 10M-row index).
        return pa.array(np.asarray(col).view(np.int64), type=_ARROW_NS)
    if codes and col.dtype == object and (type is None or _is_codes_type(type)):
        values = np.asarray(col)
        if values.ndim == 1:
            large = type is not None and type.value_type == pa.large_string()
            converted = _floe.codes_from_objects(values, pd.NA, large, len(values) // 2)
            if converted is not None:
                return pa.array(converted)
            if type is not None:  # a later chunk of a stream whose first chunk went as codes
                return pa.array(col, type=type, from_pandas=True)
    if col.dtype == object and (type is None or type == pa.string() or type == pa.large_string()):
        values = np.asarray(col)
        if values.ndim == 1:
            converted = _floe.strings_from_objects(values, pd.NA, type == pa.large_string())
            if converted is not None:
                return pa.array(converted)
    return pa.array(col, type=type, from_pandas=True)


def _from_pandas(
    df: pd.DataFrame,
    series: bool = False,
    series_name: Any = None,
    types: Optional[pa.Schema] = None,
    codes: bool = False,
    defer: bool = False,
) -> Normalized:
    """``types``: the Arrow type of each stored column, to convert to rather than infer (the later chunks
    of ``_pandas_stream``, typed by the first). ``codes``: object columns of strings with few distinct
    values go to the engine as codes (D28; for ``write``, whose segments are made from the new rows
    alone). ``defer``: strided 2D blocks' columns go as stand-ins in ``Normalized.deferred`` (D49)."""
    if isinstance(df.columns, pd.MultiIndex):
        raise InvalidInput("frames with MultiIndex columns are not supported; flatten the column names")
    stored: list[str] = []
    renamed: dict[str, Any] = {}
    for name in df.columns:
        if isinstance(name, str):
            stored.append(name)
        else:
            s = str(_json_name(name, "column name"))
            renamed[s] = _json_name(name, "column name")
            stored.append(s)
    _check_unique(stored)
    # Column by column under the stored names: renaming the frame (set_axis) would copy all of it
    # under pandas < 3, which has no copy-on-write.
    column_dtypes = list(df.dtypes)
    def type_of(name: str) -> Optional[pa.DataType]:
        return None if types is None or name not in types.names else types.field(name).type

    blocks: Optional[list] = [] if defer else None
    columns = _columns(df, column_dtypes, blocks)
    arrays = [c if isinstance(c, pa.Array) else _column_array(c, s, type_of(s), codes) for c, s in zip(columns, stored)]
    # Per distinct dtype, not per column: a frame of 1,000 float columns has one.
    distinct = _distinct(column_dtypes)
    # pyarrow's own conversion never makes a dictionary of an object column: these are codes.
    coded = {
        s for s, t, a in zip(stored, column_dtypes, arrays)
        if isinstance(t, np.dtype) and t.kind == "O" and pa.types.is_dictionary(a.type)
    } if any(isinstance(t, np.dtype) and t.kind == "O" for t in distinct) else set()
    try:
        names = {t: dtype_name(t) for t in distinct}
        dtypes = dict(zip(stored, map(names.__getitem__, column_dtypes)))
    except TypeError:  # an unhashable dtype
        dtypes = {s: dtype_name(t) for s, t in zip(stored, column_dtypes)}

    idx = df.index
    taken = set(stored)
    index_cols: list[tuple[str, pd.Index]] = []
    ts_index: Optional[str] = None
    if isinstance(idx, pd.MultiIndex):
        names = [_json_name(n, "index level name") for n in idx.names]
        for level, name in enumerate(idx.names):
            col = _free_name(name, taken)
            taken.add(col)
            index_cols.append((col, idx.get_level_values(level)))
        if isinstance(idx.levels[0], pd.DatetimeIndex):
            ts_index = index_cols[0][0]
        index = {"type": "multi", "names": names, "columns": [c for c, _ in index_cols]}
    elif isinstance(idx, pd.RangeIndex):
        index = {"type": "range", "start": idx.start, "step": idx.step, "name": _json_name(idx.name, "index name")}
    else:
        col = _free_name(idx.name, taken)
        index_cols.append((col, idx))
        if isinstance(idx, pd.DatetimeIndex):
            ts_index = col
        kind = "datetime" if ts_index else "column"
        index = {"type": kind, "name": _json_name(idx.name, "index name"), "column": col}

    # The index columns come first; the table is made once (twice cost ~1.5 ms for 1,000 columns).
    index_arrays, index_names = [], []
    for col, values in index_cols:
        try:
            index_arrays.append(_pandas_array(values, type_of(col)))
        except _ARROW_ERRORS as e:
            raise InvalidInput(f"the index cannot be stored: {e}") from e
        index_names.append(col)
        dtypes[col] = dtype_name(values.dtype)
    data = pa.Table.from_arrays(index_arrays + arrays, names=index_names + stored)
    # Plain numpy columns need no look at their Arrow types; the index columns always get one.
    data = _storable(data, index_names + stored, len(arrays) if _stored_as_they_are(distinct) else 0)
    if coded:
        data = _mark_codes(data, coded)
    norm: dict[str, Any] = {"kind": "pandas", "index": index, "dtypes": dtypes}
    if renamed:
        norm["renamed"] = renamed
    if df.columns.name is not None:
        norm["columns_name"] = _json_name(df.columns.name, "columns name")
    if series:
        norm["series"] = {"name": _json_name(series_name, "Series name"), "column": stored[0]}
    # A frame position's column is that many places after the index columns.
    deferred = [(block, [len(index_names) + p for p in positions]) for block, positions in blocks or ()]
    return Normalized(data, ts_index, norm, deferred)


def _is_codes_type(t: pa.DataType) -> bool:
    return pa.types.is_dictionary(t) and t.value_type in (pa.string(), pa.large_string())


def _mark_codes(table: pa.Table, names: set) -> pa.Table:
    """``table`` with the fields of ``names`` (dictionary arrays of codes made from object columns of
    strings) marked ``CODES_KEY``, so the engine stores them as the plain string columns they are."""
    fields = [
        f.with_metadata({CODES_KEY: b"large_utf8" if f.type.value_type == pa.large_string() else b"utf8"}) if f.name in names else f
        for f in table.schema
    ]
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields))


def _storable_type(name: str, t: pa.DataType) -> pa.DataType:
    """The type ``t`` is stored as (itself, or a lossless conversion); raises InvalidInput otherwise."""
    if pa.types.is_timestamp(t):
        return t if t.unit == "ns" else pa.timestamp("ns", t.tz)
    if pa.types.is_string_view(t):
        return pa.large_string()
    if pa.types.is_binary_view(t):
        return pa.large_binary()
    if pa.types.is_dictionary(t):
        value = t.value_type
        if pa.types.is_string_view(value):
            value = pa.large_string()
        if not (pa.types.is_string(value) or pa.types.is_large_string(value)):
            raise InvalidInput(
                f"column {name!r} is categorical with {t.value_type} categories; only string categories are supported"
            )
        return pa.dictionary(t.index_type, value)
    if pa.types.is_floating(t) and t.bit_width == 16:
        raise InvalidInput(f"column {name!r} has type float16, which Floe cannot store; convert it to float32")
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        return t
    if pa.types.is_null(t):
        raise InvalidInput(
            f"column {name!r} has no type (every value is None, or it is an empty object column); "
            "give it a dtype, e.g. .astype('float64')"
        )
    hint = ""
    if pa.types.is_date(t):
        hint = "; convert it to datetime64[ns]"
    elif pa.types.is_duration(t):
        hint = "; convert it to int64 nanoseconds"
    raise InvalidInput(
        f"column {name!r} has type {t}, which Floe cannot store (supported: integers, floats, bool, timestamp, "
        f"string, binary, categorical of strings){hint}"
    )


def _check_names(names: Sequence[str]) -> None:
    for name in names:
        if "\x00" in name:
            # The Arrow C data interface carries names as NUL-terminated C strings: "a\x00b" would
            # arrive in the engine as "a" and be stored under that name.
            raise InvalidInput(
                f"column or index name {name!r} contains a NUL character (\\x00), which Floe cannot store; rename it"
            )


def _stored_types(names: Sequence[str], types: Sequence[pa.DataType]) -> list[pa.DataType]:
    """``_storable_type`` of each column, worked out once per distinct type, for the first column that
    has it (the one an error names): a frame of 1,000 float columns has one type, and checking it per
    column cost ~3 ms per write. Unhashable types (a Python ``pa.ExtensionType`` subclass) are checked
    column by column."""
    seen: Dict[pa.DataType, pa.DataType] = {}
    out = []
    for name, t in zip(names, types):
        try:
            s = seen.get(t)
        except TypeError:
            out.append(_storable_type(name, t))
            continue
        if s is None:
            s = seen[t] = _storable_type(name, t)
        out.append(s)
    return out


#: The last schemas ``_storable`` found stored as they are (metadata aside) when it checked every
#: column: a table with one of them needs no look at its types. For a 1,000-column Arrow table that
#: look (making the type objects, ~0.3 ms, and checking them) cost ~0.6 ms per write; the comparison,
#: in C++, a fraction of it.
_STORABLE_SCHEMAS: list[pa.Schema] = []
_STORABLE_SCHEMAS_KEPT = 8


def _storable(table: pa.Table, names: Optional[Sequence[str]] = None, known: int = 0) -> pa.Table:
    """Casts lossless conversions; raises InvalidInput for types that cannot be stored. ``names`` are the
    table's column names, when the caller has them already. ``known``: how many of the last columns the
    caller knows to be stored as they are (plain numpy numbers, ``_stored_as_they_are``), whose types
    are then not looked at: making the type objects of 1,000 columns cost ~0.3 ms and checking them
    ~0.3 ms more."""
    schema = table.schema
    # Not when the caller vouches for most columns: comparing a schema costs about as much as that.
    if known == 0 and any(schema.equals(s, check_metadata=False) for s in _STORABLE_SCHEMAS):
        return table.replace_schema_metadata(None)
    if names is None:
        names = schema.names
    _check_names(names)
    checked = len(names) - known
    types = schema.types if known == 0 else [schema.field(i).type for i in range(checked)]
    stored = _stored_types(names[:checked], types)
    if all(s is t or s == t for s, t in zip(stored, types)):
        if known == 0:
            _STORABLE_SCHEMAS.insert(0, schema)
            del _STORABLE_SCHEMAS[_STORABLE_SCHEMAS_KEPT:]
        return table.replace_schema_metadata(None)
    target = pa.schema([pa.field(n, s) for n, s in zip(names, stored + schema.types[checked:])])
    try:
        return table.cast(target, safe=True)
    except _ARROW_ERRORS as e:
        raise InvalidInput(f"a column cannot be converted to a storable type: {e}") from e


# ----- reading --------------------------------------------------------------------------------------


def storage_columns(columns: Optional[list], norm: Optional[dict]) -> Optional[list[str]]:
    """The stored column names a ``columns=`` argument asks for: non-string names mapped to their
    stored form, plus the index columns of a pandas frame whose index is stored as columns."""
    if columns is None:
        return None
    names = [c if isinstance(c, str) else str(c) for c in columns]
    if norm and norm.get("kind") == "pandas":
        index = norm["index"]
        extra = index.get("columns") or ([index["column"]] if index["type"] == "column" else [])
        names = [c for c in extra if c not in names] + names
    return names


def uses_row_offset(norm: Optional[dict]) -> bool:
    """Whether restoring the pandas frame needs the row number of the first row read (RangeIndex)."""
    return bool(norm and norm.get("kind") == "pandas" and norm["index"]["type"] == "range")


def _unique_dictionary(arr: pa.DictionaryArray) -> pa.DictionaryArray:
    """The same values with each dictionary entry once, in order of first appearance.

    A read that spans several stored segments returns the segments' dictionaries one after the
    other (valid Arrow, but pandas and polars want unique categories); the first segment's
    dictionary holds the original categories, so their order is kept.
    """
    dictionary = arr.dictionary
    unique = pc.unique(dictionary)
    if len(unique) == len(dictionary):
        return arr
    remap = pc.index_in(dictionary, value_set=unique).cast(arr.indices.type)
    return pa.DictionaryArray.from_arrays(pc.take(remap, arr.indices), unique)


def _unique_dictionaries(table: pa.Table) -> pa.Table:
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            column = table.column(i)
            chunks = [_unique_dictionary(c) for c in column.chunks]
            if any(a is not b for a, b in zip(chunks, column.chunks)):
                table = table.set_column(i, field, pa.chunked_array(chunks, field.type))
    return table


def to_output(
    table: pa.Table, norm: Optional[dict], output_format: str, row_offset: int = 0, owned: Sequence[Any] = (), blocks: Sequence[Any] = ()
) -> Any:
    """The read's table in the requested output format. ``owned`` (pandas only): columns the engine
    handed over for numpy, ``(position, name, OwnedColumn)``, left out of ``table``; ``blocks``:
    columns of one type it handed over in one allocation, ``(positions, names, OwnedBlock)``."""
    if output_format == "pyarrow":
        return table
    if output_format == "polars":
        import polars as pl

        return pl.from_arrow(_unique_dictionaries(table))
    block_columns, whole = _expand_blocks(blocks)
    owned = sorted([*owned, *block_columns], key=lambda o: o[0])
    table, owned = _decode_codes(table, (norm or {}).get("dtypes"), owned)
    return to_pandas(_unique_dictionaries(table), norm, row_offset, owned, whole)


# Field metadata the engine puts on a string column it read as codes (``floe.CODES_METADATA_KEY`` in
# Rust): the column is a dictionary array of the distinct values, not a categorical the user stored.
CODES_KEY = b"floe.codes"


def _decode_codes(table: pa.Table, dtypes: Optional[dict[str, str]], owned: Sequence[Any]) -> tuple[pa.Table, list[Any]]:
    """Turns the string columns the engine read as codes back into what the user stored. Those stored
    from pandas object columns become object arrays made from the distinct values: one Python string
    per distinct value, shared by its rows (``to_pandas`` makes one per row, ~2.5x slower), handed to
    the frame like the engine's owned columns; every other one goes back to a plain string column."""
    coded = [i for i, f in enumerate(table.schema) if f.metadata and CODES_KEY in f.metadata]
    if not coded:
        return table, list(owned)
    # The frame's column positions: the table's columns fill the places the owned ones leave.
    taken = {pos for pos, _, _ in owned}
    places = [p for p in range(len(owned) + table.num_columns) if p not in taken]
    owned = list(owned)
    drop = []
    for i in reversed(coded):
        field, column = table.schema.field(i), table.column(i)
        if dtypes is not None and dtypes.get(field.name) == "object" and column.num_chunks == 1:
            owned.append((places[i], field.name, _objects_from_codes(column.chunk(0))))
            drop.append(i)
        else:
            plain = pa.field(field.name, field.type.value_type, field.nullable)
            table = table.set_column(i, plain, column.cast(field.type.value_type))
    if drop:
        table = table.drop_columns([table.column_names[i] for i in drop])
    owned.sort(key=lambda o: o[0])
    return table, owned


def _objects_from_codes(array: pa.DictionaryArray) -> np.ndarray:
    """An object array of ``array``'s strings (None for nulls): one Python string per distinct value,
    shared by its rows, filled by the extension module (``objects_from_codes``, D27)."""
    return _floe.objects_from_codes(array, array.dictionary.to_numpy(zero_copy_only=False))


def _extension_dtype(name: str) -> Optional[Any]:
    """The pandas extension dtype ``name`` denotes, if it is one pyarrow can build directly."""
    if name in ("category",) or name.startswith("datetime64"):
        return None
    try:
        dtype = pd.api.types.pandas_dtype(name)
    except TypeError:
        return None
    return dtype if isinstance(dtype, pd.api.extensions.ExtensionDtype) and hasattr(dtype, "__from_arrow__") else None


def _frame(table: pa.Table, dtypes: dict[str, str]) -> pd.DataFrame:
    """``table.to_pandas()`` (a RangeIndex, the table's column order) with the pandas dtypes of the
    normalization record restored. Every column is writable: ``to_pandas`` copies into fresh
    blocks, and categoricals get codes of their own."""
    names = table.column_names
    extension = {c: d for c in names if c in dtypes and (d := _extension_dtype(dtypes[c])) is not None}
    df = (table.drop_columns(list(extension)) if extension else table).to_pandas()
    # Inserted at their places in table order, not appended and then reordered: ``df[names]`` would
    # copy the frame under pandas < 3.
    for pos, c in enumerate(names):
        if c in extension:
            df.insert(pos, c, table.column(c).to_pandas(types_mapper=lambda _t, d=extension[c]: d))
    for c, have in zip(names, df.dtypes):
        want = dtypes.get(c)
        have_name = dtype_name(have)
        if want == "object" and have_name != want:
            # Straight from Arrow: nulls come back as None, as they were written (not NaN).
            df[c] = pd.Series(table.column(c).to_numpy(zero_copy_only=False), index=df.index, dtype=object)
        elif want is not None and have_name != want and want != "category":
            try:
                df[c] = df[c].astype(want)
            except (TypeError, ValueError):
                pass  # written by another pandas version whose dtype this one lacks: keep the default
        elif isinstance(have, pd.CategoricalDtype):
            # pyarrow hands a dictionary column's indices over without a copy when it can (no nulls):
            # the categorical's codes are then read-only and ``df.iloc[i, j] = x`` fails. A copy of the
            # codes (1-4 bytes a row) makes the column the user's like every other one.
            df[c] = df[c].copy()
    return df


def _restore_dtype(values: np.ndarray, want: Optional[str]) -> Any:
    """``values`` in the pandas dtype ``want`` of the normalization record (a copy only when it
    differs, which plain numeric columns written from pandas never do)."""
    if want is None or want == dtype_name(values.dtype):
        return values
    if want == "object":
        return values.astype(object)
    try:
        return pd.array(values, dtype=want)
    except (TypeError, ValueError):
        return values  # written by another pandas version whose dtype this one lacks: keep the default


def _owned_frame(
    table: pa.Table, owned: Sequence[Any], dtypes: dict[str, str], skip: Optional[str] = None, blocks: Sequence[Any] = ()
) -> pd.DataFrame:
    """What ``_frame`` returns for the whole read, when the engine handed some columns over: those
    become writable numpy arrays over the engine's output buffers (no copy; each its own pandas block,
    which ``copy=False`` keeps), the rest of ``table`` is converted by ``_frame``. The owned column
    ``skip`` is left out (the caller makes it the index). ``blocks`` (see ``_expand_blocks``): when
    one of them holds a leading or trailing run of the frame's columns, it becomes one pandas block
    (one 2D array, no copy) and the other columns are joined to it."""
    rest = _frame(table, dtypes) if table.num_columns else None
    index = None if rest is None else rest.index
    at = {pos: (name, column) for pos, name, column in owned}
    order = [p for p in range(len(owned) + table.num_columns) if p not in at or at[p][0] != skip]
    block = _frame_block(blocks, order, dtypes)
    others = iter(table.column_names)
    columns: list[tuple[int, str, Any]] = []
    for pos in range(len(owned) + table.num_columns):
        if pos in at:
            name, column = at[pos]
            if name != skip and (block is None or pos not in block[0]):
                values = _restore_dtype(np.asarray(column), dtypes.get(name))
                if isinstance(values, np.ndarray) and values.dtype == object:
                    # Strings made from codes: pandas 3 would infer its string dtype from a bare array.
                    values = pd.Series(values, index=index, dtype=object, copy=False)
                columns.append((pos, name, values))
        else:
            name = next(others)
            columns.append((pos, name, rest[name]))  # type: ignore[index]  # rest exists: table has this column
    if block is not None:
        positions, names, array = block
        df = pd.DataFrame(array.T, columns=pd.Index(names), index=index, copy=False)
        if not columns:
            return df
        others_df = pd.DataFrame({n: v for _, n, v in columns}, index=df.index, copy=False)
        parts = [df, others_df] if order[0] in positions else [others_df, df]
        return pd.concat(parts, axis=1, **_NO_COPY)
    # The Series of ``rest`` share ``rest.index`` with the frame, so pandas takes their values as they
    # are; as bare arrays, object columns would be scanned again (datetime inference, isna: ~100 ms per
    # 1M strings).
    return pd.DataFrame({n: v for _, n, v in columns}, index=index, copy=False)


# ``pd.concat(copy=False)`` keeps the parts' blocks under pandas < 3; pandas 3 never copies there
# (copy-on-write) and deprecates the keyword.
_NO_COPY: dict[str, Any] = {"copy": False} if int(pd.__version__.split(".")[0]) < 3 else {}


def _frame_block(blocks: Sequence[Any], order: list[int], dtypes: dict[str, str]) -> Optional[tuple[set[int], list[str], np.ndarray]]:
    """The largest block that can be the frame's one 2D block: its columns are among the frame's
    (``order``: their positions, the index left out), lie in the block in that order, keep their
    stored dtype, and form a leading or trailing run of the frame's columns (so that joining the others
    keeps the order without a copy)."""
    best = None
    for positions, names, array in blocks:
        n = len(positions)
        if n < 2 or (order[:n] != positions and order[-n:] != positions):
            continue
        stored = dtype_name(array.dtype)
        if any(dtypes.get(name, stored) != stored for name in names):
            continue
        if best is None or n > len(best[0]):
            best = (set(positions), list(names), array)
    return best


def _expand_blocks(blocks: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """The engine's blocks ``(positions, names, OwnedBlock)`` as owned columns ``(position, name,
    view)`` (each a row of the block's 2D array, so every path that takes owned columns works) and as
    ``(positions, names, array)`` for ``_owned_frame``, which may use a block whole."""
    columns: list[Any] = []
    whole: list[Any] = []
    for positions, names, block in blocks:
        array = np.asarray(block)
        whole.append((list(positions), list(names), array))
        columns.extend((p, n, array[k]) for k, (p, n) in enumerate(zip(positions, names)))
    return columns, whole


# Tables up to this many rows may take the small-frame path (fixed costs dominate there; larger ones
# go through ``to_pandas``, which converts columns on several threads).
SMALL_FRAME_ROWS = 1 << 16


def _small_frame(table: pa.Table, index: dict, dtypes: dict[str, str]) -> Optional[pd.DataFrame]:
    """The frame of a small table with a DatetimeIndex and only null-free numeric or boolean columns
    stored in their pandas dtypes, built from numpy arrays in one step: the common tiny read (a few
    rows, a few columns) spends ~1 ms in ``to_pandas`` and index handling, this path ~0.2 ms. ``None``
    when the table is anything else (the general path then runs)."""
    if table.num_rows > SMALL_FRAME_ROWS or index["type"] != "datetime":
        return None
    ts_type = table.schema.field(index["column"]).type if index["column"] in table.column_names else None
    if ts_type is None or not pa.types.is_timestamp(ts_type) or ts_type.unit != "ns":
        return None
    data = {}
    for name, column in zip(table.column_names, table.columns):
        if name == index["column"]:
            continue
        t = column.type
        if column.null_count or not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            return None
        values = column.to_numpy()
        name_of = dtype_name(values.dtype)
        if dtypes.get(name, name_of) != name_of:
            return None
        # Our own writable copy (the array may be a read-only view of Arrow memory).
        data[name] = np.array(values, copy=True)
    if not data:
        return None  # an index-only read: the general path gives the empty labels their pandas type
    stamps = pd.DatetimeIndex(table.column(index["column"]).to_numpy(), name=index["name"])
    if ts_type.tz is not None:
        stamps = stamps.tz_localize("UTC").tz_convert(ts_type.tz)
    # Passing the index to the constructor would align every column to it (~1.5 ms); set it after.
    df = pd.DataFrame(data, copy=False)
    df.index = stamps
    return df


def _index_columns(index: dict) -> list[str]:
    """The stored columns that make up the pandas index of a normalization record's ``index``."""
    if index["type"] == "multi":
        return list(index["columns"])
    if index["type"] in ("datetime", "column"):
        return [index["column"]]
    return []


def _move_to_index(df: pd.DataFrame, columns: list[str]) -> None:
    """Makes ``columns`` the frame's index, in place: what ``df.set_index(columns)`` returns, without
    its copy of the whole frame (pandas < 3 deep-copies it)."""
    dtype = df.dtypes.iloc[df.columns.get_loc(columns[0])]
    if len(columns) == 1 and (isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M")):
        # A datetime column becomes a DatetimeIndex over the same array, as set_index makes it.
        index = pd.DatetimeIndex(df[columns[0]])
    else:
        # Other kinds (rare; only the index columns are copied): pandas' own rules, which differ
        # between versions (pandas 3 makes a RangeIndex of an evenly spaced integer column).
        index = df[columns].set_index(columns).index
    for c in columns:
        # No copy: pandas splits the column's block into views of the rest.
        del df[c]
    if df.shape[1] == 0:
        # Only index columns were read: give the empty column labels the Index type that set_index
        # leaves (str under pandas 3, object before), as reads did before.
        df.columns = pd.Index(columns)[:0]
    df.index = index


def to_pandas(table: pa.Table, norm: Optional[dict], row_offset: int = 0, owned: Sequence[Any] = (), blocks: Sequence[Any] = ()) -> Any:
    """Restores the pandas object a normalization record describes (or a plain frame without one).

    The columns in ``owned`` (see ``to_output``) are taken over without a copy; the rest are copied
    once (``to_pandas``, into writable pandas blocks). Then the index columns are moved into the index
    in place, so no step copies the whole frame again (as ``set_index`` did under pandas < 3).
    """
    if not norm or norm.get("kind") != "pandas":
        df = _owned_frame(table, owned, {}, blocks=blocks) if owned else table.to_pandas()
        index_column = (norm or {}).get("index_column")
        if index_column and index_column in df.columns:
            _move_to_index(df, [index_column])
            df.index.name = index_column
        return df
    index = norm["index"]
    dtypes = norm.get("dtypes", {})
    small = None if owned else _small_frame(table, index, dtypes)

    def frame() -> pd.DataFrame:
        return _owned_frame(table, owned, dtypes, blocks=blocks) if owned else _frame(table, dtypes)

    # A DatetimeIndex over the engine's own timestamps (naive ns; zoned ones are not handed over).
    stamps = next((c for _, n, c in owned if n == index.get("column")), None) if index["type"] == "datetime" else None
    if small is not None:
        df = small
    elif stamps is not None and len(owned) + table.num_columns > 1:
        df = _owned_frame(table, owned, dtypes, skip=index["column"], blocks=blocks)
        # The stored unit is ns; a frame written with another unit gets it back (a copy, then).
        values = _restore_dtype(np.asarray(stamps), dtypes.get(index["column"]))
        df.index = pd.DatetimeIndex(values, name=index["name"], copy=False)
    elif index["type"] == "range":
        df = frame()
        start = index["start"] + row_offset * index["step"]
        df.index = pd.RangeIndex(start, start + len(df) * index["step"], index["step"], name=index["name"])
    elif index["type"] == "multi":
        df = frame()
        _move_to_index(df, _index_columns(index))
        df.index.names = index["names"]
    else:
        df = frame()
        _move_to_index(df, _index_columns(index))
        df.index.name = index["name"]
    renamed = norm.get("renamed")
    if renamed:
        df.columns = [renamed.get(c, c) for c in df.columns]
    if "columns_name" in norm:
        df.columns.name = norm["columns_name"]
    series = norm.get("series")
    if series:
        s = df[series["column"]] if series["column"] in df.columns else df.iloc[:, 0]
        s.name = series["name"]
        return s
    return df


# ----- argument conversion ----------------------------------------------------------------------------


def timestamp_ns(value: Any, what: str) -> int:
    """A datetime-like value (datetime, date, pandas/numpy timestamp, ISO string) or int of ns as ns
    since the epoch, UTC. Naive values are taken as UTC."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{what} {value!r} is not a timestamp: {e}") from e
    if ts is pd.NaT:
        raise InvalidInput(f"{what} is NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.as_unit("ns").value)


def is_datetime_like(value: Any) -> bool:
    return isinstance(value, (_dt.datetime, _dt.date, np.datetime64, pd.Timestamp))
